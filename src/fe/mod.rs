//! Talking to the Doris FE over the MySQL protocol.
//!
//! [`FeClient`] reads cluster membership (`SHOW FRONTENDS`, `SHOW BACKENDS`)
//! into typed rows and changes it with `ALTER SYSTEM` statements: the
//! foundation for scaling backends down safely (decommission, wait for the
//! tablets to drain) and for restarting nodes gracefully (stop sending
//! queries and loads to a backend first).
//!
//! Each call opens its own connection, bounded by a connect timeout, runs
//! one statement bounded by a query timeout, and closes the connection. A
//! failure to connect is retried a few times; a statement that reached the
//! FE is retried only when it is a read. Every error names the FE, the
//! statement and the cause, and never carries the password.
//!
//! An FE whose `fe.conf` enables TLS is reached over TLS ([`FeTls`]): its
//! certificate must be signed by the given CA, and the client presents its
//! own certificate, as Doris's mutual TLS asks.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

/// The FE's MySQL query port when none is given.
pub const DEFAULT_QUERY_PORT: u16 = 9030;

/// Where the FE's MySQL port is and whom to log in as.
#[derive(Clone, PartialEq, Eq)]
pub struct FeEndpoint {
    pub host: String,
    /// The FE's query port (`query_port` in fe.conf).
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Connect over TLS with these; plain MySQL when `None`.
    pub tls: Option<FeTls>,
}

/// What a TLS connection to an FE needs, all PEM: the CA that signed the
/// FE's certificate, and the client's certificate and private key.
#[derive(Clone, PartialEq, Eq)]
pub struct FeTls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Which of the three PEM inputs of [`FeTls::new`] is unusable, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{which}: {why}")]
pub struct PemError {
    /// `ca`, `cert` or `key`.
    pub which: &'static str,
    pub why: String,
}

impl FeTls {
    /// Checks that `ca` and `cert` hold at least one PEM certificate each
    /// and `key` a PEM private key, so that a bad input is told apart from
    /// a failed handshake.
    pub fn new(ca: Vec<u8>, cert: Vec<u8>, key: Vec<u8>) -> Result<FeTls, PemError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        for (which, pem) in [("ca", &ca), ("cert", &cert)] {
            let mut found = 0;
            for item in CertificateDer::pem_slice_iter(pem) {
                item.map_err(|e| PemError {
                    which,
                    why: format!("not a PEM certificate: {e}"),
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(PemError {
                    which,
                    why: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                });
            }
        }
        PrivateKeyDer::from_pem_slice(&key).map_err(|e| PemError {
            which: "key",
            why: format!("holds no usable PEM private key: {e}"),
        })?;
        Ok(FeTls { ca, cert, key })
    }

    fn ssl_opts(&self) -> mysql_async::SslOpts {
        mysql_async::SslOpts::default()
            // Only the cluster's CA vouches for its FEs.
            .with_disable_built_in_roots(true)
            .with_root_certs(vec![self.ca.clone().into()])
            .with_client_identity(Some(mysql_async::ClientIdentity::new(
                self.cert.clone().into(),
                self.key.clone().into(),
            )))
    }
}

impl fmt::Debug for FeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeTls")
            .field("ca", &format_args!("<{} bytes>", self.ca.len()))
            .field("cert", &format_args!("<{} bytes>", self.cert.len()))
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

impl FeEndpoint {
    /// `root` with an empty password on the default query port, as a new
    /// Doris cluster has.
    pub fn new(host: impl Into<String>) -> Self {
        FeEndpoint {
            host: host.into(),
            port: DEFAULT_QUERY_PORT,
            user: "root".to_string(),
            password: String::new(),
            tls: None,
        }
    }

    /// Connects over TLS with `tls`.
    pub fn with_tls(mut self, tls: FeTls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// `host:port`, with an IPv6 address in brackets.
    pub fn addr(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Debug for FeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("FeEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &format_args!("{password}"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Timeouts and retries of an [`FeClient`].
///
/// A failure to connect is tried again up to `retries` times; so is a read
/// whose connection broke. A write that reached the FE, a timed-out
/// answer, a refused login and an SQL error are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeClientConfig {
    /// Bound on opening a connection and logging in, per attempt.
    pub connect_timeout: Duration,
    /// Bound on one statement's answer.
    pub query_timeout: Duration,
    /// How many more times a transient failure is tried again.
    pub retries: u32,
    /// Pause before the first retry; doubled before each next one.
    pub retry_backoff: Duration,
}

impl Default for FeClientConfig {
    fn default() -> Self {
        FeClientConfig {
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// A failed call: which FE, which statement, and why.
#[derive(Debug, thiserror::Error)]
#[error("FE {addr}: `{statement}` failed after {attempts} attempt(s): {kind}")]
pub struct FeError {
    /// The FE's `host:port`.
    pub addr: String,
    /// The statement that failed; it never holds the password.
    pub statement: String,
    /// How many times the call was tried.
    pub attempts: u32,
    pub kind: FeErrorKind,
}

impl FeError {
    /// The failure without details that vary from one try to the next (OS
    /// error texts, server messages): for status, which is rewritten only
    /// when it changes.
    pub fn brief(&self) -> String {
        let why = match &self.kind {
            FeErrorKind::InvalidArgument(m) => format!("invalid argument: {m}"),
            FeErrorKind::ConnectTimeout(d) => format!("no connection within {d:?}"),
            FeErrorKind::Connect(_) => "cannot connect".to_string(),
            FeErrorKind::Tls(m) => format!("TLS: {m}"),
            FeErrorKind::AccessDenied { user, .. } => format!("access denied for user `{user}`"),
            FeErrorKind::QueryTimeout(d) => format!("no answer within {d:?}"),
            FeErrorKind::Server { code, .. } => {
                format!("`{}` failed with ERROR {code}", self.statement)
            }
            FeErrorKind::ConnectionLost(_) => "connection lost".to_string(),
            FeErrorKind::Parse(_) => format!("unexpected answer to `{}`", self.statement),
        };
        format!("FE {}: {why}", self.addr)
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeErrorKind {
    /// The call was refused before anything was sent, e.g. a host with a
    /// quote in it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No connection within the connect timeout.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The connection could not be opened (refused, reset, closed).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed: a certificate not signed by the CA, a
    /// name it does not cover, a client certificate the FE refused, or an
    /// FE that does not speak TLS.
    #[error("TLS: {0}")]
    Tls(String),
    /// The FE refused the user name or password.
    #[error("access denied for user `{user}`: {message}")]
    AccessDenied { user: String, message: String },
    /// No answer within the query timeout.
    #[error("no answer within {0:?}")]
    QueryTimeout(Duration),
    /// The FE answered with an SQL error.
    #[error("ERROR {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// The connection broke while the statement ran.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The answer was not what the statement returns.
    #[error("unexpected answer: {0}")]
    Parse(String),
}

impl FeError {
    /// Whether trying again later may succeed: the FE was unreachable or
    /// slow, rather than refusing the statement or the login.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The FE's own message when it answered with an SQL error.
    pub fn server_message(&self) -> Option<&str> {
        match &self.kind {
            FeErrorKind::Server { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl FeErrorKind {
    fn is_transient(&self) -> bool {
        matches!(
            self,
            FeErrorKind::ConnectTimeout(_)
                | FeErrorKind::Connect(_)
                | FeErrorKind::QueryTimeout(_)
                | FeErrorKind::ConnectionLost(_)
        )
    }
}

/// A frontend's role in the FE group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrontendRole {
    /// Votes in master elections; the master is one of them.
    Follower,
    /// Replays the metadata journal but does not vote.
    Observer,
    /// Anything else the FE reports (`UNKNOWN`, `INIT`, ...).
    Other(String),
}

impl FrontendRole {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "FOLLOWER" => FrontendRole::Follower,
            "OBSERVER" => FrontendRole::Observer,
            other => FrontendRole::Other(other.to_string()),
        }
    }
}

/// One row of `SHOW FRONTEND CONFIG`: a setting of the FE answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    pub key: String,
    pub value: String,
    /// Whether `ADMIN SET ... CONFIG` may change it while the FE runs.
    pub mutable: bool,
    /// Whether only the master FE acts on it.
    pub master_only: bool,
}

impl FrontendConfig {
    /// Reads one row by column name (`Key`, `Value`, `IsMutable`, `MasterOnly`).
    pub fn from_row(row: &RawRow) -> Result<FrontendConfig, String> {
        let c = Columns::new(row);
        Ok(FrontendConfig {
            key: c.required(&["Key"])?.to_string(),
            value: c.string(&["Value"]).unwrap_or_default(),
            mutable: c.required_bool("IsMutable")?,
            master_only: c.bool("MasterOnly")?.unwrap_or(false),
        })
    }
}

/// One row of `SHOW FRONTENDS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    /// The node's name in the FE group (`Name`).
    pub name: String,
    /// `Host` (Doris 2.x/3.x) or `IP` (older releases).
    pub host: String,
    pub edit_log_port: u16,
    pub http_port: Option<u16>,
    pub query_port: Option<u16>,
    pub rpc_port: Option<u16>,
    /// `ArrowFlightSqlPort`, absent when not configured.
    pub arrow_flight_sql_port: Option<u16>,
    pub role: FrontendRole,
    pub is_master: bool,
    pub cluster_id: Option<String>,
    /// Whether the node has joined the FE group.
    pub join: bool,
    pub alive: bool,
    pub replayed_journal_id: Option<i64>,
    pub last_start_time: Option<String>,
    pub last_heartbeat: Option<String>,
    pub is_helper: Option<bool>,
    pub err_msg: String,
    pub version: Option<String>,
    /// Whether this is the FE the statement ran on (`CurrentConnected`).
    pub current_connected: Option<bool>,
}

/// A backend's role: storage and compute, or compute only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// Stores tablets and computes (`mix`).
    Mix,
    /// A compute node: no tablets (`computation`).
    Computation,
    Other(String),
}

impl NodeRole {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" => None,
            "mix" => Some(NodeRole::Mix),
            "computation" => Some(NodeRole::Computation),
            other => Some(NodeRole::Other(other.to_string())),
        }
    }
}

/// One row of `SHOW BACKENDS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `BackendId`.
    pub id: i64,
    /// `Host` (Doris 2.x/3.x) or `IP` (older releases).
    pub host: String,
    pub heartbeat_port: u16,
    pub be_port: Option<u16>,
    pub http_port: Option<u16>,
    pub brpc_port: Option<u16>,
    pub arrow_flight_sql_port: Option<u16>,
    pub last_start_time: Option<String>,
    pub last_heartbeat: Option<String>,
    pub alive: bool,
    /// `SystemDecommissioned`: the backend is being drained and will be
    /// removed once it holds no tablets.
    pub decommissioned: bool,
    /// `TabletNum`: tablets still on the backend.
    pub tablet_num: u64,
    /// `Tag`, a JSON object such as `{"location" : "default"}`.
    pub tag: Option<String>,
    pub err_msg: String,
    pub version: Option<String>,
    /// `isQueryDisabled` from the `Status` JSON, when reported.
    pub query_disabled: Option<bool>,
    /// `isLoadDisabled` from the `Status` JSON, when reported.
    pub load_disabled: Option<bool>,
    pub heartbeat_failure_counter: Option<u32>,
    /// `NodeRole`; Doris shows it only for a live backend.
    pub node_role: Option<NodeRole>,
    /// The compute group the backend serves in a storage-compute separated
    /// cluster, from `Tag`: `compute_group_name`, or `cloud_cluster_name`
    /// before Doris 3.0.2. `None` in a cluster that keeps data on its BEs.
    pub compute_group_name: Option<String>,
    /// The FE's id of that compute group, from `Tag`: `compute_group_id`,
    /// or `cloud_cluster_id` before Doris 3.0.2.
    pub compute_group_id: Option<String>,
}

impl Backend {
    /// A compute node (CN): a backend that holds no data.
    pub fn is_compute_node(&self) -> bool {
        self.node_role == Some(NodeRole::Computation)
    }

    /// `host:heartbeat_port`, as `ALTER SYSTEM` names a backend.
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.heartbeat_port)
    }

    /// The name of the compute group the backend serves (storage-compute
    /// separated clusters only).
    pub fn compute_group_name(&self) -> Option<&str> {
        self.compute_group_name.as_deref()
    }

    /// The FE's id of the backend's compute group (storage-compute
    /// separated clusters only).
    pub fn compute_group_id(&self) -> Option<&str> {
        self.compute_group_id.as_deref()
    }
}

/// A result row as column name and text value (`None` for SQL NULL).
pub type RawRow = Vec<(String, Option<String>)>;

/// Looks up columns of one row by name, case-insensitively.
struct Columns<'a> {
    by_name: HashMap<String, Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn new(row: &'a RawRow) -> Self {
        let by_name = row
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_deref()))
            .collect();
        Columns { by_name }
    }

    /// The first of `names` present and not NULL.
    fn get(&self, names: &[&str]) -> Option<&'a str> {
        names
            .iter()
            .find_map(|n| self.by_name.get(&n.to_ascii_lowercase()).copied().flatten())
    }

    fn required(&self, names: &[&str]) -> Result<&'a str, String> {
        self.get(names)
            .ok_or_else(|| format!("no column {}", names.join(" or ")))
    }

    fn string(&self, names: &[&str]) -> Option<String> {
        self.get(names).map(|s| s.to_string())
    }

    fn required_port(&self, name: &str) -> Result<u16, String> {
        let v = self.required(&[name])?;
        v.trim()
            .parse::<u16>()
            .map_err(|_| format!("column {name}: `{v}` is not a port"))
    }

    /// A port, or `None` when absent, empty or negative (Doris shows -1
    /// for a port that is not configured).
    fn port(&self, name: &str) -> Result<Option<u16>, String> {
        match self.get(&[name]).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n <= 0 => Ok(None),
                Ok(n) => u16::try_from(n)
                    .map(Some)
                    .map_err(|_| format!("column {name}: `{v}` is not a port")),
                Err(_) => Err(format!("column {name}: `{v}` is not a port")),
            },
        }
    }

    fn required_bool(&self, name: &str) -> Result<bool, String> {
        let v = self.required(&[name])?;
        parse_bool(v).ok_or_else(|| format!("column {name}: `{v}` is not a boolean"))
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(&[name]).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| format!("column {name}: `{v}` is not a boolean")),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.get(&[name]).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| format!("column {name}: `{v}` is not a number")),
        }
    }

    fn required_number<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.number(name)?
            .ok_or_else(|| format!("no column {name}"))
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

impl Frontend {
    /// Reads one `SHOW FRONTENDS` row by column name. Unknown columns are
    /// ignored; columns missing in some Doris release are `None`.
    pub fn from_row(row: &RawRow) -> Result<Frontend, String> {
        let c = Columns::new(row);
        Ok(Frontend {
            name: c.required(&["Name"])?.to_string(),
            host: c.required(&["Host", "IP"])?.to_string(),
            edit_log_port: c.required_port("EditLogPort")?,
            http_port: c.port("HttpPort")?,
            query_port: c.port("QueryPort")?,
            rpc_port: c.port("RpcPort")?,
            arrow_flight_sql_port: c.port("ArrowFlightSqlPort")?,
            role: FrontendRole::parse(c.required(&["Role"])?),
            is_master: c.bool("IsMaster")?.unwrap_or(false),
            cluster_id: c.string(&["ClusterId"]),
            join: c.bool("Join")?.unwrap_or(false),
            alive: c.required_bool("Alive")?,
            replayed_journal_id: c.number("ReplayedJournalId")?,
            last_start_time: c.string(&["LastStartTime"]),
            last_heartbeat: c.string(&["LastHeartbeat"]),
            is_helper: c.bool("IsHelper")?,
            err_msg: c.string(&["ErrMsg"]).unwrap_or_default(),
            version: c.string(&["Version"]),
            current_connected: c.bool("CurrentConnected")?,
        })
    }
}

impl Backend {
    /// Reads one `SHOW BACKENDS` row by column name. Unknown columns are
    /// ignored; columns missing in some Doris release are `None`.
    pub fn from_row(row: &RawRow) -> Result<Backend, String> {
        let c = Columns::new(row);
        let (query_disabled, load_disabled) = match c.get(&["Status"]) {
            Some(status) => parse_status(status)?,
            None => (None, None),
        };
        let tag = parse_tag(c.get(&["Tag"]));
        Ok(Backend {
            id: c.required_number("BackendId")?,
            host: c.required(&["Host", "IP"])?.to_string(),
            heartbeat_port: c.required_port("HeartbeatPort")?,
            be_port: c.port("BePort")?,
            http_port: c.port("HttpPort")?,
            brpc_port: c.port("BrpcPort")?,
            arrow_flight_sql_port: c.port("ArrowFlightSqlPort")?,
            last_start_time: c.string(&["LastStartTime"]),
            last_heartbeat: c.string(&["LastHeartbeat"]),
            alive: c.required_bool("Alive")?,
            decommissioned: c.required_bool("SystemDecommissioned")?,
            tablet_num: c.required_number("TabletNum")?,
            tag: c.string(&["Tag"]),
            err_msg: c.string(&["ErrMsg"]).unwrap_or_default(),
            version: c.string(&["Version"]),
            query_disabled,
            load_disabled,
            heartbeat_failure_counter: c.number("HeartbeatFailureCounter")?,
            node_role: c.get(&["NodeRole"]).and_then(NodeRole::parse),
            compute_group_name: tag_value(&tag, &["compute_group_name", "cloud_cluster_name"]),
            compute_group_id: tag_value(&tag, &["compute_group_id", "cloud_cluster_id"]),
        })
    }
}

/// A backend's `Tag` column as a JSON object; `None` when absent or not
/// an object. Only compute groups are read from it, and a backend with
/// an unreadable tag is still a backend, so this never fails.
fn parse_tag(tag: Option<&str>) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(tag?.trim()) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The first of `keys` in the tag with a non-empty value, as text.
fn tag_value(
    tag: &Option<serde_json::Map<String, serde_json::Value>>,
    keys: &[&str],
) -> Option<String> {
    let tag = tag.as_ref()?;
    keys.iter().find_map(|k| {
        let text = match tag.get(*k)? {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    })
}

/// `isQueryDisabled` and `isLoadDisabled` from a backend's `Status` JSON.
fn parse_status(status: &str) -> Result<(Option<bool>, Option<bool>), String> {
    if status.trim().is_empty() {
        return Ok((None, None));
    }
    let v: serde_json::Value = serde_json::from_str(status)
        .map_err(|e| format!("column Status: not JSON ({e}): {status}"))?;
    let flag = |key: &str| v.get(key).and_then(serde_json::Value::as_bool);
    Ok((flag("isQueryDisabled"), flag("isLoadDisabled")))
}

/// `host:port`, with an IPv6 address in brackets as Doris expects.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Checks a host name or IP address meant for a statement: letters,
/// digits and `.-_:%[]` only, so it can never end a quoted string.
pub fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".to_string());
    }
    if host.len() > 253 {
        return Err(format!("host longer than 253 characters: {host:.40}..."));
    }
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_:%[]".contains(*c)))
    {
        Some(c) => Err(format!("host {host:?} contains {c:?}")),
        None => Ok(()),
    }
}

/// A double-quoted SQL string literal; refuses quotes, backslashes and
/// control characters rather than escaping them.
pub fn quote_string(s: &str) -> Result<String, String> {
    match s
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | '`') || c.is_control())
    {
        Some(c) => Err(format!("{s:?} contains {c:?}")),
        None => Ok(format!("\"{s}\"")),
    }
}

/// A compute group name, quoted: a letter, then letters, digits, `_` and
/// `-`.
fn quoted_compute_group(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "compute group name {name:?} must be a letter followed by letters, digits, _ or -"
        ));
    }
    quote_string(name)
}

/// `"host:port"`, quoted, for `ALTER SYSTEM`.
fn quoted_host_port(host: &str, port: u16) -> Result<String, String> {
    validate_host(host)?;
    if port == 0 {
        return Err("port 0".to_string());
    }
    quote_string(&join_host_port(host, port))
}

/// Whether a statement only reads, and so may be sent again after it
/// reached the FE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotence {
    Read,
    Write,
}

/// A client of one FE. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FeClient {
    endpoint: FeEndpoint,
    config: FeClientConfig,
}

impl FeClient {
    pub fn new(endpoint: FeEndpoint) -> Self {
        FeClient::with_config(endpoint, FeClientConfig::default())
    }

    pub fn with_config(endpoint: FeEndpoint, config: FeClientConfig) -> Self {
        FeClient { endpoint, config }
    }

    pub fn endpoint(&self) -> &FeEndpoint {
        &self.endpoint
    }

    pub fn config(&self) -> &FeClientConfig {
        &self.config
    }

    /// `SHOW FRONTENDS`.
    pub async fn show_frontends(&self) -> Result<Vec<Frontend>, FeError> {
        self.read_rows("SHOW FRONTENDS", Frontend::from_row).await
    }

    /// `SHOW BACKENDS`.
    pub async fn show_backends(&self) -> Result<Vec<Backend>, FeError> {
        self.read_rows("SHOW BACKENDS", Backend::from_row).await
    }

    /// `SHOW FRONTEND CONFIG`: the settings of the FE that answers.
    pub async fn show_frontend_config(&self) -> Result<Vec<FrontendConfig>, FeError> {
        self.read_rows("SHOW FRONTEND CONFIG", FrontendConfig::from_row)
            .await
    }

    /// `ADMIN SET ALL FRONTENDS CONFIG ("key" = "value")`: changes a
    /// mutable setting on every FE at once (Doris takes one key per
    /// statement). Not kept across an FE restart: fe.conf carries it then.
    pub async fn set_all_frontends_config(&self, key: &str, value: &str) -> Result<(), FeError> {
        let statement = quote_string(key).and_then(|k| {
            quote_string(value).map(|v| format!("ADMIN SET ALL FRONTENDS CONFIG ({k} = {v})"))
        });
        self.write(statement, "ADMIN SET ALL FRONTENDS CONFIG")
            .await
    }

    /// `ALTER SYSTEM ADD BACKEND "host:heartbeat_port"`. Doris answers
    /// `Same backend already exists[...]` for a backend it has.
    pub async fn add_backend(&self, host: &str, heartbeat_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD BACKEND", host, heartbeat_port)
            .await
    }

    /// `ALTER SYSTEM ADD BACKEND "host:heartbeat_port" PROPERTIES
    /// ("tag.compute_group_name" = "<group>")`: registers a backend into a
    /// compute group of a storage-compute separated cluster (Doris 3.0.2
    /// and later; the group is created with its first backend). Doris
    /// answers `Same backend already exists[...]` for a backend it has.
    pub async fn add_backend_to_compute_group(
        &self,
        host: &str,
        heartbeat_port: u16,
        compute_group: &str,
    ) -> Result<(), FeError> {
        const VERB: &str = "ALTER SYSTEM ADD BACKEND";
        let statement = quoted_host_port(host, heartbeat_port).and_then(|target| {
            let group = quoted_compute_group(compute_group)?;
            Ok(format!(
                "{VERB} {target} PROPERTIES (\"tag.compute_group_name\" = {group})"
            ))
        });
        self.write(statement, VERB).await
    }

    /// `ALTER SYSTEM DECOMMISSION BACKEND "host:heartbeat_port"`: Doris
    /// moves the backend's tablets to others, then removes it. Progress
    /// shows in [`Backend::tablet_num`].
    pub async fn decommission_backend(
        &self,
        host: &str,
        heartbeat_port: u16,
    ) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DECOMMISSION BACKEND", host, heartbeat_port)
            .await
    }

    /// `CANCEL DECOMMISSION BACKEND "host:heartbeat_port"`; a backend not
    /// being decommissioned is left as it is.
    pub async fn cancel_decommission(
        &self,
        host: &str,
        heartbeat_port: u16,
    ) -> Result<(), FeError> {
        self.node_statement("CANCEL DECOMMISSION BACKEND", host, heartbeat_port)
            .await
    }

    /// Removes a backend at once, discarding the tablets on it.
    ///
    /// Doris refuses `ALTER SYSTEM DROP BACKEND` ("If you insist, use DROPP
    /// instead of DROP") and removes the backend only for `DROPP`: with
    /// `force` false this sends `DROP` and so reports that refusal; with
    /// `force` true it sends `DROPP`. Use [`FeClient::decommission_backend`]
    /// to remove a backend without losing data.
    pub async fn drop_backend(
        &self,
        host: &str,
        heartbeat_port: u16,
        force: bool,
    ) -> Result<(), FeError> {
        let verb = if force {
            "ALTER SYSTEM DROPP BACKEND"
        } else {
            "ALTER SYSTEM DROP BACKEND"
        };
        self.node_statement(verb, host, heartbeat_port).await
    }

    /// `ALTER SYSTEM ADD FOLLOWER "host:edit_log_port"`.
    pub async fn add_follower(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD FOLLOWER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM ADD OBSERVER "host:edit_log_port"`.
    pub async fn add_observer(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD OBSERVER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM DROP FOLLOWER "host:edit_log_port"`.
    pub async fn drop_follower(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DROP FOLLOWER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM DROP OBSERVER "host:edit_log_port"`.
    pub async fn drop_observer(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DROP OBSERVER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM MODIFY BACKEND "host:port" SET ("disable_query" = ...,
    /// "disable_load" = ...)`: stop (or resume) sending queries and loads to
    /// a backend, e.g. before restarting it.
    pub async fn set_backend_query_load(
        &self,
        host: &str,
        heartbeat_port: u16,
        disable_query: bool,
        disable_load: bool,
    ) -> Result<(), FeError> {
        let statement = quoted_host_port(host, heartbeat_port).map(|target| {
            format!(
                "ALTER SYSTEM MODIFY BACKEND {target} SET (\"disable_query\" = \"{disable_query}\", \"disable_load\" = \"{disable_load}\")"
            )
        });
        self.write(statement, "ALTER SYSTEM MODIFY BACKEND").await
    }

    /// `VERB "host:port"`, the form of every membership change.
    async fn node_statement(&self, verb: &str, host: &str, port: u16) -> Result<(), FeError> {
        let statement = quoted_host_port(host, port).map(|target| format!("{verb} {target}"));
        self.write(statement, verb).await
    }

    /// Runs a write built from arguments; `verb` names it in the error when
    /// the arguments were refused.
    async fn write(&self, statement: Result<String, String>, verb: &str) -> Result<(), FeError> {
        match statement {
            Ok(statement) => self.run(&statement, Idempotence::Write).await.map(|_| ()),
            Err(reason) => Err(self.error(verb, 0, FeErrorKind::InvalidArgument(reason))),
        }
    }

    async fn read_rows<T>(
        &self,
        statement: &str,
        parse: fn(&RawRow) -> Result<T, String>,
    ) -> Result<Vec<T>, FeError> {
        let rows = self.run(statement, Idempotence::Read).await?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                parse(row).map_err(|reason| {
                    self.error(
                        statement,
                        1,
                        FeErrorKind::Parse(format!("row {i}: {reason}")),
                    )
                })
            })
            .collect()
    }

    /// Runs one statement on a fresh connection, with timeouts and retries.
    async fn run(&self, statement: &str, idempotence: Idempotence) -> Result<Vec<RawRow>, FeError> {
        let mut attempt = 0;
        let mut backoff = self.config.retry_backoff;
        loop {
            attempt += 1;
            let result = self.run_once(statement, idempotence).await;
            match result {
                Ok(rows) => return Ok(rows),
                Err((stage, kind)) => {
                    // Nothing was sent yet, or a read lost its connection:
                    // worth another go. A slow answer is not: the FE is up
                    // and asking again only adds to its load.
                    let retryable = match stage {
                        Stage::Connect => kind.is_transient(),
                        Stage::Statement => {
                            idempotence == Idempotence::Read
                                && matches!(kind, FeErrorKind::ConnectionLost(_))
                        }
                    };
                    let retry = retryable && attempt <= self.config.retries;
                    if !retry {
                        return Err(self.error(statement, attempt, kind));
                    }
                    tracing::debug!(
                        fe = %self.endpoint.addr(),
                        statement,
                        attempt,
                        error = %kind,
                        "FE call failed, trying again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    async fn run_once(
        &self,
        statement: &str,
        idempotence: Idempotence,
    ) -> Result<Vec<RawRow>, (Stage, FeErrorKind)> {
        let mut conn =
            match tokio::time::timeout(self.config.connect_timeout, Conn::new(self.opts())).await {
                Err(_) => {
                    return Err((
                        Stage::Connect,
                        FeErrorKind::ConnectTimeout(self.config.connect_timeout),
                    ));
                }
                Ok(Err(e)) => return Err((Stage::Connect, self.classify(e, Stage::Connect))),
                Ok(Ok(conn)) => conn,
            };
        let result = match tokio::time::timeout(
            self.config.query_timeout,
            exec(&mut conn, statement, idempotence),
        )
        .await
        {
            Err(_) => Err((
                Stage::Statement,
                FeErrorKind::QueryTimeout(self.config.query_timeout),
            )),
            Ok(Err(e)) => Err((Stage::Statement, self.classify(e, Stage::Statement))),
            Ok(Ok(rows)) => Ok(rows),
        };
        // Close the connection within a bound. Left to itself, a dropped
        // connection would wait in the background for the rest of an
        // unfinished answer, for ever from an FE that hangs; a disconnect
        // cut short by the timeout closes the socket instead.
        let close = tokio::time::timeout(CLOSE_TIMEOUT, conn.disconnect());
        if result.is_ok() {
            let _ = close.await;
        } else {
            // Don't hold the error back for a slow FE's goodbye.
            tokio::spawn(async move {
                let _ = close.await;
            });
        }
        result
    }

    fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ssl_opts(self.endpoint.tls.as_ref().map(FeTls::ssl_opts))
            .ip_or_hostname(self.endpoint.host.clone())
            .tcp_port(self.endpoint.port)
            .user(Some(self.endpoint.user.clone()))
            .pass(Some(self.endpoint.password.clone()))
            // No unix-socket detour, and no settings query on connect.
            .prefer_socket(false)
            .max_allowed_packet(Some(16 * 1024 * 1024))
            .wait_timeout(Some(28_800))
            .stmt_cache_size(0)
    }

    fn classify(&self, e: mysql_async::Error, stage: Stage) -> FeErrorKind {
        use mysql_async::Error;
        let kind = match e {
            Error::Server(s) if s.code == ACCESS_DENIED || s.code == DBACCESS_DENIED => {
                FeErrorKind::AccessDenied {
                    user: self.endpoint.user.clone(),
                    message: s.message,
                }
            }
            Error::Server(s) => FeErrorKind::Server {
                code: s.code,
                state: s.state,
                message: s.message,
            },
            Error::Io(mysql_async::IoError::Tls(e)) => FeErrorKind::Tls(e.to_string()),
            // A refused handshake reaches the driver as invalid data.
            Error::Io(mysql_async::IoError::Io(io))
                if self.endpoint.tls.is_some()
                    && stage == Stage::Connect
                    && io.kind() == std::io::ErrorKind::InvalidData =>
            {
                FeErrorKind::Tls(io.to_string())
            }
            Error::Driver(d @ mysql_async::DriverError::NoClientSslFlagFromServer) => {
                FeErrorKind::Tls(format!("the FE does not offer TLS ({d})"))
            }
            Error::Io(io) => match stage {
                Stage::Connect => FeErrorKind::Connect(io.to_string()),
                Stage::Statement => FeErrorKind::ConnectionLost(io.to_string()),
            },
            Error::Driver(d @ mysql_async::DriverError::ConnectionClosed) => match stage {
                Stage::Connect => FeErrorKind::Connect(d.to_string()),
                Stage::Statement => FeErrorKind::ConnectionLost(d.to_string()),
            },
            // The FE said something the protocol does not allow: asking
            // again would get the same.
            other => FeErrorKind::Parse(other.to_string()),
        };
        self.scrub(kind)
    }

    /// Removes the password from a message, should a driver ever echo it.
    fn scrub(&self, kind: FeErrorKind) -> FeErrorKind {
        let pw = &self.endpoint.password;
        if pw.is_empty() {
            return kind;
        }
        let s = |m: String| m.replace(pw.as_str(), "<redacted>");
        match kind {
            FeErrorKind::Connect(m) => FeErrorKind::Connect(s(m)),
            FeErrorKind::ConnectionLost(m) => FeErrorKind::ConnectionLost(s(m)),
            FeErrorKind::Parse(m) => FeErrorKind::Parse(s(m)),
            FeErrorKind::AccessDenied { user, message } => FeErrorKind::AccessDenied {
                user,
                message: s(message),
            },
            FeErrorKind::Server {
                code,
                state,
                message,
            } => FeErrorKind::Server {
                code,
                state,
                message: s(message),
            },
            other => other,
        }
    }

    fn error(&self, statement: &str, attempts: u32, kind: FeErrorKind) -> FeError {
        FeError {
            addr: self.endpoint.addr(),
            statement: statement.to_string(),
            attempts,
            kind,
        }
    }
}

/// Bound on closing a connection politely (`COM_QUIT`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// MySQL's `ER_ACCESS_DENIED_ERROR`, what Doris answers to a bad login.
const ACCESS_DENIED: u16 = 1045;
/// MySQL's `ER_DBACCESS_DENIED_ERROR`.
const DBACCESS_DENIED: u16 = 1044;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Connecting and logging in: nothing was sent yet.
    Connect,
    /// The statement was sent.
    Statement,
}

/// Sends one statement: a read collects its rows, a write drops them.
async fn exec(
    conn: &mut Conn,
    statement: &str,
    idempotence: Idempotence,
) -> mysql_async::Result<Vec<RawRow>> {
    match idempotence {
        Idempotence::Read => {
            let rows: Vec<Row> = conn.query(statement).await?;
            Ok(rows.into_iter().map(raw_row).collect())
        }
        Idempotence::Write => conn.query_drop(statement).await.map(|_| Vec::new()),
    }
}

fn raw_row(row: Row) -> RawRow {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    names
        .into_iter()
        .zip(row.unwrap())
        .map(|(name, value)| (name, value_text(value)))
        .collect()
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, &str)]) -> RawRow {
        cols.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    /// A Doris 2.1 `SHOW FRONTENDS` row.
    fn frontend_row() -> RawRow {
        row(&[
            ("Name", "fe_4c0e3a55_9bb6_4f09_a1a5_6b0a0c2a1f7e"),
            ("Host", "doris-fe-0.doris-fe"),
            ("EditLogPort", "9010"),
            ("HttpPort", "8030"),
            ("QueryPort", "9030"),
            ("RpcPort", "9020"),
            ("ArrowFlightSqlPort", "-1"),
            ("Role", "FOLLOWER"),
            ("IsMaster", "true"),
            ("ClusterId", "1517213422"),
            ("Join", "true"),
            ("Alive", "true"),
            ("ReplayedJournalId", "2051"),
            ("LastStartTime", "2024-05-01 10:00:00"),
            ("LastHeartbeat", "2024-05-01 10:05:00"),
            ("IsHelper", "true"),
            ("ErrMsg", ""),
            ("Version", "doris-2.1.3-rc09-2dc8e8e3d8"),
            ("CurrentConnected", "Yes"),
        ])
    }

    /// A Doris 2.1 `SHOW BACKENDS` row.
    fn backend_row() -> RawRow {
        row(&[
            ("BackendId", "10002"),
            ("Host", "10.0.0.5"),
            ("HeartbeatPort", "9050"),
            ("BePort", "9060"),
            ("HttpPort", "8040"),
            ("BrpcPort", "8060"),
            ("ArrowFlightSqlPort", "-1"),
            ("LastStartTime", "2024-05-01 10:00:00"),
            ("LastHeartbeat", "2024-05-01 10:05:00"),
            ("Alive", "true"),
            ("SystemDecommissioned", "false"),
            ("TabletNum", "120"),
            ("DataUsedCapacity", "1.000 GB"),
            ("TrashUsedCapacity", "0.000 "),
            ("AvailCapacity", "90.000 GB"),
            ("TotalCapacity", "100.000 GB"),
            ("UsedPct", "10.00 %"),
            ("MaxDiskUsedPct", "10.00 %"),
            ("RemoteUsedCapacity", "0.000 "),
            ("Tag", "{\"location\" : \"default\"}"),
            ("ErrMsg", ""),
            ("Version", "doris-2.1.3-rc09-2dc8e8e3d8"),
            (
                "Status",
                "{\"lastSuccessReportTabletsTime\":\"2024-05-01 10:04:59\",\"lastStreamLoadTime\":-1,\"isQueryDisabled\":true,\"isLoadDisabled\":false}",
            ),
            ("HeartbeatFailureCounter", "0"),
            ("NodeRole", "mix"),
        ])
    }

    #[test]
    fn parses_a_frontend_row_by_column_name() {
        let fe = Frontend::from_row(&frontend_row()).unwrap();
        assert_eq!(fe.host, "doris-fe-0.doris-fe");
        assert_eq!(fe.edit_log_port, 9010);
        assert_eq!(fe.http_port, Some(8030));
        assert_eq!(fe.query_port, Some(9030));
        assert_eq!(fe.rpc_port, Some(9020));
        assert_eq!(fe.arrow_flight_sql_port, None);
        assert_eq!(fe.role, FrontendRole::Follower);
        assert!(fe.is_master && fe.join && fe.alive);
        assert_eq!(fe.replayed_journal_id, Some(2051));
        assert_eq!(fe.current_connected, Some(true));
        assert_eq!(fe.version.as_deref(), Some("doris-2.1.3-rc09-2dc8e8e3d8"));

        // Column order does not matter.
        let mut reversed = frontend_row();
        reversed.reverse();
        assert_eq!(Frontend::from_row(&reversed).unwrap(), fe);
    }

    #[test]
    fn frontend_rows_of_older_releases_and_extra_columns() {
        // Doris 1.2: IP and HostName instead of Host, no LastStartTime.
        let old = row(&[
            ("Name", "10.0.0.2_9010_1700000000000"),
            ("IP", "10.0.0.2"),
            ("HostName", "fe-1"),
            ("EditLogPort", "9010"),
            ("HttpPort", "8030"),
            ("QueryPort", "0"),
            ("RpcPort", "0"),
            ("Role", "OBSERVER"),
            ("IsMaster", "false"),
            ("ClusterId", "1"),
            ("Join", "false"),
            ("Alive", "false"),
            ("ReplayedJournalId", "0"),
            ("LastHeartbeat", "NULL"),
            ("IsHelper", "false"),
            ("ErrMsg", "got exception"),
            ("Version", ""),
            ("CurrentConnected", "No"),
            ("SomeFutureColumn", "x"),
        ]);
        let fe = Frontend::from_row(&old).unwrap();
        assert_eq!(fe.host, "10.0.0.2");
        assert_eq!(fe.role, FrontendRole::Observer);
        assert!(!fe.is_master && !fe.alive && !fe.join);
        assert_eq!(fe.query_port, None);
        assert_eq!(fe.last_start_time, None);
        assert_eq!(fe.err_msg, "got exception");

        // Only the essentials present.
        let minimal = row(&[
            ("name", "fe1"),
            ("host", "h"),
            ("editlogport", "9010"),
            ("role", "FOLLOWER"),
            ("alive", "true"),
        ]);
        let fe = Frontend::from_row(&minimal).unwrap();
        assert_eq!(fe.http_port, None);
        assert!(!fe.is_master);
    }

    #[test]
    fn frontend_row_errors_name_the_column() {
        let mut r = frontend_row();
        r.retain(|(k, _)| k != "EditLogPort");
        assert_eq!(Frontend::from_row(&r).unwrap_err(), "no column EditLogPort");
        let mut r = frontend_row();
        r.retain(|(k, _)| k != "Host");
        assert_eq!(Frontend::from_row(&r).unwrap_err(), "no column Host or IP");
        let mut r = frontend_row();
        r[11].1 = Some("maybe".to_string());
        assert_eq!(
            Frontend::from_row(&r).unwrap_err(),
            "column Alive: `maybe` is not a boolean"
        );
        let mut r = frontend_row();
        r[2].1 = Some("70000".to_string());
        assert_eq!(
            Frontend::from_row(&r).unwrap_err(),
            "column EditLogPort: `70000` is not a port"
        );
    }

    #[test]
    fn parses_a_backend_row_by_column_name() {
        let be = Backend::from_row(&backend_row()).unwrap();
        assert_eq!(be.id, 10002);
        assert_eq!(be.host, "10.0.0.5");
        assert_eq!(be.heartbeat_port, 9050);
        assert_eq!(be.be_port, Some(9060));
        assert_eq!(be.http_port, Some(8040));
        assert_eq!(be.brpc_port, Some(8060));
        assert_eq!(be.arrow_flight_sql_port, None);
        assert!(be.alive && !be.decommissioned);
        assert_eq!(be.tablet_num, 120);
        assert_eq!(be.query_disabled, Some(true));
        assert_eq!(be.load_disabled, Some(false));
        assert_eq!(be.node_role, Some(NodeRole::Mix));
        assert!(!be.is_compute_node());
        assert_eq!(be.heartbeat_failure_counter, Some(0));
        assert_eq!(be.host_port(), "10.0.0.5:9050");
    }

    #[test]
    fn backend_rows_of_other_releases() {
        // Doris 1.2: IP, ClusterDecommissioned, no NodeRole, no Status flags.
        let old = row(&[
            ("BackendId", "11001"),
            ("Cluster", "default_cluster"),
            ("IP", "10.0.0.6"),
            ("HeartbeatPort", "9050"),
            ("BePort", "9060"),
            ("HttpPort", "8040"),
            ("BrpcPort", "8060"),
            ("Alive", "false"),
            ("SystemDecommissioned", "true"),
            ("ClusterDecommissioned", "false"),
            ("TabletNum", "0"),
            ("Status", "{\"lastSuccessReportTabletsTime\":\"N/A\"}"),
        ]);
        let be = Backend::from_row(&old).unwrap();
        assert_eq!(be.host, "10.0.0.6");
        assert!(be.decommissioned && !be.alive);
        assert_eq!(be.query_disabled, None);
        assert_eq!(be.node_role, None);

        // A compute node; Doris 3 adds CpuCores and Memory.
        let mut cn = backend_row();
        for (k, v) in cn.iter_mut() {
            if k == "NodeRole" {
                *v = Some("computation".to_string());
            }
        }
        cn.push(("CpuCores".to_string(), Some("16".to_string())));
        cn.push(("Memory".to_string(), Some("64.00 GB".to_string())));
        let be = Backend::from_row(&cn).unwrap();
        assert!(be.is_compute_node());

        // A dead backend shows no NodeRole.
        let mut dead = backend_row();
        for (k, v) in dead.iter_mut() {
            if k == "NodeRole" {
                *v = Some(String::new());
            }
        }
        assert_eq!(Backend::from_row(&dead).unwrap().node_role, None);

        // A NULL is as good as missing for optional columns.
        let mut nulls = backend_row();
        for (k, v) in nulls.iter_mut() {
            if k == "BePort" || k == "Version" {
                *v = None;
            }
        }
        let be = Backend::from_row(&nulls).unwrap();
        assert_eq!((be.be_port, be.version), (None, None));
    }

    /// A Doris 3.0.x `SHOW BACKENDS` row of a storage-compute separated
    /// cluster, with the given `Tag`.
    fn cloud_backend_row(tag: &str) -> RawRow {
        row(&[
            ("BackendId", "10221"),
            ("Host", "ddc-cg1-1.ddc-cg1.default.svc.cluster.local"),
            ("HeartbeatPort", "9050"),
            ("BePort", "9060"),
            ("HttpPort", "8040"),
            ("BrpcPort", "8060"),
            ("ArrowFlightSqlPort", "-1"),
            ("LastStartTime", "2025-02-28 02:56:30"),
            ("LastHeartbeat", "2025-02-28 02:58:01"),
            ("Alive", "true"),
            ("SystemDecommissioned", "false"),
            ("TabletNum", "12"),
            ("DataUsedCapacity", "0.000 "),
            ("TrashUsedCapacity", "0.000 "),
            ("AvailCapacity", "1.000 B"),
            ("TotalCapacity", "0.000 "),
            ("UsedPct", "0.00 %"),
            ("MaxDiskUsedPct", "0.00 %"),
            ("RemoteUsedCapacity", "0.000 "),
            ("Tag", tag),
            ("ErrMsg", ""),
            ("Version", "doris-3.0.4-rc02-62a58bff4c"),
            (
                "Status",
                "{\"lastStreamLoadTime\":-1,\"isQueryDisabled\":false,\"isLoadDisabled\":false,\"isActive\":true,\"currentFragmentNum\":0,\"lastFragmentUpdateTime\":0}",
            ),
            ("HeartbeatFailureCounter", "0"),
            ("NodeRole", "mix"),
            ("CpuCores", "1"),
            ("Memory", "0.00"),
        ])
    }

    #[test]
    fn backend_rows_name_their_compute_group() {
        // Doris 3.0.2 and later.
        let be = Backend::from_row(&cloud_backend_row(
            "{\"cloud_unique_id\" : \"1:1751150972:t1Ws6Mrv\", \"compute_group_status\" : \"NORMAL\", \"private_endpoint\" : \"\", \"compute_group_name\" : \"cg1\", \"location\" : \"default\", \"public_endpoint\" : \"\", \"compute_group_id\" : \"ZNES_zRC\"}",
        ))
        .unwrap();
        assert_eq!(be.compute_group_name(), Some("cg1"));
        assert_eq!(be.compute_group_id(), Some("ZNES_zRC"));
        assert_eq!(
            be.host_port(),
            "ddc-cg1-1.ddc-cg1.default.svc.cluster.local:9050"
        );
        assert_eq!(be.query_disabled, Some(false));

        // Doris 3.0.0 and 3.0.1 called compute groups cloud clusters.
        let be = Backend::from_row(&cloud_backend_row(
            "{\"cloud_cluster_id\" : \"Ppt5BJ3g\", \"cloud_unique_id\" : \"1:1751150972:JxbgZEBP\", \"cloud_cluster_status\" : \"NORMAL\", \"cloud_cluster_name\" : \"cg2\", \"location\" : \"default\", \"cloud_cluster_private_endpoint\" : \"\", \"cloud_cluster_public_endpoint\" : \"\"}",
        ))
        .unwrap();
        assert_eq!(be.compute_group_name(), Some("cg2"));
        assert_eq!(be.compute_group_id(), Some("Ppt5BJ3g"));

        // Key order and spacing do not matter.
        let be = Backend::from_row(&cloud_backend_row(
            "{\"compute_group_id\":\"id_9\",\"compute_group_name\":\"etl\"}",
        ))
        .unwrap();
        assert_eq!(
            (be.compute_group_name(), be.compute_group_id()),
            (Some("etl"), Some("id_9"))
        );
    }

    #[test]
    fn backends_outside_compute_groups_have_none() {
        // A cluster that keeps data on its BEs: only a location.
        let be = Backend::from_row(&backend_row()).unwrap();
        assert_eq!(
            (be.compute_group_name(), be.compute_group_id()),
            (None, None)
        );

        // No Tag column (Doris 1.2 without tags), a NULL tag, an unreadable
        // one, empty values: no group, and the row still reads.
        for tag in [
            None,
            Some("not json"),
            Some("[\"cg1\"]"),
            Some("{\"compute_group_name\" : \"\", \"compute_group_id\" : \"\"}"),
            Some("{\"compute_group_name\" : null}"),
        ] {
            let mut r = cloud_backend_row("");
            for (k, v) in r.iter_mut() {
                if k == "Tag" {
                    *v = tag.map(str::to_string);
                }
            }
            let be = Backend::from_row(&r).unwrap();
            assert_eq!(
                (be.compute_group_name(), be.compute_group_id()),
                (None, None),
                "{tag:?}"
            );
        }
        let mut r = cloud_backend_row("");
        r.retain(|(k, _)| k != "Tag");
        assert_eq!(Backend::from_row(&r).unwrap().compute_group_name(), None);
    }

    #[test]
    fn compute_group_names_are_checked_before_quoting() {
        assert_eq!(quoted_compute_group("cg1").unwrap(), "\"cg1\"");
        assert_eq!(
            quoted_compute_group("etl_group-2").unwrap(),
            "\"etl_group-2\""
        );
        for bad in ["", "1cg", "_cg", "cg\"; DROP", "cg 1", "cg'1", "cg.1"] {
            assert!(quoted_compute_group(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn backend_row_errors() {
        let mut r = backend_row();
        r.retain(|(k, _)| k != "TabletNum");
        assert_eq!(Backend::from_row(&r).unwrap_err(), "no column TabletNum");
        let mut r = backend_row();
        r[0].1 = Some("abc".to_string());
        assert_eq!(
            Backend::from_row(&r).unwrap_err(),
            "column BackendId: `abc` is not a number"
        );
        let mut r = backend_row();
        for (k, v) in r.iter_mut() {
            if k == "Status" {
                *v = Some("{oops".to_string());
            }
        }
        assert!(
            Backend::from_row(&r)
                .unwrap_err()
                .starts_with("column Status: not JSON")
        );
    }

    #[test]
    fn hosts_and_strings_are_quoted_or_refused() {
        assert_eq!(
            quoted_host_port("doris-be-0.doris-be.ns.svc.cluster.local", 9050).unwrap(),
            "\"doris-be-0.doris-be.ns.svc.cluster.local:9050\""
        );
        assert_eq!(
            quoted_host_port("10.0.0.1", 9050).unwrap(),
            "\"10.0.0.1:9050\""
        );
        assert_eq!(
            quoted_host_port("fd00::1", 9050).unwrap(),
            "\"[fd00::1]:9050\""
        );
        for bad in [
            "a\"; DROP DATABASE x; --",
            "a'b",
            "a`b",
            "a\\b",
            "a b",
            "a\nb",
            "",
            "h,h2",
        ] {
            assert!(quoted_host_port(bad, 9050).is_err(), "{bad:?} accepted");
        }
        assert!(quoted_host_port("h", 0).is_err());
        assert_eq!(quote_string("disable_query").unwrap(), "\"disable_query\"");
        assert!(quote_string("x\"y").is_err());
        assert!(quote_string("x'y").is_err());
    }

    #[test]
    fn debug_never_prints_the_password() {
        let ep = FeEndpoint::new("fe.example")
            .with_port(19030)
            .with_credentials("admin", "s3cr3t-pw");
        let shown = format!("{ep:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(
            shown.contains("admin") && shown.contains("19030"),
            "{shown}"
        );
        let pretty = format!("{ep:#?}");
        assert!(!pretty.contains("s3cr3t-pw"), "{pretty}");

        let client = FeClient::new(ep);
        assert!(!format!("{client:?}").contains("s3cr3t-pw"));

        let empty = format!("{:?}", FeEndpoint::new("h"));
        assert!(
            empty.contains("<empty>") && empty.contains("9030"),
            "{empty}"
        );
    }

    #[test]
    fn error_messages_name_the_statement_and_scrub_the_password() {
        let client = FeClient::new(FeEndpoint::new("fe").with_credentials("root", "hunter22"));
        let kind = client.scrub(FeErrorKind::Connect(
            "mysql://root:hunter22@fe:9030 refused".to_string(),
        ));
        let err = client.error("SHOW BACKENDS", 3, kind);
        let text = err.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert!(
            text.contains("`SHOW BACKENDS`") && text.contains("fe:9030"),
            "{text}"
        );
        assert!(err.is_transient());
        assert!(
            !FeErrorKind::AccessDenied {
                user: "root".into(),
                message: String::new()
            }
            .is_transient()
        );
    }

    #[tokio::test]
    async fn bad_arguments_are_refused_before_connecting() {
        // Nothing listens on port 1; a refusal proves nothing was sent.
        let client = FeClient::new(FeEndpoint::new("127.0.0.1").with_port(1));
        let err = client.add_backend("evil\"host", 9050).await.unwrap_err();
        assert!(matches!(err.kind, FeErrorKind::InvalidArgument(_)), "{err}");
        assert_eq!(err.attempts, 0);
        let err = client
            .add_backend_to_compute_group("h", 9050, "cg\") --")
            .await
            .unwrap_err();
        assert!(matches!(err.kind, FeErrorKind::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("compute group name"), "{err}");
        assert_eq!(err.attempts, 0);
        let err = client
            .set_backend_query_load("h'", 9050, true, true)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("ALTER SYSTEM MODIFY BACKEND"),
            "{err}"
        );
    }
}
