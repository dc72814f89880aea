//! What a rollout asks of the FE: the nodes it lists, whether a restarted
//! one is back, and stopping queries to a BE before its restart where Doris
//! takes that.

use crate::cluster::ClusterRef;
use crate::crd::ComponentKind;
use crate::doris::{Backend, FeClient, FrontendRole};
use crate::plan::Plan;

use super::super::Context;

/// What the FE says, fetched at most once per reconcile.
pub(super) struct Fe<'a> {
    pub(super) ctx: &'a Context,
    pub(super) cluster: ClusterRef<'a>,
    pub(super) plan: &'a Plan,
    pub(super) client: Option<Result<FeClient, String>>,
    pub(super) frontends: Option<Result<Vec<crate::doris::Frontend>, String>>,
    pub(super) backends: Option<Result<Vec<Backend>, String>>,
}

impl Fe<'_> {
    pub(super) async fn client(&mut self) -> Result<FeClient, String> {
        if self.client.is_none() {
            self.client = Some(self.ctx.fe_client(self.cluster, &self.plan.objects).await);
        }
        self.client.clone().unwrap_or_else(|| Err(String::new()))
    }

    pub(super) async fn frontends(&mut self) -> Result<Vec<crate::doris::Frontend>, String> {
        if self.frontends.is_none() {
            let got = match self.client().await {
                Ok(c) => c.show_frontends().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            self.frontends = Some(got);
        }
        self.frontends.clone().unwrap_or_else(|| Err(String::new()))
    }

    pub(super) async fn backends(&mut self) -> Result<Vec<Backend>, String> {
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
        let fe = frontends.iter().find(|f| first_label(&f.host) == pod)?;
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
                .any(|f| first_label(&f.host) == pod && f.alive)),
            ComponentKind::Be | ComponentKind::Cn | ComponentKind::Cg => Ok(self
                .backends()
                .await?
                .iter()
                .any(|b| first_label(&b.host) == pod && b.alive)),
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
        let Some(be) = backends.iter().find(|b| first_label(&b.host) == pod) else {
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

/// The first DNS label of a host: the pod name of an FQDN.
pub(super) fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}
