//! Live conventions: the bundle every reconcile uses, replaced while the
//! operator runs when its files change, and never by a broken one.
//!
//! A candidate bundle is compiled and canary-rendered against the built-in
//! sample clusters; only then does it replace the live one (an atomic swap:
//! a reconcile sees the old bundle or the new, never a mix). A candidate that
//! fails leaves the last good bundle live and is kept as the current
//! failure, located by file:line:col, until a later candidate succeeds.
//!
//! The folder source is watched with `notify`. Any change in it — including
//! the `..data` symlink swap kubelet performs when a mounted ConfigMap
//! changes — schedules one reload of the whole folder after a short quiet
//! period, so quick successive edits end in the last one, read whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::{ConventionBundle, ConventionSources};

/// How long the folder must be quiet before it is read.
pub const QUIET_PERIOD: Duration = Duration::from_millis(100);

/// The live bundle and the outcome of the last reload.
pub struct LiveConventions {
    current: ArcSwap<ConventionBundle>,
    failure: ArcSwap<Option<String>>,
    /// Bumped every time a new bundle goes live.
    changes: watch::Sender<u64>,
}

impl LiveConventions {
    pub fn new(bundle: ConventionBundle) -> Self {
        LiveConventions {
            current: ArcSwap::from_pointee(bundle),
            failure: ArcSwap::from_pointee(None),
            changes: watch::channel(0).0,
        }
    }

    /// The bundle to plan with now.
    pub fn current(&self) -> Arc<ConventionBundle> {
        self.current.load_full()
    }

    /// Why the last candidate was refused, while no later one succeeded.
    pub fn failure(&self) -> Option<String> {
        self.failure.load().as_ref().clone()
    }

    /// Notified each time a new bundle goes live.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Compiles and canary-renders `sources`; makes them live if both
    /// succeed. Returns whether a new revision went live.
    pub fn offer(&self, sources: Result<ConventionSources, String>) -> bool {
        let candidate = sources.and_then(|sources| {
            if sources.revision() == self.current().revision() {
                return Ok(None);
            }
            let bundle = ConventionBundle::compile(sources).map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            crate::samples::canary(&bundle)
                .map_err(|e| format!("the new conventions fail on a sample cluster: {e}"))?;
            Ok(Some(bundle))
        });
        match candidate {
            Ok(None) => {
                self.failure.store(Arc::new(None));
                false
            }
            Ok(Some(bundle)) => {
                tracing::info!(
                    from = self.current().revision(),
                    to = bundle.revision(),
                    "new conventions live"
                );
                self.current.store(Arc::new(bundle));
                self.failure.store(Arc::new(None));
                self.changes.send_modify(|n| *n += 1);
                true
            }
            Err(message) => {
                tracing::error!(
                    live = self.current().revision(),
                    "conventions refused, the last good ones stay live: {message}"
                );
                self.failure.store(Arc::new(Some(message)));
                false
            }
        }
    }
}

/// Reads the embedded defaults with `dir` laid over them.
pub fn read_dir(dir: &Path) -> Result<ConventionSources, String> {
    ConventionSources::embedded()
        .overlay_dir(dir)
        .map_err(|e| e.to_string())
}

/// Watches `dir` and offers its content to `live` after every change, until
/// the returned guard is dropped.
pub fn watch_dir(dir: PathBuf, live: Arc<LiveConventions>) -> Result<DirWatch, String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait for a quiet moment: kubelet's swap and editors' saves
            // come as bursts of events.
            loop {
                match tokio::time::timeout(QUIET_PERIOD, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let sources = read_dir(&dir);
            live.offer(sources);
        }
    });
    Ok(DirWatch {
        _watcher: watcher,
        task,
    })
}

/// Keeps a folder watched; dropping it stops the watch.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
