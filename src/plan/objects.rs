//! Checks the objects policies and templates produce, and finishes them.
//!
//! A policy builds objects as plain maps, so a typo or a wrong type would
//! otherwise reach the API server as a confusing rejection, or be dropped
//! silently. Each object of a kind this crate knows is read into its
//! Kubernetes type: a wrong type names the field path, and so does a field
//! the type does not have.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Checks one object and returns it in canonical form, or a message naming
/// the object and the offending field.
pub fn check(value: Value) -> Result<Value, String> {
    let value = strip_nulls(value);
    let Value::Object(map) = &value else {
        return Err(format!(
            "expected an object (a map), got {}",
            type_name(&value)
        ));
    };
    let field = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(format!(
            "object without apiVersion, kind and metadata.name: {}",
            truncate(&value.to_string(), 160)
        ));
    }
    let label = format!("{kind} {name:?}");
    let checked = match (api_version, kind) {
        ("apps/v1", "StatefulSet") => validate_as::<StatefulSet>(&value),
        ("v1", "Service") => validate_as::<Service>(&value),
        ("v1", "ConfigMap") => validate_as::<ConfigMap>(&value),
        ("v1", "Secret") => validate_as::<Secret>(&value),
        ("v1", "PersistentVolumeClaim") => validate_as::<PersistentVolumeClaim>(&value),
        ("policy/v1", "PodDisruptionBudget") => validate_as::<PodDisruptionBudget>(&value),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            validate_as::<HorizontalPodAutoscaler>(&value)
        }
        // Other kinds (a ServiceMonitor, say) are passed on as written
        // when the API server serves them; otherwise a typo (`Servce`)
        // would only show as the API server's refusal.
        _ if is_served(api_version, kind) => Ok(()),
        _ => Err(format!(
            "{UNSERVED_KIND} ({api_version} {kind}): the operator can check {} \
             and passes on other kinds only when the API server serves them. A typo? \
             (Offline, name a served kind with --api-resources {api_version}/{kind}.)",
            CHECKED_KINDS.join(", ")
        )),
    };
    checked.map_err(|e| format!("{label}: {e}"))?;
    if kind == "ConfigMap" {
        let size = config_map_size(&value);
        if size > MAX_CONFIG_MAP_BYTES {
            return Err(format!(
                "{label}: its data comes to {size} bytes, more than the {MAX_CONFIG_MAP_BYTES} \
                 bytes (1 MiB) a ConfigMap may hold"
            ));
        }
    }
    Ok(value)
}

/// The most data (and binaryData) one ConfigMap may hold, in bytes: the API
/// server refuses more.
pub const MAX_CONFIG_MAP_BYTES: usize = 1 << 20;

/// The bytes of a ConfigMap's values, as the API server counts them
/// (binaryData decoded from its base64).
fn config_map_size(value: &Value) -> usize {
    let sum = |part: &str, len: fn(&str) -> usize| -> usize {
        value
            .get(part)
            .and_then(Value::as_object)
            .map_or(0, |data| {
                data.values().map(|v| v.as_str().map_or(0, len)).sum()
            })
    };
    sum("data", str::len)
        + sum("binaryData", |b64| {
            (b64.len() / 4 * 3).saturating_sub(b64.bytes().rev().take_while(|b| *b == b'=').count())
        })
}

/// Checks one container (an init container from `host_init.rhai`) against
/// the Kubernetes Container type.
pub fn check_container(value: Value) -> Result<Value, String> {
    let value = strip_nulls(value);
    if !value.is_object() {
        return Err(format!(
            "expected a container (a map), got {}",
            type_name(&value)
        ));
    }
    validate_as::<Container>(&value)?;
    Ok(value)
}

/// The kinds [`check`] reads into their Kubernetes type.
pub const CHECKED_KINDS: &[&str] = &[
    "apps/v1 StatefulSet",
    "v1 Service",
    "v1 ConfigMap",
    "v1 Secret",
    "v1 PersistentVolumeClaim",
    "policy/v1 PodDisruptionBudget",
    "autoscaling/v2 HorizontalPodAutoscaler",
];

/// How an object of a kind neither checked nor served is refused; a
/// caller that can ask the API server what it serves looks for it.
pub const UNSERVED_KIND: &str = "a kind the operator cannot check";

static SERVED: std::sync::RwLock<std::collections::BTreeSet<(String, String)>> =
    std::sync::RwLock::new(std::collections::BTreeSet::new());

/// Records kinds the API server serves, as (apiVersion, kind): objects of
/// these kinds are passed on as written.
pub fn serve_kinds(kinds: impl IntoIterator<Item = (String, String)>) {
    let mut served = SERVED.write().unwrap_or_else(|e| e.into_inner());
    served.extend(kinds);
}

fn is_served(api_version: &str, kind: &str) -> bool {
    SERVED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&(api_version.to_string(), kind.to_string()))
}

/// What policies and templates learn of the API server, as `ctx.api`:
/// whether it serves the Prometheus operator's kinds, so a template makes
/// monitoring objects only where something reads them. A plan depends on
/// it, so the operator's plan memo does too.
pub fn api_context() -> Value {
    json!({
        "service_monitor": is_served("monitoring.coreos.com/v1", "ServiceMonitor"),
        "pod_monitor": is_served("monitoring.coreos.com/v1", "PodMonitor"),
    })
}

/// Reads `GROUP/VERSION/KIND` (or `VERSION/KIND` for the core group), as
/// `--api-resources` takes it, into (apiVersion, kind).
pub fn parse_api_resource(text: &str) -> Result<(String, String), String> {
    match text.rsplit_once('/') {
        Some((api_version, kind)) if !api_version.is_empty() && !kind.is_empty() => {
            Ok((api_version.to_string(), kind.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not GROUP/VERSION/KIND (monitoring.coreos.com/v1/ServiceMonitor)"
        )),
    }
}

/// Puts an object in the cluster's namespace and under its ownership, marks
/// it as the operator's, and stamps it with the hash of its content.
pub fn finish(object: &mut Value, namespace: &str, owner: Option<&Value>) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    meta.insert("namespace".into(), json!(namespace));
    if let Some(owner) = owner {
        meta.insert("ownerReferences".into(), json!([owner]));
    }
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(MANAGED_BY_LABEL.0.into(), json!(MANAGED_BY_LABEL.1));
    }
    restamp(object);
}

/// Stamps an object with the hash of its content, replacing any earlier
/// stamp: after a change to a planned object, so it is written.
pub fn restamp(object: &mut Value) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(APPLIED_HASH_ANNOTATION);
        if annotations.is_empty() {
            // As before the first stamp, so a restamp of unchanged content
            // gives the same hash.
            meta.remove("annotations");
        }
    }
    // serde_json maps are ordered by key, so the text, and the hash, are stable.
    let hash = content_hash(&object.to_string());
    let meta = object["metadata"].as_object_mut().expect("checked above");
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(APPLIED_HASH_ANNOTATION.into(), json!(hash));
    }
}

/// Finds the StatefulSets a planned HorizontalPodAutoscaler scales and
/// returns them with the replicas they are created with: their planned
/// `replicas`, else the autoscaler's `minReplicas`, else 1. Their content
/// hash leaves `replicas` out, so a change of it alone writes nothing: the
/// autoscaler owns the count once the StatefulSet exists.
pub fn hand_replicas_to_autoscalers(
    objects: &mut [Value],
) -> std::collections::BTreeMap<String, i32> {
    let targets: Vec<(String, Option<i64>)> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "HorizontalPodAutoscaler"
                && o["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("autoscaling/"))
                && o["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
        })
        .filter_map(|o| {
            let name = o["spec"]["scaleTargetRef"]["name"].as_str()?.to_string();
            Some((name, o["spec"]["minReplicas"].as_i64()))
        })
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for (name, min) in targets {
        let Some(sts) = objects
            .iter_mut()
            .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == name.as_str())
        else {
            continue;
        };
        let Some(spec) = sts.get_mut("spec").and_then(Value::as_object_mut) else {
            continue;
        };
        let planned = spec.remove("replicas").and_then(|r| r.as_i64());
        let initial = planned.or(min).unwrap_or(1).max(1);
        let initial = i32::try_from(initial).unwrap_or(i32::MAX);
        restamp(sts);
        sts["spec"]["replicas"] = json!(initial);
        out.insert(name, initial);
    }
    out
}

/// The annotation holding the hash of an object's planned content: the
/// operator writes an object only when its live copy has another hash.
pub const APPLIED_HASH_ANNOTATION: &str = "doris.selectdb.com/applied-hash";

/// The label on every object the operator manages; its caches select by it.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "doris-operator");

pub(crate) fn content_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads `value` as `T`: a wrong type is reported with its path, and so is
/// a field `T` does not have (serde would otherwise drop it silently).
fn validate_as<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    let mut unknown = None;
    let result: Result<T, _> = serde_ignored::deserialize(value, |path| {
        if unknown.is_none() {
            unknown = Some(field_path(&path));
        }
    });
    match (result, unknown) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(path)) => Err(format!("unknown field `{path}`")),
        // Read it again, tracking the path, only to say where it failed.
        (Err(e), _) => Err(match serde_path_to_error::deserialize::<_, T>(value) {
            Err(tracked) if tracked.path().to_string() != "." => {
                format!("{}: {}", tracked.path(), tracked.inner())
            }
            _ => e.to_string(),
        }),
    }
}

/// `spec.ports[0].targetPort`, from serde_ignored's path.
pub(crate) fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Drops null map entries, which is how a policy leaves a field out.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "() (nothing)",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_path() {
        let err = check(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "x"},
            "spec": {"replicas": "three", "selector": {}, "serviceName": "s", "template": {}}
        }))
        .unwrap_err();
        assert!(err.contains("StatefulSet \"x\": spec.replicas"), "{err}");
    }

    #[test]
    fn unknown_field_is_reported() {
        let err = check(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "x"},
            "spec": {"ports": [{"port": 80, "targetPrt": 81}]}
        }))
        .unwrap_err();
        assert_eq!(
            err,
            "Service \"x\": unknown field `spec.ports[0].targetPrt`"
        );
    }

    #[test]
    fn nulls_are_dropped_and_quantities_kept() {
        let v = check(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": null},
            "data": {"a": "b"}
        }))
        .unwrap();
        assert_eq!(v["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn a_config_map_holds_at_most_a_mebibyte() {
        let config_map = |data: Value, binary: Value| {
            check(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x"},
                "data": data, "binaryData": binary
            }))
        };
        let half = "a".repeat(MAX_CONFIG_MAP_BYTES / 2);
        assert!(config_map(json!({"a": half, "b": half}), json!({})).is_ok());
        let err = config_map(json!({"a": half, "b": format!("{half}!")}), json!({})).unwrap_err();
        assert_eq!(
            err,
            format!(
                "ConfigMap \"x\": its data comes to {} bytes, more than the {MAX_CONFIG_MAP_BYTES} \
                 bytes (1 MiB) a ConfigMap may hold",
                MAX_CONFIG_MAP_BYTES + 1
            )
        );
        // binaryData counts as decoded: "AAAA" is three bytes, "AA==" one.
        let data = json!({"a": "a".repeat(MAX_CONFIG_MAP_BYTES - 4)});
        assert!(config_map(data.clone(), json!({"b": "AAAA", "c": "AA=="})).is_ok());
        assert!(config_map(data, json!({"b": "AAAA", "c": "AAA="})).is_err());
    }

    #[test]
    fn object_without_identity_is_rejected() {
        assert!(
            check(json!({"kind": "Service"}))
                .unwrap_err()
                .contains("without apiVersion")
        );
        assert!(check(json!("text")).unwrap_err().contains("got a string"));
    }

    #[test]
    fn unknown_kinds_pass_only_when_served() {
        let v = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "m"}, "spec": {"anything": 1}});
        let err = check(v.clone()).unwrap_err();
        assert!(
            err.contains("Widget \"m\": a kind the operator cannot check"),
            "{err}"
        );
        assert!(
            err.contains("--api-resources example.com/v1/Widget"),
            "{err}"
        );
        serve_kinds([parse_api_resource("example.com/v1/Widget").unwrap()]);
        assert_eq!(check(v.clone()).unwrap(), v);
        let typo = json!({"apiVersion": "v1", "kind": "Servce", "metadata": {"name": "s"}});
        assert!(check(typo).unwrap_err().contains("Servce"));
    }
}
