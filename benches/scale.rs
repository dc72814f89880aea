//! Prints how the conventions pipeline copes with inputs at the edge of what
//! Kubernetes accepts: plans and restart plans of 1,000- and 5,000-BE
//! clusters, a 1 MiB `fe.conf` (the ConfigMap maximum) that renders and one
//! that is refused, and a DorisCluster nested 100,000 levels deep. Each case
//! prints its median time, or the error it ended with.
//! Figures, not assertions: run `cargo bench --bench scale`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use doris_operator::cluster::Cluster;
use doris_operator::conventions::ConventionBundle;
use doris_operator::plan::restart::{full_restart_candidates, plan_restart};
use doris_operator::plan::{PlanInput, plan};
use doris_operator::render::read_input;

/// The largest ConfigMap the API server stores.
const MIB: usize = 1 << 20;

fn cluster(bes: usize, config_map: Option<&str>) -> Cluster {
    let conf = config_map
        .map(|name| format!("    configMapInfo:\n      configMapName: {name}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: big\n  namespace: doris\n\
         spec:\n  feSpec:\n    replicas: 3\n    image: apache/doris:fe-2.1.8\n{conf}\
         \x20 beSpec:\n    replicas: {bes}\n    image: apache/doris:be-2.1.8\n"
    );
    read_input("bench", &yaml).expect("cluster parses").clusters[0].clone()
}

/// Runs `f` until `budget` is spent (at least once, at most `runs` times)
/// and prints the median, or the error of the first failing run.
fn report<T, E: std::fmt::Display>(
    what: &str,
    runs: usize,
    budget: Duration,
    mut f: impl FnMut() -> Result<T, E>,
) {
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < runs && (samples.is_empty() || started.elapsed() < budget) {
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        if let Err(e) = result {
            let mut e = e.to_string();
            if e.len() > 160 {
                e.truncate(e.floor_char_boundary(160));
                e.push('…');
            }
            println!(
                "{what:<40} failed after {:>9.3} ms: {e}",
                took.as_secs_f64() * 1e3
            );
            return;
        }
        std::hint::black_box(result.ok());
        samples.push(took);
    }
    samples.sort();
    println!(
        "{what:<40} median {:>9.3} ms   ({} runs)",
        samples[samples.len() / 2].as_secs_f64() * 1e3,
        samples.len()
    );
}

/// An `fe.conf` of `size` bytes: the stock ports, then distinct
/// `key = value` lines, then a comment filling it up.
fn big_fe_conf(size: usize) -> String {
    let mut text = String::from("http_port = 8030\nquery_port = 9030\n");
    let mut i = 0;
    while text.len() < size - 64 {
        text.push_str(&format!("custom_setting_{i} = value_{i}\n"));
        i += 1;
    }
    text.push('#');
    while text.len() < size - 1 {
        text.push('-');
    }
    text.push('\n');
    text
}

fn main() {
    let bundle = ConventionBundle::embedded().expect("defaults compile");
    let no_config_maps = BTreeMap::new();

    for bes in [1_000, 5_000] {
        let c = cluster(bes, None);
        report(
            &format!("plan 3 FE + {bes} BE"),
            50,
            Duration::from_secs(5),
            || {
                plan(
                    &bundle,
                    PlanInput {
                        cluster: c.as_ref(),
                        config_maps: &no_config_maps,
                        secret_keys: &Default::default(),
                        pod_security: Default::default(),
                    },
                )
            },
        );
        let candidates = full_restart_candidates(c.as_ref());
        report(
            &format!("restart plan 3 FE + {bes} BE"),
            50,
            Duration::from_secs(5),
            || plan_restart(&bundle, c.as_ref(), "preview", &candidates),
        );
    }

    let c = cluster(3, Some("fe-conf"));
    for (what, size) in [
        ("plan with a 1 MiB - 8 KiB fe.conf", MIB - 8 * 1024),
        ("plan with a 1 MiB fe.conf", MIB),
    ] {
        let config_maps = BTreeMap::from([(
            "fe-conf".to_string(),
            BTreeMap::from([("fe.conf".to_string(), big_fe_conf(size))]),
        )]);
        report(what, 10, Duration::from_secs(5), || {
            plan(
                &bundle,
                PlanInput {
                    cluster: c.as_ref(),
                    config_maps: &config_maps,
                    secret_keys: &Default::default(),
                    pod_security: Default::default(),
                },
            )
        });
    }

    let depth = 100_000;
    let nested = format!(
        "apiVersion: doris.selectdb.com/v1\nkind: DorisCluster\nmetadata:\n  name: deep\nspec:\n  feSpec:\n    image: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    report(
        "read a CR nested 100,000 deep",
        10,
        Duration::from_secs(5),
        || read_input("deep.yaml", &nested),
    );
}
