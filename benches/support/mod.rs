//! What the operator benchmarks share: the sample cluster, waits on the
//! emulator's state, and the operator started as its own process against
//! the emulator, so its memory is measured alone.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::apiserver::Emulator;

pub const NAMESPACE: &str = "bench";
pub const CLUSTER_RESOURCE: &str = "doris.selectdb.com/v1/dorisclusters";

pub fn cluster(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "feSpec": {"replicas": 1, "electionNumber": 1, "image": "apache/doris:fe-2.1.8"},
            "beSpec": {"replicas": 1, "image": "apache/doris:be-2.1.8"},
        }
    })
}

pub fn is_ready(emulator: &Emulator, name: &str) -> bool {
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

pub fn children_exist(emulator: &Emulator, name: &str) -> bool {
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

pub async fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            panic!("{what}: not done after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The operator, run as `doris-operator run` against the emulator.
pub struct Operator {
    pub process: std::process::Child,
    kubeconfig: PathBuf,
}

impl Operator {
    pub fn start(emulator: &Emulator, extra_args: &[&str]) -> Operator {
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
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_doris-operator"))
            .args([
                "run",
                "--leader-elect=false",
                "--metrics-addr",
                "127.0.0.1:0",
                "--namespace",
                NAMESPACE,
            ])
            .args(extra_args)
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("operator starts");
        Operator {
            process,
            kubeconfig,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}
