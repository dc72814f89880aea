//! Reconciles counted by each operator's own metrics: this operator's
//! `doris_operator_reconciles_total`, the peer's controller-runtime
//! `controller_runtime_reconcile_total` (every controller and result); and
//! the clusters this operator reconciled, by their health series.

use std::io::{Read, Write};

/// The sum of every sample of the operator's reconcile counter, read from
/// its metrics endpoint on `127.0.0.1:port`; `None` when it does not answer.
pub(super) fn reconciles(port: u16) -> Option<f64> {
    reconciles_in(&scrape(port)?)
}

/// Reconciles so far, and how many clusters were reconciled: with
/// `per_cluster`, the clusters whose health the metrics show (this
/// operator's `doris_operator_cluster_ready`); else as many as reconciles.
/// Zeros while the endpoint does not answer.
pub(super) fn reconciled(port: u16, per_cluster: bool) -> (f64, usize) {
    let Some(text) = scrape(port) else {
        return (0.0, 0);
    };
    let reconciles = reconciles_in(&text).unwrap_or(0.0);
    let clusters = if per_cluster {
        text.lines()
            .filter(|l| l.starts_with("doris_operator_cluster_ready{"))
            .count()
    } else {
        reconciles as usize
    };
    (reconciles, clusters)
}

/// The metrics text of the endpoint on `127.0.0.1:port`.
fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The sum of the reconcile counters' samples in `text`.
fn reconciles_in(text: &str) -> Option<f64> {
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("doris_operator_reconciles_total")
                || l.starts_with("controller_runtime_reconcile_total")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}
