//! The API writes and reads each operator made, from the API server's
//! audit log (reads are recorded for operators run as `operator-runner`:
//! see tests/realk8s/up.sh).

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// API writes (and reads: gets and lists) one user made, from audit log
/// entries.
#[derive(Default)]
pub(super) struct Writes {
    pub(super) all: usize,
    pub(super) status: usize,
    pub(super) refused: usize,
    pub(super) by_kind: BTreeMap<String, usize>,
    pub(super) reads: usize,
    pub(super) reads_by_kind: BTreeMap<String, usize>,
}

impl Writes {
    pub(super) fn of(entries: &[Value], user: &str) -> Writes {
        let mut w = Writes::default();
        for e in entries {
            let who = e["impersonatedUser"]["username"]
                .as_str()
                .or(e["user"]["username"].as_str());
            let verb = e["verb"].as_str().unwrap_or_default();
            if who != Some(user) || e["stage"] != "ResponseComplete" {
                continue;
            }
            let o = &e["objectRef"];
            if matches!(verb, "get" | "list") {
                let what = o["resource"].as_str().unwrap_or_default();
                w.reads += 1;
                *w.reads_by_kind.entry(format!("{verb} {what}")).or_default() += 1;
                continue;
            }
            if !matches!(
                verb,
                "create" | "update" | "patch" | "delete" | "deletecollection"
            ) {
                continue;
            }
            let mut what = o["resource"].as_str().unwrap_or_default().to_string();
            if let Some(sub) = o["subresource"].as_str() {
                what = format!("{what}/{sub}");
                w.status += usize::from(sub == "status");
            }
            w.all += 1;
            w.refused += usize::from(e["responseStatus"]["code"].as_i64().unwrap_or(0) >= 400);
            *w.by_kind.entry(format!("{verb} {what}")).or_default() += 1;
        }
        w
    }

    pub(super) fn line(&self) -> String {
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let reads: Vec<String> = self
            .reads_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "{:>6} (status {:>5}, refused {}){}{}; reads {}{}{}",
            self.all,
            self.status,
            self.refused,
            if kinds.is_empty() { "" } else { "  " },
            kinds.join(", "),
            self.reads,
            if reads.is_empty() { "" } else { "  " },
            reads.join(", ")
        )
    }
}

/// The audit log read from where it was last read to, across a rotation.
pub(super) struct AuditLog {
    path: PathBuf,
    inode: u64,
    offset: u64,
}

impl AuditLog {
    /// Reading from the log's end on.
    pub(super) fn from_end(path: PathBuf) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&path)?;
        Ok(AuditLog {
            path,
            inode: meta.ino(),
            offset: meta.len(),
        })
    }

    /// The entries written since the last call.
    pub(super) fn take(&mut self) -> Vec<Value> {
        use std::os::unix::fs::MetadataExt;
        let mut text = Vec::new();
        let inode = std::fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0);
        if inode != self.inode {
            // Rotated: the rest of the file read so far, under its new name.
            let dir = self.path.parent().unwrap_or(Path::new("."));
            let rotated = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .find(|e| e.metadata().is_ok_and(|m| m.ino() == self.inode));
            if let Some(file) = rotated {
                let _ = read_from(&file.path(), self.offset, &mut text);
            }
            (self.inode, self.offset) = (inode, 0);
        }
        let start = text.len();
        let _ = read_from(&self.path, self.offset, &mut text);
        // A line still being written is read next time.
        let whole = text[start..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        self.offset += whole as u64;
        text.truncate(start + whole);
        text.split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    }
}

fn read_from(path: &Path, offset: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    file.read_to_end(out).map(|_| ())
}
