//! Stands in for the StatefulSet controller and the kubelets on the
//! emulated API server: keeps each StatefulSet's pods and claims in step
//! with its spec, rolls pods whose template changed (highest ordinal first,
//! one at a time) unless the StatefulSet's update strategy is `OnDelete`
//! (then a pod changes only when someone deletes it, and comes back from the
//! current template), marks pods Ready after a short delay unless a test
//! holds them, and keeps StatefulSet status current.
//!
//! As the StatefulSet controller, it asks admission before making a pod: a
//! pod PodSecurity refuses is not made, and a `FailedCreate` Event on the
//! StatefulSet says why. As a CSI resizer and kubelet, it moves a claim
//! that asks for more than its capacity through `Resizing`, then
//! `FileSystemResizePending`, then to the new capacity (a test may hold a
//! claim at the file system step). As kubelets, it runs init containers to
//! completion; one whose `terminationMessagePath` is set leaves the report
//! of the host check the conventions make (see `host_report`), from the
//! node's simulated settings.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Emulator;

pub const PODS: &str = "/v1/pods";
pub const PVCS: &str = "/v1/persistentvolumeclaims";
pub const STATEFULSETS: &str = "apps/v1/statefulsets";
pub const EVENTS: &str = "/v1/events";

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
    /// Claims being resized: when they entered their present step.
    resizing: BTreeMap<String, Instant>,
    /// Claims kept at FileSystemResizePending.
    resize_held: HashSet<String>,
    /// Simulated host settings by node name.
    nodes: BTreeMap<String, NodeSettings>,
    /// StatefulSet uid → when admission last refused one of its pods: it
    /// tries again after [`RETRY_REFUSED`], as the controller backs off.
    refused: BTreeMap<String, Instant>,
}

/// How long the StatefulSet controller waits before trying again to make
/// a pod admission refused.
const RETRY_REFUSED: Duration = Duration::from_millis(500);

/// What a node's kernel is set to, as a host check reads it.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub max_map_count: u64,
    pub swap_on: bool,
    pub nofile: u64,
}

impl Default for NodeSettings {
    /// A node tuned for Doris.
    fn default() -> Self {
        NodeSettings {
            max_map_count: 2_000_000,
            swap_on: false,
            nofile: 655_350,
        }
    }
}

/// The node a pod of ordinal `n` is scheduled on.
pub fn node_of(ordinal: i64) -> String {
    format!("node-{}", ordinal.rem_euclid(3))
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

    /// Keeps `claim` (namespace/name) at FileSystemResizePending, as a
    /// kubelet that grows the file system only when the volume is mounted
    /// again, until released with [`release_resize`](Self::release_resize).
    pub fn hold_resize(&self, claim: &str) {
        self.state
            .lock()
            .unwrap()
            .resize_held
            .insert(claim.to_string());
    }

    pub fn release_resize(&self, claim: &str) {
        self.state.lock().unwrap().resize_held.remove(claim);
    }

    /// Sets what node `node`'s host check finds, for pods made from now on.
    pub fn set_node(&self, node: &str, settings: NodeSettings) {
        self.state
            .lock()
            .unwrap()
            .nodes
            .insert(node.to_string(), settings);
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

/// A pod's IP: one of its own in 10.0.0.0/8, as a cluster's pod network
/// gives each pod (the FE lists nodes by IP when FQDN mode is off, so two
/// pods must never share one). Kept by name, so the same pod made again
/// keeps its IP here.
fn pod_ip(ns: &str, pod: &str) -> String {
    // FNV-1a over "ns/pod".
    let mut h: u32 = 0x811c_9dc5;
    for b in ns.bytes().chain(*b"/").chain(pod.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let [_, a, b, c] = h.to_be_bytes();
    format!("10.{a}.{b}.{}", c.clamp(1, 254))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["ready"] == true))
}

fn step(emulator: &Emulator, state: &Mutex<State>) {
    resize_claims(emulator, state);
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

/// How long a resize stays at each step.
const RESIZE_STEP: Duration = Duration::from_millis(300);

/// Moves each claim asking for more than its capacity one step along, as
/// the external resizer then the kubelet would.
fn resize_claims(emulator: &Emulator, state: &Mutex<State>) {
    let storage = |v: &Value| {
        v.as_str()
            .and_then(doris_operator::controller::volumes::bytes)
    };
    for claim in emulator.list(PVCS, None) {
        let ns = claim["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = claim["metadata"]["name"].as_str().unwrap_or_default();
        let key = format!("{ns}/{name}");
        let requested = &claim["spec"]["resources"]["requests"]["storage"];
        let (Some(wants), Some(has)) = (
            storage(requested),
            storage(&claim["status"]["capacity"]["storage"]),
        ) else {
            continue;
        };
        let mut s = state.lock().unwrap();
        if wants <= has {
            s.resizing.remove(&key);
            continue;
        }
        let now = Instant::now();
        let since = *s.resizing.entry(key.clone()).or_insert(now);
        let conditions = claim["status"]["conditions"].as_array().cloned();
        let at = |type_: &str| {
            conditions
                .iter()
                .flatten()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        };
        let condition = |type_: &str| json!([{"type": type_, "status": "True", "lastTransitionTime": super::now()}]);
        let mut next = claim.clone();
        if !at("Resizing") && !at("FileSystemResizePending") {
            next["status"]["conditions"] = condition("Resizing");
        } else if at("Resizing") && now.duration_since(since) >= RESIZE_STEP {
            next["status"]["conditions"] = condition("FileSystemResizePending");
        } else if at("FileSystemResizePending")
            && now.duration_since(since) >= RESIZE_STEP
            && !s.resize_held.contains(&key)
        {
            next["status"]["capacity"]["storage"] = requested.clone();
            next["status"]["conditions"] = json!([]);
        } else {
            continue;
        }
        s.resizing.insert(key, now);
        drop(s);
        emulator.put(PVCS, next);
    }
}

/// Records a Warning Event on a StatefulSet, as its controller does (one
/// Event per reason and message, counted).
fn record_event(emulator: &Emulator, sts: &Value, reason: &str, message: &str) {
    let ns = sts["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = sts["metadata"]["name"].as_str().unwrap_or_default();
    let event_name = format!("{name}.{}", hash(&json!([reason, message])));
    let now = super::now();
    let mut event = emulator.get(EVENTS, ns, &event_name).unwrap_or_else(|| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                               "namespace": ns, "uid": sts["metadata"]["uid"]},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "statefulset-controller"},
            "firstTimestamp": now, "count": 0,
        })
    });
    event["count"] = json!(event["count"].as_i64().unwrap_or(0) + 1);
    event["lastTimestamp"] = json!(now);
    emulator.put(EVENTS, event);
}

/// What the host check the conventions make reports on `node`: a line per
/// setting below what the container's environment says Doris wants
/// (`WANT_MAX_MAP_COUNT`, `WANT_NOFILE`, `WANT_SWAP_OFF`), as
/// `<setting> <found> <wanted>`; empty when the node is fine.
fn host_report(container: &Value, node: &NodeSettings) -> String {
    let env = |name: &str| {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    let mut lines = Vec::new();
    if let Some(want) = env("WANT_MAX_MAP_COUNT").and_then(|w| w.parse::<u64>().ok())
        && node.max_map_count < want
    {
        lines.push(format!("vm.max_map_count {} {want}", node.max_map_count));
    }
    if env("WANT_SWAP_OFF").as_deref() == Some("true") && node.swap_on {
        lines.push("swap on off".to_string());
    }
    if let Some(want) = env("WANT_NOFILE").and_then(|w| w.parse::<u64>().ok())
        && node.nofile < want
    {
        lines.push(format!("nofile {} {want}", node.nofile));
    }
    lines.join("\n")
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

    // Whether a pod was to be made: if admission refuses it, it is tried
    // again later.
    let mut refusals = false;
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
                        "status": {"phase": "Bound", "accessModes": vct["spec"]["accessModes"],
                                   "capacity": {"storage": vct["spec"]["resources"]["requests"]["storage"]}},
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
            let node = node_of(i);
            let settings = state
                .lock()
                .unwrap()
                .nodes
                .get(&node)
                .cloned()
                .unwrap_or_default();
            // Init containers ran to completion; a host check left its report.
            let init: Vec<Value> = template["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let mut terminated = json!({"exitCode": 0, "reason": "Completed"});
                    if c.get("terminationMessagePath").is_some() {
                        terminated["message"] = json!(host_report(c, &settings));
                    }
                    json!({"name": c["name"], "image": c["image"], "ready": true,
                           "state": {"terminated": terminated}})
                })
                .collect();
            let mut spec = template["spec"].clone();
            spec["nodeName"] = json!(node);
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns, "labels": labels,
                    "annotations": template["metadata"]["annotations"],
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": spec,
                "status": {"phase": "Running", "containerStatuses": containers,
                           "initContainerStatuses": init,
                           "conditions": [{"type": "Ready", "status": "False"}]},
            });
            let sts_uid = uid.as_str().unwrap_or_default().to_string();
            refusals = true;
            let backing_off = state
                .lock()
                .unwrap()
                .refused
                .get(&sts_uid)
                .is_some_and(|at| at.elapsed() < RETRY_REFUSED);
            if backing_off {
                continue;
            }
            if let Some(refused) = emulator.refuse_pod(&pod) {
                state
                    .lock()
                    .unwrap()
                    .refused
                    .insert(sts_uid, Instant::now());
                record_event(
                    emulator,
                    sts,
                    "FailedCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} failed error: {refused}"),
                );
                continue;
            }
            state.lock().unwrap().refused.remove(&sts_uid);
            emulator.put(PODS, pod);
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
            "podIP": pod_ip(ns, pod_name),
            "containerStatuses": containers,
            "initContainerStatuses": pod["status"]["initContainerStatuses"],
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
    let refused_lately = refusals
        && state
            .lock()
            .unwrap()
            .refused
            .contains_key(uid.as_str().unwrap_or_default());
    timed || refused_lately
}
