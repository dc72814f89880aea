//! An FE simulator for each cluster, as each real cluster has FEs of its
//! own: this operator reaches a cluster's FE at its access Service's name
//! on the query port, and a hosts file, bind-mounted as the operator's
//! `/etc/hosts`, names the simulator of that cluster (each on an address
//! of its own in 127.0.0.0/8). So `SHOW BACKENDS` lists the cluster's own
//! nodes, as a real FE's does, however many clusters there are.
//!
//! Where no mount namespace can be made, every cluster's FE is one
//! simulator reached through `--fe-address`; its node lists then hold
//! every cluster's nodes.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doris_operator::controller::fe_link::DEFAULT_QUERY_PORT as QUERY_PORT;
use doris_operator::crd::ComponentKind;

use super::cluster::Kind;
use crate::fesim::{FeSim, FeSimConfig};

/// How the operator under test reaches the clusters' FEs.
pub(super) enum FeReach {
    /// One address for every cluster (`--fe-address`).
    Address(SocketAddr),
    /// The hosts file to run with as `/etc/hosts`.
    Hosts(PathBuf),
}

/// The FE simulators of one run's clusters.
pub(super) struct Fleet {
    /// By cluster name; one shared simulator under every name when no
    /// hosts file can be given.
    sims: HashMap<String, Arc<FeSim>>,
    reach: FeReach,
    /// The hosts file naming one silent address for every cluster.
    silent_hosts: Option<PathBuf>,
}

/// The address of the `i`th cluster's FE simulator.
fn address(i: usize) -> Ipv4Addr {
    // 127.0.0.0/24 left alone; 250 clusters per /24.
    Ipv4Addr::new(127, 1 + (i / 250) as u8, 0, 1 + (i % 250) as u8)
}

/// The name this operator looks a cluster's FE up by.
fn fe_host(kind: Kind, cluster: &str, namespace: &str) -> String {
    let service = match kind {
        Kind::DorisCluster => {
            doris_operator::plan::names::access_service(cluster, ComponentKind::Fe)
        }
        Kind::Disaggregated => {
            doris_operator::cluster::disaggregated_names(cluster, "fe").access_service
        }
    };
    format!("{service}.{namespace}.svc")
}

/// `/etc/hosts` with `entries` (address, name) after its own lines.
fn write_hosts(path: &Path, entries: impl Iterator<Item = (Ipv4Addr, String)>) {
    let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    for (ip, name) in entries {
        text.push_str(&format!("{ip} {name}\n"));
    }
    std::fs::write(path, text).expect("a hosts file");
}

impl Fleet {
    /// Simulators for clusters `names` of `kind` in `namespace`: one each,
    /// named in a hosts file under `work`, when `per_cluster`.
    pub(super) async fn start(
        kind: Kind,
        names: &[String],
        namespace: &str,
        work: &Path,
        per_cluster: bool,
    ) -> Fleet {
        let config = || match kind {
            Kind::DorisCluster => FeSimConfig::default(),
            Kind::Disaggregated => FeSimConfig::cloud(),
        };
        if !per_cluster {
            let sim = Arc::new(FeSim::start(config()).await);
            return Fleet {
                reach: FeReach::Address(sim.addr()),
                sims: names.iter().map(|n| (n.clone(), sim.clone())).collect(),
                silent_hosts: None,
            };
        }
        let mut sims = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let at = SocketAddr::from((address(i), QUERY_PORT));
            sims.insert(name.clone(), Arc::new(FeSim::start_at(config(), at).await));
        }
        let hosts = work.join(format!("hosts-{namespace}"));
        write_hosts(
            &hosts,
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (address(i), fe_host(kind, n, namespace))),
        );
        let silent = work.join(format!("hosts-{namespace}-silent"));
        write_hosts(
            &silent,
            names.iter().map(|n| (SILENT, fe_host(kind, n, namespace))),
        );
        Fleet {
            sims,
            reach: FeReach::Hosts(hosts),
            silent_hosts: Some(silent),
        }
    }

    /// How the operator reaches the FEs.
    pub(super) fn reach(&self) -> &FeReach {
        &self.reach
    }

    /// The simulator of the cluster whose object (pod, StatefulSet) is
    /// named `object`: clusters are named without dashes, their objects
    /// `<cluster>-…`.
    pub(super) fn of(&self, object: &str) -> Option<&Arc<FeSim>> {
        self.sims.get(object.split('-').next()?)
    }

    /// How the operator reaches FEs that take connections and never
    /// speak; the listener must be kept while it runs.
    pub(super) fn silent(&self) -> (FeReach, std::net::TcpListener) {
        match &self.silent_hosts {
            Some(hosts) => {
                let listener =
                    std::net::TcpListener::bind((SILENT, QUERY_PORT)).expect("a silent FE port");
                (FeReach::Hosts(hosts.clone()), listener)
            }
            None => {
                let listener =
                    std::net::TcpListener::bind("127.0.0.1:0").expect("a silent FE port");
                let addr = listener.local_addr().expect("its address");
                (FeReach::Address(addr), listener)
            }
        }
    }
}

/// Where FEs that never answer listen.
const SILENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
