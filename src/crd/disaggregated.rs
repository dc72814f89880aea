//! The `DorisDisaggregatedCluster` resource
//! (`disaggregated.cluster.doris.com/v1`, short name `ddc`): a Doris cluster
//! whose storage and compute are separated. A meta service (backed by
//! FoundationDB) keeps the metadata, FEs plan queries, and any number of
//! compute groups of BEs run them on data kept in object storage with a
//! local cache.
//!
//! Wire-compatible with apache/doris-operator: every field it accepts is
//! accepted here with the same JSON name and meaning. Where a field has the
//! same JSON as in `DorisCluster`, the type is shared.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, HostAlias, LocalObjectReference, PersistentVolumeClaimSpec,
    PodSecurityContext, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{
    AdminUser, ComponentStatus, HostCheck, KerberosInfo, MembershipStatus, ReadinessProbePolicy,
    RolloutStatus, SecretMount, ServiceType, StatusSummary, VolumeResize, schema,
};

/// The desired state of a storage-compute separated Doris cluster.
#[skip_serializing_none]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "disaggregated.cluster.doris.com",
    version = "v1",
    kind = "DorisDisaggregatedCluster",
    doc = "A storage-compute separated Doris cluster: its meta service, FEs and compute groups.",
    plural = "dorisdisaggregatedclusters",
    shortname = "ddc",
    namespaced,
    status = "DorisDisaggregatedClusterStatus",
    category = "doris",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"The Ready condition"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.clusterHealth.health","description":"green, yellow or red"}"#,
    printcolumn = r#"{"name":"FE","type":"string","jsonPath":".status.summary.fe","description":"FE pods ready/desired"}"#,
    printcolumn = r#"{"name":"CG","type":"string","jsonPath":".status.summary.cg","description":"Compute group pods ready/desired, over every group"}"#,
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".status.summary.rollout","description":"What a rollout in progress waits for; empty when none runs"}"#,
    printcolumn = r#"{"name":"RestartHeld","type":"string","jsonPath":".status.rollout.held","description":"Why a pending restart waits: maintenance-window or approval"}"#,
    printcolumn = r#"{"name":"Conventions","type":"string","jsonPath":".status.conventionsRevision","description":"The conventions revision the objects were planned with"}"#,
    printcolumn = r#"{"name":"CGAvailable","type":"integer","jsonPath":".status.clusterHealth.cgAvailableCount","description":"Compute groups with a ready pod","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = schema::disaggregated_root_rules()[0].clone(),
    validation = schema::disaggregated_root_rules()[1].clone(),
    validation = schema::disaggregated_root_rules()[2].clone()
)]
#[schemars(transform = schema::disaggregated_spec_rules)]
#[serde(rename_all = "camelCase")]
pub struct DorisDisaggregatedClusterSpec {
    /// The meta service, which keeps the cluster's metadata in FoundationDB.
    #[serde(default, skip_serializing_if = "is_default")]
    pub meta_service: MetaServiceSpec,
    /// The frontends: SQL entry point, query planning, cluster metadata.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fe_spec: DisaggregatedFeSpec,
    /// The compute groups: each a set of BEs that run queries on the shared
    /// data with a cache of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::compute_groups::<ComputeGroupSpec>")]
    pub compute_groups: Vec<ComputeGroupSpec>,
    /// Secret (type kubernetes.io/basic-auth; keys username, default root,
    /// and password) of the user the operator manages nodes with.
    pub auth_secret: Option<String>,
    /// Deprecated: plaintext management user; use authSecret.
    pub admin_user: Option<AdminUser>,
    /// On a compute group scale-down, decommission the BEs that go (their
    /// work moves first) rather than dropping them at once. Default false.
    pub enable_decommission: Option<bool>,
    /// Kerberos files mounted into every part.
    pub kerberos_info: Option<KerberosInfo>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Declares `CommonSpec` (the fields the meta service, the FE and every
/// compute group have) and hands those fields, as tokens, to `$mac`: the
/// part specs are declared from the one list, so it is written once.
macro_rules! with_common_fields {
    ($mac:ident ! { $($args:tt)* }) => {
        $mac! { $($args)* common {
            /// Number of pods. Default 2 for the meta service and the FE,
            /// 1 for a compute group.
            #[schemars(range(min = 0))]
            pub replicas: Option<i32>,
            /// Container image, e.g. apache/doris:ms-3.0.3, apache/doris:fe-3.0.3,
            /// apache/doris:be-3.0.3.
            pub image: Option<String>,
            /// Secrets for pulling the images.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
            /// Seconds a pod may take to start before it is restarted.
            pub start_timeout: Option<i32>,
            /// Liveness probe timeout in seconds. Default 180.
            pub live_timeout: Option<i32>,
            /// Readiness probe timing.
            pub readiness_probe_policy: Option<ReadinessProbePolicy>,
            /// Container resource requests (cpu in cores, memory in bytes:
            /// `cpu: 8`, `memory: 16Gi`).
            #[serde(default)]
            #[schemars(schema_with = "schema::quantities")]
            pub requests: Option<BTreeMap<String, Quantity>>,
            /// Container resource limits, as requests.
            #[serde(default)]
            #[schemars(schema_with = "schema::quantities")]
            pub limits: Option<BTreeMap<String, Quantity>>,
            /// Dynamic resource claims of the container.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub claims: Option<Vec<serde_json::Value>>,
            /// Extra labels of the pods.
            pub labels: Option<BTreeMap<String, String>>,
            /// Annotations of the pods.
            pub annotations: Option<BTreeMap<String, String>>,
            /// Scheduling constraints of the pods.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub affinity: Option<Affinity>,
            /// Deprecated: one volume claim template for every directory;
            /// use persistentVolumes.
            pub persistent_volume: Option<DisaggregatedPersistentVolume>,
            /// Keep logs on the pod's own disk instead of a persistent volume.
            /// Default false.
            pub log_not_store: Option<bool>,
            /// Persistent volumes. An entry with mountPaths gives their
            /// claims; an entry without gives the claims of the directories the
            /// configuration names (FE meta, BE file cache, logs).
            #[serde(default)]
            #[schemars(schema_with = "schema::disaggregated_volumes::<DisaggregatedPersistentVolume>")]
            pub persistent_volumes: Option<Vec<DisaggregatedPersistentVolume>>,
            /// Tolerations of the pods.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub tolerations: Option<Vec<Toleration>>,
            /// How the part is reached from outside the cluster.
            pub service: Option<DisaggregatedService>,
            /// ConfigMaps mounted into the pods; the one at /etc/doris holds the
            /// configuration file (ms.conf, fe.conf or be.conf).
            #[serde(default)]
            #[schemars(schema_with = "schema::mounts_of::<ConfigMapMount>")]
            pub config_maps: Option<Vec<ConfigMapMount>>,
            /// Node labels the pods must match.
            pub node_selector: Option<BTreeMap<String, String>>,
            /// Service account of the pods (for cloud storage access).
            pub service_account: Option<String>,
            /// Extra /etc/hosts entries.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub host_aliases: Option<Vec<HostAlias>>,
            /// Pod security context.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub security_context: Option<PodSecurityContext>,
            /// Security context of the containers that set none of their own.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub container_security_context: Option<SecurityContext>,
            /// Environment variables; they replace same-named defaults.
            #[serde(default)]
            #[schemars(schema_with = "schema::env_vars")]
            pub env_vars: Option<Vec<EnvVar>>,
            /// An extra privileged init container that tunes the host.
            pub system_initialization: Option<DisaggregatedSystemInitialization>,
            /// Secrets mounted into the pods.
            #[serde(default)]
            #[schemars(schema_with = "schema::mounts_of::<SecretMount>")]
            pub secrets: Option<Vec<SecretMount>>,
        } }
    };
}

macro_rules! common_spec {
    (common { $( $(#[$meta:meta])* pub $field:ident : $ty:ty, )* }) => {
        /// What the meta service, the FE and every compute group have.
        #[skip_serializing_none]
        #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct CommonSpec {
            $( $(#[$meta])* pub $field: $ty, )*
        }
    };
}

/// A part spec: its own fields and, in Rust, `common: Box<CommonSpec>`; on
/// the wire the common fields sit beside its own. It is read through a flat
/// twin struct rather than `#[serde(flatten)]`, which buffers the whole part
/// and needs a deep stack for large specs, and hides unknown fields.
macro_rules! part_spec {
    (
        $(#[$cmeta:meta])*
        pub struct $name:ident read as $wire:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty, )*
        }
        common { $( $(#[$bmeta:meta])* pub $bfield:ident : $bty:ty, )* }
    ) => {
        #[skip_serializing_none]
        #[derive(Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        $(#[$cmeta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $fty, )*
            /// The common fields; boxed so that a cluster is small to move
            /// around (deserialising moves it through many stack frames).
            #[serde(flatten)]
            pub common: Box<CommonSpec>,
        }

        #[derive(Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        struct $wire {
            $( $(#[$fmeta])* $field: $fty, )*
            $( $(#[$bmeta])* $bfield: $bty, )*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let wire = $wire::deserialize(deserializer)?;
                Ok($name {
                    $( $field: wire.$field, )*
                    common: Box::new(CommonSpec { $( $bfield: wire.$bfield, )* }),
                })
            }
        }
    };
}

with_common_fields!(common_spec! {});

with_common_fields!(part_spec! {
    /// The meta service.
    #[schemars(transform = schema::meta_service_rules)]
    pub struct MetaServiceSpec read as MetaServiceSpecWire {
        /// The FoundationDB cluster the meta service keeps its data in.
        pub fdb: Option<Fdb>,
    }
});

with_common_fields!(part_spec! {
    /// The frontends.
    #[schemars(transform = schema::disaggregated_fe_rules)]
    pub struct DisaggregatedFeSpec read as DisaggregatedFeSpecWire {
        /// FEs that vote (followers); the other replicas are observers.
        /// Default 1; fixed once the cluster exists; at most replicas.
        #[schemars(range(min = 1))]
        pub election_number: Option<i32>,
    }
});

with_common_fields!(part_spec! {
    /// A compute group: BEs that run queries together.
    #[schemars(transform = schema::compute_group_rules)]
    pub struct ComputeGroupSpec read as ComputeGroupSpecWire {
        /// The compute group's identifier: a letter, then letters, digits and
        /// single underscores. It is the compute group's name in Doris when
        /// first registered, and, lower-cased with '_' as '-', names its
        /// StatefulSet and Services (<cluster>-<uniqueId>).
        #[schemars(schema_with = "schema::unique_id")]
        pub unique_id: String,
        /// Run the BEs privileged so workload groups can manage cgroups.
        /// Default false.
        pub enable_workload_group: Option<bool>,
        /// Skip the default privileged init container that tunes the host
        /// for the BE. Default false.
        pub skip_default_system_init: Option<bool>,
        /// Tell the BE its CPU limit (env BE_CPU_LIMIT, from requests.cpu);
        /// changing it restarts the BEs. Default false.
        #[serde(rename = "autoResolveLimitCPU")]
        pub auto_resolve_limit_cpu: Option<bool>,
    }
});

/// Default pods of the meta service.
pub const DEFAULT_META_SERVICE_REPLICAS: i32 = 2;
/// Default FE pods.
pub const DEFAULT_FE_REPLICAS: i32 = 2;
/// Default BE pods of a compute group.
pub const DEFAULT_COMPUTE_GROUP_REPLICAS: i32 = 1;
/// The FE followers when `electionNumber` is not set.
pub const DEFAULT_DISAGGREGATED_ELECTION_NUMBER: i32 = 1;

impl MetaServiceSpec {
    /// Desired meta service pods.
    pub fn replicas(&self) -> i32 {
        self.common
            .replicas
            .unwrap_or(DEFAULT_META_SERVICE_REPLICAS)
    }
}

impl DisaggregatedFeSpec {
    /// Desired FE pods.
    pub fn replicas(&self) -> i32 {
        self.common.replicas.unwrap_or(DEFAULT_FE_REPLICAS)
    }

    /// FE followers.
    pub fn election_number(&self) -> i32 {
        self.election_number
            .unwrap_or(DEFAULT_DISAGGREGATED_ELECTION_NUMBER)
    }
}

impl ComputeGroupSpec {
    /// Desired BE pods.
    pub fn replicas(&self) -> i32 {
        self.common
            .replicas
            .unwrap_or(DEFAULT_COMPUTE_GROUP_REPLICAS)
    }

    /// The part of its objects' names that is the compute group's.
    pub fn object_name(&self) -> String {
        compute_group_object_name(&self.unique_id)
    }
}

impl DorisDisaggregatedClusterSpec {
    /// The compute group with this uniqueId.
    pub fn compute_group(&self, unique_id: &str) -> Option<&ComputeGroupSpec> {
        self.compute_groups
            .iter()
            .find(|group| group.unique_id == unique_id)
    }
}

/// The part of a compute group's object names that comes from its uniqueId:
/// lower-cased, with '_' as '-' (object names are DNS labels). Its
/// StatefulSet and headless Service are `<cluster>-<this>`, its access
/// Service `<cluster>-<this>-external`.
pub fn compute_group_object_name(unique_id: &str) -> String {
    unique_id.to_ascii_lowercase().replace('_', "-")
}

/// The name Doris knows a compute group by when the operator registers it:
/// its uniqueId, with any '-' as '_'.
pub fn compute_group_name(unique_id: &str) -> String {
    unique_id.replace('-', "_")
}

/// The cluster id the FEs of cluster `name` in `namespace` are started with
/// (`CLUSTER_ID`): a number from 1000000000 to 1999999999 derived from
/// SHA-256 of `<namespace>-<name>`, so that a cluster keeps its id across
/// operator versions and operators.
pub fn cluster_id(namespace: &str, name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{namespace}-{name}").as_bytes());
    // The digest as a big-endian number, modulo 10^9.
    let modulus: u64 = 1_000_000_000;
    let rest = digest
        .iter()
        .fold(0u64, |acc, byte| (acc * 256 + u64::from(*byte)) % modulus);
    1_000_000_000 + rest as i64
}

/// Where the FoundationDB cluster is: its address, or the ConfigMap
/// fdb-kubernetes-operator writes for it. One of them is required; the
/// address wins when both are given.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fdb {
    /// The cluster file's connection string (as in /etc/foundationdb/fdb.cluster,
    /// `description:id@host:port,...`), for a FoundationDB outside Kubernetes.
    #[schemars(length(max = 4096))]
    pub address: Option<String>,
    /// The ConfigMap with the connection string under the key `cluster-file`,
    /// as fdb-kubernetes-operator writes it for an FoundationDBCluster.
    pub config_map_namespace_name: Option<NamespacedName>,
}

impl Fdb {
    /// The connection string when given directly.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref().filter(|a| !a.is_empty())
    }

    /// The ConfigMap (namespace, name) holding the connection string, when
    /// no address is given; an empty namespace is the cluster's own.
    pub fn config_map<'a>(&'a self, cluster_namespace: &'a str) -> Option<(&'a str, &'a str)> {
        if self.address().is_some() {
            return None;
        }
        let reference = self.config_map_namespace_name.as_ref()?;
        let name = reference.name.as_deref().filter(|n| !n.is_empty())?;
        let namespace = reference
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(cluster_namespace);
        Some((namespace, name))
    }
}

/// An object in some namespace.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedName {
    /// Its namespace; default the cluster's.
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Its name.
    #[schemars(length(max = 253))]
    pub name: Option<String>,
}

/// A persistent volume of each pod.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisaggregatedPersistentVolume {
    /// The claim of each pod (storage class, size, access modes).
    #[serde(default)]
    #[schemars(schema_with = "schema::claim_spec")]
    pub persistent_volume_claim_spec: Option<PersistentVolumeClaimSpec>,
    /// Absolute paths, each mounted from a claim of its own made from this
    /// template. Unset: the template of the directories the configuration
    /// names (FE meta_dir, BE file_cache_path, logs). A path given twice is
    /// mounted once.
    #[serde(default)]
    #[schemars(schema_with = "schema::volume_mount_paths")]
    pub mount_paths: Option<Vec<String>>,
    /// Deprecated: keep logs on the pod's own disk; use logNotStore of the part.
    pub log_not_store: Option<bool>,
    /// Annotations of the claims (storage provider settings); they apply
    /// only when a claim is made.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Who makes the claims: `operator` (the operator makes them and grows
    /// them when the requested storage grows); otherwise (default) the
    /// StatefulSet does.
    #[schemars(length(max = 64))]
    pub provisioner: Option<String>,
}

/// A ConfigMap and where it is mounted.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapMount {
    /// The ConfigMap, in the cluster's namespace.
    pub name: Option<String>,
    /// Absolute path it is mounted at, one file per key. The part's
    /// configuration file (ms.conf, fe.conf, be.conf) is read from /etc/doris.
    #[serde(default)]
    #[schemars(schema_with = "schema::mount_path")]
    pub mount_path: Option<String>,
}

/// How a part is reached from outside the cluster.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisaggregatedService {
    /// Service type: ClusterIP (default), NodePort, LoadBalancer or ExternalName.
    #[serde(rename = "type")]
    pub type_: Option<ServiceType>,
    /// Service annotations (cloud load balancer settings).
    pub annotations: Option<BTreeMap<String, String>>,
    /// Node ports by container port, for NodePort and LoadBalancer Services.
    #[serde(default)]
    #[schemars(schema_with = "schema::service_ports::<PortMap>")]
    pub port_maps: Option<Vec<PortMap>>,
}

/// A node port for one container port.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortMap {
    /// The node port (30000-32767 by default); unset or 0: the API server picks one.
    #[schemars(range(min = 0, max = 65535))]
    pub node_port: Option<i32>,
    /// The container port it leads to.
    #[schemars(range(min = 0, max = 65535))]
    pub target_port: Option<i32>,
}

/// An extra privileged init container.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisaggregatedSystemInitialization {
    /// Its image. Default selectdb/alpine:latest.
    pub init_image: Option<String>,
    /// Entrypoint, not run in a shell.
    pub command: Option<Vec<String>>,
    /// Arguments of the entrypoint.
    pub args: Option<Vec<String>>,
    /// Resource requests of the init container (none by default).
    #[serde(default)]
    #[schemars(schema_with = "schema::quantities")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    /// Resource limits of the init container (none by default).
    #[serde(default)]
    #[schemars(schema_with = "schema::quantities")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    /// Dynamic resource claims of the init container.
    #[serde(default)]
    #[schemars(schema_with = "schema::object_list")]
    pub claims: Option<Vec<serde_json::Value>>,
}

// ------------------------------------------------------------------ status

/// Phases of a part or compute group, as apache/doris-operator names them.
/// Status fields hold plain strings so any phase another version writes
/// still reads.
pub mod phase {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const SCALING: &str = "Scaling";
    pub const DECOMMISSIONING: &str = "Decommissioning";
    pub const SCALE_DOWN_FAILED: &str = "ScaleDownFailed";
    pub const SUSPENDED: &str = "Suspended";
    /// `availableStatus` values.
    pub const AVAILABLE: &str = "Available";
    pub const UNAVAILABLE: &str = "UnAvailable";
}

/// `clusterHealth.health` values.
pub mod health {
    /// Everything available: the FEs and every pod of every compute group.
    pub const GREEN: &str = "green";
    /// The FEs and at least one compute group available, not all of it.
    pub const YELLOW: &str = "yellow";
    /// The FEs or every compute group unavailable.
    pub const RED: &str = "red";
}

/// The observed state of a disaggregated cluster.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DorisDisaggregatedClusterStatus {
    /// The instance id the cluster is registered under in the meta service.
    pub instance_id: Option<String>,
    /// The meta service.
    pub meta_service_status: Option<MetaServiceStatus>,
    /// The FEs.
    pub fe_status: Option<DisaggregatedFeStatus>,
    /// The cluster as a whole.
    pub cluster_health: Option<ClusterHealth>,
    /// One entry per compute group.
    pub compute_group_statuses: Option<Vec<ComputeGroupStatus>>,
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
    pub configuration: Option<Vec<super::ConfigChangeStatus>>,
    /// Data volumes the operator grew, and how far each has got.
    pub volumes: Option<Vec<VolumeResize>>,
    /// Host settings below what Doris wants, as the nodes' checks found them.
    pub host_checks: Option<Vec<HostCheck>>,
    /// Each part's pods and phase, by part name (`ms`, `fe`, and each
    /// compute group's object name).
    pub components: Option<BTreeMap<String, ComponentStatus>>,
    /// Short texts for the `kubectl get` columns.
    pub summary: Option<StatusSummary>,
}

/// The meta service's state.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetaServiceStatus {
    /// Reconciling, Ready, Scaling …
    pub phase: Option<String>,
    /// Available or UnAvailable.
    pub available_status: Option<String>,
    /// The address (host:port) the FEs and BEs reach the meta service at.
    pub meta_service_endpoint: Option<String>,
    /// The token for the meta service's API.
    pub ms_token: Option<String>,
    /// Desired pods.
    pub replicas: Option<i32>,
    /// Ready pods.
    pub ready_replicas: Option<i32>,
}

/// The FEs' state.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisaggregatedFeStatus {
    /// Reconciling, Ready, Scaling …
    pub phase: Option<String>,
    /// Available or UnAvailable.
    pub available_status: Option<String>,
    /// The cluster id the FEs run with (CLUSTER_ID).
    pub cluster_id: Option<String>,
    /// Desired pods.
    pub replicas: Option<i32>,
    /// Ready pods.
    pub ready_replicas: Option<i32>,
}

/// The cluster's health at a glance.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterHealth {
    /// green: every part has all its pods ready; red: the meta service or
    /// the FE has no ready pod, or at most half the compute groups have one;
    /// yellow otherwise.
    pub health: Option<String>,
    /// Whether the FEs answer.
    pub fe_available: Option<bool>,
    /// Compute groups in the spec.
    pub cg_count: Option<i32>,
    /// Compute groups with at least one ready pod.
    pub cg_available_count: Option<i32>,
    /// Compute groups whose pods are all ready.
    pub cg_full_available_count: Option<i32>,
}

/// One compute group's state.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeGroupStatus {
    /// Reconciling, Ready, Scaling, Decommissioning …
    pub phase: Option<String>,
    /// The StatefulSet of its BEs.
    pub statefulset_name: Option<String>,
    /// The Service in front of its BEs.
    pub service_name: Option<String>,
    /// Its uniqueId in the spec.
    pub unique_id: Option<String>,
    /// Its id in Doris (the BEs' compute_group_id tag), learned from the FE.
    pub compute_group_id: Option<String>,
    /// Available or UnAvailable.
    pub available_status: Option<String>,
    /// The replicas it had before it was suspended.
    pub suspend_replicas: Option<i32>,
    /// Pods its StatefulSet has.
    pub replicas: Option<i32>,
    /// Pods ready (for minReadySeconds).
    pub available_replicas: Option<i32>,
}

/// The CustomResourceDefinition.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = DorisDisaggregatedCluster::crd();
    crd.metadata.labels = Some(crate::crd::version_labels());
    crd
}

/// The CRD as YAML, as committed in `crds/`.
pub fn crd_yaml() -> String {
    let text = serde_norway::to_string(&crd()).expect("the CRD serializes");
    format!("---\n{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_labels_of_the_unique_id() {
        assert_eq!(compute_group_object_name("cg1"), "cg1");
        assert_eq!(compute_group_object_name("Big_Group_2"), "big-group-2");
        assert_eq!(compute_group_name("cg_1"), "cg_1");
    }

    #[test]
    fn cluster_id_is_derived_as_the_peer_derives_it() {
        // SHA-256("default-test-disaggregated-cluster") mod 10^9 + 10^9,
        // worked out independently with Python's int.from_bytes.
        assert_eq!(
            cluster_id("default", "test-disaggregated-cluster"),
            1751150972
        );
        assert_eq!(cluster_id("doris", "ddc"), 1714413046);
    }

    #[test]
    fn fdb_address_wins_over_the_config_map() {
        let both = Fdb {
            address: Some("a:b@10.0.0.1:4500".into()),
            config_map_namespace_name: Some(NamespacedName {
                namespace: None,
                name: Some("fdb-config".into()),
            }),
        };
        assert_eq!(both.address(), Some("a:b@10.0.0.1:4500"));
        assert_eq!(both.config_map("doris"), None);
        let map = Fdb {
            address: Some(String::new()),
            ..both
        };
        assert_eq!(map.config_map("doris"), Some(("doris", "fdb-config")));
    }

    #[test]
    fn a_status_written_by_the_peer_reads() {
        let peer = serde_json::json!({
            "metaServiceStatus": {"phase": "Ready", "availableStatus": "Available",
                "metaServiceEndpoint": "ddc-ms.doris:5000", "msToken": "token"},
            "feStatus": {"phase": "GracefulRolling", "availableStatus": "UnAvailable", "clusterId": "1714413046"},
            "clusterHealth": {"health": "yellow", "feAvailable": true, "cgCount": 2,
                "cgAvailableCount": 1, "cgFullAvailableCount": 1},
            "computeGroupStatuses": [{"phase": "SomePhaseOfLater", "statefulsetName": "ddc-cg1",
                "serviceName": "ddc-cg1", "uniqueId": "cg1", "computeGroupId": "9",
                "availableStatus": "Available", "suspendReplicas": 3, "replicas": 3,
                "availableReplicas": 2}],
            "observedGeneration": 4
        });
        let status: DorisDisaggregatedClusterStatus = serde_json::from_value(peer.clone()).unwrap();
        assert_eq!(
            status.fe_status.as_ref().unwrap().phase.as_deref(),
            Some("GracefulRolling")
        );
        let health = status.cluster_health.as_ref().unwrap();
        assert_eq!(health.health.as_deref(), Some(health::YELLOW));
        assert_eq!(serde_json::to_value(&status).unwrap(), peer);
    }
}
