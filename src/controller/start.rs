//! The operator's start: the watches and caches every reconcile reads,
//! the conventions' sources, and the two controllers (one per kind) that
//! run the reconciles once the caches hold their first lists.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};

use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

use super::apply::Resources;
use super::changed::Pace;
use super::kinds::DorisResource;
use super::reconcile::{error_policy, reconcile};
use super::stores::{self, Stores};
use super::triggers::{Touched, Triggers};
use super::{Context, Settings, changed, conventions, dynamic, index, slim_pod, user_inputs};

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
        changed::statefulset_pace,
    );
    let svc_stream = changed::cached_changes(
        watcher(api::<Service>(&client, ns), managed.clone())
            .default_backoff()
            .modify(stores::slim_service)
            .inspect_ok(index_owned(&by_owner)),
        svc_writer,
        changed::progress,
    );
    let cm_stream = changed::cached_changes(
        watcher(api::<ConfigMap>(&client, ns), managed.clone())
            .default_backoff()
            .modify(stores::slim_config_map)
            .inspect_ok(index_owned(&by_owner)),
        cm_writer,
        changed::progress,
    );
    let hpa_stream = changed::cached_changes(
        watcher(api::<HorizontalPodAutoscaler>(&client, ns), managed)
            .default_backoff()
            .modify(stores::slim_autoscaler)
            .inspect_ok(index_owned(&by_owner)),
        hpa_writer,
        changed::progress,
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
        changed::pod_pace,
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
        lookouts: Default::default(),
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
            .map(|r| r.map(|(o, pace)| Touched::Owned(o.metadata, pace)))
            .boxed(),
        svc_stream
            .map(|r| r.map(|(o, pace)| Touched::Owned(o.metadata, pace)))
            .boxed(),
        cm_stream
            .map(|r| r.map(|(o, pace)| Touched::Owned(o.metadata, pace)))
            .boxed(),
        hpa_stream
            .map(|r| r.map(|(o, pace)| Touched::Owned(o.metadata, pace)))
            .boxed(),
        pod_stream
            .map(|r| r.map(|(o, pace)| Touched::Pod(o.metadata, pace)))
            .boxed(),
        user_cm_stream
            .map(|r| r.map(|o| Touched::UserConfigMap(o.metadata)))
            .boxed(),
        ns_stream
            .map(|r| r.map(|o| Touched::Namespace(o.metadata)))
            .boxed(),
        watched_rx
            .map(|meta| Ok(Touched::Owned(meta, Pace::Now)))
            .boxed(),
        // A FailedCreate Event, as a change of its StatefulSet.
        event_stream
            .filter_map(move |r| {
                let sts = r.map(|e| {
                    let name = e.involved_object.name.unwrap_or_default();
                    let namespace = e.metadata.namespace.unwrap_or_default();
                    statefulsets.get(&ObjectRef::new(&name).within(&namespace))
                });
                futures::future::ready(match sts {
                    Ok(Some(sts)) => Some(Ok(Touched::Owned(sts.metadata.clone(), Pace::Now))),
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
