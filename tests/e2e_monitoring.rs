//! Monitoring and installation, end to end: where the API server serves
//! the Prometheus operator's ServiceMonitor, the operator makes one per
//! component that selects the component's Service and names its metrics
//! port, and takes them away when the cluster says no; and every install
//! variant (`kubectl kustomize deploy/`, `variants/namespaced`,
//! `variants/monitoring`) is accepted by `kubectl apply --dry-run=client`
//! against the API server.

mod apiserver;
mod env;

use std::path::PathBuf;
use std::process::Command;

use env::{Env, SAMPLE, eventually, wait_ready};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn service_monitor_gvk() -> GroupVersionKind {
    GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor")
}

fn service_monitors(env: &Env) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&service_monitor_gvk(), "servicemonitors");
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

/// The port a ServiceMonitor scrapes, as (service, port number, path):
/// the Service its selector picks and the number of the port its endpoint
/// names there.
async fn scraped(env: &Env, monitor: &DynamicObject) -> (String, i32, String) {
    let labels = monitor.data["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("a label selector");
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join(",");
    let services = env
        .api::<Service>()
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    assert_eq!(services.len(), 1, "one Service selected by {selector}");
    let endpoint = &monitor.data["spec"]["endpoints"][0];
    let port_name = endpoint["port"].as_str().expect("a port name");
    let service = &services[0];
    let port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(port_name))
        .unwrap_or_else(|| panic!("Service has a port named {port_name}"));
    (
        service.metadata.name.clone().unwrap(),
        port.port,
        endpoint["path"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_component_is_scraped_through_a_service_monitor() {
    let mut env = Env::without_operator("monitoring").await;
    // Served before the operator starts: it asks the API server at start.
    env::install_open_crd(&env.client, &service_monitor_gvk(), "servicemonitors").await;
    env.start_operator();
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    let monitors = service_monitors(&env);
    let fe = eventually("the FE's ServiceMonitor", 30, || async {
        monitors.get_opt("doris-fe").await.ok()?
    })
    .await;
    let be = eventually("the BE's ServiceMonitor", 30, || async {
        monitors.get_opt("doris-be").await.ok()?
    })
    .await;
    assert_eq!(
        fe.metadata.owner_references.as_ref().unwrap()[0].name,
        "doris",
        "owned by its cluster"
    );
    // The FE serves metrics on its http_port, a BE on its webserver_port.
    let (service, port, path) = scraped(&env, &fe).await;
    assert_eq!((port, path.as_str()), (8030, "/metrics"), "{service}");
    let (service, port, path) = scraped(&env, &be).await;
    assert_eq!((port, path.as_str()), (8040, "/metrics"), "{service}");

    // A cluster that wants none has none.
    env.api::<doris_operator::crd::DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "doris.selectdb.com/monitoring": "false"}}})),
        )
        .await
        .unwrap();
    eventually("the ServiceMonitors gone", 30, || async {
        let left = monitors.list(&ListParams::default()).await.ok()?.items;
        left.is_empty().then_some(())
    })
    .await;
    env.finish().await;
}

/// A converged cluster costs no reads: the operator keeps what it reads
/// (its objects, ServiceMonitors, FailedCreate Events, the data of the
/// ConfigMaps a cluster names by their version) in caches fed by watches,
/// so its reconciles (here nudged by an annotation the plan does not read)
/// ask the API server nothing. Counted in the emulator's request log, or in
/// the real control plane's audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_of_a_converged_cluster_read_nothing() {
    let mut env = Env::without_operator("monitoring-reads").await;
    env::install_open_crd(&env.client, &service_monitor_gvk(), "servicemonitors").await;
    env.start_operator();
    env::put_file(&env, "fe-conf", "fe.conf", "qe_slow_log_ms = 5000\n").await;
    let mut cluster: serde_json::Value = serde_norway::from_str(SAMPLE).unwrap();
    cluster["spec"]["feSpec"]["configMapInfo"] = json!({"configMapName": "fe-conf"});
    env.create_cluster(&cluster.to_string()).await;
    wait_ready(&env, "doris").await;
    let monitors = service_monitors(&env);
    eventually("both ServiceMonitors", 30, || async {
        let made = monitors.list(&ListParams::default()).await.ok()?.items;
        (made.len() == 2).then_some(())
    })
    .await;

    let mark = env::reads::mark(&env);
    env::reads::nudge(&env, "doris", NUDGES).await;
    if !env::reads::counted(&mark) {
        eprintln!("no DORIS_OPERATOR_TEST_AUDIT_LOG: reads are not counted");
        return env.finish().await;
    }
    let reads = env::reads::since(&env, &mark, &[]);
    assert!(
        reads.is_empty(),
        "{NUDGES} reconciles of a converged cluster read: {reads:#?}"
    );
    env.finish().await;
}

/// Reconciles the read test asks for.
const NUDGES: usize = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl(args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .args(args)
        .current_dir(root())
        .output()
        .expect("kubectl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_install_variant_is_accepted_by_kubectl_apply() {
    if env::tool("kubectl").is_none() {
        return;
    }
    let env = Env::without_operator("install").await;
    let dir = std::env::temp_dir().join(format!("doris-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (config, _) = env.kubeconfig(&dir);
    let config = config.display().to_string();
    // The monitoring variant's kinds are the Prometheus operator's: the
    // test installs them where they are not served, as a user installs
    // that operator's CRDs first.
    let real = env.emulator.is_none();
    env::install_open_crd(&env.client, &service_monitor_gvk(), "servicemonitors").await;
    env::install_open_crd(
        &env.client,
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
    .await;
    for variant in ["deploy", "variants/namespaced", "variants/monitoring"] {
        let built = kubectl(&["kustomize", variant]);
        assert!(
            built.status.success(),
            "kubectl kustomize {variant}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let file = dir.join(format!("{}.yaml", variant.replace('/', "-")));
        std::fs::write(&file, &built.stdout).unwrap();
        let file = file.display().to_string();
        // A real API server checks every object itself (a server dry run:
        // schemas, CEL rules and admission); kubectl 1.36's client dry run
        // cannot patch an existing CustomResourceDefinition locally
        // (kubernetes/kubernetes#139538). The emulator gets kubectl's own
        // check, without the OpenAPI documents only a real server serves;
        // tests/deploy.rs reads every object as its Kubernetes type either
        // way.
        let (dry_run, validate) = if real {
            ("--dry-run=server", "--validate=true")
        } else {
            ("--dry-run=client", "--validate=false")
        };
        let applied = tokio::task::spawn_blocking({
            let config = config.clone();
            move || {
                kubectl(&[
                    "--kubeconfig",
                    &config,
                    "apply",
                    dry_run,
                    validate,
                    "-f",
                    &file,
                ])
            }
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&applied.stdout);
        assert!(
            applied.status.success(),
            "kubectl apply --dry-run=client of {variant}:\n{stdout}\n{}",
            String::from_utf8_lossy(&applied.stderr)
        );
        // Every object of the variant is one kubectl would apply.
        let objects = String::from_utf8_lossy(&built.stdout)
            .lines()
            .filter(|l| l.starts_with("kind:"))
            .count();
        assert_eq!(
            stdout.lines().filter(|l| l.ends_with("dry run)")).count(),
            objects,
            "{variant}:\n{stdout}"
        );
    }
    env.finish().await;
}
