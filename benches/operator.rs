//! Prints how the operator performs against the in-process API emulator:
//! time from creating one cluster to all its objects existing; for N
//! clusters of 3 FE + 3 BE created at once (`BENCH_CLUSTERS`, 20 unless
//! set; each pod becomes Ready 2 to 8 s after its cluster is created), the
//! time until all are available and the API writes (status
//! writes apart), CPU and peak memory it took, in all and per cluster; the
//! writes while idle; and the writes per reconcile of a converged cluster.
//! Then the same for N storage-compute separated clusters
//! (`BENCH_DDC_CLUSTERS`, 100 unless set) of 1 meta service pod, 1 FE and 2
//! compute groups of 2 BEs, Ready with their health green, in the same
//! operator, whose peak memory then covers both kinds. The operator runs as
//! its own process (`doris-operator run`), so its memory is measured alone;
//! every cluster's FE is one Doris FE simulator, with which each pod's node
//! registers as it becomes Ready, so membership checks run as for real.
//! Run with `cargo bench --bench operator`.
//!
//! With `BENCH_KUBECONFIG` naming a kubeconfig, it runs on that real
//! control plane instead (`support/real.rs`): the peer's samples, for this
//! operator and then for apache/doris-operator, a peer binary you build
//! yourself, named by `BENCH_PEER_OPERATOR`:
//!
//! ```text
//! REALK8S_PORT_BASE=38000 bash tests/realk8s/up.sh /tmp/bench-k8s
//! BENCH_KUBECONFIG=/tmp/bench-k8s/kubeconfig BENCH_PEER_OPERATOR=/path/to/peer \
//!   BENCH_CLUSTERS=20,100 BENCH_DDC_CLUSTERS=100 cargo bench --bench operator
//! bash tests/realk8s/down.sh /tmp/bench-k8s
//! ```

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/fesim/mod.rs"]
mod fesim;
#[path = "support/real.rs"]
mod real;
mod support;

use std::time::{Duration, Instant};

use apiserver::Emulator;
use apiserver::driver::PodDriver;
use serde_json::json;
use support::{
    CLUSTER_RESOURCE, DDC_RESOURCE, NAMESPACE, children_exist, cluster, ddc_is_ready, ddc_pods,
    is_ready, peak_rss_mib, sized_cluster, sized_ddc, wait,
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Some(kubeconfig) = std::env::var_os("BENCH_KUBECONFIG") {
        real::run(kubeconfig.into()).await;
        return;
    }
    let emulator = std::sync::Arc::new(Emulator::start().await);
    support::install_crds(&emulator);
    let driver = std::sync::Arc::new(PodDriver::start(emulator.clone()));
    let fe = support::DorisFe::start(emulator.clone()).await;
    let operator = support::Operator::start(&emulator, &fe, &[]);
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

    // Many at once, shaped as a real bring-up: N clusters of 3 FE + 3 BE
    // created together, until every one is available.
    let clusters: usize = std::env::var("BENCH_CLUSTERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let names: Vec<String> = (0..clusters).map(|i| format!("c{i:03}")).collect();
    let pods: Vec<String> = names
        .iter()
        .flat_map(|n| {
            ["fe", "be"]
                .into_iter()
                .flat_map(move |c| (0..3).map(move |i| format!("{n}-{c}-{i}")))
        })
        .collect();
    let run = Run {
        emulator: &emulator,
        driver: &driver,
        operator: &operator,
        resource: CLUSTER_RESOURCE,
        what: "clusters of 3 FE + 3 BE",
        manifest: &|name| sized_cluster(name, 3, 3),
        ready: &|name| is_ready(&emulator, name),
    };
    run.measure(&names, &pods).await;

    // Storage-compute separated, in the same operator: N clusters of a meta
    // service, 1 FE and 2 compute groups of 2 BEs, brought up in order (FE
    // after the meta service, compute groups after the FE).
    let ddcs: usize = std::env::var("BENCH_DDC_CLUSTERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let names: Vec<String> = (0..ddcs).map(|i| format!("d{i:03}")).collect();
    let pods: Vec<String> = names.iter().flat_map(|n| ddc_pods(n, 1, 2)).collect();
    let run = Run {
        emulator: &emulator,
        driver: &driver,
        operator: &operator,
        resource: DDC_RESOURCE,
        what: "disaggregated clusters of 1 MS + 1 FE + 2 CG x 2 BE",
        manifest: &|name| sized_ddc(name, 1, 2),
        ready: &|name| ddc_is_ready(&emulator, name),
    };
    run.measure(&names, &pods).await;
    drop(operator);
}

/// Prints every write to cluster `name` and to the objects it owns, with
/// the time since `start`: what `BENCH_TRACE=<cluster>` shows, to see
/// which writes one cluster's bring-up takes.
fn trace(emulator: &Emulator, name: String, start: Instant) -> AbortOnDrop {
    let mut changes = emulator.subscribe();
    AbortOnDrop(tokio::spawn(async move {
        while let Ok(change) = changes.recv().await {
            let o = &change.object;
            let object = o["metadata"]["name"].as_str().unwrap_or_default();
            let owned = o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["name"] == name.as_str()))
                || o["regarding"]["name"] == name.as_str()
                || o["involvedObject"]["name"] == name.as_str();
            if object != name && !owned {
                continue;
            }
            let what = if object == name {
                let conditions: Vec<String> = o["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{}={}/{}", c["type"], c["status"], c["reason"]))
                    .collect();
                format!("status {}", conditions.join(" ").replace('"', ""))
            } else {
                String::new()
            };
            println!(
                "  trace {:>7.3} s  {} {} {object} {what}",
                start.elapsed().as_secs_f64(),
                change.type_,
                o["kind"].as_str().unwrap_or_default(),
            );
        }
    }))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One kind of cluster brought up many at once.
struct Run<'a> {
    emulator: &'a std::sync::Arc<Emulator>,
    driver: &'a std::sync::Arc<PodDriver>,
    operator: &'a support::Operator,
    resource: &'static str,
    /// What the clusters are, for the figures' lines.
    what: &'static str,
    manifest: &'a dyn Fn(&str) -> serde_json::Value,
    /// Ready (and healthy) for its generation.
    ready: &'a dyn Fn(&str) -> bool,
}

impl Run<'_> {
    /// Creates the clusters `names` at once, their `pods` becoming Ready
    /// over seconds, until all are Ready; then idle, then every cluster
    /// woken once converged. Prints the figures of each.
    async fn measure(&self, names: &[String], pods: &[String]) {
        let (emulator, driver, operator) = (self.emulator, self.driver, self.operator);
        let pid = operator.pid();
        let clusters = names.len();
        let reconciles_before = operator.metric("doris_operator_reconciles_total");
        let cpu_before = support::cpu_seconds(pid);
        let rss_before = peak_rss_mib(pid);
        // As a kubelet would, pods become Ready over seconds, not all at once:
        // each between 2 and 8 s after its cluster is created (images pulled,
        // Doris started), so that each pod's transition is seen on its own.
        // A pod created later (the order of a separated cluster's bring-up)
        // is Ready as soon as it runs once its time has come.
        for pod in pods {
            driver.hold(pod);
        }
        emulator.reset_requests();
        let start = Instant::now();
        let _trace = std::env::var("BENCH_TRACE")
            .ok()
            .filter(|t| names.contains(t))
            .map(|name| trace(emulator, name, start));
        for name in names {
            emulator.put(self.resource, (self.manifest)(name));
        }
        let kubelet = {
            let driver = driver.clone();
            let mut schedule: Vec<(Duration, String)> = pods
                .iter()
                .map(|p| (support::ready_after(p), p.clone()))
                .collect();
            schedule.sort();
            tokio::spawn(async move {
                for (after, pod) in schedule {
                    tokio::time::sleep_until((start + after).into()).await;
                    driver.release(&pod);
                }
            })
        };
        let limit = Duration::from_secs(60 + 6 * clusters as u64);
        let deadline = Instant::now() + limit;
        while !names.iter().all(|n| (self.ready)(n)) {
            if Instant::now() > deadline {
                let stuck = names.iter().find(|n| !(self.ready)(n)).unwrap();
                let c = emulator.get(self.resource, NAMESPACE, stuck).unwrap();
                panic!("{stuck} not Ready after {limit:?}: {:#}", c["status"]);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = start.elapsed();
        kubelet.abort();
        // Status written after the last cluster turned Ready belongs to the
        // bring-up too: let it land before counting.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let requests = emulator.requests();
        let is_write =
            |r: &&apiserver::Recorded| matches!(r.verb, "create" | "update" | "patch" | "delete");
        let writes = requests.iter().filter(is_write).count();
        let status_writes = requests
            .iter()
            .filter(is_write)
            .filter(|r| {
                r.path
                    .split('?')
                    .next()
                    .is_some_and(|p| p.ends_with("/status"))
            })
            .count();
        let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
        for r in requests.iter().filter(is_write) {
            *by_kind
                .entry(support::write_kind(r.verb, &r.path))
                .or_default() += 1;
        }
        let cpu = support::cpu_seconds(pid) - cpu_before;
        let rss = peak_rss_mib(pid);
        let n = clusters as f64;
        println!(
            "{clusters} {} at once, all available: {:>8.2} s  ({:.0} reconciles)",
            self.what,
            all.as_secs_f64(),
            operator.metric("doris_operator_reconciles_total") - reconciles_before,
        );
        println!(
            "  API writes:      {writes:>7} (status {status_writes:>6})   per cluster {:>6.1} (status {:>5.1})",
            writes as f64 / n,
            status_writes as f64 / n,
        );
        println!(
            "  writes by kind:  {}",
            by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  operator CPU:    {cpu:>7.1} s                  per cluster {:>6.3} s  (emulator, pod driver and FE simulator: {:.1} s in all)",
            cpu / n,
            support::cpu_seconds(std::process::id()),
        );
        println!(
            "  operator peak RSS: {rss:>5.1} MiB               per cluster {:>6.2} MiB over the {rss_before:.1} MiB before",
            (rss - rss_before).max(0.0) / n,
        );
        println!(
            "mean reconcile:                        {:>8.1} ms",
            1e3 * operator.metric("doris_operator_reconcile_duration_seconds_sum")
                / operator.metric("doris_operator_reconcile_duration_seconds_count")
        );

        // Idle: nothing changes, nothing is written.
        emulator.reset_requests();
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!(
            "writes while idle (5 s):               {:>8}",
            emulator.count_writes()
        );

        // Converged: wake every reconcile with a label change and count writes.
        for name in names {
            let mut c = emulator.get(self.resource, NAMESPACE, name).unwrap();
            c["metadata"]["labels"] = json!({"touched": "yes"});
            emulator.put(self.resource, c);
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
    }
}
