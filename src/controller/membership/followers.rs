//! What a running cluster's FE followers forbid: they are the metadata
//! quorum, fixed by `electionNumber`.

use serde_json::Value;

use crate::cluster::ClusterRef;
use crate::crd::FieldError;

/// The follower count of a running FE cannot change: the followers are the
/// metadata quorum. Compares the planned FE StatefulSet's `ELECT_NUMBER`
/// with the live one's.
pub fn election_change(
    objects: &[Value],
    live: Option<std::sync::Arc<k8s_openapi::api::apps::v1::StatefulSet>>,
) -> Option<FieldError> {
    let live = live?;
    let name = live.metadata.name.as_deref()?;
    let planned = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == name)?;
    let planned = planned["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == "ELECT_NUMBER")?["value"]
        .as_str()?
        .to_string();
    let running = live
        .spec
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "ELECT_NUMBER")?
        .value
        .clone()?;
    (planned != running).then(|| FieldError {
        path: "spec.feSpec.electionNumber".into(),
        message: format!(
            "cannot change from {running} to {planned} on a running cluster: the FE followers \
             form the metadata quorum; scale observers with feSpec.replicas instead"
        ),
    })
}

/// Followers are the FE's lowest `electionNumber` ordinals and are never
/// dropped from it, so a running FE cannot shrink below them: scaling to
/// fewer replicas than both the running ones and `electionNumber` would
/// take away voting members and can lose the metadata quorum.
pub fn follower_cut(
    cluster: ClusterRef<'_>,
    live: Option<&k8s_openapi::api::apps::v1::StatefulSet>,
) -> Option<FieldError> {
    let desired = cluster.fe_replicas()?;
    let election = cluster.election_number()?;
    let running = live?.spec.replicas.unwrap_or(1);
    let floor = running.min(election);
    (desired < floor).then(|| FieldError {
        path: "spec.feSpec.replicas".into(),
        message: format!(
            "cannot go from {running} to {desired} on a running cluster: the FEs below \
             ordinal electionNumber ({election}) are followers, which hold the metadata \
             quorum and are never removed; keep at least {floor}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::DorisCluster;
    use k8s_openapi::api::apps::v1::StatefulSet;

    fn cut(cluster: &DorisCluster, live: Option<&StatefulSet>) -> Option<FieldError> {
        follower_cut(ClusterRef::Doris(cluster), live)
    }

    fn cluster(fe: Value) -> DorisCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
            "metadata": {"name": "c"}, "spec": {"feSpec": fe}
        }))
        .unwrap()
    }

    fn running(replicas: i32) -> StatefulSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c-fe"}, "spec": {"replicas": replicas, "selector": {},
            "serviceName": "c-fe-internal", "template": {}}
        }))
        .unwrap()
    }

    #[test]
    fn followers_are_never_scaled_away() {
        let one = cluster(serde_json::json!({"image": "fe", "replicas": 1}));
        // A new cluster may have fewer FEs than followers.
        assert_eq!(cut(&one, None), None);
        // So may a running one that had them from the start, and it can grow.
        assert_eq!(cut(&one, Some(&running(1))), None);
        let three = cluster(serde_json::json!({"image": "fe", "replicas": 3}));
        assert_eq!(cut(&three, Some(&running(1))), None);
        // Observers (beyond electionNumber) can go.
        assert_eq!(cut(&three, Some(&running(5))), None);
        // Followers cannot.
        let refused = cut(&one, Some(&running(3))).unwrap();
        assert_eq!(refused.path, "spec.feSpec.replicas");
        assert!(
            refused.message.contains("keep at least 3"),
            "{}",
            refused.message
        );
        let two = cluster(serde_json::json!({"image": "fe", "replicas": 1, "electionNumber": 3}));
        let refused = cut(&two, Some(&running(2))).unwrap();
        assert!(
            refused.message.contains("keep at least 2"),
            "{}",
            refused.message
        );
    }
}
