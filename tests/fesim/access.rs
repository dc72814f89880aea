//! Who may do what on the simulated FE: users, their global privileges,
//! and the checks Doris makes before running a statement.

use super::wire::SqlError;
use super::{FeSimConfig, State};

/// A global privilege, as `GRANT ... ON *.*.*` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// `ADMIN_PRIV`.
    Admin,
    /// `NODE_PRIV` (Doris's `PrivPredicate.OPERATOR`).
    Node,
}

/// A user besides [`FeSimConfig::user`], with the global privileges it
/// was granted. [`FeSimConfig::user`] and `root` have them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub name: String,
    pub password: String,
    pub privileges: Vec<Privilege>,
}

impl SimUser {
    pub fn new(name: &str, password: &str, privileges: &[Privilege]) -> SimUser {
        SimUser {
            name: name.to_string(),
            password: password.to_string(),
            privileges: privileges.to_vec(),
        }
    }
}

/// Doris's superuser (`Auth.ROOT_USER`).
pub const ROOT: &str = "root";

/// Who a connection logged in as, and which FE it reached.
#[derive(Clone, Debug)]
pub(super) struct Session {
    pub user: String,
    /// The FE the client connected to, by host: the one whose own address
    /// it used ([`super::FeSim::frontend_addr`]); `None` for the main
    /// address, which stands for the FE access Service and lands on the
    /// master.
    pub frontend: Option<String>,
}

impl Session {
    /// The host of the FE this session runs its statements on.
    pub fn frontend_host(&self, st: &State) -> String {
        self.frontend.clone().unwrap_or_else(|| st.master_host())
    }
}

impl FeSimConfig {
    /// The password of `user`, when it is one the FE knows.
    pub(super) fn password_of(&self, user: &str) -> Option<&str> {
        if user == self.user {
            return Some(&self.password);
        }
        self.users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.password.as_str())
    }

    fn has(&self, user: &str, privilege: Privilege) -> bool {
        user == self.user
            || user == ROOT
            || self
                .users
                .iter()
                .any(|u| u.name == user && u.privileges.contains(&privilege))
    }
}

/// Refuses unless `user` has one of `any_of`, with Doris's error: `ERROR
/// 1227 (42000): errCode = 2, detailMessage = Access denied; you need (at
/// least one of) the (NODE) privilege(s) for this operation`
/// (fe/fe-core/src/main/java/org/apache/doris/common/ErrorCode.java,
/// `ERR_SPECIFIC_ACCESS_DENIED_ERROR`; the `errCode = 2, detailMessage =`
/// prefix as apache/doris issue #27652 shows it). `shown` is the
/// privilege list as the statement's check names it.
pub(super) fn require(
    config: &FeSimConfig,
    user: &str,
    any_of: &[Privilege],
    shown: &str,
) -> Result<(), SqlError> {
    if any_of.iter().any(|p| config.has(user, *p)) {
        return Ok(());
    }
    Err(SqlError::access_denied(shown))
}

/// `ALTER SYSTEM ...` and `CANCEL DECOMMISSION BACKEND` need NODE
/// (fe/fe-core/src/main/java/org/apache/doris/analysis/AlterSystemStmt.java
/// and CancelAlterSystemStmt.java: `PrivPredicate.OPERATOR`, reported as
/// `NODE`).
pub(super) fn require_node(config: &FeSimConfig, user: &str) -> Result<(), SqlError> {
    require(config, user, &[Privilege::Node], "NODE")
}

/// `SHOW FRONTENDS` and `SHOW BACKENDS` need ADMIN or NODE
/// (fe/fe-core/src/main/java/org/apache/doris/analysis/ShowBackendsStmt.java,
/// ShowFrontendsStmt.java).
pub(super) fn require_admin_or_node(config: &FeSimConfig, user: &str) -> Result<(), SqlError> {
    require(
        config,
        user,
        &[Privilege::Admin, Privilege::Node],
        "ADMIN/OPERATOR",
    )
}

/// `SHOW FRONTEND CONFIG` and `ADMIN SET ... CONFIG` need ADMIN
/// (fe/fe-core/src/main/java/org/apache/doris/analysis/ShowConfigStmt.java,
/// AdminSetConfigStmt.java).
pub(super) fn require_admin(config: &FeSimConfig, user: &str) -> Result<(), SqlError> {
    require(config, user, &[Privilege::Admin], "ADMIN")
}
