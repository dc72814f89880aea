//! Sample clusters compiled into the binary. A convention bundle must render
//! all of them, and plan their restart, before it is trusted.

use crate::conventions::ConventionBundle;
use crate::render::{self, Format};

/// (file name, content) of each built-in sample.
pub const SAMPLES: &[(&str, &str)] = &[
    (
        "examples/doriscluster-sample.yaml",
        include_str!("../examples/doriscluster-sample.yaml"),
    ),
    (
        "examples/doriscluster-full.yaml",
        include_str!("../examples/doriscluster-full.yaml"),
    ),
    (
        "examples/doriscluster-broker.yaml",
        include_str!("../examples/doriscluster-broker.yaml"),
    ),
    (
        "examples/ddc-sample.yaml",
        include_str!("../examples/ddc-sample.yaml"),
    ),
];

/// Renders every sample with `bundle`, plans its full restart, asks for
/// its membership rules and maintenance windows and decides made-up
/// configuration changes: every policy runs on every sample. Returns how many
/// samples passed, or the first failure.
pub fn canary(bundle: &ConventionBundle) -> Result<usize, String> {
    for (file, text) in SAMPLES {
        run_every_policy(bundle, file, text)?;
    }
    Ok(SAMPLES.len())
}

/// Runs every policy and template of `bundle` on the clusters of one file
/// (`file` names it in errors), as [`canary`] does for each sample.
pub fn run_every_policy(bundle: &ConventionBundle, file: &str, text: &str) -> Result<(), String> {
    let input = render::read_input(file, text)?;
    render::render(bundle, &input, Format::Yaml).map_err(|e| format!("{file}: {e}"))?;
    render::render_restart_plan(bundle, &input, Format::Yaml)
        .map_err(|e| format!("{file}: {e}"))?;
    for cluster in &input.clusters {
        let cluster = cluster.as_ref();
        crate::plan::membership::membership_policy(bundle, cluster)
            .map_err(|e| format!("{file}: {}: {e}", cluster.describe()))?;
        crate::plan::live_config::check_policy(bundle, cluster)
            .map_err(|e| format!("{file}: {}: {e}", cluster.describe()))?;
        crate::plan::maintenance::maintenance(bundle, cluster)
            .map_err(|e| format!("{file}: {}: {e}", cluster.describe()))?;
    }
    Ok(())
}
