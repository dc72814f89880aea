//! How the operator reaches a cluster's FE: the FE access Service on its
//! query port, as the management user the spec names (the `authSecret`
//! Secret, else the deprecated `adminUser`, else `root` with no password).
//! The password is read when needed and never logged.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::crd::{ComponentKind, DorisCluster};
use crate::fe::{FeClient, FeClientConfig, FeEndpoint};
use crate::plan::names;

/// Replaces the address (not the credentials) of a cluster's FE: for tests,
/// and for operators that reach FEs through something other than cluster DNS.
pub type FeResolver = Arc<dyn Fn(&DorisCluster) -> Option<(String, u16)> + Send + Sync>;

/// The FE's query port when the planned access Service names none.
pub const DEFAULT_QUERY_PORT: u16 = 9030;

/// Bounds on one conversation with an FE during a reconcile: an FE that does
/// not answer delays a step, it must not hold a reconcile for long.
pub fn client_config() -> FeClientConfig {
    FeClientConfig {
        connect_timeout: Duration::from_secs(3),
        query_timeout: Duration::from_secs(10),
        // The next reconcile is the retry.
        retries: 0,
        retry_backoff: Duration::from_millis(200),
    }
}

/// A client of the cluster's FE. `objects` are the planned objects, whose
/// FE access Service gives the query port.
pub async fn client(
    kube: &Client,
    cluster: &DorisCluster,
    objects: &[Value],
    resolver: Option<&FeResolver>,
) -> Result<FeClient, String> {
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let service = names::access_service(&name, ComponentKind::Fe);
    let (host, port) = match resolver.and_then(|r| r(cluster)) {
        Some(addr) => addr,
        None => (
            format!("{service}.{namespace}.svc"),
            query_port(objects, &service).unwrap_or(DEFAULT_QUERY_PORT),
        ),
    };
    let (user, password) = credentials(kube, cluster, &namespace).await?;
    let endpoint = FeEndpoint::new(host)
        .with_port(port)
        .with_credentials(user, password);
    Ok(FeClient::with_config(endpoint, client_config()))
}

/// The `query-port` of the planned Service `service`.
fn query_port(objects: &[Value], service: &str) -> Option<u16> {
    let svc = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == service)?;
    svc["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "query-port")
        .and_then(|p| p["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// The management user and password, as apache/doris-operator reads them.
async fn credentials(
    kube: &Client,
    cluster: &DorisCluster,
    namespace: &str,
) -> Result<(String, String), String> {
    if let Some(secret) = cluster
        .spec
        .auth_secret
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
        let found = api
            .get_opt(secret)
            .await
            .map_err(|e| format!("reading Secret {secret} (spec.authSecret): {e}"))?
            .ok_or_else(|| format!("Secret {secret} (spec.authSecret) does not exist"))?;
        let field = |key: &str| {
            found
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        };
        return Ok((
            field("username")
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
            field("password").unwrap_or_default(),
        ));
    }
    if let Some(admin) = &cluster.spec.admin_user {
        return Ok((
            admin.name.clone().unwrap_or_else(|| "root".into()),
            admin.password.clone().unwrap_or_default(),
        ));
    }
    Ok(("root".into(), String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_port_comes_from_the_planned_access_service() {
        let objects = vec![
            json!({"kind": "Service", "metadata": {"name": "d-fe-internal"},
                   "spec": {"ports": [{"name": "query-port", "port": 1}]}}),
            json!({"kind": "Service", "metadata": {"name": "d-fe-service"},
                   "spec": {"ports": [{"name": "http-port", "port": 8030},
                                      {"name": "query-port", "port": 19030}]}}),
        ];
        assert_eq!(query_port(&objects, "d-fe-service"), Some(19030));
        assert_eq!(query_port(&objects, "other"), None);
    }
}
