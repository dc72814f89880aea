//! Prometheus metrics and the health endpoints the operator's Deployment
//! probes: `/metrics`, `/healthz` (the process serves) and `/readyz` (the
//! controller is running). Label values are fixed names, never object names,
//! so the number of series stays bounded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
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
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            reconcile_duration.clone(),
        );
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API, by kind and verb",
            api_writes.clone(),
        );
        let conventions_refused = Family::<SetLabels, Counter>::default();
        let conventions_failing = Family::<SetLabels, Gauge>::default();
        registry.register(
            "conventions_refused",
            "Convention candidates refused (compile, sample or live-cluster canary failed), by set",
            conventions_refused.clone(),
        );
        registry.register(
            "conventions_failing",
            "1 while a convention set's latest files are refused and its last good version stays live",
            conventions_failing.clone(),
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
