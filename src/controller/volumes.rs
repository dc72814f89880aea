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

use super::stores::Stores;
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

/// Claims already seen at (at least) a size, so a converged cluster whose
/// volumes grew once is not read again on every reconcile.
#[derive(Default)]
pub struct Resized(Mutex<HashSet<(String, String, i32)>>);

/// Resizes the claims of every planned StatefulSet whose claim templates ask
/// for more storage than the live ones, and says which planned templates
/// must keep the live request. `parts` say where each StatefulSet's spec
/// is in the CR, for messages.
pub async fn reconcile(
    client: &Client,
    stores: &Stores,
    metrics: &Metrics,
    resized: &Resized,
    objects: &[Value],
    parts: &[ComponentPlan],
) -> Outcome {
    let mut out = Outcome::default();
    for (index, object) in objects.iter().enumerate() {
        if object["kind"] != "StatefulSet" {
            continue;
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(live_sts) = stores.statefulset(&namespace, &name) else {
            continue;
        };
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
            let part = parts
                .iter()
                .find(|c| c.names.statefulset == name)
                .map_or_else(
                    || name.clone(),
                    |c| format!("{}.persistentVolumes", c.field),
                );
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
            // Checked again when pods (and so claims) are added.
            let key = (format!("{namespace}/{name}/{vct}"), new.clone(), replicas);
            if resized.0.lock().expect("lock").contains(&key) {
                continue;
            }
            match grow(client, metrics, &namespace, &vct, &name, replicas, &new).await {
                Ok(grown) => {
                    if !grown.is_empty() {
                        out.events.push((
                            EventType::Normal,
                            "VolumeExpanding",
                            format!("{part}: claims {} resized to {new}", grown.join(", ")),
                        ));
                    }
                    resized.0.lock().expect("lock").insert(key);
                    // Every claim asks for the new size: the StatefulSet is
                    // made again with the new template, so that claims of
                    // pods added later start at it. Its pods keep running
                    // and are adopted by the new one.
                    match recreate(client, metrics, &live_sts).await {
                        Ok(()) => out.recreated.push(name.clone()),
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
    out
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
/// for less than `size`; returns the claims it resized.
async fn grow(
    client: &Client,
    metrics: &Metrics,
    namespace: &str,
    vct: &str,
    statefulset: &str,
    replicas: i32,
    size: &str,
) -> Result<Vec<String>, String> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let target = bytes(size).unwrap_or(0);
    let mut grown = Vec::new();
    for ordinal in 0..replicas.max(0) {
        let claim = format!("{vct}-{statefulset}-{ordinal}");
        let Some(pvc) = api
            .get_opt(&claim)
            .await
            .map_err(|e| format!("reading claim {claim}: {e}"))?
        else {
            continue;
        };
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
    Ok(grown)
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
    use super::bytes;

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
