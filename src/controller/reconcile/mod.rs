//! One reconcile of one cluster: a short list of named steps, each of
//! which may stop the flow with the reason status then shows. The steps
//! that write objects are in [`objects`], status and when to look again
//! in [`report`].

mod objects;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use crate::cluster::ClusterRef;
use crate::conventions::ConventionBundle;
use crate::crd::ComponentKind;
use crate::plan::{self, PlanError, PlanInput};

use super::events::publish;
use super::kinds::DorisResource;
use super::{
    Context, Error, apply, hosts, live_config, membership, memo, retention, rollout, status,
    user_config_maps, user_secret_keys, volumes,
};
use report::{StepOutcomes, cluster_labels, write_status, written_status};

pub(super) async fn reconcile<K: DorisResource>(
    cluster: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
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
            ctx.lookouts.remove(&uid);
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

pub(super) fn error_policy<K: DorisResource>(
    cluster: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
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
