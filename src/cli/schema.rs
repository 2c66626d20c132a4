//! `spotdrill schema [--report]`: JSON Schema for editors and tooling.

use crate::exit::ExitCode;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schema of report.json instead of the plan.
    #[arg(long)]
    pub report: bool,
    /// The plan reference as Markdown tables (as in README.md) instead of JSON Schema.
    #[arg(long, conflicts_with = "report")]
    pub markdown: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.report {
        let text = serde_json::to_string_pretty(&crate::report::json_schema())?;
        output::out(&format!("{text}\n"));
        return Ok(ExitCode::Success);
    }
    if args.markdown {
        output::out(&crate::plan::reference::markdown());
        return Ok(ExitCode::Success);
    }
    let text = serde_json::to_string_pretty(&crate::plan::json_schema())?;
    output::out(&format!("{text}\n"));
    Ok(ExitCode::Success)
}
