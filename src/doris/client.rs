//! [`FeClient`]: one statement per connection, bounded by timeouts;
//! reads retried, writes never sent twice.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use std::sync::Arc;
use std::time::Duration;

use super::rows::join_host_port;
use super::{Backend, Frontend, FrontendConfig, Release};
use super::{FeClientConfig, FeEndpoint, FeError, FeErrorKind, FeTls, RawRow};

/// digits and `.-_:%[]` only, so it can never end a quoted string.
pub fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".to_string());
    }
    if host.len() > 253 {
        return Err(format!("host longer than 253 characters: {host:.40}..."));
    }
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_:%[]".contains(*c)))
    {
        Some(c) => Err(format!("host {host:?} contains {c:?}")),
        None => Ok(()),
    }
}

/// A double-quoted SQL string literal; refuses quotes, backslashes and
/// control characters rather than escaping them.
pub fn quote_string(s: &str) -> Result<String, String> {
    match s
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | '`') || c.is_control())
    {
        Some(c) => Err(format!("{s:?} contains {c:?}")),
        None => Ok(format!("\"{s}\"")),
    }
}

/// A compute group name, quoted: a letter, then letters, digits, `_` and
/// `-`.
fn quoted_compute_group(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "compute group name {name:?} must be a letter followed by letters, digits, _ or -"
        ));
    }
    quote_string(name)
}

/// `"host:port"`, quoted, for `ALTER SYSTEM`.
fn quoted_host_port(host: &str, port: u16) -> Result<String, String> {
    validate_host(host)?;
    if port == 0 {
        return Err("port 0".to_string());
    }
    quote_string(&join_host_port(host, port))
}

/// Whether a statement only reads, and so may be sent again after it
/// reached the FE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotence {
    Read,
    Write,
}

/// Told how each call ended: `None` when the FE answered, else the error.
pub type Observer = Arc<dyn Fn(Option<&FeError>) + Send + Sync>;

/// A client of one FE. Cheap to clone.
#[derive(Clone)]
pub struct FeClient {
    endpoint: FeEndpoint,
    config: FeClientConfig,
    observer: Option<Observer>,
}

impl std::fmt::Debug for FeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeClient")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FeClient {
    pub fn new(endpoint: FeEndpoint) -> Self {
        FeClient::with_config(endpoint, FeClientConfig::default())
    }

    pub fn with_config(endpoint: FeEndpoint, config: FeClientConfig) -> Self {
        FeClient {
            endpoint,
            config,
            observer: None,
        }
    }

    /// The same client, telling `observer` how each call ends.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Opens a connection (the MySQL handshake, and the login) and closes
    /// it, sending no statement: whether the FE answers at all.
    pub async fn reach(&self) -> Result<(), FeError> {
        self.run_all(&[], Idempotence::Read).await.map(drop)
    }

    pub fn endpoint(&self) -> &FeEndpoint {
        &self.endpoint
    }

    pub fn config(&self) -> &FeClientConfig {
        &self.config
    }

    /// `SHOW FRONTENDS`.
    pub async fn show_frontends(&self) -> Result<Vec<Frontend>, FeError> {
        self.read_rows("SHOW FRONTENDS", Frontend::from_row).await
    }

    /// `SHOW BACKENDS`.
    pub async fn show_backends(&self) -> Result<Vec<Backend>, FeError> {
        self.read_rows("SHOW BACKENDS", Backend::from_row).await
    }

    /// `SHOW FRONTENDS` then `SHOW BACKENDS`, on one connection.
    pub async fn show_members(&self) -> Result<(Vec<Frontend>, Vec<Backend>), FeError> {
        let statements = ["SHOW FRONTENDS", "SHOW BACKENDS"];
        let results = self.run_all(&statements, Idempotence::Read).await?;
        let [frontends, backends] = <[Vec<RawRow>; 2]>::try_from(results)
            .map_err(|_| self.error(statements[0], 1, FeErrorKind::Parse("no answer".into())))?;
        Ok((
            self.parse_rows(statements[0], &frontends, Frontend::from_row)?,
            self.parse_rows(statements[1], &backends, Backend::from_row)?,
        ))
    }

    /// `SELECT @@version_comment`: the Doris release of the FE that
    /// answers (`Doris version doris-2.1.5-rc02-<hash>`), `None` when the
    /// text names none.
    pub async fn release(&self) -> Result<Option<Release>, FeError> {
        let statement = "SELECT @@version_comment";
        let rows = self.run(statement, Idempotence::Read).await?;
        Ok(rows
            .first()
            .and_then(RawRow::first_value)
            .and_then(Release::from_version))
    }

    /// `SHOW FRONTEND CONFIG`: the settings of the FE that answers.
    pub async fn show_frontend_config(&self) -> Result<Vec<FrontendConfig>, FeError> {
        self.read_rows("SHOW FRONTEND CONFIG", FrontendConfig::from_row)
            .await
    }

    /// `ADMIN SET ALL FRONTENDS CONFIG ("key" = "value")`: changes a
    /// mutable setting on every FE at once (Doris takes one key per
    /// statement). Not kept across an FE restart: fe.conf carries it then.
    pub async fn set_all_frontends_config(&self, key: &str, value: &str) -> Result<(), FeError> {
        let statement = quote_string(key).and_then(|k| {
            quote_string(value).map(|v| format!("ADMIN SET ALL FRONTENDS CONFIG ({k} = {v})"))
        });
        self.write(statement, "ADMIN SET ALL FRONTENDS CONFIG")
            .await
    }

    /// `ADMIN SET FRONTEND CONFIG ("key" = "value")`: changes a mutable
    /// setting on the FE this client reaches only (a master-only key is
    /// forwarded to the master and set there). Every release takes it.
    pub async fn set_frontend_config(&self, key: &str, value: &str) -> Result<(), FeError> {
        let statement = quote_string(key).and_then(|k| {
            quote_string(value).map(|v| format!("ADMIN SET FRONTEND CONFIG ({k} = {v})"))
        });
        self.write(statement, "ADMIN SET FRONTEND CONFIG").await
    }

    /// `ALTER SYSTEM ADD BACKEND "host:heartbeat_port"`. Doris answers
    /// `Same backend already exists[...]` for a backend it has.
    pub async fn add_backend(&self, host: &str, heartbeat_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD BACKEND", host, heartbeat_port)
            .await
    }

    /// `ALTER SYSTEM ADD BACKEND "host:heartbeat_port" PROPERTIES
    /// ("tag.compute_group_name" = "<group>")`: registers a backend into a
    /// compute group of a storage-compute separated cluster (Doris 3.0.2
    /// and later; the group is created with its first backend). Doris
    /// answers `Same backend already exists[...]` for a backend it has.
    pub async fn add_backend_to_compute_group(
        &self,
        host: &str,
        heartbeat_port: u16,
        compute_group: &str,
    ) -> Result<(), FeError> {
        const VERB: &str = "ALTER SYSTEM ADD BACKEND";
        let statement = quoted_host_port(host, heartbeat_port).and_then(|target| {
            let group = quoted_compute_group(compute_group)?;
            Ok(format!(
                "{VERB} {target} PROPERTIES (\"tag.compute_group_name\" = {group})"
            ))
        });
        self.write(statement, VERB).await
    }

    /// `ALTER SYSTEM DECOMMISSION BACKEND "host:heartbeat_port"`: Doris
    /// moves the backend's tablets to others, then removes it. Progress
    /// shows in [`Backend::tablet_num`].
    pub async fn decommission_backend(
        &self,
        host: &str,
        heartbeat_port: u16,
    ) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DECOMMISSION BACKEND", host, heartbeat_port)
            .await
    }

    /// `CANCEL DECOMMISSION BACKEND "host:heartbeat_port"`; a backend not
    /// being decommissioned is left as it is.
    pub async fn cancel_decommission(
        &self,
        host: &str,
        heartbeat_port: u16,
    ) -> Result<(), FeError> {
        self.node_statement("CANCEL DECOMMISSION BACKEND", host, heartbeat_port)
            .await
    }

    /// Removes a backend at once, discarding the tablets on it.
    ///
    /// Doris refuses `ALTER SYSTEM DROP BACKEND` ("If you insist, use DROPP
    /// instead of DROP") and removes the backend only for `DROPP`: with
    /// `force` false this sends `DROP` and so reports that refusal; with
    /// `force` true it sends `DROPP`. Use [`FeClient::decommission_backend`]
    /// to remove a backend without losing data.
    pub async fn drop_backend(
        &self,
        host: &str,
        heartbeat_port: u16,
        force: bool,
    ) -> Result<(), FeError> {
        let verb = if force {
            "ALTER SYSTEM DROPP BACKEND"
        } else {
            "ALTER SYSTEM DROP BACKEND"
        };
        self.node_statement(verb, host, heartbeat_port).await
    }

    /// `ALTER SYSTEM ADD FOLLOWER "host:edit_log_port"`.
    pub async fn add_follower(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD FOLLOWER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM ADD OBSERVER "host:edit_log_port"`.
    pub async fn add_observer(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM ADD OBSERVER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM DROP FOLLOWER "host:edit_log_port"`.
    pub async fn drop_follower(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DROP FOLLOWER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM DROP OBSERVER "host:edit_log_port"`.
    pub async fn drop_observer(&self, host: &str, edit_log_port: u16) -> Result<(), FeError> {
        self.node_statement("ALTER SYSTEM DROP OBSERVER", host, edit_log_port)
            .await
    }

    /// `ALTER SYSTEM MODIFY BACKEND "host:port" SET ("disable_query" = ...,
    /// "disable_load" = ...)`: stop (or resume) sending queries and loads to
    /// a backend, e.g. before restarting it.
    pub async fn set_backend_query_load(
        &self,
        host: &str,
        heartbeat_port: u16,
        disable_query: bool,
        disable_load: bool,
    ) -> Result<(), FeError> {
        let statement = quoted_host_port(host, heartbeat_port).map(|target| {
            format!(
                "ALTER SYSTEM MODIFY BACKEND {target} SET (\"disable_query\" = \"{disable_query}\", \"disable_load\" = \"{disable_load}\")"
            )
        });
        self.write(statement, "ALTER SYSTEM MODIFY BACKEND").await
    }

    /// `VERB "host:port"`, the form of every membership change.
    async fn node_statement(&self, verb: &str, host: &str, port: u16) -> Result<(), FeError> {
        let statement = quoted_host_port(host, port).map(|target| format!("{verb} {target}"));
        self.write(statement, verb).await
    }

    /// Runs a write built from arguments; `verb` names it in the error when
    /// the arguments were refused.
    async fn write(&self, statement: Result<String, String>, verb: &str) -> Result<(), FeError> {
        match statement {
            Ok(statement) => self.run(&statement, Idempotence::Write).await.map(|_| ()),
            Err(reason) => Err(self.error(verb, 0, FeErrorKind::InvalidArgument(reason))),
        }
    }

    async fn read_rows<T>(
        &self,
        statement: &str,
        parse: fn(&RawRow) -> Result<T, String>,
    ) -> Result<Vec<T>, FeError> {
        let rows = self.run(statement, Idempotence::Read).await?;
        self.parse_rows(statement, &rows, parse)
    }

    fn parse_rows<T>(
        &self,
        statement: &str,
        rows: &[RawRow],
        parse: fn(&RawRow) -> Result<T, String>,
    ) -> Result<Vec<T>, FeError> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                parse(row).map_err(|reason| {
                    self.error(
                        statement,
                        1,
                        FeErrorKind::Parse(format!("row {i}: {reason}")),
                    )
                })
            })
            .collect()
    }

    /// Runs one statement on a fresh connection, with timeouts and retries.
    async fn run(&self, statement: &str, idempotence: Idempotence) -> Result<Vec<RawRow>, FeError> {
        let mut results = self.run_all(&[statement], idempotence).await?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Runs statements one after the other on one fresh connection (one
    /// handshake for all), with timeouts and retries; the rows of each.
    async fn run_all(
        &self,
        statements: &[&str],
        idempotence: Idempotence,
    ) -> Result<Vec<Vec<RawRow>>, FeError> {
        let mut attempt = 0;
        let mut backoff = self.config.retry_backoff;
        loop {
            attempt += 1;
            let result = self.run_once(statements, idempotence).await;
            match result {
                Ok(rows) => {
                    self.observe(None);
                    return Ok(rows);
                }
                Err((stage, kind, failed)) => {
                    let statement = statements.get(failed).copied().unwrap_or_default();
                    // Nothing was sent yet, or a read lost its connection:
                    // worth another go. A slow answer is not: the FE is up
                    // and asking again only adds to its load.
                    let retryable = match stage {
                        Stage::Connect => kind.is_transient(),
                        Stage::Statement => {
                            idempotence == Idempotence::Read
                                && matches!(kind, FeErrorKind::ConnectionLost(_))
                        }
                    };
                    let retry = retryable && attempt <= self.config.retries;
                    if !retry {
                        let error = self.error(statement, attempt, kind);
                        self.observe(Some(&error));
                        return Err(error);
                    }
                    tracing::debug!(
                        fe = %self.endpoint.addr(),
                        statement,
                        attempt,
                        error = %kind,
                        "FE call failed, trying again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    /// One attempt: connects, then runs each statement; on failure, the
    /// stage, the error and the index of the statement it befell.
    async fn run_once(
        &self,
        statements: &[&str],
        idempotence: Idempotence,
    ) -> Result<Vec<Vec<RawRow>>, (Stage, FeErrorKind, usize)> {
        let mut conn =
            match tokio::time::timeout(self.config.connect_timeout, Conn::new(self.opts())).await {
                Err(_) => {
                    return Err((
                        Stage::Connect,
                        FeErrorKind::ConnectTimeout(self.config.connect_timeout),
                        0,
                    ));
                }
                Ok(Err(e)) => return Err((Stage::Connect, self.classify(e, Stage::Connect), 0)),
                Ok(Ok(conn)) => conn,
            };
        let result = async {
            let mut all = Vec::with_capacity(statements.len());
            for (i, statement) in statements.iter().enumerate() {
                let answer = tokio::time::timeout(
                    self.config.query_timeout,
                    exec(&mut conn, statement, idempotence),
                )
                .await
                .map_err(|_| {
                    let timeout = FeErrorKind::QueryTimeout(self.config.query_timeout);
                    (Stage::Statement, timeout, i)
                })?;
                all.push(
                    answer
                        .map_err(|e| (Stage::Statement, self.classify(e, Stage::Statement), i))?,
                );
            }
            Ok(all)
        }
        .await;
        // Close the connection within a bound. Left to itself, a dropped
        // connection would wait in the background for the rest of an
        // unfinished answer, for ever from an FE that hangs; a disconnect
        // cut short by the timeout closes the socket instead.
        let close = tokio::time::timeout(CLOSE_TIMEOUT, conn.disconnect());
        if result.is_ok() {
            let _ = close.await;
        } else {
            // Don't hold the error back for a slow FE's goodbye.
            tokio::spawn(async move {
                let _ = close.await;
            });
        }
        result
    }

    fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ssl_opts(self.endpoint.tls.as_ref().map(FeTls::ssl_opts))
            .ip_or_hostname(self.endpoint.host.clone())
            .tcp_port(self.endpoint.port)
            .user(Some(self.endpoint.user.clone()))
            .pass(Some(self.endpoint.password.clone()))
            // No unix-socket detour, and no settings query on connect.
            .prefer_socket(false)
            .max_allowed_packet(Some(16 * 1024 * 1024))
            .wait_timeout(Some(28_800))
            .stmt_cache_size(0)
    }

    fn classify(&self, e: mysql_async::Error, stage: Stage) -> FeErrorKind {
        use mysql_async::Error;
        let kind = match e {
            Error::Server(s) if s.code == ACCESS_DENIED || s.code == DBACCESS_DENIED => {
                FeErrorKind::AccessDenied {
                    user: self.endpoint.user.clone(),
                    message: s.message,
                }
            }
            Error::Server(s) => FeErrorKind::Server {
                code: s.code,
                state: s.state,
                message: s.message,
            },
            Error::Io(mysql_async::IoError::Tls(e)) => FeErrorKind::Tls(e.to_string()),
            // A refused handshake reaches the driver as invalid data.
            Error::Io(mysql_async::IoError::Io(io))
                if self.endpoint.tls.is_some()
                    && stage == Stage::Connect
                    && io.kind() == std::io::ErrorKind::InvalidData =>
            {
                FeErrorKind::Tls(io.to_string())
            }
            Error::Driver(d @ mysql_async::DriverError::NoClientSslFlagFromServer) => {
                FeErrorKind::Tls(format!("the FE does not offer TLS ({d})"))
            }
            Error::Io(io) => match stage {
                Stage::Connect => FeErrorKind::Connect(io.to_string()),
                Stage::Statement => FeErrorKind::ConnectionLost(io.to_string()),
            },
            Error::Driver(d @ mysql_async::DriverError::ConnectionClosed) => match stage {
                Stage::Connect => FeErrorKind::Connect(d.to_string()),
                Stage::Statement => FeErrorKind::ConnectionLost(d.to_string()),
            },
            // The FE said something the protocol does not allow: asking
            // again would get the same.
            other => FeErrorKind::Parse(other.to_string()),
        };
        self.scrub(kind)
    }

    /// Removes the password from a message, should a driver ever echo it.
    fn scrub(&self, kind: FeErrorKind) -> FeErrorKind {
        let pw = &self.endpoint.password;
        if pw.is_empty() {
            return kind;
        }
        let s = |m: String| m.replace(pw.as_str(), "<redacted>");
        match kind {
            FeErrorKind::Connect(m) => FeErrorKind::Connect(s(m)),
            FeErrorKind::ConnectionLost(m) => FeErrorKind::ConnectionLost(s(m)),
            FeErrorKind::Parse(m) => FeErrorKind::Parse(s(m)),
            FeErrorKind::AccessDenied { user, message } => FeErrorKind::AccessDenied {
                user,
                message: s(message),
            },
            FeErrorKind::Server {
                code,
                state,
                message,
            } => FeErrorKind::Server {
                code,
                state,
                message: s(message),
            },
            other => other,
        }
    }

    fn observe(&self, outcome: Option<&FeError>) {
        if let Some(observer) = &self.observer {
            observer(outcome);
        }
    }

    fn error(&self, statement: &str, attempts: u32, kind: FeErrorKind) -> FeError {
        FeError {
            addr: self.endpoint.addr(),
            statement: statement.to_string(),
            attempts,
            kind,
        }
    }
}

/// Bound on closing a connection politely (`COM_QUIT`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// MySQL's `ER_ACCESS_DENIED_ERROR`, what Doris answers to a bad login.
const ACCESS_DENIED: u16 = 1045;
/// MySQL's `ER_DBACCESS_DENIED_ERROR`.
const DBACCESS_DENIED: u16 = 1044;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Connecting and logging in: nothing was sent yet.
    Connect,
    /// The statement was sent.
    Statement,
}

/// Sends one statement: a read collects its rows, a write drops them.
async fn exec(
    conn: &mut Conn,
    statement: &str,
    idempotence: Idempotence,
) -> mysql_async::Result<Vec<RawRow>> {
    match idempotence {
        Idempotence::Read => {
            let rows: Vec<Row> = conn.query(statement).await?;
            // The column names once for the whole result.
            let mut columns: Option<Arc<[String]>> = None;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let columns = columns
                        .get_or_insert_with(|| {
                            row.columns_ref()
                                .iter()
                                .map(|c| c.name_str().into_owned())
                                .collect()
                        })
                        .clone();
                    RawRow::new(columns, row.unwrap().into_iter().map(value_text).collect())
                })
                .collect())
        }
        Idempotence::Write => conn.query_drop(statement).await.map(|_| Vec::new()),
    }
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        // Valid UTF-8 (nearly always) keeps its buffer.
        Value::Bytes(b) => Some(
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_group_names_are_checked_before_quoting() {
        assert_eq!(quoted_compute_group("cg1").unwrap(), "\"cg1\"");
        assert_eq!(
            quoted_compute_group("etl_group-2").unwrap(),
            "\"etl_group-2\""
        );
        for bad in ["", "1cg", "_cg", "cg\"; DROP", "cg 1", "cg'1", "cg.1"] {
            assert!(quoted_compute_group(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts_and_strings_are_quoted_or_refused() {
        assert_eq!(
            quoted_host_port("doris-be-0.doris-be.ns.svc.cluster.local", 9050).unwrap(),
            "\"doris-be-0.doris-be.ns.svc.cluster.local:9050\""
        );
        assert_eq!(
            quoted_host_port("10.0.0.1", 9050).unwrap(),
            "\"10.0.0.1:9050\""
        );
        assert_eq!(
            quoted_host_port("fd00::1", 9050).unwrap(),
            "\"[fd00::1]:9050\""
        );
        for bad in [
            "a\"; DROP DATABASE x; --",
            "a'b",
            "a`b",
            "a\\b",
            "a b",
            "a\nb",
            "",
            "h,h2",
        ] {
            assert!(quoted_host_port(bad, 9050).is_err(), "{bad:?} accepted");
        }
        assert!(quoted_host_port("h", 0).is_err());
        assert_eq!(quote_string("disable_query").unwrap(), "\"disable_query\"");
        assert!(quote_string("x\"y").is_err());
        assert!(quote_string("x'y").is_err());
    }

    #[test]
    fn error_messages_name_the_statement_and_scrub_the_password() {
        let client = FeClient::new(FeEndpoint::new("fe").with_credentials("root", "hunter22"));
        let kind = client.scrub(FeErrorKind::Connect(
            "mysql://root:hunter22@fe:9030 refused".to_string(),
        ));
        let err = client.error("SHOW BACKENDS", 3, kind);
        let text = err.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert!(
            text.contains("`SHOW BACKENDS`") && text.contains("fe:9030"),
            "{text}"
        );
        assert!(err.is_transient());
        assert!(
            !FeErrorKind::AccessDenied {
                user: "root".into(),
                message: String::new()
            }
            .is_transient()
        );
    }

    #[tokio::test]
    async fn bad_arguments_are_refused_before_connecting() {
        // Nothing listens on port 1; a refusal proves nothing was sent.
        let client = FeClient::new(FeEndpoint::new("127.0.0.1").with_port(1));
        let err = client.add_backend("evil\"host", 9050).await.unwrap_err();
        assert!(matches!(err.kind, FeErrorKind::InvalidArgument(_)), "{err}");
        assert_eq!(err.attempts, 0);
        let err = client
            .add_backend_to_compute_group("h", 9050, "cg\") --")
            .await
            .unwrap_err();
        assert!(matches!(err.kind, FeErrorKind::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("compute group name"), "{err}");
        assert_eq!(err.attempts, 0);
        let err = client
            .set_backend_query_load("h'", 9050, true, true)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("ALTER SYSTEM MODIFY BACKEND"),
            "{err}"
        );
    }
}
