//! The FE's settings: a small table of real ones with Doris's own
//! mutability, kept for each FE, `SHOW FRONTEND CONFIG` and `ADMIN SET
//! [ALL] FRONTEND[S] CONFIG`.

use std::collections::BTreeMap;

use super::State;
use super::access::{ROOT, Session, require_admin};
use super::sql::{Tok, properties, syntax_error};
use super::wire::{Answer, SqlError};

/// One FE setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSetting {
    pub value: String,
    pub type_: &'static str,
    pub mutable: bool,
    pub master_only: bool,
}

/// An accepted `ADMIN SET ... CONFIG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSet {
    /// Whether it was `ALL FRONTENDS` (else the FE asked only).
    pub all: bool,
    pub key: String,
    pub value: String,
    /// The host of the FE the client was connected to.
    pub frontend: String,
}

/// Some real FE settings: (key, type, default, mutable, master only).
const FE_SETTINGS: &[(&str, &str, &str, bool, bool)] = &[
    ("http_port", "int", "8030", false, false),
    ("rpc_port", "int", "9020", false, false),
    ("query_port", "int", "9030", false, false),
    ("edit_log_port", "int", "9010", false, false),
    (
        "meta_dir",
        "String",
        "/opt/apache-doris/fe/doris-meta",
        false,
        false,
    ),
    ("sys_log_level", "String", "INFO", false, false),
    ("sys_log_mode", "String", "NORMAL", false, false),
    ("enable_fqdn_mode", "boolean", "false", false, false),
    ("qe_max_connection", "int", "1024", false, false),
    (
        "max_bytes_per_broker_scanner",
        "long",
        "536870912000",
        true,
        true,
    ),
    (
        "max_routine_load_task_num_per_be",
        "int",
        "1024",
        true,
        true,
    ),
    ("dynamic_partition_enable", "boolean", "true", true, true),
    // Whether the master drops a decommissioned BE once it holds no
    // tablets (Config.java: `@ConfField(mutable = true, masterOnly = true)`,
    // default true; read by alter/SystemHandler.java).
    (
        "drop_backend_after_decommission",
        "boolean",
        "true",
        true,
        true,
    ),
    ("tablet_create_timeout_second", "int", "2", true, true),
    ("max_running_txn_num_per_db", "int", "1000", true, true),
    ("qe_slow_log_ms", "long", "5000", true, false),
];

pub(super) fn fe_settings() -> BTreeMap<String, SimSetting> {
    FE_SETTINGS
        .iter()
        .map(|(key, type_, value, mutable, master_only)| {
            (
                key.to_string(),
                SimSetting {
                    value: value.to_string(),
                    type_,
                    mutable: *mutable,
                    master_only: *master_only,
                },
            )
        })
        .collect()
}

/// `SHOW FRONTEND CONFIG [LIKE 'pattern']`.
pub(super) fn show_frontend_config(
    st: &mut State,
    session: &Session,
    toks: &[Tok],
    sql: &str,
) -> Result<Answer, String> {
    let pattern = match toks {
        [] => None,
        [Tok::Word(like), Tok::Str(p)] if like.eq_ignore_ascii_case("LIKE") => Some(p.as_str()),
        _ => return Ok(syntax_error(sql, "expected LIKE 'pattern'")),
    };
    let columns = ["Key", "Value", "Type", "IsMutable", "MasterOnly", "Comment"];
    let fe = session.frontend_host(st);
    let rows = st
        .settings_of(&fe)
        .iter()
        .filter(|(key, _)| pattern.is_none_or(|p| like(p, key)))
        .map(|(key, s)| {
            vec![
                Some(key.clone()),
                Some(s.value.clone()),
                Some(s.type_.to_string()),
                Some(s.mutable.to_string()),
                Some(s.master_only.to_string()),
                Some(String::new()),
            ]
        })
        .collect();
    Ok(Answer::Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    })
}

/// SQL `LIKE`, case-insensitive: `%` any run, `_` any one character.
pub(super) fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t.split_first().is_some_and(|(d, more)| {
                (*c == '_' || c.eq_ignore_ascii_case(d)) && go(rest, more)
            }),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// `ADMIN SET [ALL] FRONTEND[S] CONFIG ("key" = "value")`, as
/// fe/fe-core/src/main/java/org/apache/doris/analysis/AdminSetConfigStmt.java
/// and fe/fe-core/src/main/java/org/apache/doris/qe/DdlExecutor.java take
/// it: one key; the ADMIN privilege; in storage-compute separated mode
/// only root (`checkDdlStmtSupported`: "Unsupported operation"). It sets
/// the FE the client is connected to, or with `all` every FE of the group; a
/// master-only key is forwarded to the master and set there only
/// (`applyToAll = false`).
pub(super) fn set_config(
    st: &mut State,
    session: &Session,
    toks: &[Tok],
    sql: &str,
    all: bool,
) -> Result<Answer, String> {
    let props = match properties(toks) {
        Ok(p) => p,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    if props.len() != 1 {
        return Err("config parameter size is not equal to 1".to_string());
    }
    if let Err(denied) = require_admin(&st.config, &session.user) {
        return Ok(Answer::Error(denied));
    }
    if st.config.cloud.is_some() && session.user != ROOT {
        return Err("Unsupported operation".to_string());
    }
    let (key, value) = props.into_iter().next().expect("one property");
    let connected = session.frontend_host(st);
    let Some(setting) = st.settings_of(&connected).get(&key).cloned() else {
        return Err(format!("Config '{key}' does not exist"));
    };
    if !setting.mutable {
        return Err(format!("Config '{key}' is not mutable"));
    }
    let targets: Vec<String> = if setting.master_only {
        vec![st.master_host()]
    } else if all {
        st.frontends
            .iter()
            .map(|f| f.host.clone())
            .chain([connected.clone()])
            .collect()
    } else {
        vec![connected.clone()]
    };
    for fe in targets {
        if let Some(s) = st.settings_of(&fe).get_mut(&key) {
            s.value = value.clone();
        }
    }
    st.config_sets.push(ConfigSet {
        all,
        key,
        value,
        frontend: connected,
    });
    Ok(Answer::Ok)
}

/// What a Doris without `ADMIN SET ALL FRONTENDS CONFIG` (before 2.1.5,
/// [`doris_operator::doris::ALL_FRONTENDS_CONFIG_SINCE`]) answers: its
/// parser (fe/fe-core/src/main/cup/sql_parser.cup, which has no `ALL
/// FRONTENDS` rule before apache/doris PR #34685) stops at `ALL`, and
/// reports it the way the parser's error report words it: `Syntax error
/// in line 1:`, the statement, a caret under the word, `Encountered:
/// ALL`. The list of tokens it expected instead is left out: no captured
/// text of it was found.
pub(super) fn no_all_frontends(sql: &str) -> Answer {
    let sql = sql.trim();
    let at = sql.to_ascii_uppercase().find(" ALL").map_or(0, |i| i + 1);
    Answer::Error(SqlError::doris(format!(
        "Syntax error in line 1:\n{sql}\n{}^\nEncountered: ALL",
        " ".repeat(at)
    )))
}
