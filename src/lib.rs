//! doris-operator: a Kubernetes operator for Apache Doris whose deployment
//! conventions live in editable Rhai policies and Jinja templates.

pub mod build_info;
pub mod cluster;
pub mod conf;
pub mod controller;
pub mod conventions;
pub mod crd;
pub mod doris;
pub mod explain;
pub mod kubectl;
pub mod metrics;
pub mod plan;
pub mod render;
pub mod samples;
