//! Reading a `DorisCluster` or a `DorisDisaggregatedCluster` from YAML with
//! errors that name the field, and the rules the types alone cannot express.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ComponentKind, DorisCluster, DorisDisaggregatedCluster};

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

/// Why a document is not a usable cluster.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    TooDeep(TooDeep),
    #[error("expected {expected}, got {api_version} {kind}")]
    WrongKind {
        /// `apiVersion doris.selectdb.com/v1 and kind DorisCluster`.
        expected: &'static str,
        api_version: String,
        kind: String,
    },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

impl CrdError {
    /// The error as field errors: one per field for a decoding error or
    /// broken rules, one without a path for a document that is not a
    /// cluster at all.
    pub fn into_field_errors(self) -> Vec<FieldError> {
        match self {
            CrdError::Invalid(errors) => errors,
            CrdError::Field { path, message } => vec![FieldError { path, message }],
            other => vec![FieldError {
                path: String::new(),
                message: other.to_string(),
            }],
        }
    }
}

/// Parses one YAML document as a DorisCluster and checks it as the API
/// server would (unknown fields, the CRD's bounds, patterns and CEL rules),
/// then the rules the CRD cannot express.
pub fn parse_cluster(yaml: &str) -> Result<DorisCluster, CrdError> {
    let value = read_yaml(yaml)?;
    let cluster = from_value(value.clone())?;
    let errors = admission(&value, None);
    finish(cluster, errors, validate)
}

/// Parses one YAML document as a DorisDisaggregatedCluster and checks it as
/// the API server would (unknown fields, the CRD's bounds, patterns and CEL
/// rules), then the rules the CRD cannot express.
pub fn parse_disaggregated_cluster(yaml: &str) -> Result<DorisDisaggregatedCluster, CrdError> {
    let value = read_yaml(yaml)?;
    let cluster = disaggregated_from_value(value.clone())?;
    let errors = disaggregated_admission(&value, None);
    finish(cluster, errors, validate_disaggregated)
}

fn read_yaml(yaml: &str) -> Result<Value, CrdError> {
    check_depth(yaml).map_err(CrdError::TooDeep)?;
    serde_norway::from_str(yaml).map_err(|e| CrdError::Yaml(e.to_string()))
}

/// The cluster, or every error: the API server's first, then those of
/// `rules` at fields the API server found nothing wrong with.
fn finish<K>(
    cluster: K,
    mut errors: Vec<FieldError>,
    rules: fn(&K) -> Vec<FieldError>,
) -> Result<K, CrdError> {
    for error in rules(&cluster) {
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
    strict(
        value,
        "doris.selectdb.com/v1",
        "DorisCluster",
        "apiVersion doris.selectdb.com/v1 and kind DorisCluster",
    )
}

/// Reads a DorisDisaggregatedCluster from JSON strictly, as [`from_value`].
pub fn disaggregated_from_value(value: Value) -> Result<DorisDisaggregatedCluster, CrdError> {
    strict(
        value,
        "disaggregated.cluster.doris.com/v1",
        "DorisDisaggregatedCluster",
        "apiVersion disaggregated.cluster.doris.com/v1 and kind DorisDisaggregatedCluster",
    )
}

fn strict<K: DeserializeOwned>(
    value: Value,
    want_api_version: &str,
    want_kind: &str,
    expected: &'static str,
) -> Result<K, CrdError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != want_api_version || kind != want_kind {
        return Err(CrdError::WrongKind {
            expected,
            api_version,
            kind,
        });
    }
    let mut unknown = Vec::new();
    let mut note =
        |path: serde_ignored::Path<'_>| unknown.push(crate::plan::objects::field_path(&path));
    let decoded = serde_path_to_error::deserialize::<_, K>(serde_ignored::Deserializer::new(
        &value, &mut note,
    ));
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
    let old = old.map(|o| strip_nulls(o.clone()));
    admit(&SCHEMA, strip_nulls(value.clone()), old)
}

/// What the API server refuses when a disaggregated cluster is created
/// (`old` is `None`) or updated from `old`, as [`admission`].
pub fn disaggregated_admission(value: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let value = strip_nulls(value.clone());
    let old = old.map(|o| pair_compute_groups(&value, strip_nulls(o.clone())));
    admit(&DISAGGREGATED_SCHEMA, value, old)
}

/// `old` with its compute groups in the order of those of `value`, a new
/// group facing a placeholder whose uniqueId no group can have. The API
/// server pairs a compute group with its old self by uniqueId (the list is
/// keyed by it); the evaluator here pairs list items by position.
fn pair_compute_groups(value: &Value, mut old: Value) -> Value {
    let groups = |v: &Value| {
        v.pointer("/spec/computeGroups")
            .and_then(Value::as_array)
            .cloned()
    };
    let (Some(new_groups), Some(old_groups)) = (groups(value), groups(&old)) else {
        return old;
    };
    let paired: Vec<Value> = new_groups
        .iter()
        .map(|group| {
            old_groups
                .iter()
                .find(|o| o.get("uniqueId") == group.get("uniqueId"))
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"uniqueId": "-"}))
        })
        .collect();
    if let Some(slot) = old.pointer_mut("/spec/computeGroups") {
        *slot = Value::Array(paired);
    }
    old
}

fn admit(schema: &Value, value: Value, old: Option<Value>) -> Vec<FieldError> {
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

/// The DorisCluster CRD's `openAPIV3Schema`.
static SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| openapi_schema(super::crd()));

/// The DorisDisaggregatedCluster CRD's `openAPIV3Schema`.
static DISAGGREGATED_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| openapi_schema(super::disaggregated::crd()));

fn openapi_schema(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema"),
    )
    .expect("the schema serializes")
}

/// The value checks of an OpenAPI schema that the types do not make:
/// `required`, `minimum`, `maximum`, `maxLength`, `maxItems`,
/// `maxProperties` and `pattern`, with messages like the API server's.
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
            // The API server resets the status a create or update sends.
            let in_status = path == "status" || path.starts_with("status.");
            let required = schema.get("required").and_then(Value::as_array);
            for key in required.into_iter().flatten().filter_map(Value::as_str) {
                if !in_status && !fields.contains_key(key) {
                    errors.push(FieldError {
                        path: if path.is_empty() {
                            key.to_string()
                        } else {
                            format!("{path}.{key}")
                        },
                        message: "Required value".into(),
                    });
                }
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
        if let Err(message) = super::names::image_reference(&base.image) {
            fail(format!("{at}.image"), message);
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
    super::names::check_metadata(&cluster.metadata, &mut errors);
    errors
}

/// Every rule a disaggregated cluster breaks that its CRD does not check.
pub fn validate_disaggregated(cluster: &DorisDisaggregatedCluster) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |path: String, message: String| errors.push(FieldError { path, message });
    if cluster.metadata.name.as_deref().unwrap_or("").is_empty() {
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
    let parts = [
        ("spec.metaService".to_string(), &spec.meta_service.common),
        ("spec.feSpec".to_string(), &spec.fe_spec.common),
    ];
    let groups = spec
        .compute_groups
        .iter()
        .enumerate()
        .map(|(i, g)| (format!("spec.computeGroups[{i}]"), &g.common));
    for (at, common) in parts.into_iter().chain(groups) {
        if let Some(r) = common.replicas.filter(|r| *r < 0) {
            fail(
                format!("{at}.replicas"),
                format!("must be 0 or more, got {r}"),
            );
        }
        if let Some(Err(message)) = common.image.as_deref().map(super::names::image_reference) {
            fail(format!("{at}.image"), message);
        }
    }
    super::names::check_metadata(&cluster.metadata, &mut errors);
    // What the CRD's rules refuse at creation (uniqueId format and
    // uniqueness, fdb, FE replicas against electionNumber): an API server
    // that did not evaluate them let the cluster in, so it is said here.
    if let Ok(value) = serde_json::to_value(cluster) {
        for error in disaggregated_admission(&value, None) {
            if !errors.contains(&error) {
                errors.push(error);
            }
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
        for (bad, shown) in [
            ("\"\"", ""),
            ("1ABC", "1ABC"),
            ("A=B", "A=B"),
            ("\"A B\"", "A B"),
        ] {
            assert_refused(
                &format!(
                    "  feSpec:\n    image: fe\n    envVars:\n    - name: TZ\n    - name: {bad}\n"
                ),
                &format!(
                    "spec.feSpec.envVars[1].name: {shown:?} should match '^[-._a-zA-Z][-._a-zA-Z0-9]*$'"
                ),
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
        let secrets: String = (0..33)
            .map(|i| format!("    - {{secretName: s{i}, mountPath: /etc/s{i}}}\n"))
            .collect();
        assert_refused(
            &format!("  beSpec:\n    image: be\n    secrets:\n{secrets}"),
            "spec.beSpec.secrets: must have at most 32 items",
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

    // ------------------------------------------- DorisDisaggregatedCluster

    /// A disaggregated cluster named `name` with `spec` (YAML under `spec:`,
    /// indented by 2).
    fn ddc(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: disaggregated.cluster.doris.com/v1\nkind: DorisDisaggregatedCluster\nmetadata:\n  name: {name}\nspec:\n{spec}"
        )
    }

    const META: &str =
        "  metaService:\n    image: ms\n    fdb:\n      address: \"doris:abc@10.0.0.1:4500\"\n";

    fn ddc_errors(spec: &str) -> Vec<String> {
        ddc_errors_named("ddc", spec)
    }

    fn ddc_errors_named(name: &str, spec: &str) -> Vec<String> {
        match parse_disaggregated_cluster(&ddc(name, spec)) {
            Ok(_) => Vec::new(),
            Err(err) => err
                .into_field_errors()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }

    fn assert_ddc_refused(spec: &str, expected: &str) {
        let errors = ddc_errors(spec);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "expected `{expected}` for\n{spec}\ngot {errors:?}"
        );
    }

    fn groups(ids: &[&str]) -> String {
        let mut text = String::from("  computeGroups:\n");
        for id in ids {
            text.push_str(&format!(
                "  - uniqueId: {id}\n    image: be\n    replicas: 2\n"
            ));
        }
        text
    }

    #[test]
    fn a_good_disaggregated_cluster_passes() {
        let spec = format!(
            "{META}  feSpec:\n    image: fe\n    replicas: 3\n    electionNumber: 3\n{}",
            groups(&["cg1", "Cg_2", "etl_group_7"])
        );
        assert_eq!(ddc_errors(&spec), Vec::<String>::new());
        let cluster = parse_disaggregated_cluster(&ddc("ddc", &spec)).unwrap();
        assert_eq!(cluster.spec.compute_groups[1].object_name(), "cg-2");
        assert_eq!(cluster.spec.fe_spec.election_number(), 3);
        // fdb from the ConfigMap fdb-kubernetes-operator writes.
        let spec = format!(
            "  metaService:\n    fdb:\n      configMapNamespaceName: {{namespace: fdb, name: fdb-config}}\n{}",
            groups(&["cg1"])
        );
        assert_eq!(ddc_errors(&spec), Vec::<String>::new());
    }

    #[test]
    fn duplicate_unique_ids_are_refused() {
        assert_ddc_refused(
            &format!("{META}{}", groups(&["cg1", "cg2", "cg1"])),
            "spec.computeGroups: two compute groups have the same uniqueId",
        );
        // The same objects: <name>-cg1.
        let errors = ddc_errors(&format!("{META}{}", groups(&["cg1", "CG1"])));
        assert!(
            errors.iter().any(|e| e.starts_with(
                "spec.computeGroups: two compute groups have uniqueIds that differ only in case"
            )),
            "{errors:?}"
        );
        assert!(
            !errors.iter().any(|e| e.contains("the same uniqueId")),
            "{errors:?}"
        );
    }

    #[test]
    fn invalid_unique_ids_are_refused() {
        for bad in ["cg-1", "1cg", "cg__1", "cg_", "_cg", "\"\"", "\"cg 1\""] {
            assert_ddc_refused(
                &format!("{META}{}", groups(&["cg0", bad])),
                "spec.computeGroups[1].uniqueId: must start with a letter",
            );
        }
        assert_ddc_refused(
            &format!("{META}  computeGroups:\n  - image: be\n"),
            "spec.computeGroups[0]: missing field `uniqueId`",
        );
    }

    #[test]
    fn a_meta_service_needs_a_foundationdb() {
        let fdb = "spec.metaService.fdb: must give address";
        assert_ddc_refused(&groups(&["cg1"]), fdb);
        assert_ddc_refused("  metaService:\n    image: ms\n", fdb);
        assert_ddc_refused("  metaService:\n    fdb:\n      address: \"\"\n", fdb);
        assert_ddc_refused(
            "  metaService:\n    fdb:\n      configMapNamespaceName: {namespace: fdb}\n",
            fdb,
        );
    }

    #[test]
    fn fewer_fe_replicas_than_followers_are_refused() {
        assert_ddc_refused(
            &format!("{META}  feSpec:\n    replicas: 2\n    electionNumber: 3\n"),
            "spec.feSpec.replicas: must be at least electionNumber",
        );
        assert_ddc_refused(
            &format!("{META}  feSpec:\n    replicas: 0\n"),
            "spec.feSpec.replicas: must be at least electionNumber (unset means 1)",
        );
        assert_ddc_refused(
            &format!("{META}  feSpec:\n    electionNumber: 0\n"),
            "spec.feSpec.electionNumber: should be greater than or equal to 1",
        );
        assert_eq!(
            ddc_errors(&format!("{META}  feSpec:\n    replicas: 1\n")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_disaggregated_fields_are_named_by_path() {
        assert_ddc_refused(
            &format!("{META}{}    replica: 3\n", groups(&["cg1"])),
            "spec.computeGroups[0].replica: unknown field",
        );
        assert_ddc_refused(
            "  metaService:\n    fdb:\n      adress: x\n",
            "spec.metaService.fdb.adress: unknown field",
        );
        assert_ddc_refused(
            &format!(
                "{META}{}    persistentVolumes:\n    - persistentVolumeClaimSpec:\n        storageClass: ssd\n",
                groups(&["cg1"])
            ),
            "spec.computeGroups[0].persistentVolumes[0].persistentVolumeClaimSpec.storageClass: unknown field",
        );
        // DorisCluster's names are not this kind's.
        assert_ddc_refused(
            &format!("{META}  feSpec:\n    podLabels: {{a: b}}\n"),
            "spec.feSpec.podLabels: unknown field",
        );
        let err = parse_disaggregated_cluster(&format!("{HEAD}spec: {{}}\n")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "expected apiVersion disaggregated.cluster.doris.com/v1 and kind DorisDisaggregatedCluster, got doris.selectdb.com/v1 DorisCluster"
            ),
            "{err}"
        );
    }

    #[test]
    fn common_fields_are_checked_in_every_part() {
        let group = groups(&["cg1"]);
        assert_ddc_refused(
            &format!("{META}{group}    requests: {{cpu: lots}}\n"),
            "spec.computeGroups[0].requests.cpu: \"lots\" should match",
        );
        assert_ddc_refused(
            &format!(
                "{META}{group}    persistentVolumes:\n    - mountPaths: [/opt/cache, cache2]\n"
            ),
            "spec.computeGroups[0].persistentVolumes[0].mountPaths[1]: must be an absolute path",
        );
        assert_ddc_refused(
            &format!(
                "{META}{group}    configMaps:\n    - {{name: a, mountPath: /etc/doris}}\n    - {{name: b, mountPath: /etc/doris}}\n"
            ),
            "spec.computeGroups[0].configMaps: two entries have the same mountPath",
        );
        assert_ddc_refused(
            &format!("{META}  feSpec:\n    envVars:\n    - name: 1A\n"),
            "spec.feSpec.envVars[0].name: \"1A\" should match '^[-._a-zA-Z][-._a-zA-Z0-9]*$'",
        );
        assert_ddc_refused(
            &format!("{META}{group}    systemInitialization:\n      limits: {{memory: 1GB}}\n"),
            "spec.computeGroups[0].systemInitialization.limits.memory",
        );
        assert_ddc_refused(
            &format!(
                "{META}  feSpec:\n    service:\n      type: NodePort\n      portMaps: [{{nodePort: 31030, targetPort: 9030}}, {{nodePort: 31031, targetPort: 9030}}]\n"
            ),
            "spec.feSpec.service.portMaps: two entries have the same targetPort",
        );
        assert_ddc_refused(
            &format!("{META}  adminUser: {{name: admin, password: x}}\n"),
            "spec.adminUser.name: must not be `admin`",
        );
    }

    #[test]
    fn names_leave_room_for_compute_group_objects() {
        use crate::crd::schema::{MAX_DISAGGREGATED_NAME, MAX_NAME_AND_UNIQUE_ID};
        let longest = "d".repeat(MAX_DISAGGREGATED_NAME);
        assert_eq!(ddc_errors_named(&longest, META), Vec::<String>::new());
        assert!(
            ddc_errors_named(&format!("{longest}d"), META)
                .iter()
                .any(|e| e.starts_with("metadata.name must be at most 49 characters")),
        );
        // `<name>-<uniqueId>` is 52 characters at most.
        let name = "d".repeat(20);
        let id = "c".repeat(MAX_NAME_AND_UNIQUE_ID - 20);
        let spec = format!("{META}{}", groups(&[&id]));
        assert_eq!(ddc_errors_named(&name, &spec), Vec::<String>::new());
        let spec = format!("{META}{}", groups(&[&format!("{id}c")]));
        let refused = ddc_errors_named(&name, &spec);
        assert!(
            refused.iter().any(|e| e.starts_with(
                "metadata.name and each spec.computeGroups[].uniqueId must together be at most 51"
            )),
            "{refused:?}"
        );
    }

    /// A disaggregated cluster as JSON, with `groups` as its computeGroups.
    fn ddc_json(fe: Value, groups: Value) -> Value {
        serde_json::json!({
            "apiVersion": "disaggregated.cluster.doris.com/v1",
            "kind": "DorisDisaggregatedCluster",
            "metadata": {"name": "ddc"},
            "spec": {
                "metaService": {"fdb": {"address": "doris:abc@10.0.0.1:4500"}},
                "feSpec": fe,
                "computeGroups": groups
            }
        })
    }

    fn update_errors(new: &Value, old: &Value) -> Vec<String> {
        disaggregated_admission(new, Some(old))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_cluster_the_api_server_let_in_is_checked_against_the_crd_rules() {
        // Read tolerantly, as the operator reads what the API server stored.
        let cluster: DorisDisaggregatedCluster = serde_json::from_value(ddc_json(
            serde_json::json!({"replicas": 1}),
            serde_json::json!([{"uniqueId": "cg1"}, {"uniqueId": "cg1"}, {"uniqueId": "1bad"}]),
        ))
        .unwrap();
        let errors: Vec<String> = validate_disaggregated(&cluster)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.computeGroups: two compute groups have the same")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.computeGroups[2].uniqueId:")),
            "{errors:?}"
        );
    }

    #[test]
    fn election_number_is_fixed_once_the_disaggregated_cluster_exists() {
        let fe = |e: Option<i32>| match e {
            Some(e) => serde_json::json!({"replicas": 3, "electionNumber": e}),
            None => serde_json::json!({"replicas": 3}),
        };
        let at = |e| ddc_json(fe(e), serde_json::json!([]));
        assert!(disaggregated_admission(&at(Some(3)), None).is_empty());
        assert_eq!(update_errors(&at(Some(1)), &at(None)), Vec::<String>::new());
        for (new, old) in [(Some(3), None), (None, Some(3)), (Some(2), Some(3))] {
            let errors = update_errors(&at(new), &at(old));
            assert!(
                errors.iter().any(|e| e.starts_with(
                    "spec.feSpec.electionNumber: cannot change on an existing cluster"
                )),
                "{new:?} from {old:?}: {errors:?}"
            );
        }
    }

    fn volume(paths: &[&str], class: &str, storage: Value) -> Value {
        serde_json::json!({
            "mountPaths": paths,
            "persistentVolumeClaimSpec": {
                "storageClassName": class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": storage}}
            }
        })
    }

    fn group(id: &str, volumes: Value) -> Value {
        serde_json::json!({"uniqueId": id, "image": "be", "persistentVolumes": volumes})
    }

    #[test]
    fn compute_group_volumes_are_fixed_but_for_their_size() {
        let fe = serde_json::json!({});
        let with = |cache: Value| {
            ddc_json(
                fe.clone(),
                serde_json::json!([
                    group(
                        "cg1",
                        serde_json::json!([volume(&[], "ssd", "100Gi".into())])
                    ),
                    group("cg2", serde_json::json!([cache]))
                ]),
            )
        };
        let old = with(volume(&["/opt/cache"], "ssd", "500Gi".into()));
        // The size may change (the operator grows claims and reports a
        // shrink); an integer quantity is bytes.
        let sizes: [Value; 3] = ["1Ti".into(), "100Gi".into(), 600_000_000_000u64.into()];
        for size in sizes {
            let resized = with(volume(&["/opt/cache"], "ssd", size.clone()));
            assert_eq!(
                update_errors(&resized, &old),
                Vec::<String>::new(),
                "{size}"
            );
        }
        let at = "spec.computeGroups[1].persistentVolumes: ";
        let cases = [
            (
                volume(&["/opt/cache"], "hdd", "500Gi".into()),
                "cannot change on an existing part",
            ),
            (
                volume(&["/opt/cache2"], "ssd", "500Gi".into()),
                "cannot change on an existing part",
            ),
            (
                volume(&["/opt/cache", "/opt/more"], "ssd", "500Gi".into()),
                "cannot change on an existing part",
            ),
        ];
        for (changed, message) in cases {
            let errors = update_errors(&with(changed.clone()), &old);
            assert!(
                errors
                    .iter()
                    .any(|e| *e == format!("{at}{message}")
                        || e.starts_with(&format!("{at}{message}"))),
                "{changed}: {errors:?}"
            );
        }
        // One more volume.
        let more = ddc_json(
            fe.clone(),
            serde_json::json!([
                group(
                    "cg1",
                    serde_json::json!([volume(&[], "ssd", "100Gi".into())])
                ),
                group(
                    "cg2",
                    serde_json::json!([
                        volume(&["/opt/cache"], "ssd", "500Gi".into()),
                        volume(&["/opt/more"], "ssd", "500Gi".into())
                    ])
                )
            ]),
        );
        let errors = update_errors(&more, &old);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "spec.computeGroups[1].persistentVolumes: the number of entries cannot change on an existing part"
            )),
            "{errors:?}"
        );
        // The other group, unchanged, is fine; so is a new group and a
        // reordered list (groups are matched by uniqueId).
        let reordered = ddc_json(
            fe.clone(),
            serde_json::json!([
                group(
                    "cg0",
                    serde_json::json!([volume(&["/opt/cache"], "hdd", "1Gi".into())])
                ),
                group(
                    "cg2",
                    serde_json::json!([volume(&["/opt/cache"], "ssd", "500Gi".into())])
                ),
                group(
                    "cg1",
                    serde_json::json!([volume(&[], "ssd", "100Gi".into())])
                )
            ]),
        );
        assert_eq!(update_errors(&reordered, &old), Vec::<String>::new());
        let changed_and_moved = ddc_json(
            fe,
            serde_json::json!([
                group(
                    "cg2",
                    serde_json::json!([volume(&["/opt/cache"], "ssd", "500Gi".into())])
                ),
                group(
                    "cg1",
                    serde_json::json!([volume(&[], "hdd", "100Gi".into())])
                )
            ]),
        );
        let errors = update_errors(&changed_and_moved, &old);
        assert_eq!(errors.len(), 1, "only cg1 changed, now second: {errors:?}");
        assert!(
            errors[0].starts_with(
                "spec.computeGroups[1].persistentVolumes: cannot change on an existing part"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn fe_and_meta_service_volumes_are_fixed_but_for_their_size() {
        let fe = |class: &str, size: &str| serde_json::json!({"persistentVolumes": [volume(&[], class, size.into())]});
        let old = ddc_json(fe("ssd", "100Gi"), serde_json::json!([]));
        assert_eq!(
            update_errors(&ddc_json(fe("ssd", "200Gi"), serde_json::json!([])), &old),
            Vec::<String>::new()
        );
        let errors = update_errors(&ddc_json(fe("hdd", "100Gi"), serde_json::json!([])), &old);
        assert!(
            errors.iter().any(|e| e
                .starts_with("spec.feSpec.persistentVolumes: cannot change on an existing part")),
            "{errors:?}"
        );
        let mut with_meta_volume = old.clone();
        with_meta_volume["spec"]["metaService"]["persistentVolume"] =
            volume(&[], "ssd", "10Gi".into());
        let errors = update_errors(&with_meta_volume, &old);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "spec.metaService.persistentVolume: cannot change on an existing part"
            )),
            "{errors:?}"
        );
    }

    #[test]
    fn compute_group_log_volume_and_deprecated_volume_are_fixed() {
        let fe = serde_json::json!({});
        let with = |g: Value| ddc_json(fe.clone(), serde_json::json!([g]));
        let mut stored = group(
            "cg1",
            serde_json::json!([volume(&[], "ssd", "100Gi".into())]),
        );
        let old = with(stored.clone());
        stored["logNotStore"] = true.into();
        let errors = update_errors(&with(stored), &old);
        assert!(
            errors.iter().any(|e| e.starts_with(
                "spec.computeGroups[0].logNotStore: cannot change on an existing part"
            )),
            "{errors:?}"
        );
        // Without volumes the logs are on the pod's disk either way.
        let bare = serde_json::json!({"uniqueId": "cg1", "image": "be"});
        let mut no_log = bare.clone();
        no_log["logNotStore"] = true.into();
        assert_eq!(
            update_errors(&with(no_log), &with(bare.clone())),
            Vec::<String>::new()
        );
        let single = |size: &str| {
            let mut g = bare.clone();
            g["persistentVolume"] = volume(&[], "ssd", size.into());
            g
        };
        assert_eq!(
            update_errors(&with(single("2Ti")), &with(single("1Ti"))),
            Vec::<String>::new()
        );
        let mut other_class = single("1Ti");
        other_class["persistentVolume"]["persistentVolumeClaimSpec"]["storageClassName"] =
            "hdd".into();
        for (new, old) in [
            (other_class, single("1Ti")),
            (bare.clone(), single("1Ti")),
            (single("1Ti"), bare),
        ] {
            let errors = update_errors(&with(new), &with(old));
            assert!(
                errors.iter().any(|e| e.starts_with(
                    "spec.computeGroups[0].persistentVolume: cannot change on an existing part"
                )),
                "{errors:?}"
            );
        }
    }
}
