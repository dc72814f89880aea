//! Of the changes a watch brings, those its cache can tell apart, and how
//! soon each should reach its cluster.
//!
//! Objects are cached slimmed (see `stores`): only the fields a reconcile
//! reads are kept. Most changes of a pod or a StatefulSet coming up touch
//! nothing else (a probe time, a container's start time, a new
//! resourceVersion); a reconcile woken by one would read the same cache as
//! the one before it. So a changed object wakes its cluster only when its
//! slimmed form differs from the cached one, beside the resourceVersion. A
//! deletion always does; so does an object the cache does not hold yet.
//! During a re-list the cache still holds what it held, so objects
//! unchanged across a watch restart wake nothing.
//!
//! Of the changes that wake, most only move a cluster along: a pod
//! created, scheduled or started, a StatefulSet counting them, the echo of
//! the operator's own write. No step waits on those, and status shows them
//! only as counts; they are [`Pace::Soon`] and the trigger folds them for
//! longer. A pod becoming Ready or not, a pod or object going, a container
//! stuck waiting, a host check's report and a StatefulSet's ready count or
//! revision are what steps wait on and users act on: [`Pace::Now`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};

/// How soon a change should reach its cluster's reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pace {
    /// Progress only: folded with the cluster's other changes for longer.
    Soon,
    /// Something a step waits on or a user acts on: within a second.
    Now,
}

/// How soon a change from `old` (`None`: not cached yet) to `new` should
/// reach its cluster; a deletion is always [`Pace::Now`].
pub type PaceOf<K> = fn(Option<&K>, &K) -> Pace;

/// Applies `events` (slimmed) to the cache `writer` fills, and yields the
/// objects whose cached form changed, with how soon each change matters.
pub fn cached_changes<K, S>(
    events: S,
    writer: Writer<K>,
    pace: PaceOf<K>,
) -> impl Stream<Item = Result<(K, Pace), watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + PartialEq + Send + Sync + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let reader = writer.as_reader();
    let marked: Arc<Mutex<HashMap<ObjectRef<K>, Pace>>> = Default::default();
    let taken = marked.clone();
    events
        .map_ok(move |mut event| {
            mark(&reader, &marked, &mut event, pace);
            event
        })
        .reflect(writer)
        .touched_objects()
        .try_filter_map(move |object| {
            let pace = taken
                .lock()
                .expect("lock")
                .remove(&ObjectRef::from_obj(&object));
            futures::future::ready(Ok(pace.map(|pace| (object, pace))))
        })
}

/// Marks the objects of `event` that differ from what `cache` holds (read
/// before the event is applied to it), with how soon the change matters.
fn mark<K>(
    cache: &Store<K>,
    marked: &Mutex<HashMap<ObjectRef<K>, Pace>>,
    event: &mut Event<K>,
    pace: PaceOf<K>,
) where
    K: Resource<DynamicType = ()> + Clone + PartialEq,
    ObjectRef<K>: Hash + Eq,
{
    let (object, deleted) = match event {
        Event::Apply(o) | Event::InitApply(o) => (o, false),
        Event::Delete(o) => (o, true),
        Event::Init | Event::InitDone => return,
    };
    let key = ObjectRef::from_obj(object);
    let old = cache.get(&key);
    let found = if deleted {
        Some(Pace::Now)
    } else if differs(old.as_deref(), object) {
        Some(pace(old.as_deref(), object))
    } else {
        None
    };
    if let Some(found) = found {
        let mut marked = marked.lock().expect("lock");
        let entry = marked.entry(key).or_insert(found);
        *entry = (*entry).max(found);
    }
}

/// Whether `new` differs from `old` in more than its resourceVersion.
fn differs<K: Resource + PartialEq>(old: Option<&K>, new: &mut K) -> bool {
    let Some(old) = old else { return true };
    let own = std::mem::replace(
        &mut new.meta_mut().resource_version,
        old.meta().resource_version.clone(),
    );
    let same = old == new;
    new.meta_mut().resource_version = own;
    !same
}

/// Objects whose changes are all progress but their deletion (Services,
/// ConfigMaps, autoscalers: their caches hold the applied hash and owners,
/// so a change is the echo of the operator's own write).
pub fn progress<K>(_old: Option<&K>, _new: &K) -> Pace {
    Pace::Soon
}

/// A pod: Now when it became Ready or stopped being so, began terminating,
/// a container is waiting for a reason other than being started, or a
/// host check reported; else it only moved along (created, scheduled,
/// running, an IP).
pub fn pod_pace(old: Option<&Pod>, new: &Pod) -> Pace {
    fn ready(pod: Option<&Pod>) -> bool {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
    fn terminating(pod: Option<&Pod>) -> bool {
        pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some())
    }
    fn stuck(pod: Option<&Pod>) -> Vec<&str> {
        let starting = ["ContainerCreating", "PodInitializing"];
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
            .filter(|reason| !starting.contains(reason))
            .collect()
    }
    fn checks(pod: Option<&Pod>) -> Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>> {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.init_container_statuses.as_ref())
            .filter(|cs| !cs.is_empty())
    }
    let new = Some(new);
    let pressing = ready(old) != ready(new)
        || terminating(old) != terminating(new)
        || stuck(old) != stuck(new)
        || checks(old) != checks(new);
    if pressing { Pace::Now } else { Pace::Soon }
}

/// A StatefulSet: Now when its metadata or spec changed (not at its
/// creation, the echo of the operator's own), or the ready count, observed
/// generation or revisions its status reports; a change of its other
/// counters (pods created, updated, current) is progress.
pub fn statefulset_pace(old: Option<&StatefulSet>, new: &StatefulSet) -> Pace {
    let Some(old) = old else { return Pace::Soon };
    let (o, n) = (&old.metadata, &new.metadata);
    let meta_moved = o.generation != n.generation
        || o.annotations != n.annotations
        || o.labels != n.labels
        || o.owner_references != n.owner_references
        || o.deletion_timestamp != n.deletion_timestamp;
    let status_moved = match (&old.status, &new.status) {
        (Some(o), Some(n)) => {
            o.ready_replicas != n.ready_replicas
                || o.observed_generation != n.observed_generation
                || o.current_revision != n.current_revision
                || o.update_revision != n.update_revision
        }
        (o, n) => o.is_some() != n.is_some(),
    };
    let pressing = meta_moved || old.spec != new.spec || status_moved;
    if pressing { Pace::Now } else { Pace::Soon }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::reflector;
    use serde_json::json;

    fn pod(version: &str, ready: &str, started: &str) -> Pod {
        super::super::slim_pod::from_json(json!({
            "metadata": {"name": "d-be-0", "namespace": "n", "resourceVersion": version},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "startTime": started},
        }))
        .unwrap()
    }

    async fn paced(events: Vec<Event<Pod>>) -> Vec<(String, Pace)> {
        let (_, writer) = reflector::store::<Pod>();
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        cached_changes(stream, writer, pod_pace)
            .map(|o| {
                let (pod, pace) = o.unwrap();
                (pod.metadata.resource_version.unwrap(), pace)
            })
            .collect()
            .await
    }

    async fn changes(events: Vec<Event<Pod>>) -> Vec<String> {
        paced(events).await.into_iter().map(|(v, _)| v).collect()
    }

    #[tokio::test]
    async fn a_change_the_cache_drops_wakes_nothing() {
        let seen = changes(vec![
            Event::Apply(pod("1", "False", "2026-01-01T00:00:00Z")),
            // Only the start time (not cached) and the version differ.
            Event::Apply(pod("2", "False", "2026-01-01T00:00:09Z")),
            Event::Apply(pod("3", "True", "2026-01-01T00:00:09Z")),
            Event::Delete(pod("4", "True", "2026-01-01T00:00:09Z")),
        ])
        .await;
        assert_eq!(seen, ["1", "3", "4"]);
    }

    #[tokio::test]
    async fn a_relist_wakes_only_what_changed_meanwhile() {
        let seen = changes(vec![
            Event::Apply(pod("1", "False", "2026-01-01T00:00:00Z")),
            Event::Init,
            Event::InitApply(pod("5", "False", "2026-01-01T00:00:00Z")),
            Event::InitDone,
            Event::Init,
            Event::InitApply(pod("6", "True", "2026-01-01T00:00:00Z")),
            Event::InitDone,
        ])
        .await;
        assert_eq!(seen, ["1", "6"]);
    }

    fn full_pod(version: &str, body: serde_json::Value) -> Pod {
        let mut value = json!({"metadata": {"name": "d-be-0", "namespace": "n",
                                            "resourceVersion": version}});
        value
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        super::super::slim_pod::from_json(value).unwrap()
    }

    #[tokio::test]
    async fn a_pod_moving_along_is_progress_and_its_readiness_or_trouble_is_pressing() {
        let seen = paced(vec![
            // Created, then scheduled, then running with an IP: progress.
            Event::Apply(full_pod("1", json!({"status": {"phase": "Pending"}}))),
            Event::Apply(full_pod(
                "2",
                json!({"spec": {"nodeName": "k1"},
                "status": {"phase": "Pending"}}),
            )),
            Event::Apply(full_pod(
                "3",
                json!({"spec": {"nodeName": "k1"},
                "status": {"phase": "Running", "podIP": "10.0.0.9",
                    "conditions": [{"type": "Ready", "status": "False"}]}}),
            )),
            // Ready: a step may wait on it.
            Event::Apply(full_pod(
                "4",
                json!({"spec": {"nodeName": "k1"},
                "status": {"phase": "Running", "podIP": "10.0.0.9",
                    "conditions": [{"type": "Ready", "status": "True"}]}}),
            )),
            // An image that cannot be pulled: a user acts on it.
            Event::Apply(full_pod(
                "5",
                json!({"spec": {"nodeName": "k1"},
                "status": {"phase": "Running", "podIP": "10.0.0.9",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "be", "ready": false,
                        "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
            )),
            Event::Delete(full_pod("6", json!({}))),
        ])
        .await;
        let paces: Vec<Pace> = seen.iter().map(|(_, p)| *p).collect();
        assert_eq!(
            paces,
            [
                Pace::Soon,
                Pace::Soon,
                Pace::Soon,
                Pace::Now,
                Pace::Now,
                Pace::Now
            ]
        );
    }

    #[test]
    fn a_statefulset_counting_pods_is_progress_and_its_ready_count_is_pressing() {
        let sts = |replicas: i32, ready: i32, image: &str| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "d-be", "namespace": "n", "generation": 1},
                "spec": {"replicas": 3, "selector": {}, "serviceName": "d-be-internal",
                    "template": {"spec": {"containers": [{"name": "be", "image": image}]}}},
                "status": {"replicas": replicas, "readyReplicas": ready},
            }))
            .unwrap()
        };
        let a = sts(1, 0, "be:1");
        assert_eq!(statefulset_pace(None, &a), Pace::Soon, "its creation");
        assert_eq!(statefulset_pace(Some(&a), &sts(2, 0, "be:1")), Pace::Soon);
        assert_eq!(statefulset_pace(Some(&a), &sts(1, 1, "be:1")), Pace::Now);
        assert_eq!(statefulset_pace(Some(&a), &sts(1, 0, "be:2")), Pace::Now);
    }
}
