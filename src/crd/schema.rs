//! CRD schemas the derive cannot express: small schemas for fields typed
//! with large Kubernetes types (the API server keeps these fields as given;
//! the operator checks them against their Kubernetes types when it reads a
//! cluster, with the same error paths), and the rules (`pattern`, bounds,
//! `x-kubernetes-validations`) that make the API server refuse what
//! Kubernetes or Doris would refuse later.
//!
//! Every list a rule iterates over has a `maxItems` and every string a rule
//! compares has a `maxLength`: the API server estimates the cost of each rule
//! from these bounds and refuses a CRD whose rules could cost too much.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// The longest cluster name: the StatefulSet `<name>-broker` must leave room
/// for the pods' `controller-revision-hash` label (`<statefulset>-<hash of
/// up to 10 characters>`, a label value of at most 63 characters), so a
/// StatefulSet name has at most 52 characters.
pub const MAX_NAME: usize = 52 - "-fe".len();
/// The same with a broker (`<name>-broker`).
pub const MAX_NAME_WITH_BROKER: usize = 52 - "-broker".len();

/// A path is at most this long (mount paths, env names).
const MAX_PATH: usize = 1024;
/// Generous bounds for lists rules iterate over.
const MAX_MOUNTS: usize = 64;
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

fn quantity_map() -> Value {
    json!({
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
    Schema::try_from(quantity_map()).expect("an object schema")
}

/// A container's `resources`: requests and limits checked as quantities.
pub fn resources(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(json!({
        "type": "object",
        "properties": {"requests": quantity_map(), "limits": quantity_map()},
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
                    "type": "string",
                    "maxLength": MAX_PATH,
                    "x-kubernetes-validations": [rule(
                        &format!("self.matches('{ENV_NAME_PATTERN}')"),
                        "must be an environment variable name: letters, digits, '_', '-' \
                         and '.', not starting with a digit",
                    )]
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
