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

/// Where the namespace forbids privilege, BEs get a check instead of a
/// privileged sysctl container, safe sysctls, and a user's initialization
/// without privilege; under restricted the check meets every rule.
#[test]
fn host_init_follows_the_namespace_pod_security_level() {
    let b = bundle();
    let spec = json!({"image": "be:1", "systemInitialization": {"command": ["true"]}});
    for level in ["baseline", "restricted"] {
        let mut ctx = base_ctx("be", spec.clone());
        ctx["pod_security"] = json!(level);
        let out = b.call_json("host_init.rhai", "host_init", &ctx).unwrap();
        let init = out["init_containers"].as_array().unwrap();
        let names: Vec<_> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["host-check", "init"], "{level}");
        assert!(
            !out.to_string().contains("\"privileged\":true"),
            "{level}: {out}"
        );
        let check = &init[0];
        assert_eq!(check["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(check["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            check["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(
            check["securityContext"]["runAsNonRoot"] == true,
            level == "restricted"
        );
        assert_eq!(
            out["sysctls"],
            json!([{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}])
        );
    }
    let mut fe = base_ctx("fe", json!({"image": "fe:1"}));
    fe["pod_security"] = json!("baseline");
    assert_eq!(
        b.call_json("host_init.rhai", "host_init", &fe).unwrap(),
        json!([])
    );
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

// ------------------------------------------ DorisDisaggregatedCluster parts

/// The ctx of one part of a DorisDisaggregatedCluster named `c` in `ns`, as
/// the README documents it: `part` is "ms", "fe" or a compute group's name.
fn ddc_ctx(part: &str, spec: Value) -> Value {
    let component = match part {
        "ms" | "fe" => part,
        _ => "cg",
    };
    let (statefulset, internal, access) = match component {
        "ms" => ("c-ms".to_string(), "c-ms".to_string(), "c-ms".to_string()),
        "fe" => (
            "c-fe".to_string(),
            "c-fe-internal".to_string(),
            "c-fe".to_string(),
        ),
        _ => (
            format!("c-{part}"),
            format!("c-{part}"),
            format!("c-{part}-external"),
        ),
    };
    let file = match component {
        "ms" => "doris_cloud.conf",
        "fe" => "fe.conf",
        _ => "be.conf",
    };
    let mut disaggregated = json!({
        "fdb_endpoint": "docker:docker@10.0.0.1:4500",
        "ms_endpoint": "c-ms.ns:5000",
        "cluster_id": "1234567890",
        "fe_address": "c-fe.ns",
        "fe_query_port": 9030,
    });
    if component == "cg" {
        disaggregated["compute_group_name"] = json!(part.replace('-', "_"));
        disaggregated["unique_id"] = json!(part.replace('-', "_"));
    }
    json!({
        "kind": "DorisDisaggregatedCluster",
        "component": component,
        "part": part,
        "spec": spec,
        "cluster": {"name": "c", "namespace": "ns", "labels": {}, "annotations": {}, "spec": {}},
        "names": {
            "statefulset": statefulset,
            "internal_service": internal,
            "access_service": access,
            "config_map": format!("{statefulset}-conf"),
            "fe_access_service": "c-fe",
            "fe_internal_service": "c-fe-internal",
            "ms_service": "c-ms",
        },
        "selector": {
            "app.doris.ownerreference/name": format!("c-{part}"),
            "app.kubernetes.io/component": part,
            "app.doris.disaggregated.cluster": "c",
        },
        "config": {"file": file, "source": null, "mount_path": "/etc/doris", "user": {},
                   "values": {}, "files": {}, "hash": "h"},
        "fe_config": {"query_port": "9030", "enable_fqdn_mode": "true"},
        "host_init": [],
        "mounts": [{"path": "/etc/doris", "sources": [
            {"kind": "configMap", "name": format!("{statefulset}-conf"), "field": "configuration"}
        ]}],
        "disaggregated": disaggregated,
    })
}

fn pod_spec(shape: &Value) -> &Value {
    &statefulset(shape)["spec"]["template"]["spec"]
}

fn volume<'a>(shape: &'a Value, name: &str) -> Option<&'a Value> {
    pod_spec(shape)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
}

/// (volume name, mount path) of the main container's mounts.
fn mounts(shape: &Value) -> Vec<(String, String)> {
    container(shape)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn claim_names(shape: &Value) -> Vec<String> {
    statefulset(shape)["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|claims| {
            claims
                .iter()
                .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn env_names(c: &Value) -> Vec<&str> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

/// The Services services.yaml.j2 makes for a part, as JSON.
fn services(b: &ConventionBundle, ctx: &Value, shape: &Value) -> Vec<Value> {
    let mut tctx = ctx.clone();
    tctx["values"] = shape["values"].clone();
    let text = b
        .render_template(
            "services.yaml.j2",
            &minijinja::Value::from(minijinja::value::Serde(&tctx)),
        )
        .unwrap();
    text.split("\n---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| serde_norway::from_str::<Value>(doc).unwrap())
        .collect()
}

#[test]
fn a_ctx_without_kind_is_shaped_as_a_doriscluster() {
    let b = bundle();
    for component in ["fe", "be", "cn", "broker"] {
        let spec = json!({"image": "x", "persistentVolumes": [{"persistentVolumeClaimSpec": {}}]});
        let without = base_ctx(component, spec);
        let mut with = without.clone();
        with["kind"] = json!("DorisCluster");
        for (file, function) in [
            ("config.rhai", "config"),
            ("host_init.rhai", "host_init"),
            ("shape.rhai", "shape"),
        ] {
            let a = b.call_json(file, function, &without).unwrap();
            let b2 = b.call_json(file, function, &with).unwrap();
            assert_eq!(a, b2, "{component} {file}");
        }
    }
    // No kind: the DorisCluster shape (container named after the component).
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &base_ctx("fe", json!({"image": "x"})),
        )
        .unwrap();
    assert_eq!(container(&shape)["name"], "fe");
    assert_eq!(
        container(&shape)["command"][0],
        "/opt/apache-doris/fe_entrypoint.sh"
    );
}

#[test]
fn config_of_disaggregated_parts_runs_in_cloud_mode() {
    let b = bundle();
    let ms = b
        .call_json(
            "config.rhai",
            "config",
            &ddc_ctx("ms", json!({"image": "ms:3"})),
        )
        .unwrap();
    assert_eq!(ms["defaults"]["brpc_listen_port"], 5000);
    assert_eq!(
        ms["overrides"]["fdb_cluster"],
        "docker:docker@10.0.0.1:4500"
    );

    let fe = b
        .call_json(
            "config.rhai",
            "config",
            &ddc_ctx("fe", json!({"image": "fe:3"})),
        )
        .unwrap();
    assert_eq!(fe["defaults"]["query_port"], 9030);
    assert_eq!(fe["defaults"]["enable_fqdn_mode"], true);
    assert_eq!(fe["overrides"]["deploy_mode"], "cloud");
    assert_eq!(fe["overrides"]["meta_service_endpoint"], "c-ms.ns:5000");
    assert_eq!(fe["overrides"]["cluster_id"], "1234567890");
    // The pod's variable wins, and so does the file that says what it runs with.
    let fe = b
        .call_json(
            "config.rhai",
            "config",
            &ddc_ctx(
                "fe",
                json!({"image": "fe:3", "envVars": [{"name": "MS_ENDPOINT", "value": "other-ms:5000"}]}),
            ),
        )
        .unwrap();
    assert_eq!(fe["overrides"]["meta_service_endpoint"], "other-ms:5000");

    let cg = b
        .call_json(
            "config.rhai",
            "config",
            &ddc_ctx("cg1", json!({"image": "be:3"})),
        )
        .unwrap();
    assert_eq!(cg["overrides"]["deploy_mode"], "cloud");
    assert_eq!(cg["defaults"]["heartbeat_service_port"], 9050);
    let cache = cg["defaults"]["file_cache_path"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(cache).unwrap();
    assert_eq!(parsed[0]["path"], "/opt/apache-doris/be/file_cache");
    assert!(cg["defaults"].get("be_node_role").is_none());
}

#[test]
fn host_init_tunes_compute_groups_like_bes() {
    let b = bundle();
    let cg = b
        .call_json(
            "host_init.rhai",
            "host_init",
            &ddc_ctx("cg1", json!({"image": "be:3"})),
        )
        .unwrap();
    assert_eq!(cg[0]["name"], "default-init");
    assert_eq!(cg[0]["image"], "be:3");
    assert_eq!(cg[0]["securityContext"]["privileged"], true);
    let skipped = b
        .call_json(
            "host_init.rhai",
            "host_init",
            &ddc_ctx(
                "cg1",
                json!({"image": "be:3", "skipDefaultSystemInit": true}),
            ),
        )
        .unwrap();
    assert_eq!(skipped, json!([]));
    for part in ["ms", "fe"] {
        let out = b
            .call_json(
                "host_init.rhai",
                "host_init",
                &ddc_ctx(part, json!({"image": "x"})),
            )
            .unwrap();
        assert_eq!(out, json!([]), "{part}");
        let out = b
            .call_json(
                "host_init.rhai",
                "host_init",
                &ddc_ctx(
                    part,
                    json!({"image": "x", "systemInitialization": {"args": ["a"]}}),
                ),
            )
            .unwrap();
        assert_eq!(out[0]["name"], "init", "{part}");
    }
}

#[test]
fn shape_meta_service_runs_the_disaggregated_image_with_one_service() {
    let b = bundle();
    let mut ctx = ddc_ctx(
        "ms",
        json!({"image": "ms:3", "service": {"type": "NodePort", "portMaps": [{"nodePort": 31500, "targetPort": 5001}]}}),
    );
    ctx["config"]["values"] = json!({"brpc_listen_port": "5001"});
    ctx["cluster"]["spec"] = json!({"authSecret": "auth"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let sts = statefulset(&shape);
    assert_eq!(sts["metadata"]["name"], "c-ms");
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(sts["spec"]["serviceName"], "c-ms");
    assert_eq!(sts["spec"]["selector"]["matchLabels"], ctx["selector"]);
    let c = container(&shape);
    assert_eq!(c["name"], "metaservice");
    assert_eq!(
        c["command"],
        json!(["/opt/apache-doris/ms_disaggregated_entrypoint.sh"])
    );
    assert!(c["args"].is_null());
    assert_eq!(
        c["lifecycle"]["preStop"]["exec"]["command"][0],
        "/opt/apache-doris/ms_disaggregated_prestop.sh"
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "brpc-port", "containerPort": 5001, "protocol": "TCP"}])
    );
    assert_eq!(
        c["livenessProbe"]["exec"]["command"],
        json!(["/opt/apache-doris/ms_disaggregated_probe.sh", "alive"])
    );
    assert_eq!(
        c["readinessProbe"]["exec"]["command"],
        json!(["/opt/apache-doris/ms_disaggregated_probe.sh", "ready"])
    );
    assert_eq!(
        env(c, "FDB_ENDPOINT").unwrap(),
        "docker:docker@10.0.0.1:4500"
    );
    assert_eq!(env(c, "CONFIGMAP_PATH").unwrap(), "/etc/doris");
    assert!(env(c, "ENV_FE_ADDR").is_none());
    // Logs in an emptyDir at the stock log_dir (./log/ under the home).
    assert!(volume(&shape, "ms-log").unwrap()["emptyDir"].is_object());
    assert!(mounts(&shape).contains(&("ms-log".into(), "/opt/apache-doris/ms/log".into())));
    // The meta service reads no management account.
    assert!(volume(&shape, "basic-auth").is_none());
    assert!(pod_spec(&shape)["terminationGracePeriodSeconds"].is_null());

    let svcs = services(&b, &ctx, &shape);
    assert_eq!(svcs.len(), 1, "{svcs:?}");
    assert_eq!(svcs[0]["metadata"]["name"], "c-ms");
    assert_eq!(svcs[0]["spec"]["type"], "NodePort");
    assert!(svcs[0]["spec"].get("clusterIP").is_none());
    assert_eq!(svcs[0]["spec"]["selector"], ctx["selector"]);
    assert_eq!(
        svcs[0]["spec"]["ports"],
        json!([{"name": "brpc-port", "port": 5001, "targetPort": 5001, "nodePort": 31500}])
    );
}

#[test]
fn shape_disaggregated_fe_finds_the_meta_service_and_keeps_meta() {
    let b = bundle();
    let mut ctx = ddc_ctx(
        "fe",
        json!({"image": "fe:3", "labels": {"team": "a", "app.kubernetes.io/component": "x"},
               "envVars": [{"name": "ELECT_NUMBER", "value": "3"}, {"name": "TZ", "value": "UTC"}]}),
    );
    // Keys as the ctx has them: lower-cased.
    ctx["config"]["values"] = json!({"log_dir": "/var/log/doris/", "meta_dir": "/data/doris-meta"});
    ctx["cluster"]["spec"] = json!({"authSecret": "auth"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let sts = statefulset(&shape);
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(sts["spec"]["serviceName"], "c-fe-internal");
    assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    let labels = &sts["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "a");
    assert_eq!(labels["app.doris.disaggregated.cluster"], "c");
    // The selector's labels stay, whatever the user's labels say.
    assert_eq!(labels["app.kubernetes.io/component"], "fe");
    // A configuration change restarts the FE.
    assert_eq!(
        sts["spec"]["template"]["metadata"]["annotations"]["doris.selectdb.com/config-hash"],
        "h"
    );
    let c = container(&shape);
    assert_eq!(c["name"], "fe");
    assert_eq!(
        c["command"],
        json!(["/opt/apache-doris/fe_disaggregated_entrypoint.sh"])
    );
    assert_eq!(c["args"], json!(["$(ENV_FE_ADDR)"]));
    assert_eq!(env(c, "MS_ENDPOINT").unwrap(), "c-ms.ns:5000");
    assert_eq!(env(c, "CLUSTER_ID").unwrap(), "1234567890");
    assert_eq!(env(c, "STATEFULSET_NAME").unwrap(), "c-fe");
    assert_eq!(env(c, "ENV_FE_ADDR").unwrap(), "c-fe.ns");
    assert_eq!(env(c, "FE_QUERY_PORT").unwrap(), "9030");
    // The user's ELECT_NUMBER replaces the default (1) in place.
    assert_eq!(env(c, "ELECT_NUMBER").unwrap(), "3");
    let names = env_names(c);
    assert_eq!(names.iter().filter(|n| **n == "ELECT_NUMBER").count(), 1);
    assert_eq!(names.last(), Some(&"TZ"));
    assert_eq!(
        c["readinessProbe"]["exec"]["command"],
        json!(["/opt/apache-doris/fe_disaggregated_probe.sh", "ready"])
    );
    assert_eq!(c["startupProbe"]["failureThreshold"], 72);
    assert_eq!(pod_spec(&shape)["terminationGracePeriodSeconds"], 330);
    let m = mounts(&shape);
    assert!(m.contains(&("fe-log".into(), "/var/log/doris".into())));
    assert!(m.contains(&("fe-meta".into(), "/data/doris-meta".into())));
    assert!(m.contains(&("basic-auth".into(), "/etc/basic_auth".into())));
    assert!(claim_names(&shape).is_empty());

    let mut ctx = ddc_ctx("fe", json!({"image": "fe:3"}));
    ctx["spec"]["electionNumber"] = json!(3);
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(env(container(&shape), "ELECT_NUMBER").unwrap(), "3");
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &ddc_ctx("fe", json!({"image": "fe:3"})),
        )
        .unwrap();
    assert_eq!(env(container(&shape), "ELECT_NUMBER").unwrap(), "1");

    let svcs = services(&b, &ctx, &shape);
    let names: Vec<_> = svcs
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c-fe-internal", "c-fe"]);
    assert_eq!(svcs[0]["spec"]["clusterIP"], "None");
    assert_eq!(svcs[0]["spec"]["ports"][0]["port"], 9030);
    let ports: Vec<_> = svcs[1]["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [8030, 9020, 9030, 9010]);
}

#[test]
fn shape_disaggregated_fe_persistent_volumes_cover_meta_and_logs() {
    let b = bundle();
    let template =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}}});
    let logs =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "300Gi"}}});
    let ctx = ddc_ctx(
        "fe",
        json!({"image": "fe:3", "persistentVolumes": [
            {"mountPaths": ["/opt/apache-doris/fe/log"], "persistentVolumeClaimSpec": logs},
            {"persistentVolumeClaimSpec": template, "provisioner": "operator", "annotations": {"a": "b"}},
        ]}),
    );
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(claim_names(&shape), ["log", "doris-meta"]);
    let claims = statefulset(&shape)["spec"]["volumeClaimTemplates"].clone();
    assert_eq!(claims[0]["spec"], logs);
    assert!(claims[0]["metadata"]["annotations"].is_null());
    assert_eq!(claims[1]["spec"], template);
    assert_eq!(
        claims[1]["metadata"]["annotations"],
        json!({"apache.doris.org/pvc-manager": "operator", "a": "b"})
    );
    let m = mounts(&shape);
    assert!(m.contains(&("log".into(), "/opt/apache-doris/fe/log".into())));
    assert!(m.contains(&(
        "doris-meta".into(),
        "/opt/apache-doris/fe/doris-meta".into()
    )));
    assert!(volume(&shape, "fe-meta").is_none() && volume(&shape, "fe-log").is_none());

    // logNotStore: the log gets no claim, only an emptyDir.
    let ctx = ddc_ctx(
        "fe",
        json!({"image": "fe:3", "logNotStore": true, "persistentVolumes": [{"persistentVolumeClaimSpec": template}]}),
    );
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(claim_names(&shape), ["doris-meta"]);
    assert!(volume(&shape, "fe-log").unwrap()["emptyDir"].is_object());

    // The deprecated single persistentVolume: claims named as apache/doris-operator names them.
    let ctx = ddc_ctx(
        "fe",
        json!({"image": "fe:3", "persistentVolume": {"persistentVolumeClaimSpec": template}}),
    );
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(claim_names(&shape), ["fe-log", "fe-meta"]);
}

#[test]
fn shape_compute_group_registers_with_the_fe_and_caches_where_be_conf_says() {
    let b = bundle();
    let mut ctx = ddc_ctx(
        "cg-a",
        json!({"uniqueId": "cg_a", "image": "be:3", "replicas": 3, "enableWorkloadGroup": true,
               "skipDefaultSystemInit": true, "autoResolveLimitCPU": true, "limits": {"cpu": 8},
               "service": {"type": "NodePort", "portMaps": [{"nodePort": 31040, "targetPort": 8040}]}}),
    );
    ctx["config"]["values"] = json!({"file_cache_path":
        r#"[{"path":"/data1/cache","total_size":1000},{"path":"/data2/cache","total_size":1000}]"#});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let sts = statefulset(&shape);
    assert_eq!(sts["metadata"]["name"], "c-cg-a");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["serviceName"], "c-cg-a");
    let c = container(&shape);
    assert_eq!(c["name"], "compute");
    assert_eq!(
        c["command"],
        json!(["/opt/apache-doris/be_disaggregated_entrypoint.sh"])
    );
    assert_eq!(c["args"], json!(["$(ENV_FE_ADDR)"]));
    assert_eq!(env(c, "COMPUTE_GROUP_NAME").unwrap(), "cg_a");
    assert_eq!(env(c, "STATEFULSET_NAME").unwrap(), "c-cg-a");
    assert_eq!(env(c, "HOST_TYPE").unwrap(), "FQDN");
    assert_eq!(env(c, "ENV_FE_ADDR").unwrap(), "c-fe.ns");
    assert_eq!(env(c, "FE_QUERY_PORT").unwrap(), "9030");
    assert_eq!(env(c, "ENABLE_WORKLOAD_GROUP").unwrap(), "true");
    assert_eq!(env(c, "SKIP_CHECK_ULIMIT").unwrap(), "true");
    assert_eq!(env(c, "BE_CPU_LIMIT").unwrap(), "8");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(
        c["livenessProbe"]["exec"]["command"],
        json!(["/opt/apache-doris/be_disaggregated_probe.sh", "alive"])
    );
    assert_eq!(pod_spec(&shape)["terminationGracePeriodSeconds"], 200);
    let m = mounts(&shape);
    assert!(m.contains(&("be-log".into(), "/opt/apache-doris/be/log".into())));
    assert!(m.contains(&("be-storage0".into(), "/data1/cache".into())));
    assert!(m.contains(&("be-storage1".into(), "/data2/cache".into())));
    assert!(volume(&shape, "be-storage1").unwrap()["emptyDir"].is_object());

    let svcs = services(&b, &ctx, &shape);
    let names: Vec<_> = svcs
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c-cg-a", "c-cg-a-external"]);
    assert_eq!(svcs[0]["spec"]["clusterIP"], "None");
    assert_eq!(svcs[0]["spec"]["ports"][0]["name"], "heartbeat-port");
    assert_eq!(svcs[1]["spec"]["type"], "NodePort");
    let web = svcs[1]["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 8040)
        .unwrap();
    assert_eq!(web["nodePort"], 31040);

    // A template persistent volume: one claim per cache path and the log,
    // named after the path (made unique with the parent directory).
    ctx["spec"]["persistentVolumes"] =
        json!([{"persistentVolumeClaimSpec": {"resources": {"requests": {"storage": "500Gi"}}}}]);
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(claim_names(&shape), ["log", "data2-cache", "cache"]);
    let m = mounts(&shape);
    assert!(m.contains(&("cache".into(), "/data1/cache".into())));
    assert!(m.contains(&("data2-cache".into(), "/data2/cache".into())));
    assert!(m.contains(&("log".into(), "/opt/apache-doris/be/log".into())));
    assert!(volume(&shape, "be-storage0").is_none());

    // Without a be.conf file_cache_path: the stock cache directory.
    let shape = b
        .call_json(
            "shape.rhai",
            "shape",
            &ddc_ctx(
                "cg1",
                json!({"image": "be:3", "persistentVolume": {"mountPaths": ["/extra"]}}),
            ),
        )
        .unwrap();
    assert_eq!(
        claim_names(&shape),
        ["be-log", "be-storage0", "be-storage1"]
    );
    let m = mounts(&shape);
    assert!(m.contains(&(
        "be-storage0".into(),
        "/opt/apache-doris/be/file_cache".into()
    )));
    assert!(m.contains(&("be-storage1".into(), "/extra".into())));
}

#[test]
fn shape_compute_group_takes_the_common_spec_fields() {
    let b = bundle();
    let spec = json!({
        "uniqueId": "cg_b", "image": "be:3", "imagePullSecrets": [{"name": "pull"}],
        "requests": {"cpu": 4, "memory": "8Gi"}, "limits": {"cpu": 8},
        "annotations": {"note": "x"}, "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "hostAliases": [{"ip": "10.0.0.9", "hostnames": ["s3.local"]}],
        "serviceAccount": "doris", "securityContext": {"runAsUser": 1000},
        "containerSecurityContext": {"runAsNonRoot": true},
        "startTimeout": 600, "liveTimeout": 30,
        "readinessProbePolicy": {"timeoutSeconds": 9, "failureThreshold": 5},
    });
    let mut ctx = ddc_ctx("cg-b", spec);
    ctx["host_init"] = json!([{"name": "default-init", "image": "be:3"}]);
    // Without the compute group's name in ctx, the uniqueId gives it.
    ctx["disaggregated"]
        .as_object_mut()
        .unwrap()
        .remove("compute_group_name");
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    let pod = pod_spec(&shape);
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "pull"}]));
    assert_eq!(pod["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(pod["tolerations"][0]["key"], "k");
    assert_eq!(pod["hostAliases"][0]["hostnames"][0], "s3.local");
    assert_eq!(pod["serviceAccountName"], "doris");
    assert_eq!(pod["securityContext"]["runAsUser"], 1000);
    assert_eq!(
        pod["initContainers"][0]["securityContext"]["runAsNonRoot"],
        true
    );
    assert_eq!(
        statefulset(&shape)["spec"]["template"]["metadata"]["annotations"]["note"],
        "x"
    );
    let c = container(&shape);
    assert_eq!(c["resources"]["requests"]["memory"], "8Gi");
    assert_eq!(c["resources"]["limits"]["cpu"], 8);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["startupProbe"]["failureThreshold"], 120);
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 30);
    assert_eq!(c["readinessProbe"]["timeoutSeconds"], 9);
    assert_eq!(c["readinessProbe"]["failureThreshold"], 5);
    assert_eq!(env(c, "COMPUTE_GROUP_NAME").unwrap(), "cg_b");
    // Spread over hosts by the group's own pods.
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["labelSelector"]["matchLabels"],
        ctx["selector"]
    );
    // A compute group answers to the debug annotation by its name.
    ctx["cluster"]["annotations"] = json!({"doris.selectdb.com/debug": "cg-b"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(container(&shape)["command"][0], "/bin/sh");
}

#[test]
fn a_file_cache_path_that_is_not_json_names_the_setting() {
    let b = bundle();
    let mut ctx = ddc_ctx("cg1", json!({"image": "be:3"}));
    ctx["config"]["values"] = json!({"file_cache_path": "/data/cache"});
    ctx["config"]["source"] = json!("be-conf");
    let err = b.call_json("shape.rhai", "shape", &ctx).unwrap_err();
    assert!(err.in_input, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("file_cache_path in be.conf of ConfigMap be-conf"),
        "{text}"
    );
    assert!(
        text.contains("\"/data/cache\" is not a JSON list"),
        "{text}"
    );
}

#[test]
fn shape_compute_group_registers_by_ip_when_the_fe_does_not_use_names() {
    let b = bundle();
    let mut ctx = ddc_ctx("cg1", json!({"image": "be:3"}));
    ctx["fe_config"] = json!({"enable_fqdn_mode": "false"});
    let shape = b.call_json("shape.rhai", "shape", &ctx).unwrap();
    assert_eq!(env(container(&shape), "HOST_TYPE").unwrap(), "IP");
}

#[test]
fn restart_order_of_a_disaggregated_cluster_is_ms_compute_groups_then_fe() {
    let b = bundle();
    let pod = |component: &str, part: &str, ordinal: i64, role: Option<&str>| {
        json!({"component": component, "part": part, "pod": format!("c-{part}-{ordinal}"),
               "ordinal": ordinal, "role": role, "ready": true})
    };
    let ctx = json!({
        "reason": "upgrade",
        "cluster": {"name": "c", "namespace": "ns", "annotations": {}, "spec": {}},
        "pods": [
            pod("fe", "fe", 0, Some("master")), pod("fe", "fe", 1, Some("follower")),
            pod("fe", "fe", 2, Some("observer")),
            pod("cg", "cg2", 0, None), pod("cg", "cg1", 0, None), pod("cg", "cg1", 1, None),
            pod("ms", "ms", 0, None), pod("ms", "ms", 1, None),
        ],
    });
    let steps = b.call_json("restart.rhai", "restart_order", &ctx).unwrap();
    let steps = steps.as_array().unwrap();
    let order: Vec<_> = steps
        .iter()
        .map(|s| s["pods"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "c-ms-1", "c-ms-0", "c-cg1-1", "c-cg1-0", "c-cg2-0", "c-fe-2", "c-fe-1", "c-fe-0"
        ]
    );
    assert!(
        steps
            .iter()
            .all(|s| s["pods"].as_array().unwrap().len() == 1)
    );
    assert_eq!(steps[0]["wait_for"], json!(["pod_ready"]));
    assert_eq!(steps[0]["drain_seconds"], 0);
    assert_eq!(
        steps[2]["wait_for"],
        json!(["pod_ready", "fe_reports_alive"])
    );
    assert_eq!(steps[2]["drain_seconds"], 30);
}

#[test]
fn membership_of_a_disaggregated_cluster_follows_enable_decommission() {
    let b = bundle();
    let ctx = |kind: Option<&str>, spec: Value| {
        let mut ctx =
            json!({"cluster": {"name": "c", "namespace": "ns", "annotations": {}, "spec": spec}});
        if let Some(kind) = kind {
            ctx["kind"] = json!(kind);
        }
        ctx
    };
    let decommission = |ctx: Value| {
        b.call_json("membership.rhai", "membership", &ctx).unwrap()["decommission_be"].clone()
    };
    let ddc = Some("DorisDisaggregatedCluster");
    assert_eq!(
        decommission(ctx(ddc, json!({"enableDecommission": true}))),
        true
    );
    assert_eq!(
        decommission(ctx(ddc, json!({"enableDecommission": false}))),
        false
    );
    assert_eq!(decommission(ctx(ddc, json!({}))), false);
    // A DorisCluster always decommissions, with or without kind.
    assert_eq!(decommission(ctx(Some("DorisCluster"), json!({}))), true);
    assert_eq!(
        decommission(ctx(None, json!({"enableDecommission": false}))),
        true
    );
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
                pod_security: Default::default(),
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
    fn a_broken_config_change_policy_fails_the_sample_canary() {
        let stock = include_str!("../policies/config.rhai");
        let broken = stock.replace(
            "if ctx.change.mutable { \"live\" } else { \"restart\" }",
            "\"soon\"",
        );
        assert_ne!(stock, broken);
        let bundle = compile(&[("config.rhai", broken.as_str())]).unwrap();
        let err = doris_operator::samples::canary(&bundle).unwrap_err();
        assert!(err.contains("my/config.rhai"), "{err}");
        assert!(
            err.contains("must return \"live\", \"restart\" or \"ignore\", got \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn configuration_changes_go_live_when_mutable_only_with_the_restart_switch() {
        use doris_operator::plan::live_config::{Change, Decision, decide};
        let bundle = ConventionBundle::embedded().unwrap();
        let doris_operator::cluster::Cluster::Doris(mut cluster) = sample().clusters.remove(0)
        else {
            panic!("the sample is a DorisCluster")
        };
        let change = |key: &str, new: Option<&str>| Change {
            file: "be.conf".into(),
            key: key.into(),
            old: Some("1".into()),
            new: new.map(Into::into),
        };
        let changes = [
            change("disable_auto_compaction", Some("true")),
            change("be_port", Some("9061")),
            change("streaming_load_max_mb", None),
        ];
        let mutable = |k: &str| k != "be_port";
        let decided = |cluster: &doris_operator::crd::DorisCluster| {
            let cluster = doris_operator::cluster::ClusterRef::Doris(cluster);
            let part = cluster
                .parts()
                .into_iter()
                .find(|p| p.name == "be")
                .unwrap();
            decide(&bundle, cluster, &part, &changes, &mutable).unwrap()
        };
        assert_eq!(decided(&cluster), vec![Decision::Ignore; 3]);
        cluster.spec.enable_restart_when_config_change = Some(true);
        // A removed key cannot be unset on a running BE: it restarts.
        assert_eq!(
            decided(&cluster),
            vec![Decision::Live, Decision::Restart, Decision::Restart]
        );
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
        let doris_operator::cluster::Cluster::Doris(mut cluster) = sample().clusters.remove(0)
        else {
            panic!("the sample is a DorisCluster")
        };
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
                pod_security: Default::default(),
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

/// A runaway loop is located in the file the user wrote even when the
/// policy is called with a large ctx (limits raised by its size): here a
/// restart plan of 3,000 BEs.
#[test]
fn a_runaway_loop_with_a_large_ctx_is_located() {
    use doris_operator::conventions::ConventionSources;
    use doris_operator::plan::restart::{full_restart_candidates, plan_restart};
    let yaml = "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\n\
                metadata: {name: big, namespace: doris}\n\
                spec:\n  feSpec: {replicas: 3, image: apache/doris:fe-2.1.8}\n\
                \x20 beSpec: {replicas: 3000, image: apache/doris:be-2.1.8}\n";
    let cluster = doris_operator::render::read_input("big.yaml", yaml)
        .unwrap()
        .clusters
        .remove(0);
    let policy = "fn restart_order(ctx) {\n    let n = 0;\n    loop {\n        n += ctx.pods.len();\n    }\n}\n";
    let sources = ConventionSources::embedded().overlay_files("team", [("restart.rhai", policy)]);
    let bundle = ConventionBundle::compile(sources).unwrap();
    let cluster = cluster.as_ref();
    let candidates = full_restart_candidates(cluster);
    let err = plan_restart(&bundle, cluster, "rev", &candidates)
        .unwrap_err()
        .to_string();
    assert!(err.contains("restart.rhai:4:"), "{err}");
    assert!(err.contains("does a loop never end?"), "{err}");
}
