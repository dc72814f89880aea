//! Writing planned objects: server-side apply under one field manager, and
//! only for objects whose rendering changed. Each planned object carries the
//! hash of its own content (`doris.selectdb.com/applied-hash`, set by the
//! plan); an object whose live copy in the cache carries the same hash is
//! not written, so a converged cluster costs no API writes.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::pinned_kind;
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::Error;
use super::stores::Stores;
use crate::plan::APPLIED_HASH_ANNOTATION;

/// The field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "doris-operator";

/// The outcome of applying one cluster's objects.
#[derive(Debug, Default)]
pub struct Applied {
    /// `Kind/name` of every object written.
    pub written: Vec<String>,
}

/// Resolves kinds to API resources, asking discovery once per kind the
/// operator does not know by heart.
#[derive(Default)]
pub struct Resources {
    cache: Mutex<HashMap<(String, String), ApiResource>>,
}

impl Resources {
    async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.cache.lock().expect("lock").get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = match known_plural(kind) {
            Some(plural) => ApiResource::from_gvk_with_plural(&gvk, plural),
            None => pinned_kind(client, &gvk).await.map_err(Error::Kube)?.0,
        };
        self.cache
            .lock()
            .expect("lock")
            .insert(key, resource.clone());
        Ok(resource)
    }
}

pub fn known_plural(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "StatefulSet" => "statefulsets",
        "Secret" => "secrets",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers",
        _ => return None,
    })
}

/// Applies every object whose live copy differs from the plan.
pub async fn apply_all(
    client: &Client,
    resources: &Resources,
    stores: &Stores,
    objects: &[Value],
) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let wanted = object["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str();
        let resource = resources.resolve(client, api_version, kind).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let live_hash = match stores.applied_hash(kind, namespace, name) {
            Some(cached) => cached,
            // A kind without a cache: read it (a read, not a write).
            None => api
                .get_opt(name)
                .await
                .map_err(Error::Kube)?
                .and_then(|o| o.annotations().get(APPLIED_HASH_ANNOTATION).cloned()),
        };
        if wanted.is_some() && live_hash.as_deref() == wanted {
            continue;
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(Error::Kube)?;
        applied.written.push(format!("{kind}/{name}"));
    }
    Ok(applied)
}

/// Deletes objects the operator made for this cluster that the plan no
/// longer has (a component removed from the spec). PersistentVolumeClaims
/// are never among them.
pub async fn prune(
    client: &Client,
    resources: &Resources,
    stores: &Stores,
    cluster_uid: &str,
    namespace: &str,
    objects: &[Value],
) -> Result<Vec<String>, Error> {
    let wanted: std::collections::HashSet<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut deleted = Vec::new();
    for (api_version, kind, name) in stores.owned_by(cluster_uid, namespace) {
        if wanted.contains(&(kind.clone(), name.clone())) {
            continue;
        }
        let resource = resources.resolve(client, &api_version, &kind).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(format!("{kind}/{name}")),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok(deleted)
}
