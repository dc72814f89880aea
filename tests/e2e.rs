//! The operator end to end: the real controller against an API server.
//!
//! By default the API server is the in-process emulator in tests/apiserver,
//! with a driver standing in for the StatefulSet controller and kubelets.
//! With DORIS_OPERATOR_TEST_KUBECONFIG naming a kubeconfig, the same tests
//! run against that cluster (each in a namespace of its own, with the CRD
//! applied first); only the fault-injection test needs the emulator. The
//! tests check what a user would: objects, status, Events, PVCs.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use doris_operator::conventions::ConventionBundle;
use doris_operator::crd::DorisCluster;
use env::reads;
use env::{Env, SAMPLE, eventually, wait_ready};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_gets_its_objects_and_becomes_ready() {
    let env = Env::start("create").await;
    env.create_cluster(SAMPLE).await;
    let cluster = wait_ready(&env, "doris").await;

    let sts = env.api::<StatefulSet>();
    for name in ["doris-fe", "doris-be"] {
        let s = sts.get(name).await.expect("statefulset exists");
        assert_eq!(s.spec.replicas, Some(3));
        assert_eq!(s.spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert!(
            s.owner_references()
                .iter()
                .any(|o| o.uid == cluster.uid().unwrap() && o.controller == Some(true)),
            "{name} is owned by the cluster"
        );
    }
    let svc = env.api::<Service>();
    for name in [
        "doris-fe-internal",
        "doris-fe-service",
        "doris-be-internal",
        "doris-be-service",
    ] {
        svc.get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let cm = env
        .api::<ConfigMap>()
        .get("doris-fe-conf")
        .await
        .expect("rendered fe.conf");
    assert!(cm.data.unwrap()["fe.conf"].contains("query_port = 9030"));

    let status = cluster.status.unwrap();
    let fe = status.fe_status.unwrap();
    assert_eq!(fe.component_condition.phase, "available");
    assert_eq!(
        fe.running_instances.unwrap(),
        ["doris-fe-0", "doris-fe-1", "doris-fe-2"]
    );
    assert_eq!(fe.access_service.as_deref(), Some("doris-fe-service"));
    assert_eq!(status.be_status.unwrap().ready_replicas, Some(3));
    assert_eq!(
        status.conventions_revision.as_deref(),
        Some(ConventionBundle::embedded().unwrap().revision())
    );

    // `kubectl describe dcr doris`: a new cluster's objects are in its
    // status, not in an Event each.
    assert_eq!(applied_events(&env, "doris").await, Vec::<String>::new());
    env.finish().await;
}

/// The notes of the `Applied` Events about cluster `name`.
async fn applied_events(env: &Env, name: &str) -> Vec<String> {
    let events = env.api::<k8s_openapi::api::events::v1::Event>();
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("Applied")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_edits_reach_the_objects() {
    // A new BE image restarts the BEs, each drained through the FE and
    // waited for until the FE lists it alive: an FE that knows them is needed.
    let mut env = Env::without_operator("edit").await;
    let sim = fesim::FeSim::start(Default::default()).await;
    for i in 0..3 {
        let host = format!(
            "doris-be-{i}.doris-be-internal.{}.svc.cluster.local",
            env.namespace
        );
        sim.register_backend(&host, 9050).unwrap();
    }
    let port = sim.addr().port();
    env.fe_resolver = Some(std::sync::Arc::new(move |_, _| {
        Some(("127.0.0.1".to_string(), port))
    }));
    env.start_operator();
    env.create_cluster(&SAMPLE.replace(
        "  name: doris\n",
        "  name: doris\n  annotations:\n    doris.selectdb.com/drain-seconds: \"0\"\n",
    ))
    .await;
    wait_ready(&env, "doris").await;

    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"beSpec": {"replicas": 4, "image": "apache/doris:be-2.1.9"}}}),
            ),
        )
        .await
        .unwrap();
    let sts = env.api::<StatefulSet>();
    eventually("BE StatefulSet follows the spec", 20, || async {
        let s = sts.get("doris-be").await.ok()?;
        let image = s.spec.template.spec.as_ref()?.containers[0].image.clone()?;
        (s.spec.replicas == Some(4) && image == "apache/doris:be-2.1.9").then_some(())
    })
    .await;
    // What the user sees in `kubectl describe dcr doris`.
    let applied = eventually("an Applied event for the edit", 20, || async {
        let notes = applied_events(&env, "doris").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert!(
        applied.iter().any(|n| n.contains("StatefulSet/doris-be")),
        "{applied:?}"
    );
    // Ready may still be the status from before the edit: wait for the
    // status to count the new replicas.
    eventually("the status counts 4 BEs", 30, || async {
        let cluster = env.api::<DorisCluster>().get("doris").await.ok()?;
        (cluster.status?.be_status?.replicas == Some(4)).then_some(())
    })
    .await;
    wait_ready(&env, "doris").await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_cluster_removes_its_objects_and_keeps_its_data() {
    let env = Env::start("delete").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    let pvcs = env.api::<PersistentVolumeClaim>();
    eventually("BE data volumes", 20, || async {
        (pvcs.list(&Default::default()).await.ok()?.items.len() == 3).then_some(())
    })
    .await;

    env.api::<DorisCluster>()
        .delete("doris", &DeleteParams::background())
        .await
        .unwrap();
    let sts = env.api::<StatefulSet>();
    let svc = env.api::<Service>();
    eventually("objects garbage-collected", 30, || async {
        let left = sts.list(&Default::default()).await.ok()?.items.len()
            + svc.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    let names: Vec<_> = pvcs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(
        names,
        ["data-doris-be-0", "data-doris-be-1", "data-doris-be-2"]
    );
    env.finish().await;
}

/// Bringing a cluster up writes its status on news a user acts on (its
/// objects made, its components available, Ready), not once per pod, nor
/// once per so many seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bringing_a_cluster_up_writes_its_status_on_news_only() {
    let (env, _fe, _) = with_members("status-news").await;
    let from = reads::mark(&env);
    env.create_cluster(SAMPLE).await;
    if !reads::counted(&from) {
        eprintln!("writes are not counted here: no emulator and no audit log named");
        wait_ready(&env, "doris").await;
        return env.finish().await;
    }
    assert_status_written_on_news(&env, &from).await;
    env.finish().await;
}

/// The operator, pointed at an FE simulator that lists each node once its
/// pod is Ready and registers (as Doris's entrypoints do).
async fn with_members(test: &str) -> (Env, members::MemberDriver, Arc<fesim::FeSim>) {
    let mut env = Env::without_operator(test).await;
    let sim = members::simulated_fe(&mut env, Default::default(), "doris").await;
    env.start_operator();
    let driver = members::MemberDriver::start(&env, sim.clone(), 3);
    (env, driver, sim)
}

/// Once cluster `doris` is Ready and the operator has stopped writing: its
/// status was written 2 or 3 times since `from` (made, then Ready; a
/// component available well before the others may come in between), and
/// the last write says what the FE says: every node listed.
async fn assert_status_written_on_news(env: &Env, from: &reads::Mark) {
    wait_ready(env, "doris").await;
    reads::settled(env, 5, 120).await;
    let status: Vec<String> = reads::writes_since(env, from)
        .into_iter()
        .filter(|w| w.split('?').next().is_some_and(|p| p.ends_with("/status")))
        .collect();
    assert!(
        (2..=3).contains(&status.len()),
        "status writes while the cluster came up: {status:#?}"
    );
    // What those writes left says what the FE says: every node listed.
    let written = env
        .api::<DorisCluster>()
        .get("doris")
        .await
        .unwrap()
        .status
        .unwrap();
    let synced = written
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "MembersSynced");
    assert_eq!(
        synced.map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Synced")),
        "{written:#?}"
    );
    assert!(
        written.membership.is_some_and(|m| m.nodes.is_empty()),
        "no node left in flux"
    );
}

/// A cluster whose BEs come up one by one over half a minute writes its
/// status no more often than one that comes up at once. The pods are held
/// back by the emulator's stand-in kubelet, so this runs there only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_cluster_writes_its_status_no_more_than_a_fast_one() {
    let (env, _fe, sim) = with_members("status-slow").await;
    let Some(driver) = env.driver_only("holds pods back from Ready") else {
        return env.finish().await;
    };
    let bes = ["doris-be-0", "doris-be-1", "doris-be-2"];
    for pod in bes {
        driver.hold(pod);
        // The FE lists the BEs before their pods are Ready: membership is
        // settled before the cluster is, and status must still say so.
        sim.register_backend(&members::fqdn(&env, pod), members::HEARTBEAT_PORT)
            .unwrap();
    }
    let from = reads::mark(&env);
    env.create_cluster(SAMPLE).await;
    for pod in bes {
        tokio::time::sleep(Duration::from_secs(12)).await;
        driver.release(pod);
    }
    assert_status_written_on_news(&env, &from).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_cluster_costs_no_writes() {
    let env = Env::start("converged").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    // Let the last pod and status events settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = env::object_versions(&env).await;
    let status_before = env.api::<DorisCluster>().get("doris").await.unwrap().status;

    // A label change wakes the reconciler without changing what it plans.
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    if let Some(emulator) = &env.emulator {
        emulator.reset_requests();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(
        env::object_versions(&env).await,
        before,
        "no child object was rewritten"
    );
    let after = env.api::<DorisCluster>().get("doris").await.unwrap();
    assert_eq!(after.status, status_before, "status was not rewritten");
    if let Some(emulator) = &env.emulator {
        assert_eq!(emulator.count_writes(), 0, "{:?}", emulator.requests());
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_volumes_go_with_the_cluster_only_when_asked() {
    let env = Env::start("pvc-delete").await;
    let asked = SAMPLE.replace(
        "  name: doris\n",
        "  name: doris\n  annotations:\n    doris.selectdb.com/delete-pvcs-on-delete: \"true\"\n",
    );
    env.create_cluster(&asked).await;
    wait_ready(&env, "doris").await;
    let pvcs = env.api::<PersistentVolumeClaim>();
    eventually("BE data volumes", 20, || async {
        (pvcs.list(&Default::default()).await.ok()?.items.len() == 3).then_some(())
    })
    .await;
    let clusters = env.api::<DorisCluster>();
    let held = clusters.get("doris").await.unwrap();
    assert!(
        held.finalizers()
            .iter()
            .any(|f| f == "doris.selectdb.com/pvc-cleanup")
    );

    clusters
        .delete("doris", &DeleteParams::background())
        .await
        .unwrap();
    eventually("cluster and its volumes gone", 30, || async {
        let volumes = pvcs.list(&Default::default()).await.ok()?.items.len();
        let gone = clusters.get_opt("doris").await.ok()?.is_none();
        (volumes == 0 && gone).then_some(())
    })
    .await;
    env.finish().await;
}

/// The sample cluster with its BE claims in StorageClass `class`, of
/// `size`.
fn sample_in_class(class: &str, size: &str) -> String {
    SAMPLE
        .replace(
            "accessModes: [ReadWriteOnce]",
            &format!("storageClassName: {class}\n        accessModes: [ReadWriteOnce]"),
        )
        .replace("storage: 10Gi", &format!("storage: {size}"))
}

/// Creates the sample cluster with 10Gi claims in `class`, and waits for
/// it to be Ready with its claims made.
async fn create_with_claims(env: &Env, class: &str) {
    env.create_cluster(&sample_in_class(class, "10Gi")).await;
    wait_ready(env, "doris").await;
    eventually("BE data volumes", 20, || async {
        (claim_sizes(env).await.len() == 3).then_some(())
    })
    .await;
}

/// Each claim's storage request, by name.
async fn claim_sizes(env: &Env) -> Vec<(String, String)> {
    let mut sizes: Vec<(String, String)> = env
        .api::<PersistentVolumeClaim>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let size = p.spec.unwrap().resources.unwrap().requests.unwrap()["storage"]
                .0
                .clone();
            (p.metadata.name.unwrap(), size)
        })
        .collect();
    sizes.sort();
    sizes
}

/// The storage request of a StatefulSet's first claim template.
fn template_storage(sts: StatefulSet) -> String {
    sts.spec.volume_claim_templates.unwrap()[0]
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["storage"]
        .0
        .clone()
}

/// Waits for StatefulSet doris-be to carry a claim template of `size`.
async fn claim_template_reaches(env: &Env, size: &str) {
    eventually(
        &format!("the StatefulSet carries a claim template of {size}"),
        30,
        || async {
            let sts = env.api::<StatefulSet>().get_opt("doris-be").await.ok()??;
            (template_storage(sts) == size).then_some(())
        },
    )
    .await;
}

/// status.volumes as (claim, state) pairs.
async fn resize_states(env: &Env) -> Option<Vec<(String, String)>> {
    let c = env.api::<DorisCluster>().get("doris").await.ok()?;
    Some(
        c.status?
            .volumes?
            .into_iter()
            .map(|v| (v.claim, v.state))
            .collect(),
    )
}

const CLAIMS: [&str; 3] = ["data-doris-be-0", "data-doris-be-1", "data-doris-be-2"];

/// A claim template's request grows: the claims grow with it, status
/// follows each claim's resize to the end, and the StatefulSet is made
/// again with the new template without restarting a pod. A smaller
/// request is refused on the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_volumes_grow_and_never_shrink() {
    let env = Env::start("pvc-grow").await;
    let class = env::storage_class(&env, true).await;
    create_with_claims(&env, &class).await;

    let pods_before = be_pods(&env).await;
    // The kubelet of be-0 grows its file system only when let.
    if let Some(driver) = env.driver() {
        driver.hold_resize(&format!("{}/data-doris-be-0", env.namespace));
    }
    apply_cluster(&env, &sample_in_class(&class, "20Gi")).await;
    eventually("claims resized", 30, || async {
        claim_sizes(&env)
            .await
            .iter()
            .all(|(_, s)| s == "20Gi")
            .then_some(())
    })
    .await;
    if let Some(driver) = env.driver() {
        eventually(
            "be-0 waiting for its file system, the others done",
            30,
            || async {
                let states = resize_states(&env).await?;
                let expected = [
                    ("data-doris-be-0", "FileSystemResizePending"),
                    ("data-doris-be-1", "Resized"),
                    ("data-doris-be-2", "Resized"),
                ];
                let matches = states.len() == expected.len()
                    && states
                        .iter()
                        .zip(expected)
                        .all(|((c, s), (ec, es))| c == ec && s == es);
                matches.then_some(())
            },
        )
        .await;
        driver.release_resize(&format!("{}/data-doris-be-0", env.namespace));
        let done = eventually("every claim resized", 30, || async {
            let c = env.api::<DorisCluster>().get("doris").await.ok()?;
            let volumes = c.status?.volumes?;
            volumes
                .iter()
                .all(|v| v.state == "Resized")
                .then_some(volumes)
        })
        .await;
        assert!(
            done.iter()
                .all(|v| v.capacity.as_deref() == Some("20Gi") && v.component == "be"),
            "{done:?}"
        );
    } else {
        // A real cluster's resizer takes its time: each claim is listed.
        eventually("each claim's resize in status", 60, || async {
            let states = resize_states(&env).await?;
            (states.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>() == CLAIMS).then_some(())
        })
        .await;
    }
    // The StatefulSet is made again with the new claim template, and its
    // pods were not restarted.
    claim_template_reaches(&env, "20Gi").await;
    wait_ready(&env, "doris").await;
    assert_eq!(be_pods(&env).await, pods_before, "no BE pod restarted");
    assert_eq!(occurrences(&env, "ApplyRefused").await, 0);

    apply_cluster(&env, &sample_in_class(&class, "5Gi")).await;
    let refused = env::degraded_because(&env, "VolumeShrinkRefused").await;
    assert!(
        refused
            .message
            .starts_with("spec.beSpec.persistentVolumes:")
            && refused.message.contains("cannot shrink to 5Gi"),
        "{}",
        refused.message
    );
    assert!(
        claim_sizes(&env).await.iter().all(|(_, s)| s != "5Gi"),
        "no claim shrank"
    );
    env.finish().await;
}

/// Claims whose StorageClass does not allow expansion are not grown: the
/// API server's refusal is what status shows, on the field, and the
/// StatefulSet keeps its template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_class_that_cannot_expand_is_said_in_status() {
    let env = Env::start("pvc-fixed").await;
    let class = env::storage_class(&env, false).await;
    create_with_claims(&env, &class).await;
    apply_cluster(&env, &sample_in_class(&class, "20Gi")).await;
    let refused = env::degraded_because(&env, "VolumeExpansionRefused").await;
    assert!(
        refused
            .message
            .starts_with("spec.beSpec.persistentVolumes: growing the claims of data to 20Gi")
            && refused
                .message
                .contains("the storageclass that provisions the pvc must support resize"),
        "{}",
        refused.message
    );
    assert!(
        claim_sizes(&env).await.iter().all(|(_, s)| s == "10Gi"),
        "no claim changed"
    );
    let sts = env.api::<StatefulSet>().get("doris-be").await.unwrap();
    assert_eq!(
        template_storage(sts),
        "10Gi",
        "the StatefulSet keeps its template"
    );
    assert_eq!(occurrences(&env, "ApplyRefused").await, 0);
    env.finish().await;
}

/// An operator stopped after growing the claims, before making the
/// StatefulSet again, finishes the job when it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_interrupted_by_a_restart_is_finished() {
    let mut env = Env::start("pvc-restart").await;
    let class = env::storage_class(&env, true).await;
    create_with_claims(&env, &class).await;
    let pods_before = be_pods(&env).await;

    // Where an operator that stopped between its two writes leaves things:
    // the spec and every claim at the new size, the StatefulSet as it was.
    env.stop_operator().await;
    apply_cluster(&env, &sample_in_class(&class, "20Gi")).await;
    for claim in CLAIMS {
        env.api::<PersistentVolumeClaim>()
            .patch(
                claim,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}})),
            )
            .await
            .unwrap();
    }
    let sts = env.api::<StatefulSet>().get("doris-be").await.unwrap();
    assert_eq!(template_storage(sts), "10Gi");

    env.start_operator();
    claim_template_reaches(&env, "20Gi").await;
    let states = eventually("each claim's resize in status", 30, || async {
        let states = resize_states(&env).await?;
        let done = env.emulator.is_none() || states.iter().all(|(_, s)| s == "Resized");
        (states.len() == 3 && done).then_some(states)
    })
    .await;
    assert_eq!(
        states.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        CLAIMS
    );
    wait_ready(&env, "doris").await;
    assert_eq!(be_pods(&env).await, pods_before, "no BE pod restarted");
    env.finish().await;
}

/// Applies a DorisCluster as a user's `kubectl apply --server-side` would.
async fn apply_cluster(env: &Env, yaml: &str) {
    let cluster: serde_json::Value = serde_norway::from_str(yaml).unwrap();
    let name = cluster["metadata"]["name"].as_str().unwrap().to_string();
    env.api::<DorisCluster>()
        .patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(cluster),
        )
        .await
        .unwrap();
}

/// The BE pods, by name, with their uids.
async fn be_pods(env: &Env) -> BTreeMap<String, String> {
    env.api::<k8s_openapi::api::core::v1::Pod>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.name_any().starts_with("doris-be-"))
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// Fault injection needs the emulator; on a real cluster this test only
/// checks recovery from nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_and_lost_watches_are_recovered_without_extra_writes() {
    let env = Env::start("faults").await;
    if let Some(emulator) = &env.emulator {
        // The first applies of StatefulSets and a status write fail.
        emulator.fail_next(Some("patch"), Some("statefulsets"), 500, 2);
        emulator.fail_next(Some("patch"), Some("dorisclusters"), 503, 1);
    }
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    let Some(emulator) = env.emulator_only("it injects API errors and ends watches") else {
        return env.finish().await;
    };
    // Every watch ends, and resuming from the old resourceVersion is refused
    // (410 Gone): the operator must relist, and a relist writes nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    emulator.reset_requests();
    emulator.expire_history();
    emulator.drop_watches();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rewatched = emulator
        .requests()
        .iter()
        .filter(|r| r.verb == "watch" || r.verb == "list")
        .count();
    assert!(
        rewatched >= 6,
        "the operator watches again after losing its watches"
    );
    assert_eq!(emulator.count_writes(), 0, "{:?}", emulator.requests());

    // And it still follows the spec.
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"feSpec": {"replicas": 4}}})),
        )
        .await
        .unwrap();
    let sts = env.api::<StatefulSet>();
    eventually("FE scaled after the watches came back", 20, || async {
        (sts.get("doris-fe").await.ok()?.spec.replicas == Some(4)).then_some(())
    })
    .await;
    env.finish().await;
}

/// A slow API server delays the operator, never confuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_api_server_only_slows_things_down() {
    let env = Env::start("slow").await;
    if let Some(emulator) = &env.emulator {
        emulator.set_latency(Some(Duration::from_millis(30)));
    }
    env.create_cluster(SAMPLE).await;
    let cluster = wait_ready(&env, "doris").await;
    assert_eq!(
        cluster
            .status
            .unwrap()
            .fe_status
            .unwrap()
            .component_condition
            .phase,
        "available"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_cluster_is_reported_in_status_and_nothing_is_made() {
    let env = Env::start("invalid").await;
    // A rule the operator checks (the CRD cannot: the API server accepts it).
    let invalid = SAMPLE.replace("spec:\n", "spec:\n  adminUser:\n    name: admin\n");
    env.create_cluster(&invalid).await;
    let api = env.api::<DorisCluster>();
    let reported = eventually("the problem in status", 20, || async {
        let c = api.get("doris").await.ok()?;
        let ready = c
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "False").then_some(ready)
    })
    .await;
    assert_eq!(reported.reason, "InvalidSpec");
    assert!(
        reported
            .message
            .contains("spec.adminUser.name: must not be `admin`"),
        "{}",
        reported.message
    );
    assert!(
        env.api::<StatefulSet>()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Fixing the spec lets the cluster come up.
    api.patch(
        "doris",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"adminUser": null}})),
    )
    .await
    .unwrap();
    wait_ready(&env, "doris").await;
    env.finish().await;
}

/// The API server's audit log names the operator and its version: every
/// request on the emulator (it records request headers), and every write
/// in the real control plane's audit log (`DORIS_OPERATOR_TEST_AUDIT_LOG`,
/// which records writes, and reads of ServiceMonitors and Events only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_names_the_operator_and_its_version() {
    let env = Env::start("user-agent").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    let expected = format!("doris-operator/{}", env!("CARGO_PKG_VERSION"));
    let Some(emulator) = env.emulator.clone() else {
        let Ok(log) = std::env::var("DORIS_OPERATOR_TEST_AUDIT_LOG") else {
            eprintln!("no DORIS_OPERATOR_TEST_AUDIT_LOG: the audit log is not checked");
            return env.finish().await;
        };
        let text = std::fs::read_to_string(&log).expect("the audit log");
        let writes: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| {
                e["impersonatedUser"]["username"] == env::OPERATOR_IDENTITY
                    && e["objectRef"]["namespace"] == env.namespace.as_str()
            })
            .collect();
        // Objects are applied (patches), status patched.
        assert!(
            writes.iter().any(|e| e["verb"] == "patch"),
            "the audit log shows the operator's patch requests"
        );
        let unnamed: Vec<_> = writes
            .iter()
            .filter(|e| e["userAgent"] != expected.as_str())
            .map(|e| format!("{} {} {}", e["verb"], e["requestURI"], e["userAgent"]))
            .collect();
        assert!(unnamed.is_empty(), "sent without `{expected}`: {unnamed:?}");
        return env.finish().await;
    };
    // Only the operator watches and applies; the test's own client does
    // neither, and the pod driver works on the store directly.
    let operators: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.verb == "watch" || (r.verb == "patch" && !r.path.contains("/events")))
        .collect();
    for verb in ["watch", "patch"] {
        assert!(
            operators.iter().any(|r| r.verb == verb),
            "the operator made {verb} requests"
        );
    }
    let unnamed: Vec<_> = operators
        .iter()
        .filter(|r| r.user_agent.as_deref() != Some(expected.as_str()))
        .collect();
    assert!(unnamed.is_empty(), "sent without `{expected}`: {unnamed:?}");
    env.finish().await;
}

/// The Degraded condition, once it has `status`.
async fn degraded(
    env: &Env,
    status: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let api = env.api::<DorisCluster>();
    eventually(&format!("Degraded={status}"), 30, || async {
        let c = api.get("doris").await.ok()?;
        c.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Degraded" && c.status == status)
    })
    .await
}

/// How many times the cluster's Events with `reason` happened (a repeated
/// Event is one object with a count).
async fn occurrences(env: &Env, reason: &str) -> i32 {
    env::events(env, reason)
        .await
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("doris"))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// Wakes the operator for the cluster without changing what it plans.
async fn touch(env: &Env, value: &str) {
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": value}}})),
        )
        .await
        .unwrap();
}

/// Puts the convention ConfigMap `platform` of the default set.
async fn put_platform_conventions(env: &Env, template: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "platform",
            "labels": {doris_operator::conventions::reload::SET_KEY: "default"},
        },
        "data": {"platform.yaml.j2": template},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .patch(
            "platform",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
}

/// A convention that adds a ConfigMap per component with a label value
/// of `len` characters; the API server refuses values over 63.
fn labelled_template(len: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ names.statefulset ~ \"-platform\" }}}}\n  labels:\n    team: {}\ndata:\n  owner: platform\n",
        "a".repeat(len)
    )
}

/// An object the API server refuses shows in status and once as an Event,
/// and clears when the next apply goes through. The refusal is a real one:
/// a convention emits a label value longer than Kubernetes allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_api_server_refuses_is_reported_until_it_is_accepted() {
    let env = Env::start("refused").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    put_platform_conventions(&env, &labelled_template(70)).await;
    let refused = degraded(&env, "True").await;
    assert_eq!(refused.reason, "ApplyRefused");
    let m = &refused.message;
    assert!(
        m.contains("ConfigMap/doris-") && m.contains("-platform (422 Invalid)"),
        "names the object: {m}"
    );
    assert!(
        m.contains("metadata.labels") && m.contains("must be no more than 63 bytes"),
        "carries the API server's message: {m}"
    );
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    assert_eq!(env::condition(&cluster, "Ready").as_deref(), Some("False"));

    // Retries do not repeat the Event.
    eventually("an ApplyRefused Event", 20, || async {
        (occurrences(&env, "ApplyRefused").await > 0).then_some(())
    })
    .await;
    for i in 0..3 {
        touch(&env, &i.to_string()).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(occurrences(&env, "ApplyRefused").await, 1);

    // A valid label: applied, and Degraded clears.
    put_platform_conventions(&env, &labelled_template(10)).await;
    let cleared = degraded(&env, "False").await;
    assert_eq!(cleared.reason, "AsExpected");
    wait_ready(&env, "doris").await;
    let cms = env.api::<ConfigMap>();
    assert!(cms.get_opt("doris-fe-platform").await.unwrap().is_some());
    assert!(cms.get_opt("doris-be-platform").await.unwrap().is_some());
    env.finish().await;
}

/// A refusal only the emulator can stage (the test's own account may do
/// anything on a real cluster): the operator lacks the right to write a
/// kind (403), then an object keeps conflicting (409 in a row). Skipped on
/// a real cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_persistent_conflicts_are_refusals_too() {
    let env = Env::start("forbidden").await;
    let Some(emulator) = env.emulator_only("it makes the API server refuse with 403 and 409")
    else {
        return env.finish().await;
    };
    emulator.refuse_next(
        "patch",
        "configmaps",
        403,
        "Forbidden",
        "configmaps \"{name}\" is forbidden: User \"system:serviceaccount:doris:doris-operator\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"e2e\"",
        usize::MAX,
    );
    env.create_cluster(SAMPLE).await;
    let refused = degraded(&env, "True").await;
    assert_eq!(refused.reason, "ApplyRefused");
    assert!(
        refused.message.contains("ConfigMap/doris-")
            && refused.message.contains("(403 Forbidden)")
            && refused
                .message
                .contains("cannot patch resource \"configmaps\""),
        "{}",
        refused.message
    );
    // The right is granted: the next attempt goes through.
    emulator.clear_faults();
    touch(&env, "granted").await;
    wait_ready(&env, "doris").await;
    assert_eq!(degraded(&env, "False").await.reason, "AsExpected");

    // One conflict is retried quietly; the same conflict again and again
    // is a refusal.
    emulator.reset_requests();
    emulator.refuse_next(
        "patch",
        "statefulsets/doris-fe",
        409,
        "Conflict",
        "Operation cannot be fulfilled on statefulsets.apps \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        usize::MAX,
    );
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"feSpec": {"replicas": 4}}})),
        )
        .await
        .unwrap();
    let refused = degraded(&env, "True").await;
    assert!(
        refused.message.contains(
            "StatefulSet/doris-fe (409 Conflict): Operation cannot be fulfilled on statefulsets.apps \"doris-fe\""
        ),
        "{}",
        refused.message
    );
    let conflicts = emulator
        .requests()
        .iter()
        .filter(|r| r.verb == "patch" && r.path.ends_with("/statefulsets/doris-fe"))
        .count();
    assert!(
        conflicts >= doris_operator::controller::apply::PERSISTENT_CONFLICTS as usize,
        "reported only after conflicts in a row ({conflicts} patches)"
    );
    emulator.clear_faults();
    touch(&env, "again").await;
    let sts = env.api::<StatefulSet>();
    eventually("FE scaled once the conflicts ended", 20, || async {
        (sts.get("doris-fe").await.ok()?.spec.replicas == Some(4)).then_some(())
    })
    .await;
    wait_ready(&env, "doris").await;
    assert_eq!(occurrences(&env, "ApplyRefused").await, 2);
    env.finish().await;
}
