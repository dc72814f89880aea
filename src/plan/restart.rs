//! Restart ordering: which pods restart in which order and batches, and what
//! must hold before the next batch. `restart.rhai` decides; this module feeds
//! it the pods that need a restart and checks its answer, so a policy can
//! neither skip a pod nor restart one twice.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::ClusterRef;
use crate::conventions::contract::CONTRACT_VERSION;
use crate::conventions::{ConventionBundle, SourceError};
use crate::crd::ComponentKind;

/// A pod that needs a restart, as the restart policy sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCandidate {
    pub component: String,
    /// The part the pod belongs to (its StatefulSet); the component's name
    /// for a DorisCluster.
    pub part: String,
    pub pod: String,
    pub ordinal: i64,
    /// FE role when known: `master`, `follower` or `observer`.
    pub role: Option<String>,
    pub ready: bool,
}

/// One step of a rollout: these pods restart together, then the operator
/// waits for every condition in `wait_for` before the next step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartStep {
    pub component: String,
    pub pods: Vec<String>,
    /// Conditions to hold afterwards: `pod_ready`, `fe_reports_alive`.
    pub wait_for: Vec<String>,
    /// Seconds to wait after stopping query allocation to a BE or CN before
    /// it restarts.
    pub drain_seconds: i64,
}

/// The conditions a step may wait for.
pub const WAIT_CONDITIONS: &[&str] = &["pod_ready", "fe_reports_alive"];

/// A cluster as the policies called for a whole cluster see it:
/// `#{ kind, name, namespace, annotations, spec }` (a cluster without a
/// namespace, offline, is in `default`, as its parts are planned).
pub fn cluster_ctx(cluster: ClusterRef<'_>) -> Value {
    let meta = cluster.meta();
    json!({
        "kind": cluster.kind(),
        "name": meta.name,
        "namespace": meta.namespace.clone().unwrap_or_else(|| "default".into()),
        "annotations": meta.annotations.clone().unwrap_or_default(),
        "spec": cluster.spec_json(),
    })
}

/// The keys of a cluster's spec that hold its parts' specs.
const PART_KEYS: &[&str] = &[
    "feSpec",
    "beSpec",
    "cnSpec",
    "brokerSpec",
    "metaService",
    "computeGroups",
];

/// A hash of what the user wrote that shapes one part's pods: the part's
/// spec without `replicas`, the rest of the cluster's spec without the other
/// parts, the cluster's annotations but those steering the operator itself
/// (`doris.selectdb.com/*` other than `debug`, `kubectl.kubernetes.io/*`),
/// and the ConfigMaps the cluster references. `cluster` is
/// `#{ annotations, spec }` as the policies see it.
///
/// A pod remembers the hash its template was planned under; an outdated pod
/// whose hash is the current one was outdated by the conventions alone (an
/// edited policy or template, a new operator version), never by the user.
/// The hash may cover more than the pod template does (a Service setting):
/// such an edit then counts as the user's, and a held restart goes with it.
pub fn inputs_hash(
    cluster: &Value,
    part_spec: &Value,
    config_maps: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> String {
    let mut spec = cluster["spec"].clone();
    if let Some(map) = spec.as_object_mut() {
        for key in PART_KEYS {
            map.remove(*key);
        }
    }
    let mut part = part_spec.clone();
    if let Some(map) = part.as_object_mut() {
        map.remove("replicas");
    }
    let annotations: serde_json::Map<String, Value> = cluster["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !k.starts_with("kubectl.kubernetes.io/")
                && (!k.starts_with("doris.selectdb.com/") || *k == "doris.selectdb.com/debug")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let inputs = json!({
        "spec": spec,
        "part": part,
        "annotations": annotations,
        "configMaps": config_maps,
    });
    // serde_json maps are ordered by key: the same inputs give the same text.
    super::objects::content_hash(&inputs.to_string())
}

/// Asks `restart.rhai` for the order in which `candidates` restart.
pub fn plan_restart(
    bundle: &ConventionBundle,
    cluster: ClusterRef<'_>,
    reason: &str,
    candidates: &[RestartCandidate],
) -> Result<Vec<RestartStep>, SourceError> {
    let origin = bundle.origin("restart.rhai");
    let err = |m: String| SourceError::new(origin.clone(), m);
    let ctx = json!({
        "contract": CONTRACT_VERSION,
        "cluster": cluster_ctx(cluster),
        "reason": reason,
        "pods": candidates,
    });
    let value = bundle.call_json("restart.rhai", "restart_order", &ctx)?;
    let Value::Array(items) = value else {
        return Err(err(
            "fn restart_order must return an array of steps #{ pods: [..], wait_for: [..], drain_seconds: n }"
                .into(),
        ));
    };
    let component_of: HashMap<&str, &str> = candidates
        .iter()
        .map(|c| (c.pod.as_str(), c.part.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut steps = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let n = i + 1;
        let pods: Vec<String> = match item.get("pods") {
            Some(Value::Array(p)) => p
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| err(format!("step {n}: pods must be pod names (strings)")))?,
            _ => return Err(err(format!("step {n}: missing `pods` array"))),
        };
        if pods.is_empty() {
            continue;
        }
        let mut components = BTreeSet::new();
        for pod in &pods {
            let Some(component) = component_of.get(pod.as_str()) else {
                return Err(err(format!("step {n}: pod {pod} does not need a restart")));
            };
            if !seen.insert(pod.clone()) {
                return Err(err(format!("step {n}: pod {pod} is restarted twice")));
            }
            components.insert(*component);
        }
        if components.len() != 1 {
            return Err(err(format!(
                "step {n}: a step restarts pods of one component, got {}",
                components.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let wait_for: Vec<String> = match item.get("wait_for") {
            None | Some(Value::Null) => vec!["pod_ready".into()],
            Some(Value::Array(w)) => w
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect(),
            Some(_) => return Err(err(format!("step {n}: wait_for must be an array"))),
        };
        if let Some(bad) = wait_for
            .iter()
            .find(|w| !WAIT_CONDITIONS.contains(&w.as_str()))
        {
            return Err(err(format!(
                "step {n}: unknown wait condition {bad:?} (known: {})",
                WAIT_CONDITIONS.join(", ")
            )));
        }
        let drain_seconds = match item.get("drain_seconds") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
                err(format!(
                    "step {n}: drain_seconds must be a whole number ≥ 0"
                ))
            })?,
        };
        steps.push(RestartStep {
            component: components
                .into_iter()
                .next()
                .unwrap_or_default()
                .to_string(),
            pods,
            wait_for,
            drain_seconds,
        });
    }
    if let Some(left) = candidates.iter().find(|c| !seen.contains(&c.pod)) {
        return Err(err(format!(
            "fn restart_order left out pod {}: every pod that needs a restart must be in one step",
            left.pod
        )));
    }
    Ok(steps)
}

/// Every pod of a cluster as a restart candidate, for previewing a full
/// restart offline: FE roles follow `electionNumber` (the lowest ordinals
/// are followers, and ordinal 0 is taken as the master, which is where a new
/// cluster's master starts).
pub fn full_restart_candidates(cluster: ClusterRef<'_>) -> Vec<RestartCandidate> {
    let mut out = Vec::new();
    let followers = cluster.election_number().unwrap_or(3) as i64;
    for part in cluster.parts() {
        let kind = part.kind;
        let replicas = part.base.replicas();
        let sts = &part.names.statefulset;
        for ordinal in 0..replicas as i64 {
            let role = (kind == ComponentKind::Fe).then(|| {
                match ordinal {
                    0 => "master",
                    o if o < followers => "follower",
                    _ => "observer",
                }
                .to_string()
            });
            out.push(RestartCandidate {
                component: kind.as_str().to_string(),
                part: part.name.clone(),
                pod: format!("{sts}-{ordinal}"),
                ordinal,
                role,
                ready: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_of_a_part_leave_out_replicas_other_parts_and_operator_annotations() {
        let cms = Default::default();
        let cluster = |be_image: &str, fe_replicas: i64, annotations: Value| {
            json!({"annotations": annotations, "spec": {
                "enableRestartWhenConfigChange": true,
                "feSpec": {"replicas": fe_replicas, "image": "fe:1"},
                "beSpec": {"replicas": 3, "image": be_image},
            }})
        };
        let fe = |c: &Value| inputs_hash(c, &c["spec"]["feSpec"], &cms);
        let base = cluster("be:1", 3, json!({}));
        let hash = fe(&base);
        assert_eq!(
            hash,
            fe(&cluster("be:2", 3, json!({}))),
            "another part's spec"
        );
        assert_eq!(hash, fe(&cluster("be:1", 5, json!({}))), "replicas");
        let steering = json!({"doris.selectdb.com/rollout-paused": "true",
                              "kubectl.kubernetes.io/last-applied-configuration": "{}"});
        assert_eq!(
            hash,
            fe(&cluster("be:1", 3, steering)),
            "operator annotations"
        );
        let asked = json!({"apache.doris.fe/restartedAt": "2026-12-03T08:00:00Z"});
        assert_ne!(hash, fe(&cluster("be:1", 3, asked)), "a restart request");
        let debug = json!({"doris.selectdb.com/debug": "fe"});
        assert_ne!(hash, fe(&cluster("be:1", 3, debug)), "debug mode");
        let mut image = base.clone();
        image["spec"]["feSpec"]["image"] = json!("fe:2");
        assert_ne!(hash, fe(&image), "the part's own spec");
        let mut top = base.clone();
        top["spec"]["enableRestartWhenConfigChange"] = json!(false);
        assert_ne!(hash, fe(&top), "the cluster-wide spec");
        let conf = [(
            "fe-conf".to_string(),
            [("fe.conf".to_string(), "x = 1".to_string())].into(),
        )]
        .into();
        assert_ne!(
            hash,
            inputs_hash(&base, &base["spec"]["feSpec"], &conf),
            "a ConfigMap"
        );
    }
}
