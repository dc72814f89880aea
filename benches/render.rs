//! Prints how long the conventions pipeline takes: compiling the default
//! bundle, and rendering a 3 FE + 3 BE cluster with a compiled bundle: the
//! defaults alone, and the defaults with two layers of refinement stacked
//! over them. Figures, not assertions: run `cargo bench --bench render`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use doris_operator::conventions::ConventionBundle;
use doris_operator::plan::{PlanInput, plan};
use doris_operator::render::{self, Format, read_input};

const SAMPLE: &str = include_str!("../examples/doriscluster-sample.yaml");

/// The second layer over examples/conventions/be-toleration.yaml: a
/// ConfigMap of its own that refines shape.rhai again, annotating the BE
/// pods the layer below labelled.
const COST_CENTRE: &str = r#"fn shape(ctx, below) {
    if ctx.component == "be" {
        below.patch("objects[kind=StatefulSet].spec.template.metadata", #{
            annotations: #{ "example.com/cost-centre": "analytics" }
        });
    }
    below
}
"#;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p90(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() * 9 / 10]
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
    let p90 = p90(&samples);
    (median(samples), p90)
}

/// Like [`measure`], for several functions taken in turn within each
/// iteration, so that a change of load on the machine weighs on each alike.
fn measure_interleaved(
    iterations: usize,
    fs: &mut [&mut dyn FnMut()],
) -> Vec<(Duration, Duration)> {
    for _ in 0..iterations.min(10) {
        fs.iter_mut().for_each(|f| f());
    }
    let mut samples = vec![Vec::with_capacity(iterations); fs.len()];
    for _ in 0..iterations {
        for (f, samples) in fs.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            f();
            samples.push(start.elapsed());
        }
    }
    samples
        .into_iter()
        .map(|s| (median(s.clone()), p90(&s)))
        .collect()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/conventions")
        .join(name)
}

/// The objects of the sample with `bundle`, as JSON.
fn rendered(bundle: &ConventionBundle) -> serde_json::Value {
    let input = read_input("sample", SAMPLE).expect("sample parses");
    let (out, _) = render::render(bundle, &input, Format::Json).expect("sample renders");
    serde_json::from_str(&out).expect("a List")
}

fn object<'a>(list: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    list["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        })
        .unwrap_or_else(|| panic!("no {kind} {name}"))
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

    let defaults = ConventionBundle::embedded().expect("defaults compile");
    // Two layers that both refine shape.rhai: the example ConfigMap, then
    // COST_CENTRE as a ConfigMap of its own above it.
    let shape_twice = ConventionBundle::compile(
        render::load_sources([example("be-toleration.yaml").as_path()])
            .expect("the example loads")
            .overlay_files(
                "configmap doris-operator/conventions-cost-centre",
                [("shape.rhai", COST_CENTRE)],
            ),
    )
    .expect("the refinements compile");
    // Two layers refining two other files: a policy, then a template.
    let sysctl_services = render::load_bundle([
        example("be-sysctl.yaml").as_path(),
        example("service-annotation.yaml").as_path(),
    ])
    .expect("the refinements compile");

    // What is timed is what the refinements are meant to do.
    let list = rendered(&shape_twice);
    let pod = &object(&list, "StatefulSet", "doriscluster-sample-be")["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["team"], "analytics");
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/cost-centre"],
        "analytics"
    );
    let list = rendered(&sysctl_services);
    let pod = &object(&list, "StatefulSet", "doriscluster-sample-be")["spec"]["template"];
    assert!(pod["spec"]["securityContext"]["sysctls"].is_array());
    let service = object(&list, "Service", "doriscluster-sample-fe-service");
    assert_eq!(
        service["metadata"]["annotations"]["example.com/cost-centre"],
        "analytics"
    );

    let input = read_input("sample", SAMPLE).expect("sample parses");
    let cluster = input.clusters[0].as_ref();
    let config_maps = BTreeMap::new();
    let render_with = |bundle: &ConventionBundle| {
        let planned = plan(
            bundle,
            PlanInput {
                cluster,
                config_maps: &config_maps,
                secret_keys: &Default::default(),
                pod_security: Default::default(),
            },
        )
        .expect("sample plans");
        std::hint::black_box(planned);
    };
    let figures = measure_interleaved(
        1000,
        &mut [
            &mut || render_with(&defaults),
            &mut || render_with(&shape_twice),
            &mut || render_with(&sysctl_services),
        ],
    );
    let lines = [
        "render 3 FE + 3 BE cluster:   ",
        "  + 2 shape.rhai refinements: ",
        "  + host_init + services.j2:  ",
    ];
    let base = figures[0].0.as_secs_f64();
    for (i, (line, (median, p90))) in lines.iter().zip(&figures).enumerate() {
        let ratio = if i == 0 {
            String::new()
        } else {
            format!("   {:.2}x the defaults", median.as_secs_f64() / base)
        };
        println!(
            "{line} median {:>9.3} ms   p90 {:>9.3} ms{ratio}",
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3
        );
    }
    println!(
        "  (layers, bottom up: examples/conventions/be-toleration.yaml, then a second \
         ConfigMap refining shape.rhai again; be-sysctl.yaml, then service-annotation.yaml)"
    );
}
