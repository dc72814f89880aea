//! The operator loop: watch DorisClusters and the objects made for them,
//! and keep those objects equal to what the conventions plan.
//!
//! One reconcile reads only caches (plus the user's ConfigMaps the cluster
//! names), runs the pure [`plan`](crate::plan::plan), writes the objects
//! whose content changed by server-side apply, deletes objects a removed
//! component left behind, and writes status only when it changed. A
//! converged cluster therefore costs no API writes.

pub mod apply;
pub mod be_link;
pub mod changed;
pub mod conventions;
pub mod dynamic;
pub mod events;
pub mod fe_link;
pub mod fe_reach;
pub mod hosts;
pub mod index;
pub mod kinds;
pub mod leader;
pub mod live_config;
pub mod live_fe;
pub mod membership;
pub mod memo;
mod reconcile;
pub mod retention;
pub mod rollout;
pub mod slim_pod;
mod start;
pub mod status;
pub mod stores;
pub mod triggers;
pub mod user_inputs;
pub mod volumes;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector;
use serde_json::Value;

use crate::cluster::ClusterRef;
use crate::conventions::reload::LiveConventions;
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};
use crate::metrics::Metrics;

use apply::Resources;
use stores::Stores;
pub use user_inputs::{user_config_maps, user_secret_keys};

/// What the operator is started with.
pub struct Settings {
    /// Watch one namespace only; all namespaces when `None`.
    pub namespace: Option<String>,
    /// The conventions every cluster is planned with; when they change,
    /// every cluster is reconciled again.
    pub conventions: Arc<LiveConventions>,
    /// Where reconciles and writes are counted.
    pub metrics: Arc<Metrics>,
    /// Clusters reconciled at the same time. Bounding it bounds memory
    /// when many clusters change at once.
    pub concurrency: u16,
    /// Where ConfigMaps labelled `doris.selectdb.com/conventions` are read
    /// from (the operator's namespace); none are read when `None`.
    pub conventions_namespace: Option<String>,
    /// Where each cluster's FE is reached; its access Service by default.
    pub fe_resolver: Option<fe_link::FeResolver>,
    /// Where each BE's webserver is reached; its pod's IP by default.
    pub be_resolver: Option<be_link::BeResolver>,
}

/// What the operator calls itself in every request to the API server (the
/// audit log's user agent).
pub const USER_AGENT: &str = concat!("doris-operator/", env!("CARGO_PKG_VERSION"));

/// The operator's API client: `config` with [`USER_AGENT`] on every request.
pub fn kube_client(mut config: kube::Config) -> Result<Client, kube::Error> {
    config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(USER_AGENT),
    ));
    Client::try_from(config)
}

/// Why a reconcile failed; the category names are fixed for metrics and
/// Event reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// The API server refused an object; retrying as it is will not help.
    #[error("{0}")]
    ApplyRefused(apply::Refusal),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) if e.code == 409 => "Conflict",
            Error::Kube(_) => "KubeApi",
            Error::ApplyRefused(_) => "ApplyRefused",
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    /// When each cluster's membership was last compared with its FE, and
    /// what the FE said.
    fe_checked: std::sync::Mutex<std::collections::HashMap<String, membership::FeChecked>>,
    /// Whether each cluster's FE answers.
    fe_reach: fe_reach::FeReach,
    fe_resolver: Option<fe_link::FeResolver>,
    be_resolver: Option<be_link::BeResolver>,
    /// What each cluster's FE said its release is.
    fe_releases: fe_link::Releases,
    conventions: Arc<LiveConventions>,
    stores: Stores,
    /// The caches of the kinds `stores` does not hold.
    watched: dynamic::Watched,
    resources: Resources,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// The clusters, as the controllers see them.
    clusters: reflector::Store<DorisCluster>,
    disaggregated: Option<reflector::Store<DorisDisaggregatedCluster>>,
    plans: memo::Plans,
    status_pace: memo::StatusPace,
    lookouts: memo::Lookouts,
    recreating: volumes::Recreating,
    /// The data of the ConfigMaps clusters name.
    user_config_maps: Arc<user_inputs::UserConfigMaps>,
    /// The watched namespaces' labels, for their Pod Security level.
    namespaces: reflector::Store<PartialObjectMeta<Namespace>>,
    /// Since when each StatefulSet with outdated pods has had its revision.
    revisions: rollout::Revisions,
}

impl Context {
    /// The uids of the clusters that exist.
    fn live_uids(&self) -> std::collections::HashSet<String> {
        let mut uids: std::collections::HashSet<String> = self
            .clusters
            .state()
            .iter()
            .filter_map(|c| c.uid())
            .collect();
        if let Some(store) = &self.disaggregated {
            uids.extend(store.state().iter().filter_map(|c| c.uid()));
        }
        uids
    }
}

impl Context {
    /// A client of `cluster`'s FE, once the FE answers (see
    /// [`fe_reach`]); `objects` are its planned objects.
    pub async fn fe_reached(
        &self,
        cluster: ClusterRef<'_>,
        objects: &[Value],
    ) -> Result<crate::doris::FeClient, fe_reach::Unreached> {
        let fe = fe_link::client(&self.client, cluster, objects, self.fe_resolver.as_ref())
            .await
            .map_err(fe_reach::Unreached::Unavailable)?;
        let uid = cluster.meta().uid.clone().unwrap_or_default();
        self.fe_reach.admit(&uid, &fe).await?;
        Ok(fe.observed(self.fe_reach.observer(&uid)))
    }

    /// [`Context::fe_reached`], an FE not answered yet said in words.
    pub async fn fe_client(
        &self,
        cluster: ClusterRef<'_>,
        objects: &[Value],
    ) -> Result<crate::doris::FeClient, String> {
        self.fe_reached(cluster, objects)
            .await
            .map_err(|unreached| match unreached {
                fe_reach::Unreached::Pending(_) => {
                    "the FE has not answered yet (a connection to it is being tried)".to_string()
                }
                fe_reach::Unreached::Unavailable(why) => why,
            })
    }
}

pub use start::run;
