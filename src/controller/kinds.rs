//! The custom resources the operator runs clusters for. Each kind says how
//! it is seen as a [`ClusterRef`] and how its status is read and written;
//! every reconcile step is shared.

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde_json::Value;

use crate::cluster::ClusterRef;
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

use super::status::Status;

/// A kind of Doris cluster resource.
pub trait DorisResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + serde::Serialize
    + Send
    + Sync
    + 'static
{
    /// The cluster, as every step sees it.
    fn cluster(&self) -> ClusterRef<'_>;
    /// Its status as the operator reads it (empty when it has none).
    fn read_status(&self) -> Status;
    /// Its status as written now, as JSON (`null` when it has none).
    fn status_json(&self) -> Value;
    /// `status` in this kind's shape, as JSON.
    fn status_to_json(&self, status: &Status) -> Value;
}

impl DorisResource for DorisCluster {
    fn cluster(&self) -> ClusterRef<'_> {
        ClusterRef::Doris(self)
    }

    fn read_status(&self) -> Status {
        self.status
            .as_ref()
            .map(Status::from_doris)
            .unwrap_or_default()
    }

    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }

    fn status_to_json(&self, status: &Status) -> Value {
        serde_json::to_value(status.to_doris(self)).unwrap_or(Value::Null)
    }
}

impl DorisResource for DorisDisaggregatedCluster {
    fn cluster(&self) -> ClusterRef<'_> {
        ClusterRef::Disaggregated(self)
    }

    fn read_status(&self) -> Status {
        self.status
            .as_ref()
            .map(|s| Status::from_disaggregated(self, s))
            .unwrap_or_default()
    }

    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }

    fn status_to_json(&self, status: &Status) -> Value {
        serde_json::to_value(status.to_disaggregated(self)).unwrap_or(Value::Null)
    }
}
