//! `version`: this binary's version, and what the cluster runs beside it —
//! the operator's Deployment (its image tag, else its
//! `app.kubernetes.io/version` label) and the CustomResourceDefinitions
//! (their `doris.selectdb.com/operator-version` label) — with a warning
//! for each that is not this binary's version, since a plugin or a
//! `render` of another version plans what that operator would not.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::KindArg;
use crate::build_info::{self, CRD_VERSION_LABEL};

/// The label the operator's Deployment and pods carry (deploy/).
pub const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=doris-operator";

/// The Deployment label that may say the operator's version.
pub const APP_VERSION_LABEL: &str = "app.kubernetes.io/version";

/// An operator Deployment found in the operator's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorFound {
    /// `namespace/name`.
    pub deployment: String,
    /// The operator container's image.
    pub image: Option<String>,
    /// Its version, from the image tag or the version label.
    pub version: Option<String>,
    /// Ready replicas and replicas wanted.
    pub ready: (i32, i32),
}

/// What the cluster says of one CustomResourceDefinition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrdFound {
    /// Installed, with the version its label gives (none without the label).
    Installed(Option<String>),
    NotInstalled,
    /// It could not be read (no permission, say).
    Unreadable(String),
}

/// What the cluster runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersions {
    pub operator_namespace: String,
    /// The operator Deployments, or why they could not be listed.
    pub operators: Result<Vec<OperatorFound>, String>,
    /// Each CRD by name.
    pub crds: Vec<(String, CrdFound)>,
}

/// Reads the operator's Deployments in `operator_namespace` and the two
/// CustomResourceDefinitions. What cannot be read is said in the result,
/// not an error, so the rest is still shown.
pub async fn observe(client: &Client, operator_namespace: &str) -> ServerVersions {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), operator_namespace);
    let operators = deployments
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await
        .map(|list| list.items.iter().map(operator_found).collect())
        .map_err(|e| e.to_string());
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crds = Vec::new();
    for kind in [KindArg::Dcr, KindArg::Ddc] {
        let name = kind.crd_name();
        let found = match api.get_opt(&name).await {
            Ok(Some(crd)) => CrdFound::Installed(crd.labels().get(CRD_VERSION_LABEL).cloned()),
            Ok(None) => CrdFound::NotInstalled,
            Err(e) => CrdFound::Unreadable(e.to_string()),
        };
        crds.push((name, found));
    }
    ServerVersions {
        operator_namespace: operator_namespace.to_string(),
        operators,
        crds,
    }
}

fn operator_found(deployment: &Deployment) -> OperatorFound {
    let containers = deployment
        .spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    // The container of deploy/20-deployment.yaml, else the first.
    let image = containers
        .iter()
        .find(|c| c.name == "operator")
        .or(containers.first())
        .and_then(|c| c.image.clone());
    let version = image
        .as_deref()
        .and_then(image_version)
        .or_else(|| deployment.labels().get(APP_VERSION_LABEL).cloned());
    let status = deployment.status.as_ref();
    OperatorFound {
        deployment: format!(
            "{}/{}",
            deployment.namespace().unwrap_or_default(),
            deployment.name_any()
        ),
        image,
        version,
        ready: (
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
            deployment.spec.replicas.unwrap_or(1),
        ),
    }
}

/// The version an image's tag names: `registry:5000/doris-operator:v0.2.1`
/// is 0.2.1; a tag that is not a version (`latest`, a digest) names none.
pub fn image_version(image: &str) -> Option<String> {
    let image = image.split('@').next()?;
    let (repository, tag) = image.rsplit_once(':')?;
    if tag.contains('/') || repository.is_empty() {
        // The colon was a registry's port.
        return None;
    }
    let version = tag.strip_prefix('v').unwrap_or(tag);
    // MAJOR.MINOR[.PATCH], then maybe -PRERELEASE or +BUILD.
    let core: Vec<&str> = version.split(['-', '+']).next()?.split('.').collect();
    let numeric = core
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ((2..=3).contains(&core.len()) && numeric).then(|| version.to_string())
}

/// The client's line, as `--client` prints it.
pub fn client_line() -> String {
    format!("Client Version: {}", build_info::describe())
}

/// The lines about the cluster, and a warning for each version that is not
/// `ours`.
pub fn report(ours: &str, server: &ServerVersions) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut warnings = Vec::new();
    let ns = &server.operator_namespace;
    match &server.operators {
        Err(e) => text.push_str(&format!(
            "Operator Version: unknown (listing the Deployments in namespace {ns}: {e})\n"
        )),
        Ok(found) if found.is_empty() => text.push_str(&format!(
            "Operator Version: not found (no Deployment labelled {OPERATOR_SELECTOR} in \
             namespace {ns}; --operator-namespace names the operator's)\n"
        )),
        Ok(found) => {
            for operator in found {
                let image = operator.image.as_deref().unwrap_or("none");
                let (ready, wanted) = operator.ready;
                let place = format!(
                    "Deployment {}, image {image}, {ready}/{wanted} ready",
                    operator.deployment
                );
                match &operator.version {
                    Some(version) => {
                        text.push_str(&format!("Operator Version: {version} ({place})\n"));
                        if version != ours {
                            warnings.push(format!(
                                "the operator (Deployment {}) runs {version}, this binary is \
                                 {ours}: what it previews and plans is {ours}'s",
                                operator.deployment
                            ));
                        }
                    }
                    None => text.push_str(&format!(
                        "Operator Version: unknown ({place}: neither the image tag nor a \
                         {APP_VERSION_LABEL} label names a version)\n"
                    )),
                }
            }
        }
    }
    for (name, found) in &server.crds {
        match found {
            CrdFound::Installed(Some(version)) => {
                text.push_str(&format!("CRD {name}: {version}\n"));
                if version != ours {
                    warnings.push(format!(
                        "the CRD {name} is {version}'s, this binary is {ours}: fields one of \
                         them knows the other may not (`doris-operator crd` prints {ours}'s)"
                    ));
                }
            }
            CrdFound::Installed(None) => text.push_str(&format!(
                "CRD {name}: unknown (no {CRD_VERSION_LABEL} label: installed by another \
                 operator, or by an older doris-operator)\n"
            )),
            CrdFound::NotInstalled => text.push_str(&format!("CRD {name}: not installed\n")),
            CrdFound::Unreadable(e) => {
                text.push_str(&format!("CRD {name}: unknown (reading it: {e})\n"))
            }
        }
    }
    (text, warnings)
}

/// Prints the client's version, then the cluster's, with a warning on
/// stderr for each that differs. An unreachable cluster is an error, once
/// the client's line is out.
pub async fn run(connection: &super::Connection, operator_namespace: &str) -> Result<(), String> {
    println!("{}", client_line());
    let (client, _) = super::connect(connection).await?;
    let server = observe(&client, operator_namespace).await;
    let (text, warnings) = report(build_info::VERSION, &server);
    print!("{text}");
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    match &server.operators {
        Err(e)
            if server
                .crds
                .iter()
                .all(|(_, found)| matches!(found, CrdFound::Unreadable(_))) =>
        {
            Err(format!("the cluster answered nothing: {e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_tag_names_a_version_when_it_is_one() {
        for (image, version) in [
            ("doris-operator:0.1.0", Some("0.1.0")),
            (
                "registry.example:5000/team/doris-operator:v0.2.1",
                Some("0.2.1"),
            ),
            ("doris-operator:1.2", Some("1.2")),
            ("doris-operator:0.3.0-rc.1", Some("0.3.0-rc.1")),
            ("doris-operator:0.1.0@sha256:abcd", Some("0.1.0")),
            ("doris-operator:latest", None),
            ("doris-operator", None),
            ("registry.example:5000/doris-operator", None),
            ("doris-operator@sha256:abcd", None),
            ("doris-operator:1.2.3.4", None),
            ("doris-operator:build-17", None),
        ] {
            assert_eq!(image_version(image).as_deref(), version, "{image}");
        }
    }

    fn server(operator: Option<&str>, crd: CrdFound) -> ServerVersions {
        ServerVersions {
            operator_namespace: "doris-operator".into(),
            operators: Ok(operator
                .map(|version| OperatorFound {
                    deployment: "doris-operator/doris-operator".into(),
                    image: Some(format!("doris-operator:{version}")),
                    version: Some(version.into()),
                    ready: (2, 2),
                })
                .into_iter()
                .collect()),
            crds: vec![
                ("dorisclusters.doris.selectdb.com".into(), crd),
                (
                    "dorisdisaggregatedclusters.disaggregated.cluster.doris.com".into(),
                    CrdFound::NotInstalled,
                ),
            ],
        }
    }

    #[test]
    fn the_same_versions_say_so_without_a_warning() {
        let (text, warnings) = report(
            "0.1.0",
            &server(Some("0.1.0"), CrdFound::Installed(Some("0.1.0".into()))),
        );
        assert_eq!(
            text,
            "Operator Version: 0.1.0 (Deployment doris-operator/doris-operator, image \
             doris-operator:0.1.0, 2/2 ready)\n\
             CRD dorisclusters.doris.selectdb.com: 0.1.0\n\
             CRD dorisdisaggregatedclusters.disaggregated.cluster.doris.com: not installed\n"
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn other_versions_are_warned_of() {
        let (_, warnings) = report(
            "0.1.0",
            &server(Some("0.0.9"), CrdFound::Installed(Some("0.0.8".into()))),
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("runs 0.0.9, this binary is 0.1.0"));
        assert!(warnings[1].contains("dorisclusters.doris.selectdb.com is 0.0.8's"));
    }

    #[test]
    fn what_is_missing_or_unlabelled_is_said() {
        let (text, warnings) = report("0.1.0", &server(None, CrdFound::Installed(None)));
        assert!(
            text.contains("Operator Version: not found (no Deployment labelled"),
            "{text}"
        );
        assert!(
            text.contains("CRD dorisclusters.doris.selectdb.com: unknown (no"),
            "{text}"
        );
        assert!(warnings.is_empty());
    }
}
