//! `spotdrill unlock PLAN`: clear the stale target locks a crashed run left behind.
//!
//! A run holds one lock per target; a run killed outright (SIGKILL, a power cut) cannot remove
//! them, and every later run of those targets refuses with "stale lock". This command removes a
//! lock only when its holder is provably gone (a pid on this host that no longer runs), or, with
//! `--force`, when it was taken on another host. A lock held by a live run is never removed.

use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};
use crate::run::lock::{self, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan whose targets' locks to clear.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// Only this target (repeatable); all of the plan's targets by default.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Also remove a lock taken on another host (this host cannot tell whether that run is
    /// still going: check first).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, aws: &super::AwsArgs) -> anyhow::Result<ExitCode> {
    let (plan, _) = super::load_plan(&args.plan)?;
    for t in &args.targets {
        if !plan.targets.contains_key(t.as_str()) {
            let known: Vec<&str> = plan.targets.keys().map(String::as_str).collect();
            return Err(Failure::bad_input(format!(
                "the plan has no target `{t}` (its targets: {})",
                known.join(", ")
            ))
            .into());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let settings = aws.settings();
    let store = runtime.block_on(Store::of(&plan, &settings, lock::lock_dir()))?;
    let keys = runtime.block_on(crate::run::lock_keys(&plan, &settings));
    let mut text = String::new();
    let mut refused = Vec::new();
    for (name, key) in &keys {
        if !args.targets.is_empty() && !args.targets.contains(name) {
            continue;
        }
        match runtime.block_on(store.clear(name, key, args.force)) {
            Ok(removed) if removed.is_empty() => text.push_str(&format!("{name}: not locked\n")),
            Ok(removed) => text.push_str(&removed_text(name, &removed, &args.plan)),
            Err(e) => refused.push(e.to_string()),
        }
    }
    crate::output::out(&text);
    if refused.is_empty() {
        Ok(ExitCode::Success)
    } else {
        Err(Failure::environment(format!(
            "{}; a lock held by a live run is never removed: stop that run (Ctrl-C) instead",
            refused.join("; ")
        ))
        .into())
    }
}

/// What `unlock` says of the stale locks it removed.
fn removed_text(name: &str, removed: &[lock::Holder], plan: &std::path::Path) -> String {
    let mut text = String::new();
    for h in removed {
        text.push_str(&format!(
            "{name}: removed the stale lock of pid {} on {} (run directory {}, since {}); \
             resume that run with `spotdrill run {} --resume {}`\n",
            h.pid,
            h.host,
            h.run_dir,
            h.since,
            plan.display(),
            h.run_dir
        ));
    }
    text
}
