//! Hot reload of a conventions folder: a change goes live, a broken file
//! never does (the last good bundle stays, the failure is located), the
//! kubelet's `..data` symlink swap is seen, and quick edits end in the last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use doris_operator::conventions::ConventionBundle;
use doris_operator::conventions::reload::{self, ConfigMapLayer, LiveConventions};

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doris-reload-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const RESTART_A: &str = "fn restart_order(ctx) { ctx.pods.map(|p| #{ pods: [p.pod] }) }\n";
const RESTART_B: &str = "// b\nfn restart_order(ctx) { ctx.pods.map(|p| #{ pods: [p.pod], wait_for: [\"pod_ready\"] }) }\n";
const BROKEN: &str = "fn restart_order(ctx) {\n    let = ;\n}\n";

fn live_from(dir: &Path) -> Arc<LiveConventions> {
    let bundle = ConventionBundle::compile(reload::read_dir(dir).unwrap()).unwrap();
    Arc::new(LiveConventions::new(bundle))
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_edit_goes_live_a_broken_file_never_does_and_a_fix_clears_the_failure() {
    let dir = tempdir("edit");
    std::fs::write(dir.join("restart.rhai"), RESTART_A).unwrap();
    let live = live_from(&dir);
    let first = live.current().revision().to_string();
    let _watch = reload::watch_dir(dir.clone(), live.clone()).unwrap();

    std::fs::write(dir.join("restart.rhai"), RESTART_B).unwrap();
    wait_for("the edit to go live", || live.current().revision() != first).await;
    let second = live.current().revision().to_string();
    assert!(live.failure().is_none());

    std::fs::write(dir.join("restart.rhai"), BROKEN).unwrap();
    wait_for("the failure to be reported", || live.failure().is_some()).await;
    assert_eq!(
        live.current().revision(),
        second,
        "the last good bundle stays live"
    );
    let failure = live.failure().unwrap();
    assert!(failure.contains("restart.rhai:2:"), "{failure}");

    std::fs::write(dir.join("restart.rhai"), RESTART_A).unwrap();
    wait_for("the fix to clear the failure", || live.failure().is_none()).await;
    assert_eq!(live.current().revision(), first);
}

#[tokio::test]
async fn a_policy_that_breaks_a_sample_is_refused() {
    let dir = tempdir("canary");
    std::fs::write(dir.join("restart.rhai"), RESTART_A).unwrap();
    let live = live_from(&dir);
    let good = live.current().revision().to_string();
    // Compiles, but leaves pods out of the restart order.
    live.offer(Ok(
        doris_operator::conventions::ConventionSources::embedded()
            .overlay_files("cm", [("restart.rhai", "fn restart_order(ctx) { [] }")]),
    ))
    .await;
    assert_eq!(live.current().revision(), good);
    let failure = live.failure().unwrap();
    assert!(failure.contains("fail on a sample cluster"), "{failure}");
    assert!(failure.contains("left out pod"), "{failure}");
}

/// Lays files out as kubelet mounts a ConfigMap: visible names are symlinks
/// into `..data`, itself a symlink to a timestamped folder, swapped by an
/// atomic rename.
fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &str)]) {
    let target = format!("..2026_11_24_{generation}");
    std::fs::create_dir_all(dir.join(&target)).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(&target).join(name), content).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[tokio::test]
async fn the_kubelet_configmap_swap_is_seen() {
    let dir = tempdir("kubelet");
    kubelet_write(&dir, 1, &[("restart.rhai", RESTART_A)]);
    let live = live_from(&dir);
    let first = live.current().revision().to_string();
    let _watch = reload::watch_dir(dir.clone(), live.clone()).unwrap();

    kubelet_write(&dir, 2, &[("restart.rhai", RESTART_B)]);
    wait_for("the swapped files to go live", || {
        live.current().revision() != first
    })
    .await;
    let expected = ConventionBundle::compile(reload::read_dir(&dir).unwrap()).unwrap();
    assert_eq!(live.current().revision(), expected.revision());
}

#[tokio::test]
async fn quick_successive_edits_end_in_the_last() {
    let dir = tempdir("quick");
    std::fs::write(dir.join("restart.rhai"), RESTART_A).unwrap();
    std::fs::write(dir.join("host_init.rhai"), "fn host_init(ctx) { [] }\n").unwrap();
    let live = live_from(&dir);
    let mut changes = live.subscribe();
    let _watch = reload::watch_dir(dir.clone(), live.clone()).unwrap();

    std::fs::write(dir.join("restart.rhai"), RESTART_B).unwrap();
    std::fs::write(
        dir.join("host_init.rhai"),
        "// two\nfn host_init(ctx) { [] }\n",
    )
    .unwrap();
    let expected = ConventionBundle::compile(reload::read_dir(&dir).unwrap()).unwrap();
    wait_for("both edits to go live", || {
        live.current().revision() == expected.revision()
    })
    .await;
    // One reload for the burst, not a torn intermediate bundle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*changes.borrow_and_update(), 1);
}

fn layer(name: &str, set: &str, files: &[(&str, &str)]) -> ConfigMapLayer {
    ConfigMapLayer {
        name: format!("ops/{name}"),
        set: set.to_string(),
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn embedded_live() -> Arc<LiveConventions> {
    Arc::new(LiveConventions::new(ConventionBundle::embedded().unwrap()))
}

fn restart_source(bundle: &ConventionBundle) -> String {
    bundle.sources().files["restart.rhai"].content.clone()
}

#[tokio::test]
async fn configmap_layers_make_named_sets_over_the_default_set() {
    let live = embedded_live();
    let embedded = live.current().revision().to_string();
    let host_init = "// platform default\nfn host_init(ctx) { [] }\n";
    live.offer_config_maps(vec![
        layer("base", "default", &[("host_init.rhai", host_init)]),
        layer("fe-first", "fe-first", &[("restart.rhai", RESTART_B)]),
    ])
    .await;
    let default = live.bundle_for("default").unwrap();
    assert_ne!(default.revision(), embedded);
    assert_eq!(default.sources().files["host_init.rhai"].content, host_init);
    assert_eq!(
        restart_source(&default),
        restart_source(&ConventionBundle::embedded().unwrap()),
        "the default set does not see a named set's files"
    );
    let named = live.bundle_for("fe-first").unwrap();
    assert_eq!(restart_source(&named), RESTART_B);
    assert_eq!(
        named.sources().files["host_init.rhai"].content,
        host_init,
        "a named set is laid over the default set"
    );
    let missing = live.bundle_for("nope").unwrap_err();
    assert!(
        missing.contains("doris.selectdb.com/conventions=nope"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_broken_configmap_is_refused_reported_and_cleared_by_its_fix() {
    let live = embedded_live();
    let mut outcomes = live.outcomes();
    live.offer_config_maps(vec![layer("cm", "default", &[("restart.rhai", RESTART_A)])])
        .await;
    let good = live.current().revision().to_string();
    assert!(outcomes.recv().await.unwrap().result.is_ok());

    let broken = [
        ("syntax error", BROKEN, "restart.rhai:2:"),
        (
            "runtime error",
            "fn restart_order(ctx) {\n    ctx.pods[99].pod\n}\n",
            "restart.rhai:2:",
        ),
        (
            "infinite loop",
            "fn restart_order(ctx) {\n    loop { }\n}\n",
            "restart.rhai:2:",
        ),
        (
            "huge allocation",
            "fn restart_order(ctx) {\n    let s = \"x\";\n    loop { s += s; }\n}\n",
            "restart.rhai:3:",
        ),
        (
            "wrong return type",
            "fn restart_order(ctx) { 42 }\n",
            "restart.rhai",
        ),
    ];
    for (what, source, location) in broken {
        live.offer_config_maps(vec![layer("cm", "default", &[("restart.rhai", source)])])
            .await;
        assert_eq!(
            live.current().revision(),
            good,
            "{what}: the last good stays"
        );
        let failure = live
            .failure()
            .unwrap_or_else(|| panic!("{what}: not reported"));
        assert!(failure.contains("configmap ops/cm/"), "{what}: {failure}");
        assert!(failure.contains(location), "{what}: {failure}");
        let outcome = outcomes.recv().await.unwrap();
        assert_eq!(outcome.config_maps, vec!["ops/cm".to_string()]);
        assert!(outcome.result.is_err(), "{what}");
    }
    live.offer_config_maps(vec![layer(
        "cm",
        "default",
        &[("fe.conf.j2", "{{ no_such_value.key }}")],
    )])
    .await;
    let failure = live.failure().unwrap();
    assert!(failure.contains("fe.conf.j2:1"), "{failure}");
    assert!(outcomes.recv().await.unwrap().result.is_err());

    // Back to the good file: the refusal is over.
    live.offer_config_maps(vec![layer("cm", "default", &[("restart.rhai", RESTART_A)])])
        .await;
    assert!(live.failure().is_none());
    assert_eq!(live.current().revision(), good);
    assert!(outcomes.recv().await.unwrap().result.is_ok());
}

#[tokio::test]
async fn a_set_broken_when_first_read_has_nothing_live() {
    let live = embedded_live();
    live.expect_config_maps();
    live.offer_config_maps(vec![
        layer(
            "platform",
            "default",
            &[("host_init.rhai", "fn host_init(ctx) {\n    let = ;\n}\n")],
        ),
        layer("other", "fe-first", &[("restart.rhai", RESTART_B)]),
    ])
    .await;
    // The embedded defaults are not what the platform team runs: the
    // default set is held rather than planned with them.
    let held = live.bundle_for("default").unwrap_err();
    assert!(held.contains("no working version"), "{held}");
    assert!(held.contains("host_init.rhai:2:"), "{held}");
    assert!(
        live.bundle_for("fe-first").is_err(),
        "built on the default set"
    );

    live.offer_config_maps(vec![
        layer("platform", "default", &[("restart.rhai", RESTART_A)]),
        layer("other", "fe-first", &[("restart.rhai", RESTART_B)]),
    ])
    .await;
    assert!(live.failure().is_none());
    assert_eq!(restart_source(&live.current()), RESTART_A);
    assert_eq!(
        restart_source(&live.bundle_for("fe-first").unwrap()),
        RESTART_B
    );
}

#[tokio::test]
async fn a_candidate_that_fails_a_live_cluster_is_refused() {
    let live = embedded_live();
    live.set_canary(Arc::new(|set, bundle| {
        Box::pin(async move {
            if set == "strict" && restart_source(&bundle) == RESTART_B {
                Err("DorisCluster prod/doris: boom".to_string())
            } else {
                Ok(())
            }
        })
    }));
    live.offer_config_maps(vec![layer("s", "strict", &[("restart.rhai", RESTART_A)])])
        .await;
    let good = live.bundle_for("strict").unwrap().revision().to_string();
    live.offer_config_maps(vec![layer("s", "strict", &[("restart.rhai", RESTART_B)])])
        .await;
    assert_eq!(live.bundle_for("strict").unwrap().revision(), good);
    let failure = live.failure_for("strict").unwrap();
    assert!(failure.contains("fail on a live cluster"), "{failure}");
    assert!(failure.contains("prod/doris: boom"), "{failure}");
    assert!(live.failure().is_none(), "the default set is not affected");
}

/// deploy/ ships the default conventions as an editable ConfigMap; it must
/// hold exactly the embedded defaults. Refresh with
/// `UPDATE_DEPLOY=1 cargo test --test reload`.
#[test]
fn the_shipped_conventions_configmap_is_the_embedded_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/30-conventions.yaml");
    let expected = reload::config_map_yaml(
        &doris_operator::conventions::ConventionSources::embedded(),
        "default",
        "doris-conventions-default",
        "doris-operator",
    );
    if std::env::var_os("UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert!(
        shipped == expected,
        "deploy/30-conventions.yaml differs from the embedded conventions; \
         run UPDATE_DEPLOY=1 cargo test --test reload"
    );
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_norway::from_str(&shipped).unwrap();
    let live = LiveConventions::new(ConventionBundle::embedded().unwrap());
    let files = cm.data.unwrap();
    let sources = doris_operator::conventions::ConventionSources::embedded()
        .overlay_files("cm", files.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(sources.revision(), live.current().revision());
}
