//! `spotdrill run PLAN`: the game day.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;

use crate::exit::{ExitCode, Failure};
use crate::run;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Directory for the report, journal and samples (default reports/<time>-<plan name>).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Resume an interrupted run from its directory without terminating anything twice.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Show the live dashboard while running.
    #[arg(long)]
    pub live: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (plan, text) = super::load_plan(&args.plan)?;
    if args.live {
        return Err(Failure::NotImplemented("the live dashboard (`run --live`)").into());
    }
    let steps = plan.step_count();
    let most: u32 = plan
        .targets
        .values()
        .map(|t| t.ladder.iter().sum::<u32>())
        .sum();
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::BadInput(
                "refusing to run without confirmation: no terminal to ask on; pass --yes".into(),
            )
            .into());
        }
        crate::output::err(&format!(
            "Run `{}`: {} target(s), {steps} step(s), up to {most} node terminations{}.\nType yes to go on: ",
            plan.name,
            plan.targets.len(),
            if plan.lab.is_some() {
                " (lab nodes only)"
            } else {
                ""
            }
        ));
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            return Err(Failure::BadInput("not confirmed; nothing was terminated".into()).into());
        }
    }
    let (dir, resume) = match (&args.resume, &args.out) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Some(out)) => (out.clone(), false),
        (None, None) => (run::default_dir(&plan), false),
    };
    let opts = run::Options {
        plan_path: args.plan.clone(),
        dir,
        resume,
        exe: std::env::current_exe().context("cannot find the spotdrill executable")?,
        lock_dir: run::lock::lock_dir(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run::run(&plan, &text, &opts))
}
