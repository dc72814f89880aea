//! The operator's reads of given kinds, counted from a mark on: in the
//! emulator's request log, or in the real control plane's audit log
//! (`DORIS_OPERATOR_TEST_AUDIT_LOG`; tests/realk8s/up.sh's policy records
//! gets and lists of the kinds counted here).

use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::{Env, OPERATOR_IDENTITY, eventually};

/// Annotates cluster `name` `times` times with a value nothing reads,
/// waiting after each for a reconcile: reconciles of a cluster whose
/// desired state did not change.
pub async fn nudge(env: &Env, name: &str, times: usize) {
    let clusters = env.api::<doris_operator::crd::DorisCluster>();
    for nudge in 0..times {
        let before = env.metrics.reconciles.get();
        clusters
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    "e2e.example.com/nudge": nudge.to_string()}}})),
            )
            .await
            .unwrap();
        eventually("a reconcile after the nudge", 30, || async {
            (env.metrics.reconciles.get() > before).then_some(())
        })
        .await;
    }
}

/// Where counting starts.
pub enum Mark {
    /// Requests the emulator has recorded so far.
    Emulator(usize),
    /// The audit log's length so far.
    Audit(std::path::PathBuf, u64),
    /// Nothing to count from: no audit log was named.
    None,
}

/// From now on.
pub fn mark(env: &Env) -> Mark {
    if let Some(emulator) = &env.emulator {
        return Mark::Emulator(emulator.requests().len());
    }
    match std::env::var("DORIS_OPERATOR_TEST_AUDIT_LOG") {
        Ok(log) => {
            let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            Mark::Audit(log.into(), len)
        }
        Err(_) => Mark::None,
    }
}

/// Whether reads can be counted (an emulator, or an audit log).
pub fn counted(mark: &Mark) -> bool {
    !matches!(mark, Mark::None)
}

/// The operator's GETs and LISTs of `resources` (plurals; none: of every
/// kind) since `mark`, as `verb path`.
pub fn since(env: &Env, mark: &Mark, resources: &[&str]) -> Vec<String> {
    let operator = format!("doris-operator/{}", env!("CARGO_PKG_VERSION"));
    match mark {
        Mark::Emulator(from) => env
            .emulator
            .as_ref()
            .expect("the emulator")
            .requests()
            .into_iter()
            .skip(*from)
            .filter(|r| matches!(r.verb, "get" | "list"))
            .filter(|r| r.user_agent.as_deref() == Some(operator.as_str()))
            .filter(|r| {
                let path = r.path.split('?').next().unwrap_or_default();
                let mut segments = path.split('/').rev();
                let (last, before) = (segments.next(), segments.next());
                resources.is_empty()
                    || resources
                        .iter()
                        .any(|p| last == Some(p) || before == Some(p))
            })
            .map(|r| format!("{} {}", r.verb, r.path))
            .collect(),
        Mark::Audit(log, from) => {
            let text = std::fs::read(log).expect("the audit log");
            let from = (*from as usize).min(text.len());
            String::from_utf8_lossy(&text[from..])
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["stage"] == "ResponseComplete")
                .filter(|e| e["impersonatedUser"]["username"] == OPERATOR_IDENTITY)
                .filter(|e| e["verb"] == "get" || e["verb"] == "list")
                .filter(|e| {
                    resources.is_empty()
                        || resources.iter().any(|p| e["objectRef"]["resource"] == *p)
                })
                .map(|e| {
                    format!(
                        "{} {}",
                        e["verb"].as_str().unwrap_or_default(),
                        e["requestURI"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        }
        Mark::None => Vec::new(),
    }
}

/// The operator's writes (create, update, patch, delete) in the test's
/// namespace since `mark`, as `verb path`.
pub fn writes_since(env: &Env, mark: &Mark) -> Vec<String> {
    let operator = format!("doris-operator/{}", env!("CARGO_PKG_VERSION"));
    let writes = ["create", "update", "patch", "delete"];
    match mark {
        Mark::Emulator(from) => {
            let within = format!("/namespaces/{}/", env.namespace);
            env.emulator
                .as_ref()
                .expect("the emulator")
                .requests()
                .into_iter()
                .skip(*from)
                .filter(|r| writes.contains(&r.verb))
                .filter(|r| r.user_agent.as_deref() == Some(operator.as_str()))
                .filter(|r| r.path.contains(&within))
                .map(|r| format!("{} {}", r.verb, r.path))
                .collect()
        }
        Mark::Audit(log, from) => {
            let text = std::fs::read(log).expect("the audit log");
            let from = (*from as usize).min(text.len());
            String::from_utf8_lossy(&text[from..])
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["stage"] == "ResponseComplete")
                .filter(|e| e["impersonatedUser"]["username"] == OPERATOR_IDENTITY)
                .filter(|e| writes.iter().any(|w| e["verb"] == *w))
                .filter(|e| e["objectRef"]["namespace"] == env.namespace.as_str())
                .map(|e| {
                    format!(
                        "{} {}",
                        e["verb"].as_str().unwrap_or_default(),
                        e["requestURI"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        }
        Mark::None => Vec::new(),
    }
}

/// Waits until the operator has written nothing in the test's namespace
/// for `quiet` seconds (at most `secs` in all): a converged cluster.
pub async fn settled(env: &Env, quiet: u64, secs: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let from = mark(env);
        if !counted(&from) {
            tokio::time::sleep(std::time::Duration::from_secs(quiet)).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(quiet)).await;
        let writes = writes_since(env, &from);
        if writes.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator still writes after {secs} s: {writes:#?}"
        );
    }
}
