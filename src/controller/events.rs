//! The reasons of the Events the operator publishes, and what a user can do
//! about each Warning.
//!
//! Reasons are fixed CamelCase words: people filter on them (`kubectl get
//! events --field-selector reason=RolloutStuck`) and alerts key on them, so
//! a reason is never built from data and never renamed. A Warning's note
//! says what happened and then, from [`WARNINGS`], what to do next, so that
//! `kubectl describe` answers both.

use kube::runtime::events::{Event as KubeEvent, EventType};

/// Warning reasons, each with what the user can do next.
pub const WARNINGS: &[(&str, &str)] = &[
    (
        "InvalidSpec",
        "fix the field named in the cluster's spec; nothing is applied until then",
    ),
    (
        "ConventionFailed",
        "fix the convention file named (`doris-operator render` shows the same error \
         offline), or set the cluster's doris.selectdb.com/conventions annotation to a \
         set that works",
    ),
    (
        "ConventionsUnavailable",
        "fix the convention set named (its ConfigMap's ConventionsRefused Event says \
         where) or point the cluster's doris.selectdb.com/conventions annotation at \
         another set",
    ),
    (
        "ConfigMapMissing",
        "create the ConfigMap in the cluster's namespace, or remove it from the spec",
    ),
    (
        "ApplyRefused",
        "the API server's words say what it refused: fix the convention that makes the \
         object, or grant the operator's ClusterRole the kind if it was forbidden",
    ),
    (
        "RolloutStuck",
        "look at the pod (`kubectl describe pod`, `kubectl logs`); the rollout goes on \
         once it is Ready",
    ),
    (
        "RestartPolicyFailed",
        "fix restart.rhai in the conventions; `doris-operator render --plan` shows the \
         order it gives",
    ),
    (
        "NodeNotRegistered",
        "check the node's log and that it reaches the FE; SHOW BACKENDS (or SHOW \
         FRONTENDS) on the FE lists the nodes it knows",
    ),
    (
        "StatementRefused",
        "Doris's words say why it refused the statement for the node named: set the \
         replicas back to keep the node, or fix what Doris names (e.g. lower a table's \
         replication num); the scale-down waits and asks again",
    ),
    (
        "VolumeShrinkRefused",
        "set the storage request back to at least the claims' size: volumes only grow",
    ),
    (
        "VolumeExpansionRefused",
        "the claims' StorageClass must allow expansion (allowVolumeExpansion: true)",
    ),
    (
        "ConventionsRefused",
        "fix the file named; `doris-operator policy check` shows the same error offline",
    ),
];

/// Normal reasons: progress a user may want to follow, nothing to do.
pub const NORMALS: &[&str] = &[
    "Applied",
    "RolloutStep",
    "RolloutComplete",
    "Decommissioning",
    "DecommissionCancelled",
    "Rejoining",
    "Dropped",
    "ComputeGroupNodeDropped",
    "ObserverDropped",
    "VolumeExpanding",
    "StatefulSetRecreated",
    "ConventionsLive",
];

/// The longest note an Event may carry (the API server refuses more).
const MAX_NOTE: usize = 1000;

/// An Event's note: for a Warning, `note` and what to do next. Kept within
/// the API server's limit, cutting the first part so the advice stays.
pub fn note(type_: EventType, reason: &str, note: &str) -> String {
    let next = match type_ {
        EventType::Warning => WARNINGS
            .iter()
            .find(|(r, _)| *r == reason)
            .map(|(_, next)| format!(" Next: {next}.")),
        EventType::Normal => None,
    };
    let next = next.unwrap_or_default();
    let room = MAX_NOTE.saturating_sub(next.chars().count());
    let head = note.trim_end();
    let head: String = if head.chars().count() > room {
        let mut cut: String = head.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        head.to_string()
    };
    if next.is_empty() || head.ends_with(['.', '…']) {
        format!("{head}{next}")
    } else {
        format!("{head}.{next}")
    }
}

/// Publishes an Event about `reference`, its note from [`note`]; one that
/// cannot be published is logged and dropped.
pub async fn publish(
    ctx: &super::Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    text: &str,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note(type_, reason, text)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        tracing::debug!(error = %e, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasons the controller's sources publish or put in status.
    fn reasons_in_sources() -> Vec<String> {
        let sources = [
            include_str!("mod.rs"),
            include_str!("membership.rs"),
            include_str!("membership/backends.rs"),
            include_str!("rollout.rs"),
            include_str!("volumes.rs"),
            include_str!("conventions.rs"),
        ];
        let patterns = [
            r#"EventType::(?:Warning|Normal),\s*"(\w+)""#,
            // A failure status and an Event carry: ("Reason", message).
            r#"Some\(\(\s*"(\w+)",\s*(?:message|format!)"#,
            r#"reason: "(\w+)""#,
            r#"\(\s*EventType::\w+,\s*"(\w+)""#,
        ];
        let mut out = Vec::new();
        for source in sources {
            for pattern in patterns {
                let re = regex::Regex::new(pattern).unwrap();
                out.extend(re.captures_iter(source).map(|c| c[1].to_string()));
            }
        }
        out.extend(
            [
                crate::plan::PlanError::InvalidSpec(vec![]).category(),
                "ConventionFailed",
            ]
            .map(str::to_string),
        );
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn every_reason_is_a_known_camel_case_word() {
        let reasons = reasons_in_sources();
        assert!(reasons.len() >= 15, "{reasons:?}");
        let camel = regex::Regex::new("^[A-Z][a-z]+([A-Z][a-z]*)*$").unwrap();
        for reason in &reasons {
            assert!(camel.is_match(reason), "{reason} is not CamelCase");
            assert!(
                WARNINGS.iter().any(|(r, _)| r == reason) || NORMALS.contains(&reason.as_str()),
                "{reason} is not listed in controller/events.rs"
            );
        }
    }

    #[test]
    fn a_warning_says_what_to_do_next() {
        let text = note(
            EventType::Warning,
            "ConfigMapMissing",
            "waiting for ConfigMap fe-conf named in the spec",
        );
        assert_eq!(
            text,
            "waiting for ConfigMap fe-conf named in the spec. Next: create the ConfigMap \
             in the cluster's namespace, or remove it from the spec."
        );
        assert_eq!(note(EventType::Normal, "Applied", "applied x"), "applied x");
        let long = note(EventType::Warning, "ApplyRefused", &"x".repeat(5000));
        assert!(long.chars().count() <= MAX_NOTE);
        assert!(long.ends_with("if it was forbidden."), "{long}");
    }
}
