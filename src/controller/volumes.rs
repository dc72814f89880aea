//! Volume growth. A StatefulSet's claim templates cannot change, so when a
//! planned claim template asks for more storage than the live one, the
//! operator resizes each existing claim of that template itself (the
//! StorageClass must allow expansion; the API server says when it does not)
//! and applies the StatefulSet with its claim templates as they are. A
//! smaller request is refused: volumes never shrink. Nothing else about a
//! claim template is touched here; the API server refuses other changes,
//! and the refusal is shown in status.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use crate::crd::VolumeResize;
use crate::metrics::Metrics;
use crate::plan::ComponentPlan;

/// What this reconcile did about volumes.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<(EventType, &'static str, String)>,
    /// A request that cannot be met (status shows it as Degraded).
    pub failure: Option<(&'static str, String)>,
    /// (object, claim template, storage) to put back into the planned
    /// StatefulSets: the live templates' requests.
    pub keep: Vec<(usize, usize, String)>,
    /// StatefulSets deleted (pods kept) to be made again: not applied
    /// until they are gone.
    pub recreated: Vec<String>,
    /// How far each grown claim has got; `None` when nothing was looked at
    /// (status keeps what it said).
    pub progress: Option<Vec<VolumeResize>>,
    /// When to look at the claims again, while a resize is under way.
    pub requeue: Option<std::time::Duration>,
}

impl Outcome {
    /// Puts the live claim templates' requests back into `objects`.
    pub fn keep_live_templates(&self, objects: &mut [Value]) {
        for (object, template, storage) in &self.keep {
            objects[*object]["spec"]["volumeClaimTemplates"][*template]["spec"]["resources"]["requests"]
                ["storage"] = json!(storage);
        }
    }
}

/// The uids of StatefulSets this operator deleted to make them again. Until
/// the cache stops showing one, its old templates are not read as live:
/// applying them would make the StatefulSet again with the old claim
/// template.
#[derive(Default)]
pub struct Recreating(Mutex<HashSet<String>>);

impl Recreating {
    fn has(&self, uid: &str) -> bool {
        self.0.lock().expect("lock").contains(uid)
    }
}

/// Resizes the claims of every planned StatefulSet (in `namespace`) whose
/// claim templates ask for more storage than the live ones, says which
/// planned templates must keep the live request, and how far the claims
/// grown (now, or before: `previous`) have got. `parts` say where each
/// StatefulSet's spec is in the CR, for messages.
pub async fn reconcile(
    ctx: &super::Context,
    namespace: &str,
    objects: &[Value],
    parts: &[ComponentPlan],
    previous: Option<&[VolumeResize]>,
) -> Outcome {
    let (client, stores, metrics, recreating) =
        (&ctx.client, &ctx.stores, &*ctx.metrics, &ctx.recreating);
    let mut out = Outcome::default();
    // (claim, part) of every claim asked to grow this time.
    let mut asked: Vec<(String, String)> = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        if object["kind"] != "StatefulSet" {
            continue;
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(live_sts) = stores.statefulset(namespace, &name) else {
            continue;
        };
        // Deleted (by this operator, or still going): it is made again,
        // with the planned templates, once it is gone.
        let uid = live_sts.metadata.uid.clone().unwrap_or_default();
        if live_sts.metadata.deletion_timestamp.is_some() || recreating.has(&uid) {
            out.recreated.push(name);
            continue;
        }
        let live_templates = live_sts
            .spec
            .volume_claim_templates
            .clone()
            .unwrap_or_default();
        let replicas = live_sts.spec.replicas.unwrap_or(1);
        if live_templates.is_empty() {
            continue;
        }
        let Some(templates) = object["spec"]["volumeClaimTemplates"].as_array() else {
            continue;
        };
        for (position, template) in templates.iter().enumerate() {
            let vct = template["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let Some(live) = live_templates
                .iter()
                .find(|t| t.metadata.name.as_deref() == Some(vct.as_str()))
            else {
                continue;
            };
            let old = live
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone());
            let new = template["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .map(str::to_string);
            let (Some(old), Some(new)) = (old, new) else {
                continue;
            };
            let (Some(old_bytes), Some(new_bytes)) = (bytes(&old), bytes(&new)) else {
                continue;
            };
            if new_bytes == old_bytes {
                continue;
            }
            // The StatefulSet keeps the template it has.
            out.keep.push((index, position, old.clone()));
            let owner = parts.iter().find(|c| c.names.statefulset == name);
            let part = owner.map_or_else(
                || name.clone(),
                |c| format!("{}.persistentVolumes", c.field),
            );
            let component = owner.map_or_else(|| name.clone(), |c| c.part.clone());
            if new_bytes < old_bytes {
                out.failure = Some((
                    "VolumeShrinkRefused",
                    format!(
                        "{part}: the claims of {vct} on StatefulSet {name} have {old} and \
                         cannot shrink to {new}: volumes only grow"
                    ),
                ));
                continue;
            }
            match grow(client, metrics, namespace, &vct, &name, replicas, &new).await {
                Ok((grown, claims)) => {
                    asked.extend(claims.into_iter().map(|c| (c, component.clone())));
                    if !grown.is_empty() {
                        out.events.push((
                            EventType::Normal,
                            "VolumeExpanding",
                            format!("{part}: claims {} resized to {new}", grown.join(", ")),
                        ));
                    }
                    // Every claim asks for the new size: the StatefulSet is
                    // made again with the new template, so that claims of
                    // pods added later start at it. Its pods keep running
                    // and are adopted by the new one. Until that is done,
                    // the next reconcile tries again.
                    match recreate(client, metrics, &live_sts).await {
                        Ok(()) => {
                            recreating.0.lock().expect("lock").insert(uid.clone());
                            out.recreated.push(name.clone());
                        }
                        Err(message) => {
                            out.failure = Some(("VolumeExpansionRefused", message));
                        }
                    }
                    if out.recreated.contains(&name) {
                        out.events.push((
                            EventType::Normal,
                            "StatefulSetRecreated",
                            format!(
                                "StatefulSet {name} deleted, its pods kept, to be made again \
                                 with claim template {vct} at {new}"
                            ),
                        ));
                    }
                }
                Err(message) => {
                    out.failure = Some((
                        "VolumeExpansionRefused",
                        format!("{part}: growing the claims of {vct} to {new}: {message}"),
                    ));
                }
            }
        }
    }
    out.progress = progress(client, namespace, previous, &asked).await;
    if out.progress.iter().flatten().any(|v| v.state != RESIZED) {
        // Nothing wakes the operator when a claim's status moves.
        out.requeue = Some(std::time::Duration::from_secs(5));
    }
    out
}

/// The state of a claim whose volume reached its request.
pub const RESIZED: &str = "Resized";

/// How far each grown claim has got: those asked to grow now (`asked`,
/// with their part) and those status still shows under way, all in
/// `namespace`. `None` when there are neither: status keeps what it says,
/// so a finished resize stays listed (as Resized) until the next one.
async fn progress(
    client: &Client,
    namespace: &str,
    previous: Option<&[VolumeResize]>,
    asked: &[(String, String)],
) -> Option<Vec<VolumeResize>> {
    let previous = previous.unwrap_or_default();
    let under_way = previous.iter().filter(|v| v.state != RESIZED);
    let mut look: Vec<(String, String)> = under_way
        .map(|v| (v.claim.clone(), v.component.clone()))
        .collect();
    if look.is_empty() && asked.is_empty() {
        return None;
    }
    for a in asked {
        if !look.iter().any(|(claim, _)| *claim == a.0) {
            look.push(a.clone());
        }
    }
    // A new resize lists its own claims; one still finishing stays listed.
    let mut out: Vec<VolumeResize> = if asked.is_empty() {
        previous.to_vec()
    } else {
        Vec::new()
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    for (claim, component) in look {
        let entry = match api.get_opt(&claim).await {
            Ok(Some(pvc)) => claim_progress(&pvc, &component),
            // Gone: nothing left to show.
            Ok(None) => None,
            // Unreadable now: shown as it was, looked at again later.
            Err(_) => previous.iter().find(|v| v.claim == claim).cloned(),
        };
        out.retain(|v| v.claim != claim);
        out.extend(entry);
    }
    out.sort_by(|a, b| a.claim.cmp(&b.claim));
    Some(out)
}

/// Where a claim's resize is, from what its status says: the resizer sets
/// the `Resizing` condition while the volume grows, then
/// `FileSystemResizePending` until the node grows the file system; the
/// capacity reaches the request when both are done.
fn claim_progress(pvc: &PersistentVolumeClaim, component: &str) -> Option<VolumeResize> {
    let requested = pvc
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?
        .0
        .clone();
    let status = pvc.status.as_ref();
    let capacity = status
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone());
    let condition = |type_: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    let reached = capacity
        .as_deref()
        .and_then(bytes)
        .zip(bytes(&requested))
        .is_some_and(|(has, wants)| has >= wants);
    let state = if reached {
        RESIZED
    } else if condition("FileSystemResizePending") {
        "FileSystemResizePending"
    } else if condition("Resizing") {
        "Resizing"
    } else {
        "Pending"
    };
    Some(VolumeResize {
        claim: pvc.metadata.name.clone()?,
        component: component.to_string(),
        requested,
        capacity,
        state: state.to_string(),
    })
}

/// Deletes a StatefulSet and leaves its pods (orphan propagation), so that
/// the next apply makes it again with the templates planned.
async fn recreate(
    client: &Client,
    metrics: &Metrics,
    live: &k8s_openapi::api::apps::v1::StatefulSet,
) -> Result<(), String> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
    let name = live.metadata.name.clone().unwrap_or_default();
    let namespace = live.metadata.namespace.clone().unwrap_or_default();
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: live.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            metrics.count_write("StatefulSet", "delete");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(format!(
            "deleting StatefulSet {name} to carry the new claim template: {e}"
        )),
    }
}

/// Sets the storage request of each claim `<vct>-<sts>-<ordinal>` that asks
/// for less than `size`; returns the claims it resized, and every claim
/// there is.
async fn grow(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    vct: &str,
    statefulset: &str,
    replicas: i32,
    size: &str,
) -> Result<(Vec<String>, Vec<String>), String> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let target = bytes(size).unwrap_or(0);
    let mut grown = Vec::new();
    let mut claims = Vec::new();
    for ordinal in 0..replicas.max(0) {
        let claim = format!("{vct}-{statefulset}-{ordinal}");
        let Some(pvc) = api
            .get_opt(&claim)
            .await
            .map_err(|e| format!("reading claim {claim}: {e}"))?
        else {
            continue;
        };
        claims.push(claim.clone());
        let current = pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| bytes(&q.0))
            .unwrap_or(0);
        if current >= target {
            continue;
        }
        let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
        api.patch(&claim, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| match e {
                kube::Error::Api(e) => format!("claim {claim}: {}", e.message),
                other => format!("claim {claim}: {other}"),
            })?;
        metrics.count_write("PersistentVolumeClaim", "patch");
        grown.push(claim);
    }
    Ok((grown, claims))
}

/// A Kubernetes quantity in bytes (`100Gi`, `1.5T`, `500M`, `1e9`).
pub fn bytes(quantity: &str) -> Option<u128> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let value = number * factor;
    (value.is_finite() && value >= 0.0).then(|| value.ceil() as u128)
}

#[cfg(test)]
mod tests {
    use super::{bytes, claim_progress};
    use serde_json::json;

    #[test]
    fn a_claims_resize_progress_is_read_from_its_status() {
        let claim = |conditions: serde_json::Value, capacity: &str| {
            serde_json::from_value(json!({
                "metadata": {"name": "data-d-be-0"},
                "spec": {"resources": {"requests": {"storage": "20Gi"}}},
                "status": {"capacity": {"storage": capacity}, "conditions": conditions},
            }))
            .unwrap()
        };
        let state = |conditions, capacity| {
            claim_progress(&claim(conditions, capacity), "be")
                .unwrap()
                .state
        };
        assert_eq!(state(json!([]), "10Gi"), "Pending");
        assert_eq!(
            state(json!([{"type": "Resizing", "status": "True"}]), "10Gi"),
            "Resizing"
        );
        assert_eq!(
            state(
                json!([{"type": "FileSystemResizePending", "status": "True"}]),
                "10Gi"
            ),
            "FileSystemResizePending"
        );
        // Done when the capacity reaches the request, in any unit.
        assert_eq!(state(json!([]), "20480Mi"), "Resized");
        let done = claim_progress(&claim(json!([]), "20Gi"), "be").unwrap();
        assert_eq!(
            (
                done.claim.as_str(),
                done.component.as_str(),
                done.capacity.as_deref()
            ),
            ("data-d-be-0", "be", Some("20Gi"))
        );
    }

    #[test]
    fn quantities_compare_by_size() {
        assert_eq!(bytes("100Gi"), Some(100 * (1 << 30)));
        assert_eq!(bytes("1Ti"), bytes("1024Gi"));
        assert!(bytes("200G") < bytes("200Gi"));
        assert_eq!(bytes("1.5Ki"), Some(1536));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("12x"), None);
    }
}
