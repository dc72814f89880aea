//! An operator restart (a new leader, an upgrade, a crash) with every
//! cluster converged costs nothing: the new process reads its caches before
//! it reconciles, finds nothing to change, and writes nothing — no object,
//! no status, no Event.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::time::Duration;

use env::reads::{self, Mark};
use env::{DDC_SAMPLE, Env, SAMPLE, eventually, wait_ddc_ready, wait_ready};
use fesim::FeSimConfig;
use members::{MemberDriver, fqdn_via};

/// Restarts the operator of `env` and returns its writes in the test's
/// namespace from the moment it starts until `clusters` reconciles have
/// run and a few seconds more have passed.
async fn writes_of_a_restart(env: &mut Env, clusters: u64) -> (Mark, Vec<String>) {
    env.stop_operator().await;
    let from = reads::mark(env);
    env.start_operator();
    let metrics = env.metrics.clone();
    eventually("the restarted operator's first reconciles", 60, || async {
        (metrics.reconciles.get() >= clusters).then_some(())
    })
    .await;
    // Whatever the first reconciles set going (a requeue, a watch event of
    // their own write) has time to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes = reads::writes_since(env, &from);
    (from, writes)
}

/// Once the operator has stopped writing to the test's cluster, a restart
/// of it writes nothing.
async fn a_restart_writes_nothing(env: &mut Env) {
    reads::settled(env, 5, 120).await;
    let (from, writes) = writes_of_a_restart(env, 1).await;
    if !reads::counted(&from) {
        eprintln!("writes are not counted here: no emulator and no audit log named");
    }
    assert!(
        writes.is_empty(),
        "the restarted operator wrote to a converged cluster: {writes:#?}"
    );
}

/// A DorisCluster whose FE lists every node, and a storage-compute
/// separated cluster, both converged: restarting the operator writes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_converged_clusters_writes_nothing() {
    let mut env = Env::without_operator("restart-converged").await;
    let sim = members::simulated_fe(&mut env, FeSimConfig::default(), "doris").await;
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 3);
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    members::members_synced(&env, "doris").await;
    a_restart_writes_nothing(&mut env).await;
    wait_ready(&env, "doris").await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_converged_disaggregated_cluster_writes_nothing() {
    let mut env = Env::without_operator("restart-ddc").await;
    let master = fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let sim = members::simulated_fe_at(&mut env, FeSimConfig::cloud(), &master).await;
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 1);
    env.create_ddc(DDC_SAMPLE).await;
    wait_ddc_ready(&env, "ddc").await;
    a_restart_writes_nothing(&mut env).await;
    env.finish().await;
}

/// A cluster whose FE does not answer is as converged as it can be: its
/// status says so, and a restart does not write it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_cluster_whose_fe_does_not_answer_writes_nothing() {
    let mut env = Env::start("restart-no-fe").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    // Converged as far as it can be: status says the FE does not answer
    // (written after an attempt made once the cluster is Ready).
    let clusters = env.api::<doris_operator::crd::DorisCluster>();
    eventually("status saying the FE does not answer", 60, || async {
        let cluster = clusters.get("doris").await.ok()?;
        let conditions = cluster.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "MembersSynced" && c.reason == "FeUnavailable")
            .then_some(())
    })
    .await;
    a_restart_writes_nothing(&mut env).await;
    env.finish().await;
}

/// Where the API server is slow to list (many objects, a busy server), the
/// operator still reconciles nothing before its caches hold the lists: a
/// converged cluster is not taken for one whose Services and StatefulSets
/// are missing. Lists slowed by the emulator (a fault it injects), so this
/// runs there only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_lists_are_slow_writes_nothing() {
    let mut env = Env::start("restart-slow-lists").await;
    let Some(emulator) = env.emulator_only("slows the API server's lists") else {
        return env.finish().await;
    };
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    reads::settled(&env, 5, 120).await;

    for plural in ["services", "statefulsets", "pods"] {
        emulator.slow_lists(plural, Duration::from_secs(3));
    }
    let (_, writes) = writes_of_a_restart(&mut env, 1).await;
    assert!(
        writes.is_empty(),
        "the restarted operator wrote before its caches were filled: {writes:#?}"
    );

    // Its watches cut and their history gone: each lists again (slowly),
    // and every cluster is reconciled meanwhile; the caches keep what they
    // held until the new lists are in.
    let from = reads::mark(&env);
    let before = env.metrics.reconciles.get();
    emulator.expire_history();
    emulator.drop_watches();
    let metrics = env.metrics.clone();
    eventually("reconciles after the watches list again", 60, || async {
        (metrics.reconciles.get() > before).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes = reads::writes_since(&env, &from);
    assert!(
        writes.is_empty(),
        "the operator wrote while its watches listed again: {writes:#?}"
    );
    env.finish().await;
}
