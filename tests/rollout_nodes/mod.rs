//! The FE and BE entrypoints as the rollout suite plays them: each node is
//! registered with the FE simulator when its pod is Ready and marked dead
//! while its pod is gone or not Ready, under its FQDN (the images'
//! `HOST_TYPE=FQDN`, `enable_fqdn_mode = true`) or its pod's IP
//! (`enable_fqdn_mode = false`, Doris's default); and what the pods went
//! through, from a watch.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doris_operator::controller::rollout::is_ready;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher;

use crate::env::Env;
use crate::fesim::FeSim;

pub const FE_EDIT_LOG_PORT: u16 = 9010;
pub const BE_HEARTBEAT_PORT: u16 = 9050;

/// What the pods went through, from a watch: deletions (of pods that had
/// been Ready) in order, and each pod incarnation (UID) the first time it
/// was Ready.
#[derive(Clone, Default)]
pub struct History {
    /// ("deleted" | "ready", pod), in the order seen.
    pub log: Vec<(&'static str, String)>,
    pub uids: BTreeMap<String, BTreeSet<String>>,
    pub ready: BTreeSet<String>,
    /// Whether the BE had queries and loads stopped when its pod went.
    pub drained_when_deleted: BTreeMap<String, Vec<bool>>,
}

impl History {
    pub fn deletions(&self) -> Vec<String> {
        self.log
            .iter()
            .filter(|(what, _)| *what == "deleted")
            .map(|(_, pod)| pod.clone())
            .collect()
    }

    pub fn deletions_of(&self, pod: &str) -> usize {
        self.deletions().iter().filter(|p| *p == pod).count()
    }

    /// New incarnations of a pod after the first one seen.
    /// Incarnations of `pod` that ran (were Ready), less the first: on the
    /// real control plane kwok can kill a replacement before it ever runs
    /// (see the watch's Delete arm), and that is no restart.
    pub fn recreations_of(&self, pod: &str) -> usize {
        self.uids.get(pod).map_or(0, |u| {
            u.iter()
                .filter(|uid| self.ready.contains(*uid))
                .count()
                .saturating_sub(1)
        })
    }
}

/// Plays the FE and BE entrypoints and records what pods go through.
pub struct Nodes {
    history: Arc<Mutex<History>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The host a node is registered and listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hosts {
    Fqdn,
    /// The pod's IP, as Doris lists nodes with `enable_fqdn_mode = false`
    /// (fe/fe-core/src/main/java/org/apache/doris/service/FrontendOptions.java
    /// for an FE; a BE is listed by the IP its entrypoint adds it with,
    /// fe/fe-core/src/main/java/org/apache/doris/system/SystemInfoService.java).
    PodIp,
}

pub fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
}

impl Nodes {
    pub fn start(env: &Env, sim: Arc<FeSim>) -> Nodes {
        Nodes::start_with(env, sim, Hosts::Fqdn)
    }

    pub fn start_with(env: &Env, sim: Arc<FeSim>, hosts: Hosts) -> Nodes {
        let history = Arc::new(Mutex::new(History::default()));
        let pods: Api<Pod> = env.api();
        let namespace = env.namespace.clone();
        let watched = history.clone();
        let watch_sim = sim.clone();
        let watch_ns = namespace.clone();
        let watch = tokio::spawn(async move {
            let mut restarts = crate::env::Restarts::default();
            let mut events = watcher(pods, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                let mut h = watched.lock().unwrap();
                match event {
                    watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                        let name = pod.name_any();
                        let uid = pod.uid().unwrap_or_default();
                        h.uids.entry(name.clone()).or_default().insert(uid.clone());
                        if restarts.seen(&pod) {
                            h.ready.insert(uid);
                            h.log.push(("ready", name));
                        }
                    }
                    watcher::Event::Delete(pod) => {
                        let name = pod.name_any();
                        // Only a restart counts (see env::Restarts).
                        if !restarts.is_restart(&pod) {
                            continue;
                        }
                        if name.contains("-be-") {
                            let host = match hosts {
                                Hosts::Fqdn => {
                                    format!("{name}.doris-be-internal.{watch_ns}.svc.cluster.local")
                                }
                                Hosts::PodIp => pod_ip(&pod).unwrap_or_default(),
                            };
                            let drained = watch_sim
                                .backend(&host, BE_HEARTBEAT_PORT)
                                .is_some_and(|b| b.query_disabled && b.load_disabled);
                            h.drained_when_deleted
                                .entry(name.clone())
                                .or_default()
                                .push(drained);
                        }
                        h.log.push(("deleted", name));
                    }
                    _ => {}
                }
            }
        });
        // The entrypoints: a node is alive while its pod is Ready.
        let pods: Api<Pod> = env.api();
        let entrypoints = tokio::spawn(async move {
            // Each pod's host, once it has one.
            let mut known: BTreeMap<String, String> = BTreeMap::new();
            loop {
                if let Ok(list) = pods.list(&Default::default()).await {
                    let ready: BTreeSet<String> = list
                        .items
                        .iter()
                        .filter(|p| is_ready(p))
                        .map(|p| p.name_any())
                        .collect();
                    for p in &list.items {
                        let pod = p.name_any();
                        let sts = pod.rsplit_once('-').map(|(s, _)| s).unwrap_or(&pod);
                        let fqdn = format!("{pod}.{sts}-internal.{namespace}.svc.cluster.local");
                        let host = match hosts {
                            Hosts::Fqdn => fqdn.clone(),
                            Hosts::PodIp => match pod_ip(p) {
                                Some(ip) => ip,
                                None => continue,
                            },
                        };
                        let was = known.insert(pod.clone(), host.clone());
                        if was.as_ref() == Some(&host) {
                            continue;
                        }
                        if pod.contains("-fe-") {
                            // The FE shows itself by the IP its pod has.
                            let from = was.unwrap_or(fqdn);
                            sim.set_frontend_host(&from, FE_EDIT_LOG_PORT, &host);
                        } else if let Some(was) = was {
                            // A BE whose pod came back with another IP is a
                            // new node; the old one is heard no more.
                            sim.set_backend_alive(&was, BE_HEARTBEAT_PORT, false);
                        }
                    }
                    for (pod, host) in &known {
                        let up = ready.contains(pod);
                        if pod.contains("-fe-") {
                            sim.set_frontend_alive(host, FE_EDIT_LOG_PORT, up);
                        } else if pod.contains("-be-") {
                            if up && sim.backend(host, BE_HEARTBEAT_PORT).is_none() {
                                let _ = sim.register_backend(host, BE_HEARTBEAT_PORT);
                            }
                            sim.set_backend_alive(host, BE_HEARTBEAT_PORT, up);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Nodes {
            history,
            tasks: vec![watch, entrypoints],
        }
    }

    /// What happened so far.
    pub fn history(&self) -> History {
        self.history.lock().unwrap().clone()
    }
}
