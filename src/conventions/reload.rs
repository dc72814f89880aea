//! Live conventions: the bundles reconciles use, replaced while the operator
//! runs when their files change, and never by a broken one.
//!
//! ## Sets and layers
//!
//! Conventions come in named sets. A cluster uses the set its
//! `doris.selectdb.com/conventions` annotation names, or `default`. Each
//! set's files are layered, later wins per file name:
//!
//! 1. the base: the defaults compiled into the binary, with the
//!    `--conventions-dir` folder laid over them;
//! 2. the ConfigMaps labelled `doris.selectdb.com/conventions=default`;
//! 3. for a named set, the ConfigMaps labelled with its name.
//!
//! Within one layer, ConfigMaps are applied in name order.
//!
//! ## Going live
//!
//! Whenever a layer changes, every set whose files changed is compiled,
//! canary-rendered against the built-in sample clusters and then against
//! every live cluster that uses the set; only then does it replace the
//! set's live bundle (an atomic swap: a reconcile sees the old bundle or the
//! new, never a mix). A candidate that fails leaves the last good bundle
//! live and is kept as the set's failure, located by file:line:col, until a
//! later candidate succeeds. Reloads are serialised, and each one reads all
//! layers as they are then, so quick successive edits end in the last.
//!
//! A set with no good bundle yet (its ConfigMaps were broken when the
//! operator started) has nothing live: its clusters are left as they are
//! and report why, rather than being planned with other conventions.
//!
//! The folder is watched with `notify`. Any change in it — including the
//! `..data` symlink swap kubelet performs when a mounted ConfigMap changes —
//! schedules one reload of the whole folder after a short quiet period.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use futures::future::BoxFuture;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{Mutex, broadcast, mpsc, watch};

use super::{ConventionBundle, ConventionSources};

/// How long the folder must be quiet before it is read.
pub const QUIET_PERIOD: Duration = Duration::from_millis(100);

/// The set a cluster uses when it names none.
pub const DEFAULT_SET: &str = "default";

/// On a DorisCluster: the convention set it uses. On a ConfigMap (as a
/// label): the set whose files it holds.
pub const SET_KEY: &str = "doris.selectdb.com/conventions";

/// The set a cluster with these annotations uses.
pub fn set_of(annotations: Option<&BTreeMap<String, String>>) -> &str {
    annotations
        .and_then(|a| a.get(SET_KEY))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SET)
}

/// The files of convention set `set`: `base`, then the ConfigMaps of the
/// default set, then (for a named set) its own ConfigMaps; within a layer
/// in ConfigMap name order, later wins per file name.
pub fn set_sources(
    base: ConventionSources,
    config_maps: &[ConfigMapLayer],
    set: &str,
) -> ConventionSources {
    let mut ordered: Vec<&ConfigMapLayer> = config_maps.iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    let layers = ordered.iter().filter(|c| c.set == DEFAULT_SET).chain(
        ordered
            .iter()
            .filter(|c| set != DEFAULT_SET && c.set == set),
    );
    let mut sources = base;
    for layer in layers {
        sources = sources.overlay_files(
            &format!("configmap {}", layer.name),
            layer.files.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    sources
}

/// Convention files held by one ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapLayer {
    /// `namespace/name`, as errors and Events name it.
    pub name: String,
    /// The set the files belong to (the ConfigMap's label value).
    pub set: String,
    /// File name → content.
    pub files: BTreeMap<String, String>,
}

/// Checks a candidate bundle against the live clusters that would use it:
/// `(set, bundle)` → the first failure.
pub type LiveCanary = Arc<
    dyn Fn(String, Arc<ConventionBundle>) -> BoxFuture<'static, Result<(), String>> + Send + Sync,
>;

/// Asks the API server which kinds it serves and records them (see
/// [`crate::plan::serve_kinds`]); called when a candidate makes an object
/// of a kind the operator cannot check.
pub type Discovery = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// One set's live bundle and the outcome of its last candidate.
#[derive(Clone, Default)]
pub struct SetState {
    /// The bundle its clusters are planned with; `None` while the set has
    /// never had a good one.
    pub live: Option<Arc<ConventionBundle>>,
    /// Why the last candidate was refused, while no later one succeeded.
    pub failure: Option<String>,
    /// The ConfigMaps its files come from.
    pub config_maps: Vec<String>,
    /// Revision of the last candidate considered (live or refused).
    tried: String,
    /// Live only until the first reload of all layers: refused then, it
    /// is dropped rather than kept as the last good bundle.
    provisional: bool,
}

/// What became of a set at a reload, for Events and metrics.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub set: String,
    pub config_maps: Vec<String>,
    /// The new live revision, or why the candidate was refused.
    pub result: Result<String, String>,
}

#[derive(Default)]
struct Layers {
    base: Option<Result<ConventionSources, String>>,
    config_maps: Vec<ConfigMapLayer>,
}

/// The live bundle of every set.
pub struct LiveConventions {
    sets: ArcSwap<BTreeMap<String, SetState>>,
    layers: Mutex<Layers>,
    canary: ArcSwapOption<LiveCanary>,
    discovery: ArcSwapOption<Discovery>,
    /// Bumped every time a set's bundle or failure changes.
    changes: watch::Sender<u64>,
    outcomes: broadcast::Sender<Outcome>,
}

impl LiveConventions {
    /// Starts with `bundle` live as the default set and as the base of
    /// every other set.
    pub fn new(bundle: ConventionBundle) -> Self {
        let base = bundle.sources().clone();
        let state = SetState {
            tried: bundle.revision().to_string(),
            live: Some(Arc::new(bundle)),
            ..SetState::default()
        };
        LiveConventions {
            sets: ArcSwap::from_pointee(BTreeMap::from([(DEFAULT_SET.to_string(), state)])),
            layers: Mutex::new(Layers {
                base: Some(Ok(base)),
                config_maps: Vec::new(),
            }),
            canary: ArcSwapOption::empty(),
            discovery: ArcSwapOption::empty(),
            changes: watch::channel(0).0,
            outcomes: broadcast::channel(64).0,
        }
    }

    /// The default set's live bundle.
    pub fn current(&self) -> Arc<ConventionBundle> {
        self.bundle_for(DEFAULT_SET)
            .expect("the default set starts live and stays live until the ConfigMaps are read")
    }

    /// Why the default set's last candidate was refused.
    pub fn failure(&self) -> Option<String> {
        self.failure_for(DEFAULT_SET)
    }

    /// The bundle to plan a cluster of `set` with now, or why there is none.
    pub fn bundle_for(&self, set: &str) -> Result<Arc<ConventionBundle>, String> {
        match self.sets.load().get(set) {
            Some(SetState {
                live: Some(bundle), ..
            }) => Ok(bundle.clone()),
            Some(SetState { failure, .. }) => Err(format!(
                "convention set {set:?} has no working version yet: {}",
                failure.as_deref().unwrap_or("not loaded")
            )),
            None => Err(format!(
                "convention set {set:?} does not exist: no ConfigMap is labelled {SET_KEY}={set}"
            )),
        }
    }

    /// Why `set`'s last candidate was refused, while no later one succeeded.
    pub fn failure_for(&self, set: &str) -> Option<String> {
        self.sets.load().get(set).and_then(|s| s.failure.clone())
    }

    /// Every set, as it stands.
    pub fn sets(&self) -> Arc<BTreeMap<String, SetState>> {
        self.sets.load_full()
    }

    /// Notified each time a set's bundle or failure changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Every reload's outcome per changed set.
    pub fn outcomes(&self) -> broadcast::Receiver<Outcome> {
        self.outcomes.subscribe()
    }

    /// From now on, candidates must also plan every live cluster that would
    /// use them.
    pub fn set_canary(&self, canary: LiveCanary) {
        self.canary.store(Some(Arc::new(canary)));
    }

    /// From now on, a candidate making an object of a kind the operator
    /// cannot check asks the API server whether it serves that kind.
    pub fn set_discovery(&self, discovery: Discovery) {
        self.discovery.store(Some(Arc::new(discovery)));
    }

    /// The ConfigMap layers are about to be read for the first time: what
    /// is live now only stands in until then.
    pub fn expect_config_maps(&self) {
        let mut sets = (**self.sets.load()).clone();
        for state in sets.values_mut() {
            state.provisional = true;
        }
        self.sets.store(Arc::new(sets));
    }

    /// Replaces the base layer (the defaults with the folder over them) and
    /// reloads. Returns whether any set got a new live bundle.
    pub async fn offer(&self, base: Result<ConventionSources, String>) -> bool {
        let mut layers = self.layers.lock().await;
        layers.base = Some(base);
        self.reload(&layers).await
    }

    /// Replaces the ConfigMap layers and reloads. Returns whether any set
    /// got a new live bundle.
    pub async fn offer_config_maps(&self, mut config_maps: Vec<ConfigMapLayer>) -> bool {
        config_maps.sort_by(|a, b| a.name.cmp(&b.name));
        let mut layers = self.layers.lock().await;
        layers.config_maps = config_maps;
        self.reload(&layers).await
    }

    async fn reload(&self, layers: &Layers) -> bool {
        let previous = self.sets.load_full();
        let mut next = BTreeMap::new();
        let mut outcomes = Vec::new();
        let names: BTreeSet<&str> = std::iter::once(DEFAULT_SET)
            .chain(layers.config_maps.iter().map(|c| c.set.as_str()))
            .collect();
        for set in names {
            let mut state = previous.get(set).cloned().unwrap_or_default();
            state.config_maps = layers
                .config_maps
                .iter()
                .filter(|c| c.set == DEFAULT_SET || c.set == set)
                .map(|c| c.name.clone())
                .collect();
            let result = match self.candidate(set, layers, &state).await {
                Ok(Candidate::SameAsLive) => {
                    // Back to the live files: any refusal is over.
                    state.tried = state
                        .live
                        .as_ref()
                        .map(|b| b.revision().to_string())
                        .unwrap_or_default();
                    state.provisional = false;
                    state.failure.take().map(|_| Ok(state.tried.clone()))
                }
                Ok(Candidate::AlreadyRefused) => None,
                Ok(Candidate::New(bundle)) => {
                    tracing::info!(
                        set,
                        from = state.live.as_ref().map(|b| b.revision().to_string()),
                        to = bundle.revision(),
                        "new conventions live"
                    );
                    state.tried = bundle.revision().to_string();
                    state.live = Some(bundle);
                    state.failure = None;
                    state.provisional = false;
                    Some(Ok(state.tried.clone()))
                }
                Err((revision, message)) => {
                    if state.provisional {
                        state.live = None;
                        state.provisional = false;
                    }
                    tracing::error!(
                        set,
                        live = state.live.as_ref().map(|b| b.revision().to_string()),
                        "conventions refused, the last good ones stay live: {message}"
                    );
                    state.tried = revision;
                    state.failure = Some(message.clone());
                    Some(Err(message))
                }
            };
            if let Some(result) = result {
                outcomes.push(Outcome {
                    set: set.to_string(),
                    config_maps: state.config_maps.clone(),
                    result,
                });
            }
            next.insert(set.to_string(), state);
        }
        let went_live = outcomes.iter().any(|o| o.result.is_ok());
        let changed = next.len() != previous.len()
            || next.iter().any(|(set, state)| {
                previous.get(set).is_none_or(|old| {
                    old.failure != state.failure
                        || old.live.as_ref().map(|b| b.revision().to_string())
                            != state.live.as_ref().map(|b| b.revision().to_string())
                })
            });
        self.sets.store(Arc::new(next));
        for outcome in outcomes {
            let _ = self.outcomes.send(outcome);
        }
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
        went_live
    }

    /// The set's new bundle if its files changed and pass every check;
    /// `None` when there is nothing new to try.
    async fn candidate(
        &self,
        set: &str,
        layers: &Layers,
        state: &SetState,
    ) -> Result<Candidate, (String, String)> {
        let base = match &layers.base {
            Some(Ok(base)) => base.clone(),
            Some(Err(e)) => return Err((String::new(), e.clone())),
            None => ConventionSources::embedded(),
        };
        let sources = set_sources(base, &layers.config_maps, set);
        let revision = sources.revision();
        let live = state.live.as_ref().map(|b| b.revision());
        if live == Some(revision.as_str()) {
            return Ok(Candidate::SameAsLive);
        }
        if revision == state.tried && state.failure.is_some() && !state.provisional {
            return Ok(Candidate::AlreadyRefused);
        }
        let fail = |message: String| (revision.clone(), message);
        let bundle = ConventionBundle::compile(sources).map_err(|errors| {
            fail(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        for warning in bundle.contract_warnings() {
            tracing::warn!(set, "{warning}");
        }
        let mut sampled = crate::samples::canary(&bundle);
        if let Err(e) = &sampled
            && e.contains(crate::plan::UNSERVED_KIND)
            && let Some(discover) = self.discovery.load_full()
        {
            // A kind the API server may have started serving since it was
            // last asked (a CRD installed for it): ask again, once.
            discover().await;
            sampled = crate::samples::canary(&bundle);
        }
        sampled.map_err(|e| fail(format!("the new conventions fail on a sample cluster: {e}")))?;
        let bundle = Arc::new(bundle);
        if let Some(canary) = self.canary.load_full() {
            canary(set.to_string(), bundle.clone())
                .await
                .map_err(|e| fail(format!("the new conventions fail on a live cluster: {e}")))?;
        }
        Ok(Candidate::New(bundle))
    }
}

enum Candidate {
    /// The set's files are those already live.
    SameAsLive,
    /// The set's files are those last refused.
    AlreadyRefused,
    New(Arc<ConventionBundle>),
}

/// `sources` as a ConfigMap holding convention set `set`, as YAML.
pub fn config_map_yaml(
    sources: &ConventionSources,
    set: &str,
    name: &str,
    namespace: &str,
) -> String {
    let data: BTreeMap<&str, &str> = sources
        .files
        .iter()
        .map(|(name, file)| (name.as_str(), file.content.as_str()))
        .collect();
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { SET_KEY: set },
            "annotations": { "doris.selectdb.com/conventions-revision": sources.revision() },
        },
        "data": data,
    });
    let yaml = serde_norway::to_string(&config_map).expect("a ConfigMap serialises");
    format!(
        "# Convention set {set:?}: edit and apply, the operator reloads it within seconds.\n\
         # A file here replaces the embedded default of the same name, or refines\n\
         # it (fn shape(ctx, below): see examples/conventions/); a named set is laid\n\
         # over the default set. A broken file is refused and reported, and the\n\
         # last good version stays live. Made by `doris-operator policy export`.\n{yaml}"
    )
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
            live.offer(read_dir(&dir)).await;
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
