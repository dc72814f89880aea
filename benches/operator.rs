//! Prints how the operator performs against the in-process API emulator:
//! time from creating one cluster to all its objects existing, time for
//! 200 clusters created at once to all become Ready, writes per reconcile of
//! a converged cluster, and the operator's peak memory. The operator runs as
//! its own process (`doris-operator run`), so its memory is measured alone.
//! Run with `cargo bench --bench operator`.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;

use std::time::{Duration, Instant};

use apiserver::Emulator;
use apiserver::driver::PodDriver;
use serde_json::json;

const CLUSTERS: usize = 200;
const NAMESPACE: &str = "bench";
const CLUSTER_RESOURCE: &str = "doris.selectdb.com/v1/dorisclusters";

fn cluster(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "feSpec": {"replicas": 1, "electionNumber": 1, "image": "apache/doris:fe-2.1.8"},
            "beSpec": {"replicas": 1, "image": "apache/doris:be-2.1.8"},
        }
    })
}

fn is_ready(emulator: &Emulator, name: &str) -> bool {
    emulator
        .get(CLUSTER_RESOURCE, NAMESPACE, name)
        .is_some_and(|c| {
            c["status"]["observedGeneration"] == c["metadata"]["generation"]
                && c["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
}

fn children_exist(emulator: &Emulator, name: &str) -> bool {
    let sts = ["fe", "be"].iter().all(|c| {
        emulator
            .get("apps/v1/statefulsets", NAMESPACE, &format!("{name}-{c}"))
            .is_some()
    });
    let svc = ["fe-internal", "fe-service", "be-internal", "be-service"]
        .iter()
        .all(|s| {
            emulator
                .get("/v1/services", NAMESPACE, &format!("{name}-{s}"))
                .is_some()
        });
    let cm = ["fe-conf", "be-conf"].iter().all(|s| {
        emulator
            .get("/v1/configmaps", NAMESPACE, &format!("{name}-{s}"))
            .is_some()
    });
    sts && svc && cm
}

async fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            panic!("{what}: not done after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let emulator = std::sync::Arc::new(Emulator::start().await);
    let _driver = PodDriver::start(emulator.clone());
    let url = emulator.url();
    let kubeconfig =
        std::env::temp_dir().join(format!("doris-bench-{}.kubeconfig", std::process::id()));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e\n  cluster:\n    server: {url}\n\
             contexts:\n- name: e\n  context:\n    cluster: e\n    user: u\n    namespace: {NAMESPACE}\n\
             users:\n- name: u\n  user: {{}}\ncurrent-context: e\n"
        ),
    )
    .unwrap();
    let mut operator = std::process::Command::new(env!("CARGO_BIN_EXE_doris-operator"))
        .args([
            "run",
            "--leader-elect=false",
            "--metrics-addr",
            "127.0.0.1:0",
            "--namespace",
            NAMESPACE,
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("operator starts");
    let pid = operator.id();
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
    let names: Vec<String> = (0..CLUSTERS).map(|i| format!("c{i:03}")).collect();
    let start = Instant::now();
    for name in &names {
        emulator.put(CLUSTER_RESOURCE, cluster(name));
    }
    wait("all clusters Ready", Duration::from_secs(300), || {
        names.iter().all(|n| is_ready(&emulator, n))
    })
    .await;
    let all = start.elapsed();
    println!(
        "{CLUSTERS} clusters at once, all Ready:   {:>8.2} s",
        all.as_secs_f64()
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
        "writes per converged reconcile:        {:>8.2}  ({writes} writes for {CLUSTERS} reconciles)",
        writes as f64 / CLUSTERS as f64
    );
    println!(
        "operator peak RSS:                     {:>8.1} MiB",
        peak_rss_mib(pid)
    );
    let _ = operator.kill();
    let _ = operator.wait();
    let _ = std::fs::remove_file(&kubeconfig);
}
