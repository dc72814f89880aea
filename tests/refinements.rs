//! Refinements: a convention file laid over the shipped defaults that
//! changes what they produce instead of replacing them. Each of
//! examples/conventions/ is rendered over the defaults and checked for what
//! a platform team wanted of it; each mistake a refinement can make is
//! reported at the user's file and line, naming the file below.

use std::path::{Path, PathBuf};

use doris_operator::conventions::{ConventionBundle, ConventionSources};
use doris_operator::render::{self, Format};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples/conventions").join(name)
}

const SAMPLE: &str = "examples/doriscluster-sample.yaml";

/// The objects `sample` becomes with `layers` over the defaults.
fn render_with(sample: &str, layers: &[&Path]) -> Vec<Value> {
    let bundle = render::load_bundle(layers.iter().copied()).unwrap_or_else(|e| panic!("{e:?}"));
    objects(&bundle, sample)
}

fn objects(bundle: &ConventionBundle, sample: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(sample)).unwrap();
    let input = render::read_input(sample, &text).unwrap();
    let (out, _) = render::render(bundle, &input, Format::Json).unwrap();
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().expect("a List").clone()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The render error of `sample` with files laid over the defaults as one
/// ConfigMap layer.
fn failure(files: &[(&str, &str)]) -> String {
    let sources =
        ConventionSources::embedded().overlay_files("configmap ops/team", files.iter().copied());
    let bundle = match ConventionBundle::compile(sources) {
        Ok(bundle) => bundle,
        Err(errors) => {
            return errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
        }
    };
    let text = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
    let input = render::read_input(SAMPLE, &text).unwrap();
    match render::render(&bundle, &input, Format::Json) {
        Ok(_) => match render::render_restart_plan(&bundle, &input, Format::Json) {
            Ok(_) => panic!("rendered"),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

#[test]
fn a_shape_refinement_adds_a_toleration_and_a_label_to_be_pods_only() {
    let defaults = render_with(SAMPLE, &[]);
    let refined = render_with(SAMPLE, &[&example("be-toleration.yaml")]);
    let be = find(&refined, "StatefulSet", "doriscluster-sample-be");
    let pod = &be["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["team"], "analytics");
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["key"] == "dedicated" && t["effect"] == "NoSchedule"),
        "{tolerations:?}"
    );
    // What the defaults made is all still there.
    let before = find(&defaults, "StatefulSet", "doriscluster-sample-be");
    assert_eq!(
        pod["spec"]["containers"], before["spec"]["template"]["spec"]["containers"],
        "the containers are the defaults'"
    );
    let fe = find(&refined, "StatefulSet", "doriscluster-sample-fe");
    assert_eq!(fe, find(&defaults, "StatefulSet", "doriscluster-sample-fe"));
}

#[test]
fn a_config_refinement_adds_one_jvm_option_to_fe_conf() {
    let refined = render_with(SAMPLE, &[&example("fe-jvm-option.yaml")]);
    let defaults = render_with(SAMPLE, &[]);
    let conf = |objects: &[Value], cm: &str, file: &str| -> String {
        find(objects, "ConfigMap", cm)["data"][file]
            .as_str()
            .unwrap()
            .to_string()
    };
    let fe = conf(&refined, "doriscluster-sample-fe-conf", "fe.conf");
    let line = fe
        .lines()
        .find(|l| l.starts_with("JAVA_OPTS_FOR_JDK_17"))
        .unwrap();
    assert!(line.ends_with(" -XX:+ExitOnOutOfMemoryError\""), "{line}");
    let default_line = conf(&defaults, "doriscluster-sample-fe-conf", "fe.conf")
        .lines()
        .find(|l| l.starts_with("JAVA_OPTS_FOR_JDK_17"))
        .unwrap()
        .to_string();
    assert_eq!(
        line.replace(" -XX:+ExitOnOutOfMemoryError", ""),
        default_line
    );
    assert_eq!(
        conf(&refined, "doriscluster-sample-be-conf", "be.conf"),
        conf(&defaults, "doriscluster-sample-be-conf", "be.conf"),
        "only the FE's file"
    );
}

#[test]
fn a_restart_refinement_restarts_bes_two_at_a_time() {
    let text = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
    let input = render::read_input(SAMPLE, &text).unwrap();
    let plan = |layers: &[&Path]| -> Vec<Value> {
        let bundle = render::load_bundle(layers.iter().copied()).unwrap();
        let out = render::render_restart_plan(&bundle, &input, Format::Json).unwrap();
        let plan: Value = serde_json::from_str(&out).unwrap();
        plan["restartOrder"].as_array().unwrap().clone()
    };
    let pods = |steps: &[Value], component: &str| -> Vec<usize> {
        steps
            .iter()
            .filter(|s| s["component"] == component)
            .map(|s| s["pods"].as_array().unwrap().len())
            .collect()
    };
    let defaults = plan(&[]);
    let refined = plan(&[&example("be-restart-pairs.yaml")]);
    assert_eq!(pods(&defaults, "be"), vec![1, 1, 1]);
    assert_eq!(pods(&refined, "be"), vec![2, 1]);
    assert_eq!(
        pods(&refined, "fe"),
        pods(&defaults, "fe"),
        "FEs as by default"
    );
}

#[test]
fn a_host_init_refinement_adds_a_sysctl_to_be_pods() {
    let refined = render_with(SAMPLE, &[&example("be-sysctl.yaml")]);
    let sysctls = |name: &str| -> Vec<Value> {
        find(&refined, "StatefulSet", name)["spec"]["template"]["spec"]["securityContext"]["sysctls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        sysctls("doriscluster-sample-be")
            .iter()
            .any(|s| s["name"] == "net.ipv4.tcp_keepalive_time" && s["value"] == "600")
    );
    assert!(sysctls("doriscluster-sample-fe").is_empty());
    // The default init container (privileged namespace) is still there.
    let init = &find(&refined, "StatefulSet", "doriscluster-sample-be")["spec"]["template"]["spec"]
        ["initContainers"];
    assert!(
        init.as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "default-init")
    );
}

#[test]
fn a_template_refinement_annotates_the_services_another_template_made() {
    let refined = render_with(SAMPLE, &[&example("service-annotation.yaml")]);
    let defaults = render_with(SAMPLE, &[]);
    let services: Vec<&Value> = refined.iter().filter(|o| o["kind"] == "Service").collect();
    assert_eq!(
        services.len(),
        defaults.iter().filter(|o| o["kind"] == "Service").count()
    );
    for service in services {
        assert_eq!(
            service["metadata"]["annotations"]["example.com/cost-centre"], "analytics",
            "{service}"
        );
        let name = service["metadata"]["name"].as_str().unwrap();
        assert_eq!(service["spec"], find(&defaults, "Service", name)["spec"]);
    }
}

#[test]
fn refinements_stack_in_the_order_given() {
    let all: Vec<PathBuf> = [
        "be-toleration.yaml",
        "be-sysctl.yaml",
        "service-annotation.yaml",
    ]
    .iter()
    .map(|f| example(f))
    .collect();
    let paths: Vec<&Path> = all.iter().map(PathBuf::as_path).collect();
    let refined = render_with(SAMPLE, &paths);
    let be = find(&refined, "StatefulSet", "doriscluster-sample-be");
    assert_eq!(
        be["spec"]["template"]["metadata"]["labels"]["team"],
        "analytics"
    );
    assert!(be["spec"]["template"]["spec"]["securityContext"]["sysctls"].is_array());
    // Two refinements of one file: each gets what the one below returned.
    let twice = ConventionSources::embedded()
        .overlay_files(
            "configmap ops/first",
            [("shape.rhai", "fn shape(ctx, below) {\n    below.values.access_labels.first = \"1\";\n    below\n}\n")],
        )
        .overlay_files(
            "configmap ops/second",
            [("shape.rhai", "fn shape(ctx, below) {\n    below.values.access_labels.second = below.values.access_labels.first + \"2\";\n    below\n}\n")],
        );
    let bundle = ConventionBundle::compile(twice).unwrap();
    let objects = objects(&bundle, SAMPLE);
    let labels = &find(&objects, "Service", "doriscluster-sample-fe-service")["metadata"]["labels"];
    assert_eq!(labels["first"], "1");
    assert_eq!(labels["second"], "12");
}

#[test]
fn a_change_of_the_defaults_shows_through_a_refinement_in_a_diff() {
    // A folder standing for the next defaults: a shape.rhai that labels
    // every StatefulSet.
    let dir = std::env::temp_dir().join(format!("next-defaults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = ConventionSources::embedded();
    let next = shipped.files["shape.rhai"]
        .content
        .replace("fn shape(ctx) {", "fn shipped(ctx) {")
        + "\nfn shape(ctx) {\n    let out = shipped(ctx);\n    out.objects[0].metadata.labels.generation = \"next\";\n    out\n}\n";
    std::fs::write(dir.join("shape.rhai"), next).unwrap();
    let refinement = example("be-toleration.yaml");
    let old = render::load_bundle([refinement.as_path()]).unwrap();
    let new = render::load_bundle([dir.as_path(), refinement.as_path()]).unwrap();
    let text = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
    let input = render::read_input(SAMPLE, &text).unwrap();
    let diff = render::diff(&old, &new, &input).unwrap();
    assert!(diff.contains("+    generation: next"), "{diff}");
    assert!(
        diff.contains("~ StatefulSet doriscluster-sample-be"),
        "{diff}"
    );
    let objects = objects(&new, SAMPLE);
    let be = find(&objects, "StatefulSet", "doriscluster-sample-be");
    assert_eq!(be["metadata"]["labels"]["generation"], "next");
    assert_eq!(
        be["spec"]["template"]["metadata"]["labels"]["team"],
        "analytics"
    );
}

#[test]
fn a_refinement_of_a_path_that_does_not_exist_names_both_files() {
    let err = failure(&[(
        "shape.rhai",
        "fn shape(ctx, below) {\n    below.patch(\"objects[kind=Deployment].spec\", #{ paused: true });\n    below\n}\n",
    )]);
    assert!(err.contains("configmap ops/team/shape.rhai:2:"), "{err}");
    assert!(
        err.contains("below.objects has no item with kind = \"Deployment\""),
        "{err}"
    );
    assert!(err.contains("policies/shape.rhai returned"), "{err}");
}

#[test]
fn a_refinement_of_a_layer_that_returned_nothing_names_it() {
    // A layer that forgot to return what it refined, and one above it.
    let sources = ConventionSources::embedded()
        .overlay_files(
            "configmap ops/forgot",
            [(
                "restart.rhai",
                "fn restart_order(ctx, below) {\n    let steps = below.len();\n}\n",
            )],
        )
        .overlay_files(
            "configmap ops/team",
            [(
                "restart.rhai",
                "fn restart_order(ctx, below) {\n    below.filter(|s| s.pods.len() > 0)\n}\n",
            )],
        );
    let bundle = ConventionBundle::compile(sources).unwrap();
    let text = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
    let input = render::read_input(SAMPLE, &text).unwrap();
    let err = render::render_restart_plan(&bundle, &input, Format::Json).unwrap_err();
    assert!(err.contains("configmap ops/team/restart.rhai:2:"), "{err}");
    assert!(
        err.contains("(below is (): configmap ops/forgot/restart.rhai returned it)"),
        "{err}"
    );
}

#[test]
fn a_type_error_in_a_refinement_is_located_in_it() {
    let err = failure(&[(
        "host_init.rhai",
        "fn host_init(ctx, below) {\n    let name = below.init_containers * 2;\n    below\n}\n",
    )]);
    assert!(
        err.contains("configmap ops/team/host_init.rhai:2:"),
        "{err}"
    );
}

#[test]
fn a_refining_template_whose_target_vanished_names_its_line() {
    let err = failure(&[(
        "services.yaml.j2",
        "{% for s in below %}\n---\n{{ s | patch(\"spec.selector.tier.name\", 1) | tojson }}\n{% endfor %}\n",
    )]);
    assert!(
        err.contains("configmap ops/team/services.yaml.j2:3"),
        "{err}"
    );
    assert!(err.contains("has no tier"), "{err}");
}

#[test]
fn a_file_that_neither_replaces_nor_refines_is_refused() {
    let err = failure(&[("shape.rhai", "fn shape(ctx, below, extra) { below }\n")]);
    assert!(err.contains("configmap ops/team/shape.rhai"), "{err}");
    assert!(err.contains("defines none of fn shape"), "{err}");
    let err = failure(&[(
        "shape.rhai",
        "fn shape(ctx) { #{} }\nfn shape(ctx, below) { below }\n",
    )]);
    assert!(
        err.contains("defines both fn shape(ctx) and fn shape(ctx, below)"),
        "{err}"
    );
}

#[test]
fn replacing_a_file_whole_still_replaces_it() {
    let sources = ConventionSources::embedded().overlay_files(
        "configmap ops/team",
        [("restart.rhai", "fn restart_order(ctx) {\n    [#{ pods: ctx.pods.map(|p| p.pod), wait_for: [\"pod_ready\"] }]\n}\n")],
    );
    let bundle = ConventionBundle::compile(sources).unwrap();
    let text = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
    let input = render::read_input(SAMPLE, &text).unwrap();
    // One step for all pods is refused: a step holds one component. The
    // error is the replacement's, not the default's.
    let err = render::render_restart_plan(&bundle, &input, Format::Json).unwrap_err();
    assert!(err.contains("configmap ops/team/restart.rhai"), "{err}");
    // The default maintenance went with the file it was in.
    assert!(!bundle.defines("restart.rhai", "maintenance", 1));
}

#[test]
fn every_example_passes_policy_check() {
    let bin = env!("CARGO_BIN_EXE_doris-operator");
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples/conventions")).unwrap() {
        let path = entry.unwrap().path();
        let out = std::process::Command::new(bin)
            .args(["policy", "check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The convention file of each is at most ten lines.
        let cm: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (file, content) in cm["data"].as_object().unwrap() {
            let lines = content.as_str().unwrap().lines().count();
            assert!(lines <= 10, "{}: {file} has {lines} lines", path.display());
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn explain_names_the_layer_file_and_line_that_set_each_field() {
    let bin = env!("CARGO_BIN_EXE_doris-operator");
    let out = std::process::Command::new(bin)
        .current_dir(root())
        .args(["render", "--explain", "-f", SAMPLE])
        .args(["--conventions", "examples/conventions/be-toleration.yaml"])
        .args(["--conventions", "examples/conventions/fe-jvm-option.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let toleration = "configmap doris-operator/conventions-be-toleration/shape.rhai";
    let jvm = "configmap doris-operator/conventions-fe-jvm-option/config.rhai";
    assert!(
        text.contains(&format!(
            "  spec.template.spec.tolerations  <- {toleration}:5\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  spec.template.metadata.labels.team  <- {toleration}:4\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  data[\"fe.conf\"] JAVA_OPTS_FOR_JDK_17  <- {jvm}:4\n"
        )),
        "{text}"
    );
    // An object no refinement touched is the defaults' whole.
    let fe = text
        .split("StatefulSet doriscluster-sample-fe\n")
        .nth(1)
        .unwrap();
    assert!(
        fe.starts_with("  (the rest)  <- embedded defaults\n"),
        "{text}"
    );
}

#[test]
fn a_plain_rhai_refinement_of_a_vanished_field_names_the_file_below() {
    let err = failure(&[(
        "shape.rhai",
        "fn shape(ctx, below) {\n    below.values.renamed_labels.team = \"x\";\n    below\n}\n",
    )]);
    assert!(err.contains("configmap ops/team/shape.rhai:2:"), "{err}");
    assert!(
        err.contains("(refining what policies/shape.rhai returned)"),
        "{err}"
    );
}
