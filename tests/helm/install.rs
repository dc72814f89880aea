//! The chart on an API server: its pod is admitted under Pod Security
//! `restricted` and every documented values file is accepted (both
//! servers); and, on a real control plane, `helm install`, `helm upgrade`
//! and `helm uninstall` for real, the operator acting as the chart's
//! ServiceAccount (so the chart's RBAC is what is exercised).

use std::time::Duration;

use super::{chart, deployment, documents, helm_command, run, values_file, values_files};
use crate::env::{self, Env, SAMPLE, eventually, wait_ready};
use doris_operator::crd::DorisCluster;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

/// The real control plane's kubeconfig, or `None` after saying why the test
/// is skipped on the API emulator.
fn real_control_plane(what: &str) -> Option<String> {
    let found = std::env::var("DORIS_OPERATOR_TEST_KUBECONFIG").ok();
    if found.is_none() {
        eprintln!(
            "skipped on the API emulator: {what} needs a real control plane (helm install \
             waits for a Deployment's pods, which only a real scheduler and kwok run); \
             tests/run.sh runs it in its real pass"
        );
    }
    found
}

/// A helm release in the test's namespace on the real control plane.
struct Release {
    helm: std::path::PathBuf,
    kubeconfig: String,
    namespace: String,
    name: String,
}

impl Release {
    /// A release in namespace `namespace` (the test's, or one of its own).
    fn new(helm: std::path::PathBuf, kubeconfig: String, namespace: &str) -> Release {
        // Unique on the shared server, and without the chart's name, so
        // that its cluster-scoped objects are <release>-doris-operator and
        // meet none of deploy/'s.
        let name = namespace.replacen("e2e-", "r-", 1);
        Release {
            helm,
            kubeconfig,
            namespace: namespace.to_string(),
            name,
        }
    }

    fn fullname(&self) -> String {
        format!("{}-doris-operator", self.name)
    }

    /// The user the chart's ServiceAccount acts as.
    fn identity(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace,
            self.fullname()
        )
    }

    /// Runs `helm <args>` against the test's namespace.
    async fn helm(&self, args: &[&str]) -> String {
        let mut command = helm_command(&self.helm);
        command.args(args).args([
            "--kubeconfig",
            &self.kubeconfig,
            "--namespace",
            &self.namespace,
        ]);
        let out = tokio::task::spawn_blocking(move || run(command))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The Deployment `name` once it has `replicas` pods, all available, each
/// Running and Ready on a kwok node.
async fn running_on_kwok(env: &Env, namespace: &str, name: &str, replicas: i32) -> Vec<Pod> {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), namespace);
    let nodes: Api<Node> = Api::all(env.client.clone());
    eventually(
        &format!("{name}: {replicas} pods running on kwok nodes"),
        120,
        || async {
            let d = deployments.get(name).await.ok()?;
            let status = d.status.as_ref()?;
            if d.spec.replicas != Some(replicas)
                || status.replicas != Some(replicas)
                || status.available_replicas != Some(replicas)
                || status.updated_replicas != Some(replicas)
            {
                return None;
            }
            let selector = d.spec.selector.match_labels.as_ref()?;
            let selector = selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            let live: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            if live.len() != replicas as usize {
                return None;
            }
            for pod in &live {
                let status = pod.status.as_ref()?;
                let ready = status
                    .conditions
                    .as_ref()?
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if status.phase.as_deref() != Some("Running") || !ready {
                    return None;
                }
                let node = nodes
                    .get(pod.spec.as_ref()?.node_name.as_ref()?)
                    .await
                    .ok()?;
                let annotations = node.metadata.annotations?;
                if annotations.get("kwok.x-k8s.io/node").map(String::as_str) != Some("fake") {
                    return None;
                }
            }
            Some(live)
        },
    )
    .await
}

/// Holds the leader Lease in `namespace` (the operator's) once, acting as
/// `identity`: the chart's Role lets the operator elect a leader.
async fn elects_a_leader(env: &Env, namespace: &str, identity: &str) {
    let mut config = env.config.clone();
    config.auth_info.impersonate = Some(identity.to_string());
    let client = doris_operator::controller::kube_client(config).unwrap();
    let (led, leading) = tokio::sync::oneshot::channel();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        doris_operator::controller::leader::run_as_leader(
            client,
            namespace,
            "helm-test",
            std::future::pending(),
            |_stopped| async move {
                let _ = led.send(());
            },
        ),
    )
    .await
    .expect("the Lease is taken within a minute");
    assert_eq!(outcome, Ok(false), "leader election as {identity}");
    leading.await.expect("it led");
    Api::<Lease>::namespaced(env.client.clone(), namespace)
        .get(doris_operator::controller::leader::LEASE_NAME)
        .await
        .expect("the Lease in the release namespace");
}

/// A values file (JSON) of `values` plus convention set `team`: the
/// refinement examples/conventions/be-toleration.yaml holds.
fn values_file_with_set(release: &Release, mut values: serde_json::Value) -> std::path::PathBuf {
    let example = documents(
        &std::fs::read_to_string(super::root().join("examples/conventions/be-toleration.yaml"))
            .unwrap(),
    );
    values["conventions"] = json!({"sets": {"team": example[0]["data"]}});
    let file = std::env::temp_dir().join(format!("{}-values.json", release.name));
    std::fs::write(&file, values.to_string()).unwrap();
    file
}

/// DorisCluster `doris` opts into convention set `team`, and its BE pods
/// get what the set refines: the operator read the set's ConfigMap.
async fn opts_into_set_team(env: &Env) {
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "doris.selectdb.com/conventions": "team"}}})),
        )
        .await
        .unwrap();
    let statefulsets = env.api::<StatefulSet>();
    eventually(
        "the BE pods labelled by convention set team",
        60,
        || async {
            let s = statefulsets.get("doris-be").await.ok()?;
            let labels = s.spec.template.metadata?.labels?;
            (labels.get("team").map(String::as_str) == Some("analytics")).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_and_uninstalls_the_operator() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let Some(kubeconfig) = real_control_plane("helm install, upgrade and uninstall") else {
        return;
    };
    let mut env = Env::without_operator("helm").await;
    env::enforce_pod_security(&env, "restricted").await;
    let release = Release::new(helm, kubeconfig, &env.namespace);
    let chart = chart().display().to_string();
    let fullname = release.fullname();

    // Install with the default values: the operator's pods are admitted
    // under Pod Security restricted and run on kwok nodes.
    release
        .helm(&[
            "install",
            &release.name,
            &chart,
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    running_on_kwok(&env, &release.namespace, &fullname, 2).await;
    // Doris's own pods are not `restricted` (they run as root, some tune
    // their hosts): the namespace takes them from here on, as a namespace
    // of Doris clusters apart from the operator's would.
    Api::<Namespace>::all(env.client.clone())
        .patch(
            &env.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": null}}})),
        )
        .await
        .unwrap();
    let roles: Api<ClusterRole> = Api::all(env.client.clone());
    roles.get(&fullname).await.expect("the chart's ClusterRole");
    let config_maps = env.api::<ConfigMap>();
    config_maps
        .get("doris-conventions-default")
        .await
        .expect("the default conventions ConfigMap");

    // The operator, acting as the chart's ServiceAccount: it elects a
    // leader and brings a cluster to Ready with the chart's conventions.
    elects_a_leader(&env, &release.namespace, &release.identity()).await;
    env.start_operator_as(&release.identity());
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    // Upgrade: one replica, and a named convention set from values.
    let file = values_file_with_set(&release, json!({"replicaCount": 1}));
    release
        .helm(&[
            "upgrade",
            &release.name,
            &chart,
            "--values",
            &file.display().to_string(),
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    let _ = std::fs::remove_file(&file);
    running_on_kwok(&env, &release.namespace, &fullname, 1).await;
    let set = config_maps.get("doris-conventions-team").await.unwrap();
    assert_eq!(
        set.metadata.labels.unwrap()["doris.selectdb.com/conventions"],
        "team"
    );
    opts_into_set_team(&env).await;
    env.stop_operator().await;

    // Uninstall: the release's objects go; the CRDs stay (helm never
    // deletes a chart's crds/), and so do the clusters.
    release
        .helm(&["uninstall", &release.name, "--wait", "--timeout", "180s"])
        .await;
    let deployments = env.api::<Deployment>();
    eventually("the release's objects gone", 60, || async {
        let gone = deployments.get_opt(&fullname).await.ok()?.is_none()
            && roles.get_opt(&fullname).await.ok()?.is_none()
            && config_maps
                .get_opt("doris-conventions-default")
                .await
                .ok()?
                .is_none()
            && config_maps
                .get_opt("doris-conventions-team")
                .await
                .ok()?
                .is_none()
            && env
                .api::<ServiceAccount>()
                .get_opt(&fullname)
                .await
                .ok()?
                .is_none();
        gone.then_some(())
    })
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.get("dorisclusters.doris.selectdb.com").await.unwrap();
    env.api::<DorisCluster>().get("doris").await.unwrap();
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_operator_for_one_namespace() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let Some(kubeconfig) = real_control_plane("helm install of the namespaced operator") else {
        return;
    };
    let mut env = Env::without_operator("helm-ns").await;
    let release = Release::new(helm, kubeconfig, &env.namespace);
    let chart = chart().display().to_string();
    let fullname = release.fullname();
    let watch = format!("watchNamespace={}", env.namespace);
    // An administrator of the namespace only: the CRDs are there already.
    release
        .helm(&[
            "install",
            &release.name,
            &chart,
            "--skip-crds",
            "--set",
            &watch,
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    running_on_kwok(&env, &release.namespace, &fullname, 2).await;
    let roles: Api<ClusterRole> = Api::all(env.client.clone());
    assert!(
        roles.get_opt(&fullname).await.unwrap().is_none(),
        "no ClusterRole"
    );
    env.api::<Role>().get(&fullname).await.expect("a Role");

    env.start_operator_as(&release.identity());
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    env.stop_operator().await;
    release.helm(&["uninstall", &release.name, "--wait"]).await;
    assert!(
        env.api::<Role>()
            .get_opt(&fullname)
            .await
            .unwrap()
            .is_none()
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_operator_watching_another_namespace() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let Some(kubeconfig) = real_control_plane("helm install watching another namespace") else {
        return;
    };
    // The clusters' namespace is the test's; the operator's is another.
    let mut env = Env::without_operator("helm-other").await;
    let own = format!("{}-op", env.namespace);
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": own}})).unwrap(),
        )
        .await
        .unwrap();
    let release = Release::new(helm, kubeconfig, &own);
    let chart = chart().display().to_string();
    let fullname = release.fullname();
    let file = values_file_with_set(&release, json!({"watchNamespace": env.namespace}));
    release
        .helm(&[
            "install",
            &release.name,
            &chart,
            "--skip-crds",
            "--values",
            &file.display().to_string(),
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    let _ = std::fs::remove_file(&file);
    running_on_kwok(&env, &own, &fullname, 2).await;
    env.api::<Role>()
        .get(&fullname)
        .await
        .expect("a Role where it watches");

    // The operator in its own namespace: its leader Lease and convention
    // ConfigMaps there, the clusters in the watched one.
    elects_a_leader(&env, &own, &release.identity()).await;
    env.operator_namespace = Some(own.clone());
    env.start_operator_as(&release.identity());
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    opts_into_set_team(&env).await;
    env.stop_operator().await;
    release.helm(&["uninstall", &release.name, "--wait"]).await;
    let _ = namespaces.delete(&own, &Default::default()).await;
    env.finish().await;
}

/// The operator's pod as the chart ships it is admitted in a namespace
/// that enforces Pod Security `restricted` (on both servers; on a real
/// control plane the install above runs it too).
#[tokio::test]
async fn the_charts_pod_is_admitted_under_pod_security_restricted() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let env = Env::without_operator("helm-restricted").await;
    env::enforce_pod_security(&env, "restricted").await;
    let objects = super::template(&helm, &[]).unwrap();
    let template = &deployment(&objects)["spec"]["template"];
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": template["spec"]["serviceAccountName"]}
    }))
    .unwrap();
    env.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "operator", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }))
    .unwrap();
    if let Err(e) = env.api::<Pod>().create(&PostParams::default(), &pod).await {
        panic!("the chart's pod is refused under Pod Security restricted: {e}");
    }
    env.finish().await;
}

/// Every documented values file renders objects the API server takes: a
/// server-side dry run on a real control plane (schemas, admission, and no
/// Pod Security warning for the Deployment's pods), kubectl's client-side
/// check on the emulator (as tests/e2e_monitoring.rs does for kustomize).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_values_file_is_accepted_by_the_api_server() {
    let (Some(helm), Some(kubectl)) = (env::tool("helm"), env::tool("kubectl")) else {
        return;
    };
    let env = Env::without_operator("helm-dry-run").await;
    env::enforce_pod_security(&env, "restricted").await;
    // Pod Security checks workloads' pod templates only where it warns.
    Api::<Namespace>::all(env.client.clone())
        .patch(
            &env.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/warn": "restricted"}}})),
        )
        .await
        .unwrap();
    let real = env.emulator.is_none();
    for (kind, plural) in [
        ("ServiceMonitor", "servicemonitors"),
        ("PrometheusRule", "prometheusrules"),
    ] {
        let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind);
        env::install_open_crd(&env.client, &gvk, plural).await;
    }
    let dir = std::env::temp_dir().join(format!("doris-helm-dry-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (config, _) = env.kubeconfig(&dir);
    let release = env.namespace.replacen("e2e-", "r-", 1);
    let mut files = vec![None];
    files.extend(values_files().into_iter().map(Some));
    for file in files {
        let mut command = helm_command(&helm);
        command
            .args(["template", &release])
            .arg(chart())
            .args(["--namespace", &env.namespace]);
        if let Some(file) = &file {
            command.args(["--values", &values_file(file)]);
            // The namespaces the files name are the test's here.
            match file.as_str() {
                "namespaced-values.yaml" => {
                    command.args(["--set", &format!("watchNamespace={}", env.namespace)]);
                }
                "other-namespace-values.yaml" => {
                    command.args(["--set", "watchNamespace=default"]);
                }
                _ => {}
            }
        }
        let out = run(command);
        assert!(
            out.status.success(),
            "{file:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rendered = dir.join("rendered.yaml");
        std::fs::write(&rendered, &out.stdout).unwrap();
        let (dry_run, validate) = if real {
            ("--dry-run=server", "--validate=true")
        } else {
            ("--dry-run=client", "--validate=false")
        };
        let mut command = std::process::Command::new(&kubectl);
        command
            .arg("--kubeconfig")
            .arg(&config)
            .args(["apply", dry_run, validate, "-f"])
            .arg(&rendered);
        let applied = tokio::task::spawn_blocking(move || run(command))
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&applied.stdout);
        let stderr = String::from_utf8_lossy(&applied.stderr);
        assert!(
            applied.status.success(),
            "kubectl apply {dry_run} of {file:?}:\n{stdout}\n{stderr}"
        );
        assert!(
            !stderr.contains("PodSecurity"),
            "{file:?}: Pod Security restricted warns:\n{stderr}"
        );
        let objects = documents(&String::from_utf8_lossy(&out.stdout)).len();
        assert_eq!(
            stdout.lines().filter(|l| l.ends_with("dry run)")).count(),
            objects,
            "{file:?}:\n{stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    env.finish().await;
}
