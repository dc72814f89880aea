//! The control plane's side of the benchmark: the clusters it creates,
//! what it installs, the nodes that hold the pods, what it watches, and the
//! FE simulator's members.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::PEER_NAMESPACE;
use super::fleet::Fleet;

/// The peer's `doc/examples/doriscluster-sample.yaml`: 3 FE (6 CPU, 12Gi)
/// and 3 BE (8 CPU, 16Gi), emptyDir storage.
fn doriscluster_sample(name: &str) -> Value {
    let component = |image: &str, cpu: u32, memory: &str| {
        let resources = json!({"cpu": cpu, "memory": memory});
        json!({"replicas": 3, "limits": resources, "requests": resources, "image": image})
    };
    json!({
        "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/name": "doriscluster",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "doris-operator",
        }},
        "spec": {
            "feSpec": component("apache/doris:fe-2.1.8", 6, "12Gi"),
            "beSpec": component("apache/doris:be-2.1.8", 8, "16Gi"),
        }
    })
}

/// The peer's `doc/examples/disaggregated/cluster/ddc-sample.yaml`: a meta
/// service (2 pods by default), 2 FEs and compute groups cg1 and cg2 of 3
/// BEs, FoundationDB named by a ConfigMap (here in the run's namespace).
fn ddc_sample(name: &str, namespace: &str) -> Value {
    let group = |id: &str| json!({"uniqueId": id, "replicas": 3, "image": "apache/doris:be-3.0.3"});
    json!({
        "apiVersion": "disaggregated.cluster.doris.com/v1", "kind": "DorisDisaggregatedCluster",
        "metadata": {"name": name},
        "spec": {
            "metaService": {
                "image": "apache/doris:ms-3.0.3",
                "fdb": {"configMapNamespaceName": {
                    "name": "test-cluster-config", "namespace": namespace,
                }},
            },
            "feSpec": {"replicas": 2, "image": "apache/doris:fe-3.0.3"},
            "computeGroups": [group("cg1"), group("cg2")],
        }
    })
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    DorisCluster,
    Disaggregated,
}

impl Kind {
    pub(super) fn resource(self) -> ApiResource {
        let gvk = match self {
            Kind::DorisCluster => GroupVersionKind::gvk("doris.selectdb.com", "v1", "DorisCluster"),
            Kind::Disaggregated => GroupVersionKind::gvk(
                "disaggregated.cluster.doris.com",
                "v1",
                "DorisDisaggregatedCluster",
            ),
        };
        ApiResource::from_gvk(&gvk)
    }

    pub(super) fn what(self) -> &'static str {
        match self {
            Kind::DorisCluster => "DorisCluster sample (3 FE + 3 BE)",
            Kind::Disaggregated => "DorisDisaggregatedCluster sample (2 MS, 2 FE, 2 CG x 3 BE)",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Kind::DorisCluster => "DorisCluster",
            Kind::Disaggregated => "DDC",
        }
    }

    pub(super) fn manifest(self, name: &str, namespace: &str) -> Value {
        match self {
            Kind::DorisCluster => doriscluster_sample(name),
            Kind::Disaggregated => ddc_sample(name, namespace),
        }
    }

    /// StatefulSets of one cluster: FE and BE; meta service, FE and two
    /// compute groups.
    pub(super) fn statefulsets(self) -> usize {
        match self {
            Kind::DorisCluster => 2,
            Kind::Disaggregated => 4,
        }
    }

    /// CPU cores, GiB of memory and pods one cluster requests.
    pub(super) fn demand(self) -> (f64, f64, usize) {
        match self {
            Kind::DorisCluster => (3.0 * 6.0 + 3.0 * 8.0, 3.0 * 12.0 + 3.0 * 16.0, 6),
            Kind::Disaggregated => (0.0, 0.0, 10),
        }
    }
}

/// Installs the CRDs (this repository's, which serve the peer too), this
/// operator's ServiceAccount and RBAC as `deploy/` ships them, and the
/// peer's ServiceAccount bound to cluster-admin.
pub(super) async fn install(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let apply = PatchParams::apply("doris-operator-bench").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        doris_operator::crd::crd(),
        doris_operator::crd::disaggregated::crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("CRD {name}: {e}"));
    }
    let shipped = concat!(
        include_str!("../../../deploy/00-namespace.yaml"),
        "\n---\n",
        include_str!("../../../deploy/10-rbac.yaml")
    );
    let mut objects: Vec<Value> = serde_norway::Deserializer::from_str(shipped)
        .map(|d| serde::Deserialize::deserialize(d).expect("deploy/ parses"))
        .filter(|o: &Value| !o.is_null())
        .collect();
    objects.extend([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PEER_NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "doris-operator", "namespace": PEER_NAMESPACE}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "doris-bench-peer"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "doris-operator",
                             "namespace": PEER_NAMESPACE}]}),
    ]);
    let discovery = kube::Discovery::new(client.clone())
        .filter(&["", "rbac.authorization.k8s.io"])
        .run()
        .await
        .expect("API discovery");
    for object in objects {
        let object: DynamicObject = serde_json::from_value(object).expect("an object");
        let gvk = GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
        let (resource, caps) = discovery.resolve_gvk(&gvk).expect("a served kind");
        let api: Api<DynamicObject> = match (caps.scope, &object.metadata.namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        let name = object.name_any();
        api.patch(&name, &apply, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("applying {} {name}: {e}", gvk.kind));
    }
    for kind in [Kind::DorisCluster, Kind::Disaggregated] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource());
        wait_until(Duration::from_secs(60), || async {
            api.list(&Default::default()).await.is_ok()
        })
        .await;
    }
}

/// Adds kwok nodes (`bench-node-<i>`) enough for `cpu` cores, `mem` GiB and
/// `pods` pods besides whatever else runs, and waits until they are Ready.
pub(super) async fn ensure_nodes(client: &Client, cpu: f64, mem: f64, pods: usize) {
    use k8s_openapi::api::core::v1::Node;
    const CPU: f64 = 256.0;
    const MEM_GIB: f64 = 1024.0;
    const PODS: usize = 250;
    let count = [
        (cpu / CPU).ceil() as usize,
        (mem / MEM_GIB).ceil() as usize,
        pods.div_ceil(PODS),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
        + 1;
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = (0..count).map(|i| format!("bench-node-{i}")).collect();
    for name in &names {
        if nodes.get_opt(name).await.unwrap().is_some() {
            continue;
        }
        let capacity = json!({"cpu": CPU.to_string(), "memory": format!("{MEM_GIB}Gi"),
                              "pods": PODS.to_string(), "ephemeral-storage": "10Ti"});
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok"},
            },
            "status": {"allocatable": capacity, "capacity": capacity},
        }))
        .unwrap();
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
    }
    wait_until(Duration::from_secs(120), || async {
        let mut ready = 0;
        for name in &names {
            let node = nodes.get(name).await.ok();
            let conditions = node.and_then(|n| n.status?.conditions).unwrap_or_default();
            ready += usize::from(
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
            );
        }
        ready == names.len()
    })
    .await;
    println!(
        "{count} kwok nodes bench-node-* ({CPU} CPU, {MEM_GIB} GiB, {PODS} pods each) hold the clusters"
    );
}

pub(super) async fn wait_until<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// The stores of what the bench watches in one namespace.
pub(super) struct Watched {
    pub(super) clusters: Store<DynamicObject>,
    statefulsets: Store<StatefulSet>,
    pods: Store<Pod>,
    _tasks: Vec<AbortOnDrop>,
}

pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Watched {
    pub(super) fn start(client: &Client, namespace: &str, kind: Kind) -> Watched {
        let resource = kind.resource();
        let writer = reflector::store::Writer::new(resource.clone());
        let clusters = writer.as_reader();
        let crs = watcher(
            Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|o| o.metadata.managed_fields = None)
        .reflect(writer);
        let (statefulsets, sts_writer) = reflector::store::<StatefulSet>();
        let sts = watcher(
            Api::<StatefulSet>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|o| o.metadata.managed_fields = None)
        .reflect(sts_writer);
        let (pods, pod_writer) = reflector::store::<Pod>();
        let pod_stream = watcher(
            Api::<Pod>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|o| o.metadata.managed_fields = None)
        .reflect(pod_writer);
        let drain = |s: futures::stream::BoxStream<'static, ()>| {
            AbortOnDrop(tokio::spawn(s.for_each(|_| async {})))
        };
        Watched {
            clusters,
            statefulsets,
            pods,
            _tasks: vec![
                drain(crs.map(|_| ()).boxed()),
                drain(sts.map(|_| ()).boxed()),
                drain(pod_stream.map(|_| ()).boxed()),
            ],
        }
    }

    /// The clusters each of whose StatefulSets is made, at its replicas
    /// and all Ready, with every one of its pods Ready.
    pub(super) fn ready_by_pods(&self, kind: Kind) -> HashSet<String> {
        // Ready pods by StatefulSet.
        let mut ready = HashMap::<String, i32>::new();
        for p in self.pods.state() {
            if doris_operator::controller::rollout::is_ready(&p) {
                for r in p.owner_references() {
                    *ready.entry(r.name.clone()).or_default() += 1;
                }
            }
        }
        // Per cluster: its StatefulSets, and whether all are done.
        let mut clusters = HashMap::<String, (usize, bool)>::new();
        for s in self.statefulsets.state() {
            let replicas = s.spec.replicas.unwrap_or(1);
            let done = s.status.as_ref().is_some_and(|status| {
                status.observed_generation >= s.metadata.generation
                    && status.replicas == replicas
                    && status.ready_replicas.unwrap_or(0) == replicas
                    && status.updated_replicas.unwrap_or(0) == replicas
            }) && ready.get(&s.name_any()).copied().unwrap_or(0) == replicas;
            for r in s.owner_references() {
                let entry = clusters.entry(r.name.clone()).or_insert((0, true));
                entry.0 += 1;
                entry.1 &= done;
            }
        }
        clusters
            .into_iter()
            .filter(|(_, (sets, done))| *sets >= kind.statefulsets() && *done)
            .map(|(name, _)| name)
            .collect()
    }
}

/// Registers each Ready pod's node with the FE simulator, as the Doris
/// images' entrypoints do: a compute group's pod into its group
/// (`COMPUTE_GROUP_NAME`), a BE or CN as such, an FE as follower below its
/// `ELECT_NUMBER`, else observer; a meta service pod not at all. Its FQDN
/// goes through the Service its StatefulSet names.
pub(super) fn register_members(watched: &Watched, fleet: Arc<Fleet>) -> AbortOnDrop {
    let (pods, statefulsets) = (watched.pods.clone(), watched.statefulsets.clone());
    AbortOnDrop(tokio::spawn(async move {
        let mut done = HashSet::new();
        loop {
            for pod in pods.state() {
                let uid = pod.uid().unwrap_or_default();
                if done.contains(&uid) || !doris_operator::controller::rollout::is_ready(&pod) {
                    continue;
                }
                let name = pod.name_any();
                let Some(sim) = fleet.of(&name) else {
                    continue;
                };
                let ns = pod.namespace().unwrap_or_default();
                let Some((sts, ordinal)) = name.rsplit_once('-') else {
                    continue;
                };
                let ordinal: usize = ordinal.parse().unwrap_or(0);
                let service = statefulsets
                    .state()
                    .iter()
                    .find(|s| s.name_any() == sts)
                    .and_then(|s| s.spec.service_name.clone())
                    .unwrap_or_else(|| format!("{sts}-internal"));
                let host = format!("{name}.{service}.{ns}.svc.cluster.local");
                let env = |var: &str| {
                    pod.spec.as_ref().and_then(|s| {
                        s.containers
                            .iter()
                            .flat_map(|c| c.env.iter().flatten())
                            .find(|e| e.name == var)
                            .and_then(|e| e.value.clone())
                    })
                };
                let group = env("COMPUTE_GROUP_NAME").filter(|g| !g.is_empty());
                let component = pod.labels().get("app.kubernetes.io/component").cloned();
                match (group, component.as_deref()) {
                    (Some(group), _) => {
                        let _ = sim.register_backend_in_group(&host, 9050, &group);
                    }
                    (None, Some("be")) => {
                        let _ = sim.register_backend(&host, 9050);
                    }
                    (None, Some("cn")) => {
                        let _ = sim.register_compute_node(&host, 9050);
                    }
                    (None, Some("fe")) => {
                        let fe = doris_operator::doris::FeClient::new(
                            doris_operator::doris::FeEndpoint::new(sim.addr().ip().to_string())
                                .with_port(sim.addr().port()),
                        );
                        let elect = env("ELECT_NUMBER").and_then(|n| n.parse().ok());
                        let _ = if elect.is_none_or(|e: usize| ordinal < e) {
                            fe.add_follower(&host, 9010).await
                        } else {
                            fe.add_observer(&host, 9010).await
                        };
                    }
                    _ => {}
                }
                done.insert(uid);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }))
}
