//! One restart step carried out: the pods' queries stopped through the
//! FE where Doris allows it, the drain started and waited out, the pods
//! deleted (by uid) for the StatefulSet controller to recreate.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::plan::restart::RestartStep;

use super::fe::Fe;
use super::{Component, Context, DRAIN_ANNOTATION, Error, POLL, drains_backend};

/// Drains and deletes the pods of `step`; says what the rollout waits for,
/// and when to look again.
#[allow(clippy::too_many_arguments)]
pub(super) async fn execute(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    namespace: &str,
    fe: &mut Fe<'_>,
    comp: &Component<'_>,
    step: &RestartStep,
    index: usize,
    count: usize,
    why: &str,
    now: &Time,
) -> Result<(String, Duration), Error> {
    let pods: Vec<&Pod> = step
        .pods
        .iter()
        .filter_map(|n| comp.pods.iter().copied().find(|p| p.name_any() == *n))
        .collect();
    let through_fe = fe.drains_through_fe();
    if drains_backend(comp.kind) && through_fe {
        for pod in &pods {
            if let Err(e) = fe.set_disabled(&pod.name_any(), true).await {
                return Ok((
                    format!(
                        "the FE to stop queries on {} before its restart: {e}",
                        pod.name_any()
                    ),
                    POLL,
                ));
            }
        }
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let cluster = reference.name.clone().unwrap_or_default();
    let stamp = now.0.to_string();
    let mut started = Vec::new();
    let mut began = false;
    for pod in &pods {
        match pod
            .annotations()
            .get(DRAIN_ANNOTATION)
            .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
        {
            Some(at) => started.push(at.as_second()),
            None => {
                let patch = json!({"metadata": {
                    "uid": pod.metadata.uid,
                    "annotations": {DRAIN_ANNOTATION: stamp},
                }});
                api.patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
                .map_err(Error::Kube)?;
                ctx.metrics.count_write("Pod", "patch");
                began = true;
                started.push(now.0.as_second());
            }
        }
    }
    let pod_list = step.pods.join(", ");
    // Said in status while the step waits: Doris in storage-compute
    // separated mode refuses the statement that stops queries.
    let skipped = if drains_backend(comp.kind) && !through_fe {
        "; queries are not stopped through the FE first, as Doris in storage-compute \
         separated mode refuses ALTER SYSTEM MODIFY BACKEND (\"Modifying backends is not \
         supported in cloud mode\"): the image's pre-stop hook and Doris's graceful shutdown \
         let running queries end"
    } else {
        ""
    };
    let ends = started.iter().max().copied().unwrap_or(0) + step.drain_seconds;
    let until = k8s_openapi::jiff::Timestamp::from_second(ends)
        .map(|t| t.to_string())
        .unwrap_or_default();
    if began {
        let note = format!(
            "{why}: restarting {pod_list} after {}s of drain, then waiting for {} ({} more steps planned){skipped}",
            step.drain_seconds,
            step.wait_for.join(", "),
            count - index - 1
        );
        tracing::info!(%cluster, "{note}");
        // Related to its first pod, so each step is an Event of its own.
        let event = KubeEvent {
            type_: EventType::Normal,
            reason: "RolloutStep".into(),
            note: Some(note),
            action: "Restart".into(),
            secondary: pods.first().map(|p| p.object_ref(&())),
        };
        if let Err(e) = ctx.recorder.publish(&event, reference).await {
            tracing::debug!(error = %e, "could not publish an Event");
        }
        // Status names the step before any pod goes.
        let after = Duration::from_secs(step.drain_seconds.max(1) as u64);
        return Ok((format!("draining {pod_list} until {until}{skipped}"), after));
    }
    if now.0.as_second() < ends {
        let left = ends - now.0.as_second();
        return Ok((
            format!("draining {pod_list} until {until}{skipped}"),
            Duration::from_secs(left as u64),
        ));
    }
    for pod in &pods {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name_any(), &params).await {
            Ok(_) => {
                ctx.metrics.count_write("Pod", "delete");
                tracing::info!(%cluster, pod = %pod.name_any(), "restarted for the rollout");
            }
            // Gone already, or replaced by a new pod: restarted either way.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok((format!("{pod_list} to come back"), POLL))
}
