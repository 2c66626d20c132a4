//! The game day (`spotdrill run`): preflight → baseline → for each target, for each ladder step:
//! cooldown (lag back in band, capacity back) → guards → select → journal the intent → terminate
//! → observe → judge → … → report. Judging is done by the pure functions of [`crate::analysis`];
//! this module only gathers samples, acts, and writes down what it did.
//!
//! - [`setup`]: what a run holds (locks, lab, providers, probes, sampler, files);
//! - [`runner`]: the runner's loop over samples, and the one place a [`Breach`] stops escalation;
//! - [`baseline`]: the lab's warm-up and the baseline bands;
//! - [`step`]: one ladder step as a state machine (cooldown, guards, choose, confirm, inject,
//!   observe, judge), each phase a small function with a typed outcome;
//! - [`finish`]: the report and the summary.

mod baseline;
pub mod capacity;
mod clock;
mod control;
mod finish;
mod groups;
mod inject;
pub mod lock;
pub mod place;
mod progress;
mod resume;
mod runner;
mod setup;
mod step;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::SystemTime;

pub use clock::Clock;
pub use control::Control;
pub use runner::Breach;
pub use setup::{lock_keys, previous_run};

use crate::exit::ExitCode;
use crate::nodes::aws::AwsSettings;
use crate::plan::Plan;

/// How a run is started.
#[derive(Clone, Debug)]
pub struct Options {
    pub plan_path: PathBuf,
    /// The run directory (created; for `--resume`, the existing one).
    pub dir: PathBuf,
    pub resume: bool,
    /// `--continue` (with `resume`): escalate past the stops of the attempts before.
    pub continued: bool,
    /// The spotdrill executable (lab nodes run it).
    pub exe: PathBuf,
    pub lock_dir: PathBuf,
    /// How the AWS providers reach AWS (`--profile`, `--region`, `--endpoint-url`).
    pub aws: AwsSettings,
    /// The operator's keys (`--live`): confirm each step, stop escalating. With it, progress
    /// lines are not printed (the dashboard owns the screen).
    pub control: Option<Control>,
}

/// Run a plan. Returns the exit code of the verdict (or of the abort).
pub async fn run(plan: &Plan, text: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    tracing::debug!(plan = %plan.name, dir = %opts.dir.display(), resume = opts.resume, "run");
    let previous = setup::previous_run(text, opts)?;
    let (locks, providers) = setup::locks(plan, opts).await?;
    let result = async {
        place::same_as_journal(&previous, &place::of(&providers))?;
        let mut runner = setup::runner(plan, opts, &locks, providers).await?;
        let result = runner.game_day(text, opts, &previous).await;
        runner.shut_down().await?;
        result
    }
    .await;
    lock::release_all(locks).await;
    result
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The default run directory: `reports/<UTC time>-<plan name>`.
pub fn default_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    let slug: String = plan
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    PathBuf::from("reports").join(format!("{stamp}-{slug}"))
}
