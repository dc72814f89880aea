//! The environment every end-to-end test runs in: an API server (the
//! in-process emulator, or the cluster DORIS_OPERATOR_TEST_KUBECONFIG
//! names), a namespace of the test's own, and the operator running against
//! them; plus the waits the tests share.

#![allow(dead_code)]

pub mod manifests;
pub mod reads;

use std::collections::{BTreeMap, HashMap, hash_map};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::apiserver::Emulator;
use crate::apiserver::driver::PodDriver;
use doris_operator::conventions::ConventionBundle;
use doris_operator::conventions::reload::LiveConventions;
use doris_operator::crd::{DorisCluster, DorisDisaggregatedCluster};
use doris_operator::metrics::Metrics;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// An API server, a namespace, and the operator running against them.
pub struct Env {
    pub client: Client,
    /// How the operator reaches the API server; it builds its own client
    /// from this, as its binary does.
    pub config: kube::Config,
    pub namespace: String,
    pub emulator: Option<Arc<Emulator>>,
    pub metrics: Arc<Metrics>,
    pub conventions: Arc<LiveConventions>,
    /// Where the operator reaches each cluster's FE (a simulator in tests).
    pub fe_resolver: Option<doris_operator::controller::fe_link::FeResolver>,
    /// Where the operator reaches each BE's webserver (a simulator in tests).
    pub be_resolver: Option<doris_operator::controller::be_link::BeResolver>,
    /// Where the operator reads its convention ConfigMaps (its own
    /// namespace); `None`: the test's namespace stands in for it.
    pub operator_namespace: Option<String>,
    _driver: Option<PodDriver>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    operator: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// An API server and namespace with the operator running.
    pub async fn start(test: &str) -> Env {
        let mut env = Env::without_operator(test).await;
        env.start_operator();
        env
    }

    /// An API server and namespace, the operator not started yet.
    pub async fn without_operator(test: &str) -> Env {
        let (client, config, emulator, driver) =
            match std::env::var("DORIS_OPERATOR_TEST_KUBECONFIG") {
                Ok(path) => {
                    let kubeconfig =
                        kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
                    let config =
                        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                            .await
                            .expect("kubeconfig is usable");
                    let client = Client::try_from(config.clone()).expect("client");
                    install_crd(&client).await;
                    install_operator_identity(&client).await;
                    // The operator's own identity, when tests/realk8s/up.sh
                    // made one: the audit log records its reads.
                    let runner = std::path::Path::new(&path).with_file_name("operator.kubeconfig");
                    let config = match kube::config::Kubeconfig::read_from(&runner) {
                        Ok(kubeconfig) => {
                            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                                .await
                                .expect("operator.kubeconfig is usable")
                        }
                        Err(_) => config,
                    };
                    (client, config, None, None)
                }
                Err(_) => {
                    let emulator = Arc::new(Emulator::start().await);
                    // Installed, as on any cluster the operator runs in.
                    for crd in [
                        doris_operator::crd::crd(),
                        doris_operator::crd::disaggregated::crd(),
                    ] {
                        emulator.put(
                            crate::apiserver::discovery::CRDS,
                            serde_json::to_value(crd).expect("a CRD serializes"),
                        );
                    }
                    let driver = PodDriver::start(emulator.clone());
                    (
                        emulator.client(),
                        emulator.config(),
                        Some(emulator),
                        Some(driver),
                    )
                }
            };
        // Unique on a shared API server, where two tests of one process
        // may name the same test.
        static ENVS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let namespace = format!(
            "e2e-{test}-{}-{}",
            std::process::id(),
            ENVS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
            )
            .await
            .expect("namespace");
        Env {
            client,
            config,
            namespace,
            emulator,
            metrics: Arc::default(),
            conventions: Arc::new(LiveConventions::new(
                ConventionBundle::embedded().expect("defaults compile"),
            )),
            fe_resolver: None,
            be_resolver: None,
            operator_namespace: None,
            _driver: driver,
            stop: None,
            operator: None,
        }
    }

    /// Starts the operator as a new process would: fresh conventions and
    /// metrics, reading everything from the API server.
    pub fn start_operator(&mut self) {
        self.start_operator_as(OPERATOR_IDENTITY);
    }

    /// Starts the operator as [`Env::start_operator`] does, acting on a
    /// real cluster as `identity` (a ServiceAccount's user name), so that
    /// the rules bound to that account are what the test exercises.
    pub fn start_operator_as(&mut self, identity: &str) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.conventions = Arc::new(LiveConventions::new(
            ConventionBundle::embedded().expect("defaults compile"),
        ));
        self.metrics = Arc::new(Metrics::default());
        let settings = doris_operator::controller::Settings {
            namespace: Some(self.namespace.clone()),
            conventions: self.conventions.clone(),
            metrics: self.metrics.clone(),
            concurrency: 4,
            // The test's namespace stands in for the operator's own,
            // unless the test gave it one.
            conventions_namespace: Some(
                self.operator_namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
            ),
            fe_resolver: self.fe_resolver.clone(),
            be_resolver: self.be_resolver.clone(),
        };
        let mut config = self.config.clone();
        if self.emulator.is_none() {
            // On a real cluster the operator acts as the ServiceAccount it
            // ships with, so a rule missing from deploy/ fails a test.
            config.auth_info.impersonate = Some(identity.to_string());
        }
        let client = doris_operator::controller::kube_client(config).expect("operator client");
        self.operator = Some(tokio::spawn(doris_operator::controller::run(
            client,
            settings,
            async move {
                let _ = stopped.await;
            },
        )));
        self.stop = Some(stop);
    }

    /// The emulator's pod driver; `None` on a real cluster.
    pub fn driver(&self) -> Option<&PodDriver> {
        self._driver.as_ref()
    }

    /// The emulator, for a step only it can stage (`why`); on a real
    /// control plane `None`, after saying that the rest of the test is
    /// skipped there and why.
    pub fn emulator_only(&self, why: &str) -> Option<Arc<Emulator>> {
        if self.emulator.is_none() {
            eprintln!(
                "{}: the rest is skipped on a real control plane: {why}",
                self.namespace
            );
        }
        self.emulator.clone()
    }

    /// The emulator's pod driver, for a step only it can stage (`why`); on a
    /// real control plane `None`, after saying so, as [`Env::emulator_only`].
    pub fn driver_only(&self, why: &str) -> Option<&PodDriver> {
        if self._driver.is_none() {
            eprintln!(
                "{}: the rest is skipped on a real control plane: {why}",
                self.namespace
            );
        }
        self._driver.as_ref()
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates the storage-compute separated cluster `yaml` describes; the
    /// API server's refusal, if it refuses it.
    pub async fn try_create_ddc(
        &self,
        yaml: &str,
    ) -> Result<DorisDisaggregatedCluster, kube::Error> {
        let mut cluster: DorisDisaggregatedCluster =
            serde_norway::from_str(yaml).expect("test cluster parses");
        cluster.metadata.namespace = Some(self.namespace.clone());
        self.api::<DorisDisaggregatedCluster>()
            .create(&PostParams::default(), &cluster)
            .await
    }

    pub async fn create_ddc(&self, yaml: &str) -> DorisDisaggregatedCluster {
        self.try_create_ddc(yaml).await.expect("cluster created")
    }

    pub async fn create_cluster(&self, yaml: &str) -> DorisCluster {
        let mut cluster: DorisCluster = serde_norway::from_str(yaml).expect("test cluster parses");
        cluster.metadata.namespace = Some(self.namespace.clone());
        self.api::<DorisCluster>()
            .create(&PostParams::default(), &cluster)
            .await
            .expect("cluster created")
    }

    /// Stops the operator (as a pod stop would) and waits for it to end.
    pub async fn stop_operator(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.operator.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
    }

    pub async fn finish(mut self) {
        self.stop_operator().await;
        if self.emulator.is_none() {
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            let _ = namespaces
                .delete(&self.namespace, &DeleteParams::default())
                .await;
        }
    }
}

pub async fn install_crd(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "dorisclusters.doris.selectdb.com",
        &PatchParams::apply("doris-operator-e2e").force(),
        &Patch::Apply(doris_operator::crd::crd()),
    )
    .await
    .expect("CRD applied");
    crds.patch(
        "dorisdisaggregatedclusters.disaggregated.cluster.doris.com",
        &PatchParams::apply("doris-operator-e2e").force(),
        &Patch::Apply(doris_operator::crd::disaggregated::crd()),
    )
    .await
    .expect("DorisDisaggregatedCluster CRD applied");
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// The command-line tool `name` (kubectl, helm) from PATH, or `None`
/// after saying loudly that what needs it is not checked. Where the tools
/// are required (`CI` is set, as in CI, or `DORIS_OPERATOR_REQUIRE_TOOLS`,
/// as tests/run.sh sets once it has put them on PATH), a missing tool fails
/// the test instead of letting it pass unchecked.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    if found.is_none() {
        let required = ["CI", "DORIS_OPERATOR_REQUIRE_TOOLS"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
        let message = format!(
            "{name} is not on PATH: what needs it is NOT checked \
             (tests/run.sh builds it: tests/realk8s/build.sh, tests/realk8s/build-helm.sh)"
        );
        if required {
            panic!("{message}; CI or DORIS_OPERATOR_REQUIRE_TOOLS requires it");
        }
        eprintln!("\n!!! {message}\n");
    }
    found
}

/// The user the operator acts as on a real cluster: the ServiceAccount of
/// `deploy/10-rbac.yaml`.
pub const OPERATOR_IDENTITY: &str = "system:serviceaccount:doris-operator:doris-operator";

/// Applies the operator's namespace, ServiceAccount and RBAC as shipped in
/// `deploy/`.
pub async fn install_operator_identity(client: &Client) {
    let shipped = concat!(
        include_str!("../../deploy/00-namespace.yaml"),
        "\n---\n",
        include_str!("../../deploy/10-rbac.yaml")
    );
    let discovery = kube::Discovery::new(client.clone())
        .filter(&["", "rbac.authorization.k8s.io"])
        .run()
        .await
        .expect("API discovery");
    for document in serde_norway::Deserializer::from_str(shipped) {
        let object: serde_json::Value =
            serde::Deserialize::deserialize(document).expect("deploy/ parses");
        if object.is_null() {
            continue;
        }
        let object: kube::api::DynamicObject =
            serde_json::from_value(object).expect("deploy/ holds objects");
        let gvk = kube::core::GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
        let (resource, caps) = discovery.resolve_gvk(&gvk).expect("a served kind");
        let api: Api<kube::api::DynamicObject> = match (caps.scope, &object.metadata.namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        let name = object.metadata.name.clone().expect("a name");
        api.patch(
            &name,
            &PatchParams::apply("doris-operator-e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", gvk.kind));
    }
}

/// Lets the operator's ServiceAccount write `plural` of `group`, as the
/// README tells a platform team to when a convention makes a kind the
/// shipped RBAC does not cover.
pub async fn grant_operator(client: &Client, group: &str, plural: &str) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let name = format!("doris-operator-{plural}.{group}");
    Api::<ClusterRole>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply("doris-operator-e2e").force(),
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": [{"apiGroups": [group], "resources": [plural],
                           "verbs": ["get", "list", "watch", "create", "patch", "delete"]}],
            })),
        )
        .await
        .expect("ClusterRole applied");
    let (namespace, account) = OPERATOR_IDENTITY
        .trim_start_matches("system:serviceaccount:")
        .split_once(':')
        .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply("doris-operator-e2e").force(),
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            })),
        )
        .await
        .expect("ClusterRoleBinding applied");
}

/// Installs a CustomResourceDefinition of `kind` (group/version, plural)
/// that keeps any content, unless the API server already serves the kind,
/// and waits until it is served.
pub async fn install_open_crd(client: &Client, gvk: &kube::core::GroupVersionKind, plural: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    if kube::discovery::pinned_kind(client, gvk).await.is_ok() {
        return;
    }
    let name = format!("{plural}.{}", gvk.group);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &name,
        &PatchParams::apply("doris-operator-e2e").force(),
        &Patch::Apply(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": gvk.group, "scope": "Namespaced",
                "names": {"plural": plural, "singular": gvk.kind.to_lowercase(),
                          "kind": gvk.kind, "listKind": format!("{}List", gvk.kind)},
                "versions": [{"name": gvk.version, "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        })),
    )
    .await
    .expect("CRD applied");
    eventually(&format!("{} served", gvk.kind), 30, || async {
        kube::discovery::pinned_kind(client, gvk).await.ok()
    })
    .await;
}

impl Env {
    /// A kubeconfig for the test's API server, its context in the test's
    /// namespace, written in `dir`; on a real cluster, the one the suite
    /// was given, with the arguments that name the test's namespace.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
        if let Ok(path) = std::env::var("DORIS_OPERATOR_TEST_KUBECONFIG") {
            return (path.into(), vec!["-n".into(), self.namespace.clone()]);
        }
        let emulator = self.emulator.as_ref().expect("an emulator");
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n\
             users:\n- name: e2e\n  user: {{}}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n\
             \x20   user: e2e\n    namespace: {}\ncurrent-context: e2e\n",
            emulator.url(),
            self.namespace
        );
        std::fs::write(&path, text).unwrap();
        (path, Vec::new())
    }
}

/// Writes file `file` of ConfigMap `name` (made if missing) as a user's
/// `kubectl apply` would: a user's Doris configuration, say.
pub async fn put_file(env: &Env, name: &str, file: &str, text: &str) {
    env.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .patch(
            name,
            &PatchParams::apply("e2e-user").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name}, "data": {file: text},
            })),
        )
        .await
        .unwrap();
}

/// A storage-compute separated cluster: one meta service pod, one FE and
/// one compute group of two BEs.
pub const DDC_SAMPLE: &str = r#"
apiVersion: disaggregated.cluster.doris.com/v1
kind: DorisDisaggregatedCluster
metadata:
  name: ddc
spec:
  metaService:
    replicas: 1
    image: apache/doris:ms-3.0.3
    fdb:
      address: "doris:fdbclusterid@10.0.0.11:4500"
  feSpec:
    replicas: 1
    image: apache/doris:fe-3.0.3
  computeGroups:
  - uniqueId: cg_etl
    replicas: 2
    image: apache/doris:be-3.0.3
"#;

/// Each pod of the test's namespace's UID, by name.
pub async fn pod_uids(env: &Env) -> BTreeMap<String, String> {
    env.api::<Pod>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// Polls `check` until it returns Some, or fails the test after `secs`.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn condition(cluster: &DorisCluster, type_: &str) -> Option<String> {
    cluster
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// The status of condition `type_` of a storage-compute separated cluster.
pub fn ddc_condition(
    cluster: &DorisDisaggregatedCluster,
    type_: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    cluster
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// The Degraded condition of DorisCluster `doris`, once its reason is
/// `reason`.
pub async fn degraded_because(
    env: &Env,
    reason: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let api = env.api::<DorisCluster>();
    eventually(&format!("Degraded for {reason}"), 60, || async {
        let c = api.get("doris").await.ok()?;
        c.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Degraded" && c.reason == reason)
    })
    .await
}

/// The storage-compute separated cluster once Ready for its generation.
pub async fn wait_ddc_ready(env: &Env, name: &str) -> DorisDisaggregatedCluster {
    let api = env.api::<DorisDisaggregatedCluster>();
    eventually(&format!("{name} Ready"), 60, || async {
        let c = api.get(name).await.ok()?;
        (ddc_condition(&c, "Ready")?.status == "True"
            && c.status.as_ref()?.observed_generation == c.metadata.generation)
            .then_some(c)
    })
    .await
}

pub async fn wait_ready(env: &Env, name: &str) -> DorisCluster {
    let api = env.api::<DorisCluster>();
    eventually(&format!("{name} Ready"), 30, || async {
        let c = api.get(name).await.ok()?;
        (condition(&c, "Ready").as_deref() == Some("True")
            && c.status.as_ref()?.observed_generation == c.metadata.generation)
            .then_some(c)
    })
    .await
}

pub const SAMPLE: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
spec:
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
  beSpec:
    replicas: 3
    image: apache/doris:be-2.1.8
    persistentVolumes:
    - mountPath: /opt/apache-doris/be/storage
      name: data
      persistentVolumeClaimSpec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 10Gi
"#;

/// The Events of the test's namespace with `reason`.
pub async fn events(env: &Env, reason: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    env.api::<k8s_openapi::api::events::v1::Event>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Creates or replaces the convention ConfigMap `name` of `set` in the
/// test's namespace (the operator's there) with `files`.
pub async fn put_conventions(env: &Env, name: &str, set: &str, files: &[(&str, &str)]) {
    let data: BTreeMap<&str, &str> = files.iter().copied().collect();
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {doris_operator::conventions::reload::SET_KEY: set}},
        "data": data,
    }))
    .unwrap();
    let api = env.api::<k8s_openapi::api::core::v1::ConfigMap>();
    if api.get_opt(name).await.unwrap().is_some() {
        api.replace(name, &PostParams::default(), &{
            let mut current = api.get(name).await.unwrap();
            current.data = cm.data.clone();
            current
        })
        .await
        .unwrap();
    } else {
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
}

/// The ConventionsReady condition of DorisCluster `cluster`: status, message.
pub async fn conventions_ready(env: &Env, cluster: &str) -> Option<(String, String)> {
    let c = env.api::<DorisCluster>().get(cluster).await.ok()?;
    let ready = c
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "ConventionsReady")?;
    Some((ready.status, ready.message))
}

/// The Events with `reason` about the object called `name`.
pub async fn events_on(
    env: &Env,
    name: &str,
    reason: &str,
) -> Vec<k8s_openapi::api::events::v1::Event> {
    events(env, reason)
        .await
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

/// A StorageClass for the test's claims that allows volume expansion or
/// not, by name. On a real cluster it provisions as the default
/// StorageClass does.
pub async fn storage_class(env: &Env, expandable: bool) -> String {
    use k8s_openapi::api::storage::v1::StorageClass;
    let classes: Api<StorageClass> = Api::all(env.client.clone());
    let name = format!(
        "{}-{}",
        env.namespace,
        if expandable { "expandable" } else { "fixed" }
    );
    let mut class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": "emulated.doris-operator.test",
        "allowVolumeExpansion": expandable,
    });
    if env.emulator.is_none() {
        let default = classes
            .list(&Default::default())
            .await
            .expect("StorageClasses")
            .items
            .into_iter()
            .find(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                    .is_some_and(|v| v == "true")
            })
            .expect("the cluster has a default StorageClass");
        class["provisioner"] = json!(default.provisioner);
        class["parameters"] = json!(default.parameters);
        class["volumeBindingMode"] = json!(default.volume_binding_mode);
    }
    classes
        .patch(
            &name,
            &PatchParams::apply("doris-operator-e2e").force(),
            &Patch::Apply(class),
        )
        .await
        .expect("StorageClass applied");
    name
}

/// Labels the test's namespace with the Pod Security level it enforces.
pub async fn enforce_pod_security(env: &Env, level: &str) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .patch(
            &env.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": level,
            }}})),
        )
        .await
        .expect("namespace labelled");
}

/// resourceVersions of the StatefulSets, Services and ConfigMaps the
/// operator made (by its label), keyed `sts/<name>`, `svc/<name>`,
/// `cm/<name>`: what a test compares to see that nothing was rewritten.
pub async fn object_versions(env: &Env) -> std::collections::BTreeMap<String, String> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Service};
    let params =
        kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=doris-operator");
    let mut out = std::collections::BTreeMap::new();
    for s in env.api::<StatefulSet>().list(&params).await.unwrap() {
        out.insert(
            format!("sts/{}", s.name_any()),
            s.resource_version().unwrap(),
        );
    }
    for s in env.api::<Service>().list(&params).await.unwrap() {
        out.insert(
            format!("svc/{}", s.name_any()),
            s.resource_version().unwrap(),
        );
    }
    for c in env.api::<ConfigMap>().list(&params).await.unwrap() {
        out.insert(
            format!("cm/{}", c.name_any()),
            c.resource_version().unwrap(),
        );
    }
    out
}

/// Which pod deletions a watch sees are restarts: of incarnations that ran
/// (were Ready) and, where pods terminate gracefully (a real server),
/// that had run a while. The real control plane's stand-in kubelet (kwok)
/// deletes by name, and a delete of its queued twice can take the
/// replacement the StatefulSet made that instant, Ready or not yet; the
/// operator restarts a pod only once it is Ready and its FE reports it.
#[derive(Default)]
pub struct Restarts {
    ready_at: HashMap<String, Instant>,
    graceful: bool,
}

impl Restarts {
    /// How long an incarnation runs before the stand-in kubelet's stray
    /// delete could no longer be what takes it.
    const STRAY: Duration = Duration::from_millis(500);

    /// Notes a pod as the watch shows it (listed, added or changed);
    /// whether this incarnation turned Ready now, for the first time.
    pub fn seen(&mut self, pod: &Pod) -> bool {
        if pod.metadata.deletion_timestamp.is_some() {
            self.graceful = true;
        }
        if !doris_operator::controller::rollout::is_ready(pod) {
            return false;
        }
        let uid = pod.uid().unwrap_or_default();
        match self.ready_at.entry(uid) {
            hash_map::Entry::Occupied(_) => false,
            hash_map::Entry::Vacant(v) => {
                v.insert(Instant::now());
                true
            }
        }
    }

    /// Whether the deletion of `pod` the watch shows now was a restart.
    pub fn is_restart(&self, pod: &Pod) -> bool {
        self.ready_at
            .get(&pod.uid().unwrap_or_default())
            .is_some_and(|at| !self.graceful || at.elapsed() >= Self::STRAY)
    }
}
