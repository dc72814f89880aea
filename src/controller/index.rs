//! Secondary indexes of the watch caches: a cluster's pods (by the
//! StatefulSet their owner label names) and the objects a cluster owns (by
//! its uid), kept in step with the caches by the watch events that fill
//! them. Finding one cluster's pods or objects then costs what that cluster
//! has, not a walk over every cluster's.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher::Event;

/// An object as an index holds it: kind, namespace, name.
pub type Entry = (&'static str, String, String);

/// Entries by key; an object may be under several keys.
#[derive(Default)]
pub struct Index {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_key: HashMap<String, BTreeSet<Entry>>,
    /// The keys each object is under, to take it out when it goes.
    keys_of: HashMap<Entry, Vec<String>>,
    /// A re-list under way: the new state, swapped in when it is complete
    /// (as the cache itself does).
    relist: Option<Box<State>>,
}

impl State {
    fn insert(&mut self, entry: Entry, keys: Vec<String>) {
        self.remove(&entry);
        for key in &keys {
            self.by_key
                .entry(key.clone())
                .or_default()
                .insert(entry.clone());
        }
        if !keys.is_empty() {
            self.keys_of.insert(entry, keys);
        }
    }

    fn remove(&mut self, entry: &Entry) {
        for key in self.keys_of.remove(entry).unwrap_or_default() {
            if let Some(set) = self.by_key.get_mut(&key) {
                set.remove(entry);
                if set.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }
}

impl Index {
    /// Follows one watch event of the cache this indexes; `keys` names the
    /// keys an object is found under.
    pub fn observe<K>(&self, event: &Event<K>, keys: impl Fn(&ObjectMeta) -> Vec<String>)
    where
        K: Resource<DynamicType = ()>,
    {
        let kind = kind_name(K::kind(&()).as_ref());
        let entry = |o: &K| -> Entry {
            let meta = o.meta();
            (
                kind,
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            )
        };
        let mut state = self.state.lock().expect("lock");
        match event {
            Event::Apply(o) => state.insert(entry(o), keys(o.meta())),
            Event::Delete(o) => state.remove(&entry(o)),
            Event::Init => state.relist = Some(Box::default()),
            Event::InitApply(o) => {
                let keys = keys(o.meta());
                state
                    .relist
                    .get_or_insert_with(Box::default)
                    .insert(entry(o), keys);
            }
            Event::InitDone => {
                if let Some(new) = state.relist.take() {
                    // Objects of other kinds sharing this index stay.
                    let others: Vec<(Entry, Vec<String>)> = state
                        .keys_of
                        .iter()
                        .filter(|((k, _, _), _)| *k != kind)
                        .map(|(e, keys)| (e.clone(), keys.clone()))
                        .collect();
                    let mut new = *new;
                    for (entry, keys) in others {
                        new.insert(entry, keys);
                    }
                    *state = new;
                }
            }
        }
    }

    /// The objects under `key`.
    pub fn get(&self, key: &str) -> Vec<Entry> {
        let state = self.state.lock().expect("lock");
        state
            .by_key
            .get(key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The kinds indexed, as static names (an entry is small and cheap to
/// compare).
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "Pod" => "Pod",
        "StatefulSet" => "StatefulSet",
        "Service" => "Service",
        "ConfigMap" => "ConfigMap",
        "HorizontalPodAutoscaler" => "HorizontalPodAutoscaler",
        _ => "Other",
    }
}

/// The key of a pod: its namespace and the StatefulSet its owner label
/// names.
pub fn pod_key(namespace: &str, statefulset: &str) -> String {
    format!("{namespace}/{statefulset}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    fn pod(name: &str, owner: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {
            "name": name, "namespace": "n", "labels": {"o": owner}}}))
        .unwrap()
    }

    fn owner(meta: &ObjectMeta) -> Vec<String> {
        meta.labels
            .iter()
            .flatten()
            .filter(|(k, _)| *k == "o")
            .map(|(_, v)| pod_key("n", v))
            .collect()
    }

    #[test]
    fn the_index_follows_applies_deletes_and_relists() {
        let index = Index::default();
        index.observe(&Event::Apply(pod("a-0", "a")), owner);
        index.observe(&Event::Apply(pod("a-1", "a")), owner);
        index.observe(&Event::Apply(pod("b-0", "b")), owner);
        let names = |key: &str| -> Vec<String> {
            index
                .get(&pod_key("n", key))
                .into_iter()
                .map(|e| e.2)
                .collect()
        };
        assert_eq!(names("a"), ["a-0", "a-1"]);
        index.observe(&Event::Delete(pod("a-0", "a")), owner);
        assert_eq!(names("a"), ["a-1"]);
        // A label change moves the object.
        index.observe(&Event::Apply(pod("a-1", "b")), owner);
        assert!(names("a").is_empty());
        assert_eq!(names("b"), ["a-1", "b-0"]);
        // A re-list: what it lists replaces the rest once it is done.
        index.observe(&Event::<Pod>::Init, owner);
        index.observe(&Event::InitApply(pod("c-0", "c")), owner);
        assert_eq!(names("b"), ["a-1", "b-0"], "until the list is complete");
        index.observe(&Event::<Pod>::InitDone, owner);
        assert!(names("b").is_empty());
        assert_eq!(names("c"), ["c-0"]);
    }

    #[test]
    fn a_relist_of_one_kind_keeps_the_others() {
        let index = Index::default();
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {
            "name": "x", "namespace": "n", "labels": {"o": "c"}}}))
        .unwrap();
        index.observe(&Event::Apply(cm), owner);
        index.observe(&Event::<Pod>::Init, owner);
        index.observe(&Event::InitApply(pod("c-0", "c")), owner);
        index.observe(&Event::<Pod>::InitDone, owner);
        let kinds: Vec<&str> = index.get(&pod_key("n", "c")).iter().map(|e| e.0).collect();
        assert_eq!(kinds, ["ConfigMap", "Pod"]);
    }
}
