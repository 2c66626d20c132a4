//! `spotdrill lab up`: a whole lab from a plan's `lab:` section — the broker (librdkafka's mock
//! cluster, in-process, on loopback), its topics, the telemetry producers, and every cluster with
//! its nodes and scheduler — until cancelled. Its state (broker address, node ids and pids) is
//! kept in `DIR/lab.json` so `spotdrill lab kill NODE` can act from another terminal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use std::sync::{Arc, Mutex};

use super::cluster::{Cluster, ClusterSpec, workload_workers};
use super::http::{self, SharedView};
use super::node::WorkerWire;
use super::producer::{self, TopicLoad};
use crate::kafka::KafkaSettings;
use crate::plan::{ClusterKind, Lab};

/// What `lab.json` says about a running lab.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    pub brokers: String,
    pub pid: u32,
    pub nodes: Vec<NodeState>,
    /// The HTTP APIs of each cluster (Storm UI, or Mesos master and Marathon).
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub cluster: String,
    /// `storm_ui`, `mesos_master` or `marathon`, as in a plan's `health:`.
    pub api: String,
    pub url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeState {
    pub id: String,
    pub cluster: String,
    pub pid: u32,
}

/// How often the schedulers run.
const TICK: Duration = Duration::from_millis(100);

/// The state file of a lab directory.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("lab.json")
}

/// Run the lab until `cancel` fires. `on_ready` gets the state once everything runs.
pub fn run(
    lab: &Lab,
    exe: &Path,
    dir: &Path,
    cancel: &CancellationToken,
    on_ready: impl FnOnce(&LabState),
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let broker = MockCluster::new(1)?;
    for t in &lab.topics {
        broker.create_topic(&t.name, t.partitions as i32, 1)?;
    }
    let settings = KafkaSettings::new(broker.bootstrap_servers());
    let producers: Vec<_> = lab
        .topics
        .iter()
        .map(|t| {
            let load = TopicLoad {
                topic: t.name.clone(),
                partitions: t.partitions as i32,
                rate: t.rate,
                message_bytes: t.message_bytes as usize,
            };
            producer::spawn(&settings, load, cancel.clone())
        })
        .collect::<Result<_, _>>()?;
    let truth = dir.join("lab-truth.jsonl");
    let mut clusters = Vec::new();
    for (name, c) in &lab.clusters {
        let mut workers = Vec::new();
        for (wname, w) in &c.workloads {
            let partitions = w
                .topics
                .first()
                .and_then(|t| lab.topics.iter().find(|lt| &lt.name == t))
                .map_or(1, |t| t.partitions as i32);
            let template = WorkerWire {
                group: w.group.clone(),
                topics: w.topics.clone(),
                partitions: None,
                cost_per_message_us: w.cost_per_message.as_micros() as u64,
                commit_interval_ms: w.commit_interval.as_millis() as u64,
            };
            workers.extend(workload_workers(
                wname, c.kind, w.workers, partitions, &template,
            ));
        }
        let spec = ClusterSpec {
            name: name.clone(),
            kind: c.kind,
            nodes: c.nodes,
            slots_per_node: c.slots_per_node,
            detection_delay: c.detection_delay,
            replacement_delay: c.replacement_delay,
            workers,
        };
        clusters.push(Cluster::start(spec, exe, settings.clone(), Some(&truth))?);
    }
    let mut views = Vec::new();
    let mut endpoints = Vec::new();
    let mut servers = Vec::new();
    for c in &clusters {
        let now = c.view();
        let apis: &[&str] = match now.kind {
            ClusterKind::Storm => &["storm_ui"],
            ClusterKind::Mesos => &["mesos_master", "marathon"],
        };
        let name = now.name.clone();
        let view: SharedView = Arc::new(Mutex::new(now));
        let (addr, handle) = http::serve(view.clone(), cancel.clone())?;
        let url = format!("http://{addr}");
        for api in apis {
            endpoints.push(Endpoint {
                cluster: name.clone(),
                api: (*api).to_owned(),
                url: url.clone(),
            });
        }
        views.push(view);
        servers.push(handle);
    }
    let state = |clusters: &[Cluster]| LabState {
        brokers: settings.brokers.clone(),
        pid: std::process::id(),
        nodes: clusters.iter().flat_map(Cluster::node_states).collect(),
        endpoints: endpoints.clone(),
    };
    let mut last = state(&clusters);
    write_state(dir, &last)?;
    on_ready(&last);
    while !cancel.is_cancelled() {
        std::thread::sleep(TICK);
        for (c, view) in clusters.iter_mut().zip(&views) {
            c.tick()?;
            *view.lock().unwrap_or_else(|e| e.into_inner()) = c.view();
        }
        let now = state(&clusters);
        if now != last {
            write_state(dir, &now)?;
            last = now;
        }
    }
    drop(clusters); // terminates every node process
    for s in servers {
        let _ = s.join();
    }
    for p in producers {
        let _ = p.thread.join();
    }
    let _ = std::fs::remove_file(state_path(dir));
    Ok(())
}

fn write_state(dir: &Path, state: &LabState) -> anyhow::Result<()> {
    let tmp = dir.join("lab.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(tmp, state_path(dir))?;
    Ok(())
}

/// Kill a node of a running lab by id: SIGKILL, or SIGTERM then SIGKILL after `notice`.
pub fn kill(dir: &Path, node: &str, notice: Duration) -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let path = state_path(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("no running lab in {} ({e})", dir.display()))?;
    let state: LabState = serde_json::from_str(&text)?;
    let Some(n) = state.nodes.iter().find(|n| n.id == node) else {
        let ids: Vec<&str> = state.nodes.iter().map(|n| n.id.as_str()).collect();
        anyhow::bail!("no lab node `{node}`; running nodes: {}", ids.join(", "));
    };
    let pid = Pid::from_raw(n.pid as i32);
    if notice.is_zero() {
        kill(pid, Signal::SIGKILL)?;
        return Ok(());
    }
    kill(pid, Signal::SIGTERM)?;
    let deadline = std::time::Instant::now() + notice;
    while std::time::Instant::now() < deadline {
        if kill(pid, None).is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(pid, Signal::SIGKILL);
    Ok(())
}
