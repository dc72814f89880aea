//! Stands in for the StatefulSet controller and the kubelets on the
//! emulated API server: keeps each StatefulSet's pods and claims in step
//! with its spec, rolls pods whose template changed (highest ordinal first,
//! one at a time) unless the StatefulSet's update strategy is `OnDelete`
//! (then a pod changes only when someone deletes it, and comes back from the
//! current template), marks pods Ready after a short delay unless a test
//! holds them, and keeps StatefulSet status current.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Emulator;

pub const PODS: &str = "/v1/pods";
pub const PVCS: &str = "/v1/persistentvolumeclaims";
pub const STATEFULSETS: &str = "apps/v1/statefulsets";

#[derive(Default)]
struct State {
    held: HashSet<String>,
    /// Pods held from their next creation on.
    hold_next: HashSet<String>,
    failed: HashSet<String>,
    born: BTreeMap<String, Instant>,
    /// StatefulSet uid → the versions of it and its pods when last driven:
    /// one unchanged since, with no pod waiting to become Ready, is skipped.
    driven: BTreeMap<String, String>,
    /// StatefulSets with a pod that becomes Ready with time alone.
    timed: HashSet<String>,
}

/// The driver; stops when dropped.
pub struct PodDriver {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PodDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a new pod takes to become Ready.
const READY_AFTER: Duration = Duration::from_millis(50);

impl PodDriver {
    pub fn start(emulator: Arc<Emulator>) -> PodDriver {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                step(&emulator, &shared);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        PodDriver { state, task }
    }

    /// Keeps `pod` from becoming Ready (it stays running, not ready).
    pub fn hold(&self, pod: &str) {
        let mut s = self.state.lock().unwrap();
        s.held.insert(pod.to_string());
        s.driven.clear();
    }

    /// Keeps the next pod named `pod` that is created from becoming Ready;
    /// the one running now is left alone.
    pub fn hold_next(&self, pod: &str) {
        self.state.lock().unwrap().hold_next.insert(pod.to_string());
    }

    /// Makes `pod` crash (CrashLoopBackOff) until released.
    pub fn fail(&self, pod: &str) {
        let mut s = self.state.lock().unwrap();
        s.failed.insert(pod.to_string());
        s.driven.clear();
    }

    pub fn release(&self, pod: &str) {
        let mut s = self.state.lock().unwrap();
        s.held.remove(pod);
        s.failed.remove(pod);
        s.driven.clear();
    }
}

fn hash(v: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:x}", h.finish() & 0xffff_ffff)
}

fn ordinal(pod: &str) -> Option<i64> {
    pod.rsplit_once('-')?.1.parse().ok()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["ready"] == true))
}

fn step(emulator: &Emulator, state: &Mutex<State>) {
    // Versions only (cheap); objects are read for what changed.
    let mut pods_of: BTreeMap<String, Vec<[String; 5]>> = BTreeMap::new();
    for pod in emulator.versions(PODS) {
        pods_of.entry(pod[4].clone()).or_default().push(pod);
    }
    for [ns, name, uid, rv, _] in emulator.versions(STATEFULSETS) {
        let pods = pods_of.remove(&uid).unwrap_or_default();
        let mut fingerprint = rv;
        for pod in &pods {
            fingerprint.push_str(&format!(" {}={}", pod[1], pod[3]));
        }
        {
            let s = state.lock().unwrap();
            if s.driven.get(&uid) == Some(&fingerprint) && !s.timed.contains(&uid) {
                continue;
            }
        }
        let Some(sts) = emulator.get(STATEFULSETS, &ns, &name) else {
            continue;
        };
        let pods: Vec<Value> = pods
            .iter()
            .filter_map(|p| emulator.get(PODS, &p[0], &p[1]))
            .collect();
        let timed = drive(emulator, state, &sts, pods);
        let mut s = state.lock().unwrap();
        s.driven.insert(uid.clone(), fingerprint);
        if timed {
            s.timed.insert(uid);
        } else {
            s.timed.remove(&uid);
        }
    }
}

/// Moves one StatefulSet and its pods a step; returns whether a pod waits
/// for time alone to become Ready.
fn drive(emulator: &Emulator, state: &Mutex<State>, sts: &Value, pods: Vec<Value>) -> bool {
    let ns = sts["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = sts["metadata"]["name"].as_str().unwrap_or_default();
    let uid = &sts["metadata"]["uid"];
    if sts["metadata"].get("deletionTimestamp").is_some() {
        return false;
    }
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
    let template = &sts["spec"]["template"];
    let revision = format!("{name}-{}", hash(template));
    let on_delete = sts["spec"]["updateStrategy"]["type"] == "OnDelete";
    let by_name: BTreeMap<String, &Value> = pods
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p,
            )
        })
        .collect();

    // Create missing pods and their claims, all at once (Parallel).
    for i in 0..replicas {
        let pod_name = format!("{name}-{i}");
        for vct in sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let claim = format!(
                "{}-{pod_name}",
                vct["metadata"]["name"].as_str().unwrap_or_default()
            );
            if emulator.get(PVCS, ns, &claim).is_none() {
                emulator.put(
                    PVCS,
                    json!({
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim, "namespace": ns,
                                     "labels": sts["spec"]["selector"]["matchLabels"]},
                        "spec": vct["spec"],
                        "status": {"phase": "Bound"},
                    }),
                );
            }
        }
        // As the StatefulSet controller does, a pod of this name that no
        // controller owns and that the selector matches is adopted (the
        // pods of a StatefulSet deleted with orphan propagation, when it is
        // made again).
        if !by_name.contains_key(&pod_name)
            && let Some(mut orphan) = emulator.get(PODS, ns, &pod_name)
        {
            let owned = orphan["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["controller"] == true));
            let selected = sts["spec"]["selector"]["matchLabels"]
                .as_object()
                .is_some_and(|m| {
                    m.iter()
                        .all(|(k, v)| orphan["metadata"]["labels"][k.as_str()] == *v)
                });
            if !owned && selected {
                orphan["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                    "kind": "StatefulSet", "name": name, "uid": uid, "controller": true,
                    "blockOwnerDeletion": true}]);
                emulator.put(PODS, orphan);
            }
            continue;
        }
        if !by_name.contains_key(&pod_name) {
            let mut labels = template["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            labels["controller-revision-hash"] = json!(revision);
            let containers: Vec<Value> = template["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"name": c["name"], "ready": false, "image": c["image"],
                                "state": {"waiting": {"reason": "ContainerCreating"}}})
                })
                .collect();
            emulator.put(
                PODS,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {
                        "name": pod_name, "namespace": ns, "labels": labels,
                        "annotations": template["metadata"]["annotations"],
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                            "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                    },
                    "spec": template["spec"],
                    "status": {"phase": "Running", "containerStatuses": containers,
                               "conditions": [{"type": "Ready", "status": "False"}]},
                }),
            );
            let mut s = state.lock().unwrap();
            s.born.insert(format!("{ns}/{pod_name}"), Instant::now());
            if s.hold_next.remove(&pod_name) {
                s.held.insert(pod_name.clone());
            }
        }
    }
    // Remove pods beyond replicas, highest ordinal first.
    let mut extra: Vec<&String> = by_name
        .keys()
        .filter(|n| ordinal(n).is_some_and(|o| o >= replicas))
        .collect();
    extra.sort_by_key(|n| std::cmp::Reverse(ordinal(n)));
    for pod in extra {
        emulator.delete(PODS, ns, pod);
    }

    // Readiness, as kubelets would report it.
    let now = Instant::now();
    let mut timed = false;
    for pod in &pods {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let key = format!("{ns}/{pod_name}");
        let (held, failed, born) = {
            let mut s = state.lock().unwrap();
            let born = *s.born.entry(key).or_insert(now);
            (s.held.contains(pod_name), s.failed.contains(pod_name), born)
        };
        let want_ready = !held && !failed && now.duration_since(born) >= READY_AFTER;
        timed |= !held && !failed && !want_ready;
        let mut next = pod.clone();
        let containers: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let state = if failed {
                    json!({"waiting": {"reason": "CrashLoopBackOff"}})
                } else if want_ready {
                    json!({"running": {}})
                } else {
                    json!({"waiting": {"reason": "ContainerCreating"}})
                };
                json!({"name": c["name"], "image": c["image"], "ready": want_ready, "state": state})
            })
            .collect();
        next["status"] = json!({
            "phase": "Running",
            "podIP": format!("10.0.0.{}", ordinal(pod_name).unwrap_or(0) + 10),
            "containerStatuses": containers,
            "conditions": [{"type": "Ready", "status": if want_ready { "True" } else { "False" }}],
        });
        if next != *pod {
            emulator.put(PODS, next);
        }
    }

    // Rolling update: one outdated pod at a time, highest ordinal first,
    // once every pod is ready.
    let pods: Vec<Value> = pods
        .into_iter()
        .filter(|p| {
            emulator
                .get(PODS, ns, p["metadata"]["name"].as_str().unwrap_or_default())
                .is_some()
        })
        .collect();
    let outdated: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] != json!(revision))
        .collect();
    let all_ready = pods.len() as i64 == replicas && pods.iter().all(is_ready);
    if !on_delete
        && all_ready
        && let Some(victim) = outdated
            .iter()
            .max_by_key(|p| ordinal(p["metadata"]["name"].as_str().unwrap_or_default()))
    {
        let pod_name = victim["metadata"]["name"].as_str().unwrap_or_default();
        emulator.delete(PODS, ns, pod_name);
        state
            .lock()
            .unwrap()
            .born
            .remove(&format!("{ns}/{pod_name}"));
    }

    // StatefulSet status.
    let pods: Vec<Value> = (0..replicas)
        .filter_map(|i| emulator.get(PODS, ns, &format!("{name}-{i}")))
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| &r["uid"] == uid))
        })
        .collect();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == json!(revision))
        .count();
    // As the StatefulSet controller does, currentRevision moves only at the
    // end of a rolling update: with OnDelete it stays where it was
    // (kubernetes/kubernetes#73492).
    let current_revision = if !on_delete && updated == pods.len() && pods.len() as i64 == replicas {
        json!(revision)
    } else {
        sts["status"]["currentRevision"].clone()
    };
    let mut next = sts.clone();
    next["status"] = json!({
        "observedGeneration": sts["metadata"]["generation"],
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": pods.len() - (pods.len() - updated),
        "updatedReplicas": updated,
        "currentRevision": if current_revision.is_null() { json!(revision) } else { current_revision },
        "updateRevision": revision,
    });
    if next != *sts {
        emulator.put(STATEFULSETS, next);
    }
    timed
}
