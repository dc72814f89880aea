//! From changes of the objects the operator watches to the clusters they
//! wake, at most once a second per cluster.
//!
//! A cluster coming up changes its pods, StatefulSets and Events many
//! times a second; each change would be one more reconcile of it. The
//! first change reaches the controller at once; further changes within
//! [`PERIOD`] of it are folded into one that reaches it when the period
//! ends. A change is never dropped, and never delayed by more than the
//! period however often it repeats (unlike a debounce, which moves the
//! reconcile later with every change). A change of the cluster object
//! itself, and a requeue, are not held here: they go straight to the
//! controller.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use tokio::time::Instant;

use crate::cluster::ClusterRef;
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

use super::kinds::DorisResource;
use super::stores;
use super::user_inputs::config_map_names;

/// The shortest time between two wake-ups of one cluster by the objects
/// made for it.
pub const PERIOD: Duration = Duration::from_secs(1);

/// A change the operator reconciles a cluster for.
pub enum Touched {
    /// An object made for a cluster (its controller owner).
    Owned(ObjectMeta),
    /// A pod of a cluster's StatefulSet.
    Pod(ObjectMeta),
    /// Any ConfigMap: a cluster may name it.
    UserConfigMap(ObjectMeta),
    /// A namespace: its Pod Security level may have changed.
    Namespace(ObjectMeta),
}

/// A cluster of either kind.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Wake {
    Doris(ObjectRef<DorisCluster>),
    Disaggregated(ObjectRef<DorisDisaggregatedCluster>),
}

/// Sends each change to the controller of the cluster it belongs to.
pub struct Triggers {
    pub doris: futures::channel::mpsc::UnboundedSender<ObjectRef<DorisCluster>>,
    pub clusters: reflector::Store<DorisCluster>,
    pub disaggregated: Option<(
        futures::channel::mpsc::UnboundedSender<ObjectRef<DorisDisaggregatedCluster>>,
        reflector::Store<DorisDisaggregatedCluster>,
    )>,
}

impl Triggers {
    /// Routes `changes` until they end.
    pub async fn route(
        self,
        mut changes: impl futures::Stream<Item = Result<Touched, watcher::Error>> + Unpin,
    ) {
        let mut throttle = Throttle::new(PERIOD);
        loop {
            let due = throttle.next_due();
            tokio::select! {
                change = changes.next() => {
                    let Some(change) = change else { return };
                    let now = Instant::now();
                    for wake in self.woken(change) {
                        if throttle.admit(wake.clone(), now) {
                            self.send(wake);
                        }
                    }
                }
                () = sleep_until(due), if due.is_some() => {
                    for wake in throttle.due(Instant::now()) {
                        self.send(wake);
                    }
                }
            }
        }
    }

    fn send(&self, wake: Wake) {
        match wake {
            Wake::Doris(cluster) => {
                let _ = self.doris.unbounded_send(cluster);
            }
            Wake::Disaggregated(cluster) => {
                if let Some((tx, _)) = &self.disaggregated {
                    let _ = tx.unbounded_send(cluster);
                }
            }
        }
    }

    /// The clusters `change` wakes.
    fn woken(&self, change: Result<Touched, watcher::Error>) -> Vec<Wake> {
        match change {
            Ok(Touched::Owned(meta)) => owners(&meta),
            Ok(Touched::Pod(meta)) => pod_cluster(&meta).into_iter().collect(),
            Ok(Touched::UserConfigMap(meta)) => self.naming(&meta),
            Ok(Touched::Namespace(meta)) => self.within(meta.name.as_deref().unwrap_or_default()),
            Err(e) => {
                tracing::debug!(error = %e, "watch failed; it is retried");
                Vec::new()
            }
        }
    }

    /// Every cluster in a namespace (re-planned only if its level changed).
    fn within(&self, namespace: &str) -> Vec<Wake> {
        self.clusters_where(|c| c.namespace() == namespace)
    }

    /// Every cluster that names the ConfigMap. One the operator made for a
    /// cluster is no user's input (its own watch wakes its cluster), and is
    /// not looked up in every cluster.
    fn naming(&self, meta: &ObjectMeta) -> Vec<Wake> {
        if !owners(meta).is_empty() {
            return Vec::new();
        }
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let name = meta.name.as_deref().unwrap_or_default();
        self.clusters_where(|c| {
            config_map_names(c)
                .iter()
                .any(|(ns, n)| n == name && ns == namespace)
        })
    }

    fn clusters_where(&self, wanted: impl Fn(ClusterRef<'_>) -> bool) -> Vec<Wake> {
        let mut woken: Vec<Wake> = self
            .clusters
            .state()
            .iter()
            .filter(|c| wanted(c.cluster()))
            .map(|c| Wake::Doris(ObjectRef::from_obj(c.as_ref())))
            .collect();
        if let Some((_, store)) = &self.disaggregated {
            woken.extend(
                store
                    .state()
                    .iter()
                    .filter(|c| wanted(c.cluster()))
                    .map(|c| Wake::Disaggregated(ObjectRef::from_obj(c.as_ref()))),
            );
        }
        woken
    }
}

/// The clusters an object was made for (its controller owner).
fn owners(meta: &ObjectMeta) -> Vec<Wake> {
    let Some(namespace) = meta.namespace.as_deref() else {
        return Vec::new();
    };
    meta.owner_references
        .iter()
        .flatten()
        .filter(|owner| owner.controller == Some(true))
        .filter_map(|owner| match owner.kind.as_str() {
            "DorisCluster" => Some(Wake::Doris(ObjectRef::new(&owner.name).within(namespace))),
            "DorisDisaggregatedCluster" => Some(Wake::Disaggregated(
                ObjectRef::new(&owner.name).within(namespace),
            )),
            _ => None,
        })
        .collect()
}

/// The cluster of a pod: a disaggregated cluster's label, or the selector
/// label `<cluster>-<component>` of a DorisCluster's pods.
fn pod_cluster(meta: &ObjectMeta) -> Option<Wake> {
    let labels = meta.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key));
    let namespace = meta.namespace.as_deref()?;
    if let Some(cluster) = label(crate::cluster::DISAGGREGATED_CLUSTER_LABEL) {
        return Some(Wake::Disaggregated(
            ObjectRef::new(cluster).within(namespace),
        ));
    }
    let owner = label(stores::POD_SELECTOR)?;
    let component = label("app.kubernetes.io/component")?;
    let cluster = owner.strip_suffix(&format!("-{component}"))?;
    Some(Wake::Doris(ObjectRef::new(cluster).within(namespace)))
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// At most one send per key per period: the first at once, those within
/// the period after it folded into one sent when it ends.
struct Throttle<K> {
    period: Duration,
    /// Keys sent within the last period, and whether another change of
    /// theirs came since.
    recent: HashMap<K, bool>,
    /// When each recent key's period ends, earliest first (sends happen in
    /// time order, so pushing at the back keeps the order).
    ends: VecDeque<(Instant, K)>,
}

impl<K: Clone + Eq + Hash> Throttle<K> {
    fn new(period: Duration) -> Self {
        Throttle {
            period,
            recent: HashMap::new(),
            ends: VecDeque::new(),
        }
    }

    /// A change of `key` at `now`: whether to send it now (else it is held
    /// until its period ends).
    fn admit(&mut self, key: K, now: Instant) -> bool {
        if let Some(held) = self.recent.get_mut(&key) {
            *held = true;
            return false;
        }
        self.recent.insert(key.clone(), false);
        self.ends.push_back((now + self.period, key));
        true
    }

    /// When the earliest period ends.
    fn next_due(&self) -> Option<Instant> {
        self.ends.front().map(|(at, _)| *at)
    }

    /// The held keys whose period has ended by `now`: send them now; each
    /// starts a new period.
    fn due(&mut self, now: Instant) -> Vec<K> {
        let mut send = Vec::new();
        while let Some((at, _)) = self.ends.front() {
            if *at > now {
                break;
            }
            let (_, key) = self.ends.pop_front().expect("a front");
            if self.recent.remove(&key) == Some(true) {
                send.push(key);
            }
        }
        for key in &send {
            self.recent.insert(key.clone(), false);
            self.ends.push_back((now + self.period, key.clone()));
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn the_first_change_goes_at_once_and_a_burst_after_it_once_when_the_period_ends() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        assert!(t.admit("a", start));
        assert!(!t.admit("a", after(start, 100)));
        assert!(!t.admit("a", after(start, 900)));
        assert!(t.admit("b", after(start, 500)), "another key is not held");
        assert_eq!(t.next_due(), Some(after(start, 1000)));
        assert!(t.due(after(start, 999)).is_empty());
        assert_eq!(t.due(after(start, 1000)), ["a"]);
        // b had no change after its first: its period ends with nothing.
        assert_eq!(t.due(after(start, 1500)), Vec::<&str>::new());
        // a was sent at 1000: held again until 2000.
        assert!(!t.admit("a", after(start, 1200)));
        assert_eq!(t.due(after(start, 2000)), ["a"]);
        // Then quiet: its period ends and the next change goes at once.
        assert!(t.due(after(start, 3000)).is_empty());
        assert!(t.next_due().is_none());
        assert!(t.admit("a", after(start, 3100)));
    }

    #[test]
    fn changes_more_often_than_the_period_still_go_once_a_period() {
        // A debounce would never send while changes keep coming.
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        let mut sent = 0;
        for tick in 0..50u64 {
            let now = after(start, tick * 100);
            sent += t.due(now).len();
            if t.admit("a", now) {
                sent += 1;
            }
        }
        // 5 s of changes every 100 ms: one at once, then one a second.
        assert_eq!(sent, 5);
        assert!(t.recent.len() == 1 && t.ends.len() == 1);
    }

    #[test]
    fn keys_without_changes_are_forgotten() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        for i in 0..100 {
            assert!(t.admit(i, start));
        }
        assert!(t.due(after(start, 1000)).is_empty());
        assert!(t.recent.is_empty() && t.ends.is_empty());
    }
}
