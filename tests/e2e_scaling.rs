//! Scaling end to end, with a Doris FE simulator speaking the MySQL
//! protocol: BEs are decommissioned before their StatefulSet shrinks and
//! their data is kept, scaling back up cancels a decommission, an FE that
//! does not answer delays a scale-down and never lets it skip the FE,
//! observers are dropped before their pods go, and nodes that do not
//! register, or linger in the FE, are reported.
//!
//! A member driver stands in for the Doris entrypoints: as each pod becomes
//! Ready it registers its node with the FE under its FQDN, as the images do.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use doris_operator::crd::{DorisCluster, MemberNode};
use doris_operator::doris::{FeClient, FeEndpoint};
use env::{Env, SAMPLE, eventually, wait_ready};
use fesim::{FeSim, FeSimConfig};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use members::{HEARTBEAT_PORT, MemberDriver, fqdn};
use serde_json::json;

struct Scaling {
    env: Env,
    sim: Arc<FeSim>,
    _driver: MemberDriver,
}

/// The operator, an FE simulator it reaches, and the member driver; the
/// cluster `cluster` (`doris`) created, Ready and its members synced.
async fn start(test: &str, config: FeSimConfig, cluster: &str) -> Scaling {
    let mut env = Env::without_operator(test).await;
    let sim = simulated_fe(&mut env, config).await;
    env.start_operator();
    let driver = MemberDriver::start(&env, sim.clone(), 3);
    env.create_cluster(cluster).await;
    wait_ready(&env, "doris").await;
    members_synced(&env).await;
    Scaling {
        env,
        sim,
        _driver: driver,
    }
}

/// An FE simulator whose master is `doris-fe-0`, and the operator (started
/// later) pointed at it.
async fn simulated_fe(env: &mut Env, config: FeSimConfig) -> Arc<FeSim> {
    members::simulated_fe(env, config, "doris").await
}

async fn members_synced(env: &Env) -> DorisCluster {
    members::members_synced(env, "doris").await
}

async fn set_replicas(env: &Env, component: &str, replicas: i32) {
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {format!("{component}Spec"): {"replicas": replicas}}})),
        )
        .await
        .unwrap();
}

async fn statefulset_replicas(env: &Env, name: &str) -> i32 {
    env.api::<StatefulSet>()
        .get(name)
        .await
        .unwrap()
        .spec
        .replicas
        .unwrap()
}

async fn member_nodes(env: &Env) -> Vec<MemberNode> {
    env.api::<DorisCluster>()
        .get("doris")
        .await
        .unwrap()
        .status
        .and_then(|s| s.membership)
        .map(|m| m.nodes)
        .unwrap_or_default()
}

/// The pods FQDN hosts name, sorted.
fn pods_of(hosts: impl Iterator<Item = String>) -> Vec<String> {
    let mut pods: Vec<String> = hosts
        .map(|h| h.split('.').next().unwrap().to_string())
        .collect();
    pods.sort();
    pods
}

fn be_hosts(sim: &FeSim) -> Vec<String> {
    pods_of(sim.backends().into_iter().map(|b| b.host))
}

fn slow_drain() -> FeSimConfig {
    FeSimConfig {
        new_backend_tablets: 60,
        drain_rate: 30.0,
        ..FeSimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn be_scale_down_decommissions_first_and_keeps_the_data() {
    let s = start("scale-down", slow_drain(), SAMPLE).await;
    let env = &s.env;
    assert_eq!(be_hosts(&s.sim), ["doris-be-0", "doris-be-1", "doris-be-2"]);

    set_replicas(env, "be", 1).await;
    // The FE drains the two BEs going away; their pods stay meanwhile.
    let nodes = eventually("decommission under way", 20, || async {
        let nodes = member_nodes(env).await;
        (nodes
            .iter()
            .filter(|n| n.state == "decommissioning")
            .count()
            == 2)
            .then_some(nodes)
    })
    .await;
    assert_eq!(
        nodes.iter().map(|n| n.pod.as_str()).collect::<Vec<_>>(),
        ["doris-be-1", "doris-be-2"]
    );
    assert!(nodes.iter().all(|n| n.tablets.is_some()));
    assert!(s.sim.backends().iter().filter(|b| b.decommissioned).count() == 2);
    assert_eq!(
        statefulset_replicas(env, "doris-be").await,
        3,
        "no BE goes before its tablets moved"
    );

    let cluster = members_synced(env).await;
    assert_eq!(statefulset_replicas(env, "doris-be").await, 1);
    assert_eq!(be_hosts(&s.sim), ["doris-be-0"]);
    assert_eq!(
        cluster
            .status
            .unwrap()
            .membership
            .unwrap()
            .confirmed
            .as_deref(),
        Some("fe=3,be=1")
    );
    let statements = s.sim.statements().join("\n");
    assert!(
        !statements.contains("DROPP"),
        "a BE with data is never force-dropped"
    );
    let claims = env
        .api::<PersistentVolumeClaim>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(claims, 3, "the data volumes of the BEs that went are kept");
    // The StatefulSet controller deletes the pods that went in its own
    // time; a pod still running when the count goes back up keeps running,
    // and its BE, dropped by the FE, registers again only when it restarts.
    eventually("the pods of the BEs that went are gone", 60, || async {
        let pods = env.api::<Pod>().list(&Default::default()).await.ok()?;
        (!pods
            .items
            .iter()
            .any(|p| matches!(p.name_any().as_str(), "doris-be-1" | "doris-be-2")))
        .then_some(())
    })
    .await;

    // Back up: the new pods start together and register.
    set_replicas(env, "be", 3).await;
    let cluster = members_synced(env).await;
    assert_eq!(
        cluster
            .status
            .unwrap()
            .membership
            .unwrap()
            .confirmed
            .as_deref(),
        Some("fe=3,be=3")
    );
    assert_eq!(be_hosts(&s.sim), ["doris-be-0", "doris-be-1", "doris-be-2"]);
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_back_up_mid_decommission_cancels_it() {
    let config = FeSimConfig {
        new_backend_tablets: 1000,
        drain_rate: 1.0,
        ..FeSimConfig::default()
    };
    let s = start("scale-cancel", config, SAMPLE).await;
    let env = &s.env;
    let uids = env::pod_uids(env).await;

    set_replicas(env, "be", 1).await;
    eventually("decommission under way", 20, || async {
        (s.sim.backends().iter().filter(|b| b.decommissioned).count() == 2).then_some(())
    })
    .await;
    set_replicas(env, "be", 3).await;
    members_synced(env).await;
    assert!(s.sim.backends().iter().all(|b| !b.decommissioned));
    let cancels = s
        .sim
        .statements()
        .iter()
        .filter(|q| q.to_uppercase().starts_with("CANCEL DECOMMISSION"))
        .count();
    assert_eq!(cancels, 2);
    assert_eq!(statefulset_replicas(env, "doris-be").await, 3);
    let after = env::pod_uids(env).await;
    assert_eq!(after, uids, "no pod was deleted or replaced");
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommission_doris_refuses_is_shown_in_its_words_and_nothing_shrinks() {
    // The one table keeps three replicas: Doris refuses to decommission
    // any of the three BEs.
    let config = FeSimConfig {
        table_replication_num: Some(3),
        ..slow_drain()
    };
    let s = start("scale-refused", config, SAMPLE).await;
    let env = &s.env;

    set_replicas(env, "be", 2).await;
    let node = eventually("the refusal in status", 20, || async {
        member_nodes(env)
            .await
            .into_iter()
            .find(|n| n.state == "refused")
    })
    .await;
    assert_eq!(node.pod, "doris-be-2");
    let message = node.message.unwrap();
    for words in [
        "ALTER SYSTEM DECOMMISSION BACKEND \"doris-be-2.",
        "replication allocation { tag.location.default: 3 } > available backend num 2",
        "set the replicas back",
    ] {
        assert!(message.contains(words), "{words:?} in {message}");
    }
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    let synced = cluster
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "MembersSynced")
        .unwrap();
    assert_eq!(synced.reason, "FeRefused");
    assert!(
        env::events(env, "StatementRefused")
            .await
            .iter()
            .any(|e| e.note.as_deref().is_some_and(|n| n.contains("doris-be-2")))
    );
    // Asked again, but not at every reconcile; nothing shrinks or drops.
    let tries = || {
        s.sim
            .statements()
            .iter()
            .filter(|q| q.starts_with("ALTER SYSTEM DECOMMISSION"))
            .count()
    };
    let before = tries();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(tries() - before <= 2, "{} tries in 6s", tries() - before);
    assert_eq!(statefulset_replicas(env, "doris-be").await, 3);
    assert!(!s.sim.statements().iter().any(|q| q.contains("DROPP")));

    // Set back: nothing is left in flux.
    set_replicas(env, "be", 3).await;
    members_synced(env).await;
    assert_eq!(be_hosts(&s.sim), ["doris-be-0", "doris-be-1", "doris-be-2"]);
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fe_that_does_not_answer_delays_the_scale_down() {
    let s = start("scale-fe-down", slow_drain(), SAMPLE).await;
    let env = &s.env;

    s.sim.set_down(true);
    set_replicas(env, "be", 2).await;
    let message = eventually("the wait reported", 20, || async {
        let c = env.api::<DorisCluster>().get("doris").await.ok()?;
        let cond = c
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "MembersSynced" && c.reason == "FeUnavailable")?;
        Some(cond.message)
    })
    .await;
    assert!(message.contains("doris-be-2"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        statefulset_replicas(env, "doris-be").await,
        3,
        "nothing shrinks while the FE cannot drain the BE"
    );
    assert!(s.sim.backends().iter().all(|b| !b.decommissioned));

    s.sim.set_down(false);
    members_synced(env).await;
    assert_eq!(statefulset_replicas(env, "doris-be").await, 2);
    assert_eq!(be_hosts(&s.sim), ["doris-be-0", "doris-be-1"]);
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_join_and_are_dropped_before_their_pods_go() {
    let s = start("scale-observers", FeSimConfig::default(), SAMPLE).await;
    let env = &s.env;

    set_replicas(env, "fe", 5).await;
    members_synced(env).await;
    let observers = |sim: &FeSim| {
        pods_of(
            sim.frontends()
                .into_iter()
                .filter(|f| f.role == "OBSERVER")
                .map(|f| f.host),
        )
    };
    assert_eq!(observers(&s.sim), ["doris-fe-3", "doris-fe-4"]);

    set_replicas(env, "fe", 3).await;
    members_synced(env).await;
    assert!(observers(&s.sim).is_empty());
    assert_eq!(statefulset_replicas(env, "doris-fe").await, 3);
    let statements = s.sim.statements();
    let dropped = statements
        .iter()
        .filter(|q| q.to_uppercase().contains("DROP OBSERVER"))
        .count();
    assert_eq!(dropped, 2);
    assert_eq!(s.sim.frontends().len(), 3, "the followers stay");
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_follower_count_of_a_running_cluster_is_refused() {
    let s = start("scale-quorum", FeSimConfig::default(), SAMPLE).await;
    let env = &s.env;
    let patched = env
        .api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"feSpec": {"replicas": 5, "electionNumber": 5}}})),
        )
        .await;
    match patched {
        // An API server that runs the CRD's rules refuses the change itself.
        Err(kube::Error::Api(refused)) => {
            assert_eq!(refused.code, 422, "{refused:?}");
            assert!(
                refused.message.contains("spec.feSpec.electionNumber"),
                "{}",
                refused.message
            );
        }
        Err(other) => panic!("{other}"),
        // Otherwise the operator refuses it.
        Ok(_) => {
            let message = eventually("the change refused", 20, || async {
                let c = env.api::<DorisCluster>().get("doris").await.ok()?;
                let ready = c
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")?;
                Some(ready.message)
            })
            .await;
            assert!(message.contains("spec.feSpec.electionNumber"), "{message}");
            assert!(message.contains("cannot change from 3 to 5"), "{message}");
        }
    }
    assert_eq!(statefulset_replicas(env, "doris-fe").await, 3);
    s.env.finish().await;
}

/// Conventions that report quickly, for the tests of what is reported.
async fn quick_membership(env: &Env) {
    membership_policy(env, true).await;
}

/// A membership policy that decommissions BEs or not as told, and acts
/// quickly.
async fn membership_policy(env: &Env, decommission: bool) {
    let policy = format!(
        "fn membership(ctx) {{\n    #{{ decommission_be: {decommission}, register_timeout_seconds: 1, recheck_seconds: 1,\n       drop_stale: ctx.cluster.annotations[\"doris.selectdb.com/drop-stale-members\"] == \"true\" }}\n}}\n"
    );
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "quick-membership",
                     "labels": {"doris.selectdb.com/conventions": "default"}},
        "data": {"membership.rhai": policy},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_be_with_tablets_is_never_dropped_even_when_the_policy_skips_decommission() {
    let mut env = Env::without_operator("scale-no-decommission").await;
    membership_policy(&env, false).await;
    let sim = simulated_fe(&mut env, slow_drain()).await;
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 3);
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    members_synced(&env).await;

    set_replicas(&env, "be", 2).await;
    let node = eventually("doris-be-2 reported, not dropped", 30, || async {
        member_nodes(&env)
            .await
            .into_iter()
            .find(|n| n.pod == "doris-be-2" && n.state == "stale")
    })
    .await;
    assert_eq!(node.tablets, Some(60));
    assert!(node.message.unwrap().contains("not dropped"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!sim.statements().iter().any(|q| q.contains("DROPP")));
    assert_eq!(be_hosts(&sim), ["doris-be-0", "doris-be-1", "doris-be-2"]);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_and_stale_nodes_are_reported_and_dropped_only_when_asked() {
    let mut env = Env::without_operator("scale-report").await;
    quick_membership(&env).await;
    let sim = simulated_fe(&mut env, slow_drain()).await;
    env.start_operator();
    let driver = MemberDriver::start(&env, sim.clone(), 3);
    driver.skip("doris-be-2");
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    let node = eventually("doris-be-2 reported", 30, || async {
        member_nodes(&env)
            .await
            .into_iter()
            .find(|n| n.pod == "doris-be-2" && n.state == "notRegistered")
    })
    .await;
    assert!(node.message.unwrap().contains("not listed by the FE"));
    assert!(
        !env::events(&env, "NodeNotRegistered").await.is_empty(),
        "a Warning Event names the node"
    );

    // The node registers late: the report clears.
    sim.register_backend(&fqdn(&env, "doris-be-2"), HEARTBEAT_PORT)
        .unwrap();
    members_synced(&env).await;

    // A BE the FE lists that no pod will run is reported, not dropped...
    sim.register_backend(&fqdn(&env, "doris-be-7"), HEARTBEAT_PORT)
        .unwrap();
    eventually("the stale member reported", 30, || async {
        member_nodes(&env)
            .await
            .into_iter()
            .find(|n| n.pod == "doris-be-7" && n.state == "stale")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        sim.backends()
            .iter()
            .any(|b| b.host.starts_with("doris-be-7.") && !b.decommissioned)
    );
    // ...until the cluster asks: then it is decommissioned, never force-dropped.
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"doris.selectdb.com/drop-stale-members": "true"}}}),
            ),
        )
        .await
        .unwrap();
    eventually("the stale member gone", 30, || async {
        (!sim
            .backends()
            .iter()
            .any(|b| b.host.starts_with("doris-be-7.")))
        .then_some(())
    })
    .await;
    members_synced(&env).await;
    drop(driver);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_be_the_fe_keeps_listed_is_dropped_once_it_holds_nothing() {
    // With drop_backend_after_decommission = false (a mutable, master-only
    // FE setting, Config.java) Doris keeps a drained BE listed with
    // SystemDecommissioned = true and TabletNum = 0 (SystemHandler.java).
    let s = start("scale-kept", FeSimConfig::default(), SAMPLE).await;
    let env = &s.env;
    let fe = FeClient::new(FeEndpoint::new("127.0.0.1").with_port(s.sim.addr().port()));
    fe.set_frontend_config("drop_backend_after_decommission", "false")
        .await
        .expect("the master takes the setting");

    set_replicas(env, "be", 2).await;
    members_synced(env).await;
    assert_eq!(statefulset_replicas(env, "doris-be").await, 2);
    assert_eq!(be_hosts(&s.sim), ["doris-be-0", "doris-be-1"]);
    let statements = s.sim.statements().join("\n").to_uppercase();
    assert!(statements.contains("DECOMMISSION BACKEND"), "{statements}");
    assert!(
        statements.contains("DROPP BACKEND"),
        "dropped once Doris said it holds nothing: {statements}"
    );
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_node_whose_process_stopped_is_still_known_and_dropped() {
    // Doris lists no NodeRole for a backend that is not alive
    // (BackendsProcDir.java): the CN is known by its pod.
    let cluster = format!("{SAMPLE}  cnSpec:\n    replicas: 2\n    image: apache/doris:be-2.1.8\n");
    let s = start("scale-cn-dead", FeSimConfig::default(), &cluster).await;
    let env = &s.env;
    let listed = |sim: &FeSim| {
        sim.backends()
            .into_iter()
            .find(|b| b.host.starts_with("doris-cn-1."))
    };
    let stopped = listed(&s.sim).expect("doris-cn-1 registered");
    assert!(
        s.sim
            .set_backend_alive(&stopped.host, stopped.heartbeat_port, false)
    );

    set_replicas(env, "cn", 1).await;
    members_synced(env).await;
    assert_eq!(statefulset_replicas(env, "doris-cn").await, 1);
    eventually("the stopped CN is dropped from the FE", 30, || async {
        listed(&s.sim).is_none().then_some(())
    })
    .await;
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_nodes_go_at_once_and_are_dropped() {
    let cluster = format!("{SAMPLE}  cnSpec:\n    replicas: 2\n    image: apache/doris:be-2.1.8\n");
    let s = start("scale-cn", FeSimConfig::default(), &cluster).await;
    let env = &s.env;
    let compute = |sim: &FeSim| {
        pods_of(
            sim.backends()
                .into_iter()
                .filter(|b| b.node_role == "computation")
                .map(|b| b.host),
        )
    };
    assert_eq!(compute(&s.sim), ["doris-cn-0", "doris-cn-1"]);

    set_replicas(env, "cn", 1).await;
    members_synced(env).await;
    assert_eq!(statefulset_replicas(env, "doris-cn").await, 1);
    assert_eq!(compute(&s.sim), ["doris-cn-0"]);
    let statements = s.sim.statements().join("\n").to_uppercase();
    assert!(statements.contains("DROPP BACKEND"), "{statements}");
    assert!(
        !statements.contains("DECOMMISSION"),
        "compute nodes hold no data: no decommission"
    );
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fe_is_reached_as_the_auth_secret_user_and_sql_errors_are_retried() {
    let config = FeSimConfig {
        user: "ops".into(),
        password: "s3cret-pw".into(),
        ..slow_drain()
    };
    let mut env = Env::without_operator("scale-auth").await;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "doris-admin"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "ops", "password": "s3cret-pw"},
        "data": {"username": "b3Bz", "password": "czNjcmV0LXB3"},
    }))
    .unwrap();
    env.api::<k8s_openapi::api::core::v1::Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let sim = simulated_fe(&mut env, config).await;
    env.start_operator();
    let _driver = MemberDriver::start_as(&env, sim.clone(), 3, "ops", "s3cret-pw", None);
    env.create_cluster(&SAMPLE.replace("spec:\n", "spec:\n  authSecret: doris-admin\n"))
        .await;
    wait_ready(&env, "doris").await;
    members_synced(&env).await;

    // The FE refuses the next statements (whichever they are); the
    // operator tries again and still decommissions before shrinking.
    sim.fail_next(3, "Failed to get a connection to the master FE");
    set_replicas(&env, "be", 2).await;
    members_synced(&env).await;
    assert_eq!(statefulset_replicas(&env, "doris-be").await, 2);
    let attempts = sim
        .statements()
        .iter()
        .filter(|q| q.to_uppercase().starts_with("ALTER SYSTEM DECOMMISSION"))
        .count();
    assert!(attempts >= 1, "the BE was decommissioned before it went");
    assert!(
        !sim.statements()
            .iter()
            .any(|q| q.to_uppercase().contains("DROPP"))
    );
    env.finish().await;
}

/// The FE's TLS material as a Secret holds it: `ca.pem`, `fe.crt`, and
/// `fe.key` unless `without_key`.
fn tls_secret(pki: &fesim::TestPki, without_key: bool) -> k8s_openapi::api::core::v1::Secret {
    use k8s_openapi::ByteString;
    let mut data = BTreeMap::new();
    data.insert(
        "ca.pem".to_string(),
        ByteString(pki.ca_pem.clone().into_bytes()),
    );
    data.insert(
        "fe.crt".to_string(),
        ByteString(pki.server_cert_pem.clone().into_bytes()),
    );
    if !without_key {
        data.insert(
            "fe.key".to_string(),
            ByteString(pki.server_key_pem.clone().into_bytes()),
        );
    }
    k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("doris-fe-tls".into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// An FE with `enable_tls = true` in fe.conf is reached over mutual TLS
/// with the certificates of the Secret mounted where fe.conf points, and
/// scaling works through it; a Secret that lacks a file delays the
/// scale-down, naming the Secret and key, until it is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fe_is_reached_over_tls_when_fe_conf_enables_it() {
    let pki = fesim::TestPki::new("doris");
    let config = FeSimConfig {
        tls: Some(pki.server_config()),
        ..slow_drain()
    };
    let mut env = Env::without_operator("scale-tls").await;
    let secrets = env.api::<k8s_openapi::api::core::v1::Secret>();
    secrets
        .create(&PostParams::default(), &tls_secret(&pki, false))
        .await
        .unwrap();
    let conf: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "fe-conf"},
        "data": {"fe.conf": "enable_tls = true\n\
            tls_ca_certificate_path = /opt/apache-doris/fe/tls/ca.pem\n\
            tls_certificate_path = /opt/apache-doris/fe/tls/fe.crt\n\
            tls_private_key_path = /opt/apache-doris/fe/tls/fe.key\n"},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &conf)
        .await
        .unwrap();
    let sim = simulated_fe(&mut env, config).await;
    env.start_operator();
    // The FE entrypoints log in with the FE's own certificate, as the
    // operator does.
    let fe_identity = doris_operator::doris::FeTls::new(
        pki.ca_pem.clone().into_bytes(),
        pki.server_cert_pem.clone().into_bytes(),
        pki.server_key_pem.clone().into_bytes(),
    )
    .unwrap();
    let _driver = MemberDriver::start_as(&env, sim.clone(), 3, "root", "", Some(fe_identity));
    env.create_cluster(&SAMPLE.replace(
        "    image: apache/doris:fe-2.1.8\n",
        "    image: apache/doris:fe-2.1.8\n    configMapInfo:\n      configMapName: fe-conf\n    secrets:\n    - secretName: doris-fe-tls\n      mountPath: /opt/apache-doris/fe/tls\n",
    ))
    .await;
    wait_ready(&env, "doris").await;
    members_synced(&env).await;
    assert!(sim.tls_sessions() > 0, "the operator logged in over TLS");
    assert!(sim.tls_failures().is_empty(), "{:?}", sim.tls_failures());

    // The Secret rewritten, with or without the client key.
    let replace_tls_secret = |without_key: bool| {
        let (secrets, pki) = (&secrets, &pki);
        async move {
            let mut s = tls_secret(pki, without_key);
            s.metadata.resource_version = secrets
                .get("doris-fe-tls")
                .await
                .unwrap()
                .resource_version();
            secrets
                .replace("doris-fe-tls", &PostParams::default(), &s)
                .await
                .unwrap();
        }
    };

    // The key goes missing: the scale-down waits, and says why.
    replace_tls_secret(true).await;
    set_replicas(&env, "be", 2).await;
    let waiting = eventually("the scale-down waits for the FE", 20, || async {
        member_nodes(&env)
            .await
            .into_iter()
            .find(|n| n.state == "waitingForFe")
    })
    .await;
    let message = waiting.message.unwrap_or_default();
    assert!(
        message.contains("Secret doris-fe-tls has no key fe.key"),
        "{message}"
    );
    assert_eq!(statefulset_replicas(&env, "doris-be").await, 3);

    // Fixed: the BE is decommissioned over TLS, then goes.
    replace_tls_secret(false).await;
    members_synced(&env).await;
    assert_eq!(statefulset_replicas(&env, "doris-be").await, 2);
    assert!(
        sim.statements()
            .iter()
            .any(|q| q.to_uppercase().starts_with("ALTER SYSTEM DECOMMISSION")),
        "the BE was decommissioned through the FE"
    );
    assert!(sim.tls_failures().is_empty(), "{:?}", sim.tls_failures());
    env.finish().await;
}
