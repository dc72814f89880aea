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

/// One request of the operator: verb, path, the resource (plural) and the
/// namespace it names (empty for neither).
struct Request {
    verb: String,
    path: String,
    resource: String,
    namespace: String,
}

/// The operator's requests since `mark`: from the emulator's request log,
/// or from the audit log (which records its writes, and its gets and lists
/// when it runs as tests/realk8s/up.sh's operator-runner).
fn requests(env: &Env, mark: &Mark) -> Vec<Request> {
    match mark {
        Mark::Emulator(from) => {
            let operator = format!("doris-operator/{}", env!("CARGO_PKG_VERSION"));
            env.emulator
                .as_ref()
                .expect("the emulator")
                .requests()
                .into_iter()
                .skip(*from)
                .filter(|r| r.user_agent.as_deref() == Some(operator.as_str()))
                .map(|r| {
                    let path = r.path.split('?').next().unwrap_or_default().to_string();
                    let segments: Vec<&str> = path.split('/').collect();
                    let after = |word: &str| {
                        segments
                            .iter()
                            .position(|s| *s == word)
                            .and_then(|i| segments.get(i + 1))
                            .map_or(String::new(), |s| s.to_string())
                    };
                    // .../<plural>[/<name>[/<subresource>]]
                    let from_namespace = segments.iter().position(|s| *s == "namespaces");
                    let resource = match from_namespace {
                        Some(i) if segments.len() > i + 2 => segments[i + 2].to_string(),
                        _ => segments
                            .iter()
                            .rev()
                            .find(|s| s.chars().all(|c| c.is_ascii_lowercase()) && !s.is_empty())
                            .map_or(String::new(), |s| s.to_string()),
                    };
                    Request {
                        verb: r.verb.to_string(),
                        namespace: after("namespaces"),
                        resource,
                        path: r.path,
                    }
                })
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
                .map(|e| {
                    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                    Request {
                        verb: text(&e["verb"]),
                        path: text(&e["requestURI"]),
                        resource: text(&e["objectRef"]["resource"]),
                        namespace: text(&e["objectRef"]["namespace"]),
                    }
                })
                .collect()
        }
        Mark::None => Vec::new(),
    }
}

/// The operator's GETs and LISTs of `resources` (plurals; none: of every
/// kind) since `mark`, as `verb path`.
pub fn since(env: &Env, mark: &Mark, resources: &[&str]) -> Vec<String> {
    requests(env, mark)
        .into_iter()
        .filter(|r| r.verb == "get" || r.verb == "list")
        .filter(|r| resources.is_empty() || resources.contains(&r.resource.as_str()))
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect()
}

/// The operator's writes (create, update, patch, delete) in the test's
/// namespace since `mark`, as `verb path`.
pub fn writes_since(env: &Env, mark: &Mark) -> Vec<String> {
    requests(env, mark)
        .into_iter()
        .filter(|r| matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .filter(|r| r.namespace == env.namespace)
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect()
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
