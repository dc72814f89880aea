//! A client of a Doris BE's (or CN's) HTTP webserver, for the two calls the
//! operator makes there: `GET /api/show_config` (every setting, its value
//! and whether it may change while the BE runs) and
//! `POST /api/update_config?<key>=<value>&persist=true` (change a setting
//! now, and write it to the BE's `be_custom.conf` so a restart keeps it).
//!
//! One plain HTTP/1.1 request per connection, bounded by timeouts: a BE
//! that does not answer delays the caller, it never holds it for long.

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
}

impl BeClient {
    pub fn new(endpoint: BeEndpoint) -> Self {
        BeClient { endpoint }
    }

    pub fn endpoint(&self) -> &BeEndpoint {
        &self.endpoint
    }

    /// `GET /api/show_config`.
    pub async fn show_config(&self) -> Result<Vec<BeConfig>, BeError> {
        let (status, body) = self.call(Method::GET, "/api/show_config").await?;
        if status != StatusCode::OK {
            return Err(self.refused(status, &body));
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
        let (status, body) = self.call(Method::POST, &path).await?;
        if status != StatusCode::OK {
            return Err(self.refused(status, &body));
        }
        // `{"status": "OK", "msg": ""}`, or an array of them (one per key)
        // from releases that report each key.
        let answer: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| BeError::Unreadable {
                endpoint: self.endpoint.authority.clone(),
                reason: format!("{e}: {body:.200}"),
            })?;
        let results = match &answer {
            serde_json::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for result in results {
            let status = result["status"].as_str().unwrap_or_default();
            if !status.eq_ignore_ascii_case("OK") {
                let message = result["msg"].as_str().unwrap_or(status);
                return Err(BeError::Refused {
                    endpoint: self.endpoint.authority.clone(),
                    message: message.to_string(),
                });
            }
        }
        Ok(())
    }

    fn refused(&self, status: StatusCode, body: &str) -> BeError {
        BeError::Refused {
            endpoint: self.endpoint.authority.clone(),
            message: format!(
                "HTTP {status}: {}",
                body.trim().chars().take(300).collect::<String>()
            ),
        }
    }

    /// One request on a fresh connection: the status and the body.
    async fn call(&self, method: Method, path: &str) -> Result<(StatusCode, String), BeError> {
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
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &self.endpoint.authority)
                .header(hyper::header::USER_AGENT, crate::controller::USER_AGENT)
                .body(Empty::<Bytes>::new())
                .map_err(|e| unreachable(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            driver.abort();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }
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
    fn values_are_percent_encoded() {
        assert_eq!(percent_encode("a_b-1.2~"), "a_b-1.2~");
        assert_eq!(percent_encode(r#"[{"p":1}]"#), "%5B%7B%22p%22%3A1%7D%5D");
        assert_eq!(percent_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
