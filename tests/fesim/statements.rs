//! What the FE simulator does with each statement.

use std::collections::BTreeMap;

use super::access::{Session, require_admin, require_admin_or_node, require_node};
use super::config::{no_all_frontends, set_config, show_frontend_config};
use super::show::{show_backends, show_frontends};
use super::sql::*;
use super::wire::{Answer, SERVER_VERSION, SqlError};
use super::{SimFrontend, State};

pub(super) fn execute(st: &mut State, sql: &str, session: &Session, query_port: u16) -> Answer {
    let toks = match tokenize(sql) {
        Ok(t) => t,
        Err(why) => return syntax_error(sql, &why),
    };
    let kw = keywords(&toks);
    let kw: Vec<&str> = kw.iter().map(String::as_str).collect();
    if let Err(denied) = check_privileges(st, session, &kw) {
        return Answer::Error(denied);
    }
    let result = match kw.as_slice() {
        [] => return syntax_error(sql, "empty statement"),
        ["SET", ..] | ["USE", ..] => Ok(Answer::Ok),
        ["SELECT", ..] => Ok(select(&toks[1..], st)),
        ["SHOW", "FRONTENDS"] => Ok(show_frontends(st, query_port)),
        ["SHOW", "BACKENDS"] => Ok(show_backends(st)),
        ["SHOW", "PROC"] => match toks.get(2) {
            Some(Tok::Str(p)) if p.trim_end_matches('/') == "/frontends" => {
                Ok(show_frontends(st, query_port))
            }
            Some(Tok::Str(p)) if p.trim_end_matches('/') == "/backends" => Ok(show_backends(st)),
            _ => Err(format!("Proc path is not supported here: {sql}")),
        },
        ["ALTER", "SYSTEM", "ADD", "BACKEND", ..] => add_backends(st, &toks[4..], sql),
        ["ALTER", "SYSTEM", "DROP", "BACKEND", ..] => Err(
            "It is highly NOT RECOMMENDED to use DROP BACKEND stmt.It is not safe to directly drop a backend. All data on this backend will be discarded permanently. If you insist, use DROPP instead of DROP"
                .to_string(),
        ),
        ["ALTER", "SYSTEM", "DROPP", "BACKEND", ..] => {
            with_targets(&toks[4..], sql, |t| drop_backends(st, t))
        }
        ["ALTER", "SYSTEM", "DECOMMISSION", "BACKEND", ..] => {
            with_targets(&toks[4..], sql, |t| decommission(st, t))
        }
        // Cloud mode refuses it before looking at the backends
        // (fe/fe-core/src/main/java/org/apache/doris/nereids/trees/plans/commands/CancelDecommissionBackendCommand.java,
        // `checkSupportedInCloudMode`).
        ["CANCEL", "DECOMMISSION", "BACKEND", ..] if !st.config.profile().can_cancel_decommission() => {
            Err("Unsupported operation".to_string())
        }
        ["CANCEL", "DECOMMISSION", "BACKEND", ..] => {
            with_targets(&toks[3..], sql, |t| cancel_decommission(st, t))
        }
        // Cloud mode refuses every `MODIFY BACKEND ... SET`
        // (fe/fe-core/src/main/java/org/apache/doris/cloud/system/CloudSystemInfoService.java,
        // `modifyBackends`; regression-test/suites/cloud_p0/node_mgr/test_not_allowed_op.groovy).
        ["ALTER", "SYSTEM", "MODIFY", "BACKEND", ..] if !st.config.profile().can_modify_backends() => {
            Err("Modifying backends is not supported in cloud mode".to_string())
        }
        ["ALTER", "SYSTEM", "MODIFY", "BACKEND", ..] => modify_backends(st, &toks[4..], sql),
        ["SHOW", "FRONTEND", "CONFIG", ..] => show_frontend_config(st, session, &toks[3..], sql),
        ["ADMIN", "SET", "FRONTEND", "CONFIG", ..] => {
            set_config(st, session, &toks[4..], sql, false)
        }
        ["ADMIN", "SET", "ALL", "FRONTENDS", "CONFIG", ..] => {
            if !st.config.profile().sets_all_frontends_at_once() {
                return no_all_frontends(sql);
            }
            set_config(st, session, &toks[5..], sql, true)
        }
        ["ALTER", "SYSTEM", verb @ ("ADD" | "DROP"), role @ ("FOLLOWER" | "OBSERVER"), ..] => {
            let add = *verb == "ADD";
            let role = role.to_string();
            with_targets(&toks[4..], sql, |t| frontend_change(st, t, &role, add))
        }
        _ => return syntax_error(sql, "statement not supported by the simulator"),
    };
    match result {
        Ok(answer) => answer,
        Err(message) => Answer::Error(SqlError::doris(message)),
    }
}

/// The privilege checks statements make when they are analysed, before
/// they run (`ADMIN SET ... CONFIG` checks its own, after its key count).
fn check_privileges(st: &State, session: &Session, kw: &[&str]) -> Result<(), SqlError> {
    let (config, user) = (&st.config, session.user.as_str());
    match kw {
        ["ALTER", "SYSTEM", ..] | ["CANCEL", "DECOMMISSION", ..] => require_node(config, user),
        ["SHOW", "FRONTENDS"] | ["SHOW", "BACKENDS"] => require_admin_or_node(config, user),
        ["SHOW", "FRONTEND", "CONFIG", ..] => require_admin(config, user),
        _ => Ok(()),
    }
}

/// Parses the `"host:port", ...` list that must end the statement and
/// applies `f` to it.
pub(super) fn with_targets(
    toks: &[Tok],
    sql: &str,
    f: impl FnOnce(&[Target]) -> Result<(), String>,
) -> Result<Answer, String> {
    match targets(toks) {
        Ok((targets, [])) => f(&targets).map(|()| Answer::Ok),
        Ok(_) => Ok(syntax_error(sql, "unexpected words after the node list")),
        Err(why) => Ok(syntax_error(sql, &why)),
    }
}

pub(super) fn find_backend(st: &State, target: &Target) -> Option<usize> {
    st.backends.iter().position(|b| match target {
        Target::HostPort(h, p) => &b.host == h && b.heartbeat_port == *p,
        Target::Id(id) => b.id == *id,
    })
}

pub(super) fn existing_backends(st: &State, targets: &[Target]) -> Result<Vec<usize>, String> {
    targets
        .iter()
        .map(|t| {
            find_backend(st, t).ok_or_else(|| match t {
                Target::Id(id) => format!("Backend does not exist, backend id is {id}"),
                _ => format!("Backend does not exist[{}]", t.show()),
            })
        })
        .collect()
}

/// `"host:port", ... [PROPERTIES ("tag.compute_group_name" = "cg1", ...)]`.
pub(super) fn add_backends(st: &mut State, toks: &[Tok], sql: &str) -> Result<Answer, String> {
    let (targets, rest) = match targets(toks) {
        Ok(t) => t,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    let props = match rest {
        [] => BTreeMap::new(),
        [Tok::Word(w), rest @ ..] if w.eq_ignore_ascii_case("PROPERTIES") => {
            match properties(rest) {
                Ok(p) => p,
                Err(why) => return Ok(syntax_error(sql, &why)),
            }
        }
        _ => return Ok(syntax_error(sql, "unexpected words after the node list")),
    };
    let unknown: Vec<&String> = props
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "tag.location" | "tag.compute_group_name" | "tag.cloud_cluster_name"
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!("Unknown properties: {unknown:?}"));
    }
    // Doris 3.0.0 and 3.0.1 named the group with `tag.cloud_cluster_name`.
    let group = props
        .get("tag.compute_group_name")
        .or_else(|| props.get("tag.cloud_cluster_name"));
    if group.is_some_and(|g| g.is_empty()) {
        return Err("compute group name is empty".to_string());
    }
    st.compute_group_for(group.map(String::as_str))?;
    add_backend_targets(st, &targets, group.map(String::as_str)).map(|()| Answer::Ok)
}

pub(super) fn add_backend_targets(
    st: &mut State,
    targets: &[Target],
    compute_group: Option<&str>,
) -> Result<(), String> {
    let mut hosts = Vec::new();
    for t in targets {
        match t {
            Target::HostPort(h, p) => {
                if find_backend(st, t).is_some() {
                    return Err(format!("Same backend already exists[{}]", host_port(h, *p)));
                }
                hosts.push((h.clone(), *p));
            }
            Target::Id(_) => return Err(format!("Invalid host port format: {}", t.show())),
        }
    }
    let (alive, tablets) = (st.config.new_backends_alive, st.config.new_backend_tablets);
    for (h, p) in hosts {
        st.add_backend(&h, p, alive, tablets, compute_group)?;
    }
    Ok(())
}

pub(super) fn drop_backends(st: &mut State, targets: &[Target]) -> Result<(), String> {
    for t in targets {
        if find_backend(st, t).is_none() {
            return Err(format!("backend does not exists[{}]", t.show()));
        }
    }
    for t in targets {
        if let Some(i) = find_backend(st, t) {
            st.backends.remove(i);
        }
    }
    Ok(())
}

pub(super) fn decommission(st: &mut State, targets: &[Target]) -> Result<(), String> {
    let going = existing_backends(st, targets)?;
    // Integrated mode refuses a decommission that leaves too few BEs for a
    // table's replicas; cloud mode skips the check
    // (fe/fe-core/src/main/java/org/apache/doris/alter/SystemHandler.java,
    // `checkDecommissionWithReplicaAllocation`).
    if let Some(replicas) = st.config.table_replication_num
        && !st.config.profile().is_cloud()
    {
        let left = (0..st.backends.len())
            .filter(|i| !going.contains(i) && !st.backends[*i].decommissioned)
            .count();
        if left < replicas {
            return Err(format!(
                "After decommission, partition example_tbl of table example_db.example_tbl 's \
                 replication allocation {{ tag.location.default: {replicas} }} > available \
                 backend num {left} on tag location:default, otherwise need to decrease the \
                 partition's replication num."
            ));
        }
    }
    for i in going {
        let be = &mut st.backends[i];
        if !be.decommissioned {
            be.decommissioned = true;
            be.drain_left = be.tablet_num as f64;
        }
    }
    // One with nothing to hand off goes at once.
    st.advance();
    Ok(())
}

pub(super) fn cancel_decommission(st: &mut State, targets: &[Target]) -> Result<(), String> {
    for i in existing_backends(st, targets)? {
        st.backends[i].decommissioned = false;
    }
    Ok(())
}

pub(super) fn modify_backends(st: &mut State, toks: &[Tok], sql: &str) -> Result<Answer, String> {
    let (targets, rest) = match targets(toks) {
        Ok(t) => t,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    if !matches!(rest.first(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("SET")) {
        return Ok(syntax_error(sql, "expected SET"));
    }
    let props = match properties(&rest[1..]) {
        Ok(p) => p,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match props.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if v == "true" => Ok(Some(true)),
            Some(v) if v == "false" => Ok(Some(false)),
            Some(v) => Err(format!("Invalid {key} value: {v}")),
        }
    };
    let disable_query = flag("disable_query")?;
    let disable_load = flag("disable_load")?;
    let unknown: Vec<&String> = props
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "disable_query" | "disable_load" | "tag.location"
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!("Unknown properties: {unknown:?}"));
    }
    for i in existing_backends(st, &targets)? {
        let be = &mut st.backends[i];
        if let Some(q) = disable_query {
            be.query_disabled = q;
        }
        if let Some(l) = disable_load {
            be.load_disabled = l;
        }
    }
    Ok(Answer::Ok)
}

pub(super) fn frontend_change(
    st: &mut State,
    targets: &[Target],
    role: &str,
    add: bool,
) -> Result<(), String> {
    for t in targets {
        let Target::HostPort(host, port) = t else {
            return Err(format!("Invalid host port format: {}", t.show()));
        };
        let found = st
            .frontends
            .iter()
            .position(|f| &f.host == host && f.edit_log_port == *port);
        match (add, found) {
            (true, Some(_)) => {
                return Err(format!(
                    "frontend already exists[{}]",
                    host_port(host, *port)
                ));
            }
            (true, None) => st.frontends.push(SimFrontend::new(host, *port, role)),
            (false, None) => {
                return Err(format!(
                    "frontend does not exist[{}]",
                    host_port(host, *port)
                ));
            }
            (false, Some(i)) => {
                let fe = &st.frontends[i];
                if fe.role != role {
                    return Err(format!("{role} does not exist[{}]", host_port(host, *port)));
                }
                if fe.is_master {
                    return Err("can not drop current master node.".to_string());
                }
                st.frontends.remove(i);
            }
        }
    }
    Ok(())
}

/// `SELECT @@var, ...` and `SELECT 1`: what a client may ask on connect.
pub(super) fn select(toks: &[Tok], st: &State) -> Answer {
    let mut columns = Vec::new();
    let mut row = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (name, value) = match &toks[i] {
            Tok::Word(w) if w.starts_with("@@") => (w.clone(), variable(w, st)),
            Tok::Word(w) if w.parse::<i64>().is_ok() => (w.clone(), Some(w.clone())),
            Tok::Str(s) => (s.clone(), Some(s.clone())),
            _ => break,
        };
        i += 1;
        let mut column = name;
        if matches!(toks.get(i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("AS")) {
            if let Some(Tok::Word(alias) | Tok::Str(alias)) = toks.get(i + 1) {
                column = alias.clone();
            }
            i += 2;
        }
        // `LIMIT n` changes nothing for a one-row answer.
        if matches!(toks.get(i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIMIT")) {
            i += 2;
        }
        columns.push(column);
        row.push(value);
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        }
    }
    if columns.is_empty() || i < toks.len() {
        return Answer::Error(SqlError::doris(
            "SELECT of tables is not supported by the simulator",
        ));
    }
    Answer::Rows {
        columns,
        rows: vec![row],
    }
}

pub(super) fn variable(name: &str, st: &State) -> Option<String> {
    let lower = name.trim_start_matches('@').to_ascii_lowercase();
    let bare = lower
        .strip_prefix("session.")
        .or_else(|| lower.strip_prefix("global."))
        .unwrap_or(&lower);
    let v = match bare {
        "max_allowed_packet" => "16777216".to_string(),
        "wait_timeout" => "28800".to_string(),
        "version_comment" => format!("Doris version {}", st.config.version),
        "version" => SERVER_VERSION.to_string(),
        "autocommit" => "1".to_string(),
        "character_set_client" | "character_set_connection" | "character_set_results" => {
            "utf8mb4".to_string()
        }
        "collation_connection" => "utf8mb4_0900_bin".to_string(),
        "time_zone" | "system_time_zone" => "Asia/Shanghai".to_string(),
        "tx_isolation" | "transaction_isolation" => "REPEATABLE-READ".to_string(),
        "sql_mode" => String::new(),
        _ => return None,
    };
    Some(v)
}
