//! Records the git commit the binary is built from, for `version` and the
//! `doris_operator_build_info` metric: `DORIS_OPERATOR_COMMIT` when the
//! build sets it (an image built without the repository's history), else,
//! in a release build, what git says of the work tree. Debug builds leave
//! it unknown, so that a commit does not rebuild every test binary.

use std::path::Path;
use std::process::Command;

const VAR: &str = "DORIS_OPERATOR_COMMIT";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={VAR}");
    if let Some(commit) = std::env::var(VAR).ok().filter(|c| !c.trim().is_empty()) {
        set(&commit);
        return;
    }
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    // Built again when HEAD moves: a checkout, or a commit on its branch.
    for path in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    set(&commit);
}

fn set(commit: &str) {
    let commit = commit.trim();
    if !commit.is_empty() {
        println!("cargo:rustc-env={VAR}={commit}");
    }
}

fn watch(path: Option<String>) {
    if let Some(path) = path.filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// What git prints for `args` in the package's folder, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
