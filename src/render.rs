//! What `doris-operator render` does, as a library: read DorisCluster and
//! ConfigMap documents from YAML, plan each cluster with a bundle, and print
//! the objects (or the restart order) the operator would use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::conventions::{ConventionBundle, ConventionSources, SourceError};
use crate::plan::{self, PlanInput, restart};

/// The documents of an input file.
#[derive(Debug, Default)]
pub struct RenderInput {
    pub clusters: Vec<Cluster>,
    /// ConfigMap data by name, for the clusters' configuration.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// The keys of each Secret, by name (their values are not kept).
    pub secret_keys: BTreeMap<String, BTreeSet<String>>,
    /// The namespace's Pod Security level: from a Namespace document's
    /// label, or `render --pod-security`; privileged when neither says.
    pub pod_security: plan::PodSecurity,
    /// What is allowed but likely not meant (a cluster with no component),
    /// for stderr.
    pub warnings: Vec<String>,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Loads the conventions: the embedded defaults, with each of `layers`
/// laid over them in turn (see [`load_sources`]).
pub fn load_bundle<'a>(
    layers: impl IntoIterator<Item = &'a Path>,
) -> Result<ConventionBundle, Vec<SourceError>> {
    ConventionBundle::compile(load_sources(layers).map_err(|e| vec![e])?)
}

/// The embedded defaults with each of `layers` laid over them in turn: a
/// folder of convention files, or a YAML file of convention ConfigMaps
/// (labelled `doris.selectdb.com/conventions`), laid as the operator lays
/// them: the default set's in name order, then one named set's.
pub fn load_sources<'a>(
    layers: impl IntoIterator<Item = &'a Path>,
) -> Result<ConventionSources, SourceError> {
    let mut sources = ConventionSources::embedded();
    for layer in layers {
        sources = if layer.is_dir() {
            sources.overlay_dir(layer)?
        } else {
            let file = layer.display().to_string();
            let text = read_file(layer).map_err(|e| SourceError::new(&file, e))?;
            let config_maps =
                convention_config_maps(&text).map_err(|e| SourceError::new(&file, e))?;
            let sets: BTreeSet<&str> = config_maps
                .iter()
                .map(|c| c.set.as_str())
                .filter(|s| *s != crate::conventions::reload::DEFAULT_SET)
                .collect();
            if sets.len() > 1 {
                return Err(SourceError::new(
                    file,
                    format!(
                        "holds ConfigMaps of convention sets {}: a cluster uses one set \
                         (give each set's ConfigMaps in a file of its own)",
                        sets.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let set = sets
                .into_iter()
                .next()
                .unwrap_or(crate::conventions::reload::DEFAULT_SET)
                .to_string();
            crate::conventions::reload::set_sources(sources, &config_maps, &set)
        };
    }
    Ok(sources)
}

/// The convention ConfigMaps of a YAML file; other documents are left out,
/// and a file with none is refused.
fn convention_config_maps(
    text: &str,
) -> Result<Vec<crate::conventions::reload::ConfigMapLayer>, String> {
    let mut out = Vec::new();
    for (index, (line, doc)) in documents(text).into_iter().enumerate() {
        let value: Value = serde_norway::from_str(doc).map_err(|e| {
            format!(
                "document {} (line {line}) is not valid YAML: {e}",
                index + 1
            )
        })?;
        if value["kind"] != "ConfigMap" {
            continue;
        }
        let Some(set) = value["metadata"]["labels"][crate::conventions::reload::SET_KEY].as_str()
        else {
            continue;
        };
        let namespace = value["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        let files = value["data"]
            .as_object()
            .map(|data| {
                data.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(crate::conventions::reload::ConfigMapLayer {
            name: format!("{namespace}/{name}"),
            set: set.to_string(),
            files,
        });
    }
    if out.is_empty() {
        return Err(format!(
            "no ConfigMap labelled {} here: give a folder of convention files or a \
             YAML file of convention ConfigMaps",
            crate::conventions::reload::SET_KEY
        ));
    }
    Ok(out)
}

/// A file's text, or standard input's for `-`.
pub fn read_file(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

/// Reads DorisCluster, ConfigMap, Secret and Namespace documents from YAML
/// text (of a Secret only its key names, of a Namespace its Pod Security
/// level); other kinds are ignored. Errors name the file, the document and the field.
pub fn read_input(file: &str, text: &str) -> Result<RenderInput, String> {
    let mut input = RenderInput::default();
    // Where each cluster was read, by kind, namespace and name.
    let mut seen: BTreeMap<(&'static str, String, String), String> = BTreeMap::new();
    for (index, (line, doc)) in documents(text).into_iter().enumerate() {
        let at = format!("{file}: document {} (line {line})", index + 1);
        if let Err(deep) = crate::crd::check_depth(doc) {
            return Err(format!(
                "{file}:{}:{}: document {}: collections nested more than {} levels deep",
                line + deep.line - 1,
                deep.col,
                index + 1,
                crate::crd::MAX_DEPTH
            ));
        }
        let header: Value =
            serde_norway::from_str(doc).map_err(|e| format!("{at}: not valid YAML: {e}"))?;
        match header.get("kind").and_then(Value::as_str) {
            Some("DorisCluster") => {
                let cluster = crate::crd::parse_cluster(doc).map_err(|e| format!("{at}: {e}"))?;
                input.clusters.push(Cluster::Doris(Box::new(cluster)));
            }
            Some("DorisDisaggregatedCluster") => {
                let cluster = crate::crd::parse_disaggregated_cluster(doc)
                    .map_err(|e| format!("{at}: {e}"))?;
                input
                    .clusters
                    .push(Cluster::Disaggregated(Box::new(cluster)));
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
                // One in a namespace of its own is also found as
                // `<namespace>/<name>` (a cluster may name one elsewhere).
                if let Some(namespace) = header["metadata"]["namespace"].as_str() {
                    input
                        .config_maps
                        .insert(format!("{namespace}/{name}"), data.clone());
                }
                input.config_maps.insert(name, data);
            }
            Some("Secret") => {
                let name = header["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let mut keys = BTreeSet::new();
                for part in ["data", "stringData"] {
                    match header.get(part) {
                        None | Some(Value::Null) => {}
                        Some(Value::Object(map)) => keys.extend(map.keys().cloned()),
                        Some(_) => {
                            return Err(format!("{at}: Secret {name}: {part}: expected a map"));
                        }
                    }
                }
                input.secret_keys.insert(name, keys);
            }
            Some("Namespace") => {
                let labels: Option<BTreeMap<String, String>> =
                    match header["metadata"].get("labels") {
                        None | Some(Value::Null) => None,
                        Some(l) => Some(
                            serde_json::from_value(l.clone())
                                .map_err(|e| format!("{at}: Namespace: metadata.labels: {e}"))?,
                        ),
                    };
                let level = labels
                    .as_ref()
                    .and_then(|l| l.get(plan::PodSecurity::LABEL));
                if let Some(level) = level {
                    plan::PodSecurity::parse(level).map_err(|e| {
                        format!(
                            "{at}: Namespace: metadata.labels[{:?}]: {e}",
                            plan::PodSecurity::LABEL
                        )
                    })?;
                }
                input.pod_security = plan::PodSecurity::of_namespace(labels.as_ref());
            }
            _ => {}
        }
        if input.clusters.len() > seen.len()
            && let Some(cluster) = input.clusters.last()
        {
            let cluster = cluster.as_ref();
            // A cluster without a namespace is rendered into `default`.
            let namespace = Some(cluster.namespace())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into());
            let place = format!("document {} (line {line})", index + 1);
            let key = (cluster.kind(), namespace.clone(), cluster.name());
            if let Some(first) = seen.get(&key) {
                return Err(format!(
                    "{file}: {first} and {place} are both {} in namespace {namespace}: \
                     a cluster may be given once (the second would replace the first)",
                    cluster.describe()
                ));
            }
            if cluster.parts().is_empty() {
                input.warnings.push(format!(
                    "{file}: {place}: {} has no component (spec.feSpec, spec.beSpec, \
                     spec.cnSpec, spec.brokerSpec): nothing will be created",
                    cluster.describe()
                ));
            }
            seen.insert(key, place);
        }
    }
    if input.clusters.is_empty() {
        return Err(format!(
            "{file}: no DorisCluster or DorisDisaggregatedCluster document found"
        ));
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
        let cluster = cluster.as_ref();
        let name = cluster.describe();
        let planned = plan_cluster(bundle, input, cluster)?;
        for cm in &planned.missing_config_maps {
            notes.push(format!(
                "{name}: ConfigMap {cm} was not in the input; its configuration \
                 was rendered from convention defaults (add the ConfigMap to the file to see \
                 the real result)"
            ));
        }
        for secret in &planned.unchecked_secrets {
            notes.push(format!(
                "{name}: Secret {secret} was not in the input; it shares a \
                 directory with other files, and whether a file name of it collides with \
                 theirs was not checked (add the Secret to the file to check it)"
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
        let cluster = cluster.as_ref();
        let name = cluster.name();
        let candidates = restart::full_restart_candidates(cluster);
        let steps = restart::plan_restart(bundle, cluster, "preview", &candidates)
            .map_err(|e| format!("{}: {e}", cluster.describe()))?;
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

/// What changing the conventions from `old` to `new` would change, per
/// object, for every cluster of `input`: objects added, removed and changed
/// (as a unified diff of their YAML), and which StatefulSets' pods would
/// restart because their pod template changes.
pub fn diff(
    old: &ConventionBundle,
    new: &ConventionBundle,
    input: &RenderInput,
) -> Result<String, String> {
    let mut out = format!("# conventions {} -> {}\n", old.revision(), new.revision());
    for cluster in &input.clusters {
        let cluster = cluster.as_ref();
        let name = cluster.describe();
        let plan_with = |bundle: &ConventionBundle| {
            plan_cluster(bundle, input, cluster).map(|p| index(p.objects))
        };
        let (before, after) = (plan_with(old)?, plan_with(new)?);
        out.push_str(&format!("# {name}\n"));
        let mut unchanged = 0;
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            match (before.get(key), after.get(key)) {
                (Some(a), Some(b)) if a == b => unchanged += 1,
                (Some(a), Some(b)) => {
                    out.push_str(&format!("~ {key}\n"));
                    if a["kind"] == "StatefulSet" && a["spec"]["template"] != b["spec"]["template"]
                    {
                        out.push_str(
                            "  pod template changes: its pods restart (see `render --plan` for the order)\n",
                        );
                    }
                    out.push_str(&unified_diff(Some(a), b, "old", "new")?);
                }
                (None, Some(_)) => out.push_str(&format!("+ {key} (new)\n")),
                (Some(_), None) => out.push_str(&format!("- {key} (removed)\n")),
                (None, None) => {}
            }
        }
        out.push_str(&format!("= {unchanged} objects unchanged\n"));
    }
    Ok(out)
}

/// A unified diff of two objects' YAML, `old` absent for a new object.
pub fn unified_diff(
    old: Option<&Value>,
    new: &Value,
    old_name: &str,
    new_name: &str,
) -> Result<String, String> {
    let a = match old {
        Some(old) => yaml(old)?,
        None => String::new(),
    };
    let b = yaml(new)?;
    let text = similar::TextDiff::from_lines(&a, &b);
    Ok(text
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string())
}

/// Removes the content hash annotation (it changes with any content change
/// and would only add noise to a diff).
pub fn without_hash(object: &mut Value) {
    if let Some(a) = object["metadata"]["annotations"].as_object_mut() {
        a.remove(crate::plan::APPLIED_HASH_ANNOTATION);
        if a.is_empty() {
            object["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
}

/// Objects by `Kind name`, without the content hash.
/// What the operator would plan for `cluster`, with the ConfigMaps and
/// Secrets of `input`; errors name the cluster.
pub fn plan_cluster(
    bundle: &ConventionBundle,
    input: &RenderInput,
    cluster: crate::cluster::ClusterRef<'_>,
) -> Result<plan::Plan, String> {
    plan::plan(
        bundle,
        PlanInput {
            cluster,
            config_maps: &input.config_maps,
            secret_keys: &input.secret_keys,
            pod_security: input.pod_security,
        },
    )
    .map_err(|e| format!("{}: {e}", cluster.describe()))
}

/// Objects by `Kind name`, without their content hash.
pub fn index(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut o| {
            without_hash(&mut o);
            let key = format!(
                "{} {}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect()
}

fn yaml(value: &Value) -> Result<String, String> {
    serde_norway::to_string(value).map_err(|e| e.to_string())
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
