//! Checks of installable manifests (what `deploy/` and the Helm chart make)
//! that the kustomize and the chart tests share.

use serde_json::Value;

/// Reads `value` into `T`, refusing fields `T` does not have.
pub fn read_as<T: serde::de::DeserializeOwned>(value: &Value) -> Result<(), String> {
    let mut unknown = Vec::new();
    let _: T = serde_ignored::deserialize(value.clone(), |path| unknown.push(path.to_string()))
        .map_err(|e| e.to_string())?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("unknown fields {unknown:?}"))
    }
}

/// Every object of a built-in kind reads into its Kubernetes type: a typo
/// in a field would otherwise show only at `kubectl apply`. A Namespace is
/// a kind `what` may hold only when `namespaces` says so; `stranger` names
/// what made a kind none of them should.
pub fn check_types(what: &str, objects: &[Value], namespaces: bool, stranger: &str) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let checked = match kind {
            "Namespace" if namespaces => read_as::<Namespace>(object),
            "ServiceAccount" => read_as::<ServiceAccount>(object),
            "Service" => read_as::<Service>(object),
            "ConfigMap" => read_as::<ConfigMap>(object),
            "Deployment" => read_as::<Deployment>(object),
            "Role" => read_as::<Role>(object),
            "RoleBinding" => read_as::<RoleBinding>(object),
            "ClusterRole" => read_as::<ClusterRole>(object),
            "ClusterRoleBinding" => read_as::<ClusterRoleBinding>(object),
            "CustomResourceDefinition" => read_as::<CustomResourceDefinition>(object),
            "ServiceMonitor" | "PrometheusRule" => Ok(()),
            other => Err(format!("a kind {stranger} should not make: {other}")),
        };
        if let Err(e) = checked {
            panic!(
                "{what}: {kind} {}: {e}",
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
        }
    }
}
