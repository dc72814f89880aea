//! Every DorisDisaggregatedCluster sample, ours and apache/doris-operator's,
//! is accepted as `kubectl apply` would accept it.

use std::path::{Path, PathBuf};

use doris_operator::crd::parse_disaggregated_cluster;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

fn disaggregated_documents(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---")
        .filter(|d| d.contains("kind: DorisDisaggregatedCluster"))
        .map(str::to_string)
        .collect()
}

/// Our samples and apache/doris-operator's are read strictly (unknown
/// fields, the CRD's schema and CEL rules), and read back the same after
/// writing.
#[test]
fn every_disaggregated_example_is_accepted_and_round_trips() {
    let mut files = Vec::new();
    example_files(&root().join("examples"), &mut files);
    files.sort();
    let mut seen = Vec::new();
    let mut refused = Vec::new();
    // Three of the peer's samples hold `{placeholder}`s that YAML reads as
    // maps, so that Kubernetes refuses them as written; the error names the
    // field, and once filled in they are accepted.
    let placeholder = regex::Regex::new(r"\{([a-z_]+)\}").unwrap();
    for file in files {
        for doc in disaggregated_documents(&file) {
            let cluster = match parse_disaggregated_cluster(&doc) {
                Ok(cluster) => cluster,
                Err(e) => {
                    refused.push(format!(
                        "{}: {e}",
                        file.file_name().unwrap().to_string_lossy()
                    ));
                    let filled = placeholder.replace_all(&doc, "$1");
                    parse_disaggregated_cluster(&filled)
                        .unwrap_or_else(|e| panic!("{} filled in: {e}", file.display()))
                }
            };
            let again = serde_norway::to_string(&cluster).unwrap();
            let reparsed = parse_disaggregated_cluster(&again)
                .unwrap_or_else(|e| panic!("{} written back: {e}", file.display()));
            assert_eq!(reparsed.metadata, cluster.metadata, "{}", file.display());
            assert_eq!(reparsed.spec, cluster.spec, "{}", file.display());
            seen.push(file.clone());
        }
    }
    assert_eq!(
        refused,
        [
            "ddc-affinity.yaml: not valid YAML: spec.computeGroups[0].affinity.podAntiAffinity.\
             preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.\
             matchLabels: invalid type: map, expected a string key at line 52 column 21",
            "ddc-pwd-secret.yaml: spec.authSecret: invalid type: map, expected a string",
            "ddc-pwd.yaml: spec.adminUser.name: invalid type: map, expected a string",
        ]
    );
    assert!(
        seen.iter().any(|f| f.ends_with("examples/ddc-sample.yaml")),
        "{seen:?}"
    );
    let peer_dir = root().join("examples/peer-disaggregated");
    let mut peer_files = Vec::new();
    example_files(&peer_dir, &mut peer_files);
    assert_eq!(peer_files.len(), 16, "the peer's samples: {peer_files:?}");
    let peer = seen.iter().filter(|f| f.starts_with(&peer_dir)).count();
    assert_eq!(peer, peer_files.len(), "every one of the peer's samples");
}

/// Every spec field apache/doris-operator's DorisDisaggregatedCluster has,
/// under its JSON name: read strictly and written back, nothing is lost or
/// renamed.
#[test]
fn every_peer_field_keeps_its_json_name() {
    use serde_json::json;
    let common = |image: &str| {
        json!({
            "replicas": 2,
            "image": image,
            "imagePullSecrets": [{"name": "registry"}],
            "startTimeout": 600,
            "liveTimeout": 180,
            "readinessProbePolicy": {"timeoutSeconds": 3, "failureThreshold": 5, "periodSeconds": 10},
            "requests": {"cpu": "4", "memory": "8Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"},
            "claims": [{"name": "gpu"}],
            "labels": {"team": "data"},
            "annotations": {"a": "b"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}}},
            "persistentVolume": {
                "persistentVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}},
                "mountPaths": ["/opt/old"],
                "logNotStore": true,
                "annotations": {"pv": "x"},
                "provisioner": "operator"
            },
            "logNotStore": false,
            "persistentVolumes": [{
                "persistentVolumeClaimSpec": {"storageClassName": "ssd", "resources": {"requests": {"storage": "200Gi"}}},
                "mountPaths": ["/opt/cache1", "/opt/cache2"],
                "logNotStore": false,
                "annotations": {"pv": "y"},
                "provisioner": "operator"
            }],
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "service": {"type": "NodePort", "annotations": {"lb": "x"}, "portMaps": [{"nodePort": 31030, "targetPort": 9030}]},
            "configMaps": [{"name": "conf", "mountPath": "/etc/doris"}],
            "nodeSelector": {"disk": "ssd"},
            "serviceAccount": "doris",
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["s3.local"]}],
            "securityContext": {"fsGroup": 1000},
            "containerSecurityContext": {"privileged": false},
            "envVars": [{"name": "TZ", "value": "UTC"}],
            "systemInitialization": {
                "initImage": "alpine", "command": ["sysctl"], "args": ["-w", "vm.max_map_count=2000000"],
                "requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}, "claims": [{"name": "init"}]
            },
            "secrets": [{"secretName": "s3", "mountPath": "/etc/s3"}]
        })
    };
    let mut meta = common("apache/doris:ms-3.0.3");
    meta["fdb"] = json!({"address": "doris:id@10.0.0.1:4500",
        "configMapNamespaceName": {"namespace": "fdb", "name": "fdb-config"}});
    let mut fe = common("apache/doris:fe-3.0.3");
    fe["electionNumber"] = 1.into();
    let mut group = common("apache/doris:be-3.0.3");
    for (field, value) in [
        ("uniqueId", json!("cg1")),
        ("enableWorkloadGroup", json!(true)),
        ("skipDefaultSystemInit", json!(true)),
        ("autoResolveLimitCPU", json!(true)),
    ] {
        group[field] = value;
    }
    let spec = json!({
        "metaService": meta,
        "feSpec": fe,
        "computeGroups": [group],
        "authSecret": "auth",
        "adminUser": {"name": "root", "password": "x"},
        "enableDecommission": true,
        "kerberosInfo": {"krb5ConfigMap": "krb5", "keytabSecretName": "keytab", "keytabPath": "/etc/keytab"}
    });
    let doc = json!({
        "apiVersion": "disaggregated.cluster.doris.com/v1",
        "kind": "DorisDisaggregatedCluster",
        "metadata": {"name": "ddc"},
        "spec": spec
    });
    let cluster = parse_disaggregated_cluster(&serde_norway::to_string(&doc).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(&cluster.spec).unwrap(), spec);
    let group = &cluster.spec.compute_groups[0];
    assert_eq!(group.auto_resolve_limit_cpu, Some(true));
    assert_eq!(group.object_name(), "cg1");
    assert_eq!(
        cluster.spec.meta_service.fdb.as_ref().unwrap().address(),
        Some("doris:id@10.0.0.1:4500")
    );
}
