//! Prints how long the conventions pipeline takes: compiling the default
//! bundle, and rendering a 3 FE + 3 BE cluster with a compiled bundle.
//! Figures, not assertions: run `cargo bench --bench render`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use doris_operator::conventions::ConventionBundle;
use doris_operator::plan::{PlanInput, plan};
use doris_operator::render::read_input;

const SAMPLE: &str = include_str!("../examples/doriscluster-sample.yaml");

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    // Warm up caches and the allocator first.
    for _ in 0..iterations.min(10) {
        f();
    }
    let samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    let p90 = {
        let mut s = samples.clone();
        s.sort();
        s[s.len() * 9 / 10]
    };
    (median(samples), p90)
}

fn main() {
    let (compile, compile_p90) = measure(30, || {
        ConventionBundle::embedded().expect("defaults compile");
    });
    println!(
        "compile default bundle:        median {:>9.3} ms   p90 {:>9.3} ms",
        compile.as_secs_f64() * 1e3,
        compile_p90.as_secs_f64() * 1e3
    );

    let bundle = ConventionBundle::embedded().expect("defaults compile");
    let input = read_input("sample", SAMPLE).expect("sample parses");
    let cluster = input.clusters[0].as_ref();
    let config_maps = BTreeMap::new();
    let (render, render_p90) = measure(500, || {
        let planned = plan(
            &bundle,
            PlanInput {
                cluster,
                config_maps: &config_maps,
                secret_keys: &Default::default(),
                pod_security: Default::default(),
            },
        )
        .expect("sample plans");
        std::hint::black_box(planned);
    });
    println!(
        "render 3 FE + 3 BE cluster:    median {:>9.3} ms   p90 {:>9.3} ms",
        render.as_secs_f64() * 1e3,
        render_p90.as_secs_f64() * 1e3
    );
}
