//! Prometheus metrics and the health endpoints the operator's Deployment
//! probes: `/metrics`, `/healthz` (the process serves) and `/readyz` (the
//! controller is running). Label values of the operator-wide series are
//! fixed names, never object names, so their number stays bounded; the
//! per-cluster series (`cluster_*`, `rollout_*`, `decommission_*`) carry
//! the cluster's kind, namespace and name, one series per live cluster
//! (or per decommissioning node), removed when the cluster goes.
//!
//! What the alerts and the dashboard in `deploy/overlays/monitoring/` read
//! is named here; a test checks every name they use is served.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SetLabels {
    pub set: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
    pub verb: String,
}

/// The running binary, as `doris_operator_build_info` names it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    /// The git commit, `unknown` when the build did not record it.
    pub commit: String,
}

/// One cluster, as its series name it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// DorisCluster or DorisDisaggregatedCluster.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One node of a cluster (a pod), as its series name it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub pod: String,
}

/// What the operator last saw of one cluster, as its series show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterHealth {
    /// The Ready condition is True.
    pub ready: bool,
    /// The MembersSynced condition, when the cluster has one.
    pub members_synced: Option<bool>,
    /// The rollout in progress: its component and the pods already
    /// updated. A change of either is progress.
    pub rollout: Option<(String, i32)>,
    /// Nodes being decommissioned, by pod, with the tablets they still
    /// hold when the FE said. Fewer tablets is progress.
    pub decommissioning: BTreeMap<String, Option<i64>>,
}

/// A family listed in `/metrics` (its HELP and TYPE lines) even while it
/// has no series: a rollout or a failure may not have happened yet, and
/// whoever writes an alert or a dashboard should find its name all the same.
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub api_writes: Family<WriteLabels, Counter>,
    pub conventions_refused: Family<SetLabels, Counter>,
    pub conventions_failing: Family<SetLabels, Gauge>,
    /// Clusters whose restart waits for a maintenance window or approval.
    pub restarts_held: Gauge,
    held: Mutex<HashSet<String>>,
    cluster_ready: Family<ClusterLabels, Gauge>,
    cluster_members_synced: Family<ClusterLabels, Gauge>,
    rollout_progress: Family<ClusterLabels, Gauge>,
    decommission_tablets: Family<NodeLabels, Gauge>,
    decommission_progress: Family<NodeLabels, Gauge>,
    /// What each cluster's series were last set from, to tell progress.
    seen: Mutex<HashMap<ClusterLabels, ClusterHealth>>,
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("doris_operator");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error category",
            Listed(reconcile_errors.clone()),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            reconcile_duration.clone(),
        );
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API, by kind and verb",
            Listed(api_writes.clone()),
        );
        let conventions_refused = Family::<SetLabels, Counter>::default();
        let conventions_failing = Family::<SetLabels, Gauge>::default();
        registry.register(
            "conventions_refused",
            "Convention candidates refused (compile, sample or live-cluster canary failed), by set",
            Listed(conventions_refused.clone()),
        );
        registry.register(
            "conventions_failing",
            "1 while a convention set's latest files are refused and its last good version stays live",
            Listed(conventions_failing.clone()),
        );
        let cluster_ready = Family::<ClusterLabels, Gauge>::default();
        let cluster_members_synced = Family::<ClusterLabels, Gauge>::default();
        let rollout_progress = Family::<ClusterLabels, Gauge>::default();
        let decommission_tablets = Family::<NodeLabels, Gauge>::default();
        let decommission_progress = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "cluster_ready",
            "1 while a cluster's Ready condition is True, else 0",
            Listed(cluster_ready.clone()),
        );
        registry.register(
            "cluster_members_synced",
            "1 while the FE's node list matches a cluster's pods (MembersSynced), else 0",
            Listed(cluster_members_synced.clone()),
        );
        registry.register(
            "rollout_last_progress_timestamp_seconds",
            "While a rollout runs: when it last moved (a step began or a pod was updated), \
             in Unix seconds",
            Listed(rollout_progress.clone()),
        );
        registry.register(
            "decommission_tablets",
            "Tablets a decommissioning BE still holds",
            Listed(decommission_tablets.clone()),
        );
        registry.register(
            "decommission_last_progress_timestamp_seconds",
            "While a BE is decommissioned: when its tablet count last fell, in Unix seconds",
            Listed(decommission_progress.clone()),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: crate::build_info::VERSION.to_string(),
                commit: crate::build_info::COMMIT.unwrap_or("unknown").to_string(),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1: the operator's version and git commit, as labels",
            build_info,
        );
        let restarts_held = Gauge::default();
        registry.register(
            "restarts_held",
            "Clusters with a pending restart held for a maintenance window or an approval",
            restarts_held.clone(),
        );
        Metrics {
            registry,
            restarts_held,
            held: Mutex::default(),
            cluster_ready,
            cluster_members_synced,
            rollout_progress,
            decommission_tablets,
            decommission_progress,
            seen: Mutex::default(),
            conventions_refused,
            conventions_failing,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            api_writes,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn count_write(&self, kind: &str, verb: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                verb: verb.to_string(),
            })
            .inc();
    }

    pub fn count_error(&self, category: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                category: category.to_string(),
            })
            .inc();
    }

    /// Records a reload of convention set `set`: live, or refused.
    pub fn conventions_result(&self, set: &str, live: bool) {
        let labels = SetLabels {
            set: set.to_string(),
        };
        if !live {
            self.conventions_refused.get_or_create(&labels).inc();
        }
        self.conventions_failing
            .get_or_create(&labels)
            .set(i64::from(!live));
    }

    /// Records whether the cluster with uid `uid` has a held restart;
    /// clusters no longer in `live` stop counting.
    pub fn restart_held(&self, uid: &str, held: bool, live: impl FnOnce() -> HashSet<String>) {
        let mut set = self.held.lock().expect("lock");
        let changed = if held {
            set.insert(uid.to_string())
        } else {
            set.remove(uid)
        };
        if changed && !set.is_empty() {
            let live = live();
            set.retain(|u| live.contains(u));
        }
        self.restarts_held.set(set.len() as i64);
    }

    /// Sets a cluster's series from what the operator saw of it at
    /// `now_unix` (seconds): progress stamps move only when the rollout or a
    /// decommission moved since the last call.
    pub fn observe_cluster(&self, cluster: &ClusterLabels, health: ClusterHealth, now_unix: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let before = seen.remove(cluster).unwrap_or_default();
        self.cluster_ready
            .get_or_create(cluster)
            .set(i64::from(health.ready));
        match health.members_synced {
            Some(synced) => {
                self.cluster_members_synced
                    .get_or_create(cluster)
                    .set(i64::from(synced));
            }
            None => {
                self.cluster_members_synced.remove(cluster);
            }
        }
        match &health.rollout {
            Some(now) if before.rollout.as_ref() != Some(now) => {
                self.rollout_progress.get_or_create(cluster).set(now_unix);
            }
            Some(_) => {}
            None => {
                self.rollout_progress.remove(cluster);
            }
        }
        let node = |pod: &str| NodeLabels {
            kind: cluster.kind.clone(),
            namespace: cluster.namespace.clone(),
            name: cluster.name.clone(),
            pod: pod.to_string(),
        };
        for (pod, tablets) in &health.decommissioning {
            let labels = node(pod);
            match tablets {
                Some(n) => {
                    self.decommission_tablets.get_or_create(&labels).set(*n);
                }
                None => {
                    self.decommission_tablets.remove(&labels);
                }
            }
            let moved = match before.decommissioning.get(pod) {
                // New, or fewer tablets than last seen.
                None => true,
                Some(was) => matches!((was, tablets), (Some(a), Some(b)) if b < a),
            };
            if moved {
                self.decommission_progress
                    .get_or_create(&labels)
                    .set(now_unix);
            }
        }
        for pod in before.decommissioning.keys() {
            if !health.decommissioning.contains_key(pod) {
                self.decommission_tablets.remove(&node(pod));
                self.decommission_progress.remove(&node(pod));
            }
        }
        seen.insert(cluster.clone(), health);
    }

    /// Removes a deleted cluster's series.
    pub fn forget_cluster(&self, cluster: &ClusterLabels) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let before = seen.remove(cluster).unwrap_or_default();
        self.cluster_ready.remove(cluster);
        self.cluster_members_synced.remove(cluster);
        self.rollout_progress.remove(cluster);
        for pod in before.decommissioning.keys() {
            let labels = NodeLabels {
                kind: cluster.kind.clone(),
                namespace: cluster.namespace.clone(),
                name: cluster.name.clone(),
                pod: pod.clone(),
            };
            self.decommission_tablets.remove(&labels);
            self.decommission_progress.remove(&labels);
        }
    }

    pub fn observe_reconcile(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the task is
/// dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(req.uri().path(), &metrics)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(path: &str, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, metrics.encode()),
        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
        "/readyz" if metrics.ready.load(Ordering::Relaxed) => (StatusCode::OK, "ok\n".to_string()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_named_and_labelled_by_category() {
        let m = Metrics::default();
        m.count_write("StatefulSet", "apply");
        m.count_error("KubeApi");
        m.observe_reconcile(Duration::from_millis(3));
        let text = m.encode();
        assert!(text.contains("doris_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains(r#"doris_operator_api_writes_total{kind="StatefulSet",verb="apply"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"doris_operator_reconcile_errors_total{category="KubeApi"} 1"#));
        assert!(text.contains("doris_operator_reconcile_duration_seconds_count 1"));
        m.conventions_result("default", false);
        let text = m.encode();
        assert!(text.contains(r#"doris_operator_conventions_refused_total{set="default"} 1"#));
        assert!(text.contains(r#"doris_operator_conventions_failing{set="default"} 1"#));
        m.conventions_result("default", true);
        let text = m.encode();
        assert!(text.contains(r#"doris_operator_conventions_failing{set="default"} 0"#));
    }

    #[test]
    fn held_restarts_count_clusters_once_and_forget_deleted_ones() {
        let m = Metrics::default();
        let live = || HashSet::from(["a".to_string(), "b".to_string()]);
        m.restart_held("a", true, live);
        m.restart_held("a", true, live);
        m.restart_held("b", true, live);
        assert!(m.encode().contains("doris_operator_restarts_held 2"));
        m.restart_held("a", false, live);
        assert!(m.encode().contains("doris_operator_restarts_held 1"));
        // "b" was deleted while held.
        m.restart_held("c", true, || HashSet::from(["c".to_string()]));
        assert!(m.encode().contains("doris_operator_restarts_held 1"));
    }

    #[test]
    fn the_build_is_a_series_of_its_own() {
        let text = Metrics::default().encode();
        let version = crate::build_info::VERSION;
        assert!(
            text.contains(&format!(
                "doris_operator_build_info{{version=\"{version}\",commit=\"{}\"}} 1",
                crate::build_info::COMMIT.unwrap_or("unknown")
            )),
            "{text}"
        );
    }

    #[test]
    fn families_without_series_are_listed() {
        let text = Metrics::default().encode();
        assert!(
            text.contains("# TYPE doris_operator_decommission_tablets gauge"),
            "{text}"
        );
        assert!(text.contains("# TYPE doris_operator_reconcile_errors counter"));
    }

    #[test]
    fn cluster_series_follow_progress_and_go_with_the_cluster() {
        let m = Metrics::default();
        let cluster = ClusterLabels {
            kind: "DorisCluster".into(),
            namespace: "ns".into(),
            name: "c".into(),
        };
        let mut health = ClusterHealth {
            ready: false,
            members_synced: Some(false),
            rollout: Some(("be".into(), 1)),
            decommissioning: [("c-be-3".to_string(), Some(100))].into(),
        };
        m.observe_cluster(&cluster, health.clone(), 1000);
        let labels = r#"kind="DorisCluster",namespace="ns",name="c""#;
        let text = m.encode();
        assert!(
            text.contains(&format!("doris_operator_cluster_ready{{{labels}}} 0")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "doris_operator_cluster_members_synced{{{labels}}} 0"
        )));
        assert!(text.contains(&format!(
            "doris_operator_rollout_last_progress_timestamp_seconds{{{labels}}} 1000"
        )));
        let node = format!(r#"{labels},pod="c-be-3""#);
        assert!(text.contains(&format!(
            "doris_operator_decommission_tablets{{{node}}} 100"
        )));

        // Nothing moved: the stamps stay.
        m.observe_cluster(&cluster, health.clone(), 2000);
        let text = m.encode();
        assert!(text.contains(&format!(
            "doris_operator_rollout_last_progress_timestamp_seconds{{{labels}}} 1000"
        )));
        assert!(text.contains(&format!(
            "doris_operator_decommission_last_progress_timestamp_seconds{{{node}}} 1000"
        )));

        // One more pod updated and fewer tablets: both move.
        health.rollout = Some(("be".into(), 2));
        health.decommissioning.insert("c-be-3".into(), Some(40));
        m.observe_cluster(&cluster, health.clone(), 3000);
        let text = m.encode();
        assert!(text.contains(&format!(
            "doris_operator_rollout_last_progress_timestamp_seconds{{{labels}}} 3000"
        )));
        assert!(text.contains(&format!(
            "doris_operator_decommission_last_progress_timestamp_seconds{{{node}}} 3000"
        )));

        // Done: the rollout and node series go, the cluster's stay.
        m.observe_cluster(
            &cluster,
            ClusterHealth {
                ready: true,
                members_synced: Some(true),
                ..ClusterHealth::default()
            },
            4000,
        );
        let text = m.encode();
        assert!(text.contains(&format!("doris_operator_cluster_ready{{{labels}}} 1")));
        assert!(!text.contains("c-be-3"), "{text}");
        assert!(!text.contains(&format!(
            "doris_operator_rollout_last_progress_timestamp_seconds{{{labels}}}"
        )));

        m.forget_cluster(&cluster);
        assert!(!m.encode().contains(labels));
    }

    #[test]
    fn readiness_follows_the_controller() {
        let m = Metrics::default();
        assert_eq!(
            respond("/readyz", &m).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.ready.store(true, Ordering::Relaxed);
        assert_eq!(respond("/readyz", &m).status(), StatusCode::OK);
        assert_eq!(respond("/healthz", &m).status(), StatusCode::OK);
    }
}
