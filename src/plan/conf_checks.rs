//! What Doris or the API server would refuse of a part's configuration
//! file: a port that is not a port number, two ports of one part on the
//! same number (the part's Services would list it twice), a data directory
//! named twice in `storage_root_path`. Checked on the final file, and
//! blamed on the user's ConfigMap when a value at fault is theirs.

use std::collections::BTreeMap;

use crate::crd::{ComponentKind, FieldError};

/// A value Doris would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Whether a value at fault is the one the user's file gives (else the
    /// conventions set or changed it).
    pub users: bool,
    pub message: String,
}

/// A setting that holds a port number.
struct PortKey {
    key: &'static str,
    /// Whether the part's container and Services publish it (as
    /// `shape.rhai` does), so that no other published port may share it.
    published: bool,
    /// The port Doris uses when the file does not set it (`None`: the port
    /// is published only when set).
    default: Option<i64>,
    /// A value that turns the listener off instead.
    off: Option<i64>,
}

/// A published port with Doris's default.
const fn published(key: &'static str, default: i64) -> PortKey {
    PortKey {
        key,
        published: true,
        default: Some(default),
        off: None,
    }
}

/// A port Doris listens on only when something else enables it.
const fn other(key: &'static str) -> PortKey {
    PortKey {
        key,
        published: false,
        default: None,
        off: None,
    }
}

/// Arrow Flight SQL: off at -1, its default; published when on.
const ARROW: PortKey = PortKey {
    key: "arrow_flight_sql_port",
    published: true,
    default: None,
    off: Some(-1),
};

const FE_PORTS: &[PortKey] = &[
    published("http_port", 8030),
    published("rpc_port", 9020),
    published("query_port", 9030),
    published("edit_log_port", 9010),
    ARROW,
    other("https_port"),
];

const BE_PORTS: &[PortKey] = &[
    published("be_port", 9060),
    published("webserver_port", 8040),
    published("heartbeat_service_port", 9050),
    published("brpc_port", 8060),
    ARROW,
    other("single_replica_load_brpc_port"),
    other("single_replica_load_download_port"),
];

const BROKER_PORTS: &[PortKey] = &[published("broker_ipc_port", 8000)];

const MS_PORTS: &[PortKey] = &[published("brpc_listen_port", 5000)];

fn port_keys(kind: ComponentKind) -> &'static [PortKey] {
    match kind {
        ComponentKind::Fe => FE_PORTS,
        ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg => BE_PORTS,
        ComponentKind::Broker => BROKER_PORTS,
        ComponentKind::Ms => MS_PORTS,
    }
}

/// The problems of a part's final configuration as errors at the user's
/// ConfigMap `source` (`ConfigMap <name>, <file>`); `Err` with the first
/// problem whose value the conventions set, which is theirs to fix.
pub fn errors(
    kind: ComponentKind,
    source: Option<&str>,
    file: &str,
    user: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
) -> Result<Vec<FieldError>, String> {
    check(kind, user, values)
        .into_iter()
        .map(|problem| match source {
            Some(name) if problem.users => Ok(FieldError {
                path: format!("ConfigMap {name}, {file}"),
                message: problem.message,
            }),
            _ => Err(problem.message),
        })
        .collect()
}

/// Every problem of the final configuration `values` of a part of `kind`
/// (lower-cased keys, unquoted values), with `user` the values of the
/// user's own file.
pub fn check(
    kind: ComponentKind,
    user: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let users = |key: &str| values.get(key).is_some() && user.get(key) == values.get(key);
    // The published ports: setting, number, and whether the file sets it.
    let mut listening: Vec<(&str, i64, bool)> = Vec::new();
    for spec in port_keys(kind) {
        let Some(raw) = values.get(spec.key) else {
            if let Some(default) = spec.default {
                listening.push((spec.key, default, false));
            }
            continue;
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if spec.off == Some(n) => {}
            Ok(n) if (1..=65535).contains(&n) => {
                if spec.published {
                    listening.push((spec.key, n, true));
                }
            }
            _ => problems.push(Problem {
                users: users(spec.key),
                message: format!(
                    "{} = {raw:?} is not a port number (1 to 65535{})",
                    spec.key,
                    spec.off
                        .map_or(String::new(), |off| format!(", or {off} for off"))
                ),
            }),
        }
    }
    for (i, (key, number, set)) in listening.iter().enumerate() {
        let Some((other, _, other_set)) = listening[..i].iter().find(|(_, n, _)| n == number)
        else {
            continue;
        };
        let show = |key: &str, set: bool| {
            if set {
                format!("{key} = {number}")
            } else {
                format!("{key} ({number} by default)")
            }
        };
        problems.push(Problem {
            users: users(key) || users(other),
            message: format!(
                "{} and {} are the same port: each port of a component must differ (its \
                 Services list each port once)",
                show(other, *other_set),
                show(key, *set)
            ),
        });
    }
    if matches!(
        kind,
        ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg
    ) && let Some(value) = values.get("storage_root_path")
        && let Some(message) = duplicated_storage_path(value)
    {
        problems.push(Problem {
            users: users("storage_root_path"),
            message,
        });
    }
    problems
}

/// Doris refuses a `storage_root_path` that names one directory twice (it
/// compares the paths without their trailing slashes and their
/// `,medium:…`/`,capacity` properties).
fn duplicated_storage_path(value: &str) -> Option<String> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for entry in value.split(';') {
        let written = entry.split(',').next().unwrap_or("").trim();
        if written.is_empty() {
            continue;
        }
        let dir = normalise(written);
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == dir) {
            return Some(format!(
                "storage_root_path = {value:?} names the directory {dir} twice ({first:?} and \
                 {written:?}): Doris refuses a duplicated path"
            ));
        }
        seen.push((dir, written));
    }
    None
}

/// A path without repeated, trailing or `.` segments' slashes:
/// `/a//b/./` is `/a/b`.
fn normalise(path: &str) -> String {
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let joined = segments.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn messages(kind: ComponentKind, user: &[(&str, &str)], extra: &[(&str, &str)]) -> Vec<String> {
        let user = map(user);
        let mut values = user.clone();
        values.extend(map(extra));
        check(kind, &user, &values)
            .into_iter()
            .map(|p| format!("{}{}", if p.users { "user: " } else { "" }, p.message))
            .collect()
    }

    #[test]
    fn ports_are_numbers_in_range() {
        assert_eq!(
            messages(ComponentKind::Fe, &[("http_port", "abc")], &[]),
            ["user: http_port = \"abc\" is not a port number (1 to 65535)"]
        );
        for bad in ["0", "65536", "-5", "80.5", ""] {
            assert_eq!(
                messages(ComponentKind::Be, &[("brpc_port", bad)], &[]).len(),
                1,
                "{bad}"
            );
        }
        assert_eq!(
            messages(ComponentKind::Be, &[("arrow_flight_sql_port", "-2")], &[]),
            [
                "user: arrow_flight_sql_port = \"-2\" is not a port number (1 to 65535, or -1 for off)"
            ]
        );
        assert!(messages(ComponentKind::Be, &[("arrow_flight_sql_port", "-1")], &[]).is_empty());
        assert!(messages(ComponentKind::Broker, &[("broker_ipc_port", " 8001 ")], &[]).is_empty());
        // A convention's value is not the user's.
        assert_eq!(
            messages(ComponentKind::Ms, &[], &[("brpc_listen_port", "x")]),
            ["brpc_listen_port = \"x\" is not a port number (1 to 65535)"]
        );
    }

    #[test]
    fn ports_of_one_part_differ() {
        assert_eq!(
            messages(
                ComponentKind::Fe,
                &[("http_port", "8030"), ("query_port", "8030")],
                &[]
            ),
            [
                "user: http_port = 8030 and query_port = 8030 are the same port: each port of a \
                 component must differ (its Services list each port once)"
            ]
        );
        // Against a port left at its default.
        assert_eq!(
            messages(ComponentKind::Be, &[("brpc_port", "9060")], &[]),
            [
                "user: be_port (9060 by default) and brpc_port = 9060 are the same port: each \
                 port of a component must differ (its Services list each port once)"
            ]
        );
        assert_eq!(
            messages(ComponentKind::Be, &[("arrow_flight_sql_port", "8040")], &[]).len(),
            1
        );
        assert!(
            messages(
                ComponentKind::Be,
                &[("arrow_flight_sql_port", "8070"), ("brpc_port", "8061")],
                &[]
            )
            .is_empty()
        );
        // Not published, and served only when enabled: not compared.
        assert!(messages(ComponentKind::Fe, &[("https_port", "8030")], &[]).is_empty());
        assert_eq!(
            messages(ComponentKind::Fe, &[("https_port", "x")], &[]).len(),
            1
        );
    }

    #[test]
    fn storage_paths_are_named_once() {
        let twice = messages(ComponentKind::Be, &[("storage_root_path", "/a;/a/")], &[]);
        assert_eq!(
            twice,
            [
                "user: storage_root_path = \"/a;/a/\" names the directory /a twice (\"/a\" and \
              \"/a/\"): Doris refuses a duplicated path"
            ]
        );
        for dup in ["/a,medium:ssd;/b;/a", "/data//x;/data/x/.", "/a ; /a,10"] {
            assert_eq!(
                messages(ComponentKind::Cn, &[("storage_root_path", dup)], &[]).len(),
                1,
                "{dup}"
            );
        }
        for fine in [
            "/a;/a/b",
            "/a;/b;",
            "/a.SSD;/a.HDD",
            "${DORIS_HOME}/storage",
        ] {
            assert!(
                messages(ComponentKind::Be, &[("storage_root_path", fine)], &[]).is_empty(),
                "{fine}"
            );
        }
        // An FE has no storage_root_path.
        assert!(messages(ComponentKind::Fe, &[("storage_root_path", "/a;/a")], &[]).is_empty());
    }
}
