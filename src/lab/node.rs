//! Lab nodes: real child processes (`spotdrill lab node`) hosting workers. Killing a node is
//! killing its process, so the lab loses work the way a spot termination does.
//!
//! The node's stdin is its control channel: one JSON [`Command`] per line starts or stops a worker
//! (the scheduler re-placing work onto a surviving node). A node ends on SIGTERM or SIGINT (the
//! spot notice: its workers commit and stop), on SIGKILL (nothing is committed), or when its
//! parent goes away: the parent holds the node's stdin, and a closed stdin means the parent died,
//! so no node outlives the lab.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::worker::{self, Consumption, WorkerSpec, WorkerStats};
use crate::kafka::KafkaSettings;

/// What a node hosts at start, as passed to `spotdrill lab node --spec JSON`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: String,
    /// Workers by name.
    pub workers: Vec<(String, WorkerWire)>,
}

/// A control line on a node's stdin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Start a worker (no effect if one of that name runs).
    Start { worker: String, spec: WorkerWire },
    /// Stop a worker: it commits what it processed, then ends.
    Stop { worker: String },
}

/// A worker on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerWire {
    pub group: String,
    pub topics: Vec<String>,
    /// Storm: the partitions this worker owns; absent for a Mesos task (consumer group).
    pub partitions: Option<Vec<i32>>,
    pub cost_per_message_us: u64,
    pub commit_interval_ms: u64,
    /// The workload's lab fault: a re-placed worker stalls.
    #[serde(default)]
    pub stall_after_restart: bool,
    /// This placement stalls (set by the scheduler when it re-places such a worker).
    #[serde(default)]
    pub stalled: bool,
}

impl From<&WorkerWire> for WorkerSpec {
    fn from(w: &WorkerWire) -> WorkerSpec {
        WorkerSpec {
            group: w.group.clone(),
            topics: w.topics.clone(),
            consumption: match &w.partitions {
                Some(p) => Consumption::Manual {
                    partitions: p.clone(),
                },
                None => Consumption::Group,
            },
            cost_per_message: Duration::from_micros(w.cost_per_message_us),
            commit_interval: Duration::from_millis(w.commit_interval_ms),
            stalled: w.stalled,
        }
    }
}

/// The line a node prints once its workers run.
pub const READY: &str = "READY";
/// The line a node prints when one of its workers processed its first record: `CONSUMING name`.
pub const CONSUMING: &str = "CONSUMING";

/// In the node process: run the workers until a signal or the parent's exit, taking commands
/// from stdin.
pub fn serve(settings: KafkaSettings, spec: &NodeSpec) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<Command>();
    {
        // The parent holds our stdin: end of file means it is gone.
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                match serde_json::from_str::<Command>(&line) {
                    Ok(c) => {
                        let _ = tx.send(c);
                    }
                    Err(e) => tracing::warn!(error = %e, line, "unknown lab node command"),
                }
            }
            cancel.cancel();
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut workers = Workers {
        settings,
        running: HashMap::new(),
        cancel: cancel.clone(),
    };
    for (name, w) in &spec.workers {
        workers.start(name, w);
    }
    crate::output::out(&format!("{READY} {}\n", spec.id));
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                () = cancel.cancelled() => break,
                Some(c) = commands.recv() => match c {
                    Command::Start { worker, spec } => workers.start(&worker, &spec),
                    Command::Stop { worker } => workers.stop(&worker),
                },
            }
        }
        anyhow::Ok(())
    })?;
    cancel.cancel();
    for (_, (_, handle)) in workers.running.drain() {
        let _ = handle.join();
    }
    Ok(())
}

/// The workers running in this node, each with its own stop token.
struct Workers {
    settings: KafkaSettings,
    running: HashMap<String, (CancellationToken, std::thread::JoinHandle<()>)>,
    cancel: CancellationToken,
}

impl Workers {
    fn start(&mut self, name: &str, wire: &WorkerWire) {
        if self.running.contains_key(name) {
            return;
        }
        let stop = self.cancel.child_token();
        let (settings, spec, token) = (self.settings.clone(), WorkerSpec::from(wire), stop.clone());
        let stats = Arc::new(WorkerStats::default());
        {
            // Report the first record processed (the lab's start-to-consuming figure).
            let (stats, stop, name) = (stats.clone(), stop.clone(), name.to_owned());
            std::thread::spawn(move || {
                while !stop.is_cancelled() {
                    if stats.processed.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                        crate::output::out(&format!("{CONSUMING} {name}\n"));
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        let handle = std::thread::spawn(move || {
            if let Err(e) = worker::run(&settings, &spec, &stats, &token) {
                tracing::error!(error = %e, group = spec.group, "lab worker stopped");
            }
        });
        self.running.insert(name.to_owned(), (stop, handle));
    }

    fn stop(&mut self, name: &str) {
        if let Some((stop, handle)) = self.running.remove(name) {
            stop.cancel();
            let _ = handle.join();
        }
    }
}

/// In the lab: one running node process.
pub struct NodeProcess {
    pub id: String,
    child: Child,
    /// When the process was spawned.
    pub spawned: Instant,
    /// Workers that reported their first record, and when, not yet taken.
    consuming: Arc<std::sync::Mutex<Vec<(String, Instant)>>>,
}

/// Spawn `exe ARGS --spec JSON` (a lab process: node or broker) with stdin and stdout piped;
/// its stdout is returned apart. `what` names it in the error.
pub(super) fn spawn_lab_process(
    exe: &Path,
    args: &[&str],
    spec: &impl Serialize,
    what: &str,
) -> anyhow::Result<(Child, ChildStdout)> {
    let mut child = std::process::Command::new(exe)
        .args(args)
        .arg("--spec")
        .arg(serde_json::to_string(spec)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its own process group: a Ctrl-C on the terminal reaches spotdrill, which decides
        // what happens to its lab processes, not the processes themselves.
        .process_group(0)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("{what} has no stdout"))?;
    Ok((child, stdout))
}

impl NodeProcess {
    /// Start `exe lab node` and wait until its workers run.
    pub fn start(
        exe: &Path,
        settings: &KafkaSettings,
        spec: &NodeSpec,
        ready_within: Duration,
    ) -> anyhow::Result<NodeProcess> {
        let spawned = Instant::now();
        let (child, stdout) = spawn_lab_process(
            exe,
            &["lab", "node", "--brokers", &settings.brokers],
            spec,
            &format!("lab node {}", spec.id),
        )?;
        let (tx, rx) = std::sync::mpsc::channel();
        let consuming = Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let consuming = consuming.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.starts_with(READY) {
                        let _ = tx.send(());
                    } else if let Some(worker) = line.strip_prefix(CONSUMING) {
                        let at = Instant::now();
                        consuming
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((worker.trim().to_owned(), at));
                    }
                }
            });
        }
        let mut node = NodeProcess {
            id: spec.id.clone(),
            child,
            spawned,
            consuming,
        };
        if rx.recv_timeout(ready_within).is_err() {
            node.kill();
            anyhow::bail!(
                "lab node {} did not start within {}",
                spec.id,
                humantime::format_duration(ready_within)
            );
        }
        Ok(node)
    }

    /// Workers that processed their first record since the last call, and when.
    pub fn take_consuming(&self) -> Vec<(String, Instant)> {
        std::mem::take(&mut *self.consuming.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a control command (start or stop a worker).
    pub fn command(&mut self, command: &Command) -> anyhow::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("lab node {} has no control channel", self.id))?;
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        stdin.write_all(line.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Close the node's stdin, as the parent's death would: the node stops by itself.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Wait up to `within` for the node to end by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the node dies at once, committing nothing.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// The spot notice: SIGTERM, then SIGKILL if the node is still there after `notice`.
    pub fn terminate(&mut self, notice: Duration) -> Option<ExitStatus> {
        if notice.is_zero() {
            return self.kill();
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        match self.wait_exit(notice) {
            Some(status) => Some(status),
            None => self.kill(),
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        }
    }
}
