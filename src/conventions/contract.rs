//! The policy contract: what each policy function and template receives as
//! `ctx`, under a version number.
//!
//! The operator speaks one contract, [`CONTRACT_VERSION`]; every ctx it
//! hands a policy or template carries it as `ctx.contract`. A policy file
//! may say which contract it was written for with a comment among the lines
//! it starts with:
//!
//! ```text
//! // contract: 1
//! ```
//!
//! A file written for a newer contract than the operator's is refused when
//! the bundle is compiled. A field that was renamed or removed is listed in
//! [`CHANGES`]: a file written for an older contract that reads it is
//! refused, any other file reading it gets a warning (`policy check`), and a
//! policy that fails at run time while reading it is told the new name.
//!
//! Every field of every ctx is described once, in [`FIELDS`]; the reference
//! page `docs/src/conventions/contract.md` is generated from it
//! ([`reference`]), and a test checks the table against the ctx the
//! planning code builds for the sample clusters.

mod doc;
mod fields;
mod reads;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use rhai::AST;

use super::{ConventionBundle, ConventionSources, FileRole, SourceError, file_role};

pub use doc::reference;
pub use fields::{FIELDS, Field};
pub use reads::{StaleRead, stale_reads};

/// The version of the contract this operator speaks: what `ctx.contract`
/// holds, and the newest a policy file may declare.
pub const CONTRACT_VERSION: u32 = 1;

/// Where the reference page generated from [`FIELDS`] is kept, from the
/// repository's root.
pub const REFERENCE_PAGE: &str = "docs/src/conventions/contract.md";

/// What receives a ctx: a policy function, or one of the two kinds of
/// template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    Shape,
    Config,
    ConfigChange,
    HostInit,
    RestartOrder,
    Maintenance,
    Membership,
    /// `fe.conf.j2` and the other configuration templates.
    ConfigTemplate,
    /// The `*.yaml.j2` manifest templates.
    ManifestTemplate,
}

impl Policy {
    /// Every receiver, in the order the reference page describes them.
    pub const ALL: [Policy; 9] = [
        Policy::Shape,
        Policy::Config,
        Policy::ConfigChange,
        Policy::HostInit,
        Policy::RestartOrder,
        Policy::Maintenance,
        Policy::Membership,
        Policy::ConfigTemplate,
        Policy::ManifestTemplate,
    ];

    /// The policy function, or `None` for a template.
    pub fn function(self) -> Option<&'static str> {
        Some(match self {
            Policy::Shape => "shape",
            Policy::Config => "config",
            Policy::ConfigChange => "config_change",
            Policy::HostInit => "host_init",
            Policy::RestartOrder => "restart_order",
            Policy::Maintenance => "maintenance",
            Policy::Membership => "membership",
            Policy::ConfigTemplate | Policy::ManifestTemplate => return None,
        })
    }

    /// The file that defines it (a pattern for templates).
    pub fn file(self) -> &'static str {
        match self {
            Policy::Shape => "shape.rhai",
            Policy::Config | Policy::ConfigChange => "config.rhai",
            Policy::HostInit => "host_init.rhai",
            Policy::RestartOrder | Policy::Maintenance => "restart.rhai",
            Policy::Membership => "membership.rhai",
            Policy::ConfigTemplate => "*.conf.j2",
            Policy::ManifestTemplate => "*.yaml.j2",
        }
    }

    /// The name the reference page gives it.
    pub fn title(self) -> &'static str {
        match self {
            Policy::ConfigTemplate => "configuration templates",
            Policy::ManifestTemplate => "manifest templates",
            other => other.function().unwrap_or_default(),
        }
    }

    /// The policy whose function is `function`.
    pub fn of_function(function: &str) -> Option<Policy> {
        Policy::ALL
            .into_iter()
            .find(|p| p.function() == Some(function))
    }

    /// The template kind of template `name`.
    pub fn of_template(name: &str) -> Policy {
        if super::REQUIRED_TEMPLATES.contains(&name) {
            Policy::ConfigTemplate
        } else {
            Policy::ManifestTemplate
        }
    }
}

/// A field of a ctx that was renamed or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The receivers whose ctx it left.
    pub policies: &'static [Policy],
    /// Its path before the change (`names.fe_service`, `pods[].role`).
    pub path: &'static str,
    /// The contract version that changed it.
    pub since: u32,
    /// Its path from then on; `None` when it was removed.
    pub now: Option<&'static str>,
    /// What to read instead, for a removed field.
    pub note: &'static str,
}

impl FieldChange {
    /// `ctx.a was renamed to ctx.b in contract N`, or `… was removed …`.
    pub fn describe(&self) -> String {
        match self.now {
            Some(now) => format!(
                "ctx.{} was renamed to ctx.{now} in contract {}",
                self.path, self.since
            ),
            None if self.note.is_empty() => {
                format!("ctx.{} was removed in contract {}", self.path, self.since)
            }
            None => format!(
                "ctx.{} was removed in contract {} ({})",
                self.path, self.since, self.note
            ),
        }
    }
}

/// The ctx fields renamed or removed since contract 1, oldest first. A
/// change goes here in the same commit that bumps [`CONTRACT_VERSION`] and
/// edits [`FIELDS`].
pub const CHANGES: &[FieldChange] = &[];

/// The changes in force: [`CHANGES`], or in tests the table a test put in
/// its place.
fn changes() -> Vec<FieldChange> {
    #[cfg(test)]
    if let Some(table) = tests::injected_changes() {
        return table;
    }
    CHANGES.to_vec()
}

/// A policy file's `// contract: N` declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declared {
    pub version: u32,
    /// Its line, from 1.
    pub line: usize,
}

/// The text after `contract:` of a `// contract: …` comment line.
fn declaration_text(line: &str) -> Option<&str> {
    let comment = line.trim_start().strip_prefix("//")?;
    let comment = comment.trim_start_matches(['/', '!']).trim_start();
    comment.strip_prefix("contract:").map(str::trim)
}

/// Reads the contract a policy file declares. The declaration is a `//`
/// comment among the comments and blank lines the file starts with; one
/// anywhere else, a second one, or one without a version number is an
/// error.
pub fn declared(origin: &str, content: &str) -> (Option<Declared>, Vec<SourceError>) {
    let mut found: Option<Declared> = None;
    let mut errors = Vec::new();
    let mut leading = true;
    for (i, line) in content.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        let is_comment = trimmed.starts_with("//");
        leading &= trimmed.is_empty() || is_comment;
        let Some(text) = declaration_text(line) else {
            continue;
        };
        let at = |message: String| SourceError {
            file: origin.to_string(),
            line: Some(line_no),
            col: Some(line.len() - line.trim_start().len() + 1),
            message,
            in_input: false,
        };
        if !leading {
            errors.push(at(
                "a `// contract: N` declaration belongs in the comments the file starts \
                 with, before any code"
                    .into(),
            ));
            continue;
        }
        let Some(version) = text.parse::<u32>().ok().filter(|v| *v >= 1) else {
            errors.push(at(format!(
                "`// contract: {text}`: the contract is a whole number from 1 \
                 (this operator speaks contract {CONTRACT_VERSION})"
            )));
            continue;
        };
        match found {
            Some(first) => errors.push(at(format!(
                "declares its contract again (line {} already says {})",
                first.line, first.version
            ))),
            None => {
                found = Some(Declared {
                    version,
                    line: line_no,
                })
            }
        }
    }
    (found, errors)
}

/// The contract problems of the policy files of `sources`, `compiled` being
/// those that compiled: a declaration this operator cannot honour, and, in
/// a file that declares an older contract, each read of a field renamed or
/// removed since. Called by [`ConventionBundle::compile`].
pub(super) fn check(
    sources: &ConventionSources,
    compiled: &BTreeMap<String, AST>,
) -> Vec<SourceError> {
    let table = changes();
    let mut errors = Vec::new();
    for (name, file) in &sources.files {
        if file_role(name) != Some(FileRole::Policy) {
            continue;
        }
        let (declared, problems) = declared(&file.origin, &file.content);
        errors.extend(problems);
        let Some(declared) = declared else {
            continue;
        };
        if declared.version > CONTRACT_VERSION {
            errors.push(SourceError {
                file: file.origin.clone(),
                line: Some(declared.line),
                col: None,
                message: format!(
                    "written for contract {}; this operator speaks contract \
                     {CONTRACT_VERSION} — upgrade the operator",
                    declared.version
                ),
                in_input: false,
            });
            continue;
        }
        let Some(ast) = compiled.get(name) else {
            continue;
        };
        for read in once_each(stale_reads(ast, &table)) {
            if read.change.since > declared.version {
                errors.push(read.error(
                    &file.origin,
                    &format!(
                        "this file is written for contract {}; once it reads the new \
                         fields, declare `// contract: {CONTRACT_VERSION}`",
                        declared.version
                    ),
                ));
            }
        }
    }
    errors
}

/// Each read once, though several policies of its file reach it.
fn once_each(reads: Vec<StaleRead>) -> Vec<StaleRead> {
    let mut seen = std::collections::BTreeSet::new();
    reads
        .into_iter()
        .filter(|r| seen.insert((r.position.line(), r.position.position(), r.change.path)))
        .collect()
}

impl StaleRead {
    /// The read as a problem of file `origin`, with `why` it matters.
    fn error(&self, origin: &str, why: &str) -> SourceError {
        let instead = match self.change.now {
            Some(now) => format!(": read ctx.{now} instead"),
            None => String::new(),
        };
        SourceError {
            file: origin.to_string(),
            line: self.position.line(),
            col: self.position.position(),
            message: format!(
                "fn {} reads ctx.{}, but {}{instead} ({why})",
                self.function,
                self.change.path,
                self.change.describe()
            ),
            in_input: false,
        }
    }
}

impl ConventionBundle {
    /// Reads of renamed or removed ctx fields that compiling did not refuse
    /// (their file declares no contract, or one that already has the
    /// change): likely mistakes, which `policy check` reports as warnings.
    pub fn contract_warnings(&self) -> Vec<SourceError> {
        let table = changes();
        let mut warnings = Vec::new();
        for (name, origin, ast) in self.policy_layers() {
            let content = self
                .sources()
                .layers(name)
                .into_iter()
                .find(|f| f.origin == origin)
                .map(|f| f.content.as_str())
                .unwrap_or_default();
            let declared = declared(origin, content).0.map(|d| d.version);
            for read in once_each(stale_reads(ast, &table)) {
                let why = match declared {
                    None => format!(
                        "this file declares no contract; declare `// contract: \
                         {CONTRACT_VERSION}` once it reads the new fields"
                    ),
                    Some(v) if v < read.change.since => continue, // refused when compiled
                    Some(v) => format!(
                        "this file declares contract {v}, which has the change: ignore this \
                         if it reads a map of your own"
                    ),
                };
                warnings.push(read.error(origin, &why));
            }
        }
        warnings
    }
}

/// Adds to the error of policy `function` failing at run time each field
/// it reads that was renamed or removed: the likely cause.
pub(super) fn explain_failure(error: &mut SourceError, ast: &AST, function: &str) {
    if error.in_input {
        return;
    }
    let Some(policy) = Policy::of_function(function) else {
        return;
    };
    let table = changes();
    let mut notes: Vec<String> = Vec::new();
    for read in stale_reads(ast, &table) {
        if read.policy != policy {
            continue;
        }
        let at = match (read.position.line(), read.position.position()) {
            (Some(line), Some(col)) => format!(" (read at {}:{line}:{col})", error.file),
            _ => String::new(),
        };
        let note = format!("{}{at}", read.change.describe());
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    if !notes.is_empty() {
        error.message = format!("{}; {}", error.message, notes.join("; "));
    }
}

/// Sees the ctx of each policy call (a hook for the contract's tests; it
/// does nothing outside them).
#[inline]
pub(super) fn observe_policy(function: &str, ctx: &rhai::Dynamic) {
    #[cfg(test)]
    tests::record_policy(function, ctx);
    #[cfg(not(test))]
    let _ = (function, ctx);
}

/// Sees the context of each template render (a hook for the contract's
/// tests; it does nothing outside them).
#[inline]
pub(super) fn observe_template(name: &str, ctx: &minijinja::Value) {
    #[cfg(test)]
    tests::record_template(name, ctx);
    #[cfg(not(test))]
    let _ = (name, ctx);
}
