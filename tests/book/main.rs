//! The user guide (the mdBook under `docs/`) and the README against the
//! code: the reference pages of both CRDs and of the metrics are generated
//! from the code, the pages of Event reasons and annotations are checked
//! against the sources, and every relative link and `#anchor` of the book
//! and the README leads somewhere.
//!
//! After a change of the code, rewrite the generated pages with
//! `UPDATE_REFERENCE_DOCS=1 cargo test --test book`.

mod crd_reference;
mod links;
mod markdown;
mod metrics_reference;
mod sources;

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The book's pages.
pub fn book_src() -> PathBuf {
    root().join("docs/src")
}

/// Compares a generated page with the one checked in, rewriting it first
/// when `UPDATE_REFERENCE_DOCS` is set.
pub fn check_generated(relative: &str, generated: &str) {
    let path = root().join(relative);
    if std::env::var_os("UPDATE_REFERENCE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "{relative} is not what the code generates (first difference at line {}); \
             run UPDATE_REFERENCE_DOCS=1 cargo test --test book to rewrite it",
            first + 1
        );
    }
}

/// Every Markdown file under `dir`, sorted.
pub fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_doriscluster_reference_is_generated_from_the_crd() {
    let crd = serde_json::to_value(doris_operator::crd::crd()).unwrap();
    check_generated(
        "docs/src/reference/doriscluster.md",
        &crd_reference::page(&crd),
    );
}

#[test]
fn the_disaggregated_reference_is_generated_from_the_crd() {
    let crd = serde_json::to_value(doris_operator::crd::disaggregated::crd()).unwrap();
    check_generated(
        "docs/src/reference/disaggregated.md",
        &crd_reference::page(&crd),
    );
}

#[test]
fn the_metrics_reference_is_generated_from_the_metrics_served() {
    check_generated("docs/src/reference/metrics.md", &metrics_reference::page());
}

#[test]
fn the_events_page_lists_every_reason_the_controller_sends() {
    sources::check_events_page();
}

#[test]
fn the_annotations_page_lists_every_key_the_operator_uses() {
    sources::check_annotations_page();
}

#[test]
fn every_relative_link_and_anchor_of_the_book_and_readme_resolves() {
    links::check_all();
}

#[test]
fn the_summary_lists_every_page_and_only_pages_that_exist() {
    links::check_summary();
}

/// The README stays a page a newcomer reads in two minutes, and keeps the
/// two set-up commands as they are (CI runs the second).
#[test]
fn the_readme_is_short_and_keeps_the_set_up_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: move the detail into the book"
    );
    for command in [
        "cargo run -- render -f examples/doriscluster-sample.yaml",
        "tests/run.sh",
    ] {
        assert!(
            readme.lines().any(|l| l == command),
            "README.md no longer shows the set-up command `{command}` on a line of its own"
        );
    }
}
