//! A Doris FE simulator that speaks the MySQL wire protocol.
//!
//! It listens on 127.0.0.1 on a free port and answers what the operator
//! asks a real FE: `SHOW FRONTENDS` and `SHOW BACKENDS` with Doris's own
//! column names, and the `ALTER SYSTEM` / `CANCEL DECOMMISSION` statements
//! that change cluster membership, with Doris's error messages. A
//! decommissioned backend drains its tablets at a set rate and, in
//! integrated mode, is removed when none are left, as Doris does; in cloud
//! mode it stays listed until dropped (see `State::advance`).
//!
//! The protocol side is the classic text protocol only: handshake v10 with
//! `mysql_native_password`, `COM_QUERY`, `COM_PING`, `COM_INIT_DB` and
//! `COM_QUIT`, result sets ended by EOF packets, and TLS when configured
//! (`CLIENT_SSL`: the client's SSL request, then the handshake response over
//! TLS, as MySQL and a Doris FE with `enable_tls = true` do). No
//! compression, no prepared statements.
//!
//! It also keeps a small table of real FE settings with Doris's own
//! mutability, for each FE: `SHOW FRONTEND CONFIG [LIKE '...']` lists them,
//! and `ADMIN SET FRONTEND CONFIG ("key" = "value")` changes a mutable one
//! on the FE the client is connected to, `ADMIN SET ALL FRONTENDS CONFIG`
//! on every FE, from the release that has it (recorded, see
//! [`FeSim::config_sets`]); the others are refused with Doris's messages.
//! The FEs are told apart by address: [`FeSim::addr`] is the access
//! Service (it lands on the master), [`FeSim::frontend_addr`] an FE's own.
//!
//! Users other than [`FeSimConfig::user`] ([`FeSimConfig::users`]) have
//! the privileges they were granted, and statements check them as Doris
//! does (see `access.rs`).
//!
//! The [`FeSim`] handle shows and changes the state directly, plays a
//! backend that registers itself, and injects faults: refused connections,
//! an FE that never answers, slow answers and SQL errors.
//!
//! With [`FeSimConfig::cloud`] it is the FE of a storage-compute separated
//! cluster: every backend belongs to a compute group (the one named by
//! `PROPERTIES ("tag.compute_group_name" = ...)` when it was added, else
//! `default_compute_group`), each group gets an id when its first backend
//! arrives, and `SHOW BACKENDS` carries both in the `Tag` JSON as Doris 3
//! does.

#![allow(dead_code)] // each test binary uses a different part

mod access;
mod config;
mod profile;
#[allow(unused_imports)] // used by the BE simulator, in the binaries that have one
pub use profile::integrated_release;
mod show;
mod sql;
mod statements;
mod wire;

#[allow(unused_imports)] // each test binary uses a different part
pub use access::{Privilege, SimUser};
pub use config::{ConfigSet, SimSetting};

use config::fe_settings;
use sql::host_port;
use wire::{accept_loop, lock};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Which Doris release's `SHOW` columns to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// Doris 2.1 / 3.x: `Host`, `ArrowFlightSqlPort`, `NodeRole` ...
    Doris3,
    /// Doris 1.2: `IP` and `HostName`, `ClusterDecommissioned`, no `NodeRole`.
    Doris12,
}

/// How a storage-compute separated FE names compute groups in a
/// backend's `Tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudTags {
    /// Doris 3.0.2 and later: `compute_group_name`, `compute_group_id`,
    /// `compute_group_status`, `public_endpoint`, `private_endpoint`.
    ComputeGroup,
    /// Doris 3.0.0 and 3.0.1: `cloud_cluster_name`, `cloud_cluster_id`,
    /// `cloud_cluster_status`, `cloud_cluster_public_endpoint`, ...
    CloudCluster,
}

/// The compute group of a backend added without naming one, as Doris
/// names it.
pub const DEFAULT_COMPUTE_GROUP: &str = "default_compute_group";

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct FeSimConfig {
    /// The user the operator logs in as; it has every privilege, as root.
    pub user: String,
    pub password: String,
    /// Other users, with the global privileges they were granted.
    pub users: Vec<SimUser>,
    /// Tablets a decommissioned backend hands off per second.
    pub drain_rate: f64,
    /// Whether a backend added with `ALTER SYSTEM ADD BACKEND` shows as
    /// alive at once (its process is taken to be up and heartbeating).
    pub new_backends_alive: bool,
    /// Tablets a backend added by statement starts with.
    pub new_backend_tablets: u64,
    /// Frontends at start; the first is the master. Empty: one master
    /// follower on 127.0.0.1:9010.
    pub frontends: Vec<SimFrontend>,
    pub columns: Columns,
    pub version: String,
    /// Serve TLS with this configuration, and refuse clients that do not
    /// ask for it. Plain MySQL when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Be the FE of a storage-compute separated cluster (`deploy_mode =
    /// cloud`), naming compute groups in `Tag` this way. `None`: backends
    /// keep data and belong to no compute group.
    pub cloud: Option<CloudTags>,
    /// Replicas of the one table the cluster holds
    /// (`example_db.example_tbl`, on tag `location:default`); `None`: no
    /// table. An integrated FE refuses to decommission BEs that would leave
    /// fewer than this.
    pub table_replication_num: Option<usize>,
}

impl FeSimConfig {
    /// The FE of a storage-compute separated Doris 3 cluster.
    pub fn cloud() -> Self {
        FeSimConfig {
            cloud: Some(CloudTags::ComputeGroup),
            version: profile::cloud_version(),
            ..FeSimConfig::default()
        }
    }
}

/// A CA, an FE server certificate (for 127.0.0.1 and localhost) and a
/// client certificate it signed, made afresh for a test.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl TestPki {
    pub fn new(name: &str) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) =
            leaf(vec!["127.0.0.1".to_string(), "localhost".to_string()]);
        let (client_cert_pem, client_key_pem) = leaf(vec![format!("{name}-client")]);
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// A server configuration with this PKI's FE certificate that asks for
    /// a client certificate signed by the CA (mutual TLS).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = vec![CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }
}

impl Default for FeSimConfig {
    fn default() -> Self {
        FeSimConfig {
            user: "root".to_string(),
            password: String::new(),
            users: Vec::new(),
            drain_rate: 100.0,
            new_backends_alive: true,
            new_backend_tablets: 0,
            frontends: Vec::new(),
            columns: Columns::Doris3,
            version: profile::integrated_version(),
            tls: None,
            cloud: None,
            table_replication_num: None,
        }
    }
}

/// A frontend as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFrontend {
    pub name: String,
    pub host: String,
    pub edit_log_port: u16,
    /// `FOLLOWER` or `OBSERVER`.
    pub role: String,
    pub is_master: bool,
    pub alive: bool,
    pub join: bool,
}

impl SimFrontend {
    pub fn new(host: &str, edit_log_port: u16, role: &str) -> Self {
        SimFrontend {
            name: format!(
                "fe_{}_{}",
                host.replace(['.', ':', '-'], "_"),
                edit_log_port
            ),
            host: host.to_string(),
            edit_log_port,
            role: role.to_ascii_uppercase(),
            is_master: false,
            alive: false,
            join: false,
        }
    }
}

/// A backend as the simulator keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimBackend {
    pub id: i64,
    pub host: String,
    pub heartbeat_port: u16,
    pub alive: bool,
    pub decommissioned: bool,
    pub tablet_num: u64,
    pub query_disabled: bool,
    pub load_disabled: bool,
    /// `mix` or `computation`.
    pub node_role: String,
    /// The compute group it serves, in a storage-compute separated cluster.
    pub compute_group: Option<String>,
    /// The FE's id of that compute group.
    pub compute_group_id: Option<String>,
    /// Tablets left while draining, with fractions.
    drain_left: f64,
}

/// SQL errors queued by [`FeSim::fail_next`].
#[derive(Debug, Default)]
struct Failures {
    left: usize,
    message: String,
}

#[derive(Debug)]
struct State {
    config: FeSimConfig,
    frontends: Vec<SimFrontend>,
    backends: Vec<SimBackend>,
    next_backend_id: i64,
    /// Compute group name → id, kept for the simulator's life so that a
    /// group's id never changes.
    compute_groups: BTreeMap<String, String>,
    /// Every statement received after login, as sent.
    statements: Vec<String>,
    down: bool,
    unresponsive: bool,
    delay: Duration,
    failures: Failures,
    last_advance: Instant,
    /// Logins that went over TLS.
    tls_sessions: u32,
    /// Why TLS handshakes failed, in order.
    tls_failures: Vec<String>,
    /// Each FE's settings by key, by the FE's host; made from the
    /// defaults when an FE is first asked.
    settings: BTreeMap<String, BTreeMap<String, SimSetting>>,
    /// Every accepted `ADMIN SET ... CONFIG`, in order.
    config_sets: Vec<ConfigSet>,
}

impl State {
    /// The host of the master FE.
    fn master_host(&self) -> String {
        self.frontends
            .iter()
            .find(|f| f.is_master)
            .map(|f| f.host.clone())
            .unwrap_or_default()
    }

    /// The settings of the FE at `host`.
    fn settings_of(&mut self, host: &str) -> &mut BTreeMap<String, SimSetting> {
        self.settings
            .entry(host.to_string())
            .or_insert_with(fe_settings)
    }

    /// Moves decommissioned backends' tablets along; removes those left
    /// with none where Doris does: in integrated mode while
    /// `drop_backend_after_decommission` is true
    /// (fe/fe-core/src/main/java/org/apache/doris/alter/SystemHandler.java,
    /// `runAfterCatalogReady` runs `runAlterJobV2` only `if
    /// (Config.isNotCloudMode())`). In cloud mode the backend stays listed
    /// with `SystemDecommissioned` true and no tablets until it is dropped
    /// (fe/fe-core/src/main/java/org/apache/doris/cloud/catalog/CloudTabletRebalancer.java,
    /// `checkDecommissionState` only tells the meta service;
    /// regression-test/suites/cloud_p0/node_mgr/test_cloud_decommission.groovy
    /// drops it with `DROPP`).
    fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_advance).as_secs_f64();
        self.last_advance = now;
        let rate = self.config.drain_rate;
        for be in self.backends.iter_mut().filter(|b| b.decommissioned) {
            be.drain_left = (be.drain_left - elapsed * rate).max(0.0);
            be.tablet_num = be.drain_left.ceil() as u64;
        }
        // A master-only setting (fe/fe-core/src/main/java/org/apache/doris/common/Config.java).
        let master = self.master_host();
        let auto_drop = self
            .settings_of(&master)
            .get("drop_backend_after_decommission")
            .is_none_or(|s| s.value.eq_ignore_ascii_case("true"));
        if self.config.profile().drops_decommissioned_itself(auto_drop) {
            self.backends
                .retain(|b| !(b.decommissioned && b.tablet_num == 0));
        }
    }

    fn backend_mut(&mut self, host: &str, port: u16) -> Option<&mut SimBackend> {
        self.backends
            .iter_mut()
            .find(|b| b.host == host && b.heartbeat_port == port)
    }

    /// The compute group a new backend joins: the one asked for, else the
    /// default group in a storage-compute separated cluster. An error when
    /// a group is asked of a cluster that has none.
    fn compute_group_for(&self, asked: Option<&str>) -> Result<Option<String>, String> {
        match (self.config.cloud, asked) {
            (Some(_), Some(group)) => Ok(Some(group.to_string())),
            (Some(_), None) => Ok(Some(DEFAULT_COMPUTE_GROUP.to_string())),
            (None, Some(group)) => Err(format!(
                "compute group {group} needs a storage-compute separated cluster (deploy_mode = cloud)"
            )),
            (None, None) => Ok(None),
        }
    }

    /// The id of a compute group, made when it is first seen: eight
    /// letters, digits or `_`, as Doris's meta service makes them, derived
    /// from the name so that runs are alike.
    fn compute_group_id(&mut self, name: &str) -> String {
        if let Some(id) = self.compute_groups.get(name) {
            return id.clone();
        }
        let mut salt = 0u64;
        let id = loop {
            let id = short_id(&format!("{name}/{salt}"));
            if !self.compute_groups.values().any(|v| *v == id) {
                break id;
            }
            salt += 1;
        };
        self.compute_groups.insert(name.to_string(), id.clone());
        id
    }

    fn add_backend(
        &mut self,
        host: &str,
        port: u16,
        alive: bool,
        tablets: u64,
        compute_group: Option<&str>,
    ) -> Result<i64, String> {
        if self.backend_mut(host, port).is_some() {
            return Err(format!(
                "Same backend already exists[{}]",
                host_port(host, port)
            ));
        }
        let compute_group = self.compute_group_for(compute_group)?;
        let compute_group_id = compute_group.as_deref().map(|g| self.compute_group_id(g));
        let id = self.next_backend_id;
        self.next_backend_id += 1;
        self.backends.push(SimBackend {
            id,
            host: host.to_string(),
            heartbeat_port: port,
            alive,
            decommissioned: false,
            tablet_num: tablets,
            query_disabled: false,
            load_disabled: false,
            node_role: "mix".to_string(),
            compute_group,
            compute_group_id,
            drain_left: tablets as f64,
        });
        Ok(id)
    }
}

/// Eight characters of `[A-Za-z0-9_]` from a hash of `seed` (FNV-1a).
pub(super) fn short_id(seed: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..8)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A running simulator. Dropping it stops it listening.
pub struct FeSim {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
    /// Each FE's own address, by host ([`FeSim::frontend_addr`]).
    own: Mutex<BTreeMap<String, (SocketAddr, JoinHandle<()>)>>,
}

impl Drop for FeSim {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, accept) in self.own.lock().unwrap_or_else(|e| e.into_inner()).values() {
            accept.abort();
        }
    }
}

impl FeSim {
    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start(config: FeSimConfig) -> FeSim {
        FeSim::start_at(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts listening on `at` (port 0: a free one).
    pub async fn start_at(config: FeSimConfig, at: SocketAddr) -> FeSim {
        let listener = TcpListener::bind(at)
            .await
            .unwrap_or_else(|e| panic!("bind {at}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let mut frontends = config.frontends.clone();
        if frontends.is_empty() {
            frontends.push(SimFrontend::new("127.0.0.1", 9010, "FOLLOWER"));
        }
        for (i, fe) in frontends.iter_mut().enumerate() {
            fe.is_master = i == 0;
            if i == 0 {
                fe.alive = true;
                fe.join = true;
            }
        }
        let state = Arc::new(Mutex::new(State {
            config,
            frontends,
            backends: Vec::new(),
            next_backend_id: 10002,
            compute_groups: BTreeMap::new(),
            statements: Vec::new(),
            down: false,
            unresponsive: false,
            delay: Duration::ZERO,
            failures: Failures::default(),
            tls_sessions: 0,
            tls_failures: Vec::new(),
            last_advance: Instant::now(),
            settings: BTreeMap::new(),
            config_sets: Vec::new(),
        }));
        let accept = tokio::spawn(accept_loop(listener, state.clone(), addr.port(), None));
        FeSim {
            addr,
            state,
            accept,
            own: Mutex::new(BTreeMap::new()),
        }
    }

    /// The address of the FE at `host` itself (a pod's own address, where
    /// [`FeSim::addr`] is the access Service's): a connection there runs
    /// its statements on that FE, so `ADMIN SET FRONTEND CONFIG` sets that
    /// FE only. Listens from the first call on; must be called within a
    /// Tokio runtime.
    pub fn frontend_addr(&self, host: &str) -> SocketAddr {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((addr, _)) = own.get(host) {
            return *addr;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = TcpListener::from_std(listener).expect("within a Tokio runtime");
        let addr = listener.local_addr().expect("local addr");
        let accept = tokio::spawn(accept_loop(
            listener,
            self.state.clone(),
            addr.port(),
            Some(host.to_string()),
        ));
        own.insert(host.to_string(), (addr, accept));
        addr
    }

    /// How many connections completed a TLS handshake.
    pub fn tls_sessions(&self) -> u32 {
        self.lock().tls_sessions
    }

    /// Why TLS handshakes failed, as the server saw it.
    pub fn tls_failures(&self) -> Vec<String> {
        self.lock().tls_failures.clone()
    }

    /// Where the MySQL port listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The backends as `SHOW BACKENDS` would list them now.
    pub fn backends(&self) -> Vec<SimBackend> {
        let mut st = self.lock();
        st.advance();
        st.backends.clone()
    }

    pub fn backend(&self, host: &str, heartbeat_port: u16) -> Option<SimBackend> {
        self.backends()
            .into_iter()
            .find(|b| b.host == host && b.heartbeat_port == heartbeat_port)
    }

    pub fn frontends(&self) -> Vec<SimFrontend> {
        self.lock().frontends.clone()
    }

    /// A backend process registering itself, as a BE entrypoint does with
    /// `ALTER SYSTEM ADD BACKEND`: it is alive at once. Returns its id, or
    /// Doris's error if it is already there. In a storage-compute
    /// separated cluster it joins the default compute group.
    pub fn register_backend(&self, host: &str, heartbeat_port: u16) -> Result<i64, String> {
        let mut st = self.lock();
        st.advance();
        let tablets = st.config.new_backend_tablets;
        st.add_backend(host, heartbeat_port, true, tablets, None)
    }

    /// A backend registering itself as [`FeSim::register_backend`] does,
    /// but in no compute group even when the simulator is
    /// [`FeSimConfig::cloud`]: a shared-nothing cluster's BE, when one
    /// simulator stands for the FEs of clusters of both kinds at once.
    pub fn register_backend_outside_groups(
        &self,
        host: &str,
        heartbeat_port: u16,
    ) -> Result<i64, String> {
        let mut st = self.lock();
        st.advance();
        let tablets = st.config.new_backend_tablets;
        let id = st.add_backend(host, heartbeat_port, true, tablets, None)?;
        if let Some(be) = st.backend_mut(host, heartbeat_port) {
            be.compute_group = None;
            be.compute_group_id = None;
        }
        Ok(id)
    }

    /// A backend of a storage-compute separated cluster registering itself
    /// into `compute_group`, as the disaggregated BE entrypoint does with
    /// `ALTER SYSTEM ADD BACKEND ... PROPERTIES ("tag.compute_group_name" =
    /// ...)`: alive at once. An error when the simulator is not
    /// [`FeSimConfig::cloud`].
    pub fn register_backend_in_group(
        &self,
        host: &str,
        heartbeat_port: u16,
        compute_group: &str,
    ) -> Result<i64, String> {
        let mut st = self.lock();
        st.advance();
        let tablets = st.config.new_backend_tablets;
        st.add_backend(host, heartbeat_port, true, tablets, Some(compute_group))
    }

    /// The id of a compute group that has had a backend, as `Tag` shows it.
    pub fn compute_group_id(&self, compute_group: &str) -> Option<String> {
        self.lock().compute_groups.get(compute_group).cloned()
    }

    /// The backends of a compute group as `SHOW BACKENDS` would list them
    /// now.
    pub fn backends_in_group(&self, compute_group: &str) -> Vec<SimBackend> {
        self.backends()
            .into_iter()
            .filter(|b| b.compute_group.as_deref() == Some(compute_group))
            .collect()
    }

    /// How many backends each compute group has now; groups left with none
    /// are not listed.
    pub fn compute_group_sizes(&self) -> BTreeMap<String, usize> {
        let mut sizes = BTreeMap::new();
        for group in self.backends().into_iter().filter_map(|b| b.compute_group) {
            *sizes.entry(group).or_insert(0) += 1;
        }
        sizes
    }

    /// Registers a compute node (`NodeRole` `computation`, no tablets).
    pub fn register_compute_node(&self, host: &str, heartbeat_port: u16) -> Result<i64, String> {
        let mut st = self.lock();
        st.advance();
        let id = st.add_backend(host, heartbeat_port, true, 0, None)?;
        if let Some(be) = st.backend_mut(host, heartbeat_port) {
            be.node_role = "computation".to_string();
        }
        Ok(id)
    }

    /// Sets whether the FE hears the backend's heartbeat. False when there
    /// is no such backend.
    pub fn set_backend_alive(&self, host: &str, heartbeat_port: u16, alive: bool) -> bool {
        self.update_backend(host, heartbeat_port, |b| b.alive = alive)
    }

    /// Sets how many tablets a backend holds.
    pub fn set_tablets(&self, host: &str, heartbeat_port: u16, tablets: u64) -> bool {
        self.update_backend(host, heartbeat_port, |b| {
            b.tablet_num = tablets;
            b.drain_left = tablets as f64;
        })
    }

    fn update_backend(&self, host: &str, port: u16, f: impl FnOnce(&mut SimBackend)) -> bool {
        let mut st = self.lock();
        st.advance();
        match st.backend_mut(host, port) {
            Some(be) => {
                f(be);
                true
            }
            None => false,
        }
    }

    /// Sets whether a frontend is up; one that is up has joined the group.
    pub fn set_frontend_alive(&self, host: &str, edit_log_port: u16, alive: bool) -> bool {
        let mut st = self.lock();
        match st
            .frontends
            .iter_mut()
            .find(|f| f.host == host && f.edit_log_port == edit_log_port)
        {
            Some(fe) => {
                fe.alive = alive;
                fe.join |= alive;
                true
            }
            None => false,
        }
    }

    /// Makes the frontend listed at `host` listed at `new_host` instead:
    /// an FE with `enable_fqdn_mode = false` (Doris's default) registers
    /// and shows itself by the IP it finds at start
    /// (fe/fe-core/src/main/java/org/apache/doris/service/FrontendOptions.java,
    /// `initAddrUseIp`), known only once its pod has one. False when there
    /// is no such frontend.
    pub fn set_frontend_host(&self, host: &str, edit_log_port: u16, new_host: &str) -> bool {
        let mut st = self.lock();
        match st
            .frontends
            .iter_mut()
            .find(|f| f.host == host && f.edit_log_port == edit_log_port)
        {
            Some(fe) => {
                fe.host = new_host.to_string();
                true
            }
            None => false,
        }
    }

    /// Tablets handed off per second by decommissioned backends.
    pub fn set_drain_rate(&self, tablets_per_second: f64) {
        let mut st = self.lock();
        st.advance();
        st.config.drain_rate = tablets_per_second;
    }

    /// While down, connections are accepted and closed at once, and open
    /// ones are closed at their next command.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// While unresponsive, connections are accepted and then left without
    /// a greeting, as by an FE that hangs.
    pub fn set_unresponsive(&self, unresponsive: bool) {
        self.lock().unresponsive = unresponsive;
    }

    /// Waits this long before answering each statement.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The next `n` statements fail with this message, as Doris reports an
    /// error (`ERROR 1105 (HY000): errCode = 2, detailMessage = ...`).
    pub fn fail_next(&self, n: usize, message: &str) {
        self.lock().failures = Failures {
            left: n,
            message: message.to_string(),
        };
    }

    /// Grants `user` (one of [`FeSimConfig::users`]) a global privilege,
    /// as `GRANT ... ON *.*.*` does. False when there is no such user.
    pub fn grant(&self, user: &str, privilege: Privilege) -> bool {
        let mut st = self.lock();
        match st.config.users.iter_mut().find(|u| u.name == user) {
            Some(u) => {
                u.privileges.push(privilege);
                true
            }
            None => false,
        }
    }

    /// Every statement received so far, as sent.
    pub fn statements(&self) -> Vec<String> {
        self.lock().statements.clone()
    }

    /// Every accepted `ADMIN SET ... CONFIG`, in order.
    pub fn config_sets(&self) -> Vec<ConfigSet> {
        self.lock().config_sets.clone()
    }

    /// The value of a setting of the master FE now.
    pub fn setting(&self, key: &str) -> Option<String> {
        let mut st = self.lock();
        let master = st.master_host();
        st.settings_of(&master).get(key).map(|s| s.value.clone())
    }

    /// The value of a setting of the FE at `host` now.
    pub fn setting_on(&self, host: &str, key: &str) -> Option<String> {
        self.lock()
            .settings_of(host)
            .get(key)
            .map(|s| s.value.clone())
    }
}
