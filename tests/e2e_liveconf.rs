//! Configuration changes end to end: a key Doris may change at run time is
//! set on every running node (FE through SQL, each BE through its HTTP
//! webserver) without restarting a pod; a key it may not restarts the pods
//! in order; a change some node refuses, or that the FE cannot be asked
//! about, waits and is tried again, its ConfigMap kept as it was.
//!
//! The FE is the simulator in tests/fesim, the BEs' webservers the one in
//! tests/besim (one simulator for every BE, told apart by the `Host` the
//! operator addresses), and a member driver registers each Ready pod's node
//! with the FE as the images' entrypoints do.

mod apiserver;
mod besim;
mod env;
mod fesim;
mod members;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use besim::{BeSim, BeSimConfig};
use doris_operator::crd::{ConfigChangeStatus, DorisCluster};
use doris_operator::doris::Profile;
use env::{Env, eventually, wait_ready};
use fesim::{ConfigSet, FeSim, FeSimConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::runtime::watcher;
use members::MemberDriver;

const CLUSTER: &str = r#"
apiVersion: doris.selectdb.com/v1
kind: DorisCluster
metadata:
  name: doris
  annotations:
    doris.selectdb.com/drain-seconds: "1"
spec:
  enableRestartWhenConfigChange: true
  feSpec:
    replicas: 3
    image: apache/doris:fe-2.1.8
    configMapInfo:
      configMapName: fe-conf
  beSpec:
    replicas: 3
    image: apache/doris:be-2.1.8
    configMapInfo:
      configMapName: be-conf
"#;

const FE_CONF: &str = "qe_slow_log_ms = 5000\n";
const BE_CONF: &str = "disable_auto_compaction = false\nmem_limit = 90%\n";

struct Running {
    env: Env,
    /// The Doris the FE simulator plays.
    profile: Profile,
    fe: Arc<FeSim>,
    be: Arc<BeSim>,
    _members: MemberDriver,
    deletions: Arc<Mutex<Vec<String>>>,
    _watch: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The FE and BE simulators, the operator pointed at them, and the
    /// cluster Ready with its nodes registered.
    async fn start(test: &str) -> Running {
        Running::start_with(test, CLUSTER).await
    }

    async fn start_with(test: &str, cluster: &str) -> Running {
        Running::start_as(
            test,
            cluster,
            FeSimConfig::default(),
            BeSimConfig::default(),
            None,
        )
        .await
    }

    /// With the FE playing `fe_config`, BEs configured as `be`, and the
    /// operator logging in as the user and password of an `authSecret`
    /// when `auth` names them (the FE taking them, and nodes registering
    /// by their pods' IPs).
    async fn start_as(
        test: &str,
        cluster: &str,
        mut fe_config: FeSimConfig,
        be: BeSimConfig,
        auth: Option<(&str, &str)>,
    ) -> Running {
        let mut env = Env::without_operator(test).await;
        let mut cluster = cluster.to_string();
        if let Some((user, password)) = auth {
            fe_config.user = user.into();
            fe_config.password = password.into();
            put_auth_secret(&env, "doris-admin", user, password).await;
            cluster = cluster.replace("spec:\n", "spec:\n  authSecret: doris-admin\n");
        }
        let profile = fe_config.profile();
        let fe = members::simulated_fe(&mut env, fe_config, "doris").await;
        let be = Arc::new(BeSim::start_with(be).await);
        let addr = be.addr().to_string();
        env.be_resolver = Some(Arc::new(move |_| Some(addr.clone())));
        env.start_operator();
        let members = match auth {
            Some((user, password)) => {
                MemberDriver::start_by_ip(&env, fe.clone(), 3, user, password)
            }
            None => MemberDriver::start(&env, fe.clone(), 3),
        };
        env::put_file(&env, "fe-conf", "fe.conf", FE_CONF).await;
        env::put_file(&env, "be-conf", "be.conf", BE_CONF).await;
        env.create_cluster(&cluster).await;
        wait_ready(&env, "doris").await;
        members::members_synced(&env, "doris").await;
        // Pod restarts, in order, from now on (see env::Restarts).
        let deletions: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = deletions.clone();
        let pods = env.api::<Pod>();
        let watch = tokio::spawn(async move {
            let mut restarts = env::Restarts::default();
            let mut events = watcher(pods, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        restarts.seen(&pod);
                    }
                    Ok(watcher::Event::Delete(pod)) if restarts.is_restart(&pod) => {
                        seen.lock().unwrap().push(pod.name_any());
                    }
                    _ => {}
                }
            }
        });
        Running {
            env,
            profile,
            fe,
            be,
            _members: members,
            deletions,
            _watch: watch,
        }
    }

    /// Every FE has `key` = `value`, set by the statement the simulated
    /// release takes: one `ADMIN SET ALL FRONTENDS CONFIG` from 2.1.5 on,
    /// else `ADMIN SET FRONTEND CONFIG` on each FE's own connection.
    fn every_fe_took(&self, key: &str, value: &str) {
        let sets = self.fe.config_sets();
        let fes: Vec<String> = (0..3)
            .map(|i| members::fqdn(&self.env, &format!("doris-fe-{i}")))
            .collect();
        let set = |all: bool, frontend: &str| ConfigSet {
            all,
            key: key.into(),
            value: value.into(),
            frontend: frontend.into(),
        };
        if self.profile.sets_all_frontends_at_once() {
            assert_eq!(sets, [set(true, &fes[0])], "{}", self.profile);
        } else {
            let mut reached: Vec<ConfigSet> = sets.clone();
            reached.sort_by(|a, b| a.frontend.cmp(&b.frontend));
            let wanted: Vec<ConfigSet> = fes.iter().map(|fe| set(false, fe)).collect();
            assert_eq!(reached, wanted, "{}", self.profile);
            assert!(
                !self
                    .fe
                    .statements()
                    .iter()
                    .any(|q| q.contains("ALL FRONTENDS")),
                "{}",
                self.profile
            );
        }
        for fe in &fes {
            assert_eq!(self.fe.setting_on(fe, key).as_deref(), Some(value), "{fe}");
        }
    }

    /// Each pod's UID, by name.
    async fn pod_uids(&self) -> BTreeMap<String, String> {
        env::pod_uids(&self.env).await
    }

    async fn edit(&self, name: &str, file: &str, text: &str) {
        env::put_file(&self.env, name, file, text).await;
    }

    async fn edit_be(&self, text: &str) {
        self.edit("be-conf", "be.conf", text).await;
    }

    /// Waits for a restart to begin and the cluster to settle after it.
    async fn restarted(&self) {
        eventually("the restart to begin", 30, || async {
            (!self.deletions.lock().unwrap().is_empty()).then_some(())
        })
        .await;
        self.settled().await;
    }

    /// The rendered file the part's pods mount.
    async fn rendered(&self, part: &str) -> String {
        let cm = self
            .env
            .api::<ConfigMap>()
            .get(&format!("doris-{part}-conf"))
            .await
            .unwrap();
        let file = if part == "fe" { "fe.conf" } else { "be.conf" };
        cm.data.unwrap()[file].clone()
    }

    /// The status entry of `part` once it is in `state` with `check` true.
    async fn entry(
        &self,
        part: &str,
        state: &str,
        secs: u64,
        check: impl Fn(&ConfigChangeStatus) -> bool,
    ) -> ConfigChangeStatus {
        let api = self.env.api::<DorisCluster>();
        eventually(&format!("{part} configuration {state}"), secs, || async {
            let c = api.get("doris").await.ok()?;
            let entry = c
                .status?
                .configuration?
                .into_iter()
                .find(|e| e.component == part)?;
            (entry.state == state && check(&entry)).then_some(entry)
        })
        .await
    }

    /// Waits for the cluster to be Ready with no rollout in progress.
    async fn settled(&self) {
        let api = self.env.api::<DorisCluster>();
        eventually("no rollout, Ready", 90, || async {
            let c = api.get("doris").await.ok()?;
            let ready = env::condition(&c, "Ready").as_deref() == Some("True");
            (ready && c.status?.rollout.is_none()).then_some(())
        })
        .await;
    }
}

/// A `kubernetes.io/basic-auth` Secret for `spec.authSecret`.
async fn put_auth_secret(env: &Env, name: &str, user: &str, password: &str) {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(BTreeMap::from([
            ("username".to_string(), ByteString(user.as_bytes().to_vec())),
            (
                "password".to_string(),
                ByteString(password.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&Default::default(), &secret)
        .await
        .unwrap();
}

fn live_keys(entry: &ConfigChangeStatus) -> Vec<(String, String, i32)> {
    entry
        .live
        .iter()
        .map(|l| (l.key.clone(), l.value.clone(), l.nodes))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_fe_and_be_keys_go_live_without_restarting_a_pod() {
    let r = Running::start("live").await;
    let before = r.pod_uids().await;

    r.edit("fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n")
        .await;
    r.edit_be("disable_auto_compaction = true\nmem_limit = 90%\n")
        .await;

    let fe = r.entry("fe", "applied", 30, |e| !e.live.is_empty()).await;
    assert_eq!(
        live_keys(&fe),
        [("qe_slow_log_ms".into(), "3000".into(), 3)],
        "{fe:?}"
    );
    assert!(fe.awaiting_restart.is_empty(), "{fe:?}");
    let be = r.entry("be", "applied", 30, |e| !e.live.is_empty()).await;
    assert_eq!(
        live_keys(&be),
        [("disable_auto_compaction".into(), "true".into(), 3)],
        "{be:?}"
    );
    assert!(
        be.awaiting_restart.is_empty() && be.refused.is_empty(),
        "{be:?}"
    );

    // Every FE took it, in the words its release takes; each BE took it,
    // kept across restarts.
    r.every_fe_took("qe_slow_log_ms", "3000");
    for pod in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_eq!(
            r.be.setting(pod, "disable_auto_compaction").as_deref(),
            Some("true"),
            "{pod}"
        );
        assert!(
            r.be.calls()
                .iter()
                .any(|c| c.node == pod && c.key == "disable_auto_compaction" && c.persist),
            "{pod}: {:?}",
            r.be.calls()
        );
    }
    // A pod that starts later reads the new files.
    assert!(r.rendered("fe").await.contains("qe_slow_log_ms = 3000"));
    assert!(
        r.rendered("be")
            .await
            .contains("disable_auto_compaction = true")
    );
    let events = env::events(&r.env, "ConfigChanged").await;
    assert!(
        events.iter().any(|e| e
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("=3000 on 3 node(s)")
            || e.note
                .as_deref()
                .unwrap_or_default()
                .contains("=true on 3 node(s)")),
        "{events:?}"
    );

    // No pod restarts, now or later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.pod_uids().await, before);
    assert!(r.deletions.lock().unwrap().is_empty());
    let status = r
        .env
        .api::<DorisCluster>()
        .get("doris")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(status.rollout.is_none(), "{:?}", status.rollout);
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_be_key_restarts_the_bes_one_at_a_time() {
    let r = Running::start("restart").await;
    let before = r.pod_uids().await;

    r.edit_be("disable_auto_compaction = false\nmem_limit = 80%\n")
        .await;
    let be = r.entry("be", "applied", 30, |_| true).await;
    assert_eq!(be.awaiting_restart, ["mem_limit"]);
    assert!(be.live.is_empty(), "{be:?}");
    r.restarted().await;

    // In the order restart.rhai gives, each BE once, the FEs untouched.
    assert_eq!(
        *r.deletions.lock().unwrap(),
        ["doris-be-2", "doris-be-1", "doris-be-0"]
    );
    let after = r.pod_uids().await;
    for (pod, uid) in &before {
        assert_eq!(
            after.get(pod) != Some(uid),
            pod.contains("-be-"),
            "{pod} restarted only if a BE"
        );
    }
    assert!(r.be.calls().is_empty(), "{:?}", r.be.calls());
    assert!(r.rendered("be").await.contains("mem_limit = 80%"));
    // Restarted: status no longer says the key waits.
    let be = r
        .entry("be", "applied", 30, |e| e.awaiting_restart.is_empty())
        .await;
    assert!(be.message.is_none(), "{be:?}");
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_change_goes_live_and_restarts() {
    let r = Running::start("mixed").await;
    let before = r.pod_uids().await;

    r.edit_be("disable_auto_compaction = true\nmem_limit = 80%\n")
        .await;
    let be = r.entry("be", "applied", 30, |_| true).await;
    assert_eq!(
        live_keys(&be),
        [("disable_auto_compaction".into(), "true".into(), 3)]
    );
    assert_eq!(be.awaiting_restart, ["mem_limit"]);
    r.restarted().await;
    let after = r.pod_uids().await;
    for pod in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_ne!(after.get(pod), before.get(pod), "{pod} restarted");
        assert!(
            r.be.calls().iter().any(|c| c.node == pod && c.ok),
            "{pod} took the live key before its restart"
        );
    }
    for pod in ["doris-fe-0", "doris-fe-1", "doris-fe-2"] {
        assert_eq!(after.get(pod), before.get(pod), "{pod} kept running");
    }
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_be_that_refuses_holds_the_change_until_it_takes_it() {
    let r = Running::start("refused").await;
    r.be.refuse(
        "doris-be-1",
        "disable_auto_compaction",
        "[INTERNAL_ERROR]busy",
    );

    r.edit_be("disable_auto_compaction = true\nmem_limit = 90%\n")
        .await;
    let waiting = r
        .entry("be", "applying", 30, |e| !e.refused.is_empty())
        .await;
    assert_eq!(waiting.refused.len(), 1, "{waiting:?}");
    assert_eq!(waiting.refused[0].node, "doris-be-1");
    assert!(waiting.refused[0].message.contains("busy"), "{waiting:?}");
    // The new configuration waits: pods starting now read the old one.
    assert!(
        r.rendered("be")
            .await
            .contains("disable_auto_compaction = false")
    );
    let warned = env::events(&r.env, "ConfigRefused").await;
    assert!(!warned.is_empty());

    // Tried again until it is taken.
    r.be.accept();
    let be = r.entry("be", "applied", 30, |_| true).await;
    assert_eq!(
        live_keys(&be),
        [("disable_auto_compaction".into(), "true".into(), 3)]
    );
    assert!(
        r.rendered("be")
            .await
            .contains("disable_auto_compaction = true")
    );
    assert_eq!(
        r.be.setting("doris-be-1", "disable_auto_compaction")
            .as_deref(),
        Some("true")
    );
    assert!(r.deletions.lock().unwrap().is_empty());
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fe_that_does_not_answer_delays_the_change() {
    let r = Running::start("fedown").await;
    r.fe.set_down(true);

    r.edit("fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n")
        .await;
    let waiting = r.entry("fe", "applying", 30, |e| e.message.is_some()).await;
    assert!(
        waiting.message.as_deref().unwrap().contains("FE"),
        "{waiting:?}"
    );
    assert!(r.rendered("fe").await.contains("qe_slow_log_ms = 5000"));
    assert!(r.fe.config_sets().is_empty());

    r.fe.set_down(false);
    let fe = r.entry("fe", "applied", 30, |_| true).await;
    assert_eq!(
        live_keys(&fe),
        [("qe_slow_log_ms".into(), "3000".into(), 3)]
    );
    assert!(r.rendered("fe").await.contains("qe_slow_log_ms = 3000"));
    assert!(r.deletions.lock().unwrap().is_empty());
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_restart_switch_a_change_waits_for_the_next_start() {
    let cluster = CLUSTER.replace("  enableRestartWhenConfigChange: true\n", "");
    let r = Running::start_with("noswitch", &cluster).await;
    let before = r.pod_uids().await;

    r.edit_be("disable_auto_compaction = true\nmem_limit = 80%\n")
        .await;
    let be = r.entry("be", "applied", 30, |_| true).await;
    assert_eq!(
        be.ignored,
        ["disable_auto_compaction", "mem_limit"],
        "{be:?}"
    );
    assert!(
        be.live.is_empty() && be.awaiting_restart.is_empty(),
        "{be:?}"
    );
    assert!(r.rendered("be").await.contains("mem_limit = 80%"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(r.be.calls().is_empty(), "{:?}", r.be.calls());
    assert_eq!(r.be.show_config_calls(), 0, "nothing to ask Doris about");
    assert_eq!(r.pod_uids().await, before);
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn be_keys_go_live_on_bes_that_check_http_auth() {
    // enable_all_http_auth = true: the BEs take the operator's Doris user.
    let be = BeSimConfig::default().with_admin("ops", "s3cret-pw");
    let r = Running::start_as(
        "beauth",
        CLUSTER,
        FeSimConfig::default(),
        be,
        Some(("ops", "s3cret-pw")),
    )
    .await;

    r.edit_be("disable_auto_compaction = true\nmem_limit = 90%\n")
        .await;
    let be = r.entry("be", "applied", 30, |e| !e.live.is_empty()).await;
    assert_eq!(
        live_keys(&be),
        [("disable_auto_compaction".into(), "true".into(), 3)],
        "{be:?}"
    );
    for pod in ["doris-be-0", "doris-be-1", "doris-be-2"] {
        assert_eq!(
            r.be.setting(pod, "disable_auto_compaction").as_deref(),
            Some("true"),
            "{pod}"
        );
    }
    let (asked, forbidden) = r.be.auth_refusals();
    assert!(asked >= 1, "the BEs asked for credentials");
    assert_eq!(forbidden, 0, "and took the ones shown");
    r.env.finish().await;
}

/// A live FE key on a release `version` names reaches every FE, in the
/// statement that release takes.
async fn fe_key_reaches_every_fe_on(test: &str, version: &str) {
    let config = FeSimConfig {
        version: version.into(),
        ..FeSimConfig::default()
    };
    let r = Running::start_as(test, CLUSTER, config, BeSimConfig::default(), None).await;
    r.edit("fe-conf", "fe.conf", "qe_slow_log_ms = 3000\n")
        .await;
    let fe = r.entry("fe", "applied", 30, |e| !e.live.is_empty()).await;
    assert_eq!(
        live_keys(&fe),
        [("qe_slow_log_ms".into(), "3000".into(), 3)],
        "{fe:?}"
    );
    r.every_fe_took("qe_slow_log_ms", "3000");
    assert!(r.deletions.lock().unwrap().is_empty());
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_the_bes_do_not_accept_is_reported_with_what_to_do() {
    let be = BeSimConfig::default().with_admin("ops", "another-pw");
    let r = Running::start_as(
        "beforbidden",
        CLUSTER,
        FeSimConfig::default(),
        be,
        Some(("ops", "s3cret-pw")),
    )
    .await;

    r.edit_be("disable_auto_compaction = true\nmem_limit = 90%\n")
        .await;
    let waiting = r.entry("be", "applying", 30, |e| e.message.is_some()).await;
    let message = waiting.message.clone().unwrap_or_default();
    assert!(message.contains("HTTP 403"), "{waiting:?}");
    assert!(message.contains("user 'ops'"), "{waiting:?}");
    assert!(
        message.contains("give the operator a Doris user with ADMIN privilege"),
        "{waiting:?}"
    );
    assert!(!message.contains("s3cret"), "no password in status");
    assert!(
        r.rendered("be")
            .await
            .contains("disable_auto_compaction = false"),
        "the change waits"
    );
    assert!(r.be.calls().is_empty(), "{:?}", r.be.calls());
    r.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_2_1_5_each_fe_is_set_on_its_own_connection() {
    fe_key_reaches_every_fe_on("fe-each", "doris-2.1.4-rc01-sim").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_2_1_5_one_statement_sets_every_fe() {
    fe_key_reaches_every_fe_on("fe-all", "doris-2.1.7-rc01-sim").await;
}
