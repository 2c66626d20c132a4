//! `spotdrill watch RUN_DIR`: the live dashboard for a run started elsewhere.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory to follow.
    pub dir: PathBuf,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Failure::NotImplemented("the live dashboard (`spotdrill watch`)").into())
}
