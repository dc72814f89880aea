//! What the FE says about the nodes a rollout restarts, asked at most once
//! per reconcile: each FE's role, whether a node is alive, and stopping or
//! resuming queries and loads to a BE. A node is matched to its pod by the
//! host the FE lists it under, an FQDN or the pod's IP, whichever Doris
//! registered (see [`host_is_pod`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::cluster::ClusterRef;
use crate::crd::ComponentKind;
use crate::doris::{Backend, FeClient, FrontendRole};
use crate::plan::Plan;
use crate::plan::membership::host_is_pod;

use super::super::Context;

/// What the FE says, fetched at most once per reconcile.
pub(super) struct Fe<'a> {
    ctx: &'a Context,
    cluster: ClusterRef<'a>,
    plan: &'a Plan,
    client: Option<Result<FeClient, String>>,
    frontends: Option<Result<Vec<crate::doris::Frontend>, String>>,
    /// Cleared to ask again after a change.
    pub(super) backends: Option<Result<Vec<Backend>, String>>,
    /// Each pod's IP, by pod name: the FE lists nodes by IP when FQDN mode
    /// is off.
    pod_ips: BTreeMap<String, String>,
}

impl<'a> Fe<'a> {
    /// Nothing asked yet; `pods` are the cluster's.
    pub(super) fn new(
        ctx: &'a Context,
        cluster: ClusterRef<'a>,
        plan: &'a Plan,
        pods: &[Arc<Pod>],
    ) -> Self {
        Fe {
            ctx,
            cluster,
            plan,
            client: None,
            frontends: None,
            backends: None,
            pod_ips: pods
                .iter()
                .filter_map(|p| {
                    let ip = p.status.as_ref()?.pod_ip.clone()?;
                    Some((p.name_any(), ip))
                })
                .collect(),
        }
    }

    /// Whether the FE lists `host` for the node of `pod`.
    fn is_pod(&self, host: &str, pod: &str) -> bool {
        host_is_pod(host, pod, self.pod_ips.get(pod).map(String::as_str))
    }

    async fn client(&mut self) -> Result<FeClient, String> {
        if self.client.is_none() {
            self.client = Some(self.ctx.fe_client(self.cluster, &self.plan.objects).await);
        }
        self.client.clone().unwrap_or_else(|| Err(String::new()))
    }

    async fn frontends(&mut self) -> Result<Vec<crate::doris::Frontend>, String> {
        if self.frontends.is_none() {
            let got = match self.client().await {
                Ok(c) => c.show_frontends().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            self.frontends = Some(got);
        }
        self.frontends.clone().unwrap_or_else(|| Err(String::new()))
    }

    async fn backends(&mut self) -> Result<Vec<Backend>, String> {
        if self.backends.is_none() {
            let got = match self.client().await {
                Ok(c) => c.show_backends().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            self.backends = Some(got);
        }
        self.backends.clone().unwrap_or_else(|| Err(String::new()))
    }

    /// The FE role of an FE pod, when the FE answers.
    pub(super) async fn role(&mut self, pod: &str) -> Option<String> {
        let frontends = self.frontends().await.ok()?;
        let fe = frontends.iter().find(|f| self.is_pod(&f.host, pod))?;
        Some(
            match (&fe.role, fe.is_master) {
                (_, true) => "master",
                (FrontendRole::Follower, _) => "follower",
                (FrontendRole::Observer, _) => "observer",
                _ => return None,
            }
            .to_string(),
        )
    }

    /// Whether the FE lists the node of `pod` alive: `Err` says why not known.
    pub(super) async fn alive(&mut self, kind: ComponentKind, pod: &str) -> Result<bool, String> {
        match kind {
            ComponentKind::Fe => Ok(self
                .frontends()
                .await?
                .iter()
                .any(|f| self.is_pod(&f.host, pod) && f.alive)),
            ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg => Ok(self
                .backends()
                .await?
                .iter()
                .any(|b| self.is_pod(&b.host, pod) && b.alive)),
            // Brokers and meta services are not checked through the FE.
            ComponentKind::Broker | ComponentKind::Ms => Ok(true),
        }
    }

    /// Whether the FE takes `ALTER SYSTEM MODIFY BACKEND ... SET
    /// ("disable_query" ...)`: cloud mode refuses it ("Modifying backends
    /// is not supported in cloud mode",
    /// fe/fe-core/src/main/java/org/apache/doris/cloud/system/CloudSystemInfoService.java).
    /// A compute group's BE is then restarted without it: the image's
    /// pre-stop hook and Doris's graceful shutdown let its queries end.
    pub(super) fn drains_through_fe(&self) -> bool {
        self.cluster.doris_profile().can_modify_backends()
    }

    /// Stops (or resumes) queries and loads to the backend of `pod`; Ok
    /// when the FE does not know the pod (it gets no queries then).
    pub(super) async fn set_disabled(&mut self, pod: &str, disabled: bool) -> Result<bool, String> {
        let backends = self.backends().await?;
        let Some(be) = backends.iter().find(|b| self.is_pod(&b.host, pod)) else {
            return Ok(false);
        };
        let already = be.query_disabled == Some(disabled) && be.load_disabled == Some(disabled);
        if already || (!disabled && be.query_disabled.is_none() && be.load_disabled.is_none()) {
            return Ok(false);
        }
        let client = self.client().await?;
        client
            .set_backend_query_load(&be.host, be.heartbeat_port, disabled, disabled)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}
