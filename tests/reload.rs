//! Hot reload of a conventions folder: a change goes live, a broken file
//! never does (the last good bundle stays, the failure is located), the
//! kubelet's `..data` symlink swap is seen, and quick edits end in the last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use doris_operator::conventions::ConventionBundle;
use doris_operator::conventions::reload::{self, LiveConventions};

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
    ));
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
