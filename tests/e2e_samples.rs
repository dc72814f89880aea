//! apache/doris-operator's own samples (examples/peer) run here: each is
//! applied as its comments tell a user to (the Secrets of the file, the
//! ConfigMaps it names created from the peer's configuration files), and
//! must become Ready with every node listed by the FE. An autoscaled CN
//! keeps the count its autoscaler sets, and a file name two mounts of one
//! directory share is refused on the field that mounts it.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use doris_operator::crd::DorisCluster;
use env::{Env, eventually, wait_ready};
use fesim::{FeSim, FeSimConfig};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use members::{MemberDriver, members_synced};
use serde::Deserialize;
use serde_json::{Value, json};

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/peer")
}

fn peer_samples() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(peer_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    assert!(out.len() >= 8, "the peer's samples: {out:?}");
    out
}

/// The documents of a sample file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// A sample running: its environment, the FE it registers with, the
/// cluster's name.
struct Running {
    env: Env,
    sim: Arc<FeSim>,
    name: String,
    _driver: MemberDriver,
}

/// Applies a sample as a user would and waits until it is Ready with its
/// members synced.
async fn run_sample(path: &Path) -> Running {
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let short = file
        .trim_end_matches(".yaml")
        .trim_start_matches("doriscluster-");
    let docs = documents(path);
    let cluster = docs
        .iter()
        .find(|d| d["kind"] == "DorisCluster")
        .unwrap()
        .clone();
    let name = cluster["metadata"]["name"].as_str().unwrap().to_string();
    let election = cluster["spec"]["feSpec"]["electionNumber"]
        .as_u64()
        .unwrap_or(3) as usize;

    let mut env = Env::without_operator(short).await;
    let sim = members::simulated_fe(&mut env, FeSimConfig::default(), &name).await;
    env.start_operator();
    let driver = MemberDriver::start(&env, sim.clone(), election);

    // The Secrets and ConfigMaps of the file, then the ConfigMaps it names
    // that the user creates from a configuration file
    // (`kubectl create configmap NAME --from-file=KEY`).
    let mut config_maps = Vec::new();
    for doc in &docs {
        match doc["kind"].as_str() {
            Some("Secret") => {
                env.api::<Secret>()
                    .create(
                        &PostParams::default(),
                        &serde_json::from_value(doc.clone()).unwrap(),
                    )
                    .await
                    .unwrap();
            }
            Some("ConfigMap") => {
                config_maps.push(doc["metadata"]["name"].as_str().unwrap().to_string());
                env.api::<ConfigMap>()
                    .create(
                        &PostParams::default(),
                        &serde_json::from_value(doc.clone()).unwrap(),
                    )
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    for (component, file) in [
        ("feSpec", "fe.conf"),
        ("beSpec", "be.conf"),
        ("cnSpec", "be.conf"),
        ("brokerSpec", "apache_hdfs_broker.conf"),
    ] {
        let info = &cluster["spec"][component]["configMapInfo"];
        let Some(cm) = info["configMapName"].as_str() else {
            continue;
        };
        if config_maps.iter().any(|c| c == cm) {
            continue;
        }
        let key = info["resolveKey"].as_str().unwrap_or(file);
        let text = std::fs::read_to_string(peer_dir().join(key)).unwrap();
        env.api::<ConfigMap>()
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": cm}, "data": {key: text}
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        config_maps.push(cm.to_string());
    }

    env.create_cluster(&serde_norway::to_string(&cluster).unwrap())
        .await;
    wait_ready(&env, &name).await;
    members_synced(&env, &name).await;
    Running {
        env,
        sim,
        name,
        _driver: driver,
    }
}

/// The pods the FE lists, by the first label of their host, sorted.
fn listed(sim: &FeSim) -> Vec<String> {
    let mut out: Vec<String> = sim
        .frontends()
        .into_iter()
        .map(|f| f.host)
        .chain(sim.backends().into_iter().map(|b| b.host))
        .map(|h| h.split('.').next().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The pods that run an FE, BE or CN node. Brokers are not among the
/// frontends and backends the FE lists (they join with `ADD BROKER`).
async fn pod_names(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = env
        .api::<Pod>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| {
            p.labels()
                .get("app.kubernetes.io/component")
                .map(String::as_str)
                != Some("broker")
        })
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_sample_becomes_ready_with_its_nodes_in_the_fe() {
    for path in peer_samples() {
        let running = run_sample(&path).await;
        // Every pod runs a node the FE lists, and only those.
        let pods = pod_names(&running.env).await;
        assert!(!pods.is_empty(), "{}", path.display());
        assert_eq!(listed(&running.sim), pods, "{}", path.display());
        running.env.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_configuration_directory_is_seen_there() {
    let running = run_sample(&peer_dir().join("doriscluster-sample-secret.yaml")).await;
    let sts = running
        .env
        .api::<StatefulSet>()
        .get(&format!("{}-fe", running.name))
        .await
        .unwrap();
    let pod = sts.spec.template.spec.unwrap();
    let mounted = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.mount_path == "/etc/doris")
        .map(|m| m.name.clone())
        .collect::<Vec<_>>();
    assert_eq!(mounted.len(), 1, "one volume in /etc/doris");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mounted[0])
        .unwrap();
    let sources: Vec<String> = volume
        .projected
        .as_ref()
        .unwrap()
        .sources
        .iter()
        .flatten()
        .map(|s| {
            s.secret
                .as_ref()
                .map(|x| format!("secret {}", x.name))
                .or_else(|| {
                    s.config_map
                        .as_ref()
                        .map(|c| format!("configMap {}", c.name))
                })
                .unwrap()
        })
        .collect();
    assert_eq!(
        sources,
        [
            "secret db-user".to_string(),
            format!("configMap {}-fe-conf", running.name)
        ]
    );
    running.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_key_named_like_the_configuration_file_is_refused_on_its_field() {
    let env = Env::start("secret-clash").await;
    env.api::<Secret>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "fe-extra"},
                "stringData": {"fe.conf": "query_port = 1\n", "user": "root"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    env.create_cluster(&env::SAMPLE.replace(
        "    image: apache/doris:fe-2.1.8\n",
        "    image: apache/doris:fe-2.1.8\n    secrets:\n    - secretName: fe-extra\n",
    ))
    .await;
    let api = env.api::<DorisCluster>();
    let ready = eventually("the clash in status", 20, || async {
        let c = api.get("doris").await.ok()?;
        let ready = c
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.reason == "InvalidSpec").then_some(ready)
    })
    .await;
    assert!(
        ready.message.contains(
            "spec.feSpec.secrets[0]: key fe.conf collides with fe.conf of the configuration \
             (ConfigMap doris-fe-conf), both mounted at /etc/doris"
        ),
        "{}",
        ready.message
    );
    assert!(
        env.api::<StatefulSet>()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing is made while the spec is refused"
    );
    env.finish().await;
}

/// What an autoscaler does: set the StatefulSet's replicas, as a manager of
/// its own.
async fn autoscale(env: &Env, sts: &str, replicas: i32) {
    env.api::<StatefulSet>()
        .patch(
            sts,
            &PatchParams {
                field_manager: Some("test-autoscaler".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

async fn compute_nodes(sim: &FeSim) -> Vec<String> {
    let mut out: Vec<String> = sim
        .backends()
        .into_iter()
        .filter(|b| b.host.contains("-cn-"))
        .map(|b| b.host.split('.').next().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaled_cn_keeps_the_count_its_autoscaler_sets() {
    let running = run_sample(&peer_dir().join("doriscluster-sample-cn-autoscaler.yaml")).await;
    let (env, sim, name) = (&running.env, &running.sim, &running.name);
    let cn = format!("{name}-cn");
    let sts = env.api::<StatefulSet>();
    let replicas = |s: StatefulSet| s.spec.replicas;
    // Created with the CR's replicas (3, above minReplicas 2).
    assert_eq!(replicas(sts.get(&cn).await.unwrap()), Some(3));
    let hpa = env
        .api::<HorizontalPodAutoscaler>()
        .get(&format!("{name}-cn-autoscaler"))
        .await
        .unwrap();
    let spec = hpa.spec;
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 10));
    assert_eq!(spec.scale_target_ref.name, cn);

    // The autoscaler adds two: they run, join the FE, and stay.
    autoscale(env, &cn, 5).await;
    eventually("five compute nodes in the FE", 30, || async {
        (compute_nodes(sim).await.len() == 5).then_some(())
    })
    .await;
    members_synced(env, name).await;
    // Status counts them (it follows the pods, a moment after the FE may).
    let api = env.api::<DorisCluster>();
    eventually("status counting five compute nodes", 10, || async {
        let c = api.get(name).await.ok()?;
        let cn = c.status.as_ref()?.cn_status.as_ref()?.component.replicas;
        (cn == Some(5)).then_some(())
    })
    .await;
    wait_ready(env, name).await;

    // A converged cluster costs no writes, and a spec change that leaves
    // the CN alone does not bring the CR's replicas back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.api::<DorisCluster>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    if let Some(emulator) = &env.emulator {
        emulator.reset_requests();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(emulator) = &env.emulator {
        assert_eq!(emulator.count_writes(), 0, "{:?}", emulator.requests());
    }
    // A change of the CN's pod template (its pods restart) and of the CR's
    // replicas: the template is applied, the count stays the autoscaler's.
    env.api::<DorisCluster>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"doris.selectdb.com/drain-seconds": "0"}},
                "spec": {"cnSpec": {"replicas": 4, "podLabels": {"tier": "compute"}}}
            })),
        )
        .await
        .unwrap();
    eventually("the new CN pod template applied", 20, || async {
        let s = sts.get(&cn).await.ok()?;
        let labels = s.spec.template.metadata.as_ref()?.labels.clone()?;
        (labels.get("tier").map(String::as_str) == Some("compute")).then_some(())
    })
    .await;
    assert_eq!(
        replicas(sts.get(&cn).await.unwrap()),
        Some(5),
        "the autoscaler's count stays"
    );
    wait_ready(env, name).await;
    assert_eq!(replicas(sts.get(&cn).await.unwrap()), Some(5));

    // The autoscaler takes three away: their nodes leave the FE.
    autoscale(env, &cn, 2).await;
    eventually("two compute nodes in the FE", 30, || async {
        (compute_nodes(sim).await == [format!("{cn}-0"), format!("{cn}-1")]).then_some(())
    })
    .await;
    members_synced(env, name).await;
    assert_eq!(replicas(sts.get(&cn).await.unwrap()), Some(2));
    running.env.finish().await;
}
