//! `spotdrill lab up|kill`: the embedded lab on its own.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

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
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Up { .. } => {
            Err(Failure::NotImplemented("the embedded lab (`spotdrill lab up`)").into())
        }
        Command::Kill { .. } => {
            Err(Failure::NotImplemented("killing lab nodes (`spotdrill lab kill`)").into())
        }
    }
}
