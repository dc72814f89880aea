//! How the operator reaches a cluster's FE: the FE access Service on its
//! query port, as the management user the spec names (the `authSecret`
//! Secret, else the deprecated `adminUser`, else `root` with no password).
//! The password is read when needed and never logged.
//!
//! When the cluster's rendered `fe.conf` says `enable_tls = true`, the FE is
//! reached over TLS: the CA, the client certificate and its key are the
//! files `tls_ca_certificate_path`, `tls_certificate_path` and
//! `tls_private_key_path` name, read from the `feSpec.secrets[]` Secret
//! mounted at each file's directory (the key is the file's base name), as
//! the FE pods see them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde_json::Value;

use crate::cluster::{ClusterRef, Part};
use crate::conf::ConfFile;
use crate::crd::ComponentKind;
use crate::doris::{FeClient, FeClientConfig, FeEndpoint, FeTls, Mode, Profile, Release};

/// Replaces the address (not the credentials) of a cluster's FE: for tests,
/// and for operators that reach FEs through something other than cluster DNS.
/// The second argument is which FE: `None` for any (the FE access
/// Service), `Some(host)` for the FE pod with that stable DNS name, when a
/// statement acts on the FE it reaches only.
pub type FeResolver =
    Arc<dyn Fn(ClusterRef<'_>, Option<&str>) -> Option<(String, u16)> + Send + Sync>;

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
    cluster: ClusterRef<'_>,
    objects: &[Value],
    resolver: Option<&FeResolver>,
) -> Result<FeClient, String> {
    client_of(kube, cluster, objects, resolver, None).await
}

/// A client of one FE: the pod `pod_host` names (its stable DNS name under
/// the FE StatefulSet's governing Service), on the access Service's query
/// port. For statements that act on the FE they reach only.
pub async fn pod_client(
    kube: &Client,
    cluster: ClusterRef<'_>,
    objects: &[Value],
    resolver: Option<&FeResolver>,
    pod_host: &str,
) -> Result<FeClient, String> {
    client_of(kube, cluster, objects, resolver, Some(pod_host)).await
}

async fn client_of(
    kube: &Client,
    cluster: ClusterRef<'_>,
    objects: &[Value],
    resolver: Option<&FeResolver>,
    pod_host: Option<&str>,
) -> Result<FeClient, String> {
    let namespace = cluster.namespace();
    let fe = fe_part(cluster)?;
    let service = fe.names.access_service.clone();
    let port = query_port(objects, &service).unwrap_or(DEFAULT_QUERY_PORT);
    let (host, port) = match resolver.and_then(|r| r(cluster, pod_host)) {
        Some(addr) => addr,
        None => match pod_host {
            Some(pod) => (pod.to_string(), port),
            None => (format!("{service}.{namespace}.svc"), port),
        },
    };
    let (user, password) = credentials(kube, cluster, &namespace).await?;
    let mut endpoint = FeEndpoint::new(host)
        .with_port(port)
        .with_credentials(user, password);
    if let Some(files) = tls_files(&fe, objects)? {
        endpoint = endpoint.with_tls(tls(kube, &namespace, &files).await?);
    }
    Ok(FeClient::with_config(endpoint, client_config()))
}

/// The release each cluster's FE said it runs (`SELECT @@version_comment`),
/// with the FE image it ran then, by `namespace/name`: asked again when the
/// FE image changes, or after a statement the FE refused.
#[derive(Default)]
pub struct Releases(Mutex<HashMap<String, (String, Release)>>);

impl Releases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Release)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn cluster_key(cluster: ClusterRef<'_>) -> String {
    format!("{}/{}", cluster.namespace(), cluster.name())
}

impl super::Context {
    /// A client of the FE pod `pod_host` names; see [`pod_client`].
    pub async fn fe_pod_client(
        &self,
        cluster: ClusterRef<'_>,
        objects: &[Value],
        pod_host: &str,
    ) -> Result<FeClient, String> {
        pod_client(
            &self.client,
            cluster,
            objects,
            self.fe_resolver.as_ref(),
            pod_host,
        )
        .await
    }

    /// What `cluster`'s Doris takes: its mode (from the cluster's kind) and
    /// the release `fe` reports, kept while the FE image stays `image`. An
    /// FE that does not say leaves the release unknown (and is asked again
    /// next time): then only statements every release takes are sent.
    pub async fn fe_profile(&self, cluster: ClusterRef<'_>, image: &str, fe: &FeClient) -> Profile {
        let mode = match cluster {
            ClusterRef::Doris(_) => Mode::Integrated,
            ClusterRef::Disaggregated(_) => Mode::Cloud,
        };
        let key = cluster_key(cluster);
        let known = self
            .fe_releases
            .lock()
            .get(&key)
            .filter(|(ran, _)| ran == image)
            .map(|(_, release)| *release);
        let release = match known {
            Some(release) => Some(release),
            None => match fe.release().await {
                Ok(Some(release)) => {
                    self.fe_releases
                        .lock()
                        .insert(key, (image.to_string(), release));
                    Some(release)
                }
                Ok(None) | Err(_) => None,
            },
        };
        Profile::new(mode, release)
    }

    /// Forgets what `cluster`'s FE said its release is: after the FE
    /// refused a statement, it is asked again.
    pub fn forget_fe_release(&self, cluster: ClusterRef<'_>) {
        self.fe_releases.lock().remove(&cluster_key(cluster));
    }
}

/// One file of the FE's TLS material: the fe.conf key naming it, its path,
/// and where the operator reads it (Secret and key).
#[derive(Clone, Debug, PartialEq, Eq)]
struct TlsFile {
    conf_key: &'static str,
    path: String,
    secret: String,
    key: String,
}

/// The CA, certificate and key files, when the planned `fe.conf` enables TLS.
/// The cluster's FE part.
fn fe_part(cluster: ClusterRef<'_>) -> Result<Part<'_>, String> {
    cluster
        .parts()
        .into_iter()
        .find(|p| p.kind == ComponentKind::Fe)
        .ok_or_else(|| "the cluster has no FE".to_string())
}

fn tls_files(fe: &Part<'_>, objects: &[Value]) -> Result<Option<[TlsFile; 3]>, String> {
    let config_map = fe.names.config_map.clone();
    let Some(text) = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == config_map.as_str())
        .and_then(|o| o["data"]["fe.conf"].as_str())
    else {
        return Ok(None);
    };
    let conf = ConfFile::parse(text);
    if !conf
        .get("enable_tls")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Ok(None);
    }
    let secrets = fe.base.secrets.clone().unwrap_or_default();
    let field = &fe.field;
    let file = |conf_key: &'static str| -> Result<TlsFile, String> {
        let path = conf
            .get(conf_key)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!("fe.conf enables TLS (enable_tls = true) but sets no {conf_key}")
            })?;
        let (dir, base) = match path.rsplit_once('/') {
            Some((dir, base)) if !base.is_empty() => (if dir.is_empty() { "/" } else { dir }, base),
            _ => return Err(format!("fe.conf {conf_key} = {path}: not a file path")),
        };
        let mounted = secrets.iter().enumerate().find(|(_, s)| {
            let mount = s.mount_path.as_deref().unwrap_or("/etc/doris");
            mount.trim_end_matches('/') == dir.trim_end_matches('/')
        });
        let Some((i, mount)) = mounted else {
            return Err(format!(
                "fe.conf {conf_key} = {path}: no {field}.secrets[] entry is mounted at {dir}"
            ));
        };
        let secret = mount
            .secret_name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{field}.secrets[{i}] names no secretName"))?;
        Ok(TlsFile {
            conf_key,
            path: path.to_string(),
            secret,
            key: base.to_string(),
        })
    };
    Ok(Some([
        file("tls_ca_certificate_path")?,
        file("tls_certificate_path")?,
        file("tls_private_key_path")?,
    ]))
}

/// Reads the TLS material from its Secrets. Every error names the Secret
/// and the key.
async fn tls(kube: &Client, namespace: &str, files: &[TlsFile; 3]) -> Result<FeTls, String> {
    let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let mut read = Vec::new();
    let mut secrets: Vec<(String, Secret)> = Vec::new();
    for file in files {
        if !secrets.iter().any(|(name, _)| *name == file.secret) {
            let found = api
                .get_opt(&file.secret)
                .await
                .map_err(|e| {
                    format!(
                        "reading Secret {} (for {}): {e}",
                        file.secret, file.conf_key
                    )
                })?
                .ok_or_else(|| {
                    format!(
                        "Secret {} (for {} {}) does not exist",
                        file.secret, file.conf_key, file.path
                    )
                })?;
            secrets.push((file.secret.clone(), found));
        }
        let secret = &secrets
            .iter()
            .find(|(name, _)| *name == file.secret)
            .expect("read")
            .1;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&file.key))
            .map(|b| b.0.clone())
            .ok_or_else(|| {
                format!(
                    "Secret {} has no key {} (for {} {})",
                    file.secret, file.key, file.conf_key, file.path
                )
            })?;
        read.push(bytes);
    }
    let [ca, cert, key]: [Vec<u8>; 3] = read.try_into().expect("three files");
    FeTls::new(ca, cert, key).map_err(|e| {
        let file = &files[match e.which {
            "ca" => 0,
            "cert" => 1,
            _ => 2,
        }];
        format!(
            "Secret {} key {} (for {}): {}",
            file.secret, file.key, file.conf_key, e.why
        )
    })
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
pub(crate) async fn credentials(
    kube: &Client,
    cluster: ClusterRef<'_>,
    namespace: &str,
) -> Result<(String, String), String> {
    if let Some(secret) = cluster.auth_secret().filter(|s| !s.is_empty()) {
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
    if let Some(admin) = cluster.admin_user() {
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
    use crate::crd::DorisCluster;
    use serde_json::json;

    fn tls_of(cluster: &DorisCluster, objects: &[Value]) -> Result<Option<[TlsFile; 3]>, String> {
        tls_files(&fe_part(ClusterRef::Doris(cluster)).unwrap(), objects)
    }

    fn cluster_with_secrets(secrets: Value) -> DorisCluster {
        serde_json::from_value(json!({
            "apiVersion": "doris.selectdb.com/v1", "kind": "DorisCluster",
            "metadata": {"name": "d", "namespace": "ns"},
            "spec": {"feSpec": {"image": "fe", "secrets": secrets}},
        }))
        .unwrap()
    }

    fn fe_conf(text: &str) -> Vec<Value> {
        vec![
            json!({"kind": "ConfigMap", "metadata": {"name": "d-fe-conf"},
                    "data": {"fe.conf": text}}),
        ]
    }

    const TLS_CONF: &str = "enable_tls = true\ntls_ca_certificate_path = /etc/tls/ca.pem\ntls_certificate_path = /etc/tls/fe.crt\ntls_private_key_path = \"/etc/tls/fe.key\"\n";

    #[test]
    fn tls_files_come_from_the_secret_mounted_at_their_directory() {
        let cluster = cluster_with_secrets(json!([
            {"secretName": "other", "mountPath": "/etc/other"},
            {"secretName": "fe-tls", "mountPath": "/etc/tls/"},
        ]));
        let files = tls_of(&cluster, &fe_conf(TLS_CONF)).unwrap().unwrap();
        let found: Vec<_> = files
            .iter()
            .map(|f| (f.secret.as_str(), f.key.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("fe-tls", "ca.pem"),
                ("fe-tls", "fe.crt"),
                ("fe-tls", "fe.key")
            ]
        );
        // Without enable_tls, or with it false: plain MySQL.
        let plain = fe_conf("tls_ca_certificate_path = /etc/tls/ca.pem\n");
        assert_eq!(tls_of(&cluster, &plain).unwrap(), None);
        let off = fe_conf(&TLS_CONF.replace("= true", "= false"));
        assert_eq!(tls_of(&cluster, &off).unwrap(), None);
    }

    #[test]
    fn tls_settings_that_lead_nowhere_are_errors_naming_what_is_missing() {
        let unmounted = cluster_with_secrets(json!([{"secretName": "x", "mountPath": "/etc/x"}]));
        let e = tls_of(&unmounted, &fe_conf(TLS_CONF)).unwrap_err();
        assert_eq!(
            e,
            "fe.conf tls_ca_certificate_path = /etc/tls/ca.pem: no spec.feSpec.secrets[] entry is mounted at /etc/tls"
        );
        let mounted = cluster_with_secrets(json!([{"secretName": "t", "mountPath": "/etc/tls"}]));
        let no_key = fe_conf(&TLS_CONF.replace("tls_private_key_path", "# tls_private_key_path"));
        let e = tls_of(&mounted, &no_key).unwrap_err();
        assert!(e.contains("sets no tls_private_key_path"), "{e}");
    }

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
