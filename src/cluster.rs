//! A Doris cluster of either kind as the pipeline sees it: its metadata and
//! an ordered list of parts, each a StatefulSet the conventions shape.
//!
//! A `DorisCluster` has the parts `fe`, `be`, `cn` and `broker`. Planning,
//! membership, rollout and status work on parts, so every kind of cluster
//! goes through the same steps; what differs between kinds is only which
//! parts a cluster has and what their objects are called.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::crd::disaggregated::CommonSpec;
use crate::crd::{
    BaseSpec, ComponentKind, ConfigMapInfo, DorisCluster, DorisDisaggregatedCluster, FieldError,
    MountConfigMapInfo,
};
use crate::plan::names;

/// A cluster of either kind, owned (as `render` reads them).
#[derive(Clone, Debug)]
pub enum Cluster {
    Doris(Box<DorisCluster>),
    Disaggregated(Box<DorisDisaggregatedCluster>),
}

impl Cluster {
    pub fn as_ref(&self) -> ClusterRef<'_> {
        match self {
            Cluster::Doris(c) => ClusterRef::Doris(c),
            Cluster::Disaggregated(c) => ClusterRef::Disaggregated(c),
        }
    }
}

/// A cluster of either kind, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum ClusterRef<'a> {
    Doris(&'a DorisCluster),
    Disaggregated(&'a DorisDisaggregatedCluster),
}

/// The fixed names of one part's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartNames {
    pub statefulset: String,
    pub internal_service: String,
    /// The Service users reach the part through.
    pub access_service: String,
    /// The ConfigMap with the rendered configuration files.
    pub config_map: String,
    /// The pod selector labels (fixed: changing them would orphan pods).
    pub selector: BTreeMap<String, String>,
}

/// One StatefulSet's worth of a cluster.
#[derive(Clone, Debug)]
pub struct Part<'a> {
    /// What the part runs.
    pub kind: ComponentKind,
    /// Unique in the cluster: `fe`, `be`, … for a DorisCluster; the value of
    /// the pods' `app.kubernetes.io/component` label.
    pub name: String,
    /// Where its spec is in the CR, for errors (`spec.feSpec`).
    pub field: String,
    /// Its spec, in the common form the Rust side reads.
    pub base: Cow<'a, BaseSpec>,
    /// Its spec as the user wrote it, for the conventions (null unless
    /// asked for with [`ClusterRef::parts_with_specs`]).
    pub spec: Value,
    pub names: PartNames,
}

impl<'a> ClusterRef<'a> {
    pub fn meta(&self) -> &'a ObjectMeta {
        match self {
            ClusterRef::Doris(c) => &c.metadata,
            ClusterRef::Disaggregated(c) => &c.metadata,
        }
    }

    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    pub fn namespace(&self) -> String {
        self.meta().namespace.clone().unwrap_or_default()
    }

    /// `<kind> <name>`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind(), self.name())
    }

    /// `kind` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterRef::Doris(_) => "DorisCluster",
            ClusterRef::Disaggregated(_) => "DorisDisaggregatedCluster",
        }
    }

    /// How its Doris runs: a `DorisDisaggregatedCluster` storage-compute
    /// separated ("cloud" mode), a `DorisCluster` integrated. The release
    /// is not known here.
    pub fn doris_profile(&self) -> crate::doris::Profile {
        let mode = match self {
            ClusterRef::Doris(_) => crate::doris::Mode::Integrated,
            ClusterRef::Disaggregated(_) => crate::doris::Mode::Cloud,
        };
        crate::doris::Profile::new(mode, None)
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            ClusterRef::Doris(_) => "doris.selectdb.com/v1",
            ClusterRef::Disaggregated(_) => "disaggregated.cluster.doris.com/v1",
        }
    }

    /// The whole spec as JSON.
    pub fn spec_json(&self) -> Value {
        match self {
            ClusterRef::Doris(c) => serde_json::to_value(&c.spec).unwrap_or(Value::Null),
            ClusterRef::Disaggregated(c) => serde_json::to_value(&c.spec).unwrap_or(Value::Null),
        }
    }

    /// The parts, in the order they are planned and brought up, without
    /// their specs as JSON (`Part::spec` is null): what every step but the
    /// plan reads.
    pub fn parts(&self) -> Vec<Part<'a>> {
        self.parts_with(false)
    }

    /// The parts with their specs as the user wrote them, for the plan.
    pub fn parts_with_specs(&self) -> Vec<Part<'a>> {
        self.parts_with(true)
    }

    fn parts_with(&self, specs: bool) -> Vec<Part<'a>> {
        match self {
            ClusterRef::Doris(c) => {
                let name = c.metadata.name.as_deref().unwrap_or_default();
                ComponentKind::ALL
                    .into_iter()
                    .filter_map(|kind| {
                        let view = c.spec.component(kind)?;
                        Some(Part {
                            kind,
                            name: kind.as_str().to_string(),
                            field: format!("spec.{}Spec", kind.as_str()),
                            base: Cow::Borrowed(view.base()),
                            spec: if specs { view.spec_json() } else { Value::Null },
                            names: doris_names(name, kind),
                        })
                    })
                    .collect()
            }
            ClusterRef::Disaggregated(c) => {
                let name = c.metadata.name.as_deref().unwrap_or_default();
                let spec = &c.spec;
                let part = |kind,
                            part: String,
                            field: String,
                            common,
                            replicas,
                            wire: &dyn erased::Json| {
                    Part {
                        kind,
                        names: disaggregated_names(name, &part),
                        name: part,
                        field,
                        base: Cow::Owned(common_base(common, replicas)),
                        spec: if specs { wire.json() } else { Value::Null },
                    }
                };
                let ms = &spec.meta_service;
                let fe = &spec.fe_spec;
                let mut parts = vec![
                    part(
                        ComponentKind::Ms,
                        "ms".into(),
                        "spec.metaService".into(),
                        &ms.common,
                        ms.replicas(),
                        ms,
                    ),
                    part(
                        ComponentKind::Fe,
                        "fe".into(),
                        "spec.feSpec".into(),
                        &fe.common,
                        fe.replicas(),
                        fe,
                    ),
                ];
                for (i, group) in spec.compute_groups.iter().enumerate() {
                    parts.push(part(
                        ComponentKind::Cg,
                        group.object_name(),
                        format!("spec.computeGroups[{i}]"),
                        &group.common,
                        group.replicas(),
                        group,
                    ));
                }
                parts
            }
        }
    }

    /// The names every part the cluster could have would get, including
    /// parts it does not have now (to find what a removed part left).
    pub fn statefulset_names(&self) -> Vec<String> {
        match self {
            ClusterRef::Doris(c) => {
                let name = c.metadata.name.as_deref().unwrap_or_default();
                ComponentKind::ALL
                    .iter()
                    .map(|k| names::statefulset(name, *k))
                    .collect()
            }
            ClusterRef::Disaggregated(_) => self
                .parts()
                .into_iter()
                .map(|p| p.names.statefulset)
                .collect(),
        }
    }

    /// ConfigMaps the cluster reads from other namespaces (namespace, name).
    pub fn external_config_maps(&self) -> Vec<(String, String)> {
        match self {
            ClusterRef::Doris(_) => Vec::new(),
            ClusterRef::Disaggregated(c) => {
                let own = self.namespace();
                let fdb = c.spec.meta_service.fdb.as_ref();
                fdb.and_then(|f| f.config_map(&own))
                    .map(|(ns, name)| (ns.to_string(), name.to_string()))
                    .into_iter()
                    .collect()
            }
        }
    }

    /// What the CRD schema and its rules would refuse, by field path.
    pub fn validate(&self) -> Vec<FieldError> {
        match self {
            ClusterRef::Doris(c) => crate::crd::validate(c),
            ClusterRef::Disaggregated(c) => crate::crd::validate_disaggregated(c),
        }
    }

    /// `spec.adminUser`, `spec.authSecret`: how the operator logs in to the FE.
    pub fn admin_user(&self) -> Option<&'a crate::crd::AdminUser> {
        match self {
            ClusterRef::Doris(c) => c.spec.admin_user.as_ref(),
            ClusterRef::Disaggregated(c) => c.spec.admin_user.as_ref(),
        }
    }

    pub fn auth_secret(&self) -> Option<&'a str> {
        match self {
            ClusterRef::Doris(c) => c.spec.auth_secret.as_deref(),
            ClusterRef::Disaggregated(c) => c.spec.auth_secret.as_deref(),
        }
    }

    /// The FE part's `electionNumber`: how many FEs are followers.
    pub fn election_number(&self) -> Option<i32> {
        match self {
            ClusterRef::Doris(c) => c.spec.fe_spec.as_ref().map(|fe| fe.election_number()),
            ClusterRef::Disaggregated(c) => Some(c.spec.fe_spec.election_number()),
        }
    }

    /// The FE part's desired replicas.
    pub fn fe_replicas(&self) -> Option<i32> {
        self.parts()
            .into_iter()
            .find(|p| p.kind == ComponentKind::Fe)
            .map(|p| p.base.replicas.unwrap_or(1))
    }
}

/// The names of a DorisCluster's component (those the peer uses).
fn doris_names(cluster: &str, kind: ComponentKind) -> PartNames {
    PartNames {
        statefulset: names::statefulset(cluster, kind),
        internal_service: names::internal_service(cluster, kind),
        access_service: names::access_service(cluster, kind),
        config_map: names::config_map(cluster, kind),
        selector: names::selector(cluster, kind)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// The names of a storage-compute separated cluster's part, as the peer
/// names them: `<cluster>-ms` (one Service), `<cluster>-fe` with
/// `<cluster>-fe-internal`, and per compute group `<cluster>-<group>` (the
/// headless Service too) with `<cluster>-<group>-external`.
pub fn disaggregated_names(cluster: &str, part: &str) -> PartNames {
    let base = format!("{cluster}-{part}");
    let (internal, access) = match part {
        "ms" => (base.clone(), base.clone()),
        "fe" => (format!("{base}-internal"), base.clone()),
        _ => (base.clone(), format!("{base}-external")),
    };
    PartNames {
        statefulset: base.clone(),
        internal_service: internal,
        access_service: access,
        config_map: format!("{base}-conf"),
        selector: BTreeMap::from([
            ("app.doris.ownerreference/name".to_string(), base),
            ("app.kubernetes.io/component".to_string(), part.to_string()),
            (DISAGGREGATED_CLUSTER_LABEL.to_string(), cluster.to_string()),
        ]),
    }
}

/// On every pod of a storage-compute separated cluster: the cluster's name.
pub const DISAGGREGATED_CLUSTER_LABEL: &str = "app.doris.disaggregated.cluster";

/// What the Rust side reads of a part's spec, in the common form: the
/// ConfigMaps (the one at /etc/doris holds the configuration file) and
/// Secrets it mounts, and its replicas.
fn common_base(common: &CommonSpec, replicas: i32) -> BaseSpec {
    let config_maps = common.config_maps.as_ref().map(|maps| {
        maps.iter()
            .map(|m| MountConfigMapInfo {
                config_map_name: m.name.clone(),
                mount_path: m.mount_path.clone(),
            })
            .collect()
    });
    BaseSpec {
        image: common.image.clone().unwrap_or_default(),
        replicas: Some(replicas),
        config_map_info: config_maps.map(|config_maps| ConfigMapInfo {
            config_maps: Some(config_maps),
            ..Default::default()
        }),
        secrets: common.secrets.clone(),
        ..Default::default()
    }
}

/// The FoundationDB connection string of a storage-compute separated
/// cluster: its address, or the `cluster-file` of the ConfigMap it names
/// (keyed `<namespace>/<name>` in `config_maps` when in another namespace).
pub fn fdb_endpoint(
    cluster: &DorisDisaggregatedCluster,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
) -> Option<String> {
    let fdb = cluster.spec.meta_service.fdb.as_ref()?;
    if let Some(address) = fdb.address() {
        return Some(address.to_string());
    }
    let own = cluster.metadata.namespace.clone().unwrap_or_default();
    let (namespace, name) = fdb.config_map(&own)?;
    let key = if namespace == own {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    config_maps
        .get(&key)?
        .get("cluster-file")
        .map(|s| s.trim().to_string())
}

mod erased {
    /// Serializes to JSON; lets differently typed specs share one closure.
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
