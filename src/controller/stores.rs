//! The caches the controller reads instead of the API: the objects it
//! manages (selected by its `managed-by` label, so nothing else is held in
//! memory) and the pods of its clusters. Each object is cached with only
//! the fields the controller reads (see the `slim_*` functions, and
//! slim_pod.rs for pods): memory grows with the number of clusters, not
//! with the size of their specs.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Event, Pod, PodSpec, PodTemplateSpec, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::plan::APPLIED_HASH_ANNOTATION;

use super::index::{Index, pod_key};

/// How many objects one list request brings. A page is held whole, as
/// full objects, until each is slimmed into its cache, so the page bounds
/// the memory a start (or a re-list) takes besides the caches: pages of
/// the API server's usual 500 pods or StatefulSets doubled the operator's
/// memory at start for some hundred clusters.
pub const LIST_PAGE: u32 = 100;

/// How the operator's watches list: in pages of [`LIST_PAGE`].
pub fn list_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().page_size(LIST_PAGE)
}

/// Selects the objects the operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=doris-operator";
/// Selects the pods of Doris components.
pub const POD_SELECTOR: &str = "app.doris.ownerreference/name";
/// Selects the Events of a StatefulSet's controller that say why it could
/// not make a pod.
pub const FAILED_CREATE_SELECTOR: &str = "reason=FailedCreate,involvedObject.kind=StatefulSet";

/// Read-only views of the reflector caches.
#[derive(Clone)]
pub struct Stores {
    pub statefulsets: Store<StatefulSet>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub autoscalers: Store<HorizontalPodAutoscaler>,
    pub pods: Store<Pod>,
    /// StatefulSets' `FailedCreate` Events ([`FAILED_CREATE_SELECTOR`]).
    pub failed_creates: Store<Event>,
    /// The pods by StatefulSet ([`statefulset_keys`]), and the owned
    /// objects by owner uid ([`owner_keys`]), as the watches filling the
    /// caches tell.
    pub by_statefulset: Arc<Index>,
    pub by_owner: Arc<Index>,
}

/// The keys of an owned object: the uids of its owners.
pub fn owner_keys(meta: &ObjectMeta) -> Vec<String> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect()
}

/// The key of a pod: the StatefulSet its owner label names.
pub fn statefulset_keys(meta: &ObjectMeta) -> Vec<String> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(POD_SELECTOR))
        .map(|owner| {
            vec![pod_key(
                meta.namespace.as_deref().unwrap_or_default(),
                owner,
            )]
        })
        .unwrap_or_default()
}

impl Stores {
    /// Keeps the owner index in step with a watch event of a cache of
    /// owned objects.
    pub fn index_owned<K: Resource<DynamicType = ()>>(
        &self,
        event: &kube::runtime::watcher::Event<K>,
    ) {
        self.by_owner.observe(event, owner_keys);
    }

    /// Waits until every cache has its first full list, at most `limit`,
    /// and names the caches still without one. Called once, before the
    /// controllers start: a reconcile that read a cache still filling would
    /// take a missing object for one to make, and a converged cluster would
    /// be written to after every start of the operator. (A watch that lists
    /// again later swaps its cache whole once the new list is in, so the
    /// caches stay whole after a re-list too.) Waited on one at a time: a
    /// cache's readiness wakes only its last waiter.
    pub async fn synced(&self, limit: std::time::Duration) -> Vec<&'static str> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut missing = Vec::new();
        macro_rules! wait {
            ($store:expr, $name:expr) => {
                let ready = tokio::time::timeout_at(deadline, $store.wait_until_ready()).await;
                if !matches!(ready, Ok(Ok(()))) {
                    missing.push($name);
                }
            };
        }
        wait!(self.statefulsets, "statefulsets");
        wait!(self.services, "services");
        wait!(self.config_maps, "configmaps");
        wait!(self.autoscalers, "horizontalpodautoscalers");
        wait!(self.pods, "pods");
        wait!(self.failed_creates, "events");
        missing
    }

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

    /// Whether objects of `kind` are cached (and so pruned from the cache).
    pub fn caches(&self, kind: &str) -> bool {
        matches!(
            kind,
            "StatefulSet" | "Service" | "ConfigMap" | "HorizontalPodAutoscaler"
        )
    }

    /// (apiVersion, kind, name) of every cached object owned by `uid`.
    pub fn owned_by(&self, uid: &str, namespace: &str) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = self
            .by_owner
            .get(uid)
            .into_iter()
            .filter(|(_, ns, _)| ns == namespace)
            .filter_map(|(kind, _, name)| {
                let api_version = match kind {
                    "StatefulSet" => "apps/v1",
                    "HorizontalPodAutoscaler" => "autoscaling/v2",
                    "Service" | "ConfigMap" => "v1",
                    _ => return None,
                };
                Some((api_version.to_string(), kind.to_string(), name))
            })
            .collect();
        out.sort();
        out
    }

    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        self.statefulsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// Pods of one cluster: those whose owner label names one of its
    /// StatefulSets.
    pub fn cluster_pods(&self, namespace: &str, owners: &[String]) -> Vec<Arc<Pod>> {
        let mut pods: Vec<_> = owners
            .iter()
            .flat_map(|owner| self.by_statefulset.get(&pod_key(namespace, owner)))
            .filter_map(|(_, ns, name)| self.pods.get(&ObjectRef::new(&name).within(&ns)))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods.dedup_by(|a, b| a.metadata.name == b.metadata.name);
        pods
    }
}

/// An Event as the caches keep it: the object it is about, its message and
/// its times.
pub fn slim_event(event: &mut Event) {
    slim_metadata(&mut event.metadata, false, |_| false);
    event.source = None;
    event.related = None;
    event.series = None;
    event.reporting_component = None;
    event.reporting_instance = None;
    event.action = None;
}

/// Keeps of a cached object's metadata what the controller reads: name,
/// namespace, uid, generation, resourceVersion, timestamps, owners, and the
/// annotations `keep` accepts. managedFields go first: they are often
/// the largest part of an object.
fn slim_metadata(meta: &mut ObjectMeta, keep_labels: bool, keep: impl Fn(&str) -> bool) {
    meta.managed_fields = None;
    if !keep_labels {
        meta.labels = None;
    }
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|k, _| keep(k));
    }
}

/// A container as the caches keep it: its name, image and environment
/// (the FE's `ELECT_NUMBER` is compared with the plan's).
fn slim_container(c: &mut Container, keep_env: bool) {
    *c = Container {
        name: std::mem::take(&mut c.name),
        image: c.image.take(),
        env: if keep_env { c.env.take() } else { None },
        ..Default::default()
    };
}

/// A StatefulSet as the caches keep it. Read: the applied hash, owners,
/// generation; replicas, update strategy, the pod template's annotations
/// and containers (name, image, env); status.
pub fn slim_statefulset(sts: &mut StatefulSet) {
    slim_metadata(&mut sts.metadata, false, |k| k == APPLIED_HASH_ANNOTATION);
    {
        let spec = &mut sts.spec;
        let template_annotations = spec
            .template
            .metadata
            .as_mut()
            .and_then(|m| m.annotations.take());
        let mut containers = spec
            .template
            .spec
            .as_mut()
            .map(|s| std::mem::take(&mut s.containers))
            .unwrap_or_default();
        containers.iter_mut().for_each(|c| slim_container(c, true));
        // Of the claim templates, the names and storage requests (volume
        // growth compares them).
        let claim_templates = spec.volume_claim_templates.take().map(|templates| {
            templates
                .into_iter()
                .map(|t| k8s_openapi::api::core::v1::PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: t.metadata.name,
                        ..Default::default()
                    },
                    spec: t
                        .spec
                        .map(|s| k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
                            resources: s.resources,
                            ..Default::default()
                        }),
                    status: None,
                })
                .collect()
        });
        *spec = StatefulSetSpec {
            replicas: spec.replicas,
            update_strategy: spec.update_strategy.take(),
            volume_claim_templates: claim_templates,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    annotations: template_annotations,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers,
                    ..Default::default()
                }),
            },
            ..Default::default()
        };
    }
}

/// Services, ConfigMaps and autoscalers as the caches keep them: metadata
/// only (the applied hash and owners are all that is read of them).
pub fn slim_service(svc: &mut Service) {
    slim_metadata(&mut svc.metadata, false, |k| k == APPLIED_HASH_ANNOTATION);
    svc.spec = None;
    svc.status = None;
}

pub fn slim_config_map(cm: &mut ConfigMap) {
    // Besides the applied hash, what a part's ConfigMap says its pods are
    // current with (see `live_config`).
    slim_metadata(&mut cm.metadata, false, |k| {
        k == APPLIED_HASH_ANNOTATION
            || k == super::live_config::FILES_HASH_ANNOTATION
            || k == super::live_config::RESTART_HASH_ANNOTATION
    });
    cm.data = None;
    cm.binary_data = None;
}

pub fn slim_autoscaler(hpa: &mut HorizontalPodAutoscaler) {
    slim_metadata(&mut hpa.metadata, false, |k| k == APPLIED_HASH_ANNOTATION);
    hpa.spec = Default::default();
    hpa.status = None;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A managedFields entry, as the API server adds to every object.
    pub(crate) fn managed_fields() -> serde_json::Value {
        json!([{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}])
    }

    #[test]
    fn a_slim_statefulset_keeps_what_rollout_status_and_membership_read() {
        let mut sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {
                "name": "d-fe", "namespace": "n", "generation": 3,
                "labels": {"app.kubernetes.io/managed-by": "doris-operator"},
                "annotations": {APPLIED_HASH_ANNOTATION: "h1", "other": "x"},
                "ownerReferences": [{"apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
                                     "name": "d", "uid": "u1"}],
                "managedFields": managed_fields(),
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"a": "b"}},
                "serviceName": "d-fe-internal",
                "updateStrategy": {"type": "OnDelete"},
                "template": {
                    "metadata": {"labels": {"a": "b"},
                                 "annotations": {"doris.selectdb.com/config-hash": "c1"}},
                    "spec": {
                        "containers": [{"name": "fe", "image": "fe:1",
                                        "env": [{"name": "ELECT_NUMBER", "value": "3"}],
                                        "ports": [{"containerPort": 9030}]}],
                        "initContainers": [{"name": "init", "image": "busybox"}],
                    }
                },
                "volumeClaimTemplates": [{"metadata": {"name": "meta", "labels": {"a": "b"}},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "10Gi"}}}}],
            },
            "status": {"replicas": 3, "readyReplicas": 2, "updateRevision": "d-fe-2",
                       "currentRevision": "d-fe-1", "observedGeneration": 3}
        }))
        .unwrap();
        let before = sts.clone();
        slim_statefulset(&mut sts);
        assert!(sts.metadata.managed_fields.is_none());
        assert_eq!(
            sts.metadata.annotations,
            Some([(APPLIED_HASH_ANNOTATION.to_string(), "h1".to_string())].into())
        );
        assert_eq!(
            sts.metadata.owner_references,
            before.metadata.owner_references
        );
        assert_eq!(sts.metadata.generation, Some(3));
        assert_eq!(sts.spec.replicas, Some(3));
        assert_eq!(sts.spec.update_strategy, before.spec.update_strategy);
        // Of the claim templates, names and storage requests only.
        let claims = sts.spec.volume_claim_templates.as_ref().unwrap();
        assert_eq!(claims[0].metadata.name.as_deref(), Some("meta"));
        assert!(claims[0].metadata.labels.is_none());
        let claim = claims[0].spec.as_ref().unwrap();
        assert!(claim.access_modes.is_none());
        assert_eq!(
            claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
            "10Gi"
        );
        let template = &sts.spec.template;
        assert_eq!(
            template.metadata.as_ref().unwrap().annotations,
            before.spec.template.metadata.as_ref().unwrap().annotations
        );
        let pod_spec = template.spec.as_ref().unwrap();
        assert!(pod_spec.init_containers.is_none());
        assert_eq!(pod_spec.containers[0].image.as_deref(), Some("fe:1"));
        assert!(pod_spec.containers[0].ports.is_none());
        assert_eq!(sts.status, before.status);
        // The FE's election number still reads as it was.
        let planned = json!({"kind": "StatefulSet", "metadata": {"name": "d-fe"},
            "spec": {"template": {"spec": {"containers": [
                {"env": [{"name": "ELECT_NUMBER", "value": "5"}]}]}}}});
        assert!(
            super::super::membership::election_change(&[planned], Some(Arc::new(sts))).is_some(),
            "a changed electionNumber is still noticed"
        );
    }

    #[test]
    fn slim_owned_objects_keep_their_applied_hash_and_owner() {
        let meta = json!({
            "name": "d-fe-conf", "namespace": "n",
            "annotations": {APPLIED_HASH_ANNOTATION: "h2"},
            "ownerReferences": [{"apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
                                 "name": "d", "uid": "u1"}],
            "managedFields": managed_fields(),
        });
        let mut cm: ConfigMap =
            serde_json::from_value(json!({"metadata": meta, "data": {"fe.conf": "x = 1"}}))
                .unwrap();
        slim_config_map(&mut cm);
        assert!(cm.data.is_none() && cm.metadata.managed_fields.is_none());
        let mut svc: Service =
            serde_json::from_value(json!({"metadata": meta, "spec": {"ports": [{"port": 9030}]}}))
                .unwrap();
        slim_service(&mut svc);
        assert!(svc.spec.is_none());
        let (store, mut writer) = kube::runtime::reflector::store::<ConfigMap>();
        let cm_copy = cm.clone();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(cm));
        let (svc_store, mut svc_writer) = kube::runtime::reflector::store::<Service>();
        let svc_copy = svc.clone();
        svc_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(svc));
        let stores = Stores {
            statefulsets: kube::runtime::reflector::store().0,
            services: svc_store,
            config_maps: store,
            autoscalers: kube::runtime::reflector::store().0,
            pods: kube::runtime::reflector::store().0,
            failed_creates: kube::runtime::reflector::store().0,
            by_statefulset: Default::default(),
            by_owner: Default::default(),
        };
        stores.index_owned(&kube::runtime::watcher::Event::Apply(cm_copy));
        stores.index_owned(&kube::runtime::watcher::Event::Apply(svc_copy));
        assert_eq!(
            stores.applied_hash("ConfigMap", "n", "d-fe-conf"),
            Some(Some("h2".to_string()))
        );
        assert_eq!(
            stores.owned_by("u1", "n"),
            [
                (
                    "v1".to_string(),
                    "ConfigMap".to_string(),
                    "d-fe-conf".to_string()
                ),
                (
                    "v1".to_string(),
                    "Service".to_string(),
                    "d-fe-conf".to_string()
                ),
            ]
        );
    }
}
