//! A simulator of Doris BE webservers: the two configuration calls the
//! operator makes, `GET /api/show_config` (every setting as
//! `[name, type, value, is_mutable]`) and `POST /api/update_config?k=v[&persist=true]`,
//! on 127.0.0.1, as be/src/http/action/config_action.cpp answers them in
//! the release played ([`BeSimConfig::release`], `DORIS_SIM_PROFILE` by
//! default, as the FE simulator): from 2.1 (apache/doris PR #23702) any
//! number of keys and a JSON array `[{"config_name", "status", "msg"}]`;
//! before, one key (plus `persist`) and one `{"status", "msg"}` object.
//!
//! With [`BeSimConfig::admins`] the BEs run with `enable_all_http_auth =
//! true` (be.conf, apache/doris PR #39577) and ask for HTTP Basic
//! credentials of a Doris user with ADMIN as
//! be/src/http/http_handler_with_auth.cpp does: none (or unreadable) is
//! `401` with an empty body and `WWW-Authenticate: Basic realm="Restricted"`;
//! a user the master FE does not accept is `403` with an empty body.
//!
//! One simulator stands for any number of BEs: each request is for the node
//! its `Host` header names (the first DNS label, the pod's name), and each
//! node has its own settings, created at its first request. A small table
//! of real BE settings with Doris's mutability; an immutable key, an
//! unknown key or a value of the wrong type is refused with Doris's
//! messages. Every `update_config` call is recorded; a node can be told to
//! refuse a key, or to answer nothing at all.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use doris_operator::doris::Release;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

/// The first release whose `update_config` takes several keys and answers
/// with an array (apache/doris PR #23702, merged before 2.1 branched).
const FIRST_MULTI_KEY: Release = Release::new(2, 1, 0);

/// How the BEs of a simulator run.
#[derive(Clone, Debug)]
pub struct BeSimConfig {
    /// The release played.
    pub release: Release,
    /// `enable_all_http_auth = true`: the Doris users (name, password) the
    /// master FE accepts with ADMIN. `None`: no HTTP authentication, the
    /// default.
    pub admins: Option<BTreeMap<String, String>>,
}

impl Default for BeSimConfig {
    fn default() -> Self {
        BeSimConfig {
            release: crate::fesim::integrated_release(),
            admins: None,
        }
    }
}

impl BeSimConfig {
    /// With `enable_all_http_auth = true`, accepting `user` with `password`.
    pub fn with_admin(mut self, user: &str, password: &str) -> Self {
        self.admins
            .get_or_insert_with(BTreeMap::new)
            .insert(user.to_string(), password.to_string());
        self
    }
}

/// Some real BE settings: (name, type, default, mutable).
const BE_SETTINGS: &[(&str, &str, &str, bool)] = &[
    ("be_port", "int32", "9060", false),
    ("webserver_port", "int32", "8040", false),
    ("heartbeat_service_port", "int32", "9050", false),
    ("brpc_port", "int32", "8060", false),
    (
        "storage_root_path",
        "string",
        "${DORIS_HOME}/storage",
        false,
    ),
    ("priority_networks", "string", "", false),
    ("sys_log_level", "string", "INFO", false),
    ("mem_limit", "string", "90%", false),
    ("report_tablet_interval_seconds", "int32", "60", false),
    ("disable_auto_compaction", "bool", "false", true),
    ("max_tablet_version_num", "int32", "2000", true),
    ("streaming_load_max_mb", "int64", "102400", true),
    ("write_buffer_size", "int64", "209715200", true),
];

/// One `update_config` call as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateCall {
    /// The node (pod name) it was for.
    pub node: String,
    pub key: String,
    pub value: String,
    pub persist: bool,
    /// Whether it was taken.
    pub ok: bool,
}

#[derive(Clone, Debug)]
struct Setting {
    type_: &'static str,
    value: String,
    mutable: bool,
}

#[derive(Default)]
struct State {
    config: Option<BeSimConfig>,
    /// Requests refused for want of credentials (401) or for wrong ones (403).
    unauthorized: usize,
    forbidden: usize,
    nodes: BTreeMap<String, BTreeMap<String, Setting>>,
    calls: Vec<UpdateCall>,
    /// (node, key) refused with a message; node `*` is every node.
    refusals: BTreeMap<(String, String), String>,
    /// Nodes that answer nothing (the connection is closed).
    silent: BTreeSet<String>,
    show_config_calls: usize,
}

impl State {
    fn node(&mut self, node: &str) -> &mut BTreeMap<String, Setting> {
        self.nodes.entry(node.to_string()).or_insert_with(|| {
            BE_SETTINGS
                .iter()
                .map(|(name, type_, value, mutable)| {
                    (
                        name.to_string(),
                        Setting {
                            type_,
                            value: value.to_string(),
                            mutable: *mutable,
                        },
                    )
                })
                .collect()
        })
    }
}

/// A running simulator; stops when dropped.
pub struct BeSim {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for BeSim {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl BeSim {
    pub async fn start() -> BeSim {
        BeSim::start_with(BeSimConfig::default()).await
    }

    pub async fn start_with(config: BeSimConfig) -> BeSim {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state: Arc<Mutex<State>> = Arc::new(Mutex::new(State {
            config: Some(config),
            ..State::default()
        }));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let answer = answer(&state, &req);
                        async move {
                            match answer {
                                Some(response) => Ok::<_, std::convert::Infallible>(response),
                                // A silent node: no answer, the connection goes.
                                None => {
                                    futures::future::pending::<()>().await;
                                    unreachable!()
                                }
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        BeSim {
            addr,
            state,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every `update_config` call so far.
    pub fn calls(&self) -> Vec<UpdateCall> {
        self.lock().calls.clone()
    }

    /// Requests refused with 401 (no credentials) and 403 (not accepted).
    pub fn auth_refusals(&self) -> (usize, usize) {
        let st = self.lock();
        (st.unauthorized, st.forbidden)
    }

    /// How many `show_config` calls were answered.
    pub fn show_config_calls(&self) -> usize {
        self.lock().show_config_calls
    }

    /// The value of `key` on `node` now (defaults for a node never asked).
    pub fn setting(&self, node: &str, key: &str) -> Option<String> {
        self.lock().node(node).get(key).map(|s| s.value.clone())
    }

    /// Makes `node` (`*`: every node) refuse `key` with `message`, until
    /// [`BeSim::accept`] is called.
    pub fn refuse(&self, node: &str, key: &str, message: &str) {
        self.lock()
            .refusals
            .insert((node.to_string(), key.to_string()), message.to_string());
    }

    /// Lifts every refusal.
    pub fn accept(&self) {
        self.lock().refusals.clear();
    }

    /// Makes `node` answer nothing (or answer again).
    pub fn set_silent(&self, node: &str, silent: bool) {
        let mut st = self.lock();
        if silent {
            st.silent.insert(node.to_string());
        } else {
            st.silent.remove(node);
        }
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// The answer to one request; `None` for a silent node.
fn answer(
    state: &Mutex<State>,
    req: &Request<hyper::body::Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let node = host
        .split([':', '.'])
        .next()
        .unwrap_or_default()
        .to_string();
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if st.silent.contains(&node) {
        return None;
    }
    let config = st.config.clone().unwrap_or_default();
    // be/src/http/http_handler_with_auth.cpp, HttpHandlerWithAuth::on_header.
    if let Some(admins) = &config.admins {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(basic_credentials);
        let Some((user, password)) = given else {
            st.unauthorized += 1;
            return Some(
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("WWW-Authenticate", "Basic realm=\"Restricted\"")
                    .body(Full::new(Bytes::new()))
                    .expect("response"),
            );
        };
        // FrontendService.checkAuth on the master FE: the user, its
        // password and ADMIN privilege.
        if admins.get(&user) != Some(&password) {
            st.forbidden += 1;
            return Some(
                Response::builder()
                    .status(StatusCode::FORBIDDEN)
                    .body(Full::new(Bytes::new()))
                    .expect("response"),
            );
        }
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    Some(match (req.method().as_str(), path) {
        ("GET", "/api/show_config") => {
            st.show_config_calls += 1;
            let rows: Vec<[String; 4]> = st
                .node(&node)
                .iter()
                .map(|(name, s)| {
                    [
                        name.clone(),
                        s.type_.to_string(),
                        s.value.clone(),
                        s.mutable.to_string(),
                    ]
                })
                .collect();
            json(StatusCode::OK, serde_json::to_string(&rows).expect("json"))
        }
        ("POST", "/api/update_config") if config.release >= FIRST_MULTI_KEY => {
            update_config(&mut st, &node, query)
        }
        ("POST", "/api/update_config") => update_one_config(&mut st, &node, query),
        _ => json(StatusCode::NOT_FOUND, "{\"status\":\"NOT_FOUND\"}".into()),
    })
}

/// The query parameters as Doris keeps them: a map, keys in order, the
/// last of a repeated key winning.
fn params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

const PERSIST: &str = "persist";
const ONE_KEY: &str = "Now only support to set a single config once, via 'config_name=new_value', and with an optional parameter 'persist'.";

/// Sets `key` on `node` (a refusal the test asked for first), recording
/// the call: the reason it failed, as Doris's `Status::to_string`.
fn apply(st: &mut State, node: &str, key: &str, value: &str, persist: bool) -> Result<(), String> {
    let refused = st
        .refusals
        .get(&(node.to_string(), key.to_string()))
        .or_else(|| st.refusals.get(&("*".to_string(), key.to_string())))
        .cloned();
    let outcome = match refused {
        Some(message) => Err(message),
        None => set(st.node(node), key, value),
    };
    st.calls.push(UpdateCall {
        node: node.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        persist,
        ok: outcome.is_ok(),
    });
    outcome
}

/// 2.1 and later (be/src/http/action/config_action.cpp,
/// `handle_update_config` after apache/doris PR #23702): every key but
/// `persist` is set in turn, each with an entry of the array answered.
/// As there, `msg` is not cleared between keys, and no key at all is
/// answered with `[]`. (Doris reads `persist` without checking it is
/// there; this simulator takes it as false.)
fn update_config(st: &mut State, node: &str, query: &str) -> Response<Full<Bytes>> {
    let params = params(query);
    let persist = params.get(PERSIST).is_some_and(|v| v == "true");
    let mut results = Vec::new();
    let mut msg = String::new();
    for (key, value) in params.iter().filter(|(k, _)| *k != PERSIST) {
        let outcome = apply(st, node, key, value, persist);
        if let Err(reason) = &outcome {
            msg = format!("set {key}={value} failed, reason: {reason}.");
        }
        results.push(serde_json::json!({
            "config_name": key,
            "status": if outcome.is_ok() { "OK" } else { "BAD" },
            "msg": msg,
        }));
    }
    json(
        StatusCode::OK,
        serde_json::to_string_pretty(&results).expect("json"),
    )
}

/// Before 2.1 (be/src/http/action/config_action.cpp before PR #23702):
/// one key, and `persist` besides; anything else is refused; one
/// `{"status", "msg"}` answer.
fn update_one_config(st: &mut State, node: &str, query: &str) -> Response<Full<Bytes>> {
    let params = params(query);
    let (key, value, persist) = match params.len() {
        1 => {
            let (k, v) = params.iter().next().expect("one");
            (k.clone(), v.clone(), false)
        }
        2 if params.contains_key(PERSIST) => {
            let (k, v) = params.iter().find(|(k, _)| *k != PERSIST).expect("a key");
            (k.clone(), v.clone(), params[PERSIST] == "true")
        }
        _ => return reply(false, ONE_KEY),
    };
    match apply(st, node, &key, &value, persist) {
        Ok(()) => reply(true, ""),
        Err(reason) => reply(
            false,
            &format!("set {key}={value} failed, reason: {reason}"),
        ),
    }
}

/// Sets one key as a BE does: known, mutable, and of its type.
fn set(settings: &mut BTreeMap<String, Setting>, key: &str, value: &str) -> Result<(), String> {
    let Some(setting) = settings.get_mut(key) else {
        return Err(format!("[NOT_FOUND]'{key}' is not found"));
    };
    if !setting.mutable {
        return Err(format!(
            "[NOT_IMPLEMENTED_ERROR]'{key}' is not support to modify"
        ));
    }
    let valid = match setting.type_ {
        "bool" => value == "true" || value == "false",
        "int32" => value.parse::<i32>().is_ok(),
        "int64" => value.parse::<i64>().is_ok(),
        _ => true,
    };
    if !valid {
        return Err(format!(
            "[INVALID_ARGUMENT]convert '{value}' as {} failed",
            setting.type_
        ));
    }
    setting.value = value.to_string();
    Ok(())
}

fn reply(ok: bool, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "status": if ok { "OK" } else { "BAD" },
        "msg": message,
    });
    json(
        StatusCode::OK,
        serde_json::to_string_pretty(&body).expect("json"),
    )
}

/// `(user, password)` from `Authorization: Basic <base64(user:password)>`
/// (be/src/http/utils.cpp, `parse_basic_auth`).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Undoes percent-encoding (and `+` for a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
