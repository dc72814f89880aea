//! Host tuning end to end, in namespaces whose Pod Security admission
//! forbids privileged pods: the default conventions then check the hosts
//! instead of tuning them, and report what falls short; pods admission
//! refuses are said in the cluster's status with the admission's message.
//!
//! On the emulator, PodSecurity admission and the StatefulSet controller are
//! emulated (tests/apiserver/admission.rs, driver.rs) and each node's
//! settings are simulated; with DORIS_OPERATOR_TEST_KUBECONFIG the same
//! tests run against a real cluster, whose nodes are what they are.

mod apiserver;
mod env;
mod fesim;

use apiserver::driver::NodeSettings;
use doris_operator::crd::DorisCluster;
use env::{Env, SAMPLE, eventually, wait_ready};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// In a baseline namespace the BEs run no privileged container: an
/// unprivileged check reports the node settings Doris would want changed,
/// in status and as an Event naming the node and the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_namespace_gets_its_hosts_checked_not_tuned() {
    let mut env = Env::without_operator("host-baseline").await;
    env::enforce_pod_security(&env, "baseline").await;
    if let Some(driver) = env.driver() {
        driver.set_node(
            "node-1",
            NodeSettings {
                max_map_count: 65530,
                ..Default::default()
            },
        );
    }
    env.start_operator();
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    let sts = env.api::<StatefulSet>().get("doris-be").await.unwrap();
    let pod = sts.spec.template.spec.unwrap();
    let init = pod.init_containers.unwrap_or_default();
    assert_eq!(
        init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["host-check"]
    );
    assert!(
        init.iter().all(|c| c
            .security_context
            .as_ref()
            .is_none_or(|s| s.privileged != Some(true))),
        "no privileged init container"
    );
    let sysctls = pod.security_context.unwrap().sysctls.unwrap_or_default();
    assert!(
        sysctls
            .iter()
            .any(|s| s.name == "net.ipv4.ip_local_port_range"),
        "{sysctls:?}"
    );

    if env
        .emulator_only("what a host check reports comes from the emulator's simulated nodes")
        .is_some()
    {
        // The node whose vm.max_map_count is low is named, once per setting.
        let checks = eventually("the host check reported", 30, || async {
            let c = env.api::<DorisCluster>().get("doris").await.ok()?;
            c.status?.host_checks
        })
        .await;
        assert_eq!(
            checks
                .iter()
                .map(|c| (
                    c.node.as_str(),
                    c.pod.as_str(),
                    c.setting.as_str(),
                    c.found.as_str(),
                    c.wanted.as_str()
                ))
                .collect::<Vec<_>>(),
            [(
                "node-1",
                "doris-be-1",
                "vm.max_map_count",
                "65530",
                "2000000"
            )]
        );
        let told = eventually("an Event about the node", 30, || async {
            let events = env::events(&env, "HostSettingLow").await;
            (!events.is_empty()).then_some(events)
        })
        .await;
        assert_eq!(told.len(), 1, "{told:?}");
        let note = told[0].note.clone().unwrap_or_default();
        assert!(
            note.starts_with("node node-1: vm.max_map_count is 65530, Doris wants 2000000"),
            "{note}"
        );
    }
    env.finish().await;
}

/// A convention that insists on a privileged init container in a baseline
/// namespace: admission refuses the BE pods, and the cluster's status says
/// so with the admission's words. Once the convention is taken back, the
/// pods are made and the cluster becomes Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_admission_refuses_are_said_in_status() {
    let mut env = Env::without_operator("host-refused").await;
    env::enforce_pod_security(&env, "baseline").await;
    let always_privileged = r#"
fn host_init(ctx) {
    if ctx.component != "be" { return []; }
    [#{ name: "sysctl", image: ctx.spec.image, command: ["sysctl", "-w", "vm.max_map_count=2000000"],
        securityContext: #{ privileged: true } }]
}"#;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": "privileged-hosts",
            "labels": {doris_operator::conventions::reload::SET_KEY: "default"},
        },
        "data": {"host_init.rhai": always_privileged},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .patch(
            "privileged-hosts",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    env.start_operator();
    env.create_cluster(SAMPLE).await;

    let refused = env::degraded_because(&env, "PodAdmissionRefused").await;
    assert_eq!(refused.status, "True");
    assert!(
        refused
            .message
            .starts_with("be: StatefulSet doris-be cannot make its pods: ")
            && refused.message.contains(
                "violates PodSecurity \"baseline:latest\": privileged (container \"sysctl\" \
                 must not set securityContext.privileged=true)"
            ),
        "{}",
        refused.message
    );
    let warned = env::events(&env, "PodAdmissionRefused").await;
    assert!(!warned.is_empty(), "a Warning Event tells it too");
    // The StatefulSet controller keeps trying each pod; status says the
    // same thing meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let again = env::degraded_because(&env, "PodAdmissionRefused").await;
    assert_eq!(again.message, refused.message);
    // Its reconciles read the FailedCreate Events from the operator's
    // cache of them, not from the API server.
    let mark = env::reads::mark(&env);
    env::reads::nudge(&env, "doris", 2).await;
    let reads = env::reads::since(&env, &mark, &["events"]);
    assert!(reads.is_empty(), "Events read: {reads:#?}");
    assert_eq!(
        env::degraded_because(&env, "PodAdmissionRefused")
            .await
            .message,
        refused.message
    );

    // The convention taken back, the default one checks the hosts instead,
    // and the pods are admitted.
    env.api::<ConfigMap>()
        .delete("privileged-hosts", &Default::default())
        .await
        .unwrap();
    wait_ready(&env, "doris").await;
    let degraded = env
        .api::<DorisCluster>()
        .get("doris")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "False", "{degraded:?}");
    env.finish().await;
}
