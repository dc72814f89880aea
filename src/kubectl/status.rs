//! `kubectl doris status NAME`: one screen a person reads instead of the
//! status JSON. Per part the pods ready of those wanted and the phase; the
//! conditions; the FE membership in flux; the rollout step and what it
//! waits for; the conventions revision and whether it is the live one; and
//! the cluster's recent Warning Events. Columns have fixed widths, so the
//! screen reads the same from one run to the next.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::cluster::{Cluster, ClusterRef};
use crate::controller::kinds::DorisResource;
use crate::controller::rollout::{PAUSED_ANNOTATION, is_ready};
use crate::controller::status::Status;
use crate::conventions::reload::set_of;

/// Warning Events shown, the most recent.
pub const EVENTS_SHOWN: usize = 10;

/// Everything the screen shows, read from the API.
pub struct Observed {
    pub cluster: Cluster,
    /// The cluster's pods.
    pub pods: Vec<Pod>,
    /// Its Warning Events.
    pub warnings: Vec<Event>,
    /// The revision the convention ConfigMaps give the cluster's set now,
    /// or why there is none.
    pub conventions: Result<String, String>,
}

/// Reads what the screen shows of cluster `name`.
pub async fn observe(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: Option<super::KindArg>,
    operator_namespace: &str,
) -> Result<Observed, String> {
    let cluster = super::find_cluster(client, namespace, name, kind).await?;
    let view = cluster.as_ref();
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pods = Vec::new();
    for part in view.parts() {
        let selector = super::pod_selector(&part.names);
        let listed = pods_api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing the pods of {}: {e}", part.names.statefulset))?;
        pods.extend(listed.items);
    }
    let uid = view.meta().uid.clone().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let warnings = events
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing the Events of namespace {namespace}: {e}"))?
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.uid.as_deref() == Some(uid.as_str())
                    || (r.kind.as_deref() == Some(view.kind()) && r.name.as_deref() == Some(name))
            })
        })
        .collect();
    let set = set_of(view.meta().annotations.as_ref());
    let conventions = super::live_set(client, operator_namespace, set)
        .await
        .map(|s| s.bundle.revision().to_string());
    Ok(Observed {
        cluster,
        pods,
        warnings,
        conventions,
    })
}

/// The screen for what was observed, as of `now`.
pub fn screen(observed: &Observed, now: Timestamp) -> String {
    let view = observed.cluster.as_ref();
    let status = read_status(&observed.cluster);
    let meta = view.meta();
    let mut out = format!(
        "{} {}/{}   generation {}, status observed {}\n",
        view.kind(),
        view.namespace(),
        view.name(),
        meta.generation.map_or("-".into(), |g| g.to_string()),
        status
            .observed_generation
            .map_or("never".into(), |g| g.to_string()),
    );

    // Conditions.
    out.push('\n');
    let conditions = status.conditions.clone().unwrap_or_default();
    if conditions.is_empty() {
        out.push_str("no conditions yet: the operator has not reported on this cluster\n");
    } else {
        out.push_str(&format!(
            "{:<17} {:<7} {:<24} {}\n",
            "CONDITION", "STATUS", "REASON", "MESSAGE"
        ));
        for c in &conditions {
            out.push_str(&format!(
                "{:<17} {:<7} {:<24} {}\n",
                c.type_,
                c.status,
                c.reason,
                one_line(&c.message)
            ));
        }
    }

    // Parts.
    out.push('\n');
    out.push_str(&format!(
        "{:<12} {:<7} {:<5} {:<17} {}\n",
        "PART", "READY", "PODS", "PHASE", "STATEFULSET"
    ));
    for part in view.parts() {
        let pods: Vec<&Pod> = observed
            .pods
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                part.names
                    .selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        let reported = status.parts.get(&part.name);
        // The autoscaler's count, when one owns the part's replicas.
        let desired = reported
            .and_then(|s| s.replicas)
            .filter(|_| autoscaled(view, &part.name))
            .unwrap_or(part.base.replicas());
        let phase = reported
            .map(|s| s.component_condition.phase.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("-");
        out.push_str(&format!(
            "{:<12} {:<7} {:<5} {:<17} {}\n",
            part.name,
            format!("{ready}/{desired}"),
            pods.len(),
            phase,
            part.names.statefulset
        ));
    }

    // Membership.
    out.push('\n');
    match &status.membership {
        None => out.push_str("FE membership: not checked yet\n"),
        Some(m) => {
            out.push_str(&format!(
                "FE membership: confirmed {}\n",
                m.confirmed.as_deref().unwrap_or("(not yet)")
            ));
            if m.nodes.is_empty() {
                out.push_str("  every node the FE lists runs in a pod, and every pod is listed\n");
            }
            for n in &m.nodes {
                let tablets = n
                    .tablets
                    .map(|t| format!("{t} tablets left"))
                    .unwrap_or_default();
                let since = n
                    .since
                    .as_deref()
                    .and_then(|s| s.parse::<Timestamp>().ok())
                    .map(|t| format!("for {}", age(t, now)))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {:<8} {:<24} {:<16} {:<18} {:<10} {}\n",
                    n.component,
                    n.pod,
                    n.state,
                    tablets,
                    since,
                    one_line(n.message.as_deref().unwrap_or_default())
                ));
            }
        }
    }

    // Rollout.
    let paused = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true");
    match &status.rollout {
        None => out.push_str(&format!(
            "Rollout: none in progress{}\n",
            if paused {
                " (paused: kubectl doris resume to lift)"
            } else {
                ""
            }
        )),
        Some(r) => {
            out.push_str(&format!(
                "Rollout: {} ({}), {}/{} pods updated{}\n",
                r.component,
                r.reason,
                r.updated,
                r.total,
                if paused {
                    ", PAUSED (kubectl doris resume to go on)"
                } else {
                    ""
                }
            ));
            out.push_str(&format!("  step:      {}\n", r.pods.join(", ")));
            out.push_str(&format!("  waits for: {}\n", r.wait_for.join(", ")));
            out.push_str(&format!("  now:       {}\n", one_line(&r.waiting)));
        }
    }

    // Conventions.
    let set = set_of(meta.annotations.as_ref());
    let running = status
        .conventions_revision
        .as_deref()
        .filter(|r| !r.is_empty());
    let line = match (running, &observed.conventions) {
        (None, _) => "none yet".to_string(),
        (Some(r), Ok(now)) if r == now => format!("revision {r} (live)"),
        (Some(r), Ok(now)) => format!(
            "revision {r}, NOT the live one: the ConfigMaps give {now} (refused, not reloaded \
             yet, or the operator has a --conventions-dir; see the ConfigMaps' Events)"
        ),
        (Some(r), Err(e)) => format!("revision {r}; the set's ConfigMaps: {}", one_line(e)),
    };
    out.push_str(&format!("Conventions: set {set:?}, {line}\n"));

    // Warning Events, the most recent last.
    out.push('\n');
    let mut warnings: Vec<(Timestamp, &Event)> = observed
        .warnings
        .iter()
        .map(|e| (last_seen(e), e))
        .collect();
    warnings.sort_by_key(|(t, _)| *t);
    let skip = warnings.len().saturating_sub(EVENTS_SHOWN);
    if warnings.is_empty() {
        out.push_str("No Warning Events.\n");
    } else {
        out.push_str(&format!("{:<6} {:<22} {}\n", "AGE", "WARNING", "MESSAGE"));
        for (at, e) in warnings.into_iter().skip(skip) {
            let count = e
                .series
                .as_ref()
                .map(|s| format!(" (x{})", s.count))
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<6} {:<22} {}{count}\n",
                age(at, now),
                e.reason.as_deref().unwrap_or_default(),
                one_line(e.note.as_deref().unwrap_or_default())
            ));
        }
    }
    out
}

fn read_status(cluster: &Cluster) -> Status {
    match cluster {
        Cluster::Doris(c) => c.read_status(),
        Cluster::Disaggregated(c) => c.read_status(),
    }
}

/// Whether an autoscaler owns the part's replicas.
fn autoscaled(cluster: ClusterRef<'_>, part: &str) -> bool {
    match cluster {
        ClusterRef::Doris(c) => {
            part == "cn"
                && c.spec
                    .cn_spec
                    .as_ref()
                    .is_some_and(|cn| cn.auto_scaling_policy.is_some())
        }
        ClusterRef::Disaggregated(_) => false,
    }
}

/// When an Event was last seen.
fn last_seen(e: &Event) -> Timestamp {
    e.series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `42s`, `5m`, `3h`, `2d`: as kubectl shows ages.
fn age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A message on one line, cut to fit a screen.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        format!("{}…", flat.chars().take(159).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_shows_them() {
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let ago = |s: i64| age(now - k8s_openapi::jiff::SignedDuration::from_secs(s), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(300), "5m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(3 * 86400), "3d");
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), 160);
    }
}
