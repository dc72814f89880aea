//! What the operator writes in a DorisCluster's status (parts of which
//! the storage-compute separated kind shares).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::schema;

/// The observed state of a Doris cluster.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DorisClusterStatus {
    pub fe_status: Option<ComponentStatus>,
    pub be_status: Option<ComponentStatus>,
    pub cn_status: Option<CnStatus>,
    pub broker_status: Option<ComponentStatus>,
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// The conventions revision that produced the running objects.
    pub conventions_revision: Option<String>,
    /// Ready, Progressing, Degraded, ConventionsReady, MembersSynced.
    #[serde(default)]
    #[schemars(schema_with = "schema::object_list")]
    pub conditions: Option<Vec<Condition>>,
    /// Doris nodes whose FE membership is changing or out of step.
    pub membership: Option<MembershipStatus>,
    /// The restart in progress, when pods run an outdated pod template.
    pub rollout: Option<RolloutStatus>,
    /// The last configuration change of each part and how it was carried out.
    pub configuration: Option<Vec<ConfigChangeStatus>>,
    /// Data volumes the operator grew, and how far each has got.
    pub volumes: Option<Vec<VolumeResize>>,
    /// Host settings below what Doris wants, as the nodes' checks found them.
    pub host_checks: Option<Vec<HostCheck>>,
    /// Short texts for the `kubectl get` columns.
    pub summary: Option<StatusSummary>,
}

/// One data volume claim the operator grew, and how far its resize has got.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeResize {
    /// The PersistentVolumeClaim.
    pub claim: String,
    /// The part whose StatefulSet made the claim.
    pub component: String,
    /// The size the claim asks for.
    pub requested: String,
    /// The size the volume has, as the claim reports it.
    pub capacity: Option<String>,
    /// `Pending` (asked; the resizer has not started), `Resizing` (the
    /// volume grows), `FileSystemResizePending` (the node is to grow the
    /// file system), `Resized` (the capacity reached the request).
    pub state: String,
}

/// A host setting below what Doris wants, as a pod's check found it on its
/// node.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostCheck {
    /// The node the pod runs on.
    pub node: String,
    /// The pod whose check reported it.
    pub pod: String,
    /// `vm.max_map_count`, `swap` or `nofile`.
    pub setting: String,
    /// What the node has.
    pub found: String,
    /// What Doris wants.
    pub wanted: String,
}

/// How the last change of one part's configuration was carried out: keys
/// set on the running nodes, keys that wait for the pods to restart, keys
/// left for their next start, and nodes that refused (retried).
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChangeStatus {
    /// The part (`fe`, `be`, `cn`, a compute group).
    pub component: String,
    /// `applied`, or `applying` while nodes refuse or Doris does not answer
    /// (the new configuration waits, and is tried again).
    pub state: String,
    /// When the change was first seen (RFC 3339).
    pub since: Option<String>,
    /// Keys set on the running nodes, without a restart.
    #[serde(default)]
    pub live: Vec<LiveSetting>,
    /// Keys that take effect when the pods restart.
    #[serde(default)]
    pub awaiting_restart: Vec<String>,
    /// Keys the policy leaves for the pods' next start.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// Nodes that refused a key or did not answer.
    #[serde(default)]
    pub refused: Vec<RefusedSetting>,
    /// Why the change waits, when it does; or why keys Doris could change
    /// at run time were not sent to it, and what became of them.
    pub message: Option<String>,
}

/// A key set on running nodes.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveSetting {
    /// The configuration key, as in the file (`max_bytes_per_broker_scanner`).
    pub key: String,
    /// The value it was set to.
    pub value: String,
    /// Nodes that took it.
    pub nodes: i32,
}

/// A key a node refused (or a node that did not answer).
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedSetting {
    /// The pod (for the FE, the FE access Service).
    pub node: String,
    /// The configuration key it refused.
    pub key: String,
    /// What the node answered (or why it could not be asked).
    pub message: String,
}

/// Short texts for the `kubectl get` columns, derived from the rest of
/// status.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    /// FE pods ready/desired (`2/3`).
    pub fe: Option<String>,
    /// BE pods ready/desired; DorisCluster only.
    pub be: Option<String>,
    /// Compute node pods ready/desired; DorisCluster only.
    pub cn: Option<String>,
    /// Pods ready/desired over every compute group;
    /// DorisDisaggregatedCluster only.
    pub cg: Option<String>,
    /// The rollout in progress, in short: its component, pods updated of
    /// all, and what it waits for (`be 1/3: doris-be-1 to be Ready`).
    /// Absent when no rollout runs.
    pub rollout: Option<String>,
}

/// FE membership of the cluster's nodes, as the operator last saw it.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipStatus {
    /// Replicas per component last confirmed with the FE (`fe=3,be=3`).
    pub confirmed: Option<String>,
    /// Nodes being decommissioned, dropped or awaited, and stale members.
    #[serde(default)]
    pub nodes: Vec<MemberNode>,
}

/// One node in flux.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberNode {
    /// The node's part (fe, be, cn, or a compute group's name).
    pub component: String,
    /// The pod (or, for a stale member, the FE's host name).
    pub pod: String,
    /// `decommissioning`, `dropping`, `registering`, `notRegistered`,
    /// `stale`, `waitingForFe`.
    pub state: String,
    /// Tablets left on a decommissioning BE.
    pub tablets: Option<i64>,
    /// When the node entered this state (RFC 3339).
    pub since: Option<String>,
    /// What the operator or the FE said about it last.
    pub message: Option<String>,
}

/// A restart in progress: the operator restarts outdated pods in the order
/// the restart policy gives, one step at a time.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The component of the current step.
    pub component: String,
    /// The StatefulSet revision its pods move to.
    pub target_revision: String,
    /// Why: upgrade, config, requested, spec or conventions.
    pub reason: String,
    /// Pods of the component at the target revision.
    pub updated: i32,
    /// Pods the component has.
    pub total: i32,
    /// The pods of the current step.
    pub pods: Vec<String>,
    /// What must hold before the next step: pod_ready, fe_reports_alive.
    pub wait_for: Vec<String>,
    /// What the rollout waits for now.
    pub waiting: String,
    /// Set while the restart is held by the maintenance policy:
    /// `maintenance-window` (a window will release it) or `approval` (only
    /// an approval will).
    pub held: Option<String>,
    /// The value of the `doris.selectdb.com/approve-restart` annotation
    /// that lets this held restart run now; a later change needs its own.
    pub approve_with: Option<String>,
    /// When the next maintenance window opens (RFC 3339).
    pub window_opens: Option<String>,
}

/// Compute node status.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CnStatus {
    #[serde(flatten)]
    pub component: ComponentStatus,
    pub horizontal_scaler: Option<HorizontalScaler>,
}

/// The autoscaler of compute nodes.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HorizontalScaler {
    /// The HorizontalPodAutoscaler's name.
    pub name: Option<String>,
    /// The autoscaling API version asked for (v1 or v2).
    pub version: Option<String>,
}

/// One component's status.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// The Service users reach the component through.
    pub access_service: Option<String>,
    /// Pods that failed (crash looping, not scheduled for long, or gone).
    pub failed_instances: Option<Vec<String>>,
    /// Pods starting, not Ready yet.
    pub creating_instances: Option<Vec<String>>,
    /// Pods Ready.
    pub running_instances: Option<Vec<String>>,
    /// Hash of the configuration files the pods mount.
    pub core_config_map_hash_value: Option<String>,
    /// Pods Ready.
    pub ready_replicas: Option<i32>,
    /// Pods wanted.
    pub replicas: Option<i32>,
    /// The component's phase and why.
    #[serde(default)]
    pub component_condition: ComponentCondition,
}

/// A component's phase.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentCondition {
    /// The StatefulSet.
    pub sub_resource_name: Option<String>,
    /// initializing, reconciling, upgrading, scaling, restarting, haveMemberFailed, available …
    #[serde(default)]
    pub phase: String,
    /// When the phase last changed.
    #[serde(default)]
    #[schemars(schema_with = "schema::date_time")]
    pub last_transition_time: Option<Time>,
    /// Why the component is in this phase, as a fixed CamelCase word.
    #[serde(default)]
    pub reason: String,
    /// What it waits for or what failed, for a person.
    #[serde(default)]
    pub message: String,
}
