//! Pods decoded straight into the form the pod cache keeps. A pod's JSON is
//! mostly what the controller never reads (managedFields, volumes, the
//! containers' commands and mounts, probe times); decoding it whole and
//! then dropping that was a tenth of the operator's CPU while clusters
//! come up. Here the wire form names only what is kept, so the rest is
//! skipped as it is read and never built.
//!
//! Kept: the metadata but managedFields; each container's name and image
//! (an upgrade is an image change) and the node (host checks name it);
//! phase, the pod's IP (the FE lists nodes by IP outside FQDN mode),
//! conditions' type and status, containers' readiness and waiting state,
//! and of init containers only a host check's report.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;

use super::hosts::CHECK_CONTAINER;

/// A pod as the cache keeps it, decoded from the API's JSON.
#[derive(Clone, Debug)]
pub struct SlimPod(pub Pod);

impl kube::Resource for SlimPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Pod::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Pod::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Pod::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Pod::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl<'de> Deserialize<'de> for SlimPod {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SlimPod, D::Error> {
        let wire = WirePod::deserialize(deserializer)?;
        Ok(SlimPod(wire.into_pod()))
    }
}

#[derive(Deserialize)]
struct WirePod {
    #[serde(default)]
    metadata: WireMeta,
    spec: Option<WireSpec>,
    status: Option<WireStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    #[serde(default)]
    containers: Vec<WireContainer>,
    node_name: Option<String>,
}

#[derive(Deserialize)]
struct WireContainer {
    name: String,
    image: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    conditions: Option<Vec<WireCondition>>,
    container_statuses: Option<Vec<WireContainerStatus>>,
    init_container_statuses: Option<Vec<WireContainerStatus>>,
}

#[derive(Deserialize)]
struct WireCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Deserialize)]
struct WireContainerStatus {
    name: String,
    #[serde(default)]
    ready: bool,
    state: Option<WireState>,
}

#[derive(Deserialize)]
struct WireState {
    waiting: Option<ContainerStateWaiting>,
    terminated: Option<WireTerminated>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTerminated {
    exit_code: i32,
    message: Option<String>,
}

impl WirePod {
    fn into_pod(self) -> Pod {
        let m = self.metadata;
        Pod {
            metadata: ObjectMeta {
                name: m.name,
                generate_name: m.generate_name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                generation: m.generation,
                creation_timestamp: m.creation_timestamp,
                deletion_timestamp: m.deletion_timestamp,
                deletion_grace_period_seconds: m.deletion_grace_period_seconds,
                labels: m.labels,
                annotations: m.annotations,
                owner_references: m.owner_references,
                finalizers: m.finalizers,
                ..ObjectMeta::default()
            },
            spec: self.spec.map(|s| PodSpec {
                containers: s
                    .containers
                    .into_iter()
                    .map(|c| Container {
                        name: c.name,
                        image: c.image,
                        ..Container::default()
                    })
                    .collect(),
                node_name: s.node_name,
                ..PodSpec::default()
            }),
            status: self.status.map(|s| PodStatus {
                phase: s.phase,
                pod_ip: s.pod_ip,
                conditions: s.conditions.map(|cs| {
                    cs.into_iter()
                        .map(|c| PodCondition {
                            type_: c.type_,
                            status: c.status,
                            ..PodCondition::default()
                        })
                        .collect()
                }),
                container_statuses: s.container_statuses.map(|cs| {
                    cs.into_iter()
                        .map(|c| ContainerStatus {
                            name: c.name,
                            ready: c.ready,
                            state: c.state.map(|s| ContainerState {
                                waiting: s.waiting,
                                ..ContainerState::default()
                            }),
                            ..ContainerStatus::default()
                        })
                        .collect()
                }),
                init_container_statuses: s.init_container_statuses.map(|cs| {
                    cs.into_iter()
                        .filter(|c| c.name == CHECK_CONTAINER)
                        .map(|c| ContainerStatus {
                            name: c.name,
                            state: c.state.map(|s| ContainerState {
                                terminated: s.terminated.map(|t| ContainerStateTerminated {
                                    exit_code: t.exit_code,
                                    message: t.message,
                                    ..ContainerStateTerminated::default()
                                }),
                                ..ContainerState::default()
                            }),
                            ..ContainerStatus::default()
                        })
                        .collect()
                }),
                ..PodStatus::default()
            }),
        }
    }
}

/// A watch event of slim pods as one of the pods they hold.
pub fn unwrap_event(
    event: kube::runtime::watcher::Event<SlimPod>,
) -> kube::runtime::watcher::Event<Pod> {
    use kube::runtime::watcher::Event;
    match event {
        Event::Apply(p) => Event::Apply(p.0),
        Event::Delete(p) => Event::Delete(p.0),
        Event::Init => Event::Init,
        Event::InitApply(p) => Event::InitApply(p.0),
        Event::InitDone => Event::InitDone,
    }
}

/// A pod as the cache keeps it, from the API's JSON.
pub fn from_json(value: serde_json::Value) -> serde_json::Result<Pod> {
    serde_json::from_value::<SlimPod>(value).map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::stores::tests::managed_fields;
    use serde_json::json;

    #[test]
    fn a_slim_pod_keeps_what_status_rollout_and_membership_read() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "d-be-0", "namespace": "n", "uid": "p1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app.doris.ownerreference/name": "d-be", "app.kubernetes.io/component": "be",
                           "controller-revision-hash": "d-be-1"},
                "annotations": {"doris.selectdb.com/config-hash": "abc"},
                "managedFields": managed_fields(),
            },
            "spec": {
                "containers": [{"name": "be", "image": "be:1",
                                "command": ["/opt/start.sh"],
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "nodeName": "node-1",
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.7", "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True",
                                "lastTransitionTime": "2026-01-01T00:00:05Z"}],
                "containerStatuses": [{"name": "be", "ready": false, "restartCount": 4,
                                       "image": "be:1", "imageID": "sha256:00",
                                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                       "lastState": {"terminated": {"exitCode": 1}}}],
                "initContainerStatuses": [
                    {"name": "other-init", "ready": true, "restartCount": 0, "image": "i",
                     "imageID": "", "state": {"terminated": {"exitCode": 0}}},
                    {"name": "host-check", "ready": true, "restartCount": 0, "image": "be:1",
                     "imageID": "sha256:01", "state": {"terminated": {"exitCode": 0,
                     "reason": "Completed", "message": "swap on off"}}},
                ],
            }
        }))
        .unwrap();
        let before = pod.clone();
        let pod = from_json(serde_json::to_value(&pod).unwrap()).unwrap();
        assert!(pod.metadata.managed_fields.is_none());
        assert_eq!(pod.metadata.labels, before.metadata.labels);
        assert_eq!(pod.metadata.annotations, before.metadata.annotations);
        assert_eq!(pod.metadata.uid, before.metadata.uid);
        assert_eq!(
            pod.metadata.creation_timestamp,
            before.metadata.creation_timestamp
        );
        let spec = pod.spec.as_ref().unwrap();
        assert!(spec.volumes.is_none());
        // Host checks name the node and read the check's report, only.
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        let init = pod
            .status
            .as_ref()
            .unwrap()
            .init_container_statuses
            .as_ref();
        let reports: Vec<_> = init
            .into_iter()
            .flatten()
            .map(|c| {
                let done = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
                (
                    c.name.as_str(),
                    done.message.as_deref(),
                    done.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(reports, [("host-check", Some("swap on off"), None)]);
        assert_eq!(spec.containers.len(), 1);
        assert_eq!(spec.containers[0].image.as_deref(), Some("be:1"));
        assert!(spec.containers[0].command.is_none());
        assert_eq!(
            crate::controller::rollout::is_ready(&pod),
            crate::controller::rollout::is_ready(&before)
        );
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
        assert!(status.host_ip.is_none());
        let container = &status.container_statuses.as_ref().unwrap()[0];
        assert!(!container.ready);
        assert_eq!(
            container
                .state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert!(container.last_state.is_none());
    }
}
