//! `spotdrill lab up|kill`: the embedded lab on its own; `lab node` is a lab node process.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};
use crate::kafka::KafkaSettings;
use crate::lab::node::{self, NodeSpec};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start a lab (from a plan's `lab:` section) and print its broker and HTTP endpoints.
    Up {
        /// Plan whose `lab:` section describes the lab.
        plan: Option<PathBuf>,
    },
    /// Kill one lab node.
    Kill {
        /// The node id.
        node: String,
    },
    /// A lab node process (started by the lab, not by hand).
    #[command(hide = true)]
    Node {
        /// Bootstrap brokers.
        #[arg(long)]
        brokers: String,
        /// The node's workers, as JSON.
        #[arg(long)]
        spec: String,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Up { .. } => {
            Err(Failure::NotImplemented("the embedded lab (`spotdrill lab up`)").into())
        }
        Command::Kill { .. } => {
            Err(Failure::NotImplemented("killing lab nodes (`spotdrill lab kill`)").into())
        }
        Command::Node { brokers, spec } => {
            let spec: NodeSpec = serde_json::from_str(&spec)
                .map_err(|e| Failure::BadInput(format!("invalid lab node spec: {e}")))?;
            node::serve(KafkaSettings::new(brokers), &spec)?;
            Ok(ExitCode::Success)
        }
    }
}
