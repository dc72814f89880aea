//! Small CRD schemas for fields typed with large Kubernetes types. The API
//! server keeps these fields as given; the operator checks them when it
//! reads the cluster, with the same error paths.

use schemars::{Schema, SchemaGenerator, json_schema};

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

/// Resource quantities by name (`cpu: 8`, `memory: 16Gi`).
pub fn quantities(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]
        }
    })
}

/// An RFC 3339 timestamp.
pub fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time"
    })
}
