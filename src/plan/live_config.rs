//! Configuration changes and what becomes of them: which keys of a part's
//! rendered configuration changed, and whether each is applied to the
//! running nodes (`live`), waits for the pods to restart (`restart`) or is
//! left for their next start (`ignore`). `config.rhai`'s optional
//! `fn config_change(ctx)` decides; without it the rule of the stock
//! policy applies (see [`default_decision`]). Pure: the controller asks
//! Doris whether each key may change at run time and carries out the
//! decisions (`controller::live_config`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::{ClusterRef, Part};
use crate::conf::ConfFile;
use crate::conventions::contract::CONTRACT_VERSION;
use crate::conventions::{ConventionBundle, SourceError};
use crate::crd::ComponentKind;

/// The policy file and function that decide.
pub const POLICY_FILE: &str = "config.rhai";
pub const POLICY_FUNCTION: &str = "config_change";

/// One changed key of a configuration file, or a changed file other than
/// the one Doris reads its settings from (then `key` is the file name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub file: String,
    /// The key as the new file writes it (the old one's, when removed).
    pub key: String,
    /// Unquoted values; `None` when the key is absent.
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Change {
    /// Whether Doris could take it at run time at all: a key of the
    /// settings file that still has a value.
    pub fn settable(&self, conf_file: &str) -> bool {
        self.file == conf_file && self.new.is_some()
    }
}

/// What happens to one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Live,
    Restart,
    Ignore,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Live => "live",
            Decision::Restart => "restart",
            Decision::Ignore => "ignore",
        }
    }
}

/// Whether the kind of node may take settings at run time through an API
/// the operator speaks: the FE (SQL) and BEs, CNs and compute groups (HTTP).
pub fn takes_live_changes(kind: ComponentKind) -> bool {
    matches!(
        kind,
        ComponentKind::Fe | ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg
    )
}

/// The changes from `old` to `new` files (by file name): each key of
/// `conf_file` whose unquoted value differs (keys compared ignoring case,
/// as Doris reads them), and each other file whose content differs.
pub fn changes(
    conf_file: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let parse = |files: &BTreeMap<String, String>| -> BTreeMap<String, (String, String)> {
        let text = files.get(conf_file).map(String::as_str).unwrap_or_default();
        let conf = ConfFile::parse(text);
        conf.entries()
            .iter()
            .map(|e| {
                let value = conf.get(&e.key).unwrap_or_default().to_string();
                (e.key.to_ascii_lowercase(), (e.key.clone(), value))
            })
            .collect()
    };
    let (before, after) = (parse(old), parse(new));
    for (lower, (key, value)) in &after {
        let was = before.get(lower).map(|(_, v)| v);
        if was != Some(value) {
            out.push(Change {
                file: conf_file.to_string(),
                key: key.clone(),
                old: was.cloned(),
                new: Some(value.clone()),
            });
        }
    }
    for (lower, (key, value)) in &before {
        if !after.contains_key(lower) {
            out.push(Change {
                file: conf_file.to_string(),
                key: key.clone(),
                old: Some(value.clone()),
                new: None,
            });
        }
    }
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        if name != conf_file && old.get(name) != new.get(name) {
            out.push(Change {
                file: name.clone(),
                key: name.clone(),
                old: None,
                new: None,
            });
        }
    }
    out
}

/// Whether a change of the configuration restarts the part's pods when the
/// policy says nothing: a DorisCluster asks for it with
/// `enableRestartWhenConfigChange`; a DorisDisaggregatedCluster always
/// restarts (it has no such switch).
pub fn restarts_on_change(cluster: ClusterRef<'_>) -> bool {
    match cluster {
        ClusterRef::Doris(c) => c.spec.enable_restart_when_config_change.unwrap_or(false),
        ClusterRef::Disaggregated(_) => true,
    }
}

/// The stock rule: with restarts on configuration change, a key Doris may
/// change at run time goes live and any other restarts; without, nothing
/// happens until the pods start again for another reason.
pub fn default_decision(restarts_on_change: bool, mutable: bool) -> Decision {
    match (restarts_on_change, mutable) {
        (false, _) => Decision::Ignore,
        (true, true) => Decision::Live,
        (true, false) => Decision::Restart,
    }
}

/// Decides each change of `part`'s configuration. `mutable` says which keys
/// the running Doris may change at run time (a key it does not list is
/// not). A change Doris could never take live (a removed key, another
/// file) is never `live`: the policy's `live` becomes `restart` then.
pub fn decide(
    bundle: &ConventionBundle,
    cluster: ClusterRef<'_>,
    part: &Part<'_>,
    changes: &[Change],
    mutable: &dyn Fn(&str) -> bool,
) -> Result<Vec<Decision>, SourceError> {
    let conf_file = super::context::conf_file_name(part.kind);
    let restarts = restarts_on_change(cluster);
    let defined = bundle.defines(POLICY_FILE, POLICY_FUNCTION, 1);
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let settable = change.settable(conf_file) && takes_live_changes(part.kind);
        let is_mutable = settable && mutable(&change.key);
        let decision = if defined {
            ask_policy(bundle, cluster, part, change, is_mutable, restarts)?
        } else {
            default_decision(restarts, is_mutable)
        };
        out.push(match decision {
            Decision::Live if !settable => Decision::Restart,
            d => d,
        });
    }
    Ok(out)
}

fn ask_policy(
    bundle: &ConventionBundle,
    cluster: ClusterRef<'_>,
    part: &Part<'_>,
    change: &Change,
    mutable: bool,
    restarts: bool,
) -> Result<Decision, SourceError> {
    let ctx = json!({
        "contract": CONTRACT_VERSION,
        "kind": cluster.kind(),
        "cluster": super::restart::cluster_ctx(cluster),
        "component": part.kind.as_str(),
        "part": part.name,
        "restart_on_change": restarts,
        "change": {
            "file": change.file,
            "key": change.key,
            "old": change.old,
            "new": change.new,
            "mutable": mutable,
        },
    });
    let value = bundle.call_json(POLICY_FILE, POLICY_FUNCTION, &ctx)?;
    match value.as_str() {
        Some("live") => Ok(Decision::Live),
        Some("restart") => Ok(Decision::Restart),
        Some("ignore") => Ok(Decision::Ignore),
        _ => Err(SourceError::new(
            bundle.origin(POLICY_FILE),
            format!(
                "fn {POLICY_FUNCTION} must return \"live\", \"restart\" or \"ignore\", got {}",
                shown(&value)
            ),
        )),
    }
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        format!("{}...", &text[..text.floor_char_boundary(80)])
    } else {
        text
    }
}

/// Runs the decision policy on made-up changes of every part of `cluster`
/// (a mutable and an immutable key, a removed key), as the conventions
/// check does before a bundle goes live, so a broken `config_change` never
/// does.
pub fn check_policy(bundle: &ConventionBundle, cluster: ClusterRef<'_>) -> Result<(), SourceError> {
    if !bundle.defines(POLICY_FILE, POLICY_FUNCTION, 1) {
        return Ok(());
    }
    for part in cluster.parts() {
        let file = super::context::conf_file_name(part.kind).to_string();
        let samples = [
            Change {
                file: file.clone(),
                key: "sys_log_level".into(),
                old: Some("INFO".into()),
                new: Some("WARN".into()),
            },
            Change {
                file: file.clone(),
                key: "max_bytes_per_broker_scanner".into(),
                old: None,
                new: Some("1024".into()),
            },
            Change {
                file,
                key: "qe_max_connection".into(),
                old: Some("1024".into()),
                new: None,
            },
        ];
        decide(bundle, cluster, &part, &samples, &|k| k != "sys_log_level")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(conf: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("be.conf".to_string(), conf.to_string())])
    }

    #[test]
    fn changed_added_and_removed_keys_are_found_ignoring_case_and_quotes() {
        let old = files("a = 1\nB = \"two\"\nc = 3\n");
        let new = files("a = 1\nb = two\nc = 4\nd = 5\n");
        let found = changes("be.conf", &old, &new);
        let keys: Vec<(&str, Option<&str>, Option<&str>)> = found
            .iter()
            .map(|c| (c.key.as_str(), c.old.as_deref(), c.new.as_deref()))
            .collect();
        assert_eq!(
            keys,
            vec![("c", Some("3"), Some("4")), ("d", None, Some("5"))]
        );
        let removed = changes("be.conf", &new, &files("a = 1\n"));
        assert!(removed.iter().all(|c| c.new.is_none()));
        assert_eq!(removed.len(), 3);
    }

    #[test]
    fn another_file_changed_is_one_change_named_after_it() {
        let mut old = files("a = 1\n");
        old.insert("log4j.properties".into(), "x".into());
        let mut new = files("a = 1\n");
        new.insert("log4j.properties".into(), "y".into());
        let found = changes("be.conf", &old, &new);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "log4j.properties");
        assert!(!found[0].settable("be.conf"));
    }

    #[test]
    fn the_stock_rule_needs_the_restart_switch() {
        assert_eq!(default_decision(false, true), Decision::Ignore);
        assert_eq!(default_decision(false, false), Decision::Ignore);
        assert_eq!(default_decision(true, true), Decision::Live);
        assert_eq!(default_decision(true, false), Decision::Restart);
    }
}
