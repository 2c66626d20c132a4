//! `spotdrill diff OLD NEW`: what changed between two runs.

use std::path::PathBuf;

use crate::exit::ExitCode;
use crate::report::{self, diff};

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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let old = report::load(&args.old)?;
    let new = report::load(&args.new)?;
    let d = diff::compare(&old, &new);
    if args.json {
        crate::output::out(&format!("{}\n", serde_json::to_string_pretty(&d)?));
    } else {
        let mut text = format!("{} → {}\n", args.old.display(), args.new.display());
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
