//! One run: N clusters of one kind under one operator, from their
//! creation until they converge, then idle, a no-op edit, a restart and
//! (this operator) a convention change; see the module above.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

use super::audit::{AuditLog, Writes};
use super::cluster::{Kind, Watched, register_members, wait_until};
use super::fleet::Fleet;
use super::{
    Bench, Contender, FDB, Figures, Flavor, RESTART_SECS, TOUCHED, free_port, impersonating,
    metrics, profile, reach, start_operator,
};
use crate::support::{cpu_seconds, peak_rss_mib};

/// One operator, N clusters of `kind` in a fresh namespace.
pub(super) async fn measure(bench: &Bench, contender: &Contender, kind: Kind, n: usize) -> Figures {
    let (client, work, idle) = (&bench.client, &bench.work, bench.idle);
    let (audit_path, apiserver_pid) = (&bench.audit_path, bench.apiserver_pid);
    let short = match (contender.flavor, kind) {
        (Flavor::Ours, Kind::DorisCluster) => "ours-dc",
        (Flavor::Ours, Kind::Disaggregated) => "ours-ddc",
        (Flavor::Peer, Kind::DorisCluster) => "peer-dc",
        (Flavor::Peer, Kind::Disaggregated) => "peer-ddc",
    };
    let namespace = format!("bench-{short}{n}-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .expect("namespace");
    if kind == Kind::Disaggregated {
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), &namespace);
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "test-cluster-config"},
                                           "data": {"cluster-file": FDB}}))
            .unwrap(),
        )
        .await
        .expect("FoundationDB ConfigMap");
    }
    let watched = Watched::start(client, &namespace, kind);
    let names: Vec<String> = (0..n).map(|i| format!("c{i:03}")).collect();
    let (fleet, _members) = if contender.flavor == Flavor::Ours {
        let per_cluster = bench.resolv.is_some();
        let fleet = Arc::new(Fleet::start(kind, &names, &namespace, work, per_cluster).await);
        let members = register_members(&watched, fleet.clone());
        (Some(fleet), Some(members))
    } else {
        (None, None)
    };
    let kubeconfig = work.join(format!("{short}{n}.kubeconfig"));
    impersonating(&bench.admin, contender.user, &kubeconfig);
    let log = work.join(format!("{short}{n}.log"));
    let mut metrics_port = free_port();
    // The operator, reaching the clusters' FE simulators, logging to `log`.
    let start_with_fleet = |log: &std::path::Path, port: u16| {
        start_operator(
            contender,
            &kubeconfig,
            &namespace,
            fleet.as_ref().map(|f| f.reach()),
            log,
            bench.resolv.as_deref(),
            port,
        )
    };
    let mut process = start_with_fleet(&log, metrics_port);
    let mut pid = process.id();
    // Started and its caches filled (an empty namespace): ready to work.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &kind.resource());
    let mut audit = AuditLog::from_end(audit_path.to_path_buf()).ok();
    // With BENCH_RESTART_MIDWAY set, the operator is restarted once half
    // the clusters are available (an upgrade or a new leader mid-way); the
    // figures then cover both processes.
    let midway = std::env::var_os("BENCH_RESTART_MIDWAY").is_some();
    let mut restarted_midway = None;
    let mut carried = Carried::default();
    let profile = if midway {
        None
    } else {
        profile::Profile::start(pid, &format!("{short}{n}"))
    };
    let mut cpu_before = cpu_seconds(pid);
    let mut reconciles_before = metrics::reconciles(metrics_port);
    let apiserver_before = apiserver_pid.map(cpu_seconds);
    let start = Instant::now();
    futures::stream::iter(&names)
        .for_each_concurrent(16, |name| {
            let api = api.clone();
            let object: DynamicObject =
                serde_json::from_value(kind.manifest(name, &namespace)).unwrap();
            async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
            }
        })
        .await;
    let created = start.elapsed();
    let limit = Duration::from_secs(180 + 3 * n as u64);
    let (mut reported, mut pods) = (None, None);
    while start.elapsed() < limit && (reported.is_none() || pods.is_none()) {
        let clusters = watched.clusters.state();
        let available = clusters
            .iter()
            .filter(|c| contender.says_available(kind, c))
            .count();
        if reported.is_none() && available == n {
            reported = Some(start.elapsed());
        }
        if pods.is_none() && watched.ready_by_pods(kind).len() == n {
            pods = Some(start.elapsed());
        }
        if midway && restarted_midway.is_none() && available * 2 >= n {
            carried.cpu += cpu_seconds(pid) - cpu_before;
            carried.rss = carried.rss.max(peak_rss_mib(pid));
            carried.reconciles +=
                metrics::reconciles(metrics_port).unwrap_or(0.0) - reconciles_before.unwrap_or(0.0);
            let _ = process.kill();
            let _ = process.wait();
            metrics_port = free_port();
            process = start_with_fleet(&work.join(format!("{short}{n}-midway.log")), metrics_port);
            pid = process.id();
            cpu_before = cpu_seconds(pid);
            reconciles_before = Some(0.0);
            restarted_midway = Some((start.elapsed(), available));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = start.elapsed();
    // Writes just after the last cluster turned available belong to the
    // bring-up too: let them land before counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let counted = audit.is_some();
    let mut take = |user: &str| {
        audit
            .as_mut()
            .map(|a| Writes::of(&a.take(), user))
            .unwrap_or_default()
    };
    let converge = take(contender.user);
    let cpu = carried.cpu + cpu_seconds(pid) - cpu_before;
    let apiserver_cpu = apiserver_pid
        .zip(apiserver_before)
        .map(|(p, before)| cpu_seconds(p) - before);
    let rss_converged = carried.rss.max(peak_rss_mib(pid));
    let reconciles = metrics::reconciles(metrics_port)
        .map(|after| carried.reconciles + after - reconciles_before.unwrap_or(0.0));
    if let Some(profile) = profile {
        profile.finish(25);
    }

    println!("-- {} ({})", contender.name, namespace);
    let secs = |d: Option<Duration>| {
        d.map_or(format!("not within {:.0} s", limit.as_secs_f64()), |d| {
            format!("{:.2} s", d.as_secs_f64())
        })
    };
    println!(
        "  all available:   {}  (operator reports it: {}; pods Ready, StatefulSets at replicas: {}; created in {:.2} s)",
        secs(reported.zip(pods).map(|(a, b)| a.max(b))),
        secs(reported),
        secs(pods),
        created.as_secs_f64()
    );
    if let Some((at, available)) = restarted_midway {
        println!(
            "  restarted mid-way after {:.1} s, {available} of {n} clusters available then \
             (the figures below cover both processes)",
            at.as_secs_f64()
        );
    }
    if reported.is_none() || pods.is_none() {
        let clusters = watched.clusters.state();
        let available = clusters
            .iter()
            .filter(|c| contender.says_available(kind, c))
            .count();
        let pods_ready = watched.ready_by_pods(kind).len();
        println!(
            "  at the limit: {available} of {n} reported available, {pods_ready} of {n} with their pods Ready"
        );
        if let Some(c) = clusters.iter().find(|c| !contender.says_available(kind, c)) {
            println!("  {} status: {}", c.name_any(), c.data["status"]);
        }
    }
    if !counted {
        println!(
            "  no audit log at {}: writes not counted",
            audit_path.display()
        );
    }
    let per = |w: &Writes| format!("{:.1}", (w.all - w.status) as f64 / n as f64);
    println!("  API writes until converged: {}", converge.line());
    println!(
        "    per cluster, status writes apart: {}   (until {:.1} s + 5 s)",
        per(&converge),
        converged.as_secs_f64()
    );
    println!(
        "  operator CPU:    {cpu:.2} s until converged ({:.3} s per cluster){}",
        cpu / n as f64,
        apiserver_cpu
            .map(|c| format!("; kube-apiserver {c:.1} s"))
            .unwrap_or_default()
    );
    println!("  operator peak RSS: {rss_converged:.1} MiB");
    println!(
        "  reconciles until converged: {}",
        reconciles.map_or("(its metrics did not answer)".into(), |r| format!(
            "{r:.0} ({:.1} per cluster)",
            r / n as f64
        ))
    );

    // Idle: nothing changes, nothing should be written.
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let idle_writes = take(contender.user);
    println!("  writes while idle ({idle} s): {}", idle_writes.line());

    // A no-op edit of each cluster: an annotation nothing plans from.
    for name in &names {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {TOUCHED: "yes"}}})),
        )
        .await
        .expect("annotated");
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let noop = take(contender.user);
    println!(
        "  writes after a no-op edit of each cluster (15 s): {}",
        noop.line()
    );
    let cpu_total = carried.cpu + cpu_seconds(pid) - cpu_before;
    let rss = carried.rss.max(peak_rss_mib(pid));
    println!("  operator CPU in all: {cpu_total:.2} s; peak RSS {rss:.1} MiB");

    // A restart with every cluster converged (an upgrade, a new leader):
    // nothing to write.
    let _ = process.kill();
    let _ = process.wait();
    let _ = take(contender.user);
    let restarted = Instant::now();
    let restart_port = free_port();
    process = start_with_fleet(
        &work.join(format!("{short}{n}-restarted.log")),
        restart_port,
    );
    // When the restarted operator first reconciled, and when it had
    // reconciled every cluster (this operator: a cluster it reconciled has
    // its health in the metrics; the peer: as many reconciles as clusters).
    let (mut first, mut all) = (None, None);
    let restart_window = Duration::from_secs(RESTART_SECS);
    while restarted.elapsed() < restart_window && all.is_none() {
        let reconciled = metrics::reconciled(restart_port, contender.flavor == Flavor::Ours);
        if first.is_none() && reconciled.0 > 0.0 {
            first = Some(restarted.elapsed());
        }
        if reconciled.1 >= n {
            all = Some(restarted.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(restart_window.saturating_sub(restarted.elapsed())).await;
    let restart = take(contender.user);
    let within = |d: Option<Duration>| {
        d.map_or(format!("not within {RESTART_SECS} s"), |d| {
            format!("{:.2} s", d.as_secs_f64())
        })
    };
    println!(
        "  restarted with every cluster converged: first reconcile after {}, every cluster \
         reconciled after {}",
        within(first),
        within(all)
    );
    let restart_rss = peak_rss_mib(process.id());
    println!(
        "  after a restart ({:.0} s): {}; peak RSS {restart_rss:.1} MiB",
        restarted.elapsed().as_secs_f64(),
        restart.line()
    );
    let mut reach = (None, None);
    if contender.flavor == Flavor::Ours {
        // A convention change, every FE answering.
        let limit = Duration::from_secs(120);
        let (took, carried, all) =
            reach::convention_change(client, &namespace, "answering", limit).await;
        let secs = |d: Option<Duration>| {
            d.map_or(format!("not within {} s", limit.as_secs()), |d| {
                format!("{:.2} s", d.as_secs_f64())
            })
        };
        println!(
            "  a convention change reached every cluster in {} ({carried} of {all} Services)",
            secs(took)
        );
        reach.0 = took;
        // The same while no FE answers: each attempt waits out the connect
        // timeout on a port that takes connections and never speaks.
        let _ = process.kill();
        let _ = process.wait();
        let (silent_reach, silent) = fleet.as_ref().expect("FE simulators").silent();
        process = start_operator(
            contender,
            &kubeconfig,
            &namespace,
            Some(&silent_reach),
            &work.join(format!("{short}{n}-fe-silent.log")),
            bench.resolv.as_deref(),
            free_port(),
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        let (took, carried, all) =
            reach::convention_change(client, &namespace, "fe-silent", limit).await;
        println!(
            "  with no FE answering (30 s after a start): reached every cluster in {} \
             ({carried} of {all} Services)",
            secs(took)
        );
        reach.1 = took;
        drop(silent);
    }
    if contender.flavor == Flavor::Peer {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let sql = text
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("mysql") || l.contains("dial tcp") || l.contains("no such host")
            })
            .count();
        println!(
            "  the peer's MySQL connections to its clusters' FEs fail here (their Service names do \
             not resolve, no FE runs): {sql} lines of its log tell of it"
        );
    }

    // Clusters deleted while their operator runs (it may hold finalizers),
    // then the namespace.
    let _ = api
        .delete_collection(&DeleteParams::background(), &Default::default())
        .await;
    wait_until(Duration::from_secs(120), || async {
        api.list(&Default::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await;
    let _ = process.kill();
    let _ = process.wait();
    let _ = std::fs::remove_file(&kubeconfig);
    for c in api
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let _ = api
            .patch(
                &c.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    drop(watched);
    let _ = namespaces
        .delete(&namespace, &DeleteParams::background())
        .await;
    let gone = Instant::now();
    let deleted = wait_until(Duration::from_secs(600), || async {
        namespaces
            .get_opt(&namespace)
            .await
            .is_ok_and(|n| n.is_none())
    })
    .await;
    println!(
        "  namespace {} in {:.1} s",
        if deleted {
            "deleted"
        } else {
            "not yet deleted"
        },
        gone.elapsed().as_secs_f64()
    );
    Figures {
        operator: contender.name,
        clusters: n,
        reported,
        pods,
        converge,
        idle: idle_writes,
        noop,
        restart,
        restart_rss,
        reach,
        cpu,
        cpu_total,
        rss,
        reconciles,
    }
}

/// What an operator restarted mid-way took before its restart.
#[derive(Default)]
struct Carried {
    cpu: f64,
    rss: f64,
    reconciles: f64,
}
