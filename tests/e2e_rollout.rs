//! Rollouts end to end: the operator restarts outdated pods itself, in the
//! order restart.rhai gives, draining BEs through the FE, and resumes after
//! its own restart without restarting any pod twice.
//!
//! The FE is the simulator in tests/fesim; the test plays the BE and FE
//! entrypoints, registering each node in it when its pod is Ready and
//! marking it dead while its pod is gone or not Ready, under its FQDN (the
//! images' `HOST_TYPE=FQDN`, `enable_fqdn_mode = true`) or its pod's IP
//! (`enable_fqdn_mode = false`, Doris's default).

mod apiserver;
mod besim;
mod env;
mod fesim;
mod rollout_nodes;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::conventions::reload::SET_KEY;
use doris_operator::crd::{DorisCluster, RolloutStatus};
use env::{Env, condition, eventually, wait_ready};
use fesim::{FeSim, FeSimConfig, SimFrontend};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CLUSTER: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
  annotations:
    doris.selectdb.com/drain-seconds: "1"
spec:
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
  beSpec:
    replicas: 3
    image: apache/doris:be-2.1.8
"#;

use doris_operator::controller::rollout::is_ready;
use rollout_nodes::{BE_HEARTBEAT_PORT, FE_EDIT_LOG_PORT, History, Hosts, Nodes, pod_ip};

fn fqdn(env: &Env, pod: &str) -> String {
    let sts = pod.rsplit_once('-').map(|(s, _)| s).unwrap_or(pod);
    format!("{pod}.{sts}-internal.{}.svc.cluster.local", env.namespace)
}

/// An FE simulator whose FE group is the cluster's three FE pods, with
/// `master` the master, and an operator that reaches it.
async fn start(test: &str, master: usize) -> (Env, Arc<FeSim>) {
    let mut env = Env::without_operator(test).await;
    let mut frontends: Vec<SimFrontend> = (0..3)
        .map(|i| {
            SimFrontend::new(
                &fqdn(&env, &format!("doris-fe-{i}")),
                FE_EDIT_LOG_PORT,
                "FOLLOWER",
            )
        })
        .collect();
    frontends.rotate_left(master);
    let sim = Arc::new(
        FeSim::start(FeSimConfig {
            frontends,
            ..Default::default()
        })
        .await,
    );
    let addr = sim.addr();
    env.fe_resolver = Some(Arc::new(move |_, _| {
        Some(("127.0.0.1".to_string(), addr.port()))
    }));
    (env, sim)
}

async fn patch_cluster(env: &Env, patch: Value) {
    env.api::<DorisCluster>()
        .patch("doris", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// Waits for every BE to be registered and alive.
async fn backends_up(sim: &FeSim, count: usize) {
    eventually("BEs registered", 20, || async {
        (sim.backends().iter().filter(|b| b.alive).count() == count).then_some(())
    })
    .await;
}

/// Waits until every pod runs `images` (by component) and is Ready, the
/// rollout is gone from status and the cluster is Ready; returns every
/// rollout status seen on the way.
/// Starts the operator, creates `cluster` and waits for it to be Ready and
/// its BEs to be listed by the FE; returns the record of pod changes.
async fn launch(env: &mut Env, sim: &Arc<FeSim>, cluster: &str) -> Nodes {
    env.start_operator();
    env.create_cluster(cluster).await;
    wait_ready(env, "doris").await;
    let nodes = Nodes::start(env, sim.clone());
    backends_up(sim, 3).await;
    nodes
}

/// Upgrades FE and BE images and waits for the rollout to finish; returns
/// every rollout status seen on the way.
async fn upgrade(env: &Env) -> Vec<RolloutStatus> {
    patch_cluster(
        env,
        json!({"spec": {"feSpec": {"image": "apache/doris:fe-2.1.9"},
                        "beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    rolled_out(
        env,
        &[
            ("fe", "apache/doris:fe-2.1.9"),
            ("be", "apache/doris:be-2.1.9"),
        ],
        60,
    )
    .await
}

async fn rolled_out(env: &Env, images: &[(&str, &str)], secs: u64) -> Vec<RolloutStatus> {
    let seen = Mutex::new(Vec::<RolloutStatus>::new());
    let pods = env.api::<Pod>();
    let clusters = env.api::<DorisCluster>();
    eventually("the rollout to finish", secs, || async {
        let c = clusters.get("doris").await.ok()?;
        if let Some(r) = c.status.as_ref().and_then(|s| s.rollout.clone()) {
            let mut seen = seen.lock().unwrap();
            if seen.last() != Some(&r) {
                seen.push(r);
            }
            return None;
        }
        let list = pods.list(&Default::default()).await.ok()?;
        let done = list.items.iter().all(|p| {
            let component = p.labels().get("app.kubernetes.io/component").cloned();
            let image = p.spec.as_ref().unwrap().containers[0].image.clone();
            is_ready(p)
                && images
                    .iter()
                    .filter(|(c, _)| component.as_deref() == Some(c))
                    .all(|(_, i)| image.as_deref() == Some(i))
        }) && list.items.len() == 6;
        (done && condition(&c, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await;
    seen.into_inner().unwrap()
}

/// Each deletion comes after the pod deleted before it was back Ready.
fn one_at_a_time(history: &History) {
    let mut back: BTreeSet<&str> = BTreeSet::new();
    let mut last: Option<&str> = None;
    for (what, pod) in &history.log {
        match *what {
            "ready" => {
                back.insert(pod);
            }
            _ => {
                if let Some(prev) = last {
                    assert!(
                        back.contains(prev),
                        "{pod} went before {prev} was back: {:?}",
                        history.log
                    );
                }
                back.remove(pod.as_str());
                last = Some(pod);
            }
        }
    }
}

async fn events(env: &Env, reason: &str) -> Vec<String> {
    env::events(env, reason)
        .await
        .into_iter()
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_restarts_bes_first_then_fes_with_the_master_last_one_at_a_time() {
    // doris-fe-1 is the master: it must go last although fe-0 has the
    // lowest ordinal.
    let (mut env, sim) = start("upgrade", 1).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    let seen = upgrade(&env).await;

    let history = nodes.history();
    assert_eq!(
        history.deletions(),
        [
            "doris-be-2",
            "doris-be-1",
            "doris-be-0",
            "doris-fe-2",
            "doris-fe-0",
            "doris-fe-1"
        ]
    );
    one_at_a_time(&history);
    for be in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_eq!(
            history.drained_when_deleted.get(be),
            Some(&vec![true]),
            "{be} stopped getting queries and loads before it went"
        );
    }
    assert!(
        sim.backends()
            .iter()
            .all(|b| !b.query_disabled && !b.load_disabled && b.alive),
        "every BE gets queries and loads again: {:?}",
        sim.backends()
    );
    // Status showed the rollout as it went.
    let be = seen
        .iter()
        .find(|r| r.component == "be")
        .expect("a BE step in status");
    assert_eq!(be.reason, "upgrade");
    assert_eq!(be.total, 3);
    assert_eq!(be.wait_for, ["pod_ready", "fe_reports_alive"]);
    assert!(seen.iter().any(|r| r.pods == ["doris-fe-1"]), "{seen:?}");
    assert!(!be.target_revision.is_empty());
    // An Event per step.
    let steps = events(&env, "RolloutStep").await;
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert_eq!(events(&env, "RolloutComplete").await.len(), 1);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_listed_by_pod_ip_are_waited_for_and_each_be_is_drained() {
    // doris-fe-1 is the master, known to the operator only by its IP.
    let (mut env, sim) = start("byip", 1).await;
    env.start_operator();
    env.create_cluster(CLUSTER).await;
    wait_ready(&env, "doris").await;
    let nodes = Nodes::start_with(&env, sim.clone(), Hosts::PodIp);
    backends_up(&sim, 3).await;
    let pods = env.api::<Pod>();
    let ips: BTreeSet<String> = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(pod_ip)
        .collect();
    assert_eq!(ips.len(), 6, "each pod has an IP of its own: {ips:?}");
    eventually("the FEs listed by IP", 20, || async {
        sim.frontends()
            .iter()
            .all(|f| ips.contains(&f.host))
            .then_some(())
    })
    .await;
    assert!(
        sim.backends().iter().all(|b| ips.contains(&b.host)),
        "{:?}",
        sim.backends()
    );

    let seen = upgrade(&env).await;

    let history = nodes.history();
    assert_eq!(
        history.deletions(),
        [
            "doris-be-2",
            "doris-be-1",
            "doris-be-0",
            "doris-fe-2",
            "doris-fe-0",
            "doris-fe-1"
        ],
        "the master, found by its IP, last"
    );
    one_at_a_time(&history);
    for be in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_eq!(
            history.drained_when_deleted.get(be),
            Some(&vec![true]),
            "{be} stopped getting queries and loads before it went"
        );
    }
    let be = seen
        .iter()
        .find(|r| r.component == "be")
        .expect("a BE step");
    assert_eq!(be.wait_for, ["pod_ready", "fe_reports_alive"]);
    // Each BE, at the IP its pod has now, is alive and gets queries and
    // loads again.
    for pod in pods.list(&Default::default()).await.unwrap().items {
        if !pod.name_any().contains("-be-") {
            continue;
        }
        let ip = pod_ip(&pod).expect("an IP");
        let listed = sim.backend(&ip, BE_HEARTBEAT_PORT);
        assert!(
            listed
                .as_ref()
                .is_some_and(|b| b.alive && !b.query_disabled && !b.load_disabled),
            "{}: {listed:?}",
            pod.name_any()
        );
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_change_restarts_only_that_component() {
    let (mut env, sim) = start("config", 0).await;
    // The operator asks a BE whether mem_limit may change at run time.
    let be = besim::BeSim::start().await;
    let be_addr = be.addr().to_string();
    env.be_resolver = Some(Arc::new(move |_| Some(be_addr.clone())));
    env.start_operator();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "be-conf"},
        "data": {"be.conf": "mem_limit = 80%\n"},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let cluster = CLUSTER
        .replace("spec:\n", "spec:\n  enableRestartWhenConfigChange: true\n")
        .replace(
            "    image: apache/doris:be-2.1.8\n",
            "    image: apache/doris:be-2.1.8\n    configMapInfo:\n      configMapName: be-conf\n",
        );
    env.create_cluster(&cluster).await;
    wait_ready(&env, "doris").await;
    let nodes = Nodes::start(&env, sim.clone());
    backends_up(&sim, 3).await;

    env.api::<ConfigMap>()
        .patch(
            "be-conf",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"be.conf": "mem_limit = 70%\n"}})),
        )
        .await
        .unwrap();
    // The restart begins once the new configuration is planned.
    eventually("the BE restart to begin", 20, || async {
        (!nodes.history().deletions().is_empty()).then_some(())
    })
    .await;
    let seen = rolled_out(&env, &[], 60).await;

    let history = nodes.history();
    assert_eq!(
        history.deletions(),
        ["doris-be-2", "doris-be-1", "doris-be-0"]
    );
    for fe in ["doris-fe-0", "doris-fe-1", "doris-fe-2"] {
        assert_eq!(history.recreations_of(fe), 0, "{fe} kept running");
    }
    assert!(seen.iter().all(|r| r.reason == "config"), "{seen:?}");
    env.finish().await;
}

/// Holding a pod back needs the emulator's pod driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_does_not_come_back_halts_the_rollout_and_degrades_the_cluster() {
    let (mut env, sim) = start("stuck", 0).await;
    env.start_operator();
    let cluster = CLUSTER.replace(
        "  annotations:\n",
        "  annotations:\n    doris.selectdb.com/rollout-step-timeout-seconds: \"2\"\n",
    );
    env.create_cluster(&cluster).await;
    wait_ready(&env, "doris").await;
    let Some(driver) = env.driver_only("it holds a pod back or crashes it") else {
        return env.finish().await;
    };
    let nodes = Nodes::start(&env, sim.clone());
    backends_up(&sim, 3).await;

    driver.hold_next("doris-be-2");
    patch_cluster(
        &env,
        json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    let api = env.api::<DorisCluster>();
    let degraded = eventually("Degraded", 30, || async {
        let c = api.get("doris").await.ok()?;
        let d = c
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True")?;
        Some(d)
    })
    .await;
    assert_eq!(degraded.reason, "RolloutStuck");
    assert!(
        degraded.message.contains("doris-be-2"),
        "{}",
        degraded.message
    );
    // It stays halted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(nodes.history().deletions(), ["doris-be-2"]);
    let status = api.get("doris").await.unwrap().status.unwrap();
    let rollout = status.rollout.expect("the rollout is shown");
    assert_eq!(rollout.pods, ["doris-be-2"]);
    assert!(rollout.waiting.contains("halted"), "{}", rollout.waiting);
    for be in ["doris-be-0", "doris-be-1"] {
        let b = sim.backend(&fqdn(&env, be), BE_HEARTBEAT_PORT).unwrap();
        assert!(!b.query_disabled, "{be} still gets queries");
    }
    assert!(!events(&env, "RolloutStuck").await.is_empty());

    // Once the pod comes up the rollout goes on.
    driver.release("doris-be-2");
    rolled_out(&env, &[("be", "apache/doris:be-2.1.9")], 60).await;
    assert_eq!(
        nodes.history().deletions(),
        ["doris-be-2", "doris-be-1", "doris-be-0"]
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_resumes_the_rollout_without_restarting_a_pod_twice() {
    let (mut env, sim) = start("resume", 0).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    patch_cluster(
        &env,
        json!({"spec": {"feSpec": {"image": "apache/doris:fe-2.1.9"},
                        "beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    eventually("the first BE restarted", 30, || async {
        (nodes.history().deletions().len() == 1).then_some(())
    })
    .await;
    env.stop_operator().await;

    // A paused rollout does not move, even with a new operator.
    patch_cluster(
        &env,
        json!({"metadata": {"annotations": {"doris.selectdb.com/rollout-paused": "true"}}}),
    )
    .await;
    env.start_operator();
    let api = env.api::<DorisCluster>();
    eventually("the pause in status", 20, || async {
        let r = api.get("doris").await.ok()?.status?.rollout?;
        r.waiting.contains("rollout-paused").then_some(())
    })
    .await;
    let before = nodes.history().deletions().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(nodes.history().deletions().len(), before, "paused");

    env.stop_operator().await;
    patch_cluster(
        &env,
        json!({"metadata": {"annotations": {"doris.selectdb.com/rollout-paused": null}}}),
    )
    .await;
    env.start_operator();
    rolled_out(
        &env,
        &[
            ("fe", "apache/doris:fe-2.1.9"),
            ("be", "apache/doris:be-2.1.9"),
        ],
        60,
    )
    .await;
    let history = nodes.history();
    for i in 0..3 {
        for c in ["fe", "be"] {
            let pod = format!("doris-{c}-{i}");
            assert_eq!(history.deletions_of(&pod), 1, "{pod}: {:?}", history.log);
            assert_eq!(history.recreations_of(&pod), 1, "{pod}");
        }
    }
    one_at_a_time(&history);
    assert!(
        sim.backends()
            .iter()
            .all(|b| !b.query_disabled && !b.load_disabled)
    );
    env.finish().await;
}

const FE_FIRST: &str = r#"
fn restart_order(ctx) {
    let steps = [];
    for p in ctx.pods.filter(|p| p.component == "fe") {
        steps.push(#{ pods: [p.pod], wait_for: ["pod_ready"], drain_seconds: 0 });
    }
    let be = ctx.pods.filter(|p| p.component == "be");
    be.sort(|a, b| a.ordinal - b.ordinal);
    let i = 0;
    while i < be.len() {
        let batch = [be[i].pod];
        if i + 1 < be.len() { batch.push(be[i + 1].pod); }
        steps.push(#{ pods: batch, wait_for: ["pod_ready", "fe_reports_alive"], drain_seconds: 0 });
        i += 2;
    }
    for p in ctx.pods.filter(|p| p.component != "fe" && p.component != "be") {
        steps.push(#{ pods: [p.pod], wait_for: ["pod_ready"], drain_seconds: 0 });
    }
    steps
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_policy_from_a_conventions_config_map_is_obeyed() {
    let (mut env, sim) = start("custom", 0).await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "restart-fe-first", "labels": {SET_KEY: "default"}},
        "data": {"restart.rhai": FE_FIRST},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    let seen = upgrade(&env).await;
    let history = nodes.history();
    let deletions = history.deletions();
    assert_eq!(
        deletions[..3],
        ["doris-fe-0", "doris-fe-1", "doris-fe-2"],
        "FEs first, one at a time"
    );
    assert_eq!(deletions.len(), 6, "{deletions:?}");
    // be-0 and be-1 go together: both are gone before either is back.
    let position = |what: &str, pod: &str| {
        history
            .log
            .iter()
            .position(|(w, p)| *w == what && p == pod)
            .unwrap_or_else(|| panic!("{what} {pod}: {:?}", history.log))
    };
    let last_ready = |pod: &str| {
        history
            .log
            .iter()
            .rposition(|(w, p)| *w == "ready" && p == pod)
            .unwrap()
    };
    let first_back = last_ready("doris-be-0").min(last_ready("doris-be-1"));
    assert!(position("deleted", "doris-be-0") < first_back);
    assert!(position("deleted", "doris-be-1") < first_back);
    assert!(position("deleted", "doris-be-2") > first_back);
    assert!(
        seen.iter().any(|r| r.pods == ["doris-be-0", "doris-be-1"]),
        "{seen:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fe_that_does_not_answer_delays_the_rollout() {
    let (mut env, sim) = start("fe-down", 0).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    sim.set_down(true);
    patch_cluster(
        &env,
        json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    let api = env.api::<DorisCluster>();
    let rollout = eventually("the wait for the FE in status", 20, || async {
        let r = api.get("doris").await.ok()?.status?.rollout?;
        r.waiting.contains("the FE").then_some(r)
    })
    .await;
    assert_eq!(rollout.pods, ["doris-be-2"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        nodes.history().deletions().is_empty(),
        "no BE goes before the FE stopped its queries"
    );

    sim.set_down(false);
    rolled_out(&env, &[("be", "apache/doris:be-2.1.9")], 60).await;
    let history = nodes.history();
    assert_eq!(
        history.deletions(),
        ["doris-be-2", "doris-be-1", "doris-be-0"]
    );
    for be in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_eq!(history.drained_when_deleted.get(be), Some(&vec![true]));
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_during_a_rollout_is_folded_in() {
    let (mut env, sim) = start("fold", 0).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    patch_cluster(
        &env,
        json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    eventually("the first BE back on 2.1.9", 30, || async {
        let h = nodes.history();
        let gone = h
            .log
            .iter()
            .position(|e| *e == ("deleted", "doris-be-2".into()))?;
        h.log[gone..]
            .contains(&("ready", "doris-be-2".into()))
            .then_some(())
    })
    .await;
    patch_cluster(
        &env,
        json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.10"}}}),
    )
    .await;
    rolled_out(&env, &[("be", "apache/doris:be-2.1.10")], 60).await;
    let history = nodes.history();
    one_at_a_time(&history);
    // Pods not yet restarted go straight to the newest image; the one
    // restarted for 2.1.9 restarts once more.
    for be in ["doris-be-0", "doris-be-1"] {
        assert_eq!(history.deletions_of(be), 1, "{be}: {:?}", history.log);
    }
    assert_eq!(history.deletions_of("doris-be-2"), 2, "{:?}", history.log);
    for fe in ["doris-fe-0", "doris-fe-1", "doris-fe-2"] {
        assert_eq!(history.deletions_of(fe), 0);
    }
    env.finish().await;
}

/// Crashing a pod needs the emulator's pod driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_pod_that_is_down_restarts_first() {
    let (mut env, sim) = start("down-first", 0).await;
    env.start_operator();
    env.create_cluster(CLUSTER).await;
    wait_ready(&env, "doris").await;
    let Some(driver) = env.driver_only("it holds a pod back or crashes it") else {
        return env.finish().await;
    };
    let nodes = Nodes::start(&env, sim.clone());
    backends_up(&sim, 3).await;

    // doris-be-0 crashes until the new image is in (the last in the
    // default order otherwise).
    driver.fail("doris-be-0");
    patch_cluster(
        &env,
        json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.9"}}}),
    )
    .await;
    eventually("the crashing BE restarted", 30, || async {
        (!nodes.history().deletions().is_empty()).then_some(())
    })
    .await;
    driver.release("doris-be-0");
    rolled_out(&env, &[("be", "apache/doris:be-2.1.9")], 60).await;
    assert_eq!(
        nodes.history().deletions(),
        ["doris-be-0", "doris-be-2", "doris-be-1"]
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_request_restarts_that_component_master_last() {
    let (mut env, sim) = start("requested", 0).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    patch_cluster(
        &env,
        json!({"metadata": {"annotations": {"apache.doris.fe/restartedAt": "2026-11-25T12:00:00Z"}}}),
    )
    .await;
    eventually("the FE restart to begin", 20, || async {
        (!nodes.history().deletions().is_empty()).then_some(())
    })
    .await;
    let seen = rolled_out(&env, &[], 60).await;
    assert_eq!(
        nodes.history().deletions(),
        ["doris-fe-2", "doris-fe-1", "doris-fe-0"]
    );
    assert!(seen.iter().all(|r| r.reason == "requested"), "{seen:?}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convention_change_of_the_pod_template_rolls_every_component() {
    let (mut env, sim) = start("conventions", 0).await;
    let nodes = launch(&mut env, &sim, CLUSTER).await;

    let debug_line = "    if debugging { out[\"selectdb.com.doris/runmode\"] = \"debug\"; }";
    let shape = include_str!("../policies/shape.workload.rhai");
    assert!(shape.contains(debug_line));
    let shape = shape.replace(
        debug_line,
        &format!("    out[\"example.com/owner\"] = \"platform\";\n{debug_line}"),
    );
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "pod-owner", "labels": {SET_KEY: "default"}},
        "data": {"shape.workload.rhai": shape},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    eventually("the rollout to begin", 20, || async {
        (!nodes.history().deletions().is_empty()).then_some(())
    })
    .await;
    let seen = rolled_out(&env, &[], 60).await;
    assert_eq!(
        nodes.history().deletions(),
        [
            "doris-be-2",
            "doris-be-1",
            "doris-be-0",
            "doris-fe-2",
            "doris-fe-1",
            "doris-fe-0"
        ]
    );
    assert!(seen.iter().all(|r| r.reason == "conventions"), "{seen:?}");
    let pods = env.api::<Pod>().list(&Default::default()).await.unwrap();
    assert!(
        pods.items.iter().all(
            |p| p.annotations().get("example.com/owner").map(String::as_str) == Some("platform")
        )
    );
    env.finish().await;
}
