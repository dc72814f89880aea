//! `render`: what each sample becomes with the default conventions (snapshot
//! files a reviewer reads in tests/snapshots/), what a custom conventions
//! folder changes, and how every kind of bad input is reported.
//!
//! After an intended change to the conventions, refresh the snapshots with
//! `INSTA_UPDATE=always cargo test --test render` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use doris_operator::render::{self, Format};

#[path = "render/refused.rs"]
mod refused;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every example file holding a DorisCluster, relative to the repository.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml") && {
                let text = std::fs::read_to_string(&p).unwrap();
                text.contains("kind: DorisCluster")
                    || text.contains("kind: DorisDisaggregatedCluster")
            } {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("examples"), &mut out);
    assert!(
        out.len() >= 20,
        "expected our samples and the peer's, found {out:?}"
    );
    out
}

fn snapshot_name(path: &Path) -> String {
    path.strip_prefix(root().join("examples"))
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".yaml")
        .replace('/', "__")
}

/// A sample's text, with the `{placeholder}`s some of the peer's samples
/// leave for the user filled in with their names.
fn sample_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    regex::Regex::new(r"\{([a-z_]+)\}")
        .unwrap()
        .replace_all(&text, "$1")
        .into_owned()
}

fn render_file(path: &Path, conventions: Option<&Path>) -> String {
    let text = sample_text(path);
    let input = render::read_input(&path.display().to_string(), &text).unwrap();
    let bundle = render::load_bundle(conventions).unwrap();
    render::render(&bundle, &input, Format::Yaml).unwrap().0
}

fn plan_file(path: &Path, conventions: Option<&Path>) -> String {
    let text = sample_text(path);
    let input = render::read_input(&path.display().to_string(), &text).unwrap();
    let bundle = render::load_bundle(conventions).unwrap();
    render::render_restart_plan(&bundle, &input, Format::Yaml).unwrap()
}

#[test]
fn every_sample_renders_as_in_its_snapshot() {
    for path in example_files() {
        let out = render_file(&path, None);
        insta::assert_snapshot!(format!("render__{}", snapshot_name(&path)), out);
    }
}

#[test]
fn every_sample_restart_plan_is_as_in_its_snapshot() {
    for path in example_files() {
        // The revision changes with every convention edit; the order is what
        // the snapshot is for.
        let revision = render::load_bundle(None).unwrap().revision().to_string();
        let out = plan_file(&path, None).replace(&revision, "<revision>");
        insta::assert_snapshot!(format!("plan__{}", snapshot_name(&path)), out);
    }
}

#[test]
fn output_is_byte_identical_across_runs_and_processes() {
    let sample = root().join("examples/doriscluster-full.yaml");
    let first = render_file(&sample, None);
    assert_eq!(first, render_file(&sample, None));
    let cli = cli(&["render", "-f", sample.to_str().unwrap()]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(String::from_utf8(cli.stdout).unwrap(), first);
}

#[test]
fn json_output_is_a_list_of_the_same_objects() {
    let sample = root().join("examples/doriscluster-sample.yaml");
    let out = cli(&["render", "-f", sample.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap/doriscluster-sample-fe-conf",
            "Service/doriscluster-sample-fe-internal",
            "Service/doriscluster-sample-fe-service",
            "StatefulSet/doriscluster-sample-fe",
            "ConfigMap/doriscluster-sample-be-conf",
            "Service/doriscluster-sample-be-internal",
            "Service/doriscluster-sample-be-service",
            "StatefulSet/doriscluster-sample-be",
        ]
    );
}

#[test]
fn a_custom_conventions_folder_changes_host_init_and_restart_order() {
    let sample = root().join("examples/doriscluster-sample.yaml");
    let custom = root().join("tests/conventions/custom");

    let default_out = render_file(&sample, None);
    let custom_out = render_file(&sample, Some(&custom));
    assert!(default_out.contains("sysctl -w vm.max_map_count=2000000 && swapoff -a"));
    assert!(!custom_out.contains("swapoff"));
    assert!(custom_out.contains("vm.max_map_count=4000000"));
    assert!(custom_out.contains("name: tune-host"));

    let default_plan = plan_file(&sample, None);
    let custom_plan = plan_file(&sample, Some(&custom));
    let order = |plan: &str| -> Vec<String> {
        let docs: serde_json::Value = serde_norway::from_str(plan).unwrap();
        docs["restartOrder"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["pods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        p.as_str()
                            .unwrap()
                            .trim_start_matches("doriscluster-sample-")
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    };
    assert_eq!(
        order(&default_plan),
        ["be-2", "be-1", "be-0", "fe-2", "fe-1", "fe-0"]
    );
    assert_eq!(
        order(&custom_plan),
        ["fe-1", "fe-2", "fe-0", "be-0+be-1", "be-2"]
    );
}

#[test]
fn user_config_overrides_ports_everywhere_they_appear() {
    // doriscluster-full.yaml carries ConfigMaps moving the FE query port to
    // 9031 and the BE heartbeat port to 9051.
    let out = render_file(&root().join("examples/doriscluster-full.yaml"), None);
    let objects: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"))
            .clone()
    };
    let fe_internal = find("Service", "doris-full-fe-internal");
    assert_eq!(fe_internal["spec"]["ports"][0]["port"], 9031);
    let be = find("StatefulSet", "doris-full-be");
    let container = &be["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["tcpSocket"]["port"], 9051);
    let env = container["env"].as_array().unwrap();
    let fe_port = env.iter().find(|e| e["name"] == "FE_QUERY_PORT").unwrap();
    assert_eq!(fe_port["value"], "9031");
    let conf = find("ConfigMap", "doris-full-fe-conf");
    assert!(
        conf["data"]["fe.conf"]
            .as_str()
            .unwrap()
            .contains("query_port = 9031")
    );
}

// ---------------------------------------------------------------- bad input

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_doris-operator"))
        .args(args)
        .output()
        .unwrap()
}

/// Renders the sample with a conventions folder holding one file, expecting
/// failure; returns stderr.
fn render_with_file(name: &str, content: &str) -> String {
    let dir = tempdir(name);
    std::fs::write(dir.join(name), content).unwrap();
    let sample = root().join("examples/doriscluster-sample.yaml");
    let out = cli(&[
        "render",
        "-f",
        sample.to_str().unwrap(),
        "--conventions",
        dir.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "render succeeded with a broken {name}"
    );
    assert!(out.stdout.is_empty(), "a failed render printed objects");
    String::from_utf8(out.stderr).unwrap()
}

/// A fresh folder of this test run's own: tests run in parallel, so two
/// writing the same file name must not share one.
fn tempdir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "doris-operator-test-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        tag.replace('.', "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_policy_that_loops_forever_is_stopped_and_located() {
    let err = render_with_file(
        "host_init.rhai",
        "fn host_init(ctx) {\n    let n = 0;\n    loop { n += 1; }\n}\n",
    );
    assert!(err.contains("host_init.rhai:3:"), "{err}");
    assert!(err.to_lowercase().contains("too many operations"), "{err}");
}

#[test]
fn a_policy_syntax_error_is_located() {
    let err = render_with_file("shape.rhai", "fn shape(ctx) {\n  let x = ;\n}\n");
    assert!(err.contains("shape.rhai:2:"), "{err}");
}

#[test]
fn a_policy_returning_the_wrong_type_is_explained() {
    let err = render_with_file("host_init.rhai", "fn host_init(ctx) { \"sysctl\" }\n");
    assert!(err.contains("host_init.rhai"), "{err}");
    assert!(
        err.contains("must return an array of init containers, got a string"),
        "{err}"
    );

    let err = render_with_file(
        "shape.rhai",
        "fn shape(ctx) { #{ objects: [#{ apiVersion: \"apps/v1\", kind: \"StatefulSet\", \
         metadata: #{ name: \"x\" }, spec: #{ replicas: \"three\" } }] } }\n",
    );
    assert!(err.contains("StatefulSet \"x\": spec.replicas"), "{err}");
}

#[test]
fn a_policy_runtime_error_names_the_line() {
    let err = render_with_file(
        "config.rhai",
        "fn config(ctx) {\n    let d = #{};\n    d.x = 1 / 0;\n    #{ defaults: d }\n}\n",
    );
    assert!(err.contains("config.rhai:3:"), "{err}");
}

#[test]
fn a_template_reading_an_undefined_value_is_located() {
    let err = render_with_file("fe.conf.j2", "# fe.conf\n{{ no_such_value }}\n");
    assert!(err.contains("fe.conf.j2:2:"), "{err}");
    assert!(err.contains("undefined"), "{err}");
}

#[test]
fn a_template_producing_invalid_yaml_is_reported() {
    let err = render_with_file("extra.yaml.j2", "kind: [unclosed\n");
    assert!(err.contains("extra.yaml.j2"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
}

#[test]
fn an_invalid_cluster_names_the_field() {
    let dir = tempdir("bad-cr");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: bad\nspec:\n  feSpec:\n    image: apache/doris:fe-2.1.8\n    replicas: three\n",
    )
    .unwrap();
    let out = cli(&["render", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("spec.feSpec.replicas"), "{err}");
}

#[test]
fn a_missing_conventions_folder_or_required_file_is_reported() {
    let dir = tempdir("empty");
    let sample = root().join("examples/doriscluster-sample.yaml");
    let out = cli(&[
        "render",
        "-f",
        sample.to_str().unwrap(),
        "--conventions",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no convention files"));
}

#[test]
fn policy_check_accepts_the_defaults_and_rejects_a_broken_folder() {
    let ok = cli(&["policy", "check", root().join("policies").to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("sample clusters rendered"));

    let dir = tempdir("check-broken");
    std::fs::write(
        dir.join("restart.rhai"),
        "fn restart_order(ctx) { [#{ pods: [\"nope\"] }] }",
    )
    .unwrap();
    let bad = cli(&["policy", "check", dir.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("pod nope does not need a restart"));
}

#[test]
fn diff_shows_what_a_convention_change_would_change_and_restart() {
    let sample = root().join("examples/doriscluster-sample.yaml");
    let custom = root().join("tests/conventions/custom");
    let out = cli(&[
        "render",
        "-f",
        sample.to_str().unwrap(),
        "--conventions",
        custom.to_str().unwrap(),
        "--diff",
        "embedded",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "~ StatefulSet doriscluster-sample-be\n  pod template changes: its pods restart"
        ),
        "{text}"
    );
    assert!(
        text.contains("-        - sysctl -w vm.max_map_count=2000000 && swapoff -a"),
        "{text}"
    );
    assert!(
        text.contains("+        - vm.max_map_count=4000000"),
        "{text}"
    );
    // The custom host_init gives FE no init containers, as the default does.
    assert!(
        !text.contains("StatefulSet doriscluster-sample-fe"),
        "{text}"
    );
    assert!(text.contains("= 7 objects unchanged"), "{text}");

    // The same conventions on both sides change nothing.
    let same = cli(&[
        "render",
        "-f",
        sample.to_str().unwrap(),
        "--diff",
        "embedded",
    ]);
    assert!(
        String::from_utf8(same.stdout)
            .unwrap()
            .contains("= 8 objects unchanged")
    );
}

const SECRET_AT_ETC_DORIS: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: s
spec:
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
    configMapInfo:
      configMapName: fe-main
      configMaps:
      - configMapName: extra
        mountPath: /etc/doris/
    secrets:
    - secretName: creds
    - secretName: more
      mountPath: /etc/doris
"#;

fn secret(name: &str, keys: &[&str]) -> String {
    let data: String = keys.iter().map(|k| format!("  {k}: eA==\n")).collect();
    format!("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ndata:\n{data}")
}

fn render_text(text: &str) -> Result<(String, Vec<String>), String> {
    let input = render::read_input("input.yaml", text)?;
    render::render(&render::load_bundle(None).unwrap(), &input, Format::Yaml)
}

#[test]
fn files_of_one_directory_are_merged_and_a_shared_name_is_refused_on_its_field() {
    let extra = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  hosts.txt: x\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fe-main\ndata:\n  fe.conf: |\n    query_port = 9030\n";
    // Distinct file names: the configuration, the ConfigMap and both
    // Secrets are seen together in /etc/doris.
    let fine = format!(
        "{SECRET_AT_ETC_DORIS}{extra}{}{}",
        secret("creds", &["user"]),
        secret("more", &["password"])
    );
    let (out, notes) = render_text(&fine).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let docs: Vec<serde_json::Value> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    let sts = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet" && d["metadata"]["name"] == "s-fe")
        .unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    let mounts: Vec<_> = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mountPath"] == "/etc/doris")
        .collect();
    assert_eq!(mounts.len(), 1, "one volume in /etc/doris: {mounts:?}");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mounts[0]["name"])
        .unwrap();
    assert_eq!(
        volume["projected"]["sources"],
        serde_json::json!([
            {"configMap": {"name": "extra"}},
            {"secret": {"name": "creds"}},
            {"secret": {"name": "more"}},
            {"configMap": {"name": "s-fe-conf"}},
        ])
    );

    // A Secret key named like the rendered configuration file.
    let clash = format!(
        "{SECRET_AT_ETC_DORIS}{extra}{}{}",
        secret("creds", &["user", "fe.conf"]),
        secret("more", &["user"])
    );
    let err = render_text(&clash).unwrap_err();
    assert!(
        err.contains(
            "spec.feSpec.secrets[0]: key fe.conf collides with fe.conf of the configuration \
             (ConfigMap s-fe-conf), both mounted at /etc/doris"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.feSpec.secrets[1]: key user collides with user of secrets[0] (Secret creds)"
        ),
        "{err}"
    );

    // Secrets not in the input: rendered, with a note that they were not checked.
    let (_, notes) = render_text(&format!("{SECRET_AT_ETC_DORIS}{extra}")).unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("Secret creds was not in the input"),
        "{notes:?}"
    );
}

/// The BE pod's host tuning (init containers and pod securityContext) of
/// `example` in a namespace of Pod Security `level`, as YAML.
fn host_tuning(example: &str, level: doris_operator::plan::PodSecurity) -> String {
    let path = root().join("examples").join(example);
    let mut input = render::read_input(&path.display().to_string(), &sample_text(&path)).unwrap();
    input.pod_security = level;
    let bundle = render::load_bundle(None).unwrap();
    let out = render::render(&bundle, &input, Format::Json).unwrap().0;
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let be = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["kind"] == "StatefulSet" && o["metadata"]["name"].as_str().unwrap().ends_with("-be")
        })
        .expect("a BE StatefulSet");
    let pod = &be["spec"]["template"]["spec"];
    serde_norway::to_string(&serde_json::json!({
        "initContainers": pod["initContainers"],
        "securityContext": pod["securityContext"],
    }))
    .unwrap()
}

/// Host tuning follows the namespace's Pod Security level: a privileged
/// init container only where the namespace allows it; elsewhere safe
/// sysctls and an unprivileged check that meets the level's rules.
#[test]
fn host_tuning_follows_the_pod_security_level() {
    use doris_operator::plan::PodSecurity;
    for level in [
        PodSecurity::Privileged,
        PodSecurity::Baseline,
        PodSecurity::Restricted,
    ] {
        for example in ["doriscluster-sample.yaml", "doriscluster-full.yaml"] {
            let out = host_tuning(example, level);
            let privileged = out.contains("privileged: true");
            assert_eq!(
                privileged,
                level == PodSecurity::Privileged,
                "{example} at {level:?}:\n{out}"
            );
            insta::assert_snapshot!(
                format!(
                    "host_tuning__{}__{}",
                    level.as_str(),
                    example.trim_end_matches(".yaml")
                ),
                out
            );
        }
    }
    let restricted = host_tuning("doriscluster-sample.yaml", PodSecurity::Restricted);
    for rule in [
        "runAsNonRoot: true",
        "allowPrivilegeEscalation: false",
        "- ALL",
        "type: RuntimeDefault",
    ] {
        assert!(restricted.contains(rule), "{rule}:\n{restricted}");
    }
}

/// `render` takes the level from a Namespace document in the file, or
/// from `--pod-security`, which wins; a wrong level is named.
#[test]
fn render_reads_the_pod_security_level_from_a_namespace_or_a_flag() {
    let sample = std::fs::read_to_string(root().join("examples/doriscluster-sample.yaml")).unwrap();
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: doris\n  labels:\n    \
                     pod-security.kubernetes.io/enforce: baseline\n---\n";
    let dir = tempdir("pod-security");
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, format!("{namespace}{sample}")).unwrap();
    let file = file.to_str().unwrap();
    let stdout = |args: &[&str]| {
        let out = cli(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let from_namespace = stdout(&["render", "-f", file]);
    assert!(from_namespace.contains("name: host-check"));
    assert!(!from_namespace.contains("privileged: true"));
    let flagged = stdout(&["render", "-f", file, "--pod-security", "privileged"]);
    assert!(flagged.contains("privileged: true"));
    assert!(!flagged.contains("name: host-check"));

    let out = cli(&["render", "-f", file, "--pod-security", "strict"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("\"strict\" is not a Pod Security level"),
        "{err}"
    );
    let wrong = format!("{}{sample}", namespace.replace("baseline", "lax"));
    let err = render::read_input("ns.yaml", &wrong).unwrap_err();
    assert!(
        err.starts_with("ns.yaml: document 1 (line 1): Namespace: metadata.labels[\"pod-security.kubernetes.io/enforce\"]"),
        "{err}"
    );
}

/// Renders `input` (YAML) with the CLI, as `render` with the extra `args`;
/// returns the objects.
fn render_objects(tag: &str, input: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempdir(tag);
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, input).unwrap();
    let mut all = vec!["render", "-f", file.to_str().unwrap(), "-o", "json"];
    all.extend(args);
    let out = cli(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

const MONITORED: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: metered
  namespace: doris
spec:
  feSpec:
    image: apache/doris:fe-2.1.8
    configMapInfo:
      configMapName: fe-conf
  beSpec:
    image: apache/doris:be-2.1.8
  brokerSpec:
    image: apache/doris:broker-2.1.8
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: fe-conf
  namespace: doris
data:
  fe.conf: |
    http_port = 18030
"#;

#[test]
fn a_service_monitor_per_component_scrapes_the_configured_port_when_served() {
    let served = ["--api-resources", "monitoring.coreos.com/v1/ServiceMonitor"];
    let objects = render_objects("monitoring", MONITORED, &served);
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let mut monitors: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    monitors.sort();
    // Brokers serve no metrics.
    assert_eq!(monitors, ["metered-be", "metered-fe"]);
    for (component, path_port, number) in [("fe", "/metrics", 18030), ("be", "/metrics", 8040)] {
        let monitor = find("ServiceMonitor", &format!("metered-{component}"));
        let endpoint = &monitor["spec"]["endpoints"][0];
        assert_eq!(endpoint["path"], path_port);
        // The Service it selects serves the configured port under the
        // name the ServiceMonitor scrapes.
        let service = find("Service", &format!("metered-{component}-service"));
        for (label, value) in monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap()
        {
            assert_eq!(&service["metadata"]["labels"][label], value, "{label}");
        }
        let port = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == endpoint["port"])
            .expect("the Service has the scraped port");
        assert_eq!(port["port"], number, "{component}");
    }

    // Not served, or switched off for the cluster: none.
    let objects = render_objects("monitoring-unserved", MONITORED, &[]);
    assert!(objects.iter().all(|o| o["kind"] != "ServiceMonitor"));
    let off = MONITORED.replace(
        "  namespace: doris\nspec:",
        "  namespace: doris\n  annotations:\n    doris.selectdb.com/monitoring: \"false\"\nspec:",
    );
    let objects = render_objects("monitoring-off", &off, &served);
    assert!(objects.iter().all(|o| o["kind"] != "ServiceMonitor"));
}

#[test]
fn a_disaggregated_cluster_gets_a_service_monitor_per_part() {
    let input = std::fs::read_to_string(root().join("examples/ddc-sample.yaml")).unwrap();
    let objects = render_objects(
        "monitoring-ddc",
        &input,
        &["--api-resources", "monitoring.coreos.com/v1/ServiceMonitor"],
    );
    let mut endpoints: Vec<(String, String, String)> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .map(|o| {
            let e = &o["spec"]["endpoints"][0];
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                e["port"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    endpoints.sort();
    let name =
        |n: &str, port: &str, path: &str| (n.to_string(), port.to_string(), path.to_string());
    assert_eq!(
        endpoints,
        [
            name("ddc-sample-cg-etl", "webserver-port", "/metrics"),
            name("ddc-sample-cg-query", "webserver-port", "/metrics"),
            name("ddc-sample-fe", "http-port", "/metrics"),
            name("ddc-sample-ms", "brpc-port", "/brpc_metrics"),
        ]
    );
}
