//! The plan: a pure function from a `DorisCluster` (plus the ConfigMaps it
//! references) and a conventions bundle to every Kubernetes object that runs
//! the cluster. No I/O happens here: the operator applies what this returns
//! and `doris-operator render` prints it, so a preview is what gets applied.
//!
//! For each component, in the order FE, BE, CN, Broker:
//! 1. the user's configuration file is read from their ConfigMap;
//! 2. `config.rhai` adds convention defaults and overrides, and the
//!    `<component>.conf.j2` template renders the final file;
//! 3. `host_init.rhai` decides the host-initialisation init containers;
//! 4. `shape.rhai` builds the objects (the StatefulSet) and the values the
//!    manifest templates use;
//! 5. every `*.yaml.j2` template renders further objects (Services, the
//!    configuration ConfigMap);
//! 6. every object is checked against its Kubernetes type, put in the
//!    cluster's namespace and owned by the cluster.

mod conf_checks;
mod context;
pub mod live_config;
pub mod maintenance;
pub mod membership;
pub mod mounts;
pub(crate) mod objects;
pub mod restart;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::cluster::{ClusterRef, PartNames};
use crate::conventions::{ConventionBundle, SourceError};
use crate::crd::{ComponentKind, FieldError};

pub use context::{conf_file_name, hash_files, names};
pub use objects::{
    APPLIED_HASH_ANNOTATION, CHECKED_KINDS, MANAGED_BY_LABEL, UNSERVED_KIND, api_context,
    parse_api_resource, restamp, serve_kinds,
};

/// What a plan is computed from.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    pub cluster: ClusterRef<'a>,
    /// The data of the ConfigMaps the cluster references, by name. A
    /// referenced ConfigMap missing here is listed in [`Plan::missing_config_maps`].
    pub config_maps: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The keys of the Secrets the cluster mounts next to other files, by
    /// name; a Secret missing here is listed in [`Plan::unchecked_secrets`].
    pub secret_keys: &'a BTreeMap<String, BTreeSet<String>>,
    /// What the cluster's namespace lets pods do (`ctx.pod_security`).
    pub pod_security: PodSecurity,
}

/// The Pod Security Standard a namespace enforces, from its label
/// `pod-security.kubernetes.io/enforce`; `host_init.rhai` reads it to tune
/// hosts only in ways the namespace admits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PodSecurity {
    /// No label: nothing is refused (unless the cluster's own admission
    /// configuration sets another default, which a namespace does not show).
    #[default]
    Privileged,
    Baseline,
    Restricted,
}

impl PodSecurity {
    /// The namespace label that says the level.
    pub const LABEL: &'static str = "pod-security.kubernetes.io/enforce";

    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurity::Privileged => "privileged",
            PodSecurity::Baseline => "baseline",
            PodSecurity::Restricted => "restricted",
        }
    }

    /// A level by name (`privileged`, `baseline`, `restricted`).
    pub fn parse(level: &str) -> Result<PodSecurity, String> {
        match level {
            "privileged" => Ok(PodSecurity::Privileged),
            "baseline" => Ok(PodSecurity::Baseline),
            "restricted" => Ok(PodSecurity::Restricted),
            other => Err(format!(
                "{other:?} is not a Pod Security level (privileged, baseline or restricted)"
            )),
        }
    }

    /// The level a namespace with `labels` enforces. A value that is not a
    /// level is taken as the strictest, so that nothing planned for it is
    /// refused for being too lax.
    pub fn of_namespace(labels: Option<&BTreeMap<String, String>>) -> PodSecurity {
        match labels.and_then(|l| l.get(Self::LABEL)) {
            None => PodSecurity::Privileged,
            Some(level) => PodSecurity::parse(level).unwrap_or(PodSecurity::Restricted),
        }
    }
}

/// What the conventions decided for one part.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentPlan {
    pub kind: ComponentKind,
    /// The part's name, unique in the cluster (see [`crate::cluster::Part`]).
    pub part: String,
    /// Where its spec is in the CR (`spec.feSpec`, `spec.computeGroups[1]`).
    pub field: String,
    pub names: PartNames,
    /// Hash of the configuration files the component's pods mount.
    pub config_hash: String,
    /// The rendered configuration files, by file name.
    pub files: BTreeMap<String, String>,
    /// Hash of what the user wrote that shapes the part's pods (see
    /// [`restart::inputs_hash`]): a pod template change under the same
    /// inputs came from the conventions.
    pub inputs_hash: String,
}

/// Every object a cluster needs, in a stable order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The conventions revision that produced this plan.
    pub revision: String,
    pub objects: Vec<Value>,
    pub components: Vec<ComponentPlan>,
    /// Referenced ConfigMaps that were not supplied; their configuration was
    /// planned from convention defaults alone.
    pub missing_config_maps: Vec<String>,
    /// Secrets mounted in a directory with other files whose keys were not
    /// supplied: a file name they share with the others was not checked.
    pub unchecked_secrets: Vec<String>,
    /// StatefulSets whose replicas a planned HorizontalPodAutoscaler owns,
    /// with the replicas they are created with. Their planned `replicas` is
    /// for creation only: the operator leaves it out of later applies, and
    /// the content hash does not cover it.
    pub autoscaled: BTreeMap<String, i32>,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The cluster spec breaks a rule; every violation, by field path.
    #[error("invalid spec:\n{}", list(.0))]
    InvalidSpec(Vec<FieldError>),
    /// A policy or template failed or returned something unusable.
    #[error("{component}: {error}")]
    Convention {
        component: &'static str,
        error: SourceError,
    },
}

impl PlanError {
    /// A fixed name for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            PlanError::InvalidSpec(_) => "InvalidSpec",
            PlanError::Convention { .. } => "ConventionFailed",
        }
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for Plan {
    /// The objects as multi-document YAML.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for obj in &self.objects {
            writeln!(f, "---")?;
            let text = serde_norway::to_string(obj).map_err(|_| fmt::Error)?;
            f.write_str(&text)?;
        }
        Ok(())
    }
}

/// Plans every object of a cluster. Pure: same input, same output.
pub fn plan(bundle: &ConventionBundle, input: PlanInput<'_>) -> Result<Plan, PlanError> {
    let violations = input.cluster.validate();
    if !violations.is_empty() {
        return Err(PlanError::InvalidSpec(violations));
    }
    let mut plan = Plan {
        revision: bundle.revision().to_string(),
        objects: Vec::new(),
        components: Vec::new(),
        missing_config_maps: Vec::new(),
        unchecked_secrets: Vec::new(),
        autoscaled: BTreeMap::new(),
    };
    let mut planner = context::Planner::new(bundle, input);
    for part in input.cluster.parts_with_specs() {
        let kind = part.kind;
        let component = planner.component(&part).map_err(|error| {
            if error.in_input {
                // A policy found a mistake in the cluster, not in itself.
                PlanError::InvalidSpec(vec![FieldError {
                    path: error.file,
                    message: error.message,
                }])
            } else if !planner.field_errors().is_empty() {
                // What the user wrote wrong in an earlier part may be
                // what the conventions failed on: that is said first.
                PlanError::InvalidSpec(planner.field_errors().to_vec())
            } else {
                PlanError::Convention {
                    component: kind.as_str(),
                    error,
                }
            }
        })?;
        let Some(component) = component else {
            continue;
        };
        plan.objects.extend(component.objects);
        plan.components.push(component.plan);
    }
    if !planner.field_errors().is_empty() {
        return Err(PlanError::InvalidSpec(planner.field_errors().to_vec()));
    }
    plan.missing_config_maps = planner.missing_config_maps();
    plan.unchecked_secrets = planner.unchecked_secrets();
    plan.autoscaled = objects::hand_replicas_to_autoscalers(&mut plan.objects);
    Ok(plan)
}
