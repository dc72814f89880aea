//! Configuration changes carried out on the running cluster.
//!
//! When a part's rendered configuration changes, the keys that changed are
//! decided one by one ([`crate::plan::live_config`]): with what the running
//! Doris says may change at run time (`SHOW FRONTEND CONFIG`, a BE's
//! `/api/show_config`), `config.rhai` says `live`, `restart` or `ignore`.
//! Live keys are set on every Ready node (FE: `ADMIN SET ALL FRONTENDS
//! CONFIG` from Doris 2.1.5, else `ADMIN SET FRONTEND CONFIG` on each FE,
//! see [`super::live_fe`]; each BE/CN pod: `update_config` with
//! `persist=true`). Only then
//! does the part's ConfigMap get the new files, so a pod that starts later
//! reads them; and the pod template's configuration hash moves only when a
//! key needs a restart, so the ordered rollout restarts the pods for that
//! and for nothing else.
//!
//! Until every live key is set everywhere the change waits: the ConfigMap
//! and the pod template keep what they had, status says which node refused
//! what (or that Doris did not answer), and the next reconcile tries again.
//! Nothing is skipped silently.
//!
//! What the pods' template hash stands for is kept on the ConfigMap, next
//! to the files, in two annotations written in the same apply: the hash of
//! the files it holds ([`FILES_HASH_ANNOTATION`]) and the pod template hash
//! that pods started from any of those files are current with
//! ([`RESTART_HASH_ANNOTATION`]). A reconcile whose files are the ConfigMap's
//! keeps that template hash; one whose files differ carries out the change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use crate::cluster::{ClusterRef, Part};
use crate::conventions::ConventionBundle;
use crate::crd::{ComponentKind, ConfigChangeStatus, LiveSetting, RefusedSetting};
use crate::doris::BeAuth;
use crate::plan::live_config::{self as decide, Change, Decision};
use crate::plan::{ComponentPlan, Plan, hash_files, restamp};

use super::Context;
use super::be_link;
use super::live_fe;
use super::rollout::is_ready;
use super::status::{Status, component_pods};

/// On a part's ConfigMap: the hash of the files it holds.
pub const FILES_HASH_ANNOTATION: &str = "doris.selectdb.com/files-hash";
/// On a part's ConfigMap: the pod template configuration hash that pods
/// started from its files are current with.
pub const RESTART_HASH_ANNOTATION: &str = "doris.selectdb.com/restart-config-hash";
/// On the pod template: the configuration hash whose change restarts pods
/// (put there by `shape.rhai` when restarts on configuration change are on).
pub const POD_CONFIG_HASH_ANNOTATION: &str = "doris.selectdb.com/config-hash";

/// Where a StatefulSet's pod template carries [`POD_CONFIG_HASH_ANNOTATION`],
/// as a JSON pointer.
fn config_hash_pointer() -> String {
    format!(
        "/spec/template/metadata/annotations/{}",
        POD_CONFIG_HASH_ANNOTATION
            .replace('~', "~0")
            .replace('/', "~1")
    )
}

/// How soon a change that waits is tried again.
const RETRY: Duration = Duration::from_secs(3);

/// What this reconcile did with configuration changes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Entries of parts whose change was carried out or waits now; they
    /// replace the part's previous entry.
    pub entries: Vec<ConfigChangeStatus>,
    pub events: Vec<(EventType, &'static str, String)>,
    /// When to look again (a change waits).
    pub requeue: Option<Duration>,
}

impl Outcome {
    /// `status.configuration` from the previous entries and this outcome's,
    /// for the parts `planned` still has.
    /// Keys that waited for a restart are cleared once every pod of their
    /// part runs the pod template the plan carries (`pods`: the cluster's).
    pub fn fold_into_status(&self, planned: &Plan, pods: &[Arc<Pod>], status: &mut Status) {
        let parts: BTreeSet<&str> = planned.components.iter().map(|c| c.part.as_str()).collect();
        let mut entries: Vec<ConfigChangeStatus> = status
            .configuration
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| parts.contains(e.component.as_str()))
            .filter(|e| !self.entries.iter().any(|n| n.component == e.component))
            .collect();
        entries.extend(self.entries.iter().cloned());
        for entry in entries
            .iter_mut()
            .filter(|e| !e.awaiting_restart.is_empty())
        {
            if restarted(planned, &entry.component, pods) {
                entry.awaiting_restart.clear();
                entry.message = None;
            }
        }
        entries.sort_by(|a, b| a.component.cmp(&b.component));
        status.configuration = (!entries.is_empty()).then_some(entries);
    }
}

/// Whether every pod of `part` runs with the configuration hash its planned
/// pod template carries: the restart a changed key waited for is done.
fn restarted(planned: &Plan, part: &str, pods: &[Arc<Pod>]) -> bool {
    let Some(component) = planned.components.iter().find(|c| c.part == part) else {
        return false;
    };
    let Some(wanted) = planned
        .objects
        .iter()
        .find(|o| is_named(o, "StatefulSet", &component.names.statefulset))
        .and_then(|sts| sts.pointer(&config_hash_pointer()))
        .and_then(Value::as_str)
    else {
        return false;
    };
    let pods = component_pods(pods, &component.names);
    !pods.is_empty()
        && pods.iter().all(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(POD_CONFIG_HASH_ANNOTATION))
                    .map(String::as_str)
                    == Some(wanted)
        })
}

/// What the ConfigMap of a part says it holds.
struct Recorded {
    files_hash: Option<String>,
    restart_hash: Option<String>,
}

/// Carries out the configuration changes of every part of `planned`, and
/// makes its ConfigMaps and pod templates say what the pods are current
/// with (see the module doc). `pods` are the cluster's pods.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    ctx: &Context,
    cluster: ClusterRef<'_>,
    bundle: &ConventionBundle,
    planned: &mut std::borrow::Cow<'_, Plan>,
    pods: &[Arc<Pod>],
    previous: &Status,
    now: &Time,
) -> Result<Outcome, super::Error> {
    let mut out = Outcome::default();
    let namespace = cluster.namespace();
    let parts = cluster.parts();
    for index in 0..planned.components.len() {
        let component = &planned.components[index];
        let recorded = ctx
            .stores
            .config_maps
            .get(&ObjectRef::new(&component.names.config_map).within(&namespace))
            .map(|cm| {
                let annotation = |key: &str| {
                    cm.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(key))
                        .cloned()
                };
                Recorded {
                    files_hash: annotation(FILES_HASH_ANNOTATION),
                    restart_hash: annotation(RESTART_HASH_ANNOTATION),
                }
            });
        // The files as the planned ConfigMap carries them (the memoized
        // plan keeps them only there).
        let Some(new_files) = planned_files(planned, &component.names.config_map) else {
            continue;
        };
        let new_files_hash = hash_files(&new_files);
        let new_hash = component.config_hash.clone();
        let (held, restart_hash) = match recorded {
            // New, or made before the files were recorded: as planned.
            None
            | Some(Recorded {
                files_hash: None, ..
            }) => (None, new_hash.clone()),
            Some(Recorded {
                files_hash: Some(files),
                restart_hash,
            }) => {
                let current = restart_hash.unwrap_or_else(|| new_hash.clone());
                if files == new_files_hash {
                    (None, current)
                } else {
                    let Some(part) = parts.iter().find(|p| p.name == component.part) else {
                        continue;
                    };
                    let change = carry_out(
                        ctx, cluster, bundle, planned, part, component, &new_files, pods, previous,
                        now,
                    )
                    .await?;
                    out.events.extend(change.events);
                    out.entries.push(change.entry);
                    match change.result {
                        Carried::Waits(old_files) => {
                            out.requeue = Some(RETRY);
                            (Some((old_files, files)), current)
                        }
                        Carried::Done { restart: true } => (None, new_hash.clone()),
                        Carried::Done { restart: false } => (None, current),
                    }
                }
            }
        };
        record(planned.to_mut(), index, held, new_files_hash, &restart_hash);
    }
    Ok(out)
}

/// Makes part `index`'s planned ConfigMap record the files it holds (the
/// old ones, with their recorded hash, while a change waits) and its pod
/// template carry `restart_hash`.
fn record(
    plan: &mut Plan,
    index: usize,
    held: Option<(BTreeMap<String, String>, String)>,
    new_files_hash: String,
    restart_hash: &str,
) {
    let names = plan.components[index].names.clone();
    let objects = &mut plan.objects;
    if let Some(cm) = objects
        .iter_mut()
        .find(|o| is_named(o, "ConfigMap", &names.config_map))
    {
        let files_hash = match held {
            Some((old_files, recorded_hash)) => {
                cm["data"] = json!(old_files);
                recorded_hash
            }
            None => new_files_hash,
        };
        let annotations = &mut cm["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[FILES_HASH_ANNOTATION] = json!(files_hash);
        annotations[RESTART_HASH_ANNOTATION] = json!(restart_hash);
        restamp(cm);
    }
    if let Some(sts) = objects
        .iter_mut()
        .find(|o| is_named(o, "StatefulSet", &names.statefulset))
    {
        // Only a template that carries the hash (indexing a missing
        // key mutably would add one).
        if let Some(hash) = sts.pointer_mut(&config_hash_pointer())
            && hash.is_string()
            && hash.as_str() != Some(restart_hash)
        {
            *hash = json!(restart_hash);
            restamp(sts);
        }
    }
}

/// The files planned ConfigMap `name` carries.
fn planned_files(plan: &Plan, name: &str) -> Option<BTreeMap<String, String>> {
    plan.objects
        .iter()
        .find(|o| is_named(o, "ConfigMap", name))
        .and_then(|cm| serde_json::from_value(cm["data"].clone()).ok())
}

/// `plan` as the operator would apply it over ConfigMaps that record
/// `recorded(name)` = (files hash, restart hash): files a ConfigMap already
/// holds keep the restart hash it recorded; new or changed files are taken
/// as restarting, since whether Doris takes the changed keys at run time
/// is known only when the operator asks it. For previews (`kubectl doris
/// diff`); the operator itself goes through [`reconcile`].
pub fn as_recorded(
    plan: &mut Plan,
    recorded: impl Fn(&str) -> Option<(Option<String>, Option<String>)>,
) {
    for index in 0..plan.components.len() {
        let component = &plan.components[index];
        let Some(files) = planned_files(plan, &component.names.config_map) else {
            continue;
        };
        let files_hash = hash_files(&files);
        let restart_hash = match recorded(&component.names.config_map) {
            Some((Some(was), Some(restart))) if was == files_hash => restart,
            _ => component.config_hash.clone(),
        };
        record(plan, index, None, files_hash, &restart_hash);
    }
}

fn is_named(object: &Value, kind: &str, name: &str) -> bool {
    object["kind"] == kind && object["metadata"]["name"] == name
}

/// How a change went.
enum Carried {
    /// Every live key is set everywhere; whether a key needs a restart.
    Done { restart: bool },
    /// It waits; the ConfigMap keeps these files.
    Waits(BTreeMap<String, String>),
}

struct Carrying {
    result: Carried,
    entry: ConfigChangeStatus,
    events: Vec<(EventType, &'static str, String)>,
}

/// Decides and carries out the change of `component`'s files.
#[allow(clippy::too_many_arguments)]
async fn carry_out(
    ctx: &Context,
    cluster: ClusterRef<'_>,
    bundle: &ConventionBundle,
    planned: &Plan,
    part: &Part<'_>,
    component: &ComponentPlan,
    new_files: &BTreeMap<String, String>,
    pods: &[Arc<Pod>],
    previous: &Status,
    now: &Time,
) -> Result<Carrying, super::Error> {
    let earlier = previous
        .configuration
        .iter()
        .flatten()
        .find(|e| e.component == component.part && e.state == "applying");
    let mut entry = ConfigChangeStatus {
        component: component.part.clone(),
        state: "applying".into(),
        since: Some(
            earlier
                .and_then(|e| e.since.clone())
                .unwrap_or_else(|| now.0.to_string()),
        ),
        ..Default::default()
    };
    // The files the ConfigMap holds now, to compare with.
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &cluster.namespace());
    let old_files = api
        .get_opt(&component.names.config_map)
        .await
        .map_err(super::Error::Kube)?
        .and_then(|cm| cm.data)
        .unwrap_or_default();
    let conf_file = crate::plan::conf_file_name(part.kind);
    let changes = decide::changes(conf_file, &old_files, new_files);
    let ready: Vec<&Pod> = component_pods(pods, &component.names)
        .into_iter()
        .filter(|p| is_ready(p))
        .collect();

    // What the running Doris may change at run time, asked only when the
    // decisions depend on it and there is a running node to change.
    let decided = |mutable: &dyn Fn(&str) -> bool| {
        decide::decide(bundle, cluster, part, &changes, mutable)
            .map_err(|e| format!("the conventions failed: {e}"))
    };
    let unasked = decided(&|_| false).and_then(|none| {
        let all = decided(&|_| true)?;
        Ok((none == all).then_some(none))
    });
    let live_capable = decide::takes_live_changes(part.kind) && !ready.is_empty();
    let service = statefulset_service(planned, &component.names.statefulset);
    let port = be_link::webserver_port(new_files.get(conf_file).map_or("", String::as_str));
    let be_auth = match part.kind {
        ComponentKind::Fe => None,
        _ if !live_capable => None,
        _ => be_auth(ctx, cluster).await,
    };
    let be_auth = be_auth.as_ref();
    // A storage-compute separated FE that would refuse the operator's user
    // every `ADMIN SET ... CONFIG`: no key of it is live, and status says
    // why, and what becomes of the keys that would have been.
    let root_only = if part.kind == ComponentKind::Fe && live_capable {
        match ctx.fe_client(cluster, &planned.objects).await {
            Ok(fe) => live_fe::root_only_user(cluster, &fe),
            // Reported below, where the FE is asked.
            Err(_) => None,
        }
    } else {
        None
    };
    let decisions = match (unasked, root_only) {
        (Ok(None), Some(user)) => decided(&|_| true).and_then(|all| {
            let none = decided(&|_| false)?;
            let kept: Vec<(&str, Decision)> = changes
                .iter()
                .zip(all.iter().zip(&none))
                .filter(|(_, (a, n))| **a == Decision::Live && **n != Decision::Live)
                .map(|(c, (_, n))| (c.key.as_str(), *n))
                .collect();
            entry.message = Some(live_fe::root_only_note(&user, &kept));
            Ok(none)
        }),
        (Ok(Some(decisions)), _) => Ok(decisions),
        (Ok(None), None) if !live_capable => decided(&|_| false),
        (Ok(None), None) => {
            match mutable_keys(ctx, cluster, planned, part, &ready, &service, port, be_auth).await {
                Ok(mutable) => decided(&|key| mutable.contains(&key.to_ascii_lowercase())),
                Err(message) => Err(message),
            }
        }
        (Err(message), _) => Err(message),
    };
    let decisions = match decisions {
        Ok(d) => d,
        Err(message) => {
            entry.message = Some(message);
            return Ok(waits(entry, earlier, old_files, true));
        }
    };
    let live: Vec<&Change> = changes
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| **d == Decision::Live)
        .map(|(c, _)| c)
        .collect();
    for (change, decision) in changes.iter().zip(&decisions) {
        match decision {
            Decision::Restart => entry.awaiting_restart.push(change.key.clone()),
            Decision::Ignore => entry.ignored.push(change.key.clone()),
            Decision::Live => {}
        }
    }

    // Set each live key on every Ready node.
    let mut refused: Vec<RefusedSetting> = Vec::new();
    let mut took: BTreeMap<&str, i32> = BTreeMap::new();
    if !live.is_empty() {
        if part.kind == ComponentKind::Fe {
            live_fe::set(
                ctx,
                cluster,
                planned,
                part,
                &service,
                &ready,
                &live,
                &mut took,
                &mut refused,
            )
            .await;
        } else {
            let calls = ready.iter().map(|pod| {
                let be = be_link::client(pod, &service, port, ctx.be_resolver.as_ref())
                    .with_auth(be_auth.cloned());
                let live = &live;
                async move {
                    let mut results = Vec::with_capacity(live.len());
                    for change in live {
                        let value = change.new.as_deref().unwrap_or_default();
                        results.push(be.update_config(&change.key, value).await);
                    }
                    (pod_name(pod), results)
                }
            });
            for (node, results) in futures::future::join_all(calls).await {
                for (change, result) in live.iter().zip(results) {
                    match result {
                        Ok(()) => *took.entry(change.key.as_str()).or_default() += 1,
                        Err(e) => refused.push(RefusedSetting {
                            node: node.clone(),
                            key: change.key.clone(),
                            message: e.brief(),
                        }),
                    }
                }
            }
        }
    }
    entry.live = live
        .iter()
        .map(|c| LiveSetting {
            key: c.key.clone(),
            value: c.new.clone().unwrap_or_default(),
            nodes: took.get(c.key.as_str()).copied().unwrap_or(0),
        })
        .collect();
    if !refused.is_empty() {
        let count = refused.len();
        entry.message = Some(format!(
            "{count} setting(s) not taken; the new configuration waits and is tried again"
        ));
        entry.refused = refused;
        return Ok(waits(entry, earlier, old_files, false));
    }
    entry.state = "applied".into();
    let mut events = Vec::new();
    let note = describe(&entry);
    if !note.is_empty() {
        events.push((EventType::Normal, "ConfigChanged", note));
    }
    Ok(Carrying {
        result: Carried::Done {
            restart: !entry.awaiting_restart.is_empty(),
        },
        entry,
        events,
    })
}

/// The keys (lower-cased) the running nodes of `part` may change at run
/// time: the FE's `SHOW FRONTEND CONFIG`, or the first Ready pod's
/// `show_config`. `Err` says who did not answer.
#[allow(clippy::too_many_arguments)]
async fn mutable_keys(
    ctx: &Context,
    cluster: ClusterRef<'_>,
    planned: &Plan,
    part: &Part<'_>,
    ready: &[&Pod],
    service: &str,
    port: u16,
    be_auth: Option<&BeAuth>,
) -> Result<BTreeSet<String>, String> {
    if part.kind == ComponentKind::Fe {
        let fe = ctx
            .fe_client(cluster, &planned.objects)
            .await
            .map_err(|e| format!("the FE cannot be reached: {e}"))?;
        let all = fe.show_frontend_config().await.map_err(|e| {
            format!(
                "the FE did not say which settings may change: {}",
                live_fe::refusal(&e, &fe.endpoint().user)
            )
        })?;
        return Ok(all
            .into_iter()
            .filter(|c| c.mutable)
            .map(|c| c.key.to_ascii_lowercase())
            .collect());
    }
    let pod = ready.first().ok_or("no Ready pod")?;
    let be =
        be_link::client(pod, service, port, ctx.be_resolver.as_ref()).with_auth(be_auth.cloned());
    let all = be.show_config().await.map_err(|e| {
        format!(
            "{} did not say which settings may change: {}",
            pod_name(pod),
            e.brief()
        )
    })?;
    Ok(all
        .into_iter()
        .filter(|c| c.mutable)
        .map(|c| c.name.to_ascii_lowercase())
        .collect())
}

/// The Doris user a BE with `enable_all_http_auth = true` is shown: the
/// one the operator logs in to the FE as (see [`super::fe_link`]).
async fn be_auth(ctx: &Context, cluster: ClusterRef<'_>) -> Option<BeAuth> {
    match super::fe_link::credentials(&ctx.client, cluster, &cluster.namespace()).await {
        Ok((user, password)) => Some(BeAuth { user, password }),
        Err(e) => {
            tracing::warn!(cluster = %cluster.name(), "no Doris user for the BEs: {e}");
            None
        }
    }
}

/// A change that waits: an Event when what it waits for is new.
fn waits(
    entry: ConfigChangeStatus,
    earlier: Option<&ConfigChangeStatus>,
    old_files: BTreeMap<String, String>,
    doris_silent: bool,
) -> Carrying {
    let same = earlier.is_some_and(|e| e.refused == entry.refused && e.message == entry.message);
    let mut events = Vec::new();
    if !same {
        let mut note = format!(
            "{}: configuration change waits: {}",
            entry.component,
            entry.message.as_deref().unwrap_or_default()
        );
        for r in &entry.refused {
            note.push_str(&format!("; {} refused {}: {}", r.node, r.key, r.message));
        }
        let reason = if doris_silent {
            "ConfigWaiting"
        } else {
            "ConfigRefused"
        };
        events.push((EventType::Warning, reason, note));
    }
    Carrying {
        result: Carried::Waits(old_files),
        entry,
        events,
    }
}

/// One line for the Event of a change carried out.
fn describe(entry: &ConfigChangeStatus) -> String {
    let mut said = Vec::new();
    if !entry.live.is_empty() {
        let keys: Vec<String> = entry
            .live
            .iter()
            .map(|l| format!("{}={} on {} node(s)", l.key, l.value, l.nodes))
            .collect();
        said.push(format!("live: {}", keys.join(", ")));
    }
    if !entry.awaiting_restart.is_empty() {
        said.push(format!(
            "restart for: {}",
            entry.awaiting_restart.join(", ")
        ));
    }
    if !entry.ignored.is_empty() {
        said.push(format!(
            "left for the next start: {}",
            entry.ignored.join(", ")
        ));
    }
    if said.is_empty() {
        return String::new();
    }
    if let Some(why) = &entry.message {
        said.push(why.clone());
    }
    format!("{}: {}", entry.component, said.join("; "))
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The Service that governs a planned StatefulSet (its pods' DNS names).
fn statefulset_service(planned: &Plan, statefulset: &str) -> String {
    planned
        .objects
        .iter()
        .find(|o| is_named(o, "StatefulSet", statefulset))
        .and_then(|o| o["spec"]["serviceName"].as_str())
        .unwrap_or(statefulset)
        .to_string()
}
