//! What this binary is: its version, and the git commit it was built from
//! when the build recorded one (build.rs).

/// The version, Cargo.toml's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from, when the build knew it.
pub const COMMIT: Option<&str> = option_env!("DORIS_OPERATOR_COMMIT");

/// `0.1.0 (commit 0123456789ab)`, or `0.1.0 (commit unknown)`.
pub fn describe() -> String {
    format!("{VERSION} (commit {})", COMMIT.unwrap_or("unknown"))
}

/// The label on the CustomResourceDefinitions that says which version of
/// the operator they come with.
pub const CRD_VERSION_LABEL: &str = "doris.selectdb.com/operator-version";
