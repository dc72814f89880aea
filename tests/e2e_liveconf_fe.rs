//! Live FE settings when Doris will not take them from the operator's
//! user: a user without the ADMIN privilege is refused in Doris's words,
//! shown in status until the privilege is granted; in storage-compute
//! separated mode, where Doris lets only root change FE settings at run
//! time, nothing is sent and status says why and what became of the key.
//!
//! The FE is the simulator in tests/fesim, playing the release
//! `DORIS_SIM_PROFILE` names; a member driver registers each Ready pod's
//! node with it, as the images' entrypoints do.

mod apiserver;
mod besim;
mod env;
mod fesim;
mod members;

use std::sync::Arc;

use doris_operator::crd::{ConfigChangeStatus, DorisCluster, DorisDisaggregatedCluster};
use env::{Env, eventually, wait_ready};
use fesim::{FeSimConfig, Privilege, SimUser};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use members::{MemberDriver, fqdn_via};
use serde_json::json;

const USER: &str = "ops";
const PASSWORD: &str = "s3cret-pw";

const CLUSTER: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
spec:
  authSecret: doris-admin
  enableRestartWhenConfigChange: true
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
    configMapInfo:
      configMapName: fe-conf
  beSpec:
    replicas: 1
    image: apache/doris:be-2.1.8
"#;

const DDC: &str = r#"
apiVersion: disaggregated.cluster.doris.com/v1
kind: DorisDisaggregatedCluster
metadata:
  name: ddc
spec:
  authSecret: doris-admin
  metaService:
    replicas: 1
    image: apache/doris:ms-3.0.3
    fdb:
      address: "doris:fdbclusterid@10.0.0.11:4500"
  feSpec:
    replicas: 1
    image: apache/doris:fe-3.0.3
    configMaps:
    - name: fe-conf
  computeGroups:
  - uniqueId: cg_etl
    replicas: 1
    image: apache/doris:be-3.0.3
"#;

/// The Secret `spec.authSecret` names: user `ops`.
async fn auth_secret(env: &Env) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "doris-admin"},
        "type": "kubernetes.io/basic-auth",
        "data": {"username": "b3Bz", "password": "czNjcmV0LXB3"},
    }))
    .unwrap();
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// `config` with user `ops` granted `privileges`.
fn with_ops(config: FeSimConfig, privileges: &[Privilege]) -> FeSimConfig {
    FeSimConfig {
        users: vec![SimUser::new(USER, PASSWORD, privileges)],
        ..config
    }
}

fn admin_sets(statements: &[String]) -> Vec<&String> {
    statements
        .iter()
        .filter(|q| q.to_ascii_uppercase().starts_with("ADMIN SET"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privilege_doris_refuses_is_shown_in_its_words_until_granted() {
    let mut env = Env::without_operator("fe-priv").await;
    auth_secret(&env).await;
    let config = with_ops(FeSimConfig::default(), &[Privilege::Node]);
    let fe = members::simulated_fe(&mut env, config, "doris").await;
    env.start_operator();
    let _members = MemberDriver::start_as(&env, fe.clone(), 3, USER, PASSWORD, None);
    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 5000\n").await;
    env.create_cluster(CLUSTER).await;
    wait_ready(&env, "doris").await;
    members::members_synced(&env, "doris").await;

    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n").await;
    let api = env.api::<DorisCluster>();
    let entry = |state: &'static str| {
        let api = api.clone();
        async move {
            eventually(&format!("fe configuration {state}"), 30, || async {
                let c = api.get("doris").await.ok()?;
                let e: ConfigChangeStatus = c
                    .status?
                    .configuration?
                    .into_iter()
                    .find(|e| e.component == "fe")?;
                (e.state == state && (state == "applied" || e.message.is_some())).then_some(e)
            })
            .await
        }
    };
    let waiting = entry("applying").await;
    let message = waiting.message.clone().unwrap();
    assert!(
        message.contains(
            "Access denied; you need (at least one of) the (ADMIN) privilege(s) for this operation"
        ),
        "{waiting:?}"
    );
    assert!(message.contains("grant user `ops`"), "{waiting:?}");
    assert!(admin_sets(&fe.statements()).is_empty());
    let warned = env::events(&env, "ConfigWaiting").await;
    assert!(
        warned.iter().any(|e| e
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("Access denied")),
        "{warned:?}"
    );

    // Granted, the change goes through on the next try.
    fe.grant(USER, Privilege::Admin);
    let applied = entry("applied").await;
    assert_eq!(applied.live.len(), 1, "{applied:?}");
    assert_eq!(applied.live[0].nodes, 3, "{applied:?}");
    assert_eq!(fe.setting("qe_slow_log_ms").as_deref(), Some("3000"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cloud_mode_only_root_sets_fe_keys_live_and_status_says_so() {
    let mut env = Env::without_operator("fe-cloud").await;
    auth_secret(&env).await;
    let master = fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let config = with_ops(FeSimConfig::cloud(), &[Privilege::Admin, Privilege::Node]);
    let fe = members::simulated_fe_at(&mut env, config, &master).await;
    let be = Arc::new(besim::BeSim::start().await);
    let addr = be.addr().to_string();
    env.be_resolver = Some(Arc::new(move |_| Some(addr.clone())));
    env.start_operator();
    let _members = MemberDriver::start_as(&env, fe.clone(), 1, USER, PASSWORD, None);
    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 5000\n").await;
    env.create_ddc(DDC).await;
    env::wait_ddc_ready(&env, "ddc").await;

    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n").await;
    let api = env.api::<DorisDisaggregatedCluster>();
    let note = eventually("the FE change decided", 30, || async {
        let c = api.get("ddc").await.ok()?;
        let e = c
            .status?
            .configuration?
            .into_iter()
            .find(|e| e.component == "fe")?;
        (e.state == "applied").then_some(())?;
        let events = env::events(&env, "ConfigChanged").await;
        events
            .into_iter()
            .filter_map(|e| e.note)
            .find(|n| n.contains("only root"))
    })
    .await;
    assert!(note.contains("`ops`"), "{note}");
    assert!(
        note.contains("the FEs restart for qe_slow_log_ms"),
        "{note}"
    );
    assert!(note.contains("spec.authSecret name root"), "{note}");
    // Nothing was sent that Doris would refuse.
    assert!(
        admin_sets(&fe.statements()).is_empty(),
        "{:?}",
        fe.statements()
    );
    env.finish().await;
}
