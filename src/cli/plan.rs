//! `spotdrill plan PLAN`: preflight; terminates nothing.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print the preflight as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(
        Failure::NotImplemented("preflight (`spotdrill plan`): node discovery and endpoint checks")
            .into(),
    )
}
