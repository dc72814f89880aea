//! Restarts on the user's schedule, end to end: a convention change waits
//! for the maintenance window `restart.rhai` declares (status and the
//! metric say so) until the cluster approves it; a window that is open lets
//! it run; edits in quick succession restart each pod once.
//!
//! The DorisClusters have FEs only and the restart order waits for Ready
//! pods only, so no FE has to answer: what is tested is when restarts
//! start. A disaggregated cluster, which needs its FE to come up, has the
//! FE simulator in cloud mode.
//! Windows are computed from the clock when the test writes the policy, so
//! the same tests run against a real cluster.

mod apiserver;
mod env;
mod fesim;
mod members;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::controller::rollout::{APPROVE_ANNOTATION, INPUTS_ANNOTATION, is_ready};
use doris_operator::conventions::reload::SET_KEY;
use doris_operator::crd::{DorisCluster, RolloutStatus};
use env::{Env, condition, eventually, wait_ready};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

const CLUSTER: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
spec:
  feSpec:
    replicas: 2
    image: apache/doris:fe-2.1.8
"#;

const PODS: [&str; 2] = ["doris-fe-0", "doris-fe-1"];

/// The default restart.rhai with one pod at a time, each Ready before the
/// next, and `maintenance` returning `maintenance` (Rhai).
fn restart_policy(maintenance: &str) -> String {
    format!(
        r#"
fn restart_order(ctx) {{
    let pods = ctx.pods;
    pods.sort(|a, b| b.ordinal - a.ordinal);
    pods.map(|p| #{{ pods: [p.pod], wait_for: ["pod_ready"], drain_seconds: 0 }})
}}

fn maintenance(ctx) {{
    {maintenance}
}}
"#
    )
}

/// A window on a day that is neither today nor yesterday in UTC: certainly
/// closed now.
fn closed_window() -> String {
    let day = k8s_openapi::jiff::Timestamp::now()
        .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(k8s_openapi::jiff::ToSpan::days(3))
        .unwrap()
        .weekday();
    let name = &format!("{day:?}")[..3];
    format!(r#"#{{ days: ["{name}"], from: "00:00", to: "01:00", time_zone: "UTC" }}"#)
}

/// The part of shape.rhai that makes the pod template.
const SHAPE_WORKLOAD: &str = "shape.workload.rhai";

/// A shape.workload.rhai that adds an annotation to every pod: a convention
/// change of the pod template.
fn shape_with_owner() -> String {
    let debug_line = "    if debugging { out[\"selectdb.com.doris/runmode\"] = \"debug\"; }";
    let shape = include_str!("../policies/shape.workload.rhai");
    assert!(shape.contains(debug_line));
    shape.replace(
        debug_line,
        &format!("    out[\"example.com/owner\"] = \"platform\";\n{debug_line}"),
    )
}

async fn put_conventions(env: &Env, name: &str, files: &[(&str, String)]) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {SET_KEY: "default"}},
        "data": files.iter().cloned().collect::<BTreeMap<_, _>>(),
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .patch(
            name,
            &PatchParams::apply("e2e-window").force(),
            &Patch::Apply(cm),
        )
        .await
        .unwrap();
}

/// The restarts of each pod a watch sees: deletions of incarnations that
/// ran (see `env::Restarts`), not the stand-in kubelet's stray deletes.
struct Incarnations {
    /// Each pod seen, and how many times it was restarted.
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Incarnations {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Incarnations {
    /// Starts watching; returns once the watch has listed the pods.
    async fn start(env: &Env) -> Incarnations {
        let counts = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
        let seen = counts.clone();
        let (listed, ready) = tokio::sync::oneshot::channel();
        let mut listed = Some(listed);
        let mut events = watcher(env.api::<Pod>(), watcher::Config::default()).boxed();
        let task = tokio::spawn(async move {
            let mut restarts = env::Restarts::default();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        restarts.seen(&pod);
                        seen.lock().unwrap().entry(pod.name_any()).or_default();
                    }
                    // Only a restart counts (see env::Restarts).
                    Ok(watcher::Event::Delete(pod)) if restarts.is_restart(&pod) => {
                        *seen.lock().unwrap().entry(pod.name_any()).or_default() += 1;
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = listed.take() {
                            let _ = tx.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(20), ready).await;
        Incarnations { counts, task }
    }

    /// How many times each pod was restarted since the watch began.
    fn restarts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }
}

fn restarted(counts: &[(&str, usize)]) -> BTreeMap<String, usize> {
    counts.iter().map(|(p, n)| (p.to_string(), *n)).collect()
}

/// Starts the operator with `maintenance` in restart.rhai, creates the
/// cluster, and waits until it is Ready and, when the policy holds
/// restarts, every pod is stamped with the inputs it was planned under
/// (while none are held, pods are not written).
async fn launch(test: &str, maintenance: &str) -> Env {
    let env = Env::start(test).await;
    put_restart_policy(&env, maintenance).await;
    env.create_cluster(CLUSTER).await;
    wait_ready(&env, "doris").await;
    pods_stamped(&env, PODS.len(), !maintenance.contains("hold: []")).await;
    env
}

/// Puts restart.rhai with `maintenance` and waits until it is live.
async fn put_restart_policy(env: &Env, maintenance: &str) {
    put_conventions(
        env,
        "restart",
        &[("restart.rhai", restart_policy(maintenance))],
    )
    .await;
    eventually("the restart policy to go live", 20, || async {
        let live = env.conventions.current();
        live.template_source("restart.rhai")?
            .contains("fn maintenance")
            .then_some(())
    })
    .await;
}

/// Waits until there are `count` pods, each stamped with its inputs when
/// restarts are held (`holds`), none otherwise.
async fn pods_stamped(env: &Env, count: usize, holds: bool) {
    eventually("the pods to be stamped with their inputs", 20, || async {
        let pods = env.api::<Pod>().list(&Default::default()).await.ok()?;
        (pods.items.len() == count
            && pods
                .items
                .iter()
                .all(|p| p.annotations().contains_key(INPUTS_ANNOTATION) == holds))
        .then_some(())
    })
    .await;
}

async fn rollout(env: &Env) -> Option<RolloutStatus> {
    let cluster = env.api::<DorisCluster>().get("doris").await.ok()?;
    cluster.status?.rollout
}

/// Waits until every pod carries the convention's annotation and is Ready,
/// and status shows no rollout.
async fn converged_on_new_template(env: &Env) {
    eventually("every pod on the new template", 60, || async {
        let pods = env.api::<Pod>().list(&Default::default()).await.ok()?;
        let all = pods.items.len() == PODS.len()
            && pods.items.iter().all(|p| {
                is_ready(p)
                    && p.annotations().get("example.com/owner").map(String::as_str)
                        == Some("platform")
            });
        (all && rollout(env).await.is_none()).then_some(())
    })
    .await;
}

/// Waits for the new template everywhere, checks each pod restarted once
/// and no restart is counted as held, and ends the test.
async fn restarted_once_on_new_template(env: Env, pods: &Incarnations) {
    converged_on_new_template(&env).await;
    assert_eq!(
        pods.restarts(),
        restarted(&[("doris-fe-0", 1), ("doris-fe-1", 1)])
    );
    assert_eq!(env.metrics.restarts_held.get(), 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convention_change_waits_for_the_window_until_approved() {
    let maintenance = format!(
        r#"#{{ hold: ["conventions"], windows: [{}], settle_seconds: 1 }}"#,
        closed_window()
    );
    let env = launch("window-closed", &maintenance).await;
    let pods = Incarnations::start(&env).await;

    put_conventions(&env, "owner", &[(SHAPE_WORKLOAD, shape_with_owner())]).await;
    let held = eventually("the held restart in status", 30, || async {
        rollout(&env).await.filter(|r| r.held.is_some())
    })
    .await;
    assert_eq!(held.held.as_deref(), Some("maintenance-window"));
    assert_eq!(held.reason, "conventions");
    assert!(
        held.waiting.contains("held for the maintenance window")
            && held.waiting.contains(APPROVE_ANNOTATION),
        "{}",
        held.waiting
    );
    assert!(held.window_opens.is_some(), "{held:?}");
    let token = held.approve_with.clone().expect("approveWith");
    assert_eq!(env.metrics.restarts_held.get(), 1);
    // The pods serve as they are: the cluster stays Ready.
    eventually(
        "the cluster Ready while the restart is held",
        20,
        || async {
            let c = env.api::<DorisCluster>().get("doris").await.ok()?;
            let ready = condition(&c, "Ready").as_deref() == Some("True");
            (ready && c.status?.fe_status?.component_condition.phase == "available").then_some(())
        },
    )
    .await;
    // The new template is in place for pods made later; no pod restarted.
    let sts = env.api::<StatefulSet>().get("doris-fe").await.unwrap();
    let template = sts.spec.template.metadata.unwrap();
    assert_eq!(
        template
            .annotations
            .unwrap()
            .get("example.com/owner")
            .map(String::as_str),
        Some("platform")
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        pods.restarts(),
        restarted(&[("doris-fe-0", 0), ("doris-fe-1", 0)])
    );

    // An approval of something else releases nothing.
    let approve = |value: &str| json!({"metadata": {"annotations": {APPROVE_ANNOTATION: value}}});
    let clusters = env.api::<DorisCluster>();
    clusters
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(approve("0000")),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pods.restarts(),
        restarted(&[("doris-fe-0", 0), ("doris-fe-1", 0)])
    );
    assert_eq!(
        rollout(&env).await.and_then(|r| r.held),
        Some("maintenance-window".to_string())
    );

    // The approval of the pending restart runs it, each pod once.
    clusters
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(approve(&token)),
        )
        .await
        .unwrap();
    restarted_once_on_new_template(env, &pods).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convention_change_runs_in_an_open_window() {
    // Open all day, every day.
    let maintenance = r#"#{ hold: ["conventions"], settle_seconds: 1,
        windows: [#{ from: "00:00", to: "24:00", time_zone: "Asia/Tokyo" }] }"#;
    let env = launch("window-open", maintenance).await;
    let pods = Incarnations::start(&env).await;
    put_conventions(&env, "owner", &[(SHAPE_WORKLOAD, shape_with_owner())]).await;
    restarted_once_on_new_template(env, &pods).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_change_goes_at_once_while_a_convention_change_is_held() {
    let maintenance = format!(
        r#"#{{ hold: ["conventions"], windows: [{}], settle_seconds: 1 }}"#,
        closed_window()
    );
    let env = launch("window-user", &maintenance).await;
    let pods = Incarnations::start(&env).await;
    put_conventions(&env, "owner", &[(SHAPE_WORKLOAD, shape_with_owner())]).await;
    eventually("the held restart in status", 30, || async {
        rollout(&env).await.filter(|r| r.held.is_some())
    })
    .await;
    // An upgrade is the user's: it goes now and carries the convention.
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"feSpec": {"image": "apache/doris:fe-2.1.9"}}})),
        )
        .await
        .unwrap();
    restarted_once_on_new_template(env, &pods).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_edits_restart_each_pod_once() {
    let env = launch(
        "window-settle",
        "#{ hold: [], windows: [], settle_seconds: 6 }",
    )
    .await;
    let pods = Incarnations::start(&env).await;
    let clusters = env.api::<DorisCluster>();
    // The edits are further apart than a pod takes to be deleted and made
    // again (without settling, one would restart at the first edit's
    // template and again at the second's), and closer than the settle time.
    for image in ["apache/doris:fe-2.1.9", "apache/doris:fe-2.1.10"] {
        clusters
            .patch(
                "doris",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"feSpec": {"image": image}}})),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let settling = eventually("status to say the rollout settles", 10, || async {
        rollout(&env)
            .await
            .filter(|r| r.waiting.contains("stay unchanged"))
    })
    .await;
    assert_eq!(settling.reason, "upgrade");
    assert!(settling.held.is_none());
    eventually("every pod on the last image", 60, || async {
        let list = env.api::<Pod>().list(&Default::default()).await.ok()?;
        let done = list.items.len() == PODS.len()
            && list.items.iter().all(|p| {
                let image = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers[0].image.as_deref());
                is_ready(p) && image == Some("apache/doris:fe-2.1.10")
            });
        (done && rollout(&env).await.is_none()).then_some(())
    })
    .await;
    assert_eq!(
        pods.restarts(),
        restarted(&[("doris-fe-0", 1), ("doris-fe-1", 1)])
    );
    env.finish().await;
}

const DDC_PODS: [&str; 4] = ["ddc-cg-etl-0", "ddc-cg-etl-1", "ddc-fe-0", "ddc-ms-0"];

/// A disaggregated cluster goes through the same restart steps: a
/// convention change is held for the window, shown in its status, and
/// run, each pod once, when the cluster approves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disaggregated_cluster_holds_a_convention_restart_until_approved() {
    use doris_operator::crd::DorisDisaggregatedCluster;
    let mut env = Env::without_operator("window-ddc").await;
    let master = members::fqdn_via(&env, "ddc-fe-0", "ddc-fe-internal");
    let sim = members::simulated_fe_at(&mut env, fesim::FeSimConfig::cloud(), &master).await;
    env.start_operator();
    let _members = members::MemberDriver::start(&env, sim, 1);
    let maintenance = format!(
        r#"#{{ hold: ["conventions"], windows: [{}], settle_seconds: 1 }}"#,
        closed_window()
    );
    put_restart_policy(&env, &maintenance).await;
    env.create_ddc(env::DDC_SAMPLE).await;
    env::wait_ddc_ready(&env, "ddc").await;
    pods_stamped(&env, DDC_PODS.len(), true).await;
    let pods = Incarnations::start(&env).await;
    let none: Vec<(&str, usize)> = DDC_PODS.iter().map(|p| (*p, 0)).collect();

    put_conventions(&env, "owner", &[(SHAPE_WORKLOAD, shape_with_owner())]).await;
    let clusters = env.api::<DorisDisaggregatedCluster>();
    let held = eventually("the held restart in status", 30, || async {
        let c = clusters.get("ddc").await.ok()?;
        c.status?.rollout.filter(|r| r.held.is_some())
    })
    .await;
    assert_eq!(held.held.as_deref(), Some("maintenance-window"));
    assert_eq!(held.reason, "conventions");
    assert_eq!(env.metrics.restarts_held.get(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pods.restarts(), restarted(&none), "nothing restarts");

    let token = held.approve_with.clone().expect("approveWith");
    clusters
        .patch(
            "ddc",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {APPROVE_ANNOTATION: token}}})),
        )
        .await
        .unwrap();
    eventually("every pod on the new template", 90, || async {
        let list = env.api::<Pod>().list(&Default::default()).await.ok()?;
        let all = list.items.len() == DDC_PODS.len()
            && list.items.iter().all(|p| {
                is_ready(p)
                    && p.annotations().get("example.com/owner").map(String::as_str)
                        == Some("platform")
            });
        let c = clusters.get("ddc").await.ok()?;
        (all && c.status?.rollout.is_none()).then_some(())
    })
    .await;
    let once: Vec<(&str, usize)> = DDC_PODS.iter().map(|p| (*p, 1)).collect();
    assert_eq!(pods.restarts(), restarted(&once), "each pod once");
    assert_eq!(env.metrics.restarts_held.get(), 0);
    env.finish().await;
}
