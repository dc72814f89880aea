//! The operator's side of live conventions: ConfigMaps labelled
//! `doris.selectdb.com/conventions` in the operator's namespace, read
//! through the API; the check of a candidate against every live cluster
//! that would use it; and the report of each reload as Events on those
//! ConfigMaps and as metrics.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::conventions::reload::{
    ConfigMapLayer, DEFAULT_SET, Discovery, LiveCanary, LiveConventions, Outcome, SET_KEY, set_of,
};
use crate::crd::{DorisCluster, DorisDisaggregatedCluster};

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
    let events = watcher(api, super::stores::list_config().labels(SET_KEY))
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
pub fn layers(config_maps: &[Arc<ConfigMap>]) -> Vec<ConfigMapLayer> {
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

/// A candidate passes when it plans, plans a full restart of, decides the
/// membership rules, the maintenance windows and made-up configuration
/// changes of every live cluster of its set: every policy runs.
/// An invalid spec (or a value a policy reports as the cluster's mistake)
/// is the cluster's problem, not the candidate's, and does not count. The
/// operator must also be allowed to write every kind of object the
/// candidate plans (see [`Permissions`]).
pub fn live_canary(
    client: Client,
    clusters: Store<DorisCluster>,
    disaggregated: Option<Store<DorisDisaggregatedCluster>>,
    config_maps: Arc<super::user_inputs::UserConfigMaps>,
) -> LiveCanary {
    let permissions = Arc::new(Permissions::default());
    Arc::new(move |set, bundle| {
        let client = client.clone();
        let permissions = permissions.clone();
        let cached = config_maps.clone();
        let live = |meta: &kube::core::ObjectMeta| {
            meta.deletion_timestamp.is_none() && set_of(meta.annotations.as_ref()) == set
        };
        let mut all: Vec<Cluster> = clusters
            .state()
            .into_iter()
            .filter(|c| live(&c.metadata))
            .map(|c| Cluster::Doris(Box::new((*c).clone())))
            .collect();
        if let Some(store) = &disaggregated {
            all.extend(
                store
                    .state()
                    .into_iter()
                    .filter(|c| live(&c.metadata))
                    .map(|c| Cluster::Disaggregated(Box::new((*c).clone()))),
            );
        }
        async move {
            permissions.next_candidate();
            for object in &all {
                let cluster = object.as_ref();
                let namespace = cluster.namespace();
                let name = format!("{} {namespace}/{}", cluster.kind(), cluster.name());
                let config_maps = super::user_config_maps(&client, cluster, Some(&cached))
                    .await
                    .map_err(|e| format!("{name}: reading its ConfigMaps: {e}"))?;
                // Secret keys only decide whether the spec is valid, which
                // is not what a canary checks.
                let input = PlanInput {
                    cluster,
                    config_maps: &config_maps,
                    secret_keys: &Default::default(),
                    pod_security: Default::default(),
                };
                match plan::plan(&bundle, input) {
                    Ok(planned) => {
                        permissions
                            .check(&client, &namespace, &planned.objects)
                            .await?;
                    }
                    Err(PlanError::InvalidSpec(_)) => continue,
                    Err(e) => return Err(format!("{name}: {e}")),
                }
                let candidates = plan::restart::full_restart_candidates(cluster);
                match plan::restart::plan_restart(&bundle, cluster, "canary", &candidates) {
                    Ok(_) => {}
                    Err(e) if e.in_input => {}
                    Err(e) => return Err(format!("{name}: {e}")),
                }
                match plan::membership::membership_policy(&bundle, cluster) {
                    Ok(_) => {}
                    Err(e) if e.in_input => {}
                    Err(e) => return Err(format!("{name}: {e}")),
                }
                match plan::live_config::check_policy(&bundle, cluster) {
                    Ok(()) => {}
                    Err(e) if e.in_input => {}
                    Err(e) => return Err(format!("{name}: {e}")),
                }
                match plan::maintenance::maintenance(&bundle, cluster) {
                    Ok(_) => {}
                    Err(e) if e.in_input => {}
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            }
            Ok(())
        }
        .boxed()
    })
}

/// Kinds the operator caches, and so lists, watches and prunes, besides
/// reading and applying them.
const CACHED_KINDS: &[&str] = &[
    "StatefulSet",
    "Service",
    "ConfigMap",
    "HorizontalPodAutoscaler",
];

/// What the operator may do, as the API server answered
/// SelfSubjectAccessReviews: a candidate making objects the operator may
/// not write would fail on every reconcile of every cluster of its set, so
/// it is refused before it goes live. Each kind and verb is asked first
/// for every namespace at once (as a ClusterRole bound cluster wide
/// allows), then, if refused, for the namespace at hand. Allowed answers
/// are kept; a refusal is kept for the rest of one candidate's check only,
/// so a rule added since is seen by the next candidate.
#[derive(Default)]
pub struct Permissions {
    allowed: Mutex<HashSet<Access>>,
    refused: Mutex<HashSet<Access>>,
}

/// (group, plural, verb, namespace or `None` for every namespace).
type Access = (String, String, String, Option<String>);

impl Permissions {
    /// Fails naming the first rule the operator lacks for `objects` in
    /// `namespace`.
    pub async fn check(
        &self,
        client: &Client,
        namespace: &str,
        objects: &[Value],
    ) -> Result<(), String> {
        let kinds: BTreeSet<(&str, &str)> = objects
            .iter()
            .filter_map(|o| Some((o["apiVersion"].as_str()?, o["kind"].as_str()?)))
            .collect();
        for (api_version, kind) in kinds {
            let (group, plural) = resource_of(client, api_version, kind).await?;
            let verbs: &[&str] = if CACHED_KINDS.contains(&kind) {
                &["get", "list", "watch", "create", "patch", "delete"]
            } else {
                // Listed and deleted when a template stops making them.
                &["get", "list", "create", "patch", "delete"]
            };
            let mut missing = Vec::new();
            for verb in verbs {
                // Allowed in every namespace (a ClusterRole bound cluster
                // wide, as the operator is installed) answers for all of
                // them: one review per kind and verb, not per namespace.
                if !self.allows(client, &group, &plural, verb, None).await?
                    && !self
                        .allows(client, &group, &plural, verb, Some(namespace))
                        .await?
                {
                    missing.push(*verb);
                }
            }
            if !missing.is_empty() {
                let shown = if group.is_empty() {
                    plural.clone()
                } else {
                    format!("{group}/{plural}")
                };
                return Err(format!(
                    "the operator may not {} {shown} in namespace {namespace}: add to its \
                     ClusterRole the rule {{apiGroups: [\"{group}\"], resources: [{plural}], \
                     verbs: [{}]}}",
                    missing.join(", "),
                    verbs.join(", ")
                ));
            }
        }
        Ok(())
    }
}

impl Permissions {
    /// Whether the operator may `verb` `group/plural` in `namespace` (in
    /// every namespace when `None`): a kept answer, else the API server's.
    async fn allows(
        &self,
        client: &Client,
        group: &str,
        plural: &str,
        verb: &str,
        namespace: Option<&str>,
    ) -> Result<bool, String> {
        let key = (
            group.to_string(),
            plural.to_string(),
            verb.to_string(),
            namespace.map(str::to_string),
        );
        if self.allowed.lock().expect("lock").contains(&key) {
            return Ok(true);
        }
        if self.refused.lock().expect("lock").contains(&key) {
            return Ok(false);
        }
        let allowed = may(client, group, plural, verb, namespace).await?;
        let kept = if allowed {
            &self.allowed
        } else {
            &self.refused
        };
        kept.lock().expect("lock").insert(key);
        Ok(allowed)
    }

    /// A new candidate: refusals are asked again.
    fn next_candidate(&self) {
        self.refused.lock().expect("lock").clear();
    }
}

/// The API group and resource (plural) of a kind: known by heart for the
/// kinds the operator checks, else from discovery.
async fn resource_of(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> Result<(String, String), String> {
    let group = api_version
        .split_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default()
        .to_string();
    if let Some(plural) = super::apply::known_plural(kind) {
        return Ok((group, plural.to_string()));
    }
    let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(g, v, kind);
    kube::discovery::pinned_kind(client, &gvk)
        .await
        .map(|(resource, _)| (group, resource.plural))
        .map_err(|e| format!("the API server does not serve {api_version} {kind}: {e}"))
}

/// Asks the API server whether the operator may `verb` `group/plural` in
/// `namespace` (in every namespace when `None`).
async fn may(
    client: &Client,
    group: &str,
    plural: &str,
    verb: &str,
    namespace: Option<&str>,
) -> Result<bool, String> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_string()),
                resource: Some(plural.to_string()),
                verb: Some(verb.to_string()),
                namespace: namespace.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            format!("asking the API server whether the operator may {verb} {plural}: {e}")
        })?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Asks the API server for every kind it serves (API discovery) and lets
/// manifest templates make objects of those kinds.
pub fn served_kinds(client: Client) -> Discovery {
    Arc::new(move || {
        let client = client.clone();
        async move {
            // Aggregated discovery: two requests however many groups are
            // served (one per group version otherwise, as older API
            // servers need).
            let discovered = match kube::discovery::Discovery::new(client.clone())
                .run_aggregated()
                .await
            {
                Ok(discovery) => Ok(discovery),
                Err(_) => kube::discovery::Discovery::new(client).run().await,
            };
            match discovered {
                Ok(discovery) => {
                    let mut kinds = Vec::new();
                    for group in discovery.groups() {
                        for version in group.versions() {
                            for (resource, _) in group.versioned_resources(version) {
                                kinds.push((resource.api_version, resource.kind));
                            }
                        }
                    }
                    tracing::info!(kinds = kinds.len(), "read the kinds the API server serves");
                    plan::serve_kinds(kinds);
                }
                Err(e) => tracing::warn!(error = %e, "API discovery failed"),
            }
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
                note: Some(super::events::note(type_, reason, &note)),
                action: "Reload".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "could not publish an Event");
            }
        }
    }
}
