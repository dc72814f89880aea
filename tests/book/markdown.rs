//! What the checks read of Markdown: its text outside code, its links, its
//! headings and the anchors mdBook gives them.

/// The lines of `text` outside fenced code blocks, with their numbers
/// (from 1).
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `line` with its inline code spans removed.
pub fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links and reference definitions of `text`,
/// with their line numbers. A link split over two lines is found by its
/// target, which Markdown keeps on one line.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let inline = regex::Regex::new(r"\]\(([^)\s]+)(?:\s+\x22[^\x22]*\x22)?\)").unwrap();
    let definition = regex::Regex::new(r"^\s*\[[^\]]+\]:\s*(\S+)").unwrap();
    let mut out = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        for c in inline.captures_iter(&line) {
            out.push((number, c[1].to_string()));
        }
        if let Some(c) = definition.captures(&line) {
            out.push((number, c[1].to_string()));
        }
    }
    out
}

/// The anchors of the headings of `text`, as mdBook (and GitHub) make them:
/// the heading's text lower-cased, spaces as `-`, other punctuation
/// dropped; a repeated one gets `-1`, `-2` …
pub fn anchors(text: &str) -> Vec<String> {
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let mut out: Vec<String> = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let heading = link.replace_all(heading.trim(), "$1");
        let id: String = heading
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let mut unique = id.clone();
        let mut n = 1;
        while out.contains(&unique) {
            unique = format!("{id}-{n}");
            n += 1;
        }
        out.push(unique);
    }
    out
}

/// The first cells of the table rows of `text` that start with a code
/// span: the keys a reference table lists.
pub fn table_keys(text: &str) -> Vec<String> {
    let row = regex::Regex::new(r"^\|\s*`([^`]+)`").unwrap();
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, line)| row.captures(line).map(|c| c[1].to_string()))
        .collect()
}

#[test]
fn anchors_follow_mdbook() {
    let text = "# Create a cluster\n## What the CRD refuses\n```sh\n# not a heading\n```\n\
                ### `spec.feSpec`\n## Restart, pause, resume\n## Rollouts\n## Rollouts\n";
    assert_eq!(
        anchors(text),
        [
            "create-a-cluster",
            "what-the-crd-refuses",
            "specfespec",
            "restart-pause-resume",
            "rollouts",
            "rollouts-1"
        ]
    );
}

#[test]
fn links_outside_code_are_found() {
    let text = "See [a](a.md#x) and `[b](b.md)`.\n```\n[c](c.md)\n```\n[d]: d.md\n";
    assert_eq!(
        links(text),
        [(1, "a.md#x".to_string()), (5, "d.md".to_string())]
    );
}
