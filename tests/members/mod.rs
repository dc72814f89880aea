//! Doris nodes joining the FE as the images' entrypoints make them: a
//! member driver registers each Ready pod's node with an FE simulator under
//! its FQDN (`HOST_TYPE=FQDN`, `enable_fqdn_mode = true`) or, when told, its
//! pod's IP (`HOST_TYPE=IP`, Doris's default `enable_fqdn_mode = false`:
//! an FE shows itself by its IP,
//! fe/fe-core/src/main/java/org/apache/doris/service/FrontendOptions.java,
//! and a BE is listed by the host it was added with,
//! fe/fe-core/src/main/java/org/apache/doris/system/SystemInfoService.java),
//! and the operator is pointed at that simulator.
//!
//! Pods of a storage-compute separated cluster are told apart by what the
//! disaggregated images read, never by their names: a compute group's pod
//! has `COMPUTE_GROUP_NAME` in its container's environment and adds itself
//! to that group with `ALTER SYSTEM ADD BACKEND ... PROPERTIES
//! ("tag.compute_group_name" = ...)`, trying again until the FE takes it;
//! an FE pod with `MS_ENDPOINT` joins as follower below `ELECT_NUMBER`,
//! else as observer; a meta service pod (component `ms`, or
//! `FDB_ENDPOINT`) registers nothing. Their FQDN goes through the Service
//! their StatefulSet names.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::doris::{FeClient, FeEndpoint};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};

use crate::env::{Env, eventually};
use crate::fesim::{FeSim, FeSimConfig, SimFrontend};
use doris_operator::crd::DorisCluster;

pub const HEARTBEAT_PORT: u16 = 9050;
pub const EDIT_LOG_PORT: u16 = 9010;

pub fn fqdn(env: &Env, pod: &str) -> String {
    let (sts, _) = pod.rsplit_once('-').unwrap();
    format!("{pod}.{sts}-internal.{}.svc.cluster.local", env.namespace)
}

/// A pod's FQDN through the headless Service `service`.
pub fn fqdn_via(env: &Env, pod: &str, service: &str) -> String {
    format!("{pod}.{service}.{}.svc.cluster.local", env.namespace)
}

/// The env var that names a compute group's pods' group.
pub const COMPUTE_GROUP_NAME: &str = "COMPUTE_GROUP_NAME";

/// What a pod of a storage-compute separated cluster does with the FE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disaggregated {
    /// The meta service: nothing.
    MetaService,
    /// An FE: the first is the master, the others join, as followers
    /// while fewer than the election number (`ELECT_NUMBER`, when set).
    Frontend { election_number: Option<usize> },
    /// A compute group's BE: adds itself to its group.
    ComputeGroup(String),
}

/// The value of env var `name` in any of the pod's containers.
fn container_env(pod: &Pod, name: &str) -> Option<String> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// How a pod of a storage-compute separated cluster registers, or `None`
/// for any other pod (a `DorisCluster`'s, say).
pub fn disaggregated_role(pod: &Pod) -> Option<Disaggregated> {
    if let Some(group) = container_env(pod, COMPUTE_GROUP_NAME).filter(|g| !g.is_empty()) {
        return Some(Disaggregated::ComputeGroup(group));
    }
    let component = pod.labels().get("app.kubernetes.io/component").cloned();
    if component.as_deref() == Some("fe") && container_env(pod, "MS_ENDPOINT").is_some() {
        let election_number = container_env(pod, "ELECT_NUMBER").and_then(|n| n.parse().ok());
        return Some(Disaggregated::Frontend { election_number });
    }
    if component.as_deref() == Some("ms") || container_env(pod, "FDB_ENDPOINT").is_some() {
        return Some(Disaggregated::MetaService);
    }
    None
}

/// Registers each Ready pod's node with the FE simulator, as the Doris
/// images' entrypoints do; pods in `skip` never register.
pub struct MemberDriver {
    skip: Arc<Mutex<HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MemberDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MemberDriver {
    pub fn start(env: &Env, sim: Arc<FeSim>, election_number: usize) -> MemberDriver {
        MemberDriver::start_as(env, sim, election_number, "root", "", None)
    }

    /// Registers a shared-nothing cluster's nodes by their pods' IPs, as
    /// the images do with `HOST_TYPE=IP`; the master FE the simulator
    /// started with is listed by its pod's IP once that pod has one.
    /// Frontends register as `user`.
    pub fn start_by_ip(
        env: &Env,
        sim: Arc<FeSim>,
        election_number: usize,
        user: &str,
        password: &str,
    ) -> MemberDriver {
        MemberDriver::spawn(env, sim, election_number, user, password, None, true)
    }

    /// Registers frontends as `user` (the FE entrypoint logs in as the
    /// management user).
    pub fn start_as(
        env: &Env,
        sim: Arc<FeSim>,
        election_number: usize,
        user: &str,
        password: &str,
        tls: Option<doris_operator::doris::FeTls>,
    ) -> MemberDriver {
        MemberDriver::spawn(env, sim, election_number, user, password, tls, false)
    }

    fn spawn(
        env: &Env,
        sim: Arc<FeSim>,
        election_number: usize,
        user: &str,
        password: &str,
        tls: Option<doris_operator::doris::FeTls>,
        by_ip: bool,
    ) -> MemberDriver {
        let (user, password) = (user.to_string(), password.to_string());
        let skip: Arc<Mutex<HashSet<String>>> = Arc::default();
        let pods = env.api::<Pod>();
        let statefulsets = env.api::<StatefulSet>();
        let namespace = env.namespace.clone();
        let skipped = skip.clone();
        let task = tokio::spawn(async move {
            let mut done = HashSet::new();
            // Pods whose registration failed once, so that it is told once.
            let mut failed = HashSet::new();
            loop {
                let list = pods.list(&Default::default()).await.map(|l| l.items);
                for pod in list.into_iter().flatten() {
                    let name = pod.name_any();
                    let uid = pod.uid().unwrap_or_default();
                    let ready = doris_operator::controller::rollout::is_ready(&pod);
                    if !ready || done.contains(&uid) || skipped.lock().unwrap().contains(&name) {
                        continue;
                    }
                    if let Some(role) = disaggregated_role(&pod) {
                        let fe = fe_client(&sim, &user, &password, &tls);
                        let registered = register_disaggregated(
                            &pod,
                            role,
                            &statefulsets,
                            &fe,
                            election_number,
                            &mut failed,
                        )
                        .await;
                        if registered {
                            done.insert(uid);
                        }
                        continue;
                    }
                    let (sts, ordinal) = name.rsplit_once('-').unwrap();
                    let fqdn = format!("{name}.{sts}-internal.{namespace}.svc.cluster.local");
                    let pod_ip = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.pod_ip.clone())
                        .filter(|ip| !ip.is_empty());
                    let host = match (by_ip, pod_ip) {
                        (false, _) => fqdn.clone(),
                        (true, Some(ip)) => ip,
                        (true, None) => continue,
                    };
                    let ordinal: usize = ordinal.parse().unwrap();
                    let component = pod.labels().get("app.kubernetes.io/component").cloned();
                    match component.as_deref() {
                        // The master the simulator started with, listed by
                        // its FQDN until its pod has an IP.
                        Some("fe") if ordinal == 0 && by_ip => {
                            sim.set_frontend_host(&fqdn, EDIT_LOG_PORT, &host);
                        }
                        Some("be") => {
                            let _ = sim.register_backend(&host, HEARTBEAT_PORT);
                        }
                        Some("cn") => {
                            let _ = sim.register_compute_node(&host, HEARTBEAT_PORT);
                        }
                        Some("fe") if ordinal > 0 => {
                            let mut endpoint = FeEndpoint::new("127.0.0.1")
                                .with_port(sim.addr().port())
                                .with_credentials(user.clone(), password.clone());
                            if let Some(tls) = &tls {
                                endpoint = endpoint.with_tls(tls.clone());
                            }
                            let fe = FeClient::new(endpoint);
                            let _ = if ordinal < election_number {
                                fe.add_follower(&host, EDIT_LOG_PORT).await
                            } else {
                                fe.add_observer(&host, EDIT_LOG_PORT).await
                            };
                        }
                        _ => {}
                    }
                    done.insert(uid);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        MemberDriver { skip, task }
    }

    pub fn skip(&self, pod: &str) {
        self.skip.lock().unwrap().insert(pod.to_string());
    }
}

fn fe_client(
    sim: &FeSim,
    user: &str,
    password: &str,
    tls: &Option<doris_operator::doris::FeTls>,
) -> FeClient {
    let mut endpoint = FeEndpoint::new("127.0.0.1")
        .with_port(sim.addr().port())
        .with_credentials(user, password);
    if let Some(tls) = tls {
        endpoint = endpoint.with_tls(tls.clone());
    }
    FeClient::new(endpoint)
}

/// The FQDN of a StatefulSet's pod: through the Service the StatefulSet
/// names, as the pod's hostname and subdomain are.
async fn pod_fqdn(pod: &Pod, statefulsets: &Api<StatefulSet>) -> Option<String> {
    let namespace = pod.namespace()?;
    let service = match pod.spec.as_ref()?.subdomain.clone() {
        Some(subdomain) => subdomain,
        None => {
            let owner = pod
                .owner_references()
                .iter()
                .find(|o| o.kind == "StatefulSet")?
                .name
                .clone();
            let sts = statefulsets.get(&owner).await.ok()?;
            sts.spec.service_name.filter(|s| !s.is_empty())?
        }
    };
    Some(format!(
        "{}.{service}.{namespace}.svc.cluster.local",
        pod.name_any()
    ))
}

/// Registers a pod of a storage-compute separated cluster as its image's
/// entrypoint does; false when it should be tried again.
async fn register_disaggregated(
    pod: &Pod,
    role: Disaggregated,
    statefulsets: &Api<StatefulSet>,
    fe: &FeClient,
    election_number: usize,
    failed: &mut HashSet<String>,
) -> bool {
    let name = pod.name_any();
    let ordinal: Option<usize> = name.rsplit_once('-').and_then(|(_, n)| n.parse().ok());
    let result = match role {
        Disaggregated::MetaService => return true,
        // The first FE is the master the simulator starts with.
        Disaggregated::Frontend { .. } if ordinal == Some(0) => return true,
        Disaggregated::Frontend {
            election_number: elect,
        } => {
            let Some(host) = pod_fqdn(pod, statefulsets).await else {
                return false;
            };
            let ordinal = ordinal.unwrap_or(usize::MAX);
            if ordinal < elect.unwrap_or(election_number) {
                fe.add_follower(&host, EDIT_LOG_PORT).await
            } else {
                fe.add_observer(&host, EDIT_LOG_PORT).await
            }
        }
        Disaggregated::ComputeGroup(group) => {
            let Some(host) = pod_fqdn(pod, statefulsets).await else {
                return false;
            };
            fe.add_backend_to_compute_group(&host, HEARTBEAT_PORT, &group)
                .await
        }
    };
    match result {
        Ok(()) => true,
        // A pod that restarts finds itself registered.
        Err(e)
            if e.server_message()
                .is_some_and(|m| m.contains("already exists")) =>
        {
            true
        }
        Err(e) => {
            if failed.insert(name.clone()) {
                eprintln!("member driver: {name} not registered yet: {e}");
            }
            false
        }
    }
}

/// An FE simulator whose master is `<cluster>-fe-0`, and the operator
/// (started later) pointed at it.
pub async fn simulated_fe(env: &mut Env, config: FeSimConfig, cluster: &str) -> Arc<FeSim> {
    let master = fqdn(env, &format!("{cluster}-fe-0"));
    simulated_fe_at(env, config, &master).await
}

/// The FE of a storage-compute separated cluster ([`FeSimConfig::cloud`])
/// whose master is pod `<fe_statefulset>-0` behind Service `fe_service`,
/// and the operator (started later) pointed at it.
pub async fn simulated_cloud_fe(
    env: &mut Env,
    fe_statefulset: &str,
    fe_service: &str,
) -> Arc<FeSim> {
    let master = fqdn_via(env, &format!("{fe_statefulset}-0"), fe_service);
    simulated_fe_at(env, FeSimConfig::cloud(), &master).await
}

/// An FE simulator whose master is the FE at `master` (an FQDN), and the
/// operator (started later) pointed at it.
pub async fn simulated_fe_at(env: &mut Env, mut config: FeSimConfig, master: &str) -> Arc<FeSim> {
    config.frontends = vec![SimFrontend::new(master, EDIT_LOG_PORT, "FOLLOWER")];
    let sim = Arc::new(FeSim::start(config).await);
    // The access Service is the simulator's address; each FE pod, by its
    // DNS name, the address of that FE.
    let fe = Arc::downgrade(&sim);
    env.fe_resolver = Some(Arc::new(move |_, pod| {
        let fe = fe.upgrade()?;
        let addr = match pod {
            None => fe.addr(),
            Some(host) => fe.frontend_addr(host),
        };
        Some(("127.0.0.1".to_string(), addr.port()))
    }));
    sim
}

/// The cluster once its status says the FE lists exactly its nodes, for
/// its current generation.
pub async fn members_synced(env: &Env, name: &str) -> DorisCluster {
    // What status said last, for the message of a test that times out.
    let last = std::sync::Mutex::new(String::new());
    let what = format!("{name} MembersSynced=True");
    let wait = eventually(&what, 30, || async {
        let c = env.api::<DorisCluster>().get(name).await.ok()?;
        let status = c.status.as_ref()?;
        *last.lock().unwrap() = format!(
            "generation {:?}, observed {:?}, conditions {:?}, members {:?}",
            c.metadata.generation, status.observed_generation, status.conditions, status.membership
        );
        let synced = status
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "MembersSynced" && c.status == "True");
        (synced && status.observed_generation == c.metadata.generation).then_some(c)
    });
    match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(wait)).await {
        Ok(c) => c,
        Err(_) => panic!(
            "{name} not MembersSynced=True; status said: {}",
            last.lock().unwrap()
        ),
    }
}
