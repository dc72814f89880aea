//! Every field of every ctx, described once. The reference page is
//! generated from this table, and a test checks it against the ctx the
//! planning code builds for the sample clusters: a field added to a ctx
//! without a row here, or a row for a field no ctx has, fails it.

use super::Policy::{self, *};

/// One field of the ctx some receivers get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// From the top of ctx: `names.statefulset`; `pods[].role` for a field
    /// of each item of an array.
    pub path: &'static str,
    /// The receivers whose ctx has it.
    pub policies: &'static [Policy],
    /// What it holds: `string`, `int`, `bool`, `map`, `[map]`, …; `or ()`
    /// when it may be absent.
    pub ty: &'static str,
    /// The contract version that introduced it.
    pub since: u32,
    /// Its keys (or items) are data (a user's labels, a configuration
    /// file's keys), not fields of the contract.
    pub open: bool,
    pub description: &'static str,
}

const fn field(
    path: &'static str,
    policies: &'static [Policy],
    ty: &'static str,
    description: &'static str,
) -> Field {
    Field {
        path,
        policies,
        ty,
        since: 1,
        open: false,
        description,
    }
}

/// A field whose keys or items are data.
const fn open(
    path: &'static str,
    policies: &'static [Policy],
    ty: &'static str,
    description: &'static str,
) -> Field {
    Field {
        open: true,
        ..field(path, policies, ty, description)
    }
}

/// Every receiver.
const EVERY: &[Policy] = &Policy::ALL;
/// What is called once per part of a cluster, in this order.
const PART: &[Policy] = &[Config, HostInit, Shape, ManifestTemplate];
/// A part's receivers once its configuration is decided.
const CONFIGURED: &[Policy] = &[HostInit, Shape, ManifestTemplate];
/// A part's receivers once its host preparation is decided.
const PREPARED: &[Policy] = &[Shape, ManifestTemplate];
/// The receivers whose `cluster` carries its labels.
const PART_CLUSTER: &[Policy] = &[Config, HostInit, Shape, ManifestTemplate, ConfigTemplate];
/// The policies called for a whole cluster (or one change of it).
const CLUSTER: &[Policy] = &[ConfigChange, RestartOrder, Maintenance, Membership];

/// The fields of every ctx, by path.
pub const FIELDS: &[Field] = &[
    field(
        "contract",
        EVERY,
        "int",
        "The version of this contract the operator speaks.",
    ),
    field(
        "kind",
        &[
            Config,
            HostInit,
            Shape,
            ManifestTemplate,
            ConfigChange,
            Membership,
        ],
        "string",
        "`\"DorisCluster\"` or `\"DorisDisaggregatedCluster\"`.",
    ),
    field(
        "cluster",
        EVERY,
        "map",
        "The cluster the call is about, as the user wrote it.",
    ),
    field(
        "cluster.kind",
        CLUSTER,
        "string",
        "`\"DorisCluster\"` or `\"DorisDisaggregatedCluster\"`.",
    ),
    field("cluster.name", EVERY, "string", "Its `metadata.name`."),
    field(
        "cluster.namespace",
        EVERY,
        "string",
        "Its namespace; offline, `\"default\"` for a cluster given without one.",
    ),
    open(
        "cluster.labels",
        PART_CLUSTER,
        "map",
        "Its `metadata.labels`.",
    ),
    open(
        "cluster.annotations",
        EVERY,
        "map",
        "Its `metadata.annotations`.",
    ),
    open(
        "cluster.spec",
        EVERY,
        "map",
        "Its whole `spec`, with the keys as written (camelCase).",
    ),
    field(
        "component",
        &[
            Config,
            HostInit,
            Shape,
            ManifestTemplate,
            ConfigChange,
            ConfigTemplate,
        ],
        "string",
        "What the part runs: `\"fe\"`, `\"be\"`, `\"cn\"` or `\"broker\"` in a \
         DorisCluster; `\"ms\"`, `\"fe\"` or `\"cg\"` (a compute group) in a \
         DorisDisaggregatedCluster.",
    ),
    field(
        "part",
        &[Config, HostInit, Shape, ManifestTemplate, ConfigChange],
        "string",
        "The part's name: the component's, or a compute group's object name \
         (its `uniqueId` lower-cased, `_` as `-`).",
    ),
    open(
        "spec",
        PART,
        "map",
        "The part's spec as written in the cluster (camelCase): `feSpec`, \
         `beSpec`, `cnSpec` or `brokerSpec`; `metaService`, `feSpec` or one \
         `computeGroups[i]`.",
    ),
    field(
        "names",
        PART,
        "map",
        "The names of the part's objects, which are fixed: users and tools \
         address them.",
    ),
    field(
        "names.statefulset",
        PART,
        "string",
        "The StatefulSet, `<cluster>-<part>`.",
    ),
    field(
        "names.internal_service",
        PART,
        "string",
        "The headless Service that gives pods their DNS names.",
    ),
    field(
        "names.access_service",
        PART,
        "string",
        "The Service clients reach the part through (for the meta service, \
         its one Service: the same as `internal_service`).",
    ),
    field(
        "names.config_map",
        PART,
        "string",
        "The ConfigMap that carries the rendered configuration files, \
         `<cluster>-<part>-conf`.",
    ),
    field(
        "names.fe_access_service",
        PART,
        "string",
        "The FE's access Service, which the other parts reach the FE through.",
    ),
    field(
        "names.fe_internal_service",
        PART,
        "string",
        "The FE's headless Service.",
    ),
    field(
        "names.ms_service",
        PART,
        "string",
        "DorisDisaggregatedCluster only: the meta service's Service.",
    ),
    open(
        "selector",
        PART,
        "map",
        "The pod selector labels, fixed (changing them would orphan the pods): \
         `app.doris.ownerreference/name: <cluster>-<part>` and \
         `app.kubernetes.io/component: <part>`; in a DorisDisaggregatedCluster \
         also `app.doris.disaggregated.cluster: <cluster>`.",
    ),
    field(
        "config",
        PART,
        "map",
        "The part's configuration file and where it comes from.",
    ),
    field(
        "config.file",
        PART,
        "string",
        "The file Doris reads its settings from: `\"fe.conf\"`, `\"be.conf\"` \
         (BE, CN, compute group), `\"apache_hdfs_broker.conf\"` or \
         `\"doris_cloud.conf\"` (meta service).",
    ),
    field(
        "config.source",
        PART,
        "string or ()",
        "The user's ConfigMap mounted where Doris reads its configuration \
         (`configMapInfo.configMapName`, or the first of `configMaps` at that \
         path), `()` when there is none.",
    ),
    field(
        "config.mount_path",
        PART,
        "string",
        "Where the configuration files are mounted (`/etc/doris`).",
    ),
    open(
        "config.user",
        PART,
        "map",
        "The values of the user's file, keys lower-cased, quotes removed.",
    ),
    open(
        "config.values",
        CONFIGURED,
        "map",
        "The final values, as the template rendered them (keys lower-cased): \
         read ports and paths here.",
    ),
    open(
        "config.files",
        CONFIGURED,
        "map",
        "The files mounted at `config.mount_path`, by name: the user's \
         ConfigMap's with the rendered one in place.",
    ),
    field(
        "config.hash",
        CONFIGURED,
        "string",
        "A hash of `config.files`. A pod template that carries it restarts \
         its pods when the configuration changes.",
    ),
    open(
        "fe_config",
        PART,
        "map",
        "The FE's final configuration values (keys lower-cased); empty until \
         the FE is planned: in the FE's own `fn config`, and for a meta \
         service, which is planned before the FE.",
    ),
    field(
        "mounts",
        PART,
        "[map]",
        "The ConfigMaps and Secrets mounted into the part's pods, one entry \
         per directory. Their file names are already checked not to collide.",
    ),
    field("mounts[].path", PART, "string", "The directory."),
    field(
        "mounts[].sources",
        PART,
        "[map]",
        "What is mounted there, in the order a projected volume lists it; \
         the rendered configuration comes last in its directory.",
    ),
    field(
        "mounts[].sources[].kind",
        PART,
        "string",
        "`\"configMap\"` or `\"secret\"`.",
    ),
    field(
        "mounts[].sources[].name",
        PART,
        "string",
        "The ConfigMap's or Secret's name.",
    ),
    field(
        "mounts[].sources[].field",
        PART,
        "string",
        "The field of the part's spec that mounts it (`secrets[0]`, \
         `configMapInfo.configMaps[1]`), or `\"configuration\"` for the \
         rendered configuration.",
    ),
    field(
        "pod_security",
        PART,
        "string",
        "The Pod Security level the namespace enforces (its label \
         `pod-security.kubernetes.io/enforce`): `\"privileged\"`, \
         `\"baseline\"` or `\"restricted\"`.",
    ),
    field(
        "api",
        PART,
        "map",
        "What the API server serves that conventions ask about, as found at \
         start and every 10 minutes (offline: `--api-resources`).",
    ),
    field(
        "api.service_monitor",
        PART,
        "bool",
        "Whether `monitoring.coreos.com/v1` `ServiceMonitor` is served.",
    ),
    field(
        "api.pod_monitor",
        PART,
        "bool",
        "Whether `monitoring.coreos.com/v1` `PodMonitor` is served.",
    ),
    field(
        "disaggregated",
        PART,
        "map",
        "DorisDisaggregatedCluster only: what its parts need to reach each \
         other.",
    ),
    field(
        "disaggregated.fdb_endpoint",
        PART,
        "string or ()",
        "The FoundationDB cluster string, from `metaService.fdb.address` or \
         the `cluster-file` of the fdb-kubernetes-operator ConfigMap \
         `fdb.configMapNamespaceName` names; `()` when unknown.",
    ),
    field(
        "disaggregated.ms_endpoint",
        PART,
        "string",
        "`<cluster>-ms.<namespace>:<brpc_listen_port>`.",
    ),
    field(
        "disaggregated.cluster_id",
        PART,
        "string",
        "The FE's `cluster_id`, derived from the namespace and name.",
    ),
    field(
        "disaggregated.fe_address",
        PART,
        "string",
        "`<cluster>-fe.<namespace>`.",
    ),
    field(
        "disaggregated.fe_query_port",
        PART,
        "int",
        "The FE's `query_port`.",
    ),
    field(
        "disaggregated.compute_group_name",
        PART,
        "string or ()",
        "A compute group's name in Doris: its `uniqueId` with `-` as `_`; \
         `()` for the other parts.",
    ),
    field(
        "disaggregated.unique_id",
        PART,
        "string or ()",
        "A compute group's `uniqueId` as written; `()` for the other parts.",
    ),
    open(
        "host_init",
        PREPARED,
        "[map]",
        "The init containers `fn host_init` returned, checked.",
    ),
    open(
        "host_sysctls",
        PREPARED,
        "[map]",
        "The pod sysctls `fn host_init` returned, `[#{ name, value }]` \
         (empty when it returned none).",
    ),
    open(
        "values",
        &[ManifestTemplate],
        "map",
        "What `fn shape` returned under `values`.",
    ),
    field(
        "reason",
        &[RestartOrder],
        "string",
        "Why the pods restart: `\"upgrade\"` (an image), `\"config\"` (the \
         configuration), `\"spec\"` (another field of the spec), \
         `\"requested\"` (a `restartedAt` annotation), `\"conventions\"` (an \
         edited policy or template, or a new operator version, with nothing \
         the user wrote changed), `\"preview\"` (`render --restart-plan`).",
    ),
    field(
        "pods",
        &[RestartOrder],
        "[map]",
        "The pods that need a restart.",
    ),
    field(
        "pods[].component",
        &[RestartOrder],
        "string",
        "The pod's component, as `component` above.",
    ),
    field(
        "pods[].part",
        &[RestartOrder],
        "string",
        "The pod's part: the component's name, or a compute group's.",
    ),
    field("pods[].pod", &[RestartOrder], "string", "The pod's name."),
    field(
        "pods[].ordinal",
        &[RestartOrder],
        "int",
        "Its ordinal in its StatefulSet.",
    ),
    field(
        "pods[].role",
        &[RestartOrder],
        "string or ()",
        "An FE's role, `\"master\"`, `\"follower\"` or `\"observer\"`; `()` \
         for other pods, and when the FE does not say.",
    ),
    field(
        "pods[].ready",
        &[RestartOrder],
        "bool",
        "Whether the pod is Ready.",
    ),
    field(
        "restart_on_change",
        &[ConfigChange],
        "bool",
        "A DorisCluster's `spec.enableRestartWhenConfigChange`; always true \
         for a DorisDisaggregatedCluster.",
    ),
    field("change", &[ConfigChange], "map", "The change to decide."),
    field(
        "change.file",
        &[ConfigChange],
        "string",
        "The file that changed: `config.file`, or another file of the \
         part's ConfigMap.",
    ),
    field(
        "change.key",
        &[ConfigChange],
        "string",
        "The key as the new file writes it (as the old one did, when \
         removed); the file's name for another file.",
    ),
    field(
        "change.old",
        &[ConfigChange],
        "string or ()",
        "The value before, unquoted; `()` for an added key and another file.",
    ),
    field(
        "change.new",
        &[ConfigChange],
        "string or ()",
        "The value after, unquoted; `()` for a removed key and another file.",
    ),
    field(
        "change.mutable",
        &[ConfigChange],
        "bool",
        "Whether the running Doris may change the key now (the FE's `SHOW \
         FRONTEND CONFIG` IsMutable, a BE's `/api/show_config`); false for \
         other files, removed keys, brokers and meta services.",
    ),
    field(
        "file",
        &[ConfigTemplate],
        "string",
        "The file being rendered, as `config.file`.",
    ),
    field(
        "source",
        &[ConfigTemplate],
        "string or ()",
        "The user's ConfigMap, as `config.source`.",
    ),
    field(
        "entries",
        &[ConfigTemplate],
        "[map]",
        "The file's lines in order: the user's, then the defaults and \
         overrides `fn config` added, in key order.",
    ),
    field(
        "entries[].key",
        &[ConfigTemplate],
        "string",
        "The key as written.",
    ),
    field(
        "entries[].value",
        &[ConfigTemplate],
        "string",
        "The value as written, quotes included.",
    ),
];
