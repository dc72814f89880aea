//! Where an FE is and how it is reached: host, port, credentials, TLS,
//! timeouts and retries.

use std::fmt;
use std::time::Duration;

use super::rows::join_host_port;

/// The FE's MySQL query port when none is given.
pub const DEFAULT_QUERY_PORT: u16 = 9030;

/// Where the FE's MySQL port is and whom to log in as.
#[derive(Clone, PartialEq, Eq)]
pub struct FeEndpoint {
    pub host: String,
    /// The FE's query port (`query_port` in fe.conf).
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Connect over TLS with these; plain MySQL when `None`.
    pub tls: Option<FeTls>,
}

/// What a TLS connection to an FE needs, all PEM: the CA that signed the
/// FE's certificate, and the client's certificate and private key.
#[derive(Clone, PartialEq, Eq)]
pub struct FeTls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Which of the three PEM inputs of [`FeTls::new`] is unusable, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{which}: {why}")]
pub struct PemError {
    /// `ca`, `cert` or `key`.
    pub which: &'static str,
    pub why: String,
}

impl FeTls {
    /// Checks that `ca` and `cert` hold at least one PEM certificate each
    /// and `key` a PEM private key, so that a bad input is told apart from
    /// a failed handshake.
    pub fn new(ca: Vec<u8>, cert: Vec<u8>, key: Vec<u8>) -> Result<FeTls, PemError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        for (which, pem) in [("ca", &ca), ("cert", &cert)] {
            let mut found = 0;
            for item in CertificateDer::pem_slice_iter(pem) {
                item.map_err(|e| PemError {
                    which,
                    why: format!("not a PEM certificate: {e}"),
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(PemError {
                    which,
                    why: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                });
            }
        }
        PrivateKeyDer::from_pem_slice(&key).map_err(|e| PemError {
            which: "key",
            why: format!("holds no usable PEM private key: {e}"),
        })?;
        Ok(FeTls { ca, cert, key })
    }

    pub(super) fn ssl_opts(&self) -> mysql_async::SslOpts {
        mysql_async::SslOpts::default()
            // Only the cluster's CA vouches for its FEs.
            .with_disable_built_in_roots(true)
            .with_root_certs(vec![self.ca.clone().into()])
            .with_client_identity(Some(mysql_async::ClientIdentity::new(
                self.cert.clone().into(),
                self.key.clone().into(),
            )))
    }
}

impl fmt::Debug for FeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeTls")
            .field("ca", &format_args!("<{} bytes>", self.ca.len()))
            .field("cert", &format_args!("<{} bytes>", self.cert.len()))
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

impl FeEndpoint {
    /// `root` with an empty password on the default query port, as a new
    /// Doris cluster has.
    pub fn new(host: impl Into<String>) -> Self {
        FeEndpoint {
            host: host.into(),
            port: DEFAULT_QUERY_PORT,
            user: "root".to_string(),
            password: String::new(),
            tls: None,
        }
    }

    /// Connects over TLS with `tls`.
    pub fn with_tls(mut self, tls: FeTls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// `host:port`, with an IPv6 address in brackets.
    pub fn addr(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Debug for FeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("FeEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &format_args!("{password}"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Timeouts and retries of an [`FeClient`].
///
/// A failure to connect is tried again up to `retries` times; so is a read
/// whose connection broke. A write that reached the FE, a timed-out
/// answer, a refused login and an SQL error are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeClientConfig {
    /// Bound on opening a connection and logging in, per attempt.
    pub connect_timeout: Duration,
    /// Bound on one statement's answer.
    pub query_timeout: Duration,
    /// How many more times a transient failure is tried again.
    pub retries: u32,
    /// Pause before the first retry; doubled before each next one.
    pub retry_backoff: Duration,
}

impl Default for FeClientConfig {
    fn default() -> Self {
        FeClientConfig {
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// A failed call: which FE, which statement, and why.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::doris::FeClient;

    #[test]
    fn debug_never_prints_the_password() {
        let ep = FeEndpoint::new("fe.example")
            .with_port(19030)
            .with_credentials("admin", "s3cr3t-pw");
        let shown = format!("{ep:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(
            shown.contains("admin") && shown.contains("19030"),
            "{shown}"
        );
        let pretty = format!("{ep:#?}");
        assert!(!pretty.contains("s3cr3t-pw"), "{pretty}");

        let client = FeClient::new(ep);
        assert!(!format!("{client:?}").contains("s3cr3t-pw"));

        let empty = format!("{:?}", FeEndpoint::new("h"));
        assert!(
            empty.contains("<empty>") && empty.contains("9030"),
            "{empty}"
        );
    }
}
