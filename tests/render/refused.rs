//! Input that the API server, the kubelet or Doris would refuse later is
//! refused by `render` (and so by the operator's plan) now, naming the
//! field, or the ConfigMap, the file and the key the user wrote.

use super::{cli, render_text, tempdir};

/// A DorisCluster of every component, with `{fe}`, `{be}`, `{cn}` and
/// `{broker}` for their images; FE and BE read ConfigMaps fe-conf and
/// be-conf.
const CLUSTER: &str = "\
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
  namespace: doris
spec:
  feSpec:
    image: \"{fe}\"
    configMapInfo:
      configMapName: fe-conf
  beSpec:
    image: \"{be}\"
    configMapInfo:
      configMapName: be-conf
  cnSpec:
    image: \"{cn}\"
  brokerSpec:
    image: \"{broker}\"
";

fn cluster(fe: &str, be: &str, cn: &str, broker: &str) -> String {
    CLUSTER
        .replace("{fe}", fe)
        .replace("{be}", be)
        .replace("{cn}", cn)
        .replace("{broker}", broker)
}

fn good_cluster() -> String {
    cluster(
        "apache/doris:fe-2.1.8",
        "apache/doris:be-2.1.8",
        "apache/doris:be-2.1.8",
        "apache/doris:broker-2.1.8",
    )
}

/// The cluster with ConfigMaps fe-conf and be-conf holding `fe` and `be`.
fn with_conf(fe: &str, be: &str) -> String {
    let conf_map = |name: &str, file: &str, text: &str| {
        let text: String = text.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: doris\n\
             data:\n  {file}: |\n{text}"
        )
    };
    format!(
        "{}{}{}",
        good_cluster(),
        conf_map("fe-conf", "fe.conf", fe),
        conf_map("be-conf", "be.conf", be)
    )
}

/// A DorisDisaggregatedCluster with `{ms}`, `{fe}`, `{cg0}` and `{cg1}` for
/// the images of its meta service, FE and two compute groups.
const DDC: &str = "\
apiVersion: disaggregated.cluster.doris.com/v1
kind: DorisDisaggregatedCluster
metadata:
  name: ddc
  namespace: doris
spec:
  metaService:
    image: \"{ms}\"
    fdb:
      address: \"doris:abc@10.0.0.11:4500\"
  feSpec:
    replicas: 1
    image: \"{fe}\"
  computeGroups:
  - uniqueId: cg_etl
    image: \"{cg0}\"
  - uniqueId: cg_query
    image: \"{cg1}\"
";

fn ddc(ms: &str, fe: &str, cg0: &str, cg1: &str) -> String {
    DDC.replace("{ms}", ms)
        .replace("{fe}", fe)
        .replace("{cg0}", cg0)
        .replace("{cg1}", cg1)
}

/// The error of rendering `input`, which must fail.
fn refused(input: &str) -> String {
    match render_text(input) {
        Ok(_) => panic!("rendered:\n{input}"),
        Err(err) => err,
    }
}

fn assert_refused(input: &str, expected: &str) {
    let err = refused(input);
    assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
}

/// Runs `render -f` on `input`; returns whether it succeeded, and stderr.
fn render_cli(tag: &str, input: &str) -> (bool, String) {
    let file = tempdir(tag).join("cluster.yaml");
    std::fs::write(&file, input).unwrap();
    let out = cli(&["render", "-f", file.to_str().unwrap()]);
    (out.status.success(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_namespace_that_is_not_a_dns_label_is_refused() {
    assert!(render_text(&good_cluster()).is_ok());
    for bad in ["Doris", "doris_prod", "doris.prod", "-doris"] {
        let input = good_cluster().replace("namespace: doris", &format!("namespace: {bad}"));
        let (ok, err) = render_cli("namespace", &input);
        assert!(!ok, "{bad} was accepted");
        assert!(
            err.contains(&format!("metadata.namespace: \"{bad}\" is not a DNS label")),
            "{bad}: {err}"
        );
    }
    let long = "n".repeat(64);
    let input =
        ddc("ms", "fe", "be", "be").replace("namespace: doris", &format!("namespace: {long}"));
    assert_refused(
        &input,
        &format!(
            "metadata.namespace: \"{long}\" is 64 characters long; a DNS label has at most 63"
        ),
    );
}

#[test]
fn an_image_that_is_not_a_reference_is_refused_in_every_component() {
    let (fe, be, broker) = (
        "apache/doris:fe-2.1.8",
        "apache/doris:be-2.1.8",
        "apache/doris:broker-2.1.8",
    );
    let cases = [
        (
            cluster("apache/doris:fe 2.1.8", be, be, broker),
            "spec.feSpec.image: \"apache/doris:fe 2.1.8\" is not a valid image reference: it \
             contains whitespace",
        ),
        (
            cluster(fe, "apache/Doris:be-2.1.8", be, broker),
            "spec.beSpec.image: \"apache/Doris:be-2.1.8\" is not a valid image reference: the \
             repository name \"apache/Doris\" must be lowercase",
        ),
        (
            cluster(fe, be, "apache/doris:-be", broker),
            "spec.cnSpec.image: \"apache/doris:-be\" is not a valid image reference: the tag \"-be\"",
        ),
        (
            cluster(fe, be, be, ""),
            "spec.brokerSpec.image: is required",
        ),
        (
            ddc("apache/doris:ms@sha256:123", "fe", "be", "be"),
            "spec.metaService.image: \"apache/doris:ms@sha256:123\" is not a valid image \
             reference: the digest \"sha256:123\"",
        ),
        (
            ddc("ms", "apache/doris:", "be", "be"),
            "spec.feSpec.image: \"apache/doris:\" is not a valid image reference: the tag \"\"",
        ),
        (
            ddc("ms", "fe", "", "be"),
            "spec.computeGroups[0].image: is required",
        ),
        (
            ddc("ms", "fe", "be", "apache/doris be"),
            "spec.computeGroups[1].image: \"apache/doris be\" is not a valid image reference",
        ),
    ];
    for (input, expected) in cases {
        assert_refused(&input, expected);
    }
    // What registries accept renders.
    let digest = format!("sha256:{}", "0".repeat(64));
    assert!(
        render_text(&cluster(
            "registry.example.com:5000/doris/fe:2.1.8",
            &format!("apache/doris@{digest}"),
            "localhost/doris-be",
            "[::1]:5000/broker:v_1.2-rc",
        ))
        .is_ok()
    );
}

#[test]
fn an_env_var_without_a_name_is_refused_with_its_index() {
    let env =
        "    envVars:\n    - {name: TZ, value: UTC}\n    - {name: A, value: b}\n    - {value: x}\n";
    let input = good_cluster().replace(
        "  beSpec:\n    image: \"apache/doris:be-2.1.8\"\n",
        &format!("  beSpec:\n    image: \"apache/doris:be-2.1.8\"\n{env}"),
    );
    assert!(input.contains("{value: x}"));
    assert_refused(&input, "spec.beSpec.envVars[2].name: Required value");
    let input = ddc("ms", "fe", "be", "be").replace(
        "  - uniqueId: cg_query\n",
        "  - uniqueId: cg_query\n    envVars:\n    - valueFrom: {fieldRef: {fieldPath: metadata.name}}\n",
    );
    assert_refused(
        &input,
        "spec.computeGroups[1].envVars[0].name: Required value",
    );
    // The CRDs make the API server refuse it too.
    for crd in [
        "crds/doris.selectdb.com_dorisclusters.yaml",
        "crds/disaggregated.cluster.doris.com_dorisdisaggregatedclusters.yaml",
    ] {
        let text = std::fs::read_to_string(super::root().join(crd)).unwrap();
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let mut found = 0;
        every_env_vars_schema(&doc, &mut |items| {
            found += 1;
            assert_eq!(items["required"], serde_json::json!(["name"]), "{crd}");
        });
        assert!(found > 0, "{crd} has no envVars");
    }
}

/// Calls `f` with the item schema of every `envVars` property.
fn every_env_vars_schema(value: &serde_json::Value, f: &mut dyn FnMut(&serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                if key == "envVars" && child.get("items").is_some() {
                    f(&child["items"]);
                }
                every_env_vars_schema(child, f);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                every_env_vars_schema(item, f);
            }
        }
        _ => {}
    }
}

#[test]
fn a_cluster_given_twice_in_one_file_is_refused_naming_both_documents() {
    let one = good_cluster();
    let second_line = one.lines().count() + 2;
    let err = refused(&format!("{one}---\n{one}"));
    assert!(
        err.contains(&format!(
            "input.yaml: document 1 (line 1) and document 2 (line {second_line}) are both \
             DorisCluster doris in namespace doris"
        )),
        "{err}"
    );
    // With a ConfigMap between them, and no namespace (`default`) on either.
    let bare = ddc("ms", "fe", "be", "be").replace("  namespace: doris\n", "");
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    let err = refused(&format!("{bare}---\n{config_map}---\n{bare}"));
    assert!(
        err.contains("document 1 (line 1) and document 3 (line")
            && err.contains("are both DorisDisaggregatedCluster ddc in namespace default"),
        "{err}"
    );
    // The same name in two namespaces is two clusters.
    let other = one.replace("namespace: doris", "namespace: doris-test");
    assert!(render_text(&format!("{one}---\n{other}")).is_ok());
}

#[test]
fn a_port_that_is_not_a_number_is_refused_naming_the_config_map_file_and_key() {
    assert!(render_text(&with_conf("http_port = 8031\n", "be_port = 9061\n")).is_ok());
    assert_refused(
        &with_conf("http_port = abc\n", ""),
        "ConfigMap fe-conf, fe.conf: http_port = \"abc\" is not a port number (1 to 65535)",
    );
    assert_refused(
        &with_conf("", "heartbeat_service_port = 70000\n"),
        "ConfigMap be-conf, be.conf: heartbeat_service_port = \"70000\" is not a port number",
    );
    assert_refused(
        &with_conf("arrow_flight_sql_port = 0\n", ""),
        "ConfigMap fe-conf, fe.conf: arrow_flight_sql_port = \"0\" is not a port number (1 to \
         65535, or -1 for off)",
    );
    // The operator plans with the same checks: the cluster's status says
    // it, as it says every other refused spec.
    let input =
        doris_operator::render::read_input("c.yaml", &with_conf("query_port = x\n", "")).unwrap();
    let bundle = doris_operator::render::load_bundle(None).unwrap();
    let err = doris_operator::plan::plan(
        &bundle,
        doris_operator::plan::PlanInput {
            cluster: input.clusters[0].as_ref(),
            config_maps: &input.config_maps,
            secret_keys: &input.secret_keys,
            pod_security: input.pod_security,
        },
    )
    .unwrap_err();
    assert_eq!(err.category(), "InvalidSpec");
    assert!(
        err.to_string()
            .contains("ConfigMap fe-conf, fe.conf: query_port = \"x\" is not a port number"),
        "{err}"
    );
}

#[test]
fn two_ports_of_one_component_on_one_number_are_refused_naming_both_keys() {
    assert_refused(
        &with_conf("query_port = 8030\nhttp_port = 8030\n", ""),
        "ConfigMap fe-conf, fe.conf: http_port = 8030 and query_port = 8030 are the same port",
    );
    // Against a port the user left at its default.
    assert_refused(
        &with_conf("", "brpc_port = 9060\n"),
        "ConfigMap be-conf, be.conf: be_port = 9060 and brpc_port = 9060 are the same port",
    );
    assert_refused(
        &with_conf("", "arrow_flight_sql_port = 8040\n"),
        "ConfigMap be-conf, be.conf: webserver_port = 8040 and arrow_flight_sql_port = 8040 are \
         the same port",
    );
}

#[test]
fn a_storage_directory_named_twice_is_refused_naming_the_key() {
    assert!(render_text(&with_conf("", "storage_root_path = /data/a;/data/b\n")).is_ok());
    assert_refused(
        &with_conf("", "storage_root_path = /data/a;/data/a/\n"),
        "ConfigMap be-conf, be.conf: storage_root_path = \"/data/a;/data/a/\" names the \
         directory /data/a twice (\"/data/a\" and \"/data/a/\")",
    );
    assert_refused(
        &with_conf(
            "",
            "storage_root_path = /data/a,medium:ssd;/data/b.HDD;/data//a\n",
        ),
        "ConfigMap be-conf, be.conf: storage_root_path = \"/data/a,medium:ssd;/data/b.HDD;/data//a\" \
         names the directory /data/a twice",
    );
}

#[test]
fn a_cluster_with_no_component_is_rendered_with_a_warning() {
    let input = "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: doris\nspec: {}\n";
    let (ok, err) = render_cli("empty-spec", input);
    assert!(ok, "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert!(
        err.contains(
            "cluster.yaml: document 1 (line 1): DorisCluster doris has no component \
             (spec.feSpec, spec.beSpec, spec.cnSpec, spec.brokerSpec): nothing will be created"
        ),
        "{err}"
    );
    // A cluster with a component: no warning.
    let (ok, err) = render_cli("one-component", &good_cluster());
    assert!(ok && !err.contains("warning"), "{err}");
}
