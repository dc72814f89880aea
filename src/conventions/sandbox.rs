//! The locked-down Rhai engine every policy runs in, and the helper functions
//! policies may call.
//!
//! Rhai's defaults are not safe for scripts edited in a ConfigMap: operations
//! and sizes are unlimited and `import` reads files. This engine starts from
//! [`Engine::new_raw`] (no file module resolver), installs only the standard
//! language package plus the helpers below, caps operations, call depth,
//! expression depth and string/array/map sizes, forbids `eval` and `import`,
//! requires variables to be declared, and sends `print`/`debug` to the log.
//! There is no clock, file, network or process access, so a policy's output
//! depends on its input alone.
//!
//! Rhai checks the size of a map when a property is set (`m.k = v`) but not
//! when a new key is set by index (`m[k] = v`); a variable resolver checks
//! every map a policy reads from a variable, so the limit holds either way.
//! Every call also has a wall-clock deadline, checked as operations are
//! counted: an operation that costs more than usual (a copy of a large
//! value) cannot stretch the operations limit into minutes.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, OptimizationLevel};

/// Operations one policy call may perform before it is stopped. A default
/// policy call uses a few thousand; this leaves room for real logic while
/// stopping a runaway loop in well under a second.
pub const MAX_OPERATIONS: u64 = 2_000_000;
/// Nested function calls a policy may make.
pub const MAX_CALL_LEVELS: usize = 32;
/// Largest string a policy may build, in bytes.
pub const MAX_STRING_SIZE: usize = 1 << 20;
/// Largest array a policy may build.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Largest object map a policy may build.
pub const MAX_MAP_SIZE: usize = 10_000;
/// Wall-clock time one policy call may take in a release build. Debug
/// builds run policies about ten times slower and get ten times as long.
pub const MAX_CALL_TIME: Duration = Duration::from_millis(400);

/// How often, in operations, the deadline is looked at.
const DEADLINE_EVERY: u64 = 256;

thread_local! {
    /// When the policy call running on this thread must stop.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The time limit of one call in this build.
pub fn call_time_limit() -> Duration {
    if cfg!(debug_assertions) {
        MAX_CALL_TIME * 10
    } else {
        MAX_CALL_TIME
    }
}

/// Runs `f` (one policy call) with the call deadline set on this thread.
pub fn with_deadline<T>(f: impl FnOnce() -> T) -> T {
    within(call_time_limit(), f)
}

fn within<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + limit)));
    let out = f();
    DEADLINE.with(|d| d.set(previous));
    out
}

/// The token a call stopped by its deadline ends with.
pub const DEADLINE_TOKEN: &str = "doris-operator: policy call deadline";

/// Holds `m[k] = v` to the map size limit too: Rhai checks the size of a
/// map only when a property is set, so a variable read is where a map
/// grown by index assignment is caught. `limit` is the engine's map limit
/// (raised for a large ctx, see `allowance`).
pub fn limit_maps_read(engine: &mut Engine, limit: usize) {
    #[allow(deprecated)] // the variable resolver API is marked volatile, not deprecated
    engine.on_var(move |name, _, context| {
        if let Some(map) = context.scope().get(name).and_then(|v| v.read_lock::<Map>())
            && map.len() > limit
        {
            return Err(EvalAltResult::ErrorDataTooLarge(
                format!("object map `{name}` (more than {limit} entries)"),
                rhai::Position::NONE,
            )
            .into());
        }
        Ok(None)
    });
}

/// Builds the sandboxed engine with the policy helper functions registered.
pub fn engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.on_progress(|operations| {
        if operations % DEADLINE_EVERY != 0 {
            return None;
        }
        let late = DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() > d);
        late.then(|| Dynamic::from(DEADLINE_TOKEN))
    });
    limit_maps_read(&mut engine, MAX_MAP_SIZE);
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_modules(0)
        .set_max_variables(1_000)
        .set_max_functions(256)
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::Simple)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    // No clock and no waiting, even through a function pointer.
    engine.register_fn("timestamp", || -> Result<Dynamic, Box<EvalAltResult>> {
        Err("policies have no clock: timestamp() is not available".into())
    });
    engine.register_fn("sleep", |_: i64| -> Result<(), Box<EvalAltResult>> {
        Err("policies may not sleep: sleep() is not available".into())
    });
    engine.register_fn("sleep", |_: f64| -> Result<(), Box<EvalAltResult>> {
        Err("policies may not sleep: sleep() is not available".into())
    });
    engine.on_print(|text| tracing::info!(target: "doris_operator::policy", "{text}"));
    engine.on_debug(|text, source, pos| {
        tracing::debug!(
            target: "doris_operator::policy",
            source = source.unwrap_or(""),
            line = pos.line().unwrap_or(0),
            "{text}"
        )
    });
    register_helpers(&mut engine);
    engine
}

/// Re-runs a policy call that failed with `failed` (a sandbox limit) on
/// `tracer` (an engine with the limits of the failed call) and returns the
/// position of the last statement it reached: where it loops, or where it
/// built too much. `None` when the traced run did not fail the same way in
/// its time: a guess is not given as a place. Only
/// used on that failure, so the tracer costs nothing otherwise.
pub fn last_position_of(
    mut tracer: Engine,
    ast: &rhai::AST,
    function: &str,
    args: Vec<Dynamic>,
    failed: &EvalAltResult,
) -> Option<rhai::Position> {
    thread_local! {
        static LAST: Cell<rhai::Position> = const { Cell::new(rhai::Position::NONE) };
    }
    #[allow(deprecated)] // the debugger API is marked volatile, not deprecated
    tracer.register_debugger(
        |_, debugger| debugger,
        |_, event, _, _, pos| {
            if matches!(event, rhai::debugger::DebuggerEvent::Step) && !pos.is_none() {
                LAST.with(|last| last.set(pos));
            }
            // Looked at on every step too: between two progress reports the
            // debugger may copy a large ctx many times over.
            if DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() > d) {
                return Err(EvalAltResult::ErrorTerminated(DEADLINE_TOKEN.into(), pos).into());
            }
            Ok(rhai::debugger::DebuggerCommand::StepInto)
        },
    );
    LAST.with(|last| last.set(rhai::Position::NONE));
    let options = rhai::CallFnOptions::new().eval_ast(false);
    let runaway = |e: &EvalAltResult| match e {
        EvalAltResult::ErrorTooManyOperations(_) => true,
        EvalAltResult::ErrorTerminated(token, _) => {
            token.clone().into_string().ok().as_deref() == Some(DEADLINE_TOKEN)
        }
        _ => false,
    };
    // A quarter of a call's time reaches a runaway loop; a value built too
    // large is reached where the call reached it, later under the tracer,
    // so that gets a whole call's time. Either way the report takes less
    // than two calls' time.
    let budget = if runaway(failed) {
        call_time_limit() / 4
    } else {
        call_time_limit()
    };
    let traced = within(budget, || {
        tracer.call_fn_with_options::<Dynamic>(
            options,
            &mut rhai::Scope::new(),
            ast,
            function,
            args,
        )
    });
    let traced = super::innermost(traced.as_ref().err()?);
    let same = if runaway(failed) {
        runaway(traced)
    } else {
        std::mem::discriminant(traced) == std::mem::discriminant(failed)
    };
    let last = LAST.with(Cell::get);
    (same && !last.is_none()).then_some(last)
}

/// A parse error in words a policy author can act on.
pub fn explain_parse_error(err: &rhai::ParseError) -> String {
    let text = err.err_type().to_string();
    if text.contains("'eval'") {
        return "policies may not use eval".into();
    }
    text
}

/// A runtime error in words that say which limit of the sandbox was hit,
/// or `None` when it is not a sandbox limit.
/// Sizes are those of `engine`, the one the call ran on.
pub fn explain_limit(err: &EvalAltResult, engine: &Engine) -> Option<String> {
    Some(match err {
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "call depth above {MAX_CALL_LEVELS}: a policy recursed too deep \
             (does a function call itself without end?)"
        ),
        EvalAltResult::ErrorTooManyOperations(_) => {
            format!("too many operations: stopped after {MAX_OPERATIONS}; does a loop never end?")
        }
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(DEADLINE_TOKEN) =>
        {
            format!(
                "stopped after {} ms: a policy call may take at most that long; does a loop never end?",
                call_time_limit().as_millis()
            )
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let limit = if what.contains("map") {
                format!(
                    "object maps may hold at most {} entries",
                    engine.max_map_size()
                )
            } else if what.contains("array") || what.contains("Array") {
                format!("arrays may hold at most {} items", engine.max_array_size())
            } else if what.contains("tring") {
                format!("strings may be at most {} bytes", engine.max_string_size())
            } else {
                "a sandbox size limit".into()
            };
            format!("{what} is too large: {limit}")
        }
        EvalAltResult::ErrorTooManyModules(_) | EvalAltResult::ErrorModuleNotFound(..) => {
            "policies may not import modules".into()
        }
        _ => return None,
    })
}

/// Helpers available to every policy. Each is small, pure and documented in
/// docs/src/conventions/contract.md.
fn register_helpers(engine: &mut Engine) {
    // patch, put and at, for refinements (see `refine`).
    super::refine::register(engine);
    // Helpers that read a map take it by reference (`&mut`), which Rhai
    // passes without copying.
    //
    // conf_get(conf, key, default): the value of `key` in a lower-cased
    // configuration lookup map, or `default` when absent or empty.
    engine.register_fn(
        "conf_get",
        |conf: &mut Map, key: ImmutableString, default: Dynamic| -> Dynamic {
            match conf.get(key.to_ascii_lowercase().as_str()) {
                Some(v) if !v.to_string().is_empty() => v.clone(),
                _ => default,
            }
        },
    );
    // conf_int(conf, key, default): an integer setting (ports, seconds).
    engine.register_fn(
        "conf_int",
        |conf: &mut Map, key: ImmutableString, default: i64| -> i64 {
            conf.get(key.to_ascii_lowercase().as_str())
                .and_then(|v| v.to_string().trim().parse::<i64>().ok())
                .unwrap_or(default)
        },
    );
    // conf_bool(conf, key, default): a true/false setting.
    engine.register_fn(
        "conf_bool",
        |conf: &mut Map, key: ImmutableString, default: bool| -> bool {
            match conf
                .get(key.to_ascii_lowercase().as_str())
                .map(|v| v.to_string().trim().to_ascii_lowercase())
            {
                Some(v) if v == "true" => true,
                Some(v) if v == "false" => false,
                _ => default,
            }
        },
    );
    // storage_paths(value): the directories of a BE `storage_root_path`.
    engine.register_fn("storage_paths", |value: ImmutableString| -> Array {
        crate::conf::storage_paths(&value)
            .into_iter()
            .map(Dynamic::from)
            .collect()
    });
    // expand_doris_home(path, home): replaces ${DORIS_HOME} / $DORIS_HOME.
    engine.register_fn(
        "expand_doris_home",
        |path: ImmutableString, home: ImmutableString| -> String {
            crate::conf::expand_doris_home(&path, &home)
        },
    );
    // unique_suffixes(paths): for each path the shortest trailing run of
    // path segments that tells it apart from the others, joined with `-`
    // (`/data/a/storage`, `/data/b/storage` → `a-storage`, `b-storage`).
    engine.register_fn("unique_suffixes", |paths: Array| -> Array {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        unique_suffixes(&paths)
            .into_iter()
            .map(Dynamic::from)
            .collect()
    });
    // merge(a, b): a new map with b's entries over a's (one level).
    engine.register_fn("merge", |a: Map, b: Map| -> Map {
        let mut out = a;
        out.extend(b);
        out
    });
    // merge(a, ()): lets policies merge an optional user map without a check.
    engine.register_fn("merge", |a: Map, _b: ()| -> Map { a });
    // or_default(value, default): `default` when value is () (absent).
    engine.register_fn(
        "or_default",
        |value: Dynamic, default: Dynamic| {
            if value.is_unit() { default } else { value }
        },
    );
    // is_absent(value): true for () and for empty strings, arrays and maps.
    engine.register_fn("is_absent", |value: &mut Dynamic| -> bool {
        is_absent(value)
    });
    // json_value(text): what JSON text holds (null is ()), or () when the
    // text is not JSON: configuration values such as be.conf
    // file_cache_path are JSON, and a policy must be able to refuse a bad
    // one on its setting rather than fail.
    engine.register_fn("json_value", |text: ImmutableString| -> Dynamic {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| rhai::serde::to_dynamic(v).ok())
            .unwrap_or(Dynamic::UNIT)
    });
    // dns_label(text): lower-case, `_` and `.` to `-`, safe as an object name part.
    engine.register_fn("dns_label", |text: ImmutableString| -> String {
        text.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    });
}

fn is_absent(value: &Dynamic) -> bool {
    if value.is_unit() {
        return true;
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return s.is_empty();
    }
    if let Some(a) = value.read_lock::<Array>() {
        return a.is_empty();
    }
    if let Some(m) = value.read_lock::<Map>() {
        return m.is_empty();
    }
    false
}

/// See the `unique_suffixes` helper.
pub fn unique_suffixes(paths: &[String]) -> Vec<String> {
    let split: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| p.split('/').filter(|s| !s.is_empty()).collect())
        .collect();
    split
        .iter()
        .enumerate()
        .map(|(i, segs)| {
            for take in 1..=segs.len() {
                let tail = &segs[segs.len() - take..];
                let clash = split.iter().enumerate().any(|(j, other)| {
                    j != i && other.len() >= take && &other[other.len() - take..] == tail
                });
                if !clash {
                    return dns_join(tail);
                }
            }
            dns_join(segs)
        })
        .collect()
}

fn dns_join(segs: &[&str]) -> String {
    segs.iter()
        .map(|s| {
            s.to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(script: &str) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        engine().eval::<Dynamic>(script)
    }

    #[test]
    fn infinite_loop_is_stopped() {
        let err = eval("loop { }").unwrap_err();
        assert!(matches!(
            *err,
            rhai::EvalAltResult::ErrorTooManyOperations(_)
        ));
    }

    #[test]
    fn huge_allocation_is_stopped() {
        let err = eval(r#"let s = "x"; loop { s += s; }"#).unwrap_err();
        assert!(
            matches!(*err, rhai::EvalAltResult::ErrorDataTooLarge(..)),
            "{err}"
        );
        let err = eval("let a = []; loop { a.push(1); }").unwrap_err();
        assert!(
            matches!(*err, rhai::EvalAltResult::ErrorDataTooLarge(..)),
            "{err}"
        );
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let err = eval("fn f(x) { f(x + 1) } f(0)").unwrap_err();
        assert!(
            err.to_string().contains("Stack overflow")
                || matches!(
                    *err.unwrap_inner(),
                    rhai::EvalAltResult::ErrorStackOverflow(_)
                ),
            "{err}"
        );
    }

    #[test]
    fn no_import_no_eval_no_undeclared_variables() {
        assert!(eval(r#"import "x" as y; 1"#).is_err());
        assert!(eval(r#"eval("1")"#).is_err());
        assert!(eval("undeclared + 1").is_err());
    }

    #[test]
    fn conf_helpers() {
        let v = eval(
            r#"let c = #{ http_port: "8031", enable_fqdn_mode: "TRUE" };
               [conf_int(c, "HTTP_PORT", 8030), conf_int(c, "query_port", 9030),
                conf_bool(c, "enable_fqdn_mode", false), conf_get(c, "x", "d")]"#,
        )
        .unwrap();
        assert_eq!(v.to_string(), r#"[8031, 9030, true, "d"]"#);
    }

    #[test]
    fn suffixes_tell_paths_apart() {
        let paths = ["/opt/be/storage", "/data1/storage", "/data2/x/storage"].map(String::from);
        assert_eq!(
            unique_suffixes(&paths),
            ["be-storage", "data1-storage", "x-storage"]
        );
        assert_eq!(unique_suffixes(&["/opt/be/storage".into()]), ["storage"]);
    }
}
