//! Every relative link of the book and the README leads to a file that
//! exists, and every `#anchor` to a heading of it. A page of the book may
//! link only within the book (`docs/src/`): anything else is not in the
//! built book.

use std::path::{Component, Path, PathBuf};

use crate::markdown::{anchors, links};
use crate::{book_src, markdown_files, root};

/// `path` with `.` and `..` resolved, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The problems of the links of the Markdown file `file`; `within` is the
/// folder its relative links must stay in.
fn problems(file: &Path, within: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let shown = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut out = Vec::new();
    for (line, target) in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            normalize(&file.parent().unwrap().join(path))
        };
        if !resolved.starts_with(within) {
            out.push(format!(
                "{shown}:{line}: {target} leads out of {}",
                within.strip_prefix(root()).unwrap_or(within).display()
            ));
            continue;
        }
        if !resolved.exists() {
            out.push(format!("{shown}:{line}: {target}: no such file"));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if resolved.extension().is_none_or(|e| e != "md") {
            out.push(format!(
                "{shown}:{line}: {target}: an anchor into a file that is not a page"
            ));
            continue;
        }
        let headings = anchors(&std::fs::read_to_string(&resolved).unwrap());
        if !headings.iter().any(|h| h == anchor) {
            out.push(format!(
                "{shown}:{line}: {target}: no heading with anchor #{anchor} (there are: {})",
                headings.join(", ")
            ));
        }
    }
    out
}

pub fn check_all() {
    let mut all = problems(&root().join("README.md"), &root());
    let pages = markdown_files(&book_src());
    assert!(pages.len() > 20, "{pages:?}");
    for page in &pages {
        all.extend(problems(page, &book_src()));
    }
    assert!(all.is_empty(), "broken links:\n{}", all.join("\n"));
}

pub fn check_summary() {
    let src = book_src();
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: Vec<PathBuf> = links(&summary)
        .into_iter()
        .map(|(_, target)| normalize(&src.join(target)))
        .collect();
    for page in &listed {
        assert!(
            page.exists(),
            "SUMMARY.md lists {}, which does not exist",
            page.display()
        );
    }
    for page in markdown_files(&src) {
        if page.ends_with("SUMMARY.md") {
            continue;
        }
        assert!(
            listed.contains(&page),
            "{} is not in SUMMARY.md: the book would not show it",
            page.strip_prefix(&src).unwrap().display()
        );
    }
}

#[test]
fn a_link_out_of_the_book_is_refused() {
    let dir = std::env::temp_dir().join(format!("book-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let page = dir.join("src/page.md");
    std::fs::write(
        &page,
        "# Page\n\n[ok](#page) [missing](#nope) [out](../x.md) [gone](other.md)\n",
    )
    .unwrap();
    let found = problems(&page, &dir.join("src"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("#nope"), "{found:?}");
    assert!(found[1].contains("leads out of"), "{found:?}");
    assert!(found[2].contains("no such file"), "{found:?}");
}
