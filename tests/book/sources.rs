//! The hand-written reference pages that list names the code uses — Event
//! reasons, annotations — against the code: every name the sources use is
//! on the page, and every name on the page is one the sources use.

use std::collections::BTreeSet;
use std::path::Path;

use crate::markdown::table_keys;
use crate::root;

/// The text of every file under `dir` (recursively) whose name ends in one
/// of `extensions`, with its path.
fn texts(dir: &Path, extensions: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if extensions
                .iter()
                .any(|e| path.to_string_lossy().ends_with(e))
            {
                let shown = path.strip_prefix(root()).unwrap().display().to_string();
                out.push((shown, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn page(relative: &str) -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(root().join(relative)).unwrap();
    let keys = table_keys(&text).into_iter().collect();
    (text, keys)
}

fn compare(page: &str, on_page: &BTreeSet<String>, in_code: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = in_code.difference(on_page).collect();
    let stale: Vec<_> = on_page.difference(in_code).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{page} is out of step with the code: {what} the code uses but the page does not \
         list: {missing:?}; listed but used nowhere: {stale:?}"
    );
}

/// The reasons of the Events the controller publishes: the lists of
/// `src/controller/events.rs`, the reasons the controller's sources pass
/// with an Event type, put in a failure or a stop (both become Warning
/// Events), and the plan's error categories (`PlanError::category`).
fn event_reasons() -> BTreeSet<String> {
    use doris_operator::controller::events::{NORMALS, WARNINGS};
    let patterns = [
        r#"EventType::(?:Warning|Normal),\s*"(\w+)""#,
        r#"Some\(\(\s*"(\w+)",\s*(?:message|format!)"#,
        r#"reason:\s*"(\w+)""#,
        r#"let reason = if [^{]*\{\s*"(\w+)"\s*\}\s*else\s*\{\s*"(\w+)""#,
    ]
    .map(|p| regex::Regex::new(p).unwrap());
    let mut out: BTreeSet<String> = WARNINGS
        .iter()
        .map(|(r, _)| r.to_string())
        .chain(NORMALS.iter().map(|r| r.to_string()))
        .collect();
    for (path, text) in texts(&root().join("src/controller"), &[".rs"]) {
        // Condition reasons, not Events.
        if path.ends_with("status.rs") {
            continue;
        }
        for pattern in &patterns {
            for c in pattern.captures_iter(&text) {
                out.extend(c.iter().skip(1).flatten().map(|m| m.as_str().to_string()));
            }
        }
    }
    // The plan's error categories, which a failed plan sends as reasons.
    let category = regex::Regex::new(r#"PlanError::\w+[^=]*=>\s*"(\w+)""#).unwrap();
    let plan = std::fs::read_to_string(root().join("src/plan/mod.rs")).unwrap();
    let categories: Vec<String> = category
        .captures_iter(&plan)
        .map(|c| c[1].to_string())
        .collect();
    assert!(categories.len() >= 2, "{categories:?}");
    out.extend(categories);
    out
}

pub fn check_events_page() {
    let reasons = event_reasons();
    assert!(reasons.len() >= 25, "{reasons:?}");
    let (_, listed) = page("docs/src/reference/events.md");
    compare(
        "docs/src/reference/events.md",
        &listed,
        &reasons,
        "Event reasons",
    );
}

/// The annotation, label and finalizer keys under the operator's and
/// apache/doris-operator's prefixes that the sources, the default policies
/// and the default templates use. A part's `apache.doris.<part>/…` key
/// counts once, as `<part>`.
fn annotation_keys() -> BTreeSet<String> {
    let key = regex::Regex::new(
        r"\b((?:doris\.selectdb\.com|apache\.doris\.(?:fe|be|cn|broker|ms)|apache\.org\.doris|selectdb\.com\.doris|apache\.doris\.org|app\.doris\.[a-z]+)/[A-Za-z][A-Za-z0-9-]*)",
    )
    .unwrap();
    let part = regex::Regex::new(r"^apache\.doris\.(?:fe|be|cn|broker|ms)/").unwrap();
    let mut files = texts(&root().join("src"), &[".rs"]);
    files.extend(texts(&root().join("policies"), &[".rhai"]));
    files.extend(texts(&root().join("templates"), &[".j2"]));
    let mut out = BTreeSet::new();
    for (_, text) in files {
        for c in key.captures_iter(&text) {
            let k = part.replace(&c[1], "apache.doris.<part>/").to_string();
            // API versions, not keys.
            if k != "doris.selectdb.com/v1" {
                out.insert(k);
            }
        }
    }
    out
}

pub fn check_annotations_page() {
    let keys = annotation_keys();
    assert!(keys.len() >= 20, "{keys:?}");
    let (text, listed) = page("docs/src/reference/annotations.md");
    let prefixed = regex::Regex::new(
        r"^(?:doris\.selectdb\.com|apache\.doris\.|apache\.org\.doris|selectdb\.com\.doris|apache\.doris\.org|app\.doris\.[a-z]+/)",
    )
    .unwrap();
    let (ours, others): (BTreeSet<String>, BTreeSet<String>) =
        listed.into_iter().partition(|k| prefixed.is_match(k));
    compare("docs/src/reference/annotations.md", &ours, &keys, "keys");
    // The other keys the page lists (Kubernetes' own labels the operator
    // sets or reads) must be used somewhere too.
    let mut all = texts(&root().join("src"), &[".rs"]);
    all.extend(texts(&root().join("policies"), &[".rhai"]));
    all.extend(texts(&root().join("templates"), &[".j2"]));
    for key in others {
        assert!(
            all.iter().any(|(_, t)| t.contains(&format!("\"{key}\""))),
            "docs/src/reference/annotations.md lists {key}, which no source uses"
        );
    }
    assert!(text.contains("apache.doris.<part>/restartedAt"));
}
