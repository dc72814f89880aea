//! Whether each cluster's FE answers, found out without holding up a
//! reconcile.
//!
//! An FE that does not answer costs whoever asks it the connect timeout.
//! Reconciles run a few at a time, so clusters cut off from their FEs (an
//! outage, a network policy, DNS trouble) would keep the slots busy and
//! the other clusters waiting. So a reconcile converses with an FE only
//! once it is known to answer: it answered within [`FRESH`], or a probe
//! (a connection opened and closed, in a task of its own) answers within
//! [`GRACE`]. A probe that takes longer goes on without the reconcile,
//! which comes back when the probe has its answer; an FE found silent is
//! reported at once, and probed again only after [`REPROBE`].
//!
//! The FE's answers to the reconciles' own statements keep what is known
//! up to date (see [`FeReach::observer`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::doris::{FeClient, FeError, Observer};

/// How long a reconcile waits for a probe before going on without it.
pub const GRACE: Duration = Duration::from_millis(200);

/// How long an FE that answered is taken to answer without a probe.
pub const FRESH: Duration = Duration::from_secs(30);

/// How long an FE found silent is taken to be silent without a probe.
pub const REPROBE: Duration = Duration::from_secs(5);

/// What is known of one FE.
#[derive(Clone, Debug)]
enum State {
    Answered {
        at: Instant,
    },
    Silent {
        at: Instant,
        why: String,
    },
    /// A probe runs; it ends by this time (its connect timeout).
    Probing {
        until: Instant,
    },
}

/// Why a reconcile does not converse with an FE now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreached {
    /// A probe runs: its answer is due within this.
    Pending(Duration),
    /// The FE cannot be asked: why.
    Unavailable(String),
}

/// What is known of each cluster's FE, by cluster uid.
#[derive(Clone, Default)]
pub struct FeReach(Arc<Mutex<HashMap<String, State>>>);

impl FeReach {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the FE `fe` reaches (of the cluster `uid`) may be asked now.
    /// Waits at most [`GRACE`].
    pub async fn admit(&self, uid: &str, fe: &FeClient) -> Result<(), Unreached> {
        let now = Instant::now();
        let until = {
            let mut states = self.lock();
            match states.get(uid) {
                Some(State::Answered { at }) if now.duration_since(*at) < FRESH => return Ok(()),
                Some(State::Silent { at, why }) if now.duration_since(*at) < REPROBE => {
                    return Err(Unreached::Unavailable(why.clone()));
                }
                Some(State::Probing { until }) if *until > now => {
                    return Err(Unreached::Pending(*until - now));
                }
                _ => {}
            }
            let until = now + fe.config().connect_timeout + GRACE;
            states.insert(uid.to_string(), State::Probing { until });
            until
        };
        let fe = fe.clone().observed(self.observer(uid));
        let probe = tokio::spawn(async move {
            let _ = fe.reach().await;
        });
        let _ = tokio::time::timeout(GRACE, probe).await;
        match self.lock().get(uid) {
            Some(State::Answered { .. }) => Ok(()),
            Some(State::Silent { why, .. }) => Err(Unreached::Unavailable(why.clone())),
            _ => Err(Unreached::Pending(
                until.saturating_duration_since(Instant::now()),
            )),
        }
    }

    /// Keeps what the calls of a client of the cluster `uid`'s FE find:
    /// an answer, or an FE that cannot be reached or does not answer in
    /// time. Other errors (a refused login, a refused statement) are
    /// answers too.
    pub fn observer(&self, uid: &str) -> Observer {
        let reach = self.clone();
        let uid = uid.to_string();
        Arc::new(move |outcome: Option<&FeError>| {
            let at = Instant::now();
            let state = match outcome {
                Some(e) if e.is_transient() => State::Silent {
                    at,
                    why: format!("the FE does not answer: {}", e.brief()),
                },
                _ => State::Answered { at },
            };
            reach.lock().insert(uid.clone(), state);
        })
    }

    /// Forgets a cluster that is gone.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doris::{FeClientConfig, FeEndpoint};

    fn client(addr: std::net::SocketAddr) -> FeClient {
        FeClient::with_config(
            FeEndpoint::new(addr.ip().to_string()).with_port(addr.port()),
            FeClientConfig {
                connect_timeout: Duration::from_millis(600),
                query_timeout: Duration::from_secs(1),
                retries: 0,
                retry_backoff: Duration::from_millis(10),
            },
        )
    }

    #[tokio::test]
    async fn an_fe_that_takes_the_connection_and_never_speaks_is_probed_aside() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fe = client(listener.local_addr().unwrap());
        let reach = FeReach::default();
        // The probe outlasts the grace: the reconcile goes on without it.
        let first = reach.admit("a", &fe).await;
        assert!(matches!(first, Err(Unreached::Pending(_))), "{first:?}");
        // Asked again while the probe runs: no second probe, no wait.
        let again = reach.admit("a", &fe).await;
        assert!(matches!(again, Err(Unreached::Pending(_))), "{again:?}");
        // Once the probe gave up, the FE is reported silent at once.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let after = reach.admit("a", &fe).await;
        match after {
            Err(Unreached::Unavailable(why)) => assert!(why.contains("no connection"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Another cluster's FE is not taken for this one.
        assert!(matches!(
            reach.admit("b", &fe).await,
            Err(Unreached::Pending(_))
        ));
        drop(listener);
    }

    #[tokio::test]
    async fn an_fe_that_refuses_connections_is_silent_without_waiting() {
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let reach = FeReach::default();
        match reach.admit("a", &client(addr)).await {
            Err(Unreached::Unavailable(why)) => assert!(why.contains("cannot connect"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn what_the_reconciles_calls_find_is_kept() {
        let addr = "127.0.0.1:9".parse().unwrap();
        let fe = client(addr);
        let reach = FeReach::default();
        // An answer to a statement: admitted without a probe.
        (reach.observer("a"))(None);
        assert_eq!(reach.admit("a", &fe).await, Ok(()));
        // A statement that timed out: silent, without a probe.
        let timeout = FeError {
            addr: "fe:9030".into(),
            statement: "SHOW BACKENDS".into(),
            attempts: 1,
            kind: crate::doris::FeErrorKind::QueryTimeout(Duration::from_secs(10)),
        };
        (reach.observer("a"))(Some(&timeout));
        assert_eq!(
            reach.admit("a", &fe).await,
            Err(Unreached::Unavailable(format!(
                "the FE does not answer: {}",
                timeout.brief()
            )))
        );
        // A refused statement is an answer.
        let refused = FeError {
            kind: crate::doris::FeErrorKind::Server {
                code: 1105,
                state: "HY000".into(),
                message: "no".into(),
            },
            ..timeout
        };
        (reach.observer("a"))(Some(&refused));
        assert_eq!(reach.admit("a", &fe).await, Ok(()));
    }
}
