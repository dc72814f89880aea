//! The `doris-operator` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use doris_operator::conventions::SourceError;
use doris_operator::kubectl::{self, Connection, KindArg};
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
        /// Folder of convention files laid over the embedded defaults.
        #[arg(long)]
        conventions: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Yaml)]
        output: Output,
        /// Print the order a full restart would follow instead of objects.
        #[arg(long)]
        plan: bool,
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
        /// port-forward to the FE).
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
    /// The kubectl plugin's commands (what `kubectl doris` runs when this
    /// binary is on PATH as kubectl-doris).
    Kubectl {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// `kubectl doris`: this binary, invoked as `kubectl-doris`.
#[derive(Parser)]
#[command(
    name = "kubectl doris",
    bin_name = "kubectl doris",
    version,
    about = "Doris clusters run by doris-operator, from kubectl"
)]
struct PluginCli {
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
enum PluginCommand {
    /// Show what applying a cluster file would change in the running
    /// cluster, planned with the conventions live there. Writes nothing.
    /// Exit status 0: no change, 1: changes, 2: an error.
    Diff {
        /// YAML file with DorisCluster / DorisDisaggregatedCluster documents
        /// (and ConfigMaps applied with them), `-` for standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
        /// The operator's namespace, where its convention ConfigMaps are.
        #[arg(long, default_value = "doris-operator")]
        operator_namespace: String,
    },
    /// One screen on a cluster: pods, conditions, FE membership, rollout,
    /// conventions and recent Warning Events.
    Status {
        name: String,
        #[command(flatten)]
        connection: Connection,
        /// The cluster's kind, when both kinds have one by this name.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// The operator's namespace, where its convention ConfigMaps are.
        #[arg(long, default_value = "doris-operator")]
        operator_namespace: String,
    },
    /// Restart parts of a cluster (every part when none is named): the
    /// operator rolls their pods in restart.rhai's order.
    Restart {
        name: String,
        /// fe, be, cn, broker (a DorisDisaggregatedCluster: ms, fe, or a
        /// compute group's name).
        parts: Vec<String>,
        #[command(flatten)]
        connection: Connection,
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Halt the cluster's rollouts before their next step.
    Pause {
        name: String,
        #[command(flatten)]
        connection: Connection,
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Let a paused rollout go on.
    Resume {
        name: String,
        #[command(flatten)]
        connection: Connection,
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Compile a conventions folder (laid over the defaults) and render the
    /// built-in sample clusters with it.
    Check {
        /// The folder of *.rhai and *.j2 files.
        dir: PathBuf,
        /// Kinds the API server serves beyond those the operator checks,
        /// as GROUP/VERSION/KIND (monitoring.coreos.com/v1/ServiceMonitor):
        /// manifest templates may make objects of these kinds.
        #[arg(long, value_name = "GROUP/VERSION/KIND", value_delimiter = ',',
              value_parser = doris_operator::plan::parse_api_resource)]
        api_resources: Vec<(String, String)>,
    },
    /// Print a convention bundle as a ConfigMap labelled as convention set
    /// SET, ready to edit and apply.
    Export {
        /// Folder laid over the embedded defaults before export.
        #[arg(long)]
        conventions: Option<PathBuf>,
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

fn main() -> ExitCode {
    let as_plugin = std::env::args_os()
        .next()
        .is_some_and(|arg0| Path::new(&arg0).file_stem() == Some("kubectl-doris".as_ref()));
    let command = if as_plugin {
        match PluginCli::parse().command {
            PluginTop::Plugin(command) => return plugin(command),
            PluginTop::Base(command) => command,
        }
    } else {
        Cli::parse().command
    };
    if let Command::Kubectl { command } = command {
        return plugin(command);
    }
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a plugin command. As with `kubectl diff`, a diff exits 1 when
/// something would change and 2 on an error; the other commands exit 1 on
/// an error.
fn plugin(command: PluginCommand) -> ExitCode {
    let is_diff = matches!(command, PluginCommand::Diff { .. });
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run_plugin(command)));
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(if is_diff { 2 } else { 1 })
        }
    }
}

async fn run_plugin(command: PluginCommand) -> Result<ExitCode, String> {
    let done = |text: String| {
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    };
    match command {
        PluginCommand::Diff {
            file,
            connection,
            operator_namespace,
        } => {
            let text = read_file(&file)?;
            let input = render::read_input(&file.display().to_string(), &text)?;
            for warning in &input.warnings {
                eprintln!("warning: {warning}");
            }
            let (client, namespace) = kubectl::connect(&connection).await?;
            let options = kubectl::diff::Options {
                namespace,
                namespace_explicit: connection.namespace.is_some(),
                operator_namespace,
            };
            let report = kubectl::diff::diff(&client, &input, &options).await?;
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            print!("{}", report.text);
            Ok(if report.changed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        PluginCommand::Status {
            name,
            connection,
            kind,
            operator_namespace,
        } => {
            let (client, namespace) = kubectl::connect(&connection).await?;
            let observed =
                kubectl::status::observe(&client, &namespace, &name, kind, &operator_namespace)
                    .await?;
            print!(
                "{}",
                kubectl::status::screen(&observed, k8s_openapi::jiff::Timestamp::now())
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Restart {
            name,
            parts,
            connection,
            kind,
        } => {
            let (client, cluster) = cluster_named(&connection, &name, kind).await?;
            let now = k8s_openapi::jiff::Timestamp::now()
                .round(k8s_openapi::jiff::Unit::Second)
                .map_err(|e| e.to_string())?
                .to_string();
            done(kubectl::restart(&client, &cluster, &parts, &now).await?)
        }
        PluginCommand::Pause {
            name,
            connection,
            kind,
        } => {
            let (client, cluster) = cluster_named(&connection, &name, kind).await?;
            done(kubectl::pause(&client, &cluster).await?)
        }
        PluginCommand::Resume {
            name,
            connection,
            kind,
        } => {
            let (client, cluster) = cluster_named(&connection, &name, kind).await?;
            done(kubectl::resume(&client, &cluster).await?)
        }
    }
}

/// A client, and the cluster `name` in the connection's namespace.
async fn cluster_named(
    connection: &Connection,
    name: &str,
    kind: Option<KindArg>,
) -> Result<(kube::Client, doris_operator::cluster::Cluster), String> {
    let (client, namespace) = kubectl::connect(connection).await?;
    let cluster = kubectl::find_cluster(&client, &namespace, name, kind).await?;
    Ok((client, cluster))
}

/// A file's text, or standard input's for `-`.
fn read_file(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Render {
            file,
            conventions,
            output,
            plan,
            diff,
            api_resources,
            pod_security,
        } => {
            doris_operator::plan::serve_kinds(api_resources);
            let format = match output {
                Output::Yaml => Format::Yaml,
                Output::Json => Format::Json,
            };
            let text = read_file(&file)?;
            let mut input = render::read_input(&file.display().to_string(), &text)?;
            for warning in &input.warnings {
                eprintln!("warning: {warning}");
            }
            if let Some(level) = pod_security {
                input.pod_security = level;
            }
            let bundle = render::load_bundle(conventions.as_deref()).map_err(errors)?;
            if let Some(old) = diff {
                let old = if old.as_os_str() == "embedded" {
                    render::load_bundle(None)
                } else {
                    render::load_bundle(Some(&old))
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
                            std::sync::Arc::new(move |_| Some(addr.clone()))
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
        Command::Crd => {
            print!("{}", doris_operator::crd::crd_yaml());
            print!("{}", doris_operator::crd::disaggregated::crd_yaml());
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Check { dir, api_resources },
        } => {
            doris_operator::plan::serve_kinds(api_resources);
            let bundle = render::load_bundle(Some(&dir)).map_err(errors)?;
            let checked = doris_operator::samples::canary(&bundle)?;
            println!(
                "conventions {} (revision {}): compiled, {checked} sample clusters rendered \
                 with their full restart, membership rules and maintenance windows \
                 (every policy and template ran)",
                dir.display(),
                bundle.revision()
            );
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
            let bundle = render::load_bundle(conventions.as_deref()).map_err(errors)?;
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
