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
