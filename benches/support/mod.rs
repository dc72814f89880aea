//! What the operator benchmarks share: the sample cluster, waits on the
//! emulator's state, and the operator started as its own process against
//! the emulator, so its memory is measured alone.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::apiserver::Emulator;
use crate::fesim::{FeSim, FeSimConfig};

pub const NAMESPACE: &str = "bench";
pub const CLUSTER_RESOURCE: &str = "doris.selectdb.com/v1/dorisclusters";
pub const DDC_RESOURCE: &str = "disaggregated.cluster.doris.com/v1/dorisdisaggregatedclusters";

/// The compute groups of [`sized_ddc`], as their `uniqueId`s.
pub const COMPUTE_GROUPS: [&str; 2] = ["cg_etl", "cg_query"];

/// Installs both CRDs, as on any cluster the operator runs in: the
/// emulator serves a custom resource only while its CRD is stored.
pub fn install_crds(emulator: &Emulator) {
    for crd in [
        doris_operator::crd::crd(),
        doris_operator::crd::disaggregated::crd(),
    ] {
        emulator.put(
            crate::apiserver::discovery::CRDS,
            serde_json::to_value(crd).expect("a CRD serializes"),
        );
    }
}

pub fn cluster(name: &str) -> serde_json::Value {
    sized_cluster(name, 1, 1)
}

/// A cluster of `fe` FEs (all electing) and `be` BEs.
pub fn sized_cluster(name: &str, fe: u32, be: u32) -> serde_json::Value {
    json!({
        "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "feSpec": {"replicas": fe, "electionNumber": fe, "image": "apache/doris:fe-2.1.8"},
            "beSpec": {"replicas": be, "image": "apache/doris:be-2.1.8"},
        }
    })
}

/// A storage-compute separated cluster: one meta service pod, `fe` FEs
/// and the [`COMPUTE_GROUPS`] of `be` BEs each.
pub fn sized_ddc(name: &str, fe: u32, be: u32) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = COMPUTE_GROUPS
        .iter()
        .map(|id| json!({"uniqueId": id, "replicas": be, "image": "apache/doris:be-3.0.3"}))
        .collect();
    json!({
        "apiVersion": "disaggregated.cluster.doris.com/v1", "kind": "DorisDisaggregatedCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "metaService": {
                "replicas": 1,
                "image": "apache/doris:ms-3.0.3",
                "fdb": {"address": "doris:fdbclusterid@10.0.0.11:4500"},
            },
            "feSpec": {"replicas": fe, "image": "apache/doris:fe-3.0.3"},
            "computeGroups": groups,
        }
    })
}

/// The pods of a [`sized_ddc`] cluster.
pub fn ddc_pods(name: &str, fe: u32, be: u32) -> Vec<String> {
    let mut pods = vec![format!("{name}-ms-0")];
    pods.extend((0..fe).map(|i| format!("{name}-fe-{i}")));
    for id in COMPUTE_GROUPS {
        let sts = format!("{name}-{}", id.replace('_', "-"));
        pods.extend((0..be).map(|i| format!("{sts}-{i}")));
    }
    pods
}

pub fn is_ready(emulator: &Emulator, name: &str) -> bool {
    emulator
        .get(CLUSTER_RESOURCE, NAMESPACE, name)
        .is_some_and(|c| ready_condition(&c))
}

/// A storage-compute separated cluster Ready for its generation, its
/// health green.
pub fn ddc_is_ready(emulator: &Emulator, name: &str) -> bool {
    emulator
        .get(DDC_RESOURCE, NAMESPACE, name)
        .is_some_and(|c| ready_condition(&c) && c["status"]["clusterHealth"]["health"] == "green")
}

fn ready_condition(c: &serde_json::Value) -> bool {
    c["status"]["observedGeneration"] == c["metadata"]["generation"]
        && c["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
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

/// `<verb> <resource>[/<subresource>]` of a request path such as
/// `/apis/apps/v1/namespaces/bench/statefulsets/c000-fe?fieldManager=x`.
pub fn write_kind(verb: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    let resource = match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() > i + 2 => &parts[i + 2..],
        _ => &parts[parts.len().saturating_sub(1)..],
    };
    let what = match resource {
        [plural] | [plural, _] => plural.to_string(),
        [plural, _, sub, ..] => format!("{plural}/{sub}"),
        [] => String::new(),
    };
    format!("{verb} {what}")
}

/// How long after its cluster is created `pod` becomes Ready: 2 to 8 s,
/// spread by the pod's name (the same in every run).
pub fn ready_after(pod: &str) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pod.hash(&mut h);
    Duration::from_millis(2_000 + h.finish() % 6_000)
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
    metrics_port: u16,
}

impl Operator {
    /// Starts the operator with `extra_args`; every cluster's FE is `fe`.
    pub fn start(emulator: &Emulator, fe: &DorisFe, extra_args: &[&str]) -> Operator {
        let url = emulator.url();
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
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
        // BENCH_OPERATOR runs another build of the operator (an earlier
        // commit's, to compare) against the same harness.
        let binary = std::env::var_os("BENCH_OPERATOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_doris-operator")));
        let process = std::process::Command::new(binary)
            .args([
                "run",
                "--leader-elect=false",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
                "--namespace",
                NAMESPACE,
            ])
            .args(["--fe-address", &fe.sim.addr().to_string()])
            .args(extra_args)
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("operator starts");
        Operator {
            process,
            kubeconfig,
            metrics_port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The value of one series of the operator's /metrics (summed over
    /// labels when `series` names a family).
    pub fn metric(&self, series: &str) -> f64 {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)) else {
            return f64::NAN;
        };
        let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text.lines()
            .filter(|l| {
                l.strip_prefix(series)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// One Doris FE (the simulator) shared by every cluster of a benchmark, and
/// the Doris entrypoints' part: each pod that becomes Ready registers its
/// node with it, so membership settles as it would on a real cluster. It is
/// the FE of a storage-compute separated cluster too: a compute group's pod
/// (env `COMPUTE_GROUP_NAME`) adds itself to its group, a meta service pod
/// registers nothing, an FE pod joins as a follower. A shared-nothing
/// cluster's BEs belong to no compute group, so that the compute groups of
/// the separated clusters are the only ones this FE has.
pub struct DorisFe {
    pub sim: std::sync::Arc<FeSim>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DorisFe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of env var `name` in any of a pod's containers.
fn container_env<'a>(pod: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

impl DorisFe {
    pub async fn start(emulator: std::sync::Arc<Emulator>) -> DorisFe {
        let config = FeSimConfig {
            cloud: FeSimConfig::cloud().cloud,
            ..FeSimConfig::default()
        };
        let sim = std::sync::Arc::new(FeSim::start(config).await);
        let registering = sim.clone();
        let task = tokio::spawn(async move {
            let mut done = std::collections::HashSet::new();
            loop {
                for [ns, name, uid, _, _] in emulator.versions("/v1/pods") {
                    if done.contains(&uid) {
                        continue;
                    }
                    let Some(pod) = emulator.get("/v1/pods", &ns, &name) else {
                        continue;
                    };
                    let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                    if !ready {
                        continue;
                    }
                    // The pod's FQDN goes through the Service its
                    // StatefulSet names.
                    let sts = name.rsplit_once('-').map(|(s, _)| s).unwrap_or_default();
                    let service = emulator
                        .get("apps/v1/statefulsets", &ns, sts)
                        .and_then(|s| s["spec"]["serviceName"].as_str().map(str::to_string))
                        .unwrap_or_else(|| format!("{sts}-internal"));
                    let host = format!("{name}.{service}.{ns}.svc.cluster.local");
                    let group = container_env(&pod, "COMPUTE_GROUP_NAME").filter(|g| !g.is_empty());
                    match (
                        group,
                        pod["metadata"]["labels"]["app.kubernetes.io/component"].as_str(),
                    ) {
                        (Some(group), _) => {
                            let _ = registering.register_backend_in_group(&host, 9050, group);
                        }
                        (None, Some("be")) => {
                            let _ = registering.register_backend_outside_groups(&host, 9050);
                        }
                        (None, Some("cn")) => {
                            let _ = registering.register_compute_node(&host, 9050);
                        }
                        (None, Some("fe")) => {
                            let fe = doris_operator::doris::FeClient::new(
                                doris_operator::doris::FeEndpoint::new("127.0.0.1")
                                    .with_port(registering.addr().port()),
                            );
                            let _ = fe.add_follower(&host, 9010).await;
                        }
                        _ => {}
                    }
                    done.insert(uid);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        DorisFe { sim, task }
    }
}
