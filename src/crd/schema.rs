//! CRD schemas the derive cannot express: small schemas for fields typed
//! with large Kubernetes types (the API server keeps these fields as given;
//! the operator checks them against their Kubernetes types when it reads a
//! cluster, with the same error paths), and the rules (`pattern`, bounds,
//! `x-kubernetes-validations`) that make the API server refuse what
//! Kubernetes or Doris would refuse later.
//!
//! Every list a rule iterates over has a `maxItems` and every string a rule
//! compares has a `maxLength`: the API server estimates the cost of each rule
//! from these bounds and refuses a CRD whose rules could cost too much. Its
//! estimate is the judge: the end-to-end tests install both CRDs on a real
//! kube-apiserver. A check that needs no CEL (a name's characters) is a
//! `pattern`, which costs nothing against that budget.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// The longest cluster name: the StatefulSet `<name>-broker` must leave room
/// for the pods' `controller-revision-hash` label (`<statefulset>-<hash of
/// up to 10 characters>`, a label value of at most 63 characters), so a
/// StatefulSet name has at most 52 characters.
pub const MAX_NAME: usize = 52 - "-fe".len();
/// The same with a broker (`<name>-broker`).
pub const MAX_NAME_WITH_BROKER: usize = 52 - "-broker".len();

/// A path is at most this long (mount paths, env names). The rule that no
/// two mounts share a path compares every pair, so its cost grows with
/// this times the square of [`MAX_MOUNTS`]; with 20 compute groups each
/// carrying two such lists, 512 and 32 keep it at about 40% of what the
/// API server allows one rule (1024 and 64 were 3.4 times over).
const MAX_PATH: usize = 512;
/// Generous bounds for lists rules iterate over.
const MAX_MOUNTS: usize = 32;
const MAX_ENV: usize = 1024;
const MAX_PORTS: usize = 64;

/// `resource.Quantity` in string form, as Kubernetes parses it (no sign:
/// requests and limits cannot be negative).
pub const QUANTITY_PATTERN: &str = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// An environment variable name, as every Kubernetes version accepts it.
const ENV_NAME_PATTERN: &str = "^[-._a-zA-Z][-._a-zA-Z0-9]*$";

fn rule(rule: &str, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

/// The rules on the whole object: the cluster name must leave room for the
/// names derived from it.
pub fn root_rules() -> Vec<kube::core::Rule> {
    use kube::core::Rule;
    vec![
        Rule::new(
            "!has(self.metadata.name) || self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        )
        .message(
            "metadata.name must start with a lowercase letter and hold only lowercase \
             letters, digits and '-' (it names the cluster's Services, which are DNS labels)",
        ),
        Rule::new(format!(
            "!has(self.metadata.name) || size(self.metadata.name) <= \
             (has(self.spec) && has(self.spec.brokerSpec) ? \
             {MAX_NAME_WITH_BROKER} : {MAX_NAME})"
        ))
        .message(kube::core::Message::Message(format!(
            "metadata.name must be at most {MAX_NAME} characters ({MAX_NAME_WITH_BROKER} with \
             brokerSpec): the StatefulSet <name>-<component> and its pods' revision label \
             <statefulset>-<hash> must fit in 63 characters"
        ))),
    ]
}

/// Any object.
pub fn object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A list of objects.
pub fn object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

fn quantity_map(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "additionalProperties": {
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN
        }
    })
}

/// Resource quantities by name (`cpu: 8`, `memory: 16Gi`).
pub fn quantities(_: &mut SchemaGenerator) -> Schema {
    // The field's own doc comment describes it.
    let mut map = quantity_map("");
    map.as_object_mut().map(|m| m.remove("description"));
    Schema::try_from(map).expect("an object schema")
}

/// What a container's requests say, for `kubectl explain`.
const REQUESTS: &str = "What the container is guaranteed, by resource: cpu in cores \
    (`2`, `500m`), memory in bytes (`8Gi`). Unset: nothing reserved.";
/// What a container's limits say.
const LIMITS: &str = "The most the container may use, by resource, in the units of \
    requests. Unset: no limit.";

/// A container's `resources`: requests and limits checked as quantities.
pub fn resources(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "object",
        "properties": {"requests": quantity_map(REQUESTS), "limits": quantity_map(LIMITS)},
        "x-kubernetes-preserve-unknown-fields": true
    }))
    .expect("an object schema")
}

/// Container environment variables: each has a valid name.
pub fn env_vars(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "array",
        "maxItems": MAX_ENV,
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {
                    "description": "The variable's name: letters, digits, '_', '-' and '.', \
                                    not starting with a digit.",
                    "type": "string",
                    "maxLength": MAX_PATH,
                    "pattern": ENV_NAME_PATTERN
                }
            },
            "x-kubernetes-preserve-unknown-fields": true
        }
    }))
    .expect("an array schema")
}

fn path_schema(rules: Vec<Value>) -> Schema {
    Schema::try_from(json!({
        "type": "string",
        "nullable": true,
        "maxLength": MAX_PATH,
        "x-kubernetes-validations": rules
    }))
    .expect("a string schema")
}

/// A mount path: absolute, or empty for the field's default.
pub fn mount_path(_: &mut SchemaGenerator) -> Schema {
    path_schema(vec![rule(
        "self == '' || self.startsWith('/')",
        "must be an absolute path",
    )])
}

/// A persistent volume's mount path: absolute, or empty for every data
/// directory of the configuration.
pub fn volume_mount_path(_: &mut SchemaGenerator) -> Schema {
    path_schema(vec![rule(
        "self == '' || self.startsWith('/')",
        "must be an absolute path, or empty for every data directory",
    )])
}

/// A shared claim's mount path: absolute or under the component's home.
pub fn shared_mount_path(_: &mut SchemaGenerator) -> Schema {
    path_schema(vec![rule(
        "self.startsWith('/') || self.startsWith('${DORIS_HOME}/')",
        "must be an absolute path or start with ${DORIS_HOME}/",
    )])
}

/// A list of mounts (`T` has a `mountPath`) of which no two share an explicit
/// mount path.
pub fn mounts_of<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Option<Vec<T>>>();
    let object = schema.ensure_object();
    object.insert("maxItems".into(), MAX_MOUNTS.into());
    object.insert(
        "x-kubernetes-validations".into(),
        json!([rule(
            "self.all(a, !has(a.mountPath) || a.mountPath == '' || \
             self.exists_one(b, has(b.mountPath) && b.mountPath == a.mountPath))",
            "two entries have the same mountPath",
        )]),
    );
    schema
}

/// A list of persistent volumes, bounded.
pub fn bounded_list<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Option<Vec<T>>>();
    schema
        .ensure_object()
        .insert("maxItems".into(), MAX_MOUNTS.into());
    schema
}

/// Service ports: no two for the same container port or node port.
pub fn service_ports<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Option<Vec<T>>>();
    let object = schema.ensure_object();
    object.insert("maxItems".into(), MAX_PORTS.into());
    object.insert(
        "x-kubernetes-validations".into(),
        json!([
            rule(
                "self.all(a, !has(a.targetPort) || \
                 self.exists_one(b, has(b.targetPort) && b.targetPort == a.targetPort))",
                "two entries have the same targetPort",
            ),
            rule(
                "self.all(a, !has(a.nodePort) || a.nodePort == 0 || \
                 self.exists_one(b, has(b.nodePort) && b.nodePort == a.nodePort))",
                "two entries have the same nodePort",
            ),
        ]),
    );
    schema
}

/// The FE's follower count is fixed once the cluster exists (unset is 3).
pub fn election_rule(schema: &mut Schema) {
    schema.insert(
        "x-kubernetes-validations".into(),
        json!([{
            "rule": "(has(self.electionNumber) ? self.electionNumber : 3) == \
                     (has(oldSelf.electionNumber) ? oldSelf.electionNumber : 3)",
            "message": "cannot change on an existing cluster: the FE followers hold the \
                        metadata quorum (unset means 3); add observers with replicas instead",
            "fieldPath": ".electionNumber"
        }]),
    );
}

/// An RFC 3339 timestamp.
pub fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time"
    })
}

// ------------------------------------------------- DorisDisaggregatedCluster
//
// The API server also bounds the whole CRD: the sum over its rules of each
// rule's estimated cost times the most items it can run for (the product of
// the `maxItems` of the lists around it) must stay under 10^8, and each such
// product under 10^7. The mount-path rules of a compute group's configMaps
// and secrets are the dearest (they run once per compute group); the
// compute groups are bounded so that they fit.

/// The most compute groups a cluster has.
pub const MAX_COMPUTE_GROUPS: usize = 20;
/// The most persistentVolumes entries of a part.
const MAX_DISAGGREGATED_VOLUMES: usize = 8;
/// The most mountPaths of a persistentVolumes entry.
const MAX_VOLUME_PATHS: usize = 16;

/// The longest disaggregated cluster name: the FE StatefulSet
/// `<name>-fe` must leave room for its pods' revision label.
pub const MAX_DISAGGREGATED_NAME: usize = 52 - "-fe".len();
/// The longest `<name>` plus `<uniqueId>`: the StatefulSet
/// `<name>-<uniqueId>` is at most 52 characters (its pods' revision label
/// `<statefulset>-<hash>` is at most 63), and the Service
/// `<name>-<uniqueId>-external` at most 63.
pub const MAX_NAME_AND_UNIQUE_ID: usize = 52 - 1;

/// A compute group's uniqueId: a letter, then letters and digits, single
/// underscores between them.
pub const UNIQUE_ID_PATTERN: &str = "^[a-zA-Z](_?[0-9a-zA-Z])*$";

/// The rules on the whole disaggregated cluster: its name, and the names of
/// the compute groups' objects.
pub fn disaggregated_root_rules() -> Vec<kube::core::Rule> {
    use kube::core::{Message, Rule};
    vec![
        root_rules().swap_remove(0),
        Rule::new(format!(
            "!has(self.metadata.name) || size(self.metadata.name) <= {MAX_DISAGGREGATED_NAME}"
        ))
        .message(Message::Message(format!(
            "metadata.name must be at most {MAX_DISAGGREGATED_NAME} characters: the StatefulSet \
             <name>-fe and its pods' revision label <statefulset>-<hash> must fit in 63 characters"
        ))),
        Rule::new(format!(
            "!has(self.metadata.name) || !has(self.spec) || !has(self.spec.computeGroups) || \
             self.spec.computeGroups.all(g, size(self.metadata.name) + size(g.uniqueId) <= \
             {MAX_NAME_AND_UNIQUE_ID})"
        ))
        .message(Message::Message(format!(
            "metadata.name and each spec.computeGroups[].uniqueId must together be at most \
             {MAX_NAME_AND_UNIQUE_ID} characters: the StatefulSet <name>-<uniqueId> and its \
             pods' revision label <statefulset>-<hash> must fit in 63 characters"
        ))),
    ]
}

/// The rules of a disaggregated cluster's spec: a FoundationDB to keep the
/// metadata in, and FE followers fixed once the cluster exists.
pub fn disaggregated_spec_rules(schema: &mut Schema) {
    let fdb = "self.metaService.fdb";
    let config_map = format!("{fdb}.configMapNamespaceName");
    schema.insert(
        "x-kubernetes-validations".into(),
        json!([
            {
                "rule": format!(
                    "has(self.metaService) && has({fdb}) && \
                     ((has({fdb}.address) && {fdb}.address != '') || \
                     (has({config_map}) && has({config_map}.name) && {config_map}.name != ''))"
                ),
                "message": "must give address (the FoundationDB connection string) or \
                            configMapNamespaceName with a name (the ConfigMap \
                            fdb-kubernetes-operator writes, key cluster-file)",
                "fieldPath": ".metaService.fdb"
            },
            {
                "rule": "(has(self.feSpec) && has(self.feSpec.electionNumber) ? \
                         self.feSpec.electionNumber : 1) == \
                         (has(oldSelf.feSpec) && has(oldSelf.feSpec.electionNumber) ? \
                         oldSelf.feSpec.electionNumber : 1)",
                "message": "cannot change on an existing cluster: the FE followers hold the \
                            metadata quorum (unset means 1); add observers with replicas instead",
                "fieldPath": ".feSpec.electionNumber"
            }
        ]),
    );
}

/// The FEs: at least as many as vote, and their volumes fixed once they
/// exist.
pub fn disaggregated_fe_rules(schema: &mut Schema) {
    let mut rules = vec![json!({
        "rule": "!has(self.replicas) || self.replicas >= \
                 (has(self.electionNumber) ? self.electionNumber : 1)",
        "message": "must be at least electionNumber (unset means 1): the first \
                    electionNumber FEs are the followers, the others observers",
        "fieldPath": ".replicas"
    })];
    rules.extend(volume_rules(""));
    push_rules(schema, rules);
}

/// A compute group's uniqueId.
pub fn unique_id(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "string",
        "maxLength": MAX_NAME_AND_UNIQUE_ID - 1,
        "x-kubernetes-validations": [rule(
            &format!("self.matches('{UNIQUE_ID_PATTERN}')"),
            "must start with a letter and hold letters, digits and single '_' between them \
             (it is the compute group's name in Doris and, lower-cased with '_' as '-', \
             part of its objects' names)",
        )]
    }))
    .expect("a string schema")
}

/// The compute groups: a list keyed by uniqueId (so the API server matches
/// a group with its old self by uniqueId), no two naming the same objects.
pub fn compute_groups<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<T>>();
    let object = schema.ensure_object();
    object.insert("maxItems".into(), MAX_COMPUTE_GROUPS.into());
    object.insert("x-kubernetes-list-type".into(), "map".into());
    object.insert("x-kubernetes-list-map-keys".into(), json!(["uniqueId"]));
    object.insert(
        "x-kubernetes-validations".into(),
        json!([
            rule(
                "self.all(a, self.exists_one(b, b.uniqueId == a.uniqueId))",
                "two compute groups have the same uniqueId",
            ),
            rule(
                "self.all(a, self.all(b, a.uniqueId == b.uniqueId || \
                 a.uniqueId.lowerAscii() != b.uniqueId.lowerAscii()))",
                "two compute groups have uniqueIds that differ only in case: they would name \
                 the same StatefulSet and Services (<name>-<uniqueId lower-cased, '_' as '-'>)",
            ),
        ]),
    );
    schema
}

/// `has(...)` of every step of a path below `var`.
fn has_path(var: &str, path: &[&str]) -> String {
    (1..=path.len())
        .map(|n| format!("has({var}.{})", path[..n].join(".")))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// A persistentVolumes entry's claim field `path` (under
/// persistentVolumeClaimSpec), or `default`.
fn claim_field(var: &str, path: &[&str], default: &str) -> String {
    let mut full = vec!["persistentVolumeClaimSpec"];
    full.extend_from_slice(path);
    format!(
        "({} ? {var}.{} : {default})",
        has_path(var, &full),
        full.join(".")
    )
}

/// An entry's field, or `default`.
fn field_or(var: &str, field: &str, default: &str) -> String {
    format!("(has({var}.{field}) ? {var}.{field} : {default})")
}

/// What of a volume a StatefulSet's claim template fixes, besides the size:
/// as one comparable list of lists of strings.
fn volume_shape(var: &str) -> String {
    format!(
        "[{paths}, [{class}], {modes}, [{mode}], [{provisioner}], [{log} ? 'true' : 'false']]",
        paths = field_or(var, "mountPaths", "[]"),
        class = claim_field(var, &["storageClassName"], "''"),
        modes = claim_field(var, &["accessModes"], "[]"),
        mode = claim_field(var, &["volumeMode"], "''"),
        provisioner = field_or(var, "provisioner", "''"),
        log = field_or(var, "logNotStore", "false"),
    )
}

/// Appends rules to a schema's `x-kubernetes-validations`.
fn push_rules(schema: &mut Schema, rules: Vec<Value>) {
    let object = schema.ensure_object();
    let list = object
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        list.extend(rules);
    }
}

/// Why a part's volumes are fixed.
const TEMPLATES_FIXED: &str = "they make its StatefulSet's volume claim templates, which \
                               cannot change once it exists";

/// The rules of a part (meta service, FE, compute group) on its volumes
/// once it exists: the volume claim templates of a StatefulSet cannot
/// change, so neither can what makes them but for the storage requested.
/// Whether that grows (the operator grows the claims) or shrinks (the
/// operator reports it and leaves the claims) is not checked here: the
/// API server sizes an int-or-string quantity as a whole request (3 MB), so
/// parsing two quantities costs more than a rule may. `guard` makes a rule hold for another part (a compute group
/// faced with another, in an evaluator that pairs list items by position
/// rather than by key). The claim fields the CRD does not declare are left
/// to the operator.
fn volume_rules(guard: &str) -> Vec<Value> {
    let volumes = |var: &str| field_or(var, "persistentVolumes", "[]");
    vec![
        json!({
            "rule": format!(
                "{guard}size({new}) == size({old})",
                new = volumes("self"),
                old = volumes("oldSelf")
            ),
            "message": format!(
                "the number of entries cannot change on an existing part: {TEMPLATES_FIXED}"
            ),
            "fieldPath": ".persistentVolumes"
        }),
        json!({
            "rule": format!(
                "{guard}has(self.persistentVolume) == has(oldSelf.persistentVolume) && \
                 (!has(self.persistentVolume) || {shape_new} == {shape_old})",
                shape_new = volume_shape("self.persistentVolume"),
                shape_old = volume_shape("oldSelf.persistentVolume"),
            ),
            "message": format!(
                "cannot change on an existing part but for \
                 persistentVolumeClaimSpec.resources.requests.storage: {TEMPLATES_FIXED}"
            ),
            "fieldPath": ".persistentVolume"
        }),
        json!({
            "rule": format!(
                "{guard}(!has(self.persistentVolume) && size({new}) == 0) || \
                 {log_new} == {log_old}",
                new = volumes("self"),
                log_new = field_or("self", "logNotStore", "false"),
                log_old = field_or("oldSelf", "logNotStore", "false"),
            ),
            "message": format!(
                "cannot change on an existing part with persistent volumes: the log volume is \
                 one of them, and {TEMPLATES_FIXED}"
            ),
            "fieldPath": ".logNotStore"
        }),
    ]
}

/// The meta service: its volumes are fixed once it exists.
pub fn meta_service_rules(schema: &mut Schema) {
    push_rules(schema, volume_rules(""));
}

/// A compute group: its volumes are fixed once it exists.
pub fn compute_group_rules(schema: &mut Schema) {
    push_rules(
        schema,
        volume_rules("self.uniqueId != oldSelf.uniqueId || "),
    );
}

/// A part's persistent volumes, bounded, fixed once the part exists but
/// for the storage they request.
pub fn disaggregated_volumes<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Option<Vec<T>>>();
    schema
        .ensure_object()
        .insert("maxItems".into(), MAX_DISAGGREGATED_VOLUMES.into());
    push_rules(
        &mut schema,
        vec![json!({
            "rule": format!(
                "self.map(p, {shape_p}) == oldSelf.map(q, {shape_q})",
                shape_p = volume_shape("p"),
                shape_q = volume_shape("q"),
            ),
            "message": format!(
                "cannot change on an existing part but for \
                 persistentVolumeClaimSpec.resources.requests.storage: the entries' \
                 mountPaths, storageClassName, accessModes, volumeMode, provisioner and \
                 logNotStore are fixed, as {TEMPLATES_FIXED}"
            )
        })],
    );
    schema
}

/// The absolute paths a volume template is mounted at.
pub fn volume_mount_paths(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "array",
        "nullable": true,
        "maxItems": MAX_VOLUME_PATHS,
        "items": {
            "type": "string",
            "maxLength": MAX_PATH,
            "x-kubernetes-validations": [rule("self.startsWith('/')", "must be an absolute path")]
        }
    }))
    .expect("an array schema")
}

/// A volume claim spec: kept as given, with the fields the rules on
/// volumes compare declared.
pub fn claim_spec(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "object",
        "properties": {
            "accessModes": {
                "description": "ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.",
                "type": "array",
                "maxItems": 4,
                "items": {"type": "string", "maxLength": 64}
            },
            "storageClassName": {
                "description": "The StorageClass; unset: the cluster's default.",
                "type": "string",
                "maxLength": 253
            },
            "volumeMode": {
                "description": "Filesystem (default) or Block.",
                "type": "string",
                "maxLength": 64
            },
            "resources": {
                "description": "The storage requested (requests.storage, e.g. 200Gi) and its limit.",
                "type": "object",
                "properties": {
                    "requests": quantity_map(
                        "The storage each claim asks for, in bytes (`storage: 200Gi`); \
                         raising it grows the volumes when their StorageClass allows."
                    ),
                    "limits": quantity_map("The most storage a claim may take, in bytes.")
                },
                "x-kubernetes-preserve-unknown-fields": true
            }
        },
        "x-kubernetes-preserve-unknown-fields": true
    }))
    .expect("an object schema")
}
