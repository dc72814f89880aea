//! Status: what the cluster's StatefulSets and pods show, per component, in
//! the peer's shape plus standard conditions. Computed from cached objects
//! only, and deterministic: the same observations give the same status, so
//! a converged cluster's status is never rewritten.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::cluster::{ClusterRef, PartNames};
use crate::crd::disaggregated::{
    ClusterHealth, ComputeGroupStatus as DdcGroupStatus, DisaggregatedFeStatus as DdcFeStatus,
    MetaServiceStatus as DdcMsStatus,
};
use crate::crd::{
    CnStatus, ComponentCondition, ComponentKind, ComponentStatus, ConfigChangeStatus, DorisCluster,
    DorisClusterStatus, HorizontalScaler, HostCheck, MembershipStatus, RolloutStatus,
    StatusSummary, VolumeResize,
};
use crate::crd::{DorisDisaggregatedCluster, DorisDisaggregatedClusterStatus};

/// The status of a cluster of either kind, as the operator computes it;
/// each kind writes it in its own shape ([`Status::to_doris`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// Each part's status, by part name.
    pub parts: BTreeMap<String, ComponentStatus>,
    pub observed_generation: Option<i64>,
    pub conventions_revision: Option<String>,
    pub conditions: Option<Vec<Condition>>,
    pub membership: Option<MembershipStatus>,
    pub rollout: Option<RolloutStatus>,
    /// The last configuration change of each part (see `live_config`).
    pub configuration: Option<Vec<ConfigChangeStatus>>,
    /// The id the FE gave each compute group, by part name.
    pub compute_group_ids: BTreeMap<String, String>,
    /// Claims grown, and how far each has got.
    pub volumes: Option<Vec<VolumeResize>>,
    /// Host settings below what Doris wants.
    pub host_checks: Option<Vec<HostCheck>>,
}

impl Status {
    /// The condition of type `type_`, if status has one.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().flatten().find(|c| c.type_ == type_)
    }

    /// Whether condition `type_` is True.
    pub fn is_true(&self, type_: &str) -> bool {
        self.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == type_ && c.status == "True")
    }

    /// A DorisCluster's status as the operator reads it.
    pub fn from_doris(status: &DorisClusterStatus) -> Status {
        let mut parts = BTreeMap::new();
        for (kind, component) in [
            (ComponentKind::Fe, status.fe_status.as_ref()),
            (ComponentKind::Be, status.be_status.as_ref()),
            (
                ComponentKind::Cn,
                status.cn_status.as_ref().map(|c| &c.component),
            ),
            (ComponentKind::Broker, status.broker_status.as_ref()),
        ] {
            if let Some(component) = component {
                parts.insert(kind.as_str().to_string(), component.clone());
            }
        }
        Status {
            parts,
            observed_generation: status.observed_generation,
            conventions_revision: status.conventions_revision.clone(),
            conditions: status.conditions.clone(),
            membership: status.membership.clone(),
            rollout: status.rollout.clone(),
            configuration: status.configuration.clone(),
            compute_group_ids: BTreeMap::new(),
            volumes: status.volumes.clone(),
            host_checks: status.host_checks.clone(),
        }
    }

    /// A DorisDisaggregatedCluster's status as the operator reads it.
    pub fn from_disaggregated(
        cluster: &DorisDisaggregatedCluster,
        status: &DorisDisaggregatedClusterStatus,
    ) -> Status {
        let compute_group_ids = status
            .compute_group_statuses
            .iter()
            .flatten()
            .filter_map(|g| {
                let id = g.compute_group_id.clone().filter(|id| !id.is_empty())?;
                let unique_id = g.unique_id.as_deref()?;
                let group = cluster.spec.compute_group(unique_id)?;
                Some((group.object_name(), id))
            })
            .collect();
        Status {
            parts: status.components.clone().unwrap_or_default(),
            observed_generation: status.observed_generation,
            conventions_revision: status.conventions_revision.clone(),
            conditions: status.conditions.clone(),
            membership: status.membership.clone(),
            rollout: status.rollout.clone(),
            configuration: status.configuration.clone(),
            compute_group_ids,
            volumes: status.volumes.clone(),
            host_checks: status.host_checks.clone(),
        }
    }

    /// The status in a DorisDisaggregatedCluster's shape: the peer's
    /// summary (meta service, FE, compute groups, cluster health) besides
    /// each part's detail.
    pub fn to_disaggregated(
        &self,
        cluster: &DorisDisaggregatedCluster,
    ) -> DorisDisaggregatedClusterStatus {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let namespace = cluster.metadata.namespace.clone().unwrap_or_default();
        let part = |p: &str| self.parts.get(p);
        let ready = |c: Option<&ComponentStatus>| c.and_then(|c| c.ready_replicas).unwrap_or(0);
        let available = |c: Option<&ComponentStatus>| ready(c) > 0;
        let availability = |up: bool| if up { "Available" } else { "UnAvailable" }.to_string();
        let peer_phase = |c: Option<&ComponentStatus>| {
            c.map(|c| {
                match c.component_condition.phase.as_str() {
                    phase::AVAILABLE => "Ready",
                    phase::UPGRADING => "Upgrading",
                    phase::SCALING => "Scaling",
                    phase::HAVE_MEMBER_FAILED => "Failed",
                    _ => "Reconciling",
                }
                .to_string()
            })
        };
        let ms = part("ms");
        let fe = part("fe");
        let mut groups = Vec::new();
        let (mut cg_available, mut cg_full) = (0, 0);
        let (mut cg_ready_pods, mut cg_pods) = (0, 0);
        for group in &cluster.spec.compute_groups {
            let object = group.object_name();
            let names = crate::cluster::disaggregated_names(&name, &object);
            let status = part(&object);
            let replicas = status.and_then(|c| c.replicas).unwrap_or(group.replicas());
            let ready_pods = ready(status);
            cg_ready_pods += ready_pods;
            cg_pods += replicas;
            if ready_pods > 0 {
                cg_available += 1;
            }
            if ready_pods >= replicas
                && status.is_some_and(|c| c.component_condition.phase == phase::AVAILABLE)
            {
                cg_full += 1;
            }
            groups.push(DdcGroupStatus {
                phase: peer_phase(status),
                statefulset_name: Some(names.statefulset),
                service_name: Some(names.access_service),
                unique_id: Some(group.unique_id.clone()),
                compute_group_id: self.compute_group_ids.get(&object).cloned(),
                available_status: Some(availability(ready_pods > 0)),
                replicas: Some(replicas),
                available_replicas: Some(ready_pods),
                ..Default::default()
            });
        }
        let count = groups.len() as i32;
        let all_available = self
            .parts
            .values()
            .all(|c| c.component_condition.phase == phase::AVAILABLE)
            && cg_full == count;
        let health = if !available(ms) || !available(fe) || (count > 0 && cg_available <= count / 2)
        {
            "red"
        } else if all_available {
            "green"
        } else {
            "yellow"
        };
        DorisDisaggregatedClusterStatus {
            meta_service_status: Some(DdcMsStatus {
                phase: peer_phase(ms),
                available_status: Some(availability(available(ms))),
                meta_service_endpoint: Some(format!("{name}-ms.{namespace}")),
                replicas: ms.and_then(|c| c.replicas),
                ready_replicas: ms.and_then(|c| c.ready_replicas),
                ..Default::default()
            }),
            fe_status: Some(DdcFeStatus {
                phase: peer_phase(fe),
                available_status: Some(availability(available(fe))),
                cluster_id: Some(
                    crate::crd::disaggregated::cluster_id(&namespace, &name).to_string(),
                ),
                replicas: fe.and_then(|c| c.replicas),
                ready_replicas: fe.and_then(|c| c.ready_replicas),
            }),
            cluster_health: Some(ClusterHealth {
                health: Some(health.to_string()),
                fe_available: Some(available(fe)),
                cg_count: Some(count),
                cg_available_count: Some(cg_available),
                cg_full_available_count: Some(cg_full),
            }),
            compute_group_statuses: Some(groups),
            components: Some(self.parts.clone()),
            observed_generation: self.observed_generation,
            conventions_revision: self.conventions_revision.clone(),
            conditions: self.conditions.clone(),
            membership: self.membership.clone(),
            rollout: self.rollout.clone(),
            configuration: self.configuration.clone(),
            volumes: self.volumes.clone(),
            host_checks: self.host_checks.clone(),
            summary: Some(StatusSummary {
                fe: fe.map(pods_ready),
                cg: (count > 0).then(|| format!("{cg_ready_pods}/{cg_pods}")),
                rollout: self.rollout.as_ref().map(rollout_column),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The status in a DorisCluster's shape.
    pub fn to_doris(&self, cluster: &DorisCluster) -> DorisClusterStatus {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let part = |kind: ComponentKind| self.parts.get(kind.as_str()).cloned();
        DorisClusterStatus {
            fe_status: part(ComponentKind::Fe),
            be_status: part(ComponentKind::Be),
            cn_status: part(ComponentKind::Cn).map(|component| CnStatus {
                component,
                horizontal_scaler: cluster
                    .spec
                    .cn_spec
                    .as_ref()
                    .and_then(|cn| cn.auto_scaling_policy.as_ref())
                    .map(|p| HorizontalScaler {
                        name: Some(format!("{name}-cn-autoscaler")),
                        version: p.version.as_ref().map(|v| format!("{v:?}").to_lowercase()),
                    }),
            }),
            broker_status: part(ComponentKind::Broker),
            observed_generation: self.observed_generation,
            conventions_revision: self.conventions_revision.clone(),
            conditions: self.conditions.clone(),
            membership: self.membership.clone(),
            rollout: self.rollout.clone(),
            configuration: self.configuration.clone(),
            volumes: self.volumes.clone(),
            host_checks: self.host_checks.clone(),
            summary: Some(StatusSummary {
                fe: self.parts.get("fe").map(pods_ready),
                be: self.parts.get("be").map(pods_ready),
                cn: self.parts.get("cn").map(pods_ready),
                rollout: self.rollout.as_ref().map(rollout_column),
                ..Default::default()
            }),
        }
    }
}

/// A part's pods as `ready/desired`, for a `kubectl get` column.
fn pods_ready(part: &ComponentStatus) -> String {
    format!(
        "{}/{}",
        part.ready_replicas.unwrap_or(0),
        part.replicas.unwrap_or(0)
    )
}

/// A rollout in a few words, for a `kubectl get` column: the component,
/// its pods updated of all, and what it waits for (the first clause of
/// `waiting`, cut to fit a terminal column).
fn rollout_column(rollout: &RolloutStatus) -> String {
    const LONGEST: usize = 48;
    let waiting = rollout
        .waiting
        .split(" (")
        .next()
        .unwrap_or_default()
        .trim_end_matches(['.', ' ']);
    let waiting = if waiting.chars().count() > LONGEST {
        let cut: String = waiting.chars().take(LONGEST - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        waiting.to_string()
    };
    let head = format!(
        "{} {}/{}",
        rollout.component, rollout.updated, rollout.total
    );
    if waiting.is_empty() {
        head
    } else {
        format!("{head}: {waiting}")
    }
}

/// Component phases, as apache/doris-operator names them.
pub mod phase {
    pub const INITIALIZING: &str = "initializing";
    pub const AVAILABLE: &str = "available";
    pub const UPGRADING: &str = "upgrading";
    pub const SCALING: &str = "scaling";
    pub const RECONCILING: &str = "reconciling";
    pub const HAVE_MEMBER_FAILED: &str = "haveMemberFailed";
}

/// What was observed for one part.
pub struct Observed<'a> {
    pub kind: ComponentKind,
    pub part: &'a str,
    pub names: &'a PartNames,
    pub statefulset: Option<&'a StatefulSet>,
    pub pods: Vec<&'a Pod>,
    pub config_hash: &'a str,
    /// What the part waits for before its StatefulSet is made.
    pub waiting: Option<&'a str>,
    /// Its outdated pods wait for a maintenance window or an approval: it
    /// serves as it is and is not upgrading yet.
    pub held: bool,
    /// The replicas its planned StatefulSet asks for: what status shows
    /// until the StatefulSet is seen, so that seeing it changes nothing.
    pub planned_replicas: Option<i32>,
}

/// The status a cluster should have now. `now` stamps transitions only;
/// unchanged parts keep their previous timestamps.
pub fn compute(
    cluster: ClusterRef<'_>,
    previous: &Status,
    observed: &[Observed<'_>],
    revision: &str,
    conventions_failure: Option<&str>,
    failure: Option<(&str, String)>,
    now: &Time,
) -> Status {
    let mut status = Status {
        observed_generation: cluster.meta().generation,
        conventions_revision: Some(revision.to_string()),
        compute_group_ids: previous.compute_group_ids.clone(),
        // Kept until a reconcile carries out a new change (live_config).
        configuration: previous.configuration.clone(),
        // Steps that look again replace these.
        volumes: previous.volumes.clone(),
        host_checks: previous.host_checks.clone(),
        ..Default::default()
    };
    if observed.is_empty() {
        // Nothing was observed (the plan failed): keep what was known.
        status.parts = previous.parts.clone();
        status.conventions_revision = previous.conventions_revision.clone();
    }
    let mut all_available = !observed.is_empty();
    let mut failed_components = Vec::new();
    let mut waiting = Vec::new();
    for obs in observed {
        let prev = previous.parts.get(obs.part);
        let component = component_status(obs, prev, now);
        let phase = component.component_condition.phase.as_str();
        if phase != phase::AVAILABLE {
            all_available = false;
            waiting.push(format!(
                "{} {}",
                obs.part, component.component_condition.message
            ));
        }
        if phase == phase::HAVE_MEMBER_FAILED {
            failed_components.push(obs.part);
        }
        status.parts.insert(obs.part.to_string(), component);
    }

    let generation = cluster.meta().generation;
    let mut conditions = Vec::new();
    let (ready, ready_reason, ready_message) = match &failure {
        Some((reason, message)) => ("False", reason.to_string(), message.clone()),
        None if all_available => (
            "True",
            "AllComponentsAvailable".to_string(),
            "every component has all its pods ready".to_string(),
        ),
        None => (
            "False",
            "ComponentsNotReady".to_string(),
            waiting.join("; "),
        ),
    };
    conditions.push(condition(
        previous,
        "Ready",
        ready,
        &ready_reason,
        &ready_message,
        generation,
        now,
    ));
    let progressing = failure.is_none() && !all_available && failed_components.is_empty();
    conditions.push(condition(
        previous,
        "Progressing",
        if progressing { "True" } else { "False" },
        if progressing { "Rollout" } else { "Idle" },
        if progressing {
            "waiting for pods to become ready"
        } else {
            ""
        },
        generation,
        now,
    ));
    let degraded = failure.is_some() || !failed_components.is_empty();
    let degraded_message = match &failure {
        Some((_, message)) => message.clone(),
        None if degraded => format!("failed pods in: {}", failed_components.join(", ")),
        None => String::new(),
    };
    conditions.push(condition(
        previous,
        "Degraded",
        if degraded { "True" } else { "False" },
        match &failure {
            Some((reason, _)) => reason,
            None if degraded => "MemberFailed",
            None => "AsExpected",
        },
        &degraded_message,
        generation,
        now,
    ));
    // Whether the conventions the operator runs are the ones last written:
    // a refused edit leaves the last good ones running.
    let (conv_status, conv_reason, conv_message) = match conventions_failure {
        None => ("True", "Live", format!("conventions {revision} are live")),
        Some(message) => (
            "False",
            "Refused",
            format!("new conventions refused, {revision} stays live: {message}"),
        ),
    };
    conditions.push(condition(
        previous,
        "ConventionsReady",
        conv_status,
        conv_reason,
        &conv_message,
        generation,
        now,
    ));
    status.conditions = Some(conditions);
    status
}

/// Keeps what `compute` does not derive and this reconcile did not get to
/// (rollout and membership progress, their conditions) as it was, for a
/// reconcile that stopped early.
pub fn keep_unobserved(previous: &Status, status: &mut Status) {
    status.rollout = previous.rollout.clone();
    status.membership = previous.membership.clone();
    status.configuration = previous.configuration.clone();
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for kept in previous.conditions.iter().flatten() {
        if !conditions.iter().any(|c| c.type_ == kept.type_) {
            conditions.push(kept.clone());
        }
    }
}

fn component_status(
    obs: &Observed<'_>,
    previous: Option<&ComponentStatus>,
    now: &Time,
) -> ComponentStatus {
    let mut running = Vec::new();
    let mut creating = Vec::new();
    let mut failed = Vec::new();
    let mut first_failure = None;
    for pod in &obs.pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let st = pod.status.as_ref();
        let phase = st.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        let containers = st.and_then(|s| s.container_statuses.as_ref());
        let ready = containers.is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready));
        let crash = containers
            .into_iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .filter(|r| r == "CrashLoopBackOff" || r.starts_with("Err") || r == "ImagePullBackOff");
        if ready {
            running.push(name);
        } else if (phase == "Running" || phase == "Pending") && crash.is_none() {
            creating.push(name);
        } else {
            if first_failure.is_none() {
                first_failure = Some(format!(
                    "{name}: {}",
                    crash.unwrap_or_else(|| phase.to_string())
                ));
            }
            failed.push(name);
        }
    }
    running.sort();
    creating.sort();
    failed.sort();

    let sts = obs.statefulset;
    let desired = sts
        .and_then(|s| s.spec.replicas)
        .or(obs.planned_replicas)
        .unwrap_or(1);
    let sts_status = sts.and_then(|s| s.status.as_ref());
    let ready_replicas = sts_status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let updated = sts_status.and_then(|s| s.updated_replicas).unwrap_or(0);
    // With OnDelete, currentRevision never catches up (kubernetes#73492):
    // a rollout is over once every pod is at updateRevision.
    let rolling = !obs.held
        && sts_status.is_some_and(|s| {
            s.update_revision.is_some()
                && s.current_revision != s.update_revision
                && updated < desired
        });
    let ready_pods = running.len() as i32;

    let (phase, reason, message) = if let (None, Some(what)) = (sts, obs.waiting) {
        (
            phase::INITIALIZING,
            "Waiting",
            format!("waiting for {what}"),
        )
    } else if sts.is_none() {
        (
            phase::INITIALIZING,
            "Creating",
            "creating the StatefulSet".to_string(),
        )
    } else if !failed.is_empty() {
        (
            phase::HAVE_MEMBER_FAILED,
            "MemberFailed",
            first_failure.unwrap_or_default(),
        )
    } else if ready_pods >= desired
        && ready_replicas >= desired
        && obs.pods.len() as i32 == desired
        && !rolling
    {
        (
            phase::AVAILABLE,
            "Available",
            format!("{ready_pods}/{desired} pods ready"),
        )
    } else if rolling || (!obs.held && updated < desired && ready_replicas > 0) {
        (
            phase::UPGRADING,
            "Upgrading",
            format!("{updated}/{desired} pods updated"),
        )
    } else if ready_replicas == 0
        && previous.is_none_or(|p| p.component_condition.phase == phase::INITIALIZING)
    {
        (
            phase::INITIALIZING,
            "Starting",
            format!("{ready_pods}/{desired} pods ready"),
        )
    } else if obs.pods.len() as i32 != desired {
        (
            phase::SCALING,
            "Scaling",
            format!("{} pods, want {desired}", obs.pods.len()),
        )
    } else {
        (
            phase::RECONCILING,
            "Starting",
            format!("{ready_pods}/{desired} pods ready"),
        )
    };
    let changed = previous.is_none_or(|p| p.component_condition.phase != phase);
    let last_transition_time = if changed {
        Some(now.clone())
    } else {
        previous.and_then(|p| p.component_condition.last_transition_time.clone())
    };
    let or_none = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };
    ComponentStatus {
        access_service: (obs.kind != ComponentKind::Broker)
            .then(|| obs.names.access_service.clone()),
        failed_instances: or_none(failed),
        creating_instances: or_none(creating),
        running_instances: or_none(running),
        core_config_map_hash_value: Some(obs.config_hash.to_string()),
        ready_replicas: Some(ready_pods),
        replicas: Some(desired),
        component_condition: ComponentCondition {
            sub_resource_name: Some(obs.names.statefulset.clone()),
            phase: phase.to_string(),
            last_transition_time,
            reason: reason.to_string(),
            message,
        },
    }
}

/// A standard condition whose lastTransitionTime moves only when its status
/// does.
pub(crate) fn condition(
    previous: &Status,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let before = previous.condition(type_);
    let last_transition_time = match before {
        Some(b) if b.status == status => b.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Pods of a part, from the cluster's pods.
pub fn component_pods<'a>(pods: &'a [std::sync::Arc<Pod>], names: &PartNames) -> Vec<&'a Pod> {
    pods.iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            names
                .selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .collect()
}

/// What of a converging status a user acts on, as opposed to its
/// milestones (see [`milestones`]) and its progress (which pods are ready
/// yet, which nodes still register, counts in messages, and, until the
/// cluster is first Ready, whether the FE lists every node yet): a change
/// of the headline is written at once, so that bringing a cluster up does
/// not write its status once per pod.
pub fn headline(status: &Status) -> serde_json::Value {
    use serde_json::json;
    let component = |c: Option<&ComponentStatus>| {
        c.map(|c| {
            let phase = c.component_condition.phase.as_str();
            json!({
                // How many of its pods are ready on the way is progress.
                "failing": phase == phase::HAVE_MEMBER_FAILED,
                "failed": c.failed_instances,
                // A part waiting for the one before it has no
                // StatefulSet to count yet.
                "replicas": (c.component_condition.reason != "Waiting").then_some(c.replicas),
                "accessService": c.access_service,
                "configHash": c.core_config_map_hash_value,
            })
        })
    };
    let in_progress = |reason: &str| matches!(reason, "Registering" | "FeUnavailable");
    // Until the cluster is Ready, its nodes registering with the FE (and
    // the FE not answering while it starts) is progress, and their all
    // being listed says nothing Ready will not.
    let ready = status.is_true("Ready");
    let conditions: Vec<_> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| {
            ready || c.type_ != "MembersSynced" || !(c.status == "True" || in_progress(&c.reason))
        })
        .map(|c| {
            let progress = match c.type_.as_str() {
                "Ready" => c.reason == "ComponentsNotReady",
                "Progressing" => c.reason == "Rollout",
                "MembersSynced" => in_progress(&c.reason),
                _ => false,
            };
            if progress {
                json!([c.type_, c.status])
            } else if c.type_ == "MembersSynced" {
                json!([c.type_, c.status, c.reason])
            } else {
                json!([c.type_, c.status, c.reason, c.message])
            }
        })
        .collect();
    let nodes: Vec<_> = status
        .membership
        .iter()
        .flat_map(|m| &m.nodes)
        .filter(|n| {
            !matches!(
                n.state.as_str(),
                "registering" | "awaitingFe" | "waitingForFe"
            )
        })
        .map(|n| json!([n.component, n.pod, n.state]))
        .collect();
    json!({
        "observedGeneration": status.observed_generation,
        "conventionsRevision": status.conventions_revision,
        "parts": status
            .parts
            .iter()
            .map(|(name, c)| (name.clone(), json!(component(Some(c)))))
            .collect::<serde_json::Map<_, _>>(),
        "conditions": conditions,
        "nodes": nodes,
        "rollout": status.rollout,
        // A configuration change carried out, refused or waiting is news.
        "configuration": status.configuration,
    })
}

/// What of a converging status is news that may wait a moment for more:
/// which components are available, and which nodes are Ready and wait for
/// the FE to list them (the registration timeout counts from the time
/// status records for them, so it must be written). Components turning
/// available within seconds of each other, and the cluster turning Ready
/// after them, are written together; a node the FE lists within the moment
/// is not written at all.
pub fn milestones(status: &Status) -> serde_json::Value {
    serde_json::json!({
        "available": status
            .parts
            .iter()
            .map(|(name, c)| (name.clone(), (c.component_condition.phase == phase::AVAILABLE).into()))
            .collect::<serde_json::Map<_, _>>(),
        "awaitingFe": status
            .membership
            .iter()
            .flat_map(|m| &m.nodes)
            .filter(|n| n.state == "awaitingFe")
            .map(|n| n.pod.as_str())
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(fe_ready: i32, ready: &str, reason: &str, message: &str) -> Status {
        let phase = if fe_ready == 3 {
            "available"
        } else {
            "reconciling"
        };
        serde_json::from_value(json!({
            "observedGeneration": 1,
            "conventionsRevision": "r1",
            "feStatus": {
                "replicas": 3, "readyReplicas": fe_ready,
                "runningInstances": (0..fe_ready).map(|i| format!("d-fe-{i}")).collect::<Vec<_>>(),
                "componentCondition": {"phase": phase, "reason": "Starting",
                                       "message": format!("{fe_ready}/3 pods ready")},
            },
            "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": message,
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
        }))
        .map(|s: DorisClusterStatus| Status::from_doris(&s))
        .unwrap()
    }

    #[test]
    fn the_rollout_column_is_short() {
        let mut rollout = RolloutStatus {
            component: "be".into(),
            updated: 1,
            total: 3,
            waiting: "doris-be-1 to be Ready".into(),
            ..Default::default()
        };
        assert_eq!(rollout_column(&rollout), "be 1/3: doris-be-1 to be Ready");
        rollout.waiting = "config: restarting doris-be-2 after 30s of drain, then waiting for \
                           pod_ready (2 more steps planned)"
            .into();
        let column = rollout_column(&rollout);
        assert!(
            column.starts_with("be 1/3: config: restarting doris-be-2"),
            "{column}"
        );
        assert!(column.chars().count() <= 60, "{column}");
        rollout.waiting.clear();
        assert_eq!(rollout_column(&rollout), "be 1/3");
    }

    #[test]
    fn progress_alone_leaves_the_headline_as_it_was() {
        let one = status(1, "False", "ComponentsNotReady", "fe 1/3 pods ready");
        let two = status(2, "False", "ComponentsNotReady", "fe 2/3 pods ready");
        assert_ne!(one, two);
        assert_eq!(headline(&one), headline(&two));
    }

    #[test]
    fn the_fe_listing_every_node_is_progress_until_the_cluster_is_ready() {
        let members = |status: &mut Status, value: &str, reason: &str| {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.retain(|c| c.type_ != "MembersSynced");
            conditions.push(
                serde_json::from_value(json!({
                    "type": "MembersSynced", "status": value, "reason": reason, "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }))
                .unwrap(),
            );
        };
        let mut registering = status(3, "False", "ComponentsNotReady", "be 0/3 pods ready");
        members(&mut registering, "False", "Registering");
        let mut synced = registering.clone();
        members(&mut synced, "True", "Synced");
        assert_eq!(headline(&registering), headline(&synced));
        let mut refused = registering.clone();
        members(&mut refused, "False", "Refused");
        assert_ne!(headline(&registering), headline(&refused), "a refusal");
        // Ready, the FE no longer listing every node is news.
        let mut ready = status(3, "True", "AllComponentsAvailable", "");
        members(&mut ready, "True", "Synced");
        let mut unlisted = ready.clone();
        members(&mut unlisted, "False", "Registering");
        assert_ne!(headline(&ready), headline(&unlisted));
    }

    #[test]
    fn a_node_waiting_for_the_fe_to_list_it_is_a_milestone() {
        let registering = status(3, "False", "ComponentsNotReady", "be 2/3 pods ready");
        let mut awaiting = registering.clone();
        awaiting.membership = Some(crate::crd::MembershipStatus {
            nodes: vec![crate::crd::MemberNode {
                component: "be".into(),
                pod: "d-be-2".into(),
                state: "awaitingFe".into(),
                tablets: None,
                since: Some("2026-01-01T00:00:00Z".into()),
                message: None,
            }],
            ..Default::default()
        });
        // The registration timeout counts from the time status keeps.
        assert_eq!(headline(&registering), headline(&awaiting));
        assert_ne!(milestones(&registering), milestones(&awaiting));
    }

    #[test]
    fn what_a_user_acts_on_changes_the_headline() {
        let two = status(2, "False", "ComponentsNotReady", "fe 2/3 pods ready");
        let ready = status(
            3,
            "True",
            "AllComponentsAvailable",
            "every component has all its pods ready",
        );
        assert_ne!(headline(&two), headline(&ready), "becoming Ready");
        assert_ne!(milestones(&two), milestones(&ready), "the FE available");
        let failed = status(
            2,
            "False",
            "InvalidSpec",
            "spec.feSpec.replicas: must be 1 or more",
        );
        assert_ne!(headline(&two), headline(&failed), "a failure");
        let other_failure = status(
            2,
            "False",
            "InvalidSpec",
            "spec.beSpec.replicas: must be 1 or more",
        );
        assert_ne!(
            headline(&failed),
            headline(&other_failure),
            "another failure message"
        );
        let mut generation = two.clone();
        generation.observed_generation = Some(2);
        assert_ne!(
            headline(&two),
            headline(&generation),
            "a new generation seen"
        );
        let mut rollout = two.clone();
        rollout.rollout = Some(crate::crd::RolloutStatus {
            component: "be".into(),
            pods: vec!["d-be-2".into()],
            ..Default::default()
        });
        assert_ne!(headline(&two), headline(&rollout), "a rollout step");
    }
}
