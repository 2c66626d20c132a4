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
    /// Resume an interrupted run from its directory without terminating anything twice. A run
    /// that was stopped (Ctrl-C, a guard, a failed termination, the broker lost) stays stopped:
    /// its cut steps are judged and its report finished, nothing more is terminated.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// With --resume: escalate past the earlier stop (the ladder goes on where it stopped).
    #[arg(long = "continue", requires = "resume")]
    pub continue_past_stop: bool,
    /// Show the live dashboard while running (plain progress lines when stdout is not a terminal).
    #[arg(long)]
    pub live: bool,
    /// With --live: pause before each step until Enter is pressed on the dashboard.
    #[arg(long, requires = "live")]
    pub step_confirm: bool,
    /// Compare with an earlier run (its directory or report.json) when done.
    #[arg(long, value_name = "PREVIOUS")]
    pub compare: Option<PathBuf>,
    /// With --compare: a tolerance lower than the earlier run's fails the run (exit 1).
    #[arg(long, requires = "compare")]
    pub fail_on_drop: bool,
    /// Prometheus: --metrics, --metrics-linger, --pushgateway (see cli/metrics.rs).
    #[command(flatten)]
    pub prometheus: super::metrics::RunMetricsArgs,
    /// The live page (`--web ADDR`).
    #[command(flatten)]
    pub web: super::web::WebArgs,
}

pub fn run(args: Args, aws: &super::AwsArgs) -> anyhow::Result<ExitCode> {
    let (plan, text) = super::load_plan(&args.plan)?;
    let push = args.prometheus.push_target(&plan.name)?;
    let live = args.live && crate::live::stdout_is_terminal();
    if args.live && !live {
        if args.step_confirm {
            return Err(Failure::bad_input(
                "--step-confirm needs the dashboard, and stdout is not a terminal".into(),
            )
            .into());
        }
        crate::output::err("--live: stdout is not a terminal; showing plain progress lines\n");
    }
    // A run that cannot be resumed is refused before anything is asked or started.
    let resuming = match &args.resume {
        Some(dir) => Some(resuming(dir, &args, &text)?),
        None => None,
    };
    if !args.yes {
        confirm(&plan, &aws.settings(), resuming.as_deref())?;
    }
    // The earlier run is read before anything is terminated: a bad path is bad input.
    let previous = args
        .compare
        .as_deref()
        .map(crate::report::load)
        .transpose()?;
    let (dir, resume) = match (&args.resume, &args.out) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Some(out)) => (out.clone(), false),
        (None, None) => (run::default_dir(&plan), false),
    };
    let opts = run::Options {
        plan_path: args.plan.clone(),
        dir,
        resume,
        continued: args.continue_past_stop,
        exe: std::env::current_exe().context("cannot find the spotdrill executable")?,
        lock_dir: run::lock::lock_dir(),
        aws: aws.settings(),
        control: live.then(|| {
            let control = crate::run::Control::new(args.step_confirm);
            control.on_hard_exit(crate::live::restore);
            control
        }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = args.prometheus.serve(&opts.dir)?;
    let web = args.web.start(&opts.dir)?;
    let result = match &opts.control {
        Some(control) => with_dashboard(&opts.dir, control, || {
            runtime.block_on(run::run(&plan, &text, &opts))
        }),
        None => runtime.block_on(run::run(&plan, &text, &opts)),
    };
    if let Some(web) = web {
        web.finish();
    }
    let code = args
        .prometheus
        .finish(server, push.as_ref(), &opts.dir, result?);
    let Some(previous) = previous else {
        return Ok(code);
    };
    let Ok(now) = crate::report::load(&opts.dir) else {
        return Ok(code);
    };
    let d = crate::report::diff::compare(&previous, &now);
    let mut text = format!(
        "compared with {}:\n",
        args.compare.unwrap_or_default().display()
    );
    if d.is_empty() {
        text.push_str("  no change in tolerance, verdicts, spikes or recovery\n");
    }
    for line in &d.lines {
        text.push_str(&format!("  {line}\n"));
    }
    crate::output::out(&text);
    Ok(
        if args.fail_on_drop && d.tolerance_dropped && code == ExitCode::Success {
            ExitCode::Failed
        } else {
            code
        },
    )
}

/// Run `work` (the runner) while the dashboard follows its directory on another thread. The
/// dashboard gives the terminal back before this returns, so the run's summary and exit code are
/// never hidden; a dashboard that fails or panics leaves the run going.
fn with_dashboard(
    dir: &std::path::Path,
    control: &crate::run::Control,
    work: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = Arc::new(AtomicBool::new(false));
    let dashboard = crate::live::Dashboard::new(dir, Some(control.clone()));
    let thread = std::thread::Builder::new()
        .name("dashboard".into())
        .spawn({
            let (done, control) = (done.clone(), control.clone());
            move || {
                let ended = dashboard.run(Some(&done));
                no_one_to_confirm(&control, &done);
                ended
            }
        })
        .context("cannot start the dashboard")?;
    let result = work();
    done.store(true, Ordering::SeqCst);
    // A dashboard caught in the terminal library when the terminal hung up never returns: the
    // run does not wait for it (its thread ends with the process).
    while !thread.is_finished() && !crate::live::terminal_gone() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    match thread.is_finished().then(|| thread.join()) {
        Some(Ok(Ok(_))) => {}
        Some(Ok(Err(e))) => tracing::warn!(error = %e, "the dashboard failed"),
        Some(Err(_)) => tracing::warn!("the dashboard panicked"),
        None => tracing::warn!("the terminal hung up; the dashboard is left behind"),
    }
    crate::live::restore();
    result
}

/// The dashboard ended while the run goes on (it failed: the terminal closed): with
/// --step-confirm no one is left to press Enter, and the next step would wait for ever; stop
/// escalating instead, as the abort key does, so the run finishes its step and its report.
fn no_one_to_confirm(control: &crate::run::Control, runner_done: &std::sync::atomic::AtomicBool) {
    let over = runner_done.load(std::sync::atomic::Ordering::SeqCst);
    if !over && control.step_confirm() && control.aborts() == 0 {
        tracing::warn!(
            "the dashboard ended before the run: no one to confirm steps, stopping escalation"
        );
        control.abandon();
    }
}

/// What resuming the run in `dir` will do, for the confirmation; an error when it cannot be
/// resumed (a finished run, another plan).
fn resuming(dir: &std::path::Path, args: &Args, text: &str) -> anyhow::Result<String> {
    let opts = run::Options {
        plan_path: args.plan.clone(),
        dir: dir.to_owned(),
        resume: true,
        continued: args.continue_past_stop,
        exe: PathBuf::new(),
        lock_dir: PathBuf::new(),
        aws: crate::nodes::aws::AwsSettings::default(),
        control: None,
    };
    let previous = run::previous_run(text, &opts)?;
    let shown = dir.display();
    let stop = crate::journal::RunView::from_entries(&previous)
        .effective_stop()
        .map(crate::report::stop_text);
    Ok(match (stop, args.continue_past_stop) {
        (Some(why), true) => format!(
            "Resume {shown} with --continue: it stopped ({why}), and escalation goes on past \
             that stop.\n"
        ),
        (Some(why), false) => format!(
            "Resume {shown}: it stopped ({why}); it stays stopped, nothing more is terminated \
             (--continue would escalate past the stop).\n"
        ),
        (None, _) => format!("Resume {shown}: steps already injected are not repeated.\n"),
    })
}

/// Ask on the terminal before anything is terminated (without `--yes`), saying where: each AWS
/// target's account, region and endpoint; `resuming`: what a resume will do.
fn confirm(
    plan: &crate::plan::Plan,
    aws: &crate::nodes::aws::AwsSettings,
    resuming: Option<&str>,
) -> anyhow::Result<()> {
    let steps = plan.step_count();
    let most = plan.most_terminations();
    if !std::io::stdin().is_terminal() {
        return Err(Failure::bad_input(
            "refusing to run without confirmation: no terminal to ask on; pass --yes".into(),
        )
        .into());
    }
    let places = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run::place::of_plan(plan, aws));
    crate::output::err(&format!(
        "{}Run `{}`: {} target(s), {steps} step(s), up to {most} node terminations{}.\n{}Type yes to go on: ",
        resuming.unwrap_or_default(),
        plan.name,
        plan.targets.len(),
        if plan.lab.is_some()
            && plan
                .targets
                .values()
                .all(|t| t.nodes.provider() == crate::plan::Provider::Lab)
        {
            " (lab nodes only)"
        } else {
            " (real instances: AWS node providers)"
        },
        match places.is_empty() {
            true => String::new(),
            false => format!("Acting in:\n{}", run::place::lines(&places)),
        }
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        return Err(Failure::bad_input("not confirmed; nothing was terminated".into()).into());
    }
    Ok(())
}
