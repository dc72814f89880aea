//! What a failed FE call says: which FE, which statement, why, and
//! whether trying again may help.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("FE {addr}: `{statement}` failed after {attempts} attempt(s): {kind}")]
pub struct FeError {
    /// The FE's `host:port`.
    pub addr: String,
    /// The statement that failed; it never holds the password.
    pub statement: String,
    /// How many times the call was tried.
    pub attempts: u32,
    pub kind: FeErrorKind,
}

impl FeError {
    /// The failure without details that vary from one try to the next (OS
    /// error texts, server messages): for status, which is rewritten only
    /// when it changes.
    pub fn brief(&self) -> String {
        let why = match &self.kind {
            FeErrorKind::InvalidArgument(m) => format!("invalid argument: {m}"),
            FeErrorKind::ConnectTimeout(d) => format!("no connection within {d:?}"),
            FeErrorKind::Connect(_) => "cannot connect".to_string(),
            FeErrorKind::Tls(m) => format!("TLS: {m}"),
            FeErrorKind::AccessDenied { user, .. } => format!("access denied for user `{user}`"),
            FeErrorKind::QueryTimeout(d) => format!("no answer within {d:?}"),
            FeErrorKind::Server { code, .. } => {
                format!("`{}` failed with ERROR {code}", self.statement)
            }
            FeErrorKind::ConnectionLost(_) => "connection lost".to_string(),
            FeErrorKind::Parse(_) => format!("unexpected answer to `{}`", self.statement),
        };
        format!("FE {}: {why}", self.addr)
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeErrorKind {
    /// The call was refused before anything was sent, e.g. a host with a
    /// quote in it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No connection within the connect timeout.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The connection could not be opened (refused, reset, closed).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed: a certificate not signed by the CA, a
    /// name it does not cover, a client certificate the FE refused, or an
    /// FE that does not speak TLS.
    #[error("TLS: {0}")]
    Tls(String),
    /// The FE refused the user name or password.
    #[error("access denied for user `{user}`: {message}")]
    AccessDenied { user: String, message: String },
    /// No answer within the query timeout.
    #[error("no answer within {0:?}")]
    QueryTimeout(Duration),
    /// The FE answered with an SQL error.
    #[error("ERROR {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// The connection broke while the statement ran.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The answer was not what the statement returns.
    #[error("unexpected answer: {0}")]
    Parse(String),
}

impl FeError {
    /// Whether trying again later may succeed: the FE was unreachable or
    /// slow, rather than refusing the statement or the login.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The FE's own message when it answered with an SQL error.
    pub fn server_message(&self) -> Option<&str> {
        match &self.kind {
            FeErrorKind::Server { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl FeErrorKind {
    pub(super) fn is_transient(&self) -> bool {
        matches!(
            self,
            FeErrorKind::ConnectTimeout(_)
                | FeErrorKind::Connect(_)
                | FeErrorKind::QueryTimeout(_)
                | FeErrorKind::ConnectionLost(_)
        )
    }
}
