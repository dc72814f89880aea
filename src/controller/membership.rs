//! FE membership: the nodes the FE lists kept in step with the pods, so
//! that scaling never loses data.
//!
//! - **BE scale-down**: the BEs going away (highest ordinals) are
//!   decommissioned through the FE; the StatefulSet keeps its replicas until
//!   the FE has moved their tablets off and removed them (where Doris keeps
//!   a decommissioned BE listed, it is dropped once it has no tablets), then
//!   shrinks. Scaling back up cancels the decommission of the BEs that stay
//!   where Doris can; membership/backends.rs says what each mode takes.
//! - **CN scale-down**: the StatefulSet shrinks at once (compute nodes hold
//!   no data); the FE entries of the pods that went are dropped.
//! - **FE scale-down**: observers going away are dropped from the FE
//!   before the StatefulSet shrinks. Followers are fixed by `electionNumber`.
//! - **Scale-up**: new pods start together; each must show up in the FE's
//!   list, and one that does not within the policy's timeout is reported.
//! - **Hygiene**: nodes the FE lists whose pod will not come back are
//!   reported, and dropped only when `membership.rhai` says so.
//!
//! Every decision is made again from what the FE and the API show at each
//! reconcile, so an operator restart loses nothing. The FE is asked only
//! while something is in flux: a replica change not yet confirmed, or a
//! node listed in `status.membership`. An FE that does not answer delays
//! the step: nothing shrinks until it answers again.

mod backends;
mod followers;

pub use followers::{election_change, follower_cut};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use serde_json::Value;

use crate::cluster::ClusterRef;
use crate::crd::{ComponentKind, MemberNode, MembershipStatus};
use crate::doris::{FeClient, FeError, Frontend, FrontendRole};
use crate::plan::Plan;
use crate::plan::membership::{MembershipPolicy, ordinal_of, pod_of_host};

use super::fe_reach::Unreached;
use super::status::Status;

use super::Context;

/// The FE of a cluster in flux is asked at most this often.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How often a cluster whose membership is not confirmed yet (its FE not
/// answering so far) is checked when nothing is in flux.
const UNCONFIRMED_INTERVAL: Duration = Duration::from_secs(10);

/// The longest a cluster whose FE keeps not answering waits between two
/// attempts: each attempt it misses doubles the wait, from
/// [`MIN_INTERVAL`] (a scale-down waits on the FE) or
/// [`UNCONFIRMED_INTERVAL`], up to this. Clusters cut off from their FEs
/// so stay out of the way of the others' reconciles.
const UNANSWERED_CAP: Duration = Duration::from_secs(300);

/// How long to wait after `unanswered` attempts in a row the FE did not
/// answer, starting from `base`.
fn backoff(base: Duration, unanswered: u32) -> Duration {
    let doublings = unanswered.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(UNANSWERED_CAP)
}

/// What membership asks of this reconcile.
#[derive(Debug, Default)]
pub struct Outcome {
    /// StatefulSet name → replicas it must keep for now.
    pub hold: BTreeMap<String, i32>,
    /// The new `status.membership`.
    pub status: Option<MembershipStatus>,
    /// The `MembersSynced` condition: status, reason, message.
    pub condition: Option<(&'static str, &'static str, String)>,
    /// What to tell users, once per change.
    pub events: Vec<(EventType, &'static str, String)>,
    /// Come back this soon while something is in flux.
    pub requeue: Option<Duration>,
    /// The id the FE gave each compute group, by part, when it was asked.
    pub compute_group_ids: BTreeMap<String, String>,
    /// Whether the FE was asked (or tried) this time.
    pub asked: bool,
    /// Pods to restart so that their entrypoint registers them afresh.
    pub restart: Vec<String>,
}

/// The last time a cluster's membership was compared with its FE.
#[derive(Clone, Debug)]
pub struct FeChecked {
    at: std::time::Instant,
    /// Whether the FE answered.
    answered: bool,
    /// Attempts in a row the FE did not answer, this one included.
    unanswered: u32,
    /// The replicas (`fe=3,be=3`) the FE was last found to list exactly,
    /// `None` when it last listed nodes in flux. Status may not show the
    /// last answer yet (the cache lags the operator's own writes), so this
    /// says whether a status that looks settled still is.
    confirmed: Option<String>,
    /// The replicas the FE last refused a statement for: asked again only
    /// every [`UNCONFIRMED_INTERVAL`] until the spec changes.
    refused: Option<String>,
    /// What the FE's answer was compared with: the replicas and each pod's
    /// name, IP and readiness, digested.
    compared: u64,
    /// When the FE, having answered, is to be asked again if that stays
    /// the same: what the answer left in flux decides it.
    again: Duration,
    /// What this attempt concluded (`status.membership`, the
    /// `MembersSynced` condition and the compute groups' ids): it stands
    /// until the next attempt, even when status has not shown it yet (its
    /// write may be paced).
    said: Option<Said>,
}

/// What an attempt left for status: `status.membership`, the
/// `MembersSynced` condition and the compute groups' ids.
#[derive(Clone, Debug)]
struct Said {
    status: Option<MembershipStatus>,
    condition: Option<(&'static str, &'static str, String)>,
    compute_group_ids: BTreeMap<String, String>,
}

/// One component's replicas: planned, and what its StatefulSet has now.
struct Scale {
    kind: ComponentKind,
    part: String,
    statefulset: String,
    desired: i32,
    current: Option<i32>,
}

/// Decides, and carries out through the FE, this reconcile's membership
/// steps for `cluster`, planned as `planned`.
pub async fn reconcile(
    ctx: &Context,
    cluster: ClusterRef<'_>,
    status: &Status,
    planned: &Plan,
    policy: &MembershipPolicy,
    now: &Time,
) -> Outcome {
    let namespace = cluster.namespace();
    let name = cluster.name();
    let scales = scales(ctx, cluster, planned);
    let signature = scales
        .iter()
        .map(|s| format!("{}={}", s.part, s.desired))
        .collect::<Vec<_>>()
        .join(",");
    let previous = status.membership.clone().unwrap_or_default();
    let shrinking = scales
        .iter()
        .any(|s| s.current.is_some_and(|c| c > s.desired));
    let recheck = Duration::from_secs(policy.recheck_seconds.unsigned_abs());
    let uid = cluster.meta().uid.clone().unwrap_or_default();
    let last = ctx.fe_checked.lock().expect("lock").get(&uid).cloned();
    let pods: Vec<(String, String, bool)> = ctx
        .stores
        .cluster_pods(&namespace, &cluster.statefulset_names())
        .iter()
        .map(|p| {
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default();
            (p.name_any(), ip, super::rollout::is_ready(p))
        })
        .collect();
    let compared = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&signature, &pods).hash(&mut hasher);
        hasher.finish()
    };
    let settled = !shrinking
        && previous.nodes.is_empty()
        && previous.confirmed.as_deref() == Some(&signature)
        && last
            .as_ref()
            .is_none_or(|l| l.confirmed.as_deref() == Some(&signature));
    // Settled: asked every `recheck`. When the replicas or the pods changed
    // since the FE last answered: at most once a second, however many
    // events come. Else when the last answer said to (a node about to be
    // listed or let go is polled for), every ten seconds while the FE has
    // not answered and nothing waits on it.
    let wait_until = last.as_ref().map(|l| {
        l.at + if settled {
            recheck
        } else if l.refused.as_deref() == Some(&signature) {
            UNCONFIRMED_INTERVAL
        } else if l.answered && l.compared != compared {
            MIN_INTERVAL
        } else if l.answered {
            l.again
        } else if shrinking {
            backoff(MIN_INTERVAL, l.unanswered)
        } else {
            backoff(UNCONFIRMED_INTERVAL, l.unanswered)
        }
    });
    let now_instant = std::time::Instant::now();
    let due = wait_until.is_none_or(|until| now_instant >= until);
    let mut retry = wait_until.map(|until| until.saturating_duration_since(now_instant));
    // The FE is asked once it is known to answer: one that is not known
    // to is probed aside, and this reconcile does not wait for it.
    let reached = match due {
        false => None,
        true => match ctx.fe_reached(cluster, &planned.objects).await {
            Ok(fe) => Some(Ok(fe)),
            Err(Unreached::Unavailable(why)) => Some(Err(why)),
            Err(Unreached::Pending(wait)) => {
                retry = Some(wait);
                None
            }
        },
    };
    let Some(reached) = reached else {
        // Not asked now: nothing shrinks without the FE's word.
        let hold = scales
            .iter()
            .filter_map(|s| Some((s.statefulset.clone(), s.current.filter(|c| *c > s.desired)?)))
            .collect();
        // The last attempt's conclusion stands while what it compared is
        // unchanged.
        if let Some(said) = last
            .as_ref()
            .filter(|l| l.compared == compared)
            .and_then(|l| l.said.clone())
        {
            return Outcome {
                status: said.status,
                hold,
                condition: said.condition,
                compute_group_ids: said.compute_group_ids,
                requeue: retry,
                ..Outcome::default()
            };
        }
        // A change not yet checked: the previous "synced" no longer holds.
        // Settled, what the FE last said holds, whatever status said since
        // (a "Checking" written while a change was in flux is not left
        // standing until the next recheck).
        let was_synced = status.conditions.as_ref().is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "MembersSynced" && c.status == "True")
        });
        let condition = if settled {
            Some(synced(&signature))
        } else {
            was_synced.then(|| {
                (
                    "False",
                    "Checking",
                    format!("comparing the FE's node list with {signature}"),
                )
            })
        };
        return Outcome {
            status: Some(previous),
            hold,
            condition,
            requeue: retry,
            ..Outcome::default()
        };
    };
    // Until the FE answers, what it said before stands.
    let unanswered = last.as_ref().map_or(0, |l| l.unanswered);
    let before = last.map(|l| l.confirmed).unwrap_or_else(|| {
        previous
            .confirmed
            .clone()
            .filter(|_| previous.nodes.is_empty())
    });
    let mark = |answered: bool,
                confirmed: Option<String>,
                refused: Option<String>,
                again: Option<Duration>| {
        ctx.fe_checked.lock().expect("lock").insert(
            uid.clone(),
            FeChecked {
                at: std::time::Instant::now(),
                answered,
                unanswered: if answered { 0 } else { unanswered + 1 },
                confirmed,
                refused,
                compared,
                again: again.unwrap_or(MIN_INTERVAL),
                said: None,
            },
        );
    };
    let remember = |outcome: Outcome| {
        if let Some(checked) = ctx.fe_checked.lock().expect("lock").get_mut(&uid) {
            checked.said = Some(Said {
                status: outcome.status.clone(),
                condition: outcome.condition.clone(),
                compute_group_ids: outcome.compute_group_ids.clone(),
            });
        }
        outcome
    };
    mark(false, before, None, None);
    let mut step = Step {
        previous: &previous,
        now,
        policy,
        pod_ips: pods
            .iter()
            .map(|(n, ip, _)| (n.clone(), ip.clone()))
            .collect(),
        pods,
        out: Outcome::default(),
        nodes: Vec::new(),
    };

    // When to try again if the FE does not answer this time either.
    let next_attempt = backoff(
        if shrinking {
            MIN_INTERVAL
        } else {
            UNCONFIRMED_INTERVAL
        },
        unanswered + 1,
    );
    let fe = match reached {
        Ok(fe) => fe,
        Err(message) => {
            step.fe_unavailable(&scales, message);
            step.out.requeue = Some(next_attempt);
            return remember(step.finish(previous.confirmed.clone(), &signature));
        }
    };
    let (frontends, backends) = match fe.show_members().await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::info!(cluster = %name, namespace = %namespace, "membership waits: {e}");
            step.fe_unavailable(&scales, format!("the FE does not answer: {}", e.brief()));
            step.out.requeue = Some(next_attempt);
            return remember(step.finish(previous.confirmed.clone(), &signature));
        }
    };
    let profile = cluster.doris_profile();
    for scale in &scales {
        let result = match scale.kind {
            ComponentKind::Be | ComponentKind::Cg => {
                step.backends(&fe, profile, scale, &backends, false).await
            }
            ComponentKind::Cn => step.backends(&fe, profile, scale, &backends, true).await,
            ComponentKind::Fe => step
                .frontends(&fe, scale, &frontends)
                .await
                .map_err(|error| backends::NodeError {
                    node: scale.statefulset.clone(),
                    error,
                }),
            ComponentKind::Broker | ComponentKind::Ms => Ok(()),
        };
        if let Err(e) = result {
            // A statement failed: hold what this component was about to do.
            if let Some(current) = scale.current.filter(|c| *c > scale.desired) {
                step.out.hold.insert(scale.statefulset.clone(), current);
            }
            step.failed(&scale.part, e);
        }
    }
    if let ClusterRef::Disaggregated(ddc) = cluster
        && let Err(e) = step.compute_groups(&fe, ddc, &backends).await
    {
        step.failed("cg", e);
    }
    restart_pods(ctx, cluster, &step.out.restart).await;
    let confirmed = if step.nodes.is_empty() {
        Some(signature.clone())
    } else {
        previous.confirmed.clone()
    };
    let refused = step.nodes.iter().any(|n| n.state == "refused");
    let settles = step.nodes.is_empty().then(|| signature.clone());
    let outcome = step.finish(confirmed, &signature);
    mark(
        true,
        settles,
        refused.then(|| signature.clone()),
        outcome.requeue,
    );
    remember(outcome)
}

/// The `MembersSynced` condition of a cluster whose FE lists exactly the
/// nodes of `signature`.
fn synced(signature: &str) -> (&'static str, &'static str, String) {
    (
        "True",
        "Synced",
        format!("the FE lists every node and only those ({signature})"),
    )
}

/// Puts membership into the status: `status.membership`, the
/// `MembersSynced` condition, and `Progressing` while a scale-down waits.
pub fn fold_into_status(
    cluster: ClusterRef<'_>,
    previous: &Status,
    status: &mut Status,
    members: &Outcome,
    now: &Time,
) {
    status.membership = members
        .status
        .clone()
        .filter(|m| m.confirmed.is_some() || !m.nodes.is_empty());
    status.compute_group_ids = previous.compute_group_ids.clone();
    status
        .compute_group_ids
        .extend(members.compute_group_ids.clone());
    let generation = cluster.meta().generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let synced = match &members.condition {
        Some((state, reason, message)) => super::status::condition(
            previous,
            "MembersSynced",
            state,
            reason,
            message,
            generation,
            now,
        ),
        None => match previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "MembersSynced")
        {
            Some(kept) => kept.clone(),
            None => return,
        },
    };
    conditions.retain(|c| c.type_ != "MembersSynced");
    conditions.push(synced);
    if let Some((sts, replicas)) = members.hold.iter().next() {
        let message =
            format!("scaling down: {sts} keeps {replicas} replicas until the FE lets its nodes go");
        let progressing = super::status::condition(
            previous,
            "Progressing",
            "True",
            "ScalingDown",
            &message,
            generation,
            now,
        );
        for c in conditions.iter_mut() {
            if c.type_ == "Progressing" {
                *c = progressing.clone();
            }
        }
    }
}

/// Each member component's planned replicas and its StatefulSet's now.
fn scales(ctx: &Context, cluster: ClusterRef<'_>, planned: &Plan) -> Vec<Scale> {
    let namespace = cluster.namespace();
    planned
        .components
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                ComponentKind::Fe | ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg
            )
        })
        .filter_map(|c| {
            let kind = c.kind;
            let statefulset = c.names.statefulset.clone();
            let current = ctx
                .stores
                .statefulset(&namespace, &statefulset)
                .and_then(|s| s.spec.replicas);
            // An autoscaler owns the count: what the StatefulSet has is
            // what is wanted, so the nodes it added are expected and the
            // ones it removed go from the FE.
            let desired = match planned.autoscaled.get(&statefulset) {
                Some(initial) => current.unwrap_or(*initial),
                None => planned_replicas(&planned.objects, &statefulset)?,
            };
            Some(Scale {
                kind,
                part: c.part.clone(),
                statefulset,
                desired,
                current,
            })
        })
        .collect()
}

/// Whether a StatefulSet is to shrink: membership must then decide before
/// anything is applied.
pub fn shrinking(ctx: &Context, cluster: ClusterRef<'_>, planned: &Plan) -> bool {
    scales(ctx, cluster, planned)
        .iter()
        .any(|s| s.current.is_some_and(|c| c > s.desired))
}

/// The replicas a planned StatefulSet asks for.
pub fn planned_replicas(objects: &[Value], statefulset: &str) -> Option<i32> {
    objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == statefulset)?["spec"]
        ["replicas"]
        .as_i64()
        .and_then(|r| i32::try_from(r).ok())
}

/// Applies a hold to the planned StatefulSets: they keep their current
/// replicas until membership lets them shrink.
pub fn apply_hold(objects: &mut [Value], hold: &BTreeMap<String, i32>) {
    for object in objects.iter_mut() {
        if object["kind"] != "StatefulSet" {
            continue;
        }
        let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
            continue;
        };
        if let Some(replicas) = hold.get(&name) {
            object["spec"]["replicas"] = (*replicas).into();
            crate::plan::restamp(object);
        }
    }
}

/// Deletes `pods` (by UID, so that a replacement is never hit) for their
/// StatefulSet to start them again.
async fn restart_pods(ctx: &Context, cluster: ClusterRef<'_>, pods: &[String]) {
    if pods.is_empty() {
        return;
    }
    let namespace = cluster.namespace();
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(ctx.client.clone(), &namespace);
    let cached = ctx
        .stores
        .cluster_pods(&namespace, &cluster.statefulset_names());
    for name in pods {
        let Some(pod) = cached.iter().find(|p| p.name_any() == *name) else {
            continue;
        };
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => ctx.metrics.count_write("Pod", "delete"),
            Err(e) => tracing::info!(%namespace, pod = %name, "not restarted yet: {e}"),
        }
    }
}

struct Step<'a> {
    previous: &'a MembershipStatus,
    now: &'a Time,
    policy: &'a MembershipPolicy,
    /// (pod, IP, ready)
    pods: Vec<(String, String, bool)>,
    pod_ips: Vec<(String, String)>,
    out: Outcome,
    nodes: Vec<MemberNode>,
}

impl Step<'_> {
    /// Records a node in flux, keeping when it entered its state, and
    /// telling users when it changed state.
    fn node(&mut self, part: &str, pod: &str, state: &str, tablets: Option<i64>, message: String) {
        let before = self
            .previous
            .nodes
            .iter()
            .find(|n| n.pod == pod && n.state == state);
        let since = before
            .and_then(|n| n.since.clone())
            .unwrap_or_else(|| self.now.0.to_string());
        self.nodes.push(MemberNode {
            component: part.to_string(),
            pod: pod.to_string(),
            state: state.to_string(),
            tablets,
            since: Some(since),
            message: Some(message),
        });
    }

    fn event(&mut self, type_: EventType, reason: &'static str, note: String) {
        self.out.events.push((type_, reason, note));
    }

    /// A statement about `e.node` failed. A refusal is shown with Doris's
    /// words and told once as a Warning; it is asked again at a slower
    /// pace. An FE that did not answer is waited for.
    fn failed(&mut self, part: &str, e: backends::NodeError) {
        let Some(message) = e.refusal() else {
            self.node(part, &e.node, "waitingForFe", None, e.error.to_string());
            return;
        };
        let told = self
            .previous
            .nodes
            .iter()
            .any(|n| n.pod == e.node && n.state == "refused");
        if !told && let Some(note) = e.refused() {
            self.event(EventType::Warning, "StatementRefused", note);
        }
        self.node(part, &e.node, "refused", None, message);
    }

    fn pod_exists(&self, pod: &str) -> bool {
        self.pods.iter().any(|(p, _, _)| p == pod)
    }

    /// The FE did not answer: whatever would shrink waits.
    fn fe_unavailable(&mut self, scales: &[Scale], message: String) {
        for scale in scales {
            if let Some(current) = scale.current.filter(|c| *c > scale.desired) {
                self.out.hold.insert(scale.statefulset.clone(), current);
                for ordinal in scale.desired..current {
                    let pod = format!("{}-{ordinal}", scale.statefulset);
                    self.node(
                        &scale.part,
                        &pod,
                        "waitingForFe",
                        None,
                        format!("scale-down waits for the FE: {message}"),
                    );
                }
            }
        }
        // What was in flux stays listed until the FE can tell.
        for node in &self.previous.nodes {
            if !self.nodes.iter().any(|n| n.pod == node.pod) {
                self.nodes.push(node.clone());
            }
        }
        if self.nodes.is_empty() {
            self.out.condition = Some(("False", "FeUnavailable", message));
        }
    }

    /// FE observers of one StatefulSet.
    async fn frontends(
        &mut self,
        fe: &FeClient,
        scale: &Scale,
        frontends: &[Frontend],
    ) -> Result<(), FeError> {
        let mut dropping = false;
        let mut listed = Vec::new();
        for f in frontends {
            let pod = pod_of_host(&f.host, &self.pod_ips).to_string();
            let Some(ordinal) = ordinal_of(&pod, &scale.statefulset) else {
                continue;
            };
            listed.push(pod.clone());
            if ordinal < scale.desired {
                continue;
            }
            let going = scale.current.is_some_and(|c| ordinal < c);
            if f.role != FrontendRole::Observer {
                self.node(
                    &scale.part,
                    &pod,
                    "stale",
                    None,
                    format!(
                        "{pod} is a follower; followers are fixed by electionNumber and never dropped"
                    ),
                );
                continue;
            }
            if going || self.policy.drop_stale {
                fe.drop_observer(&f.host, f.edit_log_port).await?;
                dropping |= going;
                self.event(
                    EventType::Normal,
                    "ObserverDropped",
                    format!("{pod} dropped from the FE before its pod goes"),
                );
                self.node(
                    &scale.part,
                    &pod,
                    "dropping",
                    None,
                    "dropped from the FE; its pod goes next".into(),
                );
            } else {
                self.node(
                    &scale.part,
                    &pod,
                    "stale",
                    None,
                    format!("the FE lists observer {} but no pod will run it", f.host),
                );
            }
        }
        if dropping && let Some(current) = scale.current {
            // Shrink at the next reconcile, once the FE no longer lists them.
            self.out.hold.insert(scale.statefulset.clone(), current);
            self.out.requeue = Some(Duration::from_secs(1));
        }
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        self.registration(scale, &listed);
        Ok(())
    }

    /// Pods that should be members and are not listed by the FE yet. A
    /// Ready one that stays unlisted past the policy's timeout is reported.
    fn registration(&mut self, scale: &Scale, listed: &[&str]) {
        let timeout = self.policy.register_timeout_seconds;
        for ordinal in 0..scale.desired {
            let pod = format!("{}-{ordinal}", scale.statefulset);
            if listed.contains(&pod.as_str()) {
                continue;
            }
            let ready = self.pods.iter().any(|(p, _, r)| *p == pod && *r);
            if !ready {
                self.node(
                    &scale.part,
                    &pod,
                    "registering",
                    None,
                    "waiting for the pod to be Ready and listed by the FE".into(),
                );
                continue;
            }
            let since = self
                .previous
                .nodes
                .iter()
                .find(|n| n.pod == pod && (n.state == "awaitingFe" || n.state == "notRegistered"))
                .and_then(|n| n.since.clone());
            let overdue = since
                .as_deref()
                .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .is_some_and(|s| self.now.0.duration_since(s).as_secs() >= timeout);
            if !overdue {
                self.node(
                    &scale.part,
                    &pod,
                    "awaitingFe",
                    None,
                    "Ready; waiting for the FE to list it".into(),
                );
                continue;
            }
            if !self
                .previous
                .nodes
                .iter()
                .any(|n| n.pod == pod && n.state == "notRegistered")
            {
                self.event(
                    EventType::Warning,
                    "NodeNotRegistered",
                    format!("{pod} is Ready but the FE has not listed it after {timeout}s"),
                );
            }
            self.nodes.push(MemberNode {
                component: scale.part.clone(),
                pod,
                state: "notRegistered".into(),
                tablets: None,
                since,
                message: Some(format!(
                    "Ready, but not listed by the FE after {timeout}s: check the pod's log"
                )),
            });
        }
    }

    fn finish(mut self, confirmed: Option<String>, signature: &str) -> Outcome {
        self.out.asked = true;
        self.nodes
            .sort_by(|a, b| (&a.component, &a.pod).cmp(&(&b.component, &b.pod)));
        // A node whose pod is not Ready yet is not polled for: its pod
        // turning Ready wakes the cluster. One the FE is about to list, or
        // that is being let go, is.
        let in_flux = self
            .nodes
            .iter()
            .any(|n| !matches!(n.state.as_str(), "stale" | "notRegistered" | "registering"));
        if in_flux && self.out.requeue.is_none() {
            self.out.requeue = Some(Duration::from_secs(3));
        }
        // Nodes that wait only for their pods are not polled for either: a
        // pod's readiness or IP changing wakes the cluster, and the FE is
        // asked then (its answer is compared with the pods).
        let waits_on_pods =
            !self.nodes.is_empty() && self.nodes.iter().all(|n| n.state == "registering");
        if self.out.requeue.is_none() {
            self.out.requeue = Some(
                if confirmed.as_deref() == Some(signature) || waits_on_pods {
                    Duration::from_secs(self.policy.recheck_seconds.unsigned_abs())
                } else {
                    UNCONFIRMED_INTERVAL
                },
            );
        }
        if self.out.condition.is_none() {
            self.out.condition = Some(match self.nodes.first() {
                None => synced(signature),
                Some(_) => {
                    let reason = if self.nodes.iter().any(|n| n.state == "refused") {
                        "FeRefused"
                    } else if self.nodes.iter().any(|n| n.state == "waitingForFe") {
                        "FeUnavailable"
                    } else if self.nodes.iter().any(|n| n.state == "decommissioning") {
                        "Decommissioning"
                    } else if self.nodes.iter().any(|n| n.state == "notRegistered") {
                        "NotRegistered"
                    } else if self.nodes.iter().any(|n| n.state == "stale") {
                        "StaleMembers"
                    } else {
                        "Registering"
                    };
                    let message = self
                        .nodes
                        .iter()
                        .map(|n| {
                            format!(
                                "{} {}: {}",
                                n.pod,
                                n.state,
                                n.message.as_deref().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    ("False", reason, message)
                }
            });
        }
        self.out.status = Some(MembershipStatus {
            confirmed,
            nodes: self.nodes,
        });
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fe_that_keeps_not_answering_is_asked_ever_less_often_up_to_a_cap() {
        let waits: Vec<u64> = (1..=8)
            .map(|n| backoff(UNCONFIRMED_INTERVAL, n).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(MIN_INTERVAL, 1), MIN_INTERVAL);
        assert_eq!(backoff(MIN_INTERVAL, 4), Duration::from_secs(8));
        assert_eq!(backoff(MIN_INTERVAL, u32::MAX), UNANSWERED_CAP);
    }
}
