//! Doris nodes joining the FE as the images' entrypoints make them: a
//! member driver registers each Ready pod's node with an FE simulator under
//! its FQDN, and the operator is pointed at that simulator.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::fe::{FeClient, FeEndpoint};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::env::{Env, eventually};
use crate::fesim::{FeSim, FeSimConfig, SimFrontend};
use doris_operator::crd::DorisCluster;

pub const HEARTBEAT_PORT: u16 = 9050;
pub const EDIT_LOG_PORT: u16 = 9010;

pub fn fqdn(env: &Env, pod: &str) -> String {
    let (sts, _) = pod.rsplit_once('-').unwrap();
    format!("{pod}.{sts}-internal.{}.svc.cluster.local", env.namespace)
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

    /// Registers frontends as `user` (the FE entrypoint logs in as the
    /// management user).
    pub fn start_as(
        env: &Env,
        sim: Arc<FeSim>,
        election_number: usize,
        user: &str,
        password: &str,
        tls: Option<doris_operator::fe::FeTls>,
    ) -> MemberDriver {
        let (user, password) = (user.to_string(), password.to_string());
        let skip: Arc<Mutex<HashSet<String>>> = Arc::default();
        let pods = env.api::<Pod>();
        let namespace = env.namespace.clone();
        let skipped = skip.clone();
        let task = tokio::spawn(async move {
            let mut done = HashSet::new();
            loop {
                let list = pods.list(&Default::default()).await.map(|l| l.items);
                for pod in list.into_iter().flatten() {
                    let name = pod.name_any();
                    let uid = pod.uid().unwrap_or_default();
                    let ready = doris_operator::controller::rollout::is_ready(&pod);
                    if !ready || done.contains(&uid) || skipped.lock().unwrap().contains(&name) {
                        continue;
                    }
                    let (sts, ordinal) = name.rsplit_once('-').unwrap();
                    let host = format!("{name}.{sts}-internal.{namespace}.svc.cluster.local");
                    let ordinal: usize = ordinal.parse().unwrap();
                    let component = pod.labels().get("app.kubernetes.io/component").cloned();
                    match component.as_deref() {
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

/// An FE simulator whose master is `<cluster>-fe-0`, and the operator
/// (started later) pointed at it.
pub async fn simulated_fe(env: &mut Env, mut config: FeSimConfig, cluster: &str) -> Arc<FeSim> {
    config.frontends = vec![SimFrontend::new(
        &fqdn(env, &format!("{cluster}-fe-0")),
        EDIT_LOG_PORT,
        "FOLLOWER",
    )];
    let sim = Arc::new(FeSim::start(config).await);
    let port = sim.addr().port();
    env.fe_resolver = Some(Arc::new(move |_| Some(("127.0.0.1".to_string(), port))));
    sim
}

/// The cluster once its status says the FE lists exactly its nodes, for
/// its current generation.
pub async fn members_synced(env: &Env, name: &str) -> DorisCluster {
    eventually(&format!("{name} MembersSynced=True"), 30, || async {
        let c = env.api::<DorisCluster>().get(name).await.ok()?;
        let synced = c
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "MembersSynced" && c.status == "True");
        (synced && c.status.as_ref()?.observed_generation == c.metadata.generation).then_some(c)
    })
    .await
}
