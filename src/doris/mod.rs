//! Talking to the Doris FE over the MySQL protocol.
//!
//! [`FeClient`] reads cluster membership (`SHOW FRONTENDS`, `SHOW BACKENDS`)
//! into typed rows and changes it with `ALTER SYSTEM` statements: the
//! foundation for scaling backends down safely (decommission, wait for the
//! tablets to drain) and for restarting nodes gracefully (stop sending
//! queries and loads to a backend first).
//!
//! Each call opens its own connection, bounded by a connect timeout, runs
//! one statement bounded by a query timeout, and closes the connection. A
//! failure to connect is retried a few times; a statement that reached the
//! FE is retried only when it is a read. Every error names the FE, the
//! statement and the cause, and never carries the password.
//!
//! An FE whose `fe.conf` enables TLS is reached over TLS ([`FeTls`]): its
//! certificate must be signed by the given CA, and the client presents its
//! own certificate, as Doris's mutual TLS asks.
//!
//! The BE's (and CN's) HTTP webserver is reached with [`BeClient`].

mod be;
mod client;
mod endpoint;
mod error;
mod profile;
mod rows;

pub use be::{
    BeAuth, BeClient, BeConfig, BeEndpoint, BeError, UpdateResult, parse_show_config,
    percent_encode, update_result,
};
pub use client::{FeClient, Observer, quote_string, validate_host};
pub use endpoint::{DEFAULT_QUERY_PORT, FeClientConfig, FeEndpoint, FeTls, PemError};
pub use error::{FeError, FeErrorKind};
pub use profile::{ALL_FRONTENDS_CONFIG_SINCE, Mode, Profile, Release};
pub use rows::{Backend, Frontend, FrontendConfig, FrontendRole, NodeRole, RawRow};
