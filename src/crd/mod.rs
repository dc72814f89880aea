//! The `DorisCluster` resource (`doris.selectdb.com/v1`, short name `dcr`),
//! wire-compatible with apache/doris-operator: every field it accepts is
//! accepted here with the same JSON name and meaning.
//!
//! Fields whose type is a large Kubernetes type (affinity, tolerations, env,
//! volume claims …) get a small "any object" schema in the CRD, so the CRD
//! stays far below kubectl's 256 KiB client-side apply limit; their content
//! is still checked when the operator reads the cluster.

pub mod disaggregated;
pub mod names;
mod schema;
mod status;
mod validate;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, HostAlias, LocalObjectReference, PersistentVolumeClaimSpec,
    PodSecurityContext, ResourceRequirements, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

pub use disaggregated::{
    ClusterHealth, CommonSpec, ComputeGroupSpec, ComputeGroupStatus, ConfigMapMount,
    DisaggregatedFeSpec, DisaggregatedFeStatus, DisaggregatedPersistentVolume,
    DisaggregatedService, DisaggregatedSystemInitialization, DorisDisaggregatedCluster,
    DorisDisaggregatedClusterSpec, DorisDisaggregatedClusterStatus, Fdb, MetaServiceSpec,
    MetaServiceStatus, NamespacedName, PortMap, compute_group_name, compute_group_object_name,
};
pub use status::{
    CnStatus, ComponentCondition, ComponentStatus, ConfigChangeStatus, DorisClusterStatus,
    HorizontalScaler, HostCheck, LiveSetting, MemberNode, MembershipStatus, RefusedSetting,
    RolloutStatus, StatusSummary, VolumeResize,
};
pub use validate::{
    CrdError, FieldError, MAX_DEPTH, TooDeep, check_depth, disaggregated_admission,
    disaggregated_from_value, parse_cluster, parse_disaggregated_cluster, validate,
    validate_disaggregated,
};

/// The desired state of a Doris cluster.
#[skip_serializing_none]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "doris.selectdb.com",
    version = "v1",
    kind = "DorisCluster",
    doc = "A Doris cluster: its FE, BE, CN and Broker components.",
    plural = "dorisclusters",
    shortname = "dcr",
    namespaced,
    status = "DorisClusterStatus",
    category = "doris",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"The Ready condition"}"#,
    printcolumn = r#"{"name":"FE","type":"string","jsonPath":".status.summary.fe","description":"FE pods ready/desired"}"#,
    printcolumn = r#"{"name":"BE","type":"string","jsonPath":".status.summary.be","description":"BE pods ready/desired"}"#,
    printcolumn = r#"{"name":"CN","type":"string","jsonPath":".status.summary.cn","description":"Compute node pods ready/desired","priority":1}"#,
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".status.summary.rollout","description":"What a rollout in progress waits for; empty when none runs"}"#,
    printcolumn = r#"{"name":"RestartHeld","type":"string","jsonPath":".status.rollout.held","description":"Why a pending restart waits: maintenance-window or approval"}"#,
    printcolumn = r#"{"name":"Conventions","type":"string","jsonPath":".status.conventionsRevision","description":"The conventions revision the objects were planned with"}"#,
    printcolumn = r#"{"name":"FeStatus","type":"string","jsonPath":".status.feStatus.componentCondition.phase","priority":1}"#,
    printcolumn = r#"{"name":"BeStatus","type":"string","jsonPath":".status.beStatus.componentCondition.phase","priority":1}"#,
    printcolumn = r#"{"name":"CnStatus","type":"string","jsonPath":".status.cnStatus.componentCondition.phase","priority":1}"#,
    printcolumn = r#"{"name":"BrokerStatus","type":"string","jsonPath":".status.brokerStatus.componentCondition.phase","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = schema::root_rules()[0].clone(),
    validation = schema::root_rules()[1].clone()
)]
#[serde(rename_all = "camelCase")]
pub struct DorisClusterSpec {
    /// Frontends: metadata, SQL entry point, query planning.
    pub fe_spec: Option<FeSpec>,
    /// Backends: data storage and query execution.
    pub be_spec: Option<BeSpec>,
    /// Compute nodes: BEs that store no data.
    pub cn_spec: Option<CnSpec>,
    /// Brokers, for loads from HDFS and object storage.
    pub broker_spec: Option<BrokerSpec>,
    /// Deprecated: plaintext management user; use authSecret.
    pub admin_user: Option<AdminUser>,
    /// Secret (kubernetes.io/basic-auth: username, password) of the management user.
    pub auth_secret: Option<String>,
    /// Restart a component when its configuration files change.
    pub enable_restart_when_config_change: Option<bool>,
    /// Kerberos configuration mounted into every component.
    pub kerberos_info: Option<KerberosInfo>,
    /// Existing ReadWriteMany claims mounted into components (plugins, UDF jars).
    #[serde(default)]
    #[schemars(schema_with = "schema::bounded_list::<SharedPersistentVolumeClaim>")]
    pub shared_persistent_volume_claims: Option<Vec<SharedPersistentVolumeClaim>>,
}

/// Deprecated management user.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    /// The user the operator signs in to the FE as.
    pub name: Option<String>,
    /// Its password, in plain text (readable by anyone who may read the
    /// cluster: prefer authSecret).
    pub password: Option<String>,
}

/// Kerberos files for the components.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KerberosInfo {
    /// ConfigMap with krb5.conf, mounted at /etc/krb5.
    pub krb5_config_map: Option<String>,
    /// Secret with keytab files.
    pub keytab_secret_name: Option<String>,
    /// Where the keytab Secret is mounted (default /etc/keytab).
    #[serde(default)]
    #[schemars(schema_with = "schema::mount_path")]
    pub keytab_path: Option<String>,
}

/// A pre-existing claim shared by the pods of some components.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedPersistentVolumeClaim {
    /// Mount path; ${DORIS_HOME} is replaced by the component's home.
    #[serde(default)]
    #[schemars(schema_with = "schema::shared_mount_path")]
    pub mount_path: Option<String>,
    /// The claim's name.
    pub persistent_volume_claim_name: Option<String>,
    /// Components that mount it (fe, be, cn, broker); empty means all.
    pub support_components: Option<Vec<String>>,
}

/// Declares `BaseSpec` (the fields every component has) and hands those
/// fields, as tokens, to `$mac`: the component specs are declared from the
/// one list, so it is written once.
macro_rules! with_base_fields {
    ($mac:ident ! { $($args:tt)* }) => {
        $mac! { $($args)* common {
            /// Container image (`apache/doris:fe-2.1.8`); changing it
            /// upgrades the component by a rollout.
            pub image: String,
            /// Number of pods. Default 1. Lowering it on a BE or CN
            /// decommissions the pods that go first.
            #[schemars(range(min = 0))]
            pub replicas: Option<i32>,
            /// Secrets for pulling the image.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
            /// Container resource requests, by resource: cpu in cores (`8`,
            /// `500m`), memory in bytes (`16Gi`). Unset: nothing reserved.
            #[serde(default)]
            #[schemars(schema_with = "schema::quantities")]
            pub requests: Option<BTreeMap<String, Quantity>>,
            /// Container resource limits, in the units of requests. Unset:
            /// no limit.
            #[serde(default)]
            #[schemars(schema_with = "schema::quantities")]
            pub limits: Option<BTreeMap<String, Quantity>>,
            /// Dynamic resource claims of the container.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub claims: Option<Vec<serde_json::Value>>,
            /// ConfigMaps with the configuration files (fe.conf, be.conf …).
            pub config_map_info: Option<ConfigMapInfo>,
            /// Secrets mounted into the pods.
            #[serde(default)]
            #[schemars(schema_with = "schema::mounts_of::<SecretMount>")]
            pub secrets: Option<Vec<SecretMount>>,
            /// Persistent volumes; an entry without mountPath covers every data directory.
            #[serde(default)]
            #[schemars(schema_with = "schema::bounded_list::<PersistentVolume>")]
            pub persistent_volumes: Option<Vec<PersistentVolume>>,
            /// An extra privileged init container.
            pub system_initialization: Option<SystemInitialization>,
            /// How the component is exposed.
            pub service: Option<ExportService>,
            /// FE addresses for components whose FE is not in this cluster.
            pub fe_address: Option<FeAddress>,
            /// Environment variables; they replace same-named defaults.
            #[serde(default)]
            #[schemars(schema_with = "schema::env_vars")]
            pub env_vars: Option<Vec<EnvVar>>,
            /// Node labels the pods must match.
            pub node_selector: Option<BTreeMap<String, String>>,
            /// Scheduling constraints, merged with the default host spreading.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub affinity: Option<Affinity>,
            /// Tolerations of the pods.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub tolerations: Option<Vec<Toleration>>,
            /// Extra /etc/hosts entries.
            #[serde(default)]
            #[schemars(schema_with = "schema::object_list")]
            pub host_aliases: Option<Vec<HostAlias>>,
            /// Extra pod labels.
            pub pod_labels: Option<BTreeMap<String, String>>,
            /// Pod annotations.
            pub annotations: Option<BTreeMap<String, String>>,
            /// Service account of the pods.
            pub service_account: Option<String>,
            /// Deprecated: pod fsGroup; use securityContext.
            pub fs_group: Option<i64>,
            /// Pod security context.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub security_context: Option<PodSecurityContext>,
            /// Security context for containers that have none.
            #[serde(default)]
            #[schemars(schema_with = "schema::object")]
            pub container_security_context: Option<SecurityContext>,
            /// Seconds a pod may take to start before it is restarted.
            /// Default and least 360.
            pub start_timeout: Option<i32>,
            /// Seconds the liveness probe waits for an answer before it
            /// counts a failure. Default 180.
            pub live_timeout: Option<i32>,
            /// Readiness probe settings; unset fields keep their defaults.
            pub readiness_probe_policy: Option<ReadinessProbePolicy>,
        } }
    };
}

macro_rules! base_spec {
    (common { $( $(#[$meta:meta])* pub $field:ident : $ty:ty, )* }) => {
        /// What every component's spec has.
        #[skip_serializing_none]
        #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct BaseSpec {
            $( $(#[$meta])* pub $field: $ty, )*
        }
    };
}

/// A component spec: its own fields and, in Rust, `base: BaseSpec`; on the
/// wire the common fields sit beside its own. It is read through a flat twin
/// struct rather than `#[serde(flatten)]`, which buffers the whole component
/// and needs a deep stack for large specs, and hides unknown fields.
macro_rules! component_spec {
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
            pub base: Box<BaseSpec>,
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
                    base: Box::new(BaseSpec { $( $bfield: wire.$bfield, )* }),
                })
            }
        }
    };
}

with_base_fields!(base_spec! {});

with_base_fields!(component_spec! {
    /// Frontends.
    #[schemars(transform = schema::election_rule)]
    pub struct FeSpec read as FeSpecWire {
        /// FE followers: the voting members that elect the master, a count
        /// of pods (the first electionNumber FE pods; the other replicas
        /// are observers). Default 3. Fixed once the cluster exists: a
        /// change is refused.
        #[schemars(range(min = 1))]
        pub election_number: Option<i32>,
    }
});

/// The FE follower count when `electionNumber` is not set.
pub const DEFAULT_ELECTION_NUMBER: i32 = 3;

impl FeSpec {
    pub fn election_number(&self) -> i32 {
        self.election_number.unwrap_or(DEFAULT_ELECTION_NUMBER)
    }
}

with_base_fields!(component_spec! {
    /// Backends.
    pub struct BeSpec read as BeSpecWire {
        /// Run BEs privileged so workload groups can manage cgroups.
        pub enable_workload_group: Option<bool>,
        /// Skip the default privileged host tuning init container.
        pub skip_default_system_init: Option<bool>,
        /// Prefer scheduling BEs next to FEs.
        pub enable_fe_affinity: Option<bool>,
        /// Tell the BE its CPU limit (env BE_CPU_LIMIT).
        #[serde(rename = "autoResolveLimitCPU")]
        pub auto_resolve_limit_cpu: Option<bool>,
    }
});

with_base_fields!(component_spec! {
    /// Compute nodes.
    pub struct CnSpec read as CnSpecWire {
        /// Skip the default privileged host tuning init container.
        pub skip_default_system_init: Option<bool>,
        /// Scale compute nodes with a HorizontalPodAutoscaler.
        pub auto_scaling_policy: Option<AutoScalingPolicy>,
        /// Tell the CN its CPU limit (env BE_CPU_LIMIT).
        #[serde(rename = "autoResolveLimitCPU")]
        pub auto_resolve_limit_cpu: Option<bool>,
    }
});

with_base_fields!(component_spec! {
    /// Brokers.
    pub struct BrokerSpec read as BrokerSpecWire {
        /// Prefer scheduling brokers next to BEs.
        pub kick_off_affinity_be: Option<bool>,
    }
});

impl BaseSpec {
    /// Desired pods; a StatefulSet's own default (1) when unset.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }
}

/// ConfigMaps of a component.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapInfo {
    /// ConfigMap with the component's configuration file, mounted at /etc/doris.
    pub config_map_name: Option<String>,
    /// Deprecated and ignored: the key is always fe.conf, be.conf or apache_hdfs_broker.conf.
    pub resolve_key: Option<String>,
    /// More ConfigMaps, each at its own path.
    #[serde(default)]
    #[schemars(schema_with = "schema::mounts_of::<MountConfigMapInfo>")]
    pub config_maps: Option<Vec<MountConfigMapInfo>>,
}

/// A ConfigMap and where it is mounted.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountConfigMapInfo {
    /// The ConfigMap, in the cluster's namespace.
    pub config_map_name: Option<String>,
    /// Absolute path it is mounted at, one file per key. Default /etc/doris.
    #[serde(default)]
    #[schemars(schema_with = "schema::mount_path")]
    pub mount_path: Option<String>,
}

/// A Secret and where it is mounted.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretMount {
    /// The Secret, in the cluster's namespace.
    pub secret_name: Option<String>,
    /// Absolute path it is mounted at, one file per key. Default /etc/doris.
    #[serde(default)]
    #[schemars(schema_with = "schema::mount_path")]
    pub mount_path: Option<String>,
}

/// A persistent volume of each pod.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    /// The claim of each pod.
    #[serde(default)]
    #[schemars(schema_with = "schema::object")]
    pub persistent_volume_claim_spec: Option<PersistentVolumeClaimSpec>,
    /// Where it is mounted; empty: every data directory from the configuration.
    #[serde(default)]
    #[schemars(schema_with = "schema::volume_mount_path")]
    pub mount_path: Option<String>,
    /// Volume name.
    pub name: Option<String>,
    /// Annotations of the claims.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Who creates the claims.
    pub provisioner: Option<PvcProvisioner>,
}

/// Who creates persistent volume claims.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum PvcProvisioner {
    #[serde(rename = "")]
    Unspecified,
    StatefulSet,
    Operator,
}

/// An extra privileged init container.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemInitialization {
    /// Image. Default selectdb/alpine:latest.
    pub init_image: Option<String>,
    /// The command it runs. Default: the image's entrypoint. (BEs and
    /// CNs are tuned besides by a container of their own that raises
    /// vm.max_map_count and turns swap off.)
    pub command: Option<Vec<String>>,
    /// Arguments of the command.
    pub args: Option<Vec<String>>,
    /// Resources of the init container. Default: none reserved.
    #[serde(default)]
    #[schemars(schema_with = "schema::resources")]
    pub resources: Option<ResourceRequirements>,
}

/// The component's access Service.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportService {
    /// Service type: ClusterIP (default), NodePort, LoadBalancer or
    /// ExternalName.
    #[serde(rename = "type")]
    pub type_: Option<ServiceType>,
    /// Node ports by target port, for NodePort and LoadBalancer Services.
    #[serde(default)]
    #[schemars(schema_with = "schema::service_ports::<DorisServicePort>")]
    pub service_ports: Option<Vec<DorisServicePort>>,
    /// Service annotations (cloud load balancer settings).
    pub annotations: Option<BTreeMap<String, String>>,
    /// Requested load balancer IP.
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
}

/// Kubernetes Service types.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
}

/// A node port for one container port.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DorisServicePort {
    /// The port on every node (30000-32767 by default in Kubernetes).
    /// Unset or 0: Kubernetes picks one.
    #[schemars(range(min = 0, max = 65535))]
    pub node_port: Option<i32>,
    /// The component's port it forwards to (the FE's query_port 9030, say).
    #[schemars(range(min = 0, max = 65535))]
    pub target_port: Option<i32>,
}

/// FE addresses outside this cluster.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FeAddress {
    /// A Service in this namespace in front of the FEs.
    #[serde(rename = "ServiceName")]
    pub service_name: Option<String>,
    pub endpoints: Option<Endpoints>,
}

/// FE hosts and query port.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Endpoints {
    /// Hosts or IPs (apache/doris-operator's ":address" key is accepted too).
    #[serde(alias = ":address")]
    pub address: Option<Vec<String>>,
    /// FE query port.
    pub port: Option<i32>,
}

/// Readiness probe overrides; values ≤ 0 keep the default.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessProbePolicy {
    /// Seconds one probe may take. Default 3.
    pub timeout_seconds: Option<i32>,
    /// Failed probes in a row before the pod is marked not ready. Default 3.
    pub failure_threshold: Option<i32>,
    /// Seconds between probes. Default 5.
    pub period_seconds: Option<i32>,
}

/// Compute node autoscaling.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingPolicy {
    /// autoscaling API version to use: v1 or v2. The operator makes an
    /// autoscaling/v2 HorizontalPodAutoscaler either way.
    pub version: Option<AutoScalerVersion>,
    /// The fewest compute node pods the autoscaler keeps. Default 1.
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// The most compute node pods the autoscaler makes. Required.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// The autoscaler's metrics and behaviour. Default: Kubernetes' (80%
    /// average CPU utilisation).
    pub hpa_policy: Option<HpaPolicy>,
}

/// autoscaling API versions.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoScalerVersion {
    V1,
    V2,
}

/// HPA metrics and behaviour, as in autoscaling/v2.
#[skip_serializing_none]
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaPolicy {
    /// What the autoscaler scales on, as autoscaling/v2 MetricSpecs
    /// (`kubectl explain hpa.spec.metrics`).
    #[serde(default)]
    #[schemars(schema_with = "schema::object_list")]
    pub metrics: Option<Vec<serde_json::Value>>,
    /// How fast it scales up and down, as autoscaling/v2
    /// HorizontalPodAutoscalerBehavior.
    #[serde(default)]
    #[schemars(schema_with = "schema::object")]
    pub behavior: Option<serde_json::Value>,
}

// ------------------------------------------------------------- components

/// The components of a Doris cluster, in the order they are planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Fe,
    Be,
    Cn,
    Broker,
    /// The meta service of a storage-compute separated cluster.
    Ms,
    /// A compute group of a storage-compute separated cluster: BEs whose
    /// data lives in object storage.
    Cg,
}

impl ComponentKind {
    /// The components of a `DorisCluster`, in the order they are planned.
    pub const ALL: [ComponentKind; 4] = [
        ComponentKind::Fe,
        ComponentKind::Be,
        ComponentKind::Cn,
        ComponentKind::Broker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Fe => "fe",
            ComponentKind::Be => "be",
            ComponentKind::Cn => "cn",
            ComponentKind::Broker => "broker",
            ComponentKind::Ms => "ms",
            ComponentKind::Cg => "cg",
        }
    }
}

/// One component's spec, whatever its kind.
#[derive(Clone, Copy, Debug)]
pub enum ComponentView<'a> {
    Fe(&'a FeSpec),
    Be(&'a BeSpec),
    Cn(&'a CnSpec),
    Broker(&'a BrokerSpec),
}

impl<'a> ComponentView<'a> {
    pub fn kind(&self) -> ComponentKind {
        match self {
            ComponentView::Fe(_) => ComponentKind::Fe,
            ComponentView::Be(_) => ComponentKind::Be,
            ComponentView::Cn(_) => ComponentKind::Cn,
            ComponentView::Broker(_) => ComponentKind::Broker,
        }
    }

    pub fn base(&self) -> &'a BaseSpec {
        match self {
            ComponentView::Fe(s) => &s.base,
            ComponentView::Be(s) => &s.base,
            ComponentView::Cn(s) => &s.base,
            ComponentView::Broker(s) => &s.base,
        }
    }

    /// The component's whole spec as JSON, as the user wrote it.
    pub fn spec_json(&self) -> serde_json::Value {
        let value = match self {
            ComponentView::Fe(s) => serde_json::to_value(s),
            ComponentView::Be(s) => serde_json::to_value(s),
            ComponentView::Cn(s) => serde_json::to_value(s),
            ComponentView::Broker(s) => serde_json::to_value(s),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}

impl DorisClusterSpec {
    /// The spec of component `kind`, if the cluster has it.
    pub fn component(&self, kind: ComponentKind) -> Option<ComponentView<'_>> {
        match kind {
            ComponentKind::Fe => self.fe_spec.as_ref().map(ComponentView::Fe),
            ComponentKind::Be => self.be_spec.as_ref().map(ComponentView::Be),
            ComponentKind::Cn => self.cn_spec.as_ref().map(ComponentView::Cn),
            ComponentKind::Broker => self.broker_spec.as_ref().map(ComponentView::Broker),
            ComponentKind::Ms | ComponentKind::Cg => None,
        }
    }
}

/// The labels of both CustomResourceDefinitions: the operator version
/// they come with, which `version` compares with its own.
pub fn version_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        crate::build_info::CRD_VERSION_LABEL.to_string(),
        crate::build_info::VERSION.to_string(),
    )])
}

/// The CustomResourceDefinition.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = DorisCluster::crd();
    crd.metadata.labels = Some(crate::crd::version_labels());
    crd
}

/// The CRD as YAML, as committed in `crds/`.
pub fn crd_yaml() -> String {
    let text = serde_norway::to_string(&crd()).expect("the CRD serializes");
    format!("---\n{text}")
}
