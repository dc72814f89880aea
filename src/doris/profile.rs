//! What the Doris a cluster runs can do, in one place: its release (read
//! from the FE) and its deploy mode (a `DorisDisaggregatedCluster` runs
//! storage-compute separated, "cloud" mode; a `DorisCluster` integrated)
//! decide which statements the operator sends and how a change finishes.
//!
//! Each rule names the Doris source it follows.

use std::fmt;

/// A Doris release, as `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Release {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Release {
        Release {
            major,
            minor,
            patch,
        }
    }

    /// Reads the release out of what the FE reports: the `Version` column
    /// of `SHOW FRONTENDS` (`doris-2.1.5-rc02-<hash>`) or `@@version_comment`
    /// (`Doris version doris-3.0.5-rc01-<hash>`), or a bare `2.1.7`. Both
    /// are built from `DORIS_BUILD_VERSION`
    /// (fe/fe-core/src/main/java/org/apache/doris/common/Version.java,
    /// FrontendsProcNode.java, GlobalVariable.java).
    pub fn from_version(text: &str) -> Option<Release> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let mut parts = text[start..]
            .split(|c: char| !c.is_ascii_digit())
            .map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(Release::new(major, minor, patch))
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How a Doris cluster is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// BEs keep the data (`DorisCluster`).
    Integrated,
    /// Storage-compute separated (`deploy_mode = cloud`,
    /// `DorisDisaggregatedCluster`): data lives in object storage, BEs of
    /// compute groups cache it, a meta service keeps the metadata.
    Cloud,
}

/// What one Doris cluster takes: its mode and, once the FE said it, its
/// release. An unknown release is taken to be the oldest supported, so
/// that only statements every release takes are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    pub mode: Mode,
    pub release: Option<Release>,
}

/// The first release with `ADMIN SET ALL FRONTENDS CONFIG` in branch-2.1
/// (fe/fe-core/src/main/cup/sql_parser.cup; apache/doris PR #34685, picked
/// into branch-2.1 for 2.1.5). 3.0.0 has it.
pub const ALL_FRONTENDS_CONFIG_SINCE: Release = Release::new(2, 1, 5);

impl Profile {
    pub fn new(mode: Mode, release: Option<Release>) -> Profile {
        Profile { mode, release }
    }

    pub fn is_cloud(&self) -> bool {
        self.mode == Mode::Cloud
    }

    /// Whether one `ADMIN SET ALL FRONTENDS CONFIG` reaches every FE;
    /// else each FE is set with `ADMIN SET FRONTEND CONFIG` on its own
    /// connection.
    pub fn sets_all_frontends_at_once(&self) -> bool {
        self.release
            .is_some_and(|r| r >= ALL_FRONTENDS_CONFIG_SINCE)
    }

    /// Whether `ALTER SYSTEM MODIFY BACKEND ... SET ("disable_query" ...)`
    /// is taken. Cloud mode refuses it: "Modifying backends is not
    /// supported in cloud mode"
    /// (fe/fe-core/src/main/java/org/apache/doris/cloud/system/CloudSystemInfoService.java,
    /// `modifyBackends`; regression-test/suites/cloud_p0/node_mgr/test_not_allowed_op.groovy).
    pub fn can_modify_backends(&self) -> bool {
        !self.is_cloud()
    }

    /// Whether `CANCEL DECOMMISSION BACKEND` is taken. Cloud mode answers
    /// "Unsupported operation"
    /// (fe/fe-core/src/main/java/org/apache/doris/nereids/trees/plans/commands/CancelDecommissionBackendCommand.java,
    /// `checkSupportedInCloudMode`).
    pub fn can_cancel_decommission(&self) -> bool {
        !self.is_cloud()
    }

    /// Whether the FE drops a decommissioned BE by itself once it holds
    /// no tablets: only in integrated mode, and only while the FE setting
    /// `drop_backend_after_decommission` is true
    /// (fe/fe-core/src/main/java/org/apache/doris/alter/SystemHandler.java,
    /// `runAfterCatalogReady` runs `runAlterJobV2` only `if
    /// (Config.isNotCloudMode())`). Otherwise the BE stays listed with
    /// `SystemDecommissioned = true` until it is dropped (`DROPP`), as
    /// regression-test/suites/cloud_p0/node_mgr/test_cloud_decommission.groovy does.
    pub fn drops_decommissioned_itself(&self, drop_backend_after_decommission: bool) -> bool {
        !self.is_cloud() && drop_backend_after_decommission
    }

    /// Whether `user` may run `ADMIN SET [ALL] FRONTEND[S] CONFIG`. Cloud
    /// mode lets only root: others get "Unsupported operation"
    /// (fe/fe-core/src/main/java/org/apache/doris/qe/DdlExecutor.java,
    /// `checkDdlStmtSupported`, `AdminSetConfigStmt`).
    pub fn may_set_frontend_config(&self, user: &str) -> bool {
        !self.is_cloud() || user == "root"
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Integrated => "integrated",
            Mode::Cloud => "storage-compute separated",
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = self.mode;
        match self.release {
            Some(r) => write!(f, "Doris {r} ({mode})"),
            None => write!(f, "Doris of unknown release ({mode})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_from_what_the_fe_reports() {
        for (text, want) in [
            ("doris-2.1.5-rc02-2dc8e8e3d8", Release::new(2, 1, 5)),
            (
                "Doris version doris-3.0.5-rc01-abc (Cloud Mode)",
                Release::new(3, 0, 5),
            ),
            ("2.1.10", Release::new(2, 1, 10)),
            ("doris-2.1-sim", Release::new(2, 1, 0)),
        ] {
            assert_eq!(Release::from_version(text), Some(want), "{text}");
        }
        assert_eq!(Release::from_version("doris-unknown"), None);
        assert_eq!(Release::from_version(""), None);
    }

    #[test]
    fn all_frontends_config_from_2_1_5() {
        let at = |v: &str| Profile::new(Mode::Integrated, Release::from_version(v));
        assert!(!at("doris-2.1.4-rc01").sets_all_frontends_at_once());
        assert!(at("doris-2.1.5-rc01").sets_all_frontends_at_once());
        assert!(at("doris-3.0.0-rc01").sets_all_frontends_at_once());
        assert!(!Profile::new(Mode::Integrated, None).sets_all_frontends_at_once());
    }

    #[test]
    fn cloud_mode_refuses_what_doris_refuses_there() {
        let cloud = Profile::new(Mode::Cloud, Release::from_version("3.0.5"));
        let integrated = Profile::new(Mode::Integrated, Release::from_version("3.0.5"));
        assert!(!cloud.can_modify_backends() && integrated.can_modify_backends());
        assert!(!cloud.can_cancel_decommission() && integrated.can_cancel_decommission());
        assert!(!cloud.drops_decommissioned_itself(true));
        assert!(integrated.drops_decommissioned_itself(true));
        assert!(!integrated.drops_decommissioned_itself(false));
        assert!(cloud.may_set_frontend_config("root"));
        assert!(!cloud.may_set_frontend_config("admin"));
        assert!(integrated.may_set_frontend_config("admin"));
    }
}
