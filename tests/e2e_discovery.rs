//! Kinds beyond those the operator checks, end to end: a convention
//! template may make objects of any kind the API server serves (a CRD's,
//! found by API discovery), while a kind it does not serve (a typo,
//! `Servce`) is refused with a message naming it and the last good
//! conventions stay live. The same holds for a `run --conventions-dir`
//! start-up, and offline (`render`, `policy check`) with `--api-resources`.

mod apiserver;
mod env;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use env::{Env, SAMPLE, conventions_ready, events_on, eventually, put_conventions, wait_ready};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};

/// A manifest template making one Widget (a CRD's kind) per component.
const WIDGET_TEMPLATE: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {{ names.statefulset ~ \"-widget\" }}\nspec:\n  size: 1\n";

/// A manifest template whose kind is a typo.
const TYPO_TEMPLATE: &str =
    "apiVersion: v1\nkind: Servce\nmetadata:\n  name: {{ names.statefulset ~ \"-typo\" }}\n";

fn widget_gvk() -> GroupVersionKind {
    GroupVersionKind::gvk("example.com", "v1", "Widget")
}

/// Installs the Widget CRD and waits until the API server serves it.
async fn install_widget_crd(client: &Client) {
    env::install_open_crd(client, &widget_gvk(), "widgets").await;
    env::grant_operator(client, &widget_gvk().group, "widgets").await;
}

fn widgets(env: &Env) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&widget_gvk(), "widgets");
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_may_make_a_served_kind_and_a_typo_is_refused() {
    let env = Env::start("disc-live").await;
    install_widget_crd(&env.client).await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;

    put_conventions(
        &env,
        "platform",
        "default",
        &[("widget.yaml.j2", WIDGET_TEMPLATE)],
    )
    .await;
    let widgets = widgets(&env);
    let widget = eventually("a Widget per component", 30, || async {
        widgets.get_opt("doris-fe-widget").await.ok()??;
        widgets.get_opt("doris-be-widget").await.ok()?
    })
    .await;
    assert_eq!(widget.data["spec"]["size"], 1);
    assert_eq!(
        widget.owner_references()[0].name,
        "doris",
        "owned by its cluster"
    );
    assert!(
        !events_on(&env, "platform", "ConventionsLive")
            .await
            .is_empty()
    );
    let live = env.conventions.current().revision().to_string();

    // A typo in a kind: refused, reported on the cluster and the
    // ConfigMap; the last good conventions stay live.
    put_conventions(
        &env,
        "platform",
        "default",
        &[
            ("widget.yaml.j2", WIDGET_TEMPLATE),
            ("typo.yaml.j2", TYPO_TEMPLATE),
        ],
    )
    .await;
    let (_, message) = eventually("ConventionsReady=False", 30, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(status, _)| status == "False")
    })
    .await;
    assert!(
        message.contains("(v1 Servce)") && message.contains(doris_operator::plan::UNSERVED_KIND),
        "{message}"
    );
    let refused = eventually("a ConventionsRefused Event", 20, || async {
        let events = events_on(&env, "platform", "ConventionsRefused").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    let note = refused[0].note.clone().unwrap_or_default();
    assert!(note.contains("Servce"), "{note}");
    assert_eq!(env.conventions.current().revision(), live);
    assert!(widgets.get_opt("doris-be-widget").await.unwrap().is_some());
    env.finish().await;
}

// ------------------------------------------------------------ the binary

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_doris-operator")
}

/// A folder of convention files, fresh for the test.
fn conventions_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doris-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn run_operator(env: &Env, dir: &Path, kubeconfig: &Path) -> tokio::process::Child {
    tokio::process::Command::new(binary())
        .args([
            "run",
            "--namespace",
            &env.namespace,
            "--leader-elect",
            "false",
        ])
        .args(["--metrics-addr", "127.0.0.1:0", "--conventions-dir"])
        .arg(dir)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("POD_NAMESPACE")
        .env_remove("CONVENTIONS_NAMESPACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_with_a_conventions_dir_making_a_served_kind() {
    let env = Env::without_operator("disc-run").await;
    install_widget_crd(&env.client).await;
    env.create_cluster(SAMPLE).await;

    let dir = conventions_dir("disc-run", &[("widget.yaml.j2", WIDGET_TEMPLATE)]);
    let (config, _) = env.kubeconfig(&dir);
    let mut operator = run_operator(&env, &dir, &config);
    let widgets = widgets(&env);
    let made = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(Some(w)) = widgets.get_opt("doris-be-widget").await {
                return Ok(w);
            }
            if let Ok(Some(status)) = operator.try_wait() {
                return Err(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a Widget within a minute");
    if let Err(status) = made {
        let out = operator.wait_with_output().await.unwrap();
        panic!(
            "the operator ended ({status}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    operator.kill().await.unwrap();

    // A kind the server does not serve fails the start-up, named.
    let typo = conventions_dir("disc-run-typo", &[("typo.yaml.j2", TYPO_TEMPLATE)]);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        run_operator(&env, &typo, &config).wait_with_output(),
    )
    .await
    .expect("the operator gives up")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("(v1 Servce)") && stderr.contains(doris_operator::plan::UNSERVED_KIND),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(typo);
    env.finish().await;
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn offline_a_served_kind_is_named_with_api_resources() {
    let dir = conventions_dir("disc-cli", &[("widget.yaml.j2", WIDGET_TEMPLATE)]);
    let dir_arg = dir.to_str().unwrap();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/doriscluster-sample.yaml"
    );

    let (ok, _, stderr) = cli(&["render", "-f", sample, "--conventions", dir_arg]);
    assert!(!ok);
    assert!(
        stderr.contains("(example.com/v1 Widget)")
            && stderr.contains("--api-resources example.com/v1/Widget"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli(&[
        "render",
        "-f",
        sample,
        "--conventions",
        dir_arg,
        "--api-resources",
        "example.com/v1/Widget",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("kind: Widget") && stdout.contains("-be-widget"),
        "{stdout}"
    );

    let (ok, _, stderr) = cli(&["policy", "check", dir_arg]);
    assert!(
        !ok && stderr.contains("(example.com/v1 Widget)"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli(&[
        "policy",
        "check",
        dir_arg,
        "--api-resources",
        "monitoring.coreos.com/v1/ServiceMonitor,example.com/v1/Widget",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("compiled"), "{stdout}");

    // What is not GROUP/VERSION/KIND is refused, with the expected form.
    let (ok, _, stderr) = cli(&["policy", "check", dir_arg, "--api-resources", "Widget"]);
    assert!(
        !ok && stderr.contains("is not GROUP/VERSION/KIND"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
