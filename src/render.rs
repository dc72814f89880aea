//! What `doris-operator render` does, as a library: read DorisCluster and
//! ConfigMap documents from YAML, plan each cluster with a bundle, and print
//! the objects (or the restart order) the operator would use.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::conventions::{ConventionBundle, ConventionSources, SourceError};
use crate::crd::DorisCluster;
use crate::plan::{self, PlanInput, restart};

/// The documents of an input file.
#[derive(Debug, Default)]
pub struct RenderInput {
    pub clusters: Vec<DorisCluster>,
    /// ConfigMap data by name, for the clusters' configuration.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Loads the conventions: the embedded defaults, with `dir` laid over them.
pub fn load_bundle(dir: Option<&Path>) -> Result<ConventionBundle, Vec<SourceError>> {
    let mut sources = ConventionSources::embedded();
    if let Some(dir) = dir {
        sources = sources.overlay_dir(dir).map_err(|e| vec![e])?;
    }
    ConventionBundle::compile(sources)
}

/// Reads DorisCluster and ConfigMap documents from YAML text; other kinds
/// are ignored. Errors name the file, the document and the field.
pub fn read_input(file: &str, text: &str) -> Result<RenderInput, String> {
    let mut input = RenderInput::default();
    for (index, (line, doc)) in documents(text).into_iter().enumerate() {
        let at = format!("{file}: document {} (line {line})", index + 1);
        let header: Value =
            serde_norway::from_str(doc).map_err(|e| format!("{at}: not valid YAML: {e}"))?;
        match header.get("kind").and_then(Value::as_str) {
            Some("DorisCluster") => {
                let cluster = crate::crd::parse_cluster(doc).map_err(|e| format!("{at}: {e}"))?;
                input.clusters.push(cluster);
            }
            Some("ConfigMap") => {
                let name = header["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let data: BTreeMap<String, String> = match header.get("data") {
                    None | Some(Value::Null) => BTreeMap::new(),
                    Some(d) => serde_json::from_value(d.clone())
                        .map_err(|e| format!("{at}: ConfigMap {name}: data: {e}"))?,
                };
                input.config_maps.insert(name, data);
            }
            _ => {}
        }
    }
    if input.clusters.is_empty() {
        return Err(format!("{file}: no DorisCluster document found"));
    }
    Ok(input)
}

/// Renders every cluster of `input` as the operator would apply it.
/// Returns the text and a note for each referenced ConfigMap not given.
pub fn render(
    bundle: &ConventionBundle,
    input: &RenderInput,
    format: Format,
) -> Result<(String, Vec<String>), String> {
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    for cluster in &input.clusters {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let planned = plan::plan(
            bundle,
            PlanInput {
                cluster,
                config_maps: &input.config_maps,
            },
        )
        .map_err(|e| format!("DorisCluster {name}: {e}"))?;
        for cm in &planned.missing_config_maps {
            notes.push(format!(
                "DorisCluster {name}: ConfigMap {cm} was not in the input; its configuration \
                 was rendered from convention defaults (add the ConfigMap to the file to see \
                 the real result)"
            ));
        }
        objects.extend(planned.objects);
    }
    Ok((write(&objects, format)?, notes))
}

/// The order a full restart of each cluster would follow.
pub fn render_restart_plan(
    bundle: &ConventionBundle,
    input: &RenderInput,
    format: Format,
) -> Result<String, String> {
    let mut plans = Vec::new();
    for cluster in &input.clusters {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let candidates = restart::full_restart_candidates(cluster);
        let steps = restart::plan_restart(bundle, cluster, "preview", &candidates)
            .map_err(|e| format!("DorisCluster {name}: {e}"))?;
        let steps: Vec<Value> = steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                v["step"] = (i + 1).into();
                v
            })
            .collect();
        plans.push(serde_json::json!({
            "cluster": name,
            "conventionsRevision": bundle.revision(),
            "restartOrder": steps,
        }));
    }
    write(&plans, format)
}

fn write(items: &[Value], format: Format) -> Result<String, String> {
    match format {
        Format::Json => {
            let list = if items.len() == 1 {
                items[0].clone()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
            };
            serde_json::to_string_pretty(&list)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        Format::Yaml => {
            let mut out = String::new();
            for item in items {
                out.push_str("---\n");
                out.push_str(&serde_norway::to_string(item).map_err(|e| e.to_string())?);
            }
            Ok(out)
        }
    }
}

/// Splits multi-document YAML on `---` lines; yields each non-blank
/// document with the line it starts on.
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1, 0);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}
