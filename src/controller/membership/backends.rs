//! BE, CN and compute group scale-down through the FE, and what the FE's
//! refusals mean for it.
//!
//! What Doris takes differs by deploy mode ([`Profile`]):
//!
//! - a decommissioned BE leaves `SHOW BACKENDS` by itself only in
//!   integrated mode while `drop_backend_after_decommission` is true; in
//!   storage-compute separated ("cloud") mode it stays listed with
//!   `SystemDecommissioned` true and `TabletNum` 0 until it is dropped
//!   (fe/fe-core/src/main/java/org/apache/doris/alter/SystemHandler.java,
//!   regression-test/suites/cloud_p0/node_mgr/test_cloud_decommission.groovy).
//!   So a decommissioned BE with no tablets left is dropped with `ALTER
//!   SYSTEM DROPP BACKEND`, in every mode, as apache/doris-operator does;
//!   one the FE dropped meanwhile ("backend does not exists") is done. A BE
//!   holding tablets is never dropped by a decommission.
//! - cloud mode refuses `CANCEL DECOMMISSION BACKEND` ("Unsupported
//!   operation"). A compute group scaled back up while some of its BEs are
//!   decommissioned lets their decommission finish, drops them, and
//!   restarts their pods, whose entrypoint adds them to the group again as
//!   fresh BEs. Dropping at once would be quicker (a compute group keeps
//!   its data in object storage) but Doris itself reports a cloud
//!   decommission done only once the BE has no tablets and no group commit
//!   WAL left (fe/fe-core/src/main/java/org/apache/doris/cloud/catalog/CloudTabletRebalancer.java,
//!   `checkDecommissionState`): loads not yet written to object storage
//!   are not thrown away.

use std::collections::BTreeMap;

use kube::runtime::events::EventType;

use crate::doris::{Backend, FeClient, FeError, Profile};
use crate::plan::membership::{ordinal_of, pod_of_host};

use super::{Scale, Step};

/// A statement about one node that failed.
#[derive(Debug)]
pub(super) struct NodeError {
    /// The pod (or, for a node of a removed compute group, the host) the
    /// statement was about.
    pub node: String,
    pub error: FeError,
}

impl NodeError {
    fn on(node: &str) -> impl FnOnce(FeError) -> NodeError + '_ {
        move |error| NodeError {
            node: node.to_string(),
            error,
        }
    }

    /// Which node, which statement, and Doris's words; `None` when the
    /// FE did not answer (not a refusal).
    pub fn refused(&self) -> Option<String> {
        let said = self.error.server_message()?;
        Some(format!(
            "the FE refused `{}` for {}: \"{said}\"",
            self.error.statement, self.node
        ))
    }

    /// What status says of a refusal: [`NodeError::refused`] and what to do.
    pub fn refusal(&self) -> Option<String> {
        Some(format!(
            "{}. The scale-down waits and asks again; set the replicas back to keep the \
             node, or fix what Doris names",
            self.refused()?
        ))
    }
}

/// Whether `e` says the backend is not listed (any more): Doris answers
/// `backend does not exists[host:port]` to a `DROPP` of one it does not
/// have (fe/fe-core/src/main/java/org/apache/doris/system/SystemInfoService.java,
/// cloud/system/CloudSystemInfoService.java `dropBackend`).
fn already_gone(e: &FeError) -> bool {
    e.server_message()
        .is_some_and(|m| m.to_ascii_lowercase().contains("does not exist"))
}

/// `ALTER SYSTEM DROPP BACKEND` of `b`; one already gone counts as dropped.
async fn dropp(fe: &FeClient, b: &Backend, node: &str) -> Result<(), NodeError> {
    match fe.drop_backend(&b.host, b.heartbeat_port, true).await {
        Err(e) if already_gone(&e) => Ok(()),
        other => other.map_err(NodeError::on(node)),
    }
}

impl Step<'_> {
    /// BEs (or CNs when `compute`) of one StatefulSet.
    pub(super) async fn backends(
        &mut self,
        fe: &FeClient,
        profile: Profile,
        scale: &Scale,
        backends: &[Backend],
        compute: bool,
    ) -> Result<(), NodeError> {
        // Doris lists the role of live backends only
        // (fe/fe-core/src/main/java/org/apache/doris/common/proc/BackendsProcDir.java:
        // `backend.isAlive() ? getNodeRoleTag().value : ""`): a node whose
        // process stopped is known by the StatefulSet its pod belongs to.
        let ours: Vec<(&Backend, String, i32)> = backends
            .iter()
            .filter(|b| b.node_role.is_none() || b.is_compute_node() == compute)
            .filter_map(|b| {
                let pod = pod_of_host(&b.host, &self.pod_ips).to_string();
                let ordinal = ordinal_of(&pod, &scale.statefulset)?;
                Some((b, pod, ordinal))
            })
            .collect();
        let current = scale.current.unwrap_or(scale.desired).max(scale.desired);
        let decommission = !compute && self.policy.decommission_be;

        // Backends that stay but were being decommissioned: scaled back up.
        for (b, pod, ordinal) in &ours {
            if *ordinal >= scale.desired || !b.decommissioned {
                continue;
            }
            if profile.can_cancel_decommission() {
                fe.cancel_decommission(&b.host, b.heartbeat_port)
                    .await
                    .map_err(NodeError::on(pod))?;
                self.event(
                    EventType::Normal,
                    "DecommissionCancelled",
                    format!("{pod} stays: its decommission was cancelled"),
                );
            } else {
                self.rejoin(fe, profile, scale, b, pod).await?;
            }
        }

        let mut draining = false;
        for (b, pod, ordinal) in &ours {
            if *ordinal < scale.desired {
                continue;
            }
            let going = *ordinal < current;
            if decommission {
                if !going && !self.policy.drop_stale && !b.decommissioned {
                    self.node(
                        &scale.part,
                        pod,
                        "stale",
                        None,
                        format!("the FE lists {} but no pod will run it", b.host_port()),
                    );
                    continue;
                }
                if b.decommissioned && b.tablet_num == 0 {
                    // Decommission done; the FE may not drop it by itself.
                    dropp(fe, b, pod).await?;
                    self.event(
                        EventType::Normal,
                        "Dropped",
                        format!(
                            "{pod} ({}) decommissioned with no tablets left, then dropped from the FE",
                            b.host_port()
                        ),
                    );
                    continue;
                }
                if !b.decommissioned {
                    fe.decommission_backend(&b.host, b.heartbeat_port)
                        .await
                        .map_err(NodeError::on(pod))?;
                    self.event(
                        EventType::Normal,
                        "Decommissioning",
                        format!(
                            "{pod}: decommission started; {} tablets to move",
                            b.tablet_num
                        ),
                    );
                }
                draining |= going;
                let tablets = i64::try_from(b.tablet_num).unwrap_or(i64::MAX);
                self.node(
                    &scale.part,
                    pod,
                    "decommissioning",
                    Some(tablets),
                    format!("the FE is moving its tablets to other BEs ({tablets} left)"),
                );
            } else if self.pod_exists(pod) {
                self.node(
                    &scale.part,
                    pod,
                    "dropping",
                    None,
                    "dropped from the FE once its pod is gone".into(),
                );
            } else if !compute && !profile.is_cloud() && b.tablet_num > 0 {
                // The policy turned decommission off, but an integrated
                // BE's tablets would be lost with it: never dropped.
                let tablets = i64::try_from(b.tablet_num).unwrap_or(i64::MAX);
                self.node(
                    &scale.part,
                    pod,
                    "stale",
                    Some(tablets),
                    format!(
                        "the FE lists {} holding {tablets} tablets and no pod runs it: not \
                         dropped, as that would discard them; decommission it or bring its pod back",
                        b.host_port()
                    ),
                );
            } else {
                // Compute nodes and compute groups hold no data; a BE
                // gets here without tablets only.
                dropp(fe, b, pod).await?;
                self.event(
                    EventType::Normal,
                    "Dropped",
                    format!("{pod} ({}) dropped from the FE", b.host_port()),
                );
            }
        }
        if draining && let Some(current) = scale.current {
            self.out.hold.insert(scale.statefulset.clone(), current);
        }
        let listed: Vec<&str> = ours.iter().map(|(_, pod, _)| pod.as_str()).collect();
        self.registration(scale, &listed);
        Ok(())
    }

    /// A BE that stays but is decommissioned, where Doris cannot cancel
    /// that: its decommission finishes, it is dropped, and its pod
    /// restarts to join as a fresh BE.
    async fn rejoin(
        &mut self,
        fe: &FeClient,
        profile: Profile,
        scale: &Scale,
        b: &Backend,
        pod: &str,
    ) -> Result<(), NodeError> {
        let why = format!(
            "scaled back up while decommissioned; Doris in {} mode refuses CANCEL DECOMMISSION \
             BACKEND (\"Unsupported operation\")",
            profile.mode
        );
        if b.tablet_num > 0 {
            let tablets = i64::try_from(b.tablet_num).unwrap_or(i64::MAX);
            self.node(
                &scale.part,
                pod,
                "decommissioning",
                Some(tablets),
                format!(
                    "{why}: the decommission finishes ({tablets} tablets left), then it is \
                     dropped and its pod restarted to join afresh"
                ),
            );
            return Ok(());
        }
        dropp(fe, b, pod).await?;
        self.out.restart.push(pod.to_string());
        self.event(
            EventType::Normal,
            "Rejoining",
            format!("{pod}: {why}; dropped once decommissioned, its pod restarts to join afresh"),
        );
        self.node(
            &scale.part,
            pod,
            "rejoining",
            None,
            format!("{why}: dropped once decommissioned; its pod restarts to join afresh"),
        );
        Ok(())
    }

    /// The compute groups the FE knows: their ids, and the BEs of a group
    /// that left the spec, which are dropped (their data lives in object
    /// storage; their pods are gone with the group's StatefulSet).
    pub(super) async fn compute_groups(
        &mut self,
        fe: &FeClient,
        cluster: &crate::crd::DorisDisaggregatedCluster,
        backends: &[Backend],
    ) -> Result<(), NodeError> {
        let parts: BTreeMap<String, String> = cluster
            .spec
            .compute_groups
            .iter()
            .map(|g| {
                (
                    crate::crd::disaggregated::compute_group_name(&g.unique_id),
                    g.object_name(),
                )
            })
            .collect();
        for b in backends {
            let Some(group) = b.compute_group_name() else {
                continue;
            };
            if let Some(part) = parts.get(group) {
                if let Some(id) = b.compute_group_id() {
                    self.out
                        .compute_group_ids
                        .insert(part.clone(), id.to_string());
                }
                continue;
            }
            dropp(fe, b, &b.host).await?;
            self.out.events.push((
                EventType::Normal,
                "ComputeGroupNodeDropped",
                format!(
                    "dropped BE {} from the FE: its compute group {group} is no longer in the spec",
                    b.host_port()
                ),
            ));
            self.node(
                group,
                &b.host,
                "dropping",
                None,
                format!("compute group {group} left the spec"),
            );
        }
        Ok(())
    }
}
