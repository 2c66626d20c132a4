//! `spotdrill report DIR`: rebuild reports from a run's journal and samples.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure, Kind};
use crate::journal;
use crate::report::{self, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (holds journal.jsonl, and samples.csv for the charts).
    pub dir: PathBuf,
    /// A `spotdrill markets PLAN --json` output: the account's spot history sizes the spare
    /// capacity. It is copied into the run directory as markets.json, so later rebuilds use it
    /// too (offline, the same answer each time).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    if !dir.join(journal::FILE).is_file() {
        return Err(Failure::bad_input(format!(
            "{} has no {}: not a run directory (spotdrill run --out DIR writes one)",
            dir.display(),
            journal::FILE
        ))
        .into());
    }
    if let Some(h) = &args.history {
        add_history(dir, h)?;
    }
    let contents = journal::read_contents(dir).map_err(|e| Failure::of(Kind::BadInput, e))?;
    let entries = contents.entries;
    if entries.is_empty() {
        return Err(Failure::bad_input(format!(
            "{} is empty: the run never started",
            dir.join(journal::FILE).display()
        ))
        .into());
    }
    let mut rebuilt = Report::from_journal(&entries);
    if let Some(t) = contents.torn {
        tracing::warn!(
            path = %dir.join(journal::FILE).display(),
            line = t.line,
            bytes = t.bytes,
            "ignoring the journal's last line: a crash cut it short (it was never acted on)"
        );
        // The report says it too, not only stderr.
        rebuilt.notes.push(format!(
            "the journal's last line ({}, {} bytes) was cut short by a crash and is left out: it was never acted on",
            t.line, t.bytes
        ));
    }
    report::write_all(dir, &rebuilt)?;
    let mut text = String::new();
    for name in report::FILES {
        text.push_str(&format!("{}\n", dir.join(name).display()));
    }
    crate::output::out(&text);
    Ok(ExitCode::Success)
}

/// Check the history file and copy it into the run directory.
fn add_history(dir: &std::path::Path, from: &std::path::Path) -> anyhow::Result<()> {
    report::read_history(from).map_err(|e| Failure::of(Kind::BadInput, e))?;
    let to = dir.join(report::HISTORY_FILE);
    if from.canonicalize().ok() != to.canonicalize().ok() {
        std::fs::copy(from, &to).map_err(|e| {
            Failure::environment(format!("cannot copy the history to {}", to.display())).because(e)
        })?;
    }
    Ok(())
}
