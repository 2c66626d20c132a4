//! `spotdrill diff OLD NEW`: what changed between two runs.

use std::path::{Path, PathBuf};

use crate::exit::{ExitCode, Failure};
use crate::report::{Report, diff};
use crate::run::journal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The earlier run directory (or its report.json).
    pub old: PathBuf,
    /// The later run directory (or its report.json).
    pub new: PathBuf,
    /// Exit 1 when a target's tolerance dropped.
    #[arg(long)]
    pub fail_on_drop: bool,
    /// Print the comparison as one JSON object (`lines`, `tolerance_dropped`, `changes`).
    #[arg(long)]
    pub json: bool,
}

/// A run's report: its `report.json`, or rebuilt from its journal when there is none.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    if path.is_file() {
        return Report::read_json(path).map_err(|e| Failure::BadInput(format!("{e:#}")).into());
    }
    let json = path.join("report.json");
    if json.is_file() {
        return Report::read_json(&json).map_err(|e| Failure::BadInput(format!("{e:#}")).into());
    }
    if path.join(journal::FILE).is_file() {
        let entries = journal::read(path).map_err(|e| Failure::BadInput(e.to_string()))?;
        return Ok(Report::from_journal(&entries));
    }
    Err(Failure::BadInput(format!(
        "{} is not a run directory: it has neither report.json nor {}",
        path.display(),
        journal::FILE
    ))
    .into())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let d = diff::compare(&old, &new);
    if args.json {
        crate::output::out(&format!("{}\n", serde_json::to_string_pretty(&d)?));
    } else {
        let mut text = format!(
            "{} → {}\n",
            args.old.display(),
            args.new.display()
        );
        if d.is_empty() {
            text.push_str("  no change in tolerance, verdicts, spikes or recovery\n");
        }
        for line in &d.lines {
            text.push_str(&format!("  {line}\n"));
        }
        crate::output::out(&text);
    }
    Ok(if args.fail_on_drop && d.tolerance_dropped {
        ExitCode::Failed
    } else {
        ExitCode::Success
    })
}
