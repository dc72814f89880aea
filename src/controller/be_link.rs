//! How the operator reaches a BE's (or CN's) HTTP webserver: the pod's IP
//! from its status, else its stable name under the StatefulSet's governing
//! Service, on the `webserver_port` of the rendered `be.conf` (8040 when it
//! sets none).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::conf::ConfFile;
use crate::doris::{BeClient, BeEndpoint};

/// Replaces the address a BE's webserver is connected to (not the `Host`
/// it is addressed as): for tests, and for operators that reach pods
/// through something other than the pod network.
pub type BeResolver = Arc<dyn Fn(&BeEndpoint) -> Option<String> + Send + Sync>;

/// The webserver port when `be.conf` names none.
pub const DEFAULT_WEBSERVER_PORT: u16 = 8040;

/// The webserver port the rendered `be.conf` text sets.
pub fn webserver_port(be_conf: &str) -> u16 {
    ConfFile::parse(be_conf)
        .get("webserver_port")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(DEFAULT_WEBSERVER_PORT)
}

/// Where `pod` of a StatefulSet governed by Service `service` is reached.
pub fn endpoint(pod: &Pod, service: &str, port: u16, resolver: Option<&BeResolver>) -> BeEndpoint {
    let name = pod.name_any();
    let namespace = pod.namespace().unwrap_or_default();
    let authority = format!("{name}.{service}.{namespace}.svc.cluster.local:{port}");
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty());
    let connect = match ip {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(ip) => format!("{ip}:{port}"),
        None => authority.clone(),
    };
    let mut endpoint = BeEndpoint { connect, authority };
    if let Some(replaced) = resolver.and_then(|r| r(&endpoint)) {
        endpoint.connect = replaced;
    }
    endpoint
}

/// A client of `pod`'s webserver.
pub fn client(pod: &Pod, service: &str, port: u16, resolver: Option<&BeResolver>) -> BeClient {
    BeClient::new(endpoint(pod, service, port, resolver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_is_reached_by_ip_and_addressed_by_its_stable_name() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "d-be-1", "namespace": "ns"},
            "status": {"podIP": "10.0.0.7"}
        }))
        .unwrap();
        let e = endpoint(&pod, "d-be-internal", 8041, None);
        assert_eq!(e.connect, "10.0.0.7:8041");
        assert_eq!(
            e.authority,
            "d-be-1.d-be-internal.ns.svc.cluster.local:8041"
        );
        let to_sim: BeResolver = Arc::new(|_| Some("127.0.0.1:9".into()));
        assert_eq!(endpoint(&pod, "s", 1, Some(&to_sim)).connect, "127.0.0.1:9");
        assert_eq!(webserver_port("webserver_port = 8050\n"), 8050);
        assert_eq!(webserver_port("be_port = 9060\n"), DEFAULT_WEBSERVER_PORT);
    }
}
