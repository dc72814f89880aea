//! Which Doris the simulator plays: the release it reports (and follows)
//! and its deploy mode ([`FeSimConfig::cloud`]).
//!
//! The e2e suites run unchanged against each profile: `DORIS_SIM_PROFILE`
//! names the release an integrated FE plays (`2.1.4`, `2.1.7`, `3.0.5`
//! ...); a storage-compute separated FE plays it too when it is 3.0.2 or
//! later (compute groups by SQL, apache/doris PR #40264), else 3.0.5.

use doris_operator::doris::{Mode, Profile, Release};

use super::FeSimConfig;

/// The environment variable naming the release to play.
pub const PROFILE_ENV: &str = "DORIS_SIM_PROFILE";

/// The release played when `DORIS_SIM_PROFILE` is unset.
const DEFAULT_RELEASE: &str = "2.1.7";
/// The oldest storage-compute separated release whose compute groups are
/// managed with `ALTER SYSTEM` (fe/fe-core/src/main/java/org/apache/doris/qe/DdlExecutor.java
/// refuses every `AlterSystemStmt` in cloud mode before it).
const FIRST_SQL_CLOUD: Release = Release::new(3, 0, 2);
const DEFAULT_CLOUD_RELEASE: &str = "3.0.5";

fn asked() -> Option<Release> {
    let text = std::env::var(PROFILE_ENV).ok()?;
    let release = Release::from_version(&text);
    assert!(
        release.is_some(),
        "{PROFILE_ENV}={text:?} names no Doris release (e.g. 2.1.4)"
    );
    release
}

/// `doris-<release>-rc01-sim`, the shape of Doris's `DORIS_BUILD_VERSION`.
fn version_text(release: &str) -> String {
    format!("doris-{release}-rc01-sim")
}

/// The release an integrated cluster plays: `DORIS_SIM_PROFILE`, else
/// the default. The BE simulator (tests/besim) plays it too.
pub fn integrated_release() -> Release {
    asked().unwrap_or_else(|| Release::from_version(DEFAULT_RELEASE).expect("a release"))
}

pub fn integrated_version() -> String {
    let release = asked().map(|r| r.to_string());
    version_text(release.as_deref().unwrap_or(DEFAULT_RELEASE))
}

pub fn cloud_version() -> String {
    match asked() {
        Some(r) if r >= FIRST_SQL_CLOUD => version_text(&r.to_string()),
        _ => version_text(DEFAULT_CLOUD_RELEASE),
    }
}

impl FeSimConfig {
    /// The release and mode this FE plays.
    pub fn profile(&self) -> Profile {
        let mode = if self.cloud.is_some() {
            Mode::Cloud
        } else {
            Mode::Integrated
        };
        Profile::new(mode, Release::from_version(&self.version))
    }
}
