//! A Doris FE simulator that speaks the MySQL wire protocol.
//!
//! It listens on 127.0.0.1 on a free port and answers what the operator
//! asks a real FE: `SHOW FRONTENDS` and `SHOW BACKENDS` with Doris's own
//! column names, and the `ALTER SYSTEM` / `CANCEL DECOMMISSION` statements
//! that change cluster membership, with Doris's error messages. A
//! decommissioned backend drains its tablets at a set rate and is removed
//! when none are left, as Doris does.
//!
//! The protocol side is the classic text protocol only: handshake v10 with
//! `mysql_native_password`, `COM_QUERY`, `COM_PING`, `COM_INIT_DB` and
//! `COM_QUIT`, result sets ended by EOF packets, and TLS when configured
//! (`CLIENT_SSL`: the client's SSL request, then the handshake response over
//! TLS, as MySQL and a Doris FE with `enable_tls = true` do). No
//! compression, no prepared statements.
//!
//! It also keeps a small table of real FE settings with Doris's own
//! mutability: `SHOW FRONTEND CONFIG [LIKE '...']` lists them, and
//! `ADMIN SET [ALL] FRONTEND[S] CONFIG ("key" = "value")` changes a mutable
//! one (recorded, see [`FeSim::config_sets`]) and refuses the others with
//! Doris's messages.
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

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    pub user: String,
    pub password: String,
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
}

impl FeSimConfig {
    /// The FE of a storage-compute separated Doris 3 cluster.
    pub fn cloud() -> Self {
        FeSimConfig {
            cloud: Some(CloudTags::ComputeGroup),
            version: "doris-3.0.5-rc01-sim".to_string(),
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
            drain_rate: 100.0,
            new_backends_alive: true,
            new_backend_tablets: 0,
            frontends: Vec::new(),
            columns: Columns::Doris3,
            version: "doris-2.1.7-rc03-sim".to_string(),
            tls: None,
            cloud: None,
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
    /// FE settings by key.
    settings: BTreeMap<String, SimSetting>,
    /// Every accepted `ADMIN SET ... CONFIG`, in order.
    config_sets: Vec<ConfigSet>,
}

/// One FE setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSetting {
    pub value: String,
    pub type_: &'static str,
    pub mutable: bool,
    pub master_only: bool,
}

/// An accepted `ADMIN SET ... CONFIG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSet {
    /// Whether it was `ALL FRONTENDS` (else the FE asked only).
    pub all: bool,
    pub key: String,
    pub value: String,
}

/// Some real FE settings: (key, type, default, mutable, master only).
const FE_SETTINGS: &[(&str, &str, &str, bool, bool)] = &[
    ("http_port", "int", "8030", false, false),
    ("rpc_port", "int", "9020", false, false),
    ("query_port", "int", "9030", false, false),
    ("edit_log_port", "int", "9010", false, false),
    (
        "meta_dir",
        "String",
        "/opt/apache-doris/fe/doris-meta",
        false,
        false,
    ),
    ("sys_log_level", "String", "INFO", false, false),
    ("sys_log_mode", "String", "NORMAL", false, false),
    ("enable_fqdn_mode", "boolean", "false", false, false),
    ("qe_max_connection", "int", "1024", false, false),
    (
        "max_bytes_per_broker_scanner",
        "long",
        "536870912000",
        true,
        true,
    ),
    (
        "max_routine_load_task_num_per_be",
        "int",
        "1024",
        true,
        true,
    ),
    ("dynamic_partition_enable", "boolean", "true", true, true),
    ("tablet_create_timeout_second", "int", "2", true, true),
    ("max_running_txn_num_per_db", "int", "1000", true, true),
    ("qe_slow_log_ms", "long", "5000", true, false),
];

fn fe_settings() -> BTreeMap<String, SimSetting> {
    FE_SETTINGS
        .iter()
        .map(|(key, type_, value, mutable, master_only)| {
            (
                key.to_string(),
                SimSetting {
                    value: value.to_string(),
                    type_,
                    mutable: *mutable,
                    master_only: *master_only,
                },
            )
        })
        .collect()
}

impl State {
    /// Moves decommissioned backends' tablets along; removes those left
    /// with none.
    fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_advance).as_secs_f64();
        self.last_advance = now;
        let rate = self.config.drain_rate;
        for be in self.backends.iter_mut().filter(|b| b.decommissioned) {
            be.drain_left = (be.drain_left - elapsed * rate).max(0.0);
            be.tablet_num = be.drain_left.ceil() as u64;
        }
        self.backends
            .retain(|b| !(b.decommissioned && b.tablet_num == 0));
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
fn short_id(seed: &str) -> String {
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
}

impl Drop for FeSim {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FeSim {
    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start(config: FeSimConfig) -> FeSim {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
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
            settings: fe_settings(),
            config_sets: Vec::new(),
        }));
        let accept = tokio::spawn(accept_loop(listener, state.clone(), addr.port()));
        FeSim {
            addr,
            state,
            accept,
        }
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

    /// Every statement received so far, as sent.
    pub fn statements(&self) -> Vec<String> {
        self.lock().statements.clone()
    }

    /// Every accepted `ADMIN SET ... CONFIG`, in order.
    pub fn config_sets(&self) -> Vec<ConfigSet> {
        self.lock().config_sets.clone()
    }

    /// The value of an FE setting now.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.lock().settings.get(key).map(|s| s.value.clone())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, query_port: u16) {
    static CONNECTION_ID: AtomicU32 = AtomicU32::new(1);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: don't spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (down, unresponsive) = {
            let st = lock(&state);
            (st.down, st.unresponsive)
        };
        if down {
            drop(stream);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            if unresponsive {
                // Hold the socket open without a word until the client leaves.
                let mut stream = stream;
                let mut buf = [0u8; 256];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            let id = CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
            let mut conn = Connection {
                stream: Box::new(stream),
                seq: 0,
                state,
                peer,
                query_port,
            };
            let _ = conn.serve(id).await;
        });
    }
}

// Capability flags, as the MySQL protocol numbers them.
const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_SSL: u32 = 0x0000_0800;
const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
const CLIENT_CONNECT_ATTRS: u32 = 0x0010_0000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;

const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;

const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
const UTF8_GENERAL_CI: u8 = 33;
const NATIVE_PASSWORD: &str = "mysql_native_password";
/// What Doris reports as the MySQL server version.
const SERVER_VERSION: &str = "5.7.99";

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// An SQL error to send: code, SQLSTATE, message.
struct SqlError {
    code: u16,
    state: &'static str,
    message: String,
}

impl SqlError {
    /// How Doris reports a refused statement.
    fn doris(message: impl std::fmt::Display) -> Self {
        SqlError {
            code: 1105,
            state: "HY000",
            message: format!("errCode = 2, detailMessage = {message}"),
        }
    }
}

/// What a statement answers.
enum Answer {
    Ok,
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error(SqlError),
}

/// A connection's byte stream: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

struct Connection {
    stream: Box<dyn Io>,
    seq: u8,
    state: Arc<Mutex<State>>,
    peer: SocketAddr,
    query_port: u16,
}

impl Connection {
    async fn serve(&mut self, id: u32) -> std::io::Result<()> {
        let scramble = scramble();
        self.send_handshake(id, &scramble).await?;
        if !self.authenticate(&scramble).await? {
            return Ok(());
        }
        loop {
            self.seq = 0;
            let packet = self.read_packet().await?;
            if lock(&self.state).down {
                return Ok(());
            }
            let Some((&command, body)) = packet.split_first() else {
                return Ok(());
            };
            match command {
                COM_QUIT => return Ok(()),
                COM_PING | COM_INIT_DB | COM_RESET_CONNECTION => self.send_ok().await?,
                COM_QUERY => {
                    let sql = String::from_utf8_lossy(body).into_owned();
                    let answer = self.query(&sql).await;
                    // An FE that went down mid-statement sends nothing.
                    if lock(&self.state).down {
                        return Ok(());
                    }
                    self.send_answer(answer).await?;
                }
                other => {
                    self.send_error(&SqlError {
                        code: 1047,
                        state: "08S01",
                        message: format!("Unknown command {other:#04x}"),
                    })
                    .await?
                }
            }
        }
    }

    async fn query(&mut self, sql: &str) -> Answer {
        let (delay, failure) = {
            let mut st = lock(&self.state);
            st.statements.push(sql.to_string());
            let failure = if st.failures.left > 0 && !is_session_statement(sql) {
                st.failures.left -= 1;
                Some(st.failures.message.clone())
            } else {
                None
            };
            (st.delay, failure)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(message) = failure {
            return Answer::Error(SqlError::doris(message));
        }
        let mut st = lock(&self.state);
        st.advance();
        execute(&mut st, sql, self.query_port)
    }

    async fn send_handshake(&mut self, id: u32, scramble: &[u8; 20]) -> std::io::Result<()> {
        let mut p = vec![10u8];
        p.extend_from_slice(SERVER_VERSION.as_bytes());
        p.push(0);
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&scramble[..8]);
        p.push(0);
        let capabilities = if lock(&self.state).config.tls.is_some() {
            SERVER_CAPABILITIES | CLIENT_SSL
        } else {
            SERVER_CAPABILITIES
        };
        p.extend_from_slice(&(capabilities as u16).to_le_bytes());
        p.push(UTF8_GENERAL_CI);
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0u8; 10]);
        p.extend_from_slice(&scramble[8..]);
        p.push(0);
        p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
        p.push(0);
        self.write_packet(&p).await
    }

    /// Reads the handshake response and checks user and password; answers
    /// OK or access denied.
    async fn authenticate(&mut self, scramble: &[u8; 20]) -> std::io::Result<bool> {
        let mut packet = self.read_packet().await?;
        let tls = lock(&self.state).config.tls.clone();
        let asks_tls = packet.len() == 32
            && packet[..4]
                .try_into()
                .is_ok_and(|c| u32::from_le_bytes(c) & CLIENT_SSL != 0);
        match (tls, asks_tls) {
            (Some(config), true) => {
                // The SSL request; the rest of the conversation is over TLS.
                let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::duplex(1).0));
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match acceptor.accept(plain).await {
                    Ok(secured) => self.stream = Box::new(secured),
                    Err(e) => {
                        lock(&self.state).tls_failures.push(e.to_string());
                        return Ok(false);
                    }
                }
                lock(&self.state).tls_sessions += 1;
                packet = self.read_packet().await?;
            }
            (Some(_), false) => {
                self.send_error(&SqlError {
                    code: 3159,
                    state: "HY000",
                    message: "Connections using insecure transport are prohibited".to_string(),
                })
                .await?;
                return Ok(false);
            }
            (None, _) => {}
        }
        let Some(response) = HandshakeResponse::parse(&packet) else {
            self.send_error(&SqlError {
                code: 1043,
                state: "08S01",
                message: "Bad handshake".to_string(),
            })
            .await?;
            return Ok(false);
        };
        let mut auth = response.auth;
        if response
            .plugin
            .as_deref()
            .is_some_and(|p| p != NATIVE_PASSWORD)
        {
            // Ask the client to answer the scramble the native way.
            let mut p = vec![0xfe];
            p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
            p.push(0);
            p.extend_from_slice(scramble);
            p.push(0);
            self.write_packet(&p).await?;
            auth = self.read_packet().await?;
        }
        let (user, password) = {
            let st = lock(&self.state);
            (st.config.user.clone(), st.config.password.clone())
        };
        let ok = response.user == user && native_password_matches(scramble, &password, &auth);
        if ok {
            self.send_ok().await?;
        } else {
            self.send_error(&SqlError {
                code: 1045,
                state: "28000",
                message: format!(
                    "Access denied for user '{}@{}' (using password: {})",
                    response.user,
                    self.peer.ip(),
                    if auth.is_empty() { "NO" } else { "YES" }
                ),
            })
            .await?;
        }
        Ok(ok)
    }

    async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if len == 0xff_ffff {
            return Err(std::io::Error::other(
                "multi-packet payloads are not supported",
            ));
        }
        self.seq = header[3].wrapping_add(1);
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await?;
        Ok(payload)
    }

    async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32;
        let mut buf = Vec::with_capacity(payload.len() + 4);
        buf.extend_from_slice(&len.to_le_bytes()[..3]);
        buf.push(self.seq);
        buf.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&buf).await
    }

    async fn send_ok(&mut self) -> std::io::Result<()> {
        let mut p = vec![0x00];
        put_lenenc_int(&mut p, 0); // affected rows
        put_lenenc_int(&mut p, 0); // last insert id
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes()); // warnings
        self.write_packet(&p).await
    }

    async fn send_eof(&mut self) -> std::io::Result<()> {
        let mut p = vec![0xfe];
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn send_error(&mut self, e: &SqlError) -> std::io::Result<()> {
        let mut p = vec![0xff];
        p.extend_from_slice(&e.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(e.state.as_bytes());
        p.extend_from_slice(e.message.as_bytes());
        self.write_packet(&p).await
    }

    async fn send_answer(&mut self, answer: Answer) -> std::io::Result<()> {
        match answer {
            Answer::Ok => self.send_ok().await,
            Answer::Error(e) => self.send_error(&e).await,
            Answer::Rows { columns, rows } => {
                let mut p = Vec::new();
                put_lenenc_int(&mut p, columns.len() as u64);
                self.write_packet(&p).await?;
                for name in &columns {
                    self.write_packet(&column_definition(name)).await?;
                }
                self.send_eof().await?;
                for row in &rows {
                    let mut p = Vec::new();
                    for value in row {
                        match value {
                            Some(v) => put_lenenc_str(&mut p, v.as_bytes()),
                            None => p.push(0xfb),
                        }
                    }
                    self.write_packet(&p).await?;
                }
                self.send_eof().await
            }
        }
    }
}

/// A VARCHAR column, as Doris describes every `SHOW` column.
fn column_definition(name: &str) -> Vec<u8> {
    const MYSQL_TYPE_VAR_STRING: u8 = 0xfd;
    let mut p = Vec::new();
    put_lenenc_str(&mut p, b"def");
    put_lenenc_str(&mut p, b""); // schema
    put_lenenc_str(&mut p, b""); // table
    put_lenenc_str(&mut p, b""); // original table
    put_lenenc_str(&mut p, name.as_bytes());
    put_lenenc_str(&mut p, name.as_bytes());
    p.push(0x0c);
    p.extend_from_slice(&(UTF8_GENERAL_CI as u16).to_le_bytes());
    p.extend_from_slice(&1024u32.to_le_bytes());
    p.push(MYSQL_TYPE_VAR_STRING);
    p.extend_from_slice(&0u16.to_le_bytes()); // flags
    p.push(0); // decimals
    p.extend_from_slice(&[0, 0]);
    p
}

fn put_lenenc_int(p: &mut Vec<u8>, n: u64) {
    if n < 251 {
        p.push(n as u8);
    } else if n < 1 << 16 {
        p.push(0xfc);
        p.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 24 {
        p.push(0xfd);
        p.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    } else {
        p.push(0xfe);
        p.extend_from_slice(&n.to_le_bytes());
    }
}

fn put_lenenc_str(p: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(p, s.len() as u64);
    p.extend_from_slice(s);
}

/// A client's `HandshakeResponse41`, the parts the simulator needs.
struct HandshakeResponse {
    user: String,
    auth: Vec<u8>,
    plugin: Option<String>,
}

impl HandshakeResponse {
    fn parse(p: &[u8]) -> Option<Self> {
        let mut r = Reader { buf: p, pos: 0 };
        let caps = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return None;
        }
        r.take(4 + 1 + 23)?; // max packet size, character set, filler
        let user = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
        let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            let n = r.lenenc_int()? as usize;
            r.take(n)?.to_vec()
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = r.take(1)?[0] as usize;
            r.take(n)?.to_vec()
        } else {
            r.nul_terminated()?.to_vec()
        };
        if caps & CLIENT_CONNECT_WITH_DB != 0 && !r.at_end() {
            r.nul_terminated()?;
        }
        let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && !r.at_end() {
            Some(String::from_utf8_lossy(r.nul_terminated()?).into_owned())
        } else {
            None
        };
        Some(HandshakeResponse { user, auth, plugin })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn nul_terminated(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                Some(&rest[..end])
            }
            None => {
                // The last string may run to the end of the packet.
                self.pos = self.buf.len();
                Some(rest)
            }
        }
    }

    fn lenenc_int(&mut self) -> Option<u64> {
        let first = self.take(1)?[0];
        let bytes = match first {
            0..=250 => return Some(first as u64),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return None,
        };
        let mut n = [0u8; 8];
        n[..bytes].copy_from_slice(self.take(bytes)?);
        Some(u64::from_le_bytes(n))
    }
}

/// Twenty printable, non-NUL bytes for the challenge.
fn scramble() -> [u8; 20] {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let state = RandomState::new();
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        let h = state.hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), i));
        *b = 0x21 + (h % 94) as u8;
    }
    out
}

/// Checks a `mysql_native_password` answer:
/// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
fn native_password_matches(scramble: &[u8; 20], password: &str, auth: &[u8]) -> bool {
    if password.is_empty() {
        return auth.is_empty();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    let expected: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
    auth == expected.as_slice()
}

/// Statements a client sends to set up its session rather than to ask the
/// FE anything; injected failures pass them by.
fn is_session_statement(sql: &str) -> bool {
    let upper = sql.trim_start().to_ascii_uppercase();
    upper.starts_with("SET ")
        || upper.starts_with("SELECT @@")
        || upper.starts_with("SHOW VARIABLES")
        || upper == "SELECT 1"
}

// ---- SQL ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A keyword, identifier, number or `@@variable`.
    Word(String),
    /// A quoted string, quotes removed.
    Str(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' || c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string starting with {c}")),
                    Some('\\') if c != '`' => match chars.next() {
                        Some(e) => s.push(e),
                        None => return Err("unterminated string".to_string()),
                    },
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            s.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(other) => s.push(other),
                }
            }
            toks.push(Tok::Str(s));
        } else if c.is_alphanumeric() || "_@.$-".contains(c) {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || "_@.$-".contains(c) {
                    w.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push(Tok::Word(w));
        } else if "(),=;*/".contains(c) {
            toks.push(Tok::Punct(c));
            chars.next();
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    while toks.last() == Some(&Tok::Punct(';')) {
        toks.pop();
    }
    Ok(toks)
}

/// Upper-cased leading words, for matching the statement's kind.
fn keywords(toks: &[Tok]) -> Vec<String> {
    toks.iter()
        .map_while(|t| match t {
            Tok::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// A backend or frontend named in a statement.
#[derive(Debug, PartialEq)]
enum Target {
    HostPort(String, u16),
    Id(i64),
}

impl Target {
    fn parse(s: &str) -> Result<Target, String> {
        if let Ok(id) = s.trim().parse::<i64>() {
            return Ok(Target::Id(id));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("Invalid host port format: {s}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("Invalid host port format: {s}"))?;
        if host.is_empty() {
            return Err(format!("Invalid host port format: {s}"));
        }
        Ok(Target::HostPort(host.to_string(), port))
    }

    fn show(&self) -> String {
        match self {
            Target::HostPort(h, p) => host_port(h, *p),
            Target::Id(id) => id.to_string(),
        }
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `"a", "b", ...` and the tokens after it.
fn string_list(toks: &[Tok]) -> Result<(Vec<String>, &[Tok]), String> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match toks.get(i) {
            Some(Tok::Str(s)) => out.push(s.clone()),
            _ => return Err("expected a quoted \"host:port\"".to_string()),
        }
        i += 1;
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        } else {
            return Ok((out, &toks[i..]));
        }
    }
}

fn targets(toks: &[Tok]) -> Result<(Vec<Target>, &[Tok]), String> {
    let (list, rest) = string_list(toks)?;
    let targets = list
        .iter()
        .map(|s| Target::parse(s))
        .collect::<Result<_, _>>()?;
    Ok((targets, rest))
}

/// `("k" = "v", ...)`.
fn properties(toks: &[Tok]) -> Result<BTreeMap<String, String>, String> {
    let mut props = BTreeMap::new();
    let mut it = toks.iter();
    if it.next() != Some(&Tok::Punct('(')) {
        return Err("expected (".to_string());
    }
    loop {
        let key = match it.next() {
            Some(Tok::Str(k)) => k.clone(),
            _ => return Err("expected a quoted property name".to_string()),
        };
        if it.next() != Some(&Tok::Punct('=')) {
            return Err("expected =".to_string());
        }
        let value = match it.next() {
            Some(Tok::Str(v)) => v.clone(),
            _ => return Err("expected a quoted property value".to_string()),
        };
        props.insert(key.to_ascii_lowercase(), value);
        match it.next() {
            Some(Tok::Punct(',')) => continue,
            Some(Tok::Punct(')')) => break,
            _ => return Err("expected , or )".to_string()),
        }
    }
    if it.next().is_some() {
        return Err("unexpected words after )".to_string());
    }
    Ok(props)
}

fn syntax_error(sql: &str, why: &str) -> Answer {
    Answer::Error(SqlError::doris(format!(
        "Syntax error in line 1: {why}: {}",
        sql.trim()
    )))
}

fn execute(st: &mut State, sql: &str, query_port: u16) -> Answer {
    let toks = match tokenize(sql) {
        Ok(t) => t,
        Err(why) => return syntax_error(sql, &why),
    };
    let kw = keywords(&toks);
    let kw: Vec<&str> = kw.iter().map(String::as_str).collect();
    let result = match kw.as_slice() {
        [] => return syntax_error(sql, "empty statement"),
        ["SET", ..] | ["USE", ..] => Ok(Answer::Ok),
        ["SELECT", ..] => Ok(select(&toks[1..], st)),
        ["SHOW", "FRONTENDS"] => Ok(show_frontends(st, query_port)),
        ["SHOW", "BACKENDS"] => Ok(show_backends(st)),
        ["SHOW", "PROC"] => match toks.get(2) {
            Some(Tok::Str(p)) if p.trim_end_matches('/') == "/frontends" => {
                Ok(show_frontends(st, query_port))
            }
            Some(Tok::Str(p)) if p.trim_end_matches('/') == "/backends" => Ok(show_backends(st)),
            _ => Err(format!("Proc path is not supported here: {sql}")),
        },
        ["ALTER", "SYSTEM", "ADD", "BACKEND", ..] => add_backends(st, &toks[4..], sql),
        ["ALTER", "SYSTEM", "DROP", "BACKEND", ..] => Err(
            "It is highly NOT RECOMMENDED to use DROP BACKEND stmt.It is not safe to directly drop a backend. All data on this backend will be discarded permanently. If you insist, use DROPP instead of DROP"
                .to_string(),
        ),
        ["ALTER", "SYSTEM", "DROPP", "BACKEND", ..] => {
            with_targets(&toks[4..], sql, |t| drop_backends(st, t))
        }
        ["ALTER", "SYSTEM", "DECOMMISSION", "BACKEND", ..] => {
            with_targets(&toks[4..], sql, |t| decommission(st, t))
        }
        ["CANCEL", "DECOMMISSION", "BACKEND", ..] => {
            with_targets(&toks[3..], sql, |t| cancel_decommission(st, t))
        }
        ["ALTER", "SYSTEM", "MODIFY", "BACKEND", ..] => modify_backends(st, &toks[4..], sql),
        ["SHOW", "FRONTEND", "CONFIG", ..] => show_frontend_config(st, &toks[3..], sql),
        ["ADMIN", "SET", "FRONTEND", "CONFIG", ..] => set_config(st, &toks[4..], sql, false),
        ["ADMIN", "SET", "ALL", "FRONTENDS", "CONFIG", ..] => {
            set_config(st, &toks[5..], sql, true)
        }
        ["ALTER", "SYSTEM", verb @ ("ADD" | "DROP"), role @ ("FOLLOWER" | "OBSERVER"), ..] => {
            let add = *verb == "ADD";
            let role = role.to_string();
            with_targets(&toks[4..], sql, |t| frontend_change(st, t, &role, add))
        }
        _ => return syntax_error(sql, "statement not supported by the simulator"),
    };
    match result {
        Ok(answer) => answer,
        Err(message) => Answer::Error(SqlError::doris(message)),
    }
}

/// Parses the `"host:port", ...` list that must end the statement and
/// applies `f` to it.
fn with_targets(
    toks: &[Tok],
    sql: &str,
    f: impl FnOnce(&[Target]) -> Result<(), String>,
) -> Result<Answer, String> {
    match targets(toks) {
        Ok((targets, [])) => f(&targets).map(|()| Answer::Ok),
        Ok(_) => Ok(syntax_error(sql, "unexpected words after the node list")),
        Err(why) => Ok(syntax_error(sql, &why)),
    }
}

fn find_backend(st: &State, target: &Target) -> Option<usize> {
    st.backends.iter().position(|b| match target {
        Target::HostPort(h, p) => &b.host == h && b.heartbeat_port == *p,
        Target::Id(id) => b.id == *id,
    })
}

fn existing_backends(st: &State, targets: &[Target]) -> Result<Vec<usize>, String> {
    targets
        .iter()
        .map(|t| {
            find_backend(st, t).ok_or_else(|| match t {
                Target::Id(id) => format!("Backend does not exist, backend id is {id}"),
                _ => format!("Backend does not exist[{}]", t.show()),
            })
        })
        .collect()
}

/// `"host:port", ... [PROPERTIES ("tag.compute_group_name" = "cg1", ...)]`.
fn add_backends(st: &mut State, toks: &[Tok], sql: &str) -> Result<Answer, String> {
    let (targets, rest) = match targets(toks) {
        Ok(t) => t,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    let props = match rest {
        [] => BTreeMap::new(),
        [Tok::Word(w), rest @ ..] if w.eq_ignore_ascii_case("PROPERTIES") => {
            match properties(rest) {
                Ok(p) => p,
                Err(why) => return Ok(syntax_error(sql, &why)),
            }
        }
        _ => return Ok(syntax_error(sql, "unexpected words after the node list")),
    };
    let unknown: Vec<&String> = props
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "tag.location" | "tag.compute_group_name" | "tag.cloud_cluster_name"
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!("Unknown properties: {unknown:?}"));
    }
    // Doris 3.0.0 and 3.0.1 named the group with `tag.cloud_cluster_name`.
    let group = props
        .get("tag.compute_group_name")
        .or_else(|| props.get("tag.cloud_cluster_name"));
    if group.is_some_and(|g| g.is_empty()) {
        return Err("compute group name is empty".to_string());
    }
    st.compute_group_for(group.map(String::as_str))?;
    add_backend_targets(st, &targets, group.map(String::as_str)).map(|()| Answer::Ok)
}

fn add_backend_targets(
    st: &mut State,
    targets: &[Target],
    compute_group: Option<&str>,
) -> Result<(), String> {
    let mut hosts = Vec::new();
    for t in targets {
        match t {
            Target::HostPort(h, p) => {
                if find_backend(st, t).is_some() {
                    return Err(format!("Same backend already exists[{}]", host_port(h, *p)));
                }
                hosts.push((h.clone(), *p));
            }
            Target::Id(_) => return Err(format!("Invalid host port format: {}", t.show())),
        }
    }
    let (alive, tablets) = (st.config.new_backends_alive, st.config.new_backend_tablets);
    for (h, p) in hosts {
        st.add_backend(&h, p, alive, tablets, compute_group)?;
    }
    Ok(())
}

fn drop_backends(st: &mut State, targets: &[Target]) -> Result<(), String> {
    for t in targets {
        if find_backend(st, t).is_none() {
            return Err(format!("backend does not exists[{}]", t.show()));
        }
    }
    for t in targets {
        if let Some(i) = find_backend(st, t) {
            st.backends.remove(i);
        }
    }
    Ok(())
}

fn decommission(st: &mut State, targets: &[Target]) -> Result<(), String> {
    for i in existing_backends(st, targets)? {
        let be = &mut st.backends[i];
        if !be.decommissioned {
            be.decommissioned = true;
            be.drain_left = be.tablet_num as f64;
        }
    }
    // One with nothing to hand off goes at once.
    st.advance();
    Ok(())
}

fn cancel_decommission(st: &mut State, targets: &[Target]) -> Result<(), String> {
    for i in existing_backends(st, targets)? {
        st.backends[i].decommissioned = false;
    }
    Ok(())
}

fn modify_backends(st: &mut State, toks: &[Tok], sql: &str) -> Result<Answer, String> {
    let (targets, rest) = match targets(toks) {
        Ok(t) => t,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    if !matches!(rest.first(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("SET")) {
        return Ok(syntax_error(sql, "expected SET"));
    }
    let props = match properties(&rest[1..]) {
        Ok(p) => p,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match props.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if v == "true" => Ok(Some(true)),
            Some(v) if v == "false" => Ok(Some(false)),
            Some(v) => Err(format!("Invalid {key} value: {v}")),
        }
    };
    let disable_query = flag("disable_query")?;
    let disable_load = flag("disable_load")?;
    let unknown: Vec<&String> = props
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "disable_query" | "disable_load" | "tag.location"
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!("Unknown properties: {unknown:?}"));
    }
    for i in existing_backends(st, &targets)? {
        let be = &mut st.backends[i];
        if let Some(q) = disable_query {
            be.query_disabled = q;
        }
        if let Some(l) = disable_load {
            be.load_disabled = l;
        }
    }
    Ok(Answer::Ok)
}

fn frontend_change(
    st: &mut State,
    targets: &[Target],
    role: &str,
    add: bool,
) -> Result<(), String> {
    for t in targets {
        let Target::HostPort(host, port) = t else {
            return Err(format!("Invalid host port format: {}", t.show()));
        };
        let found = st
            .frontends
            .iter()
            .position(|f| &f.host == host && f.edit_log_port == *port);
        match (add, found) {
            (true, Some(_)) => {
                return Err(format!(
                    "frontend already exists[{}]",
                    host_port(host, *port)
                ));
            }
            (true, None) => st.frontends.push(SimFrontend::new(host, *port, role)),
            (false, None) => {
                return Err(format!(
                    "frontend does not exist[{}]",
                    host_port(host, *port)
                ));
            }
            (false, Some(i)) => {
                let fe = &st.frontends[i];
                if fe.role != role {
                    return Err(format!("{role} does not exist[{}]", host_port(host, *port)));
                }
                if fe.is_master {
                    return Err("can not drop current master node.".to_string());
                }
                st.frontends.remove(i);
            }
        }
    }
    Ok(())
}

/// `SELECT @@var, ...` and `SELECT 1`: what a client may ask on connect.
fn select(toks: &[Tok], st: &State) -> Answer {
    let mut columns = Vec::new();
    let mut row = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (name, value) = match &toks[i] {
            Tok::Word(w) if w.starts_with("@@") => (w.clone(), variable(w, st)),
            Tok::Word(w) if w.parse::<i64>().is_ok() => (w.clone(), Some(w.clone())),
            Tok::Str(s) => (s.clone(), Some(s.clone())),
            _ => break,
        };
        i += 1;
        let mut column = name;
        if matches!(toks.get(i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("AS")) {
            if let Some(Tok::Word(alias) | Tok::Str(alias)) = toks.get(i + 1) {
                column = alias.clone();
            }
            i += 2;
        }
        // `LIMIT n` changes nothing for a one-row answer.
        if matches!(toks.get(i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIMIT")) {
            i += 2;
        }
        columns.push(column);
        row.push(value);
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        }
    }
    if columns.is_empty() || i < toks.len() {
        return Answer::Error(SqlError::doris(
            "SELECT of tables is not supported by the simulator",
        ));
    }
    Answer::Rows {
        columns,
        rows: vec![row],
    }
}

fn variable(name: &str, st: &State) -> Option<String> {
    let lower = name.trim_start_matches('@').to_ascii_lowercase();
    let bare = lower
        .strip_prefix("session.")
        .or_else(|| lower.strip_prefix("global."))
        .unwrap_or(&lower);
    let v = match bare {
        "max_allowed_packet" => "16777216".to_string(),
        "wait_timeout" => "28800".to_string(),
        "version_comment" => format!("Doris version {}", st.config.version),
        "version" => SERVER_VERSION.to_string(),
        "autocommit" => "1".to_string(),
        "character_set_client" | "character_set_connection" | "character_set_results" => {
            "utf8mb4".to_string()
        }
        "collation_connection" => "utf8mb4_0900_bin".to_string(),
        "time_zone" | "system_time_zone" => "Asia/Shanghai".to_string(),
        "tx_isolation" | "transaction_isolation" => "REPEATABLE-READ".to_string(),
        "sql_mode" => String::new(),
        _ => return None,
    };
    Some(v)
}

/// `SHOW FRONTEND CONFIG [LIKE 'pattern']`.
fn show_frontend_config(st: &State, toks: &[Tok], sql: &str) -> Result<Answer, String> {
    let pattern = match toks {
        [] => None,
        [Tok::Word(like), Tok::Str(p)] if like.eq_ignore_ascii_case("LIKE") => Some(p.as_str()),
        _ => return Ok(syntax_error(sql, "expected LIKE 'pattern'")),
    };
    let columns = ["Key", "Value", "Type", "IsMutable", "MasterOnly", "Comment"];
    let rows = st
        .settings
        .iter()
        .filter(|(key, _)| pattern.is_none_or(|p| like(p, key)))
        .map(|(key, s)| {
            vec![
                Some(key.clone()),
                Some(s.value.clone()),
                Some(s.type_.to_string()),
                Some(s.mutable.to_string()),
                Some(s.master_only.to_string()),
                Some(String::new()),
            ]
        })
        .collect();
    Ok(Answer::Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    })
}

/// SQL `LIKE`, case-insensitive: `%` any run, `_` any one character.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t.split_first().is_some_and(|(d, more)| {
                (*c == '_' || c.eq_ignore_ascii_case(d)) && go(rest, more)
            }),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// `ADMIN SET [ALL] FRONTEND[S] CONFIG ("key" = "value")`.
fn set_config(st: &mut State, toks: &[Tok], sql: &str, all: bool) -> Result<Answer, String> {
    let props = match properties(toks) {
        Ok(p) => p,
        Err(why) => return Ok(syntax_error(sql, &why)),
    };
    if props.len() != 1 {
        return Err("config parameter size is not equal to 1".to_string());
    }
    let (key, value) = props.into_iter().next().expect("one property");
    let Some(setting) = st.settings.get_mut(&key) else {
        return Err(format!("Config '{key}' does not exist"));
    };
    if !setting.mutable {
        return Err(format!("Config '{key}' is not mutable"));
    }
    setting.value = value.clone();
    st.config_sets.push(ConfigSet { all, key, value });
    Ok(Answer::Ok)
}

const SIM_TIME: &str = "2025-01-01 00:00:00";

fn show_frontends(st: &State, query_port: u16) -> Answer {
    let doris12 = st.config.columns == Columns::Doris12;
    let columns: Vec<&str> = if doris12 {
        vec![
            "Name",
            "IP",
            "HostName",
            "EditLogPort",
            "HttpPort",
            "QueryPort",
            "RpcPort",
            "Role",
            "IsMaster",
            "ClusterId",
            "Join",
            "Alive",
            "ReplayedJournalId",
            "LastHeartbeat",
            "IsHelper",
            "ErrMsg",
            "Version",
            "CurrentConnected",
        ]
    } else {
        vec![
            "Name",
            "Host",
            "EditLogPort",
            "HttpPort",
            "QueryPort",
            "RpcPort",
            "ArrowFlightSqlPort",
            "Role",
            "IsMaster",
            "ClusterId",
            "Join",
            "Alive",
            "ReplayedJournalId",
            "LastStartTime",
            "LastHeartbeat",
            "IsHelper",
            "ErrMsg",
            "Version",
            "CurrentConnected",
        ]
    };
    let rows = st
        .frontends
        .iter()
        .map(|fe| {
            let up = fe.alive;
            let values: Vec<(&str, String)> = vec![
                ("Name", fe.name.clone()),
                ("Host", fe.host.clone()),
                ("IP", fe.host.clone()),
                ("HostName", fe.host.clone()),
                ("EditLogPort", fe.edit_log_port.to_string()),
                ("HttpPort", "8030".to_string()),
                (
                    "QueryPort",
                    if fe.is_master {
                        query_port.to_string()
                    } else if up {
                        "9030".to_string()
                    } else {
                        "0".to_string()
                    },
                ),
                ("RpcPort", if up { "9020" } else { "0" }.to_string()),
                ("ArrowFlightSqlPort", "-1".to_string()),
                ("Role", fe.role.clone()),
                ("IsMaster", fe.is_master.to_string()),
                ("ClusterId", "1517213422".to_string()),
                ("Join", fe.join.to_string()),
                ("Alive", up.to_string()),
                (
                    "ReplayedJournalId",
                    if up { "2051" } else { "0" }.to_string(),
                ),
                (
                    "LastStartTime",
                    if up { SIM_TIME } else { "NULL" }.to_string(),
                ),
                (
                    "LastHeartbeat",
                    if up { SIM_TIME } else { "NULL" }.to_string(),
                ),
                ("IsHelper", fe.is_master.to_string()),
                ("ErrMsg", if up { "" } else { "got exception" }.to_string()),
                (
                    "Version",
                    if up {
                        st.config.version.clone()
                    } else {
                        String::new()
                    },
                ),
                (
                    "CurrentConnected",
                    if fe.is_master { "Yes" } else { "No" }.to_string(),
                ),
            ];
            pick(&columns, &values)
        })
        .collect();
    Answer::Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

fn show_backends(st: &State) -> Answer {
    let doris12 = st.config.columns == Columns::Doris12;
    let columns: Vec<&str> = if doris12 {
        vec![
            "BackendId",
            "Cluster",
            "IP",
            "HostName",
            "HeartbeatPort",
            "BePort",
            "HttpPort",
            "BrpcPort",
            "LastStartTime",
            "LastHeartbeat",
            "Alive",
            "SystemDecommissioned",
            "ClusterDecommissioned",
            "TabletNum",
            "DataUsedCapacity",
            "AvailCapacity",
            "TotalCapacity",
            "UsedPct",
            "MaxDiskUsedPct",
            "RemoteUsedCapacity",
            "Tag",
            "ErrMsg",
            "Version",
            "Status",
        ]
    } else {
        vec![
            "BackendId",
            "Host",
            "HeartbeatPort",
            "BePort",
            "HttpPort",
            "BrpcPort",
            "ArrowFlightSqlPort",
            "LastStartTime",
            "LastHeartbeat",
            "Alive",
            "SystemDecommissioned",
            "TabletNum",
            "DataUsedCapacity",
            "TrashUsedCapacity",
            "AvailCapacity",
            "TotalCapacity",
            "UsedPct",
            "MaxDiskUsedPct",
            "RemoteUsedCapacity",
            "Tag",
            "ErrMsg",
            "Version",
            "Status",
            "HeartbeatFailureCounter",
            "NodeRole",
            "CpuCores",
            "Memory",
        ]
    };
    let mut backends: Vec<&SimBackend> = st.backends.iter().collect();
    // Doris sorts by host.
    backends.sort_by(|a, b| (&a.host, a.heartbeat_port).cmp(&(&b.host, b.heartbeat_port)));
    let rows = backends
        .into_iter()
        .map(|be| {
            let up = be.alive;
            let status = if st.config.cloud.is_some() {
                format!(
                    "{{\"lastStreamLoadTime\":-1,\"isQueryDisabled\":{},\"isLoadDisabled\":{},\"isActive\":{},\"currentFragmentNum\":0,\"lastFragmentUpdateTime\":0}}",
                    be.query_disabled, be.load_disabled, up
                )
            } else {
                format!(
                    "{{\"lastSuccessReportTabletsTime\":\"{}\",\"lastStreamLoadTime\":-1,\"isQueryDisabled\":{},\"isLoadDisabled\":{}}}",
                    if up { SIM_TIME } else { "N/A" },
                    be.query_disabled,
                    be.load_disabled
                )
            };
            let values: Vec<(&str, String)> = vec![
                ("BackendId", be.id.to_string()),
                ("Cluster", "default_cluster".to_string()),
                ("Host", be.host.clone()),
                ("IP", be.host.clone()),
                ("HostName", be.host.clone()),
                ("HeartbeatPort", be.heartbeat_port.to_string()),
                ("BePort", if up { "9060" } else { "-1" }.to_string()),
                ("HttpPort", if up { "8040" } else { "-1" }.to_string()),
                ("BrpcPort", if up { "8060" } else { "-1" }.to_string()),
                ("ArrowFlightSqlPort", "-1".to_string()),
                ("LastStartTime", if up { SIM_TIME } else { "NULL" }.to_string()),
                ("LastHeartbeat", if up { SIM_TIME } else { "NULL" }.to_string()),
                ("Alive", up.to_string()),
                ("SystemDecommissioned", be.decommissioned.to_string()),
                ("ClusterDecommissioned", "false".to_string()),
                ("TabletNum", be.tablet_num.to_string()),
                ("DataUsedCapacity", "0.000 ".to_string()),
                ("TrashUsedCapacity", "0.000 ".to_string()),
                ("AvailCapacity", "1.000 TB".to_string()),
                ("TotalCapacity", "1.000 TB".to_string()),
                ("UsedPct", "0.00 %".to_string()),
                ("MaxDiskUsedPct", "0.00 %".to_string()),
                ("RemoteUsedCapacity", "0.000 ".to_string()),
                ("Tag", backend_tag(st.config.cloud, be)),
                (
                    "ErrMsg",
                    if up { "" } else { "java.net.ConnectException: Connection refused" }.to_string(),
                ),
                ("Version", if up { st.config.version.clone() } else { String::new() }),
                ("Status", status),
                ("HeartbeatFailureCounter", if up { "0" } else { "3" }.to_string()),
                // Doris shows the role of live backends only.
                ("NodeRole", if up { be.node_role.clone() } else { String::new() }),
                ("CpuCores", "16".to_string()),
                ("Memory", "64.00 GB".to_string()),
            ];
            pick(&columns, &values)
        })
        .collect();
    Answer::Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

/// A backend's `Tag` JSON, spaced and ordered as Doris prints it.
fn backend_tag(cloud: Option<CloudTags>, be: &SimBackend) -> String {
    let (Some(naming), Some(group), Some(group_id)) =
        (cloud, &be.compute_group, &be.compute_group_id)
    else {
        return "{\"location\" : \"default\"}".to_string();
    };
    let unique_id = format!(
        "1:{SIM_INSTANCE_ID}:{}",
        short_id(&host_port(&be.host, be.heartbeat_port))
    );
    let pairs: Vec<(&str, &str)> = match naming {
        CloudTags::ComputeGroup => vec![
            ("cloud_unique_id", &unique_id),
            ("compute_group_status", "NORMAL"),
            ("private_endpoint", ""),
            ("compute_group_name", group),
            ("location", "default"),
            ("public_endpoint", ""),
            ("compute_group_id", group_id),
        ],
        CloudTags::CloudCluster => vec![
            ("cloud_cluster_id", group_id),
            ("cloud_unique_id", &unique_id),
            ("cloud_cluster_status", "NORMAL"),
            ("cloud_cluster_name", group),
            ("location", "default"),
            ("cloud_cluster_private_endpoint", ""),
            ("cloud_cluster_public_endpoint", ""),
        ],
    };
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("\"{k}\" : {}", serde_json::Value::from(*v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// The instance id a storage-compute separated simulator reports in each
/// backend's `cloud_unique_id`.
const SIM_INSTANCE_ID: &str = "1751150972";

/// The values of `columns`, in order; a NULL for one not in `values`.
fn pick(columns: &[&str], values: &[(&str, String)]) -> Vec<Option<String>> {
    columns
        .iter()
        .map(|c| values.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()))
        .collect()
}
