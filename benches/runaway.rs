//! Prints how long a runaway policy runs before the sandbox stops it: each
//! policy (config, host_init, shape, restart_order, membership) in turn is
//! replaced by an endless loop, and the policy is called as the operator
//! calls it, on the full sample cluster. Three loops: an empty one, one
//! that copies ctx, and one that fills a map. Then the same loops in
//! `restart.rhai` with the ctx of a 5,000-BE cluster (limits raised by its
//! size), where the report must still say where the loop is.
//! Figures, not assertions: `cargo bench --bench runaway`.

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
            print_stop(function, label, start, error);
        }
    }
    let big = read_input("big", &big_cluster(5_000)).expect("cluster parses");
    let cluster = big.clusters[0].as_ref();
    let candidates = restart::full_restart_candidates(cluster);
    for (label, body) in LOOPS {
        let source = format!("fn restart_order(ctx) {{\n    {body}\n}}\n");
        let sources = ConventionSources::embedded()
            .overlay_files("bench", [("restart.rhai", source.as_str())]);
        let bundle = ConventionBundle::compile(sources).expect("runaway policy compiles");
        let start = Instant::now();
        let error = restart::plan_restart(&bundle, cluster, "bench", &candidates)
            .err()
            .map(|e| e.to_string());
        print_stop("5,000 BEs", label, start, error);
    }
}

fn print_stop(what: &str, label: &str, start: Instant, error: Option<String>) {
    let took = start.elapsed();
    let error = error.expect("a runaway policy is stopped with an error");
    println!(
        "{what:>13} {label:<12} stopped after {:>9.1} ms: {}",
        took.as_secs_f64() * 1e3,
        error.chars().take(110).collect::<String>()
    );
}

/// A DorisCluster of 3 FEs and `bes` BEs.
fn big_cluster(bes: usize) -> String {
    format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: big\n  namespace: doris\n\
         spec:\n  feSpec:\n    replicas: 3\n    image: apache/doris:fe-2.1.8\n\
         \x20 beSpec:\n    replicas: {bes}\n    image: apache/doris:be-2.1.8\n"
    )
}
