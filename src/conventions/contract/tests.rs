use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::doc::fields_of;
use super::*;
use crate::conventions::{ConventionBundle, ConventionSources};

thread_local! {
    /// The ctx of each policy call and template render on this thread,
    /// while a test records them.
    static RECORDED: RefCell<Option<Vec<(Policy, Value)>>> = const { RefCell::new(None) };
    /// The renamed and removed fields a test put in place of [`CHANGES`].
    static INJECTED: RefCell<Option<Vec<FieldChange>>> = const { RefCell::new(None) };
}

pub(super) fn injected_changes() -> Option<Vec<FieldChange>> {
    INJECTED.with(|i| i.borrow().clone())
}

pub(super) fn record_policy(function: &str, ctx: &rhai::Dynamic) {
    RECORDED.with(|r| {
        if let Some(calls) = r.borrow_mut().as_mut() {
            let policy = Policy::of_function(function).expect("a policy function");
            let ctx: Value = rhai::serde::from_dynamic(ctx).expect("ctx is plain data");
            calls.push((policy, ctx));
        }
    });
}

pub(super) fn record_template(name: &str, ctx: &minijinja::Value) {
    RECORDED.with(|r| {
        if let Some(calls) = r.borrow_mut().as_mut() {
            let ctx = serde_json::to_value(ctx).expect("a template context is plain data");
            calls.push((Policy::of_template(name), ctx));
        }
    });
}

/// The ctx of every call `f` makes on this thread.
fn recording(f: impl FnOnce()) -> Vec<(Policy, Value)> {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    f();
    RECORDED.with(|r| r.borrow_mut().take().unwrap_or_default())
}

/// Runs `f` with `table` as the renamed and removed fields.
fn with_changes<T>(table: &[FieldChange], f: impl FnOnce() -> T) -> T {
    INJECTED.with(|i| *i.borrow_mut() = Some(table.to_vec()));
    let out = f();
    INJECTED.with(|i| *i.borrow_mut() = None);
    out
}

/// Every path in `value`: `a`, `a.b`, `a[].c` for the items of array `a`.
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                paths(inner, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The samples the table is checked against.
const SAMPLES: &[&str] = &[
    "examples/doriscluster-sample.yaml",
    "examples/ddc-sample.yaml",
];

#[test]
fn the_reference_page_is_generated_from_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_PAGE);
    let generated = reference();
    if std::env::var_os("UPDATE_CONTRACT_DOC").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{REFERENCE_PAGE} is not what the code generates; run \
         UPDATE_CONTRACT_DOC=1 cargo test --lib contract to rewrite it"
    );
}

#[test]
fn every_field_of_every_ctx_is_in_the_table_and_every_row_in_a_ctx() {
    let bundle = ConventionBundle::embedded().unwrap();
    let calls = recording(|| {
        for file in SAMPLES {
            let text = crate::samples::SAMPLES
                .iter()
                .find(|(name, _)| name == file)
                .map(|(_, text)| *text)
                .expect("a built-in sample");
            crate::samples::run_every_policy(&bundle, file, text).unwrap();
        }
    });
    let mut seen: BTreeMap<Policy, BTreeSet<String>> = BTreeMap::new();
    for (policy, ctx) in &calls {
        paths(ctx, "", seen.entry(*policy).or_default());
    }
    let mut problems = Vec::new();
    for policy in Policy::ALL {
        let Some(seen) = seen.get(&policy) else {
            problems.push(format!("{}: never called on the samples", policy.title()));
            continue;
        };
        let rows = fields_of(policy);
        for path in seen {
            let described = rows.iter().any(|f| {
                f.path == path
                    || (f.open
                        && (path.starts_with(&format!("{}.", f.path))
                            || path.starts_with(&format!("{}[]", f.path))))
            });
            if !described {
                problems.push(format!(
                    "{}: ctx.{path} is not in the table (src/conventions/contract/fields.rs)",
                    policy.title()
                ));
            }
        }
        for row in rows {
            if !seen.contains(row.path) {
                problems.push(format!(
                    "{}: the table has ctx.{}, which no ctx of the samples has",
                    policy.title(),
                    row.path
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_ctx_carries_the_contract_version() {
    let bundle = ConventionBundle::embedded().unwrap();
    let calls = recording(|| {
        let (file, text) = crate::samples::SAMPLES[0];
        crate::samples::run_every_policy(&bundle, file, text).unwrap();
    });
    assert!(!calls.is_empty());
    for (policy, ctx) in calls {
        assert_eq!(ctx["contract"], CONTRACT_VERSION, "{policy:?}");
    }
}

/// Whether a change may be listed as made in contract `since` by an
/// operator speaking `current`: a change comes with a new version, so none
/// is in contract 1.
fn changed_in_a_version(since: u32, current: u32) -> bool {
    since >= 2 && since <= current
}

#[test]
fn the_tables_are_consistent() {
    let mut seen = BTreeSet::new();
    for f in FIELDS {
        assert!(f.since >= 1 && f.since <= CONTRACT_VERSION, "{f:?}");
        assert!(!f.policies.is_empty(), "{f:?}");
        for p in f.policies {
            assert!(seen.insert((*p, f.path)), "{} twice for {p:?}", f.path);
        }
        // Each nested field's parent is a field of the same ctx.
        if let Some(i) = f.path.rfind('.') {
            let parent = f.path[..i].trim_end_matches("[]");
            for p in f.policies {
                assert!(
                    FIELDS
                        .iter()
                        .any(|g| g.path == parent && g.policies.contains(p) && !g.open),
                    "{}: its parent {parent} is not a field of {p:?}",
                    f.path
                );
            }
        }
    }
    for c in CHANGES {
        assert!(changed_in_a_version(c.since, CONTRACT_VERSION), "{c:?}");
        for p in c.policies {
            let has = |path: &str| fields_of(*p).iter().any(|f| f.path == path);
            assert!(!has(c.path), "{} was changed but is still a field", c.path);
            if let Some(now) = c.now {
                assert!(has(now), "{} was renamed to {now}, not a field", c.path);
            }
        }
    }
}

#[test]
fn the_embedded_policies_declare_the_current_contract() {
    for (name, file) in &ConventionSources::embedded().files {
        if let (Some(declared), errors) = declared(&file.origin, &file.content) {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(declared.version, CONTRACT_VERSION, "{name}");
        }
    }
}

/// The `ctx.a.b` paths the comments of a policy file name.
fn ctx_mentions(content: &str) -> BTreeSet<String> {
    // A method call (`ctx.volumes()`) is not a field.
    let re = regex::Regex::new(r"\bctx\.([a-z_]+(?:\.[a-z_]+)*)(\()?").unwrap();
    content
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//"))
        .flat_map(|l| {
            re.captures_iter(l)
                .filter(|c| c.get(2).is_none())
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_embedded_policies_comments_name_only_fields_there_are() {
    let known: BTreeSet<&str> = FIELDS.iter().map(|f| f.path).collect();
    for (name, file) in &ConventionSources::embedded().files {
        if !name.ends_with(".rhai") {
            continue;
        }
        for path in ctx_mentions(&file.content) {
            // `ctx.change.old, .new`: the first part is what is named.
            assert!(
                known.contains(path.as_str()),
                "{name} speaks of ctx.{path}, which no ctx has"
            );
        }
    }
}

#[test]
fn a_declaration_is_read_from_the_leading_comments() {
    let read = |text: &str| declared("p.rhai", text);
    assert_eq!(read("fn f(ctx) {}").0, None);
    let (d, errors) = read("// my policy\n//\n// contract: 1\n\nfn f(ctx) {}\n");
    assert_eq!(
        d,
        Some(Declared {
            version: 1,
            line: 3
        })
    );
    assert!(errors.is_empty());
    let (_, errors) = read("fn f(ctx) {}\n// contract: 1\n");
    assert_eq!(errors[0].line, Some(2));
    assert!(errors[0].message.contains("before any code"), "{errors:?}");
    let (_, errors) = read("// contract: one\n");
    assert!(
        errors[0].message.contains("a whole number from 1"),
        "{errors:?}"
    );
    let (_, errors) = read("// contract: 0\n");
    assert!(!errors.is_empty());
    let (d, errors) = read("// contract: 1\n// contract: 1\n");
    assert_eq!(d.map(|d| d.line), Some(1));
    assert!(errors[0].message.contains("again"), "{errors:?}");
}

#[test]
fn a_file_for_a_newer_contract_is_refused_at_its_declaration() {
    let newer = CONTRACT_VERSION + 2;
    let src = ConventionSources::embedded().overlay_files(
        "my",
        [(
            "membership.rhai",
            format!(
                "// membership for the next operator\n// contract: {newer}\n\
                 fn membership(ctx) {{ #{{}} }}\n"
            )
            .as_str(),
        )],
    );
    let errors = ConventionBundle::compile(src).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [format!(
            "my/membership.rhai:2: written for contract {newer}; this operator speaks \
             contract {CONTRACT_VERSION} — upgrade the operator"
        )]
    );
}

/// A rename and a removal in a contract 2, for the tests.
const TEST_CHANGES: &[FieldChange] = &[
    FieldChange {
        policies: &[Policy::Membership, Policy::Maintenance],
        path: "cluster.notes",
        since: 2,
        now: Some("cluster.annotations"),
        note: "",
    },
    FieldChange {
        policies: &[Policy::Shape],
        path: "names.fe_service",
        since: 2,
        now: Some("names.fe_access_service"),
        note: "",
    },
    FieldChange {
        policies: &[Policy::RestartOrder],
        path: "pods[].leader",
        since: 2,
        now: None,
        note: "read pods[].role",
    },
    FieldChange {
        policies: &[Policy::Config, Policy::ConfigChange],
        path: "part_name",
        since: 2,
        now: Some("part"),
        note: "",
    },
];

/// Where `source` reads the test table's fields, as `function@line:col`.
fn found(source: &str) -> Vec<String> {
    let ast = crate::conventions::sandbox::engine()
        .compile(source)
        .unwrap();
    stale_reads(&ast, TEST_CHANGES)
        .into_iter()
        .map(|r| {
            format!(
                "{:?} {} {}@{}:{}",
                r.policy,
                r.change.path,
                r.function,
                r.position.line().unwrap_or(0),
                r.position.position().unwrap_or(0)
            )
        })
        .collect()
}

#[test]
fn reads_of_changed_fields_are_found_in_the_syntax_tree() {
    let source = r#"
fn shape(ctx) {
    let a = ctx.names.fe_service;
    let b = ctx["names"]["fe_service"];
    let names = ctx.names;
    let c = names.fe_service;
    let d = ctx.names.statefulset;
    ctx.helper()
}
fn helper() { this.names.fe_service }
fn unused(ctx) { ctx.names.fe_service }
fn restart_order(ctx) {
    let first = ctx.pods[0].leader;
    let other = #{ names: #{ fe_service: 1 } };
    ctx.names.fe_service + first
}
fn membership(c) { c.cluster.notes }
"#;
    assert_eq!(
        found(source),
        [
            "Shape names.fe_service shape@3:23",
            "Shape names.fe_service shape@4:26",
            "Shape names.fe_service shape@6:19",
            "Shape names.fe_service helper@10:26",
            "RestartOrder pods[].leader restart_order@13:29",
            "Membership cluster.notes membership@17:30",
        ]
    );
}

#[test]
fn an_index_expression_is_a_read_of_its_own() {
    let source = "fn membership(ctx) { let m = #{}; m[ctx.cluster.notes] }\n\
                  fn maintenance(ctx) { let m = #{}; m[0].cluster.notes }";
    assert_eq!(found(source), ["Membership cluster.notes membership@1:49"]);
}

#[test]
fn a_file_for_an_older_contract_that_reads_a_renamed_field_is_refused() {
    let policy = "// contract: 1\nfn membership(ctx) {\n    let n = ctx.cluster.notes;\n    \
                  #{ decommission_be: true, register_timeout_seconds: 1, drop_stale: false, \
                  recheck_seconds: 1 }\n}\n";
    let src = ConventionSources::embedded().overlay_files("my", [("membership.rhai", policy)]);
    let errors = with_changes(TEST_CHANGES, || ConventionBundle::compile(src.clone())).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.starts_with(
            "my/membership.rhai:3:25: fn membership reads ctx.cluster.notes, but \
             ctx.cluster.notes was renamed to ctx.cluster.annotations in contract 2: read \
             ctx.cluster.annotations instead (this file is written for contract 1"
        ),
        "{text}"
    );
    // Without the change, the same file is fine.
    assert!(ConventionBundle::compile(src).is_ok());
}

#[test]
fn a_file_that_declares_no_contract_is_warned() {
    let policy = "fn membership(ctx) {\n    let n = ctx.cluster.notes;\n    \
                  #{ decommission_be: true, register_timeout_seconds: 1, drop_stale: false, \
                  recheck_seconds: 1 }\n}\n";
    let src = ConventionSources::embedded().overlay_files("my", [("membership.rhai", policy)]);
    let warnings = with_changes(TEST_CHANGES, || {
        ConventionBundle::compile(src)
            .expect("only a warning")
            .contract_warnings()
    });
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].starts_with(
            "my/membership.rhai:2:25: fn membership reads ctx.cluster.notes, but \
             ctx.cluster.notes was renamed to ctx.cluster.annotations in contract 2"
        ),
        "{text:?}"
    );
    assert!(text[0].contains("declares no contract"), "{text:?}");
    assert!(
        ConventionBundle::embedded()
            .unwrap()
            .contract_warnings()
            .is_empty()
    );
}

#[test]
fn a_read_two_policies_reach_is_reported_once() {
    let policy = "fn config(ctx) { name(ctx); #{} }\n\
                  fn config_change(ctx) { name(ctx); \"ignore\" }\n\
                  fn name(ctx) { ctx.part_name }\n";
    let src = ConventionSources::embedded().overlay_files("my", [("config.rhai", policy)]);
    let warnings = with_changes(TEST_CHANGES, || {
        ConventionBundle::compile(src).unwrap().contract_warnings()
    });
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .to_string()
            .starts_with("my/config.rhai:3:20: fn name reads ctx.part_name, but"),
        "{warnings:?}"
    );
}

#[test]
fn a_policy_failing_at_run_time_is_told_the_field_was_renamed() {
    let policy = "fn membership(ctx) {\n    let n = ctx.cluster.notes;\n    \
                  #{ decommission_be: n.len() > 0 }\n}\n";
    let src = ConventionSources::embedded().overlay_files("my", [("membership.rhai", policy)]);
    let bundle = ConventionBundle::compile(src).unwrap();
    let cluster: crate::crd::DorisCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {"feSpec": {"image": "fe"}}
    }))
    .unwrap();
    let call = || {
        crate::plan::membership::membership_policy(
            &bundle,
            crate::cluster::ClusterRef::Doris(&cluster),
        )
        .unwrap_err()
        .to_string()
    };
    let plain = call();
    assert!(!plain.contains("renamed"), "{plain}");
    let told = with_changes(TEST_CHANGES, call);
    assert!(told.starts_with("my/membership.rhai:3:"), "{told}");
    assert!(
        told.ends_with(
            "; ctx.cluster.notes was renamed to ctx.cluster.annotations in contract 2 \
             (read at my/membership.rhai:2:25)"
        ),
        "{told}"
    );
}

#[test]
fn the_page_lists_renamed_and_removed_fields() {
    let page = doc::reference_with(TEST_CHANGES);
    assert!(
        page.contains(
            "| 2 | `names.fe_service` | `names.fe_access_service` | shape |\n\
             | 2 | `pods[].leader` | removed: read pods[].role | restart_order |"
        ),
        "{page}"
    );
}
