//! A restart the maintenance policy holds (a change of the conventions
//! alone, outside a window or not approved yet): what status says and when
//! to look again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cluster::ClusterRef;
use crate::plan::maintenance::Maintenance;

use super::{APPROVE_ANNOTATION, Component, HELD_POLL, Outcome, report};

/// A restart the maintenance policy holds: what status says (why it waits,
/// how to approve it, when the next window opens), and a look again when
/// that window opens so it is never missed. An approval is seen through the
/// cluster's watch.
pub(super) fn held(
    cluster: ClusterRef<'_>,
    maintenance: &Maintenance,
    components: &[Component<'_>],
    token: &str,
    now: &Time,
) -> Outcome {
    let waiting: Vec<&Component<'_>> = components
        .iter()
        .filter(|c| c.candidates().next().is_some())
        .collect();
    let pods: usize = waiting.iter().map(|c| c.candidates().count()).sum();
    let parts: Vec<&str> = waiting.iter().map(|c| c.part).collect();
    let approve = format!(
        "kubectl annotate {} {} -n {} {APPROVE_ANNOTATION}={token} --overwrite",
        cluster.kind().to_lowercase(),
        cluster.name(),
        cluster.namespace()
    );
    let what = format!(
        "{pods} pods of {} need a restart for a change of the conventions",
        parts.join(", ")
    );
    let opening = maintenance.next_opening(now.0);
    let (kind, message) = if maintenance.windows.is_empty() {
        ("approval", format!("{what}; held for approval: {approve}"))
    } else {
        let next = opening
            .zip(maintenance.windows.first())
            .map(|(at, w)| {
                at.to_zoned(w.time_zone.clone())
                    .strftime("%a %Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|| "never".into());
        (
            "maintenance-window",
            format!(
                "{what}; held for the maintenance window {} (next opens {next}); \
                 to restart now: {approve}",
                maintenance.describe_windows()
            ),
        )
    };
    let Some(first) = waiting.first() else {
        return Outcome::default();
    };
    let mut status = report(first, "conventions", &[], &[], message);
    status.held = Some(kind.to_string());
    status.approve_with = Some(token.to_string());
    status.window_opens = opening.map(|t| t.to_string());
    // At the opening, and meanwhile as often as a Ready cluster is looked at.
    let requeue = opening.map(|at| {
        let secs = at.as_second() - now.0.as_second();
        Duration::from_secs(secs.clamp(1, HELD_POLL.as_secs() as i64) as u64)
    });
    Outcome {
        status: Some(status),
        failure: None,
        requeue,
        held_parts: waiting.iter().map(|c| c.part.to_string()).collect(),
    }
}
