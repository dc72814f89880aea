//! The admission rules of a real API server that the operator meets, as
//! the emulator applies them:
//!
//! - PersistentVolumeClaimResize: a claim may ask for more storage only if
//!   its StorageClass says `allowVolumeExpansion: true` (403 Forbidden
//!   otherwise, worded as the plugin words it); a bound claim's request
//!   never drops below its capacity (422, as validation says).
//! - PodSecurity: a pod must meet the level its namespace enforces
//!   (`pod-security.kubernetes.io/enforce`: privileged, baseline or
//!   restricted). Only the checks a Doris pod can trip are made: privileged
//!   containers, added capabilities beyond baseline's list, host
//!   namespaces and hostPath volumes, unsafe sysctls; and under restricted
//!   runAsNonRoot, allowPrivilegeEscalation, dropping ALL capabilities and
//!   a seccomp profile. Messages are worded as the real plugin words them.

use serde_json::Value;

use doris_operator::controller::volumes::bytes as quantity_bytes;

use super::Store;

pub const STORAGE_CLASSES: &str = "storage.k8s.io/v1/storageclasses";
pub const NAMESPACES: &str = "/v1/namespaces";
pub const PVCS: &str = "/v1/persistentvolumeclaims";
pub const PODS: &str = "/v1/pods";

/// Why an update of `old` to `new` in `resource` is refused: (HTTP code,
/// reason, message), or `None`.
pub(super) fn refuse_update(
    store: &Store,
    resource: &str,
    old: &Value,
    new: &Value,
) -> Option<(u16, &'static str, String)> {
    if resource != PVCS {
        return None;
    }
    let request = |v: &Value| {
        v["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .and_then(quantity_bytes)
    };
    let (Some(before), Some(after)) = (request(old), request(new)) else {
        return None;
    };
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let capacity = old["status"]["capacity"]["storage"]
        .as_str()
        .and_then(quantity_bytes);
    if capacity.is_some_and(|c| after < c) {
        return Some((
            422,
            "Invalid",
            format!(
                "PersistentVolumeClaim \"{name}\" is invalid: spec.resources.requests.storage: \
                 Forbidden: field can not be less than status.capacity"
            ),
        ));
    }
    if after <= before {
        return None;
    }
    let class = old["spec"]["storageClassName"].as_str().unwrap_or_default();
    let expandable = !class.is_empty()
        && store
            .objects
            .get(&(
                STORAGE_CLASSES.to_string(),
                String::new(),
                class.to_string(),
            ))
            .is_some_and(|sc| sc["allowVolumeExpansion"] == true);
    (!expandable).then(|| {
        (
            403,
            "Forbidden",
            format!(
                "persistentvolumeclaims \"{name}\" is forbidden: only dynamically provisioned \
                 pvc can be resized and the storageclass that provisions the pvc must support \
                 resize"
            ),
        )
    })
}

/// The Pod Security level `namespace` enforces.
pub(super) fn enforced_level(store: &Store, namespace: &str) -> String {
    store
        .objects
        .get(&(NAMESPACES.to_string(), String::new(), namespace.to_string()))
        .and_then(|ns| {
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "privileged".to_string())
}

/// Sysctls baseline allows (namespaced, and safe on a shared node).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Capabilities baseline lets a container add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Why PodSecurity refuses `pod` in a namespace enforcing `level`: the
/// message a real API server gives (`pods "x" is forbidden: violates
/// PodSecurity "baseline:latest": ...`), or `None`.
pub fn pod_security(level: &str, pod: &Value) -> Option<String> {
    if level != "baseline" && level != "restricted" {
        return None;
    }
    let spec = &pod["spec"];
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let names = |pick: &dyn Fn(&Value) -> bool| -> Vec<String> {
        containers
            .iter()
            .filter(|c| pick(c))
            .map(|c| format!("{:?}", c["name"].as_str().unwrap_or_default()))
            .collect()
    };
    let list = |names: &[String]| {
        if names.len() == 1 {
            format!("container {}", names[0])
        } else {
            format!("containers {}", names.join(", "))
        }
    };
    let mut violations = Vec::new();
    // baseline
    let host: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k] == true)
        .collect();
    if !host.is_empty() {
        violations.push(format!(
            "host namespaces ({})",
            host.iter()
                .map(|k| format!("{k}=true"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let privileged = names(&|c| c["securityContext"]["privileged"] == true);
    if !privileged.is_empty() {
        violations.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            list(&privileged)
        ));
    }
    let added: Vec<String> = containers
        .iter()
        .flat_map(|c| {
            c["securityContext"]["capabilities"]["add"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_str)
        .filter(|cap| level == "restricted" || !BASELINE_CAPABILITIES.contains(cap))
        .filter(|cap| !(level == "restricted" && *cap == "NET_BIND_SERVICE"))
        .map(|cap| format!("{cap:?}"))
        .collect();
    if !added.is_empty() {
        violations.push(format!(
            "{} (non-default capabilities {})",
            if level == "restricted" {
                "unrestricted capabilities"
            } else {
                "non-default capabilities"
            },
            added.join(", ")
        ));
    }
    let host_paths: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| format!("{:?}", v["name"].as_str().unwrap_or_default()))
        .collect();
    if !host_paths.is_empty() {
        violations.push(format!(
            "hostPath volumes (volume{} {})",
            if host_paths.len() == 1 { "" } else { "s" },
            host_paths.join(", ")
        ));
    }
    let unsafe_sysctls: Vec<String> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|s| !SAFE_SYSCTLS.contains(s))
        .map(|s| format!("{s:?}"))
        .collect();
    if !unsafe_sysctls.is_empty() {
        violations.push(format!("forbidden sysctls ({})", unsafe_sysctls.join(", ")));
    }
    if level == "restricted" {
        let pod_sc = &spec["securityContext"];
        let escalates = names(&|c| c["securityContext"]["allowPrivilegeEscalation"] != false);
        if !escalates.is_empty() {
            violations.push(format!(
                "allowPrivilegeEscalation != false ({} must set \
                 securityContext.allowPrivilegeEscalation=false)",
                list(&escalates)
            ));
        }
        let keeps_caps = names(&|c| {
            !c["securityContext"]["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        });
        if !keeps_caps.is_empty() {
            violations.push(format!(
                "unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])",
                list(&keeps_caps)
            ));
        }
        let root = names(&|c| {
            let own = &c["securityContext"]["runAsNonRoot"];
            !(own == true || (own.is_null() && pod_sc["runAsNonRoot"] == true))
        });
        if !root.is_empty() {
            violations.push(format!(
                "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                list(&root)
            ));
        }
        let seccomp_ok = |v: &Value| {
            matches!(
                v["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault" | "Localhost")
            )
        };
        let no_seccomp = names(&|c| {
            !(seccomp_ok(&c["securityContext"])
                || (c["securityContext"]["seccompProfile"].is_null() && seccomp_ok(pod_sc)))
        });
        if !no_seccomp.is_empty() {
            violations.push(format!(
                "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \
                 \"RuntimeDefault\" or \"Localhost\")",
                list(&no_seccomp)
            ));
        }
    }
    if violations.is_empty() {
        return None;
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    Some(format!(
        "pods \"{name}\" is forbidden: violates PodSecurity \"{level}:latest\": {}",
        violations.join(", ")
    ))
}
