//! The reference page of a CRD's fields, generated from the
//! CustomResourceDefinition the operator serves (`doris-operator crd`):
//! every field of `spec` and `status` with its type, its description, its
//! default and bounds, and what the CRD's rules refuse.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// The page for the CRD `crd` (as JSON).
pub fn page(crd: &Value) -> String {
    let spec = &crd["spec"];
    let kind = spec["names"]["kind"].as_str().unwrap();
    let version = &spec["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut out = String::new();
    writeln!(
        out,
        "<!-- Generated from the CustomResourceDefinition (src/crd/). Edit the code, then:\n     \
         UPDATE_REFERENCE_DOCS=1 cargo test --test book -->\n"
    )
    .unwrap();
    writeln!(out, "# {kind} fields\n").unwrap();
    let short: Vec<&str> = spec["names"]["shortNames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    writeln!(
        out,
        "{} `{}/{}`, kind `{kind}`, short name `{}`, {}. The CRD YAML is in `crds/`; \
         `doris-operator crd` prints it, and `kubectl explain {}.spec` shows the same \
         descriptions.\n",
        text(schema["description"].as_str().unwrap_or_default()),
        spec["group"].as_str().unwrap(),
        version["name"].as_str().unwrap(),
        short.join("`, `"),
        match spec["scope"].as_str() {
            Some("Namespaced") => "namespaced",
            _ => "cluster-scoped",
        },
        spec["names"]["singular"].as_str().unwrap(),
    )
    .unwrap();
    columns(&mut out, version);
    let refused = rules(schema);
    if !refused.is_empty() {
        writeln!(out, "The cluster as a whole is refused when {refused}\n").unwrap();
    }
    let mut seen = BTreeMap::new();
    for top in ["spec", "status"] {
        section(&mut out, top, &schema["properties"][top], &mut seen);
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The columns `kubectl get` shows.
fn columns(out: &mut String, version: &Value) {
    let Some(columns) = version["additionalPrinterColumns"].as_array() else {
        return;
    };
    writeln!(
        out,
        "## Columns\n\n`kubectl get` shows these columns; `-o wide` adds those marked wide.\n\n\
         | column | value | what |\n| --- | --- | --- |"
    )
    .unwrap();
    for c in columns {
        let wide = if c["priority"].as_i64().unwrap_or(0) > 0 {
            " (wide)"
        } else {
            ""
        };
        writeln!(
            out,
            "| {}{wide} | `{}` | {} |",
            c["name"].as_str().unwrap(),
            c["jsonPath"].as_str().unwrap(),
            text(c["description"].as_str().unwrap_or_default())
        )
        .unwrap();
    }
    out.push('\n');
}

/// One object's section: a table of its fields, then the sections of the
/// objects among them. An object whose schema is the same as one already
/// shown links to it instead.
fn section(out: &mut String, path: &str, schema: &Value, seen: &mut BTreeMap<String, String>) {
    let heading = if path.matches('.').count() == 0 {
        "##"
    } else {
        "###"
    };
    writeln!(out, "{heading} `{path}`\n").unwrap();
    if let Some(description) = schema["description"].as_str() {
        writeln!(out, "{}\n", text(description)).unwrap();
    }
    let refused = rules(schema);
    if !refused.is_empty() {
        writeln!(out, "Refused when {refused}\n").unwrap();
    }
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    writeln!(out, "| field | type | description |\n| --- | --- | --- |").unwrap();
    let mut nested = Vec::new();
    for (name, field) in properties {
        let child = format!("{path}.{name}");
        let (object, object_path) = match field["type"].as_str() {
            Some("array") if has_fields(&field["items"]) => {
                (Some(&field["items"]), format!("{child}[]"))
            }
            Some("object") if has_fields(field) => (Some(field), child.clone()),
            _ => (None, String::new()),
        };
        let mut type_ = type_name(field);
        if let Some(object) = object {
            let key = serde_json::to_string(&strip_descriptions(object)).unwrap();
            let target = match seen.get(&key) {
                Some(earlier) => earlier.clone(),
                None => {
                    seen.insert(key, object_path.clone());
                    nested.push((object_path.clone(), object));
                    object_path
                }
            };
            type_ = format!("[{type_}](#{})", anchor(&target));
        }
        let mut notes = notes(field);
        if required.contains(&name.as_str()) {
            notes.insert(0, "Required.".to_string());
        }
        let refused = rules(field);
        if !refused.is_empty() {
            notes.push(format!("Refused when {refused}"));
        }
        let description = text(field["description"].as_str().unwrap_or_default());
        let cell = [description]
            .into_iter()
            .chain(notes)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(out, "| `{name}` | {type_} | {cell} |").unwrap();
    }
    out.push('\n');
    for (path, object) in nested {
        section(out, &path, object, seen);
    }
}

/// Whether `schema` is an object with fields of its own (not one of the
/// Kubernetes types the CRD keeps as free-form objects).
fn has_fields(schema: &Value) -> bool {
    schema["properties"]
        .as_object()
        .is_some_and(|p| !p.is_empty())
}

/// A schema without its descriptions, to tell two objects of the same
/// fields apart from how they are described where they are used.
fn strip_descriptions(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "description")
                .map(|(k, v)| (k.clone(), strip_descriptions(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_descriptions).collect()),
        other => other.clone(),
    }
}

fn type_name(schema: &Value) -> String {
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("array"), _) => format!("[]{}", type_name(&schema["items"])),
        (Some("object"), _) if schema["additionalProperties"].is_object() => {
            format!("map[string]{}", type_name(&schema["additionalProperties"]))
        }
        (Some(t), Some(f)) => format!("{t} ({f})"),
        (Some(t), None) => t.to_string(),
        (None, _) if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) => {
            "integer or string".to_string()
        }
        (None, _) => "any".to_string(),
    }
}

/// The default, the enumeration and the bounds of a field, as sentences.
fn notes(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(values) = schema["enum"].as_array() {
        // `null` only says the field may be left out.
        let values: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("`{}`", plain(v)))
            .collect();
        out.push(format!("One of {}.", values.join(", ")));
    }
    if !schema["default"].is_null() {
        out.push(format!("Default `{}`.", plain(&schema["default"])));
    }
    for (key, sentence) in [
        ("minimum", "At least {}."),
        ("maximum", "At most {}."),
        ("minLength", "At least {} characters."),
        ("maxLength", "At most {} characters."),
        ("minItems", "At least {} items."),
        ("maxItems", "At most {} items."),
        ("maxProperties", "At most {} entries."),
    ] {
        if let Some(n) = schema[key].as_f64() {
            out.push(sentence.replace("{}", &n.to_string()));
        }
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        out.push(format!("Matches `{pattern}`."));
    }
    out
}

/// What the CEL rules of `schema` refuse, as one sentence of their messages.
fn rules(schema: &Value) -> String {
    let Some(rules) = schema["x-kubernetes-validations"].as_array() else {
        return String::new();
    };
    let messages: Vec<String> = rules
        .iter()
        .filter_map(|r| r["message"].as_str())
        .map(|m| format!("\u{201c}{}\u{201d}", text(m)))
        .collect();
    if messages.is_empty() {
        String::new()
    } else {
        format!("{}.", messages.join("; "))
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Description text for one table cell: one line, `|` escaped, and `<` and
/// `>` outside code spans written as entities so that the book does not
/// take `<cluster>` for an HTML tag.
fn text(description: &str) -> String {
    let one_line = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let mut in_code = false;
    for c in one_line.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The anchor mdBook gives the heading of `path`.
fn anchor(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[test]
fn descriptions_are_one_cell() {
    assert_eq!(
        text("The StatefulSet <cluster>-fe,\n`<x>` a | b"),
        "The StatefulSet &lt;cluster&gt;-fe, `<x>` a \\| b"
    );
    assert_eq!(anchor("spec.computeGroups[]"), "speccomputegroups");
}
