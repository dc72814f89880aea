//! The steps that write the planned objects: server-side apply of what
//! changed, and deletion of what no longer is planned.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use crate::plan;

use super::super::{Error, apply, membership, status};
use super::report::{live_status_json, write_status};
use super::{DorisResource, Run, observe};

impl<K: DorisResource> Run<'_, K> {
    /// Server-side apply of what changed. A refusal by the API server is
    /// said in status and once as an Event; the error makes the controller
    /// retry later, as for any failed reconcile.
    pub(super) async fn step_apply(
        &self,
        planned: &plan::Plan,
        recreated: &[String],
        members: &mut Option<membership::Outcome>,
    ) -> Result<(), Error> {
        // A StatefulSet being made again waits until the old one is gone.
        let objects: std::borrow::Cow<'_, [Value]> = if recreated.is_empty() {
            std::borrow::Cow::Borrowed(&planned.objects)
        } else {
            std::borrow::Cow::Owned(
                planned
                    .objects
                    .iter()
                    .filter(|o| {
                        o["kind"] != "StatefulSet"
                            || !recreated
                                .iter()
                                .any(|r| o["metadata"]["name"] == r.as_str())
                    })
                    .cloned()
                    .collect(),
            )
        };
        // An uncached kind is remembered on the cluster before its first
        // object exists, so that pruning finds its objects later.
        let extra = apply::uncached_kinds(&self.ctx.stores, &planned.objects);
        let recorded = self.extra_kinds.lock().expect("lock").clone();
        if !extra.is_subset(&recorded) {
            self.record_kinds(recorded.union(&extra).cloned().collect())
                .await?;
        }
        let applied = match apply::apply_all(
            &self.ctx.client,
            &self.ctx.resources,
            &self.ctx.stores,
            &self.ctx.watched,
            &objects,
            &planned.autoscaled,
        )
        .await
        {
            Ok(applied) => applied,
            Err(Error::ApplyRefused(refusal)) => {
                let message = refusal.to_string();
                if !self.already_reported(&message) {
                    self.publish(EventType::Warning, "ApplyRefused", &message)
                        .await;
                }
                let pods = self.pods();
                let statefulsets = self.statefulsets(planned);
                let none = BTreeMap::new();
                let observed = observe(planned, &statefulsets, &pods, &none);
                let mut status = status::compute(
                    self.cluster,
                    &self.previous,
                    &observed,
                    &planned.revision,
                    self.conventions_failure.as_deref(),
                    Some(("ApplyRefused", message)),
                    &self.now,
                );
                status::keep_unobserved(&self.previous, &mut status);
                if let Some(decided) = members.take() {
                    // The FE was already asked this time: say what it answered.
                    for (type_, reason, note) in &decided.events {
                        self.publish(*type_, reason, note).await;
                    }
                    membership::fold_into_status(
                        self.cluster,
                        &self.previous,
                        &mut status,
                        &decided,
                        &self.now,
                    );
                }
                write_status(self.ctx, self.object, &status).await?;
                return Err(Error::ApplyRefused(refusal));
            }
            Err(e) => return Err(e),
        };
        if !applied.written.is_empty() {
            let note = format!("applied {}", applied.written.join(", "));
            // A new cluster's first objects are shown by its status,
            // written next: an Event says what changed on a cluster that
            // has one.
            let first = live_status_json(self.ctx, self.object).is_null();
            self.note_change(&planned.revision, &note, !first).await;
        }
        Ok(())
    }

    /// Deletes what a removed part, or a template that no longer makes an
    /// object, left; forgets an uncached kind once its last object is gone.
    pub(super) async fn step_prune(&self, planned: &plan::Plan) -> Result<(), Error> {
        let uid = self.object.uid().unwrap_or_default();
        let recorded = self.extra_kinds.lock().expect("lock").clone();
        let pruned = apply::prune(
            &self.ctx.client,
            &self.ctx.resources,
            &self.ctx.stores,
            &self.ctx.watched,
            &uid,
            &self.namespace,
            &planned.objects,
            &recorded,
        )
        .await?;
        if !pruned.deleted.is_empty() {
            let note = format!("deleted {}", pruned.deleted.join(", "));
            self.note_change(&planned.revision, &note, true).await;
        }
        if pruned.kinds_left != recorded {
            self.record_kinds(pruned.kinds_left).await?;
        }
        Ok(())
    }

    /// Remembers on the cluster the uncached kinds it has objects of (see
    /// [`apply::EXTRA_KINDS_ANNOTATION`]).
    async fn record_kinds(
        &self,
        kinds: std::collections::BTreeSet<apply::Kind>,
    ) -> Result<(), Error> {
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            apply::EXTRA_KINDS_ANNOTATION.into(),
            json!(apply::kinds_annotation(&kinds)),
        );
        let patch = json!({"metadata": {"annotations": annotations}});
        api.patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(Error::Kube)?;
        self.ctx.metrics.count_write(K::kind(&()).as_ref(), "patch");
        *self.extra_kinds.lock().expect("lock") = kinds;
        Ok(())
    }

    /// Logs what a reconcile changed, and says it in an Event if `publish`.
    async fn note_change(&self, revision: &str, note: &str, publish: bool) {
        tracing::info!(cluster = %self.name, namespace = %self.namespace, revision = %revision, "{note}");
        if publish {
            self.publish(EventType::Normal, "Applied", note).await;
        }
    }
}
