//! `spotdrill watch RUN_DIR`: the live dashboard for a run started elsewhere.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::{ExitCode, Failure};
use crate::live::{Dashboard, Ending, Follower};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory to follow.
    pub dir: PathBuf,
    /// The live page (`--web ADDR`).
    #[command(flatten)]
    pub web: super::web::WebArgs,
}

/// Follow the run until it finishes; the exit code is the run's own (from `run_finished`).
/// Without a terminal on stdout, the timeline is printed as plain lines instead.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_dir(&args)?;
    let web = args.web.start(&args.dir)?;
    let result = follow(&args);
    if let Some(web) = web {
        web.finish();
    }
    result
}

/// The dashboard, or the plain timeline without a terminal, until the run finishes.
fn follow(args: &Args) -> anyhow::Result<ExitCode> {
    if !crate::live::stdout_is_terminal() {
        return plain(args);
    }
    match Dashboard::new(&args.dir, None).run(None)? {
        Ending::Finished(code) => Ok(code),
        Ending::Left | Ending::RunnerDone => {
            crate::output::err(&format!(
                "stopped watching {} before the run finished\n",
                args.dir.display()
            ));
            Ok(ExitCode::Aborted)
        }
    }
}

/// A run directory, or bad input naming what it is instead.
fn check_dir(args: &Args) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        return Err(Failure::bad_input(format!(
            "{} is not a run directory (it does not exist)",
            args.dir.display()
        ))
        .into());
    }
    if !args.dir.join(crate::journal::FILE).exists() {
        // A directory of runs (`reports/`): say which ones it holds instead of waiting forever.
        let mut runs: Vec<String> = std::fs::read_dir(&args.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().join(crate::journal::FILE).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !runs.is_empty() {
            runs.sort();
            let newest: Vec<String> = runs.iter().rev().take(3).cloned().collect();
            return Err(Failure::bad_input(format!(
                "{} holds runs, it is not one: name one of them (newest: {})",
                args.dir.display(),
                newest.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// The timeline as lines on stdout until `run_finished`; returns its exit code.
fn plain(args: &Args) -> anyhow::Result<ExitCode> {
    let mut follower = Follower::new(&args.dir);
    let mut printed: HashSet<(u64, String)> = HashSet::new();
    loop {
        follower.poll()?;
        let state = &follower.state;
        let mut text = String::new();
        for e in &state.events {
            if printed.insert((e.at.to_bits(), e.text.clone())) {
                let when = match state.injection_before(e.at) {
                    Some(i) => format!("+{:.1}s", e.at - i),
                    None => std::time::UNIX_EPOCH
                        .checked_add(Duration::from_secs_f64(e.at.max(0.0)))
                        .map(|t| {
                            let s = humantime::format_rfc3339_seconds(t).to_string();
                            s.get(11..19).unwrap_or(&s).to_owned()
                        })
                        .unwrap_or_default(),
                };
                text.push_str(&format!("{when:>9} {}\n", e.text));
            }
        }
        crate::output::out(&text);
        if let Some(f) = state.finished {
            return Ok(f.exit_code);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
