//! The reference page of the metrics, generated from what the operator
//! serves on `/metrics`: every family's name, type and help, and the
//! labels its series carry once each has been recorded.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use doris_operator::metrics::{ClusterHealth, ClusterLabels, Metrics};

/// Metrics with one series of every family, so that each family's labels
/// show. A family added to `src/metrics.rs` without a series here fails
/// [`page`]: record one below.
fn recorded() -> Metrics {
    let m = Metrics::default();
    m.observe_reconcile(std::time::Duration::from_millis(3));
    m.count_error("KubeApi");
    m.count_write("StatefulSet", "apply");
    m.conventions_result("default", false);
    m.restart_held("uid", true, || HashSet::from(["uid".to_string()]));
    let cluster = ClusterLabels {
        kind: "DorisCluster".into(),
        namespace: "ns".into(),
        name: "c".into(),
    };
    let health = ClusterHealth {
        ready: false,
        members_synced: Some(false),
        rollout: Some(("be".into(), 1)),
        decommissioning: [("c-be-3".to_string(), Some(10))].into(),
    };
    m.observe_cluster(&cluster, health, 1000);
    m
}

struct Family {
    type_: String,
    help: String,
    /// In the order the series carry them.
    labels: Vec<String>,
    samples: usize,
}

/// The families of Prometheus text `text`, by name.
fn families(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    let sample = regex::Regex::new(r"^([a-z_]+)(?:\{([^}]*)\})? ").unwrap();
    let label = regex::Regex::new(r#"([a-z_]+)="#).unwrap();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.to_string()).or_insert_with(empty).help =
                help.trim_end_matches('.').to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, type_) = rest.split_once(' ').unwrap();
            out.entry(name.to_string()).or_insert_with(empty).type_ = type_.to_string();
        } else if let Some(c) = sample.captures(line) {
            let name = &c[1];
            let family = out
                .keys()
                .filter(|f| name.starts_with(f.as_str()))
                .max_by_key(|f| f.len())
                .cloned()
                .unwrap_or_else(|| panic!("a series of no family: {line}"));
            let family = out.get_mut(&family).unwrap();
            family.samples += 1;
            if let Some(labels) = c.get(2) {
                for l in label.captures_iter(labels.as_str()) {
                    if &l[1] != "le" && !family.labels.iter().any(|k| k == &l[1]) {
                        family.labels.push(l[1].to_string());
                    }
                }
            }
        }
    }
    out
}

fn empty() -> Family {
    Family {
        type_: String::new(),
        help: String::new(),
        labels: Vec::new(),
        samples: 0,
    }
}

/// The page.
pub fn page() -> String {
    let families = families(&recorded().encode());
    assert!(
        families.len() >= 10,
        "{:?}",
        families.keys().collect::<Vec<_>>()
    );
    let mut out = String::from(
        "<!-- Generated from src/metrics.rs. Edit the code, then:\n     \
         UPDATE_REFERENCE_DOCS=1 cargo test --test book -->\n\n\
         # Metrics\n\n\
         The operator serves these on `/metrics` (port 8080, `--metrics-addr`), in the \
         Prometheus text format. A counter's series is named with `_total` after its \
         name; a histogram's with `_bucket`, `_sum` and `_count`. Label values of the \
         operator-wide series are fixed names, never object names; the per-cluster \
         series carry the cluster's `kind`, `namespace` and `name`, and go when the \
         cluster is deleted. Only the leader reconciles, so the standby replica serves \
         no cluster series. What they are for, and the alerts and dashboard built on \
         them, is in [Monitoring](../monitoring.md).\n\n\
         | metric | type | labels | what |\n| --- | --- | --- | --- |\n",
    );
    for (name, family) in &families {
        assert!(
            family.samples > 0,
            "{name} has no series in tests/book/metrics_reference.rs: record one there, \
             so that the page shows its labels"
        );
        let series = match family.type_.as_str() {
            "counter" => format!("{name}_total"),
            _ => name.clone(),
        };
        let labels: Vec<String> = family.labels.iter().map(|l| format!("`{l}`")).collect();
        let labels = if labels.is_empty() {
            "none".to_string()
        } else {
            labels.join(", ")
        };
        writeln!(
            out,
            "| `{series}` | {} | {} | {} |",
            family.type_, labels, family.help
        )
        .unwrap();
    }
    out
}
