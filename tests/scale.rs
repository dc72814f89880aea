//! Inputs at the edge of what Kubernetes accepts: clusters of thousands of
//! BEs, a configuration file as large as a ConfigMap may be, documents
//! nested deeper than any DorisCluster needs. Each must end, and either be
//! handled correctly or refused with a message that says why and where.
//! (How long each takes is measured by `cargo bench --bench scale`.)

use std::collections::BTreeMap;

use doris_operator::cluster::ClusterRef;
use doris_operator::conventions::{ConventionBundle, ConventionSources};
use doris_operator::crd::{DorisCluster, parse_cluster};
use doris_operator::plan::restart::{full_restart_candidates, plan_restart};
use doris_operator::plan::{PlanError, PlanInput, plan};
use doris_operator::render::read_input;
use serde_json::Value;

const MIB: usize = 1 << 20;

fn bundle() -> ConventionBundle {
    ConventionBundle::embedded().expect("defaults compile")
}

fn cluster(fes: usize, bes: usize, fe_config_map: Option<&str>) -> DorisCluster {
    let conf = fe_config_map
        .map(|name| format!("    configMapInfo:\n      configMapName: {name}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: big\n  namespace: doris\n\
         spec:\n  feSpec:\n    replicas: {fes}\n    image: fe\n{conf}\
         \x20 beSpec:\n    replicas: {bes}\n    image: be\n"
    );
    parse_cluster(&yaml).expect("cluster parses")
}

// ------------------------------------------------------------ many pods

#[test]
fn a_5000_be_cluster_restarts_one_pod_at_a_time_bes_first_and_the_master_last() {
    let b = bundle();
    let c = cluster(5, 5_000, None);
    let candidates = full_restart_candidates(ClusterRef::Doris(&c));
    let steps =
        plan_restart(&b, ClusterRef::Doris(&c), "preview", &candidates).expect("restart plan");
    assert_eq!(steps.len(), 5_005);
    assert!(steps.iter().all(|s| s.pods.len() == 1));
    let order: Vec<&str> = steps.iter().map(|s| s.pods[0].as_str()).collect();
    assert_eq!(order[0], "big-be-4999");
    assert_eq!(order[4_999], "big-be-0");
    // Observers 4 and 3, followers 2 and 1, then the master, ordinal 0.
    assert_eq!(
        order[5_000..],
        ["big-fe-4", "big-fe-3", "big-fe-2", "big-fe-1", "big-fe-0"]
    );
    let be = &steps[0];
    assert_eq!(be.component, "be");
    assert_eq!(be.wait_for, ["pod_ready", "fe_reports_alive"]);
    assert_eq!(be.drain_seconds, 30);
}

#[test]
fn a_policy_may_not_build_much_beyond_a_large_ctx() {
    // The limits grow with the pods handed in, not without bound: a policy
    // that adds more than the fixed limit on top of them is still stopped.
    let src = ConventionSources::embedded().overlay_files(
        "my",
        [(
            "restart.rhai",
            "fn restart_order(ctx) {\n  let steps = ctx.pods.map(|p| #{ pods: [p.pod] });\n  \
             let more = [];\n  more.pad(60000, 0);\n  steps\n}\n",
        )],
    );
    let b = ConventionBundle::compile(src).expect("compiles");
    let c = cluster(3, 5_000, None);
    let err = plan_restart(
        &b,
        ClusterRef::Doris(&c),
        "preview",
        &full_restart_candidates(ClusterRef::Doris(&c)),
    )
    .unwrap_err()
    .to_string();
    // Where the tracer reaches the failure in its time (a release build
    // does, with this ctx), the place is the line that pads; never a guess.
    assert!(
        err.starts_with("my/restart.rhai:4:") || err.starts_with("my/restart.rhai: "),
        "{err}"
    );
    assert!(err.contains("Size of array"), "{err}");
    assert!(err.contains("arrays may hold at most 45036 items"), "{err}");
    assert!(
        err.contains("the fixed limits raised by the size of ctx"),
        "{err}"
    );
}

#[test]
fn a_5000_be_cluster_plans_like_a_small_one() {
    let b = bundle();
    let none = BTreeMap::new();
    let big = plan(
        &b,
        PlanInput {
            cluster: ClusterRef::Doris(&cluster(3, 5_000, None)),
            config_maps: &none,
            secret_keys: &Default::default(),
            pod_security: Default::default(),
        },
    )
    .expect("plans");
    let small = plan(
        &b,
        PlanInput {
            cluster: ClusterRef::Doris(&cluster(3, 3, None)),
            config_maps: &none,
            secret_keys: &Default::default(),
            pod_security: Default::default(),
        },
    )
    .expect("plans");
    assert_eq!(big.objects.len(), small.objects.len());
    let sts = big
        .objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == "big-be")
        .expect("BE StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 5_000);
}

// -------------------------------------------------- a 1 MiB configuration

/// An fe.conf of exactly `size` bytes: the ports, distinct settings, and
/// a comment filling it up.
fn fe_conf(size: usize) -> String {
    let mut text = String::from("http_port = 8031\nquery_port = 9031\n");
    let mut i = 0;
    while text.len() < size - 64 {
        text.push_str(&format!("custom_setting_{i} = value_{i}\n"));
        i += 1;
    }
    text.push('#');
    text.push_str(&"-".repeat(size - text.len() - 1));
    text.push('\n');
    assert_eq!(text.len(), size);
    text
}

fn plan_with_fe_conf(text: String) -> Result<doris_operator::plan::Plan, PlanError> {
    let config_maps = BTreeMap::from([(
        "fe-conf".to_string(),
        BTreeMap::from([("fe.conf".to_string(), text)]),
    )]);
    plan(
        &bundle(),
        PlanInput {
            cluster: ClusterRef::Doris(&cluster(3, 3, Some("fe-conf"))),
            config_maps: &config_maps,
            secret_keys: &Default::default(),
            pod_security: Default::default(),
        },
    )
}

#[test]
fn an_fe_conf_of_almost_a_mebibyte_renders_every_setting() {
    let text = fe_conf(MIB - 16 * 1024);
    let settings = text.lines().filter(|l| l.contains(" = ")).count();
    assert!(settings > 25_000, "{settings}");
    let planned = plan_with_fe_conf(text).expect("plans");
    let fe = &planned.components[0];
    let rendered = &fe.files["fe.conf"];
    assert!(rendered.contains("\nhttp_port = 8031\n"));
    let last = format!("custom_setting_{} = ", settings - 3);
    assert!(rendered.contains(&last), "{last} missing");
    // The user's ports reach the StatefulSet.
    let sts = planned
        .objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == "big-fe")
        .expect("FE StatefulSet");
    let ports: Vec<&Value> = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["containerPort"])
        .collect();
    assert!(ports.contains(&&Value::from(8031)), "{ports:?}");
    assert!(ports.contains(&&Value::from(9031)), "{ports:?}");
}

#[test]
fn an_fe_conf_too_large_once_rendered_is_refused_naming_it() {
    let err = plan_with_fe_conf(fe_conf(MIB)).unwrap_err().to_string();
    assert!(err.starts_with("fe: ConfigMap fe-conf, fe.conf: "), "{err}");
    assert!(
        err.contains(
            "more than ConfigMap big-fe-conf that carries them to the pods may hold (1 MiB)"
        ),
        "{err}"
    );
}

// ----------------------------------------------------- deeply nested YAML

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: deep\nspec:\n  feSpec:\n    image: fe\n    podLabels: {}{}\n",
        open.repeat(depth),
        close.repeat(depth)
    )
}

#[test]
fn a_document_nested_100000_deep_is_refused_with_its_place() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let text = nested(open, close, 100_000);
        let err = read_input("deep.yaml", &text).unwrap_err();
        assert!(
            err.starts_with("deep.yaml:8:"),
            "{open}: {}",
            &err[..err.len().min(200)]
        );
        assert!(
            err.contains("nested more than 128 levels deep"),
            "{open}: {}",
            &err[..err.len().min(200)]
        );
        let err = parse_cluster(&text).unwrap_err().to_string();
        assert!(err.contains("line 8 column"), "{err}");
    }
    // Block style nests without brackets: `- - - - x`.
    let text = format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: deep\n  labels:\n    a:\n      {}x\n",
        "- ".repeat(100_000)
    );
    let err = read_input("block.yaml", &text).unwrap_err();
    assert!(
        err.starts_with("block.yaml:7:") && err.contains("nested more than 128"),
        "{}",
        &err[..err.len().min(200)]
    );
}

#[test]
fn nesting_within_the_limit_is_read_as_written() {
    // podLabels nested 100 deep is not a valid label map: the error names
    // the field, not the depth.
    let err = read_input("ok.yaml", &nested("[", "]", 100)).unwrap_err();
    assert!(!err.contains("nested more than"), "{err}");
    assert!(err.contains("podLabels"), "{err}");
    // The second document's line numbers count from the top of the file.
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n  c: d\n  e: f\n---\n{}",
        nested("[", "]", 200)
    );
    let err = read_input("two.yaml", &text).unwrap_err();
    assert!(err.starts_with("two.yaml:17:"), "{err}");
    assert!(err.contains("document 2"), "{err}");
}
