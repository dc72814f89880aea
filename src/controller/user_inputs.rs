//! What a plan reads besides the cluster: the data of the ConfigMaps the
//! cluster names, and the key names of the Secrets it mounts beside other
//! files.
//!
//! A reconcile reads a named ConfigMap from the API server only when it
//! changed: [`UserConfigMaps`] keeps each one's data by resourceVersion,
//! and a metadata-only watch of the ConfigMaps (which also wakes the
//! clusters that name one when it changes) tells the version there is now.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::cluster::ClusterRef;
use crate::plan;

use super::Error;

/// The data of the user's ConfigMaps that clusters name, each kept with
/// the resourceVersion it was read at.
pub struct UserConfigMaps {
    /// Every ConfigMap's metadata in the watched namespaces.
    meta: Store<PartialObjectMeta<ConfigMap>>,
    /// The namespace watched; `None`: all.
    watched: Option<String>,
    /// (namespace, name) → what was read.
    data: Mutex<HashMap<(String, String), Read>>,
    /// Held while a changed ConfigMap is read, so that the reconciles that
    /// find it changed at once (many clusters naming one ConfigMap, at a
    /// start) read it once between them.
    reading: tokio::sync::Mutex<()>,
}

/// A ConfigMap's resourceVersion and data, as read.
type Read = (String, BTreeMap<String, String>);

impl UserConfigMaps {
    pub fn new(meta: Store<PartialObjectMeta<ConfigMap>>, watched: Option<String>) -> Self {
        UserConfigMaps {
            meta,
            watched,
            data: Mutex::default(),
            reading: tokio::sync::Mutex::default(),
        }
    }

    /// Waits for the watch's first full list (until then every ConfigMap
    /// would look absent), at most `limit`; whether it came.
    pub async fn synced(&self, limit: std::time::Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.meta.wait_until_ready()).await,
            Ok(Ok(()))
        )
    }

    /// The data of ConfigMap `namespace/name`: what was read before when
    /// the watch shows the same version, else read now; `None` when it
    /// does not exist.
    async fn one(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let key = (namespace.to_string(), name.to_string());
        let covered = self.watched.as_deref().is_none_or(|w| w == namespace);
        if covered && let Some(known) = self.known(&key) {
            return Ok(known);
        }
        let _reading = self.reading.lock().await;
        // Another reconcile may have read it while this one waited.
        if covered && let Some(known) = self.known(&key) {
            return Ok(known);
        }
        let Some(cm) = read(client, namespace, name).await? else {
            return Ok(None);
        };
        let version = cm.resource_version().unwrap_or_default();
        let data = cm.data.unwrap_or_default();
        if covered {
            self.data
                .lock()
                .expect("lock")
                .insert(key, (version, data.clone()));
        }
        Ok(Some(data))
    }

    /// What the watch and the reads so far tell of the ConfigMap `key` in
    /// a watched namespace: `Some(None)` when it does not exist,
    /// `Some(data)` when it was read at the version the watch shows, and
    /// `None` when it must be read.
    fn known(&self, key: &(String, String)) -> Option<Option<BTreeMap<String, String>>> {
        let (namespace, name) = key;
        let mut data = self.data.lock().expect("lock");
        let Some(meta) = self.meta.get(&ObjectRef::new(name).within(namespace)) else {
            // Not there (its creation wakes the cluster).
            data.remove(key);
            return Some(None);
        };
        let version = meta.resource_version().unwrap_or_default();
        match data.get(key) {
            Some((read_at, kept)) if *read_at == version => Some(Some(kept.clone())),
            _ => None,
        }
    }
}

/// The names of the ConfigMaps a cluster reads: those its parts mount.
pub(super) fn config_map_names(cluster: ClusterRef<'_>) -> Vec<(String, String)> {
    let namespace = cluster.namespace();
    let mut names: Vec<(String, String)> = Vec::new();
    for part in cluster.parts() {
        let Some(info) = part.base.config_map_info.as_ref() else {
            continue;
        };
        let found = info.config_map_name.iter().chain(
            info.config_maps
                .iter()
                .flatten()
                .filter_map(|m| m.config_map_name.as_ref()),
        );
        for name in found {
            if !name.is_empty() && !names.iter().any(|(_, n)| n == name) {
                names.push((namespace.clone(), name.clone()));
            }
        }
    }
    names.extend(cluster.external_config_maps());
    names
}

/// The data of the ConfigMaps the cluster names (reads, never writes),
/// through `cache` when there is one. One in another namespace is keyed
/// `<namespace>/<name>`.
pub async fn user_config_maps(
    client: &Client,
    cluster: ClusterRef<'_>,
    cache: Option<&UserConfigMaps>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let own = cluster.namespace();
    let mut out = BTreeMap::new();
    for (namespace, name) in config_map_names(cluster) {
        let data = match cache {
            Some(cache) => cache.one(client, &namespace, &name).await?,
            None => read(client, &namespace, &name)
                .await?
                .map(|cm| cm.data.unwrap_or_default()),
        };
        let Some(data) = data else { continue };
        let key = if namespace == own {
            name
        } else {
            format!("{namespace}/{name}")
        };
        out.insert(key, data);
    }
    Ok(out)
}

async fn read(client: &Client, namespace: &str, name: &str) -> Result<Option<ConfigMap>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.map_err(Error::Kube)
}

/// The keys of the Secrets the cluster mounts in a directory with other
/// files, which decide whether their file names collide (reads, never
/// writes; only the key names are kept). A Secret that does not exist yet
/// is left out: its pods wait for it, and it is checked once it exists.
pub async fn user_secret_keys(
    client: &Client,
    cluster: ClusterRef<'_>,
    namespace: &str,
) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>, Error> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = BTreeMap::new();
    for name in plan::mounts::secrets_to_read(cluster) {
        if let Some(secret) = api.get_opt(&name).await.map_err(Error::Kube)? {
            let keys = secret
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(secret.string_data.iter().flat_map(|d| d.keys()))
                .cloned()
                .collect();
            out.insert(name, keys);
        }
    }
    Ok(out)
}
