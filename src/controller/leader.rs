//! Leader election through a Lease, so that two operator replicas never act
//! at once: a replica runs the controller only while it holds the Lease, and
//! stops (to be restarted and wait its turn) as soon as it loses it.

use std::future::Future;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

/// The Lease the replicas compete for.
pub const LEASE_NAME: &str = "doris-operator-leader";

/// Waits to hold the Lease in `namespace`, then runs `work` until
/// `shutdown` resolves or the Lease is lost. Returns whether the Lease was
/// lost (the caller should exit non-zero so the pod restarts).
pub async fn run_as_leader<W, Fut>(
    client: Client,
    namespace: &str,
    identity: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
    work: W,
) -> Result<bool, String>
where
    W: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .with_field_manager("doris-operator")
        .build()
        .await
        .map_err(|e| format!("leader election: {e}"))?;
    let (mut leading, _task) = manager.watch().await;
    tokio::pin!(shutdown);
    tracing::info!(lease = LEASE_NAME, %namespace, %identity, "waiting to lead");
    while !*leading.borrow_and_update() {
        tokio::select! {
            changed = leading.changed() => changed.map_err(|_| "leader election stopped".to_string())?,
            _ = &mut shutdown => return Ok(false),
        }
    }
    tracing::info!("leading: starting the controller");
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let lost = async {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow() {
                return;
            }
        }
    };
    let run = work(stopped);
    tokio::pin!(run);
    let mut lost_lease = false;
    tokio::select! {
        _ = &mut run => return Ok(false),
        _ = &mut shutdown => {}
        _ = lost => {
            tracing::error!("lost the Lease: stopping so another replica can lead");
            lost_lease = true;
        }
    }
    let _ = stop.send(());
    run.await;
    Ok(lost_lease)
}
