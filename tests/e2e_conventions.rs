//! Live conventions end to end: ConfigMaps labelled
//! `doris.selectdb.com/conventions` in the operator's namespace are read
//! through the API; an edit goes live and reaches every cluster of its set,
//! a broken edit never does and is reported where a user looks (cluster
//! condition, Events on the ConfigMap, metrics), and clusters pick a set by
//! annotation.

mod apiserver;
mod env;

use doris_operator::conventions::reload::SET_KEY;
use doris_operator::crd::DorisCluster;
use env::{
    Env, SAMPLE, condition, conventions_ready, events_on, eventually, put_conventions, wait_ready,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// A manifest template that adds one ConfigMap per component.
const EXTRA_TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ names.statefulset ~ \"-platform\" }}\ndata:\n  owner: platform\n";

const BROKEN_RESTART: &str = "fn restart_order(ctx) {\n    let = ;\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_edit_goes_live_and_a_broken_one_never_does() {
    let env = Env::start("conv-edit").await;
    env.create_cluster(SAMPLE).await;
    let before = wait_ready(&env, "doris").await;
    let first = before.status.unwrap().conventions_revision.unwrap();
    let sts = env.api::<StatefulSet>();
    let sts_version = sts.get("doris-be").await.unwrap().resource_version();

    // The platform team adds an object to every component.
    put_conventions(
        &env,
        "platform",
        "default",
        &[("platform.yaml.j2", EXTRA_TEMPLATE)],
    )
    .await;
    let cms = env.api::<ConfigMap>();
    eventually("the new template's objects", 20, || async {
        cms.get_opt("doris-be-platform").await.ok()??;
        cms.get_opt("doris-fe-platform").await.ok()?
    })
    .await;
    let second = eventually("the new revision in status", 20, || async {
        let c = env.api::<DorisCluster>().get("doris").await.ok()?;
        let revision = c.status?.conventions_revision?;
        (revision != first).then_some(revision)
    })
    .await;
    assert_eq!(second, env.conventions.current().revision());
    assert_eq!(
        sts.get("doris-be").await.unwrap().resource_version(),
        sts_version,
        "an object whose rendering did not change is not written"
    );
    let live_events = events_on(&env, "platform", "ConventionsLive").await;
    assert!(!live_events.is_empty(), "an Event on the ConfigMap");

    // A syntax error: refused, reported on the cluster, the ConfigMap and
    // in metrics; the last good conventions stay.
    put_conventions(
        &env,
        "platform",
        "default",
        &[
            ("platform.yaml.j2", EXTRA_TEMPLATE),
            ("restart.rhai", BROKEN_RESTART),
        ],
    )
    .await;
    let (_, message) = eventually("ConventionsReady=False", 20, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(status, _)| status == "False")
    })
    .await;
    let location = format!("configmap {}/platform/restart.rhai:2:", env.namespace);
    assert!(message.contains(&location), "{message}");
    let refused = eventually("a ConventionsRefused Event", 20, || async {
        events_on(&env, "platform", "ConventionsRefused")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert!(refused.note.unwrap().contains(&location));
    assert!(
        env.metrics
            .encode()
            .contains(r#"doris_operator_conventions_failing{set="default"} 1"#)
    );
    let cluster = env.api::<DorisCluster>().get("doris").await.unwrap();
    assert_eq!(
        cluster.status.unwrap().conventions_revision.as_deref(),
        Some(second.as_str()),
        "the cluster stays on the last good revision"
    );
    assert!(cms.get_opt("doris-fe-platform").await.unwrap().is_some());
    assert_eq!(
        condition(&cluster_now(&env).await, "Ready").as_deref(),
        Some("True")
    );

    // The fix clears every report.
    put_conventions(
        &env,
        "platform",
        "default",
        &[("platform.yaml.j2", EXTRA_TEMPLATE)],
    )
    .await;
    eventually("ConventionsReady=True", 20, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(status, _)| status == "True")
    })
    .await;
    assert!(
        env.metrics
            .encode()
            .contains(r#"doris_operator_conventions_failing{set="default"} 0"#)
    );
    let before = occurrences(&live_events);
    eventually("a ConventionsLive Event for the fix", 20, || async {
        (occurrences(&events_on(&env, "platform", "ConventionsLive").await) > before).then_some(())
    })
    .await;
    env.finish().await;
}

/// How many times these Events happened (a repeated Event is one object
/// with a count).
fn occurrences(events: &[Event]) -> i32 {
    events
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

async fn cluster_now(env: &Env) -> DorisCluster {
    env.api::<DorisCluster>().get("doris").await.unwrap()
}

fn annotated(name: &str, set: Option<&str>) -> String {
    let annotations = match set {
        Some(set) => format!("  annotations:\n    {SET_KEY}: {set}\n"),
        None => String::new(),
    };
    SAMPLE.replace(
        "metadata:\n  name: doris\n",
        &format!("metadata:\n  name: {name}\n{annotations}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_pick_a_convention_set_by_annotation() {
    let mut env = Env::without_operator("conv-sets").await;
    // The set exists before the operator starts: the first reconcile
    // already uses it.
    put_conventions(
        &env,
        "with-extras",
        "extras",
        &[("platform.yaml.j2", EXTRA_TEMPLATE)],
    )
    .await;
    env.start_operator();
    env.create_cluster(&annotated("plain", None)).await;
    env.create_cluster(&annotated("fancy", Some("extras")))
        .await;
    env.create_cluster(&annotated("lost", Some("no-such-set")))
        .await;

    wait_ready(&env, "plain").await;
    let fancy = wait_ready(&env, "fancy").await;
    let cms = env.api::<ConfigMap>();
    assert!(cms.get_opt("fancy-be-platform").await.unwrap().is_some());
    assert!(
        cms.get_opt("plain-be-platform").await.unwrap().is_none(),
        "a named set's files do not reach the default set"
    );
    assert_eq!(
        fancy.status.unwrap().conventions_revision.as_deref(),
        Some(env.conventions.bundle_for("extras").unwrap().revision())
    );

    let (status, message) = eventually("the unknown set reported", 20, || async {
        conventions_ready(&env, "lost").await
    })
    .await;
    assert_eq!(status, "False");
    assert!(message.contains("no-such-set"), "{message}");
    assert!(
        env.api::<StatefulSet>()
            .get_opt("lost-fe")
            .await
            .unwrap()
            .is_none(),
        "nothing is made with conventions that do not exist"
    );

    // Creating the set brings the waiting cluster up.
    put_conventions(
        &env,
        "lost-found",
        "no-such-set",
        &[("platform.yaml.j2", EXTRA_TEMPLATE)],
    )
    .await;
    wait_ready(&env, "lost").await;
    assert!(cms.get_opt("lost-fe-platform").await.unwrap().is_some());

    // Moving a cluster to another set is an annotation edit.
    env.api::<DorisCluster>()
        .patch(
            "fancy",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {SET_KEY: null}}})),
        )
        .await
        .unwrap();
    eventually("the extras pruned", 20, || async {
        cms.get_opt("fancy-be-platform")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_breaks_a_live_cluster_is_refused() {
    let env = Env::start("conv-canary").await;
    env.create_cluster(&annotated("doris", Some("strict")))
        .await;
    // Without the set the cluster waits.
    eventually("the missing set reported", 20, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(s, _)| s == "False")
    })
    .await;
    put_conventions(&env, "strict", "strict", &[]).await;
    wait_ready(&env, "doris").await;
    let good = env
        .conventions
        .bundle_for("strict")
        .unwrap()
        .revision()
        .to_string();

    // Fails only for a cluster named "doris": the samples pass, the live
    // cluster does not.
    let shape = doris_operator::conventions::ConventionSources::embedded().files["shape.rhai"]
        .content
        .replace(
            "fn shape(ctx) {",
            "fn shape(ctx) {\n    if ctx.cluster.name == \"doris\" { throw \"no clusters called doris\"; }",
        );
    assert!(shape.contains("no clusters called doris"));
    put_conventions(&env, "strict", "strict", &[("shape.rhai", &shape)]).await;
    let (_, message) = eventually("ConventionsReady=False", 20, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(s, _)| s == "False")
    })
    .await;
    assert!(message.contains("fail on a live cluster"), "{message}");
    assert!(message.contains("no clusters called doris"), "{message}");
    assert_eq!(
        env.conventions.bundle_for("strict").unwrap().revision(),
        good,
        "the last good set stays live"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_successive_edits_end_in_the_last() {
    let env = Env::start("conv-quick").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    let edits = ["one", "two", "three"];
    for owner in edits {
        let template = EXTRA_TEMPLATE.replace("owner: platform", &format!("owner: {owner}"));
        put_conventions(
            &env,
            "platform",
            "default",
            &[("platform.yaml.j2", &template)],
        )
        .await;
    }
    let last = EXTRA_TEMPLATE.replace("owner: platform", "owner: three");
    let expected = doris_operator::conventions::ConventionSources::embedded()
        .overlay_files("any", [("platform.yaml.j2", last.as_str())])
        .revision();
    eventually("the last edit in status", 20, || async {
        let c = env.api::<DorisCluster>().get("doris").await.ok()?;
        (c.status?.conventions_revision? == expected).then_some(())
    })
    .await;
    let cm = env
        .api::<ConfigMap>()
        .get("doris-fe-platform")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["owner"], "three");
    env.finish().await;
}

/// A PodDisruptionBudget per component, written as natural Jinja.
const PDB_TEMPLATE: &str = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ names.statefulset }}-pdb\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels: {{ selector | tojson }}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conventions_making_objects_the_operator_may_not_write_never_go_live() {
    let env = Env::start("conv-rbac").await;
    // Denying the operator a permission needs the emulator: on a real
    // cluster every test's operator shares the shipped ClusterRole.
    let Some(emulator) = env.emulator_only("it denies the operator a permission") else {
        env.finish().await;
        return;
    };
    emulator.deny("policy", "poddisruptionbudgets", "create");
    env.create_cluster(SAMPLE).await;
    let ready = wait_ready(&env, "doris").await;
    let live = ready.status.unwrap().conventions_revision.unwrap();

    put_conventions(&env, "pdb", "default", &[("pdb.yaml.j2", PDB_TEMPLATE)]).await;
    let (_, message) = eventually("ConventionsReady=False", 20, || async {
        conventions_ready(&env, "doris")
            .await
            .filter(|(status, _)| status == "False")
    })
    .await;
    let rule = format!(
        "the operator may not create policy/poddisruptionbudgets in namespace {}",
        env.namespace
    );
    assert!(message.contains(&rule), "{message}");
    assert!(message.contains("add to its ClusterRole"), "{message}");
    assert_eq!(
        cluster_now(&env)
            .await
            .status
            .unwrap()
            .conventions_revision
            .as_deref(),
        Some(live.as_str()),
        "the cluster stays on the conventions that were live"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_a_template_stops_making_is_deleted() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let env = Env::start("conv-prune").await;
    env.create_cluster(SAMPLE).await;
    wait_ready(&env, "doris").await;
    let pdbs = env.api::<PodDisruptionBudget>();
    // The user's own PodDisruptionBudget: not the operator's to delete.
    let mine: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "doris-mine"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "mine"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &mine).await.unwrap();

    put_conventions(&env, "pdb", "default", &[("pdb.yaml.j2", PDB_TEMPLATE)]).await;
    eventually("a PodDisruptionBudget per component", 20, || async {
        pdbs.get_opt("doris-fe-pdb").await.ok()??;
        pdbs.get_opt("doris-be-pdb").await.ok()?
    })
    .await;
    let kinds = cluster_now(&env)
        .await
        .annotations()
        .get(EXTRA_KINDS)
        .cloned();
    assert_eq!(kinds.as_deref(), Some("policy/v1/PodDisruptionBudget"));
    // What the cluster has besides, and the versions it is at.
    let before = env::object_versions(&env).await;
    assert!(before.contains_key("sts/doris-be"), "{before:?}");

    // The template is taken out of the set.
    put_conventions(&env, "pdb", "default", &[]).await;
    eventually("the PodDisruptionBudgets deleted", 20, || async {
        let fe = pdbs.get_opt("doris-fe-pdb").await.ok()?;
        let be = pdbs.get_opt("doris-be-pdb").await.ok()?;
        (fe.is_none() && be.is_none()).then_some(())
    })
    .await;
    assert!(
        pdbs.get_opt("doris-mine").await.unwrap().is_some(),
        "a PodDisruptionBudget the operator did not make stays"
    );
    assert_eq!(
        env::object_versions(&env).await,
        before,
        "the cluster's other objects stay as they were"
    );
    eventually(
        "the kind forgotten once its objects are gone",
        20,
        || async {
            let cluster = cluster_now(&env).await;
            (!cluster.annotations().contains_key(EXTRA_KINDS)).then_some(())
        },
    )
    .await;
    assert_eq!(
        condition(&cluster_now(&env).await, "Ready").as_deref(),
        Some("True")
    );
    env.finish().await;
}

const EXTRA_KINDS: &str = "doris.selectdb.com/extra-kinds";

/// The team's refinement: every BE pod gets a toleration and a label.
fn team_refinement() -> String {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/conventions/be-toleration.yaml"),
    )
    .unwrap();
    let cm: ConfigMap = serde_norway::from_str(&example).unwrap();
    cm.data.unwrap()["shape.rhai"].clone()
}

/// The default shape.rhai as a next version might change it: every
/// StatefulSet gets one more label.
fn next_default_shape() -> String {
    let shipped = doris_operator::conventions::ConventionSources::embedded();
    let shape = &shipped.files["shape.rhai"].content;
    assert!(shape.contains("fn shape(ctx) {"));
    shape.replace("fn shape(ctx) {", "fn shipped_shape(ctx) {")
        + "\nfn shape(ctx) {\n    let out = shipped_shape(ctx);\n    \
           out.patch(\"objects[kind=StatefulSet].metadata.labels\", #{ \"example.com/defaults\": \"v2\" });\n    \
           out\n}\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_defaults_reaches_a_cluster_whose_set_refines_them() {
    let mut env = Env::without_operator("conv-refine").await;
    put_conventions(&env, "team", "team", &[("shape.rhai", &team_refinement())]).await;
    env.start_operator();
    env.create_cluster(&annotated("refined", Some("team")))
        .await;
    env.create_cluster(&annotated("plain", None)).await;
    wait_ready(&env, "refined").await;
    wait_ready(&env, "plain").await;

    let sts = env.api::<StatefulSet>();
    let pod_spec = |s: &StatefulSet| {
        let template = s.spec.template.clone();
        (
            template.metadata.unwrap().labels.unwrap_or_default(),
            template.spec.unwrap().tolerations.unwrap_or_default(),
        )
    };
    let (labels, tolerations) = pod_spec(&sts.get("refined-be").await.unwrap());
    assert_eq!(labels.get("team").map(String::as_str), Some("analytics"));
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("dedicated")
                && t.effect.as_deref() == Some("NoSchedule")),
        "{tolerations:?}"
    );
    let (labels, _) = pod_spec(&sts.get("refined-fe").await.unwrap());
    assert!(!labels.contains_key("team"), "only BE pods are refined");
    let (labels, _) = pod_spec(&sts.get("plain-be").await.unwrap());
    assert!(
        !labels.contains_key("team"),
        "the default set is not refined"
    );

    // The defaults under the refinement change (as a new version of them
    // would): both clusters get the change, and the refined one keeps its
    // refinement.
    put_conventions(
        &env,
        "next-defaults",
        "default",
        &[("shape.rhai", &next_default_shape())],
    )
    .await;
    for cluster in ["refined", "plain"] {
        eventually(
            &format!("{cluster}: the new default reached"),
            60,
            || async {
                let s = sts.get(&format!("{cluster}-be")).await.ok()?;
                (s.metadata.labels?.get("example.com/defaults")? == "v2").then_some(())
            },
        )
        .await;
    }
    let refined = sts.get("refined-be").await.unwrap();
    let (labels, tolerations) = pod_spec(&refined);
    assert_eq!(labels.get("team").map(String::as_str), Some("analytics"));
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("dedicated"))
    );
    let team = env.conventions.bundle_for("team").unwrap();
    eventually(
        "the refined cluster reports the new revision",
        30,
        || async {
            let c = env.api::<DorisCluster>().get("refined").await.ok()?;
            (c.status?.conventions_revision.as_deref() == Some(team.revision())).then_some(())
        },
    )
    .await;
    env.finish().await;
}
