//! The committed CRDs match the Rust types, stay small enough for
//! client-side `kubectl apply`, and every example cluster is accepted.

use std::path::{Path, PathBuf};

use doris_operator::crd::{self, disaggregated, parse_cluster, parse_disaggregated_cluster};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const CRD_FILES: [&str; 2] = [
    "crds/doris.selectdb.com_dorisclusters.yaml",
    // The file name apache/doris-operator's install instructions use.
    "crds/doris.apache.com_dorisclusters.yaml",
];

/// Where the DorisDisaggregatedCluster CRD is committed (the name
/// apache/doris-operator gives it).
const DISAGGREGATED_CRD_FILE: &str =
    "crds/disaggregated.cluster.doris.com_dorisdisaggregatedclusters.yaml";

#[test]
fn committed_crds_match_the_types() {
    let files = CRD_FILES
        .iter()
        .map(|file| (*file, crd::crd_yaml()))
        .chain([(DISAGGREGATED_CRD_FILE, disaggregated::crd_yaml())]);
    for (file, generated) in files {
        let path = root().join(file);
        if std::env::var_os("UPDATE_CRDS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{file} is out of date: run `UPDATE_CRDS=1 cargo test --test crd` and commit it"
        );
    }
}

#[test]
fn crd_fits_client_side_apply() {
    for (text, crd) in [
        (crd::crd_yaml(), crd::crd()),
        (disaggregated::crd_yaml(), disaggregated::crd()),
    ] {
        let name = crd.metadata.name.clone().unwrap();
        // kubectl keeps the whole object as JSON in an annotation of at most 256 KiB.
        let json = serde_json::to_string(&crd).unwrap();
        assert!(
            json.len() < 128 * 1024,
            "{name} is {} bytes as JSON",
            json.len()
        );
        assert!(
            text.len() < 200 * 1024,
            "{name} is {} bytes as YAML",
            text.len()
        );
        assert!(!text.contains("$ref"), "a CRD schema cannot hold $ref");
        assert!(
            !text.contains("allOf"),
            "flattened fields must be plain properties"
        );
    }
}

#[test]
fn crd_command_prints_both_crds() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doris-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!("{}{}", crd::crd_yaml(), disaggregated::crd_yaml())
    );
    let names: Vec<String> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let crd = <serde_json::Value as serde::Deserialize>::deserialize(doc).unwrap();
            crd["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "dorisclusters.doris.selectdb.com",
            "dorisdisaggregatedclusters.disaggregated.cluster.doris.com"
        ]
    );
}

#[test]
fn disaggregated_crd_names_and_columns() {
    let crd = disaggregated::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("dorisdisaggregatedclusters.disaggregated.cluster.doris.com")
    );
    assert_eq!(crd.spec.names.short_names, Some(vec!["ddc".to_string()]));
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    // Its columns: kubectl_get_doris_lists_both_kinds_with_their_columns.
    // Only uniqueId is required, as in the peer's CRD.
    let schema = serde_json::to_value(&crd).unwrap();
    let spec = &schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec.get("required"), None);
    let group = &spec["properties"]["computeGroups"];
    assert_eq!(group["items"]["required"], serde_json::json!(["uniqueId"]));
    assert_eq!(
        group["x-kubernetes-list-map-keys"],
        serde_json::json!(["uniqueId"])
    );
    for part in ["metaService", "feSpec"] {
        assert_eq!(spec["properties"][part].get("required"), None, "{part}");
    }
}

#[test]
fn crd_names_match_the_peer_and_wide_columns_keep_its_columns() {
    let crd = crd::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("dorisclusters.doris.selectdb.com")
    );
    assert_eq!(crd.spec.names.short_names, Some(vec!["dcr".to_string()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| c.priority == Some(1))
        .map(|c| c.name.as_str())
        .collect();
    // The peer's phase columns stay, for `kubectl get dcr -o wide`.
    assert_eq!(
        columns,
        ["CN", "FeStatus", "BeStatus", "CnStatus", "BrokerStatus"]
    );
}

fn cluster_documents(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---")
        .filter(|d| d.contains("kind: DorisCluster"))
        .map(str::to_string)
        .collect()
}

fn example_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            example_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_example_is_accepted_and_round_trips() {
    let mut files = Vec::new();
    example_files(&root().join("examples"), &mut files);
    let mut seen = 0;
    for file in files {
        for doc in cluster_documents(&file) {
            let cluster = parse_cluster(&doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let again = serde_norway::to_string(&cluster).unwrap();
            let reparsed = parse_cluster(&again).unwrap();
            assert_eq!(reparsed.metadata, cluster.metadata, "{}", file.display());
            assert_eq!(reparsed.spec, cluster.spec, "{}", file.display());
            seen += 1;
        }
    }
    assert!(seen >= 8, "only {seen} example clusters");
}

#[test]
fn peer_fields_keep_their_json_names() {
    let doc = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata: {name: c}
spec:
  enableRestartWhenConfigChange: true
  beSpec:
    image: be
    autoResolveLimitCPU: true
    feAddress:
      ServiceName: fe-svc
    service:
      loadBalancerIP: 10.0.0.9
      servicePorts: [{nodePort: 30000, targetPort: 9060}]
"#;
    let cluster = parse_cluster(doc).unwrap();
    let be = cluster.spec.be_spec.as_ref().unwrap();
    assert_eq!(be.auto_resolve_limit_cpu, Some(true));
    assert_eq!(
        be.base.fe_address.as_ref().unwrap().service_name.as_deref(),
        Some("fe-svc")
    );
    let json = serde_json::to_value(&cluster).unwrap();
    assert_eq!(json["spec"]["beSpec"]["autoResolveLimitCPU"], true);
    assert_eq!(json["spec"]["beSpec"]["feAddress"]["ServiceName"], "fe-svc");
    assert_eq!(
        json["spec"]["beSpec"]["service"]["loadBalancerIP"],
        "10.0.0.9"
    );
}

#[test]
fn only_image_is_required_in_a_component() {
    let crd = serde_json::to_value(crd::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for component in ["feSpec", "beSpec", "cnSpec", "brokerSpec"] {
        assert_eq!(
            spec[component]["required"],
            serde_json::json!(["image"]),
            "{component}"
        );
        assert_eq!(
            spec[component]["properties"]["replicas"]["minimum"].as_f64(),
            Some(0.0),
            "{component}"
        );
    }
}

/// A large cluster as the API server returns it: every component with
/// several full volume claims, affinity, env, tolerations, managedFields and
/// status.
fn large_cluster() -> serde_json::Value {
    use serde_json::json;
    let claim = |size: &str| {
        json!({
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "fast-ssd",
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": size}, "limits": {"storage": size}},
            "selector": {
                "matchLabels": {"tier": "data"},
                "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]
            },
            "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "base"},
            "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "base"}
        })
    };
    let term = json!({
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["doris"]}]},
        "topologyKey": "kubernetes.io/hostname",
        "namespaces": ["doris"],
        "namespaceSelector": {"matchLabels": {"team": "data"}}
    });
    let component = |image: &str, dirs: &[&str]| {
        json!({
            "image": image,
            "replicas": 3,
            "requests": {"cpu": "4", "memory": "8Gi"},
            "limits": {"cpu": 8, "memory": "16Gi"},
            "configMapInfo": {"configMapName": "conf", "configMaps": [{"configMapName": "extra", "mountPath": "/etc/extra"}]},
            "secrets": [{"secretName": "s3", "mountPath": "/etc/s3"}],
            "persistentVolumes": dirs.iter().enumerate().map(|(i, d)| json!({
                "name": format!("data-{i}"),
                "mountPath": d,
                "annotations": {"backup": "daily"},
                "provisioner": "StatefulSet",
                "persistentVolumeClaimSpec": claim("100Gi")
            })).collect::<Vec<_>>(),
            "systemInitialization": {"initImage": "alpine", "command": ["sysctl", "-w", "vm.max_map_count=2000000"],
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}},
            "service": {"type": "NodePort", "servicePorts": [{"nodePort": 31030, "targetPort": 9030}], "annotations": {"a": "b"}},
            "envVars": [
                {"name": "TZ", "value": "UTC"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": true}}}
            ],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                    ]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}
                    ]
                },
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [term.clone()],
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term.clone()}]
                },
                "podAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term.clone()}]
                }
            },
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "doris", "effect": "NoSchedule"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["hdfs"]}],
            "podLabels": {"team": "data"},
            "annotations": {"prometheus.io/scrape": "true"},
            "securityContext": {"fsGroup": 1000, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}, "privileged": false},
            "startTimeout": 900,
            "liveTimeout": 60,
            "readinessProbePolicy": {"periodSeconds": 10}
        })
    };
    let dirs = [
        "/opt/apache-doris/be/storage",
        "/opt/apache-doris/be/storage2",
        "/opt/apache-doris/be/log",
        "/opt/apache-doris/be/cache",
    ];
    let mut fe = component("apache/doris:fe-2.1.8", &dirs[..2]);
    fe["electionNumber"] = 3.into();
    let mut cn = component("apache/doris:be-2.1.8", &dirs);
    cn["autoScalingPolicy"] = json!({"version": "v2", "minReplicas": 1, "maxReplicas": 4,
        "hpaPolicy": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]}});
    let component_status = json!({
        "accessService": "doris-fe-service", "runningInstances": ["doris-fe-0"], "readyReplicas": 3, "replicas": 3,
        "componentCondition": {"subResourceName": "doris-fe", "phase": "available", "lastTransitionTime": "2026-11-20T10:00:00Z", "reason": "", "message": ""}
    });
    json!({
        "apiVersion": "doris.selectdb.com/v1",
        "kind": "DorisCluster",
        "metadata": {
            "name": "doris", "namespace": "doris", "uid": "9a1c", "resourceVersion": "42", "generation": 3,
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "labels": {"app": "doris"},
            "finalizers": ["doris.selectdb.com/pvc-retention"],
            "managedFields": [{
                "manager": "kubectl", "operation": "Apply", "apiVersion": "doris.selectdb.com/v1",
                "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:feSpec": {"f:image": {}, "f:persistentVolumes": {}}}}
            }]
        },
        "spec": {
            "authSecret": "auth",
            "sharedPersistentVolumeClaims": [{"mountPath": "/opt/plugins", "persistentVolumeClaimName": "plugins"}],
            "feSpec": fe,
            "beSpec": component("apache/doris:be-2.1.8", &dirs),
            "cnSpec": cn,
            "brokerSpec": component("apache/doris:broker-2.1.8", &dirs[..1])
        },
        "status": {
            "feStatus": component_status.clone(),
            "beStatus": component_status.clone(),
            "cnStatus": component_status,
            "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-11-20T10:00:00Z", "observedGeneration": 3}],
            "someFieldOfAnotherVersion": "kept by the API server"
        }
    })
}

/// The operator reads clusters on tokio worker threads; a large cluster must
/// not need a large stack (serde `flatten` buffers a whole component and
/// overflowed 2 MiB stacks in debug builds).
#[test]
fn a_large_cluster_reads_on_a_small_stack() {
    let text = serde_json::to_vec(&large_cluster()).unwrap();
    let reader = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let cluster: crd::DorisCluster = serde_json::from_slice(&text).unwrap();
            let be = cluster.spec.be_spec.as_ref().unwrap();
            assert_eq!(be.base.persistent_volumes.as_ref().unwrap().len(), 4);
            let claim = be.base.persistent_volumes.as_ref().unwrap()[3]
                .persistent_volume_claim_spec
                .as_ref()
                .unwrap();
            assert_eq!(claim.storage_class_name.as_deref(), Some("fast-ssd"));
            assert_eq!(
                cluster.spec.fe_spec.as_ref().unwrap().election_number,
                Some(3)
            );
            serde_json::to_vec(&cluster).unwrap().len()
        })
        .unwrap();
    assert!(reader.join().expect("the cluster reads on a 256 KiB stack") > 1000);
}

/// A large disaggregated cluster as the API server returns it: the parts of
/// [`large_cluster`]'s components in their disaggregated form, many compute
/// groups, and status.
fn large_disaggregated_cluster() -> serde_json::Value {
    use serde_json::json;
    let doris = large_cluster();
    let part = |component: &str| {
        let mut part = doris["spec"][component].clone();
        let fields = part.as_object_mut().unwrap();
        let volumes: Vec<serde_json::Value> = fields["persistentVolumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                json!({
                    "mountPaths": [v["mountPath"]],
                    "annotations": v["annotations"],
                    "provisioner": "operator",
                    "persistentVolumeClaimSpec": v["persistentVolumeClaimSpec"]
                })
            })
            .collect();
        fields.insert("persistentVolume".into(), volumes[0].clone());
        fields.insert("persistentVolumes".into(), volumes.into());
        fields.insert("labels".into(), fields["podLabels"].clone());
        fields.insert(
            "configMaps".into(),
            json!([{"name": "conf", "mountPath": "/etc/doris"}]),
        );
        fields.insert(
            "service".into(),
            json!({"type": "NodePort", "annotations": {"a": "b"}, "portMaps": [{"nodePort": 31030, "targetPort": 9030}]}),
        );
        fields.insert(
            "systemInitialization".into(),
            json!({"initImage": "alpine", "command": ["sysctl"], "requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}),
        );
        for gone in [
            "podLabels",
            "configMapInfo",
            "electionNumber",
            "autoScalingPolicy",
        ] {
            fields.remove(gone);
        }
        part
    };
    let mut fe = part("feSpec");
    fe["electionNumber"] = 3.into();
    let groups: Vec<serde_json::Value> = (0..16)
        .map(|i| {
            let mut group = part("beSpec");
            group["uniqueId"] = format!("cg_{i}").into();
            group["enableWorkloadGroup"] = true.into();
            group["autoResolveLimitCPU"] = true.into();
            group
        })
        .collect();
    let mut meta = part("brokerSpec");
    meta["fdb"] = json!({"configMapNamespaceName": {"namespace": "fdb", "name": "fdb-config"}});
    json!({
        "apiVersion": "disaggregated.cluster.doris.com/v1",
        "kind": "DorisDisaggregatedCluster",
        "metadata": doris["metadata"],
        "spec": {
            "authSecret": "auth",
            "enableDecommission": true,
            "kerberosInfo": {"krb5ConfigMap": "krb5", "keytabSecretName": "keytab"},
            "metaService": meta,
            "feSpec": fe,
            "computeGroups": groups
        },
        "status": {
            "instanceId": "ddc-1",
            "metaServiceStatus": {"phase": "Ready", "availableStatus": "Available", "metaServiceEndpoint": "ddc-ms.doris:5000", "msToken": "t", "replicas": 2, "readyReplicas": 2},
            "feStatus": {"phase": "Ready", "availableStatus": "Available", "clusterId": "1714413046", "replicas": 3, "readyReplicas": 3},
            "clusterHealth": {"health": "green", "feAvailable": true, "cgCount": 16, "cgAvailableCount": 16, "cgFullAvailableCount": 16},
            "computeGroupStatuses": (0..16).map(|i| json!({
                "phase": "Ready", "statefulsetName": format!("ddc-cg-{i}"), "serviceName": format!("ddc-cg-{i}"),
                "uniqueId": format!("cg_{i}"), "computeGroupId": format!("{i}"), "availableStatus": "Available",
                "replicas": 3, "availableReplicas": 3, "gracefulAction": {"type": "RollingUpdate"}
            })).collect::<Vec<_>>(),
            "observedGeneration": 3,
            "conditions": doris["status"]["conditions"],
            "conventionsRevision": "abc"
        }
    })
}

/// The large disaggregated cluster is what the API server accepts, and
/// reads on a small stack as a DorisCluster does.
#[test]
fn a_large_disaggregated_cluster_reads_on_a_small_stack() {
    let cluster = large_disaggregated_cluster();
    let mut spec_only = cluster.clone();
    spec_only.as_object_mut().unwrap().remove("status");
    let text = serde_norway::to_string(&spec_only).unwrap();
    if let Err(e) = parse_disaggregated_cluster(&text) {
        panic!("{e}");
    }
    let bytes = serde_json::to_vec(&cluster).unwrap();
    let reader = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let cluster: crd::DorisDisaggregatedCluster = serde_json::from_slice(&bytes).unwrap();
            let group = &cluster.spec.compute_groups[15];
            assert_eq!(group.unique_id, "cg_15");
            let claim = group.common.persistent_volumes.as_ref().unwrap()[3]
                .persistent_volume_claim_spec
                .as_ref()
                .unwrap();
            assert_eq!(claim.storage_class_name.as_deref(), Some("fast-ssd"));
            assert_eq!(cluster.spec.fe_spec.election_number(), 3);
            let status = cluster.status.as_ref().unwrap();
            assert_eq!(status.compute_group_statuses.as_ref().unwrap().len(), 16);
            serde_json::to_vec(&cluster).unwrap().len()
        })
        .unwrap();
    assert!(reader.join().expect("the cluster reads on a 256 KiB stack") > 1000);
}

/// Every node of the CRD schema that has `x-kubernetes-validations`, with
/// its path.
fn rule_nodes<'a>(
    schema: &'a serde_json::Value,
    path: String,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    if schema.get("x-kubernetes-validations").is_some() {
        out.push((path.clone(), schema));
    }
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in properties {
            rule_nodes(child, format!("{path}.{name}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = schema.get(key).filter(|c| c.is_object()) {
            rule_nodes(child, format!("{path}[]"), out);
        }
    }
}

fn openapi_schema(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> serde_json::Value {
    let crd = serde_json::to_value(crd).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The schema a chain of field names reads, from `schema`: a declared
/// property, or any key of a map.
fn resolve<'a>(
    mut schema: &'a serde_json::Value,
    fields: &[&str],
) -> Option<&'a serde_json::Value> {
    for field in fields {
        schema = match schema["properties"].get(*field) {
            Some(child) => child,
            None => schema
                .get("additionalProperties")
                .filter(|a| a.is_object())?,
        };
    }
    Some(schema)
}

/// Checks the rules of a CRD schema as the API server would at install:
/// each compiles, its estimated cost is bounded, and it reads only declared
/// fields (the objects kept with `x-kubernetes-preserve-unknown-fields`
/// hide the others from CEL), each bounded in size.
/// Returns how many rules there are.
fn check_rules(schema: &serde_json::Value) -> usize {
    use kube::core::cel::{compile_schema, estimate_rule_cost};
    let mut nodes = Vec::new();
    rule_nodes(schema, String::new(), &mut nodes);
    // Variables: self and oldSelf; a, b, p and q over the node's items; g
    // over the compute groups.
    let chain = regex::Regex::new(r"\b(self|oldSelf|a|b|p|q|g)((?:\.[A-Za-z_]+)+)").unwrap();
    let mut rules = 0;
    for (path, node) in nodes {
        let compiled = compile_schema(node);
        for rule in node["x-kubernetes-validations"].as_array().unwrap() {
            let text = rule["rule"].as_str().unwrap();
            assert!(rule["message"].is_string(), "{path}: {text} has no message");
            // (kube-cel's scope check takes comprehension variables for
            // undeclared ones, so only its cost estimate is used.)
            let warnings = estimate_rule_cost(text, &compiled);
            assert!(warnings.is_empty(), "{path}: {text}: {warnings:?}");
            for found in chain.captures_iter(text) {
                let var = &found[1];
                let mut fields: Vec<&str> = found[2].trim_start_matches('.').split('.').collect();
                if text[found.get(0).unwrap().end()..].starts_with('(') {
                    fields.pop(); // a method
                }
                if path.is_empty() && fields.first() == Some(&"metadata") {
                    assert_eq!(fields, ["metadata", "name"], "{text}");
                    continue;
                }
                let base = match var {
                    "self" | "oldSelf" => Some(node),
                    "a" | "b" | "p" | "q" => node.get("items"),
                    _ => resolve(node, &["spec", "computeGroups"]).and_then(|v| v.get("items")),
                };
                let read = base.and_then(|b| resolve(b, &fields));
                let field = fields.join(".");
                let Some(read) = read else {
                    panic!("{path}: {text} reads {var}.{field}, which is not declared");
                };
                // The API server sizes what a rule reads from the schema:
                // unbounded strings and lists, and any int-or-string, as a
                // whole request (3 MB).
                assert!(
                    read.get("x-kubernetes-int-or-string").is_none(),
                    "{path}: {text} reads {var}.{field}, an int-or-string"
                );
                match read["type"].as_str() {
                    Some("string") => assert!(
                        read.get("maxLength").is_some(),
                        "{path}: {text} reads {var}.{field}, a string without maxLength"
                    ),
                    Some("array") => assert!(
                        read.get("maxItems").is_some(),
                        "{path}: {text} reads {var}.{field}, a list without maxItems"
                    ),
                    _ => {}
                }
            }
            rules += 1;
        }
    }
    rules
}

#[test]
fn crd_rules_compile_are_bounded_and_read_declared_fields() {
    let rules = check_rules(&openapi_schema(crd::crd()));
    assert!(rules >= 30, "only {rules} rules");
}

#[test]
fn disaggregated_crd_rules_compile_are_bounded_and_read_declared_fields() {
    let rules = check_rules(&openapi_schema(disaggregated::crd()));
    assert!(rules >= 40, "only {rules} rules");
}

/// Every list around a rule has a maxItems.
#[test]
fn rules_run_a_bounded_number_of_times() {
    fn walk(schema: &serde_json::Value, path: String, times: u64, out: &mut Vec<(String, u64)>) {
        if schema.get("x-kubernetes-validations").is_some() {
            out.push((path.clone(), times));
        }
        if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, child) in properties {
                walk(child, format!("{path}.{name}"), times, out);
            }
        }
        if let Some(items) = schema.get("items") {
            let bound = schema["maxItems"].as_u64();
            let times = bound.map_or(u64::MAX, |b| times.saturating_mul(b));
            walk(items, format!("{path}[]"), times, out);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            walk(values, format!("{path}{{}}"), times, out);
        }
    }
    for crd in [crd::crd(), disaggregated::crd()] {
        let mut nodes = Vec::new();
        walk(&openapi_schema(crd), String::new(), 1, &mut nodes);
        for (path, times) in nodes {
            assert!(times < 1_000_000, "{path}: rules run up to {times} times");
        }
    }
}

/// What `render` says of a bad document is what `kubectl apply` would say:
/// the field and the reason.
#[test]
fn render_refuses_bad_clusters_naming_the_field() {
    let cases = [
        ("  fespec:\n    image: fe\n", "spec.fespec: unknown field"),
        (
            "  beSpec:\n    image: be\n    persistentVolumes:\n    - mountPath: /d\n      persistentVolumeClaimSpec:\n        resources: {requests: {storage: 1Gi}}\n        storageclass: ssd\n",
            "spec.beSpec.persistentVolumes[0].persistentVolumeClaimSpec.storageclass: unknown field",
        ),
        (
            "  beSpec:\n    image: be\n    requests: {cpu: lots}\n",
            "spec.beSpec.requests.cpu",
        ),
        (
            "  beSpec:\n    image: be\n    limits: {memory: 8GB}\n",
            "spec.beSpec.limits.memory",
        ),
        (
            "  beSpec:\n    image: be\n    persistentVolumes:\n    - mountPath: opt/data\n",
            "spec.beSpec.persistentVolumes[0].mountPath: must be an absolute path",
        ),
        (
            "  feSpec:\n    image: fe\n    envVars:\n    - name: \"\"\n",
            "spec.feSpec.envVars[0].name: \"\" should match '^[-._a-zA-Z][-._a-zA-Z0-9]*$'",
        ),
        (
            "  cnSpec:\n    image: be\n    service:\n      servicePorts: [{targetPort: 9060}, {targetPort: 9060}]\n",
            "spec.cnSpec.service.servicePorts: two entries have the same targetPort",
        ),
    ];
    for (spec, expected) in cases {
        let doc = format!(
            "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: doris\nspec:\n{spec}"
        );
        let err = doris_operator::render::read_input("c.yaml", &doc).unwrap_err();
        assert!(
            err.starts_with("c.yaml: document 1 (line 1): ") && err.contains(expected),
            "expected `{expected}`, got {err}"
        );
    }
    let long = format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: {}\nspec:\n  brokerSpec:\n    image: b\n",
        "d".repeat(46)
    );
    let err = doris_operator::render::read_input("c.yaml", &long).unwrap_err();
    assert!(err.contains("metadata.name must be at most"), "{err}");
}

/// Every property of a CRD schema, as `spec.feSpec.replicas` paths
/// (`[]` for list items, `{}` for map values), with its description.
fn described_properties(schema: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(node: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
        if let Some(properties) = node["properties"].as_object() {
            for (name, child) in properties {
                let path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                let description = child["description"].as_str().unwrap_or_default();
                out.push((path.clone(), description.trim().to_string()));
                walk(child, &path, out);
            }
        }
        if node["items"].is_object() {
            walk(&node["items"], &format!("{path}[]"), out);
        }
        if node["additionalProperties"].is_object() {
            walk(&node["additionalProperties"], &format!("{path}{{}}"), out);
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

#[test]
fn kubectl_explain_describes_every_field() {
    for crd in [crd::crd(), disaggregated::crd()] {
        let name = crd.metadata.name.clone().unwrap();
        let schema =
            serde_json::to_value(&crd).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
                .clone();
        let properties = described_properties(&schema);
        assert!(properties.len() > 200, "{name}: {}", properties.len());
        let undescribed: Vec<&str> = properties
            .iter()
            // metadata is the API server's ObjectMeta, described by it.
            .filter(|(path, description)| path != "metadata" && description.is_empty())
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(
            undescribed.is_empty(),
            "{name}: fields without a description (add a doc comment): {undescribed:#?}"
        );
    }
    // What `kubectl explain doriscluster.spec.feSpec.electionNumber` says:
    // what it does, its default, its unit.
    let schema = serde_json::to_value(crd::crd()).unwrap();
    let election = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["feSpec"]["properties"]["electionNumber"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    for words in ["followers", "Default 3", "pods"] {
        assert!(election.contains(words), "{election}");
    }
}

#[test]
fn kubectl_get_doris_lists_both_kinds_with_their_columns() {
    let columns = |crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["doris".to_string()]),
            "`kubectl get doris` lists it"
        );
        crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .filter(|c| c.priority.unwrap_or(0) == 0)
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect::<Vec<_>>()
    };
    let named = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        columns(&crd::crd()),
        named(&[
            ("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
            ("FE", ".status.summary.fe"),
            ("BE", ".status.summary.be"),
            ("Rollout", ".status.summary.rollout"),
            ("RestartHeld", ".status.rollout.held"),
            ("Conventions", ".status.conventionsRevision"),
            ("Age", ".metadata.creationTimestamp"),
        ])
    );
    assert_eq!(
        columns(&disaggregated::crd()),
        named(&[
            ("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
            ("Health", ".status.clusterHealth.health"),
            ("FE", ".status.summary.fe"),
            ("CG", ".status.summary.cg"),
            ("Rollout", ".status.summary.rollout"),
            ("RestartHeld", ".status.rollout.held"),
            ("Conventions", ".status.conventionsRevision"),
            ("Age", ".metadata.creationTimestamp"),
        ])
    );
}
