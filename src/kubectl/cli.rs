//! The plugin's commands as the command line gives them, and what runs
//! them; `kubectl doris` and `doris-operator kubectl` parse them (main.rs).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Connection, KindArg};
use crate::cluster::Cluster;
use crate::render;

#[derive(clap::Subcommand, Debug)]
pub enum PluginCommand {
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

impl PluginCommand {
    pub fn connection_mut(&mut self) -> &mut Connection {
        match self {
            PluginCommand::Diff { connection, .. }
            | PluginCommand::Status { connection, .. }
            | PluginCommand::Restart { connection, .. }
            | PluginCommand::Pause { connection, .. }
            | PluginCommand::Resume { connection, .. } => connection,
        }
    }

    /// The command with the connection flags given before it (`outer`)
    /// under its own: those given later win.
    pub fn after(mut self, outer: Connection) -> PluginCommand {
        let own = std::mem::take(self.connection_mut());
        *self.connection_mut() = outer.then(own);
        self
    }
}

/// Runs a plugin command. As with `kubectl diff`, a diff exits 1 when
/// something would change and 2 on an error; the other commands exit 1 on
/// an error.
pub fn run(command: PluginCommand) -> ExitCode {
    let is_diff = matches!(command, PluginCommand::Diff { .. });
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run_async(command)));
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(if is_diff { 2 } else { 1 })
        }
    }
}

async fn run_async(command: PluginCommand) -> Result<ExitCode, String> {
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
            let text = render::read_file(&file)?;
            let input = render::read_input(&file.display().to_string(), &text)?;
            for warning in &input.warnings {
                eprintln!("warning: {warning}");
            }
            let (client, namespace) = super::connect(&connection).await?;
            let options = super::diff::Options {
                namespace,
                namespace_explicit: connection.namespace.is_some(),
                operator_namespace,
            };
            let report = super::diff::diff(&client, &input, &options).await?;
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
            let (client, namespace) = super::connect(&connection).await?;
            let observed =
                super::status::observe(&client, &namespace, &name, kind, &operator_namespace)
                    .await?;
            print!(
                "{}",
                super::status::screen(&observed, k8s_openapi::jiff::Timestamp::now())
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
            done(super::restart(&client, &cluster, &parts, &now).await?)
        }
        PluginCommand::Pause {
            name,
            connection,
            kind,
        } => {
            let (client, cluster) = cluster_named(&connection, &name, kind).await?;
            done(super::pause(&client, &cluster).await?)
        }
        PluginCommand::Resume {
            name,
            connection,
            kind,
        } => {
            let (client, cluster) = cluster_named(&connection, &name, kind).await?;
            done(super::resume(&client, &cluster).await?)
        }
    }
}

/// A client, and the cluster `name` in the connection's namespace.
async fn cluster_named(
    connection: &Connection,
    name: &str,
    kind: Option<KindArg>,
) -> Result<(kube::Client, Cluster), String> {
    let (client, namespace) = super::connect(connection).await?;
    let cluster = super::find_cluster(&client, &namespace, name, kind).await?;
    Ok((client, cluster))
}
