//! What admission and the nodes say about a cluster's pods.
//!
//! - A pod the namespace's admission refuses (PodSecurity, most often) is
//!   never made: the StatefulSet controller records a `FailedCreate` Event
//!   on the StatefulSet and tries again forever. When a StatefulSet has
//!   fewer pods than it wants, its recent `FailedCreate` Events are read (from
//!   the cache of them, [`super::stores::Stores::failed_creates`]) and one's
//!   message shown in status (Degraded, `PodAdmissionRefused`).
//! - Where hosts cannot be tuned from a pod (host_init.rhai), a check
//!   container reports in its termination message the node settings below
//!   what Doris wants, a line `<setting> <found> <wanted>` each. Those are
//!   listed in status (`hostChecks`) and told once as an Event naming the
//!   node and the setting.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;

use crate::crd::HostCheck;

/// The init container whose termination message is a host report.
pub const CHECK_CONTAINER: &str = "host-check";

/// What this reconcile learnt of admission and hosts.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Pods admission refuses (status shows it as Degraded).
    pub failure: Option<(&'static str, String)>,
    /// Every host setting the pods' checks found short.
    pub host_checks: Vec<HostCheck>,
    /// Shortfalls not reported before.
    pub events: Vec<(EventType, &'static str, String)>,
}

/// Reads why `statefulsets` (part, StatefulSet) that lack pods cannot make
/// them, and what the pods' host checks report; `reported` are the
/// shortfalls status already lists. `failed_creates` is the cache of
/// `FailedCreate` Events; the API is asked only while it has not listed
/// them yet.
pub async fn reconcile(
    client: &Client,
    failed_creates: &Store<Event>,
    namespace: &str,
    statefulsets: &[(&str, Option<Arc<StatefulSet>>)],
    pods: &[Arc<Pod>],
    reported: &[HostCheck],
) -> Outcome {
    let mut out = Outcome {
        failure: refused_pods(client, failed_creates, namespace, statefulsets).await,
        host_checks: host_checks(pods),
        events: Vec::new(),
    };
    let mut told: Vec<(&str, &str)> = reported
        .iter()
        .map(|c| (c.node.as_str(), c.setting.as_str()))
        .collect();
    for check in &out.host_checks {
        let key = (check.node.as_str(), check.setting.as_str());
        if told.contains(&key) {
            continue;
        }
        told.push(key);
        out.events.push((
            EventType::Warning,
            "HostSettingLow",
            format!(
                "node {}: {} is {}, Doris wants {} (found by pod {}); tune the node, \
                 which pods in this namespace may not do",
                check.node, check.setting, check.found, check.wanted, check.pod
            ),
        ));
    }
    out
}

/// The admission refusal of the first StatefulSet that lacks pods and
/// whose controller says why.
async fn refused_pods(
    client: &Client,
    failed_creates: &Store<Event>,
    namespace: &str,
    statefulsets: &[(&str, Option<Arc<StatefulSet>>)],
) -> Option<(&'static str, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let cached = failed_creates
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok());
    for (part, sts) in statefulsets {
        let Some(sts) = sts else { continue };
        let wanted = sts.spec.replicas.unwrap_or(1);
        let status = sts.status.as_ref();
        let made = status.map_or(0, |s| s.replicas);
        // Only once its controller has seen this generation and still
        // lacks pods: a StatefulSet coming up is not asked about.
        let seen = status.and_then(|s| s.observed_generation) >= sts.metadata.generation;
        if made >= wanted || !seen {
            continue;
        }
        let name = sts.metadata.name.clone().unwrap_or_default();
        let events: Vec<Event> = if cached {
            failed_creates
                .state()
                .iter()
                .filter(|e| {
                    e.metadata.namespace.as_deref() == Some(namespace)
                        && e.involved_object.kind.as_deref() == Some("StatefulSet")
                        && e.involved_object.name.as_deref() == Some(name.as_str())
                        && e.reason.as_deref() == Some("FailedCreate")
                })
                .map(|e| Event::clone(e))
                .collect()
        } else {
            let params = ListParams::default().fields(&format!(
                "involvedObject.kind=StatefulSet,involvedObject.name={name},reason=FailedCreate"
            ));
            match api.list(&params).await {
                Ok(events) => events.items,
                // Unreadable (RBAC): the pods' absence still shows in status.
                Err(_) => continue,
            }
        };
        let when = |e: &Event| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
        };
        let current: Vec<Event> = events
            .into_iter()
            .filter(|e| e.involved_object.uid == sts.metadata.uid)
            .collect();
        // Pods made in parallel are refused each with its own Event, in
        // turn: of the latest minute's, the first message, so that status
        // does not change with every retry.
        let Some(newest) = current.iter().filter_map(when).max() else {
            continue;
        };
        let recent = newest - std::time::Duration::from_secs(60);
        let message = current
            .into_iter()
            .filter(|e| when(e).is_some_and(|t| t >= recent))
            .filter_map(|e| e.message)
            .min();
        if let Some(message) = message {
            return Some((
                "PodAdmissionRefused",
                format!("{part}: StatefulSet {name} cannot make its pods: {message}"),
            ));
        }
    }
    None
}

/// The shortfalls the pods' host checks report, by pod and setting.
pub fn host_checks(pods: &[Arc<Pod>]) -> Vec<HostCheck> {
    let mut out = Vec::new();
    for pod in pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let report = pod
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.name == CHECK_CONTAINER)
            .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone());
        for line in report.iter().flat_map(|r| r.lines()) {
            let mut words = line.split_whitespace();
            let (Some(setting), Some(found), Some(wanted)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            out.push(HostCheck {
                node: node.clone(),
                pod: name.clone(),
                setting: setting.to_string(),
                found: found.to_string(),
                wanted: wanted.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.pod, &a.setting).cmp(&(&b.pod, &b.setting)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_check_report_becomes_one_entry_per_setting() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "d-be-1"},
            "spec": {"nodeName": "node-1", "containers": []},
            "status": {"initContainerStatuses": [
                {"name": "host-check", "ready": true, "restartCount": 0, "image": "x",
                 "imageID": "", "state": {"terminated": {"exitCode": 0,
                 "message": "vm.max_map_count 65530 2000000\nswap on off\n"}}},
            ]},
        }))
        .unwrap();
        let checks = host_checks(&[Arc::new(pod)]);
        assert_eq!(
            checks
                .iter()
                .map(|c| (c.node.as_str(), c.setting.as_str(), c.found.as_str()))
                .collect::<Vec<_>>(),
            [
                ("node-1", "swap", "on"),
                ("node-1", "vm.max_map_count", "65530")
            ]
        );
    }
}
