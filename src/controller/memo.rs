//! What one reconcile leaves for the next of the same cluster, so that a
//! pod turning Ready costs neither a plan nor a status write of its own:
//!
//! - [`Plans`]: the last plan of each cluster, keyed by a digest of all the
//!   plan reads (the cluster's metadata and spec, the data of the ConfigMaps
//!   it names, the conventions bundle, the kinds the API server serves that
//!   templates ask about). Planning runs the conventions'
//!   Rhai and minijinja, by far the dearest part of a reconcile; a pod,
//!   StatefulSet or Service event changes none of its inputs.
//! - [`StatusPace`]: since when a converging cluster's milestone has
//!   waited for more news to be written with; and what was last written,
//!   until the cluster cache shows it, so that a reconcile running in
//!   between takes the operator's own write as the cluster's status.
//! - [`Lookouts`]: how long a cluster not Ready yet has gone without news,
//!   which sets when it is looked at again if nothing wakes it.
//!
//! Each holds one entry per live cluster: an entry goes when its cluster is
//! deleted, and entries of clusters no longer known are dropped as new ones
//! come.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::conventions::ConventionBundle;

use crate::controller::status::Status;
use crate::plan::Plan;
use crate::plan::membership::MembershipPolicy;

/// A plan and the membership rules, as the conventions decided them, kept
/// compact: the planned objects as one JSON text (as `serde_json::Value`s
/// they take about ten times the room), parsed again by [`Planned::expand`]
/// for each reconcile that uses them.
#[derive(Debug)]
pub struct Planned {
    /// The plan without its objects and rendered files.
    pub plan: Plan,
    objects: Box<str>,
    pub policy: MembershipPolicy,
}

impl Planned {
    pub fn new(mut plan: Plan, policy: MembershipPolicy) -> Planned {
        let objects = std::mem::take(&mut plan.objects);
        let objects = serde_json::to_string(&objects)
            .expect("planned objects serialize")
            .into_boxed_str();
        // The files are in the planned ConfigMaps; nothing else reads them.
        for component in &mut plan.components {
            component.files.clear();
        }
        Planned {
            plan,
            objects,
            policy,
        }
    }

    /// The whole plan.
    pub fn expand(&self) -> Plan {
        let mut plan = self.plan.clone();
        plan.objects = serde_json::from_str(&self.objects).expect("planned objects parse");
        plan
    }
}

/// Digest of everything [`crate::plan::plan`] and
/// [`crate::plan::membership::membership_policy`] read.
pub type Fingerprint = [u8; 32];

pub fn fingerprint(
    bundle: &Arc<ConventionBundle>,
    cluster: crate::cluster::ClusterRef<'_>,
    config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    secret_keys: &BTreeMap<String, BTreeSet<String>>,
    pod_security: crate::plan::PodSecurity,
) -> Fingerprint {
    let meta = cluster.meta();
    let mut hasher = Sha256::new();
    // The bundle by identity as well as content: a bundle compiled anew is
    // planned with anew.
    hasher.update((Arc::as_ptr(bundle) as usize).to_le_bytes());
    hasher.update(bundle.revision().as_bytes());
    let mut part = |value: &dyn erased::Serialize| {
        let bytes = value.to_json();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    };
    part(&meta.name);
    part(&meta.namespace);
    part(&meta.uid);
    part(&meta.labels);
    // The operator's own record of the kinds it made (written as they
    // change) is not a plan input: no plan reads it.
    let record = crate::controller::apply::EXTRA_KINDS_ANNOTATION;
    let mut annotations = std::borrow::Cow::Borrowed(&meta.annotations);
    if let Some(a) = meta.annotations.as_ref().filter(|a| a.contains_key(record)) {
        let mut a = a.clone();
        a.remove(record);
        annotations = std::borrow::Cow::Owned(Some(a));
    }
    part(&*annotations);
    part(&cluster.spec_json());
    part(config_maps);
    part(secret_keys);
    part(&pod_security.as_str());
    // What the API server serves decides whether monitoring objects are made.
    part(&crate::plan::api_context());
    hasher.finalize().into()
}

mod erased {
    /// Serializes to JSON bytes; lets differently typed parts share one
    /// closure.
    pub trait Serialize {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Serialize for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

/// The last plan of each live cluster, by uid.
#[derive(Default)]
pub struct Plans {
    entries: Mutex<HashMap<String, (Fingerprint, Arc<Planned>)>>,
}

impl Plans {
    /// The plan made from `key`, if it is the last one made for `uid`.
    pub fn get(&self, uid: &str, key: &Fingerprint) -> Option<Arc<Planned>> {
        let entries = self.entries.lock().expect("lock");
        entries
            .get(uid)
            .filter(|(k, _)| k == key)
            .map(|(_, planned)| planned.clone())
    }

    /// Keeps `planned` as `uid`'s plan; `live` lists the uids of the
    /// clusters that exist, to drop the entries of the others.
    pub fn insert(
        &self,
        uid: &str,
        key: Fingerprint,
        planned: Arc<Planned>,
        live: impl FnOnce() -> HashSet<String>,
    ) {
        let mut entries = self.entries.lock().expect("lock");
        if entries.insert(uid.to_string(), (key, planned)).is_none() {
            prune(&mut entries, live);
        }
    }

    pub fn remove(&self, uid: &str) {
        self.entries.lock().expect("lock").remove(uid);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the entries of clusters gone, once there are more entries than
/// clusters could explain (so the live set is listed rarely).
fn prune<V>(entries: &mut HashMap<String, V>, live: impl FnOnce() -> HashSet<String>) {
    if entries.len() < 16 || !entries.len().is_power_of_two() {
        return;
    }
    let live = live();
    entries.retain(|uid, _| live.contains(uid));
}

/// What each cluster's status write waits for, and what was last written
/// until the cluster cache shows it.
#[derive(Default)]
pub struct StatusPace {
    written: Mutex<HashMap<String, Written>>,
}

/// A status as written, and as its JSON.
pub type WrittenStatus = Arc<(Status, serde_json::Value)>;

/// One cluster's last status write.
struct Written {
    /// The write while the cache does not show it yet.
    unseen: Option<Unseen>,
    /// Since when news that may wait a moment for more has waited.
    pending: Option<Instant>,
}

/// A status write the cluster cache may not show yet.
struct Unseen {
    /// The resourceVersion of the cluster it was written over.
    over: Option<String>,
    /// The resourceVersion the write made.
    made: Option<String>,
    status: WrittenStatus,
}

impl Unseen {
    /// Whether a cached cluster at `version` is older than this write.
    /// resourceVersions are compared as numbers where both are (as the
    /// API server's etcd revisions are), so that a cache that shows an
    /// earlier write of the operator's, or anyone's, between the version
    /// written over and this write is still taken as older; otherwise
    /// only the version written over is known to be older.
    fn newer_than(&self, version: Option<&str>) -> bool {
        let number = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
        match (number(version), number(self.made.as_deref())) {
            (Some(cached), Some(made)) => cached < made,
            _ => version == self.over.as_deref(),
        }
    }
}

impl StatusPace {
    /// How long news that may wait for more must still wait for `uid`,
    /// `settle` from when it first waited: `None` when it may be written
    /// now. A cluster this process has not written yet (it started while
    /// the cluster converged) waits as well, as it would have before.
    pub fn settle(&self, uid: &str, settle: Duration) -> Option<Duration> {
        let mut written = self.written.lock().expect("lock");
        let last = written.entry(uid.to_string()).or_insert(Written {
            unseen: None,
            pending: None,
        });
        let since = last.pending.get_or_insert_with(Instant::now).elapsed();
        (since < settle).then(|| settle - since)
    }

    /// No news waits for `uid` (any more): the next starts its own wait.
    pub fn calm(&self, uid: &str) {
        if let Some(last) = self.written.lock().expect("lock").get_mut(uid) {
            last.pending = None;
        }
    }

    /// Records that `status` (as `json`) was written over version
    /// `over` of the cluster `uid`, making version `made`.
    pub fn written(
        &self,
        uid: &str,
        (over, made): (Option<String>, Option<String>),
        (status, json): (Status, serde_json::Value),
        live: impl FnOnce() -> HashSet<String>,
    ) {
        let mut written = self.written.lock().expect("lock");
        let entry = Written {
            unseen: Some(Unseen {
                over,
                made,
                status: Arc::new((status, json)),
            }),
            pending: None,
        };
        if written.insert(uid.to_string(), entry).is_none() {
            prune(&mut written, live);
        }
    }

    /// The status last written for `uid` while the cached cluster, at
    /// `version`, is older than that write: a reconcile that runs before
    /// the cache shows the operator's own write reads that, not the older
    /// status, and so neither writes it again, nor dates its transitions
    /// anew, nor drops what only that write said (a configuration change
    /// carried out is said once). Once the cache has caught up, nothing.
    pub fn unseen(&self, uid: &str, version: Option<&str>) -> Option<WrittenStatus> {
        let mut written = self.written.lock().expect("lock");
        let entry = written.get_mut(uid)?;
        match &entry.unseen {
            Some(unseen) if unseen.newer_than(version) => Some(unseen.status.clone()),
            Some(_) => {
                entry.unseen = None;
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, uid: &str) {
        self.written.lock().expect("lock").remove(uid);
    }
}

/// When each cluster not Ready yet is looked at again if nothing wakes
/// it. The watches bring every change of what a cluster is made of; this
/// look only guards against what no watch shows (an FE's mind, a Secret's
/// keys). A cluster whose status did not move since the last look waits
/// twice as long as then, so that a thousand clusters waiting for their
/// turn at the StatefulSet controller do not reconcile every few seconds
/// for nothing; any news starts again from the shortest wait.
#[derive(Default)]
pub struct Lookouts {
    last: Mutex<HashMap<String, Lookout>>,
}

/// What a cluster's status showed at its last look (see [`movement`]), and
/// the wait set then.
struct Lookout {
    moved: u64,
    wait: Duration,
}

/// A digest of all a status says but when things happened: a node's or a
/// phase's time is set anew while the status write that holds it waits,
/// and is no news.
fn movement(status: &Status) -> u64 {
    use std::hash::{Hash, Hasher};
    fn timeless(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("since");
                map.remove("lastTransitionTime");
                map.values_mut().for_each(timeless);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(timeless),
            _ => {}
        }
    }
    let mut value = serde_json::to_value((
        &status.parts,
        status.observed_generation,
        &status.conventions_revision,
        &status.conditions,
        &status.membership,
        &status.rollout,
        &status.configuration,
        &status.compute_group_ids,
        &status.volumes,
        &status.host_checks,
    ))
    .unwrap_or_default();
    timeless(&mut value);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

impl Lookouts {
    /// The wait before `uid` is looked at again, its status being
    /// `status` now: `first` when it differs from the last look's (or at
    /// the first look), twice the last wait when not, at most `cap`.
    pub fn next(
        &self,
        uid: &str,
        status: &Status,
        (first, cap): (Duration, Duration),
        live: impl FnOnce() -> HashSet<String>,
    ) -> Duration {
        let moved = movement(status);
        let mut last = self.last.lock().expect("lock");
        if let Some(seen) = last.get_mut(uid) {
            seen.wait = if seen.moved == moved {
                (seen.wait * 2).clamp(first, cap)
            } else {
                seen.moved = moved;
                first
            };
            return seen.wait;
        }
        last.insert(uid.to_string(), Lookout { moved, wait: first });
        prune(&mut last, live);
        first
    }

    /// `uid` is Ready, or gone.
    pub fn remove(&self, uid: &str) {
        self.last.lock().expect("lock").remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterRef;
    use crate::crd::DorisCluster;
    use serde_json::json;

    fn cluster(spec: serde_json::Value) -> DorisCluster {
        serde_json::from_value(json!({
            "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
            "metadata": {"name": "d", "namespace": "n", "uid": "u1", "generation": 1},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_fingerprint_follows_what_the_plan_reads_only() {
        use crate::plan::PodSecurity;
        let bundle = Arc::new(ConventionBundle::embedded().unwrap());
        let spec = json!({"feSpec": {"image": "fe"}, "beSpec": {"image": "be"}});
        let base = cluster(spec.clone());
        let none = BTreeMap::new();
        let key = fingerprint(
            &bundle,
            ClusterRef::Doris(&base),
            &none,
            &BTreeMap::new(),
            PodSecurity::Privileged,
        );

        // Status and resourceVersion are not plan inputs.
        let mut other = base.clone();
        other.metadata.resource_version = Some("42".into());
        other.status = Some(Default::default());
        assert_eq!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&other),
                &none,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );

        // The spec, annotations, labels and named ConfigMaps are.
        let bigger =
            cluster(json!({"feSpec": {"image": "fe", "replicas": 3}, "beSpec": {"image": "be"}}));
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&bigger),
                &none,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );
        let mut annotated = base.clone();
        annotated.metadata.annotations =
            Some([("doris.selectdb.com/drain-seconds".into(), "5".into())].into());
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&annotated),
                &none,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );
        let mut labelled = base.clone();
        labelled.metadata.labels = Some([("team".into(), "a".into())].into());
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&labelled),
                &none,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );
        let cms = BTreeMap::from([(
            "fe-conf".to_string(),
            BTreeMap::from([("fe.conf".to_string(), "a = 1".to_string())]),
        )]);
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&base),
                &cms,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );
        let secret_keys = BTreeMap::from([(
            "shared".to_string(),
            BTreeSet::from(["fe.conf".to_string()]),
        )]);
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&base),
                &none,
                &secret_keys,
                PodSecurity::Privileged
            ),
            key
        );

        // So is the namespace's Pod Security level.
        assert_ne!(
            fingerprint(
                &bundle,
                ClusterRef::Doris(&base),
                &none,
                &BTreeMap::new(),
                PodSecurity::Baseline
            ),
            key
        );

        // Another bundle, even of the same files, is planned with anew.
        let again = Arc::new(ConventionBundle::embedded().unwrap());
        assert_ne!(
            fingerprint(
                &again,
                ClusterRef::Doris(&base),
                &none,
                &BTreeMap::new(),
                PodSecurity::Privileged
            ),
            key
        );
    }

    #[test]
    fn entries_of_clusters_gone_are_dropped() {
        let plans = Plans::default();
        let bundle = ConventionBundle::embedded().unwrap();
        let base = cluster(json!({"feSpec": {"image": "fe"}}));
        let plan = crate::plan::plan(
            &bundle,
            crate::plan::PlanInput {
                cluster: ClusterRef::Doris(&base),
                config_maps: &BTreeMap::new(),
                secret_keys: &BTreeMap::new(),
                pod_security: Default::default(),
            },
        )
        .unwrap();
        let policy =
            crate::plan::membership::membership_policy(&bundle, ClusterRef::Doris(&base)).unwrap();
        let planned = Arc::new(Planned::new(plan.clone(), policy));
        // Kept compact, given back whole but for the rendered files.
        let expanded = planned.expand();
        assert_eq!(expanded.objects, plan.objects);
        assert!(expanded.components.iter().all(|c| c.files.is_empty()));
        let live: HashSet<String> = (0..4).map(|i| format!("u{i}")).collect();
        for i in 0..100 {
            plans.insert(&format!("u{i}"), [0; 32], planned.clone(), || live.clone());
        }
        assert!(
            plans.len() <= 64,
            "{} entries for 4 live clusters",
            plans.len()
        );
        assert!(plans.get("u2", &[0; 32]).is_some());
        assert!(plans.get("u2", &[1; 32]).is_none(), "another key misses");
        plans.remove("u2");
        assert!(plans.get("u2", &[0; 32]).is_none());
    }

    #[test]
    fn an_own_write_stands_until_the_cache_reaches_its_version() {
        use crate::controller::status::Status;
        let pace = StatusPace::default();
        let status = |n: i64| Status {
            observed_generation: Some(n),
            ..Status::default()
        };
        let seen = |version: &str| {
            pace.unseen("u", Some(version))
                .map(|w| w.0.observed_generation)
        };
        let write = |over: &str, made: &str, n: i64| {
            let versions = (Some(over.to_string()), Some(made.to_string()));
            pace.written("u", versions, (status(n), json!(n)), || {
                HashSet::from(["u".to_string()])
            });
        };
        // Written over 10, making 11; again over 10 (the cache had not
        // moved), making 12.
        write("10", "11", 1);
        assert_eq!(seen("10"), Some(Some(1)));
        write("10", "12", 2);
        // The cache at the first write still lacks the second.
        assert_eq!(seen("11"), Some(Some(2)));
        assert_eq!(seen("12"), None, "the cache shows it");
        assert_eq!(seen("11"), None, "forgotten once seen");
        // Versions that are not numbers: only the one written over is older.
        write("a", "b", 3);
        assert_eq!(seen("a"), Some(Some(3)));
        assert_eq!(seen("c"), None);
    }

    #[test]
    fn a_cluster_without_news_is_looked_at_less_and_less_often() {
        let lookouts = Lookouts::default();
        let bounds = (Duration::from_secs(15), Duration::from_secs(300));
        let status = |n: i64| Status {
            observed_generation: Some(n),
            ..Status::default()
        };
        let live = || HashSet::from(["u".to_string()]);
        let waits: Vec<u64> = (0..7)
            .map(|_| lookouts.next("u", &status(1), bounds, live).as_secs())
            .collect();
        assert_eq!(waits, [15, 30, 60, 120, 240, 300, 300]);
        // News: from the shortest wait again.
        assert_eq!(lookouts.next("u", &status(2), bounds, live).as_secs(), 15);
        assert_eq!(lookouts.next("u", &status(2), bounds, live).as_secs(), 30);
        // Only when a node entered its state differs: no news.
        let at = |since: &str| {
            let mut s = status(2);
            s.membership = Some(crate::crd::MembershipStatus {
                nodes: vec![crate::crd::MemberNode {
                    component: "be".into(),
                    pod: "d-be-2".into(),
                    state: "registering".into(),
                    since: Some(since.into()),
                    ..Default::default()
                }],
                ..Default::default()
            });
            s
        };
        assert_eq!(
            lookouts
                .next("u", &at("2026-01-01T00:00:00Z"), bounds, live)
                .as_secs(),
            15
        );
        assert_eq!(
            lookouts
                .next("u", &at("2026-01-01T00:00:15Z"), bounds, live)
                .as_secs(),
            30
        );
        // Ready, then not Ready again: from the start.
        lookouts.remove("u");
        assert_eq!(lookouts.next("u", &status(2), bounds, live).as_secs(), 15);
    }

    #[test]
    fn news_waits_to_settle_also_in_a_process_that_has_not_written_yet() {
        let pace = StatusPace::default();
        let settle = Duration::from_secs(5);
        // Started while the cluster converged: no write of its own yet.
        let wait = pace.settle("u", settle).expect("waits");
        assert!(wait > Duration::from_secs(4), "{wait:?}");
        assert!(pace.settle("u", settle).is_some(), "still waiting");
        // Waited out.
        assert_eq!(pace.settle("u", Duration::ZERO), None);
        // Nothing waits any more: the next news starts its own wait.
        pace.calm("u");
        assert!(pace.settle("u", settle).is_some());
    }
}
