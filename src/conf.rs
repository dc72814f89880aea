//! Doris configuration files (`fe.conf`, `be.conf`, `apache_hdfs_broker.conf`).
//!
//! Doris reads these as `key = value` lines; its start scripts also export the
//! upper-case lines (`JAVA_OPTS`, `CUR_DATE` …) as shell variables, in file
//! order, so one line may refer to an earlier one. A [`ConfFile`] therefore
//! keeps every entry in its original order, with the key's case and the raw
//! value text untouched, and offers case-insensitive lookups of the unquoted
//! value for the few keys the operator itself needs (ports, paths, modes).

use std::collections::{BTreeMap, HashMap};

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfEntry {
    pub key: String,
    /// The value as written, quotes included.
    pub value: String,
}

/// An ordered Doris configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfFile {
    entries: Vec<ConfEntry>,
    /// Lower-cased key to its entry, so that reading a file of n lines
    /// takes time in proportion to n.
    index: HashMap<String, usize>,
}

impl ConfFile {
    /// Parses the text of a configuration file. Blank lines and `#` comments
    /// are skipped; a line without `=` is a key with an empty value, as Java
    /// properties read it. A later line for the same key replaces the earlier
    /// value in place, so the file order of first appearance is kept.
    pub fn parse(text: &str) -> ConfFile {
        let mut file = ConfFile::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, ""),
            };
            if key.is_empty() {
                continue;
            }
            file.set(key, value);
        }
        file
    }

    /// The entries in file order.
    pub fn entries(&self) -> &[ConfEntry] {
        &self.entries
    }

    /// Sets `key` to the raw `value`, replacing an entry whose key matches
    /// case-insensitively, or appending a new one.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.position(key) {
            Some(i) => self.entries[i].value = value.to_string(),
            None => {
                self.index
                    .insert(key.to_ascii_lowercase(), self.entries.len());
                self.entries.push(ConfEntry {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }

    /// Whether the file has an entry for `key` (case-insensitive).
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The unquoted value of `key` (case-insensitive), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| unquote(&self.entries[i].value))
    }

    /// Lookup map of lower-cased keys to unquoted values, as policies see it.
    pub fn lookup_map(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.key.to_ascii_lowercase(), unquote(&e.value).to_string()))
            .collect()
    }

    /// The file as text: one `key = value` line per entry, in order.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&e.key);
            out.push_str(" = ");
            out.push_str(&e.value);
            out.push('\n');
        }
        out
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.index.get(&key.to_ascii_lowercase()).copied()
    }
}

/// Strips one pair of matching surrounding quotes.
pub fn unquote(value: &str) -> &str {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// The storage directories named by a BE `storage_root_path` value:
/// `/a,medium:ssd;/b.HDD;/c` gives `/a`, `/b`, `/c`. Doris accepts a medium
/// either after a comma or as a `.SSD`/`.HDD` suffix; both are dropped.
pub fn storage_paths(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(|part| part.split(',').next().unwrap_or("").trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            if lower.ends_with(".ssd") || lower.ends_with(".hdd") {
                p[..p.len() - 4].to_string()
            } else {
                p.to_string()
            }
        })
        .collect()
}

/// Expands `${DORIS_HOME}` and `$DORIS_HOME` in a configured path.
pub fn expand_doris_home(path: &str, doris_home: &str) -> String {
    path.replace("${DORIS_HOME}", doris_home)
        .replace("$DORIS_HOME", doris_home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_case_and_raw_values() {
        let f = ConfFile::parse(
            "# comment\nCUR_DATE=`date +%Y`\nJAVA_OPTS=\"-Xmx8g $CUR_DATE\"\n\nhttp_port = 8031\n",
        );
        let keys: Vec<_> = f.entries().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["CUR_DATE", "JAVA_OPTS", "http_port"]);
        assert_eq!(f.entries()[1].value, "\"-Xmx8g $CUR_DATE\"");
        assert_eq!(f.get("java_opts"), Some("-Xmx8g $CUR_DATE"));
        assert_eq!(f.get("HTTP_PORT"), Some("8031"));
        assert_eq!(f.get("query_port"), None);
    }

    #[test]
    fn later_line_replaces_in_place() {
        let mut f = ConfFile::parse("a = 1\nb = 2\na = 3\n");
        assert_eq!(f.to_text(), "a = 3\nb = 2\n");
        f.set("B", "4");
        f.set("c", "5");
        assert_eq!(f.to_text(), "a = 3\nb = 4\nc = 5\n");
    }

    #[test]
    fn line_without_equals_is_an_empty_key() {
        let f = ConfFile::parse("flag\n");
        assert_eq!(f.get("flag"), Some(""));
    }

    #[test]
    fn storage_root_path_forms() {
        assert_eq!(
            storage_paths("/a,medium:ssd;/b.HDD; /c ;"),
            ["/a", "/b", "/c"]
        );
        assert!(storage_paths("").is_empty());
    }

    #[test]
    fn doris_home_expansion() {
        assert_eq!(
            expand_doris_home("${DORIS_HOME}/doris-meta", "/opt/apache-doris/fe"),
            "/opt/apache-doris/fe/doris-meta"
        );
    }
}
