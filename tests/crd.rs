//! The committed CRDs match the Rust types, stay small enough for
//! client-side `kubectl apply`, and every example cluster is accepted.

use std::path::{Path, PathBuf};

use doris_operator::crd::{self, parse_cluster};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const CRD_FILES: [&str; 2] = [
    "crds/doris.selectdb.com_dorisclusters.yaml",
    // The file name apache/doris-operator's install instructions use.
    "crds/doris.apache.com_dorisclusters.yaml",
];

#[test]
fn committed_crds_match_the_types() {
    let generated = crd::crd_yaml();
    for file in CRD_FILES {
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
    let text = crd::crd_yaml();
    // kubectl keeps the whole object as JSON in an annotation of at most 256 KiB.
    let json = serde_json::to_string(&crd::crd()).unwrap();
    assert!(
        json.len() < 128 * 1024,
        "CRD is {} bytes as JSON",
        json.len()
    );
    assert!(
        text.len() < 200 * 1024,
        "CRD is {} bytes as YAML",
        text.len()
    );
    assert!(!text.contains("$ref"), "a CRD schema cannot hold $ref");
    assert!(
        !text.contains("allOf"),
        "flattened fields must be plain properties"
    );
}

#[test]
fn crd_names_and_columns_match_the_peer() {
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
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["FeStatus", "BeStatus", "CnStatus", "BrokerStatus", "Age"]
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

fn openapi_schema() -> serde_json::Value {
    let crd = serde_json::to_value(crd::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The API server accepts only rules that compile, whose estimated cost is
/// bounded, and that read only declared fields (the objects kept with
/// `x-kubernetes-preserve-unknown-fields` hide the others from CEL).
#[test]
fn crd_rules_compile_are_bounded_and_read_declared_fields() {
    use kube::core::cel::{compile_schema, estimate_rule_cost};
    let schema = openapi_schema();
    let mut nodes = Vec::new();
    rule_nodes(&schema, String::new(), &mut nodes);
    let field = regex::Regex::new(r"\b(self|oldSelf|a|b)\.([A-Za-z]+)\b(\.([A-Za-z]+))?").unwrap();
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
            for found in field.captures_iter(text) {
                let (var, name) = (&found[1], &found[2]);
                if text[found.get(2).unwrap().end()..].starts_with('(') {
                    continue; // a method
                }
                let declared = match var {
                    "self" | "oldSelf" if path.is_empty() && name == "metadata" => {
                        assert_eq!(found.get(4).map(|m| m.as_str()), Some("name"), "{text}");
                        true
                    }
                    "self" | "oldSelf" => node["properties"].get(name).is_some(),
                    _ => node["items"]["properties"].get(name).is_some(),
                };
                assert!(
                    declared,
                    "{path}: {text} reads {var}.{name}, which is not declared"
                );
            }
            rules += 1;
        }
    }
    assert!(rules >= 30, "only {rules} rules");
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
            "spec.feSpec.envVars[0].name: must be an environment variable name",
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
