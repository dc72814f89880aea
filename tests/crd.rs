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
        // feSpec.replicas 1 with the default electionNumber 3: accepted once
        // a cluster may start with fewer FEs than electionNumber (set aside
        // in tests/render.rs and tests/e2e_samples.rs as well).
        if file.ends_with("examples/peer/doriscluster-sample-broker.yaml") {
            continue;
        }
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
