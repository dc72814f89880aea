//! The rows of `SHOW FRONTENDS`, `SHOW BACKENDS` and `SHOW FRONTEND
//! CONFIG`, read by column name so that the columns of every Doris
//! release parse.

use std::sync::Arc;

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

/// A result row: its text values (`None` for SQL NULL) by column, and the
/// column names, which every row of one result shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    columns: Arc<[String]>,
    values: Vec<Option<String>>,
}

impl RawRow {
    /// A row of `values` under `columns` (one per value).
    pub fn new(columns: Arc<[String]>, values: Vec<Option<String>>) -> RawRow {
        RawRow { columns, values }
    }

    /// A row from (column, value) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Option<String>)>) -> RawRow {
        let (columns, values): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        RawRow::new(columns.into(), values)
    }

    /// The first column's value.
    pub fn first_value(&self) -> Option<&str> {
        self.values.first().and_then(|v| v.as_deref())
    }
}

/// Looks up columns of one row by name, case-insensitively (a result has
/// a few dozen columns: a scan costs less than building a map per row).
struct Columns<'a> {
    row: &'a RawRow,
}

impl<'a> Columns<'a> {
    fn new(row: &'a RawRow) -> Self {
        Columns { row }
    }

    /// The first of `names` present and not NULL.
    fn get(&self, names: &[&str]) -> Option<&'a str> {
        let row = self.row;
        names.iter().find_map(|n| {
            let i = row.columns.iter().position(|c| c.eq_ignore_ascii_case(n))?;
            row.values.get(i)?.as_deref()
        })
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
pub(super) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Checks a host name or IP address meant for a statement: letters,
#[cfg(test)]
mod tests {
    use super::*;

    /// A row as (column, value) pairs, which the tests edit.
    type Pairs = Vec<(String, Option<String>)>;

    fn row(cols: &[(&str, &str)]) -> Pairs {
        cols.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    fn raw(pairs: &[(String, Option<String>)]) -> RawRow {
        RawRow::from_pairs(pairs.iter().cloned())
    }

    /// A Doris 2.1 `SHOW FRONTENDS` row.
    fn frontend_row() -> Pairs {
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
    fn backend_row() -> Pairs {
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
        let fe = Frontend::from_row(&raw(&frontend_row())).unwrap();
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
        assert_eq!(Frontend::from_row(&raw(&reversed)).unwrap(), fe);
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
        let fe = Frontend::from_row(&raw(&old)).unwrap();
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
        let fe = Frontend::from_row(&raw(&minimal)).unwrap();
        assert_eq!(fe.http_port, None);
        assert!(!fe.is_master);
    }

    #[test]
    fn frontend_row_errors_name_the_column() {
        let mut r = frontend_row();
        r.retain(|(k, _)| k != "EditLogPort");
        assert_eq!(
            Frontend::from_row(&raw(&r)).unwrap_err(),
            "no column EditLogPort"
        );
        let mut r = frontend_row();
        r.retain(|(k, _)| k != "Host");
        assert_eq!(
            Frontend::from_row(&raw(&r)).unwrap_err(),
            "no column Host or IP"
        );
        let mut r = frontend_row();
        r[11].1 = Some("maybe".to_string());
        assert_eq!(
            Frontend::from_row(&raw(&r)).unwrap_err(),
            "column Alive: `maybe` is not a boolean"
        );
        let mut r = frontend_row();
        r[2].1 = Some("70000".to_string());
        assert_eq!(
            Frontend::from_row(&raw(&r)).unwrap_err(),
            "column EditLogPort: `70000` is not a port"
        );
    }

    #[test]
    fn parses_a_backend_row_by_column_name() {
        let be = Backend::from_row(&raw(&backend_row())).unwrap();
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
        let be = Backend::from_row(&raw(&old)).unwrap();
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
        let be = Backend::from_row(&raw(&cn)).unwrap();
        assert!(be.is_compute_node());

        // A dead backend shows no NodeRole.
        let mut dead = backend_row();
        for (k, v) in dead.iter_mut() {
            if k == "NodeRole" {
                *v = Some(String::new());
            }
        }
        assert_eq!(Backend::from_row(&raw(&dead)).unwrap().node_role, None);

        // A NULL is as good as missing for optional columns.
        let mut nulls = backend_row();
        for (k, v) in nulls.iter_mut() {
            if k == "BePort" || k == "Version" {
                *v = None;
            }
        }
        let be = Backend::from_row(&raw(&nulls)).unwrap();
        assert_eq!((be.be_port, be.version), (None, None));
    }

    /// A Doris 3.0.x `SHOW BACKENDS` row of a storage-compute separated
    /// cluster, with the given `Tag`.
    fn cloud_backend_row(tag: &str) -> Pairs {
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
        let be = Backend::from_row(&raw(&cloud_backend_row(
            "{\"cloud_unique_id\" : \"1:1751150972:t1Ws6Mrv\", \"compute_group_status\" : \"NORMAL\", \"private_endpoint\" : \"\", \"compute_group_name\" : \"cg1\", \"location\" : \"default\", \"public_endpoint\" : \"\", \"compute_group_id\" : \"ZNES_zRC\"}",
        )))
        .unwrap();
        assert_eq!(be.compute_group_name(), Some("cg1"));
        assert_eq!(be.compute_group_id(), Some("ZNES_zRC"));
        assert_eq!(
            be.host_port(),
            "ddc-cg1-1.ddc-cg1.default.svc.cluster.local:9050"
        );
        assert_eq!(be.query_disabled, Some(false));

        // Doris 3.0.0 and 3.0.1 called compute groups cloud clusters.
        let be = Backend::from_row(&raw(&cloud_backend_row(
            "{\"cloud_cluster_id\" : \"Ppt5BJ3g\", \"cloud_unique_id\" : \"1:1751150972:JxbgZEBP\", \"cloud_cluster_status\" : \"NORMAL\", \"cloud_cluster_name\" : \"cg2\", \"location\" : \"default\", \"cloud_cluster_private_endpoint\" : \"\", \"cloud_cluster_public_endpoint\" : \"\"}",
        )))
        .unwrap();
        assert_eq!(be.compute_group_name(), Some("cg2"));
        assert_eq!(be.compute_group_id(), Some("Ppt5BJ3g"));

        // Key order and spacing do not matter.
        let be = Backend::from_row(&raw(&cloud_backend_row(
            "{\"compute_group_id\":\"id_9\",\"compute_group_name\":\"etl\"}",
        )))
        .unwrap();
        assert_eq!(
            (be.compute_group_name(), be.compute_group_id()),
            (Some("etl"), Some("id_9"))
        );
    }

    #[test]
    fn backends_outside_compute_groups_have_none() {
        // A cluster that keeps data on its BEs: only a location.
        let be = Backend::from_row(&raw(&backend_row())).unwrap();
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
            let be = Backend::from_row(&raw(&r)).unwrap();
            assert_eq!(
                (be.compute_group_name(), be.compute_group_id()),
                (None, None),
                "{tag:?}"
            );
        }
        let mut r = cloud_backend_row("");
        r.retain(|(k, _)| k != "Tag");
        assert_eq!(
            Backend::from_row(&raw(&r)).unwrap().compute_group_name(),
            None
        );
    }

    #[test]
    fn backend_row_errors() {
        let mut r = backend_row();
        r.retain(|(k, _)| k != "TabletNum");
        assert_eq!(
            Backend::from_row(&raw(&r)).unwrap_err(),
            "no column TabletNum"
        );
        let mut r = backend_row();
        r[0].1 = Some("abc".to_string());
        assert_eq!(
            Backend::from_row(&raw(&r)).unwrap_err(),
            "column BackendId: `abc` is not a number"
        );
        let mut r = backend_row();
        for (k, v) in r.iter_mut() {
            if k == "Status" {
                *v = Some("{oops".to_string());
            }
        }
        assert!(
            Backend::from_row(&raw(&r))
                .unwrap_err()
                .starts_with("column Status: not JSON")
        );
    }
}
