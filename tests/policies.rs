//! Unit tests of the default policy functions, called directly with the
//! `ctx` maps the README documents.

use doris_operator::conventions::ConventionBundle;
use serde_json::{Value, json};

fn bundle() -> ConventionBundle {
    ConventionBundle::embedded().expect("defaults compile")
}

fn base_ctx(component: &str, spec: Value) -> Value {
    json!({
        "component": component,
        "spec": spec,
        "cluster": {"name": "c", "namespace": "ns", "labels": {}, "annotations": {}, "spec": {}},
        "names": {
            "statefulset": format!("c-{component}"),
            "internal_service": format!("c-{component}-internal"),
            "access_service": format!("c-{component}-service"),
            "config_map": format!("c-{component}-conf"),
            "fe_access_service": "c-fe-service",
            "fe_internal_service": "c-fe-internal",
        },
        "selector": {"app.doris.ownerreference/name": format!("c-{component}"), "app.kubernetes.io/component": component},
        "config": {"file": "be.conf", "source": null, "mount_path": "/etc/doris", "user": {},
                   "values": {}, "files": {}, "hash": "h"},
        "fe_config": {},
        "host_init": [],
        "mounts": [{"path": "/etc/doris", "sources": [
            {"kind": "configMap", "name": format!("c-{component}-conf"), "field": "configuration"}
        ]}],
    })
}

// ------------------------------------------------------------ config.rhai

#[test]
fn config_gives_stock_defaults_and_the_cn_role() {
    let b = bundle();
    let fe = b
        .call_json(
            "config.rhai",
            "config",
            &base_ctx("fe", json!({"image": "x"})),
        )
        .unwrap();
    assert_eq!(fe["defaults"]["query_port"], 9030);
    assert_eq!(fe["defaults"]["enable_fqdn_mode"], true);
    assert!(
        fe["defaults"]["JAVA_OPTS"]
            .as_str()
            .unwrap()
            .contains("-Xmx8192m")
    );
    let cn = b
        .call_json(
            "config.rhai",
            "config",
            &base_ctx("cn", json!({"image": "x"})),
        )
        .unwrap();
    assert_eq!(cn["defaults"]["be_node_role"], "computation");
    let be = b
        .call_json(
            "config.rhai",
            "config",
            &base_ctx("be", json!({"image": "x"})),
        )
        .unwrap();
    assert!(be["defaults"].get("be_node_role").is_none());
    let broker = b
        .call_json(
            "config.rhai",
            "config",
            &base_ctx("broker", json!({"image": "x"})),
        )
        .unwrap();
    assert_eq!(broker["defaults"]["broker_ipc_port"], 8000);
}

// --------------------------------------------------------- host_init.rhai

#[test]
fn host_init_tunes_be_hosts_unless_skipped() {
    let b = bundle();
    let be = b
        .call_json(
            "host_init.rhai",
            "host_init",
            &base_ctx("be", json!({"image": "be:1"})),
        )
        .unwrap();
    assert_eq!(be[0]["name"], "default-init");
    assert_eq!(be[0]["image"], "be:1");
    assert_eq!(be[0]["securityContext"]["privileged"], true);
    assert_eq!(
        be[0]["args"][0],
        "sysctl -w vm.max_map_count=2000000 && swapoff -a"
    );

    let skipped = b
        .call_json(
            "host_init.rhai",
            "host_init",
            &base_ctx(
                "be",
                json!({"image": "be:1", "skipDefaultSystemInit": true}),
            ),
        )
        .unwrap();
    assert_eq!(skipped, json!([]));

    let fe = b
        .call_json(
            "host_init.rhai",
            "host_init",
            &base_ctx("fe", json!({"image": "fe:1"})),
        )
        .unwrap();
    assert_eq!(fe, json!([]));
}

#[test]
fn host_init_runs_the_users_system_initialization_after_the_default() {
    let b = bundle();
    let spec = json!({"image": "be:1", "systemInitialization": {"command": ["/sbin/sysctl", "-w", "vm.max_map_count=2000000"]}});
    let out = b
        .call_json("host_init.rhai", "host_init", &base_ctx("be", spec))
        .unwrap();
    let names: Vec<_> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default-init", "init"]);
    assert_eq!(out[1]["image"], "selectdb/alpine:latest");
    assert_eq!(out[1]["command"][0], "/sbin/sysctl");
    assert!(out[1].get("args").is_none() || out[1]["args"].is_null());

    let spec =
        json!({"image": "fe:1", "systemInitialization": {"initImage": "my/init:2", "args": ["a"]}});
    let out = b
        .call_json("host_init.rhai", "host_init", &base_ctx("fe", spec))
        .unwrap();
    assert_eq!(out[0]["image"], "my/init:2");
}

// ------------------------------------------------------------- shape.rhai

fn statefulset(shape: &Value) -> &Value {
    shape["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .expect("a StatefulSet")
}

fn container(shape: &Value) -> &Value {
    &statefulset(shape)["spec"]["template"]["spec"]["containers"][0]
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

#[test]
fn shape_fe_ports_probes_and_env_follow_the_configuration() {
    let b = bundle();
    let mut ctx = base_ctx(
        "fe",
        json!({"image": "fe:1", "replicas": 5, "electionNumber": 3, "startTimeout": 600, "liveTimeout": 30}),
    );
    ctx["config"]["values"] =
        json!({"query_port": "9031", "http_port": "8031", "enable_fqdn_mode": "false"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let sts = statefulset(&shape);
    assert_eq!(sts["spec"]["replicas"], 5);
    assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    assert_eq!(sts["spec"]["serviceName"], "c-fe-internal");
    let c = container(&shape);
    let ports: Vec<_> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [8031, 9020, 9031, 9010]);
    assert_eq!(c["livenessProbe"]["tcpSocket"]["port"], 9031);
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 30);
    assert_eq!(c["startupProbe"]["failureThreshold"], 120);
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8031);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/api/health");
    assert_eq!(env(c, "ELECT_NUMBER").unwrap(), "3");
    assert_eq!(env(c, "ENV_FE_ADDR").unwrap(), "c-fe-service");
    assert_eq!(env(c, "USER").unwrap(), "root");
    assert_eq!(c["command"][0], "/opt/apache-doris/fe_entrypoint.sh");
    assert_eq!(
        c["lifecycle"]["preStop"]["exec"]["command"][0],
        "/opt/apache-doris/fe_prestop.sh"
    );
    assert_eq!(
        statefulset(&shape)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        330
    );
    assert_eq!(shape["values"]["internal_port"]["port"], 9031);
}

#[test]
fn shape_fqdn_mode_checks_dns_before_health() {
    let b = bundle();
    let mut ctx = base_ctx("be", json!({"image": "be:1"}));
    ctx["config"]["values"] = json!({"webserver_port": "8041"});
    ctx["fe_config"] = json!({"enable_fqdn_mode": "true"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let cmd = container(&shape)["readinessProbe"]["exec"]["command"].clone();
    assert_eq!(cmd[0], "bash");
    let script = cmd[2].as_str().unwrap();
    assert!(script.contains("getent hosts"), "{script}");
    assert!(script.contains(":8041/api/health"), "{script}");
}

#[test]
fn shape_debug_mode_replaces_the_entrypoint_and_drops_probes() {
    let b = bundle();
    let mut ctx = base_ctx("be", json!({"image": "be:1"}));
    ctx["cluster"]["annotations"] = json!({"doris.selectdb.com/debug": "fe, be"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let c = container(&shape);
    assert_eq!(c["command"][0], "/bin/sh");
    assert!(c.get("livenessProbe").is_none_or(Value::is_null));
    assert!(c.get("readinessProbe").is_none_or(Value::is_null));
    let annotations = &statefulset(&shape)["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["selectdb.com.doris/runmode"], "debug");

    let mut ctx = base_ctx("cn", json!({"image": "be:1"}));
    ctx["cluster"]["annotations"] = json!({"doris.selectdb.com/debug": "fe,be"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert!(
        container(&shape)["livenessProbe"].is_object(),
        "cn is not in the list"
    );
}

#[test]
fn shape_grace_period_comes_from_the_configuration() {
    let b = bundle();
    let mut ctx = base_ctx("be", json!({"image": "be:1"}));
    ctx["config"]["values"] = json!({"grace_shutdown_wait_seconds": "45"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(
        statefulset(&shape)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        45
    );
}

#[test]
fn shape_user_env_overrides_defaults_in_place() {
    let b = bundle();
    let ctx = base_ctx(
        "be",
        json!({"image": "be:1", "envVars": [{"name": "DNS_READY_TIMEOUT", "value": "300"}, {"name": "TZ", "value": "UTC"}]}),
    );
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let c = container(&shape);
    let names: Vec<_> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "DNS_READY_TIMEOUT").count(),
        1
    );
    assert_eq!(env(c, "DNS_READY_TIMEOUT").unwrap(), "300");
    assert!(names.iter().position(|n| *n == "TZ") < names.iter().position(|n| *n == "ENV_FE_ADDR"));
}

#[test]
fn shape_persistent_volume_template_expands_to_each_storage_path() {
    let b = bundle();
    let mut ctx = base_ctx(
        "be",
        json!({"image": "be:1", "persistentVolumes": [
            {"name": "data", "persistentVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}}}
        ]}),
    );
    ctx["config"]["values"] =
        json!({"storage_root_path": "/data1/storage,medium:ssd;/data2/storage"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let sts = statefulset(&shape);
    let claims: Vec<_> = sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(claims, ["data-data1-storage", "data-data2-storage"]);
    let mounts = container(&shape)["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == "data-data1-storage" && m["mountPath"] == "/data1/storage")
    );
    // Covered by claims: no emptyDir for data.
    let vols = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(!vols.iter().any(|v| v["name"] == "be-storage"));
}

#[test]
fn shape_without_persistent_volumes_uses_an_empty_dir_for_data() {
    let b = bundle();
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &base_ctx("fe", json!({"image": "fe:1"})),
        )
        .unwrap();
    let sts = statefulset(&shape);
    let vols = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(
        vols.iter()
            .any(|v| v["name"] == "fe-meta" && v["emptyDir"].is_object())
    );
    let mounts = container(&shape)["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/opt/apache-doris/fe/doris-meta")
    );
}

#[test]
fn shape_merges_the_sources_of_one_directory_into_a_projected_volume() {
    let b = bundle();
    let mut ctx = base_ctx("be", json!({"image": "be:1"}));
    let source =
        |kind: &str, name: &str, field: &str| json!({"kind": kind, "name": name, "field": field});
    ctx["mounts"] = json!([
        {"path": "/etc/doris", "sources": [
            source("secret", "s", "secrets[0]"),
            source("configMap", "c-be-conf", "configuration"),
        ]},
        {"path": "/etc/s", "sources": [
            source("secret", "a", "secrets[1]"),
            source("configMap", "b", "configMapInfo.configMaps[0]"),
        ]},
        {"path": "/etc/alone", "sources": [source("secret", "a", "secrets[2]")]},
    ]);
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let vols = shape["objects"][0]["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let vol = |name: &str| vols.iter().find(|v| v["name"] == name).cloned();
    assert_eq!(
        vol("doris-conf").unwrap()["projected"]["sources"],
        json!([{"secret": {"name": "s"}}, {"configMap": {"name": "c-be-conf"}}])
    );
    assert_eq!(
        vol("secret-a").unwrap()["projected"]["sources"],
        json!([{"secret": {"name": "a"}}, {"configMap": {"name": "b"}}])
    );
    // The same Secret elsewhere gets a volume name of its own.
    assert_eq!(vol("secret-a-1").unwrap()["secret"]["secretName"], "a");
    let mounts = container(&shape)["volumeMounts"].as_array().unwrap();
    let at = |path: &str| {
        mounts
            .iter()
            .filter(|m| m["mountPath"] == path)
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(at("/etc/doris"), ["doris-conf"]);
    assert_eq!(at("/etc/s"), ["secret-a"]);
    assert_eq!(at("/etc/alone"), ["secret-a-1"]);
}

#[test]
fn shape_workload_group_makes_the_be_privileged() {
    let b = bundle();
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &base_ctx("be", json!({"image": "be:1", "enableWorkloadGroup": true})),
        )
        .unwrap();
    let c = container(&shape);
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(env(c, "ENABLE_WORKLOAD_GROUP").unwrap(), "true");
}

#[test]
fn shape_cn_autoscaler_starts_from_at_least_its_minimum() {
    let b = bundle();
    let spec = json!({"image": "be:1", "replicas": 3, "autoScalingPolicy": {"version": "v2", "minReplicas": 2, "maxReplicas": 10}});
    let shape = b
        .call_json("shape.rhai", "shape", &base_ctx("cn", spec))
        .unwrap();
    assert_eq!(statefulset(&shape)["spec"]["replicas"], 3);
    let spec = json!({"image": "be:1", "replicas": 1, "autoScalingPolicy": {"version": "v2", "minReplicas": 4, "maxReplicas": 10}});
    let below = b
        .call_json("shape.rhai", "shape", &base_ctx("cn", spec))
        .unwrap();
    assert_eq!(statefulset(&below)["spec"]["replicas"], 4);
    let hpa = shape["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "HorizontalPodAutoscaler")
        .unwrap();
    assert_eq!(hpa["metadata"]["name"], "c-cn-autoscaler");
    assert_eq!(hpa["spec"]["maxReplicas"], 10);
    assert_eq!(env(container(&shape), "COMPONENT_TYPE").unwrap(), "COMPUTE");
}

#[test]
fn shape_spreads_pods_and_keeps_user_affinity() {
    let b = bundle();
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &base_ctx("be", json!({"image": "be:1", "enableFeAffinity": true})),
        )
        .unwrap();
    let aff = &statefulset(&shape)["spec"]["template"]["spec"]["affinity"];
    assert_eq!(
        aff["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        20
    );
    assert_eq!(
        aff["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        15
    );

    let required = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "zone", "labelSelector": {"matchLabels": {"a": "b"}}}]}});
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &base_ctx("be", json!({"image": "be:1", "affinity": required})),
        )
        .unwrap();
    let anti = &statefulset(&shape)["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert_eq!(
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "zone"
    );
    assert!(anti["preferredDuringSchedulingIgnoredDuringExecution"].is_null());
}

#[test]
fn shape_access_ports_map_node_ports() {
    let b = bundle();
    let spec = json!({"image": "fe:1", "service": {"type": "NodePort", "servicePorts": [{"nodePort": 31030, "targetPort": 9030}]}});
    let shape = b
        .call_json("shape.rhai", "shape", &base_ctx("fe", spec))
        .unwrap();
    let ports = shape["values"]["access_ports"].as_array().unwrap();
    let query = ports.iter().find(|p| p["name"] == "query-port").unwrap();
    assert_eq!(query["nodePort"], 31030);
    assert!(
        ports
            .iter()
            .filter(|p| p.get("nodePort").is_some_and(|n| !n.is_null()))
            .count()
            == 1
    );
    assert_eq!(shape["values"]["service_type"], "NodePort");
}

// ----------------------------------------------------------- restart.rhai

fn pods(list: &[(&str, i64, Option<&str>)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(c, o, role)| json!({"component": c, "pod": format!("c-{c}-{o}"), "ordinal": o, "role": role, "ready": true}))
            .collect(),
    )
}

#[test]
fn restart_order_is_be_cn_broker_then_observers_followers_and_master_last() {
    let b = bundle();
    let ctx = json!({
        "reason": "upgrade",
        "cluster": {"name": "c", "namespace": "ns", "annotations": {}, "spec": {}},
        "pods": pods(&[
            ("fe", 0, Some("follower")), ("fe", 1, Some("master")), ("fe", 2, Some("follower")),
            ("fe", 3, Some("observer")), ("be", 0, None), ("be", 1, None), ("cn", 0, None), ("broker", 0, None),
        ]),
    });
    let steps = b.call_json("restart.rhai", "restart_order", &ctx).unwrap();
    let order: Vec<_> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pods"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "c-be-1",
            "c-be-0",
            "c-cn-0",
            "c-broker-0",
            "c-fe-3",
            "c-fe-2",
            "c-fe-0",
            "c-fe-1"
        ]
    );
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pods"].as_array().unwrap().len() == 1)
    );
    assert_eq!(steps[0]["drain_seconds"], 30);
    assert_eq!(
        steps[0]["wait_for"],
        json!(["pod_ready", "fe_reports_alive"])
    );
    assert_eq!(steps[3]["wait_for"], json!(["pod_ready"]));
}

#[test]
fn the_drain_time_follows_the_cluster_annotation() {
    let b = bundle();
    let ctx = json!({
        "reason": "upgrade",
        "cluster": {"name": "c", "namespace": "ns",
                    "annotations": {"doris.selectdb.com/drain-seconds": "5"}, "spec": {}},
        "pods": pods(&[("be", 0, None), ("cn", 0, None), ("broker", 0, None)]),
    });
    let steps = b.call_json("restart.rhai", "restart_order", &ctx).unwrap();
    let drains: Vec<_> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["drain_seconds"].as_i64().unwrap())
        .collect();
    assert_eq!(drains, [5, 5, 0]);
}

// ------------------------------------------------ what every bundle is checked for

mod checks {
    use std::collections::BTreeMap;

    use doris_operator::conventions::{ConventionBundle, ConventionSources, SourceError};
    use doris_operator::plan::{PlanInput, membership, plan, restart};
    use doris_operator::render::{RenderInput, read_input};

    fn sample() -> RenderInput {
        read_input(
            "sample",
            include_str!("../examples/doriscluster-sample.yaml"),
        )
        .unwrap()
    }

    fn compile(files: &[(&str, &str)]) -> Result<ConventionBundle, Vec<SourceError>> {
        ConventionBundle::compile(
            ConventionSources::embedded().overlay_files("my", files.iter().copied()),
        )
    }

    fn compile_error(files: &[(&str, &str)]) -> String {
        match compile(files) {
            Ok(_) => panic!("{files:?} compiled"),
            Err(errors) => errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Plans the sample cluster with these files over the defaults.
    fn plan_error(files: &[(&str, &str)]) -> String {
        let bundle = compile(files).expect("the files compile");
        let input = sample();
        let config_maps = BTreeMap::new();
        match plan(
            &bundle,
            PlanInput {
                cluster: input.clusters[0].as_ref(),
                config_maps: &config_maps,
                secret_keys: &Default::default(),
            },
        ) {
            Ok(_) => panic!("{files:?} planned"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_file_with_an_unknown_name_is_refused_with_the_known_names() {
        let err = compile_error(&[("restart_order.rhai", "fn restart_order(ctx) { [] }")]);
        assert!(
            err.contains("my/restart_order.rhai: unknown convention file"),
            "{err}"
        );
        assert!(
            err.contains("restart.rhai") && err.contains("*.yaml.j2"),
            "{err}"
        );
        let err = compile_error(&[("pdb.yml.j2", "kind: PodDisruptionBudget\n")]);
        assert!(
            err.contains("my/pdb.yml.j2: unknown convention file"),
            "{err}"
        );
    }

    #[test]
    fn a_file_both_flat_and_in_a_subfolder_is_refused() {
        let dir = std::env::temp_dir().join(format!("doris-policies-both-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let policy = "fn restart_order(ctx) { [] }\n";
        std::fs::write(dir.join("restart.rhai"), policy).unwrap();
        std::fs::write(dir.join("policies/restart.rhai"), policy).unwrap();
        let err = ConventionSources::embedded()
            .overlay_dir(&dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("restart.rhai is also at"), "{err}");
        assert!(err.contains("policies"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_statement_outside_a_function_is_located() {
        let err = compile_error(&[(
            "restart.rhai",
            "fn restart_order(ctx) { [] }\n\nlet x = 1;\n",
        )]);
        assert!(err.contains("my/restart.rhai:3:1:"), "{err}");
        assert!(err.contains("function definitions only"), "{err}");
    }

    #[test]
    fn there_is_no_clock() {
        let err = compile_error(&[(
            "membership.rhai",
            "fn membership(ctx) {\n  let t = timestamp();\n  #{}\n}\n",
        )]);
        assert!(err.contains("my/membership.rhai:2:11:"), "{err}");
        assert!(err.contains("no clock"), "{err}");
        // Nor through a function pointer, at run time.
        let bundle = compile(&[(
            "membership.rhai",
            "fn membership(ctx) {\n  let f = Fn(\"time\" + \"stamp\");\n  f.call()\n}\n",
        )])
        .unwrap();
        let input = sample();
        let err = membership::membership_policy(&bundle, input.clusters[0].as_ref())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no clock"), "{err}");
    }

    #[test]
    fn import_is_refused_with_its_place() {
        let err = compile_error(&[(
            "restart.rhai",
            "fn restart_order(ctx) {\n    import \"helpers\" as h;\n    []\n}\n",
        )]);
        assert!(err.contains("my/restart.rhai:2:5:"), "{err}");
        assert!(err.contains("policies may not import modules"), "{err}");
    }

    #[test]
    fn the_map_size_limit_holds_for_index_assignment() {
        let err = plan_error(&[(
            "config.rhai",
            "fn config(ctx) {\n    let m = #{};\n    for i in 0..20000 {\n        m[`k${i}`] = i;\n    }\n    #{ defaults: m }\n}\n",
        )]);
        assert!(err.contains("my/config.rhai:4:9:"), "{err}");
        assert!(
            err.contains("object maps may hold at most 10000 entries"),
            "{err}"
        );
    }

    #[test]
    fn runaway_recursion_is_reported_with_its_place() {
        let err = plan_error(&[(
            "host_init.rhai",
            "fn host_init(ctx) { deeper(0) }\n\nfn deeper(n) {\n    deeper(n + 1)\n}\n",
        )]);
        assert!(err.contains("my/host_init.rhai:4:"), "{err}");
        assert!(
            err.contains("call depth above 32: a policy recursed too deep"),
            "{err}"
        );
    }

    #[test]
    fn a_runaway_loop_in_any_policy_is_stopped_and_located() {
        for (file, function) in [("config.rhai", "config"), ("shape.rhai", "shape")] {
            let source = format!(
                "fn {function}(ctx) {{\n    let m = #{{}};\n    let i = 0;\n    loop {{\n        m[`k${{i % 100}}`] = ctx;\n        i += 1;\n    }}\n}}\n"
            );
            let started = std::time::Instant::now();
            let err = plan_error(&[(file, source.as_str())]);
            assert!(err.contains(&format!("my/{file}:")), "{err}");
            assert!(err.contains("does a loop never end?"), "{err}");
            // Debug builds allow ten times the release limit; allow for a
            // busy machine on top.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{file}: stopped only after {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_broken_membership_policy_fails_the_sample_canary() {
        let bundle = compile(&[(
            "membership.rhai",
            "fn membership(ctx) { #{ decommission_be: \"yes\" } }\n",
        )])
        .unwrap();
        let err = doris_operator::samples::canary(&bundle).unwrap_err();
        assert!(err.contains("my/membership.rhai"), "{err}");
        assert!(err.contains("decommission_be"), "{err}");
    }

    #[test]
    fn a_bad_init_container_is_reported_against_host_init() {
        let err = plan_error(&[(
            "host_init.rhai",
            "fn host_init(ctx) { [#{ name: \"tune\", image: \"busybox\", comand: [\"sh\"] }] }\n",
        )]);
        assert!(err.contains("my/host_init.rhai"), "{err}");
        assert!(err.contains("init container 1 (\"tune\")"), "{err}");
        assert!(err.contains("unknown field `comand`"), "{err}");
        assert!(!err.contains("shape.rhai"), "{err}");
    }

    #[test]
    fn a_duplicate_object_names_the_template_that_made_it() {
        let err = plan_error(&[(
            "extra.yaml.j2",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ names.internal_service }}\nspec:\n  selector: {{ selector | tojson }}\n",
        )]);
        assert!(err.contains("my/extra.yaml.j2"), "{err}");
        assert!(
            err.contains("templates/services.yaml.j2 also makes one"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_drain_annotation_names_the_annotation() {
        let bundle = ConventionBundle::embedded().unwrap();
        let doris_operator::cluster::Cluster::Doris(mut cluster) = sample().clusters.remove(0);
        cluster.metadata.annotations = Some(
            [(
                "doris.selectdb.com/drain-seconds".to_string(),
                "abc".to_string(),
            )]
            .into(),
        );
        let cluster = doris_operator::cluster::ClusterRef::Doris(&cluster);
        let candidates = restart::full_restart_candidates(cluster);
        let err = restart::plan_restart(&bundle, cluster, "test", &candidates).unwrap_err();
        assert!(err.in_input, "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "metadata.annotations[\"doris.selectdb.com/drain-seconds\"]: \"abc\" is not a whole number"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_undefined_value_says_which_policy_should_return_it() {
        let err = plan_error(&[(
            "extra.yaml.j2",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ values.extra_name }}\n",
        )]);
        assert!(err.contains("my/extra.yaml.j2:4:"), "{err}");
        assert!(err.contains("`values.extra_name` is undefined"), "{err}");
        assert!(err.contains("policies/shape.rhai"), "{err}");
    }

    #[test]
    fn manifest_templates_render_plain_text() {
        let bundle = compile(&[(
            "pdb.yaml.j2",
            "{% if component == \"be\" %}\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {{ names.statefulset }}-pdb\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels: {{ selector | tojson }}\n{% endif %}\n",
        )])
        .unwrap();
        let input = sample();
        let planned = plan(
            &bundle,
            PlanInput {
                cluster: input.clusters[0].as_ref(),
                config_maps: &BTreeMap::new(),
                secret_keys: &Default::default(),
            },
        )
        .unwrap();
        let pdb = planned
            .objects
            .iter()
            .find(|o| o["kind"] == "PodDisruptionBudget")
            .expect("the PDB is planned");
        let name = input.clusters[0].as_ref().name();
        assert_eq!(pdb["metadata"]["name"], format!("{name}-be-pdb"));
    }

    #[test]
    fn invalid_yaml_from_a_template_names_the_template_line() {
        let err = plan_error(&[(
            "extra.yaml.j2",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  note: {{ names.statefulset }}: here\n",
        )]);
        assert!(err.contains("my/extra.yaml.j2:6:"), "{err}");
        assert!(err.contains("not valid YAML"), "{err}");
        assert!(err.contains("-fe: here"), "{err}");
    }

    #[test]
    fn an_object_of_a_kind_nobody_serves_is_refused() {
        let err = plan_error(&[(
            "extra.yaml.j2",
            "apiVersion: v1\nkind: Servce\nmetadata:\n  name: {{ names.statefulset }}-x\n",
        )]);
        assert!(err.contains("my/extra.yaml.j2"), "{err}");
        assert!(err.contains("v1 Servce"), "{err}");
        assert!(err.contains("cannot check"), "{err}");
    }
}
