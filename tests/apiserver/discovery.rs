//! API discovery, as kube-apiserver serves it: `/api`, `/api/v1`, `/apis`,
//! `/apis/<group>` and `/apis/<group>/<version>`, and the aggregated form
//! (`apidiscovery.k8s.io/v2`) of `/api` and `/apis` when the client's
//! Accept header asks for it. What is served is the built-in kinds below
//! plus every version a stored CustomResourceDefinition serves, so a kind
//! appears once its CRD is created and goes when the CRD is deleted.

use serde_json::{Value, json};

/// One kind the server serves at one group version.
#[derive(Clone, Debug)]
pub struct Served {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub subresources: Vec<String>,
}

/// Every verb of an ordinary stored resource.
const STORED: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// (group, version, plural, kind, namespaced, subresources).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

/// The built-in kinds the emulator stores, as a v1.33 server lists them.
const BUILT_IN: &[BuiltIn] = &[
    ("", "v1", "configmaps", "ConfigMap", true, &[]),
    ("", "v1", "endpoints", "Endpoints", true, &[]),
    ("", "v1", "events", "Event", true, &[]),
    ("", "v1", "namespaces", "Namespace", false, &["status"]),
    ("", "v1", "nodes", "Node", false, &["status"]),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["status"],
    ),
    (
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["status"],
    ),
    ("", "v1", "pods", "Pod", true, &["status", "log"]),
    ("", "v1", "secrets", "Secret", true, &[]),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &[]),
    ("", "v1", "services", "Service", true, &["status"]),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["status"],
    ),
    (
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
    ),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["status"]),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["status", "scale"],
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["status", "scale"],
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["status", "scale"],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["status"],
    ),
    ("batch", "v1", "jobs", "Job", true, &["status"]),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
    ("events.k8s.io", "v1", "events", "Event", true, &[]),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["status"],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        &[],
    ),
];

/// The resource CustomResourceDefinitions are stored under.
pub const CRDS: &str = "apiextensions.k8s.io/v1/customresourcedefinitions";

/// Every kind served: the built-in ones, then those of `crds`, in order.
pub fn served(crds: &[Value]) -> Vec<Served> {
    let mut out: Vec<Served> = BUILT_IN
        .iter()
        .map(
            |&(group, version, plural, kind, namespaced, subresources)| Served {
                group: group.into(),
                version: version.into(),
                plural: plural.into(),
                kind: kind.into(),
                namespaced,
                verbs: if plural == "selfsubjectaccessreviews" {
                    vec!["create"]
                } else {
                    STORED.to_vec()
                },
                subresources: subresources.iter().map(|s| s.to_string()).collect(),
            },
        )
        .collect();
    for crd in crds {
        let spec = &crd["spec"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] == false {
                continue;
            }
            let subresources = version["subresources"]
                .as_object()
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default();
            out.push(Served {
                group: text(&spec["group"]),
                version: text(&version["name"]),
                plural: text(&spec["names"]["plural"]),
                kind: text(&spec["names"]["kind"]),
                namespaced: spec["scope"] != "Cluster",
                verbs: STORED.to_vec(),
                subresources,
            });
        }
    }
    out
}

/// Whether only a CustomResourceDefinition serves `group`: Kubernetes' own
/// groups are the core group, the undotted ones (apps, batch, policy) and
/// those under k8s.io.
pub fn is_custom_group(group: &str) -> bool {
    group.contains('.') && !group.ends_with(".k8s.io")
}

/// Whether `crd` serves resource `plural` at `group`/`version`.
pub fn crd_serves(crd: &Value, group: &str, version: &str, plural: &str) -> bool {
    let spec = &crd["spec"];
    spec["group"] == group
        && spec["names"]["plural"] == plural
        && spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == version && v["served"] != false)
}

/// The group versions of `group`, in the order first served; the first is
/// the preferred one.
fn versions<'a>(served: &'a [Served], group: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in served.iter().filter(|s| s.group == group) {
        if !out.contains(&s.version.as_str()) {
            out.push(&s.version);
        }
    }
    out
}

fn groups(served: &[Served]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in served.iter().filter(|s| !s.group.is_empty()) {
        if !out.contains(&s.group.as_str()) {
            out.push(&s.group);
        }
    }
    out
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn api_group(served: &[Served], group: &str) -> Value {
    let versions: Vec<Value> = versions(served, group)
        .into_iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": group,
        "preferredVersion": versions[0], "versions": versions,
    })
}

/// The subresource verbs a real server lists.
fn subresource_verbs(subresource: &str) -> Vec<&'static str> {
    match subresource {
        "log" => vec!["get"],
        _ => vec!["get", "patch", "update"],
    }
}

fn singular(kind: &str) -> String {
    kind.to_lowercase()
}

fn resource_list(served: &[Served], group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for s in served
        .iter()
        .filter(|s| s.group == group && s.version == version)
    {
        resources.push(json!({
            "name": s.plural, "singularName": singular(&s.kind), "namespaced": s.namespaced,
            "kind": s.kind, "verbs": s.verbs,
        }));
        for sub in &s.subresources {
            let kind = if sub == "scale" { "Scale" } else { &s.kind };
            let mut entry = json!({
                "name": format!("{}/{sub}", s.plural), "singularName": "",
                "namespaced": s.namespaced, "kind": kind, "verbs": subresource_verbs(sub),
            });
            if sub == "scale" {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
            }
            resources.push(entry);
        }
    }
    json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version(group, version), "resources": resources,
    })
}

/// The aggregated discovery of `groups` (the core group is `""`).
fn aggregated(served: &[Served], groups: &[&str]) -> Value {
    let items: Vec<Value> = groups
        .iter()
        .map(|&group| {
            let versions: Vec<Value> = versions(served, group)
                .into_iter()
                .map(|version| {
                    let resources: Vec<Value> = served
                        .iter()
                        .filter(|s| s.group == group && s.version == version)
                        .map(|s| {
                            let subresources: Vec<Value> = s
                                .subresources
                                .iter()
                                .map(|sub| {
                                    let kind = if sub == "scale" {
                                        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
                                    } else {
                                        json!({"group": group, "version": version, "kind": s.kind})
                                    };
                                    json!({"subresource": sub, "responseKind": kind,
                                           "verbs": subresource_verbs(sub)})
                                })
                                .collect();
                            json!({
                                "resource": s.plural,
                                "responseKind": {"group": group, "version": version, "kind": s.kind},
                                "scope": if s.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": singular(&s.kind),
                                "verbs": s.verbs,
                                "subresources": subresources,
                            })
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {}, "items": items,
    })
}

/// The Accept value of aggregated discovery, and the content type of its answer.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The discovery document at `path`: `None` when `path` is not a discovery
/// path (it is a resource's), `Some(None)` for a group or version not
/// served (404), else the document and whether it is the aggregated form.
pub fn answer(
    served: &[Served],
    path: &str,
    accept: &str,
    address: &str,
) -> Option<Option<(Value, bool)>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let wants_aggregated = accept
        .split(',')
        .any(|a| a.replace(' ', "").starts_with(AGGREGATED));
    Some(match parts.as_slice() {
        ["api"] if wants_aggregated => Some((aggregated(served, &[""]), true)),
        ["api"] => Some((
            json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
            }),
            false,
        )),
        ["api", version] => (versions(served, "").contains(version))
            .then(|| (resource_list(served, "", version), false)),
        ["apis"] if wants_aggregated => Some((aggregated(served, &groups(served)), true)),
        ["apis"] => {
            let groups: Vec<Value> = groups(served)
                .into_iter()
                .map(|g| {
                    let mut g = api_group(served, g);
                    let m = g.as_object_mut().expect("an object");
                    m.remove("kind");
                    m.remove("apiVersion");
                    g
                })
                .collect();
            Some((
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                false,
            ))
        }
        ["apis", group] => groups(served)
            .contains(group)
            .then(|| (api_group(served, group), false)),
        ["apis", group, version] => versions(served, group)
            .contains(version)
            .then(|| (resource_list(served, group, version), false)),
        _ => return None,
    })
}
