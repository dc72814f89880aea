//! Reading a `DorisCluster` from YAML with errors that name the field, and
//! the rules the types alone cannot express.

use std::fmt;

use serde_json::Value;

use super::{ComponentKind, DorisCluster};

/// A rule a cluster breaks, at a field path (`spec.feSpec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            // A rule on the whole cluster names its fields in its message.
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a document is not a usable DorisCluster.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    TooDeep(TooDeep),
    #[error(
        "expected apiVersion doris.selectdb.com/v1 and kind DorisCluster, got {api_version} {kind}"
    )]
    WrongKind { api_version: String, kind: String },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// Parses one YAML document as a DorisCluster and checks it as the API
/// server would (unknown fields, the CRD's bounds, patterns and CEL rules),
/// then the rules the CRD cannot express.
pub fn parse_cluster(yaml: &str) -> Result<DorisCluster, CrdError> {
    check_depth(yaml).map_err(CrdError::TooDeep)?;
    let value: Value = serde_norway::from_str(yaml).map_err(|e| CrdError::Yaml(e.to_string()))?;
    let cluster = from_value(value.clone())?;
    let mut errors = admission(&value, None);
    for error in validate(&cluster) {
        if !errors.iter().any(|e| e.path == error.path) {
            errors.push(error);
        }
    }
    if errors.is_empty() {
        Ok(cluster)
    } else {
        Err(CrdError::Invalid(errors))
    }
}

/// Reads a DorisCluster from JSON strictly, as the API server's strict
/// decoding does: a field the types do not have is an error naming it, down
/// into the fields typed with Kubernetes types (affinity, env, volume
/// claims …). The operator itself reads clusters tolerantly: the API server
/// has already pruned what it does not know.
pub fn from_value(value: Value) -> Result<DorisCluster, CrdError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != "doris.selectdb.com/v1" || kind != "DorisCluster" {
        return Err(CrdError::WrongKind { api_version, kind });
    }
    let mut unknown = Vec::new();
    let mut note =
        |path: serde_ignored::Path<'_>| unknown.push(crate::plan::objects::field_path(&path));
    let decoded = serde_path_to_error::deserialize::<_, DorisCluster>(
        serde_ignored::Deserializer::new(&value, &mut note),
    );
    let cluster = decoded.map_err(|err| CrdError::Field {
        path: err.path().to_string(),
        message: err.inner().to_string(),
    })?;
    // The status is the operator's, and the API server ignores it on create.
    let unknown: Vec<FieldError> = unknown
        .into_iter()
        .filter(|p| !matches!(p.as_str(), "apiVersion" | "kind") && !p.starts_with("status"))
        .map(|path| FieldError {
            path,
            message: "unknown field".into(),
        })
        .collect();
    if unknown.is_empty() {
        Ok(cluster)
    } else {
        Err(CrdError::Invalid(unknown))
    }
}

/// What the API server refuses when the cluster is created (`old` is
/// `None`) or updated from `old`: the CRD schema's bounds and patterns, and
/// its `x-kubernetes-validations` rules, each at the field it is declared
/// on. Transition rules (`oldSelf`) run only on updates.
pub fn admission(value: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let schema = &*SCHEMA;
    let value = strip_nulls(value.clone());
    let old = old.map(|o| strip_nulls(o.clone()));
    let mut errors = Vec::new();
    bounds(schema, &value, "", &mut errors);
    let validator = kube::core::cel::Validator::new();
    if let Err(failures) = validator.validate(schema, &value, old.as_ref()) {
        for failure in failures {
            errors.push(FieldError {
                path: failure.field_path.trim_start_matches('.').to_string(),
                message: failure.message,
            });
        }
    }
    errors
}

/// The CRD's `openAPIV3Schema`.
static SCHEMA: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    let crd = super::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema"),
    )
    .expect("the schema serializes")
});

/// The value checks of an OpenAPI schema that the types do not make:
/// `minimum`, `maximum`, `maxLength`, `maxItems`, `maxProperties` and
/// `pattern`, with messages like the API server's.
fn bounds(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| {
        errors.push(FieldError {
            path: path.to_string(),
            message,
        })
    };
    let limit = |key: &str| schema.get(key).and_then(Value::as_f64);
    match value {
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if let Some(min) = limit("minimum").filter(|min| n < *min) {
                fail(format!("should be greater than or equal to {min}"));
            }
            if let Some(max) = limit("maximum").filter(|max| n > *max) {
                fail(format!("should be less than or equal to {max}"));
            }
        }
        Value::String(s) => {
            if let Some(max) = limit("maxLength").filter(|max| s.chars().count() as f64 > *max) {
                fail(format!("may not be more than {max} characters"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => fail(format!("{s:?} should match '{pattern}'")),
                    Err(e) => fail(format!("the CRD's pattern '{pattern}' is invalid: {e}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = limit("maxItems").filter(|max| items.len() as f64 > *max) {
                fail(format!("must have at most {max} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    bounds(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(fields) => {
            if let Some(max) = limit("maxProperties").filter(|max| fields.len() as f64 > *max) {
                fail(format!("must have at most {max} properties"));
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, field) in fields {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(field_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    bounds(field_schema, field, &at, errors);
                }
            }
        }
        _ => {}
    }
}

/// A null field is an absent one (the API server runs no rule on nulls).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Every rule the cluster breaks.
pub fn validate(cluster: &DorisCluster) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |path: String, message: String| errors.push(FieldError { path, message });
    let name = cluster.metadata.name.as_deref().unwrap_or("");
    if name.is_empty() {
        fail("metadata.name".into(), "is required".into());
    }
    let spec = &cluster.spec;
    if spec.admin_user.as_ref().and_then(|u| u.name.as_deref()) == Some("admin") {
        fail(
            "spec.adminUser.name".into(),
            "must not be `admin`: Doris reserves that account; use root or a user of your own"
                .into(),
        );
    }
    for kind in ComponentKind::ALL {
        let Some(view) = spec.component(kind) else {
            continue;
        };
        let at = format!("spec.{}Spec", kind.as_str());
        let base = view.base();
        if base.image.trim().is_empty() {
            fail(format!("{at}.image"), "is required".into());
        }
        if let Some(r) = base.replicas.filter(|r| *r < 0) {
            fail(
                format!("{at}.replicas"),
                format!("must be 0 or more, got {r}"),
            );
        }
        let own = super::super::plan::names::config_map(name, kind);
        if base
            .config_map_info
            .as_ref()
            .and_then(|i| i.config_map_name.as_deref())
            == Some(own.as_str())
        {
            fail(
                format!("{at}.configMapInfo.configMapName"),
                format!(
                    "{own} is the name of the ConfigMap the operator renders; name yours differently"
                ),
            );
        }
    }
    if let Some(fe) = &spec.fe_spec {
        let election = fe.election_number();
        if election < 1 {
            fail(
                "spec.feSpec.electionNumber".into(),
                format!("must be 1 or more, got {election}"),
            );
        }
    }
    errors
}

/// How deeply a YAML or JSON document may nest its collections. The decoders
/// refuse deeper documents anyway; checking first refuses them quickly.
pub const MAX_DEPTH: usize = 128;

/// A document that nests deeper than [`MAX_DEPTH`], and where it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based, within the text checked.
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: collections nested more than {MAX_DEPTH} levels deep",
            self.line, self.col
        )
    }
}

/// Refuses YAML text whose collections nest deeper than [`MAX_DEPTH`].
///
/// The YAML scanner spends time in proportion to the nesting depth on every
/// token, so a deeply nested document (`[[[[…`) takes time quadratic in its
/// size before any depth limit of the decoder applies. This walks the same
/// scanner's events and stops at the first collection beyond the limit, so
/// the work stays proportional to the text. Syntax errors are left for the
/// decoder to report.
pub fn check_depth(text: &str) -> Result<(), TooDeep> {
    use std::mem::MaybeUninit;
    use unsafe_libyaml_norway as unsafe_yaml;

    // SAFETY: the parser is initialised before use and deleted once; it
    // reads `text`, which outlives it; every event it produced is deleted.
    // The parser is boxed so that it does not move while in use.
    unsafe {
        let mut parser = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
        let parser = parser.as_mut_ptr();
        if unsafe_yaml::yaml_parser_initialize(parser).fail {
            return Ok(());
        }
        unsafe_yaml::yaml_parser_set_encoding(parser, unsafe_yaml::YAML_UTF8_ENCODING);
        unsafe_yaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        let mut found = None;
        loop {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let mark = (*event).start_mark;
            unsafe_yaml::yaml_event_delete(event);
            match kind {
                unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        found = Some(TooDeep {
                            line: mark.line as usize + 1,
                            col: mark.column as usize + 1,
                        });
                        break;
                    }
                }
                unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                    depth = depth.saturating_sub(1);
                }
                unsafe_yaml::YAML_STREAM_END_EVENT => break,
                _ => {}
            }
        }
        unsafe_yaml::yaml_parser_delete(parser);
        found.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: c\n";

    #[test]
    fn wrong_type_in_a_flattened_field_names_it() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  feSpec:\n    image: fe\n    replicas: three\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("spec.feSpec.replicas: invalid type"),
            "{text}"
        );
    }

    #[test]
    fn wrong_type_in_a_component_field_names_it() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  beSpec:\n    image: be\n    service:\n      type: Nowhere\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec.beSpec.service.type: unknown variant"),
            "{err}"
        );
    }

    #[test]
    fn rules_are_reported_with_paths() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  adminUser:\n    name: admin\n  feSpec:\n    image: fe\n    electionNumber: 0\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("spec.adminUser.name: must not be `admin`"),
            "{text}"
        );
        assert!(
            text.contains("spec.feSpec.electionNumber: should be greater than or equal to 1"),
            "{text}"
        );
    }

    #[test]
    fn fewer_fe_replicas_than_followers_are_accepted_at_creation() {
        // As the peer's broker sample: one FE, electionNumber left at 3.
        let cluster = parse_cluster(&format!(
            "{HEAD}spec:\n  feSpec:\n    image: fe\n    replicas: 1\n"
        ))
        .unwrap();
        assert_eq!(cluster.spec.fe_spec.unwrap().election_number(), 3);
        parse_cluster(&format!(
            "{HEAD}spec:\n  feSpec:\n    image: fe\n    replicas: 2\n    electionNumber: 5\n"
        ))
        .unwrap();
    }

    /// The errors `spec` (YAML under `spec:`, indented by 2) gets.
    fn errors(spec: &str) -> Vec<String> {
        errors_named("c", spec)
    }

    fn errors_named(name: &str, spec: &str) -> Vec<String> {
        let doc = format!(
            "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: {name}\nspec:\n{spec}"
        );
        match parse_cluster(&doc) {
            Ok(_) => Vec::new(),
            Err(CrdError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            Err(other) => vec![other.to_string()],
        }
    }

    fn assert_refused(spec: &str, expected: &str) {
        let errors = errors(spec);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "expected `{expected}` for\n{spec}\ngot {errors:?}"
        );
    }

    fn assert_accepted(spec: &str) {
        assert_eq!(errors(spec), Vec::<String>::new(), "for\n{spec}");
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        assert_refused("  fespec:\n    image: fe\n", "spec.fespec: unknown field");
        assert_refused(
            "  beSpec:\n    image: be\n    replica: 3\n",
            "spec.beSpec.replica: unknown field",
        );
        assert_refused(
            "  beSpec:\n    image: be\n    persistentVolumes:\n    - mountPath: /data\n      persistentVolumeClaimSpec:\n        storageClass: ssd\n",
            "spec.beSpec.persistentVolumes[0].persistentVolumeClaimSpec.storageClass: unknown field",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    affinity:\n      nodeAffinity:\n        required: {}\n",
            "spec.feSpec.affinity.nodeAffinity.required: unknown field",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    envVars:\n    - name: A\n      valueFrom:\n        secretRef: {name: s}\n",
            "spec.feSpec.envVars[0].valueFrom.secretRef: unknown field",
        );
        let doc = format!("{HEAD}  lables: {{a: b}}\nspec:\n  feSpec:\n    image: fe\n");
        let err = parse_cluster(&doc).unwrap_err().to_string();
        assert!(err.contains("metadata.lables: unknown field"), "{err}");
    }

    #[test]
    fn what_a_server_adds_is_not_unknown() {
        let doc = format!(
            "{HEAD}  uid: abc-1\n  resourceVersion: \"7\"\n  managedFields:\n  - manager: kubectl\n    fieldsType: FieldsV1\n    fieldsV1: {{f:spec: {{}}}}\nspec:\n  feSpec:\n    image: fe\nstatus:\n  feStatus:\n    somethingNew: 1\n"
        );
        parse_cluster(&doc).unwrap();
    }

    #[test]
    fn cluster_names_leave_room_for_derived_names() {
        let fe = "  feSpec:\n    image: fe\n";
        let broker = "  brokerSpec:\n    image: broker\n";
        let longest = "a".repeat(crate::crd::schema::MAX_NAME);
        assert_eq!(errors_named(&longest, fe), Vec::<String>::new());
        let too_long = format!("{longest}b");
        let refused = errors_named(&too_long, fe);
        assert!(
            refused
                .iter()
                .any(|e| e.starts_with("metadata.name must be at most 49 characters")),
            "{refused:?}"
        );
        // `<name>-broker` is the longest StatefulSet name.
        let longest = "a".repeat(crate::crd::schema::MAX_NAME_WITH_BROKER);
        assert_eq!(errors_named(&longest, broker), Vec::<String>::new());
        assert!(!errors_named(&format!("{longest}b"), broker).is_empty());
        for bad in ["Doris", "doris.prod", "1doris", "doris-"] {
            let refused = errors_named(bad, fe);
            assert!(
                refused
                    .iter()
                    .any(|e| e.starts_with("metadata.name must start with a lowercase letter")),
                "{bad}: {refused:?}"
            );
        }
    }

    #[test]
    fn quantities_must_parse() {
        for good in ["4", "500m", "8Gi", "1.5", "1e3", "16G", "\"2\""] {
            assert_accepted(&format!(
                "  beSpec:\n    image: be\n    requests: {{cpu: {good}}}\n    limits: {{memory: {good}}}\n"
            ));
        }
        assert_refused(
            "  beSpec:\n    image: be\n    requests: {cpu: lots}\n",
            "spec.beSpec.requests.cpu: \"lots\" should match",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    limits: {memory: 8GB}\n",
            "spec.feSpec.limits.memory: \"8GB\" should match",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    limits: {memory: \"-1Gi\"}\n",
            "spec.feSpec.limits.memory",
        );
        assert_refused(
            "  beSpec:\n    image: be\n    systemInitialization:\n      resources:\n        limits: {cpu: one}\n",
            "spec.beSpec.systemInitialization.resources.limits.cpu: \"one\" should match",
        );
    }

    #[test]
    fn mount_paths_are_absolute() {
        assert_refused(
            "  beSpec:\n    image: be\n    persistentVolumes:\n    - mountPath: data\n",
            "spec.beSpec.persistentVolumes[0].mountPath: must be an absolute path",
        );
        // No mountPath, or an empty one: every data directory.
        assert_accepted(
            "  beSpec:\n    image: be\n    persistentVolumes:\n    - mountPath: \"\"\n      name: a\n    - name: b\n",
        );
        assert_refused(
            "  beSpec:\n    image: be\n    secrets:\n    - secretName: s\n      mountPath: etc/s\n",
            "spec.beSpec.secrets[0].mountPath: must be an absolute path",
        );
        assert_refused(
            "  cnSpec:\n    image: be\n    configMapInfo:\n      configMaps:\n      - configMapName: c\n        mountPath: ./c\n",
            "spec.cnSpec.configMapInfo.configMaps[0].mountPath: must be an absolute path",
        );
        assert_refused(
            "  sharedPersistentVolumeClaims:\n  - mountPath: plugins\n    persistentVolumeClaimName: p\n",
            "spec.sharedPersistentVolumeClaims[0].mountPath: must be an absolute path or start with ${DORIS_HOME}/",
        );
        assert_accepted(
            "  sharedPersistentVolumeClaims:\n  - mountPath: ${DORIS_HOME}/plugins\n    persistentVolumeClaimName: p\n  - mountPath: /opt/udf\n    persistentVolumeClaimName: q\n",
        );
        assert_refused(
            "  kerberosInfo:\n    keytabSecretName: k\n    keytabPath: keytab\n",
            "spec.kerberosInfo.keytabPath: must be an absolute path",
        );
    }

    #[test]
    fn env_var_names_are_valid() {
        for bad in ["\"\"", "1ABC", "A=B", "\"A B\""] {
            assert_refused(
                &format!(
                    "  feSpec:\n    image: fe\n    envVars:\n    - name: TZ\n    - name: {bad}\n"
                ),
                "spec.feSpec.envVars[1].name: must be an environment variable name",
            );
        }
        assert_accepted(
            "  feSpec:\n    image: fe\n    envVars:\n    - name: TZ\n    - name: _a.b-c1\n      value: x\n",
        );
    }

    #[test]
    fn mount_paths_and_ports_are_not_shared() {
        assert_refused(
            "  beSpec:\n    image: be\n    secrets:\n    - {secretName: a, mountPath: /etc/s}\n    - {secretName: b, mountPath: /etc/s}\n",
            "spec.beSpec.secrets: two entries have the same mountPath",
        );
        assert_refused(
            "  beSpec:\n    image: be\n    configMapInfo:\n      configMaps:\n      - {configMapName: a, mountPath: /etc/c}\n      - {configMapName: b, mountPath: /etc/c}\n",
            "spec.beSpec.configMapInfo.configMaps: two entries have the same mountPath",
        );
        assert_accepted(
            "  beSpec:\n    image: be\n    secrets:\n    - {secretName: a, mountPath: /etc/a}\n    - {secretName: b, mountPath: /etc/b}\n",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    service:\n      servicePorts:\n      - {targetPort: 9030, nodePort: 31030}\n      - {targetPort: 9030, nodePort: 31031}\n",
            "spec.feSpec.service.servicePorts: two entries have the same targetPort",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    service:\n      servicePorts:\n      - {targetPort: 9030, nodePort: 31030}\n      - {targetPort: 8030, nodePort: 31030}\n",
            "spec.feSpec.service.servicePorts: two entries have the same nodePort",
        );
        // nodePort 0: the API server picks one for each.
        assert_accepted(
            "  feSpec:\n    image: fe\n    service:\n      servicePorts:\n      - {targetPort: 9030, nodePort: 0}\n      - {targetPort: 8030, nodePort: 0}\n",
        );
        assert_refused(
            "  feSpec:\n    image: fe\n    service:\n      servicePorts:\n      - {targetPort: 9030, nodePort: 70000}\n",
            "spec.feSpec.service.servicePorts[0].nodePort: should be less than or equal to 65535",
        );
    }

    #[test]
    fn lists_rules_iterate_over_are_bounded() {
        let secrets: String = (0..65)
            .map(|i| format!("    - {{secretName: s{i}, mountPath: /etc/s{i}}}\n"))
            .collect();
        assert_refused(
            &format!("  beSpec:\n    image: be\n    secrets:\n{secrets}"),
            "spec.beSpec.secrets: must have at most 64 items",
        );
    }

    #[test]
    fn election_number_is_fixed_once_the_cluster_exists() {
        let cluster = |fe: serde_json::Value| {
            serde_json::json!({
                "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
                "metadata": {"name": "c"}, "spec": {"feSpec": fe}
            })
        };
        let unset = cluster(serde_json::json!({"image": "fe", "replicas": 3}));
        let three = cluster(serde_json::json!({"image": "fe", "replicas": 5, "electionNumber": 3}));
        let five = cluster(serde_json::json!({"image": "fe", "replicas": 5, "electionNumber": 5}));
        // Creation: any value.
        assert!(admission(&five, None).is_empty());
        // Unset and 3 are the same.
        assert!(admission(&three, Some(&unset)).is_empty());
        assert!(admission(&unset, Some(&three)).is_empty());
        for (new, old) in [(&five, &unset), (&unset, &five), (&five, &three)] {
            let errors = admission(new, Some(old));
            assert!(
                errors.iter().any(|e| e.path == "spec.feSpec.electionNumber"
                    && e.message
                        .starts_with("cannot change on an existing cluster")),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn other_kinds_are_refused() {
        let err =
            parse_cluster("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").unwrap_err();
        assert!(err.to_string().contains("got v1 ConfigMap"), "{err}");
    }

    #[test]
    fn legacy_address_key_is_accepted() {
        let c = parse_cluster(&format!(
            "{HEAD}spec:\n  beSpec:\n    image: be\n    feAddress:\n      endpoints:\n        \":address\": [10.0.0.1]\n        port: 9030\n"
        ))
        .unwrap();
        let addr = c.spec.be_spec.unwrap().base.fe_address.unwrap();
        assert_eq!(addr.endpoints.unwrap().address.unwrap(), ["10.0.0.1"]);
    }

    #[test]
    fn nesting_is_refused_past_the_limit_where_it_happens() {
        let flow = |depth: usize| format!("a: 1\nb: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        // The top-level map is one level.
        assert_eq!(check_depth(&flow(MAX_DEPTH - 1)), Ok(()));
        assert_eq!(
            check_depth(&flow(MAX_DEPTH)),
            Err(TooDeep {
                line: 2,
                col: 4 + MAX_DEPTH - 1
            })
        );
        let block: String = (0..=MAX_DEPTH)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let err = check_depth(&block).unwrap_err();
        assert_eq!(err.line, MAX_DEPTH + 1);
        // Syntax errors are left to the decoder.
        assert_eq!(check_depth("a: [1\n"), Ok(()));
        assert!(serde_norway::from_str::<Value>("a: [1\n").is_err());
    }
}
