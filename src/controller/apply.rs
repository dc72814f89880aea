//! Writing planned objects: server-side apply under one field manager, and
//! only for objects whose rendering changed. Each planned object carries the
//! hash of its own content (`doris.selectdb.com/applied-hash`, set by the
//! plan); an object whose live copy in the cache carries the same hash is
//! not written, so a converged cluster costs no API writes.
//!
//! An object the API server refuses to take (422 Invalid, 403 Forbidden,
//! 400, or a 409 Conflict that comes back [`PERSISTENT_CONFLICTS`] times in
//! a row) is a [`Refusal`]: it will be refused again until the spec, the
//! conventions or the operator's rights change, so the reconcile reports it
//! in status rather than only retrying.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::pinned_kind;
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::Error;
use super::dynamic::{self, Watched};
use super::stores::Stores;
use crate::plan::APPLIED_HASH_ANNOTATION;

/// The field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "doris-operator";

/// Conflicts on one object in a row after which it counts as refused.
pub const PERSISTENT_CONFLICTS: u32 = 3;

/// An object the API server refused: which one, and the server's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `Kind/name`.
    pub object: String,
    pub code: u16,
    /// The Status reason: `Invalid`, `Forbidden`, `Conflict` ...
    pub reason: String,
    /// The API server's own message.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the API server refused {} ({} {}): {}",
            self.object, self.code, self.reason, self.message
        )
    }
}
/// The field manager that holds a StatefulSet's `replicas` for its
/// autoscaler: the operator applies `replicas` only when it creates the
/// StatefulSet, and before its own applies leave the field out, ownership
/// passes to this manager, so server-side apply does not reset the count
/// to its default (Kubernetes' documented hand-over to an autoscaler).
pub const REPLICAS_HANDOVER_MANAGER: &str = "doris-operator-replicas-handover";

/// The outcome of applying one cluster's objects.
#[derive(Debug, Default)]
pub struct Applied {
    /// `Kind/name` of every object written.
    pub written: Vec<String>,
}

/// What applying keeps between reconciles: kinds resolved to API resources
/// (discovery is asked once per kind the operator does not know by heart),
/// and the conflicts each object met in a row.
#[derive(Default)]
pub struct Resources {
    cache: Mutex<HashMap<(String, String), ApiResource>>,
    conflicts: Mutex<HashMap<String, u32>>,
}

impl Resources {
    /// Classifies a failed request about `kind`/`name` in `namespace`:
    /// a refusal, or an error worth retrying as it is.
    fn refusal(&self, namespace: &str, kind: &str, name: &str, error: kube::Error) -> Error {
        let kube::Error::Api(status) = &error else {
            return Error::Kube(error);
        };
        let object = format!("{kind}/{name}");
        let key = format!("{namespace}/{object}");
        let refused = match status.code {
            400 | 403 | 422 => true,
            409 => {
                let mut conflicts = self.conflicts.lock().expect("lock");
                let seen = conflicts.entry(key.clone()).or_default();
                *seen += 1;
                *seen >= PERSISTENT_CONFLICTS
            }
            _ => false,
        };
        if !refused {
            return Error::Kube(error);
        }
        Error::ApplyRefused(Refusal {
            object,
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        })
    }

    fn accepted(&self, namespace: &str, kind: &str, name: &str) {
        let mut conflicts = self.conflicts.lock().expect("lock");
        if !conflicts.is_empty() {
            conflicts.remove(&format!("{namespace}/{kind}/{name}"));
        }
    }

    /// The API resource of a kind (its plural from discovery when the
    /// operator does not know it by heart).
    pub async fn resolve(
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
/// `autoscaled` names the StatefulSets whose replicas an autoscaler owns
/// (see [`crate::plan::Plan::autoscaled`]): their `replicas` is applied
/// only when they are created.
pub async fn apply_all(
    client: &Client,
    resources: &Resources,
    stores: &Stores,
    watched: &Watched,
    objects: &[Value],
    autoscaled: &BTreeMap<String, i32>,
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
            // A kind the typed caches do not hold: its own cache, once it
            // has listed the kind; until then the API (a read, not a write).
            None => match watched.synced(&resource).await {
                Some(store) => dynamic::applied_hash(&store, &resource, namespace, name),
                None => api
                    .get_opt(name)
                    .await
                    .map_err(|e| resources.refusal(namespace, kind, name, e))?
                    .and_then(|o| o.annotations().get(APPLIED_HASH_ANNOTATION).cloned()),
            },
        };
        if wanted.is_some() && live_hash.as_deref() == wanted {
            continue;
        }
        let mut object = std::borrow::Cow::Borrowed(object);
        if kind == "StatefulSet" && autoscaled.contains_key(name) {
            // Who owns `replicas` is in managedFields, which the cache does
            // not keep, and the cache may not have seen a StatefulSet made a
            // moment ago: the API's copy decides. A read, and only when the
            // StatefulSet is about to be written.
            let typed: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
            let live = typed.get_opt(name).await.map_err(Error::Kube)?;
            if let Some(live) = live {
                hand_over_replicas(client, &live).await?;
                if let Some(spec) = object.to_mut()["spec"].as_object_mut() {
                    spec.remove("replicas");
                }
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &params, &Patch::Apply(object.as_ref()))
            .await
            .map_err(|e| resources.refusal(namespace, kind, name, e))?;
        resources.accepted(namespace, kind, name);
        applied.written.push(format!("{kind}/{name}"));
    }
    Ok(applied)
}

/// Before the operator's apply leaves `replicas` out of `live`, passes the
/// field to [`REPLICAS_HANDOVER_MANAGER`] if the operator owns it, with the
/// count it has now; otherwise server-side apply would reset it.
async fn hand_over_replicas(client: &Client, live: &StatefulSet) -> Result<(), Error> {
    let owned = applies_replicas(live);
    let (Some(name), Some(namespace), Some(replicas)) = (
        live.metadata.name.as_deref(),
        live.metadata.namespace.as_deref(),
        live.spec.replicas,
    ) else {
        return Ok(());
    };
    if !owned {
        return Ok(());
    }
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let replicas_only = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    });
    // Not forced: a conflict means another manager (the autoscaler) owns
    // the field already, which is all this is for.
    match api
        .patch(
            name,
            &PatchParams::apply(REPLICAS_HANDOVER_MANAGER),
            &Patch::Apply(&replicas_only),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Whether the operator's applies own `spec.replicas` of `live`.
fn applies_replicas(live: &StatefulSet) -> bool {
    live.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(FIELD_MANAGER)
            && m.operation.as_deref() == Some("Apply")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}

/// The annotation on a cluster naming the kinds of objects made for it that
/// the operator's caches do not hold (a PodDisruptionBudget a manifest
/// template makes, say), as `apiVersion/Kind` separated by commas. Pruning
/// lists these kinds; the annotation keeps a kind after the conventions
/// stop making it until its last object of the cluster is gone, so an
/// operator restart in between forgets nothing.
pub const EXTRA_KINDS_ANNOTATION: &str = "doris.selectdb.com/extra-kinds";

/// A kind as (apiVersion, kind).
pub type Kind = (String, String);

/// The kinds of `objects` that the operator's caches do not hold.
pub fn uncached_kinds(stores: &Stores, objects: &[Value]) -> BTreeSet<Kind> {
    objects
        .iter()
        .filter_map(|o| Some((o["apiVersion"].as_str()?, o["kind"].as_str()?)))
        .filter(|(_, kind)| !stores.caches(kind))
        .map(|(v, k)| (v.to_string(), k.to_string()))
        .collect()
}

/// The kinds [`EXTRA_KINDS_ANNOTATION`] names (what does not read as a
/// kind is left out: it names nothing the operator made).
pub fn recorded_kinds(annotations: Option<&BTreeMap<String, String>>) -> BTreeSet<Kind> {
    annotations
        .and_then(|a| a.get(EXTRA_KINDS_ANNOTATION))
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|k| crate::plan::objects::parse_api_resource(k.trim()).ok())
        .collect()
}

/// The value of [`EXTRA_KINDS_ANNOTATION`] for `kinds`; none when empty.
pub fn kinds_annotation(kinds: &BTreeSet<Kind>) -> Option<String> {
    (!kinds.is_empty()).then(|| {
        kinds
            .iter()
            .map(|(v, k)| format!("{v}/{k}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// What pruning did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// `Kind/name` of every object deleted.
    pub deleted: Vec<String>,
    /// The uncached kinds (of those asked about) that the plan still makes
    /// or of which an object of the cluster is still going away.
    pub kinds_left: BTreeSet<Kind>,
}

/// Deletes objects the operator made for this cluster that the plan no
/// longer has (a component removed from the spec, a template that no
/// longer makes an object): those in its caches, and those of the
/// `extra_kinds` the typed caches do not hold, from their own caches (listed
/// by the operator's label while a cache has not listed its kind yet). Only objects
/// labelled as the operator's and owned by the cluster go;
/// PersistentVolumeClaims are never among them.
#[allow(clippy::too_many_arguments)]
pub async fn prune(
    client: &Client,
    resources: &Resources,
    stores: &Stores,
    watched: &Watched,
    cluster_uid: &str,
    namespace: &str,
    objects: &[Value],
    extra_kinds: &BTreeSet<Kind>,
) -> Result<Pruned, Error> {
    let wanted: std::collections::HashSet<(&str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let mut owned = stores.owned_by(cluster_uid, namespace);
    let mut out = Pruned::default();
    for (api_version, kind) in extra_kinds {
        if kind == "PersistentVolumeClaim" || stores.caches(kind) {
            continue;
        }
        let resource = resources.resolve(client, api_version, kind).await?;
        let found = match watched.synced(&resource).await {
            Some(store) => dynamic::owned_by(&store, cluster_uid, namespace),
            None => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let listed = api
                    .list_metadata(&ListParams::default().labels(super::stores::MANAGED_SELECTOR))
                    .await
                    .map_err(Error::Kube)?;
                listed
                    .items
                    .into_iter()
                    .filter(|o| o.owner_references().iter().any(|r| r.uid == cluster_uid))
                    .map(|o| (o.name_any(), o.metadata.deletion_timestamp.is_some()))
                    .collect()
            }
        };
        for (name, deleting) in found {
            if deleting {
                // Going already: remembered until it is gone.
                out.kinds_left.insert((api_version.clone(), kind.clone()));
            } else {
                owned.push((api_version.clone(), kind.clone(), name));
            }
        }
    }
    for (api_version, kind, name) in owned {
        if wanted.contains(&(kind.as_str(), name.as_str())) {
            continue;
        }
        let resource = resources.resolve(client, &api_version, &kind).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => out.deleted.push(format!("{kind}/{name}")),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    // Left: the kinds the plan still makes, and those of objects still
    // going away.
    out.kinds_left.extend(
        extra_kinds
            .iter()
            .filter(|(api_version, kind)| {
                objects
                    .iter()
                    .any(|o| o["apiVersion"] == api_version.as_str() && o["kind"] == kind.as_str())
            })
            .cloned(),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let mut status = Status::failure(message, reason);
        status.code = code;
        kube::Error::Api(status.boxed())
    }

    fn refused(e: Error) -> Option<Refusal> {
        match e {
            Error::ApplyRefused(r) => Some(r),
            Error::Kube(_) => None,
        }
    }

    #[test]
    fn invalid_and_forbidden_are_refusals_at_once_and_name_the_object() {
        let r = Resources::default();
        let e = r.refusal(
            "ns",
            "Service",
            "d-fe-service",
            api_error(
                422,
                "Invalid",
                "Service \"d-fe-service\" is invalid: spec.ports[0].name: Invalid value",
            ),
        );
        let refusal = refused(e).expect("a refusal");
        assert_eq!(
            refusal.to_string(),
            "the API server refused Service/d-fe-service (422 Invalid): Service \"d-fe-service\" is invalid: spec.ports[0].name: Invalid value"
        );
        let e = r.refusal("ns", "ConfigMap", "c", api_error(403, "Forbidden", "no"));
        assert_eq!(refused(e).map(|r| r.code), Some(403));
        // What a retry may cure is not a refusal.
        for code in [500, 503, 429, 404] {
            let e = r.refusal("ns", "ConfigMap", "c", api_error(code, "x", "y"));
            assert!(refused(e).is_none(), "{code}");
        }
    }

    #[test]
    fn a_conflict_is_a_refusal_only_when_it_persists_on_the_same_object() {
        let r = Resources::default();
        let conflict = || api_error(409, "Conflict", "the object has been modified");
        for _ in 1..PERSISTENT_CONFLICTS {
            assert!(refused(r.refusal("ns", "StatefulSet", "a", conflict())).is_none());
            // Another object's conflicts count for that object only.
            assert!(refused(r.refusal("ns", "StatefulSet", "b", conflict())).is_none());
        }
        assert!(refused(r.refusal("ns", "StatefulSet", "a", conflict())).is_some());
        // Accepted once: the count starts again.
        r.accepted("ns", "StatefulSet", "b");
        assert!(refused(r.refusal("ns", "StatefulSet", "b", conflict())).is_none());
    }

    fn managed(entries: Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d-cn", "namespace": "n", "managedFields": entries},
            "spec": {"replicas": 5, "selector": {}, "serviceName": "s", "template": {}}
        }))
        .unwrap()
    }

    #[test]
    fn replicas_are_handed_over_only_while_the_operator_applies_them() {
        // As a real API server records them: the operator created the
        // StatefulSet with replicas; the autoscaler has not scaled it yet.
        let created = managed(json!([{
            "manager": "doris-operator", "operation": "Apply", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:serviceName": {}}}
        }]));
        assert!(applies_replicas(&created));
        // The autoscaler's update took the field over.
        let scaled = managed(json!([
            {"manager": "doris-operator", "operation": "Apply", "apiVersion": "apps/v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:serviceName": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
             "subresource": "scale", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]));
        assert!(!applies_replicas(&scaled));
        // Handed over already, or never recorded.
        let handed = managed(json!([
            {"manager": REPLICAS_HANDOVER_MANAGER, "operation": "Apply", "apiVersion": "apps/v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]));
        assert!(!applies_replicas(&handed));
        assert!(!applies_replicas(&managed(json!([]))));
    }
}
