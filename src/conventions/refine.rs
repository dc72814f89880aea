//! Refinements: a convention file that takes what the layer below it
//! produced and changes it, instead of replacing that file whole.
//!
//! A policy function defined with two parameters, `fn shape(ctx, below)`,
//! refines: `below` is what the same function of the layer below returned
//! for the same ctx. A template that reads `below` refines: for a manifest
//! template (`*.yaml.j2`) `below` is the list of objects the layer below
//! rendered, for a configuration template its text. Either is told which
//! file is below it (`ctx.layer` / `layer`: `#{ file, below }`).
//!
//! A refinement edits `below` in plain Rhai or Jinja, or through the path
//! helpers here, which name what they did not find:
//!
//! - `below.patch(path, value)`: merges `value` into what `path` leads to
//!   (maps merged key by key, arrays appended to, anything else replaced);
//!   a missing last step is created.
//! - `below.put(path, value)`: replaces what `path` leads to.
//! - `below.at(path)`: what `path` leads to.
//!
//! A path is dot-separated keys and `[i]` indexes or `[key=value]`
//! selectors, as in `objects[kind=StatefulSet].spec.template.spec`. Every
//! step but the last must exist: a refinement whose target moved or
//! vanished in the layer below fails, naming its own place and the file
//! below. The same helpers are Jinja filters (`obj | patch(path, value)`).

use std::cell::RefCell;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

thread_local! {
    /// The file whose result the refinement running on this thread
    /// receives as `below`, for the helpers' errors.
    static BELOW: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (a refinement's call) with `below_origin` as the file below.
pub fn with_below<T>(below_origin: &str, f: impl FnOnce() -> T) -> T {
    BELOW.with(|b| b.borrow_mut().push(below_origin.to_string()));
    let out = f();
    BELOW.with(|b| b.borrow_mut().pop());
    out
}

fn below_origin() -> String {
    BELOW
        .with(|b| b.borrow().last().cloned())
        .unwrap_or_else(|| "the layer below".to_string())
}

/// The name a refinement reads what the layer below produced by.
pub const BELOW_VARIABLE: &str = "below";

/// The objects a manifest template rendered, for the template above it:
/// each YAML document (`---` between them), empty ones left out.
pub fn documents(text: &str) -> Result<minijinja::Value, String> {
    let mut out = Vec::new();
    for (i, (_, doc)) in super::split_documents(text).into_iter().enumerate() {
        let value: serde_json::Value = serde_norway::from_str(doc)
            .map_err(|e| format!("rendered document {} is not YAML: {e}", i + 1))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(minijinja::Value::from(minijinja::value::Serde(&out)))
}

/// What a refinement of `function` receives as `below`: a result that may
/// come in two shapes comes in its fuller one (fn host_init's array of
/// init containers as `#{ init_containers, sysctls }`).
pub fn full_shape(function: &str, below: Dynamic) -> Dynamic {
    if function == "host_init" && below.is_array() {
        let mut map = Map::new();
        map.insert("init_containers".into(), below);
        map.insert("sysctls".into(), Dynamic::from_array(Vec::new()));
        return map.into();
    }
    below
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
    Select(String, String),
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    if rest.is_empty() {
        return Ok(steps);
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after
                .find(']')
                .ok_or_else(|| format!("path {path:?}: a `[` without `]`"))?;
            let inner = after[..end].trim();
            let inner = inner.trim_matches('"');
            steps.push(match inner.split_once('=') {
                Some((k, v)) => Step::Select(k.trim().to_string(), v.trim().to_string()),
                None => match inner.parse::<i64>() {
                    Ok(i) => Step::Index(i),
                    Err(_) if after[..end].trim().starts_with('"') => Step::Key(inner.to_string()),
                    Err(_) => {
                        return Err(format!(
                            "path {path:?}: [{inner}] is neither an index nor key=value"
                        ));
                    }
                },
            });
            rest = &after[end + 1..];
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            let key = &rest_key[..end];
            if key.is_empty() {
                return Err(format!("path {path:?}: an empty step"));
            }
            steps.push(Step::Key(key.to_string()));
            rest = &rest_key[end..];
        }
    }
    Ok(steps)
}

fn describe(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Select(k, v) => out.push_str(&format!("[{k}={v}]")),
        }
    }
    out
}

fn type_of(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "()"
    } else if value.is_map() {
        "a map"
    } else if value.is_array() {
        "an array"
    } else if value.is_string() {
        "a string"
    } else {
        "a scalar"
    }
}

/// Applies `act` to what `steps` lead to in `value`; `create_last` makes a
/// missing last key (as `()`).
fn walk<R>(
    value: &mut Dynamic,
    steps: &[Step],
    done: usize,
    all: &[Step],
    create_last: bool,
    act: &mut dyn FnMut(&mut Dynamic) -> R,
) -> Result<R, String> {
    let Some(step) = steps.first() else {
        return Ok(act(value));
    };
    let here = || match done {
        0 => "below".to_string(),
        n => format!("below.{}", describe(&all[..n])),
    };
    let last = steps.len() == 1;
    let kind = type_of(value);
    let rest = &steps[1..];
    match step {
        Step::Key(key) => {
            let Ok(mut map) = value.as_map_mut() else {
                return Err(format!("{} is {kind}, not a map with {key}", here()));
            };
            if !map.contains_key(key.as_str()) {
                if last && create_last {
                    map.insert(key.as_str().into(), Dynamic::UNIT);
                } else {
                    return Err(format!("{} has no {key}", here()));
                }
            }
            let child = map.get_mut(key.as_str()).expect("present");
            walk(child, rest, done + 1, all, create_last, act)
        }
        Step::Index(i) => {
            let Ok(mut array) = value.as_array_mut() else {
                return Err(format!("{} is {kind}, not an array", here()));
            };
            let len = array.len() as i64;
            let at = if *i < 0 { len + i } else { *i };
            if at < 0 || at >= len {
                return Err(format!("{} has {len} items, no [{i}]", here()));
            }
            walk(
                &mut array[at as usize],
                rest,
                done + 1,
                all,
                create_last,
                act,
            )
        }
        Step::Select(key, want) => {
            let Ok(mut array) = value.as_array_mut() else {
                return Err(format!("{} is {kind}, not an array", here()));
            };
            let found = array.iter().position(|item| {
                item.read_lock::<Map>()
                    .and_then(|m| m.get(key.as_str()).map(|v| v.to_string() == *want))
                    .unwrap_or(false)
            });
            match found {
                Some(i) => walk(&mut array[i], rest, done + 1, all, create_last, act),
                None => Err(format!("{} has no item with {key} = {want:?}", here())),
            }
        }
    }
}

/// Merges `patch` into `into`: maps key by key, arrays appended to, other
/// values replaced.
pub fn merge_into(into: &mut Dynamic, patch: Dynamic) {
    if into.is_map() && patch.is_map() {
        let patch = patch.cast::<Map>();
        let mut target = into.as_map_mut().expect("a map");
        for (k, v) in patch {
            match target.get_mut(&k) {
                Some(existing) => merge_into(existing, v),
                None => {
                    target.insert(k, v);
                }
            }
        }
    } else if into.is_array() && patch.is_array() {
        let patch = patch.cast::<rhai::Array>();
        into.as_array_mut().expect("an array").extend(patch);
    } else {
        *into = patch;
    }
}

fn located(path: &str, message: String) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        format!(
            "{message} (path {path:?} into what {} returned: its target moved or vanished)",
            below_origin()
        )
        .into(),
        rhai::Position::NONE,
    )
    .into()
}

/// `patch`, `put` and `at` on any value.
pub fn register(engine: &mut Engine) {
    for (name, merge) in [("patch", true), ("put", false)] {
        engine.register_fn(
            name,
            move |target: &mut Dynamic,
                  path: ImmutableString,
                  value: Dynamic|
                  -> Result<(), Box<EvalAltResult>> {
                let steps = parse_path(&path).map_err(|m| located(&path, m))?;
                let mut value = Some(value);
                walk(target, &steps, 0, &steps, true, &mut |at| {
                    let value = value.take().expect("once");
                    if merge {
                        merge_into(at, value);
                    } else {
                        *at = value;
                    }
                })
                .map_err(|m| located(&path, m))
            },
        );
    }
    engine.register_fn(
        "at",
        |target: &mut Dynamic, path: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let steps = parse_path(&path).map_err(|m| located(&path, m))?;
            walk(target, &steps, 0, &steps, false, &mut |at| at.clone())
                .map_err(|m| located(&path, m))
        },
    );
}

/// The Jinja filters `patch(path, value)` and `put(path, value)`: a copy
/// of the object changed.
pub fn register_filters(env: &mut minijinja::Environment<'static>) {
    fn edit(
        value: minijinja::Value,
        path: &str,
        with: minijinja::Value,
        merge: bool,
    ) -> Result<minijinja::Value, minijinja::Error> {
        let fail = |m: String| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("{m} (path {path:?}: its target moved or vanished)"),
            )
        };
        let mut target: Dynamic =
            rhai::serde::to_dynamic(&value).map_err(|e| fail(e.to_string()))?;
        let patch: Dynamic = rhai::serde::to_dynamic(&with).map_err(|e| fail(e.to_string()))?;
        let steps = parse_path(path).map_err(fail)?;
        let mut patch = Some(patch);
        walk(&mut target, &steps, 0, &steps, true, &mut |at| {
            let patch = patch.take().expect("once");
            if merge {
                merge_into(at, patch);
            } else {
                *at = patch;
            }
        })
        .map_err(|m| fail(m.replacen("below", "the object", 1)))?;
        let json: serde_json::Value =
            rhai::serde::from_dynamic(&target).map_err(|e| fail(e.to_string()))?;
        Ok(minijinja::Value::from(minijinja::value::Serde(&json)))
    }
    env.add_filter(
        "patch",
        |value: minijinja::Value, path: String, with: minijinja::Value| {
            edit(value, &path, with, true)
        },
    );
    env.add_filter(
        "put",
        |value: minijinja::Value, path: String, with: minijinja::Value| {
            edit(value, &path, with, false)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(script: &str) -> Result<Dynamic, String> {
        let mut engine = Engine::new();
        register(&mut engine);
        engine.eval::<Dynamic>(script).map_err(|e| e.to_string())
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("objects[kind=StatefulSet].spec[0]").unwrap(),
            vec![
                Step::Key("objects".into()),
                Step::Select("kind".into(), "StatefulSet".into()),
                Step::Key("spec".into()),
                Step::Index(0),
            ]
        );
        assert_eq!(
            parse_path("labels[\"app.kubernetes.io/name\"]").unwrap(),
            vec![
                Step::Key("labels".into()),
                Step::Key("app.kubernetes.io/name".into())
            ]
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x").is_err());
    }

    #[test]
    fn patch_merges_maps_and_appends_arrays() {
        let out = eval(
            r#"let b = #{ objects: [#{ kind: "Service" }, #{ kind: "StatefulSet", spec: #{ a: 1, t: [1] } }] };
               b.patch("objects[kind=StatefulSet].spec", #{ b: 2, t: [2] });
               b.patch("objects[kind=StatefulSet].spec.new", #{ c: 3 });
               b.objects[1]"#,
        )
        .unwrap();
        let json: serde_json::Value = rhai::serde::from_dynamic(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "StatefulSet", "spec": {"a": 1, "b": 2, "t": [1, 2], "new": {"c": 3}}})
        );
    }

    #[test]
    fn a_vanished_target_is_named() {
        let err = eval(
            r#"let b = #{ objects: [#{ kind: "Service" }] };
               b.patch("objects[kind=StatefulSet].spec", #{ b: 2 }); b"#,
        )
        .unwrap_err();
        assert!(
            err.contains("below.objects has no item with kind = \"StatefulSet\""),
            "{err}"
        );
        let err = eval(r#"let b = #{ spec: #{} }; b.put("spec.template.spec", 1); b"#).unwrap_err();
        assert!(err.contains("below.spec has no template"), "{err}");
        let err = eval(r#"let b = [1]; b.at("[3]")"#).unwrap_err();
        assert!(err.contains("below has 1 items, no [3]"), "{err}");
    }

    #[test]
    fn the_jinja_filter_changes_a_copy() {
        let mut env = minijinja::Environment::new();
        register_filters(&mut env);
        let out = env
            .render_str(
                r#"{{ obj | patch("metadata.labels", {"team": "data"}) | tojson }}"#,
                minijinja::context! { obj => minijinja::value::Serde(serde_json::json!({"metadata": {"labels": {"a": "b"}}})) },
            )
            .unwrap();
        assert_eq!(
            out,
            r#"{"metadata": {"labels": {"a": "b", "team": "data"}}}"#
        );
        let err = env
            .render_str(
                r#"{{ obj | patch("spec.x.y", 1) }}"#,
                minijinja::context! { obj => minijinja::value::Serde(serde_json::json!({"spec": {}})) },
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("the object.spec has no x"),
            "{err:#}"
        );
    }
}
