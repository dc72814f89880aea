//! Prints how fast convention changes take effect: from an update of a
//! conventions ConfigMap to every one of 100 clusters reconciled under the
//! new revision (the operator as its own process against the in-process API
//! emulator), for a ConfigMap that adds a whole new file, one that refines
//! a default file, and one that replaces that default file whole to the
//! same effect; and from a change in a conventions folder to the new
//! revision live. Run with `cargo bench --bench conventions`.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/fesim/mod.rs"]
mod fesim;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::Emulator;
use apiserver::driver::PodDriver;
use doris_operator::conventions::reload::{self, LiveConventions, SET_KEY};
use doris_operator::conventions::{ConventionBundle, ConventionSources};
use serde_json::json;
use support::{CLUSTER_RESOURCE, NAMESPACE, cluster, is_ready, wait};

const CLUSTERS: usize = 100;
/// Times each ConfigMap edit is measured, each time on a new fleet.
const ROUNDS: usize = 3;

/// Adds one ConfigMap per component of every cluster.
const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ names.statefulset ~ \"-platform\" }}\ndata:\n  owner: platform\n";

/// Refines the default shape.rhai: the pods of every BE StatefulSet get a
/// label (which restarts them).
const REFINEMENT: &str = r#"fn shape(ctx, below) {
    if ctx.component == "be" {
        below.patch("objects[kind=StatefulSet].spec.template.metadata", #{ labels: #{ team: "analytics" } });
    }
    below
}
"#;

/// What [`replaced_shape`] adds to a copy of the default shape.rhai.
const LABEL_BE: &str = r#"
fn shape(ctx) {
    let out = shipped(ctx);
    if ctx.component == "be" {
        out.patch("objects[kind=StatefulSet].spec.template.metadata", #{ labels: #{ team: "VALUE" } });
    }
    out
}
"#;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn on_revision(emulator: &Emulator, name: &str, revision: &str) -> bool {
    emulator
        .get(CLUSTER_RESOURCE, NAMESPACE, name)
        .is_some_and(|c| c["status"]["conventionsRevision"] == revision)
}

/// Whether cluster `name` has the objects TEMPLATE adds.
fn has_platform(emulator: &Emulator, name: &str) -> bool {
    emulator
        .get("/v1/configmaps", NAMESPACE, &format!("{name}-be-platform"))
        .is_some()
}

/// Whether the BE pod template of cluster `name` carries label `team`
/// with `value`.
fn has_team(emulator: &Emulator, name: &str, value: &str) -> bool {
    emulator
        .get("apps/v1/statefulsets", NAMESPACE, &format!("{name}-be"))
        .is_some_and(|s| s["spec"]["template"]["metadata"]["labels"]["team"] == value)
}

/// The default shape.rhai replaced whole by a copy that also labels the
/// BE pods `team: <value>`, as one would before refinements.
fn replaced_shape(value: &str) -> String {
    let shipped = &ConventionSources::embedded().files["shape.rhai"].content;
    assert!(shipped.contains("fn shape(ctx) {"));
    shipped.replace("fn shape(ctx) {", "fn shipped(ctx) {")
        + LABEL_BE.replace("VALUE", value).as_str()
}

/// Whether an edit has reached a cluster: (emulator, cluster name).
type Applied = fn(&Emulator, &str) -> bool;

/// Puts conventions ConfigMap `name` holding `file`, and returns how long
/// until every one of `clusters` is on `revision` with `applied` true of
/// it, and the writes the operator made until then, by kind.
async fn edit_to_clusters(
    emulator: &Emulator,
    clusters: &[String],
    (name, file, content): (&str, &str, &str),
    revision: &str,
    applied: Applied,
) -> (Duration, String) {
    emulator.reset_requests();
    let start = Instant::now();
    emulator.put(
        "/v1/configmaps",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {SET_KEY: "default"}},
            "data": {file: content},
        }),
    );
    wait(
        "every cluster on the new revision",
        Duration::from_secs(120),
        || {
            clusters
                .iter()
                .all(|n| on_revision(emulator, n, revision) && applied(emulator, n))
        },
    )
    .await;
    let took = start.elapsed();
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for r in emulator.requests() {
        if matches!(r.verb, "create" | "update" | "patch" | "delete") {
            *by_kind
                .entry(support::write_kind(r.verb, &r.path))
                .or_default() += 1;
        }
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    (
        took,
        format!("{} ({})", emulator.count_writes(), kinds.join(", ")),
    )
}

/// 100 clusters Ready under the operator, which reads conventions
/// ConfigMaps. Dropped in the order of the fields: the operator first.
struct Fleet {
    _operator: support::Operator,
    _fe: support::DorisFe,
    _driver: PodDriver,
    emulator: Arc<Emulator>,
    names: Vec<String>,
}

async fn fleet() -> Fleet {
    let emulator = Arc::new(Emulator::start().await);
    support::install_crds(&emulator);
    let driver = PodDriver::start(emulator.clone());
    emulator.put(
        "/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    let fe = support::DorisFe::start(emulator.clone()).await;
    let operator =
        support::Operator::start(&emulator, &fe, &["--conventions-namespace", NAMESPACE]);
    let names: Vec<String> = (0..CLUSTERS).map(|i| format!("c{i:03}")).collect();
    for name in &names {
        emulator.put(CLUSTER_RESOURCE, cluster(name));
    }
    wait("all clusters Ready", Duration::from_secs(300), || {
        names.iter().all(|n| is_ready(&emulator, n))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Fleet {
        _operator: operator,
        _fe: fe,
        _driver: driver,
        emulator,
        names,
    }
}

/// Each edit on a fleet of its own, so that each starts from the same
/// state: the whole new file first, as the baseline. The edits take turns
/// for [`ROUNDS`] rounds, so that a change of load on the machine weighs on
/// each alike.
async fn configmap_to_clusters() {
    let whole = replaced_shape("platform");
    let edits: [(&str, &str, &str, Applied); 3] = [
        ("a new file", "platform.yaml.j2", TEMPLATE, has_platform),
        ("refining shape.rhai", "shape.rhai", REFINEMENT, |e, n| {
            has_team(e, n, "analytics")
        }),
        ("replacing shape.rhai", "shape.rhai", &whole, |e, n| {
            has_team(e, n, "platform")
        }),
    ];
    let mut samples = vec![Vec::new(); edits.len()];
    let mut writes = vec![String::new(); edits.len()];
    for _ in 0..ROUNDS {
        for (i, (_, file, content, applied)) in edits.iter().enumerate() {
            let fleet = fleet().await;
            let revision = ConventionSources::embedded()
                .overlay_files("cm", [(*file, *content)])
                .revision();
            let (took, wrote) = edit_to_clusters(
                &fleet.emulator,
                &fleet.names,
                ("platform", file, content),
                &revision,
                *applied,
            )
            .await;
            samples[i].push(took);
            writes[i] = wrote;
            drop(fleet);
        }
    }
    for (((what, ..), samples), writes) in edits.iter().zip(samples).zip(writes) {
        let each: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.0}", s.as_secs_f64() * 1e3))
            .collect();
        println!(
            "ConfigMap edit to {CLUSTERS} clusters reconciled, {what:<21} {:>8.0} ms median of {ROUNDS} ({} ms)",
            median(samples).as_secs_f64() * 1e3,
            each.join(", "),
        );
        println!("  API writes in the last round: {writes}");
    }
    println!(
        "  (refining and replacing shape.rhai both label every BE pod template; \
         the restarts that follow are not timed)"
    );
}

async fn folder_to_live() {
    let dir = std::env::temp_dir().join(format!("doris-bench-conv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("platform.yaml.j2"), TEMPLATE).unwrap();
    let live = Arc::new(LiveConventions::new(
        ConventionBundle::compile(reload::read_dir(&dir).unwrap()).unwrap(),
    ));
    let _watch = reload::watch_dir(dir.clone(), live.clone()).unwrap();
    let mut samples = Vec::new();
    for i in 0..10 {
        let before = live.current().revision().to_string();
        let start = Instant::now();
        std::fs::write(
            dir.join("platform.yaml.j2"),
            TEMPLATE.replace("owner: platform", &format!("owner: team{i}")),
        )
        .unwrap();
        samples.push(
            wait("the folder change live", Duration::from_secs(10), || {
                live.current().revision() != before
            })
            .await,
        );
        let _ = start;
    }
    println!(
        "folder change to new revision live:     {:>8.0} ms median of 10 (includes the {} ms quiet period)",
        median(samples).as_secs_f64() * 1e3,
        reload::QUIET_PERIOD.as_millis()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    folder_to_live().await;
    configmap_to_clusters().await;
}
