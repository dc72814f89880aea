//! Caches of the kinds the operator writes that its typed caches do not
//! hold: a ServiceMonitor, a PodDisruptionBudget, whatever a convention's
//! template makes. Each kind is watched, metadata only and selected by the
//! operator's `managed-by` label, from the first time a plan makes it (or a
//! cluster's record names it), in the namespaces the operator watches.
//! Applying reads a kind's applied hashes from its cache, and pruning its
//! objects; the API is read only while a cache has not yet listed its kind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use super::stores::MANAGED_SELECTOR;
use crate::plan::APPLIED_HASH_ANNOTATION;

/// The cache of one kind: its objects' metadata.
pub type MetaStore = Store<PartialObjectMeta<DynamicObject>>;

/// How long the reconcile that starts a kind's cache waits for its first
/// list before it reads the API instead.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);

/// The caches of the kinds the typed caches do not hold, by API resource.
pub struct Watched {
    client: Client,
    /// The namespace the operator watches; all when `None`.
    namespace: Option<String>,
    kinds: Mutex<HashMap<(String, String), MetaStore>>,
    /// Every change of a cached object, for the reconcile of its owner.
    changes: futures::channel::mpsc::UnboundedSender<ObjectMeta>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Watched {
    pub fn new(
        client: Client,
        namespace: Option<String>,
        changes: futures::channel::mpsc::UnboundedSender<ObjectMeta>,
    ) -> Watched {
        Watched {
            client,
            namespace,
            kinds: Default::default(),
            changes,
            tasks: Default::default(),
        }
    }

    /// The cache of `resource`'s kind once it has listed its objects:
    /// started the first time the kind is asked about (that first time,
    /// after waiting a little for the list), `None` while it has not listed
    /// them yet (or cannot: without RBAC to list and watch the kind).
    pub async fn synced(&self, resource: &ApiResource) -> Option<MetaStore> {
        let (store, started) = self.watch(resource);
        let ready = if started {
            tokio::time::timeout(FIRST_LIST_WAIT, store.wait_until_ready())
                .await
                .is_ok_and(|r| r.is_ok())
        } else {
            store
                .wait_until_ready()
                .now_or_never()
                .is_some_and(|r| r.is_ok())
        };
        ready.then_some(store)
    }

    /// The cache of `resource`'s kind, and whether this call started it.
    fn watch(&self, resource: &ApiResource) -> (MetaStore, bool) {
        let key = (resource.api_version.clone(), resource.kind.clone());
        let mut kinds = self.kinds.lock().expect("lock");
        if let Some(store) = kinds.get(&key) {
            return (store.clone(), false);
        }
        let writer = Writer::new(resource.clone());
        let store = writer.as_reader();
        // Metadata only: `Api<PartialObjectMeta<_>>` asks for nothing else.
        let api: Api<PartialObjectMeta<DynamicObject>> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        let changes = self.changes.clone();
        let kind = resource.kind.clone();
        let stream = watcher(api, super::stores::list_config().labels(MANAGED_SELECTOR))
            .default_backoff()
            .modify(|o: &mut PartialObjectMeta<DynamicObject>| o.metadata.managed_fields = None)
            .reflect(writer)
            .touched_objects();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(change) = stream.next().await {
                match change {
                    Ok(o) => {
                        let _ = changes.unbounded_send(o.metadata);
                    }
                    Err(e) => {
                        tracing::debug!(%kind, error = %e, "watch failed; it is retried")
                    }
                }
            }
        });
        self.tasks.lock().expect("lock").push(task);
        kinds.insert(key, store.clone());
        (store, true)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

/// The applied hash of `namespace`/`name` in `store`, the cache of
/// `resource`'s kind (`None` when absent or unmarked).
pub fn applied_hash(
    store: &MetaStore,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
) -> Option<String> {
    store
        .get(&ObjectRef::new_with(name, resource.clone()).within(namespace))
        .and_then(|o| o.annotations().get(APPLIED_HASH_ANNOTATION).cloned())
}

/// The objects in `store` of `namespace` owned by `uid`, as (name, whether
/// it is being deleted).
pub fn owned_by(store: &MetaStore, uid: &str, namespace: &str) -> Vec<(String, bool)> {
    let mut out: Vec<_> = store
        .state()
        .into_iter()
        .filter(|o| {
            o.namespace().as_deref() == Some(namespace)
                && o.owner_references().iter().any(|r| r.uid == uid)
        })
        .map(|o| (o.name_any(), o.metadata.deletion_timestamp.is_some()))
        .collect();
    out.sort();
    out
}
