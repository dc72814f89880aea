//! The ConfigMaps and Secrets a component mounts, by directory.
//!
//! A spec may mount several of them in one directory: a Secret with no
//! `mountPath` lands in `/etc/doris`, where the rendered configuration is
//! too, and two Secrets may name the same path. Kubernetes allows one
//! volume per directory, so the sources of one directory are merged (the
//! default `shape.rhai` makes a projected volume of them). Merging is safe
//! only if no two sources carry a file of the same name: that is checked
//! here, for every source whose keys are known, and reported on the field
//! that mounts the second source.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::crd::{BaseSpec, FieldError};

/// One ConfigMap or Secret mounted by a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// `configMap` or `secret`, as in a Kubernetes volume.
    pub kind: &'static str,
    pub name: String,
    /// The field of the component's spec that mounts it
    /// (`secrets[0]`, `configMapInfo.configMaps[1]`), or `configuration`
    /// for the rendered configuration.
    pub field: String,
}

/// The sources mounted in one directory, in the order a projected volume
/// lists them. The rendered configuration comes last: on a file name the
/// keys of another source did not show (a Secret not read), the later
/// source wins, and the configuration must.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub path: String,
    pub sources: Vec<Source>,
}

/// What is known of the objects the spec names.
pub struct Known<'a> {
    pub config_maps: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name → its keys.
    pub secrets: &'a BTreeMap<String, BTreeSet<String>>,
}

/// `/etc/doris/` and `/etc/doris` are one directory.
pub fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The ConfigMaps and Secrets of `base` by directory, the configuration
/// ConfigMap `config_map` (holding `files`) at `default_path` included.
/// `primary` is the user's ConfigMap folded into the configuration.
pub fn mounts(
    base: &BaseSpec,
    primary: Option<&str>,
    config_map: &str,
    default_path: &str,
) -> Vec<Mount> {
    let default_path = normalize(default_path);
    let mut out: Vec<Mount> = vec![Mount {
        path: default_path.clone(),
        sources: Vec::new(),
    }];
    let mut add = |path: Option<&str>, source: Source| {
        let path = match path.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => normalize(p),
            None => default_path.clone(),
        };
        match out.iter_mut().find(|m| m.path == path) {
            Some(m) => m.sources.push(source),
            None => out.push(Mount {
                path,
                sources: vec![source],
            }),
        }
    };
    let info = base.config_map_info.as_ref();
    for (i, m) in info
        .and_then(|i| i.config_maps.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(name) = m.config_map_name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let at_default = m
            .mount_path
            .as_deref()
            .is_none_or(|p| p.trim().is_empty() || normalize(p) == default_path);
        if at_default && Some(name) == primary {
            continue; // its files are in the configuration
        }
        add(
            m.mount_path.as_deref(),
            Source {
                kind: "configMap",
                name: name.to_string(),
                field: format!("configMapInfo.configMaps[{i}]"),
            },
        );
    }
    for (i, s) in base.secrets.iter().flatten().enumerate() {
        let Some(name) = s.secret_name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        add(
            s.mount_path.as_deref(),
            Source {
                kind: "secret",
                name: name.to_string(),
                field: format!("secrets[{i}]"),
            },
        );
    }
    out[0].sources.push(Source {
        kind: "configMap",
        name: config_map.to_string(),
        field: "configuration".to_string(),
    });
    out
}

/// The Secrets whose keys decide whether `mounts` is valid: those sharing a
/// directory with another source.
pub fn shared_secrets(mounts: &[Mount]) -> BTreeSet<String> {
    mounts
        .iter()
        .filter(|m| m.sources.len() > 1)
        .flat_map(|m| m.sources.iter())
        .filter(|s| s.kind == "secret")
        .map(|s| s.name.clone())
        .collect()
}

/// The Secrets of `cluster` whose keys a plan needs (see [`shared_secrets`]).
pub fn secrets_to_read(cluster: crate::cluster::ClusterRef<'_>) -> BTreeSet<String> {
    cluster
        .parts()
        .iter()
        .flat_map(|part| {
            let base = &part.base;
            let primary = super::context::primary_config_map(base);
            shared_secrets(&mounts(
                base,
                primary.as_deref(),
                "",
                super::context::CONFIG_MOUNT_PATH,
            ))
        })
        .collect()
}

/// Two sources of one directory carrying the same file, or the same object
/// mounted twice in it; reported on the field of the later source.
/// `config_files` are the files of the configuration ConfigMap.
/// Returns the errors and the shared Secrets whose keys were not known.
pub fn check(
    spec_path: &str,
    mounts: &[Mount],
    config_files: &BTreeSet<String>,
    known: &Known<'_>,
) -> (Vec<FieldError>, BTreeSet<String>) {
    let mut errors = Vec::new();
    let mut unknown = BTreeSet::new();
    for mount in mounts.iter().filter(|m| m.sources.len() > 1) {
        let keys = |s: &Source| -> Option<BTreeSet<String>> {
            match (s.kind, s.field.as_str()) {
                (_, "configuration") => Some(config_files.clone()),
                ("configMap", _) => known
                    .config_maps
                    .get(&s.name)
                    .map(|d| d.keys().cloned().collect()),
                _ => known.secrets.get(&s.name).cloned(),
            }
        };
        let object = |s: &Source| {
            let kind = if s.kind == "secret" {
                "Secret"
            } else {
                "ConfigMap"
            };
            format!("{kind} {}", s.name)
        };
        let describe = |s: &Source| match s.field.as_str() {
            "configuration" => format!("the configuration ({})", object(s)),
            field => format!("{field} ({})", object(s)),
        };
        // The configuration is listed last but owns its names first: report
        // on the user's field, never on the configuration.
        let mut order: Vec<&Source> = mount.sources.iter().collect();
        order.sort_by_key(|s| s.field != "configuration");
        let mut seen: Vec<(&Source, Option<BTreeSet<String>>)> = Vec::new();
        for source in order {
            let field = format!("{spec_path}.{}", source.field);
            if let Some((earlier, _)) = seen
                .iter()
                .find(|(e, _)| e.kind == source.kind && e.name == source.name)
            {
                errors.push(FieldError {
                    path: field,
                    message: format!(
                        "{} is already mounted at {} by {}",
                        object(source),
                        mount.path,
                        describe(earlier)
                    ),
                });
                continue;
            }
            let mine = keys(source);
            if mine.is_none() && source.kind == "secret" {
                unknown.insert(source.name.clone());
            }
            if let Some(mine) = &mine {
                for (earlier, theirs) in &seen {
                    let Some(theirs) = theirs else { continue };
                    if let Some(file) = mine.intersection(theirs).next() {
                        errors.push(FieldError {
                            path: field.clone(),
                            message: format!(
                                "key {file} collides with {file} of {}, both mounted at {}; \
                                 mount one of them elsewhere (mountPath)",
                                describe(earlier),
                                mount.path
                            ),
                        });
                    }
                }
            }
            seen.push((source, mine));
        }
    }
    (errors, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(spec: serde_json::Value) -> BaseSpec {
        serde_json::from_value(spec).unwrap()
    }

    fn paths(mounts: &[Mount]) -> Vec<(String, Vec<String>)> {
        mounts
            .iter()
            .map(|m| {
                (
                    m.path.clone(),
                    m.sources.iter().map(|s| s.field.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn sources_are_grouped_by_directory_with_the_configuration_last() {
        let b = base(json!({
            "image": "x",
            "configMapInfo": {"configMapName": "fe-cm", "configMaps": [
                {"configMapName": "fe-cm"},
                {"configMapName": "extra", "mountPath": "/etc/doris/"},
                {"configMapName": "hive", "mountPath": "/etc/hive"}
            ]},
            "secrets": [
                {"secretName": "db-user"},
                {"secretName": "db-pass", "mountPath": "/opt/doris"},
                {"secretName": "tls", "mountPath": "/opt/doris/"}
            ]
        }));
        let m = mounts(&b, Some("fe-cm"), "c-fe-conf", "/etc/doris");
        assert_eq!(
            paths(&m),
            [
                (
                    "/etc/doris".to_string(),
                    vec![
                        "configMapInfo.configMaps[1]".to_string(),
                        "secrets[0]".to_string(),
                        "configuration".to_string()
                    ]
                ),
                (
                    "/etc/hive".to_string(),
                    vec!["configMapInfo.configMaps[2]".to_string()]
                ),
                (
                    "/opt/doris".to_string(),
                    vec!["secrets[1]".to_string(), "secrets[2]".to_string()]
                ),
            ]
        );
        assert_eq!(
            shared_secrets(&m).into_iter().collect::<Vec<_>>(),
            ["db-pass", "db-user", "tls"]
        );
    }

    #[test]
    fn a_file_name_two_sources_carry_is_reported_on_the_users_field() {
        let b = base(json!({
            "image": "x",
            "secrets": [{"secretName": "s1"}, {"secretName": "s2", "mountPath": "/etc/doris"},
                        {"secretName": "s1"}, {"secretName": "unread"}]
        }));
        let m = mounts(&b, None, "c-fe-conf", "/etc/doris");
        let config_maps = BTreeMap::new();
        let secrets = BTreeMap::from([
            ("s1".to_string(), BTreeSet::from(["fe.conf".to_string()])),
            ("s2".to_string(), BTreeSet::from(["password".to_string()])),
        ]);
        let known = Known {
            config_maps: &config_maps,
            secrets: &secrets,
        };
        let files = BTreeSet::from(["fe.conf".to_string()]);
        let (errors, unknown) = check("spec.feSpec", &m, &files, &known);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "spec.feSpec.secrets[0]: key fe.conf collides with fe.conf of the configuration \
                 (ConfigMap c-fe-conf), both mounted at /etc/doris; mount one of them elsewhere (mountPath)",
                "spec.feSpec.secrets[2]: Secret s1 is already mounted at /etc/doris by secrets[0] (Secret s1)",
            ]
        );
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), ["unread"]);
    }
}
