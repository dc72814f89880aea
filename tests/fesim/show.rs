//! `SHOW FRONTENDS` and `SHOW BACKENDS`, with the columns of the Doris
//! release simulated.

use super::sql::host_port;
use super::wire::Answer;
use super::{CloudTags, Columns, SimBackend, State, short_id};

pub(super) const SIM_TIME: &str = "2025-01-01 00:00:00";

pub(super) fn show_frontends(st: &State, query_port: u16) -> Answer {
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

pub(super) fn show_backends(st: &State) -> Answer {
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
                // Doris shows the role of live backends only
                // (fe/fe-core/src/main/java/org/apache/doris/common/proc/BackendsProcDir.java).
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
pub(super) fn backend_tag(cloud: Option<CloudTags>, be: &SimBackend) -> String {
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
pub(super) const SIM_INSTANCE_ID: &str = "1751150972";

/// The values of `columns`, in order; a NULL for one not in `values`.
pub(super) fn pick(columns: &[&str], values: &[(&str, String)]) -> Vec<Option<String>> {
    columns
        .iter()
        .map(|c| values.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()))
        .collect()
}
