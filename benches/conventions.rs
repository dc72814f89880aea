//! Prints how fast convention changes take effect: from an update of a
//! conventions ConfigMap to every one of 100 clusters reconciled under the
//! new revision (the operator as its own process against the in-process API
//! emulator), and from a change in a conventions folder to the new revision
//! live. Run with `cargo bench --bench conventions`.

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

/// Adds one ConfigMap per component of every cluster.
const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ names.statefulset ~ \"-platform\" }}\ndata:\n  owner: platform\n";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn on_revision(emulator: &Emulator, name: &str, revision: &str) -> bool {
    emulator
        .get(CLUSTER_RESOURCE, NAMESPACE, name)
        .is_some_and(|c| c["status"]["conventionsRevision"] == revision)
        && emulator
            .get("/v1/configmaps", NAMESPACE, &format!("{name}-be-platform"))
            .is_some()
}

async fn configmap_to_clusters() {
    let emulator = Arc::new(Emulator::start().await);
    let _driver = PodDriver::start(emulator.clone());
    emulator.put(
        "/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    let fe = support::DorisFe::start(emulator.clone()).await;
    let _operator =
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

    let revision = ConventionSources::embedded()
        .overlay_files("cm", [("platform.yaml.j2", TEMPLATE)])
        .revision();
    emulator.reset_requests();
    let start = Instant::now();
    emulator.put(
        "/v1/configmaps",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "platform", "namespace": NAMESPACE, "labels": {SET_KEY: "default"}},
            "data": {"platform.yaml.j2": TEMPLATE},
        }),
    );
    wait(
        "every cluster on the new revision",
        Duration::from_secs(120),
        || names.iter().all(|n| on_revision(&emulator, n, &revision)),
    )
    .await;
    let took = start.elapsed();
    println!(
        "ConfigMap edit to {CLUSTERS} clusters reconciled: {:>8.0} ms  ({} writes: 2 new objects and a status per cluster)",
        took.as_secs_f64() * 1e3,
        emulator.count_writes()
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
