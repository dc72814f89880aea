//! Field ownership, as kube-apiserver keeps it in `metadata.managedFields`:
//! every write records, per field manager and operation, the fields it
//! owns (`fieldsType: FieldsV1`), and server-side apply merges by that
//! ownership. An applier's fields it no longer applies go unless another
//! manager owns them; a field another manager owns with a different value
//! is a conflict unless the apply is forced, which takes it over; an
//! ordinary write (create, update, patch) takes over the fields it changes.
//!
//! Lists merge by their keys where Kubernetes declares them
//! (`x-kubernetes-list-map-keys`) for the lists objects commonly hold
//! (containers, volumes, env, ports, volumeMounts, conditions, ...); every
//! other list is atomic, owned and replaced as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field's path in FieldsV1 terms: `f:<name>` for a map field,
/// `k:<key as JSON>` for an item of a keyed list.
pub type Path = Vec<String>;

/// The keys of the list at `names` (the field names leading to it), or
/// `None` for an atomic list.
fn list_keys(names: &[&str]) -> Option<&'static [&'static str]> {
    let in_container = names
        .iter()
        .any(|n| matches!(*n, "containers" | "initContainers" | "ephemeralContainers"));
    Some(match *names.last()? {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "resourceClaims" => &["name"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "ports" if in_container => &["containerPort", "protocol"],
        "ports" => &["port", "protocol"],
        "conditions" => &["type"],
        "ownerReferences" => &["uid"],
        "hostAliases" => &["ip"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        _ => return None,
    })
}

/// The key of a list item, with the defaults the API server fills in
/// (a port's protocol is TCP); `None` when the item has no key field.
fn key_of(item: &Value, keys: &[&str]) -> Option<Map<String, Value>> {
    let mut key = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                key.insert(k.to_string(), v.clone());
            }
            None if *k == "protocol" => {
                key.insert(k.to_string(), json!("TCP"));
            }
            None => {}
        }
    }
    (!key.is_empty()).then_some(key)
}

/// The keys of `list`'s items, when every item has one and no two share it.
fn item_keys(list: &[Value], keys: &[&str]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for item in list {
        let key = format!("k:{}", Value::Object(key_of(item, keys)?));
        if out.contains(&key) {
            return None;
        }
        out.push(key);
    }
    Some(out)
}

/// The fields `object` sets: every leaf, every keyed-list item, and each
/// atomic list as one field.
pub fn set_of(object: &Value) -> BTreeSet<Path> {
    fields_of(object).into_keys().collect()
}

/// The fields of [`set_of`], each with its value (a keyed-list item's is
/// the item), read in one walk.
pub fn fields_of(object: &Value) -> BTreeMap<Path, &Value> {
    let mut out = BTreeMap::new();
    collect(object, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn collect<'a>(
    value: &'a Value,
    names: &mut Vec<&'a str>,
    path: &mut Path,
    out: &mut BTreeMap<Path, &'a Value>,
) {
    let Value::Object(map) = value else {
        out.insert(path.clone(), value);
        return;
    };
    if map.is_empty() {
        out.insert(path.clone(), value);
    }
    for (name, v) in map {
        names.push(name);
        path.push(format!("f:{name}"));
        let keyed = match v {
            Value::Array(list) => list_keys(names).and_then(|k| Some((k, item_keys(list, k)?))),
            _ => None,
        };
        match (v, keyed) {
            (Value::Array(list), Some((_, item_keys))) => {
                if list.is_empty() {
                    out.insert(path.clone(), v);
                }
                for (item, key) in list.iter().zip(item_keys) {
                    path.push(key);
                    out.insert(path.clone(), item);
                    if item.as_object().is_some_and(|m| !m.is_empty()) {
                        collect(item, names, path, out);
                    }
                    path.pop();
                }
            }
            (Value::Object(m), _) if !m.is_empty() => collect(v, names, path, out),
            _ => {
                out.insert(path.clone(), v);
            }
        }
        path.pop();
        names.pop();
    }
}

/// `set` in the FieldsV1 format: a tree of path elements, `.` marking a
/// node that is itself owned as well as having owned children.
pub fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for path in set {
        let mut node = &mut root;
        for element in path {
            node = node
                .as_object_mut()
                .expect("a node")
                .entry(element.clone())
                .or_insert_with(|| json!({}));
        }
        let _ = node;
    }
    // A node both owned and a parent gets `.`.
    for path in set {
        let mut node = &mut root;
        for element in path {
            node = &mut node[element];
        }
        if node.as_object().is_some_and(|m| !m.is_empty()) {
            node["."] = json!({});
        }
    }
    root
}

/// The set a FieldsV1 tree names.
pub fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    fn walk(node: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(map) = node.as_object() else { return };
        if map.is_empty() || map.contains_key(".") {
            out.insert(path.clone());
        }
        for (element, child) in map {
            if element == "." {
                continue;
            }
            path.push(element.clone());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if fields.as_object().is_some_and(|m| !m.is_empty()) {
        walk(fields, &mut Vec::new(), &mut out);
    }
    out
}

/// The value at `path` of `object`.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    let mut names: Vec<&str> = Vec::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            node = node.get(name)?;
            names.push(name);
        } else {
            let index = item_index(node, &names, element)?;
            node = &node[index];
        }
    }
    Some(node)
}

/// Where the item `element` (`k:...`) is in the list `list` at `names`.
fn item_index(list: &Value, names: &[&str], element: &str) -> Option<usize> {
    let keys = list_keys(names)?;
    let wanted: Value = serde_json::from_str(element.strip_prefix("k:")?).ok()?;
    list.as_array()?
        .iter()
        .position(|item| key_of(item, keys).map(Value::Object).as_ref() == Some(&wanted))
}

/// Removes the field or list item at `path` from `object`, if there.
pub fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    let mut names: Vec<String> = Vec::new();
    for element in parents {
        let next = if let Some(name) = element.strip_prefix("f:") {
            names.push(name.to_string());
            node.get_mut(name)
        } else {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            match item_index(node, &names, element) {
                Some(i) => node.get_mut(i),
                None => None,
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(name);
        }
    } else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(i) = item_index(node, &names, last)
            && let Some(list) = node.as_array_mut()
        {
            list.remove(i);
        }
    }
}

/// Lays `applied` over `live`: maps merge, keyed lists merge item by item,
/// atomic lists and scalars are replaced.
pub fn merge(live: &mut Value, applied: &Value) {
    merge_at(live, applied, &mut Vec::new());
}

fn merge_at<'a>(live: &mut Value, applied: &'a Value, names: &mut Vec<&'a str>) {
    let (Value::Object(l), Value::Object(a)) = (&mut *live, applied) else {
        *live = applied.clone();
        return;
    };
    for (name, v) in a {
        names.push(name);
        match (l.get_mut(name), v) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_at(existing, v, names),
            (Some(Value::Array(existing)), Value::Array(items))
                if list_keys(names).is_some_and(|k| {
                    item_keys(items, k).is_some() && item_keys(existing, k).is_some()
                }) =>
            {
                let keys = list_keys(names).expect("checked");
                for item in items {
                    let key = key_of(item, keys);
                    match existing.iter_mut().find(|e| key_of(e, keys) == key) {
                        Some(e) => merge_at(e, item, names),
                        None => existing.push(item.clone()),
                    }
                }
            }
            _ => {
                l.insert(name.clone(), v.clone());
            }
        }
        names.pop();
    }
}

/// Whether `path` is a key field of a list item (`name` of `k:{"name":..}`).
fn is_item_key(path: &[String]) -> bool {
    let [.., item, field] = path else {
        return false;
    };
    let (Some(key), Some(field)) = (item.strip_prefix("k:"), field.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|k| k.contains_key(field))
}

/// `path` as the API server names a field in a conflict:
/// `.spec.template.spec.containers[name="fe"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}

/// What of an object its field sets cover: not its identity and the
/// fields the server sets, and for a write of the main resource not its
/// status (which that write cannot change); for a status write, only the
/// status.
pub fn owned_part(object: &Value, status: Option<bool>) -> Value {
    let mut o = object.clone();
    let Some(map) = o.as_object_mut() else {
        return json!({});
    };
    map.remove("apiVersion");
    map.remove("kind");
    match status {
        Some(true) => map.retain(|k, _| k == "status"),
        Some(false) => {
            map.remove("status");
        }
        None => {}
    }
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
        if meta.is_empty() {
            map.remove("metadata");
        }
    }
    o
}

/// One `managedFields` entry, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: Option<String>,
    pub fields: BTreeSet<Path>,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// The entries of `object`'s `metadata.managedFields`.
pub fn entries(object: &Value) -> Vec<Entry> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: text(&e["manager"]).unwrap_or_default(),
            operation: text(&e["operation"]).unwrap_or_default(),
            subresource: text(&e["subresource"]),
            api_version: text(&e["apiVersion"]).unwrap_or_default(),
            time: text(&e["time"]),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// `entries` as `metadata.managedFields`; an entry that owns nothing goes.
pub fn to_managed_fields(entries: &[Entry]) -> Value {
    let out: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    Value::Array(out)
}

/// Who writes, and how.
#[derive(Clone, Debug)]
pub struct Writer {
    pub manager: String,
    /// `status` or `scale` for a write of that subresource.
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: String,
}

impl Writer {
    fn entry(&self, operation: &str, fields: BTreeSet<Path>) -> Entry {
        Entry {
            manager: self.manager.clone(),
            operation: operation.to_string(),
            subresource: self.subresource.clone(),
            api_version: self.api_version.clone(),
            time: Some(self.time.clone()),
            fields,
        }
    }
}

/// The manager a request without `fieldManager` is recorded as: its
/// User-Agent up to the first `/`, as kube-apiserver derives it.
pub fn manager_from_user_agent(user_agent: Option<&str>) -> String {
    let agent = user_agent.unwrap_or_default();
    agent
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect()
}

/// The ownership after an ordinary write (create, update, patch) of `new`
/// over `old` (`None` for a create) by `writer`: the writer takes the
/// fields it changed; removed fields are nobody's.
pub fn after_update(
    old: Option<&Value>,
    new: &Value,
    entries: &[Entry],
    writer: &Writer,
) -> Vec<Entry> {
    let status = writer.subresource.as_deref().map(|s| s == "status");
    let new_part = owned_part(new, status);
    let new_fields = fields_of(&new_part);
    let (changed, removed): (BTreeSet<Path>, BTreeSet<Path>) = match old {
        None => (new_fields.keys().cloned().collect(), BTreeSet::new()),
        Some(old) => {
            let old_part = owned_part(old, status);
            let old_fields = fields_of(&old_part);
            // A keyed-list item changes only by coming; its fields by value.
            let changed = new_fields
                .iter()
                .filter(|(p, v)| match old_fields.get(*p) {
                    None => true,
                    Some(_) if p.last().is_some_and(|e| e.starts_with("k:")) => false,
                    Some(old) => old != *v,
                })
                .map(|(p, _)| p.clone())
                .collect();
            let removed = old_fields
                .keys()
                .filter(|p| !new_fields.contains_key(*p))
                .cloned()
                .collect();
            (changed, removed)
        }
    };
    let mut out = Vec::new();
    let mut mine = None;
    for e in entries {
        if e.same_owner(&writer.manager, "Update", writer.subresource.as_deref()) {
            mine = Some(e.clone());
            continue;
        }
        let mut e = e.clone();
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
        out.push(e);
    }
    let before = mine.as_ref().map(|e| e.fields.clone()).unwrap_or_default();
    let mut fields: BTreeSet<Path> = before.union(&changed).cloned().collect();
    fields.retain(|p| !removed.contains(p));
    let entry = match mine {
        Some(e) if e.fields == fields => e,
        _ => writer.entry("Update", fields),
    };
    put_entry(&mut out, entries, entry);
    out
}

/// Puts `entry` where its manager's entry was in `before`, or last.
fn put_entry(out: &mut Vec<Entry>, before: &[Entry], entry: Entry) {
    let at = before
        .iter()
        .position(|e| {
            e.same_owner(
                &entry.manager,
                &entry.operation,
                entry.subresource.as_deref(),
            )
        })
        .unwrap_or(out.len())
        .min(out.len());
    out.insert(at, entry);
}

/// A server-side apply refused: each field another manager owns with a
/// different value, with that manager and its apiVersion.
#[derive(Debug)]
pub struct Conflicts(pub Vec<(Path, String, String)>);

impl Conflicts {
    /// The 409 Status kube-apiserver answers with.
    pub fn status(&self) -> Value {
        let causes: Vec<Value> = self
            .0
            .iter()
            .map(|(path, manager, api_version)| {
                json!({"reason": "FieldManagerConflict",
                       "message": format!("conflict with {manager:?} using {api_version}"),
                       "field": display(path)})
            })
            .collect();
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c["message"].as_str().unwrap_or_default(),
                    c["field"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let n = self.0.len();
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("Apply failed with {n} conflict{}: {}",
                               if n == 1 { "" } else { "s" }, listed.join("\n")),
            "reason": "Conflict", "details": {"causes": causes}, "code": 409,
        })
    }
}

/// Server-side apply of `applied` by `writer` over `live` (`None` when
/// the object does not exist yet): the object to store (without
/// managedFields) and the new ownership, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    writer: &Writer,
    force: bool,
) -> Result<(Value, Vec<Entry>), Conflicts> {
    let status = Some(writer.subresource.as_deref() == Some("status"));
    let applied_part = owned_part(applied, status);
    let applied_set = set_of(&applied_part);
    let mut entries = live.map(entries).unwrap_or_default();
    let mut merged = live.cloned().unwrap_or_else(|| {
        let mut fresh = applied.clone();
        if let Some(m) = fresh.as_object_mut() {
            m.remove("status");
        }
        fresh
    });
    merge(&mut merged, &applied_part);
    if let Some(live) = live {
        // What the apply changes and another manager owns conflicts.
        let live_part = owned_part(live, status);
        let merged_part = owned_part(&merged, status);
        let mut conflicts = Vec::new();
        for e in &entries {
            if e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref()) {
                continue;
            }
            for p in e.fields.intersection(&applied_set) {
                if value_at(&live_part, p) != value_at(&merged_part, p) {
                    conflicts.push((p.clone(), e.manager.clone(), e.api_version.clone()));
                }
            }
        }
        if !conflicts.is_empty() {
            if !force {
                return Err(Conflicts(conflicts));
            }
            for e in entries.iter_mut() {
                if !e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref()) {
                    e.fields
                        .retain(|p| !conflicts.iter().any(|(c, _, _)| c == p));
                }
            }
        }
    }
    // What this manager applied before and no longer does goes, unless
    // another manager owns it (or something under it).
    let before = entries
        .iter()
        .find(|e| e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref()))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut dropped: Vec<&Path> = before.difference(&applied_set).collect();
    // An item goes with all it holds; the key of an item that stays, stays.
    dropped.sort_by_key(|p| p.len());
    for p in dropped {
        if is_item_key(p) {
            continue;
        }
        let kept = entries.iter().any(|e| {
            !e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref())
                && e.fields.iter().any(|f| f.starts_with(p))
        }) || applied_set.iter().any(|f| f.starts_with(p));
        if !kept {
            remove_at(&mut merged, p);
        }
    }
    let previous = entries.clone();
    entries.retain(|e| !e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref()));
    let mut mine = writer.entry("Apply", applied_set);
    if before == mine.fields
        && let Some(live) = live
        && let Some(old) = self::entries(live)
            .into_iter()
            .find(|e| e.same_owner(&writer.manager, "Apply", writer.subresource.as_deref()))
    {
        // Unchanged ownership keeps its time, so a no-op apply writes nothing.
        mine.time = old.time;
    }
    put_entry(&mut entries, &previous, mine);
    if let Some(meta) = merged["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    Ok((merged, entries))
}
