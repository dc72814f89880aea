//! The conventions bundle: the Rhai policies and Jinja templates that decide
//! how a `DorisCluster` is laid out, compiled once and shared by every render.
//!
//! A bundle is built from layered sources: the defaults compiled into the
//! binary from `policies/` and `templates/`, then a folder given on the
//! command line, then ConfigMaps (see `reload`). A file of a name the layer
//! below has either replaces it whole or refines it (see `refine`): every
//! layer of a name is kept, and the bundle calls them in turn. Files are
//! told apart by extension (`*.rhai` policies, `*.j2` templates), so a flat
//! ConfigMap works as well as the repository layout. A policy may come in
//! parts, `<policy>.<part>.rhai`, whose functions are compiled with it.
//! Every bundle has a revision: a hash of the files it was built from,
//! shown wherever its output is.

pub mod allowance;
mod bundle;
pub mod contract;
pub mod refine;
pub mod reload;
pub mod sandbox;

pub use bundle::ConventionBundle;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use rhai::AST;
use sha2::{Digest, Sha256};

/// A policy function each bundle must define, with the file it lives in.
pub const REQUIRED_POLICIES: &[(&str, &str)] = &[
    ("config.rhai", "config"),
    ("host_init.rhai", "host_init"),
    ("shape.rhai", "shape"),
    ("restart.rhai", "restart_order"),
    ("membership.rhai", "membership"),
];

/// The functions of each policy file the operator calls: the required one
/// first, then the optional ones.
pub const POLICY_FUNCTIONS: &[(&str, &[&str])] = &[
    ("config.rhai", &["config", "config_change"]),
    ("host_init.rhai", &["host_init"]),
    ("shape.rhai", &["shape"]),
    ("restart.rhai", &["restart_order", "maintenance"]),
    ("membership.rhai", &["membership"]),
];

/// Configuration templates each bundle must have, one per component.
pub const REQUIRED_TEMPLATES: &[&str] = &[
    "fe.conf.j2",
    "be.conf.j2",
    "cn.conf.j2",
    "apache_hdfs_broker.conf.j2",
    "doris_cloud.conf.j2",
];

/// Templates with this suffix are manifest templates: rendered once per
/// component, each YAML document they produce is one more object.
pub const MANIFEST_TEMPLATE_SUFFIX: &str = ".yaml.j2";

/// What a convention file is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// One of [`REQUIRED_POLICIES`].
    Policy,
    /// `<policy>.<part>.rhai`: functions compiled with that policy.
    PolicyPart,
    /// One of [`REQUIRED_TEMPLATES`].
    ConfigTemplate,
    /// A `*.yaml.j2` template.
    ManifestTemplate,
}

/// The role of a file named `name`, or `None` when no convention file has
/// that name.
pub fn file_role(name: &str) -> Option<FileRole> {
    if REQUIRED_POLICIES.iter().any(|(file, _)| *file == name) {
        Some(FileRole::Policy)
    } else if part_of(name).is_some() {
        Some(FileRole::PolicyPart)
    } else if REQUIRED_TEMPLATES.contains(&name) {
        Some(FileRole::ConfigTemplate)
    } else if name
        .strip_suffix(MANIFEST_TEMPLATE_SUFFIX)
        .is_some_and(|stem| !stem.is_empty() && !stem.contains('/'))
    {
        Some(FileRole::ManifestTemplate)
    } else {
        None
    }
}

/// The policy file a part (`shape.volumes.rhai`) belongs to.
pub fn part_of(name: &str) -> Option<&'static str> {
    let (stem, part) = name.strip_suffix(".rhai")?.split_once('.')?;
    let valid = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let policy = REQUIRED_POLICIES
        .iter()
        .map(|(file, _)| *file)
        .find(|file| file.strip_suffix(".rhai") == Some(stem))?;
    valid.then_some(policy)
}

/// The names a convention file may have, for error messages.
pub fn known_file_names() -> String {
    let mut names: Vec<&str> = REQUIRED_POLICIES.iter().map(|(file, _)| *file).collect();
    names.extend(REQUIRED_TEMPLATES);
    format!(
        "{}, their parts <policy>.<part>.rhai and *{MANIFEST_TEMPLATE_SUFFIX} manifest templates",
        names.join(", ")
    )
}

/// Functions a policy may not call, and why.
const FORBIDDEN_CALLS: &[(&str, &str)] = &[
    (
        "timestamp",
        "policies have no clock: timestamp() is not available (a plan must depend on its input alone)",
    ),
    ("sleep", "policies may not sleep: sleep() is not available"),
];

/// Work one template render may do before it is stopped.
pub const TEMPLATE_FUEL: u64 = 200_000;

macro_rules! embedded {
    ($dir:literal, $file:literal) => {
        (
            $file,
            concat!($dir, "/", $file),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file)),
        )
    };
}

/// The embedded default conventions, as (file name, source path, content).
const EMBEDDED: &[(&str, &str, &str)] = &[
    embedded!("policies", "config.rhai"),
    embedded!("policies", "host_init.rhai"),
    embedded!("policies", "shape.rhai"),
    embedded!("policies", "shape.disaggregated_storage.rhai"),
    embedded!("policies", "shape.env.rhai"),
    embedded!("policies", "shape.ports.rhai"),
    embedded!("policies", "shape.probes.rhai"),
    embedded!("policies", "shape.scheduling.rhai"),
    embedded!("policies", "shape.volumes.rhai"),
    embedded!("policies", "shape.workload.rhai"),
    embedded!("policies", "restart.rhai"),
    embedded!("policies", "membership.rhai"),
    embedded!("templates", "fe.conf.j2"),
    embedded!("templates", "be.conf.j2"),
    embedded!("templates", "cn.conf.j2"),
    embedded!("templates", "apache_hdfs_broker.conf.j2"),
    embedded!("templates", "doris_cloud.conf.j2"),
    embedded!("templates", "configmap.yaml.j2"),
    embedded!("templates", "services.yaml.j2"),
    embedded!("templates", "monitoring.yaml.j2"),
];

/// The layer of the defaults compiled into the binary.
pub const EMBEDDED_LAYER: &str = "embedded defaults";

/// A problem in a convention file, located as precisely as the source allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    /// The file as the user knows it (`policies/shape.rhai`, `/etc/conv/shape.rhai`).
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
    /// The problem is in the cluster, not the convention: a policy threw
    /// `#{ field, message }` about a value the user wrote. `file` is then
    /// the field (`metadata.annotations["…"]`) and the policy's place is in
    /// the message.
    pub in_input: bool,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        SourceError {
            file: file.into(),
            line: None,
            col: None,
            message: message.into(),
            in_input: false,
        }
    }

    /// Locates a Rhai error: the innermost failing position, with the call
    /// chain (`in fn shape`) kept in the message.
    pub fn from_rhai(file: &str, err: &rhai::EvalAltResult) -> Self {
        let mut chain = Vec::new();
        let mut cur = err;
        while let rhai::EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = cur {
            chain.push(name.clone());
            cur = inner;
        }
        // A function's own runtime error (`throw`, a helper's refusal)
        // keeps Rhai's words.
        let pos = cur.position();
        if let rhai::EvalAltResult::ErrorRuntime(thrown, _) = cur
            && let Some(map) = thrown.read_lock::<rhai::Map>()
            && let (Some(field), Some(message)) = (map.get("field"), map.get("message"))
        {
            // The policy says the user's value is wrong: name that value.
            let at = match (pos.line(), pos.position()) {
                (Some(line), Some(col)) => format!("{file}:{line}:{col}"),
                (Some(line), None) => format!("{file}:{line}"),
                _ => file.to_string(),
            };
            return SourceError {
                file: field.to_string(),
                line: None,
                col: None,
                message: format!("{message} (checked by {at})"),
                in_input: true,
            };
        }
        let mut message = strip_position(&cur.to_string());
        if !chain.is_empty() {
            // A recursion shows once, with its depth.
            let mut shown: Vec<(String, usize)> = Vec::new();
            for name in chain {
                match shown.last_mut() {
                    Some((last, n)) if *last == name => *n += 1,
                    _ => shown.push((name, 1)),
                }
            }
            let shown: Vec<String> = shown
                .into_iter()
                .map(|(name, n)| match n {
                    1 => name,
                    n => format!("{name} ×{n}"),
                })
                .collect();
            message = format!("{message} (in fn {})", shown.join(" → fn "));
        }
        SourceError {
            file: file.to_string(),
            line: pos.line(),
            col: pos.position(),
            message,
            in_input: false,
        }
    }

    /// Locates a minijinja error by template name, line and column.
    pub fn from_jinja(files: &BTreeMap<String, SourceFile>, err: &minijinja::Error) -> Self {
        let name = err.name().unwrap_or("<template>");
        let file = files
            .get(name)
            .map(|f| f.origin.clone())
            .unwrap_or_else(|| name.to_string());
        let col = match (err.range(), files.get(name)) {
            (Some(range), Some(src)) => {
                let before = &src.content[..range.start.min(src.content.len())];
                Some(before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1)
            }
            _ => None,
        };
        let mut message = err.kind().to_string();
        if let Some(detail) = err.detail() {
            message = format!("{message}: {detail}");
        }
        SourceError {
            file,
            line: err.line(),
            col,
            message,
            in_input: false,
        }
    }
}

/// The function the innermost error happened in, when it is not the one
/// called (whose file is known).
fn innermost_function(err: &rhai::EvalAltResult) -> Option<&str> {
    let mut cur = err;
    let mut name = None;
    while let rhai::EvalAltResult::ErrorInFunctionCall(f, _, inner, _) = cur {
        name = Some(f.as_str());
        cur = inner;
    }
    name
}

/// The error under Rhai's chain of "in function" wrappers.
fn innermost(err: &rhai::EvalAltResult) -> &rhai::EvalAltResult {
    let mut cur = err;
    while let rhai::EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = cur {
        cur = inner;
    }
    cur
}

/// Rhai appends " (line N, position M)" to messages; the location is shown
/// as file:line:col instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// What a compiled policy may not hold: statements outside functions
/// (policies are called through their functions, so those would never
/// run) and calls to functions the sandbox does not offer.
fn policy_problems(ast: &AST, origin: &str) -> Vec<SourceError> {
    let mut problems = Vec::new();
    let at = |pos: rhai::Position, message: String| SourceError {
        file: origin.to_string(),
        line: pos.line(),
        col: pos.position(),
        message,
        in_input: false,
    };
    if let Some(stmt) = ast.statements().first() {
        problems.push(at(
            stmt.position(),
            "a statement outside a function: a policy holds function definitions only \
             (this would never run; put it inside a function)"
                .into(),
        ));
    }
    let mut walk = |nodes: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Expr(
            rhai::Expr::FnCall(call, pos) | rhai::Expr::MethodCall(call, pos),
        )) = nodes.last()
            && let Some((_, why)) = FORBIDDEN_CALLS.iter().find(|(f, _)| call.name == *f)
        {
            problems.push(at(*pos, (*why).to_string()));
        }
        if let Some(rhai::ASTNode::Stmt(stmt @ rhai::Stmt::Import(..))) = nodes.last() {
            problems.push(at(
                stmt.position(),
                "policies may not import modules: a convention set is self-contained (define \
                 the functions you need in the policy file)"
                    .into(),
            ));
        }
        true
    };
    ast.walk(&mut walk);
    problems
}

/// One convention file and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Where the file was read from, for error messages.
    pub origin: String,
    pub content: String,
}

impl SourceFile {
    /// The layer the file belongs to: its folder, its ConfigMap
    /// (`configmap NAMESPACE/NAME`), or `embedded defaults`.
    pub fn layer(&self) -> String {
        if EMBEDDED.iter().any(|(_, origin, _)| *origin == self.origin) {
            return EMBEDDED_LAYER.to_string();
        }
        match self.origin.rsplit_once('/') {
            Some((dir, _)) => dir.to_string(),
            None => self.origin.clone(),
        }
    }
}

/// The files a bundle is compiled from, by file name: the topmost layer's
/// file of each name, and the files of that name in the layers below.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConventionSources {
    pub files: BTreeMap<String, SourceFile>,
    /// The lower layers' files of a name, bottom first.
    pub below: BTreeMap<String, Vec<SourceFile>>,
    /// The layers, bottom first, as [`SourceFile::layer`] names them.
    order: Vec<String>,
}

impl ConventionSources {
    /// The defaults compiled into the binary.
    pub fn embedded() -> Self {
        let files = EMBEDDED
            .iter()
            .map(|(name, origin, content)| {
                (
                    name.to_string(),
                    SourceFile {
                        origin: origin.to_string(),
                        content: content.to_string(),
                    },
                )
            })
            .collect();
        ConventionSources {
            files,
            below: BTreeMap::new(),
            order: vec![EMBEDDED_LAYER.to_string()],
        }
    }

    /// Lays `file` over the file of the same name, which stays below it.
    fn lay(&mut self, name: &str, file: SourceFile) {
        let layer = file.layer();
        if !self.order.contains(&layer) {
            self.order.push(layer);
        }
        if let Some(previous) = self.files.insert(name.to_string(), file) {
            if previous.content == self.files[name].content {
                // The same file again (a ConfigMap holding the defaults as
                // they are): one layer, known by where it was read last.
                return;
            }
            self.below
                .entry(name.to_string())
                .or_default()
                .push(previous);
        }
    }

    /// Every layer of file `name`, bottom first.
    pub fn layers(&self, name: &str) -> Vec<&SourceFile> {
        let mut out: Vec<&SourceFile> = self.below.get(name).into_iter().flatten().collect();
        out.extend(self.files.get(name));
        out
    }

    /// The layers these files come from, bottom first, by name (the
    /// embedded defaults, a folder, `configmap NAMESPACE/NAME`).
    pub fn layer_names(&self) -> &[String] {
        &self.order
    }

    /// These files as the first `n` layers alone made them (the layers
    /// above left out).
    pub fn up_to(&self, n: usize) -> ConventionSources {
        let kept = &self.order[..n.min(self.order.len())];
        let mut out = ConventionSources {
            order: kept.to_vec(),
            ..Default::default()
        };
        for name in self.files.keys() {
            let mut layers = self
                .layers(name)
                .into_iter()
                .filter(|f| kept.contains(&f.layer()))
                .cloned();
            if let Some(first) = layers.next() {
                out.files.insert(name.clone(), first);
                for file in layers {
                    out.lay(name, file);
                }
            }
        }
        out
    }

    /// Lays the convention files found in `dir` over these: `*.rhai` and
    /// `*.j2` directly in it or in its `policies/` and `templates/`
    /// subfolders. Hidden entries (a mounted ConfigMap's `..data` links) are
    /// skipped; the files they point to are read through their visible names.
    pub fn overlay_dir(mut self, dir: &Path) -> Result<Self, SourceError> {
        let mut found = 0;
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for sub in [
            dir.to_path_buf(),
            dir.join("policies"),
            dir.join("templates"),
        ] {
            if !sub.is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(&sub)
                .map_err(|e| SourceError::new(sub.display().to_string(), e.to_string()))?;
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if name.starts_with('.') || !(name.ends_with(".rhai") || name.ends_with(".j2")) {
                    continue;
                }
                if !path.is_file() {
                    continue;
                }
                if let Some(first) = seen.insert(name.to_string(), path.display().to_string()) {
                    return Err(SourceError::new(
                        path.display().to_string(),
                        format!(
                            "{name} is also at {first}: a folder holds each convention file once, \
                             either directly in it or in policies/ or templates/"
                        ),
                    ));
                }
                let content = std::fs::read_to_string(&path)
                    .map_err(|e| SourceError::new(path.display().to_string(), e.to_string()))?;
                self.lay(
                    name,
                    SourceFile {
                        origin: path.display().to_string(),
                        content,
                    },
                );
                found += 1;
            }
        }
        if found == 0 {
            return Err(SourceError::new(
                dir.display().to_string(),
                "no convention files (*.rhai, *.j2) found here or in policies/ or templates/",
            ));
        }
        Ok(self)
    }

    /// Lays files given by name and content (a ConfigMap's data) over these.
    /// Every entry is a convention file: one with a name no convention file
    /// has is kept, and refused when the bundle is compiled.
    pub fn overlay_files<'a>(
        mut self,
        origin: &str,
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (name, content) in files {
            self.lay(
                name,
                SourceFile {
                    origin: format!("{origin}/{name}"),
                    content: content.to_string(),
                },
            );
        }
        self
    }

    /// The content hash of these files: names and contents, in name order.
    pub fn revision(&self) -> String {
        let mut hasher = Sha256::new();
        for name in self.files.keys() {
            for file in self.layers(name) {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(file.content.as_bytes());
                hasher.update([0]);
            }
        }
        let digest = hasher.finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Splits multi-document YAML text on `---` lines, dropping blank
/// documents; each with the (1-based) line of the text it starts on.
pub fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.into_iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .collect()
}

/// Templates render plain text: nothing is escaped, whatever the file
/// name (minijinja would JSON-escape `*.yaml.j2` by default, quoting every
/// `{{ value }}`). `| tojson` writes a structured value as JSON, which is
/// also YAML.
fn template_environment() -> Environment<'static> {
    let mut env = Environment::new();
    refine::register_filters(&mut env);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_debug(true);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("static syntax config is valid"),
    );
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_compile() {
        let bundle = ConventionBundle::embedded().expect("defaults compile");
        assert_eq!(bundle.revision().len(), 12);
        assert!(
            bundle
                .manifest_templates()
                .contains(&"services.yaml.j2".to_string())
        );
    }

    #[test]
    fn revision_follows_content() {
        let a = ConventionSources::embedded();
        let b = a
            .clone()
            .overlay_files("cm", [("restart.rhai", "fn restart_order(ctx) { [] }")]);
        assert_ne!(a.revision(), b.revision());
        assert_eq!(a.revision(), ConventionSources::embedded().revision());
    }

    #[test]
    fn syntax_error_is_located() {
        let src = ConventionSources::embedded().overlay_files(
            "my",
            [("restart.rhai", "fn restart_order(ctx) {\n  let x = ;\n}")],
        );
        let errs = ConventionBundle::compile(src).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let text = errs[0].to_string();
        assert!(text.starts_with("my/restart.rhai:2:"), "{text}");
    }

    #[test]
    fn missing_function_is_reported() {
        let src = ConventionSources::embedded()
            .overlay_files("my", [("restart.rhai", "fn order(ctx) { [] }")]);
        let errs = ConventionBundle::compile(src).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("defines none of fn restart_order, fn maintenance"),
            "{errs:?}"
        );
    }

    #[test]
    fn template_syntax_error_is_located() {
        let src = ConventionSources::embedded()
            .overlay_files("my", [("fe.conf.j2", "a\n{% for x in %}\n")]);
        let errs = ConventionBundle::compile(src).unwrap_err();
        let text = errs[0].to_string();
        assert!(text.starts_with("my/fe.conf.j2:2:"), "{text}");
    }
}
