//! `spotdrill report DIR`: rebuild reports from a run's journal and samples.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    pub dir: PathBuf,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Failure::NotImplemented("rebuilding reports (`spotdrill report`)").into())
}
