//! `spotdrill report DIR`: rebuild reports from a run's journal and samples.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};
use crate::report::{self, Report};
use crate::run::journal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (holds journal.jsonl, and samples.csv for the charts).
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    if !dir.join(journal::FILE).is_file() {
        return Err(Failure::BadInput(format!(
            "{} has no {}: not a run directory (spotdrill run --out DIR writes one)",
            dir.display(),
            journal::FILE
        ))
        .into());
    }
    let entries = journal::read(dir).map_err(|e| Failure::BadInput(e.to_string()))?;
    if entries.is_empty() {
        return Err(Failure::BadInput(format!(
            "{} is empty: the run never started",
            dir.join(journal::FILE).display()
        ))
        .into());
    }
    let rebuilt = Report::from_journal(&entries);
    report::write_all(dir, &rebuilt)?;
    let mut text = String::new();
    for name in report::FILES {
        text.push_str(&format!("{}\n", dir.join(name).display()));
    }
    crate::output::out(&text);
    Ok(ExitCode::Success)
}
