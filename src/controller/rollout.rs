//! Rolling restarts the operator drives itself.
//!
//! The StatefulSets use `updateStrategy: OnDelete`: a change of the pod
//! template (image, configuration, conventions, a restart request) only
//! moves the StatefulSet's `updateRevision`. A pod whose
//! `controller-revision-hash` differs from it needs a restart; the operator
//! asks `restart.rhai` for the order and restarts one step at a time:
//!
//! 1. every pod outside the step is Ready;
//! 2. BE/CN pods of the step stop getting queries and loads (through the FE),
//!    and each pod of the step gets the [`DRAIN_ANNOTATION`] with the time;
//! 3. once `drain_seconds` have passed, the pods are deleted and the
//!    StatefulSet controller recreates them from the new template;
//! 4. the step is done when they are Ready and, if the step asks, the FE
//!    lists them alive; BE/CN pods then get queries and loads back.
//!
//! Everything is derived from the API and the FE on every reconcile: pod
//! revision labels, the drain annotation, and `status.rollout` (the step in
//! progress, read fresh from the API). An operator restart picks up where
//! the last one stopped, and a pod already at the new revision is never a
//! candidate again. Deletes carry the pod's UID, so a stale cache can never
//! delete the pod's replacement.
//!
//! When a restart may start is `fn maintenance` of `restart.rhai`'s to say
//! (see [`crate::plan::maintenance`]):
//!
//! - no step starts until every StatefulSet with outdated pods has kept its
//!   revision for `settle_seconds`, so edits in quick succession restart
//!   each pod once;
//! - restarts the user did not ask for (reason `conventions`: an edited
//!   policy or template, a new operator version) can be held until a
//!   maintenance window opens or the cluster carries
//!   [`APPROVE_ANNOTATION`] with the value status shows. Why a pod is
//!   outdated is known from [`INPUTS_ANNOTATION`]: each pod at its
//!   StatefulSet's revision is stamped with the hash of the user's inputs it
//!   was planned under; an outdated pod stamped with today's inputs was
//!   outdated by the conventions alone. The new pod template is applied at
//!   once (pods added by a scale-up use it); only the deletions wait, and a
//!   restart the user asks for takes those pods along.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use crate::conventions::ConventionBundle;
use crate::crd::{ComponentKind, RolloutStatus};
use crate::plan::restart::{RestartCandidate, plan_restart};
use crate::plan::{APPLIED_HASH_ANNOTATION, Plan};

use super::kinds::DorisResource;

mod execute;
mod fe;
mod hold;
use super::events::publish;
use super::{Context, Error};
use execute::execute;
use fe::Fe;
use hold::held;

/// `"true"` on a DorisCluster halts its rollouts before the next step.
pub const PAUSED_ANNOTATION: &str = "doris.selectdb.com/rollout-paused";
/// On a pod: when the operator began draining it for a restart (RFC 3339).
pub const DRAIN_ANNOTATION: &str = "doris.selectdb.com/drain-started";
/// On a DorisCluster: seconds a restarted pod may take to become Ready
/// before the rollout is reported stuck (default 300).
pub const STEP_TIMEOUT_ANNOTATION: &str = "doris.selectdb.com/rollout-step-timeout-seconds";
pub const DEFAULT_STEP_TIMEOUT_SECONDS: i64 = 300;
/// On a cluster: lets the held restart whose `approveWith` (in
/// `status.rollout`) it equals run now, outside any maintenance window.
pub const APPROVE_ANNOTATION: &str = "doris.selectdb.com/approve-restart";
/// On a pod at its StatefulSet's revision: the hash of the user's inputs its
/// template was planned under ([`crate::plan::restart::inputs_hash`]).
pub const INPUTS_ANNOTATION: &str = "doris.selectdb.com/inputs-hash";

const REVISION_LABEL: &str = "controller-revision-hash";
/// How often a rollout looks again while it waits on something no watch
/// reports (the FE, a drain).
const POLL: Duration = Duration::from_secs(1);
const READY_POLL: Duration = Duration::from_secs(5);
const STUCK_POLL: Duration = Duration::from_secs(30);
/// The longest a held restart waits before it is looked at again.
const HELD_POLL: Duration = Duration::from_secs(600);

/// What a reconcile did for the cluster's rollout.
#[derive(Debug, Default)]
pub struct Outcome {
    /// For `status.rollout`.
    pub status: Option<RolloutStatus>,
    /// Why the rollout is stuck (Degraded).
    pub failure: Option<(&'static str, String)>,
    /// When to look again.
    pub requeue: Option<Duration>,
    /// Parts whose outdated pods all wait for a window or an approval: they
    /// serve as they are, so their status does not say they are upgrading.
    pub held_parts: Vec<String>,
}

/// Since when each StatefulSet with outdated pods has had its current
/// revision: (revision, first seen, in seconds since the epoch), by
/// `namespace/name`. Only StatefulSets with outdated pods are kept. After an
/// operator restart a revision counts from when it is first seen again,
/// which only delays a rollout by the settle time.
#[derive(Default)]
pub struct Revisions(std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>);

impl Revisions {
    /// When `revision` of StatefulSet `key` was first seen; `now` if just now.
    fn first_seen(&self, key: &str, revision: &str, now: i64) -> i64 {
        let mut map = self.0.lock().expect("lock");
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| (revision.to_string(), now));
        if entry.0 != revision {
            *entry = (revision.to_string(), now);
        }
        entry.1
    }

    fn forget(&self, key: &str) {
        self.0.lock().expect("lock").remove(key);
    }
}

/// A component whose pods the operator restarts.
struct Component<'a> {
    kind: ComponentKind,
    part: &'a str,
    /// The hash of the user's inputs the part is planned under.
    inputs: &'a str,
    sts: std::sync::Arc<StatefulSet>,
    revision: String,
    replicas: i32,
    pods: Vec<&'a Pod>,
}

impl Component<'_> {
    fn updated(&self, pod: &Pod) -> bool {
        pod.labels().get(REVISION_LABEL) == Some(&self.revision)
    }

    /// Outdated pods; those a scale-down is about to remove are left alone.
    fn candidates(&self) -> impl Iterator<Item = &&Pod> {
        self.pods.iter().filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !self.updated(p)
                && ordinal(&p.name_any()).is_some_and(|o| o < i64::from(self.replicas))
        })
    }
}

fn ordinal(pod: &str) -> Option<i64> {
    pod.rsplit_once('-')?.1.parse().ok()
}

/// Whether a pod is Ready and not on its way out.
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn drains_backend(kind: ComponentKind) -> bool {
    matches!(
        kind,
        ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg
    )
}

/// Why `pod` of `comp` needs a restart. A pod stamped with the part's
/// current inputs was outdated by the conventions; otherwise a changed image
/// is an upgrade, then a changed configuration hash, then a restart request,
/// and any other change of what the user wrote is `spec`. A pod without a
/// stamp (made by an operator that did not stamp) is judged as before
/// stamps: `conventions` unless image, configuration or a request differ.
fn reason(comp: &Component<'_>, pod: &Pod) -> &'static str {
    let stamp = pod.annotations().get(INPUTS_ANNOTATION);
    if stamp.is_some_and(|s| s == comp.inputs) {
        return "conventions";
    }
    let template = &comp.sts.spec.template;
    let images: BTreeMap<&str, Option<&str>> = template
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.as_str(), c.image.as_deref()))
        .collect();
    let upgrade = pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
        images
            .get(c.name.as_str())
            .is_some_and(|i| *i != c.image.as_deref())
    });
    if upgrade {
        return "upgrade";
    }
    let wanted = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref());
    let differs = |key: &dyn Fn(&str) -> bool| {
        let of = |m: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
            m.into_iter()
                .flatten()
                .filter(|(k, _)| key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        of(pod.metadata.annotations.as_ref()) != of(wanted)
    };
    if differs(&|k| k == "doris.selectdb.com/config-hash") {
        "config"
    } else if differs(&|k| k.ends_with("/restartedAt")) {
        "requested"
    } else if stamp.is_some() {
        "spec"
    } else {
        "conventions"
    }
}

/// Reasons by precedence: a rollout of pods with several reasons shows the
/// first.
const REASONS: &[&str] = &["upgrade", "config", "spec", "requested", "conventions"];

/// Whether `pod` runs its part's current template without the stamp of
/// the inputs that template was planned under.
fn needs_stamp(comp: &Component<'_>, pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && comp.updated(pod)
        && pod.annotations().get(INPUTS_ANNOTATION).map(String::as_str) != Some(comp.inputs)
}

/// Stamps each pod at its StatefulSet's revision with the inputs its
/// template was planned under, so a later template change is known to be
/// the user's or the conventions'. The StatefulSet is as planned (checked
/// by the caller), so its revision's template is the current plan's.
async fn stamp_inputs(ctx: &Context, namespace: &str, comp: &Component<'_>) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    for pod in &comp.pods {
        if !needs_stamp(comp, pod) {
            continue;
        }
        let patch = json!({"metadata": {
            "uid": pod.metadata.uid,
            "annotations": {INPUTS_ANNOTATION: comp.inputs},
        }});
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => ctx.metrics.count_write("Pod", "patch"),
            // Gone, or replaced: its replacement is stamped when seen.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok(())
}

/// The value of [`APPROVE_ANNOTATION`] that approves restarting the held
/// pods onto the StatefulSets' current revisions. It covers every
/// StatefulSet, not only those with held pods, so it stays the same while
/// an approved rollout finishes one part after another, and changes with
/// any later change of a pod template.
fn approval_token<'a>(held: impl Iterator<Item = &'a Component<'a>>) -> String {
    let revisions: BTreeSet<String> = held
        .map(|c| format!("{}={}", c.sts.name_any(), c.revision))
        .collect();
    let text = revisions.into_iter().collect::<Vec<_>>().join(",");
    crate::plan::objects::content_hash(&text)
}

/// Moves the cluster's rollout on by at most one step, says where it is,
/// and counts the cluster among those with a held restart or not.
pub async fn advance<K: DorisResource>(
    ctx: &Context,
    object: &K,
    bundle: &ConventionBundle,
    plan: &Plan,
    pods: &[std::sync::Arc<Pod>],
    now: &Time,
) -> Result<Outcome, Error> {
    let outcome = advance_rollout(ctx, object, bundle, plan, pods, now).await?;
    let held = outcome.status.as_ref().is_some_and(|s| s.held.is_some());
    if let Some(uid) = object.meta().uid.as_deref() {
        ctx.metrics.restart_held(uid, held, || ctx.live_uids());
    }
    Ok(outcome)
}

/// Moves the cluster's rollout on by at most one step and says where it is.
async fn advance_rollout<K: DorisResource>(
    ctx: &Context,
    object: &K,
    bundle: &ConventionBundle,
    plan: &Plan,
    pods: &[std::sync::Arc<Pod>],
    now: &Time,
) -> Result<Outcome, Error> {
    let cluster = object.cluster();
    let namespace = cluster.namespace();
    let name = cluster.name();
    let reference = object.object_ref(&());
    let mut components = Vec::new();
    let mut unsynced = false;
    for c in &plan.components {
        let Some(sts) = ctx.stores.statefulset(&namespace, &c.names.statefulset) else {
            unsynced = true;
            continue;
        };
        let on_delete = sts
            .spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            == Some("OnDelete");
        if !on_delete {
            // The StatefulSet controller rolls it.
            continue;
        }
        // The cache must hold the StatefulSet as planned, and its status
        // must describe that spec: otherwise `updateRevision` is an older
        // one, and a pod already at the newest would look outdated.
        let sts_name = sts.name_any();
        let planned = plan.objects.iter().find(|o| {
            o["kind"] == "StatefulSet" && o["metadata"]["name"].as_str() == Some(sts_name.as_str())
        });
        let wanted =
            planned.and_then(|o| o["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str());
        if wanted.is_some()
            && wanted
                != sts
                    .annotations()
                    .get(APPLIED_HASH_ANNOTATION)
                    .map(String::as_str)
        {
            unsynced = true;
            continue;
        }
        let status = sts.status.as_ref();
        let observed = status.and_then(|s| s.observed_generation) >= sts.metadata.generation;
        let Some(revision) = status.and_then(|s| s.update_revision.clone()) else {
            unsynced = true;
            continue;
        };
        if !observed {
            unsynced = true;
            continue;
        }
        components.push(Component {
            kind: c.kind,
            part: &c.part,
            inputs: &c.inputs_hash,
            replicas: sts.spec.replicas.unwrap_or(1),
            revision,
            sts,
            pods: super::status::component_pods(pods, &c.names),
        });
    }
    let mut any_candidate = false;
    // Stamps are only read to tell which restarts a policy holds: while
    // none does, pods are left unwritten (a policy that fails is taken as
    // holding, so nothing goes unstamped by mistake).
    let mut holds: Option<bool> = None;
    for comp in &components {
        if comp.pods.iter().any(|p| needs_stamp(comp, p))
            && *holds.get_or_insert_with(|| {
                crate::plan::maintenance::maintenance(bundle, cluster)
                    .map_or(true, |m| !m.hold.is_empty())
            })
        {
            stamp_inputs(ctx, &namespace, comp).await?;
        }
        let key = format!("{namespace}/{}", comp.sts.name_any());
        if comp.candidates().next().is_some() {
            any_candidate = true;
            // Settling counts from here, held or not.
            ctx.revisions
                .first_seen(&key, &comp.revision, now.0.as_second());
        } else {
            ctx.revisions.forget(&key);
        }
    }
    let cached = object.read_status().rollout;
    if !any_candidate && cached.is_none() {
        return Ok(Outcome::default());
    }
    if unsynced {
        // A StatefulSet's revision is not known yet: look again soon.
        return Ok(Outcome {
            status: cached,
            failure: None,
            requeue: Some(POLL),
            ..Default::default()
        });
    }
    // The step in progress, as last written (the cache may lag a write).
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let fresh = api.get(&name).await.map_err(Error::Kube)?;
    let previous = fresh.read_status().rollout;
    let annotations = fresh.meta().annotations.clone().unwrap_or_default();
    let paused = annotations.get(PAUSED_ANNOTATION).map(String::as_str) == Some("true");
    let timeout = annotations
        .get(STEP_TIMEOUT_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(DEFAULT_STEP_TIMEOUT_SECONDS);

    let mut fe = Fe::new(ctx, cluster, plan, pods);
    let find = |pod: &str| -> Option<(&Component<'_>, Option<&Pod>)> {
        let comp = components
            .iter()
            .find(|c| (0..c.replicas).any(|i| format!("{}-{i}", c.sts.name_any()) == pod))?;
        Some((
            comp,
            comp.pods.iter().copied().find(|p| p.name_any() == pod),
        ))
    };
    let stuck = |pod: &Pod| -> Option<String> {
        let born = pod.metadata.creation_timestamp.as_ref()?;
        let age = now.0.as_second() - born.0.as_second();
        (age > timeout).then(|| {
            format!(
                "{} did not become Ready within {timeout}s of its restart; the rollout is halted",
                pod.name_any()
            )
        })
    };
    let waiting = |status: RolloutStatus, failure: Option<String>| {
        // Pods report readiness through the watch; the timer only guards
        // the timeout. The FE and drains are looked at again soon.
        let requeue = if failure.is_some() {
            STUCK_POLL
        } else if status.waiting.ends_with(" to be Ready") {
            READY_POLL
        } else {
            POLL
        };
        Outcome {
            status: Some(status),
            failure: failure.map(|m| ("RolloutStuck", m)),
            requeue: Some(requeue),
            ..Default::default()
        }
    };

    // Candidates already draining belong to a step that has begun.
    let draining: BTreeSet<String> = components
        .iter()
        .flat_map(|c| c.candidates())
        .filter(|p| p.annotations().contains_key(DRAIN_ANNOTATION))
        .map(|p| p.name_any())
        .collect();

    // 1. The step in progress: its restarted pods must be back.
    if let Some(prev) = previous.as_ref().filter(|_| draining.is_empty()) {
        for pod_name in &prev.pods {
            let Some((comp, pod)) = find(pod_name) else {
                continue;
            };
            if pod.is_some_and(|p| p.metadata.deletion_timestamp.is_none() && !comp.updated(p)) {
                // Not restarted yet; planned again below.
                continue;
            }
            let wait = |what: String, failure: Option<String>| {
                let status = report(comp, &prev.reason, &prev.pods, &prev.wait_for, what);
                waiting(status, failure)
            };
            let Some(pod) = pod.filter(|p| is_ready(p) && comp.updated(p)) else {
                let failure = pod.filter(|p| comp.updated(p)).and_then(stuck);
                if let Some(message) = &failure
                    && prev.waiting != *message
                {
                    publish(ctx, &reference, EventType::Warning, "RolloutStuck", message).await;
                }
                let what = failure
                    .clone()
                    .unwrap_or_else(|| format!("{pod_name} to be Ready"));
                return Ok(wait(what, failure));
            };
            if prev.wait_for.iter().any(|w| w == "fe_reports_alive") {
                match fe.alive(comp.kind, pod_name).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return Ok(wait(format!("the FE to report {pod_name} alive"), None));
                    }
                    Err(e) => return Ok(wait(format!("the FE to answer: {e}"), None)),
                }
            }
            if drains_backend(comp.kind) && fe.drains_through_fe() {
                match fe.set_disabled(pod.name_any().as_str(), false).await {
                    Ok(true) => {
                        tracing::info!(cluster = %name, pod = %pod_name, "queries and loads resumed");
                        fe.backends = None;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return Ok(wait(
                            format!("the FE to resume queries on {pod_name}: {e}"),
                            None,
                        ));
                    }
                }
            }
        }
    }

    let mut candidates: Vec<(&Component<'_>, &Pod, &'static str)> = components
        .iter()
        .flat_map(|c| c.candidates().map(move |p| (c, *p, reason(c, p))))
        .collect();
    if candidates.is_empty() {
        if let Some(prev) = &previous {
            let note = format!(
                "every pod of the cluster runs its current template ({} finished)",
                prev.reason
            );
            publish(ctx, &reference, EventType::Normal, "RolloutComplete", &note).await;
        }
        return Ok(Outcome::default());
    }

    // 2. Restarts the user did not ask for wait for a window or approval;
    // a step that has begun always ends.
    let maintenance = match crate::plan::maintenance::maintenance(bundle, cluster) {
        Ok(m) => m,
        Err(e) => {
            // Nothing restarts on a policy that cannot say when.
            let message = format!("the maintenance policy failed: {e}");
            let (comp, _, why) = candidates[0];
            let status = report(comp, why, &[], &[], message.clone());
            return Ok(Outcome {
                status: Some(status),
                failure: Some(("RestartPolicyFailed", message)),
                requeue: Some(Duration::from_secs(30)),
                ..Default::default()
            });
        }
    };
    let holdable = |(_, pod, why): &(&Component<'_>, &Pod, &str)| {
        maintenance.holds(why) && !draining.contains(&pod.name_any())
    };
    if candidates.iter().any(holdable) && maintenance.open_window(now.0).is_none() {
        let token = approval_token(components.iter());
        if annotations.get(APPROVE_ANNOTATION) != Some(&token) {
            candidates.retain(|c| !holdable(c));
            if candidates.is_empty() {
                return Ok(held(cluster, &maintenance, &components, &token, now));
            }
        }
    }

    // 3. No step starts until the pod templates have settled: edits in
    // quick succession make one restart of each pod.
    let mut settled_at = 0;
    for comp in candidates.iter().map(|(c, _, _)| *c) {
        let key = format!("{namespace}/{}", comp.sts.name_any());
        let seen = ctx
            .revisions
            .first_seen(&key, &comp.revision, now.0.as_second());
        settled_at = settled_at.max(seen + maintenance.settle_seconds);
    }

    // 4. The next step, as the restart policy orders the candidates.
    let mut inputs = Vec::new();
    for (comp, pod, _) in &candidates {
        let pod_name = pod.name_any();
        let role = if comp.kind == ComponentKind::Fe {
            fe.role(&pod_name).await
        } else {
            None
        };
        inputs.push(RestartCandidate {
            component: comp.kind.as_str().to_string(),
            part: comp.part.to_string(),
            ordinal: ordinal(&pod_name).unwrap_or(0),
            pod: pod_name,
            role,
            ready: is_ready(pod),
        });
    }
    let first = candidates[0].0;
    let why = candidates
        .iter()
        .map(|(_, _, why)| *why)
        .min_by_key(|r| REASONS.iter().position(|x| x == r))
        .unwrap_or("conventions");
    let steps = match plan_restart(bundle, cluster, why, &inputs) {
        Ok(steps) => steps,
        Err(e) => {
            let message = format!("the restart policy failed: {e}");
            let status = report(first, why, &[], &[], message.clone());
            return Ok(Outcome {
                status: Some(status),
                failure: Some(("RestartPolicyFailed", message)),
                requeue: Some(Duration::from_secs(30)),
                ..Default::default()
            });
        }
    };
    // Outdated pods that are down already (say, crashing until the new
    // template fixes them) go first, in the policy's order: restarting them
    // costs nothing, and waiting for them would wait forever.
    let down: BTreeSet<String> = inputs
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.pod.clone())
        .collect();
    let index = steps
        .iter()
        .position(|s| s.pods.iter().any(|p| draining.contains(p)))
        .or_else(|| {
            steps
                .iter()
                .position(|s| s.pods.iter().any(|p| down.contains(p)))
        })
        .unwrap_or(0);
    let Some(step) = steps.get(index) else {
        return Ok(Outcome::default());
    };
    let Some((comp, _)) = find(&step.pods[0]) else {
        return Ok(Outcome::default());
    };
    // A step whose pods went only in part keeps the ones already restarted
    // in status, so they are still waited for (and resumed) afterwards.
    let mut shown = step.pods.clone();
    if let Some(prev) = previous
        .as_ref()
        .filter(|p| p.pods.iter().any(|n| step.pods.contains(n)))
    {
        for pod in &prev.pods {
            if !shown.contains(pod) {
                shown.push(pod.clone());
            }
        }
    }
    let wait = |what: String, failure: Option<String>| {
        let status = report(comp, why, &shown, &step.wait_for, what);
        waiting(status, failure)
    };
    if paused {
        return Ok(Outcome {
            requeue: None,
            ..wait(format!("{PAUSED_ANNOTATION} on the cluster"), None)
        });
    }
    if draining.is_empty() && now.0.as_second() < settled_at {
        let until = k8s_openapi::jiff::Timestamp::from_second(settled_at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        return Ok(Outcome {
            requeue: Some(Duration::from_secs(
                (settled_at - now.0.as_second()).max(1) as u64
            )),
            ..wait(
                format!(
                    "the pod template to stay unchanged for {}s (until {until}), \
                     so quick edits restart each pod once",
                    maintenance.settle_seconds
                ),
                None,
            )
        });
    }
    if draining.is_empty() {
        // Nothing starts while any other pod is down, unless the step only
        // restarts pods that are down themselves.
        let only_down = step.pods.iter().all(|p| down.contains(p));
        for c in &components {
            let mut present = 0;
            for pod in &c.pods {
                present += 1;
                let name = pod.name_any();
                let excused = step.pods.contains(&name) || (only_down && down.contains(&name));
                if !excused && !is_ready(pod) {
                    let failure = if c.updated(pod) { stuck(pod) } else { None };
                    let what = failure.clone().unwrap_or(format!("{name} to be Ready"));
                    return Ok(wait(what, failure));
                }
            }
            if present < c.replicas {
                return Ok(wait(
                    format!("{} to have all {} pods", c.sts.name_any(), c.replicas),
                    None,
                ));
            }
        }
    }
    let (what, after) = execute(
        ctx,
        &reference,
        &namespace,
        &mut fe,
        comp,
        step,
        index,
        steps.len(),
        why,
        now,
    )
    .await?;
    Ok(Outcome {
        requeue: Some(after),
        ..wait(what, None)
    })
}

/// `status.rollout` for one step of `comp`'s rollout.
fn report(
    comp: &Component<'_>,
    reason: &str,
    pods: &[String],
    wait_for: &[String],
    waiting: String,
) -> RolloutStatus {
    RolloutStatus {
        component: comp.part.to_string(),
        target_revision: comp.revision.clone(),
        reason: reason.to_string(),
        updated: comp.pods.iter().filter(|p| comp.updated(p)).count() as i32,
        total: comp.replicas,
        pods: pods.to_vec(),
        wait_for: wait_for.to_vec(),
        waiting,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sts(image: &str, annotations: Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d-be"},
            "spec": {
                "selector": {},
                "serviceName": "d-be-internal",
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "be", "image": image}]}
                }
            },
            "status": {"replicas": 1, "updateRevision": "d-be-2"}
        }))
        .unwrap()
    }

    fn pod(image: &str, annotations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "d-be-0", "annotations": annotations,
                         "labels": {"controller-revision-hash": "d-be-1"}},
            "spec": {"containers": [{"name": "be", "image": image}]}
        }))
        .unwrap()
    }

    fn reason_of(sts: StatefulSet, pod: &Pod) -> &'static str {
        let comp = Component {
            kind: ComponentKind::Be,
            part: "be",
            inputs: "i2",
            sts: std::sync::Arc::new(sts),
            revision: "d-be-2".into(),
            replicas: 1,
            pods: vec![pod],
        };
        reason(&comp, pod)
    }

    #[test]
    fn why_pods_restart() {
        let hash = |h: &str| json!({"doris.selectdb.com/config-hash": h});
        let asked = |t: &str| json!({"apache.doris.be/restartedAt": t});
        assert_eq!(
            reason_of(sts("be:2", hash("a")), &pod("be:1", hash("b"))),
            "upgrade"
        );
        assert_eq!(
            reason_of(sts("be:1", hash("a")), &pod("be:1", hash("b"))),
            "config"
        );
        assert_eq!(
            reason_of(sts("be:1", asked("t2")), &pod("be:1", asked("t1"))),
            "requested"
        );
        assert_eq!(
            reason_of(sts("be:1", json!({})), &pod("be:1", json!({}))),
            "conventions"
        );
        // A pod stamped with the inputs it was planned under: the same
        // inputs mean the conventions changed, whatever else differs.
        let stamped = |inputs: &str, more: Value| {
            let mut a = json!({INPUTS_ANNOTATION: inputs});
            a.as_object_mut()
                .unwrap()
                .extend(more.as_object().unwrap().clone());
            a
        };
        assert_eq!(
            reason_of(
                sts("be:1", hash("a")),
                &pod("be:1", stamped("i2", hash("b")))
            ),
            "conventions",
            "a template convention changed the configuration"
        );
        assert_eq!(
            reason_of(
                sts("be:1", json!({})),
                &pod("be:1", stamped("i1", json!({})))
            ),
            "spec",
            "the user changed something else"
        );
        assert_eq!(
            reason_of(
                sts("be:2", json!({})),
                &pod("be:1", stamped("i1", json!({})))
            ),
            "upgrade"
        );
    }

    #[test]
    fn settling_counts_from_when_a_revision_is_first_seen() {
        let revisions = Revisions::default();
        assert_eq!(revisions.first_seen("ns/d-be", "r1", 100), 100);
        assert_eq!(revisions.first_seen("ns/d-be", "r1", 105), 100);
        assert_eq!(
            revisions.first_seen("ns/d-be", "r2", 107),
            107,
            "a new edit"
        );
        revisions.forget("ns/d-be");
        assert_eq!(revisions.first_seen("ns/d-be", "r2", 120), 120);
    }
}
