//! Builds what each policy and template receives (the `ctx` map of the
//! policy contract, docs/src/conventions/contract.md) and runs them for one
//! component.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ComponentPlan, PlanInput};
use super::{mounts, objects};
use crate::cluster::{ClusterRef, Part};
use crate::conf::ConfFile;
use crate::conventions::contract::CONTRACT_VERSION;
use crate::conventions::{ConventionBundle, SourceError};
use crate::crd::ComponentKind;
use crate::crd::DorisDisaggregatedCluster;

/// Where the operator mounts a component's configuration (the Doris images'
/// entrypoints read it from `CONFIGMAP_MOUNT_PATH`).
pub const CONFIG_MOUNT_PATH: &str = "/etc/doris";

/// The fixed names of a component's objects. These are part of the API
/// (users and the peer operator's tooling address them), so they are not a
/// convention.
pub mod names {
    use crate::crd::ComponentKind;

    pub fn statefulset(cluster: &str, kind: ComponentKind) -> String {
        format!("{cluster}-{}", kind.as_str())
    }
    pub fn internal_service(cluster: &str, kind: ComponentKind) -> String {
        format!("{cluster}-{}-internal", kind.as_str())
    }
    pub fn access_service(cluster: &str, kind: ComponentKind) -> String {
        format!("{cluster}-{}-service", kind.as_str())
    }
    /// The ConfigMap holding the rendered configuration files.
    pub fn config_map(cluster: &str, kind: ComponentKind) -> String {
        format!("{cluster}-{}-conf", kind.as_str())
    }
    /// The pod selector labels of a component.
    pub fn selector(cluster: &str, kind: ComponentKind) -> [(&'static str, String); 2] {
        [
            (
                "app.doris.ownerreference/name",
                format!("{cluster}-{}", kind.as_str()),
            ),
            ("app.kubernetes.io/component", kind.as_str().to_string()),
        ]
    }
}

/// The configuration file each component reads.
pub fn conf_file_name(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Fe => "fe.conf",
        ComponentKind::Be | ComponentKind::Cn => "be.conf",
        ComponentKind::Broker => "apache_hdfs_broker.conf",
        ComponentKind::Ms => "doris_cloud.conf",
        ComponentKind::Cg => "be.conf",
    }
}

pub struct PlannedComponent {
    pub objects: Vec<Value>,
    pub plan: ComponentPlan,
}

/// Runs the conventions for each component of one cluster in turn.
pub struct Planner<'a> {
    bundle: &'a ConventionBundle,
    input: PlanInput<'a>,
    cluster: Value,
    owner: Option<Value>,
    fe_config: Value,
    /// The meta service's final configuration values (storage-compute
    /// separation), planned before the parts that reach it.
    ms_config: Value,
    /// `ctx.api`: what the API server serves that templates ask about.
    api: Value,
    missing: BTreeSet<String>,
    /// Secrets sharing a directory whose keys were not known.
    unchecked: BTreeSet<String>,
    /// Mounts the spec asks for that cannot be made.
    field_errors: Vec<crate::crd::FieldError>,
}

impl<'a> Planner<'a> {
    pub fn new(bundle: &'a ConventionBundle, input: PlanInput<'a>) -> Self {
        let meta = input.cluster.meta();
        let name = meta.name.clone().unwrap_or_default();
        let cluster = json!({
            "name": name,
            "namespace": meta.namespace.clone().unwrap_or_else(|| "default".into()),
            "labels": meta.labels.clone().unwrap_or_default(),
            "annotations": meta.annotations.clone().unwrap_or_default(),
            "spec": input.cluster.spec_json(),
        });
        // Without a uid (an offline render) there is nothing to own by.
        let owner = meta.uid.as_ref().map(|uid| {
            json!({
                "apiVersion": input.cluster.api_version(),
                "kind": input.cluster.kind(),
                "name": name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            })
        });
        Planner {
            bundle,
            input,
            cluster,
            owner,
            fe_config: json!({}),
            ms_config: json!({}),
            api: objects::api_context(),
            missing: BTreeSet::new(),
            unchecked: BTreeSet::new(),
            field_errors: Vec::new(),
        }
    }

    pub fn missing_config_maps(&self) -> Vec<String> {
        self.missing.iter().cloned().collect()
    }

    /// Secrets mounted in a directory with other files whose keys were not
    /// known, so a file name they share could not be checked.
    pub fn unchecked_secrets(&self) -> Vec<String> {
        self.unchecked.iter().cloned().collect()
    }

    /// What the spec asks that cannot be mounted, by field.
    pub fn field_errors(&self) -> &[crate::crd::FieldError] {
        &self.field_errors
    }

    /// What the parts of a storage-compute separated cluster need to reach
    /// each other (`ctx.disaggregated`). A FoundationDB ConfigMap the spec
    /// names and that was not supplied is listed as missing.
    fn disaggregated(&mut self, cluster: &DorisDisaggregatedCluster, part: &Part<'_>) -> Value {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let namespace = cluster
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let fdb = crate::cluster::fdb_endpoint(cluster, self.input.config_maps);
        if fdb.is_none() {
            for (ns, cm) in self.input.cluster.external_config_maps() {
                self.missing.insert(if ns == namespace {
                    cm
                } else {
                    format!("{ns}/{cm}")
                });
            }
        }
        let port = |conf: &Value, key: &str, default: u64| {
            conf[key]
                .as_str()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let ms_port = port(&self.ms_config, "brpc_listen_port", 5000);
        let unique_id = cluster
            .spec
            .compute_groups
            .iter()
            .find(|g| g.object_name() == part.name)
            .map(|g| g.unique_id.clone());
        json!({
            "fdb_endpoint": fdb,
            "ms_endpoint": format!("{name}-ms.{namespace}:{ms_port}"),
            "cluster_id": crate::crd::disaggregated::cluster_id(&namespace, &name).to_string(),
            "fe_address": format!("{name}-fe.{namespace}"),
            "fe_query_port": port(&self.fe_config, "query_port", 9030),
            "compute_group_name": unique_id.as_deref().map(crate::crd::disaggregated::compute_group_name),
            "unique_id": unique_id,
        })
    }

    /// Plans one part; `None` when its configuration file is refused (the
    /// reasons are in [`Planner::field_errors`]).
    pub fn component(&mut self, part: &Part<'_>) -> Result<Option<PlannedComponent>, SourceError> {
        let kind = part.kind;
        let base: &crate::crd::BaseSpec = &part.base;
        let spec = part.spec.clone();
        let cluster_name = self.cluster["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = self.cluster["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let conf_file = conf_file_name(kind);

        // 1. The user's files: the ConfigMap mounted where Doris reads its
        // configuration, if any.
        let source = primary_config_map(base);
        let mut user_files = BTreeMap::new();
        if let Some(name) = &source {
            match self.input.config_maps.get(name) {
                Some(data) => user_files = data.clone(),
                None => {
                    self.missing.insert(name.clone());
                }
            }
        }
        let user_conf = ConfFile::parse(user_files.get(conf_file).map_or("", String::as_str));
        let user_values = user_conf.lookup_map();
        let mounts = mounts::mounts(
            base,
            source.as_deref(),
            &part.names.config_map,
            CONFIG_MOUNT_PATH,
        );

        let mut ctx_json = json!({
            "contract": CONTRACT_VERSION,
            "kind": self.input.cluster.kind(),
            "cluster": self.cluster,
            "component": kind.as_str(),
            "part": part.name,
            "spec": spec,
            "names": {
                "statefulset": part.names.statefulset,
                "internal_service": part.names.internal_service,
                "access_service": part.names.access_service,
                "config_map": part.names.config_map,
                "fe_access_service": names::access_service(&cluster_name, ComponentKind::Fe),
                "fe_internal_service": names::internal_service(&cluster_name, ComponentKind::Fe),
            },
            "selector": part.names.selector,
            "config": {
                "file": conf_file,
                "source": source,
                "mount_path": CONFIG_MOUNT_PATH,
                "user": user_values,
            },
            "fe_config": self.fe_config,
            "mounts": mounts,
            "pod_security": self.input.pod_security.as_str(),
            "api": self.api,
        });
        if let ClusterRef::Disaggregated(cluster) = self.input.cluster {
            ctx_json["names"]["ms_service"] = json!(format!("{cluster_name}-ms"));
            ctx_json["names"]["fe_access_service"] = json!(format!("{cluster_name}-fe"));
            ctx_json["disaggregated"] = self.disaggregated(cluster, part);
        }
        // Policies and templates share one ctx, converted once and grown as
        // each step adds what it decided.
        let mut ctx = dynamic(&ctx_json);

        // 2. Configuration: defaults and overrides from the policy, rendered
        // by the component's template.
        let decided = self.bundle.call_policy("config.rhai", "config", &ctx)?;
        let mut conf = user_conf;
        apply_conf_policy(&mut conf, &decided)
            .map_err(|m| SourceError::new(self.bundle.origin("config.rhai"), m))?;
        let template = match kind {
            ComponentKind::Cn => "cn.conf.j2".to_string(),
            _ => format!("{conf_file}.j2"),
        };
        let rendered = self.bundle.render_template(
            &template,
            &minijinja::Value::from(minijinja::value::Serde(json!({
                "contract": CONTRACT_VERSION,
                "cluster": ctx_json["cluster"],
                "component": kind.as_str(),
                "file": conf_file,
                "source": ctx_json["config"]["source"],
                "entries": conf.entries(),
            }))),
        )?;
        let final_conf = ConfFile::parse(&rendered).lookup_map();
        let refused = super::conf_checks::errors(
            kind,
            source.as_deref(),
            conf_file,
            &user_values,
            &final_conf,
        )
        .map_err(|m| {
            let what = format!("the {conf_file} of {} it decides: {m}", part.name);
            SourceError::new(self.bundle.origin("config.rhai"), what)
        })?;
        if !refused.is_empty() {
            // The objects would carry what Doris or the API server refuses.
            self.field_errors.extend(refused);
            return Ok(None);
        }
        let mut files = user_files;
        files.insert(conf_file.to_string(), rendered);
        let (errors, unchecked) = mounts::check(
            &part.field,
            &mounts,
            &files.keys().cloned().collect(),
            &mounts::Known {
                config_maps: self.input.config_maps,
                secrets: self.input.secret_keys,
            },
        );
        let disaggregated = matches!(self.input.cluster, ClusterRef::Disaggregated(_));
        self.field_errors.extend(errors.into_iter().map(|mut e| {
            if disaggregated {
                // A DorisDisaggregatedCluster lists ConfigMaps as configMaps[].
                e.path = e.path.replace(".configMapInfo.configMaps[", ".configMaps[");
            }
            e
        }));
        self.unchecked.extend(unchecked);
        let total: usize = files.values().map(String::len).sum();
        if total > objects::MAX_CONFIG_MAP_BYTES {
            let file = match &source {
                Some(name) => format!("ConfigMap {name}, {conf_file}"),
                None => self.bundle.origin(&template),
            };
            return Err(SourceError::new(
                file,
                format!(
                    "with {conf_file} as rendered, the configuration files come to {total} bytes, \
                     {} more than ConfigMap {} that carries them to the pods may hold (1 MiB)",
                    total - objects::MAX_CONFIG_MAP_BYTES,
                    part.names.config_map
                ),
            ));
        }
        let config_hash = hash_files(&files);
        insert(&mut ctx, &["config", "values"], dynamic(&final_conf));
        insert(&mut ctx, &["config", "files"], dynamic(&files));
        insert(&mut ctx, &["config", "hash"], dynamic(&config_hash));
        if kind == ComponentKind::Fe {
            self.fe_config = json!(final_conf);
            insert(&mut ctx, &["fe_config"], dynamic(&final_conf));
        }
        if kind == ComponentKind::Ms {
            self.ms_config = json!(final_conf);
        }

        // 3. Host initialisation.
        let host_init = self
            .bundle
            .call_policy("host_init.rhai", "host_init", &ctx)?;
        let host_init_origin = self.bundle.origin("host_init.rhai");
        // An array of init containers, or a map of them with the pod's
        // sysctls.
        let (host_init, sysctls) = match host_init {
            Value::Object(mut map) => {
                let sysctls = map.remove("sysctls").unwrap_or(Value::Null);
                let containers = map.remove("init_containers").unwrap_or(Value::Null);
                if let Some(other) = map.keys().next() {
                    return Err(SourceError::new(
                        host_init_origin,
                        format!(
                            "fn host_init returned a map with {other:?}: it may hold \
                             init_containers and sysctls"
                        ),
                    ));
                }
                (containers, sysctls)
            }
            other => (other, Value::Null),
        };
        let sysctls = check_sysctls(sysctls).map_err(|m| {
            SourceError::new(
                host_init_origin.clone(),
                format!("fn host_init returned {m}"),
            )
        })?;
        let Value::Array(containers) = host_init else {
            return Err(SourceError::new(
                host_init_origin,
                format!(
                    "fn host_init must return an array of init containers, got {} (or a \
                     map of init_containers and sysctls)",
                    objects::type_name(&host_init)
                ),
            ));
        };
        // Checked here, so that a mistake is reported against the policy
        // that made it rather than the StatefulSet shape.rhai puts it in.
        let mut checked_init = Vec::with_capacity(containers.len());
        for (i, container) in containers.into_iter().enumerate() {
            let label = match container.get("name").and_then(Value::as_str) {
                Some(name) => format!("init container {} ({name:?})", i + 1),
                None => format!("init container {}", i + 1),
            };
            checked_init.push(objects::check_container(container).map_err(|m| {
                SourceError::new(
                    host_init_origin.clone(),
                    format!("fn host_init returned {label}: {m}"),
                )
            })?);
        }
        let host_init = Value::Array(checked_init);
        insert(&mut ctx, &["host_init"], dynamic(&host_init));
        insert(&mut ctx, &["host_sysctls"], dynamic(&sysctls));

        // 4. Shape: objects built by the policy, and values for templates.
        let shape_origin = self.bundle.origin("shape.rhai");
        let shape = self.bundle.call_policy("shape.rhai", "shape", &ctx)?;
        let (produced, values) = split_shape(shape)
            .map_err(|m| SourceError::new(shape_origin.clone(), format!("fn shape {m}")))?;
        // Each object with the file it came from, for errors.
        let mut out: Vec<(Value, String)> = Vec::new();
        for obj in produced {
            let checked = objects::check(obj).map_err(|m| {
                SourceError::new(shape_origin.clone(), format!("fn shape returned {m}"))
            })?;
            out.push((checked, shape_origin.clone()));
        }

        // 5. Manifest templates.
        insert(&mut ctx, &["values"], dynamic(&values));
        let tctx = minijinja::Value::from(minijinja::value::Serde(&ctx));
        for name in self.bundle.manifest_templates() {
            let origin = self.bundle.origin(name);
            let source = self.bundle.template_source(name).unwrap_or_default();
            let text = self
                .bundle
                .render_template(name, &tctx)
                .map_err(|e| explain_undefined_value(e, source, &values, &shape_origin))?;
            for (i, (first_line, doc)) in crate::conventions::split_documents(&text)
                .into_iter()
                .enumerate()
            {
                crate::crd::check_depth(doc).map_err(|deep| {
                    SourceError::new(
                        origin.clone(),
                        format!("rendered document {}: {deep}", i + 1),
                    )
                })?;
                let value: Value = serde_norway::from_str(doc)
                    .map_err(|e| yaml_error(&origin, source, &text, first_line, i + 1, &e))?;
                if value.is_null() {
                    continue;
                }
                let checked = objects::check(value).map_err(|m| {
                    SourceError::new(origin.clone(), format!("rendered document {}: {m}", i + 1))
                })?;
                out.push((checked, origin.clone()));
            }
        }

        // 6. Finish and order.
        for (obj, _) in &mut out {
            objects::finish(obj, &namespace, self.owner.as_ref());
        }
        out.sort_by_key(|(obj, _)| object_key(obj));
        if let Some(dup) = out
            .windows(2)
            .find(|w| object_key(&w[0].0) == object_key(&w[1].0))
        {
            let (_, kind, name) = object_key(&dup[0].0);
            let (first, second) = (&dup[0].1, &dup[1].1);
            // Name the file that is not shape.rhai when there is one: a
            // template added later is the likelier mistake.
            let (blamed, other) = if *first == shape_origin {
                (second, first)
            } else {
                (first, second)
            };
            let also = if blamed == other {
                "twice".to_string()
            } else {
                format!("and {other} also makes one")
            };
            return Err(SourceError::new(
                blamed.clone(),
                format!("makes a {kind} named {name:?} {also}: each object is made once"),
            ));
        }
        let out = out.into_iter().map(|(obj, _)| obj).collect();
        Ok(Some(PlannedComponent {
            objects: out,
            plan: ComponentPlan {
                kind,
                part: part.name.clone(),
                field: part.field.clone(),
                names: part.names.clone(),
                config_hash,
                files,
                inputs_hash: super::restart::inputs_hash(
                    &self.cluster,
                    &part.spec,
                    self.input.config_maps,
                ),
            },
        }))
    }
}

/// Plain data as a Rhai value. Plain data (maps, arrays, strings, numbers,
/// bools) always converts.
fn dynamic<T: serde::Serialize>(value: &T) -> rhai::Dynamic {
    rhai::serde::to_dynamic(value).expect("plain data converts to a Rhai value")
}

/// Sets `ctx.a.b… = value`; every map on the way exists.
fn insert(map: &mut rhai::Dynamic, path: &[&str], value: rhai::Dynamic) {
    let mut guard = map.write_lock::<rhai::Map>().expect("ctx is a map");
    match path {
        [last] => {
            guard.insert((*last).into(), value);
        }
        [first, rest @ ..] => insert(guard.get_mut(*first).expect("ctx path exists"), rest, value),
        [] => {}
    }
}

/// The ConfigMap mounted where Doris reads its configuration: `configMapName`,
/// else the first of `configMaps` mounted at the default path.
pub(super) fn primary_config_map(base: &crate::crd::BaseSpec) -> Option<String> {
    let info = base.config_map_info.as_ref()?;
    if let Some(name) = info.config_map_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(name.clone());
    }
    info.config_maps.iter().flatten().find_map(|m| {
        let path = m.mount_path.as_deref().unwrap_or("");
        let at_default = path.is_empty() || path.trim_end_matches('/') == CONFIG_MOUNT_PATH;
        m.config_map_name
            .clone()
            .filter(|n| at_default && !n.is_empty())
    })
}

/// Applies `#{ defaults: #{..}, overrides: #{..} }` from `config.rhai`:
/// defaults are added when the user's file lacks the key, overrides always
/// win; both are appended in key order after the user's own lines.
fn apply_conf_policy(conf: &mut ConfFile, decided: &Value) -> Result<(), String> {
    let Value::Object(map) = decided else {
        return Err(format!(
            "fn config must return a map #{{ defaults: #{{..}}, overrides: #{{..}} }}, got {}",
            objects::type_name(decided)
        ));
    };
    for (part, overriding) in [("defaults", false), ("overrides", true)] {
        match map.get(part) {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, value) in entries {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => value.to_string(),
                        Value::Null => continue,
                        other => {
                            return Err(format!(
                                "fn config: {part}.{key} must be a string, number or bool, got {}",
                                objects::type_name(other)
                            ));
                        }
                    };
                    if overriding || !conf.contains(key) {
                        conf.set(key, &text);
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "fn config: `{part}` must be a map, got {}",
                    objects::type_name(other)
                ));
            }
        }
    }
    if let Some(unknown) = map.keys().find(|k| *k != "defaults" && *k != "overrides") {
        return Err(format!(
            "fn config returned unknown key `{unknown}` (expected defaults, overrides)"
        ));
    }
    Ok(())
}

/// Splits `#{ objects: [..], values: #{..} }` returned by `fn shape`.
fn split_shape(shape: Value) -> Result<(Vec<Value>, Value), String> {
    let Value::Object(mut map) = shape else {
        return Err(format!(
            "must return a map #{{ objects: [..], values: #{{..}} }}, got {}",
            objects::type_name(&shape)
        ));
    };
    let objects = match map.remove("objects") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(format!(
                "returned `objects` as {}, expected an array",
                objects::type_name(&other)
            ));
        }
    };
    let values = match map.remove("values") {
        Some(v @ Value::Object(_)) => v,
        None | Some(Value::Null) => json!({}),
        Some(other) => {
            return Err(format!(
                "returned `values` as {}, expected a map",
                objects::type_name(&other)
            ));
        }
    };
    if let Some(unknown) = map.keys().next() {
        return Err(format!(
            "returned unknown key `{unknown}` (expected objects, values)"
        ));
    }
    Ok((objects, values))
}

/// A rendered document that is not YAML, located in the template: the
/// rendered line is matched against the template's lines (their text
/// outside `{{ }}`), and the rendered line is quoted as well.
fn yaml_error(
    origin: &str,
    template: &str,
    rendered: &str,
    first_line: usize,
    document: usize,
    err: &serde_norway::Error,
) -> SourceError {
    let Some(location) = err.location() else {
        return SourceError::new(
            origin,
            format!("rendered document {document} is not valid YAML: {err}"),
        );
    };
    let rendered_line = first_line + location.line() - 1;
    let text = rendered
        .lines()
        .nth(rendered_line - 1)
        .unwrap_or_default()
        .to_string();
    let reason = err.to_string();
    let reason = match reason.find(" at line ") {
        Some(i) => reason[..i].to_string(),
        None => reason,
    };
    let mut error = SourceError::new(
        origin,
        format!(
            "rendered document {document} is not valid YAML: {reason}, at rendered line \
             {rendered_line}: {:?}",
            text.trim_end()
        ),
    );
    if let Some(line) = template_line_of(template, &text) {
        error.line = Some(line);
        error.message.push_str(
            " (a value with `:` or `#` in it needs quotes: write `{{ value | tojson }}`)",
        );
    }
    error
}

/// The template line that rendered `text`: the only one whose literal
/// parts (outside `{{ }}`) appear in it, in order, from its start to its
/// end. `None` when none or several match.
fn template_line_of(template: &str, text: &str) -> Option<usize> {
    let text = text.trim();
    let mut found = None;
    for (i, line) in template.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("{%") || line.starts_with("{#") {
            continue;
        }
        let mut parts = Vec::new();
        let mut rest = line;
        while let Some(open) = rest.find("{{") {
            parts.push(&rest[..open]);
            match rest[open..].find("}}") {
                Some(close) => rest = &rest[open + close + 2..],
                None => {
                    rest = "";
                    break;
                }
            }
        }
        parts.push(rest);
        if literal_parts_match(&parts, text) {
            if found.is_some() {
                return None;
            }
            found = Some(i + 1);
        }
    }
    found
}

fn literal_parts_match(parts: &[&str], text: &str) -> bool {
    let [first, middle @ .., last] = parts else {
        return parts.first().is_some_and(|p| *p == text);
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// An undefined `values.x` in a manifest template is a value `fn shape`
/// did not return: say so.
fn explain_undefined_value(
    mut error: SourceError,
    template: &str,
    values: &Value,
    shape_origin: &str,
) -> SourceError {
    let (Some(line), Some(col)) = (error.line, error.col) else {
        return error;
    };
    let at = template
        .lines()
        .nth(line - 1)
        .and_then(|l| l.get(col - 1..))
        .unwrap_or_default();
    let Some(rest) = at.strip_prefix("values.") else {
        return error;
    };
    let key: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !key.is_empty() && values.get(&key).is_none() {
        error.message = format!(
            "{}: `values.{key}` is undefined: the manifest templates' values are what \
             fn shape in {shape_origin} returns under `values`, and it returned no `{key}`",
            error.message
        );
    }
    error
}

/// A short content hash of configuration files, by name.
pub fn hash_files(files: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Orders objects: ConfigMaps, then Services, then StatefulSets, then any
/// other kind, each by name.
fn object_key(obj: &Value) -> (u8, String, String) {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let rank = match kind {
        "ConfigMap" => 0,
        "Service" => 1,
        "StatefulSet" => 2,
        _ => 3,
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (rank, kind.to_string(), name)
}

/// The pod sysctls host_init.rhai asks for: `[#{ name, value }]` with string
/// values, or nothing.
fn check_sysctls(sysctls: Value) -> Result<Value, String> {
    let Value::Array(list) = sysctls else {
        return match sysctls {
            Value::Null => Ok(Value::Array(Vec::new())),
            other => Err(format!(
                "sysctls as {}: it must be an array of #{{ name, value }}",
                objects::type_name(&other)
            )),
        };
    };
    for (i, s) in list.iter().enumerate() {
        let text = |key: &str| s.get(key).and_then(Value::as_str).is_some();
        if !(text("name") && text("value")) {
            return Err(format!(
                "sysctls[{i}] = {s}: each must be #{{ name: \"...\", value: \"...\" }} (strings)"
            ));
        }
    }
    Ok(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_policy_defaults_do_not_override_user_values() {
        let mut conf = ConfFile::parse("http_port = 8031\n");
        apply_conf_policy(
            &mut conf,
            &json!({"defaults": {"http_port": 8030, "query_port": 9030},
                    "overrides": {"enable_fqdn_mode": true}}),
        )
        .unwrap();
        assert_eq!(
            conf.to_text(),
            "http_port = 8031\nquery_port = 9030\nenable_fqdn_mode = true\n"
        );
    }

    #[test]
    fn conf_policy_wrong_shapes_are_explained() {
        let mut conf = ConfFile::default();
        let err = apply_conf_policy(&mut conf, &json!("x")).unwrap_err();
        assert!(err.contains("must return a map"), "{err}");
        let err = apply_conf_policy(&mut conf, &json!({"defaults": {"a": [1]}})).unwrap_err();
        assert!(err.contains("defaults.a must be a string"), "{err}");
        let err = apply_conf_policy(&mut conf, &json!({"default": {}})).unwrap_err();
        assert!(err.contains("unknown key `default`"), "{err}");
    }

    #[test]
    fn documents_split_on_separator_lines() {
        let docs = crate::conventions::split_documents("---\na: 1\n---\n\n---\nb: 2\n");
        assert_eq!(docs, [(2, "a: 1\n"), (6, "b: 2\n")]);
    }

    #[test]
    fn a_rendered_line_is_found_in_its_template() {
        let template = "kind: Service\nmetadata:\n  name: {{ a }}-pdb\n  labels: {{ b }}\n";
        assert_eq!(template_line_of(template, "  name: x: y-pdb"), Some(3));
        assert_eq!(template_line_of(template, "  labels: {a: 1}"), Some(4));
        assert_eq!(template_line_of(template, "other"), None);
    }
}
