//! `spotdrill lab up|kill`: the embedded lab on its own; `lab node` is a lab node process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::exit::{ExitCode, Failure};
use crate::kafka::KafkaSettings;
use crate::lab::node::{self, NodeSpec};
use crate::lab::{stats, up};
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a lab from a plan's `lab:` section until Ctrl-C; prints the broker and node ids.
    Up {
        /// Plan whose `lab:` section describes the lab.
        #[arg(default_value = "experiments/lab-game-day.yaml")]
        plan: PathBuf,
        /// Directory for the lab's state (lab.json) and ground truth (lab-truth.jsonl).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print the lab's CPU and memory use and its start-up times this often (e.g. 10s).
        #[arg(long, value_name = "INTERVAL", value_parser = crate::plan::parse_duration)]
        stats: Option<Duration>,
    },
    /// Kill one node of a running lab (SIGKILL, or SIGTERM first with --notice).
    Kill {
        /// The node id, as `lab up` printed it.
        node: String,
        /// Time between SIGTERM (the spot notice) and SIGKILL; 0s kills at once.
        #[arg(long, default_value = "0s", value_parser = crate::plan::parse_duration)]
        notice: Duration,
        /// The running lab's directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The lab's broker and producers (started by the lab, not by hand).
    #[command(hide = true)]
    Broker {
        /// The topics, as JSON.
        #[arg(long)]
        spec: String,
    },
    /// A lab node process (started by the lab, not by hand).
    #[command(hide = true)]
    Node {
        /// Bootstrap brokers.
        #[arg(long)]
        brokers: String,
        /// The node's workers, as JSON.
        #[arg(long)]
        spec: String,
    },
}

/// `--dir`, or the user's own private default (created 0700, checked: [`up::private_dir`]).
fn lab_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(dir) => Ok(dir),
        None => {
            let dir = up::default_dir();
            up::private_dir(&dir)?;
            Ok(dir)
        }
    }
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Up { plan, dir, stats } => lab_up(&plan, &lab_dir(dir)?, stats),
        Command::Kill { node, notice, dir } => {
            up::kill(&lab_dir(dir)?, &node, notice)?;
            output::out(&format!("killed lab node {node}\n"));
            Ok(ExitCode::Success)
        }
        Command::Broker { spec } => {
            let topics: Vec<crate::lab::broker::TopicWire> = serde_json::from_str(&spec)
                .map_err(|e| Failure::bad_input("invalid lab broker spec".into()).because(e))?;
            crate::lab::broker::serve(&topics)?;
            Ok(ExitCode::Success)
        }
        Command::Node { brokers, spec } => {
            let spec: NodeSpec = serde_json::from_str(&spec)
                .map_err(|e| Failure::bad_input("invalid lab node spec".into()).because(e))?;
            node::serve(KafkaSettings::new(brokers), &spec)?;
            Ok(ExitCode::Success)
        }
    }
}

/// This process and every node process of the lab.
fn all_pids(running: &up::RunningLab) -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    pids.extend(running.broker_pid());
    pids.extend(running.node_pids());
    pids
}

/// One `--stats` line: CPU and memory since the last one, and how fast work starts.
fn stats_line(running: &up::RunningLab, last: &stats::Reading, now: &stats::Reading) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = stats::cpu_share(last, now);
    let me = std::process::id();
    let broker = running.broker_pid();
    // CPU share of the processes `keep` selects.
    let part = |keep: &dyn Fn(u32) -> bool| {
        let pick = |r: &stats::Reading| stats::Reading {
            at: r.at,
            cpu_s: r.cpu_s.iter().copied().filter(|(p, _)| keep(*p)).collect(),
            rss_bytes: 0,
        };
        stats::cpu_share(&pick(last), &pick(now)) * 100.0
    };
    let nodes = now
        .cpu_s
        .iter()
        .filter(|(p, _)| *p != me && Some(*p) != broker)
        .count();
    let mut text = format!(
        "stats: cpu {:.1}% of the machine ({:.1}% of one core: lab {:.1}%, broker and producers {:.1}%, {nodes} nodes {:.1}%), rss {:.0} MB\n",
        share / cores * 100.0,
        share * 100.0,
        part(&|p| p == me),
        part(&|p| Some(p) == broker),
        part(&|p| p != me && Some(p) != broker),
        now.rss_bytes as f64 / 1e6,
    );
    let max = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).fold(f64::NAN, f64::max);
    for (name, t) in running.startup_times() {
        text.push_str(&format!(
            "  {name}: node start to consuming max {:.2} s ({} nodes), worker placed to consuming max {:.2} s ({} placements)\n",
            max(&t.node_to_consuming),
            t.node_to_consuming.len(),
            max(&t.placed_to_consuming),
            t.placed_to_consuming.len(),
        ));
    }
    text
}

fn lab_up(
    path: &std::path::Path,
    dir: &std::path::Path,
    stats: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let (plan, _) = super::load_plan(path)?;
    let lab = plan
        .lab
        .ok_or_else(|| Failure::bad_input(format!("{name} has no `lab:` section")))?;
    let exe = std::env::current_exe().context("cannot find the spotdrill executable")?;
    let running = up::RunningLab::start(&lab, &exe, dir)?;
    let state = running.state();
    let mut text = format!("lab up: broker {}\n", state.brokers);
    for n in &state.nodes {
        text.push_str(&format!("  node {} ({}), pid {}\n", n.id, n.cluster, n.pid));
    }
    for e in &state.endpoints {
        text.push_str(&format!("  {} {}: {}\n", e.cluster, e.api, e.url));
    }
    text.push_str(&format!(
        "  state {}, ground truth {}\n  Ctrl-C to stop; `spotdrill lab kill NODE` from another terminal\n",
        up::state_path(dir).display(),
        running.truth_path().display()
    ));
    output::out(&text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut every = tokio::time::interval(stats.unwrap_or(Duration::from_secs(3600)));
        every.tick().await;
        let mut last = stats::read(&all_pids(&running));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = every.tick(), if stats.is_some() => {
                    let now = stats::read(&all_pids(&running));
                    output::out(&stats_line(&running, &last, &now));
                    last = now;
                }
            }
        }
        anyhow::Ok(())
    })?;
    running.stop()?;
    Ok(ExitCode::Success)
}
