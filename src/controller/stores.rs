//! The caches the controller reads instead of the API: the objects it
//! manages (selected by its `managed-by` label, so nothing else is held in
//! memory) and the pods of its clusters.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::plan::APPLIED_HASH_ANNOTATION;

/// Selects the objects the operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=doris-operator";
/// Selects the pods of Doris components.
pub const POD_SELECTOR: &str = "app.doris.ownerreference/name";

/// Read-only views of the reflector caches.
#[derive(Clone)]
pub struct Stores {
    pub statefulsets: Store<StatefulSet>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub autoscalers: Store<HorizontalPodAutoscaler>,
    pub pods: Store<Pod>,
}

impl Stores {
    /// The applied hash of a cached object: `Some(None)` when the kind is
    /// cached but the object is absent or unmarked, `None` when the kind is
    /// not cached at all.
    pub fn applied_hash(&self, kind: &str, namespace: &str, name: &str) -> Option<Option<String>> {
        fn hash_of<K: Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            namespace: &str,
            name: &str,
        ) -> Option<String> {
            store
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| o.annotations().get(APPLIED_HASH_ANNOTATION).cloned())
        }
        Some(match kind {
            "StatefulSet" => hash_of(&self.statefulsets, namespace, name),
            "Service" => hash_of(&self.services, namespace, name),
            "ConfigMap" => hash_of(&self.config_maps, namespace, name),
            "HorizontalPodAutoscaler" => hash_of(&self.autoscalers, namespace, name),
            _ => return None,
        })
    }

    /// (apiVersion, kind, name) of every cached object owned by `uid`.
    pub fn owned_by(&self, uid: &str, namespace: &str) -> Vec<(String, String, String)> {
        fn owned<K: Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            uid: &str,
            namespace: &str,
            out: &mut Vec<(String, String, String)>,
        ) {
            for o in store.state() {
                let mine = o.namespace().as_deref() == Some(namespace)
                    && o.owner_references().iter().any(|r| r.uid == uid);
                if mine {
                    out.push((
                        K::api_version(&()).to_string(),
                        K::kind(&()).to_string(),
                        o.name_any(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        owned(&self.statefulsets, uid, namespace, &mut out);
        owned(&self.services, uid, namespace, &mut out);
        owned(&self.config_maps, uid, namespace, &mut out);
        owned(&self.autoscalers, uid, namespace, &mut out);
        out.sort();
        out
    }

    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        self.statefulsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// Pods of one cluster.
    pub fn cluster_pods(&self, namespace: &str, cluster: &str) -> Vec<Arc<Pod>> {
        let mut pods: Vec<_> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                let component_of = p.labels().get(POD_SELECTOR).map(String::as_str);
                p.namespace().as_deref() == Some(namespace)
                    && crate::crd::ComponentKind::ALL.iter().any(|k| {
                        component_of == Some(crate::plan::names::statefulset(cluster, *k).as_str())
                    })
            })
            .collect();
        pods.sort_by_key(|p| p.name_any());
        pods
    }
}
