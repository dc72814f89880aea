//! The API emulator behaves as the Kubernetes API does where the operator
//! depends on it, checked through an ordinary kube::Client.

mod apiserver;

use std::time::Duration;

use apiserver::Emulator;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

async fn setup() -> (Emulator, Client, Api<ConfigMap>) {
    let emulator = Emulator::start().await;
    let client = emulator.client();
    let api = Api::namespaced(client.clone(), "ns");
    (emulator, client, api)
}

#[tokio::test]
async fn create_get_list_with_label_selectors() {
    let (_e, _c, api) = setup().await;
    api.create(
        &PostParams::default(),
        &cm("a", json!({"app": "x", "tier": "fe"})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({"app": "y"})))
        .await
        .unwrap();
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 409 && e.reason == "AlreadyExists"));

    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.iter().map(|c| c.name_any()).collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=x"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (x,y)"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app!=x"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let err = api.get("missing").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 404));
}

#[tokio::test]
async fn stale_updates_conflict_and_no_op_patches_write_nothing() {
    let (_e, _c, api) = setup().await;
    let created = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    api.replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 409 && e.reason == "Conflict"));

    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "3"}});
    let params = PatchParams::apply("test").force();
    let once = api
        .patch("a", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    let twice = api
        .patch("a", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(
        once.resource_version(),
        twice.resource_version(),
        "a no-op apply writes nothing"
    );

    let json_patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/k", "value": "4"}]))
            .unwrap();
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(json_patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "4");
}

#[tokio::test]
async fn finalizers_hold_deletion_and_owners_take_their_dependents() {
    let (_e, _c, api) = setup().await;
    let owner = api
        .create(&PostParams::default(), &cm("owner", json!({})))
        .await
        .unwrap();
    let mut child = cm("child", json!({}));
    child.metadata.owner_references =
        Some(vec![serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap()
    })).unwrap()]);
    api.create(&PostParams::default(), &child).await.unwrap();
    api.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["x/y"]}})),
    )
    .await
    .unwrap();

    api.delete("owner", &DeleteParams::default()).await.unwrap();
    let held = api.get("owner").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        api.get_opt("child").await.unwrap().is_some(),
        "dependents wait for their owner"
    );

    api.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("owner").await.unwrap().is_none());
    assert!(
        api.get_opt("child").await.unwrap().is_none(),
        "garbage-collected with its owner"
    );
}

#[tokio::test]
async fn watches_resume_after_drops_and_relist_after_410() {
    let (emulator, _c, api) = setup().await;
    let mut events = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap();
    assert_eq!(seen.unwrap().unwrap().name_any(), "a");

    emulator.drop_watches();
    emulator.expire_history();
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let o = events.next().await.unwrap().unwrap();
            if o.name_any() == "b" {
                return o;
            }
        }
    })
    .await
    .expect("the watcher recovers and sees the new object");
    assert_eq!(seen.name_any(), "b");
}

#[tokio::test]
async fn injected_faults_fail_then_recover() {
    let (emulator, _c, api) = setup().await;
    emulator.fail_next(Some("create"), Some("configmaps"), 500, 1);
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 500));
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    assert_eq!(emulator.count_writes(), 2);
}

/// As the PersistentVolumeClaimResize admission plugin: a claim grows only
/// when its StorageClass allows expansion, and never below its capacity.
#[tokio::test]
async fn a_claim_grows_only_when_its_storage_class_allows_it() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let (emulator, client, _) = setup().await;
    for (name, expandable) in [("fixed", false), ("growing", true)] {
        emulator.put(
            apiserver::admission::STORAGE_CLASSES,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": name}, "provisioner": "emulated",
                   "allowVolumeExpansion": expandable}),
        );
        emulator.put(
            apiserver::admission::PVCS,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": name, "namespace": "ns"},
                   "spec": {"storageClassName": name, "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "10Gi"}}},
                   "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}}),
        );
    }
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "ns");
    let grow =
        |size: &str| Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": size}}}}));
    let err = pvcs
        .patch("fixed", &PatchParams::default(), &grow("20Gi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 403
            && e.message == "persistentvolumeclaims \"fixed\" is forbidden: only dynamically \
                provisioned pvc can be resized and the storageclass that provisions the pvc \
                must support resize"),
        "{err}"
    );
    pvcs.patch("growing", &PatchParams::default(), &grow("20Gi"))
        .await
        .unwrap();
    let err = pvcs
        .patch("growing", &PatchParams::default(), &grow("5Gi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 422
            && e.message.contains("can not be less than status.capacity")),
        "{err}"
    );
}

/// As PodSecurity admission: a namespace's enforced level refuses pods
/// that break it, with the plugin's wording.
#[tokio::test]
async fn pod_security_refuses_what_the_namespace_level_forbids() {
    use k8s_openapi::api::core::v1::Pod;
    let (emulator, client, _) = setup().await;
    emulator.put(
        apiserver::admission::NAMESPACES,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "ns",
                            "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    );
    let pod = |name: &str, privileged: bool| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {
                "initContainers": [{"name": "sysctl", "image": "x",
                                    "securityContext": {"privileged": privileged}}],
                "containers": [{"name": "be", "image": "x"}],
            },
        }))
        .unwrap()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns");
    let err = pods
        .create(&PostParams::default(), &pod("d-be-0", true))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 403
            && e.message == "pods \"d-be-0\" is forbidden: violates PodSecurity \
                \"baseline:latest\": privileged (container \"sysctl\" must not set \
                securityContext.privileged=true)"),
        "{err}"
    );
    pods.create(&PostParams::default(), &pod("d-be-1", false))
        .await
        .unwrap();
    // Elsewhere (no label), privileged is the level.
    let other: Api<Pod> = Api::namespaced(client, "other");
    other
        .create(&PostParams::default(), &pod("d-be-0", true))
        .await
        .unwrap();
    // Restricted asks more of every container.
    let restricted = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "be"}]}});
    let message = apiserver::admission::pod_security("restricted", &restricted).unwrap();
    assert!(message.contains("runAsNonRoot != true"), "{message}");
    assert!(
        message.contains("allowPrivilegeEscalation != false"),
        "{message}"
    );
}
