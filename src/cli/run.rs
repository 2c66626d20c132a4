//! `spotdrill run PLAN`: the game day.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Directory for the report, journal and samples.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Resume a crashed run from its directory without terminating anything twice.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Show the live dashboard while running.
    #[arg(long)]
    pub live: bool,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Failure::NotImplemented("the game-day runner (`spotdrill run`)").into())
}
