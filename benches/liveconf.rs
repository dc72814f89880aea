//! Prints how long a configuration change takes to go live: a cluster of
//! 3 FE + 10 BE (`BENCH_BES` to change the BE count) against the in-process
//! API emulator, its FE the Doris FE simulator and its BEs' webservers the
//! BE simulator; each round edits the user's fe.conf and be.conf
//! ConfigMaps (one mutable key each) and times from the edit until the FE
//! and every BE report the new values. `BENCH_ROUNDS` rounds (10 unless
//! set). Run with `cargo bench --bench liveconf`.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/besim/mod.rs"]
mod besim;
#[path = "../tests/env/mod.rs"]
mod env;
#[path = "../tests/fesim/mod.rs"]
mod fesim;
#[path = "../tests/members/mod.rs"]
mod members;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bes = from_env("BENCH_BES", 10);
    let rounds = from_env("BENCH_ROUNDS", 10);
    let mut env = env::Env::without_operator("liveconf-bench").await;
    let fe = members::simulated_fe(&mut env, fesim::FeSimConfig::default(), "doris").await;
    let be = Arc::new(besim::BeSim::start().await);
    let addr = be.addr().to_string();
    env.be_resolver = Some(Arc::new(move |_| Some(addr.clone())));
    env.start_operator();
    let _members = members::MemberDriver::start(&env, fe.clone(), 3);
    let conf = |fe_ms: usize, be_versions: usize| {
        (
            format!("qe_slow_log_ms = {fe_ms}\n"),
            format!("max_tablet_version_num = {be_versions}\nmem_limit = 90%\n"),
        )
    };
    let (fe_conf, be_conf) = conf(5000, 2000);
    for (name, file, text) in [
        ("fe-conf", "fe.conf", fe_conf),
        ("be-conf", "be.conf", be_conf),
    ] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": {file: text}}))
                .unwrap();
        env.api::<ConfigMap>()
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    env.create_cluster(&format!(
        r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
spec:
  enableRestartWhenConfigChange: true
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
    configMapInfo:
      configMapName: fe-conf
  beSpec:
    replicas: {bes}
    image: apache/doris:be-2.1.8
    configMapInfo:
      configMapName: be-conf
"#
    ))
    .await;
    env::wait_ready(&env, "doris").await;
    members::members_synced(&env, "doris").await;
    let pods: Vec<String> = (0..bes).map(|i| format!("doris-be-{i}")).collect();

    let mut took = Vec::new();
    for round in 1..=rounds {
        let (fe_conf, be_conf) = conf(5000 + round, 2000 + round);
        let (fe_want, be_want) = ((5000 + round).to_string(), (2000 + round).to_string());
        let started = Instant::now();
        for (name, file, text) in [
            ("fe-conf", "fe.conf", &fe_conf),
            ("be-conf", "be.conf", &be_conf),
        ] {
            env.api::<ConfigMap>()
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {file: text}})),
                )
                .await
                .unwrap();
        }
        loop {
            let fe_done = fe.setting("qe_slow_log_ms").as_deref() == Some(fe_want.as_str());
            let be_done = pods.iter().all(|p| {
                be.setting(p, "max_tablet_version_num").as_deref() == Some(be_want.as_str())
            });
            if fe_done && be_done {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: not live after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        took.push(started.elapsed());
        // Let the status write of this round settle before the next edit.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "live configuration change, 3 FE + {bes} BE, ConfigMap edit to all nodes updated \
         ({rounds} rounds): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(took[took.len() / 2]),
        ms(took[0]),
        ms(took[took.len() - 1])
    );
    env.finish().await;
}
