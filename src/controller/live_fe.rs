//! Setting FE keys at run time, in the words the running Doris takes:
//! `ADMIN SET ALL FRONTENDS CONFIG` once from 2.1.5 on, else `ADMIN SET
//! FRONTEND CONFIG` on each FE's own connection (and when the release is
//! not known, since every release takes that). In storage-compute
//! separated mode Doris lets only root run either
//! (fe/fe-core/src/main/java/org/apache/doris/qe/DdlExecutor.java,
//! `checkDdlStmtSupported`); with another user nothing is sent and the
//! keys are taken as needing a restart (see [`root_only_note`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::cluster::{ClusterRef, Part};
use crate::crd::RefusedSetting;
use crate::doris::{FeClient, FeError, FeErrorKind, Mode, Profile};
use crate::plan::Plan;
use crate::plan::live_config::{Change, Decision};

use super::Context;

/// The user the operator logs in to a storage-compute separated cluster's
/// FE as, when Doris would refuse it `ADMIN SET ... CONFIG`; `None` when
/// it may, or the cluster is integrated.
pub fn root_only_user(cluster: ClusterRef<'_>, fe: &FeClient) -> Option<String> {
    let user = &fe.endpoint().user;
    let cloud = Profile::new(Mode::Cloud, None);
    let refused =
        matches!(cluster, ClusterRef::Disaggregated(_)) && !cloud.may_set_frontend_config(user);
    refused.then(|| user.clone())
}

/// Why `keys`, which Doris could change at run time, are not sent: what
/// the conventions do with them instead (`decisions`, in the order of
/// `keys`), and what to do to set them live.
pub fn root_only_note(user: &str, keys: &[(&str, Decision)]) -> String {
    let of = |d: Decision| -> Vec<&str> {
        keys.iter()
            .filter(|(_, k)| *k == d)
            .map(|(key, _)| *key)
            .collect()
    };
    let mut note = format!(
        "Doris lets only root change FE settings at run time in storage-compute separated mode \
         (others get \"Unsupported operation\"), and the operator logs in as `{user}`: \
         nothing was sent to the FE"
    );
    let restart = of(Decision::Restart);
    if !restart.is_empty() {
        note.push_str(&format!("; the FEs restart for {}", restart.join(", ")));
    }
    let ignored = of(Decision::Ignore);
    if !ignored.is_empty() {
        note.push_str(&format!(
            "; {} wait for the FEs' next start (restarts on configuration change are off)",
            ignored.join(", ")
        ));
    }
    note.push_str(". To change FE settings without a restart, make spec.authSecret name root");
    note
}

/// What status says of a statement the FE refused or could not run:
/// which FE and statement, Doris's own words, and what to do.
pub fn refusal(e: &FeError, user: &str) -> String {
    let FeErrorKind::Server { code, message, .. } = &e.kind else {
        return e.brief();
    };
    let todo = if *code == 1227 {
        format!(
            "; grant user `{user}` the privilege Doris names (GRANT ... ON *.*.* TO '{user}'), \
             or make spec.authSecret name a user that has it"
        )
    } else if message.contains("Unsupported operation") {
        "; in storage-compute separated mode only root may run it: make spec.authSecret name root"
            .to_string()
    } else {
        String::new()
    };
    format!("{}: {message}{todo}", e.brief())
}

/// Sets each of `live` on every Ready FE (`ready`), adding to `took` the
/// FEs that took a key and to `refused` each refusal.
#[allow(clippy::too_many_arguments)]
pub async fn set<'a>(
    ctx: &Context,
    cluster: ClusterRef<'_>,
    planned: &Plan,
    part: &Part<'_>,
    service: &str,
    ready: &[&Pod],
    live: &[&'a Change],
    took: &mut BTreeMap<&'a str, i32>,
    refused: &mut Vec<RefusedSetting>,
) {
    let node = part.names.access_service.clone();
    let fe = match ctx.fe_client(cluster, &planned.objects).await {
        Ok(fe) => fe,
        Err(e) => {
            refused.extend(live.iter().map(|c| RefusedSetting {
                node: node.clone(),
                key: c.key.clone(),
                message: e.clone(),
            }));
            return;
        }
    };
    let user = fe.endpoint().user.clone();
    let profile = ctx.fe_profile(cluster, &part.base.image, &fe).await;
    let before = refused.len();
    if profile.sets_all_frontends_at_once() {
        for change in live {
            let value = change.new.as_deref().unwrap_or_default();
            match fe.set_all_frontends_config(&change.key, value).await {
                Ok(()) => *took.entry(change.key.as_str()).or_default() += ready.len() as i32,
                Err(e) => refused.push(RefusedSetting {
                    node: node.clone(),
                    key: change.key.clone(),
                    message: refusal(&e, &user),
                }),
            }
        }
    } else {
        // Each FE on its own connection: the statement sets the FE it
        // reaches only.
        for pod in ready {
            let name = pod.name_any();
            let host = format!("{name}.{service}.{}.svc.cluster.local", cluster.namespace());
            let one = ctx.fe_pod_client(cluster, &planned.objects, &host).await;
            for change in live {
                let value = change.new.as_deref().unwrap_or_default();
                let result = match &one {
                    Ok(fe) => fe
                        .set_frontend_config(&change.key, value)
                        .await
                        .map_err(|e| refusal(&e, &user)),
                    Err(e) => Err(e.clone()),
                };
                match result {
                    Ok(()) => *took.entry(change.key.as_str()).or_default() += 1,
                    Err(message) => refused.push(RefusedSetting {
                        node: name.clone(),
                        key: change.key.clone(),
                        message,
                    }),
                }
            }
        }
    }
    if refused.len() > before {
        // The FE may have been replaced by another release: ask again.
        ctx.forget_fe_release(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server_error(code: u16, message: &str) -> FeError {
        FeError {
            addr: "d-fe-0.d-fe-internal.ns.svc.cluster.local:9030".into(),
            statement: "ADMIN SET FRONTEND CONFIG (\"qe_slow_log_ms\" = \"3000\")".into(),
            attempts: 1,
            kind: FeErrorKind::Server {
                code,
                state: "42000".into(),
                message: message.into(),
            },
        }
    }

    #[test]
    fn a_refusal_keeps_dorises_words_and_says_what_to_do() {
        let denied = "errCode = 2, detailMessage = Access denied; you need (at least one of) the (ADMIN) privilege(s) for this operation";
        let text = refusal(&server_error(1227, denied), "ops");
        assert!(text.contains("ADMIN SET FRONTEND CONFIG"), "{text}");
        assert!(text.contains(denied), "{text}");
        assert!(text.contains("grant user `ops`"), "{text}");
        let cloud = refusal(
            &server_error(1105, "errCode = 2, detailMessage = Unsupported operation"),
            "ops",
        );
        assert!(cloud.ends_with("make spec.authSecret name root"), "{cloud}");
        let other = refusal(&server_error(1105, "errCode = 2, detailMessage = x"), "ops");
        assert!(other.ends_with("detailMessage = x"), "{other}");
        let timeout = FeError {
            kind: FeErrorKind::QueryTimeout(Duration::from_secs(1)),
            ..server_error(0, "")
        };
        assert_eq!(refusal(&timeout, "ops"), timeout.brief());
    }

    #[test]
    fn the_root_only_note_names_each_key_and_its_fate() {
        let note = root_only_note(
            "ops",
            &[
                ("qe_slow_log_ms", Decision::Restart),
                ("max_running_txn_num_per_db", Decision::Ignore),
            ],
        );
        assert!(note.contains("only root"), "{note}");
        assert!(note.contains("`ops`"), "{note}");
        assert!(
            note.contains("the FEs restart for qe_slow_log_ms"),
            "{note}"
        );
        assert!(
            note.contains("max_running_txn_num_per_db wait for the FEs' next start"),
            "{note}"
        );
        assert!(note.ends_with("make spec.authSecret name root"), "{note}");
    }
}
