//! A compiled bundle: each policy and template as the stack of its layers,
//! called from the top down (see `refine` for what a layer may do).
//!
//! A policy file that defines its policy's main function with one
//! argument (`fn shape(ctx)`) replaces every layer below it. Any other
//! policy file refines: a function it defines with `(ctx, below)` refines
//! the one below, one it defines with `(ctx)` replaces that function
//! alone, and those it does not define come from the layer below. A
//! template that reads `below` refines the one below it; any other
//! replaces it.

use std::collections::BTreeMap;
use std::fmt;

use minijinja::Environment;
use rhai::{AST, Dynamic, Engine};

use super::{ConventionSources, innermost};
use super::{
    FileRole, MANIFEST_TEMPLATE_SUFFIX, POLICY_FUNCTIONS, REQUIRED_POLICIES, REQUIRED_TEMPLATES,
    SourceError, SourceFile, allowance, file_role, known_file_names, part_of, policy_problems,
    refine, sandbox, template_environment,
};

/// One layer of a policy: its compiled file.
struct PolicyLayer {
    ast: AST,
    origin: String,
    /// The functions compiled in from the policy's parts, with their files.
    part_functions: BTreeMap<String, String>,
}

/// The layers of a policy in effect, bottom first: the bottom one replaced
/// whatever was under it.
struct PolicyStack {
    layers: Vec<PolicyLayer>,
}

/// How a layer defines a function: with `(ctx)`, `(ctx, below)`, or not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Defines {
    Replaces,
    Refines,
    No,
}

fn defines(ast: &AST, function: &str) -> Defines {
    let mut out = Defines::No;
    for f in ast.iter_functions().filter(|f| f.name == function) {
        match f.params.len() {
            1 => out = Defines::Replaces,
            2 if out == Defines::No => out = Defines::Refines,
            _ => {}
        }
    }
    out
}

impl PolicyStack {
    fn defines(&self, function: &str) -> bool {
        self.layers
            .iter()
            .any(|l| defines(&l.ast, function) != Defines::No)
    }

    /// The layer at or under `i` that defines `function`.
    fn defining(&self, i: usize, function: &str) -> Option<usize> {
        (0..=i)
            .rev()
            .find(|&j| defines(&self.layers[j].ast, function) != Defines::No)
    }
}

/// One layer of a template: the name it has in the environment.
struct TemplateLayer {
    name: String,
    origin: String,
    refines: bool,
}

/// A compiled, ready-to-run set of conventions.
pub struct ConventionBundle {
    revision: String,
    engine: Engine,
    policies: BTreeMap<String, PolicyStack>,
    templates: Environment<'static>,
    /// Each template's layers in effect, bottom first.
    template_layers: BTreeMap<String, Vec<TemplateLayer>>,
    /// Every template in the environment (layers included) by its name there.
    template_files: BTreeMap<String, SourceFile>,
    manifest_templates: Vec<String>,
    sources: ConventionSources,
}

impl fmt::Debug for ConventionBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConventionBundle")
            .field("revision", &self.revision)
            .field("files", &self.sources.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn compile_policy(engine: &Engine, file: &SourceFile) -> Result<AST, Vec<SourceError>> {
    match engine.compile(&file.content) {
        Ok(mut ast) => {
            let problems = policy_problems(&ast, &file.origin);
            if problems.is_empty() {
                ast.set_source(file.origin.as_str());
                Ok(ast)
            } else {
                Err(problems)
            }
        }
        Err(err) => {
            let pos = err.position();
            Err(vec![SourceError {
                file: file.origin.clone(),
                line: pos.line(),
                col: pos.position(),
                message: sandbox::explain_parse_error(&err),
                in_input: false,
            }])
        }
    }
}

/// The name a template's layer `i` (bottom 0) has in the environment; the
/// top one keeps the file's name.
fn layer_name(name: &str, i: usize, top: usize) -> String {
    if i == top {
        name.to_string()
    } else {
        format!("{name}@{i}")
    }
}

impl ConventionBundle {
    /// Compiles the embedded defaults.
    pub fn embedded() -> Result<Self, Vec<SourceError>> {
        Self::compile(ConventionSources::embedded())
    }

    /// Compiles every layer of every policy and template; returns every
    /// problem found, each located by file:line:col, rather than stopping
    /// at the first.
    pub fn compile(sources: ConventionSources) -> Result<Self, Vec<SourceError>> {
        let engine = sandbox::engine();
        let mut errors = Vec::new();
        let mut compiled: BTreeMap<String, Vec<PolicyLayer>> = BTreeMap::new();
        let mut parts: BTreeMap<&'static str, Vec<(AST, String)>> = BTreeMap::new();
        let mut templates = template_environment();
        let mut template_layers = BTreeMap::new();
        let mut template_files = BTreeMap::new();
        let mut manifest_templates = Vec::new();

        for (name, top) in &sources.files {
            let layers = sources.layers(name);
            match file_role(name) {
                None => errors.push(SourceError::new(
                    top.origin.clone(),
                    format!(
                        "unknown convention file {name:?}: convention files are {}",
                        known_file_names()
                    ),
                )),
                Some(FileRole::Policy) => {
                    let mut stack = Vec::new();
                    for file in layers {
                        match compile_policy(&engine, file) {
                            Ok(ast) => stack.push(PolicyLayer {
                                ast,
                                origin: file.origin.clone(),
                                part_functions: BTreeMap::new(),
                            }),
                            Err(problems) => errors.extend(problems),
                        }
                    }
                    compiled.insert(name.clone(), stack);
                }
                // A part is replaced whole by a layer above.
                Some(FileRole::PolicyPart) => match compile_policy(&engine, top) {
                    Ok(ast) => parts
                        .entry(part_of(name).expect("a part"))
                        .or_default()
                        .push((ast, top.origin.clone())),
                    Err(problems) => errors.extend(problems),
                },
                Some(role) => {
                    let top_index = layers.len() - 1;
                    let mut stack = Vec::new();
                    for (i, file) in layers.into_iter().enumerate() {
                        let env_name = layer_name(name, i, top_index);
                        template_files.insert(env_name.clone(), file.clone());
                        if let Err(err) =
                            templates.add_template_owned(env_name.clone(), file.content.clone())
                        {
                            errors.push(SourceError::from_jinja(&template_files, &err));
                            continue;
                        }
                        let refines = templates.get_template(&env_name).is_ok_and(|t| {
                            t.undeclared_variables(false)
                                .contains(refine::BELOW_VARIABLE)
                        });
                        if !refines {
                            stack.clear();
                        }
                        stack.push(TemplateLayer {
                            name: env_name,
                            origin: file.origin.clone(),
                            refines,
                        });
                    }
                    if role == FileRole::ManifestTemplate {
                        manifest_templates.push(name.clone());
                    }
                    template_layers.insert(name.clone(), stack);
                }
            }
        }

        let mut policies = BTreeMap::new();
        for (file, function) in REQUIRED_POLICIES {
            let Some(stack) = compiled.remove(*file) else {
                if !sources.files.contains_key(*file) {
                    errors.push(SourceError::new(
                        *file,
                        format!("missing: every bundle needs {file} defining fn {function}(ctx)"),
                    ));
                }
                continue;
            };
            match effective(
                stack,
                file,
                function,
                parts.remove(*file).unwrap_or_default(),
            ) {
                Ok(stack) => {
                    policies.insert(file.to_string(), stack);
                }
                Err(e) => errors.push(e),
            }
        }
        for (policy, _) in parts {
            errors.push(SourceError::new(
                policy,
                "parts of a policy the bundle does not have",
            ));
        }
        for file in REQUIRED_TEMPLATES {
            if !sources.files.contains_key(*file) {
                errors.push(SourceError::new(
                    *file,
                    "missing: every bundle needs this template",
                ));
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ConventionBundle {
            revision: sources.revision(),
            engine,
            policies,
            templates,
            template_layers,
            template_files,
            manifest_templates,
            sources,
        })
    }

    /// The content hash of the files this bundle was built from.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn sources(&self) -> &ConventionSources {
        &self.sources
    }

    /// The manifest templates, in name order.
    pub fn manifest_templates(&self) -> &[String] {
        &self.manifest_templates
    }

    /// Whether policy `file` defines `function` in any layer (for the
    /// optional functions a bundle may leave out). `params` is the
    /// arguments the caller passes: one, ctx (a refinement's `below` is
    /// the bundle's to give).
    pub fn defines(&self, file: &str, function: &str, params: usize) -> bool {
        params == 1
            && self
                .policies
                .get(file)
                .is_some_and(|stack| stack.defines(function))
    }

    /// Calls `function` of policy `file` with `ctx` as plain data, sandboxed,
    /// and returns its result as plain data.
    pub fn call_json(
        &self,
        file: &str,
        function: &str,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, SourceError> {
        let arg = rhai::serde::to_dynamic(ctx)
            .map_err(|e| SourceError::new(self.origin(file), format!("cannot pass ctx: {e}")))?;
        self.call_policy(file, function, &arg)
    }

    /// Calls `function` of policy `file` with `ctx`, sandboxed, through
    /// every layer that refines it, and returns its result as plain data.
    pub fn call_policy(
        &self,
        file: &str,
        function: &str,
        ctx: &Dynamic,
    ) -> Result<serde_json::Value, SourceError> {
        let origin = self.origin(file);
        let stack = self
            .policies
            .get(file)
            .ok_or_else(|| SourceError::new(origin.clone(), "policy file not in bundle"))?;
        let top = stack.layers.len() - 1;
        let Some(at) = stack.defining(top, function) else {
            return Err(SourceError::new(
                origin,
                format!("no layer defines fn {function}(ctx)"),
            ));
        };
        let (result, origin) = self.call_layer(stack, at, function, ctx)?;
        rhai::serde::from_dynamic(&result).map_err(|e| {
            SourceError::new(
                origin,
                format!("fn {function} returned a value that is not plain data: {e}"),
            )
        })
    }

    /// What layer `i` (which defines `function`) returns, and its file.
    fn call_layer(
        &self,
        stack: &PolicyStack,
        i: usize,
        function: &str,
        ctx: &Dynamic,
    ) -> Result<(Dynamic, String), SourceError> {
        let layer = &stack.layers[i];
        if defines(&layer.ast, function) == Defines::Replaces {
            let result = self.run(layer, function, vec![ctx.clone()])?;
            return Ok((result, layer.origin.clone()));
        }
        // A refinement: what the layer below returns is its `below`.
        let below_at = i.checked_sub(1).and_then(|j| stack.defining(j, function));
        let (below, below_origin) = match below_at {
            Some(j) => self.call_layer(stack, j, function, ctx)?,
            None => (Dynamic::UNIT, String::new()),
        };
        let below_name = match below_at {
            Some(_) => below_origin.clone(),
            None => format!("nothing (no layer below defines fn {function})"),
        };
        let mut told = ctx.clone();
        if let Some(mut map) = told.write_lock::<rhai::Map>() {
            let mut layer_info = rhai::Map::new();
            layer_info.insert("file".into(), layer.origin.clone().into());
            layer_info.insert("below".into(), below_origin.clone().into());
            map.insert("layer".into(), layer_info.into());
        }
        let below = refine::full_shape(function, below);
        let was_unit = below.is_unit();
        let result =
            refine::with_below(&below_name, || self.run(layer, function, vec![told, below]))
                .map_err(|mut e| {
                    if was_unit && !e.in_input {
                        let why = match below_at {
                            Some(_) => format!("{below_origin} returned it"),
                            None => below_name.clone(),
                        };
                        e.message = format!("{} (below is (): {why})", e.message);
                    } else if !e.in_input && !e.message.contains(below_origin.as_str()) {
                        // A target that moved below shows as a plain
                        // Rhai error: name the file it was looked for in.
                        e.message =
                            format!("{} (refining what {below_origin} returned)", e.message);
                    }
                    e
                })?;
        Ok((result, layer.origin.clone()))
    }

    /// Runs `function` of `ast` with `args`, sandboxed.
    fn run(
        &self,
        layer: &PolicyLayer,
        function: &str,
        args: Vec<Dynamic>,
    ) -> Result<Dynamic, SourceError> {
        let ast = &layer.ast;
        // An error in a part's function is located in the part.
        let origin_of = |err: &rhai::EvalAltResult| {
            super::innermost_function(err)
                .and_then(|f| layer.part_functions.get(f))
                .unwrap_or(&layer.origin)
                .clone()
        };
        // A large ctx gets limits raised by its size (see `allowance`).
        let size = allowance::DataSize::of(&args[0]);
        let sized = (!size.is_small()).then(|| allowance::engine_for(size));
        let engine = sized.as_ref().unwrap_or(&self.engine);
        let options = rhai::CallFnOptions::new().eval_ast(false);
        let result = sandbox::with_deadline(|| {
            engine.call_fn_with_options::<Dynamic>(
                options,
                &mut rhai::Scope::new(),
                ast,
                function,
                args.clone(),
            )
        });
        result.map_err(|err| {
            let mut located = SourceError::from_rhai(&origin_of(&err), &err);
            let innermost = innermost(&err);
            let limit = sandbox::explain_limit(innermost, engine);
            // Rhai reports some of these at the outermost call; run the call
            // again, with the same limits, under a tracer to find the
            // statement that failed. The tracer's own deadline keeps a
            // large ctx from making the report slow.
            if located.line.is_none() && limit.is_some() {
                let tracer = allowance::engine_for(size);
                if let Some(pos) = sandbox::last_position_of(tracer, ast, function, args, innermost)
                {
                    located.line = pos.line();
                    located.col = pos.position();
                }
            }
            if let Some(limit) = limit {
                located.message = match located.message.find(" (in fn ") {
                    Some(i) => format!("{limit}{}", &located.message[i..]),
                    None => limit,
                };
                if sized.is_some() {
                    located.message = format!(
                        "{} (limits here: {} array items, {} map entries, {} string bytes: \
                         the fixed limits raised by the size of ctx)",
                        located.message,
                        engine.max_array_size(),
                        engine.max_map_size(),
                        engine.max_string_size()
                    );
                }
            }
            located
        })
    }

    /// Renders template `name` with `ctx`, through every layer that refines
    /// it, strict about undefined values and limited by fuel.
    pub fn render_template(
        &self,
        name: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, SourceError> {
        let layers = self
            .template_layers
            .get(name)
            .ok_or_else(|| SourceError::new(name, "template not in bundle"))?;
        // A large context gets fuel in proportion (see `allowance`).
        let size = allowance::DataSize::of_template(ctx);
        let sized = (!size.is_small()).then(|| {
            let mut env = self.templates.clone();
            env.set_fuel(Some(allowance::fuel_for(size)));
            env
        });
        let env = sized.as_ref().unwrap_or(&self.templates);
        self.render_layer(env, name, layers, layers.len() - 1, ctx)
    }

    fn render_layer(
        &self,
        env: &Environment<'static>,
        name: &str,
        layers: &[TemplateLayer],
        i: usize,
        ctx: &minijinja::Value,
    ) -> Result<String, SourceError> {
        let layer = &layers[i];
        let jinja = |err: minijinja::Error| SourceError::from_jinja(&self.template_files, &err);
        let tmpl = env.get_template(&layer.name).map_err(jinja)?;
        if !layer.refines {
            return tmpl.render(ctx).map_err(jinja);
        }
        let (below, below_origin) = match i.checked_sub(1) {
            Some(j) => {
                let text = self.render_layer(env, name, layers, j, ctx)?;
                let below = if name.ends_with(MANIFEST_TEMPLATE_SUFFIX) {
                    refine::documents(&text)
                        .map_err(|m| SourceError::new(layers[j].origin.clone(), m))?
                } else {
                    minijinja::Value::from(text)
                };
                (below, layers[j].origin.clone())
            }
            None => (minijinja::Value::UNDEFINED, String::new()),
        };
        let told = minijinja::context! {
            below => below,
            layer => minijinja::context! { file => layer.origin.clone(), below => below_origin },
            ..ctx.clone()
        };
        tmpl.render(told).map_err(jinja)
    }

    /// The text of convention file `name` (its topmost layer).
    pub fn template_source(&self, name: &str) -> Option<&str> {
        self.sources.files.get(name).map(|f| f.content.as_str())
    }

    /// The user-facing origin of a convention file (its topmost layer's path).
    pub fn origin(&self, file: &str) -> String {
        self.sources
            .files
            .get(file)
            .map(|f| f.origin.clone())
            .unwrap_or_else(|| file.to_string())
    }
}

/// The layers of `stack` in effect: from the topmost one that replaces the
/// policy's main function up, with the policy's parts compiled into that one.
fn effective(
    mut stack: Vec<PolicyLayer>,
    file: &str,
    function: &str,
    parts: Vec<(AST, String)>,
) -> Result<PolicyStack, SourceError> {
    let known = POLICY_FUNCTIONS
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, functions)| *functions)
        .unwrap_or(&[]);
    for layer in &stack {
        if known.iter().all(|f| defines(&layer.ast, f) == Defines::No) {
            let names: Vec<String> = known.iter().map(|f| format!("fn {f}")).collect();
            return Err(SourceError::new(
                layer.origin.clone(),
                format!(
                    "defines none of {}: a policy file replaces the one below it with \
                     fn {function}(ctx), or refines what it returns with fn {function}(ctx, below)",
                    names.join(", ")
                ),
            ));
        }
        let arities: Vec<usize> = layer
            .ast
            .iter_functions()
            .filter(|f| f.name == function)
            .map(|f| f.params.len())
            .collect();
        if arities.contains(&1) && arities.contains(&2) {
            return Err(SourceError::new(
                layer.origin.clone(),
                format!(
                    "defines both fn {function}(ctx) and fn {function}(ctx, below): keep \
                     the first to replace the layer below, the second to refine it"
                ),
            ));
        }
    }
    let Some(base) = stack
        .iter()
        .rposition(|l| defines(&l.ast, function) == Defines::Replaces)
    else {
        let first = stack.first().map(|l| l.origin.clone()).unwrap_or_default();
        return Err(SourceError::new(
            first,
            format!(
                "refines fn {function}(ctx, below), but no layer below defines fn \
                 {function}(ctx) for it to refine"
            ),
        ));
    };
    let mut stack = stack.split_off(base);
    if !parts.is_empty() {
        // The parts' functions, with the file's own over them.
        let bottom = &mut stack[0];
        let mut merged = AST::empty();
        for (part, origin) in &parts {
            merged = merged.merge(part);
            for f in part.iter_functions() {
                bottom
                    .part_functions
                    .insert(f.name.to_string(), origin.clone());
            }
        }
        for f in bottom.ast.iter_functions() {
            bottom.part_functions.remove(f.name);
        }
        let mut ast = merged.merge(&bottom.ast);
        ast.set_source(bottom.origin.as_str());
        bottom.ast = ast;
    }
    Ok(PolicyStack { layers: stack })
}
