//! Membership decisions: what `membership.rhai` says about keeping the FE's
//! node list in step with the pods, and which Doris node is which pod.

use serde_json::{Value, json};

use crate::cluster::ClusterRef;
use crate::conventions::contract::CONTRACT_VERSION;
use crate::conventions::{ConventionBundle, SourceError};

/// What the membership policy decided for a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipPolicy {
    pub decommission_be: bool,
    pub register_timeout_seconds: i64,
    pub drop_stale: bool,
    pub recheck_seconds: i64,
}

/// Asks `membership.rhai` for the cluster's membership rules.
pub fn membership_policy(
    bundle: &ConventionBundle,
    cluster: ClusterRef<'_>,
) -> Result<MembershipPolicy, SourceError> {
    let ctx = json!({
        "contract": CONTRACT_VERSION,
        "kind": cluster.kind(),
        "cluster": super::restart::cluster_ctx(cluster),
    });
    let value = bundle.call_json("membership.rhai", "membership", &ctx)?;
    let err = |m: &str| SourceError::new(bundle.origin("membership.rhai"), m);
    let flag = |key: &str| match value.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(err(&format!(
            "fn membership must return #{{ {key}: true|false, .. }}"
        ))),
    };
    let seconds = |key: &str| match value.get(key) {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n > 0) => Ok(n.as_i64().unwrap_or(1)),
        _ => Err(err(&format!(
            "fn membership must return #{{ {key}: a positive number, .. }}"
        ))),
    };
    Ok(MembershipPolicy {
        decommission_be: flag("decommission_be")?,
        register_timeout_seconds: seconds("register_timeout_seconds")?,
        drop_stale: flag("drop_stale")?,
        recheck_seconds: seconds("recheck_seconds")?,
    })
}

/// The pod a Doris node runs in, from the host the FE lists it under: in
/// FQDN mode the host's first DNS label is the pod name
/// (`doris-be-2.doris-be-internal.ns.svc.cluster.local`); otherwise the
/// host is the pod's IP, found in `pod_ips` (pod name, IP).
pub fn pod_of_host<'a>(host: &'a str, pod_ips: &'a [(String, String)]) -> &'a str {
    if let Some((pod, _)) = pod_ips.iter().find(|(_, ip)| !ip.is_empty() && ip == host) {
        return pod;
    }
    first_label(host)
}

/// Whether the host the FE lists a node under is pod `pod`'s, whose IP is
/// `pod_ip` (when it has one): its FQDN (or bare name) in FQDN mode, its IP
/// otherwise (`enable_fqdn_mode = false`, Doris's default, where nodes
/// register and show themselves by IP:
/// fe/fe-core/src/main/java/org/apache/doris/service/FrontendOptions.java).
pub fn host_is_pod(host: &str, pod: &str, pod_ip: Option<&str>) -> bool {
    first_label(host) == pod || pod_ip.is_some_and(|ip| !ip.is_empty() && ip == host)
}

/// The first DNS label of a host (the whole of an IP would be cut at its
/// first dot, but an IP never names a pod by its labels anyway).
fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The ordinal of `pod` if it belongs to StatefulSet `statefulset`.
pub fn ordinal_of(pod: &str, statefulset: &str) -> Option<i32> {
    pod.strip_prefix(statefulset)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_map_to_pods_and_ordinals() {
        let ips = vec![("doris-be-1".to_string(), "10.0.0.7".to_string())];
        assert_eq!(
            pod_of_host("doris-be-2.doris-be-internal.ns.svc.cluster.local", &ips),
            "doris-be-2"
        );
        assert_eq!(pod_of_host("10.0.0.7", &ips), "doris-be-1");
        let no_ip = vec![("doris-be-0".to_string(), String::new())];
        assert_eq!(pod_of_host("", &no_ip), "");
    }

    #[test]
    fn a_node_is_its_pod_by_fqdn_or_by_ip() {
        let fqdn = "doris-be-2.doris-be-internal.ns.svc.cluster.local";
        assert!(host_is_pod(fqdn, "doris-be-2", Some("10.0.0.9")));
        assert!(host_is_pod("doris-be-2", "doris-be-2", None));
        assert!(!host_is_pod(fqdn, "doris-be-1", Some("10.0.0.9")));
        assert!(host_is_pod("10.0.0.9", "doris-be-2", Some("10.0.0.9")));
        assert!(!host_is_pod("10.0.0.9", "doris-be-2", Some("10.0.0.19")));
        assert!(!host_is_pod("10.0.0.9", "doris-be-2", None));
        assert!(!host_is_pod("", "doris-be-2", Some("")));
        assert_eq!(ordinal_of("doris-be-12", "doris-be"), Some(12));
        assert_eq!(ordinal_of("doris-bexx-1", "doris-be"), None);
        assert_eq!(ordinal_of("other-be-1", "doris-be"), None);
    }

    #[test]
    fn the_default_policy_keeps_data_and_reads_the_stale_annotation() {
        let bundle = ConventionBundle::embedded().unwrap();
        let mut cluster: crate::crd::DorisCluster = serde_json::from_value(json!({
            "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
            "metadata": {"name": "d", "namespace": "n"},
            "spec": {"feSpec": {"image": "fe"}, "beSpec": {"image": "be"}}
        }))
        .unwrap();
        let p = membership_policy(&bundle, ClusterRef::Doris(&cluster)).unwrap();
        assert!(p.decommission_be);
        assert!(!p.drop_stale);
        assert_eq!(p.register_timeout_seconds, 300);
        assert_eq!(p.recheck_seconds, 600);
        cluster.metadata.annotations = Some(
            [(
                "doris.selectdb.com/drop-stale-members".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        assert!(
            membership_policy(&bundle, ClusterRef::Doris(&cluster))
                .unwrap()
                .drop_stale
        );
    }

    #[test]
    fn a_disaggregated_cluster_decommissions_only_when_it_asks_to() {
        let bundle = ConventionBundle::embedded().unwrap();
        let cluster = |spec: serde_json::Value| -> crate::crd::DorisDisaggregatedCluster {
            let mut spec = spec;
            spec["metaService"] = json!({"image": "ms", "fdb": {"address": "a:b@c:1"}});
            spec["feSpec"] = json!({"image": "fe"});
            serde_json::from_value(json!({
                "apiVersion": "disaggregated.cluster.doris.com/v1",
                "kind": "DorisDisaggregatedCluster",
                "metadata": {"name": "d", "namespace": "n"},
                "spec": spec,
            }))
            .unwrap()
        };
        let decommission = |c: &crate::crd::DorisDisaggregatedCluster| {
            membership_policy(&bundle, ClusterRef::Disaggregated(c))
                .unwrap()
                .decommission_be
        };
        assert!(!decommission(&cluster(json!({}))));
        assert!(!decommission(&cluster(
            json!({"enableDecommission": false})
        )));
        assert!(decommission(&cluster(json!({"enableDecommission": true}))));
    }
}
