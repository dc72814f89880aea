//! Tests of the command line's parsing (main.rs).

use super::*;

/// The connection flags a `kubectl doris` command ends up with.
fn connection(as_plugin: bool, args: &[&str]) -> Connection {
    match parse(as_plugin, args) {
        Ok(Invocation::Plugin(mut command)) => std::mem::take(command.connection_mut()),
        Ok(Invocation::Operator(_)) => panic!("{args:?}: not a plugin command"),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn flags(kubeconfig: Option<&str>, context: Option<&str>, namespace: Option<&str>) -> Connection {
    Connection {
        kubeconfig: kubeconfig.map(PathBuf::from),
        context: context.map(String::from),
        namespace: namespace.map(String::from),
    }
}

#[test]
fn connection_flags_go_before_or_after_the_command() {
    let my_ns = flags(None, None, Some("my-ns"));
    for args in [
        &["kubectl-doris", "-n", "my-ns", "diff", "-f", "c.yaml"][..],
        &["kubectl-doris", "diff", "-n", "my-ns", "-f", "c.yaml"],
        &["kubectl-doris", "diff", "-f", "c.yaml", "--namespace=my-ns"],
        &["kubectl-doris", "--namespace", "my-ns", "status", "foo"],
        &["kubectl-doris", "-n", "my-ns", "kubectl", "status", "foo"],
    ] {
        assert_eq!(connection(true, args), my_ns, "{args:?}");
    }
    for args in [
        &[
            "doris-operator",
            "kubectl",
            "-n",
            "my-ns",
            "diff",
            "-f",
            "c.yaml",
        ][..],
        &[
            "doris-operator",
            "kubectl",
            "diff",
            "-f",
            "c.yaml",
            "-n",
            "my-ns",
        ],
    ] {
        assert_eq!(connection(false, args), my_ns, "{args:?}");
    }
    assert_eq!(
        connection(true, &["kubectl-doris", "--context", "x", "status", "foo"]),
        flags(None, Some("x"), None)
    );
    assert_eq!(
        connection(
            true,
            &["kubectl-doris", "--kubeconfig", "f", "restart", "foo"]
        ),
        flags(Some("f"), None, None)
    );
    let all = [
        "kubectl-doris",
        "--kubeconfig",
        "f",
        "-n",
        "a",
        "pause",
        "foo",
        "--context",
        "x",
    ];
    assert_eq!(
        connection(true, &all),
        flags(Some("f"), Some("x"), Some("a"))
    );
    let all = [
        "doris-operator",
        "kubectl",
        "--context",
        "x",
        "resume",
        "foo",
        "-n",
        "a",
    ];
    assert_eq!(connection(false, &all), flags(None, Some("x"), Some("a")));
}

#[test]
fn a_flag_given_twice_is_the_last_one_as_with_kubectl() {
    for args in [
        &["kubectl-doris", "-n", "a", "status", "foo", "-n", "b"][..],
        &["kubectl-doris", "-n", "a", "-n", "b", "status", "foo"],
        &[
            "kubectl-doris",
            "status",
            "foo",
            "-n",
            "a",
            "--namespace",
            "b",
        ],
        &[
            "kubectl-doris",
            "-n",
            "a",
            "kubectl",
            "status",
            "foo",
            "-n",
            "b",
        ],
    ] {
        assert_eq!(
            connection(true, args),
            flags(None, None, Some("b")),
            "{args:?}"
        );
    }
    let args = [
        "doris-operator",
        "kubectl",
        "--context",
        "x",
        "status",
        "foo",
        "--context",
        "y",
    ];
    assert_eq!(connection(false, &args), flags(None, Some("y"), None));
    let args = [
        "kubectl-doris",
        "--kubeconfig",
        "f",
        "restart",
        "foo",
        "--kubeconfig",
        "g",
    ];
    assert_eq!(connection(true, &args), flags(Some("g"), None, None));
}

#[test]
fn connection_flags_with_an_operator_command_are_refused() {
    let refusal = |args: &[&str]| match parse(true, args) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{args:?} accepted"),
    };
    let err = refusal(&["kubectl-doris", "-n", "my-ns", "render", "-f", "c.yaml"]);
    assert!(
        err.contains(
            "-n/--namespace goes with diff, status, restart, pause, resume and version, not \
             with render"
        ),
        "{err}"
    );
    let err = refusal(&["kubectl-doris", "--context", "x", "-n", "a", "crd"]);
    assert!(
        err.contains("--context, -n/--namespace go with diff,") && err.contains("not with crd"),
        "{err}"
    );
    let err = refusal(&["kubectl-doris", "render", "-f", "c.yaml", "-n", "my-ns"]);
    assert!(err.contains("unexpected argument '-n'"), "{err}");
    // The operator's own --namespace is still its own.
    match parse(true, ["kubectl-doris", "run", "--namespace", "watched"]) {
        Ok(Invocation::Operator(Command::Run { namespace, .. })) => {
            assert_eq!(namespace.as_deref(), Some("watched"));
        }
        _ => panic!("run --namespace is not run's"),
    }
}

#[test]
fn version_takes_the_connection_flags_before_or_after_it() {
    for (as_plugin, args) in [
        (true, &["kubectl-doris", "--context", "x", "version"][..]),
        (true, &["kubectl-doris", "version", "--context", "x"]),
        (false, &["doris-operator", "version", "--context", "x"]),
    ] {
        match parse(as_plugin, args) {
            Ok(Invocation::Operator(Command::Version {
                client: false,
                connection,
                operator_namespace,
            })) => {
                assert_eq!(connection, flags(None, Some("x"), None), "{args:?}");
                assert_eq!(operator_namespace, "doris-operator");
            }
            _ => panic!("{args:?} is not version"),
        }
    }
}

#[test]
fn the_help_shows_the_connection_flags_where_they_apply() {
    let mut cli = PluginCli::command();
    let top = cli.render_help().to_string();
    for flag in [
        "--kubeconfig <FILE>",
        "--context <CONTEXT>",
        "-n, --namespace <NAMESPACE>",
    ] {
        assert!(top.contains(flag), "{top}");
    }
    assert!(top.contains("go before the command or after it"), "{top}");
    let kubectl = cli
        .find_subcommand_mut("kubectl")
        .unwrap()
        .render_help()
        .to_string();
    assert!(kubectl.contains("-n, --namespace <NAMESPACE>"), "{kubectl}");
    let status = cli
        .find_subcommand_mut("status")
        .unwrap()
        .render_help()
        .to_string();
    assert!(status.contains("-n, --namespace <NAMESPACE>"), "{status}");
    let render = cli
        .find_subcommand_mut("render")
        .unwrap()
        .render_help()
        .to_string();
    assert!(!render.contains("--kubeconfig"), "{render}");
}
