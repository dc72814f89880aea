//! From changes of the objects the operator watches to the clusters they
//! wake, at most once a second per cluster, and progress less often.
//!
//! A cluster coming up changes its pods, StatefulSets and Events many
//! times a second; each change would be one more reconcile of it. The
//! first change reaches the controller at once. A change that matters at
//! once ([`Pace::Now`]: a pod Ready, an object gone) within [`PERIOD`] of
//! the cluster's last wake-up is held until the period ends; one that only
//! moves the cluster along ([`Pace::Soon`]: a pod scheduled, a counter)
//! is held until [`PROGRESS_PERIOD`] after it, unless a pressing change
//! comes first and takes it along. Changes held for one cluster are
//! folded into one wake-up. A change is never dropped, and never delayed
//! by more than its period however often changes repeat (unlike a
//! debounce, which moves the reconcile later with every change). A change
//! of the cluster object itself, and a requeue, are not held here: they
//! go straight to the controller.
//!
//! With a thousand clusters coming up, the control plane's controllers
//! spread each cluster's pod and StatefulSet changes over minutes, more
//! than a second apart: folded only within a second, each progress change
//! would be a reconcile of its own.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use tokio::time::Instant;

use crate::cluster::ClusterRef;
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

use super::changed::Pace;
use super::kinds::DorisResource;
use super::stores;
use super::user_inputs::config_map_names;

/// The shortest time between two wake-ups of one cluster by the objects
/// made for it.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The longest a change that only moves a cluster along waits for the
/// next wake-up of its cluster.
pub const PROGRESS_PERIOD: Duration = Duration::from_secs(10);

/// A change the operator reconciles a cluster for.
pub enum Touched {
    /// An object made for a cluster (its controller owner).
    Owned(ObjectMeta, Pace),
    /// A pod of a cluster's StatefulSet.
    Pod(ObjectMeta, Pace),
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
        let mut throttle = Throttle::new(PERIOD, PROGRESS_PERIOD);
        loop {
            let due = throttle.next_due();
            tokio::select! {
                change = changes.next() => {
                    let Some(change) = change else { return };
                    let now = Instant::now();
                    let pace = match &change {
                        Ok(Touched::Owned(_, pace) | Touched::Pod(_, pace)) => *pace,
                        _ => Pace::Now,
                    };
                    for wake in self.woken(change) {
                        if throttle.admit(wake.clone(), now, pace) {
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
            Ok(Touched::Owned(meta, _)) => owners(&meta),
            Ok(Touched::Pod(meta, _)) => pod_cluster(&meta).into_iter().collect(),
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

/// At most one send per key per period: the first change at once, later
/// ones held until the period after the last send ends (the short one for
/// a pressing change, the long one for progress) and folded into one send.
struct Throttle<K> {
    short: Duration,
    long: Duration,
    /// Keys sent within the last long period.
    keys: HashMap<K, Sent>,
    /// When to look at a key again: to send what it holds, or to forget it.
    /// A look that finds nothing due does nothing.
    looks: BTreeMap<(Instant, u64), K>,
    /// Tells apart looks at the same instant.
    seq: u64,
}

struct Sent {
    at: Instant,
    /// When its held change is due, if one is held.
    held: Option<Instant>,
}

impl<K: Clone + Eq + Hash> Throttle<K> {
    fn new(short: Duration, long: Duration) -> Self {
        Throttle {
            short,
            long,
            keys: HashMap::new(),
            looks: BTreeMap::new(),
            seq: 0,
        }
    }

    fn look(&mut self, at: Instant, key: K) {
        self.seq += 1;
        self.looks.insert((at, self.seq), key);
    }

    fn sent(&mut self, key: K, now: Instant) {
        self.keys.insert(
            key.clone(),
            Sent {
                at: now,
                held: None,
            },
        );
        self.look(now + self.long, key);
    }

    /// A change of `key` at `now`: whether to send it now (else it is held
    /// until its period ends).
    fn admit(&mut self, key: K, now: Instant, pace: Pace) -> bool {
        let period = match pace {
            Pace::Now => self.short,
            Pace::Soon => self.long,
        };
        let Some(sent) = self.keys.get_mut(&key).filter(|s| now < s.at + period) else {
            self.sent(key, now);
            return true;
        };
        let due = sent.at + period;
        if sent.held.is_none_or(|held| held > due) {
            sent.held = Some(due);
            self.look(due, key);
        }
        false
    }

    /// When to look at the keys next.
    fn next_due(&self) -> Option<Instant> {
        self.looks.first_key_value().map(|((at, _), _)| *at)
    }

    /// The held keys whose period has ended by `now`: send them now; each
    /// starts a new period. Keys quiet for a long period are forgotten.
    fn due(&mut self, now: Instant) -> Vec<K> {
        let mut send = Vec::new();
        while let Some(entry) = self.looks.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            let Some(sent) = self.keys.get(&key) else {
                continue;
            };
            match sent.held {
                Some(held) if held <= now => {
                    self.sent(key.clone(), now);
                    send.push(key);
                }
                None if sent.at + self.long <= now => {
                    self.keys.remove(&key);
                }
                _ => {}
            }
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

    fn throttle() -> Throttle<&'static str> {
        Throttle::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    #[test]
    fn the_first_change_goes_at_once_and_a_burst_after_it_once_when_the_period_ends() {
        let start = Instant::now();
        let mut t = throttle();
        let now = Pace::Now;
        assert!(t.admit("a", start, now));
        assert!(!t.admit("a", after(start, 100), now));
        assert!(!t.admit("a", after(start, 900), now));
        assert!(
            t.admit("b", after(start, 500), now),
            "another key is not held"
        );
        assert_eq!(t.next_due(), Some(after(start, 1000)));
        assert!(t.due(after(start, 999)).is_empty());
        assert_eq!(t.due(after(start, 1000)), ["a"]);
        // b had no change after its first: nothing to send for it.
        assert_eq!(t.due(after(start, 1500)), Vec::<&str>::new());
        // a was sent at 1000: held again until 2000.
        assert!(!t.admit("a", after(start, 1200), now));
        assert_eq!(t.due(after(start, 2000)), ["a"]);
        // Then quiet: the next change goes at once.
        assert!(t.due(after(start, 3000)).is_empty());
        assert!(t.admit("a", after(start, 3100), now));
    }

    #[test]
    fn changes_more_often_than_the_period_still_go_once_a_period() {
        // A debounce would never send while changes keep coming.
        let start = Instant::now();
        let mut t = throttle();
        let mut sent = 0;
        for tick in 0..50u64 {
            let now = after(start, tick * 100);
            sent += t.due(now).len();
            if t.admit("a", now, Pace::Now) {
                sent += 1;
            }
        }
        // 5 s of changes every 100 ms: one at once, then one a second.
        assert_eq!(sent, 5);
    }

    #[test]
    fn progress_is_folded_for_the_long_period_unless_a_pressing_change_takes_it_along() {
        let start = Instant::now();
        let mut t = throttle();
        assert!(
            t.admit("a", start, Pace::Soon),
            "the first change goes at once"
        );
        // Progress every 3 s: held until 10 s after the last send.
        assert!(!t.admit("a", after(start, 3000), Pace::Soon));
        assert!(!t.admit("a", after(start, 6000), Pace::Soon));
        assert!(t.due(after(start, 9999)).is_empty());
        assert_eq!(t.due(after(start, 10_000)), ["a"]);
        // Progress, then a pressing change: both go at the short period's end.
        assert!(!t.admit("a", after(start, 10_200), Pace::Soon));
        assert!(!t.admit("a", after(start, 10_500), Pace::Now));
        assert_eq!(t.due(after(start, 11_000)), ["a"]);
        // A pressing change a second after the last send goes at once.
        assert!(t.admit("a", after(start, 12_100), Pace::Now));
        // Nothing is held: the looks due later send nothing.
        assert!(t.due(after(start, 30_000)).is_empty());
    }

    #[test]
    fn keys_without_changes_are_forgotten() {
        let start = Instant::now();
        let mut t = throttle();
        for key in ["a", "b", "c"] {
            assert!(t.admit(key, start, Pace::Now));
        }
        assert!(t.due(after(start, 10_000)).is_empty());
        assert!(t.keys.is_empty() && t.looks.is_empty());
    }
}
