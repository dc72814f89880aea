//! `kubectl doris diff`: what applying a cluster file would do to the
//! running cluster. Nothing is written.
//!
//! Each cluster of the file is planned as the operator would plan it once
//! applied: with the convention set live for it in the cluster (the
//! ConfigMaps of the operator's namespace over the defaults), the user's
//! ConfigMaps and Secrets read from the cluster (those in the file win, as
//! they would be applied with it), and the annotations the live cluster
//! already has. Every planned object is then compared with the live one as
//! `kubectl diff` compares: a server-side apply dry-run under the operator's
//! field manager gives what the object would become, so fields the API
//! server fills in are the same on both sides. An object whose live copy
//! carries the planned content hash is unchanged without asking (the
//! operator would not write it either).
//!
//! Besides the object diffs it says which objects the operator would
//! delete, which pods would restart and in which order (`restart.rhai`),
//! and which scale-downs take nodes out of the FE first (`membership.rhai`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::cluster::{Cluster, ClusterRef};
use crate::controller::apply::{FIELD_MANAGER, Resources};
use crate::controller::live_config;
use crate::conventions::reload::set_of;
use crate::crd::ComponentKind;
use crate::plan::restart::{RestartCandidate, full_restart_candidates, plan_restart};
use crate::plan::{self, APPLIED_HASH_ANNOTATION, PlanInput};
use crate::render::{RenderInput, unified_diff, without_hash};

/// Where to look.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace of clusters whose document names none.
    pub namespace: String,
    /// Whether `namespace` was asked for (then a document naming another
    /// namespace is an error, as with kubectl).
    pub namespace_explicit: bool,
    /// Where the convention ConfigMaps are: the operator's namespace.
    pub operator_namespace: String,
}

/// What applying the file would do.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The changes: object diffs, objects added and removed, restarts and
    /// scale-downs. Empty when nothing would change.
    pub text: String,
    /// What the diff was made with (conventions, notes), for stderr.
    pub notes: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.text.is_empty()
    }
}

/// Diffs every cluster of `input` against the live cluster.
pub async fn diff(
    client: &Client,
    input: &RenderInput,
    options: &Options,
) -> Result<Report, String> {
    let mut report = Report::default();
    let resources = Resources::default();
    let served = super::Served::ask(client).await?;
    for cluster in &input.clusters {
        diff_cluster(
            client,
            &resources,
            served,
            input,
            cluster,
            options,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

/// The cluster as it would be once the file is applied: the file's spec,
/// in its namespace, with the live cluster's identity and the annotations
/// and labels it has beside those of the file (kubectl apply keeps them).
fn as_applied(file: &Cluster, live: Option<&Cluster>, namespace: &str) -> Cluster {
    let mut cluster = file.clone();
    let meta = match &mut cluster {
        Cluster::Doris(c) => &mut c.metadata,
        Cluster::Disaggregated(c) => &mut c.metadata,
    };
    meta.namespace = Some(namespace.to_string());
    if let Some(live) = live {
        let live = live.as_ref().meta();
        meta.uid = live.uid.clone();
        for (mine, theirs) in [
            (&mut meta.annotations, &live.annotations),
            (&mut meta.labels, &live.labels),
        ] {
            let mut merged = theirs.clone().unwrap_or_default();
            merged.extend(mine.take().unwrap_or_default());
            *mine = (!merged.is_empty()).then_some(merged);
        }
    }
    cluster
}

/// The live cluster of the file's document, if there is one. A document
/// of a kind the API server does not serve could not be applied: an error.
async fn live_cluster(
    client: &Client,
    served: super::Served,
    file: &Cluster,
    namespace: &str,
) -> Result<Option<Cluster>, String> {
    let kind = match file {
        Cluster::Doris(_) => super::KindArg::Dcr,
        Cluster::Disaggregated(_) => super::KindArg::Ddc,
    };
    served
        .require(kind)
        .map_err(|e| format!("{}: {e}, so it cannot be applied", file.as_ref().describe()))?;
    super::get_cluster(client, served, namespace, &file.as_ref().name(), kind).await
}

fn namespace_of(file: ClusterRef<'_>, options: &Options) -> Result<String, String> {
    match file.meta().namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(own) if options.namespace_explicit && own != options.namespace => Err(format!(
            "{}: the namespace of the document ({own}) does not match --namespace ({}); pass \
             --namespace={own} or leave it out",
            file.describe(),
            options.namespace
        )),
        Some(own) => Ok(own.to_string()),
        None => Ok(options.namespace.clone()),
    }
}

async fn diff_cluster(
    client: &Client,
    resources: &Resources,
    served: super::Served,
    input: &RenderInput,
    file: &Cluster,
    options: &Options,
    report: &mut Report,
) -> Result<(), String> {
    let namespace = namespace_of(file.as_ref(), options)?;
    let live = live_cluster(client, served, file, &namespace).await?;
    let applied = as_applied(file, live.as_ref(), &namespace);
    let cluster = applied.as_ref();
    let title = format!("{} {namespace}/{}", cluster.kind(), cluster.name());

    // The conventions live for it.
    let set = set_of(cluster.meta().annotations.as_ref());
    let conventions = super::live_set(client, &options.operator_namespace, set).await?;
    let bundle = &conventions.bundle;
    let from = if conventions.config_maps.is_empty() {
        "the defaults".to_string()
    } else {
        format!(
            "the defaults with ConfigMaps {}",
            conventions.config_maps.join(", ")
        )
    };
    report.notes.push(format!(
        "{title}: planned with convention set {set:?} revision {} ({from})",
        bundle.revision()
    ));
    let status_revision = live
        .as_ref()
        .and_then(|l| status_revision(l.as_ref()))
        .filter(|r| !r.is_empty());
    if let Some(running) = status_revision.filter(|r| r != bundle.revision()) {
        report.notes.push(format!(
            "{title}: the operator last planned it with revision {running}, not {}: the set's \
             ConfigMaps changed since (or were refused), or the operator runs with a \
             --conventions-dir this cannot see",
            bundle.revision()
        ));
    }

    // What the plan reads: the cluster's ConfigMaps and Secret keys, those
    // of the file winning.
    let mut config_maps = crate::controller::user_config_maps(client, cluster, None)
        .await
        .map_err(|e| format!("{title}: reading its ConfigMaps: {e}"))?;
    config_maps.extend(input.config_maps.clone());
    let mut secret_keys = crate::controller::user_secret_keys(client, cluster, &namespace)
        .await
        .map_err(|e| format!("{title}: reading its Secrets: {e}"))?;
    secret_keys.extend(input.secret_keys.clone());
    // What the cluster's namespace lets pods do, as the operator reads it.
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let pod_security = match namespaces.get_opt(&namespace).await {
        Ok(ns) => {
            plan::PodSecurity::of_namespace(ns.as_ref().and_then(|ns| ns.metadata.labels.as_ref()))
        }
        Err(e) => {
            report.notes.push(format!(
                "{title}: namespace {namespace} could not be read ({e}): planned as privileged"
            ));
            plan::PodSecurity::Privileged
        }
    };
    let mut planned = plan::plan(
        bundle,
        PlanInput {
            cluster,
            config_maps: &config_maps,
            secret_keys: &secret_keys,
            pod_security,
        },
    )
    .map_err(|e| format!("{title}: {e}"))?;
    // What each part's ConfigMap records of its files, as the operator
    // adds it before applying.
    let config_maps_api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &namespace);
    let mut recorded = BTreeMap::new();
    for component in &planned.components {
        let name = &component.names.config_map;
        let live = config_maps_api
            .get_opt(name)
            .await
            .map_err(|e| format!("{title}: reading ConfigMap {name}: {e}"))?;
        if let Some(cm) = live {
            let annotation = |key: &str| cm.annotations().get(key).cloned();
            recorded.insert(
                name.clone(),
                (
                    annotation(live_config::FILES_HASH_ANNOTATION),
                    annotation(live_config::RESTART_HASH_ANNOTATION),
                ),
            );
        }
    }
    live_config::as_recorded(&mut planned, |name| recorded.get(name).cloned());
    for missing in &planned.missing_config_maps {
        report.notes.push(format!(
            "{title}: ConfigMap {missing} does not exist: the operator waits for it and applies \
             nothing until it does"
        ));
    }

    let mut text = String::new();
    let Some(live_cluster) = live.as_ref() else {
        // A new cluster: everything is added, nothing restarts.
        for object in &planned.objects {
            let mut object = object.clone();
            without_hash(&mut object);
            text.push_str(&format!("+ {} (new)\n", key(&object)));
            text.push_str(&unified_diff(None, &object, "live", "planned")?);
        }
        push_section(report, &title, text);
        return Ok(());
    };

    // What the operator itself refuses on a running cluster.
    let live_fe = planned
        .components
        .iter()
        .find(|c| c.kind == ComponentKind::Fe)
        .map(|c| c.names.statefulset.clone());
    let live_fe = match live_fe {
        Some(name) => Api::<StatefulSet>::namespaced(client.clone(), &namespace)
            .get_opt(&name)
            .await
            .map_err(|e| format!("{title}: reading StatefulSet {name}: {e}"))?,
        None => None,
    };
    let refused: Vec<_> = [
        crate::controller::membership::election_change(
            &planned.objects,
            live_fe.clone().map(std::sync::Arc::new),
        ),
        crate::controller::membership::follower_cut(cluster, live_fe.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !refused.is_empty() {
        text.push_str("! the operator would refuse this spec and change nothing:\n");
        for e in refused {
            text.push_str(&format!("!   {e}\n"));
        }
        push_section(report, &title, text);
        return Ok(());
    }

    let mut unchanged = 0;
    // StatefulSets that change: (live, as it would be).
    let mut statefulsets: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    for object in &planned.objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let resource = resources
            .resolve(client, api_version, kind)
            .await
            .map_err(|e| format!("{title}: {kind} {name}: {e}"))?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let current = api
            .get_opt(name)
            .await
            .map_err(|e| format!("{title}: reading {kind} {name}: {e}"))?;
        let Some(current) = current else {
            let mut object = object.clone();
            without_hash(&mut object);
            text.push_str(&format!("+ {} (new)\n", key(&object)));
            text.push_str(&unified_diff(None, &object, "live", "planned")?);
            continue;
        };
        let wanted = object["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str();
        if wanted.is_some()
            && current
                .annotations()
                .get(APPLIED_HASH_ANNOTATION)
                .map(String::as_str)
                == wanted
        {
            unchanged += 1;
            continue;
        }
        let current = serde_json::to_value(&current).map_err(|e| e.to_string())?;
        let mut body = object.clone();
        if kind == "StatefulSet" {
            if planned.autoscaled.contains_key(name)
                && let Some(spec) = body["spec"].as_object_mut()
            {
                // Its autoscaler owns the count (the operator leaves it out).
                spec.remove("replicas");
            }
            let (now, then) = (
                &current["spec"]["volumeClaimTemplates"],
                &body["spec"]["volumeClaimTemplates"],
            );
            if !now.is_null() && now != then {
                text.push_str(&format!(
                    "~ {kind} {name}: its claim templates change: the operator grows the \
                     claims, then makes the StatefulSet again with the new templates (its \
                     pods keep running)\n"
                ));
                body["spec"]["volumeClaimTemplates"] = now.clone();
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let after = match api.patch(name, &params, &Patch::Apply(&body)).await {
            Ok(after) => serde_json::to_value(&after).map_err(|e| e.to_string())?,
            Err(kube::Error::Api(e)) => {
                text.push_str(&format!(
                    "! {kind} {name}: the API server would refuse it ({} {}): {}\n",
                    e.code, e.reason, e.message
                ));
                continue;
            }
            Err(e) => return Err(format!("{title}: {kind} {name}: {e}")),
        };
        let (before, after) = (comparable(&current), comparable(&after));
        if before == after {
            unchanged += 1;
            continue;
        }
        text.push_str(&format!("~ {kind} {name}\n"));
        text.push_str(&unified_diff(Some(&before), &after, "live", "planned")?);
        if kind == "StatefulSet" {
            statefulsets.insert(name.to_string(), (before, after));
        }
    }

    // What the operator would delete: objects it made for this cluster that
    // the plan no longer has.
    let uid = live_cluster.as_ref().meta().uid.clone().unwrap_or_default();
    let wanted: BTreeSet<String> = planned.objects.iter().map(key).collect();
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
    ] {
        let api_version = match kind {
            "StatefulSet" => "apps/v1",
            "HorizontalPodAutoscaler" => "autoscaling/v2",
            _ => "v1",
        };
        let resource = resources
            .resolve(client, api_version, kind)
            .await
            .map_err(|e| format!("{title}: {kind}: {e}"))?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let listed = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("{title}: listing {kind}s: {e}"))?;
        for object in listed.items {
            let owned = object.owner_references().iter().any(|r| r.uid == uid);
            let name = format!("{kind} {}", object.name_any());
            if owned && !wanted.contains(&name) {
                text.push_str(&format!("- {name} (removed)\n"));
            }
        }
    }

    text.push_str(&restarts(client, bundle, cluster, &namespace, &statefulsets).await?);
    text.push_str(&scale_downs(
        bundle,
        cluster,
        &planned.components,
        &statefulsets,
    )?);
    report
        .notes
        .push(format!("{title}: {unchanged} objects unchanged"));
    push_section(report, &title, text);
    Ok(())
}

fn push_section(report: &mut Report, title: &str, text: String) {
    if !text.is_empty() {
        report.text.push_str(&format!("# {title}\n{text}"));
    }
}

fn status_revision(cluster: ClusterRef<'_>) -> Option<String> {
    match cluster {
        ClusterRef::Doris(c) => c.status.as_ref()?.conventions_revision.clone(),
        ClusterRef::Disaggregated(c) => c.status.as_ref()?.conventions_revision.clone(),
    }
}

/// `Kind name`.
fn key(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// An object without what the API server keeps for itself (identity,
/// versions, field ownership, status) and without the content hash: what a
/// person compares.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in [
            "managedFields",
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
        ] {
            meta.remove(field);
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    without_hash(&mut object);
    object
}

/// The pods that would restart, in the order `restart.rhai` gives.
async fn restarts(
    client: &Client,
    bundle: &crate::conventions::ConventionBundle,
    cluster: ClusterRef<'_>,
    namespace: &str,
    statefulsets: &BTreeMap<String, (Value, Value)>,
) -> Result<String, String> {
    let changing: BTreeMap<&str, (&Value, &Value)> = statefulsets
        .iter()
        .filter(|(_, (before, after))| before["spec"]["template"] != after["spec"]["template"])
        .map(|(name, (before, after))| (name.as_str(), (before, after)))
        .collect();
    if changing.is_empty() {
        return Ok(String::new());
    }
    // FE roles are not known without asking the FE: the lowest ordinals are
    // taken as the followers and ordinal 0 as the master, as a new cluster
    // starts.
    let roles: BTreeMap<String, RestartCandidate> = full_restart_candidates(cluster)
        .into_iter()
        .map(|c| (c.pod.clone(), c))
        .collect();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut candidates = Vec::new();
    let mut reasons = BTreeSet::new();
    for part in cluster.parts() {
        let Some((before, after)) = changing.get(part.names.statefulset.as_str()) else {
            continue;
        };
        reasons.insert(reason(
            &before["spec"]["template"],
            &after["spec"]["template"],
        ));
        let keep = after["spec"]["replicas"]
            .as_i64()
            .unwrap_or(1)
            .min(before["spec"]["replicas"].as_i64().unwrap_or(1));
        let selector = super::pod_selector(&part.names);
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing the pods of {}: {e}", part.names.statefulset))?;
        let mut found: Vec<(i64, &Pod)> = listed
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let ordinal =
                    crate::plan::membership::ordinal_of(&p.name_any(), &part.names.statefulset)?;
                (i64::from(ordinal) < keep).then_some((i64::from(ordinal), p))
            })
            .collect();
        found.sort_by_key(|(o, _)| *o);
        for (ordinal, pod) in found {
            let name = pod.name_any();
            candidates.push(RestartCandidate {
                component: part.kind.as_str().to_string(),
                part: part.name.clone(),
                role: roles.get(&name).and_then(|c| c.role.clone()),
                pod: name,
                ordinal,
                ready: crate::controller::rollout::is_ready(pod),
            });
        }
    }
    let mut out = String::new();
    let reason = reasons.into_iter().next().unwrap_or("conventions");
    if candidates.is_empty() {
        return Ok(out);
    }
    let steps = plan_restart(bundle, cluster, reason, &candidates).map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "restarts ({reason}), in the order restart.rhai gives (FE roles assumed: ordinal 0 \
         master, then followers up to electionNumber):\n"
    ));
    for (i, step) in steps.iter().enumerate() {
        let drain = if step.drain_seconds > 0 {
            format!("drained {}s first; ", step.drain_seconds)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {}. {}: {} ({drain}then waits for {})\n",
            i + 1,
            step.component,
            step.pods.join(", "),
            step.wait_for.join(", ")
        ));
    }
    Ok(out)
}

/// Why a pod template changes, as the rollout names it: a new image
/// (upgrade), new configuration files, a restart asked for, or else the
/// conventions.
fn reason(before: &Value, after: &Value) -> &'static str {
    let images = |t: &Value| -> Vec<Value> {
        t["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["image"].clone())
            .collect()
    };
    let annotation = |t: &Value, pick: &dyn Fn(&str) -> bool| -> BTreeMap<String, Value> {
        t["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| pick(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if images(before) != images(after) {
        "upgrade"
    } else if annotation(before, &|k| k == "doris.selectdb.com/config-hash")
        != annotation(after, &|k| k == "doris.selectdb.com/config-hash")
    {
        "config"
    } else if annotation(before, &|k| k.ends_with("/restartedAt"))
        != annotation(after, &|k| k.ends_with("/restartedAt"))
    {
        "requested"
    } else {
        "conventions"
    }
}

/// Replica decreases and what happens to the nodes that go (the highest
/// ordinals), as `membership.rhai` decides.
fn scale_downs(
    bundle: &crate::conventions::ConventionBundle,
    cluster: ClusterRef<'_>,
    components: &[plan::ComponentPlan],
    statefulsets: &BTreeMap<String, (Value, Value)>,
) -> Result<String, String> {
    let mut out = String::new();
    for c in components {
        let Some((before, after)) = statefulsets.get(&c.names.statefulset) else {
            continue;
        };
        let (from, to) = (
            before["spec"]["replicas"].as_i64().unwrap_or(1),
            after["spec"]["replicas"].as_i64().unwrap_or(1),
        );
        if to >= from {
            continue;
        }
        let going: Vec<String> = (to..from)
            .map(|o| format!("{}-{o}", c.names.statefulset))
            .collect();
        let going = going.join(", ");
        let what = match c.kind {
            ComponentKind::Be | ComponentKind::Cg => {
                let policy = plan::membership::membership_policy(bundle, cluster)
                    .map_err(|e| e.to_string())?;
                if policy.decommission_be {
                    format!(
                        "{going} decommissioned first (the FE moves their tablets away), then \
                         the StatefulSet shrinks; their PVCs stay"
                    )
                } else {
                    format!(
                        "{going} dropped from the FE without decommission (membership.rhai: \
                         decommission_be is false) as the StatefulSet shrinks; their PVCs stay"
                    )
                }
            }
            ComponentKind::Cn => format!(
                "the StatefulSet shrinks at once; {going} dropped from the FE after their pods go"
            ),
            ComponentKind::Fe => format!(
                "{going} dropped from the FE (DROP OBSERVER) before the StatefulSet shrinks"
            ),
            ComponentKind::Broker | ComponentKind::Ms => {
                format!("the StatefulSet shrinks; {going} go")
            }
        };
        out.push_str(&format!("scale-down {} {from} -> {to}: {what}\n", c.part));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::DorisCluster;
    use serde_json::json;

    fn template(image: &str, annotations: Value) -> Value {
        json!({"metadata": {"annotations": annotations},
               "spec": {"containers": [{"name": "be", "image": image}]}})
    }

    #[test]
    fn a_template_change_is_named_as_the_rollout_names_it() {
        let old = template("be:1", json!({"doris.selectdb.com/config-hash": "a"}));
        assert_eq!(
            reason(
                &old,
                &template("be:2", json!({"doris.selectdb.com/config-hash": "b"}))
            ),
            "upgrade"
        );
        assert_eq!(
            reason(
                &old,
                &template("be:1", json!({"doris.selectdb.com/config-hash": "b"}))
            ),
            "config"
        );
        let asked =
            json!({"doris.selectdb.com/config-hash": "a", "apache.doris.be/restartedAt": "t"});
        assert_eq!(reason(&old, &template("be:1", asked)), "requested");
        let other = json!({"doris.selectdb.com/config-hash": "a", "x": "y"});
        assert_eq!(reason(&old, &template("be:1", other)), "conventions");
    }

    #[test]
    fn what_the_server_keeps_for_itself_is_not_compared() {
        let live = json!({
            "kind": "Service",
            "metadata": {"name": "s", "uid": "u", "resourceVersion": "7", "generation": 2,
                         "creationTimestamp": "t", "managedFields": [{}],
                         "annotations": {APPLIED_HASH_ANNOTATION: "h1"}},
            "spec": {"type": "ClusterIP"},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            comparable(&live),
            json!({"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}})
        );
    }

    #[test]
    fn a_document_in_another_namespace_than_asked_is_refused() {
        let cluster: DorisCluster = serde_json::from_value(json!({
            "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
            "metadata": {"name": "d", "namespace": "a"}, "spec": {}
        }))
        .unwrap();
        let options = |explicit| Options {
            namespace: "b".into(),
            namespace_explicit: explicit,
            operator_namespace: "op".into(),
        };
        let err = namespace_of(ClusterRef::Doris(&cluster), &options(true)).unwrap_err();
        assert!(
            err.contains("namespace of the document (a) does not match --namespace (b)"),
            "{err}"
        );
        assert_eq!(
            namespace_of(ClusterRef::Doris(&cluster), &options(false)).unwrap(),
            "a"
        );
    }
}
