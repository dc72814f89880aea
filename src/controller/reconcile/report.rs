//! The last step: status from what the caches show, written when it
//! changed (paced while the cluster converges), and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;

use kube::ResourceExt;
use serde_json::{Value, json};

use crate::plan;

use super::super::{
    Context, Error, hosts, live_config, membership, memo, rollout, status, volumes,
};
use super::{DorisResource, Run, observe};

impl<K: DorisResource> Run<'_, K> {
    /// Status from what the caches show, and when to look again.
    pub(super) async fn step_status(
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
        let uid = self.object.uid().unwrap_or_default();
        let next = if let Some(after) = rollout.requeue {
            after
        } else if ready {
            // Watches bring every change; the timer only guards against drift.
            self.ctx.lookouts.remove(&uid);
            READY_LOOKOUT
        } else {
            // Less and less often while nothing moves (see memo::Lookouts).
            self.ctx
                .lookouts
                .next(&uid, &new_status, CONVERGING_LOOKOUT, || {
                    self.ctx.live_uids()
                })
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

/// When a Ready cluster is looked at again if nothing wakes it.
const READY_LOOKOUT: Duration = Duration::from_secs(600);

/// The shortest and the longest wait before a cluster not Ready yet is
/// looked at again if nothing wakes it (see [`memo::Lookouts`]).
const CONVERGING_LOOKOUT: (Duration, Duration) =
    (Duration::from_secs(15), Duration::from_secs(300));

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
pub(super) fn cluster_labels<K: DorisResource>(object: &K) -> crate::metrics::ClusterLabels {
    crate::metrics::ClusterLabels {
        kind: K::kind(&()).to_string(),
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    }
}

/// What the steps before status found, for status to show.
pub(super) struct StepOutcomes {
    pub rollout: rollout::Outcome,
    pub volumes: volumes::Outcome,
    pub live: live_config::Outcome,
    pub hosts: hosts::Outcome,
}

/// Writes status through the status subresource, only when it changed.
pub(super) async fn write_status<K: DorisResource>(
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
pub(super) fn written_status<K: DorisResource>(
    ctx: &Context,
    object: &K,
) -> Option<memo::WrittenStatus> {
    ctx.status_pace.unseen(
        &object.uid().unwrap_or_default(),
        object.meta().resource_version.as_deref(),
    )
}

/// The cluster's status as JSON, as it is on the API server: the cache's,
/// or the operator's own write the cache does not show yet.
pub(super) fn live_status_json<K: DorisResource>(ctx: &Context, object: &K) -> Value {
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
