//! `spotdrill diff OLD NEW`: what changed between two runs.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The earlier run directory.
    pub old: PathBuf,
    /// The later run directory.
    pub new: PathBuf,
    /// Exit 1 when a target's tolerance dropped.
    #[arg(long)]
    pub fail_on_drop: bool,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Failure::NotImplemented("comparing runs (`spotdrill diff`)").into())
}
