//! The `doris-operator` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use doris_operator::conventions::SourceError;
use doris_operator::kubectl::Connection;
use doris_operator::kubectl::cli::{self as plugin, PluginCommand};
use doris_operator::render::{self, Format};

#[derive(Parser)]
#[command(
    name = "doris-operator",
    version,
    about = "A Kubernetes operator for Apache Doris"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every object the operator would apply for a DorisCluster.
    Render {
        /// YAML file with DorisCluster documents, and the ConfigMaps they
        /// reference (used for fe.conf/be.conf), `-` for standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Conventions laid over the embedded defaults: a folder of
        /// convention files, or a YAML file of convention ConfigMaps.
        /// Repeat to stack layers, lowest first.
        #[arg(long, value_name = "FOLDER|FILE")]
        conventions: Vec<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Yaml)]
        output: Output,
        /// Print the order a full restart would follow instead of objects.
        #[arg(long)]
        plan: bool,
        /// Instead of the objects, show which convention layer, and which
        /// file and line in it, last set each of their fields.
        #[arg(long, conflicts_with_all = ["plan", "diff"])]
        explain: bool,
        /// Instead of the objects, show what they would change compared with
        /// rendering by these other conventions (a folder, or `embedded`
        /// for the defaults).
        #[arg(long, value_name = "OLD")]
        diff: Option<PathBuf>,
        /// Kinds the API server serves beyond those the operator checks,
        /// as GROUP/VERSION/KIND (monitoring.coreos.com/v1/ServiceMonitor):
        /// manifest templates may make objects of these kinds.
        #[arg(long, value_name = "GROUP/VERSION/KIND", value_delimiter = ',',
              value_parser = doris_operator::plan::parse_api_resource)]
        api_resources: Vec<(String, String)>,
        /// The Pod Security level of the namespace the clusters run in
        /// (privileged, baseline or restricted): host tuning follows it.
        /// By default, a Namespace document's label in the file, or
        /// privileged.
        #[arg(long, value_name = "LEVEL",
              value_parser = doris_operator::plan::PodSecurity::parse)]
        pod_security: Option<doris_operator::plan::PodSecurity>,
    },
    /// Print the CustomResourceDefinitions.
    Crd,
    /// Run the operator against the cluster of the current kubeconfig (or
    /// the in-cluster service account).
    Run {
        /// Watch only this namespace (default: all).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Folder of convention files laid over the embedded defaults.
        #[arg(long, env = "CONVENTIONS_DIR")]
        conventions_dir: Option<PathBuf>,
        /// Namespace whose ConfigMaps labelled doris.selectdb.com/conventions
        /// hold convention sets (default: the operator's own, from
        /// POD_NAMESPACE; none are read when neither is set).
        #[arg(long, env = "CONVENTIONS_NAMESPACE")]
        conventions_namespace: Option<String>,
        /// Reach every cluster's FE at HOST:PORT instead of through its
        /// access Service (an operator run outside the cluster, with a
        /// port-forward to the FE). Statements that act on one FE only (FE
        /// settings on Doris before 2.1.5) still go to each FE pod's name.
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_address, env = "FE_ADDRESS")]
        fe_address: Option<(String, u16)>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
        log_format: LogFormat,
        /// Run the controller only while holding the leader Lease, so that
        /// several replicas never act at once.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "LEADER_ELECT")]
        leader_elect: bool,
        /// Clusters reconciled at the same time.
        #[arg(long, default_value_t = 8, env = "CONCURRENCY")]
        concurrency: u16,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080", env = "METRICS_ADDR")]
        metrics_addr: std::net::SocketAddr,
    },
    /// Work with convention bundles.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print a shell completion script for this command line.
    #[command(after_long_help = COMPLETION_HELP)]
    Completion {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print this binary's version and, unless --client, the versions of
    /// the operator and the CRDs the cluster runs, warning of any other
    /// than this binary's.
    #[command(after_help = CONNECTION_HELP)]
    Version {
        /// This binary's version only; the cluster is not asked.
        #[arg(long)]
        client: bool,
        #[command(flatten)]
        connection: Connection,
        /// The operator's namespace, where its Deployment is.
        #[arg(long, default_value = "doris-operator")]
        operator_namespace: String,
    },
    /// The kubectl plugin's commands (what `kubectl doris` runs when this
    /// binary is on PATH as kubectl-doris).
    #[command(after_help = CONNECTION_HELP)]
    Kubectl {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: PluginCommand,
    },
}

const CONNECTION_HELP: &str = "kubectl's --kubeconfig, --context and -n/--namespace go \
    before the command or after it: kubectl doris -n my-ns status my-cluster";

const COMPLETION_HELP: &str = "\
Load it in the running shell, or install it for every new one:
  source <(doris-operator completion bash)
  doris-operator completion zsh > \"${fpath[1]}/_doris-operator\"
  doris-operator completion fish > ~/.config/fish/completions/doris-operator.fish
`kubectl doris completion SHELL` prints the script for the command kubectl-doris.

For `kubectl doris <TAB>`, kubectl (1.26 and later) asks the executable
kubectl_complete-doris on PATH; make it a link to this binary, beside
kubectl-doris (krew's bin folder, when krew installed it):
  ln -s \"$(command -v kubectl-doris)\" \"$(dirname \"$(command -v kubectl-doris)\")/kubectl_complete-doris\"";

/// `kubectl doris`: this binary, invoked as `kubectl-doris`.
#[derive(Parser)]
#[command(
    name = "kubectl doris",
    bin_name = "kubectl doris",
    version,
    about = "Doris clusters run by doris-operator, from kubectl",
    after_help = CONNECTION_HELP
)]
struct PluginCli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: PluginTop,
}

#[derive(Subcommand)]
enum PluginTop {
    #[command(flatten)]
    Plugin(PluginCommand),
    #[command(flatten)]
    Base(Command),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Compile conventions (laid over the defaults) and render the
    /// built-in sample clusters with them.
    Check {
        /// A folder of *.rhai and *.j2 files, or a YAML file of convention
        /// ConfigMaps; several are stacked, lowest first.
        #[arg(required = true, value_name = "FOLDER|FILE")]
        layers: Vec<PathBuf>,
        /// Kinds the API server serves beyond those the operator checks,
        /// as GROUP/VERSION/KIND (monitoring.coreos.com/v1/ServiceMonitor):
        /// manifest templates may make objects of these kinds.
        #[arg(long, value_name = "GROUP/VERSION/KIND", value_delimiter = ',',
              value_parser = doris_operator::plan::parse_api_resource)]
        api_resources: Vec<(String, String)>,
    },
    /// Print the reference of the policy contract: what each policy and
    /// template receives (docs/src/conventions/contract.md).
    Contract,
    /// Print a convention bundle as a ConfigMap labelled as convention set
    /// SET, ready to edit and apply.
    Export {
        /// Conventions laid over the embedded defaults before export (a
        /// folder, or a YAML file of convention ConfigMaps; repeatable).
        #[arg(long, value_name = "FOLDER|FILE")]
        conventions: Vec<PathBuf>,
        /// The set the ConfigMap belongs to.
        #[arg(long, default_value = "default")]
        set: String,
        /// Name of the ConfigMap (default: doris-conventions-SET).
        #[arg(long)]
        name: Option<String>,
        /// Namespace of the ConfigMap: the operator's.
        #[arg(long, default_value = "doris-operator")]
        namespace: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Yaml,
    Json,
}

/// What the command line asks for.
enum Invocation {
    /// A `kubectl doris` command, with every connection flag given.
    Plugin(PluginCommand),
    Operator(Command),
}

/// Parses the command line of `doris-operator`, or of `kubectl doris` when
/// `as_plugin`. The connection flags may come before the plugin command as
/// well as after it.
fn parse<I, T>(as_plugin: bool, args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let (outer, command) = if as_plugin {
        let cli = PluginCli::try_parse_from(args)?;
        match cli.command {
            PluginTop::Plugin(command) => {
                return Ok(Invocation::Plugin(command.after(cli.connection)));
            }
            PluginTop::Base(command) => (cli.connection, command),
        }
    } else {
        (Connection::default(), Cli::try_parse_from(args)?.command)
    };
    match command {
        Command::Kubectl {
            connection,
            command,
        } => Ok(Invocation::Plugin(command.after(outer.then(connection)))),
        Command::Version {
            client,
            connection,
            operator_namespace,
        } => Ok(Invocation::Operator(Command::Version {
            client,
            connection: outer.then(connection),
            operator_namespace,
        })),
        command if outer == Connection::default() => Ok(Invocation::Operator(command)),
        command => {
            let name = match command {
                Command::Render { .. } => "render",
                Command::Crd => "crd",
                Command::Run { .. } => "run",
                Command::Policy { .. } => "policy",
                Command::Kubectl { .. } => "kubectl",
                Command::Completion { .. } => "completion",
                Command::Version { .. } => "version",
            };
            Err(PluginCli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{} {} with diff, status, restart, pause, resume and version, not with \
                     {name}",
                    outer.given().join(", "),
                    if outer.given().len() == 1 {
                        "goes"
                    } else {
                        "go"
                    }
                ),
            ))
        }
    }
}

/// The name kubectl runs a plugin by.
const PLUGIN_NAME: &str = "kubectl-doris";

/// The name kubectl asks a plugin's completions of (kubectl 1.26 and later).
const PLUGIN_COMPLETION_NAME: &str = "kubectl_complete-doris";

/// The command line of `kubectl doris` (`as_plugin`) or of `doris-operator`.
fn definition(as_plugin: bool) -> clap::Command {
    if as_plugin {
        PluginCli::command()
    } else {
        Cli::command()
    }
}

/// Completes the last of `words` the way Cobra programs answer
/// `__complete` (src/kubectl/complete.rs).
fn complete(as_plugin: bool, words: &[std::ffi::OsString]) -> ExitCode {
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let completion = doris_operator::kubectl::complete::complete(&definition(as_plugin), &words);
    let _ = std::io::Write::write_all(&mut std::io::stdout(), completion.to_cobra().as_bytes());
    ExitCode::SUCCESS
}

/// mimalloc rather than the C library's allocator: the operator's work is
/// many small, short-lived allocations (watch events decoded and slimmed,
/// plans parsed) across threads, where glibc's malloc spent a fifth of the
/// CPU of a bring-up (profiled) consolidating and unlinking chunks. The
/// image sets `MIMALLOC_ARENA_EAGER_COMMIT=0` and `MIMALLOC_PURGE_DELAY=0`
/// (read before `main`): with mimalloc's defaults the operator's peak
/// memory for 100 clusters was 95 MiB (142 MiB after a restart), with
/// these 66 MiB (71 MiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_stem())
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    if name == PLUGIN_COMPLETION_NAME {
        return complete(true, &args[1..]);
    }
    let as_plugin = name == PLUGIN_NAME;
    if args.get(1).is_some_and(|a| a == "__complete") {
        return complete(as_plugin, &args[2..]);
    }
    let command = match parse(as_plugin, args) {
        Ok(Invocation::Plugin(command)) => return plugin::run(command),
        Ok(Invocation::Operator(Command::Completion { shell })) => {
            let bin_name = if as_plugin {
                PLUGIN_NAME
            } else {
                "doris-operator"
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut definition(as_plugin), bin_name, &mut script);
            // A closed pipe (`| head`) is no error of ours.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Operator(command)) => command,
        Err(e) => e.exit(),
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Render {
            file,
            conventions,
            output,
            plan,
            explain,
            diff,
            api_resources,
            pod_security,
        } => {
            doris_operator::plan::serve_kinds(api_resources);
            let format = match output {
                Output::Yaml => Format::Yaml,
                Output::Json => Format::Json,
            };
            let text = render::read_file(&file)?;
            let mut input = render::read_input(&file.display().to_string(), &text)?;
            for warning in &input.warnings {
                eprintln!("warning: {warning}");
            }
            if let Some(level) = pod_security {
                input.pod_security = level;
            }
            if explain {
                let sources = render::load_sources(conventions.iter().map(PathBuf::as_path))
                    .map_err(|e| errors(vec![e]))?;
                print!("{}", doris_operator::explain::explain(&sources, &input)?);
                return Ok(());
            }
            let bundle =
                render::load_bundle(conventions.iter().map(PathBuf::as_path)).map_err(errors)?;
            if let Some(old) = diff {
                let old = if old.as_os_str() == "embedded" {
                    render::load_bundle(None)
                } else {
                    render::load_bundle(Some(old.as_path()))
                }
                .map_err(errors)?;
                print!("{}", render::diff(&old, &bundle, &input)?);
            } else if plan {
                print!("{}", render::render_restart_plan(&bundle, &input, format)?);
            } else {
                let (out, notes) = render::render(&bundle, &input, format)?;
                for note in notes {
                    eprintln!("note: {note}");
                }
                print!("{out}");
            }
            Ok(())
        }
        Command::Run {
            namespace,
            conventions_dir,
            conventions_namespace,
            fe_address,
            log_format,
            metrics_addr,
            leader_elect,
            concurrency,
        } => {
            init_logging(log_format);
            let bundle = render::load_bundle(conventions_dir.as_deref()).map_err(errors)?;
            // A template making a kind the operator cannot check passes once
            // the API server says it serves that kind (asked below).
            let ask_discovery = match doris_operator::samples::canary(&bundle) {
                Ok(_) => false,
                Err(e) if e.contains(doris_operator::plan::UNSERVED_KIND) => true,
                Err(e) => return Err(e),
            };
            let conventions = std::sync::Arc::new(
                doris_operator::conventions::reload::LiveConventions::new(bundle),
            );
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let config = kube::Config::infer()
                    .await
                    .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
                let client = doris_operator::controller::kube_client(config)
                    .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
                if ask_discovery {
                    doris_operator::controller::conventions::served_kinds(client.clone())().await;
                    doris_operator::samples::canary(&conventions.current())?;
                }
                tracing::info!(
                    revision = conventions.current().revision(),
                    "conventions loaded"
                );
                let _watch = match &conventions_dir {
                    Some(dir) => Some(doris_operator::conventions::reload::watch_dir(
                        dir.clone(),
                        conventions.clone(),
                    )?),
                    None => None,
                };
                let metrics = std::sync::Arc::new(doris_operator::metrics::Metrics::default());
                let server = tokio::spawn(doris_operator::metrics::serve(
                    metrics_addr,
                    metrics.clone(),
                ));
                let settings = doris_operator::controller::Settings {
                    namespace,
                    conventions,
                    metrics,
                    concurrency,
                    conventions_namespace: conventions_namespace
                        .or_else(|| std::env::var("POD_NAMESPACE").ok()),
                    fe_resolver: fe_address.map(
                        |addr| -> doris_operator::controller::fe_link::FeResolver {
                            std::sync::Arc::new(move |_, pod| pod.is_none().then(|| addr.clone()))
                        },
                    ),
                    be_resolver: None,
                };
                let outcome = if leader_elect {
                    let lease_namespace =
                        std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
                    let identity = std::env::var("POD_NAME")
                        .unwrap_or_else(|_| format!("doris-operator-{}", std::process::id()));
                    let lost = doris_operator::controller::leader::run_as_leader(
                        client.clone(),
                        &lease_namespace,
                        &identity,
                        shutdown_signal(),
                        |stopped| {
                            doris_operator::controller::run(client, settings, async move {
                                let _ = stopped.await;
                            })
                        },
                    )
                    .await?;
                    if lost {
                        Err("lost the leader Lease".to_string())
                    } else {
                        Ok(())
                    }
                } else {
                    doris_operator::controller::run(client, settings, shutdown_signal()).await;
                    Ok(())
                };
                server.abort();
                outcome
            })
        }
        Command::Kubectl { .. } => unreachable!("plugin commands are run by `plugin`"),
        Command::Completion { .. } => unreachable!("completion scripts are printed by `main`"),
        Command::Version {
            client,
            connection,
            operator_namespace,
        } => {
            if client {
                println!("{}", doris_operator::kubectl::version::client_line());
                return Ok(());
            }
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(doris_operator::kubectl::version::run(
                &connection,
                &operator_namespace,
            ))
        }
        Command::Crd => {
            print!("{}", doris_operator::crd::crd_yaml());
            print!("{}", doris_operator::crd::disaggregated::crd_yaml());
            Ok(())
        }
        Command::Policy {
            command:
                PolicyCommand::Check {
                    layers,
                    api_resources,
                },
        } => {
            doris_operator::plan::serve_kinds(api_resources);
            let bundle =
                render::load_bundle(layers.iter().map(PathBuf::as_path)).map_err(errors)?;
            for warning in bundle.contract_warnings() {
                eprintln!("warning: {warning}");
            }
            let checked = doris_operator::samples::canary(&bundle)?;
            println!(
                "conventions {} (revision {}): compiled, {checked} sample clusters rendered \
                 with their full restart, membership rules and maintenance windows \
                 (every policy and template ran)",
                layers
                    .iter()
                    .map(|l| l.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" + "),
                bundle.revision()
            );
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Contract,
        } => {
            print!("{}", doris_operator::conventions::contract::reference());
            Ok(())
        }
        Command::Policy {
            command:
                PolicyCommand::Export {
                    conventions,
                    set,
                    name,
                    namespace,
                },
        } => {
            let bundle =
                render::load_bundle(conventions.iter().map(PathBuf::as_path)).map_err(errors)?;
            let name = name.unwrap_or_else(|| format!("doris-conventions-{set}"));
            print!(
                "{}",
                doris_operator::conventions::reload::config_map_yaml(
                    bundle.sources(),
                    &set,
                    &name,
                    &namespace
                )
            );
            Ok(())
        }
    }
}

fn parse_address(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} in {text:?} is not a port number"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

fn errors(errs: Vec<SourceError>) -> String {
    let mut out = format!("the conventions have {} problem(s):", errs.len());
    for e in errs {
        out.push_str("\n  ");
        out.push_str(&e.to_string());
    }
    out
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
