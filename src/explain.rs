//! `render --explain`: which layer of the conventions, and which file and
//! line in it, last set each field of each object.
//!
//! The clusters are planned once with the bottom layer alone, then with
//! each layer above added in turn; a field belongs to the last layer whose
//! addition changed it. Within that layer, the file is the one of its files
//! that mentions the field (its key, or its value) and the line the first
//! that does. A part of an object that one layer made whole is shown once,
//! at its root.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::conventions::{ConventionBundle, ConventionSources, SourceFile};
use crate::render::RenderInput;

/// Objects by `Kind name`, as one layer stack made them.
type Made = BTreeMap<String, Value>;

fn plan_all(bundle: &ConventionBundle, input: &RenderInput) -> Result<Made, String> {
    let mut out = Made::new();
    for cluster in &input.clusters {
        let planned = crate::render::plan_cluster(bundle, input, cluster.as_ref())?;
        out.extend(crate::render::index(planned.objects));
    }
    Ok(out)
}

/// Who set a field: the index of its layer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Setter(usize);

/// The layer that last changed `path` of `object` (the final value), given
/// what each stack of layers made of it.
fn setter(stacks: &[Option<&Value>], path: &[PathStep]) -> Setter {
    let at = |i: usize| stacks[i].and_then(|v| lookup(v, path));
    for i in (1..stacks.len()).rev() {
        if at(i) != at(i - 1) {
            return Setter(i);
        }
    }
    Setter(0)
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn lookup<'a>(value: &'a Value, path: &[PathStep]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| match step {
        PathStep::Key(k) => v.get(k),
        PathStep::Index(i) => v.get(i),
    })
}

fn show(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) if k.contains('.') || k.contains('/') => {
                out.push_str(&format!("[{k:?}]"));
            }
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every leaf of `value` under `path`, with its setter; collapsed to the
/// subtree's root where one layer set all of it.
fn attribute(
    stacks: &[Option<&Value>],
    value: &Value,
    path: &mut Vec<PathStep>,
    out: &mut Vec<(String, Setter, Value)>,
) -> Option<Setter> {
    let children: Vec<(PathStep, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (PathStep::Key(k.clone()), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (PathStep::Index(i), v))
            .collect(),
        Value::String(text) if text.contains('\n') => {
            // A file: the lines the setting layer changed, each by its key.
            let s = setter(stacks, path);
            let before = match s {
                Setter(0) => None,
                Setter(i) => stacks[i - 1].and_then(|v| lookup(v, path)),
            };
            let before: Vec<&str> = before
                .and_then(Value::as_str)
                .unwrap_or("")
                .lines()
                .collect();
            let changed: Vec<&str> = text.lines().filter(|l| !before.contains(l)).collect();
            if s == Setter(0) || changed.is_empty() {
                out.push((show(path), s, value.clone()));
            } else {
                for line in changed {
                    let key = line.split('=').next().unwrap_or(line).trim();
                    out.push((format!("{} {key}", show(path)), s, Value::Null));
                }
            }
            // Never folded into its parent: its lines are shown.
            return None;
        }
        _ => {
            let s = setter(stacks, path);
            out.push((show(path), s, value.clone()));
            return Some(s);
        }
    };
    let mark = out.len();
    let mut uniform: Option<Option<Setter>> = None;
    for (step, child) in children {
        path.push(step);
        let s = attribute(stacks, child, path, out);
        path.pop();
        uniform = match uniform {
            None => Some(s),
            Some(prev) if prev == s => Some(prev),
            Some(_) => Some(None),
        };
    }
    // An empty map or list is a leaf of its own.
    let whole = uniform.unwrap_or_else(|| Some(setter(stacks, path)));
    if let Some(s) = whole {
        out.truncate(mark);
        out.push((show(path), s, value.clone()));
    }
    whole
}

/// Where in `files` (one layer's) the field `path` with `value` is set:
/// `file:line` of the first line naming its key and value, else its key,
/// else its value; the file alone when none does.
fn place(files: &[&SourceFile], path: &str, value: &Value) -> String {
    let key = path
        .rsplit(['.', '[', ' '])
        .find(|k| !k.trim_end_matches(']').chars().all(|c| c.is_ascii_digit()))
        .unwrap_or(path)
        .trim_end_matches(']')
        .trim_matches('"')
        .to_string();
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null | Value::Object(_) | Value::Array(_) => String::new(),
        other => other.to_string(),
    };
    let find = |pred: &dyn Fn(&str) -> bool| {
        files.iter().find_map(|f| {
            f.content
                .lines()
                .position(pred)
                .map(|i| format!("{}:{}", f.origin, i + 1))
        })
    };
    let has_key = |l: &str| !key.is_empty() && l.contains(key.as_str());
    let has_value = |l: &str| !text.is_empty() && l.contains(text.as_str());
    let sets_key = |l: &str| {
        has_key(l)
            && [" =", ":"]
                .iter()
                .any(|op| l.contains(&format!("{key}{op}")) && !l.contains("=="))
    };
    find(&|l| has_key(l) && has_value(l))
        .or_else(|| find(&sets_key))
        .or_else(|| find(&has_key))
        .or_else(|| find(&has_value))
        .unwrap_or_else(|| {
            files
                .iter()
                .map(|f| f.origin.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
}

/// The explanation of every object `sources` makes of `input`.
pub fn explain(sources: &ConventionSources, input: &RenderInput) -> Result<String, String> {
    let layers = sources.layer_names().to_vec();
    let mut made = Vec::with_capacity(layers.len());
    for n in 1..=layers.len() {
        let bundle = ConventionBundle::compile(sources.up_to(n)).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        made.push(plan_all(&bundle, input)?);
    }
    // Each layer's own files, for places.
    let files_of = |layer: &str| -> Vec<&SourceFile> {
        sources
            .files
            .keys()
            .flat_map(|name| sources.layers(name))
            .filter(|f| f.layer() == layer)
            .collect()
    };
    let last = made.last().cloned().unwrap_or_default();
    let mut out = format!("# layers, bottom first: {}\n", layers.join(" < "));
    for (key, object) in &last {
        let stacks: Vec<Option<&Value>> = made.iter().map(|m| m.get(key)).collect();
        let mut fields = Vec::new();
        attribute(&stacks, object, &mut Vec::new(), &mut fields);
        out.push_str(&format!("{key}\n"));
        let mut rest = false;
        for (path, Setter(i), value) in fields {
            if i == 0 {
                rest = true;
                continue;
            }
            let shown = if path.is_empty() { "(all)" } else { &path };
            let by = place(&files_of(&layers[i]), &path, &value);
            out.push_str(&format!("  {shown}  <- {by}\n"));
        }
        if rest {
            out.push_str(&format!("  (the rest)  <- {}\n", layers[0]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_one_layer_made_is_shown_once() {
        let below = serde_json::json!({"spec": {"a": 1, "b": {"c": 2}}});
        let above = serde_json::json!({"spec": {"a": 1, "b": {"c": 2, "d": 3}}, "x": [1]});
        let stacks = [Some(&below), Some(&above)];
        let mut out = Vec::new();
        attribute(&stacks, &above, &mut Vec::new(), &mut out);
        let shown: Vec<(String, usize)> = out.into_iter().map(|(p, s, _)| (p, s.0)).collect();
        assert_eq!(
            shown,
            vec![
                ("spec.a".to_string(), 0),
                ("spec.b.c".to_string(), 0),
                ("spec.b.d".to_string(), 1),
                ("x".to_string(), 1),
            ]
        );
    }

    #[test]
    fn a_place_is_the_line_naming_key_and_value() {
        let file = SourceFile {
            origin: "cm/shape.rhai".into(),
            content: "fn shape(ctx, below) {\n  // team\n  below.x = #{ team: \"data\" };\n}\n"
                .into(),
        };
        assert_eq!(
            place(&[&file], "spec.labels.team", &Value::from("data")),
            "cm/shape.rhai:3"
        );
        assert_eq!(place(&[&file], "nothing", &Value::from(7)), "cm/shape.rhai");
    }
}
