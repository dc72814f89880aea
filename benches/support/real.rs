//! The operator benchmark on a real control plane: what `cargo bench
//! --bench operator` measures when `BENCH_KUBECONFIG` names a kubeconfig
//! (an administrator's, of an API server whose kwok nodes run pods and make
//! them Ready at once, as `tests/realk8s/up.sh` starts one).
//!
//! For each size, N copies of the peer's DorisCluster sample
//! (`BENCH_CLUSTERS`, a number or a comma-separated list, 20 unless set),
//! then N copies of its storage-compute separated sample
//! (`BENCH_DDC_CLUSTERS`, 100 unless set; 0 skips a kind) are created at
//! once in a fresh namespace, first for this operator, then for
//! apache/doris-operator (the peer: a binary you build yourself, named by
//! `BENCH_PEER_OPERATOR`; not measured when unset). Each operator is its
//! own process, started afresh for each run and watching that namespace
//! only; it acts as a user of its own by impersonation — this operator as
//! the ServiceAccount `deploy/` ships, with its RBAC; the peer as a
//! ServiceAccount bound to cluster-admin — so that the API server's audit
//! log (`BENCH_AUDIT_LOG`, else `audit.log` beside the kubeconfig) tells
//! their writes apart (and, where the control plane has the user
//! `operator-runner` that tests/realk8s/up.sh makes, whose gets and lists
//! its audit policy records, their reads: the operators run as it). Per run
//! it prints: the time until every cluster is available, both as its
//! operator reports it and as the pods show it; the API writes (status
//! writes apart) and reads until then; the writes while idle
//! (`BENCH_IDLE_SECS`, 30 unless set), after a no-op edit (an annotation)
//! of each cluster, and in the first seconds after a restart of the
//! operator with every cluster converged; the operator's CPU seconds and
//! peak RSS, and the restarted operator's; for this operator, how long a
//! convention change takes to reach every cluster, with every FE answering
//! and with none (`real/reach.rs`). The clusters and the namespace are
//! deleted before the next run.
//!
//! With `BENCH_RESTART_MIDWAY` set, each operator is restarted once half
//! the clusters are available, and its figures until converged cover both
//! of its processes (to compare with a run without).
//!
//! With `BENCH_PERF` naming a folder, each operator's CPU is profiled
//! with `perf record` from the clusters' creation until they converge, and
//! the functions that took the most samples are printed.
//!
//! This operator reaches each cluster's FE at a Doris FE simulator of that
//! cluster's own (`real/fleet.rs`), with which each Ready pod's node
//! registers as the Doris images' entrypoints do. The peer talks MySQL to
//! each cluster's FE Service, which does not resolve here: its SQL fails,
//! which its bring-up does not need. Where a mount namespace can be made
//! (as root), each operator runs in one whose `/etc/resolv.conf` names
//! only 127.0.0.1, so that such lookups fail at once without leaving the
//! machine, and whose `/etc/hosts` names this operator's FE simulators
//! (where none can be made, one simulator plays every cluster's FE,
//! reached through `--fe-address`).

#[path = "real/audit.rs"]
mod audit;
#[path = "real/cluster.rs"]
mod cluster;
#[path = "real/fleet.rs"]
mod fleet;
#[path = "real/measure.rs"]
mod measure;
#[path = "real/metrics.rs"]
mod metrics;
#[path = "real/profile.rs"]
mod profile;
#[path = "real/reach.rs"]
mod reach;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Client;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use audit::Writes;
use cluster::{Kind, ensure_nodes, install};
use fleet::FeReach;
use measure::measure;

/// The user this operator acts as: the ServiceAccount of `deploy/`.
const OURS_USER: &str = "system:serviceaccount:doris-operator:doris-operator";
/// The namespace of the peer's ServiceAccount, bound to cluster-admin.
const PEER_NAMESPACE: &str = "doris-bench-peer";
const PEER_USER: &str = "system:serviceaccount:doris-bench-peer:doris-operator";
/// How long the writes after a restart of the operator are counted.
const RESTART_SECS: u64 = 30;
/// The annotation whose change is the no-op edit.
const TOUCHED: &str = "bench.doris.apache.org/touched";
/// The FoundationDB connection string of the separated sample's ConfigMap
/// (nothing connects to it).
const FDB: &str = "doris:fdbclusterid@127.0.0.1:4500";

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Ours,
    Peer,
}

/// An operator binary under test.
struct Contender {
    flavor: Flavor,
    name: &'static str,
    binary: PathBuf,
    user: &'static str,
}

impl Contender {
    /// Whether the operator reports cluster `c` available: this operator's
    /// Ready condition for the cluster's generation (and, separated, its
    /// health green); the peer's phase `available` of every component it
    /// reports (separated: its health green).
    fn says_available(&self, kind: Kind, c: &DynamicObject) -> bool {
        let status = &c.data["status"];
        let generation = c.metadata.generation;
        let green = status["clusterHealth"]["health"] == "green";
        match self.flavor {
            Flavor::Ours => {
                status["observedGeneration"].as_i64() == generation
                    && status["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                    && (kind == Kind::DorisCluster || green)
            }
            Flavor::Peer => match kind {
                Kind::DorisCluster => ["feStatus", "beStatus"]
                    .iter()
                    .all(|s| status[s]["componentCondition"]["phase"] == "available"),
                Kind::Disaggregated => {
                    green
                        && status["observedGeneration"]
                            .as_i64()
                            .is_none_or(|g| Some(g) == generation)
                }
            },
        }
    }
}

/// What one run measured.
struct Figures {
    operator: &'static str,
    clusters: usize,
    /// Until every cluster was available as its operator reports it, and
    /// as its pods and StatefulSets show it; `None` when not within the limit.
    reported: Option<Duration>,
    pods: Option<Duration>,
    converge: Writes,
    idle: Writes,
    noop: Writes,
    /// Writes after the operator was restarted with every cluster converged.
    restart: Writes,
    /// The restarted operator's peak RSS.
    restart_rss: f64,
    /// How long a convention change took to reach every cluster, with
    /// every FE answering and with none.
    reach: (Option<Duration>, Option<Duration>),
    cpu: f64,
    cpu_total: f64,
    rss: f64,
    /// Reconciles until converged, by the operator's own metrics.
    reconciles: Option<f64>,
}

/// Sizes from `var`: a number or a comma-separated list.
fn sizes(var: &str, default: usize) -> Vec<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|n| *n > 0)
            .collect(),
        Err(_) => vec![default],
    }
}

/// Runs the benchmark against the API server of `kubeconfig`.
pub async fn run(kubeconfig: PathBuf) {
    let text = std::fs::read_to_string(&kubeconfig).expect("BENCH_KUBECONFIG is readable");
    let parsed: kube::config::Kubeconfig = serde_norway::from_str(&text).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(parsed, &Default::default())
        .await
        .expect("a usable kubeconfig");
    let client = Client::try_from(config).expect("a client");
    let audit_path = std::env::var_os("BENCH_AUDIT_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| kubeconfig.with_file_name("audit.log"));
    let apiserver_pid = std::fs::read_to_string(kubeconfig.with_file_name("pids/kube-apiserver"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let work = std::env::temp_dir().join(format!("doris-bench-real-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();

    let mut contenders = vec![Contender {
        flavor: Flavor::Ours,
        name: "doris-operator",
        binary: std::env::var_os("BENCH_OPERATOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_doris-operator"))),
        user: OURS_USER,
    }];
    match std::env::var_os("BENCH_PEER_OPERATOR") {
        Some(peer) => contenders.push(Contender {
            flavor: Flavor::Peer,
            name: "apache/doris-operator",
            binary: PathBuf::from(peer),
            user: PEER_USER,
        }),
        None => println!(
            "the peer (apache/doris-operator) is not measured: BENCH_PEER_OPERATOR names no binary"
        ),
    }
    let runs: Vec<(Kind, usize)> = sizes("BENCH_CLUSTERS", 20)
        .into_iter()
        .map(|n| (Kind::DorisCluster, n))
        .chain(
            sizes("BENCH_DDC_CLUSTERS", 100)
                .into_iter()
                .map(|n| (Kind::Disaggregated, n)),
        )
        .collect();
    let idle: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);

    println!(
        "real control plane: {} (audit log {})",
        kubeconfig.display(),
        audit_path.display()
    );
    install(&client).await;
    let largest = |kind: Kind| {
        let n = runs
            .iter()
            .filter(|r| r.0 == kind)
            .map(|r| r.1)
            .max()
            .unwrap_or(0);
        let (cpu, mem, pods) = kind.demand();
        (cpu * n as f64, mem * n as f64, pods * n)
    };
    let (a, b) = (largest(Kind::DorisCluster), largest(Kind::Disaggregated));
    ensure_nodes(&client, a.0.max(b.0), a.1.max(b.1), a.2.max(b.2)).await;
    println!(
        "available: as each operator reports it (this operator: Ready for the cluster's \
         generation, separated also health green; the peer: feStatus/beStatus phase \
         \"available\", separated health green), and as the pods show it (every \
         StatefulSet of the cluster at its replicas, all Ready; every pod Ready); the \
         headline is the later of the two, fair to both"
    );
    let resolv = loopback_resolver(&work);
    match &resolv {
        Some(_) => println!(
            "each operator runs in a mount namespace of its own whose resolv.conf names only \
             127.0.0.1: its lookups of the clusters' Service names fail at once, on this machine"
        ),
        None => println!(
            "the operators run with this machine's resolver (no mount namespace could be made): \
             the peer's lookups of its clusters' FE Services go to it"
        ),
    }
    // The operators run as operator-runner when the control plane has it
    // (tests/realk8s/up.sh), so that the audit log records their reads.
    let runner = std::fs::read_to_string(kubeconfig.with_file_name("operator.kubeconfig"))
        .ok()
        .and_then(|t| serde_norway::from_str(&t).ok());
    if runner.is_none() {
        println!("no operator.kubeconfig beside the kubeconfig: reads are not counted");
    }
    let bench = Bench {
        resolv,
        client,
        admin: runner.unwrap_or_else(|| serde_norway::from_str(&text).expect("a kubeconfig")),
        audit_path,
        work,
        idle,
        apiserver_pid,
    };

    let mut all = Vec::new();
    for (kind, n) in runs {
        println!("\n== {n} x {} created at once", kind.what());
        for contender in &contenders {
            let figures = measure(&bench, contender, kind, n).await;
            all.push((kind, figures));
        }
    }
    println!(
        "\n== summary: seconds until all available (the later of reported and pods Ready) and \
         until pods Ready; API writes until converged, status writes apart; API reads (gets \
         and lists) until converged; all writes while idle ({idle} s) and in 15 s after a \
         no-op edit; writes in {RESTART_SECS} s after a restart of the operator; operator CPU \
         seconds until converged and in all; peak RSS, and of the restarted operator; \
         reconciles until converged (recs)"
    );
    println!(
        "{:<20} {:<22} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6}",
        "clusters",
        "operator",
        "avail s",
        "pods s",
        "writes",
        "status",
        "reads",
        "idle",
        "no-op",
        "restart",
        "CPU s",
        "CPU all",
        "RSS MiB",
        "restart",
        "recs"
    );
    for (kind, f) in &all {
        let secs =
            |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64()));
        println!(
            "{:<20} {:<22} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5} {:>6} {:>7} {:>7.2} {:>7.2} {:>8.1} {:>8.1} {:>6}",
            format!("{} x {}", f.clusters, kind.label()),
            f.operator,
            secs(f.reported.zip(f.pods).map(|(a, b)| a.max(b))),
            secs(f.pods),
            f.converge.all - f.converge.status,
            f.converge.status,
            f.converge.reads,
            f.idle.all,
            f.noop.all,
            f.restart.all,
            f.cpu,
            f.cpu_total,
            f.rss,
            f.restart_rss,
            f.reconciles.map_or("-".into(), |r| format!("{r:.0}"))
        );
    }
    for (kind, f) in &all {
        if f.reach.0.is_some() || f.reach.1.is_some() {
            let secs = |d: Option<Duration>| {
                d.map_or("not within 120 s".into(), |d| {
                    format!("{:.1} s", d.as_secs_f64())
                })
            };
            println!(
                "{} x {}, {}: a convention change reached every cluster in {} with every FE \
                 answering, {} with none",
                f.clusters,
                kind.label(),
                f.operator,
                secs(f.reach.0),
                secs(f.reach.1)
            );
        }
    }
    if contenders.len() == 1 {
        println!("the peer was not measured (set BENCH_PEER_OPERATOR to its binary)");
    }
    println!("operator logs: {}", bench.work.display());
}

/// A kubeconfig like `admin`'s that impersonates `user`.
fn impersonating(admin: &Value, user: &str, path: &Path) {
    let mut config = admin.clone();
    for u in config["users"].as_array_mut().into_iter().flatten() {
        u["user"]["as"] = json!(user);
    }
    std::fs::write(path, serde_json::to_string(&config).unwrap()).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `contender` watching `namespace`, its output in `log`; in a
/// mount namespace of its own whose `/etc/resolv.conf` is `resolv` when
/// given (and whose `/etc/hosts` is the one `fe` names, if it does).
fn start_operator(
    contender: &Contender,
    kubeconfig: &Path,
    namespace: &str,
    fe: Option<&FeReach>,
    log: &Path,
    resolv: Option<&Path>,
    metrics_port: u16,
) -> std::process::Child {
    let out = std::fs::File::create(log).unwrap();
    let mut command = match resolv {
        Some(resolv) => {
            // unshare and sh exec: the process keeps the pid measured.
            let mut c = std::process::Command::new("unshare");
            c.args(["--mount", "--", "sh", "-c"])
                .arg(
                    r#"mount --bind "$0" /etc/resolv.conf && if [ -n "$BENCH_HOSTS" ]; then mount --bind "$BENCH_HOSTS" /etc/hosts; fi && unset BENCH_HOSTS && exec "$@""#,
                )
                .arg(resolv)
                .arg(&contender.binary);
            if let Some(FeReach::Hosts(hosts)) = fe {
                c.env("BENCH_HOSTS", hosts);
            }
            c
        }
        None => std::process::Command::new(&contender.binary),
    };
    match contender.flavor {
        Flavor::Ours => {
            command
                .args(["run", "--leader-elect=false", "--namespace", namespace])
                .args(["--conventions-namespace", namespace])
                .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
                .env(
                    "RUST_LOG",
                    std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                // As the operator's image sets them (Dockerfile).
                .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
                .env("MIMALLOC_PURGE_DELAY", "0");
            if let Some(FeReach::Address(fe)) = fe {
                command.args(["--fe-address", &fe.to_string()]);
            }
        }
        Flavor::Peer => {
            command
                .arg(format!("--namespace={namespace}"))
                .arg(format!("--metrics-bind-address=127.0.0.1:{metrics_port}"))
                .arg(format!(
                    "--health-probe-bind-address=127.0.0.1:{}",
                    free_port()
                ))
                .arg("--leader-elect=false")
                .env("START_DISAGGREGATED_OPERATOR", "true");
        }
    }
    command
        .env("KUBECONFIG", kubeconfig)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", contender.binary.display()))
}

/// A resolv.conf naming only 127.0.0.1 (where no DNS server listens), if
/// a process can be given it: the clusters' Service names, which resolve
/// nowhere here, are then not asked of this machine's resolver.
fn loopback_resolver(work: &Path) -> Option<PathBuf> {
    let path = work.join("resolv.conf");
    std::fs::write(&path, "nameserver 127.0.0.1\n").ok()?;
    let works = std::process::Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/resolv.conf"#)
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    works.then_some(path)
}

/// What every run shares.
struct Bench {
    client: Client,
    /// The kubeconfig the operators start from (each then impersonates
    /// its ServiceAccount), as parsed YAML.
    admin: Value,
    audit_path: PathBuf,
    /// Where the operators' kubeconfigs and logs go.
    work: PathBuf,
    idle: u64,
    apiserver_pid: Option<u32>,
    /// The resolv.conf the operators run with.
    resolv: Option<PathBuf>,
}
