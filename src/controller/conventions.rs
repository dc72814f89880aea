//! The operator's side of live conventions: ConfigMaps labelled
//! `doris.selectdb.com/conventions` in the operator's namespace, read
//! through the API; the check of a candidate against every live cluster
//! that would use it; and the report of each reload as Events on those
//! ConfigMaps and as metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::Api;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::conventions::reload::{
    ConfigMapLayer, DEFAULT_SET, LiveCanary, LiveConventions, Outcome, SET_KEY, set_of,
};
use crate::crd::DorisCluster;
use crate::metrics::Metrics;
use crate::plan::{self, PlanError, PlanInput};

/// Watches the convention ConfigMaps of `namespace` and offers their files
/// to `live` whenever they change. `synced` is told once the first full
/// list has been offered. Runs until dropped.
pub async fn watch_config_maps(
    client: Client,
    namespace: String,
    live: Arc<LiveConventions>,
    store_writer: reflector::store::Writer<ConfigMap>,
    store: Store<ConfigMap>,
    synced: tokio::sync::oneshot::Sender<()>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut synced = Some(synced);
    let mut offered: Option<Vec<ConfigMapLayer>> = None;
    let events = watcher(api, watcher::Config::default().labels(SET_KEY))
        .default_backoff()
        .reflect(store_writer);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let ready = match event {
            Ok(watcher::Event::InitDone) => true,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => synced.is_none(),
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "watching the convention ConfigMaps");
                false
            }
        };
        if !ready {
            continue;
        }
        // A burst of changes is read once, as it ends.
        while let Some(Some(_)) = events.next().now_or_never() {}
        let layers = layers(&store.state());
        if offered.as_ref() != Some(&layers) {
            live.offer_config_maps(layers.clone()).await;
            offered = Some(layers);
        }
        if let Some(tx) = synced.take() {
            let _ = tx.send(());
        }
    }
}

/// The convention files each ConfigMap holds, with the set its label names.
fn layers(config_maps: &[Arc<ConfigMap>]) -> Vec<ConfigMapLayer> {
    config_maps
        .iter()
        .map(|cm| ConfigMapLayer {
            name: format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any()),
            set: cm
                .labels()
                .get(SET_KEY)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_SET)
                .to_string(),
            files: cm.data.clone().unwrap_or_default(),
        })
        .collect()
}

/// A candidate passes when it plans, and plans a full restart of, every
/// live cluster of its set. An invalid spec is the cluster's problem, not
/// the candidate's, and does not count.
pub fn live_canary(client: Client, clusters: Store<DorisCluster>) -> LiveCanary {
    Arc::new(move |set, bundle| {
        let client = client.clone();
        let clusters: Vec<_> = clusters
            .state()
            .into_iter()
            .filter(|c| {
                c.metadata.deletion_timestamp.is_none()
                    && set_of(c.metadata.annotations.as_ref()) == set
            })
            .collect();
        async move {
            for cluster in clusters {
                let namespace = cluster.namespace().unwrap_or_default();
                let name = format!("DorisCluster {namespace}/{}", cluster.name_any());
                let config_maps = super::user_config_maps(&client, &cluster, &namespace)
                    .await
                    .map_err(|e| format!("{name}: reading its ConfigMaps: {e}"))?;
                // Secret keys only decide whether the spec is valid, which
                // is not what a canary checks.
                let input = PlanInput {
                    cluster: &cluster,
                    config_maps: &config_maps,
                    secret_keys: &Default::default(),
                };
                match plan::plan(&bundle, input) {
                    Ok(_) => {}
                    Err(PlanError::InvalidSpec(_)) => continue,
                    Err(e) => return Err(format!("{name}: {e}")),
                }
                let candidates = plan::restart::full_restart_candidates(&cluster);
                plan::restart::plan_restart(&bundle, &cluster, "canary", &candidates)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            Ok(())
        }
        .boxed()
    })
}

/// Reports every reload: an Event on each ConfigMap the set's files come
/// from, and the refusal metrics. Runs until `live` is dropped.
pub async fn report_outcomes(
    live: Arc<LiveConventions>,
    recorder: Recorder,
    config_maps: Store<ConfigMap>,
    metrics: Arc<Metrics>,
) {
    let mut outcomes = live.outcomes();
    drop(live);
    loop {
        let outcome: Outcome = match outcomes.recv().await {
            Ok(o) => o,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let (type_, reason, note) = match &outcome.result {
            Ok(revision) => {
                metrics.conventions_result(&outcome.set, true);
                (
                    EventType::Normal,
                    "ConventionsLive",
                    format!(
                        "convention set {:?} revision {revision} is live",
                        outcome.set
                    ),
                )
            }
            Err(message) => {
                metrics.conventions_result(&outcome.set, false);
                (
                    EventType::Warning,
                    "ConventionsRefused",
                    format!(
                        "convention set {:?} refused, the last good version stays live: {message}",
                        outcome.set
                    ),
                )
            }
        };
        let by_name: BTreeMap<String, Arc<ConfigMap>> = config_maps
            .state()
            .into_iter()
            .map(|cm| {
                (
                    format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any()),
                    cm,
                )
            })
            .collect();
        for name in &outcome.config_maps {
            let Some(cm) = by_name.get(name) else {
                continue;
            };
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("ConfigMap".into()),
                name: cm.metadata.name.clone(),
                namespace: cm.metadata.namespace.clone(),
                uid: cm.metadata.uid.clone(),
                ..Default::default()
            };
            let event = KubeEvent {
                type_,
                reason: reason.into(),
                note: Some(note.chars().take(1000).collect()),
                action: "Reload".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "could not publish an Event");
            }
        }
    }
}
