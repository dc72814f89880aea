//! Storage-compute separated clusters (`DorisDisaggregatedCluster`) end to
//! end: brought up in order (meta service, FE, compute groups), scaled and
//! rolled through the FE, configuration changed live where Doris allows
//! it, and bad input reported on its field with nothing applied.
//!
//! The FE is the simulator in tests/fesim in its cloud mode; the member
//! driver registers each Ready pod as the disaggregated images' entrypoints
//! do (compute group BEs into the group their `COMPUTE_GROUP_NAME` names).
//! The tests run on the API emulator, or unchanged on the cluster
//! DORIS_OPERATOR_TEST_KUBECONFIG names; what only the emulator can stage
//! (holding a running pod not Ready) is skipped there.

mod apiserver;
mod besim;
mod env;
mod fesim;
mod members;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::controller::rollout::is_ready;
use doris_operator::crd::DorisDisaggregatedCluster;
use env::{Env, ddc_condition, eventually, wait_ddc_ready};
use fesim::{FeSim, FeSimConfig};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use members::{HEARTBEAT_PORT, MemberDriver, fqdn_via};
use serde_json::{Value, json};

const NAME: &str = "ddc";

/// One meta service pod, one FE, and two compute groups: `cg_etl` (object
/// names `ddc-cg-etl`) of two BEs with a cache volume, `cg_query` of one.
const DDC: &str = r#"
apiVersion: disaggregated.cluster.doris.com/v1
kind: DorisDisaggregatedCluster
metadata:
  name: ddc
  annotations:
    doris.selectdb.com/drain-seconds: "1"
spec:
  metaService:
    replicas: 1
    image: apache/doris:ms-3.0.3
    fdb:
      address: "doris:fdbclusterid@10.0.0.11:4500"
  feSpec:
    replicas: 1
    image: apache/doris:fe-3.0.3
  computeGroups:
  - uniqueId: cg_etl
    replicas: 2
    image: apache/doris:be-3.0.3
    persistentVolumes:
    - persistentVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 10Gi
  - uniqueId: cg_query
    replicas: 1
    image: apache/doris:be-3.0.3
    persistentVolumes:
    - persistentVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 10Gi
"#;

/// An operator pointed at a cloud-mode FE simulator whose master is
/// `ddc-fe-0`, and the member driver registering pods with it.
struct Setup {
    env: Env,
    sim: Arc<FeSim>,
    _driver: MemberDriver,
}

/// `config` is a cloud-mode simulator's ([`FeSimConfig::cloud`]).
async fn setup(test: &str, config: FeSimConfig) -> Setup {
    let mut env = Env::without_operator(test).await;
    let master = fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let sim = members::simulated_fe_at(&mut env, config, &master).await;
    env.start_operator();
    let driver = MemberDriver::start(&env, sim.clone(), 1);
    Setup {
        env,
        sim,
        _driver: driver,
    }
}

/// `yaml` with `edit` applied to its JSON form.
fn ddc_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_norway::from_str(DDC).unwrap();
    edit(&mut value);
    serde_json::to_string(&value).unwrap()
}

async fn get(env: &Env) -> DorisDisaggregatedCluster {
    env.api::<DorisDisaggregatedCluster>()
        .get(NAME)
        .await
        .unwrap()
}

async fn patch(env: &Env, patch: Value) -> Result<DorisDisaggregatedCluster, kube::Error> {
    env.api::<DorisDisaggregatedCluster>()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

/// Replaces the compute groups of the spec (a merge patch replaces lists).
async fn set_compute_groups(env: &Env, groups: Value) {
    patch(env, json!({"spec": {"computeGroups": groups}}))
        .await
        .expect("compute groups patched");
}

fn compute_groups_of(edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let value: Value = serde_norway::from_str(DDC).unwrap();
    let mut groups = value["spec"]["computeGroups"].as_array().unwrap().clone();
    edit(&mut groups);
    Value::Array(groups)
}

/// The cluster once Ready and its status says the FE lists exactly its
/// nodes, for its current generation.
async fn members_synced(env: &Env) -> DorisDisaggregatedCluster {
    eventually("ddc MembersSynced=True", 60, || async {
        let c = env
            .api::<DorisDisaggregatedCluster>()
            .get(NAME)
            .await
            .ok()?;
        let synced = ddc_condition(&c, "MembersSynced")?.status == "True";
        let ready = ddc_condition(&c, "Ready")?.status == "True";
        (synced && ready && c.status.as_ref()?.observed_generation == c.metadata.generation)
            .then_some(c)
    })
    .await
}

async fn statefulset(env: &Env, name: &str) -> Option<StatefulSet> {
    env.api::<StatefulSet>().get_opt(name).await.unwrap()
}

async fn statefulset_replicas(env: &Env, name: &str) -> i32 {
    statefulset(env, name)
        .await
        .unwrap_or_else(|| panic!("StatefulSet {name} exists"))
        .spec
        .replicas
        .unwrap()
}

/// The pods the FE lists in compute group `group`, sorted.
fn group_pods(sim: &FeSim, group: &str) -> Vec<String> {
    let mut pods: Vec<String> = sim
        .backends_in_group(group)
        .into_iter()
        .map(|b| b.host.split('.').next().unwrap().to_string())
        .collect();
    pods.sort();
    pods
}

/// Names of the objects of kind `K` in the test's namespace, sorted.
async fn names<K>(env: &Env) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut names: Vec<String> = env
        .api::<K>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    names.sort();
    names
}

async fn event_notes(env: &Env, reason: &str) -> Vec<String> {
    env::events(env, reason)
        .await
        .into_iter()
        .filter_map(|e| e.note)
        .collect()
}

/// What StatefulSets and pods went through, in the order a watch saw it:
/// ("created", StatefulSet), ("ready", pod) the first time each pod
/// incarnation is Ready, ("deleted", pod) when an incarnation that was
/// Ready goes.
#[derive(Clone, Default)]
struct Log {
    entries: Vec<(&'static str, String)>,
    /// Whether the FE still listed the node when its pod went.
    listed_when_deleted: BTreeMap<String, bool>,
    /// Whether the BE had queries and loads stopped when its pod went.
    drained_when_deleted: BTreeMap<String, Vec<bool>>,
    /// The watches that listed what exists already (2 when both did).
    listed: usize,
}

impl Log {
    fn position(&self, what: &str, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(w, n)| *w == what && n == name)
    }

    /// Where the first pod of StatefulSet `sts` became Ready.
    fn first_ready_of(&self, sts: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(w, n)| *w == "ready" && n.rsplit_once('-').is_some_and(|(s, _)| s == sts))
    }

    fn deletions(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(w, _)| *w == "deleted")
            .map(|(_, n)| n.clone())
            .collect()
    }
}

/// Watches the namespace's StatefulSets and pods into a [`Log`].
struct Watch {
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Seen {
    Sts(watcher::Event<StatefulSet>),
    Pod(watcher::Event<Pod>),
}

impl Watch {
    fn start(env: &Env, sim: Arc<FeSim>) -> Watch {
        let log = Arc::new(Mutex::new(Log::default()));
        let statefulsets = watcher(env.api::<StatefulSet>(), watcher::Config::default())
            .filter_map(|e| async move { e.ok().map(Seen::Sts) });
        let pods = watcher(env.api::<Pod>(), watcher::Config::default())
            .filter_map(|e| async move { e.ok().map(Seen::Pod) });
        let mut seen = futures::stream::select(statefulsets.boxed(), pods.boxed());
        let shared = log.clone();
        let task = tokio::spawn(async move {
            let mut created = BTreeSet::new();
            let mut restarts = env::Restarts::default();
            while let Some(event) = seen.next().await {
                let mut log = shared.lock().unwrap();
                match event {
                    Seen::Sts(watcher::Event::Apply(s) | watcher::Event::InitApply(s))
                        if created.insert(s.uid().unwrap_or_default()) =>
                    {
                        log.entries.push(("created", s.name_any()));
                    }
                    Seen::Pod(watcher::Event::Apply(p) | watcher::Event::InitApply(p))
                        if restarts.seen(&p) =>
                    {
                        log.entries.push(("ready", p.name_any()));
                    }
                    Seen::Sts(watcher::Event::InitDone) | Seen::Pod(watcher::Event::InitDone) => {
                        log.listed += 1;
                    }
                    // Only a restart counts (see env::Restarts).
                    Seen::Pod(watcher::Event::Delete(p)) if restarts.is_restart(&p) => {
                        let name = p.name_any();
                        let host_prefix = format!("{name}.");
                        let listed = sim
                            .backends()
                            .iter()
                            .any(|b| b.host.starts_with(&host_prefix))
                            || sim
                                .frontends()
                                .iter()
                                .any(|f| f.host.starts_with(&host_prefix));
                        log.listed_when_deleted.insert(name.clone(), listed);
                        let drained = sim
                            .backends()
                            .iter()
                            .find(|b| b.host.starts_with(&host_prefix))
                            .is_some_and(|b| b.query_disabled && b.load_disabled);
                        log.drained_when_deleted
                            .entry(name.clone())
                            .or_default()
                            .push(drained);
                        log.entries.push(("deleted", name));
                    }
                    _ => {}
                }
            }
        });
        Watch { log, task }
    }

    /// Once both watches have listed what exists: what follows is seen in
    /// the order it happens.
    async fn synced(self) -> Watch {
        eventually("the watches listed", 30, || async {
            (self.log.lock().unwrap().listed >= 2).then_some(())
        })
        .await;
        self
    }

    fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_comes_up_in_order_and_becomes_ready() {
    let s = setup("ddc-create", FeSimConfig::cloud()).await;
    let env = &s.env;
    let watch = Watch::start(env, s.sim.clone()).synced().await;
    env.create_ddc(DDC).await;
    let cluster = members_synced(env).await;

    // Meta service first; the FE once a meta service pod was Ready; the
    // compute groups once an FE pod was.
    let log = watch.log();
    let at = |what, name| {
        log.position(what, name)
            .unwrap_or_else(|| panic!("{what} {name}: {:?}", log.entries))
    };
    let ms_ready = log
        .first_ready_of("ddc-ms")
        .expect("a meta service pod Ready");
    let fe_ready = log.first_ready_of("ddc-fe").expect("an FE pod Ready");
    assert_eq!(
        log.entries[0],
        ("created", "ddc-ms".to_string()),
        "{:?}",
        log.entries
    );
    assert!(at("created", "ddc-fe") > ms_ready, "{:?}", log.entries);
    for group in ["ddc-cg-etl", "ddc-cg-query"] {
        assert!(at("created", group) > fe_ready, "{:?}", log.entries);
    }

    // The FE lists each group's BEs under the group's name.
    assert_eq!(
        group_pods(&s.sim, "cg_etl"),
        ["ddc-cg-etl-0", "ddc-cg-etl-1"]
    );
    assert_eq!(group_pods(&s.sim, "cg_query"), ["ddc-cg-query-0"]);
    for b in s.sim.backends() {
        let pod = b.host.split('.').next().unwrap();
        let sts = pod.rsplit_once('-').unwrap().0;
        assert_eq!(b.host, fqdn_via(env, pod, sts));
        assert_eq!(b.heartbeat_port, HEARTBEAT_PORT);
    }

    let status = cluster.status.clone().unwrap();
    assert_eq!(ddc_condition(&cluster, "Ready").unwrap().status, "True");
    assert_eq!(status.observed_generation, cluster.metadata.generation);
    assert!(
        status
            .conventions_revision
            .as_deref()
            .is_some_and(|r| !r.is_empty())
    );
    let health = status.cluster_health.unwrap();
    assert_eq!(health.health.as_deref(), Some("green"));
    assert_eq!(health.fe_available, Some(true));
    assert_eq!(health.cg_count, Some(2));
    assert_eq!(health.cg_available_count, Some(2));
    assert_eq!(health.cg_full_available_count, Some(2));
    assert_eq!(
        status
            .meta_service_status
            .unwrap()
            .available_status
            .as_deref(),
        Some("Available")
    );
    assert_eq!(
        status.fe_status.unwrap().available_status.as_deref(),
        Some("Available")
    );

    // Each compute group's id is the one the FE gave it.
    let groups = eventually("compute group ids in status", 30, || async {
        let c = get(env).await;
        let groups = c.status?.compute_group_statuses?;
        groups
            .iter()
            .all(|g| g.compute_group_id.is_some())
            .then_some(groups)
    })
    .await;
    let seen: Vec<_> = groups
        .iter()
        .map(|g| {
            (
                g.unique_id.clone().unwrap(),
                g.statefulset_name.clone().unwrap(),
                g.replicas,
                g.available_replicas,
                g.compute_group_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "cg_etl".to_string(),
                "ddc-cg-etl".to_string(),
                Some(2),
                Some(2),
                s.sim.compute_group_id("cg_etl")
            ),
            (
                "cg_query".to_string(),
                "ddc-cg-query".to_string(),
                Some(1),
                Some(1),
                s.sim.compute_group_id("cg_query")
            ),
        ]
    );
    assert_ne!(
        s.sim.compute_group_id("cg_etl"),
        s.sim.compute_group_id("cg_query")
    );
    s.env.finish().await;
}

/// The cluster with `cg_etl` at three BEs, and `enableDecommission` as
/// given.
fn three_etl(decommission: Option<bool>) -> String {
    ddc_with(|v| {
        v["spec"]["computeGroups"][0]["replicas"] = json!(3);
        if let Some(d) = decommission {
            v["spec"]["enableDecommission"] = json!(d);
        }
    })
}

async fn scale_etl(env: &Env, replicas: i32) {
    set_compute_groups(
        env,
        compute_groups_of(|g| g[0]["replicas"] = json!(replicas)),
    )
    .await;
}

/// The statements the FE received that name `pod`.
fn statements_naming(sim: &FeSim, pod: &str) -> Vec<String> {
    let host = format!("\"{pod}.");
    sim.statements()
        .into_iter()
        .filter(|s| s.contains(&host))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_group_scale_down_with_decommission_waits_for_the_fe() {
    let config = FeSimConfig {
        new_backend_tablets: 60,
        drain_rate: 30.0,
        ..FeSimConfig::cloud()
    };
    let s = setup("ddc-decommission", config).await;
    let env = &s.env;
    env.create_ddc(&three_etl(Some(true))).await;
    members_synced(env).await;
    let watch = Watch::start(env, s.sim.clone()).synced().await;
    assert_eq!(
        group_pods(&s.sim, "cg_etl"),
        ["ddc-cg-etl-0", "ddc-cg-etl-1", "ddc-cg-etl-2"]
    );

    scale_etl(env, 1).await;
    // The highest ordinals are decommissioned; their pods stay meanwhile.
    eventually("two BEs decommissioning", 20, || async {
        let going: Vec<String> = s
            .sim
            .backends_in_group("cg_etl")
            .into_iter()
            .filter(|b| b.decommissioned)
            .map(|b| b.host.split('.').next().unwrap().to_string())
            .collect();
        (going.len() == 2).then_some(going)
    })
    .await
    .iter()
    .for_each(|pod| assert!(pod == "ddc-cg-etl-1" || pod == "ddc-cg-etl-2"));
    assert_eq!(
        statefulset_replicas(env, "ddc-cg-etl").await,
        3,
        "no BE goes before the FE let it go"
    );

    let cluster = members_synced(env).await;
    eventually("ddc-cg-etl shrunk", 30, || async {
        (statefulset_replicas(env, "ddc-cg-etl").await == 1).then_some(())
    })
    .await;
    assert_eq!(group_pods(&s.sim, "cg_etl"), ["ddc-cg-etl-0"]);
    assert_eq!(group_pods(&s.sim, "cg_query"), ["ddc-cg-query-0"]);
    // Cloud mode keeps a decommissioned BE listed (no tablets left) until
    // it is dropped: the operator drops it once its tablets moved.
    for pod in ["ddc-cg-etl-1", "ddc-cg-etl-2"] {
        let said = statements_naming(&s.sim, pod);
        let decommissioned = said.iter().position(|q| q.contains("DECOMMISSION BACKEND"));
        let dropped = said.iter().position(|q| q.contains("DROPP BACKEND"));
        assert!(
            decommissioned.is_some() && dropped > decommissioned,
            "{pod}: decommissioned, then dropped: {said:?}"
        );
    }
    eventually("the pods that went", 30, || async {
        let log = watch.log();
        (log.deletions().len() == 2).then_some(())
    })
    .await;
    let log = watch.log();
    for pod in ["ddc-cg-etl-1", "ddc-cg-etl-2"] {
        assert_eq!(
            log.listed_when_deleted.get(pod),
            Some(&false),
            "{pod} went while the FE still listed it"
        );
    }
    let groups = cluster.status.unwrap().compute_group_statuses.unwrap();
    assert_eq!(groups[0].replicas, Some(1));
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_group_scaled_back_up_mid_decommission_finishes_it_and_rejoins() {
    let config = FeSimConfig {
        new_backend_tablets: 60,
        drain_rate: 10.0,
        ..FeSimConfig::cloud()
    };
    let s = setup("ddc-back-up", config).await;
    let env = &s.env;
    env.create_ddc(&three_etl(Some(true))).await;
    members_synced(env).await;
    let uids = env::pod_uids(env).await;

    scale_etl(env, 1).await;
    eventually("two BEs decommissioning", 20, || async {
        let going = s
            .sim
            .backends_in_group("cg_etl")
            .iter()
            .filter(|b| b.decommissioned)
            .count();
        (going == 2).then_some(())
    })
    .await;
    scale_etl(env, 3).await;
    // Cloud mode cannot cancel it: status says the decommission finishes.
    let message = eventually("status says why it waits", 20, || async {
        let c = get(env).await;
        let nodes = c.status?.membership?.nodes;
        nodes
            .into_iter()
            .find(|n| n.pod == "ddc-cg-etl-2" && n.state == "decommissioning")
            .and_then(|n| n.message)
            .filter(|m| m.contains("CANCEL DECOMMISSION"))
    })
    .await;
    assert!(message.contains("Unsupported operation"), "{message}");

    // Then both are dropped, and their pods restart and join afresh.
    members_synced(env).await;
    eventually("cg_etl back at three BEs", 30, || async {
        let bes = s.sim.backends_in_group("cg_etl");
        (bes.len() == 3 && bes.iter().all(|b| !b.decommissioned)).then_some(())
    })
    .await;
    assert_eq!(statefulset_replicas(env, "ddc-cg-etl").await, 3);
    let after = env::pod_uids(env).await;
    assert_eq!(after["ddc-cg-etl-0"], uids["ddc-cg-etl-0"]);
    for pod in ["ddc-cg-etl-1", "ddc-cg-etl-2"] {
        assert_ne!(after[pod], uids[pod], "{pod} restarted to join afresh");
        let said = statements_naming(&s.sim, pod).join("\n");
        assert!(said.contains("DROPP BACKEND"), "{said}");
    }
    assert!(
        !s.sim
            .statements()
            .iter()
            .any(|q| q.starts_with("CANCEL DECOMMISSION")),
        "no statement cloud mode refuses"
    );
    // Events of one reason close together may be folded into one.
    let rejoining = eventually("the Rejoining events", 10, || async {
        let notes = event_notes(env, "Rejoining").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        rejoining[0].contains("Unsupported operation"),
        "{rejoining:?}"
    );
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_group_scale_down_without_decommission_drops_at_once() {
    let config = FeSimConfig {
        new_backend_tablets: 60,
        // The FE would take minutes to move the tablets: nothing waits for it.
        drain_rate: 0.1,
        ..FeSimConfig::cloud()
    };
    let s = setup("ddc-drop", config).await;
    let env = &s.env;
    env.create_ddc(&three_etl(None)).await;
    members_synced(env).await;

    scale_etl(env, 1).await;
    eventually("ddc-cg-etl shrunk and its BEs dropped", 20, || async {
        (statefulset_replicas(env, "ddc-cg-etl").await == 1
            && group_pods(&s.sim, "cg_etl") == ["ddc-cg-etl-0"])
        .then_some(())
    })
    .await;
    for pod in ["ddc-cg-etl-1", "ddc-cg-etl-2"] {
        let said = statements_naming(&s.sim, pod).join("\n");
        assert!(said.contains("DROPP BACKEND"), "{said}");
        assert!(!said.contains("DECOMMISSION"), "{said}");
    }
    assert!(
        statements_naming(&s.sim, "ddc-cg-etl-0")
            .iter()
            .all(|s| !s.contains("DROP"))
    );
    members_synced(env).await;
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_group_removed_from_the_spec_leaves_the_fe_and_keeps_its_volumes() {
    let s = setup("ddc-remove-cg", FeSimConfig::cloud()).await;
    let env = &s.env;
    env.create_ddc(DDC).await;
    members_synced(env).await;
    let claims_before = names::<PersistentVolumeClaim>(env).await;
    let query_claims: Vec<&String> = claims_before
        .iter()
        .filter(|c| c.contains("ddc-cg-query-0"))
        .collect();
    assert!(!query_claims.is_empty(), "{claims_before:?}");

    set_compute_groups(env, compute_groups_of(|g| g.truncate(1))).await;
    eventually(
        "cg_query gone from the FE and the namespace",
        30,
        || async {
            let gone = statefulset(env, "ddc-cg-query").await.is_none()
                && s.sim.backends_in_group("cg_query").is_empty();
            gone.then_some(())
        },
    )
    .await;
    let said = statements_naming(&s.sim, "ddc-cg-query-0").join("\n");
    assert!(said.contains("DROPP BACKEND"), "{said}");
    let services = eventually("its Services deleted", 30, || async {
        let services = names::<Service>(env).await;
        (!services.iter().any(|s| s.starts_with("ddc-cg-query"))).then_some(services)
    })
    .await;
    assert!(services.contains(&"ddc-cg-etl".to_string()), "{services:?}");
    assert!(
        services.contains(&"ddc-cg-etl-external".to_string()),
        "{services:?}"
    );
    // Its volumes stay; the other group is untouched.
    assert_eq!(names::<PersistentVolumeClaim>(env).await, claims_before);
    assert_eq!(
        group_pods(&s.sim, "cg_etl"),
        ["ddc-cg-etl-0", "ddc-cg-etl-1"]
    );

    let cluster = members_synced(env).await;
    let status = cluster.status.unwrap();
    let groups: Vec<_> = status
        .compute_group_statuses
        .unwrap()
        .into_iter()
        .map(|g| g.unique_id.unwrap())
        .collect();
    assert_eq!(groups, ["cg_etl"]);
    assert_eq!(status.cluster_health.unwrap().cg_count, Some(1));
    assert!(
        event_notes(env, "ComputeGroupNodeDropped")
            .await
            .iter()
            .any(|n| n.contains("ddc-cg-query-0") && n.contains("cg_query")),
    );
    s.env.finish().await;
}

/// The uids of the namespace's StatefulSets and pods, sorted.
async fn uids(env: &Env) -> Vec<String> {
    let statefulsets = env.api::<StatefulSet>().list(&Default::default()).await;
    let pods = env.api::<Pod>().list(&Default::default()).await;
    let mut uids: Vec<String> = statefulsets
        .unwrap()
        .items
        .iter()
        .filter_map(|s| s.uid())
        .chain(pods.unwrap().items.iter().filter_map(|p| p.uid()))
        .collect();
    uids.sort();
    uids
}

/// The message of the `Ready` condition and what status says of part `part`.
async fn waiting_of(env: &Env, part: &str) -> Option<(String, String)> {
    let c = env
        .api::<DorisDisaggregatedCluster>()
        .get(NAME)
        .await
        .ok()?;
    let ready = ddc_condition(&c, "Ready")?;
    if ready.status != "False" {
        return None;
    }
    let component = c.status?.components?.get(part)?.clone();
    Some((ready.message, component.component_condition.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_meta_service_is_down_the_fe_waits_and_nothing_is_deleted() {
    let s = setup("ddc-ms-down", FeSimConfig::cloud()).await;
    let env = &s.env;
    // The meta service pod does not become Ready: held on the emulator; on
    // a real cluster its image cannot be pulled.
    let yaml = match env.driver() {
        Some(driver) => {
            driver.hold("ddc-ms-0");
            DDC.to_string()
        }
        None => ddc_with(|v| {
            v["spec"]["metaService"]["image"] = json!("apache/doris:ms-0.0.0-not-published")
        }),
    };
    env.create_ddc(&yaml).await;
    let (ready, fe) = eventually("status says the FE waits", 30, || async {
        let (ready, fe) = waiting_of(env, "fe").await?;
        fe.contains("meta service").then_some((ready, fe))
    })
    .await;
    assert!(fe.contains("ddc-ms"), "{fe}");
    assert!(ready.contains("meta service"), "{ready}");
    let (_, group) = waiting_of(env, "cg-etl").await.unwrap();
    assert!(group.contains("waiting for"), "{group}");
    // Only the meta service exists, however long it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(names::<StatefulSet>(env).await, ["ddc-ms"]);
    let cluster = get(env).await;
    assert_eq!(
        cluster
            .status
            .unwrap()
            .cluster_health
            .unwrap()
            .health
            .as_deref(),
        Some("red")
    );

    // The meta service comes up: the rest follows.
    match env.driver() {
        Some(driver) => driver.release("ddc-ms-0"),
        None => {
            patch(
                env,
                json!({"spec": {"metaService": {"image": "apache/doris:ms-3.0.3"}}}),
            )
            .await
            .unwrap();
            // As a user would: once the StatefulSet carries the fixed
            // image, the pod that never started goes, and comes back from
            // the fixed template.
            eventually("ddc-ms with the fixed image", 30, || async {
                let sts = env.api::<StatefulSet>().get("ddc-ms").await.ok()?;
                let image = sts.spec.template.spec?.containers[0].image.clone()?;
                (image == "apache/doris:ms-3.0.3").then_some(())
            })
            .await;
            let _ = env
                .api::<Pod>()
                .delete("ddc-ms-0", &Default::default())
                .await;
        }
    }
    members_synced(env).await;
    assert_eq!(
        names::<StatefulSet>(env).await,
        ["ddc-cg-etl", "ddc-cg-query", "ddc-fe", "ddc-ms"]
    );

    // Down again once everything runs (only the emulator can make a
    // running pod not Ready): nothing is deleted or restarted.
    let Some(driver) = env.driver_only("it makes a running pod not Ready") else {
        return s.env.finish().await;
    };
    let before = uids(env).await;
    driver.hold("ddc-ms-0");
    eventually("the meta service reported down", 30, || async {
        let c = get(env).await;
        let ms = c.status?.meta_service_status?;
        (ms.available_status.as_deref() == Some("UnAvailable")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = uids(env).await;
    assert_eq!(after, before, "nothing deleted or restarted");
    assert_eq!(s.sim.backends().len(), 3, "no BE left the FE");
    driver.release("ddc-ms-0");
    members_synced(env).await;
    s.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fe_observers_leave_the_fe_before_their_pods_and_too_few_fes_are_refused() {
    let s = setup("ddc-fe-observers", FeSimConfig::cloud()).await;
    let env = &s.env;
    env.create_ddc(&ddc_with(|v| v["spec"]["feSpec"]["replicas"] = json!(3)))
        .await;
    members_synced(env).await;
    // By pod: the FEs register in the order their pods start, which on a
    // real cluster is any order.
    let roles = |sim: &FeSim| -> Vec<(String, String)> {
        let mut roles: Vec<(String, String)> = sim
            .frontends()
            .into_iter()
            .map(|f| (f.host.split('.').next().unwrap().to_string(), f.role))
            .collect();
        roles.sort();
        roles
    };
    assert_eq!(
        roles(&s.sim),
        [
            ("ddc-fe-0".to_string(), "FOLLOWER".to_string()),
            ("ddc-fe-1".to_string(), "OBSERVER".to_string()),
            ("ddc-fe-2".to_string(), "OBSERVER".to_string()),
        ]
    );
    let watch = Watch::start(env, s.sim.clone()).synced().await;

    patch(env, json!({"spec": {"feSpec": {"replicas": 1}}}))
        .await
        .unwrap();
    eventually("ddc-fe shrunk", 30, || async {
        (statefulset_replicas(env, "ddc-fe").await == 1 && watch.log().deletions().len() == 2)
            .then_some(())
    })
    .await;
    assert_eq!(
        roles(&s.sim),
        [("ddc-fe-0".to_string(), "FOLLOWER".to_string())]
    );
    let log = watch.log();
    for pod in ["ddc-fe-1", "ddc-fe-2"] {
        assert_eq!(
            log.listed_when_deleted.get(pod),
            Some(&false),
            "{pod} went while the FE still listed it: {:?}",
            log.entries
        );
        let said = statements_naming(&s.sim, pod).join("\n");
        assert!(said.contains("DROP OBSERVER"), "{said}");
    }
    members_synced(env).await;

    // Fewer FEs than electionNumber (1): refused by the API server (its CEL
    // rule) or reported in status, naming the field; the spec stays as the
    // user wrote it, and the FE as it is.
    match patch(env, json!({"spec": {"feSpec": {"replicas": 0}}})).await {
        Err(kube::Error::Api(e)) => {
            assert!(e.message.contains("spec.feSpec.replicas"), "{}", e.message);
            assert_eq!(get(env).await.spec.fe_spec.replicas(), 1);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => {
            let ready = eventually("the refusal in status", 30, || async {
                let c = get(env).await;
                let ready = ddc_condition(&c, "Ready")?;
                (ready.reason == "InvalidSpec"
                    && c.status?.observed_generation == c.metadata.generation)
                    .then_some(ready)
            })
            .await;
            assert_eq!(ready.status, "False");
            assert!(
                ready.message.contains("spec.feSpec.replicas"),
                "{}",
                ready.message
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(get(env).await.spec.fe_spec.common.replicas, Some(0));
        }
    }
    assert_eq!(statefulset_replicas(env, "ddc-fe").await, 1);
    assert_eq!(s.sim.frontends().len(), 1);
    s.env.finish().await;
}

/// Each deletion comes after the pod deleted before it was back Ready.
fn one_at_a_time(log: &Log) {
    let mut back: BTreeSet<&str> = BTreeSet::new();
    let mut last: Option<&str> = None;
    for (what, pod) in &log.entries {
        match *what {
            "ready" => {
                back.insert(pod);
            }
            "deleted" => {
                if let Some(prev) = last {
                    assert!(
                        back.contains(prev),
                        "{pod} went before {prev} was back: {:?}",
                        log.entries
                    );
                }
                back.remove(pod.as_str());
                last = Some(pod);
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_group_image_change_rolls_one_be_at_a_time_across_an_operator_restart() {
    let mut s = setup("ddc-rollout", FeSimConfig::cloud()).await;
    s.env.create_ddc(&three_etl(None)).await;
    members_synced(&s.env).await;
    let watch = Watch::start(&s.env, s.sim.clone()).synced().await;

    let groups = compute_groups_of(|g| {
        g[0]["replicas"] = json!(3);
        g[0]["image"] = json!("apache/doris:be-3.0.4");
    });
    set_compute_groups(&s.env, groups).await;
    // The operator stops after the first restart, and a new one resumes.
    eventually("the first pod restarted", 30, || async {
        (!watch.log().deletions().is_empty()).then_some(())
    })
    .await;
    s.env.stop_operator().await;
    let stopped_after = watch.log().deletions();
    assert!(
        stopped_after.len() < 3,
        "stopped mid-rollout: {stopped_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Nothing moves while no operator runs.
    assert_eq!(watch.log().deletions(), stopped_after);
    s.env.start_operator();

    let env = &s.env;
    eventually("every cg_etl pod on the new image", 60, || async {
        let pods = env.api::<Pod>().list(&Default::default()).await.ok()?;
        let etl: Vec<&Pod> = pods
            .items
            .iter()
            .filter(|p| p.name_any().starts_with("ddc-cg-etl-"))
            .collect();
        let done = etl.len() == 3
            && etl.iter().all(|p| {
                is_ready(p)
                    && p.spec.as_ref().unwrap().containers[0].image.as_deref()
                        == Some("apache/doris:be-3.0.4")
            });
        let c = get(env).await;
        let rolling = c.status.as_ref()?.rollout.is_some();
        (done && !rolling && ddc_condition(&c, "Ready")?.status == "True").then_some(())
    })
    .await;

    let log = watch.log();
    assert_eq!(
        log.deletions(),
        ["ddc-cg-etl-2", "ddc-cg-etl-1", "ddc-cg-etl-0"],
        "highest ordinal first, each once, nothing else: {:?}",
        log.entries
    );
    one_at_a_time(&log);
    // Cloud mode refuses `ALTER SYSTEM MODIFY BACKEND`: queries are not
    // stopped through the FE, the image's pre-stop hook drains the BE, and
    // each step says so.
    assert!(
        !s.sim
            .statements()
            .iter()
            .any(|q| q.contains("MODIFY BACKEND")),
        "no statement cloud mode refuses"
    );
    for pod in ["ddc-cg-etl-2", "ddc-cg-etl-1", "ddc-cg-etl-0"] {
        assert_eq!(log.drained_when_deleted.get(pod), Some(&vec![false]));
    }
    let steps = event_notes(env, "RolloutStep").await;
    assert!(
        steps.len() >= 3
            && steps.iter().all(
                |n| n.contains("refuses ALTER SYSTEM MODIFY BACKEND") && n.contains("pre-stop")
            ),
        "{steps:?}"
    );
    members_synced(env).await;
    s.env.finish().await;
}

/// `yaml` is refused by the API server naming `field`, or accepted and
/// then reported in status (Ready False, InvalidSpec) naming it, with
/// nothing made for it.
async fn refused_naming(env: &Env, yaml: &str, field: &str) {
    match env.try_create_ddc(yaml).await {
        Err(kube::Error::Api(e)) => {
            assert!(e.message.contains(field), "{field}: {}", e.message);
            return;
        }
        Err(e) => panic!("{e}"),
        Ok(_) => {}
    }
    let ready = eventually(&format!("{field} reported"), 30, || async {
        let c = get(env).await;
        let ready = ddc_condition(&c, "Ready")?;
        (ready.reason == "InvalidSpec").then_some(ready)
    })
    .await;
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains(field), "{field}: {}", ready.message);
    let degraded = ddc_condition(&get(env).await, "Degraded").unwrap();
    assert_eq!(degraded.status, "True");
    tokio::time::sleep(Duration::from_secs(2)).await;
    nothing_applied(env).await;
    env.api::<DorisDisaggregatedCluster>()
        .delete(NAME, &Default::default())
        .await
        .unwrap();
    eventually("the cluster gone", 30, || async {
        env.api::<DorisDisaggregatedCluster>()
            .get_opt(NAME)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}

async fn nothing_applied(env: &Env) {
    assert_eq!(names::<StatefulSet>(env).await, Vec::<String>::new());
    assert_eq!(names::<Service>(env).await, Vec::<String>::new());
    let made: Vec<String> = names::<ConfigMap>(env)
        .await
        .into_iter()
        .filter(|c| c.starts_with("ddc-"))
        .collect();
    assert_eq!(made, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_on_its_field_with_nothing_applied() {
    let s = setup("ddc-bad-input", FeSimConfig::cloud()).await;
    let env = &s.env;
    refused_naming(
        env,
        &ddc_with(|v| v["spec"]["computeGroups"][1]["uniqueId"] = json!("cg_etl")),
        "spec.computeGroups",
    )
    .await;
    refused_naming(
        env,
        &ddc_with(|v| v["spec"]["computeGroups"][1]["uniqueId"] = json!("cg.query!")),
        "spec.computeGroups[1].uniqueId",
    )
    .await;
    refused_naming(
        env,
        &ddc_with(|v| {
            v["spec"]["metaService"]
                .as_object_mut()
                .unwrap()
                .remove("fdb");
        }),
        "spec.metaService.fdb",
    )
    .await;

    // The fdb ConfigMap the spec names does not exist yet: said in status,
    // nothing applied; once it exists, the cluster comes up with its
    // connection string.
    let yaml = ddc_with(|v| {
        v["spec"]["metaService"]["fdb"] =
            json!({"configMapNamespaceName": {"namespace": env.namespace, "name": "fdb-config"}})
    });
    env.create_ddc(&yaml).await;
    let ready = eventually("ConfigMapMissing in status", 30, || async {
        let c = get(env).await;
        let ready = ddc_condition(&c, "Ready")?;
        (ready.reason == "ConfigMapMissing").then_some(ready)
    })
    .await;
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("fdb-config"), "{}", ready.message);
    tokio::time::sleep(Duration::from_secs(2)).await;
    nothing_applied(env).await;

    let address = "doris:fdbclusterid@10.0.0.21:4500";
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "fdb-config"},
        "data": {"cluster-file": address},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    wait_ddc_ready(env, NAME).await;
    let ms = statefulset(env, "ddc-ms").await.unwrap();
    let vars = ms.spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert!(
        vars.iter()
            .any(|e| e.name == "FDB_ENDPOINT" && e.value.as_deref() == Some(address)),
        "{vars:?}"
    );
    s.env.finish().await;
}

/// A configuration change of a disaggregated cluster goes live where Doris
/// allows it, as for a DorisCluster: the FE's key through the FE, a compute
/// group's key on each of its BEs, and no pod restarts; a key Doris cannot
/// change at run time restarts that group's BEs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_fe_and_compute_group_keys_go_live_without_a_restart() {
    let mut env = Env::without_operator("ddc-liveconf").await;
    let master = fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let sim = members::simulated_fe_at(&mut env, FeSimConfig::cloud(), &master).await;
    let be = Arc::new(besim::BeSim::start().await);
    let addr = be.addr().to_string();
    env.be_resolver = Some(Arc::new(move |_| Some(addr.clone())));
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 1);
    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 5000\n").await;
    env::put_file(
        &env,
        "be-conf",
        "be.conf",
        "disable_auto_compaction = false\n",
    )
    .await;
    env.create_ddc(&ddc_with(|d| {
        d["spec"]["feSpec"]["configMaps"] = json!([{"name": "fe-conf"}]);
        d["spec"]["computeGroups"][0]["configMaps"] = json!([{"name": "be-conf"}]);
    }))
    .await;
    members_synced(&env).await;
    let before = uids(&env).await;

    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n").await;
    env::put_file(
        &env,
        "be-conf",
        "be.conf",
        "disable_auto_compaction = true\n",
    )
    .await;
    let live = |part: &'static str| {
        let env = &env;
        async move {
            eventually(&format!("{part}'s change live"), 30, || async {
                let entry = get(env)
                    .await
                    .status?
                    .configuration?
                    .into_iter()
                    .find(|e| e.component == part)?;
                (entry.state == "applied" && !entry.live.is_empty()).then_some(entry)
            })
            .await
        }
    };
    let keys = |e: &doris_operator::crd::ConfigChangeStatus| -> Vec<(String, String, i32)> {
        e.live
            .iter()
            .map(|l| (l.key.clone(), l.value.clone(), l.nodes))
            .collect()
    };
    let fe = live("fe").await;
    assert_eq!(keys(&fe), [("qe_slow_log_ms".into(), "3000".into(), 1)]);
    assert_eq!(sim.setting("qe_slow_log_ms").as_deref(), Some("3000"));
    let etl = live("cg-etl").await;
    assert_eq!(
        keys(&etl),
        [("disable_auto_compaction".into(), "true".into(), 2)]
    );
    assert!(
        etl.awaiting_restart.is_empty() && etl.refused.is_empty(),
        "{etl:?}"
    );
    for pod in ["ddc-cg-etl-0", "ddc-cg-etl-1"] {
        assert_eq!(
            be.setting(pod, "disable_auto_compaction").as_deref(),
            Some("true"),
            "{pod}"
        );
    }
    // The other group's configuration did not change.
    assert!(
        be.calls().iter().all(|c| c.node.starts_with("ddc-cg-etl-")),
        "{:?}",
        be.calls()
    );
    assert_eq!(uids(&env).await, before, "no pod restarted");

    // A key Doris cannot change at run time restarts the group's BEs, and
    // only those.
    let pod_uids = || env::pod_uids(&env);
    let pods_before = pod_uids().await;
    let conf = "disable_auto_compaction = true\nmem_limit = 80%\n";
    env::put_file(&env, "be-conf", "be.conf", conf).await;
    eventually("the etl BEs restarted", 60, || async {
        let now = pod_uids().await;
        ["ddc-cg-etl-0", "ddc-cg-etl-1"]
            .iter()
            .all(|p| {
                now.get(*p)
                    .is_some_and(|uid| Some(uid) != pods_before.get(*p))
            })
            .then_some(())
    })
    .await;
    members_synced(&env).await;
    let after = pod_uids().await;
    for (pod, uid) in &pods_before {
        assert_eq!(
            after.get(pod) != Some(uid),
            pod.starts_with("ddc-cg-etl-"),
            "{pod} restarted only if an etl BE"
        );
    }
    assert_eq!(
        be.calls().len(),
        2,
        "mem_limit not set live: {:?}",
        be.calls()
    );
    env.finish().await;
}
