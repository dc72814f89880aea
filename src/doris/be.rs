//! A client of a Doris BE's (or CN's) HTTP webserver, for the two calls the
//! operator makes there: `GET /api/show_config` (every setting, its value
//! and whether it may change while the BE runs) and
//! `POST /api/update_config?<key>=<value>&persist=true` (change a setting
//! now, and write it to the BE's `be_custom.conf` so a restart keeps it).
//!
//! One plain HTTP/1.1 request per connection, bounded by timeouts: a BE
//! that does not answer delays the caller, it never holds it for long.
//!
//! A BE with `enable_all_http_auth = true` in be.conf (apache/doris PR
//! #39577; off by default) wants HTTP Basic credentials of a Doris user
//! with ADMIN on every call, checked by the master FE
//! (be/src/http/http_handler_with_auth.cpp): none is `401` with
//! `WWW-Authenticate: Basic realm="Restricted"`, a user it does not accept
//! `403`. The client sends the credentials it was given only once a BE has
//! asked for them with a 401, and from then on to that BE: Basic
//! credentials cross the pod network readable by anyone on the path, so a
//! BE that does not check them (the default) never gets them, at the cost
//! of one refused request per client of a BE that does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};

/// Where one BE's webserver is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeEndpoint {
    /// `host:port` the connection goes to.
    pub connect: String,
    /// The `Host` header: the node's own name and webserver port. A BE
    /// ignores it; it tells a stand-in serving many nodes which one is meant.
    pub authority: String,
}

/// The Doris user a BE's webserver is shown when it asks (HTTP Basic).
#[derive(Clone, PartialEq, Eq)]
pub struct BeAuth {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for BeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl BeAuth {
    /// The `Authorization` header value.
    fn header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

/// One setting as `show_config` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeConfig {
    pub name: String,
    pub type_: String,
    pub value: String,
    pub mutable: bool,
}

/// Why a call to a BE failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeError {
    /// Nothing answered (connection refused, timeout, reset): worth retrying.
    #[error("{endpoint} did not answer: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The BE answered and refused.
    #[error("{endpoint} refused: {message}")]
    Refused { endpoint: String, message: String },
    /// The BE answered something this client cannot read.
    #[error("{endpoint} answered unreadably: {reason}")]
    Unreadable { endpoint: String, reason: String },
}

impl BeError {
    /// The message without the address, for status.
    pub fn brief(&self) -> String {
        match self {
            BeError::Unreachable { reason, .. } => format!("did not answer: {reason}"),
            BeError::Refused { message, .. } => message.clone(),
            BeError::Unreadable { reason, .. } => format!("answered unreadably: {reason}"),
        }
    }
}

/// Bounds on one call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one BE's webserver. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BeClient {
    endpoint: BeEndpoint,
    auth: Option<BeAuth>,
    /// The BE asked for credentials (a 401): send them from now on.
    asked: Arc<AtomicBool>,
}

impl BeClient {
    pub fn new(endpoint: BeEndpoint) -> Self {
        BeClient {
            endpoint,
            auth: None,
            asked: Arc::default(),
        }
    }

    /// Shows `auth` to a BE that asks for credentials.
    pub fn with_auth(mut self, auth: Option<BeAuth>) -> Self {
        self.auth = auth;
        self
    }

    pub fn endpoint(&self) -> &BeEndpoint {
        &self.endpoint
    }

    /// `GET /api/show_config`.
    pub async fn show_config(&self) -> Result<Vec<BeConfig>, BeError> {
        let (answer, body) = self.request(Method::GET, "/api/show_config").await?;
        if answer.status != StatusCode::OK {
            return Err(self.refused(answer, &body));
        }
        parse_show_config(&body).map_err(|reason| BeError::Unreadable {
            endpoint: self.endpoint.authority.clone(),
            reason,
        })
    }

    /// `POST /api/update_config?<key>=<value>&persist=true`.
    pub async fn update_config(&self, key: &str, value: &str) -> Result<(), BeError> {
        let path = format!(
            "/api/update_config?{}={}&persist=true",
            percent_encode(key),
            percent_encode(value)
        );
        let (answer, body) = self.request(Method::POST, &path).await?;
        if answer.status != StatusCode::OK {
            return Err(self.refused(answer, &body));
        }
        match update_result(&body, key) {
            Ok(UpdateResult::Taken) => Ok(()),
            Ok(UpdateResult::Refused(message)) => Err(BeError::Refused {
                endpoint: self.endpoint.authority.clone(),
                message,
            }),
            Err(reason) => Err(BeError::Unreadable {
                endpoint: self.endpoint.authority.clone(),
                reason,
            }),
        }
    }

    /// One request; when the BE asks for credentials and there are some,
    /// the same request again with them.
    async fn request(&self, method: Method, path: &str) -> Result<(Response, String), BeError> {
        let auth = self.auth.as_ref();
        let send = self.asked.load(Ordering::Relaxed);
        let answer = self
            .call(method.clone(), path, auth.filter(|_| send))
            .await?;
        if answer.0.status != StatusCode::UNAUTHORIZED || send || auth.is_none() {
            return Ok(answer);
        }
        self.asked.store(true, Ordering::Relaxed);
        self.call(method, path, auth).await
    }

    fn refused(&self, answer: Response, body: &str) -> BeError {
        let status = answer.status;
        let mut said = format!("HTTP {status}");
        if let Some(challenge) = &answer.challenge {
            said.push_str(&format!(" (WWW-Authenticate: {challenge})"));
        }
        let body: String = body.trim().chars().take(300).collect();
        if !body.is_empty() {
            said.push_str(&format!(": {body}"));
        }
        let message = match (status, &self.auth) {
            (StatusCode::UNAUTHORIZED, None) => format!(
                "{said}; the BE checks HTTP requests (enable_all_http_auth = true in be.conf) \
                 and the operator has no Doris user to show it: give the operator a Doris \
                 user with ADMIN privilege (spec.authSecret)"
            ),
            (StatusCode::UNAUTHORIZED, Some(auth)) => format!(
                "{said}; the BE checks HTTP requests (enable_all_http_auth = true in be.conf) \
                 and did not take the credentials of user '{}': give the operator a Doris \
                 user with ADMIN privilege (spec.authSecret)",
                auth.user
            ),
            (StatusCode::FORBIDDEN, auth) => format!(
                "{said}; the BE checks HTTP requests (enable_all_http_auth = true in be.conf) \
                 and the master FE did not accept user '{}' with its password and ADMIN \
                 privilege: give the operator a Doris user with ADMIN privilege \
                 (spec.authSecret)",
                auth.as_ref().map_or("", |a| a.user.as_str())
            ),
            _ => said,
        };
        BeError::Refused {
            endpoint: self.endpoint.authority.clone(),
            message,
        }
    }

    /// One request on a fresh connection: the status and the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&BeAuth>,
    ) -> Result<(Response, String), BeError> {
        let unreachable = |reason: String| BeError::Unreachable {
            endpoint: self.endpoint.authority.clone(),
            reason,
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&self.endpoint.connect),
        )
        .await
        .map_err(|_| unreachable(format!("no connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            let driver = tokio::spawn(connection);
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &self.endpoint.authority)
                .header(hyper::header::USER_AGENT, crate::controller::USER_AGENT);
            if let Some(auth) = auth {
                request = request.header(hyper::header::AUTHORIZATION, auth.header());
            }
            let request = request
                .body(Empty::<Bytes>::new())
                .map_err(|e| unreachable(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let answer = Response {
                status: response.status(),
                challenge: response
                    .headers()
                    .get(hyper::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            };
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            driver.abort();
            Ok((answer, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }
}

/// What a BE answered, besides its body.
#[derive(Debug)]
struct Response {
    status: StatusCode,
    /// `WWW-Authenticate`, when it asks for credentials.
    challenge: Option<String>,
}

/// What a BE said about the one key an `update_config` call set.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateResult {
    Taken,
    /// Doris's `msg`.
    Refused(String),
}

/// Reads `update_config`'s answer for `key` (be/src/http/action/config_action.cpp):
/// from 2.1 (apache/doris PR #23702) an array with an entry per key,
/// `[{"config_name": k, "status": "OK" | "BAD", "msg": ...}]`; before, one
/// `{"status": ..., "msg": ...}`. An array without an entry for `key` is
/// unreadable: the BE did not say it took it.
pub fn update_result(body: &str, key: &str) -> Result<UpdateResult, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("{e}: {body:.200}"))?;
    let result = match &answer {
        serde_json::Value::Array(items) => items
            .iter()
            .find(|i| i["config_name"].as_str() == Some(key))
            .ok_or_else(|| format!("no result for {key} in {body:.200}"))?,
        serde_json::Value::Object(_) => &answer,
        _ => return Err(format!("not a result: {body:.200}")),
    };
    let status = result["status"]
        .as_str()
        .ok_or_else(|| format!("no status in {body:.200}"))?;
    if status.eq_ignore_ascii_case("OK") {
        return Ok(UpdateResult::Taken);
    }
    let message = result["msg"].as_str().filter(|m| !m.is_empty());
    Ok(UpdateResult::Refused(message.unwrap_or(status).to_string()))
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `show_config`'s answer: an array of `[name, type, value, is_mutable]`.
pub fn parse_show_config(body: &str) -> Result<Vec<BeConfig>, String> {
    let rows: Vec<Vec<String>> =
        serde_json::from_str(body).map_err(|e| format!("not a list of settings: {e}"))?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match row.as_slice() {
            [name, type_, value, mutable, ..] => Ok(BeConfig {
                name: name.clone(),
                type_: type_.clone(),
                value: value.clone(),
                mutable: mutable.eq_ignore_ascii_case("true"),
            }),
            _ => Err(format!(
                "setting {i} has {} fields, not [name, type, value, is_mutable]",
                row.len()
            )),
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters (RFC 3986), so a
/// value such as a JSON path list survives the query string.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_config_rows_are_read_by_position() {
        let body = r#"[["disable_auto_compaction","bool","false","true"],["be_port","int32","9060","false"]]"#;
        let configs = parse_show_config(body).unwrap();
        assert_eq!(configs.len(), 2);
        assert!(configs[0].mutable);
        assert_eq!(configs[1].name, "be_port");
        assert!(!configs[1].mutable);
        assert!(
            parse_show_config(r#"[["x","bool"]]"#)
                .unwrap_err()
                .contains("2 fields")
        );
    }

    #[test]
    fn update_config_answers_of_both_shapes_are_read_for_the_key_sent() {
        // 2.1 and later.
        let array = r#"[{"config_name": "disable_auto_compaction", "status": "OK", "msg": ""}]"#;
        assert_eq!(
            update_result(array, "disable_auto_compaction"),
            Ok(UpdateResult::Taken)
        );
        let bad = r#"[{"config_name": "x", "status": "BAD", "msg": "set x=1 failed, reason: [NOT_FOUND]'x' is not found."}]"#;
        assert_eq!(
            update_result(bad, "x"),
            Ok(UpdateResult::Refused(
                "set x=1 failed, reason: [NOT_FOUND]'x' is not found.".into()
            ))
        );
        // An answer that does not name the key sent says nothing about it.
        assert!(
            update_result("[]", "x")
                .unwrap_err()
                .contains("no result for x")
        );
        assert!(update_result(array, "x").is_err());
        // Before 2.1.
        let old = "{\n    \"status\": \"BAD\",\n    \"msg\": \"Now only support to set a single config once\"\n}";
        assert_eq!(
            update_result(old, "x"),
            Ok(UpdateResult::Refused(
                "Now only support to set a single config once".into()
            ))
        );
        assert_eq!(
            update_result(r#"{"status": "OK", "msg": ""}"#, "x"),
            Ok(UpdateResult::Taken)
        );
        assert!(update_result(r#""OK""#, "x").is_err());
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"admin:s3cret!"), "YWRtaW46czNjcmV0IQ==");
        let auth = BeAuth {
            user: "admin".into(),
            password: "s3cret!".into(),
        };
        assert_eq!(auth.header(), "Basic YWRtaW46czNjcmV0IQ==");
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(percent_encode("a_b-1.2~"), "a_b-1.2~");
        assert_eq!(percent_encode(r#"[{"p":1}]"#), "%5B%7B%22p%22%3A1%7D%5D");
        assert_eq!(percent_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
