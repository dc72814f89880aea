//! The MySQL wire protocol side of the FE simulator: accepting
//! connections, the handshake and login, packets and result sets.

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::State;
use super::access::Session;
use super::statements::execute;

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections on `listener`: the access Service's address when
/// `frontend` is `None`, else the own address of the FE at that host.
pub(super) async fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    query_port: u16,
    frontend: Option<String>,
) {
    static CONNECTION_ID: AtomicU32 = AtomicU32::new(1);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: don't spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (down, unresponsive) = {
            let st = lock(&state);
            (st.down, st.unresponsive)
        };
        if down {
            drop(stream);
            continue;
        }
        let state = state.clone();
        let frontend = frontend.clone();
        tokio::spawn(async move {
            if unresponsive {
                // Hold the socket open without a word until the client leaves.
                let mut stream = stream;
                let mut buf = [0u8; 256];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            let id = CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
            let mut conn = Connection {
                stream: Box::new(stream),
                seq: 0,
                state,
                peer,
                query_port,
                session: Session {
                    user: String::new(),
                    frontend,
                },
            };
            let _ = conn.serve(id).await;
        });
    }
}

// Capability flags, as the MySQL protocol numbers them.
pub(super) const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
pub(super) const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
pub(super) const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub(super) const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub(super) const CLIENT_SSL: u32 = 0x0000_0800;
pub(super) const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
pub(super) const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub(super) const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub(super) const CLIENT_CONNECT_ATTRS: u32 = 0x0010_0000;
pub(super) const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;

pub(super) const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;

pub(super) const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
pub(super) const UTF8_GENERAL_CI: u8 = 33;
pub(super) const NATIVE_PASSWORD: &str = "mysql_native_password";
/// What Doris reports as the MySQL server version.
pub(super) const SERVER_VERSION: &str = "5.7.99";

pub(super) const COM_QUIT: u8 = 0x01;
pub(super) const COM_INIT_DB: u8 = 0x02;
pub(super) const COM_QUERY: u8 = 0x03;
pub(super) const COM_PING: u8 = 0x0e;
pub(super) const COM_RESET_CONNECTION: u8 = 0x1f;

/// An SQL error to send: code, SQLSTATE, message.
pub(super) struct SqlError {
    code: u16,
    state: &'static str,
    message: String,
}

impl SqlError {
    /// A missing privilege, as Doris reports it (see `access.rs`).
    pub(super) fn access_denied(privileges: &str) -> Self {
        SqlError {
            code: 1227,
            state: "42000",
            message: format!(
                "errCode = 2, detailMessage = Access denied; you need (at least one of) the ({privileges}) privilege(s) for this operation"
            ),
        }
    }

    /// How Doris reports a refused statement.
    pub(super) fn doris(message: impl std::fmt::Display) -> Self {
        SqlError {
            code: 1105,
            state: "HY000",
            message: format!("errCode = 2, detailMessage = {message}"),
        }
    }
}

/// What a statement answers.
pub(super) enum Answer {
    Ok,
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error(SqlError),
}

/// A connection's byte stream: TCP, or TLS over it.
pub(super) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub(super) struct Connection {
    stream: Box<dyn Io>,
    seq: u8,
    state: Arc<Mutex<State>>,
    peer: SocketAddr,
    query_port: u16,
    session: Session,
}

impl Connection {
    async fn serve(&mut self, id: u32) -> std::io::Result<()> {
        let scramble = scramble();
        self.send_handshake(id, &scramble).await?;
        if !self.authenticate(&scramble).await? {
            return Ok(());
        }
        loop {
            self.seq = 0;
            let packet = self.read_packet().await?;
            if lock(&self.state).down {
                return Ok(());
            }
            let Some((&command, body)) = packet.split_first() else {
                return Ok(());
            };
            match command {
                COM_QUIT => return Ok(()),
                COM_PING | COM_INIT_DB | COM_RESET_CONNECTION => self.send_ok().await?,
                COM_QUERY => {
                    let sql = String::from_utf8_lossy(body).into_owned();
                    let answer = self.query(&sql).await;
                    // An FE that went down mid-statement sends nothing.
                    if lock(&self.state).down {
                        return Ok(());
                    }
                    self.send_answer(answer).await?;
                }
                other => {
                    self.send_error(&SqlError {
                        code: 1047,
                        state: "08S01",
                        message: format!("Unknown command {other:#04x}"),
                    })
                    .await?
                }
            }
        }
    }

    async fn query(&mut self, sql: &str) -> Answer {
        let (delay, failure) = {
            let mut st = lock(&self.state);
            st.statements.push(sql.to_string());
            let failure = if st.failures.left > 0 && !is_session_statement(sql) {
                st.failures.left -= 1;
                Some(st.failures.message.clone())
            } else {
                None
            };
            (st.delay, failure)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(message) = failure {
            return Answer::Error(SqlError::doris(message));
        }
        let mut st = lock(&self.state);
        st.advance();
        execute(&mut st, sql, &self.session, self.query_port)
    }

    async fn send_handshake(&mut self, id: u32, scramble: &[u8; 20]) -> std::io::Result<()> {
        let mut p = vec![10u8];
        p.extend_from_slice(SERVER_VERSION.as_bytes());
        p.push(0);
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&scramble[..8]);
        p.push(0);
        let capabilities = if lock(&self.state).config.tls.is_some() {
            SERVER_CAPABILITIES | CLIENT_SSL
        } else {
            SERVER_CAPABILITIES
        };
        p.extend_from_slice(&(capabilities as u16).to_le_bytes());
        p.push(UTF8_GENERAL_CI);
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0u8; 10]);
        p.extend_from_slice(&scramble[8..]);
        p.push(0);
        p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
        p.push(0);
        self.write_packet(&p).await
    }

    /// Reads the handshake response and checks user and password; answers
    /// OK or access denied.
    async fn authenticate(&mut self, scramble: &[u8; 20]) -> std::io::Result<bool> {
        let mut packet = self.read_packet().await?;
        let tls = lock(&self.state).config.tls.clone();
        let asks_tls = packet.len() == 32
            && packet[..4]
                .try_into()
                .is_ok_and(|c| u32::from_le_bytes(c) & CLIENT_SSL != 0);
        match (tls, asks_tls) {
            (Some(config), true) => {
                // The SSL request; the rest of the conversation is over TLS.
                let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::duplex(1).0));
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match acceptor.accept(plain).await {
                    Ok(secured) => self.stream = Box::new(secured),
                    Err(e) => {
                        lock(&self.state).tls_failures.push(e.to_string());
                        return Ok(false);
                    }
                }
                lock(&self.state).tls_sessions += 1;
                packet = self.read_packet().await?;
            }
            (Some(_), false) => {
                self.send_error(&SqlError {
                    code: 3159,
                    state: "HY000",
                    message: "Connections using insecure transport are prohibited".to_string(),
                })
                .await?;
                return Ok(false);
            }
            (None, _) => {}
        }
        let Some(response) = HandshakeResponse::parse(&packet) else {
            self.send_error(&SqlError {
                code: 1043,
                state: "08S01",
                message: "Bad handshake".to_string(),
            })
            .await?;
            return Ok(false);
        };
        let mut auth = response.auth;
        if response
            .plugin
            .as_deref()
            .is_some_and(|p| p != NATIVE_PASSWORD)
        {
            // Ask the client to answer the scramble the native way.
            let mut p = vec![0xfe];
            p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
            p.push(0);
            p.extend_from_slice(scramble);
            p.push(0);
            self.write_packet(&p).await?;
            auth = self.read_packet().await?;
        }
        let password = lock(&self.state)
            .config
            .password_of(&response.user)
            .map(str::to_string);
        let ok = password.is_some_and(|p| native_password_matches(scramble, &p, &auth));
        if ok {
            self.session.user = response.user.clone();
            self.send_ok().await?;
        } else {
            self.send_error(&SqlError {
                code: 1045,
                state: "28000",
                message: format!(
                    "Access denied for user '{}@{}' (using password: {})",
                    response.user,
                    self.peer.ip(),
                    if auth.is_empty() { "NO" } else { "YES" }
                ),
            })
            .await?;
        }
        Ok(ok)
    }

    async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if len == 0xff_ffff {
            return Err(std::io::Error::other(
                "multi-packet payloads are not supported",
            ));
        }
        self.seq = header[3].wrapping_add(1);
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await?;
        Ok(payload)
    }

    async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32;
        let mut buf = Vec::with_capacity(payload.len() + 4);
        buf.extend_from_slice(&len.to_le_bytes()[..3]);
        buf.push(self.seq);
        buf.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&buf).await
    }

    async fn send_ok(&mut self) -> std::io::Result<()> {
        let mut p = vec![0x00];
        put_lenenc_int(&mut p, 0); // affected rows
        put_lenenc_int(&mut p, 0); // last insert id
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes()); // warnings
        self.write_packet(&p).await
    }

    async fn send_eof(&mut self) -> std::io::Result<()> {
        let mut p = vec![0xfe];
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn send_error(&mut self, e: &SqlError) -> std::io::Result<()> {
        let mut p = vec![0xff];
        p.extend_from_slice(&e.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(e.state.as_bytes());
        p.extend_from_slice(e.message.as_bytes());
        self.write_packet(&p).await
    }

    async fn send_answer(&mut self, answer: Answer) -> std::io::Result<()> {
        match answer {
            Answer::Ok => self.send_ok().await,
            Answer::Error(e) => self.send_error(&e).await,
            Answer::Rows { columns, rows } => {
                let mut p = Vec::new();
                put_lenenc_int(&mut p, columns.len() as u64);
                self.write_packet(&p).await?;
                for name in &columns {
                    self.write_packet(&column_definition(name)).await?;
                }
                self.send_eof().await?;
                for row in &rows {
                    let mut p = Vec::new();
                    for value in row {
                        match value {
                            Some(v) => put_lenenc_str(&mut p, v.as_bytes()),
                            None => p.push(0xfb),
                        }
                    }
                    self.write_packet(&p).await?;
                }
                self.send_eof().await
            }
        }
    }
}

/// A VARCHAR column, as Doris describes every `SHOW` column.
pub(super) fn column_definition(name: &str) -> Vec<u8> {
    const MYSQL_TYPE_VAR_STRING: u8 = 0xfd;
    let mut p = Vec::new();
    put_lenenc_str(&mut p, b"def");
    put_lenenc_str(&mut p, b""); // schema
    put_lenenc_str(&mut p, b""); // table
    put_lenenc_str(&mut p, b""); // original table
    put_lenenc_str(&mut p, name.as_bytes());
    put_lenenc_str(&mut p, name.as_bytes());
    p.push(0x0c);
    p.extend_from_slice(&(UTF8_GENERAL_CI as u16).to_le_bytes());
    p.extend_from_slice(&1024u32.to_le_bytes());
    p.push(MYSQL_TYPE_VAR_STRING);
    p.extend_from_slice(&0u16.to_le_bytes()); // flags
    p.push(0); // decimals
    p.extend_from_slice(&[0, 0]);
    p
}

pub(super) fn put_lenenc_int(p: &mut Vec<u8>, n: u64) {
    if n < 251 {
        p.push(n as u8);
    } else if n < 1 << 16 {
        p.push(0xfc);
        p.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 24 {
        p.push(0xfd);
        p.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    } else {
        p.push(0xfe);
        p.extend_from_slice(&n.to_le_bytes());
    }
}

pub(super) fn put_lenenc_str(p: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(p, s.len() as u64);
    p.extend_from_slice(s);
}

/// A client's `HandshakeResponse41`, the parts the simulator needs.
pub(super) struct HandshakeResponse {
    user: String,
    auth: Vec<u8>,
    plugin: Option<String>,
}

impl HandshakeResponse {
    fn parse(p: &[u8]) -> Option<Self> {
        let mut r = Reader { buf: p, pos: 0 };
        let caps = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return None;
        }
        r.take(4 + 1 + 23)?; // max packet size, character set, filler
        let user = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
        let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            let n = r.lenenc_int()? as usize;
            r.take(n)?.to_vec()
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = r.take(1)?[0] as usize;
            r.take(n)?.to_vec()
        } else {
            r.nul_terminated()?.to_vec()
        };
        if caps & CLIENT_CONNECT_WITH_DB != 0 && !r.at_end() {
            r.nul_terminated()?;
        }
        let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && !r.at_end() {
            Some(String::from_utf8_lossy(r.nul_terminated()?).into_owned())
        } else {
            None
        };
        Some(HandshakeResponse { user, auth, plugin })
    }
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn nul_terminated(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                Some(&rest[..end])
            }
            None => {
                // The last string may run to the end of the packet.
                self.pos = self.buf.len();
                Some(rest)
            }
        }
    }

    fn lenenc_int(&mut self) -> Option<u64> {
        let first = self.take(1)?[0];
        let bytes = match first {
            0..=250 => return Some(first as u64),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return None,
        };
        let mut n = [0u8; 8];
        n[..bytes].copy_from_slice(self.take(bytes)?);
        Some(u64::from_le_bytes(n))
    }
}

/// Twenty printable, non-NUL bytes for the challenge.
pub(super) fn scramble() -> [u8; 20] {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let state = RandomState::new();
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        let h = state.hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), i));
        *b = 0x21 + (h % 94) as u8;
    }
    out
}

/// Checks a `mysql_native_password` answer:
/// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
pub(super) fn native_password_matches(scramble: &[u8; 20], password: &str, auth: &[u8]) -> bool {
    if password.is_empty() {
        return auth.is_empty();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    let expected: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
    auth == expected.as_slice()
}

/// Statements a client sends to set up its session rather than to ask the
/// FE anything; injected failures pass them by.
pub(super) fn is_session_statement(sql: &str) -> bool {
    let upper = sql.trim_start().to_ascii_uppercase();
    upper.starts_with("SET ")
        || upper.starts_with("SELECT @@")
        || upper.starts_with("SHOW VARIABLES")
        || upper == "SELECT 1"
}

// ---- SQL ----
