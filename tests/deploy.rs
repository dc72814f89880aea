//! What `deploy/` installs: every install variant builds with `kubectl
//! kustomize` and holds what its README section says, every object of a
//! built-in kind reads into its Kubernetes type, and every metric the alerts
//! and the Grafana dashboard name is one the operator serves on `/metrics`.

mod apiserver;
mod env;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use env::{Env, SAMPLE, wait_ready};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents of multi-document YAML text.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `kubectl kustomize <dir>`, or `None` when kubectl is not installed
/// (which fails the test where the tools are required: [`env::tool`]).
fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let kubectl = env::tool("kubectl")?;
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(root().join(dir))
        .output()
        .unwrap_or_else(|e| panic!("running kubectl: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(documents(&String::from_utf8(out.stdout).unwrap()))
}

/// Objects by `Kind/name`.
fn index(objects: &[Value]) -> BTreeMap<String, &Value> {
    objects
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o,
            )
        })
        .collect()
}

fn env_names(deployment: &Value) -> Vec<&str> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

const CLUSTER_SCOPED: [&str; 4] = [
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
];

#[test]
fn every_install_variant_builds_and_holds_what_it_says() {
    let Some(cluster_wide) = kustomize("deploy") else {
        return;
    };
    let namespaced = kustomize("variants/namespaced").unwrap();
    let monitoring = kustomize("variants/monitoring").unwrap();
    for (variant, objects) in [
        ("deploy", &cluster_wide),
        ("variants/namespaced", &namespaced),
        ("variants/monitoring", &monitoring),
    ] {
        env::manifests::check_types(variant, objects, true, "a variant");
    }

    // `kubectl apply -k deploy/` installs what `-f crds/ -f deploy/` does
    // (crds/ holds the DorisCluster CRD twice, under two file names).
    let mut by_files = Vec::new();
    for dir in ["crds", "deploy"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            by_files.extend(documents(&std::fs::read_to_string(&file).unwrap()));
        }
    }
    let keys = |objects: &[Value]| index(objects).into_keys().collect::<BTreeSet<_>>();
    assert_eq!(keys(&cluster_wide), keys(&by_files));
    let base = index(&cluster_wide);
    assert!(!env_names(base["Deployment/doris-operator"]).contains(&"WATCH_NAMESPACE"));

    // One namespace: nothing cluster-scoped, the same rules as a Role, and
    // the operator watching its own namespace.
    let ns = index(&namespaced);
    for (key, object) in &ns {
        let kind = object["kind"].as_str().unwrap();
        assert!(
            !CLUSTER_SCOPED.contains(&kind),
            "namespaced variant holds {key}"
        );
        assert_eq!(
            object["metadata"]["namespace"], "doris-operator",
            "{key} is not in the operator's namespace"
        );
    }
    assert_eq!(
        ns["Role/doris-operator"]["rules"],
        base["ClusterRole/doris-operator"]["rules"]
    );
    let binding = ns["RoleBinding/doris-operator"];
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["name"], "doris-operator");
    let deployment = ns["Deployment/doris-operator"];
    let watch = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WATCH_NAMESPACE")
        .expect("WATCH_NAMESPACE is set");
    assert_eq!(
        watch["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    // Monitoring: the cluster-wide objects, plus a ServiceMonitor that
    // finds the metrics Service's port, alerts, and a dashboard Grafana's
    // sidecar picks up.
    let mon = index(&monitoring);
    for key in base.keys() {
        assert!(mon.contains_key(key), "monitoring variant lacks {key}");
    }
    let service = mon["Service/doris-operator-metrics"];
    let monitor = mon["ServiceMonitor/doris-operator"];
    for (label, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][label], value);
        assert_eq!(
            &base["Deployment/doris-operator"]["spec"]["template"]["metadata"]["labels"][label],
            value,
            "the Service selects the operator's pods"
        );
    }
    let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port)
    );
    assert!(mon.contains_key("PrometheusRule/doris-operator"));
    let dashboard = mon["ConfigMap/doris-operator-dashboard"];
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value =
        serde_json::from_str(dashboard["data"]["doris-operator.json"].as_str().unwrap())
            .expect("the dashboard is JSON");
    assert!(!json["panels"].as_array().unwrap().is_empty());
}

/// Every PromQL expression of the alerts and of the dashboard.
fn monitoring_expressions() -> Vec<(String, String)> {
    let dir = root().join("deploy/monitoring");
    let mut out = Vec::new();
    let rules = documents(&std::fs::read_to_string(dir.join("prometheusrule.yaml")).unwrap());
    for group in rules[0]["spec"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            out.push((
                format!("alert {}", rule["alert"].as_str().unwrap()),
                rule["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dashboard.json")).unwrap())
            .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                format!("panel {:?}", panel["title"].as_str().unwrap()),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// The metric names a PromQL expression reads: the operator's all start
/// with `doris_operator_`.
fn metric_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\bdoris_operator_[a-zA-Z0-9_:]*").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// The sample names `/metrics` text serves: each family's, with the
/// suffixes its type gives its samples (`_total` for a counter, `_bucket`,
/// `_sum` and `_count` for a histogram). A family with no series yet (no
/// rollout running) is still listed with its type.
fn served_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(doris_operator_reconcile_duration_seconds_bucket[5m])))"
        ),
        ["doris_operator_reconcile_duration_seconds_bucket"]
    );
    assert_eq!(
        metric_names("time() - max by (pod) (doris_operator_decommission_tablets{pod=\"x\"}) > 1"),
        ["doris_operator_decommission_tablets"]
    );
    let served = served_names(
        "# HELP doris_operator_reconciles Reconciles run.\n\
         # TYPE doris_operator_reconciles counter\n\
         doris_operator_reconciles_total 3\n",
    );
    assert!(served.contains("doris_operator_reconciles_total"));
    assert!(!served.contains("doris_operator_reconciles"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_name_only_metrics_the_operator_serves() {
    let env = Env::start("metrics").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    // What /metrics serves (metrics::serve answers it with this text).
    let text = env.metrics.encode();
    let served = served_names(&text);

    let expressions = monitoring_expressions();
    assert!(expressions.len() >= 10, "{expressions:?}");
    let mut unknown = Vec::new();
    for (place, expr) in &expressions {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "{place} reads no operator metric: {expr}"
        );
        for name in names {
            if !served.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics the operator does not serve:\n{}\n\n/metrics:\n{text}",
        unknown.join("\n")
    );

    // The cluster's own series, as the not-Ready alert reads them.
    let series = format!(
        "doris_operator_cluster_ready{{kind=\"DorisCluster\",namespace=\"{}\",name=\"doris\"}} 1",
        env.namespace
    );
    assert!(text.contains(&series), "{series} not in:\n{text}");
    env.finish().await;
}

/// The kinds the default conventions make for every example cluster when
/// the API server serves the Prometheus operator's kinds, as (group, plural).
fn kinds_the_conventions_make() -> BTreeSet<(String, String)> {
    let mut kinds = BTreeSet::new();
    let mut files = vec![
        root().join("examples/doriscluster-full.yaml"),
        root().join("examples/doriscluster-broker.yaml"),
        root().join("examples/ddc-sample.yaml"),
    ];
    files.extend(
        std::fs::read_dir(root().join("examples/peer"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
    );
    for file in files {
        let out = Command::new(env!("CARGO_BIN_EXE_doris-operator"))
            .args(["render", "-o", "json", "-f"])
            .arg(&file)
            .args(["--api-resources", "monitoring.coreos.com/v1/ServiceMonitor"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        for object in list["items"].as_array().unwrap() {
            let api_version = object["apiVersion"].as_str().unwrap();
            let group = api_version
                .split_once('/')
                .map_or("", |(group, _)| group)
                .to_string();
            let kind = object["kind"].as_str().unwrap();
            // Every kind here is named by its lower-cased plural.
            kinds.insert((group, format!("{}s", kind.to_lowercase())));
        }
    }
    kinds
}

#[test]
fn the_operator_may_write_every_kind_the_conventions_make() {
    let rbac = documents(&std::fs::read_to_string(root().join("deploy/10-rbac.yaml")).unwrap());
    let role = rbac
        .iter()
        .find(|o| o["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    let allows = |group: &str, plural: &str, verb: &str| {
        role["rules"].as_array().unwrap().iter().any(|rule| {
            let has = |field: &str, value: &str| {
                rule[field]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == value || v == "*")
            };
            has("apiGroups", group) && has("resources", plural) && has("verbs", verb)
        })
    };
    let kinds = kinds_the_conventions_make();
    assert!(kinds.contains(&(
        "monitoring.coreos.com".to_string(),
        "servicemonitors".to_string()
    )));
    for (group, plural) in &kinds {
        // Server-side apply reads, creates and patches; pruning deletes.
        for verb in ["get", "create", "patch", "delete"] {
            assert!(
                allows(group, plural, verb),
                "deploy/10-rbac.yaml does not let the operator {verb} {group}/{plural}"
            );
        }
    }
}

/// The operator's own pods pass Pod Security `restricted`. Its pod
/// template, as shipped, is admitted in a namespace that enforces it; on a
/// real control plane `kubectl apply -k deploy/` installs the operator (its
/// namespace enforces restricted) and the Deployment's pods are admitted
/// and become available (kwok runs them). The API emulator runs no
/// Deployments, so there the template's pod is what is checked.
#[tokio::test]
async fn the_operators_own_pods_are_admitted_under_pod_security_restricted() {
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    use kube::api::PostParams;
    let env = Env::without_operator("restricted").await;
    env::enforce_pod_security(&env, "restricted").await;
    let shipped =
        documents(&std::fs::read_to_string(root().join("deploy/20-deployment.yaml")).unwrap());
    let deployment = shipped.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let template = &deployment["spec"]["template"];
    let account: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": template["spec"]["serviceAccountName"]}
    }))
    .unwrap();
    env.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "operator", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }))
    .unwrap();
    if let Err(e) = env.api::<Pod>().create(&PostParams::default(), &pod).await {
        panic!("the operator's pod is refused under Pod Security restricted: {e}");
    }

    if env.emulator.is_some() {
        env.finish().await;
        return;
    }
    let out = Command::new("kubectl")
        .args(["apply", "-k"])
        .arg(root().join("deploy"))
        .arg("--kubeconfig")
        .arg(std::env::var("DORIS_OPERATOR_TEST_KUBECONFIG").unwrap())
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/ failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let namespace = deployment["metadata"]["namespace"].as_str().unwrap();
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap() as i32;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.client.clone(), namespace);
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(env.client.clone(), namespace);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = deployments.get(name).await.unwrap();
        let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
        if available == replicas {
            break;
        }
        if std::time::Instant::now() > deadline {
            let refusals: Vec<String> = events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
                .filter_map(|e| e.message)
                .collect();
            panic!(
                "{namespace}/{name} has {available} of {replicas} pods available; refusals: {refusals:?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    env.finish().await;
}
