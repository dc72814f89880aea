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

/// ConfigMap `owner`, and ConfigMap `child` that it owns.
async fn owner_and_child(api: &Api<ConfigMap>) {
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
}

#[tokio::test]
async fn finalizers_hold_deletion_and_owners_take_their_dependents() {
    let (_e, _c, api) = setup().await;
    owner_and_child(&api).await;
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

/// An orphan deletion holds the object with the `orphan` finalizer until
/// the garbage collector has taken the owner's reference off its
/// dependents; then the object goes and the dependents stay.
#[tokio::test]
async fn an_orphan_deletion_lingers_until_the_dependents_are_let_go() {
    let (_e, _c, api) = setup().await;
    owner_and_child(&api).await;

    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    let held = api.get("owner").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.finalizers(), ["orphan"]);

    for _ in 0..100 {
        if api.get_opt("owner").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(api.get_opt("owner").await.unwrap().is_none(), "owner gone");
    let child = api.get("child").await.expect("the dependent stays");
    assert!(child.owner_references().is_empty(), "{child:?}");
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

// ------------------------------------------------------ server-side apply

/// The managedFields entry of `manager` and `operation`, as FieldsV1.
fn owned(cm: &ConfigMap, manager: &str, operation: &str) -> Option<serde_json::Value> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| {
            m.manager.as_deref() == Some(manager) && m.operation.as_deref() == Some(operation)
        })
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
}

fn applied_cm(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data})
}

#[tokio::test]
async fn writes_record_their_field_managers() {
    let (_e, _c, api) = setup().await;
    let created = api
        .create(
            &PostParams {
                field_manager: Some("creator".into()),
                ..Default::default()
            },
            &cm("a", json!({"app": "x"})),
        )
        .await
        .unwrap();
    let entry = &created.metadata.managed_fields.as_ref().unwrap()[0];
    assert_eq!(
        (
            entry.manager.as_deref(),
            entry.operation.as_deref(),
            entry.api_version.as_deref(),
            entry.fields_type.as_deref()
        ),
        (
            Some("creator"),
            Some("Update"),
            Some("v1"),
            Some("FieldsV1")
        )
    );
    assert_eq!(
        entry.fields_v1.as_ref().unwrap().0,
        json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );

    // Without fieldManager, the manager is the User-Agent's product.
    let agent = kube::Client::try_from({
        let mut config = _e.config();
        config.headers.push((
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static("kubectl/v1.33.0 (linux/amd64)"),
        ));
        config
    })
    .unwrap();
    let by_kubectl: Api<ConfigMap> = Api::namespaced(agent, "ns");
    let patched = by_kubectl
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k2": "v2"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        owned(&patched, "kubectl", "Update"),
        Some(json!({"f:data": {"f:k2": {}}}))
    );
    // The creator keeps what it set and nobody changed.
    assert!(owned(&patched, "creator", "Update").is_some());
}

#[tokio::test]
async fn apply_removes_the_fields_its_manager_no_longer_applies() {
    let (_e, _c, api) = setup().await;
    let params = PatchParams::apply("applier");
    api.patch(
        "a",
        &params,
        &Patch::Apply(applied_cm(json!({"one": "1", "two": "2"}))),
    )
    .await
    .unwrap();
    // Another manager adds a key of its own.
    api.patch(
        "a",
        &PatchParams {
            field_manager: Some("other".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"three": "3"}})),
    )
    .await
    .unwrap();
    let after = api
        .patch("a", &params, &Patch::Apply(applied_cm(json!({"one": "1"}))))
        .await
        .unwrap();
    let data = after.data.clone().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["one", "three"],
        "`two` goes with its only manager; `three` is another manager's"
    );
    assert_eq!(
        owned(&after, "applier", "Apply"),
        Some(json!({"f:data": {"f:one": {}}}))
    );
}

#[tokio::test]
async fn apply_conflicts_with_another_managers_field_unless_forced() {
    let (_e, _c, api) = setup().await;
    api.patch(
        "a",
        &PatchParams::apply("first"),
        &Patch::Apply(applied_cm(json!({"k": "1"}))),
    )
    .await
    .unwrap();
    // The same value is shared, not a conflict.
    let shared = api
        .patch(
            "a",
            &PatchParams::apply("second"),
            &Patch::Apply(applied_cm(json!({"k": "1"}))),
        )
        .await
        .unwrap();
    assert!(owned(&shared, "first", "Apply").is_some());
    assert!(owned(&shared, "second", "Apply").is_some());

    let err = api
        .patch(
            "a",
            &PatchParams::apply("third"),
            &Patch::Apply(applied_cm(json!({"k": "2"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.starts_with(
            "Apply failed with 2 conflicts: conflict with \"first\" using v1: .data.k"
        ),
        "{}",
        status.message
    );
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "1");

    // Forced, the field changes hands.
    let forced = api
        .patch(
            "a",
            &PatchParams::apply("third").force(),
            &Patch::Apply(applied_cm(json!({"k": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.clone().unwrap()["k"], "2");
    assert_eq!(
        owned(&forced, "third", "Apply"),
        Some(json!({"f:data": {"f:k": {}}}))
    );
    assert!(owned(&forced, "first", "Apply").is_none());
    assert!(owned(&forced, "second", "Apply").is_none());
    // An update takes over what it changes, without conflicts.
    let updated = api
        .patch(
            "a",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"k": "3"}})),
        )
        .await
        .unwrap();
    assert!(owned(&updated, "third", "Apply").is_none());
    assert_eq!(
        owned(&updated, "editor", "Update"),
        Some(json!({"f:data": {"f:k": {}}}))
    );
}

#[tokio::test]
async fn apply_merges_keyed_lists_by_their_keys() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (_e, client, _api) = setup().await;
    let api: Api<StatefulSet> = Api::namespaced(client, "ns");
    let sts = |containers: serde_json::Value, tolerations: serde_json::Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"selector": {"matchLabels": {"app": "s"}}, "serviceName": "s",
                     "template": {"metadata": {"labels": {"app": "s"}},
                                  "spec": {"containers": containers, "tolerations": tolerations}}}
        })
    };
    api.patch(
        "s",
        &PatchParams::apply("operator"),
        &Patch::Apply(sts(
            json!([{"name": "fe", "image": "fe:1", "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 9030}]}]),
            json!([{"key": "a", "operator": "Exists"}]),
        )),
    )
    .await
    .unwrap();
    // A sidecar added by someone else stays through the operator's applies.
    api.patch(
        "s",
        &PatchParams::apply("injector"),
        &Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "sc:1"}]}}}
        })),
    )
    .await
    .unwrap();
    let after = api
        .patch(
            "s",
            &PatchParams::apply("operator"),
            &Patch::Apply(sts(
                json!([{"name": "fe", "image": "fe:2", "env": [{"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 9030, "protocol": "TCP"}]}]),
                json!([{"key": "b", "operator": "Exists"}]),
            )),
        )
        .await
        .unwrap();
    let spec = after.spec.clone();
    let pod = spec.template.spec.unwrap();
    let containers: Vec<_> = pod
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(containers, [("fe", "fe:2"), ("sidecar", "sc:1")]);
    let fe = &pod.containers[0];
    let env: Vec<_> = fe.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert_eq!(env, ["B"], "env merges by name; A was only the operator's");
    assert_eq!(fe.ports.as_ref().unwrap().len(), 1, "the same port, by key");
    let tolerations: Vec<_> = pod
        .tolerations
        .iter()
        .flatten()
        .map(|t| t.key.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(tolerations, ["b"], "tolerations are atomic");
    // Not applied, defaulted by the server, and owned by nobody.
    assert_eq!(spec.replicas, Some(1));
    let fields = after.metadata.managed_fields.as_ref().unwrap();
    let operator = fields
        .iter()
        .find(|m| m.manager.as_deref() == Some("operator"))
        .unwrap();
    let owned = &operator.fields_v1.as_ref().unwrap().0;
    assert!(owned.pointer("/f:spec/f:replicas").is_none());
    assert!(
        owned
            .pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"fe\"}/f:image")
            .is_some(),
        "{owned}"
    );

    // The autoscaler's way: the scale subresource, as its own manager.
    let mut scale = api.get_scale("s").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(4);
    api.replace_scale(
        "s",
        &PostParams {
            field_manager: Some("kube-controller-manager".into()),
            ..Default::default()
        },
        &scale,
    )
    .await
    .unwrap();
    let scaled = api.get("s").await.unwrap();
    assert_eq!(scaled.spec.replicas, Some(4));
    let entry = scaled
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("kube-controller-manager"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("scale"));
    assert_eq!(
        entry.fields_v1.unwrap().0,
        json!({"f:spec": {"f:replicas": {}}})
    );
}

// ----------------------------------------------------------------- discovery

#[tokio::test]
async fn discovery_lists_built_in_kinds_and_those_of_installed_crds() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::discovery::{Discovery, pinned_kind};
    let (_e, client, _api) = setup().await;
    let kinds = |d: &Discovery| -> Vec<(String, String)> {
        d.groups()
            .flat_map(|g| {
                g.versions()
                    .flat_map(|v| g.versioned_resources(v))
                    .map(|(r, _)| (r.api_version, r.kind))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let widget = ("example.com/v1".to_string(), "Widget".to_string());
    let found = kinds(&Discovery::new(client.clone()).run().await.unwrap());
    for built_in in [
        ("v1", "ConfigMap"),
        ("apps/v1", "StatefulSet"),
        ("policy/v1", "PodDisruptionBudget"),
    ] {
        assert!(
            found.contains(&(built_in.0.to_string(), built_in.1.to_string())),
            "{built_in:?} in {found:?}"
        );
    }
    assert!(!found.contains(&widget));
    let gvk = kube::core::GroupVersionKind::gvk("example.com", "v1", "Widget");
    assert!(pinned_kind(&client, &gvk).await.is_err());
    // A path nothing serves answers kube-apiserver's plain 404, not a
    // Status, which kube's get_opt takes for an error.
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "ns",
        &kube::core::ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    );
    let page_not_found = |got: Result<Option<kube::api::DynamicObject>, kube::Error>| match got {
        Err(kube::Error::Api(s)) => s.code == 404 && s.message == "404 page not found",
        _ => false,
    };
    assert!(page_not_found(widgets.get_opt("w").await));

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object"}},
                                   "subresources": {"status": {}}}]}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let found = kinds(&Discovery::new(client.clone()).run().await.unwrap());
    assert!(found.contains(&widget));
    assert!(widgets.get_opt("w").await.unwrap().is_none(), "served now");
    let (resource, caps) = pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(resource.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert_eq!(caps.subresources.len(), 1, "status");
    // The aggregated form, as kubectl asks for it, says the same.
    let aggregated = kinds(
        &Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    );
    assert!(aggregated.contains(&widget));
    assert!(aggregated.contains(&("apps/v1".to_string(), "StatefulSet".to_string())));

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let found = kinds(&Discovery::new(client).run().await.unwrap());
    assert!(!found.contains(&widget), "served only while its CRD exists");
    assert!(page_not_found(widgets.get_opt("w").await));
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
