//! The Helm chart (`charts/doris-operator`): it lints strictly; every
//! documented values combination (the default and each `ci/*-values.yaml`)
//! renders, and its objects of built-in kinds read into their Kubernetes
//! types; a typo in values is refused by its schema; with the default values
//! it installs what `kubectl apply -k deploy/` does (and its monitoring and
//! namespaced values what those variants do), and the files it copies
//! equal their sources, so the two installs cannot drift. On a real control
//! plane, `helm install`, `helm upgrade` and `helm uninstall` run for real,
//! and the operator, acting as the chart's ServiceAccount, brings a
//! DorisCluster to Ready.

mod apiserver;
mod env;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/doris-operator")
}

/// The documents of multi-document YAML text.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `helm` with its own configuration, cache and data folders, so that
/// nothing of the user's helm setup (plugins, repositories) takes part.
fn helm_command(helm: &Path) -> Command {
    let home = std::env::temp_dir().join(format!("doris-operator-helm-{}", std::process::id()));
    let mut command = Command::new(helm);
    for (var, dir) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        command.env(var, home.join(dir));
    }
    command.env_remove("HELM_DRIVER").env_remove("KUBECONFIG");
    command
}

fn run(mut command: Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// What `helm template` renders for release `doris-operator` in namespace
/// `doris-operator` (as `helm install doris-operator charts/doris-operator
/// -n doris-operator` would install), with `args` (values files, --set).
fn template(helm: &Path, args: &[&str]) -> Result<Vec<Value>, String> {
    let mut command = helm_command(helm);
    command
        .args(["template", "doris-operator"])
        .arg(chart())
        .args(["--namespace", "doris-operator"])
        .args(args);
    let out = run(command);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(documents(&String::from_utf8(out.stdout).unwrap()))
}

/// `kubectl kustomize <dir>`.
fn kustomize(kubectl: &Path, dir: &str) -> Vec<Value> {
    let mut command = Command::new(kubectl);
    command.arg("kustomize").arg(root().join(dir));
    let out = run(command);
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

/// Objects by `Kind/namespace/name` (`Kind/name` when cluster-scoped).
fn index(objects: &[Value]) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for o in objects {
        let kind = o["kind"].as_str().expect("a kind");
        let name = o["metadata"]["name"].as_str().expect("a name");
        let key = match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind}/{ns}/{name}"),
            None => format!("{kind}/{name}"),
        };
        assert!(out.insert(key.clone(), o).is_none(), "{key} twice");
    }
    out
}

/// Where two values differ, as `path: left != right` lines.
fn differences(path: &str, left: &Value, right: &Value, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let (a, b) = (l.get(k).unwrap_or(&null), r.get(k).unwrap_or(&null));
                differences(&format!("{path}.{k}"), a, b, out);
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (a, b)) in l.iter().zip(r).enumerate() {
                differences(&format!("{path}[{i}]"), a, b, out);
            }
        }
        // YAML's 0.0 and 0 are one number (the CRD files write 0.0,
        // kustomize prints 0).
        (Value::Number(l), Value::Number(r)) if l.as_f64() == r.as_f64() => {}
        _ if left != right => {
            let show = |v: &Value| {
                let text = v.to_string();
                if text.chars().count() > 200 {
                    format!("{}…", text.chars().take(200).collect::<String>())
                } else {
                    text
                }
            };
            out.push(format!("{path}: {} != {}", show(left), show(right)));
        }
        _ => {}
    }
}

/// The chart's objects are the kustomize variant's, but the ones `skipped`
/// (what the chart documents it leaves out), field for field.
fn assert_same_objects(what: &str, chart: &[Value], kustomize: &[Value], skipped: &[&str]) {
    let chart = index(chart);
    let mut kustomize = index(kustomize);
    for key in skipped {
        assert!(kustomize.remove(*key).is_some(), "{what}: no {key} to skip");
    }
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        kustomize.keys().collect::<Vec<_>>(),
        "{what}: the chart (left) and kustomize (right) make other objects"
    );
    let mut diff = Vec::new();
    for (key, object) in &chart {
        differences(key, object, kustomize[key], &mut diff);
    }
    assert!(
        diff.is_empty(),
        "{what}: the chart (left) and kustomize (right) differ:\n{}",
        diff.join("\n")
    );
}

/// The documented values files: `ci/*-values.yaml`.
fn values_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with("-values.yaml"))
        .collect();
    files.sort();
    files
}

fn values_file(name: &str) -> String {
    chart().join("ci").join(name).display().to_string()
}

#[test]
fn the_chart_lints_strictly_with_every_documented_values_file() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let mut sets = vec![Vec::new()];
    sets.extend(
        values_files()
            .iter()
            .map(|f| vec!["--values".to_string(), values_file(f)]),
    );
    for args in sets {
        let mut command = helm_command(&helm);
        command
            .args(["lint", "--strict", "--namespace", "doris-operator"])
            .arg(chart())
            .args(&args);
        let out = run(command);
        assert!(
            out.status.success(),
            "helm lint --strict {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_chart_copies_equal_their_sources() {
    // The CRDs: the two `crds/Kustomization` lists, byte for byte.
    let copies = [
        (
            "crds/doris.selectdb.com_dorisclusters.yaml",
            "crds/doris.selectdb.com_dorisclusters.yaml",
        ),
        (
            "crds/disaggregated.cluster.doris.com_dorisdisaggregatedclusters.yaml",
            "crds/disaggregated.cluster.doris.com_dorisdisaggregatedclusters.yaml",
        ),
        (
            "files/conventions-default.yaml",
            "deploy/30-conventions.yaml",
        ),
        ("files/dashboard.json", "deploy/monitoring/dashboard.json"),
        (
            "files/prometheusrule.yaml",
            "deploy/monitoring/prometheusrule.yaml",
        ),
    ];
    let in_chart: BTreeSet<String> = std::fs::read_dir(chart().join("crds"))
        .unwrap()
        .map(|e| format!("crds/{}", e.unwrap().file_name().into_string().unwrap()))
        .collect();
    assert_eq!(
        in_chart,
        copies[..2]
            .iter()
            .map(|(c, _)| c.to_string())
            .collect::<BTreeSet<String>>(),
        "the chart's crds/ holds the CRDs crds/Kustomization lists, and nothing else"
    );
    let mut stale = Vec::new();
    for (copy, source) in copies {
        let a = std::fs::read(chart().join(copy)).unwrap();
        let b = std::fs::read(root().join(source)).unwrap();
        if a != b {
            stale.push(format!("cp {source} charts/doris-operator/{copy}"));
        }
    }
    assert!(
        stale.is_empty(),
        "the chart's copies are stale; refresh them with:\n{}",
        stale.join("\n")
    );
    // The image the chart runs by default is this version of the operator.
    let meta: Value =
        serde_norway::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(meta["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn with_default_values_the_chart_installs_what_kustomize_does() {
    let (Some(helm), Some(kubectl)) = (env::tool("helm"), env::tool("kubectl")) else {
        return;
    };
    // helm install --create-namespace makes the namespace, which the chart
    // does not hold (README: Differences from deploy/).
    let skipped = ["Namespace/doris-operator"];
    let chart = template(&helm, &["--include-crds"]).unwrap();
    assert_same_objects("deploy", &chart, &kustomize(&kubectl, "deploy"), &skipped);
    let monitoring = template(
        &helm,
        &[
            "--include-crds",
            "-f",
            &values_file("monitoring-values.yaml"),
        ],
    )
    .unwrap();
    let variant = kustomize(&kubectl, "variants/monitoring");
    assert_same_objects("variants/monitoring", &monitoring, &variant, &skipped);
    // The namespaced variant holds no CRDs: `--skip-crds` at install.
    let namespaced = template(&helm, &["-f", &values_file("namespaced-values.yaml")]).unwrap();
    let variant = kustomize(&kubectl, "variants/namespaced");
    assert_same_objects("variants/namespaced", &namespaced, &variant, &[]);
}

fn deployment(objects: &[Value]) -> &Value {
    let mut found = objects.iter().filter(|o| o["kind"] == "Deployment");
    let d = found.next().expect("a Deployment");
    assert!(found.next().is_none(), "one Deployment");
    d
}

fn env_value<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

fn kinds(objects: &[Value]) -> BTreeSet<&str> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect()
}

/// Writes the convention files of ConfigMap `config_map` into `dir`.
fn write_files(config_map: &Value, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in config_map["data"].as_object().unwrap() {
        std::fs::write(dir.join(name), text.as_str().unwrap()).unwrap();
    }
}

/// `doris-operator policy check` of convention layers.
fn policy_check(layers: &[&Path]) {
    let out = Command::new(env!("CARGO_BIN_EXE_doris-operator"))
        .args(["policy", "check"])
        .args(layers)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "policy check {layers:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_documented_values_combination_renders_as_it_says() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let default = template(&helm, &[]).unwrap();
    env::manifests::check_types("default values", &default, false, "the chart");
    let default_index = index(&default);
    let rules = &default_index["ClusterRole/doris-operator"]["rules"];
    let files = values_files();
    assert!(files.len() >= 6, "{files:?}");
    for file in &files {
        assert!(
            readme.contains(&format!("ci/{file}")),
            "charts/doris-operator/README.md does not document ci/{file}"
        );
        let objects = template(&helm, &["--include-crds", "-f", &values_file(file)])
            .unwrap_or_else(|e| panic!("{file} does not render:\n{e}"));
        env::manifests::check_types(file, &objects, false, "the chart");
        let by = index(&objects);
        let d = deployment(&objects);
        let pod = &d["spec"]["template"]["spec"];
        match file.as_str() {
            "namespaced-values.yaml" | "monitoring-values.yaml" => {} // against kustomize
            "other-namespace-values.yaml" => {
                assert!(!kinds(&objects).contains("ClusterRole"));
                assert_eq!(&by["Role/doris/doris-operator"]["rules"], rules);
                let binding = by["RoleBinding/doris/doris-operator"];
                assert_eq!(binding["subjects"][0]["namespace"], "doris-operator");
                let own = by["Role/doris-operator/doris-operator-conventions"];
                assert_eq!(own["rules"][0]["resources"][0], "configmaps");
                assert!(by.contains_key("RoleBinding/doris-operator/doris-operator-conventions"));
                assert_eq!(env_value(d, "WATCH_NAMESPACE").unwrap()["value"], "doris");
            }
            "conventions-values.yaml" => {
                let dir = std::env::temp_dir().join(format!(
                    "doris-operator-chart-conventions-{}",
                    std::process::id()
                ));
                let cm = by["ConfigMap/doris-operator/doris-conventions-default"];
                let shipped = default_index["ConfigMap/doris-operator/doris-conventions-default"];
                assert!(
                    cm["data"]["host_init.rhai"]
                        .as_str()
                        .unwrap()
                        .contains("tcp_keepalive")
                );
                for (name, text) in shipped["data"].as_object().unwrap() {
                    if name != "host_init.rhai" {
                        assert_eq!(&cm["data"][name], text, "{name} is the shipped one");
                    }
                }
                assert!(
                    cm["metadata"].get("annotations").is_none(),
                    "no stale revision"
                );
                let set = by["ConfigMap/doris-operator/doris-conventions-analytics"];
                assert_eq!(
                    set["metadata"]["labels"]["doris.selectdb.com/conventions"],
                    "analytics"
                );
                // The files compile and pass the canary, as the default set
                // and as the named set laid over it.
                write_files(cm, &dir.join("default"));
                write_files(set, &dir.join("analytics"));
                policy_check(&[&dir.join("default")]);
                policy_check(&[&dir.join("default"), &dir.join("analytics")]);
                let _ = std::fs::remove_dir_all(&dir);
            }
            "custom-values.yaml" => {
                let c = &pod["containers"][0];
                assert_eq!(
                    c["image"],
                    "registry.example.com/doris/doris-operator:0.1.0-rc1"
                );
                assert_eq!(c["imagePullPolicy"], "Always");
                assert_eq!(c["args"], serde_json::json!(["run", "--concurrency=16"]));
                assert_eq!(c["resources"]["limits"]["cpu"], "1");
                assert_eq!(pod["imagePullSecrets"][0]["name"], "registry-example-com");
                assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
                assert_eq!(pod["tolerations"][0]["value"], "operators");
                assert!(pod["affinity"]["nodeAffinity"].is_object());
                assert_eq!(pod["priorityClassName"], "operators");
                assert_eq!(pod["serviceAccountName"], "doris");
                let labels = &d["spec"]["template"]["metadata"];
                assert_eq!(labels["labels"]["team"], "platform");
                assert_eq!(labels["labels"]["app.kubernetes.io/name"], "doris-operator");
                assert_eq!(labels["annotations"]["example.com/owner"], "platform");
                assert_eq!(labels["annotations"]["prometheus.io/port"], "8080");
                assert_eq!(d["spec"]["replicas"], 1);
                assert_eq!(env_value(d, "LEADER_ELECT").unwrap()["value"], "false");
                assert_eq!(env_value(d, "LOG_FORMAT").unwrap()["value"], "text");
                assert!(env_value(d, "RUST_LOG").is_some());
                assert!(!by.contains_key("Role/doris-operator/doris-leader"));
                assert!(by.contains_key("Service/doris-operator/doris-metrics"));
                let account = by["ServiceAccount/doris-operator/doris"];
                assert_eq!(
                    account["metadata"]["annotations"]["example.com/role"],
                    "doris-operator"
                );
                let extra = by["ClusterRole/doris"]["rules"].as_array().unwrap();
                assert_eq!(extra.len(), rules.as_array().unwrap().len() + 1);
                assert_eq!(extra.last().unwrap()["resources"][0], "networkpolicies");
            }
            "existing-serviceaccount-values.yaml" => {
                assert!(!kinds(&objects).contains("ServiceAccount"));
                assert_eq!(pod["serviceAccountName"], "doris-operator-sa");
                for key in [
                    "ClusterRoleBinding/doris-operator",
                    "RoleBinding/doris-operator/doris-operator-leader",
                ] {
                    assert_eq!(by[key]["subjects"][0]["name"], "doris-operator-sa", "{key}");
                }
                assert!(!kinds(&objects).contains("ConfigMap"));
            }
            other => panic!("ci/{other} has no check here: add one"),
        }
    }
}

#[test]
fn a_typo_in_values_is_refused() {
    let Some(helm) = env::tool("helm") else {
        return;
    };
    // A correct value goes through, so each refusal below is the typo's.
    template(&helm, &["--set", "monitoring.serviceMonitor.enabled=true"]).unwrap();
    for (args, why) in [
        (["--set", "replicaCont=3"], "an unknown key"),
        (
            ["--set", "monitoring.serviceMonitor.enable=true"],
            "an unknown nested key",
        ),
        (["--set", "image.tags=1.0"], "an unknown key of image"),
        (["--set", "replicaCount=two"], "a string for an integer"),
        (
            ["--set", "leaderElection.enabled=yes"],
            "a string for a boolean",
        ),
        (["--set", "logFormat=xml"], "a value out of its list"),
        (
            ["--set", "watchNamespace=Not_A_Namespace"],
            "an invalid namespace",
        ),
        (
            ["--set", "extraArgs=--concurrency=4"],
            "a string for a list",
        ),
        (
            ["--set", "conventions.sets.default.restart\\.rhai=x"],
            "a set named default",
        ),
        (
            ["--set", "conventions.default.files.restart_order\\.rhai=x"],
            "an unknown convention file",
        ),
    ] {
        match template(&helm, &args) {
            Ok(_) => panic!("{why} ({args:?}) is accepted"),
            Err(e) => assert!(
                e.contains("schema"),
                "{why} ({args:?}) is refused, but not by the schema: {e}"
            ),
        }
    }
}

#[path = "helm/install.rs"]
mod install;
