//! `spotdrill man [--dir DIR]`: the man page, generated from the same clap definitions as the
//! parser. Without `--dir` it prints spotdrill.1; with it, it writes spotdrill.1 and one page
//! per subcommand (spotdrill-run.1, spotdrill-lab-up.1, …) into DIR.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::exit::ExitCode;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write spotdrill.1 and a page per subcommand into this directory (created if missing)
    /// instead of printing spotdrill.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.dir {
        Some(dir) => write_pages(&dir)?,
        None => output::out(&page()?),
    }
    Ok(ExitCode::Success)
}

/// The top-level page, spotdrill.1, as roff.
pub fn page() -> anyhow::Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(super::Cli::command()).render(&mut buf)?;
    Ok(String::from_utf8(buf)?)
}

/// Write spotdrill.1 and one page per (sub)subcommand into `dir`, creating it if needed.
fn write_pages(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {shown}"))?;
    clap_mangen::generate_to(super::Cli::command(), dir)
        .with_context(|| format!("while writing man pages into {shown}"))
}
