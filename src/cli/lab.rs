//! `spotdrill lab up|kill`: the embedded lab on its own; `lab node` is a lab node process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::exit::{ExitCode, Failure};
use crate::kafka::KafkaSettings;
use crate::lab::node::{self, NodeSpec};
use crate::lab::up;
use crate::output;
use crate::plan;

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
    },
    /// Kill one node of a running lab (SIGKILL, or SIGTERM first with --notice).
    Kill {
        /// The node id, as `lab up` printed it.
        node: String,
        /// Time between SIGTERM (the spot notice) and SIGKILL; 0s kills at once.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        notice: Duration,
        /// The running lab's directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
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

fn default_dir() -> PathBuf {
    std::env::temp_dir().join("spotdrill-lab")
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Up { plan, dir } => lab_up(&plan, &dir.unwrap_or_else(default_dir)),
        Command::Kill { node, notice, dir } => {
            up::kill(&dir.unwrap_or_else(default_dir), &node, notice)?;
            output::out(&format!("killed lab node {node}\n"));
            Ok(ExitCode::Success)
        }
        Command::Node { brokers, spec } => {
            let spec: NodeSpec = serde_json::from_str(&spec)
                .map_err(|e| Failure::BadInput(format!("invalid lab node spec: {e}")))?;
            node::serve(KafkaSettings::new(brokers), &spec)?;
            Ok(ExitCode::Success)
        }
    }
}

fn lab_up(path: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let text = plan::read(path).map_err(|e| Failure::BadInput(format!("{name}: {e}")))?;
    let loaded = plan::load(&text);
    for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
        output::err(&d.render(&name, &text));
    }
    let plan = loaded
        .plan
        .ok_or_else(|| Failure::BadInput(format!("{name} is not a valid plan")))?;
    let lab = plan
        .lab
        .ok_or_else(|| Failure::BadInput(format!("{name} has no `lab:` section")))?;
    let exe = std::env::current_exe().context("cannot find the spotdrill executable")?;
    let cancel = CancellationToken::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let worker = {
        let (cancel, dir) = (cancel.clone(), dir.to_owned());
        std::thread::spawn(move || {
            let result = up::run(&lab, &exe, &dir, &cancel, |state| {
                let mut text = format!("lab up: broker {}\n", state.brokers);
                for n in &state.nodes {
                    text.push_str(&format!("  node {} ({}), pid {}\n", n.id, n.cluster, n.pid));
                }
                for e in &state.endpoints {
                    text.push_str(&format!("  {} {}: {}\n", e.cluster, e.api, e.url));
                }
                text.push_str(&format!(
                    "  state {}, ground truth {}\n  Ctrl-C to stop; `spotdrill lab kill NODE` from another terminal\n",
                    up::state_path(&dir).display(),
                    dir.join("lab-truth.jsonl").display()
                ));
                output::out(&text);
            });
            let _ = done_tx.send(());
            result
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = done_rx => {}
        }
        anyhow::Ok(())
    })?;
    cancel.cancel();
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the lab thread panicked"))??;
    Ok(ExitCode::Success)
}
