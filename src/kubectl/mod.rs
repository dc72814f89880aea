//! `kubectl doris`: the operator's binary as a kubectl plugin. Invoked as
//! `kubectl-doris` (or `doris-operator kubectl`), it talks to the cluster of
//! the current kubeconfig context, as kubectl does, and offers what a person
//! needs beside `kubectl get`:
//!
//! - [`diff`]: what applying a cluster file would change in the running
//!   cluster, planned with the conventions live for it;
//! - [`status`]: one readable screen per cluster;
//! - [`restart`], [`pause`], [`resume`]: the annotations the operator reads,
//!   written for the user;
//! - [`version`]: this binary's version beside the operator's and the CRDs';
//! - [`complete`]: completion of a partly typed command line, as kubectl
//!   asks a plugin for it (`kubectl_complete-doris`).
//!
//! Every function takes a [`kube::Client`], so tests run them in-process
//! against any API server.

pub mod cli;
pub mod complete;
pub mod diff;
pub mod status;
pub mod version;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::conventions::reload::{DEFAULT_SET, SET_KEY, set_sources};
use crate::conventions::{ConventionBundle, ConventionSources};
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

/// How to reach the API server: kubectl's own flags. `kubectl doris`
/// takes them before the command as well as after it; given twice, the
/// last one wins, as with kubectl.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", overrides_with = "kubeconfig")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, overrides_with = "context")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, overrides_with = "namespace")]
    pub namespace: Option<String>,
}

impl Connection {
    /// These flags with those given after them on the command line laid
    /// over them: each flag given later wins.
    pub fn then(self, later: Connection) -> Connection {
        Connection {
            kubeconfig: later.kubeconfig.or(self.kubeconfig),
            context: later.context.or(self.context),
            namespace: later.namespace.or(self.namespace),
        }
    }

    /// The flags given, as a user writes them.
    pub fn given(&self) -> Vec<&'static str> {
        [
            (self.kubeconfig.is_some(), "--kubeconfig"),
            (self.context.is_some(), "--context"),
            (self.namespace.is_some(), "-n/--namespace"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// A client for the connection's cluster, and the namespace to use.
pub async fn connect(connection: &Connection) -> Result<(Client, String), String> {
    let options = kube::config::KubeConfigOptions {
        context: connection.context.clone(),
        ..Default::default()
    };
    let config = match &connection.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| format!("reading the kubeconfig: {e}"))?;
    let namespace = connection
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = crate::controller::kube_client(config)
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    Ok((client, namespace))
}

/// The label selector of a part's pods, as a list query takes it.
fn pod_selector(names: &crate::cluster::PartNames) -> String {
    names
        .selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Which kind a cluster name refers to, when both kinds have one by that name.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    /// DorisCluster.
    Dcr,
    /// DorisDisaggregatedCluster.
    Ddc,
}

impl KindArg {
    const BOTH: [KindArg; 2] = [KindArg::Dcr, KindArg::Ddc];

    /// The kind's name.
    pub fn kind(self) -> String {
        match self {
            KindArg::Dcr => DorisCluster::kind(&()).into_owned(),
            KindArg::Ddc => DorisDisaggregatedCluster::kind(&()).into_owned(),
        }
    }

    pub fn gvk(self) -> GroupVersionKind {
        match self {
            KindArg::Dcr => GroupVersionKind::gvk(
                &DorisCluster::group(&()),
                &DorisCluster::version(&()),
                &DorisCluster::kind(&()),
            ),
            KindArg::Ddc => GroupVersionKind::gvk(
                &DorisDisaggregatedCluster::group(&()),
                &DorisDisaggregatedCluster::version(&()),
                &DorisDisaggregatedCluster::kind(&()),
            ),
        }
    }

    /// The name of the kind's CustomResourceDefinition.
    fn crd_name(self) -> String {
        match self {
            KindArg::Dcr => format!("{}.{}", DorisCluster::plural(&()), DorisCluster::group(&())),
            KindArg::Ddc => format!(
                "{}.{}",
                DorisDisaggregatedCluster::plural(&()),
                DorisDisaggregatedCluster::group(&())
            ),
        }
    }

    /// The kind with its apiVersion: `DorisCluster (doris.selectdb.com/v1)`.
    fn described(self) -> String {
        format!("{} ({})", self.kind(), self.gvk().api_version())
    }
}

/// Which of the two kinds the API server serves, as its discovery says:
/// an API server without a kind's CustomResourceDefinition has no cluster
/// of that kind, and answers a plain 404 for its paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    pub dcr: bool,
    pub ddc: bool,
}

impl Served {
    /// Asks the API server (one discovery request per kind).
    pub async fn ask(client: &Client) -> Result<Served, String> {
        Ok(Served {
            dcr: serves(client, &KindArg::Dcr.gvk()).await?,
            ddc: serves(client, &KindArg::Ddc.gvk()).await?,
        })
    }

    pub fn serves(self, kind: KindArg) -> bool {
        match kind {
            KindArg::Dcr => self.dcr,
            KindArg::Ddc => self.ddc,
        }
    }

    /// An error saying the API server does not serve `kind`, unless it does.
    pub fn require(self, kind: KindArg) -> Result<(), String> {
        if self.serves(kind) {
            Ok(())
        } else {
            Err(format!(
                "the API server does not serve {}: its CustomResourceDefinition {} is not \
                 installed",
                kind.described(),
                kind.crd_name()
            ))
        }
    }
}

/// Whether the API server serves `gvk`, as its discovery document for the
/// group version says.
pub async fn serves(client: &Client, gvk: &GroupVersionKind) -> Result<bool, String> {
    match kube::discovery::pinned_kind(client, gvk).await {
        Ok(_) => Ok(true),
        // The group version is not served at all, or served without the kind.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingKind(_))) => Ok(false),
        Err(e) => Err(format!(
            "asking the API server whether it serves {} ({}): {e}",
            gvk.kind,
            gvk.api_version()
        )),
    }
}

/// Object `name`, `None` when there is none. Both 404s mean none: the
/// Status with reason NotFound of a missing object, and the plain 404 ("404
/// page not found") of a path the API server does not serve, as for a
/// kind whose CustomResourceDefinition was removed; kube's `get_opt` takes
/// the latter for an error.
pub async fn get_if_served<K>(api: &Api<K>, name: &str) -> kube::Result<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The cluster called `name` in `namespace`, of either kind (or of `kind`).
/// A kind the API server does not serve has no cluster; naming such a kind
/// with `kind` is an error saying so.
pub async fn find_cluster(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: Option<KindArg>,
) -> Result<Cluster, String> {
    let served = Served::ask(client).await?;
    if let Some(kind) = kind {
        served.require(kind)?;
    }
    let kinds: Vec<KindArg> = KindArg::BOTH
        .into_iter()
        .filter(|each| kind.is_none_or(|k| k == *each) && served.serves(*each))
        .collect();
    if kinds.is_empty() {
        return Err(format!(
            "the API server serves neither {} nor {}: the operator's \
             CustomResourceDefinitions are not installed",
            KindArg::Dcr.described(),
            KindArg::Ddc.described()
        ));
    }
    let mut found = Vec::new();
    for each in &kinds {
        found.extend(get_cluster(client, served, namespace, name, *each).await?);
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let unserved: Vec<String> = KindArg::BOTH
                .into_iter()
                .filter(|k| kind.is_none() && !served.serves(*k))
                .map(KindArg::kind)
                .collect();
            let kinds: Vec<String> = kinds.into_iter().map(KindArg::kind).collect();
            Err(format!(
                "no {} named {name} in namespace {namespace}{}",
                kinds.join(" or "),
                unserved
                    .iter()
                    .map(|k| format!(" (the API server does not serve {k})"))
                    .collect::<String>()
            ))
        }
        _ => Err(format!(
            "both a DorisCluster and a DorisDisaggregatedCluster are named {name} in \
             namespace {namespace}: say which with --kind dcr or --kind ddc"
        )),
    }
}

/// The cluster of kind `kind` called `name`, if there is one (an API
/// server that does not serve the kind has none).
async fn get_cluster(
    client: &Client,
    served: Served,
    namespace: &str,
    name: &str,
    kind: KindArg,
) -> Result<Option<Cluster>, String> {
    if !served.serves(kind) {
        return Ok(None);
    }
    let found = match kind {
        KindArg::Dcr => get_if_served(
            &Api::<DorisCluster>::namespaced(client.clone(), namespace),
            name,
        )
        .await
        .map(|c| c.map(|c| Cluster::Doris(Box::new(c)))),
        KindArg::Ddc => get_if_served(
            &Api::<DorisDisaggregatedCluster>::namespaced(client.clone(), namespace),
            name,
        )
        .await
        .map(|c| c.map(|c| Cluster::Disaggregated(Box::new(c)))),
    };
    found.map_err(|e| format!("reading {} {namespace}/{name}: {e}", kind.kind()))
}

/// The conventions the operator would plan a cluster of `set` with: the
/// defaults compiled into this binary, with the convention ConfigMaps of
/// `operator_namespace` laid over them as the operator lays them.
pub struct LiveSet {
    pub set: String,
    pub bundle: ConventionBundle,
    /// The ConfigMaps (`namespace/name`) the set's files come from.
    pub config_maps: Vec<String>,
}

/// Reads and compiles convention set `set` from the ConfigMaps labelled
/// `doris.selectdb.com/conventions` in `operator_namespace`.
pub async fn live_set(
    client: &Client,
    operator_namespace: &str,
    set: &str,
) -> Result<LiveSet, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), operator_namespace);
    let found = api
        .list(&ListParams::default().labels(SET_KEY))
        .await
        .map_err(|e| {
            format!(
                "listing the convention ConfigMaps in namespace {operator_namespace} (the \
                 operator's, --operator-namespace): {e}"
            )
        })?;
    let config_maps: Vec<Arc<ConfigMap>> = found.items.into_iter().map(Arc::new).collect();
    let layers = crate::controller::conventions::layers(&config_maps);
    if set != DEFAULT_SET && !layers.iter().any(|l| l.set == set) {
        return Err(format!(
            "convention set {set:?} does not exist: no ConfigMap in namespace \
             {operator_namespace} is labelled {SET_KEY}={set}"
        ));
    }
    let mut used: Vec<String> = layers
        .iter()
        .filter(|l| l.set == DEFAULT_SET || l.set == set)
        .map(|l| l.name.clone())
        .collect();
    used.sort();
    let sources = set_sources(ConventionSources::embedded(), &layers, set);
    let bundle = ConventionBundle::compile(sources).map_err(|errors| {
        format!(
            "convention set {set:?} (from {}) does not compile, so the operator keeps its last \
             good version, which cannot be read from here:\n  {}",
            used.join(", "),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })?;
    Ok(LiveSet {
        set: set.to_string(),
        bundle,
        config_maps: used,
    })
}

/// Annotates the cluster with a merge patch; a `null` value removes the
/// annotation.
async fn annotate(
    client: &Client,
    cluster: &Cluster,
    annotations: BTreeMap<String, Value>,
) -> Result<(), String> {
    let cluster = cluster.as_ref();
    let (name, namespace) = (cluster.name(), cluster.namespace());
    let patch = Patch::Merge(json!({"metadata": {"annotations": annotations}}));
    let params = PatchParams::default();
    let result = match cluster {
        crate::cluster::ClusterRef::Doris(_) => {
            Api::<DorisCluster>::namespaced(client.clone(), &namespace)
                .patch(&name, &params, &patch)
                .await
                .map(|_| ())
        }
        crate::cluster::ClusterRef::Disaggregated(_) => {
            Api::<DorisDisaggregatedCluster>::namespaced(client.clone(), &namespace)
                .patch(&name, &params, &patch)
                .await
                .map(|_| ())
        }
    };
    result.map_err(|e| format!("annotating {}: {e}", cluster.describe()))
}

/// Restarts the named parts of a cluster (every part when none is named):
/// `apache.doris.<part>/restartedAt` set to `now` (RFC 3339), which the
/// conventions copy to the pod template, so the operator rolls the pods in
/// `restart.rhai`'s order. Returns what was done, for the user.
pub async fn restart(
    client: &Client,
    cluster: &Cluster,
    parts: &[String],
    now: &str,
) -> Result<String, String> {
    let view = cluster.as_ref();
    let known: Vec<String> = view.parts().into_iter().map(|p| p.name).collect();
    let chosen: Vec<String> = if parts.is_empty() {
        known.clone()
    } else {
        for part in parts {
            if !known.contains(part) {
                return Err(format!(
                    "{} has no part {part:?}; it has {}",
                    view.describe(),
                    known.join(", ")
                ));
            }
        }
        parts.to_vec()
    };
    let annotations = chosen
        .iter()
        .map(|p| (restart_annotation(p), json!(now)))
        .collect();
    annotate(client, cluster, annotations).await?;
    Ok(format!(
        "{} {}: restart of {} requested at {now}; the operator restarts the pods in \
         restart.rhai's order (kubectl doris status {} shows the progress)",
        view.kind(),
        view.name(),
        chosen.join(", "),
        view.name()
    ))
}

/// The annotation that restarts a part once (README "Restart a component").
pub fn restart_annotation(part: &str) -> String {
    format!("apache.doris.{part}/restartedAt")
}

/// Halts the cluster's rollouts before their next step.
pub async fn pause(client: &Client, cluster: &Cluster) -> Result<String, String> {
    let key = crate::controller::rollout::PAUSED_ANNOTATION;
    annotate(
        client,
        cluster,
        BTreeMap::from([(key.to_string(), json!("true"))]),
    )
    .await?;
    let view = cluster.as_ref();
    Ok(format!(
        "{} {}: rollouts paused ({key}=true); a step in progress stays as it is",
        view.kind(),
        view.name()
    ))
}

/// Lets a paused rollout go on.
pub async fn resume(client: &Client, cluster: &Cluster) -> Result<String, String> {
    let key = crate::controller::rollout::PAUSED_ANNOTATION;
    annotate(
        client,
        cluster,
        BTreeMap::from([(key.to_string(), Value::Null)]),
    )
    .await?;
    let view = cluster.as_ref();
    Ok(format!(
        "{} {}: rollouts resumed ({key} removed)",
        view.kind(),
        view.name()
    ))
}
