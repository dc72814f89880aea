//! The command line as users install it: the krew manifest keeps krew's
//! rules and Cargo's version, and the archive deploy/krew/build-archive.sh
//! builds holds what the manifest installs; the completion scripts and
//! kubectl's plugin completion (`kubectl_complete-doris`) follow the clap
//! definitions; `version --client` needs no cluster.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::Digest;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const MANIFEST: &str = "deploy/krew/doris.yaml";

fn manifest_at(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The platforms krew's selectors name (Go's GOOS and GOARCH) that a
/// release builds.
const PLATFORMS: [(&str, &str); 4] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// krew's version format: a leading `v`, then semantic versioning's
/// MAJOR.MINOR.PATCH with an optional pre-release and build.
fn is_krew_version(text: &str) -> bool {
    let Some(version) = text.strip_prefix('v') else {
        return false;
    };
    let (version, build) = match version.split_once('+') {
        Some((v, b)) => (v, Some(b)),
        None => (version, None),
    };
    let (core, pre) = match version.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (version, None),
    };
    let number = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| {
        !p.is_empty()
            && p.split('.')
                .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(ident)
        && build.is_none_or(ident)
}

/// Checks a krew plugin manifest as krew's index validation does (the
/// plugin's name, apiVersion and kind, a short description, a semantic
/// version, and per platform a uri, a well-formed sha256, a bin, file
/// operations and a selector on os and arch only), plus what this
/// project's release promises: Cargo's version, the four platforms, one
/// archive naming scheme. Returns the problems.
fn problems(file_name: &str, m: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    check(
        m["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2",
        format!("apiVersion {}", m["apiVersion"]),
    );
    check(m["kind"] == "Plugin", format!("kind {}", m["kind"]));
    let name = m["metadata"]["name"].as_str().unwrap_or_default();
    let safe = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let reserved = ["con", "prn", "aux", "nul"].contains(&name.to_lowercase().as_str())
        || ((name.to_lowercase().starts_with("com") || name.to_lowercase().starts_with("lpt"))
            && name.len() == 4
            && name.as_bytes()[3].is_ascii_digit()
            && name.as_bytes()[3] != b'0');
    check(safe && !reserved, format!("plugin name {name:?}"));
    check(
        format!("{name}.yaml") == file_name,
        format!("plugin {name:?} in file {file_name}"),
    );
    let spec = &m["spec"];
    check(
        spec["shortDescription"]
            .as_str()
            .is_some_and(|s| !s.trim().is_empty()),
        "no shortDescription".into(),
    );
    let version = spec["version"].as_str().unwrap_or_default();
    check(
        is_krew_version(version),
        format!("version {version:?} is not v-prefixed semver"),
    );
    check(
        version == format!("v{VERSION}"),
        format!("version {version}, Cargo.toml's is {VERSION}"),
    );
    check(
        spec["homepage"]
            .as_str()
            .is_some_and(|h| h.starts_with("https://")),
        format!("homepage {}", spec["homepage"]),
    );
    let platforms = spec["platforms"].as_array().cloned().unwrap_or_default();
    check(!platforms.is_empty(), "no platform".into());
    let mut seen = BTreeSet::new();
    for (i, p) in platforms.iter().enumerate() {
        let at = format!("platforms[{i}]");
        let uri = p["uri"].as_str().unwrap_or_default();
        let sha = p["sha256"].as_str().unwrap_or_default();
        check(
            sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            format!(
                "{at}: sha256 {:?} is not 64 lower-case hex digits",
                p["sha256"]
            ),
        );
        check(
            p["bin"].as_str().is_some_and(|b| !b.is_empty()),
            format!("{at}: no bin"),
        );
        check(
            p["files"].as_array().is_some_and(|f| !f.is_empty()),
            format!("{at}: no file operations"),
        );
        let selector = &p["selector"];
        let labels = selector["matchLabels"].as_object();
        let expressions = selector["matchExpressions"].as_array();
        check(
            labels.is_some_and(|l| !l.is_empty()) || expressions.is_some_and(|e| !e.is_empty()),
            format!("{at}: empty or no selector"),
        );
        check(
            labels.is_none_or(|l| !l.is_empty()) && expressions.is_none_or(|e| !e.is_empty()),
            format!("{at}: matchLabels or matchExpressions given empty"),
        );
        let keys: Vec<&str> = labels
            .into_iter()
            .flat_map(|l| l.keys().map(String::as_str))
            .chain(
                expressions
                    .into_iter()
                    .flatten()
                    .map(|e| e["key"].as_str().unwrap_or_default()),
            )
            .collect();
        check(
            keys.iter().all(|k| *k == "os" || *k == "arch"),
            format!("{at}: selector keys {keys:?} (krew knows os and arch)"),
        );
        let os = labels.and_then(|l| l.get("os")).and_then(Value::as_str);
        let arch = labels.and_then(|l| l.get("arch")).and_then(Value::as_str);
        let (Some(os), Some(arch)) = (os, arch) else {
            check(false, format!("{at}: no os and arch labels"));
            continue;
        };
        check(
            PLATFORMS.contains(&(os, arch)),
            format!("{at}: platform {os}/{arch} is not one a release builds"),
        );
        check(seen.insert((os, arch)), format!("{at}: {os}/{arch} twice"));
        check(
            uri.starts_with("https://") && uri.ends_with(&format!("/{}", archive_name(os, arch))),
            format!(
                "{at}: uri {uri:?} does not end with /{}",
                archive_name(os, arch)
            ),
        );
    }
    check(
        seen.len() == PLATFORMS.len(),
        format!("platforms {seen:?}, a release builds {PLATFORMS:?}"),
    );
    out
}

/// The archive deploy/krew/build-archive.sh makes for a platform.
fn archive_name(os: &str, arch: &str) -> String {
    format!("kubectl-doris_v{VERSION}_{os}_{arch}.tar.gz")
}

/// Whether `name` matches `glob` (`*` and `?`, as krew's file operations
/// take them, within one path segment).
fn glob_matches(glob: &str, name: &str) -> bool {
    fn walk(g: &[u8], n: &[u8]) -> bool {
        match (g.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                walk(&g[1..], n) || (!n.is_empty() && n[0] != b'/' && walk(g, &n[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => walk(&g[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => walk(&g[1..], &n[1..]),
            _ => false,
        }
    }
    walk(
        glob.trim_start_matches("./").as_bytes(),
        name.trim_start_matches("./").as_bytes(),
    )
}

/// The files krew's file operations leave in the plugin's folder, given
/// the archive's files; an operation that matches nothing is a problem
/// (krew fails the installation), and so is a file of the archive no
/// operation copies (it would ship unused).
fn installed(platform: &Value, archive: &[String]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut copied = BTreeSet::new();
    for op in platform["files"].as_array().unwrap() {
        let from = op["from"].as_str().unwrap_or_default();
        let to = op["to"].as_str().unwrap_or(".");
        let matched: Vec<&String> = archive.iter().filter(|f| glob_matches(from, f)).collect();
        if matched.is_empty() {
            return Err(format!(
                "no file of the archive {archive:?} matches {from:?}"
            ));
        }
        for file in matched {
            copied.insert(file.clone());
            let base = file.rsplit('/').next().unwrap();
            let dest = match to.trim_start_matches("./") {
                "" | "." => base.to_string(),
                dir if dir.ends_with('/') => format!("{dir}{base}"),
                path => path.to_string(),
            };
            out.insert(dest);
        }
    }
    let unused: Vec<&String> = archive.iter().filter(|f| !copied.contains(*f)).collect();
    if !unused.is_empty() {
        return Err(format!("no file operation copies {unused:?}"));
    }
    Ok(out)
}

#[test]
fn the_krew_manifest_keeps_krews_rules_and_cargos_version() {
    let manifest = manifest_at(&root().join(MANIFEST));
    assert_eq!(problems("doris.yaml", &manifest), Vec::<String>::new());
    // Every platform installs its bin from the archive the script makes.
    for platform in manifest["spec"]["platforms"].as_array().unwrap() {
        let files = installed(platform, &["kubectl-doris".to_string()]).unwrap();
        let bin = platform["bin"].as_str().unwrap().trim_start_matches("./");
        assert!(files.contains(bin), "{bin} not in {files:?}");
        // kubectl runs it as kubectl-doris, the name the binary answers to
        // as a plugin.
        assert_eq!(bin, "kubectl-doris");
    }
}

#[test]
fn the_shipped_deployment_runs_this_version() {
    // `version` reads the operator's version from its image tag.
    let deployment: Value =
        serde_norway::from_str(include_str!("../deploy/20-deployment.yaml")).unwrap();
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        doris_operator::kubectl::version::image_version(image).as_deref(),
        Some(VERSION),
        "{image}"
    );
}

#[test]
fn the_checks_catch_what_krew_refuses() {
    let good = manifest_at(&root().join(MANIFEST));
    let broken = |path: &[&str], value: Value| {
        let mut m = good.clone();
        let mut at = &mut m;
        for key in path {
            at = match key.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*key],
            };
        }
        *at = value;
        problems("doris.yaml", &m)
    };
    for (path, value, problem) in [
        (&["spec", "version"][..], "0.1.0".into(), "not v-prefixed"),
        (&["spec", "version"], "v0.0.1".into(), "Cargo.toml's is"),
        (&["metadata", "name"], "do ris".into(), "plugin name"),
        (&["metadata", "name"], "other".into(), "in file doris.yaml"),
        (
            &["spec", "shortDescription"],
            "".into(),
            "no shortDescription",
        ),
        (
            &["spec", "platforms", "0", "sha256"],
            "ABC".into(),
            "sha256",
        ),
        (&["spec", "platforms", "0", "bin"], "".into(), "no bin"),
        (
            &["spec", "platforms", "0", "files"],
            serde_json::json!([]),
            "no file operations",
        ),
        (
            &["spec", "platforms", "0", "selector", "matchLabels", "gpu"],
            "yes".into(),
            "selector keys",
        ),
        (
            &["spec", "platforms", "0", "selector"],
            serde_json::json!({}),
            "empty or no selector",
        ),
        (
            &["spec", "platforms", "1", "selector", "matchLabels", "arch"],
            "amd64".into(),
            "linux/amd64 twice",
        ),
        (
            &["spec", "platforms", "0", "selector", "matchLabels", "os"],
            "plan9".into(),
            "not one a release builds",
        ),
    ] {
        let found = broken(path, value);
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{path:?}: {found:?} lacks {problem:?}"
        );
    }
    let mut files = good["spec"]["platforms"][0].clone();
    files["files"] = serde_json::json!([{"from": "LICENSE", "to": "."}]);
    assert!(installed(&files, &["kubectl-doris".into()]).is_err());
    assert!(
        installed(
            &good["spec"]["platforms"][0],
            &["kubectl-doris".into(), "LICENSE".into()]
        )
        .is_err()
    );
    assert!(glob_matches("kubectl-*", "kubectl-doris"));
    assert!(!glob_matches("*", "dir/kubectl-doris"));
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-install-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_release_archive_holds_what_the_manifest_installs() {
    let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("linux", "amd64"),
        ("linux", "aarch64") => ("linux", "arm64"),
        ("macos", "x86_64") => ("darwin", "amd64"),
        ("macos", "aarch64") => ("darwin", "arm64"),
        other => {
            eprintln!("no krew platform for {other:?}: the archive is not built");
            return;
        }
    };
    let dir = scratch("archive");
    let copy = dir.join("doris.yaml");
    std::fs::copy(root().join(MANIFEST), &copy).unwrap();
    let out = Command::new("bash")
        .arg(root().join("deploy/krew/build-archive.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_doris-operator"), "--out"])
        .arg(dir.join("out"))
        .arg("--manifest")
        .arg(&copy)
        // The debug binary is large: gzip's best would take a minute.
        .args(["--gzip-level", "1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let [.., archive, sha] = lines[..] else {
        panic!("{stdout}")
    };
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{sha}"
    );
    let archive = PathBuf::from(archive);
    assert_eq!(
        archive.file_name().unwrap().to_str().unwrap(),
        archive_name(platform.0, platform.1)
    );
    assert_eq!(sha256_hex(&std::fs::read(&archive).unwrap()), sha);

    // The manifest copy names this sha256 for this platform only, and
    // still keeps krew's rules.
    let updated = manifest_at(&copy);
    assert_eq!(problems("doris.yaml", &updated), Vec::<String>::new());
    let platforms = updated["spec"]["platforms"].as_array().unwrap();
    let ours = platforms
        .iter()
        .find(|p| {
            p["selector"]["matchLabels"]["os"] == platform.0
                && p["selector"]["matchLabels"]["arch"] == platform.1
        })
        .unwrap();
    assert_eq!(ours["sha256"], sha);
    let original = manifest_at(&root().join(MANIFEST));
    for (p, o) in platforms
        .iter()
        .zip(original["spec"]["platforms"].as_array().unwrap())
    {
        if p != ours {
            assert_eq!(p, o);
        }
    }

    // What the archive holds installs the bin, which runs as the plugin.
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let files: Vec<String> = text(&listed).0.lines().map(String::from).collect();
    let installed = installed(ours, &files).unwrap();
    assert!(installed.contains("kubectl-doris"), "{installed:?}");
    let unpacked = dir.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(untar.success());
    let run = Command::new(unpacked.join("kubectl-doris"))
        .args(["version", "--client"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stdout.starts_with(&format!("Client Version: {VERSION} (commit ")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary under `name` (kubectl-doris, kubectl_complete-doris) in a
/// folder of its own, as kubectl finds a plugin on PATH.
fn linked(dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_doris-operator"), &link).unwrap();
    link
}

fn run(program: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{program:?} {args:?}: {stderr}");
    (stdout, stderr)
}

#[test]
fn completion_scripts_know_the_subcommands() {
    let dir = scratch("completion");
    let operator = PathBuf::from(env!("CARGO_BIN_EXE_doris-operator"));
    let plugin = linked(&dir, "kubectl-doris");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (script, _) = run(&operator, &["completion", shell]);
        for word in [
            "doris-operator",
            "render",
            "policy",
            "completion",
            "version",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        let (script, _) = run(&plugin, &["completion", shell]);
        for word in ["kubectl-doris", "status", "restart", "diff", "version"] {
            assert!(script.contains(word), "{shell} (plugin): no {word}");
        }
    }
    let out = Command::new(&operator)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The candidates (without descriptions) and the directive line of a
/// Cobra-style completion answer.
fn cobra(stdout: &str) -> (Vec<&str>, &str) {
    let mut lines: Vec<&str> = stdout.lines().collect();
    let directive = lines.pop().expect("a directive line");
    assert!(directive.starts_with(':'), "{stdout}");
    let names = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    (names, directive)
}

#[test]
fn kubectl_complete_doris_answers_as_kubectl_asks() {
    let dir = scratch("kubectl-complete");
    let complete = linked(&dir, "kubectl_complete-doris");
    let plugin = linked(&dir, "kubectl-doris");
    // kubectl passes the words after `kubectl doris`, the last one being
    // completed; ":4" is Cobra's ShellCompDirectiveNoFileComp, ":0" its
    // default (file names).
    let (stdout, _) = run(&complete, &[""]);
    let (names, directive) = cobra(&stdout);
    for sub in [
        "diff",
        "status",
        "restart",
        "pause",
        "resume",
        "render",
        "version",
        "completion",
    ] {
        assert!(names.contains(&sub), "{sub} not in {names:?}");
    }
    assert_eq!(directive, ":4");
    assert!(
        stdout.contains("status\tOne screen on a cluster"),
        "{stdout}"
    );
    for (words, expected, directive) in [
        (&["st"][..], &["status"][..], ":4"),
        (&["re"], &["restart", "resume", "render"], ":4"),
        (
            &["policy", ""],
            &["check", "contract", "export", "help"],
            ":4",
        ),
        (&["status", "doris", "--kind", ""], &["dcr", "ddc"], ":4"),
        (
            &["-n", "prod", "pause", "--k"],
            &["--kubeconfig", "--kind"],
            ":4",
        ),
        (&["completion", "z"], &["zsh"], ":4"),
        (&["version", "--cl"], &["--client"], ":4"),
        (&["diff", "-f", ""], &[], ":0"),
        (&["status", ""], &[], ":4"),
    ] {
        let (stdout, _) = run(&complete, words);
        let (names, got) = cobra(&stdout);
        assert_eq!((names.as_slice(), got), (expected, directive), "{words:?}");
    }
    // The hidden `__complete` answers the same, for the plugin and for
    // doris-operator's own command line.
    assert_eq!(
        run(&plugin, &["__complete", "re"]).0,
        run(&complete, &["re"]).0
    );
    let operator = PathBuf::from(env!("CARGO_BIN_EXE_doris-operator"));
    let (stdout, _) = run(&operator, &["__complete", "re"]);
    assert_eq!(cobra(&stdout), (vec!["render"], ":4"));
    let (stdout, _) = run(&operator, &["__complete", "kubectl", "st"]);
    assert_eq!(cobra(&stdout), (vec!["status"], ":4"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kubectl_completes_the_plugin_through_kubectl_complete_doris() {
    // kubectl's own completion (`kubectl __complete ...`, what its shell
    // scripts call) finds kubectl_complete-doris on PATH.
    let minor = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice::<Value>(&out.stdout).ok())
        .and_then(|v| {
            let minor = v["clientVersion"]["minor"].as_str()?.to_string();
            minor.trim_end_matches('+').parse::<u32>().ok()
        });
    match minor {
        Some(minor) if minor >= 26 => {}
        found => {
            eprintln!(
                "no kubectl 1.26 or later (1.{found:?}): its plugin completion is not checked"
            );
            return;
        }
    }
    let dir = scratch("kubectl");
    linked(&dir, "kubectl-doris");
    linked(&dir, "kubectl_complete-doris");
    let path = std::env::join_paths(std::iter::once(dir.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    for (words, expected, directive) in [
        (&["doris", "st"][..], &["status"][..], ":4"),
        (
            &["doris", "-n", "prod", "pause", "--k"],
            &["--kubeconfig", "--kind"],
            ":4",
        ),
        (&["doris", "diff", "-f", ""], &[], ":0"),
    ] {
        let out = Command::new("kubectl")
            .arg("__complete")
            .args(words)
            .env("PATH", &path)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            cobra(&stdout),
            (expected.to_vec(), directive),
            "kubectl __complete {words:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_client_needs_no_cluster() {
    let dir = scratch("version");
    let plugin = linked(&dir, "kubectl-doris");
    let operator = PathBuf::from(env!("CARGO_BIN_EXE_doris-operator"));
    // A kubeconfig whose server answers nothing.
    let config = dir.join("kubeconfig");
    std::fs::write(
        &config,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    server: \
         https://127.0.0.1:1\nusers:\n- name: none\n  user: {}\ncontexts:\n- name: none\n  \
         context:\n    cluster: none\n    user: none\ncurrent-context: none\n",
    )
    .unwrap();
    for program in [&operator, &plugin] {
        let out = Command::new(program)
            .args(["version", "--client"])
            .env("KUBECONFIG", &config)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let commit = stdout
            .strip_prefix(&format!("Client Version: {VERSION} (commit "))
            .and_then(|rest| rest.strip_suffix(")\n"))
            .unwrap_or_else(|| panic!("{stdout:?}"));
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit}"
        );
        assert_eq!(stderr, "");
        // Without --client the cluster is asked: this one answers nothing,
        // which is an error, after the client's line.
        let out = Command::new(program)
            .args(["version", "--kubeconfig"])
            .arg(&config)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(stdout.starts_with("Client Version: "), "{stdout}");
        assert!(
            stderr.contains("error: the cluster answered nothing"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
