//! Prints how the operator performs against the in-process API emulator:
//! time from creating one cluster to all its objects existing, time for
//! 200 clusters created at once to all become Ready, writes per reconcile of
//! a converged cluster, and the operator's peak memory. The operator runs as
//! its own process (`doris-operator run`), so its memory is measured alone;
//! every cluster's FE is one Doris FE simulator, with which each pod's node
//! registers as it becomes Ready, so membership checks run as for real.
//! Run with `cargo bench --bench operator`.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/fesim/mod.rs"]
mod fesim;
mod support;

use std::time::{Duration, Instant};

use apiserver::Emulator;
use apiserver::driver::PodDriver;
use serde_json::json;
use support::{CLUSTER_RESOURCE, NAMESPACE, children_exist, cluster, is_ready, peak_rss_mib, wait};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let emulator = std::sync::Arc::new(Emulator::start().await);
    let _driver = PodDriver::start(emulator.clone());
    let fe = support::DorisFe::start(emulator.clone()).await;
    let operator = support::Operator::start(&emulator, &fe, &[]);
    let pid = operator.pid();
    emulator.put(
        "/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // One cluster: create to all objects present.
    emulator.put(CLUSTER_RESOURCE, cluster("first"));
    let first = wait("first cluster's objects", Duration::from_secs(30), || {
        children_exist(&emulator, "first")
    })
    .await;
    wait("first cluster Ready", Duration::from_secs(30), || {
        is_ready(&emulator, "first")
    })
    .await;
    println!(
        "1 cluster, create to all objects:     {:>8.1} ms",
        first.as_secs_f64() * 1e3
    );

    // Many at once.
    let clusters: usize = std::env::var("BENCH_CLUSTERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let reconciles_before = operator.metric("doris_operator_reconciles_total");
    let writes_before = operator.metric("doris_operator_api_writes_total");
    let names: Vec<String> = (0..clusters).map(|i| format!("c{i:03}")).collect();
    let start = Instant::now();
    for name in &names {
        emulator.put(CLUSTER_RESOURCE, cluster(name));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !names.iter().all(|n| is_ready(&emulator, n)) {
        if Instant::now() > deadline {
            let stuck = names.iter().find(|n| !is_ready(&emulator, n)).unwrap();
            let c = emulator.get(CLUSTER_RESOURCE, NAMESPACE, stuck).unwrap();
            panic!("{stuck} not Ready after 300 s: {:#}", c["status"]);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = start.elapsed();
    println!(
        "{clusters} clusters at once, all Ready:   {:>8.2} s  ({:.0} reconciles, {:.0} API writes; CPU: operator {:.1} s, emulator and pod driver {:.1} s)",
        all.as_secs_f64(),
        operator.metric("doris_operator_reconciles_total") - reconciles_before,
        operator.metric("doris_operator_api_writes_total") - writes_before,
        support::cpu_seconds(pid),
        support::cpu_seconds(std::process::id()),
    );
    println!(
        "mean reconcile:                        {:>8.1} ms",
        1e3 * operator.metric("doris_operator_reconcile_duration_seconds_sum")
            / operator.metric("doris_operator_reconcile_duration_seconds_count")
    );

    // Converged: wake every reconcile with a label change and count writes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in &names {
        let mut c = emulator.get(CLUSTER_RESOURCE, NAMESPACE, name).unwrap();
        c["metadata"]["labels"] = json!({"touched": "yes"});
        emulator.put(CLUSTER_RESOURCE, c);
    }
    emulator.reset_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = emulator.count_writes();
    println!(
        "writes per converged reconcile:        {:>8.2}  ({writes} writes for {clusters} reconciles)",
        writes as f64 / clusters as f64
    );
    println!(
        "operator peak RSS:                     {:>8.1} MiB",
        peak_rss_mib(pid)
    );
    drop(operator);
}
