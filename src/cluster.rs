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

use crate::crd::{BaseSpec, ComponentKind, DorisCluster, FieldError};
use crate::plan::names;

/// A cluster of either kind, owned (as `render` reads them).
#[derive(Clone, Debug)]
pub enum Cluster {
    Doris(Box<DorisCluster>),
}

impl Cluster {
    pub fn as_ref(&self) -> ClusterRef<'_> {
        match self {
            Cluster::Doris(c) => ClusterRef::Doris(c),
        }
    }
}

/// A cluster of either kind, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum ClusterRef<'a> {
    Doris(&'a DorisCluster),
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
    /// Its spec as the user wrote it, for the conventions.
    pub spec: Value,
    pub names: PartNames,
}

impl<'a> ClusterRef<'a> {
    pub fn meta(&self) -> &'a ObjectMeta {
        match self {
            ClusterRef::Doris(c) => &c.metadata,
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
        }
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            ClusterRef::Doris(_) => "doris.selectdb.com/v1",
        }
    }

    /// The whole spec as JSON.
    pub fn spec_json(&self) -> Value {
        match self {
            ClusterRef::Doris(c) => serde_json::to_value(&c.spec).unwrap_or(Value::Null),
        }
    }

    /// The parts, in the order they are planned and brought up.
    pub fn parts(&self) -> Vec<Part<'a>> {
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
                            spec: view.spec_json(),
                            names: doris_names(name, kind),
                        })
                    })
                    .collect()
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
        }
    }

    /// ConfigMaps the cluster reads from other namespaces (namespace, name).
    pub fn external_config_maps(&self) -> Vec<(String, String)> {
        match self {
            ClusterRef::Doris(_) => Vec::new(),
        }
    }

    /// What the CRD schema and its rules would refuse, by field path.
    pub fn validate(&self) -> Vec<FieldError> {
        match self {
            ClusterRef::Doris(c) => crate::crd::validate(c),
        }
    }

    /// `spec.adminUser`, `spec.authSecret`: how the operator logs in to the FE.
    pub fn admin_user(&self) -> Option<&'a crate::crd::AdminUser> {
        match self {
            ClusterRef::Doris(c) => c.spec.admin_user.as_ref(),
        }
    }

    pub fn auth_secret(&self) -> Option<&'a str> {
        match self {
            ClusterRef::Doris(c) => c.spec.auth_secret.as_deref(),
        }
    }

    /// The FE part's `electionNumber`: how many FEs are followers.
    pub fn election_number(&self) -> Option<i32> {
        match self {
            ClusterRef::Doris(c) => c.spec.fe_spec.as_ref().map(|fe| fe.election_number()),
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
