//! Prints how long a runaway policy runs before the sandbox stops it: each
//! policy (config, host_init, shape, restart_order, membership) in turn is
//! replaced by an endless loop, and the policy is called as the operator
//! calls it, on the full sample cluster. Three loops: an empty one, one
//! that copies ctx, and one that fills a map. Figures, not assertions:
//! `cargo bench --bench runaway`.

use std::collections::BTreeMap;
use std::time::Instant;

use doris_operator::conventions::{ConventionBundle, ConventionSources};
use doris_operator::plan::{PlanInput, membership, plan, restart};
use doris_operator::render::read_input;

const SAMPLE: &str = include_str!("../examples/doriscluster-full.yaml");

const POLICIES: &[(&str, &str)] = &[
    ("config.rhai", "config"),
    ("host_init.rhai", "host_init"),
    ("shape.rhai", "shape"),
    ("restart.rhai", "restart_order"),
    ("membership.rhai", "membership"),
];

const LOOPS: &[(&str, &str)] = &[
    ("empty loop", "loop { }"),
    // Rhai copies values: each pass copies all of ctx.
    (
        "copies ctx",
        "let m = #{}; let i = 0; loop { m[`k${i % 100}`] = ctx; i += 1; }",
    ),
    (
        "fills a map",
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
    ),
];

fn main() {
    let input = read_input("sample", SAMPLE).expect("sample parses");
    let cluster = input.clusters[0].as_ref();
    let config_maps = BTreeMap::new();
    for (file, function) in POLICIES {
        for (label, body) in LOOPS {
            let source = format!("fn {function}(ctx) {{ {body} }}");
            let sources =
                ConventionSources::embedded().overlay_files("bench", [(*file, source.as_str())]);
            let bundle = ConventionBundle::compile(sources).expect("runaway policy compiles");
            let start = Instant::now();
            let error = match *function {
                "restart_order" => {
                    let candidates = restart::full_restart_candidates(cluster);
                    restart::plan_restart(&bundle, cluster, "bench", &candidates)
                        .err()
                        .map(|e| e.to_string())
                }
                "membership" => membership::membership_policy(&bundle, cluster)
                    .err()
                    .map(|e| e.to_string()),
                _ => plan(
                    &bundle,
                    PlanInput {
                        cluster,
                        config_maps: &config_maps,
                        secret_keys: &Default::default(),
                        pod_security: Default::default(),
                    },
                )
                .err()
                .map(|e| e.to_string()),
            };
            let took = start.elapsed();
            let error = error.expect("a runaway policy is stopped with an error");
            println!(
                "{function:>13} {label:<12} stopped after {:>9.1} ms: {}",
                took.as_secs_f64() * 1e3,
                error.chars().take(110).collect::<String>()
            );
        }
    }
}
