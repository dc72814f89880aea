//! Reading a `DorisCluster` from YAML with errors that name the field, and
//! the rules the types alone cannot express.

use std::fmt;

use serde_json::Value;

use super::{ComponentKind, DorisCluster};

/// A rule a cluster breaks, at a field path (`spec.feSpec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a document is not a usable DorisCluster.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    TooDeep(TooDeep),
    #[error(
        "expected apiVersion doris.selectdb.com/v1 and kind DorisCluster, got {api_version} {kind}"
    )]
    WrongKind { api_version: String, kind: String },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// Parses one YAML document as a DorisCluster and checks its rules.
pub fn parse_cluster(yaml: &str) -> Result<DorisCluster, CrdError> {
    check_depth(yaml).map_err(CrdError::TooDeep)?;
    let value: Value = serde_norway::from_str(yaml).map_err(|e| CrdError::Yaml(e.to_string()))?;
    let cluster = from_value(value)?;
    let errors = validate(&cluster);
    if errors.is_empty() {
        Ok(cluster)
    } else {
        Err(CrdError::Invalid(errors))
    }
}

/// Reads a DorisCluster from JSON, naming the offending field on error.
pub fn from_value(value: Value) -> Result<DorisCluster, CrdError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != "doris.selectdb.com/v1" || kind != "DorisCluster" {
        return Err(CrdError::WrongKind { api_version, kind });
    }
    serde_path_to_error::deserialize::<_, DorisCluster>(&value).map_err(|err| {
        let mut path = err.path().to_string();
        let mut message = err.inner().to_string();
        // Component specs flatten their common fields, which hides the inner
        // path; read the component alone to find it.
        if let Some(component) = component_path(&path)
            && let Some(sub) = value.pointer(&format!("/spec/{component}"))
            && let Err(inner) = serde_path_to_error::deserialize::<_, super::BaseSpec>(sub)
        {
            path = format!("spec.{component}.{}", inner.path());
            message = inner.inner().to_string();
        }
        CrdError::Field { path, message }
    })
}

fn component_path(path: &str) -> Option<&'static str> {
    ["feSpec", "beSpec", "cnSpec", "brokerSpec"]
        .into_iter()
        .find(|c| path == format!("spec.{c}"))
}

/// Every rule the cluster breaks.
pub fn validate(cluster: &DorisCluster) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |path: String, message: String| errors.push(FieldError { path, message });
    let name = cluster.metadata.name.as_deref().unwrap_or("");
    if name.is_empty() {
        fail("metadata.name".into(), "is required".into());
    }
    let spec = &cluster.spec;
    if spec.admin_user.as_ref().and_then(|u| u.name.as_deref()) == Some("admin") {
        fail(
            "spec.adminUser.name".into(),
            "must not be `admin`: Doris reserves that account; use root or a user of your own"
                .into(),
        );
    }
    for kind in ComponentKind::ALL {
        let Some(view) = spec.component(kind) else {
            continue;
        };
        let at = format!("spec.{}Spec", kind.as_str());
        let base = view.base();
        if base.image.trim().is_empty() {
            fail(format!("{at}.image"), "is required".into());
        }
        if let Some(r) = base.replicas.filter(|r| *r < 0) {
            fail(
                format!("{at}.replicas"),
                format!("must be 0 or more, got {r}"),
            );
        }
        let own = super::super::plan::names::config_map(name, kind);
        if base
            .config_map_info
            .as_ref()
            .and_then(|i| i.config_map_name.as_deref())
            == Some(own.as_str())
        {
            fail(
                format!("{at}.configMapInfo.configMapName"),
                format!(
                    "{own} is the name of the ConfigMap the operator renders; name yours differently"
                ),
            );
        }
    }
    if let Some(fe) = &spec.fe_spec {
        let election = fe.election_number();
        if election < 1 {
            fail(
                "spec.feSpec.electionNumber".into(),
                format!("must be 1 or more, got {election}"),
            );
        } else if let Some(replicas) = fe.base.replicas
            && replicas < election
        {
            fail(
                "spec.feSpec.replicas".into(),
                format!(
                    "must be at least electionNumber ({election}): the FE followers need their quorum; \
                     observers are the replicas beyond it"
                ),
            );
        }
    }
    errors
}

/// How deeply a YAML or JSON document may nest its collections. The decoders
/// refuse deeper documents anyway; checking first refuses them quickly.
pub const MAX_DEPTH: usize = 128;

/// A document that nests deeper than [`MAX_DEPTH`], and where it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based, within the text checked.
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: collections nested more than {MAX_DEPTH} levels deep",
            self.line, self.col
        )
    }
}

/// Refuses YAML text whose collections nest deeper than [`MAX_DEPTH`].
///
/// The YAML scanner spends time in proportion to the nesting depth on every
/// token, so a deeply nested document (`[[[[…`) takes time quadratic in its
/// size before any depth limit of the decoder applies. This walks the same
/// scanner's events and stops at the first collection beyond the limit, so
/// the work stays proportional to the text. Syntax errors are left for the
/// decoder to report.
pub fn check_depth(text: &str) -> Result<(), TooDeep> {
    use std::mem::MaybeUninit;
    use unsafe_libyaml_norway as unsafe_yaml;

    // SAFETY: the parser is initialised before use and deleted once; it
    // reads `text`, which outlives it; every event it produced is deleted.
    // The parser is boxed so that it does not move while in use.
    unsafe {
        let mut parser = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
        let parser = parser.as_mut_ptr();
        if unsafe_yaml::yaml_parser_initialize(parser).fail {
            return Ok(());
        }
        unsafe_yaml::yaml_parser_set_encoding(parser, unsafe_yaml::YAML_UTF8_ENCODING);
        unsafe_yaml::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        let mut found = None;
        loop {
            let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
            if unsafe_yaml::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break;
            }
            let event = event.as_mut_ptr();
            let kind = (*event).type_;
            let mark = (*event).start_mark;
            unsafe_yaml::yaml_event_delete(event);
            match kind {
                unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        found = Some(TooDeep {
                            line: mark.line as usize + 1,
                            col: mark.column as usize + 1,
                        });
                        break;
                    }
                }
                unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                    depth = depth.saturating_sub(1);
                }
                unsafe_yaml::YAML_STREAM_END_EVENT => break,
                _ => {}
            }
        }
        unsafe_yaml::yaml_parser_delete(parser);
        found.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: c\n";

    #[test]
    fn wrong_type_in_a_flattened_field_names_it() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  feSpec:\n    image: fe\n    replicas: three\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("spec.feSpec.replicas: invalid type"),
            "{text}"
        );
    }

    #[test]
    fn wrong_type_in_a_component_field_names_it() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  beSpec:\n    image: be\n    service:\n      type: Nowhere\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec.beSpec.service.type: unknown variant"),
            "{err}"
        );
    }

    #[test]
    fn rules_are_reported_with_paths() {
        let err = parse_cluster(&format!(
            "{HEAD}spec:\n  adminUser:\n    name: admin\n  feSpec:\n    image: fe\n    replicas: 2\n    electionNumber: 3\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("spec.adminUser.name: must not be `admin`"),
            "{text}"
        );
        assert!(
            text.contains("spec.feSpec.replicas: must be at least electionNumber (3)"),
            "{text}"
        );
    }

    #[test]
    fn other_kinds_are_refused() {
        let err =
            parse_cluster("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").unwrap_err();
        assert!(err.to_string().contains("got v1 ConfigMap"), "{err}");
    }

    #[test]
    fn legacy_address_key_is_accepted() {
        let c = parse_cluster(&format!(
            "{HEAD}spec:\n  beSpec:\n    image: be\n    feAddress:\n      endpoints:\n        \":address\": [10.0.0.1]\n        port: 9030\n"
        ))
        .unwrap();
        let addr = c.spec.be_spec.unwrap().base.fe_address.unwrap();
        assert_eq!(addr.endpoints.unwrap().address.unwrap(), ["10.0.0.1"]);
    }

    #[test]
    fn nesting_is_refused_past_the_limit_where_it_happens() {
        let flow = |depth: usize| format!("a: 1\nb: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        // The top-level map is one level.
        assert_eq!(check_depth(&flow(MAX_DEPTH - 1)), Ok(()));
        assert_eq!(
            check_depth(&flow(MAX_DEPTH)),
            Err(TooDeep {
                line: 2,
                col: 4 + MAX_DEPTH - 1
            })
        );
        let block: String = (0..=MAX_DEPTH)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let err = check_depth(&block).unwrap_err();
        assert_eq!(err.line, MAX_DEPTH + 1);
        // Syntax errors are left to the decoder.
        assert_eq!(check_depth("a: [1\n"), Ok(()));
        assert!(serde_norway::from_str::<Value>("a: [1\n").is_err());
    }
}
