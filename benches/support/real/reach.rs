//! How long a convention change takes to reach every cluster: a
//! default-set ConfigMap whose `services.yaml.j2` refines the default
//! template with one annotation on every Service, put in the operator's
//! conventions namespace, timed until every Service the operator made in
//! the run's namespace carries it. This operator only (the peer has no
//! conventions).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// The annotation the change puts on every Service.
const MARK: &str = "bench.doris.apache.org/convention";

/// Puts the change (its annotation valued `value`) in `namespace` and
/// returns how long until all Services there carry it, and how many
/// carried it then (of how many).
pub(super) async fn convention_change(
    client: &Client,
    namespace: &str,
    value: &str,
    limit: Duration,
) -> (Option<Duration>, usize, usize) {
    let template = format!(
        "{{% for service in below %}}\n---\n{{{{ service | patch(\"metadata.annotations\", \
         {{\"{MARK}\": \"{value}\"}}) | tojson }}}}\n{{% endfor %}}\n"
    );
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench-service-annotation", "namespace": namespace,
                     "labels": {"doris.selectdb.com/conventions": "default"}},
        "data": {"services.yaml.j2": template},
    });
    let started = Instant::now();
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            "bench-service-annotation",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(cm),
        )
        .await
        .expect("the convention ConfigMap is applied");
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels("app.kubernetes.io/managed-by=doris-operator");
    let (mut carried, mut all) = (0, 0);
    while started.elapsed() < limit {
        if let Ok(list) = services.list_metadata(&selector).await {
            all = list.items.len();
            carried = list
                .items
                .iter()
                .filter(|s| {
                    s.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(MARK))
                        .is_some_and(|v| v == value)
                })
                .count();
            if all > 0 && carried == all {
                return (Some(started.elapsed()), carried, all);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (None, carried, all)
}
