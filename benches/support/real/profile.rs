//! A CPU profile of an operator process while it brings its clusters up:
//! `perf record` (a software clock, so it works where hardware counters do
//! not) attached to the process when `BENCH_PERF` names a folder for the
//! recordings, then the functions that took the most samples.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `perf record` running against one process.
pub(super) struct Profile {
    recorder: Child,
    data: PathBuf,
}

impl Profile {
    /// Starts recording `pid` into `<BENCH_PERF>/<name>.data`; `None` when
    /// `BENCH_PERF` is unset or perf cannot run.
    pub(super) fn start(pid: u32, name: &str) -> Option<Profile> {
        let dir = PathBuf::from(std::env::var_os("BENCH_PERF")?);
        std::fs::create_dir_all(&dir).ok()?;
        let data = dir.join(format!("{name}.data"));
        let recorder = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "499", "-g", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| println!("  no CPU profile: perf does not start: {e}"))
            .ok()?;
        Some(Profile { recorder, data })
    }

    /// Stops recording and prints the `top` functions by samples taken in
    /// them (not in what they call).
    pub(super) fn finish(mut self, top: usize) {
        // perf writes its file on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &self.recorder.id().to_string()])
            .status();
        let _ = self.recorder.wait();
        println!(
            "  CPU profile ({}), top {top} by own samples:",
            self.data.display()
        );
        for line in report(&self.data).into_iter().take(top) {
            println!("    {line}");
        }
    }
}

/// `perf report`'s lines of functions, most samples first.
fn report(data: &Path) -> Vec<String> {
    let out = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--stdio",
            "-g",
            "none",
            "--percent-limit",
            "0.5",
        ])
        .args(["--sort", "symbol", "-i"])
        .arg(data)
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else {
        return vec!["(perf report did not run)".into()];
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
