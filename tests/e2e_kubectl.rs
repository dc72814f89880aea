//! `kubectl doris` end to end: against a running cluster the operator made,
//! a diff of the unchanged cluster file is empty and exits 0; a replica
//! change shows the StatefulSet's diff and the BE to be decommissioned; an
//! image change shows the restart order; the status screen of a cluster
//! mid-rollout says what the rollout waits for; restart, pause and resume
//! write the annotations the operator reads. One test runs the binary
//! itself, named kubectl-doris, with a kubeconfig. Where the API server
//! serves only one of the two kinds, the commands work on a cluster of
//! that kind and say when the kind asked for is not served. `version`
//! reads the operator's Deployment and the CRDs, and warns of a version
//! other than the binary's.
//!
//! The FE is the simulator in tests/fesim, joined by the member driver.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doris_operator::crd::DorisCluster;
use doris_operator::kubectl::{self, diff};
use doris_operator::render::read_input;
use env::{Env, SAMPLE, eventually, wait_ready};
use fesim::{FeSim, FeSimConfig};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use members::MemberDriver;
use serde_json::json;

/// The shared sample cluster, its BEs drained for `drain` seconds before
/// they restart.
fn sample(drain: u32) -> String {
    SAMPLE.replace(
        "  name: doris\n",
        &format!(
            "  name: doris\n  annotations:\n    doris.selectdb.com/drain-seconds: \"{drain}\"\n"
        ),
    )
}

struct Running {
    env: Env,
    _sim: Arc<FeSim>,
    _driver: MemberDriver,
}

/// The operator, an FE simulator, and the cluster `yaml` Ready with its
/// members synced.
async fn running(test: &str, yaml: &str) -> Running {
    let mut env = Env::without_operator(test).await;
    let sim = members::simulated_fe(&mut env, FeSimConfig::default(), "doris").await;
    env.start_operator();
    let driver = MemberDriver::start(&env, sim.clone(), 3);
    env.create_cluster(yaml).await;
    wait_ready(&env, "doris").await;
    members::members_synced(&env, "doris").await;
    Running {
        env,
        _sim: sim,
        _driver: driver,
    }
}

/// Diffs `yaml` against the test's namespace, where the operator also
/// reads its convention ConfigMaps.
async fn diff_of(env: &Env, yaml: &str) -> diff::Report {
    let input = read_input("cluster.yaml", yaml).unwrap();
    let options = diff::Options {
        namespace: env.namespace.clone(),
        namespace_explicit: false,
        operator_namespace: env.namespace.clone(),
    };
    diff::diff(&env.client, &input, &options).await.unwrap()
}

/// The status screen of cluster `name`, now.
async fn screen_of(env: &Env, name: &str) -> String {
    let observed =
        kubectl::status::observe(&env.client, &env.namespace, name, None, &env.namespace)
            .await
            .unwrap();
    kubectl::status::screen(&observed, k8s_openapi::jiff::Timestamp::now())
}

async fn statefulset(env: &Env, name: &str) -> StatefulSet {
    env.api::<StatefulSet>().get(name).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_of_the_unchanged_cluster_is_empty() {
    let r = running("kubectl-same", &sample(1)).await;
    let report = diff_of(&r.env, &sample(1)).await;
    assert_eq!(report.text, "", "notes: {:?}", report.notes);
    assert!(!report.changed());
    let revision = r.env.conventions.current().revision().to_string();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains(&format!("revision {revision}"))),
        "{:?}",
        report.notes
    );
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_change_shows_the_statefulset_diff_and_the_decommission() {
    let r = running("kubectl-scale", &sample(1)).await;
    let before = statefulset(&r.env, "doris-be").await;
    let fewer = sample(1).replace(
        "    replicas: 3\n    image: apache/doris:be",
        "    replicas: 2\n    image: apache/doris:be",
    );
    let report = diff_of(&r.env, &fewer).await;
    let text = &report.text;
    assert!(report.changed());
    assert!(text.contains("~ StatefulSet doris-be\n"), "{text}");
    assert!(text.contains("\n-  replicas: 3\n"), "{text}");
    assert!(text.contains("\n+  replicas: 2\n"), "{text}");
    assert!(
        text.contains("scale-down be 3 -> 2: doris-be-2 decommissioned first"),
        "{text}"
    );
    // Only the BE StatefulSet changes, and no pod restarts.
    assert!(!text.contains("~ StatefulSet doris-fe"), "{text}");
    assert!(!text.contains("restarts"), "{text}");
    // Nothing was written.
    let after = statefulset(&r.env, "doris-be").await;
    assert_eq!(after.spec.replicas, Some(3));
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    r.env.finish().await;
}

/// The pods of each numbered restart step, in order.
fn restart_steps(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (n, rest) = l.trim_start().split_once(". ")?;
            n.parse::<usize>().ok()?;
            let (_, pods) = rest.split_once(": ")?;
            Some(pods.split(" (").next()?.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_change_shows_the_restart_order() {
    let r = running("kubectl-image", &sample(1)).await;
    let upgraded = sample(1).replace("2.1.8", "2.1.9");
    let report = diff_of(&r.env, &upgraded).await;
    let text = &report.text;
    assert!(text.contains("~ StatefulSet doris-be\n"), "{text}");
    assert!(
        text.contains("+        image: apache/doris:be-2.1.9"),
        "{text}"
    );
    assert!(text.contains("restarts (upgrade)"), "{text}");
    // The default restart.rhai: BEs first, one at a time, then the FE
    // followers, the master (ordinal 0) last.
    let steps = restart_steps(text);
    assert_eq!(steps.len(), 6, "{text}");
    assert!(
        steps[..3].iter().all(|p| p.starts_with("doris-be-")),
        "{text}"
    );
    assert!(
        steps[3..].iter().all(|p| p.starts_with("doris-fe-")),
        "{text}"
    );
    assert_eq!(steps[5], "doris-fe-0", "{text}");
    // Pods of the BEs drain before they go.
    assert!(
        text.contains("1. be: doris-be-") && text.contains("drained 1s first"),
        "{text}"
    );
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_cluster_mid_rollout() {
    let r = running("kubectl-status", &sample(120)).await;
    let env = &r.env;
    let api = env.api::<DorisCluster>();
    api.patch(
        "doris",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"beSpec": {"image": "apache/doris:be-2.1.9"}}})),
    )
    .await
    .unwrap();
    eventually("the rollout to start draining a BE", 30, || async {
        let c = api.get("doris").await.ok()?;
        c.status?
            .rollout
            .filter(|r| r.waiting.starts_with("draining"))
    })
    .await;
    // A Warning about the cluster, as a controller would report one, and
    // a Normal one the screen leaves out.
    let cluster = api.get("doris").await.unwrap();
    for (type_, reason) in [("Warning", "SomethingWrong"), ("Normal", "AllFine")] {
        let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
            "metadata": {"name": format!("doris.{}", reason.to_lowercase())},
            "eventTime": k8s_openapi::jiff::Timestamp::now().to_string(),
            "reportingController": "e2e", "reportingInstance": "e2e",
            "action": "Check", "reason": reason, "type": type_,
            "note": format!("note of {reason}"),
            "regarding": {"apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
                          "name": "doris", "namespace": env.namespace, "uid": cluster.uid()},
        }))
        .unwrap();
        env.api::<k8s_openapi::api::events::v1::Event>()
            .create(&PostParams::default(), &event)
            .await
            .unwrap();
    }

    let screen = screen_of(env, "doris").await;
    assert!(
        screen.starts_with(&format!("DorisCluster {}/doris", env.namespace)),
        "{screen}"
    );
    assert!(
        screen.contains("Rollout: be (upgrade), 0/3 pods updated"),
        "{screen}"
    );
    assert!(
        screen.contains("waits for: pod_ready, fe_reports_alive"),
        "{screen}"
    );
    assert!(screen.contains("now:       draining doris-be-"), "{screen}");
    // Every pod is up while the first BE drains.
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("fe ") && l.contains(" 3/3 ")),
        "{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("be ") && l.contains(" 3/3 ")),
        "{screen}"
    );
    assert!(screen.contains("FE membership: confirmed"), "{screen}");
    let revision = env.conventions.current().revision().to_string();
    assert!(
        screen.contains(&format!(
            "Conventions: set \"default\", revision {revision} (live)"
        )),
        "{screen}"
    );
    assert!(
        screen.contains("SomethingWrong") && screen.contains("note of SomethingWrong"),
        "{screen}"
    );
    assert!(!screen.contains("AllFine"), "{screen}");

    // Pause and resume, as the README's annotation.
    let found = kubectl::find_cluster(&env.client, &env.namespace, "doris", None)
        .await
        .unwrap();
    kubectl::pause(&env.client, &found).await.unwrap();
    let paused = api.get("doris").await.unwrap();
    assert_eq!(
        paused
            .annotations()
            .get("doris.selectdb.com/rollout-paused")
            .map(String::as_str),
        Some("true")
    );
    let screen = screen_of(env, "doris").await;
    assert!(screen.contains("PAUSED"), "{screen}");
    kubectl::resume(&env.client, &found).await.unwrap();
    let resumed = api.get("doris").await.unwrap();
    assert!(
        !resumed
            .annotations()
            .contains_key("doris.selectdb.com/rollout-paused")
    );
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_writes_the_annotation_of_each_part_asked_for() {
    let env = Env::start("kubectl-restart").await;
    env.create_cluster(&sample(1)).await;
    let found = kubectl::find_cluster(&env.client, &env.namespace, "doris", None)
        .await
        .unwrap();
    let at = "2026-12-03T08:00:00Z";
    kubectl::restart(&env.client, &found, &["be".to_string()], at)
        .await
        .unwrap();
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    let annotations = cluster.annotations();
    assert_eq!(
        annotations
            .get("apache.doris.be/restartedAt")
            .map(String::as_str),
        Some(at)
    );
    assert!(!annotations.contains_key("apache.doris.fe/restartedAt"));
    // No part named: all of them.
    kubectl::restart(&env.client, &found, &[], at)
        .await
        .unwrap();
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    assert_eq!(
        cluster
            .annotations()
            .get("apache.doris.fe/restartedAt")
            .map(String::as_str),
        Some(at)
    );
    let err = kubectl::restart(&env.client, &found, &["cn".to_string()], at)
        .await
        .unwrap_err();
    assert!(err.contains("has no part \"cn\"; it has fe, be"), "{err}");
    let err = kubectl::find_cluster(&env.client, &env.namespace, "nope", None)
        .await
        .unwrap_err();
    assert!(
        err.contains("no DorisCluster or DorisDisaggregatedCluster named nope"),
        "{err}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_is_a_kubectl_plugin_named_kubectl_doris() {
    let r = running("kubectl-binary", &sample(1)).await;
    let env = &r.env;
    let dir = std::env::temp_dir().join(format!("kubectl-doris-e2e-{}", std::process::id()));
    let plugin = plugin_in(&dir);
    let (config, namespace_args) = env.kubeconfig(&dir);
    std::fs::write(dir.join("same.yaml"), sample(1)).unwrap();
    std::fs::write(
        dir.join("upgraded.yaml"),
        sample(1).replace("be-2.1.8", "be-2.1.9"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let plugin = plugin.clone();
        let config = config.clone();
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(namespace_args.clone());
        args.extend(["--operator-namespace".into(), env.namespace.clone()]);
        run_plugin(plugin, args, config)
    };
    let same = dir.join("same.yaml").display().to_string();
    let out = run(&["diff", "-f", &same]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let upgraded = dir.join("upgraded.yaml").display().to_string();
    let out = run(&["diff", "-f", &upgraded]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("restarts (upgrade)"), "{stdout}");
    let out = run(&["status", "doris"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Rollout: none in progress"), "{stdout}");
    // A broken file is an error (exit 2), naming the file.
    std::fs::write(dir.join("broken.yaml"), "kind: DorisCluster\nspec: [\n").unwrap();
    let broken = dir.join("broken.yaml").display().to_string();
    let out = run(&["diff", "-f", &broken]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.yaml"));
    let _ = std::fs::remove_dir_all(&dir);
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disaggregated_cluster_diffs_and_reads_as_a_doris_cluster_does() {
    let mut env = Env::without_operator("kubectl-ddc").await;
    let master = members::fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let sim = members::simulated_fe_at(&mut env, FeSimConfig::cloud(), &master).await;
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 1);
    env.create_ddc(env::DDC_SAMPLE).await;
    env::wait_ddc_ready(&env, "ddc").await;

    assert_eq!(diff_of(&env, env::DDC_SAMPLE).await.text, "");
    let fewer = env::DDC_SAMPLE.replace("replicas: 2", "replicas: 1");
    let text = diff_of(&env, &fewer).await.text;
    assert!(text.contains("~ StatefulSet ddc-cg-etl\n"), "{text}");
    // Without enableDecommission its nodes are dropped, as membership.rhai says.
    assert!(
        text.contains(
            "scale-down cg-etl 2 -> 1: ddc-cg-etl-1 dropped from the FE without decommission"
        ),
        "{text}"
    );

    let screen = screen_of(&env, "ddc").await;
    assert!(
        screen.starts_with(&format!("DorisDisaggregatedCluster {}/ddc", env.namespace)),
        "{screen}"
    );
    for (part, ready) in [("ms", "1/1"), ("fe", "1/1"), ("cg-etl", "2/2")] {
        assert!(
            screen
                .lines()
                .any(|l| l.starts_with(&format!("{part} ")) && l.contains(&format!(" {ready} "))),
            "{part}: {screen}"
        );
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_taken_out_shows_its_objects_removed_and_one_put_in_shows_them_new() {
    let env = Env::start("kubectl-parts").await;
    let with_cn = format!(
        "{}  cnSpec:\n    replicas: 1\n    image: apache/doris:be-2.1.8\n",
        sample(1)
    );
    env.create_cluster(&with_cn).await;
    // Every object of the CN made (the operator applies in one reconcile).
    eventually("the CN's objects", 30, || async {
        let sts = env.api::<StatefulSet>().get_opt("doris-cn").await.ok()??;
        let svc = env
            .api::<Service>()
            .get_opt("doris-cn-service")
            .await
            .ok()??;
        let cm = env
            .api::<ConfigMap>()
            .get_opt("doris-cn-conf")
            .await
            .ok()??;
        Some((sts, svc, cm))
    })
    .await;
    let with_broker = format!(
        "{}  brokerSpec:\n    replicas: 1\n    image: apache/doris:broker-2.1.8\n",
        sample(1)
    );
    let text = diff_of(&env, &with_broker).await.text;
    for removed in [
        "StatefulSet doris-cn",
        "Service doris-cn-service",
        "ConfigMap doris-cn-conf",
    ] {
        assert!(
            text.contains(&format!("- {removed} (removed)\n")),
            "{removed}: {text}"
        );
    }
    assert!(
        text.contains("+ StatefulSet doris-broker (new)\n"),
        "{text}"
    );
    assert!(text.contains("+  name: doris-broker\n"), "{text}");
    // What stays is unchanged.
    assert!(!text.contains("~ StatefulSet"), "{text}");
    env.finish().await;
}

/// The binary as kubectl finds it, `kubectl-doris` in a folder of its own.
/// Runs `plugin` with `args` against the kubeconfig `config`, off the
/// test's runtime threads.
async fn run_plugin(plugin: PathBuf, args: Vec<String>, config: PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(plugin)
            .args(&args)
            .env("KUBECONFIG", config)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn plugin_in(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let plugin = dir.join("kubectl-doris");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_doris-operator"), &plugin).unwrap();
    plugin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_api_server_does_not_serve_has_no_object() {
    let env = Env::without_operator("kubectl-unserved").await;
    let nothing = GroupVersionKind::gvk("unserved.doris-operator.example", "v1", "Nothing");
    assert!(!kubectl::serves(&env.client, &nothing).await.unwrap());
    for kind in [kubectl::KindArg::Dcr, kubectl::KindArg::Ddc] {
        assert!(
            kubectl::serves(&env.client, &kind.gvk()).await.unwrap(),
            "{kind:?}"
        );
    }
    // Whatever 404 the server answers for a path it does not serve, it
    // reads as no object, as a missing object of a served kind does.
    let resource = ApiResource::from_gvk_with_plural(&nothing, "nothings");
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
    assert!(
        kubectl::get_if_served(&api, "doris")
            .await
            .unwrap()
            .is_none()
    );
    let clusters = env.api::<DorisCluster>();
    assert!(
        kubectl::get_if_served(&clusters, "doris")
            .await
            .unwrap()
            .is_none()
    );
    env.create_cluster(&sample(1)).await;
    let found = kubectl::get_if_served(&clusters, "doris").await.unwrap();
    assert_eq!(found.map(|c| c.name_any()).as_deref(), Some("doris"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doris_cluster_is_worked_on_where_the_other_kind_is_not_served() {
    let env = Env::without_operator("kubectl-one-kind").await;
    if env.emulator.is_none() {
        eprintln!(
            "skipped on a real API server: it removes the DorisDisaggregatedCluster CRD, \
             which the other tests there use"
        );
        env.finish().await;
        return;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.delete(
        "dorisdisaggregatedclusters.disaggregated.cluster.doris.com",
        &DeleteParams::default(),
    )
    .await
    .unwrap();
    env.create_cluster(&sample(1)).await;

    let dir = std::env::temp_dir().join(format!("kubectl-doris-one-kind-{}", std::process::id()));
    let plugin = plugin_in(&dir);
    // The context's namespace is `default`: the test's is named with -n.
    let (config, _) = env.kubeconfig(&dir);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("namespace: {}", env.namespace),
        "namespace: default",
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.join("cluster.yaml"), sample(1)).unwrap();
    std::fs::write(dir.join("ddc.yaml"), env::DDC_SAMPLE).unwrap();
    let ns = env.namespace.clone();
    let run = |args: &[&str]| {
        let (plugin, config) = (plugin.clone(), config.clone());
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == "NS" {
                    ns.clone()
                } else {
                    a.to_string()
                }
            })
            .collect();
        async move {
            let out = run_plugin(plugin, args, config).await;
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        }
    };
    let operator_ns = ["--operator-namespace", "NS"];

    let (code, stdout, stderr) =
        run(&[&["-n", "NS", "status", "doris"][..], &operator_ns].concat()).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!("DorisCluster {ns}/doris ")),
        "{stdout}"
    );

    let (code, stdout, stderr) = run(&["-n", "NS", "restart", "doris", "be"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("DorisCluster doris: restart of be requested at "),
        "{stdout}"
    );
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    assert!(
        cluster
            .annotations()
            .contains_key("apache.doris.be/restartedAt"),
        "{:?}",
        cluster.annotations()
    );

    let cluster_file = dir.join("cluster.yaml").display().to_string();
    let (code, stdout, stderr) =
        run(&[&["-n", "NS", "diff", "-f", &cluster_file][..], &operator_ns].concat()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("+ StatefulSet doris-fe (new)\n"),
        "{stdout}"
    );

    // The kind not served, named: said so.
    let not_served = "the API server does not serve DorisDisaggregatedCluster \
                      (disaggregated.cluster.doris.com/v1): its CustomResourceDefinition \
                      dorisdisaggregatedclusters.disaggregated.cluster.doris.com is not installed";
    let (code, _, stderr) = run(&["pause", "doris", "--kind", "ddc", "-n", "NS"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(not_served), "{stderr}");
    let ddc_file = dir.join("ddc.yaml").display().to_string();
    let (code, _, stderr) =
        run(&[&["-n", "NS", "diff", "-f", &ddc_file][..], &operator_ns].concat()).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("DorisDisaggregatedCluster ddc: {not_served}")),
        "{stderr}"
    );
    // A name no cluster has: only the kind served is looked for.
    let (code, _, stderr) = run(&["-n", "NS", "resume", "nope"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no DorisCluster named nope in namespace {ns} (the API server does not serve \
             DorisDisaggregatedCluster)"
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_tells_the_operators_and_the_crds_versions_apart_from_its_own() {
    use doris_operator::kubectl::version::{self, CrdFound};
    use k8s_openapi::api::apps::v1::Deployment;
    let ours = doris_operator::build_info::VERSION;
    let env = Env::without_operator("kubectl-version").await;
    let dir = std::env::temp_dir().join(format!("kubectl-doris-version-{}", std::process::id()));
    let plugin = plugin_in(&dir);
    let (config, _) = env.kubeconfig(&dir);
    let ns = env.namespace.clone();
    let run = |args: &[&str]| {
        let (plugin, config) = (plugin.clone(), config.clone());
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--operator-namespace".into(), ns.clone()]);
        async move {
            let out = run_plugin(plugin, args, config).await;
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        }
    };

    // No operator in the namespace: said, and the CRDs are this binary's.
    let (code, stdout, stderr) = run(&["version"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "Operator Version: not found (no Deployment labelled \
             app.kubernetes.io/name=doris-operator in namespace {ns};"
        )),
        "{stdout}"
    );
    for crd in [
        "dorisclusters.doris.selectdb.com",
        "dorisdisaggregatedclusters.disaggregated.cluster.doris.com",
    ] {
        assert!(stdout.contains(&format!("CRD {crd}: {ours}\n")), "{stdout}");
    }
    assert_eq!(stderr, "");

    // The shipped Deployment: its image is this version's.
    let mut deployment: Deployment =
        serde_norway::from_str(include_str!("../deploy/20-deployment.yaml")).unwrap();
    deployment.metadata.namespace = Some(ns.clone());
    let deployments = env.api::<Deployment>();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let server = version::observe(&env.client, &ns).await;
    let operators = server.operators.clone().unwrap();
    assert_eq!(operators.len(), 1, "{operators:?}");
    assert_eq!(operators[0].deployment, format!("{ns}/doris-operator"));
    assert_eq!(operators[0].version.as_deref(), Some(ours));
    assert_eq!(operators[0].ready.1, 2);
    assert!(
        server
            .crds
            .iter()
            .all(|(_, found)| *found == CrdFound::Installed(Some(ours.to_string()))),
        "{:?}",
        server.crds
    );
    let (code, stdout, stderr) = run(&["version"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "Operator Version: {ours} (Deployment {ns}/doris-operator, image \
             doris-operator:{ours}, "
        )),
        "{stdout}"
    );
    assert_eq!(stderr, "");

    // Another version's image: warned of, as the CRDs of another version.
    deployments
        .patch(
            "doris-operator",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": "registry.example:5000/doris-operator:v0.0.9",
                }]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = run(&["version"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Operator Version: 0.0.9 ("), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: the operator (Deployment {ns}/doris-operator) runs 0.0.9, this binary \
             is {ours}"
        )),
        "{stderr}"
    );
    if env
        .emulator_only("the CRDs are shared by the tests running beside this one")
        .is_some()
    {
        let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
        crds.patch(
            "dorisclusters.doris.selectdb.com",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                doris_operator::build_info::CRD_VERSION_LABEL: "0.0.8"
            }}})),
        )
        .await
        .unwrap();
        let (code, stdout, stderr) = run(&["version"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stdout.contains("CRD dorisclusters.doris.selectdb.com: 0.0.8\n"),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!(
                "warning: the CRD dorisclusters.doris.selectdb.com is 0.0.8's, this binary is \
                 {ours}"
            )),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    env.finish().await;
}
