//! The operator loop: watch DorisClusters and the objects made for them,
//! and keep those objects equal to what the conventions plan.
//!
//! One reconcile reads only caches (plus the user's ConfigMaps the cluster
//! names), runs the pure [`plan`](crate::plan::plan), writes the objects
//! whose content changed by server-side apply, deletes objects a removed
//! component left behind, and writes status only when it changed. A
//! converged cluster therefore costs no API writes.

pub mod apply;
pub mod conventions;
pub mod fe_link;
pub mod leader;
pub mod membership;
pub mod memo;
pub mod retention;
pub mod rollout;
pub mod status;
pub mod stores;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::conventions::reload::LiveConventions;
use crate::crd::{ComponentKind, DorisCluster};
use crate::metrics::Metrics;
use crate::plan::{self, PlanError, PlanInput};

use apply::Resources;
use stores::Stores;

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
    /// When each cluster's membership was last compared with its FE.
    /// (when, whether it answered)
    fe_checked: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, bool)>>,
    fe_resolver: Option<fe_link::FeResolver>,
    conventions: Arc<LiveConventions>,
    stores: Stores,
    resources: Resources,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// The clusters, as the controller sees them.
    clusters: reflector::Store<DorisCluster>,
    plans: memo::Plans,
    status_pace: memo::StatusPace,
}

impl Context {
    /// The uids of the clusters that exist.
    fn live_uids(&self) -> std::collections::HashSet<String> {
        self.clusters
            .state()
            .iter()
            .filter_map(|c| c.uid())
            .collect()
    }
}

impl Context {
    /// A client of `cluster`'s FE; `objects` are its planned objects.
    pub async fn fe_client(
        &self,
        cluster: &DorisCluster,
        objects: &[Value],
    ) -> Result<crate::fe::FeClient, String> {
        fe_link::client(&self.client, cluster, objects, self.fe_resolver.as_ref()).await
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
    let managed = watcher::Config::default().labels(stores::MANAGED_SELECTOR);

    let (sts_store, sts_writer) = reflector::store::<StatefulSet>();
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (cm_store, cm_writer) = reflector::store::<ConfigMap>();
    let (hpa_store, hpa_writer) = reflector::store::<HorizontalPodAutoscaler>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let sts_stream = watcher(api::<StatefulSet>(&client, ns), managed.clone())
        .default_backoff()
        .modify(stores::slim_statefulset)
        .reflect(sts_writer)
        .touched_objects();
    let svc_stream = watcher(api::<Service>(&client, ns), managed.clone())
        .default_backoff()
        .modify(stores::slim_service)
        .reflect(svc_writer)
        .touched_objects();
    let cm_stream = watcher(api::<ConfigMap>(&client, ns), managed.clone())
        .default_backoff()
        .modify(stores::slim_config_map)
        .reflect(cm_writer)
        .touched_objects();
    let hpa_stream = watcher(api::<HorizontalPodAutoscaler>(&client, ns), managed)
        .default_backoff()
        .modify(stores::slim_autoscaler)
        .reflect(hpa_writer)
        .touched_objects();
    let pod_stream = watcher(
        api::<Pod>(&client, ns),
        watcher::Config::default().labels(stores::POD_SELECTOR),
    )
    .default_backoff()
    .modify(stores::slim_pod)
    .reflect(pod_writer)
    .touched_objects();
    // The user's ConfigMaps: metadata only, to notice edits of the ones a
    // cluster names.
    let user_cm_stream = watcher(
        api::<PartialObjectMeta<ConfigMap>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();

    let stores = Stores {
        statefulsets: sts_store,
        services: svc_store,
        config_maps: cm_store,
        autoscalers: hpa_store,
        pods: pod_store,
    };
    let reporter = Reporter {
        controller: "doris-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let controller = Controller::new(api::<DorisCluster>(&client, ns), watcher::Config::default());
    let clusters = controller.store();
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        fe_resolver: settings.fe_resolver.clone(),
        fe_checked: Default::default(),
        conventions: settings.conventions.clone(),
        stores,
        resources: Resources::default(),
        metrics: settings.metrics.clone(),
        clusters: clusters.clone(),
        plans: Default::default(),
        status_pace: Default::default(),
    });

    // Conventions from ConfigMaps: read once before the first reconcile, so
    // no cluster is ever planned with conventions about to be replaced.
    let conventions = settings.conventions.clone();
    conventions.set_canary(conventions::live_canary(client.clone(), clusters.clone()));
    conventions.set_discovery(conventions::served_kinds(client.clone()));
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

    controller
        .owns_stream(sts_stream)
        .owns_stream(svc_stream)
        .owns_stream(cm_stream)
        .owns_stream(hpa_stream)
        .watches_stream(pod_stream, |pod: Pod| cluster_of_pod(&pod))
        .watches_stream(user_cm_stream, move |cm| {
            let namespace = cm.namespace();
            let name = cm.name_any();
            clusters
                .state()
                .into_iter()
                .filter(|c| c.namespace() == namespace && references_config_map(c, &name))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(conventions_changed(settings.conventions.subscribe()))
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile did not complete");
            }
        })
        .await;
}

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

/// The cluster a pod belongs to, from its selector label `<cluster>-<component>`.
fn cluster_of_pod(pod: &Pod) -> Option<ObjectRef<DorisCluster>> {
    let owner = pod.labels().get(stores::POD_SELECTOR)?;
    let component = pod.labels().get("app.kubernetes.io/component")?;
    let cluster = owner.strip_suffix(&format!("-{component}"))?;
    Some(ObjectRef::new(cluster).within(&pod.namespace()?))
}

fn references_config_map(cluster: &DorisCluster, name: &str) -> bool {
    ComponentKind::ALL.iter().any(|kind| {
        cluster.spec.component(*kind).is_some_and(|view| {
            view.base().config_map_info.as_ref().is_some_and(|info| {
                info.config_map_name.as_deref() == Some(name)
                    || info
                        .config_maps
                        .iter()
                        .flatten()
                        .any(|m| m.config_map_name.as_deref() == Some(name))
            })
        })
    })
}

async fn reconcile(cluster: Arc<DorisCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_cluster(cluster, &ctx).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

async fn reconcile_cluster(cluster: Arc<DorisCluster>, ctx: &Context) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        if let Some(uid) = cluster.uid() {
            ctx.fe_checked.lock().expect("lock").remove(&uid);
            ctx.plans.remove(&uid);
            ctx.status_pace.remove(&uid);
        }
        // Owned objects go with the cluster (ownerReferences); PVCs stay
        // unless the user asked for them to go too.
        if retention::has_finalizer(&cluster) {
            let Some(deleted) = retention::cleanup(&ctx.client, &cluster).await? else {
                // Its StatefulSets are still going away.
                return Ok(Action::requeue(Duration::from_secs(2)));
            };
            for pvc in &deleted {
                ctx.metrics.count_write("PersistentVolumeClaim", "delete");
                tracing::info!(cluster = %cluster.name_any(), %pvc, "deleted with the cluster, as asked");
            }
        }
        return Ok(Action::await_change());
    }
    if retention::sync_finalizer(&ctx.client, &cluster).await? {
        ctx.metrics.count_write("DorisCluster", "patch");
        // The change wakes the next reconcile.
        return Ok(Action::await_change());
    }
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();

    let set = crate::conventions::reload::set_of(cluster.metadata.annotations.as_ref());
    let conventions_failure = ctx.conventions.failure_for(set);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let bundle = match ctx.conventions.bundle_for(set) {
        Ok(bundle) => bundle,
        Err(message) => {
            // Nothing to plan with: leave every object as it is.
            if !already_reported(&cluster, &message) {
                tracing::warn!(cluster = %name, namespace = %namespace, "{message}");
                publish(
                    ctx,
                    &cluster,
                    EventType::Warning,
                    "ConventionsUnavailable",
                    &message,
                )
                .await;
            }
            let previous = cluster
                .status
                .as_ref()
                .and_then(|s| s.conventions_revision.clone())
                .unwrap_or_default();
            let status = status::compute(
                &cluster,
                &[],
                &previous,
                Some(&message),
                Some(("ConventionsUnavailable", message.clone())),
                &now,
            );
            write_status(ctx, &cluster, status).await?;
            // A change of the conventions reconciles every cluster again.
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };
    let config_maps = user_config_maps(&ctx.client, &cluster, &namespace).await?;
    let secret_keys = user_secret_keys(&ctx.client, &cluster, &namespace).await?;
    let planned =
        plan_once(ctx, &bundle, &cluster, &config_maps, &secret_keys).and_then(|planned| {
            let fe = plan::names::statefulset(&name, ComponentKind::Fe);
            let live_fe = ctx.stores.statefulset(&namespace, &fe);
            let refused: Vec<_> = [
                membership::election_change(&planned.plan.objects, live_fe.clone()),
                membership::follower_cut(&cluster, live_fe.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !refused.is_empty() {
                return Err(PlanError::InvalidSpec(refused));
            }
            Ok(planned)
        });
    let memo = match planned {
        Ok(p) => p,
        Err(e) => {
            let reason = e.category();
            let message = match &e {
                PlanError::InvalidSpec(_) => e.to_string(),
                PlanError::Convention { .. } => format!("the conventions failed: {e}"),
            };
            if !already_reported(&cluster, &message) {
                tracing::warn!(cluster = %name, namespace = %namespace, "{message}");
                publish(ctx, &cluster, EventType::Warning, reason, &message).await;
            }
            let status = status::compute(
                &cluster,
                &[],
                bundle.revision(),
                conventions_failure.as_deref(),
                Some((reason, message)),
                &now,
            );
            write_status(ctx, &cluster, status).await?;
            // Nothing changes until the spec or the conventions do.
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };
    let policy = &memo.policy;
    let mut planned = std::borrow::Cow::Borrowed(&memo.plan);
    if !planned.missing_config_maps.is_empty() {
        let message = format!(
            "waiting for ConfigMap {} named in the spec",
            planned.missing_config_maps.join(", ")
        );
        if !already_reported(&cluster, &message) {
            publish(
                ctx,
                &cluster,
                EventType::Warning,
                "ConfigMapMissing",
                &message,
            )
            .await;
        }
        let status = status::compute(
            &cluster,
            &[],
            bundle.revision(),
            conventions_failure.as_deref(),
            Some(("ConfigMapMissing", message)),
            &now,
        );
        write_status(ctx, &cluster, status).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    }

    // A StatefulSet shrinks only once the FE has let its nodes go: then
    // membership decides first. Otherwise it follows the apply, so that
    // nothing waits on the FE to be created or changed.
    let mut members = None;
    if membership::shrinking(ctx, &cluster, &planned) {
        let decided = membership::reconcile(ctx, &cluster, &planned, policy, &now).await;
        membership::apply_hold(&mut planned.to_mut().objects, &decided.hold);
        members = Some(decided);
    }

    let applied = match apply::apply_all(
        &ctx.client,
        &ctx.resources,
        &ctx.stores,
        &planned.objects,
        &planned.autoscaled,
    )
    .await
    {
        Ok(applied) => applied,
        Err(Error::ApplyRefused(refusal)) => {
            // Said in status and once as an Event; the error makes the
            // controller retry later, as for any failed reconcile.
            let message = refusal.to_string();
            if !already_reported(&cluster, &message) {
                publish(ctx, &cluster, EventType::Warning, "ApplyRefused", &message).await;
            }
            let (pods, statefulsets) = live_children(ctx, &planned, &namespace, &name);
            let observed = observe(&planned, &statefulsets, &pods, &name);
            let mut status = status::compute(
                &cluster,
                &observed,
                &planned.revision,
                conventions_failure.as_deref(),
                Some(("ApplyRefused", message)),
                &now,
            );
            status::keep_unobserved(&cluster, &mut status);
            if let Some(decided) = &members {
                // The FE was already asked this time: say what it answered.
                for (type_, reason, note) in &decided.events {
                    publish(ctx, &cluster, *type_, reason, note).await;
                }
                membership::fold_into_status(&cluster, &mut status, decided, &now);
            }
            write_status(ctx, &cluster, status).await?;
            return Err(Error::ApplyRefused(refusal));
        }
        Err(e) => return Err(e),
    };
    let uid = cluster.uid().unwrap_or_default();
    let pruned = apply::prune(
        &ctx.client,
        &ctx.resources,
        &ctx.stores,
        &uid,
        &namespace,
        &planned.objects,
    )
    .await?;
    if !applied.written.is_empty() || !pruned.is_empty() {
        let mut note = String::new();
        if !applied.written.is_empty() {
            note.push_str(&format!("applied {}", applied.written.join(", ")));
        }
        if !pruned.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!("deleted {}", pruned.join(", ")));
        }
        tracing::info!(cluster = %name, namespace = %namespace, revision = %planned.revision, "{note}");
        publish(ctx, &cluster, EventType::Normal, "Applied", &note).await;
    }

    let (pods, statefulsets) = live_children(ctx, &planned, &namespace, &name);
    let observed = observe(&planned, &statefulsets, &pods, &name);
    let members = match members {
        Some(decided) => decided,
        None => membership::reconcile(ctx, &cluster, &planned, policy, &now).await,
    };
    for (type_, reason, note) in &members.events {
        tracing::info!(cluster = %name, namespace = %namespace, reason, "{note}");
        publish(ctx, &cluster, *type_, reason, note).await;
    }
    let rollout = rollout::advance(ctx, &cluster, &bundle, &planned, &pods, &now).await?;
    let mut new_status = status::compute(
        &cluster,
        &observed,
        &planned.revision,
        conventions_failure.as_deref(),
        rollout.failure,
        &now,
    );
    new_status.rollout = rollout.status;
    membership::fold_into_status(&cluster, &mut new_status, &members, &now);
    let ready = new_status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let deferred = write_status_paced(ctx, &cluster, new_status).await?;
    let next = if let Some(after) = rollout.requeue {
        after
    } else if ready {
        // Watches bring every change; the timer only guards against drift.
        Duration::from_secs(600)
    } else {
        Duration::from_secs(15)
    };
    let next = members.requeue.map_or(next, |m| m.min(next));
    Ok(Action::requeue(deferred.map_or(next, |d| d.min(next))))
}

/// The plan and membership rules of `cluster`: the last ones made, when
/// nothing they are made from changed since; otherwise planned anew.
fn plan_once(
    ctx: &Context,
    bundle: &Arc<crate::conventions::ConventionBundle>,
    cluster: &DorisCluster,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    secret_keys: &BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Result<Arc<memo::Planned>, PlanError> {
    let uid = cluster.uid().unwrap_or_default();
    let key = memo::fingerprint(bundle, cluster, config_maps, secret_keys);
    if let Some(planned) = ctx.plans.get(&uid, &key) {
        return Ok(planned);
    }
    let plan = plan::plan(
        bundle,
        PlanInput {
            cluster,
            config_maps,
            secret_keys,
        },
    )?;
    let policy = plan::membership::membership_policy(bundle, cluster).map_err(|error| {
        PlanError::Convention {
            component: "membership",
            error,
        }
    })?;
    let planned = Arc::new(memo::Planned { plan, policy });
    ctx.plans
        .insert(&uid, key, planned.clone(), || ctx.live_uids());
    Ok(planned)
}

/// The cluster's pods and each planned component's StatefulSet, as cached.
fn live_children(
    ctx: &Context,
    planned: &plan::Plan,
    namespace: &str,
    name: &str,
) -> (Vec<Arc<Pod>>, Vec<Option<Arc<StatefulSet>>>) {
    let pods = ctx.stores.cluster_pods(namespace, name);
    let statefulsets = planned
        .components
        .iter()
        .map(|c| {
            ctx.stores
                .statefulset(namespace, &plan::names::statefulset(name, c.kind))
        })
        .collect();
    (pods, statefulsets)
}

/// What the caches show of each planned component.
fn observe<'a>(
    planned: &'a plan::Plan,
    statefulsets: &'a [Option<Arc<StatefulSet>>],
    pods: &'a [Arc<Pod>],
    name: &str,
) -> Vec<status::Observed<'a>> {
    planned
        .components
        .iter()
        .zip(statefulsets)
        .map(|(c, sts)| status::Observed {
            kind: c.kind,
            statefulset: sts.as_deref(),
            pods: status::component_pods(pods, name, c.kind),
            config_hash: &c.config_hash,
        })
        .collect()
}

fn error_policy(cluster: Arc<DorisCluster>, error: &Error, ctx: Arc<Context>) -> Action {
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

/// Whether status already says `message`: an Event is sent once per
/// problem, not once per retry.
fn already_reported(cluster: &DorisCluster, message: &str) -> bool {
    cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.message == message))
}

/// The data of the ConfigMaps the cluster names (reads, never writes).
async fn user_config_maps(
    client: &Client,
    cluster: &DorisCluster,
    namespace: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut out = BTreeMap::new();
    for kind in ComponentKind::ALL {
        let Some(view) = cluster.spec.component(kind) else {
            continue;
        };
        let Some(info) = view.base().config_map_info.as_ref() else {
            continue;
        };
        let names = info.config_map_name.iter().chain(
            info.config_maps
                .iter()
                .flatten()
                .filter_map(|m| m.config_map_name.as_ref()),
        );
        for name in names {
            if out.contains_key(name) || name.is_empty() {
                continue;
            }
            if let Some(cm) = api.get_opt(name).await.map_err(Error::Kube)? {
                out.insert(name.clone(), cm.data.unwrap_or_default());
            }
        }
    }
    Ok(out)
}

/// The keys of the Secrets the cluster mounts in a directory with other
/// files, which decide whether their file names collide (reads, never
/// writes; only the key names are kept). A Secret that does not exist yet
/// is left out: its pods wait for it, and it is checked once it exists.
async fn user_secret_keys(
    client: &Client,
    cluster: &DorisCluster,
    namespace: &str,
) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>, Error> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = BTreeMap::new();
    for name in plan::mounts::secrets_to_read(cluster) {
        if let Some(secret) = api.get_opt(&name).await.map_err(Error::Kube)? {
            let keys = secret
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(secret.string_data.iter().flat_map(|d| d.keys()))
                .cloned()
                .collect();
            out.insert(name, keys);
        }
    }
    Ok(out)
}

/// How often a converging cluster's status is written while only its
/// progress changes (see [`status::headline`]).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Writes status when it changed. While the cluster converges (not
/// Ready, or its nodes still registering), a change of progress alone waits until the last write is
/// [`PROGRESS_INTERVAL`] old: then this returns how long is left, and the
/// caller looks again then, so the latest state is always written. A
/// change of the headline, and any change of a converged cluster, is
/// written at once.
async fn write_status_paced(
    ctx: &Context,
    cluster: &DorisCluster,
    status: crate::crd::DorisClusterStatus,
) -> Result<Option<Duration>, Error> {
    let uid = cluster.uid().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
    };
    // Not Ready yet, or Ready with nodes still registering with the FE.
    let converging = condition("Ready").is_none_or(|c| c.status != "True")
        || condition("MembersSynced").is_some_and(|c| c.reason == "Registering");
    if converging
        && let Some(old) = &cluster.status
        && *old != status
        && status::headline(old) == status::headline(&status)
        && let Some(wait) = ctx.status_pace.wait(&uid, PROGRESS_INTERVAL)
    {
        return Ok(Some(wait));
    }
    write_status(ctx, cluster, status).await?;
    Ok(None)
}

/// Writes status through the status subresource, only when it changed.
async fn write_status(
    ctx: &Context,
    cluster: &DorisCluster,
    status: crate::crd::DorisClusterStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(&cluster.status).unwrap_or(Value::Null);
    let mut new = serde_json::to_value(&status).unwrap_or(Value::Null);
    if !old.is_object() {
        // No status yet: the patch needs nothing cleared.
        return patch_status(ctx, cluster, new).await;
    }
    if old == new {
        return Ok(());
    }
    // A merge patch keeps keys it does not mention: clear the ones that went.
    clear_removed(&old, &mut new);
    patch_status(ctx, cluster, new).await
}

async fn patch_status(ctx: &Context, cluster: &DorisCluster, new: Value) -> Result<(), Error> {
    let api: Api<DorisCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": new })),
    )
    .await
    .map_err(Error::Kube)?;
    ctx.metrics.count_write("DorisCluster", "patch-status");
    if let Some(uid) = cluster.uid() {
        ctx.status_pace.written(&uid, || ctx.live_uids());
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    cluster: &DorisCluster,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cluster.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an Event");
    }
}
