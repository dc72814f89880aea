//! What happens to Doris data when a cluster is deleted. By default the
//! PersistentVolumeClaims stay (they are not owned by the cluster). A user
//! who wants them gone says so with the annotation
//! `doris.selectdb.com/delete-pvcs-on-delete: "true"`; the operator then
//! holds the cluster with a finalizer until it has deleted the claims of
//! every component's StatefulSet.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::Error;
use super::kinds::DorisResource;

/// The annotation asking for the cluster's PVCs to be deleted with it.
pub const DELETE_PVCS_ANNOTATION: &str = "doris.selectdb.com/delete-pvcs-on-delete";
/// The finalizer that holds a cluster until its PVCs are deleted.
pub const FINALIZER: &str = "doris.selectdb.com/pvc-cleanup";

/// Whether the user asked for the cluster's PVCs to go with it.
pub fn wants_pvcs_deleted<K: DorisResource>(cluster: &K) -> bool {
    cluster
        .annotations()
        .get(DELETE_PVCS_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub fn has_finalizer<K: DorisResource>(cluster: &K) -> bool {
    cluster.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds or removes the finalizer to match the annotation.
pub async fn sync_finalizer<K: DorisResource>(client: &Client, cluster: &K) -> Result<bool, Error> {
    let wanted = wants_pvcs_deleted(cluster);
    if wanted == has_finalizer(cluster) {
        return Ok(false);
    }
    let mut finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if wanted {
        finalizers.push(FINALIZER.to_string());
    }
    patch_finalizers(client, cluster, finalizers).await?;
    Ok(true)
}

/// On deletion: removes the cluster's StatefulSets first (so nothing
/// recreates a claim for a pod it restarts), then deletes the claims of
/// each (`<claim template>-<cluster>-<component>-<ordinal>`), then releases
/// the cluster. Returns `None` while StatefulSets are still going away.
pub async fn cleanup<K: DorisResource>(
    client: &Client,
    cluster: &K,
) -> Result<Option<Vec<String>>, Error> {
    let namespace = cluster.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let statefulsets = cluster.cluster().statefulset_names();
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let mut remaining = false;
    for sts in &statefulsets {
        if sts_api.get_opt(sts).await.map_err(Error::Kube)?.is_some() {
            remaining = true;
            match sts_api.delete(sts, &DeleteParams::foreground()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }
    if remaining {
        return Ok(None);
    }
    let mut deleted = Vec::new();
    for pvc in api
        .list(&ListParams::default())
        .await
        .map_err(Error::Kube)?
    {
        let pvc_name = pvc.name_any();
        if statefulsets.iter().any(|sts| claim_of(&pvc_name, sts)) {
            match api.delete(&pvc_name, &DeleteParams::default()).await {
                Ok(_) => deleted.push(pvc_name),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
    }
    let finalizers = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(client, cluster, finalizers).await?;
    Ok(Some(deleted))
}

/// Whether a claim name is `<template>-<sts>-<ordinal>`.
fn claim_of(pvc: &str, sts: &str) -> bool {
    let Some((head, ordinal)) = pvc.rsplit_once('-') else {
        return false;
    };
    !ordinal.is_empty()
        && ordinal.bytes().all(|b| b.is_ascii_digit())
        && head.ends_with(&format!("-{sts}"))
        && head.len() > sts.len() + 1
}

async fn patch_finalizers<K: DorisResource>(
    client: &Client,
    cluster: &K,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(client.clone(), &cluster.namespace().unwrap_or_default());
    // The resourceVersion makes this fail on a concurrent change instead of
    // overwriting someone else's finalizer.
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": cluster.resource_version(),
        }
    });
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_matched_by_statefulset_and_ordinal() {
        assert!(claim_of("data-doris-be-0", "doris-be"));
        assert!(claim_of("be-storage-doris-be-12", "doris-be"));
        assert!(!claim_of("data-doris-be-x", "doris-be"));
        assert!(!claim_of("doris-be-0", "doris-be"));
        assert!(!claim_of("data-other-doris-be2-0", "doris-be"));
        assert!(!claim_of("data-doris-fe-0", "doris-be"));
    }
}
