//! The member driver that stands in for the Doris images' entrypoints:
//! pods of a storage-compute separated cluster register as those images do
//! — compute group pods into their group, FEs as followers or observers by
//! `ELECT_NUMBER`, the meta service not at all — under the FQDN their
//! StatefulSet's Service gives them, and try again while the FE is away.
//! Runs on the API emulator, or unchanged on the cluster
//! DORIS_OPERATOR_TEST_KUBECONFIG names (the pods run `pause`).

mod apiserver;
mod env;
mod fesim;
mod members;

use std::collections::BTreeMap;
use std::time::Duration;

use env::{Env, eventually};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Patch, PatchParams, PostParams};
use members::{EDIT_LOG_PORT, HEARTBEAT_PORT, MemberDriver, fqdn, fqdn_via};
use serde_json::json;

const PAUSE: &str = "registry.k8s.io/pause:3.10";

/// A StatefulSet of `replicas` pause pods labelled `component`, with `env`
/// in its container, behind Service `service`.
async fn statefulset(
    env: &Env,
    name: &str,
    service: &str,
    component: &str,
    replicas: i32,
    vars: &[(&str, &str)],
) {
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
    });
    let vars: Vec<_> = vars
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": service,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": component, "image": PAUSE, "env": vars}],
                },
            },
        },
    }))
    .unwrap();
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &sts)
        .await
        .expect("StatefulSet created");
}

async fn scale(env: &Env, name: &str, replicas: i32) {
    env.api::<StatefulSet>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("scaled");
}

#[tokio::test]
async fn registers_a_storage_compute_separated_cluster_as_its_images_do() {
    let mut env = Env::without_operator("members-ddc").await;
    let sim = members::simulated_cloud_fe(&mut env, "ddc-fe", "ddc-fe-internal").await;
    // The driver's own election number (1) gives way to the pods' ELECT_NUMBER.
    let _driver = MemberDriver::start(&env, sim.clone(), 1);

    statefulset(
        &env,
        "ddc-ms",
        "ddc-ms",
        "ms",
        1,
        &[("FDB_ENDPOINT", "fdb:4500")],
    )
    .await;
    statefulset(
        &env,
        "ddc-fe",
        "ddc-fe-internal",
        "fe",
        3,
        &[("MS_ENDPOINT", "ddc-ms:5000"), ("ELECT_NUMBER", "2")],
    )
    .await;
    statefulset(
        &env,
        "ddc-cg1",
        "ddc-cg1",
        "cg",
        2,
        &[("COMPUTE_GROUP_NAME", "cg1")],
    )
    .await;
    statefulset(
        &env,
        "ddc-etl",
        "ddc-etl",
        "cg",
        1,
        &[("COMPUTE_GROUP_NAME", "etl")],
    )
    .await;

    let groups = eventually("compute group BEs registered", 60, || async {
        let sizes = sim.compute_group_sizes();
        (sizes.len() == 2 && sizes.values().sum::<usize>() == 3).then_some(sizes)
    })
    .await;
    assert_eq!(
        groups,
        BTreeMap::from([("cg1".to_string(), 2), ("etl".to_string(), 1)])
    );
    let mut hosts: Vec<(String, Option<String>)> = sim
        .backends()
        .into_iter()
        .map(|b| {
            assert_eq!(b.heartbeat_port, HEARTBEAT_PORT);
            (b.host, b.compute_group)
        })
        .collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            (fqdn_via(&env, "ddc-cg1-0", "ddc-cg1"), Some("cg1".into())),
            (fqdn_via(&env, "ddc-cg1-1", "ddc-cg1"), Some("cg1".into())),
            (fqdn_via(&env, "ddc-etl-0", "ddc-etl"), Some("etl".into())),
        ]
    );

    // FE 0 is the master; 1 is below ELECT_NUMBER (2), 2 is not.
    let frontends = eventually("FEs joined", 60, || async {
        let fes = sim.frontends();
        (fes.len() == 3).then_some(fes)
    })
    .await;
    let roles: Vec<(String, String)> = frontends
        .into_iter()
        .map(|f| {
            assert_eq!(f.edit_log_port, EDIT_LOG_PORT);
            (f.host, f.role)
        })
        .collect();
    assert_eq!(
        roles,
        [
            (
                fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal"),
                "FOLLOWER".into()
            ),
            (
                fqdn_via(&env, "ddc-fe-1", "ddc-fe-internal"),
                "FOLLOWER".into()
            ),
            (
                fqdn_via(&env, "ddc-fe-2", "ddc-fe-internal"),
                "OBSERVER".into()
            ),
        ]
    );

    // While the FE is away a new compute group pod waits, and registers
    // once it is back.
    sim.set_down(true);
    scale(&env, "ddc-etl", 2).await;
    let new = fqdn_via(&env, "ddc-etl-1", "ddc-etl");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sim.backend(&new, HEARTBEAT_PORT).is_none());
    sim.set_down(false);
    let be = eventually("ddc-etl-1 registered once the FE is back", 60, || async {
        sim.backend(&new, HEARTBEAT_PORT)
    })
    .await;
    assert_eq!(be.compute_group.as_deref(), Some("etl"));
    assert_eq!(be.compute_group_id, sim.compute_group_id("etl"));

    // The meta service registered nothing, ever.
    assert_eq!(sim.backends().len(), 4);
    assert_eq!(sim.frontends().len(), 3);
    env.finish().await;
}

#[tokio::test]
async fn pods_of_a_doris_cluster_register_as_before() {
    let mut env = Env::without_operator("members-dc").await;
    let sim = members::simulated_fe(&mut env, fesim::FeSimConfig::default(), "doris").await;
    let _driver = MemberDriver::start(&env, sim.clone(), 3);
    // Their Service name plays no part: the FQDN is `<sts>-internal`'s.
    statefulset(&env, "doris-be", "elsewhere", "be", 2, &[]).await;
    statefulset(&env, "doris-fe", "elsewhere", "fe", 2, &[]).await;

    let mut hosts = eventually("BEs registered", 60, || async {
        let bes = sim.backends();
        (bes.len() == 2).then_some(bes)
    })
    .await
    .into_iter()
    .map(|b| (b.host, b.compute_group))
    .collect::<Vec<_>>();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            (fqdn(&env, "doris-be-0"), None),
            (fqdn(&env, "doris-be-1"), None)
        ]
    );
    let fes = eventually("FE 1 joined", 60, || async {
        let fes = sim.frontends();
        (fes.len() == 2).then_some(fes)
    })
    .await;
    assert_eq!(fes[1].host, fqdn(&env, "doris-fe-1"));
    assert_eq!(fes[1].role, "FOLLOWER");
    env.finish().await;
}

fn pod(component: &str, vars: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Pod {
    let vars: Vec<_> = vars
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "x-0", "labels": {"app.kubernetes.io/component": component}},
        "spec": {"containers": [
            {"name": "sidecar", "image": PAUSE},
            {"name": "main", "image": PAUSE, "env": vars},
        ]},
    }))
    .unwrap()
}

#[test]
fn pods_are_told_apart_by_their_environment_and_component() {
    use members::{Disaggregated, disaggregated_role};
    // The group is read from whichever container carries it, whatever the
    // component is called.
    assert_eq!(
        disaggregated_role(&pod("compute", &[("COMPUTE_GROUP_NAME", "cg1")])),
        Some(Disaggregated::ComputeGroup("cg1".into()))
    );
    assert_eq!(
        disaggregated_role(&pod(
            "fe",
            &[
                ("MS_ENDPOINT", "ms:5000"),
                ("FDB_ENDPOINT", "fdb:4500"),
                ("ELECT_NUMBER", "3")
            ]
        )),
        Some(Disaggregated::Frontend {
            election_number: Some(3)
        })
    );
    assert_eq!(
        disaggregated_role(&pod("fe", &[("MS_ENDPOINT", "ms:5000")])),
        Some(Disaggregated::Frontend {
            election_number: None
        })
    );
    assert_eq!(
        disaggregated_role(&pod("ms", &[])),
        Some(Disaggregated::MetaService)
    );
    assert_eq!(
        disaggregated_role(&pod("metaservice", &[("FDB_ENDPOINT", "fdb:4500")])),
        Some(Disaggregated::MetaService)
    );
    // A DorisCluster's pods, and an empty group name, are not.
    assert_eq!(disaggregated_role(&pod("fe", &[])), None);
    assert_eq!(disaggregated_role(&pod("be", &[])), None);
    assert_eq!(
        disaggregated_role(&pod("be", &[("COMPUTE_GROUP_NAME", "")])),
        None
    );
}
