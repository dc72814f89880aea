//! An in-process Kubernetes API server for tests: real HTTP on loopback, so
//! an ordinary `kube::Client` (and kube-runtime's watchers) talk to it.
//!
//! It stores any resource by URL as JSON, so CRDs need no registration, and
//! implements what an operator relies on: get/list/watch with
//! resourceVersions and bookmarks, create/update/delete, merge, JSON and
//! apply patches (a no-op patch writes nothing), the status subresource,
//! label selectors, 409 conflicts, 410 Gone for expired watches,
//! finalizers with deletionTimestamp, and ownerReference garbage
//! collection. Tests can inject faults (errors, dropped watches, latency)
//! and count the requests made.
//!
//! SelfSubjectAccessReviews are answered as a real server answers them:
//! everything is allowed (the test client is an administrator) except what a
//! test denies with [`Emulator::deny`].
//!
//! Every write records field ownership in `metadata.managedFields` and
//! server-side apply merges by it (see [`fields`]); API discovery serves
//! the built-in kinds and those of stored CustomResourceDefinitions (see
//! [`discovery`]); the `scale` subresource reads and writes `spec.replicas`.
//! Admission: PodSecurity by namespace label and the resize rules of
//! PersistentVolumeClaims, as [`admission`] describes. A resource of a
//! custom group (not Kubernetes' own) is served only while a stored
//! CustomResourceDefinition serves it; otherwise its paths answer the plain
//! `404 page not found` kube-apiserver answers.
//!
//! Known differences from a real API server: there is no other admission
//! and no schema validation beyond label values, defaulting covers only a
//! StatefulSet's `replicas`, lists merge by key only for the lists objects
//! commonly hold, every built-in resource is served whether or not
//! discovery lists it, objects outlive their CRD (they are back when it
//! is), and lists are never paginated.

#![allow(dead_code)] // each test binary uses a different part

pub mod admission;
pub mod discovery;
pub mod driver;
pub mod fields;

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// `group/version/plural`, with an empty group for the core API.
pub type Resource = String;

/// One change, as watchers see it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub resource: Resource,
    pub type_: &'static str,
    pub object: Value,
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub verb: &'static str,
    /// The request's `User-Agent` header, if it had one.
    pub user_agent: Option<String>,
}

struct Fault {
    verb: Option<&'static str>,
    plural: Option<String>,
    /// Only requests for the object of this name.
    name: Option<String>,
    status: u16,
    times: usize,
    /// The Status `reason` and `message`; "InternalError" and a generic
    /// message when `None`.
    answer: Option<(String, String)>,
}

#[derive(Default)]
struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<(Resource, String, String), Value>,
    history: VecDeque<Change>,
    oldest: u64,
    live_uids: std::collections::HashSet<String>,
}

struct Shared {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
    drops: broadcast::Sender<()>,
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Option<Duration>>,
    /// Lists of these resources (plurals) answer this much later.
    slow_lists: Mutex<Vec<(String, Duration)>>,
    bookmark_every: Duration,
    /// (group, resource, verb) that SelfSubjectAccessReviews deny.
    denied: Mutex<Vec<(String, String, String)>>,
    /// `host:port`, as discovery tells clients.
    address: String,
}

impl Shared {
    /// Whether the resource `group/version/plural` is served: a built-in
    /// one always, a custom one while a stored CRD serves it.
    fn serves(&self, resource: &str) -> bool {
        let mut parts = resource.splitn(3, '/');
        let (group, version, plural) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if !discovery::is_custom_group(group) {
            return true;
        }
        self.with_crds(|mut crds| {
            Iterator::any(&mut crds, |crd| {
                discovery::crd_serves(crd, group, version, plural)
            })
        })
    }

    /// The stored CustomResourceDefinitions.
    fn crds(&self) -> Vec<Value> {
        self.with_crds(|mut crds| Iterator::cloned(&mut crds).collect())
    }

    /// Runs `f` over the stored CustomResourceDefinitions, in place.
    fn with_crds<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &Value>) -> T) -> T {
        let store = self.store.lock().unwrap();
        let start = (discovery::CRDS.to_string(), String::new(), String::new());
        let mut crds = store
            .objects
            .range(start..)
            .take_while(|((r, _, _), _)| r == discovery::CRDS)
            .map(|(_, v)| v);
        f(&mut crds)
    }
}

/// The emulated API server; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const HISTORY: usize = 20_000;

/// The field manager of what the server's own controllers write
/// ([`Emulator::put`]).
pub const CONTROLLERS: &str = "kube-controller-manager";

impl Emulator {
    pub async fn start() -> Emulator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store {
                rv: 1,
                ..Default::default()
            }),
            changes: broadcast::channel(65_536).0,
            drops: broadcast::channel(16).0,
            requests: Mutex::default(),
            faults: Mutex::default(),
            latency: Mutex::default(),
            slow_lists: Mutex::default(),
            bookmark_every: Duration::from_millis(500),
            denied: Mutex::default(),
            address: addr.to_string(),
        });
        let serving = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Emulator {
            addr,
            shared,
            server,
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client talking to this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).unwrap()
    }

    /// How to reach this server.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().unwrap())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.shared.changes.subscribe()
    }

    /// Every object of `resource` (in `namespace`, or all).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.shared.store.lock().unwrap();
        let start = (
            resource.to_string(),
            namespace.unwrap_or("").to_string(),
            String::new(),
        );
        store
            .objects
            .range(start..)
            .take_while(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every object of `resource` as (namespace, name, uid, resourceVersion,
    /// first owner's uid), without copying the objects.
    pub fn versions(&self, resource: &str) -> Vec<[String; 5]> {
        let store = self.shared.store.lock().unwrap();
        let start = (resource.to_string(), String::new(), String::new());
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        store
            .objects
            .range(start..)
            .take_while(|((r, _, _), _)| r == resource)
            .map(|((_, ns, name), v)| {
                [
                    ns.clone(),
                    name.clone(),
                    text(&v["metadata"]["uid"]),
                    text(&v["metadata"]["resourceVersion"]),
                    text(&v["metadata"]["ownerReferences"][0]["uid"]),
                ]
            })
            .collect()
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = self.shared.store.lock().unwrap();
        store
            .objects
            .get(&(
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
            .cloned()
    }

    /// Creates or replaces an object (status included), as a controller
    /// inside the server would.
    pub fn put(&self, resource: &str, object: Value) {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut store = self.shared.store.lock().unwrap();
        let key = (resource.to_string(), ns, name);
        let writer = fields::Writer {
            manager: CONTROLLERS.to_string(),
            subresource: None,
            api_version: object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            time: now(),
        };
        let result = match store.objects.get(&key).cloned() {
            Some(old) => update(
                &self.shared,
                &mut store,
                &key,
                old,
                object,
                Part::All,
                How {
                    writer: Some(&writer),
                    dry_run: false,
                },
            ),
            None => create(&self.shared, &mut store, key, object, false, Some(&writer)),
        };
        result.expect("in-process write");
    }

    /// Why PodSecurity admission refuses `pod` in its namespace, as a real
    /// API server words it; `None` when it is admitted. The StatefulSet
    /// controller stand-in asks before it makes a pod.
    pub fn refuse_pod(&self, pod: &Value) -> Option<String> {
        let store = self.shared.store.lock().unwrap();
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        admission::pod_security(&admission::enforced_level(&store, namespace), pod)
    }

    /// Deletes an object through the normal path (finalizers, GC).
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        let mut store = self.shared.store.lock().unwrap();
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let _ = delete(&self.shared, &mut store, &key, false);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn reset_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Writes made through HTTP since the last reset.
    pub fn count_writes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| matches!(r.verb, "create" | "update" | "patch" | "delete"))
            .count()
    }

    /// The next `times` requests matching `verb` (get, list, watch, create,
    /// update, patch, delete) and `plural` fail with `status`.
    pub fn fail_next(
        &self,
        verb: Option<&'static str>,
        plural: Option<&str>,
        status: u16,
        times: usize,
    ) {
        self.shared.faults.lock().unwrap().push(Fault {
            verb,
            plural: plural.map(str::to_string),
            name: None,
            status,
            times,
            answer: None,
        });
    }

    /// Like [`fail_next`](Self::fail_next), answering with a Status of
    /// `reason` whose message the API server would write for the request:
    /// `message` gets `{name}` replaced by the object's name. For 403:
    /// `configmaps "{name}" is forbidden: User "..." cannot patch ...`.
    /// `resource` is a plural, or `plural/name` for one object.
    pub fn refuse_next(
        &self,
        verb: &'static str,
        resource: &str,
        status: u16,
        reason: &str,
        message: &str,
        times: usize,
    ) {
        let (plural, name) = match resource.split_once('/') {
            Some((plural, name)) => (plural, Some(name.to_string())),
            None => (resource, None),
        };
        self.shared.faults.lock().unwrap().push(Fault {
            verb: Some(verb),
            plural: Some(plural.to_string()),
            name,
            status,
            times,
            answer: Some((reason.to_string(), message.to_string())),
        });
    }

    /// Forgets the faults not injected yet.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Ends every open watch abruptly; clients must watch again.
    pub fn drop_watches(&self) {
        let _ = self.shared.drops.send(());
    }

    /// Forgets the watch history: resuming an old watch gets 410 Gone.
    pub fn expire_history(&self) {
        let mut store = self.shared.store.lock().unwrap();
        store.history.clear();
        store.oldest = store.rv;
    }

    /// From now on, lists of `plural` answer `delay` late (as a list of
    /// many objects does on a busy server); watches are not slowed.
    pub fn slow_lists(&self, plural: &str, delay: Duration) {
        self.shared
            .slow_lists
            .lock()
            .unwrap()
            .push((plural.to_string(), delay));
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        *self.shared.latency.lock().unwrap() = latency;
    }

    /// From now on, SelfSubjectAccessReviews say the client may not `verb`
    /// `resource` of `group` ("" for the core group), in any namespace.
    pub fn deny(&self, group: &str, resource: &str, verb: &str) {
        self.shared.denied.lock().unwrap().push((
            group.to_string(),
            resource.to_string(),
            verb.to_string(),
        ));
    }
}

/// Answers a SelfSubjectAccessReview: the review back, with its status.
fn access_review(shared: &Shared, mut review: Value) -> Response<Body> {
    let attributes = &review["spec"]["resourceAttributes"];
    let field = |name: &str| attributes[name].as_str().unwrap_or_default().to_string();
    let asked = (field("group"), field("resource"), field("verb"));
    let denied = shared
        .denied
        .lock()
        .unwrap()
        .iter()
        .any(|d| *d == asked || (d.0 == asked.0 && d.1 == asked.1 && d.2 == "*"));
    review["status"] = if denied {
        json!({"allowed": false, "denied": true, "reason": "denied by the test"})
    } else {
        json!({"allowed": true, "reason": "the test client may do anything"})
    };
    respond(StatusCode::CREATED, &review)
}

// ------------------------------------------------------------------ routing

struct Route {
    resource: Resource,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
    /// The `scale` subresource.
    scale: bool,
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        other => (None, other),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub @ ("status" | "scale")] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return None,
    };
    Some(Route {
        resource: format!("{group}/{version}/{plural}"),
        plural: plural.to_string(),
        namespace,
        name,
        status: sub == Some("status"),
        scale: sub == Some("scale"),
    })
}

fn query(req: &Request<hyper::body::Incoming>) -> BTreeMap<String, String> {
    req.uri().query().map(form_pairs).unwrap_or_default()
}

fn form_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn status_error(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "message": message, "code": code,
    })
}

/// What kube-apiserver answers for a path nothing serves: not a Status.
fn page_not_found() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from("404 page not found\n")).boxed_unsync());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    r
}

fn error(code: u16, reason: &str, message: &str) -> Response<Body> {
    respond(
        StatusCode::from_u16(code).unwrap(),
        &status_error(code, reason, message),
    )
}

async fn handle(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let latency = *shared.latency.lock().unwrap();
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let path = req.uri().path().to_string();
    if path == "/version" {
        return respond(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0"}),
        );
    }
    let Some(route) = route(&path) else {
        if req.method() == Method::GET {
            let accept = req
                .headers()
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let crds = shared.crds();
            match discovery::answer(&discovery::served(&crds), &path, accept, &shared.address) {
                Some(Some((document, aggregated))) => {
                    let mut r = respond(StatusCode::OK, &document);
                    if aggregated {
                        r.headers_mut()
                            .insert("content-type", discovery::AGGREGATED.parse().unwrap());
                    }
                    return r;
                }
                Some(None) => {
                    return error(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    );
                }
                None => {}
            }
        }
        return error(404, "NotFound", &format!("no route {path}"));
    };
    let q = query(&req);
    // A dry run answers what the request would do and stores nothing.
    let dry_run = q.contains_key("dryRun");
    let method = req.method().clone();
    let verb: &'static str = match (&method, route.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        verb,
        user_agent: user_agent.clone(),
    });
    if !shared.serves(&route.resource) {
        return page_not_found();
    }
    if verb == "list" {
        let delay = shared
            .slow_lists
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| *p == route.plural)
            .map(|(_, d)| *d);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }
    {
        let mut faults = shared.faults.lock().unwrap();
        if let Some(f) = faults.iter_mut().find(|f| {
            f.times > 0
                && f.verb.is_none_or(|v| v == verb)
                && f.plural.as_deref().is_none_or(|p| p == route.plural)
                && f.name
                    .as_deref()
                    .is_none_or(|n| Some(n) == route.name.as_deref())
        }) {
            f.times -= 1;
            let status = f.status;
            let answer = f.answer.clone();
            faults.retain(|f| f.times > 0);
            return match answer {
                None => error(status, "InternalError", "injected fault"),
                Some((reason, message)) => {
                    let name = route.name.clone().unwrap_or_default();
                    let message = message.replace("{name}", &name);
                    let mut body = status_error(status, &reason, &message);
                    body["details"] = json!({"name": name, "kind": route.plural});
                    respond(StatusCode::from_u16(status).unwrap(), &body)
                }
            };
        }
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(400, "BadRequest", "unreadable body"),
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return error(400, "BadRequest", &format!("body is not JSON: {e}")),
        }
    };
    if verb == "create" && route.resource == "authorization.k8s.io/v1/selfsubjectaccessreviews" {
        return access_review(&shared, body);
    }
    let writer = fields::Writer {
        manager: q
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| fields::manager_from_user_agent(user_agent.as_deref())),
        subresource: if route.status {
            Some("status".into())
        } else if route.scale {
            Some("scale".into())
        } else {
            None
        },
        api_version: route
            .resource
            .rsplit_once('/')
            .map(|(gv, _)| gv.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        time: now(),
    };
    if route.scale {
        return scale(&shared, &route, verb, &content_type, body, &writer);
    }
    match verb {
        "watch" => watch(shared, route, q),
        "list" => list(&shared, &route, &q),
        "get" => {
            let store = shared.store.lock().unwrap();
            match store.objects.get(&key(&route)) {
                Some(o) => respond(StatusCode::OK, o),
                None => not_found(&route),
            }
        }
        "create" => {
            let mut body = body;
            if let Some(ns) = &route.namespace {
                body["metadata"]["namespace"] = json!(ns);
            }
            if body["metadata"]["name"].as_str().is_none()
                && let Some(prefix) = body["metadata"]["generateName"].as_str()
            {
                let n = shared.store.lock().unwrap().uid + 1;
                body["metadata"]["name"] = json!(format!("{prefix}{n:05}"));
            }
            let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
            let key = (
                route.resource.clone(),
                route.namespace.clone().unwrap_or_default(),
                name,
            );
            let mut store = shared.store.lock().unwrap();
            if store.objects.contains_key(&key) {
                return error(
                    409,
                    "AlreadyExists",
                    &format!("{} {} already exists", route.plural, key.2),
                );
            }
            match create(&shared, &mut store, key, body, dry_run, Some(&writer)) {
                Ok(o) => respond(StatusCode::CREATED, &o),
                Err(r) => *r,
            }
        }
        "update" => {
            let mut store = shared.store.lock().unwrap();
            let key = key(&route);
            let Some(old) = store.objects.get(&key).cloned() else {
                return not_found(&route);
            };
            let sent = body["metadata"]["resourceVersion"].as_str();
            if sent.is_some_and(|rv| Some(rv) != old["metadata"]["resourceVersion"].as_str()) {
                return error(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version and try again",
                );
            }
            let part = if route.status {
                Part::Status
            } else {
                Part::Main
            };
            match update(
                &shared,
                &mut store,
                &key,
                old,
                body,
                part,
                How {
                    writer: Some(&writer),
                    dry_run,
                },
            ) {
                Ok(o) => respond(StatusCode::OK, &o),
                Err(r) => *r,
            }
        }
        "patch" => {
            let mut store = shared.store.lock().unwrap();
            let key = key(&route);
            let existing = store.objects.get(&key).cloned();
            let part = if route.status {
                Part::Status
            } else {
                Part::Main
            };
            if content_type.contains("apply-patch") {
                if !q.contains_key("fieldManager") {
                    return error(400, "BadRequest", "fieldManager is required for apply");
                }
                if existing.is_none() && route.status {
                    return not_found(&route);
                }
                let force = q.get("force").is_some_and(|f| f == "true");
                let (mut merged, owners) =
                    match fields::apply(existing.as_ref(), &body, &writer, force) {
                        Ok(applied) => applied,
                        Err(conflicts) => {
                            return respond(StatusCode::CONFLICT, &conflicts.status());
                        }
                    };
                merged["metadata"]["managedFields"] = fields::to_managed_fields(&owners);
                return match existing {
                    None => {
                        if let Some(ns) = &route.namespace {
                            merged["metadata"]["namespace"] = json!(ns);
                        }
                        match create(&shared, &mut store, key, merged, dry_run, None) {
                            Ok(o) => respond(StatusCode::CREATED, &o),
                            Err(r) => *r,
                        }
                    }
                    Some(old) => {
                        match update(
                            &shared,
                            &mut store,
                            &key,
                            old,
                            merged,
                            part,
                            How {
                                writer: None,
                                dry_run,
                            },
                        ) {
                            Ok(o) => respond(StatusCode::OK, &o),
                            Err(r) => *r,
                        }
                    }
                };
            }
            let Some(old) = existing else {
                return not_found(&route);
            };
            let mut patched = old.clone();
            if content_type.contains("json-patch") {
                let patch: json_patch::Patch = match serde_json::from_value(body) {
                    Ok(p) => p,
                    Err(e) => return error(400, "BadRequest", &e.to_string()),
                };
                if let Err(e) = json_patch::patch(&mut patched, &patch) {
                    return error(422, "Invalid", &e.to_string());
                }
            } else {
                if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
                    && Some(rv) != old["metadata"]["resourceVersion"].as_str()
                {
                    return error(409, "Conflict", "the object has been modified");
                }
                if let Some(uid) = body["metadata"]["uid"].as_str()
                    && Some(uid) != old["metadata"]["uid"].as_str()
                {
                    return error(409, "Conflict", "Precondition failed: UID in precondition");
                }
                json_patch::merge(&mut patched, &body);
            }
            match update(
                &shared,
                &mut store,
                &key,
                old,
                patched,
                part,
                How {
                    writer: Some(&writer),
                    dry_run,
                },
            ) {
                Ok(o) => respond(StatusCode::OK, &o),
                Err(r) => *r,
            }
        }
        "delete" => {
            let mut store = shared.store.lock().unwrap();
            let key = key(&route);
            let orphan = q.get("propagationPolicy").is_some_and(|p| p == "Orphan")
                || body["propagationPolicy"] == "Orphan";
            if let Some(uid) = body["preconditions"]["uid"].as_str()
                && let Some(current) = store.objects.get(&key)
                && current["metadata"]["uid"].as_str() != Some(uid)
            {
                return error(409, "Conflict", "Precondition failed: UID in precondition");
            }
            match delete(&shared, &mut store, &key, orphan) {
                Some(o) => {
                    if orphan {
                        // The garbage collector orphans the dependents a
                        // little later, then lets the object go.
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let mut store = shared.store.lock().unwrap();
                            finish_orphaning(&shared, &mut store, &key);
                        });
                    }
                    respond(StatusCode::OK, &o)
                }
                None => not_found(&route),
            }
        }
        _ => error(405, "MethodNotAllowed", "unsupported"),
    }
}

fn key(route: &Route) -> (Resource, String, String) {
    (
        route.resource.clone(),
        route.namespace.clone().unwrap_or_default(),
        route.name.clone().unwrap_or_default(),
    )
}

fn not_found(route: &Route) -> Response<Body> {
    error(
        404,
        "NotFound",
        &format!(
            "{} \"{}\" not found",
            route.plural,
            route.name.clone().unwrap_or_default()
        ),
    )
}

// ------------------------------------------------------------------- writes

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Main,
    Status,
    All,
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap()
        .to_string()
}

fn record(shared: &Shared, store: &mut Store, resource: &str, type_: &'static str, object: Value) {
    let change = Change {
        rv: store.rv,
        resource: resource.to_string(),
        type_,
        object,
    };
    store.history.push_back(change.clone());
    while store.history.len() > HISTORY {
        let gone = store.history.pop_front().unwrap();
        store.oldest = gone.rv;
    }
    let _ = shared.changes.send(change);
}

fn create(
    shared: &Shared,
    store: &mut Store,
    key: (Resource, String, String),
    mut object: Value,
    dry_run: bool,
    writer: Option<&fields::Writer>,
) -> Result<Value, Box<Response<Body>>> {
    if key.2.is_empty() {
        return Err(Box::new(error(422, "Invalid", "metadata.name is required")));
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if let Some(refused) = invalid_labels(&object, &key.2) {
        return Err(Box::new(refused));
    }
    if key.0 == admission::PODS
        && let Some(message) =
            admission::pod_security(&admission::enforced_level(store, &key.1), &object)
    {
        return Err(Box::new(error(403, "Forbidden", &message)));
    }
    if object.get("kind").is_none() || object.get("apiVersion").is_none() {
        return Err(Box::new(error(
            400,
            "BadRequest",
            "apiVersion and kind are required",
        )));
    }
    store.uid += 1;
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.insert("name".into(), json!(key.2));
    if !key.1.is_empty() {
        meta.insert("namespace".into(), json!(key.1));
    }
    meta.insert(
        "uid".into(),
        json!(format!("00000000-0000-0000-0000-{:012}", store.uid)),
    );
    meta.insert("creationTimestamp".into(), json!(now()));
    meta.insert("generation".into(), json!(1));
    meta.remove("deletionTimestamp");
    set_defaults(&mut object);
    if let Some(writer) = writer {
        let owners = fields::after_update(None, &object, &[], writer);
        object["metadata"]["managedFields"] = fields::to_managed_fields(&owners);
    }
    drop_empty_managed_fields(&mut object);
    if dry_run {
        return Ok(object);
    }
    store.rv += 1;
    object["metadata"]["resourceVersion"] = json!(store.rv.to_string());
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    store.live_uids.insert(uid);
    store.objects.insert(key.clone(), object.clone());
    record(shared, store, &key.0, "ADDED", object.clone());
    // The garbage collector removes objects whose owner is already gone
    // (one created in a race with its owner's deletion).
    let orphaned = object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                !store
                    .live_uids
                    .contains(r["uid"].as_str().unwrap_or_default())
            })
        });
    if orphaned {
        delete(shared, store, &key, false);
    }
    Ok(object)
}

/// The API server's validation of label values, every kind's: at most 63
/// bytes, alphanumerics with `-`, `_` and `.` inside. A 422 Invalid
/// Status as the API server words it, or `None`.
fn invalid_labels(object: &Value, name: &str) -> Option<Response<Body>> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let labels = object["metadata"]["labels"].as_object()?;
    let mut causes = Vec::new();
    for value in labels.values() {
        let value = value.as_str().unwrap_or_default();
        let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
        let why = if value.len() > 63 {
            "must be no more than 63 bytes"
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || !edge_ok(value.chars().next())
            || !edge_ok(value.chars().last())
        {
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        } else {
            continue;
        };
        causes.push(json!({
            "reason": "FieldValueInvalid",
            "message": format!("Invalid value: {value:?}: {why}"),
            "field": "metadata.labels",
        }));
    }
    if causes.is_empty() {
        return None;
    }
    let listed: Vec<String> = causes
        .iter()
        .map(|c| {
            format!(
                "metadata.labels: {}",
                c["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let message = if listed.len() == 1 {
        format!("{kind} {name:?} is invalid: {}", listed[0])
    } else {
        format!("{kind} {name:?} is invalid: [{}]", listed.join(", "))
    };
    let mut body = status_error(422, "Invalid", &message);
    body["details"] = json!({"name": name, "kind": kind, "causes": causes});
    Some(respond(StatusCode::UNPROCESSABLE_ENTITY, &body))
}

/// Who writes, and whether only to preview (`dryRun`).
#[derive(Clone, Copy)]
struct How<'a> {
    writer: Option<&'a fields::Writer>,
    dry_run: bool,
}

/// Writes `new` over `old` (the main object keeps the stored status, the
/// status subresource changes only status); writes nothing when nothing
/// changes.
fn update(
    shared: &Shared,
    store: &mut Store,
    key: &(Resource, String, String),
    old: Value,
    new: Value,
    part: Part,
    how: How<'_>,
) -> Result<Value, Box<Response<Body>>> {
    let How { writer, dry_run } = how;
    // The ownership the write starts from: the request's managedFields
    // when it sets them (a client may reset them), else the stored ones.
    let sent_owners = new["metadata"].get("managedFields").cloned();
    let mut next = match part {
        Part::Status => {
            let mut o = old.clone();
            o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if writer.is_none()
                && let Some(owners) = &sent_owners
            {
                o["metadata"]["managedFields"] = owners.clone();
            }
            o
        }
        Part::Main => {
            let mut o = new;
            match old.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            o
        }
        Part::All => new,
    };
    if next.get("status").is_some_and(Value::is_null)
        && let Some(m) = next.as_object_mut()
    {
        m.remove("status");
    }
    // Identity and server-set fields stay as stored.
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "resourceVersion",
    ] {
        match old["metadata"].get(field) {
            Some(v) => next["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    set_defaults(&mut next);
    if let Some(writer) = writer {
        let base = match &sent_owners {
            Some(sent) if part != Part::Status => {
                fields::entries(&json!({"metadata": {"managedFields": sent}}))
            }
            _ => fields::entries(&old),
        };
        let owners = fields::after_update(Some(&old), &next, &base, writer);
        next["metadata"]["managedFields"] = fields::to_managed_fields(&owners);
    }
    drop_empty_managed_fields(&mut next);
    if next == old {
        return Ok(old);
    }
    if let Some(refused) = invalid_labels(&next, &key.2) {
        return Err(Box::new(refused));
    }
    if part == Part::Main
        && let Some((code, reason, message)) = admission::refuse_update(store, &key.0, &old, &next)
    {
        return Err(Box::new(error(code, reason, &message)));
    }
    let spec_changed = {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
                m.remove("status");
            }
            v
        };
        strip(&old) != strip(&next)
    };
    if spec_changed {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        next["metadata"]["generation"] = json!(generation);
    }
    if dry_run {
        return Ok(next);
    }
    store.rv += 1;
    next["metadata"]["resourceVersion"] = json!(store.rv.to_string());
    let deleting = next["metadata"].get("deletionTimestamp").is_some();
    let finalizers_left = next["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if deleting && !finalizers_left {
        store.objects.remove(key);
        if let Some(uid) = next["metadata"]["uid"].as_str() {
            store.live_uids.remove(uid);
        }
        record(shared, store, &key.0, "DELETED", next.clone());
        collect_garbage(shared, store, &next);
        return Ok(next);
    }
    store.objects.insert(key.clone(), next.clone());
    record(shared, store, &key.0, "MODIFIED", next.clone());
    Ok(next)
}

fn delete(
    shared: &Shared,
    store: &mut Store,
    key: &(Resource, String, String),
    orphan: bool,
) -> Option<Value> {
    let mut object = store.objects.get(key)?.clone();
    if orphan {
        // As the API server does: the `orphan` finalizer holds the object
        // until the garbage collector has orphaned its dependents.
        let finalizers = &mut object["metadata"]["finalizers"];
        if !finalizers.is_array() {
            *finalizers = json!([]);
        }
        let list = finalizers.as_array_mut().expect("array");
        if !list.iter().any(|f| f == "orphan") {
            list.push(json!("orphan"));
        }
    }
    let finalizers = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if finalizers {
        if object["metadata"].get("deletionTimestamp").is_none() {
            store.rv += 1;
            object["metadata"]["deletionTimestamp"] = json!(now());
            object["metadata"]["resourceVersion"] = json!(store.rv.to_string());
            store.objects.insert(key.clone(), object.clone());
            record(shared, store, &key.0, "MODIFIED", object.clone());
        }
        return Some(object);
    }
    store.objects.remove(key);
    if let Some(uid) = object["metadata"]["uid"].as_str() {
        store.live_uids.remove(uid);
    }
    store.rv += 1;
    object["metadata"]["resourceVersion"] = json!(store.rv.to_string());
    record(shared, store, &key.0, "DELETED", object.clone());
    collect_garbage(shared, store, &object);
    Some(object)
}

/// The garbage collector's part of an orphan deletion: the dependents lose
/// their reference to the object, then the `orphan` finalizer goes, and
/// with it the object when no other finalizer holds it.
fn finish_orphaning(shared: &Shared, store: &mut Store, key: &(Resource, String, String)) {
    let Some(object) = store.objects.get(key).cloned() else {
        return;
    };
    let uid = object["metadata"]["uid"].clone();
    let owned: Vec<_> = store
        .objects
        .iter()
        .filter(|(_, o)| owned_by(o, &uid))
        .map(|(k, _)| k.clone())
        .collect();
    let system = How {
        writer: None,
        dry_run: false,
    };
    for k in owned {
        let old = store.objects[&k].clone();
        let mut o = old.clone();
        if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
            refs.retain(|r| r["uid"] != uid);
        }
        let _ = update(shared, store, &k, old, o, Part::All, system);
    }
    let mut next = object.clone();
    if let Some(list) = next["metadata"]["finalizers"].as_array_mut() {
        list.retain(|f| f != "orphan");
    }
    let _ = update(shared, store, key, object, next, Part::All, system);
}

fn owned_by(object: &Value, uid: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| &r["uid"] == uid))
}

/// Deletes what the removed object owned.
fn collect_garbage(shared: &Shared, store: &mut Store, removed: &Value) {
    let uid = &removed["metadata"]["uid"];
    let owned: Vec<_> = store
        .objects
        .iter()
        .filter(|(_, o)| owned_by(o, uid))
        .map(|(k, _)| k.clone())
        .collect();
    for k in owned {
        delete(shared, store, &k, false);
    }
}

/// The defaults the API server fills in that the operator's objects rely
/// on: a StatefulSet's (or Deployment's) `replicas` is 1 when not given.
fn set_defaults(object: &mut Value) {
    if matches!(object["kind"].as_str(), Some("StatefulSet" | "Deployment"))
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.entry("replicas").or_insert(json!(1));
    }
}

/// An object nobody owns a field of lists no managedFields.
fn drop_empty_managed_fields(object: &mut Value) {
    if let Some(meta) = object["metadata"].as_object_mut()
        && meta
            .get("managedFields")
            .is_some_and(|m| m.as_array().is_none_or(Vec::is_empty))
    {
        meta.remove("managedFields");
    }
}

/// The `scale` subresource of a StatefulSet (or anything with
/// `spec.replicas`): read and written as an `autoscaling/v1` Scale, stored
/// as the object's `spec.replicas`, owned by the writer as a `scale` write.
fn scale(
    shared: &Shared,
    route: &Route,
    verb: &str,
    content_type: &str,
    body: Value,
    writer: &fields::Writer,
) -> Response<Body> {
    let mut store = shared.store.lock().unwrap();
    let key = key(route);
    let Some(old) = store.objects.get(&key).cloned() else {
        return not_found(route);
    };
    let as_scale = |o: &Value| {
        let meta = &o["metadata"];
        let selector = o["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": o["spec"]["replicas"].as_i64().unwrap_or(1)},
            "status": {"replicas": o["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
        })
    };
    let wanted = match verb {
        "get" => return respond(StatusCode::OK, &as_scale(&old)),
        "update" => body,
        "patch" if content_type.contains("json-patch") => {
            let mut scaled = as_scale(&old);
            let patch: json_patch::Patch = match serde_json::from_value(body) {
                Ok(p) => p,
                Err(e) => return error(400, "BadRequest", &e.to_string()),
            };
            if let Err(e) = json_patch::patch(&mut scaled, &patch) {
                return error(422, "Invalid", &e.to_string());
            }
            scaled
        }
        "patch" => {
            let mut scaled = as_scale(&old);
            json_patch::merge(&mut scaled, &body);
            scaled
        }
        _ => {
            return error(
                405,
                "MethodNotAllowed",
                "the scale subresource is read and written",
            );
        }
    };
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return error(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
        return error(
            422,
            "Invalid",
            "Scale is invalid: spec.replicas: Required value",
        );
    };
    let mut next = old.clone();
    next["spec"]["replicas"] = json!(replicas);
    match update(
        shared,
        &mut store,
        &key,
        old,
        next,
        Part::Main,
        How {
            writer: Some(writer),
            dry_run: false,
        },
    ) {
        Ok(o) => respond(StatusCode::OK, &as_scale(&o)),
        Err(r) => *r,
    }
}

// -------------------------------------------------------------- list/watch

fn selector_matches(selector: &str, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    split_selector(selector).iter().all(|term| {
        let term = term.trim();
        if term.is_empty() {
            return true;
        }
        if let Some((k, rest)) = term.split_once(" notin ") {
            let set = parse_set(rest);
            return label(k.trim()).is_none_or(|v| !set.contains(&v.to_string()));
        }
        if let Some((k, rest)) = term.split_once(" in ") {
            let set = parse_set(rest);
            return label(k.trim()).is_some_and(|v| set.contains(&v.to_string()));
        }
        if let Some((k, v)) = term.split_once("!=") {
            return label(k.trim()) != Some(v.trim());
        }
        if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return label(k.trim()) == Some(v.trim());
        }
        if let Some(k) = term.strip_prefix('!') {
            return label(k.trim()).is_none();
        }
        label(term).is_some()
    })
}

fn split_selector(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push(cur);
    terms
}

fn parse_set(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

fn field_matches(selector: &str, object: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (k, v, negate) = match term.split_once("!=") {
            Some((k, v)) => (k, v, true),
            None => match term.split_once("==").or_else(|| term.split_once('=')) {
                Some((k, v)) => (k, v, false),
                None => return true,
            },
        };
        // metadata.name, metadata.namespace, and the fields a kind adds
        // (an Event's involvedObject.name, reason ...), by their path.
        let actual = k
            .trim()
            .split('.')
            .try_fold(object, |v, part| v.get(part))
            .and_then(Value::as_str);
        (actual == Some(v.trim())) != negate
    })
}

struct Filter {
    resource: Resource,
    namespace: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
}

impl Filter {
    fn new(route: &Route, q: &BTreeMap<String, String>) -> Filter {
        Filter {
            resource: route.resource.clone(),
            namespace: route.namespace.clone(),
            labels: q.get("labelSelector").cloned().filter(|s| !s.is_empty()),
            fields: q.get("fieldSelector").cloned().filter(|s| !s.is_empty()),
        }
    }

    fn matches(&self, resource: &str, object: &Value) -> bool {
        resource == self.resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
            && self
                .labels
                .as_deref()
                .is_none_or(|s| selector_matches(s, &object["metadata"]["labels"]))
            && self
                .fields
                .as_deref()
                .is_none_or(|s| field_matches(s, object))
    }
}

fn list_kind(resource: &str, items: &[Value]) -> String {
    match items.first().and_then(|o| o["kind"].as_str()) {
        Some(kind) => format!("{kind}List"),
        None => {
            let _ = resource;
            "List".to_string()
        }
    }
}

fn list(shared: &Shared, route: &Route, q: &BTreeMap<String, String>) -> Response<Body> {
    let filter = Filter::new(route, q);
    let store = shared.store.lock().unwrap();
    let start = (
        route.resource.clone(),
        route.namespace.clone().unwrap_or_default(),
        String::new(),
    );
    let items: Vec<Value> = store
        .objects
        .range(start..)
        .take_while(|((r, _, _), _)| *r == route.resource)
        .filter(|((r, _, _), o)| filter.matches(r, o))
        .map(|(_, o)| o.clone())
        .collect();
    let api_version = route
        .resource
        .rsplit_once('/')
        .map(|(gv, _)| gv.trim_start_matches('/'))
        .unwrap_or("v1");
    respond(
        StatusCode::OK,
        &json!({
            "kind": list_kind(&route.resource, &items),
            "apiVersion": api_version,
            "metadata": {"resourceVersion": store.rv.to_string()},
            "items": items,
        }),
    )
}

fn line(event_type: &str, object: &Value) -> Result<Frame<Bytes>, Infallible> {
    let text = json!({"type": event_type, "object": object}).to_string() + "\n";
    Ok(Frame::data(Bytes::from(text)))
}

fn watch(shared: Arc<Shared>, route: Route, q: BTreeMap<String, String>) -> Response<Body> {
    let filter = Filter::new(&route, &q);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(300));
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1024);
    let mut changes = shared.changes.subscribe();
    let mut drops = shared.drops.subscribe();
    let (initial, last_rv) = {
        let store = shared.store.lock().unwrap();
        if since == 0 {
            let items: Vec<_> = store
                .objects
                .iter()
                .filter(|((r, _, _), o)| filter.matches(r, o))
                .map(|(_, o)| line("ADDED", o))
                .collect();
            (items, store.rv)
        } else if since < store.oldest {
            let gone = status_error(410, "Expired", "too old resource version");
            (vec![line("ERROR", &gone)], u64::MAX)
        } else {
            let items: Vec<_> = store
                .history
                .iter()
                .filter(|c| c.rv > since && filter.matches(&c.resource, &c.object))
                .map(|c| line(c.type_, &c.object))
                .collect();
            (items, store.rv)
        }
    };
    let kind_hint = shared
        .store
        .lock()
        .unwrap()
        .objects
        .iter()
        .find(|((r, _, _), _)| *r == route.resource)
        .map(|(_, o)| (o["apiVersion"].clone(), o["kind"].clone()));
    tokio::spawn(async move {
        for frame in initial {
            if tx.send(frame).await.is_err() {
                return;
            }
        }
        if last_rv == u64::MAX {
            return;
        }
        let mut seen = last_rv;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(shared.bookmark_every);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = drops.recv() => return,
                _ = tick.tick(), if bookmarks => {
                    let (api_version, kind) = kind_hint.clone().unwrap_or((json!("v1"), json!("Unknown")));
                    let mark = json!({"apiVersion": api_version, "kind": kind,
                        "metadata": {"resourceVersion": seen.to_string()}});
                    if tx.send(line("BOOKMARK", &mark)).await.is_err() {
                        return;
                    }
                }
                change = changes.recv() => {
                    let change = match change {
                        Ok(c) => c,
                        // Fell behind: end the watch; the client resumes.
                        Err(_) => return,
                    };
                    if change.rv <= seen {
                        continue;
                    }
                    seen = change.rv;
                    if filter.matches(&change.resource, &change.object)
                        && tx.send(line(change.type_, &change.object)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream_from(rx);
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}
