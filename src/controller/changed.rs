//! Of the changes a watch brings, those its cache can tell apart.
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

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};

/// Applies `events` (slimmed) to the cache `writer` fills, and yields the
/// objects whose cached form changed.
pub fn cached_changes<K, S>(
    events: S,
    writer: Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + PartialEq + Send + Sync + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let reader = writer.as_reader();
    let marked: Arc<Mutex<HashSet<ObjectRef<K>>>> = Default::default();
    let taken = marked.clone();
    events
        .map_ok(move |mut event| {
            mark(&reader, &marked, &mut event);
            event
        })
        .reflect(writer)
        .touched_objects()
        .try_filter(move |object| {
            let changed = taken
                .lock()
                .expect("lock")
                .remove(&ObjectRef::from_obj(object));
            futures::future::ready(changed)
        })
}

/// Marks the objects of `event` that differ from what `cache` holds (read
/// before the event is applied to it).
fn mark<K>(cache: &Store<K>, marked: &Mutex<HashSet<ObjectRef<K>>>, event: &mut Event<K>)
where
    K: Resource<DynamicType = ()> + Clone + PartialEq,
    ObjectRef<K>: Hash + Eq,
{
    let (object, deleted) = match event {
        Event::Apply(o) | Event::InitApply(o) => (o, false),
        Event::Delete(o) => (o, true),
        Event::Init | Event::InitDone => return,
    };
    let key = ObjectRef::from_obj(object);
    if deleted || differs(cache.get(&key).as_deref(), object) {
        marked.lock().expect("lock").insert(key);
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

    async fn changes(events: Vec<Event<Pod>>) -> Vec<String> {
        let (_, writer) = reflector::store::<Pod>();
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        cached_changes(stream, writer)
            .map(|o| o.unwrap().metadata.resource_version.unwrap())
            .collect()
            .await
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
}
