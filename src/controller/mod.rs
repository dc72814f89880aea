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
pub mod retention;
pub mod rollout;
pub mod slim_pod;
pub mod status;
pub mod stores;
pub mod triggers;
pub mod user_inputs;
pub mod volumes;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::ClusterRef;
use crate::conventions::ConventionBundle;
use crate::conventions::reload::LiveConventions;
use crate::crd::{ComponentKind, DorisCluster, DorisDisaggregatedCluster};
use crate::metrics::Metrics;
use crate::plan::{self, PlanError, PlanInput};

use apply::Resources;
use kinds::DorisResource;
use stores::Stores;
use triggers::{Touched, Triggers};
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

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ns = &settings.namespace;
    let managed = stores::list_config().labels(stores::MANAGED_SELECTOR);

    let by_statefulset = Arc::new(index::Index::default());
    let by_owner = Arc::new(index::Index::default());
    let (sts_store, sts_writer) = reflector::store::<StatefulSet>();
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (cm_store, cm_writer) = reflector::store::<ConfigMap>();
    let (hpa_store, hpa_writer) = reflector::store::<HorizontalPodAutoscaler>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (event_store, event_writer) = reflector::store::<k8s_openapi::api::core::v1::Event>();
    let sts_stream = changed::cached_changes(
        watcher(api::<StatefulSet>(&client, ns), managed.clone())
            .default_backoff()
            .modify(stores::slim_statefulset)
            .inspect_ok(index_owned(&by_owner)),
        sts_writer,
    );
    let svc_stream = changed::cached_changes(
        watcher(api::<Service>(&client, ns), managed.clone())
            .default_backoff()
            .modify(stores::slim_service)
            .inspect_ok(index_owned(&by_owner)),
        svc_writer,
    );
    let cm_stream = changed::cached_changes(
        watcher(api::<ConfigMap>(&client, ns), managed.clone())
            .default_backoff()
            .modify(stores::slim_config_map)
            .inspect_ok(index_owned(&by_owner)),
        cm_writer,
    );
    let hpa_stream = changed::cached_changes(
        watcher(api::<HorizontalPodAutoscaler>(&client, ns), managed)
            .default_backoff()
            .modify(stores::slim_autoscaler)
            .inspect_ok(index_owned(&by_owner)),
        hpa_writer,
    );
    let pod_stream = changed::cached_changes(
        watcher(
            api::<slim_pod::SlimPod>(&client, ns),
            stores::list_config().labels(stores::POD_SELECTOR),
        )
        .default_backoff()
        .map_ok(slim_pod::unwrap_event)
        .inspect_ok({
            let index = by_statefulset.clone();
            move |event| index.observe(event, stores::statefulset_keys)
        }),
        pod_writer,
    );
    // Why StatefulSets cannot make their pods; a new reason wakes the
    // StatefulSet's cluster.
    let event_stream = watcher(
        api::<k8s_openapi::api::core::v1::Event>(&client, ns),
        stores::list_config().fields(stores::FAILED_CREATE_SELECTOR),
    )
    .default_backoff()
    .modify(stores::slim_event)
    .reflect(event_writer)
    .touched_objects();
    // The user's ConfigMaps: metadata only, to notice edits of the ones a
    // cluster names.
    let (user_cm_store, user_cm_writer) = reflector::store::<PartialObjectMeta<ConfigMap>>();
    let user_cm_stream = watcher(
        api::<PartialObjectMeta<ConfigMap>>(&client, ns),
        stores::list_config(),
    )
    .default_backoff()
    .modify(|m| m.metadata.managed_fields = None)
    .reflect(user_cm_writer)
    .touched_objects();
    let user_config_maps = Arc::new(user_inputs::UserConfigMaps::new(user_cm_store, ns.clone()));
    // Namespaces, metadata only: their Pod Security label decides how hosts
    // are tuned. One namespace by name when watching one.
    let (ns_store, ns_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
    let ns_config = match ns {
        Some(name) => stores::list_config().fields(&format!("metadata.name={name}")),
        None => stores::list_config(),
    };
    let ns_stream = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        ns_config,
    )
    .default_backoff()
    .modify(|n| n.metadata.managed_fields = None)
    .reflect(ns_writer)
    .touched_objects();

    let stores = Stores {
        statefulsets: sts_store,
        services: svc_store,
        config_maps: cm_store,
        autoscalers: hpa_store,
        pods: pod_store,
        failed_creates: event_store,
        by_statefulset,
        by_owner,
    };
    let statefulsets = stores.statefulsets.clone();
    let (watched_tx, watched_rx) = futures::channel::mpsc::unbounded();
    let reporter = Reporter {
        controller: "doris-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let controller = slim_controller(api::<DorisCluster>(&client, ns));
    let clusters = controller.store();
    // Storage-compute separated clusters, when their CRD is installed.
    let disaggregated_controller = match api::<DorisDisaggregatedCluster>(&client, ns)
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            tracing::info!(
                "DorisDisaggregatedCluster is not served (its CRD is not installed): \
                 not watching storage-compute separated clusters"
            );
            None
        }
        _ => Some(slim_controller(api::<DorisDisaggregatedCluster>(
            &client, ns,
        ))),
    };
    let disaggregated = disaggregated_controller.as_ref().map(|c| c.store());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        fe_resolver: settings.fe_resolver.clone(),
        be_resolver: settings.be_resolver.clone(),
        fe_releases: Default::default(),
        fe_checked: Default::default(),
        fe_reach: Default::default(),
        conventions: settings.conventions.clone(),
        stores,
        watched: dynamic::Watched::new(client.clone(), ns.clone(), watched_tx),
        resources: Resources::default(),
        metrics: settings.metrics.clone(),
        clusters: clusters.clone(),
        disaggregated: disaggregated.clone(),
        plans: Default::default(),
        status_pace: Default::default(),
        recreating: Default::default(),
        namespaces: ns_store.clone(),
        user_config_maps: user_config_maps.clone(),
        revisions: Default::default(),
    });

    // Conventions from ConfigMaps: read once before the first reconcile, so
    // no cluster is ever planned with conventions about to be replaced.
    let conventions = settings.conventions.clone();
    conventions.set_canary(conventions::live_canary(
        client.clone(),
        clusters.clone(),
        disaggregated.clone(),
        user_config_maps,
    ));
    let discover = conventions::served_kinds(client.clone());
    conventions.set_discovery(discover.clone());
    // What the API server serves decides whether templates make monitoring
    // objects: asked before the first plan, then again now and then, so a
    // Prometheus operator installed later is noticed (the plan memo keys on
    // the answer, so each cluster is planned anew at its next reconcile).
    discover().await;
    let _rediscover = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(REDISCOVERY_INTERVAL).await;
            discover().await;
        }
    }));
    let (convention_cms, convention_cms_writer) = reflector::store::<ConfigMap>();
    let _reporter = AbortOnDrop(tokio::spawn(conventions::report_outcomes(
        conventions.clone(),
        ctx.recorder.clone(),
        convention_cms.clone(),
        settings.metrics.clone(),
    )));
    let _source = match &settings.conventions_namespace {
        Some(namespace) => {
            conventions.expect_config_maps();
            let (synced, first_list) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(conventions::watch_config_maps(
                client.clone(),
                namespace.clone(),
                conventions.clone(),
                convention_cms_writer,
                convention_cms,
                synced,
            ));
            tracing::info!(%namespace, "reading convention ConfigMaps");
            let _ = first_list.await;
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    settings
        .metrics
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);

    // Changes of the objects made for clusters, and of the user's
    // ConfigMaps they name, wake the cluster they belong to, of whichever
    // kind it is.
    let (doris_tx, doris_rx) = futures::channel::mpsc::unbounded();
    let (ddc_tx, ddc_rx) = futures::channel::mpsc::unbounded();
    let triggers = Triggers {
        doris: doris_tx,
        clusters: clusters.clone(),
        disaggregated: disaggregated.clone().map(|store| (ddc_tx, store)),
    };
    let children = futures::stream::select_all([
        sts_stream
            .map(|r| r.map(|o| Touched::Owned(o.metadata)))
            .boxed(),
        svc_stream
            .map(|r| r.map(|o| Touched::Owned(o.metadata)))
            .boxed(),
        cm_stream
            .map(|r| r.map(|o| Touched::Owned(o.metadata)))
            .boxed(),
        hpa_stream
            .map(|r| r.map(|o| Touched::Owned(o.metadata)))
            .boxed(),
        pod_stream
            .map(|r| r.map(|o| Touched::Pod(o.metadata)))
            .boxed(),
        user_cm_stream
            .map(|r| r.map(|o| Touched::UserConfigMap(o.metadata)))
            .boxed(),
        ns_stream
            .map(|r| r.map(|o| Touched::Namespace(o.metadata)))
            .boxed(),
        watched_rx.map(|meta| Ok(Touched::Owned(meta))).boxed(),
        // A FailedCreate Event, as a change of its StatefulSet.
        event_stream
            .filter_map(move |r| {
                let sts = r.map(|e| {
                    let name = e.involved_object.name.unwrap_or_default();
                    let namespace = e.metadata.namespace.unwrap_or_default();
                    statefulsets.get(&ObjectRef::new(&name).within(&namespace))
                });
                futures::future::ready(match sts {
                    Ok(Some(sts)) => Some(Ok(Touched::Owned(sts.metadata.clone()))),
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed(),
    ]);
    let _router = AbortOnDrop(tokio::spawn(triggers.route(children)));
    // The first plans know each namespace's level, unless Namespaces cannot
    // be read (then privileged is assumed, as with no label).
    if tokio::time::timeout(Duration::from_secs(5), ns_store.wait_until_ready())
        .await
        .is_err()
    {
        tracing::warn!(
            "Namespaces cannot be read (RBAC: get, list, watch namespaces): \
             every namespace is taken as Pod Security level privileged"
        );
    }

    // No reconcile before the caches it reads hold their first lists.
    let mut missing = ctx.stores.synced(CACHE_WAIT).await;
    if !ctx.user_config_maps.synced(CACHE_WAIT).await {
        missing.push("configmaps (metadata)");
    }
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "these caches have no full list after {CACHE_WAIT:?} (can the operator list and \
             watch them? see its RBAC): reconciling anyway"
        );
    }

    let config = kube::runtime::controller::Config::default().concurrency(settings.concurrency);
    let shutdown = shutdown.shared();
    let doris = controller
        .reconcile_on(doris_rx)
        .reconcile_all_on(conventions_changed(settings.conventions.subscribe()))
        .with_config(config.clone())
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(log_outcome);
    let disaggregated = async move {
        if let Some(controller) = disaggregated_controller {
            controller
                .reconcile_on(ddc_rx)
                .reconcile_all_on(conventions_changed(settings.conventions.subscribe()))
                .with_config(config)
                .graceful_shutdown_on(shutdown)
                .run(reconcile, error_policy, ctx)
                .for_each(log_outcome)
                .await;
        }
    };
    futures::join!(doris, disaggregated);
}

/// Keeps `index` of owned objects in step with a cache's watch events.
/// It sees each event just before the cache does, so that a cache that is
/// ready (or holds an object) never has an index that is not (a lookup
/// through the index reads the cache, which drops what it does not hold).
fn index_owned<K: Resource<DynamicType = ()>>(
    index: &Arc<index::Index>,
) -> impl FnMut(&watcher::Event<K>) + use<K> {
    let index = index.clone();
    move |event| index.observe(event, stores::owner_keys)
}

async fn log_outcome<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "reconcile did not complete");
    }
}

/// A controller of the clusters of one kind whose cache keeps them without
/// `managedFields` (often the largest part of an object, and never read).
/// A change of a cluster's status alone (the operator's own writes) does
/// not wake it: see [`acted_on`].
fn slim_controller<K: DorisResource>(api: Api<K>) -> Controller<K> {
    let (reader, writer) = reflector::store::<K>();
    let stream = watcher(api, stores::list_config())
        .default_backoff()
        .modify(|cluster: &mut K| cluster.meta_mut().managed_fields = None)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(acted_on, Default::default());
    Controller::for_stream(stream, reader)
}

/// What of a cluster its reconcile acts on, hashed: its spec (through the
/// generation the API server bumps when the spec changes), labels,
/// annotations, finalizers and deletion. Its status is the operator's own
/// writes; a reconcile after one of them would find what it just wrote.
fn acted_on<K: Resource>(cluster: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = cluster.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &meta.uid,
        meta.generation,
        &meta.labels,
        &meta.annotations,
        &meta.finalizers,
        meta.deletion_timestamp.as_ref().map(|t| t.0.as_second()),
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// How often the operator asks the API server again which kinds it serves.
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(600);

/// How long the operator waits at start for its caches' first lists.
const CACHE_WAIT: Duration = Duration::from_secs(60);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A tick each time new conventions go live.
fn conventions_changed(
    changes: tokio::sync::watch::Receiver<u64>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(changes, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

async fn reconcile<K: DorisResource>(cluster: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_cluster(&*cluster, &ctx).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

/// Why a reconcile stopped before its last step: status says so (Ready and
/// Degraded false with this reason) and an Event tells it once.
struct Stop {
    reason: &'static str,
    message: String,
    /// The conventions revision status names.
    revision: String,
    /// Why the conventions are not live, when that is the stop.
    conventions_failure: Option<String>,
    /// When to look again (a change of the spec or the conventions
    /// reconciles at once anyway).
    requeue: Duration,
}

/// One reconcile of one cluster: a short list of steps, each of which may
/// stop the flow with the reason status then shows.
async fn reconcile_cluster<K: DorisResource>(object: &K, ctx: &Context) -> Result<Action, Error> {
    tracing::trace!("reconcile starts");
    if let Some(action) = step_lifecycle(object, ctx).await? {
        return Ok(action);
    }
    let run = Run::new(object, ctx);
    let flow = async {
        let bundle = run.step_conventions()?;
        let inputs = run.step_fetch_inputs(&bundle).await?;
        let planned = run.step_plan(&bundle, &inputs)?;
        run.step_inputs_present(&planned.0)?;
        Ok::<_, Result<Stop, Error>>((bundle, planned))
    };
    let (bundle, (memo, plan)) = match flow.await {
        Ok(done) => done,
        Err(Ok(stop)) => return run.stopped(stop).await,
        Err(Err(e)) => return Err(e),
    };
    let mut planned = std::borrow::Cow::<plan::Plan>::Owned(plan);
    let mut members = run
        .step_hold_for_membership(&mut planned, &memo.policy)
        .await;
    let waiting = run.step_bring_up_in_order(&mut planned);
    let volumes = run.step_volumes(&mut planned).await;
    let live = run.step_live_config(&bundle, &mut planned).await?;
    run.step_apply(&planned, &volumes.recreated, &mut members)
        .await?;
    run.step_prune(&planned).await?;
    let members = match members {
        Some(decided) => decided,
        None => run.step_membership(&planned, &memo.policy).await,
    };
    let rollout = rollout::advance(ctx, object, &bundle, &planned, &run.pods(), &run.now).await?;
    let hosts = run.step_hosts(&planned).await;
    let steps = StepOutcomes {
        rollout,
        volumes,
        live,
        hosts,
    };
    run.step_status(&planned, &members, steps, &waiting).await
}

/// Deletion (PVCs kept unless asked) and the finalizer that asks for them.
async fn step_lifecycle<K: DorisResource>(
    object: &K,
    ctx: &Context,
) -> Result<Option<Action>, Error> {
    if object.meta().deletion_timestamp.is_some() {
        if let Some(uid) = object.uid() {
            ctx.fe_checked.lock().expect("lock").remove(&uid);
            ctx.fe_reach.forget(&uid);
            ctx.plans.remove(&uid);
            ctx.status_pace.remove(&uid);
        }
        ctx.metrics.forget_cluster(&cluster_labels(object));
        // Owned objects go with the cluster (ownerReferences); PVCs stay
        // unless the user asked for them to go too.
        if retention::has_finalizer(object) {
            let Some(deleted) = retention::cleanup(&ctx.client, object).await? else {
                // Its StatefulSets are still going away.
                return Ok(Some(Action::requeue(Duration::from_secs(2))));
            };
            for pvc in &deleted {
                ctx.metrics.count_write("PersistentVolumeClaim", "delete");
                tracing::info!(cluster = %object.name_any(), %pvc, "deleted with the cluster, as asked");
            }
        }
        return Ok(Some(Action::await_change()));
    }
    if retention::sync_finalizer(&ctx.client, object).await? {
        ctx.metrics.count_write(K::kind(&()).as_ref(), "patch");
        // The change wakes the next reconcile.
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

/// What every step of one reconcile shares.
struct Run<'a, K: DorisResource> {
    object: &'a K,
    cluster: ClusterRef<'a>,
    ctx: &'a Context,
    name: String,
    namespace: String,
    /// Status as the cluster has it now.
    previous: status::Status,
    now: Time,
    conventions_failure: Option<String>,
    /// The uncached kinds the cluster is known to have objects of.
    extra_kinds: std::sync::Mutex<std::collections::BTreeSet<apply::Kind>>,
}

impl<'a, K: DorisResource> Run<'a, K> {
    fn new(object: &'a K, ctx: &'a Context) -> Self {
        let cluster = object.cluster();
        let set = crate::conventions::reload::set_of(object.meta().annotations.as_ref());
        Run {
            object,
            cluster,
            ctx,
            name: cluster.name(),
            namespace: cluster.namespace(),
            previous: written_status(ctx, object)
                .map(|w| w.0.clone())
                .unwrap_or_else(|| object.read_status()),
            now: Time(k8s_openapi::jiff::Timestamp::now()),
            conventions_failure: ctx.conventions.failure_for(set),
            extra_kinds: std::sync::Mutex::new(apply::recorded_kinds(
                object.meta().annotations.as_ref(),
            )),
        }
    }

    /// The conventions the cluster is planned with.
    fn step_conventions(&self) -> Result<Arc<ConventionBundle>, Result<Stop, Error>> {
        let set = crate::conventions::reload::set_of(self.object.meta().annotations.as_ref());
        self.ctx.conventions.bundle_for(set).map_err(|message| {
            // Nothing to plan with: leave every object as it is.
            Ok(Stop {
                reason: "ConventionsUnavailable",
                conventions_failure: Some(message.clone()),
                message,
                revision: self
                    .previous
                    .conventions_revision
                    .clone()
                    .unwrap_or_default(),
                requeue: Duration::from_secs(300),
            })
        })
    }

    /// What the plan reads besides the cluster: the user's ConfigMaps and
    /// the key names of Secrets that share a directory.
    async fn step_fetch_inputs(
        &self,
        _bundle: &ConventionBundle,
    ) -> Result<Inputs, Result<Stop, Error>> {
        let config_maps = user_config_maps(
            &self.ctx.client,
            self.cluster,
            Some(&self.ctx.user_config_maps),
        )
        .await
        .map_err(Err)?;
        let secret_keys = user_secret_keys(&self.ctx.client, self.cluster, &self.namespace)
            .await
            .map_err(Err)?;
        let pod_security = self
            .ctx
            .namespaces
            .get(&ObjectRef::new(&self.namespace))
            .map_or(plan::PodSecurity::Privileged, |ns| {
                plan::PodSecurity::of_namespace(ns.metadata.labels.as_ref())
            });
        Ok(Inputs {
            config_maps,
            secret_keys,
            pod_security,
        })
    }

    /// The plan (the last one, when nothing it reads changed), and what the
    /// running cluster refuses of it.
    fn step_plan(
        &self,
        bundle: &Arc<ConventionBundle>,
        inputs: &Inputs,
    ) -> Result<(Arc<memo::Planned>, plan::Plan), Result<Stop, Error>> {
        let planned = plan_once(self.ctx, bundle, self.cluster, inputs).and_then(|memo| {
            let planned = memo.expand();
            let live_fe = planned
                .components
                .iter()
                .find(|c| c.kind == ComponentKind::Fe)
                .and_then(|c| {
                    self.ctx
                        .stores
                        .statefulset(&self.namespace, &c.names.statefulset)
                });
            let refused: Vec<_> = [
                membership::election_change(&planned.objects, live_fe.clone()),
                membership::follower_cut(self.cluster, live_fe.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !refused.is_empty() {
                return Err(PlanError::InvalidSpec(refused));
            }
            Ok((memo, planned))
        });
        planned.map_err(|e| {
            let message = match &e {
                PlanError::InvalidSpec(_) => e.to_string(),
                PlanError::Convention { .. } => format!("the conventions failed: {e}"),
            };
            // Nothing changes until the spec or the conventions do.
            Ok(Stop {
                reason: e.category(),
                message,
                revision: bundle.revision().to_string(),
                conventions_failure: None,
                requeue: Duration::from_secs(300),
            })
        })
    }

    /// Every ConfigMap the spec names exists.
    fn step_inputs_present(&self, planned: &memo::Planned) -> Result<(), Result<Stop, Error>> {
        let missing = &planned.plan.missing_config_maps;
        if missing.is_empty() {
            return Ok(());
        }
        Err(Ok(Stop {
            reason: "ConfigMapMissing",
            message: format!(
                "waiting for ConfigMap {} named in the spec",
                missing.join(", ")
            ),
            revision: planned.plan.revision.clone(),
            conventions_failure: None,
            requeue: Duration::from_secs(30),
        }))
    }

    /// A StatefulSet shrinks only once the FE has let its nodes go: then
    /// membership decides first. Otherwise it follows the apply, so that
    /// nothing waits on the FE to be created or changed.
    async fn step_hold_for_membership(
        &self,
        planned: &mut std::borrow::Cow<'_, plan::Plan>,
        policy: &plan::membership::MembershipPolicy,
    ) -> Option<membership::Outcome> {
        if !membership::shrinking(self.ctx, self.cluster, planned) {
            return None;
        }
        let decided = self.step_membership(planned, policy).await;
        membership::apply_hold(&mut planned.to_mut().objects, &decided.hold);
        Some(decided)
    }

    /// Parts come up in order: in a storage-compute separated cluster the
    /// FEs once a meta service pod is Ready, the compute groups once an FE
    /// pod is. A part waiting for its predecessor is not created (one that
    /// exists is left as it is). Returns what each waiting part waits for.
    fn step_bring_up_in_order(
        &self,
        planned: &mut std::borrow::Cow<'_, plan::Plan>,
    ) -> BTreeMap<String, String> {
        let mut waiting = BTreeMap::new();
        if !matches!(self.cluster, ClusterRef::Disaggregated(_)) {
            return waiting;
        }
        let pods = self.pods();
        // Whether a part of this kind has a Ready pod, and its StatefulSet.
        let reachable = |kind: ComponentKind| {
            planned.components.iter().find(|c| c.kind == kind).map(|c| {
                let up = status::component_pods(&pods, &c.names)
                    .iter()
                    .any(|p| rollout::is_ready(p));
                (up, c.names.statefulset.clone())
            })
        };
        let before = |kind: ComponentKind| match kind {
            ComponentKind::Fe => Some((ComponentKind::Ms, "the meta service")),
            ComponentKind::Cg => Some((ComponentKind::Fe, "the FE")),
            _ => None,
        };
        let mut held = Vec::new();
        for c in &planned.components {
            let Some((kind, what)) = before(c.kind) else {
                continue;
            };
            let exists = self
                .ctx
                .stores
                .statefulset(&self.namespace, &c.names.statefulset)
                .is_some();
            if exists {
                continue;
            }
            if let Some((false, sts)) = reachable(kind) {
                waiting.insert(
                    c.part.clone(),
                    format!("{what} to be reachable (a Ready pod of StatefulSet {sts})"),
                );
                held.push(c.names.statefulset.clone());
            }
        }
        if !held.is_empty() {
            planned.to_mut().objects.retain(|o| {
                o["kind"] != "StatefulSet"
                    || !held.iter().any(|h| o["metadata"]["name"] == h.as_str())
            });
        }
        waiting
    }

    /// Claims grow when their template's request does (the StatefulSet
    /// keeps its templates); a smaller request is refused.
    async fn step_volumes(
        &self,
        planned: &mut std::borrow::Cow<'_, plan::Plan>,
    ) -> volumes::Outcome {
        let out = volumes::reconcile(
            self.ctx,
            &self.namespace,
            &planned.objects,
            &planned.components,
            self.previous.volumes.as_deref(),
        )
        .await;
        if !out.keep.is_empty() {
            out.keep_live_templates(&mut planned.to_mut().objects);
        }
        self.tell(&out.events, out.failure.as_ref()).await;
        out
    }

    /// Pods the namespace's admission refuses, and host settings the
    /// pods' checks found short.
    async fn step_hosts(&self, planned: &plan::Plan) -> hosts::Outcome {
        let statefulsets = self.statefulsets(planned);
        let parts: Vec<_> = planned
            .components
            .iter()
            .map(|c| c.part.as_str())
            .zip(statefulsets)
            .collect();
        let out = hosts::reconcile(
            &self.ctx.client,
            &self.ctx.stores.failed_creates,
            &self.namespace,
            &parts,
            &self.pods(),
            self.previous.host_checks.as_deref().unwrap_or_default(),
        )
        .await;
        self.tell(&out.events, out.failure.as_ref()).await;
        out
    }

    /// Configuration changes: live keys set on the running nodes first;
    /// the ConfigMap and the pod template's configuration hash then say
    /// what the pods are current with (see [`live_config`]).
    async fn step_live_config(
        &self,
        bundle: &ConventionBundle,
        planned: &mut std::borrow::Cow<'_, plan::Plan>,
    ) -> Result<live_config::Outcome, Error> {
        let out = live_config::reconcile(
            self.ctx,
            self.cluster,
            bundle,
            planned,
            &self.pods(),
            &self.previous,
            &self.now,
        )
        .await?;
        for (type_, reason, note) in &out.events {
            tracing::info!(cluster = %self.name, namespace = %self.namespace, reason, "{note}");
            self.publish(*type_, reason, note).await;
        }
        Ok(out)
    }

    /// Server-side apply of what changed. A refusal by the API server is
    /// said in status and once as an Event; the error makes the controller
    /// retry later, as for any failed reconcile.
    async fn step_apply(
        &self,
        planned: &plan::Plan,
        recreated: &[String],
        members: &mut Option<membership::Outcome>,
    ) -> Result<(), Error> {
        // A StatefulSet being made again waits until the old one is gone.
        let objects: std::borrow::Cow<'_, [Value]> = if recreated.is_empty() {
            std::borrow::Cow::Borrowed(&planned.objects)
        } else {
            std::borrow::Cow::Owned(
                planned
                    .objects
                    .iter()
                    .filter(|o| {
                        o["kind"] != "StatefulSet"
                            || !recreated
                                .iter()
                                .any(|r| o["metadata"]["name"] == r.as_str())
                    })
                    .cloned()
                    .collect(),
            )
        };
        // An uncached kind is remembered on the cluster before its first
        // object exists, so that pruning finds its objects later.
        let extra = apply::uncached_kinds(&self.ctx.stores, &planned.objects);
        let recorded = self.extra_kinds.lock().expect("lock").clone();
        if !extra.is_subset(&recorded) {
            self.record_kinds(recorded.union(&extra).cloned().collect())
                .await?;
        }
        let applied = match apply::apply_all(
            &self.ctx.client,
            &self.ctx.resources,
            &self.ctx.stores,
            &self.ctx.watched,
            &objects,
            &planned.autoscaled,
        )
        .await
        {
            Ok(applied) => applied,
            Err(Error::ApplyRefused(refusal)) => {
                let message = refusal.to_string();
                if !self.already_reported(&message) {
                    self.publish(EventType::Warning, "ApplyRefused", &message)
                        .await;
                }
                let pods = self.pods();
                let statefulsets = self.statefulsets(planned);
                let none = BTreeMap::new();
                let observed = observe(planned, &statefulsets, &pods, &none);
                let mut status = status::compute(
                    self.cluster,
                    &self.previous,
                    &observed,
                    &planned.revision,
                    self.conventions_failure.as_deref(),
                    Some(("ApplyRefused", message)),
                    &self.now,
                );
                status::keep_unobserved(&self.previous, &mut status);
                if let Some(decided) = members.take() {
                    // The FE was already asked this time: say what it answered.
                    for (type_, reason, note) in &decided.events {
                        self.publish(*type_, reason, note).await;
                    }
                    membership::fold_into_status(
                        self.cluster,
                        &self.previous,
                        &mut status,
                        &decided,
                        &self.now,
                    );
                }
                write_status(self.ctx, self.object, &status).await?;
                return Err(Error::ApplyRefused(refusal));
            }
            Err(e) => return Err(e),
        };
        if !applied.written.is_empty() {
            let note = format!("applied {}", applied.written.join(", "));
            // A new cluster's first objects are shown by its status,
            // written next: an Event says what changed on a cluster that
            // has one.
            let first = live_status_json(self.ctx, self.object).is_null();
            self.note_change(&planned.revision, &note, !first).await;
        }
        Ok(())
    }

    /// Deletes what a removed part, or a template that no longer makes an
    /// object, left; forgets an uncached kind once its last object is gone.
    async fn step_prune(&self, planned: &plan::Plan) -> Result<(), Error> {
        let uid = self.object.uid().unwrap_or_default();
        let recorded = self.extra_kinds.lock().expect("lock").clone();
        let pruned = apply::prune(
            &self.ctx.client,
            &self.ctx.resources,
            &self.ctx.stores,
            &self.ctx.watched,
            &uid,
            &self.namespace,
            &planned.objects,
            &recorded,
        )
        .await?;
        if !pruned.deleted.is_empty() {
            let note = format!("deleted {}", pruned.deleted.join(", "));
            self.note_change(&planned.revision, &note, true).await;
        }
        if pruned.kinds_left != recorded {
            self.record_kinds(pruned.kinds_left).await?;
        }
        Ok(())
    }

    /// Remembers on the cluster the uncached kinds it has objects of (see
    /// [`apply::EXTRA_KINDS_ANNOTATION`]).
    async fn record_kinds(
        &self,
        kinds: std::collections::BTreeSet<apply::Kind>,
    ) -> Result<(), Error> {
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            apply::EXTRA_KINDS_ANNOTATION.into(),
            json!(apply::kinds_annotation(&kinds)),
        );
        let patch = json!({"metadata": {"annotations": annotations}});
        api.patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(Error::Kube)?;
        self.ctx.metrics.count_write(K::kind(&()).as_ref(), "patch");
        *self.extra_kinds.lock().expect("lock") = kinds;
        Ok(())
    }

    /// Logs what a reconcile changed, and says it in an Event if `publish`.
    async fn note_change(&self, revision: &str, note: &str, publish: bool) {
        tracing::info!(cluster = %self.name, namespace = %self.namespace, revision = %revision, "{note}");
        if publish {
            self.publish(EventType::Normal, "Applied", note).await;
        }
    }

    /// The FE's node list kept in step with the pods.
    async fn step_membership(
        &self,
        planned: &plan::Plan,
        policy: &plan::membership::MembershipPolicy,
    ) -> membership::Outcome {
        let decided = membership::reconcile(
            self.ctx,
            self.cluster,
            &self.previous,
            planned,
            policy,
            &self.now,
        )
        .await;
        for (type_, reason, note) in &decided.events {
            tracing::info!(cluster = %self.name, namespace = %self.namespace, reason, "{note}");
            self.publish(*type_, reason, note).await;
        }
        decided
    }

    /// Status from what the caches show, and when to look again.
    async fn step_status(
        &self,
        planned: &plan::Plan,
        members: &membership::Outcome,
        steps: StepOutcomes,
        waiting: &BTreeMap<String, String>,
    ) -> Result<Action, Error> {
        let StepOutcomes {
            rollout,
            volumes,
            live,
            hosts,
        } = steps;
        let live = &live;
        let pods = self.pods();
        let statefulsets = self.statefulsets(planned);
        let mut observed = observe(planned, &statefulsets, &pods, waiting);
        for part in &mut observed {
            part.held = rollout.held_parts.iter().any(|p| p == part.part);
        }
        let mut new_status = status::compute(
            self.cluster,
            &self.previous,
            &observed,
            &planned.revision,
            self.conventions_failure.as_deref(),
            rollout.failure.or(volumes.failure).or(hosts.failure),
            &self.now,
        );
        new_status.rollout = rollout.status;
        live.fold_into_status(planned, &pods, &mut new_status);
        if let Some(progress) = volumes.progress {
            new_status.volumes = (!progress.is_empty()).then_some(progress);
        }
        new_status.host_checks = (!hosts.host_checks.is_empty()).then_some(hosts.host_checks);
        membership::fold_into_status(
            self.cluster,
            &self.previous,
            &mut new_status,
            members,
            &self.now,
        );
        let ready = new_status.is_true("Ready");
        // A cluster turning Ready whose FE is due to be asked about its
        // nodes within a moment is written once the FE has answered, so
        // that Ready and MembersSynced come in one write. (The FE was not
        // asked this time, so the next time it is due it will be.)
        let awaits_members = ready
            && !self.previous.is_true("Ready")
            && !new_status.is_true("MembersSynced")
            && !members.asked
            && members.requeue.is_some_and(|r| r <= AWAIT_MEMBERS)
            && !live_status_json(self.ctx, self.object).is_null();
        let deferred = if awaits_members {
            members.requeue
        } else {
            write_status_paced(self.ctx, self.object, &self.previous, &new_status).await?
        };
        let next = if let Some(after) = rollout.requeue {
            after
        } else if ready {
            // Watches bring every change; the timer only guards against drift.
            Duration::from_secs(600)
        } else {
            Duration::from_secs(15)
        };
        let next = members.requeue.map_or(next, |m| m.min(next));
        let next = live.requeue.map_or(next, |l| l.min(next));
        let next = volumes.requeue.map_or(next, |v| v.min(next));
        tracing::trace!(
            rollout = ?rollout.requeue,
            members = ?members.requeue,
            live = ?live.requeue,
            volumes = ?volumes.requeue,
            status = ?deferred,
            "reconcile done; next one at the soonest of"
        );
        Ok(Action::requeue(deferred.map_or(next, |d| d.min(next))))
    }

    /// A stopped reconcile: status says why, an Event once.
    async fn stopped(&self, stop: Stop) -> Result<Action, Error> {
        if !self.already_reported(&stop.message) {
            tracing::warn!(cluster = %self.name, namespace = %self.namespace, "{}", stop.message);
            self.publish(EventType::Warning, stop.reason, &stop.message)
                .await;
        }
        let status = status::compute(
            self.cluster,
            &self.previous,
            &[],
            &stop.revision,
            stop.conventions_failure
                .as_deref()
                .or(self.conventions_failure.as_deref()),
            Some((stop.reason, stop.message)),
            &self.now,
        );
        write_status(self.ctx, self.object, &status).await?;
        Ok(Action::requeue(stop.requeue))
    }

    /// The cluster's pods, as cached.
    fn pods(&self) -> Vec<Arc<Pod>> {
        self.ctx
            .stores
            .cluster_pods(&self.namespace, &self.cluster.statefulset_names())
    }

    /// Each planned part's StatefulSet, as cached.
    fn statefulsets(&self, planned: &plan::Plan) -> Vec<Option<Arc<StatefulSet>>> {
        planned
            .components
            .iter()
            .map(|c| {
                self.ctx
                    .stores
                    .statefulset(&self.namespace, &c.names.statefulset)
            })
            .collect()
    }

    /// Whether status already says `message`: an Event is sent once per
    /// problem, not once per retry.
    fn already_reported(&self, message: &str) -> bool {
        self.previous
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.message == message)
    }

    /// Publishes a step's Events, and its failure once.
    async fn tell(
        &self,
        events: &[(EventType, &'static str, String)],
        failure: Option<&(&'static str, String)>,
    ) {
        for (type_, reason, note) in events {
            self.publish(*type_, reason, note).await;
        }
        if let Some((reason, message)) = failure
            && !self.already_reported(message)
        {
            self.publish(EventType::Warning, reason, message).await;
        }
    }

    async fn publish(&self, type_: EventType, reason: &str, note: &str) {
        publish(self.ctx, &self.object.object_ref(&()), type_, reason, note).await;
    }
}

/// What a plan reads besides the cluster.
struct Inputs {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secret_keys: BTreeMap<String, std::collections::BTreeSet<String>>,
    pod_security: plan::PodSecurity,
}

/// The plan and membership rules of `cluster`: the last ones made, when
/// nothing they are made from changed since; otherwise planned anew.
fn plan_once(
    ctx: &Context,
    bundle: &Arc<ConventionBundle>,
    cluster: ClusterRef<'_>,
    inputs: &Inputs,
) -> Result<Arc<memo::Planned>, PlanError> {
    let uid = cluster.meta().uid.clone().unwrap_or_default();
    let key = memo::fingerprint(
        bundle,
        cluster,
        &inputs.config_maps,
        &inputs.secret_keys,
        inputs.pod_security,
    );
    if let Some(planned) = ctx.plans.get(&uid, &key) {
        return Ok(planned);
    }
    let plan = plan::plan(
        bundle,
        PlanInput {
            cluster,
            config_maps: &inputs.config_maps,
            secret_keys: &inputs.secret_keys,
            pod_security: inputs.pod_security,
        },
    )?;
    let policy = plan::membership::membership_policy(bundle, cluster).map_err(|error| {
        PlanError::Convention {
            component: "membership",
            error,
        }
    })?;
    let planned = Arc::new(memo::Planned::new(plan, policy));
    ctx.plans
        .insert(&uid, key, planned.clone(), || ctx.live_uids());
    Ok(planned)
}

/// What the caches show of each planned part.
fn observe<'a>(
    planned: &'a plan::Plan,
    statefulsets: &'a [Option<Arc<StatefulSet>>],
    pods: &'a [Arc<Pod>],
    waiting: &'a BTreeMap<String, String>,
) -> Vec<status::Observed<'a>> {
    planned
        .components
        .iter()
        .zip(statefulsets)
        .map(|(c, sts)| status::Observed {
            kind: c.kind,
            part: &c.part,
            names: &c.names,
            statefulset: sts.as_deref(),
            pods: status::component_pods(pods, &c.names),
            config_hash: &c.config_hash,
            waiting: waiting.get(&c.part).map(String::as_str),
            held: false,
            planned_replicas: membership::planned_replicas(&planned.objects, &c.names.statefulset),
        })
        .collect()
}

fn error_policy<K: DorisResource>(cluster: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count_error(error.category());
    tracing::warn!(cluster = %cluster.name_any(), category = error.category(), "{error}");
    match error.category() {
        "Conflict" => Action::requeue(Duration::from_secs(1)),
        // Refused again until something changes; a change of the spec or
        // the conventions reconciles at once anyway.
        "ApplyRefused" => Action::requeue(Duration::from_secs(30)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

/// Adds a null for every key `old` has and `new` lacks, at any depth, so a
/// merge patch from `new` removes them.
fn clear_removed(old: &Value, new: &mut Value) {
    if let (Value::Object(old), Value::Object(new)) = (old, new) {
        for (key, old_value) in old {
            match new.get_mut(key) {
                None => {
                    new.insert(key.clone(), Value::Null);
                }
                Some(new_value) => clear_removed(old_value, new_value),
            }
        }
    }
}

/// How long a cluster's status turning Ready may wait for the FE's answer
/// about its nodes (see [`Run::step_status`]).
const AWAIT_MEMBERS: Duration = Duration::from_secs(1);

/// How long a converging cluster's milestone (a component available) waits
/// for more news, to be written with it.
const MILESTONE_SETTLE: Duration = Duration::from_secs(5);

/// Writes status when it changed. While the cluster converges (not
/// Ready, or its nodes still registering), what changed decides when:
/// - the headline (what a user acts on: a failure, Ready, a new
///   generation, see [`status::headline`]): at once;
/// - a milestone (a component available, a node waiting for the FE to
///   list it, see [`status::milestones`]): after [`MILESTONE_SETTLE`],
///   with what else came meanwhile;
/// - progress alone (one more pod ready): with the next of those, not on
///   a clock, so a slow cluster costs as many writes as a fast one.
///
/// A write that waits returns how long, and the caller looks again then,
/// so the latest state is always written. Any change of a converged
/// cluster is written at once.
async fn write_status_paced<K: DorisResource>(
    ctx: &Context,
    object: &K,
    previous: &status::Status,
    status: &status::Status,
) -> Result<Option<Duration>, Error> {
    let uid = object.uid().unwrap_or_default();
    // Not Ready yet, or Ready with nodes still registering with the FE.
    let converging = status.condition("Ready").is_none_or(|c| c.status != "True")
        || status
            .condition("MembersSynced")
            .is_some_and(|c| c.reason == "Registering");
    record_health(ctx, object, status);
    let milestone = status::milestones(previous) != status::milestones(status);
    if !milestone {
        ctx.status_pace.calm(&uid);
    }
    if converging
        && !live_status_json(ctx, object).is_null()
        && previous != status
        && status::headline(previous) == status::headline(status)
    {
        if !milestone {
            // Progress alone: shown with the next news.
            return Ok(None);
        }
        if let Some(wait) = ctx.status_pace.settle(&uid, MILESTONE_SETTLE) {
            return Ok(Some(wait));
        }
    }
    write_status(ctx, object, status).await?;
    Ok(None)
}

/// Sets the cluster's metrics from the status it has now, written or not.
fn record_health<K: DorisResource>(ctx: &Context, object: &K, status: &status::Status) {
    let condition = |type_: &str| status.condition(type_).map(|c| c.status == "True");
    let health = crate::metrics::ClusterHealth {
        ready: condition("Ready").unwrap_or(false),
        members_synced: condition("MembersSynced"),
        rollout: status
            .rollout
            .as_ref()
            .map(|r| (r.component.clone(), r.updated)),
        decommissioning: status
            .membership
            .iter()
            .flat_map(|m| &m.nodes)
            .filter(|n| n.state == "decommissioning")
            .map(|n| (n.pod.clone(), n.tablets))
            .collect(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ctx.metrics
        .observe_cluster(&cluster_labels(object), health, now);
}

/// How a cluster's metrics name it.
fn cluster_labels<K: DorisResource>(object: &K) -> crate::metrics::ClusterLabels {
    crate::metrics::ClusterLabels {
        kind: K::kind(&()).to_string(),
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    }
}

/// What the steps before status found, for status to show.
struct StepOutcomes {
    rollout: rollout::Outcome,
    volumes: volumes::Outcome,
    live: live_config::Outcome,
    hosts: hosts::Outcome,
}

/// Writes status through the status subresource, only when it changed.
async fn write_status<K: DorisResource>(
    ctx: &Context,
    object: &K,
    status: &status::Status,
) -> Result<(), Error> {
    record_health(ctx, object, status);
    let old = live_status_json(ctx, object);
    let new = object.status_to_json(status);
    if old == new {
        return Ok(());
    }
    let mut patch = new.clone();
    if old.is_object() {
        // A merge patch keeps keys it does not mention: clear the ones that went.
        clear_removed(&old, &mut patch);
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let changed: Vec<&String> = new
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| old.get(k.as_str()) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        tracing::debug!(cluster = %object.name_any(), ?changed, "writing status");
    }
    let made = patch_status(ctx, object, patch).await?;
    if let Some(uid) = object.uid() {
        let over = object.meta().resource_version.clone();
        ctx.status_pace
            .written(&uid, (over, made), (status.clone(), new), || {
                ctx.live_uids()
            });
    }
    Ok(())
}

/// The operator's last status write of `object`'s cluster while the cache
/// does not show it yet (see [`memo::StatusPace::unseen`]).
fn written_status<K: DorisResource>(ctx: &Context, object: &K) -> Option<memo::WrittenStatus> {
    ctx.status_pace.unseen(
        &object.uid().unwrap_or_default(),
        object.meta().resource_version.as_deref(),
    )
}

/// The cluster's status as JSON, as it is on the API server: the cache's,
/// or the operator's own write the cache does not show yet.
fn live_status_json<K: DorisResource>(ctx: &Context, object: &K) -> Value {
    written_status(ctx, object).map_or_else(|| object.status_json(), |w| w.1.clone())
}

/// Patches the cluster's status; the resourceVersion the write made.
async fn patch_status<K: DorisResource>(
    ctx: &Context,
    object: &K,
    new: Value,
) -> Result<Option<String>, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let written = api
        .patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": new })),
        )
        .await
        .map_err(Error::Kube)?;
    ctx.metrics
        .count_write(K::kind(&()).as_ref(), "patch-status");
    Ok(written.meta().resource_version.clone())
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(events::note(type_, reason, note)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        tracing::debug!(error = %e, "could not publish an Event");
    }
}
