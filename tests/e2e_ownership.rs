//! Field ownership end to end, as a user sees it with
//! `kubectl get sts -o yaml --show-managed-fields`: what the operator makes
//! is applied under its field manager, and an autoscaled CN's `replicas`
//! belongs to whoever scales it, so the operator's later applies never
//! reset the count, before the autoscaler first acts or after.

mod apiserver;
mod env;
mod fesim;
mod members;

use doris_operator::crd::DorisCluster;
use env::{Env, SAMPLE, eventually, wait_ready};
use fesim::{FeSim, FeSimConfig};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Patch, PatchParams, PostParams};
use members::{MemberDriver, members_synced};
use serde_json::json;

/// The sample cluster with an autoscaled CN.
fn cluster() -> String {
    format!(
        "{SAMPLE}  cnSpec:\n    replicas: 3\n    image: apache/doris:be-2.1.8\n    \
         autoScalingPolicy:\n      version: v2\n      minReplicas: 2\n      maxReplicas: 10\n"
    )
}

/// The managers owning `spec.replicas` of `sts`, with their operation.
fn replicas_owners(sts: &StatefulSet) -> Vec<(String, String)> {
    sts.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
        })
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn applied_by_operator(entries: &[ManagedFieldsEntry]) -> bool {
    entries.iter().any(|m| {
        m.manager.as_deref() == Some("doris-operator")
            && m.operation.as_deref() == Some("Apply")
            && m.fields_type.as_deref() == Some("FieldsV1")
            && m.fields_v1.is_some()
    })
}

async fn compute_nodes(sim: &FeSim) -> usize {
    sim.backends()
        .into_iter()
        .filter(|b| b.host.contains("-cn-"))
        .count()
}

/// Changes the CN's pod template (a label on its pods), so the operator
/// applies the CN StatefulSet again, and waits until it has.
async fn change_cn_template(env: &Env, tier: &str) -> StatefulSet {
    env.api::<DorisCluster>()
        .patch(
            "doris",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cnSpec": {"podLabels": {"tier": tier}}}})),
        )
        .await
        .unwrap();
    let sts = env.api::<StatefulSet>();
    eventually("the new CN pod template applied", 30, || async {
        let s = sts.get("doris-cn").await.ok()?;
        let labels = s.spec.template.metadata.as_ref()?.labels.clone()?;
        (labels.get("tier").map(String::as_str) == Some(tier)).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaled_cn_keeps_its_replicas_through_the_operators_applies() {
    let mut env = Env::without_operator("ownership").await;
    let sim = members::simulated_fe(&mut env, FeSimConfig::default(), "doris").await;
    env.start_operator();
    let _driver = MemberDriver::start(&env, sim.clone(), 3);
    env.create_cluster(&cluster()).await;
    wait_ready(&env, "doris").await;
    members_synced(&env, "doris").await;
    let sts = env.api::<StatefulSet>();

    // What the operator makes carries its field manager.
    for s in sts.list(&Default::default()).await.unwrap() {
        let entries = s.metadata.managed_fields.clone().unwrap_or_default();
        assert!(
            applied_by_operator(&entries),
            "{:?}: {entries:?}",
            s.metadata.name
        );
    }
    for s in env
        .api::<Service>()
        .list(&Default::default())
        .await
        .unwrap()
    {
        let entries = s.metadata.managed_fields.clone().unwrap_or_default();
        assert!(
            applied_by_operator(&entries),
            "{:?}: {entries:?}",
            s.metadata.name
        );
    }
    let cn = sts.get("doris-cn").await.unwrap();
    assert_eq!(cn.spec.replicas, Some(3));
    assert_eq!(
        replicas_owners(&cn),
        [("doris-operator".to_string(), "Apply".to_string())],
        "created with the CR's replicas"
    );

    // Applied again before the autoscaler ever acted: the count stays, held
    // for the autoscaler by the hand-over manager.
    let applied = change_cn_template(&env, "compute").await;
    assert_eq!(applied.spec.replicas, Some(3), "the count is not reset");
    assert_eq!(
        replicas_owners(&applied),
        [(
            "doris-operator-replicas-handover".to_string(),
            "Apply".to_string()
        )]
    );

    // The autoscaler scales through the scale subresource, as the
    // controller manager does; membership follows.
    // Like the controller manager, it reads the scale again when the
    // StatefulSet moved on in between (a 409).
    eventually("the autoscaler to scale the CNs to 4", 10, || async {
        let mut scale = sts.get_scale("doris-cn").await.unwrap();
        scale.spec.as_mut().unwrap().replicas = Some(4);
        match sts
            .replace_scale(
                "doris-cn",
                &PostParams {
                    field_manager: Some("kube-controller-manager".into()),
                    ..Default::default()
                },
                &scale,
            )
            .await
        {
            Ok(_) => Some(()),
            Err(kube::Error::Api(e)) if e.code == 409 => None,
            Err(e) => panic!("scaling: {e}"),
        }
    })
    .await;
    eventually("four compute nodes in the FE", 30, || async {
        (compute_nodes(&sim).await == 4).then_some(())
    })
    .await;
    members_synced(&env, "doris").await;

    // The operator applies the CN again: the autoscaler's count stays, and
    // so does its ownership.
    let applied = change_cn_template(&env, "compute-2").await;
    assert_eq!(applied.spec.replicas, Some(4));
    let owners = replicas_owners(&applied);
    assert_eq!(
        owners,
        [("kube-controller-manager".to_string(), "Update".to_string())]
    );
    let clusters = env.api::<DorisCluster>();
    eventually("the autoscaler's count in status", 60, || async {
        let c = clusters.get("doris").await.ok()?;
        (c.status?.cn_status?.component.replicas == Some(4)).then_some(())
    })
    .await;
    assert_eq!(compute_nodes(&sim).await, 4);
    assert_eq!(
        sts.get("doris-cn").await.unwrap().spec.replicas,
        Some(4),
        "still the autoscaler's while its pods roll"
    );
    env.finish().await;
}
