//! A lab cluster: node processes with slots, and a scheduler that behaves like Nimbus (storm) or
//! Mesos + Marathon (mesos): a dead node is noticed after `detection_delay`, its workers are
//! re-placed onto free slots, workers that do not fit wait, and with replacement enabled a new
//! node joins `replacement_delay` after each loss (the spot fleet refilling).
//!
//! Every event the lab causes or sees goes to the ground truth (`lab-truth.jsonl`), so tests and
//! reports can hold spotdrill's measurements against it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use serde::Serialize;

use super::node::{Command, NodeProcess, NodeSpec, WorkerWire};
use crate::kafka::KafkaSettings;
use crate::plan::ClusterKind;

/// How long a node process may take to start its workers.
const NODE_START: Duration = Duration::from_secs(15);

/// A cluster as the lab runs it.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub name: String,
    pub kind: ClusterKind,
    pub nodes: u32,
    pub slots_per_node: u32,
    pub detection_delay: Duration,
    /// `None`: lost nodes are not replaced.
    pub replacement_delay: Option<Duration>,
    /// Every worker (or task), by name; each takes one slot.
    pub workers: Vec<(String, WorkerWire)>,
}

/// One line of `lab-truth.jsonl`.
#[derive(Debug, Serialize)]
pub struct TruthEvent<'a> {
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    pub cluster: &'a str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<&'a str>,
    /// `backlog_drained`: the workload whose backlog drained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<&'a str>,
    /// `backlog_drained`: the highest lag (seconds) seen since the loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_lag_s: Option<f64>,
    /// `backlog_drained`: the steady lag (seconds) before the loss, which lag is back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_lag_s: Option<f64>,
    /// `worker_consuming`: milliseconds from the worker's placement to its first record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// `backlog_drained`: when the loss that caused the backlog happened.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    pub since: Option<SystemTime>,
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

struct Node {
    id: String,
    started: Instant,
    process: NodeProcess,
    workers: BTreeSet<String>,
    /// When the process was found dead (or killed by the lab).
    died_at: Option<Instant>,
    /// The scheduler has noticed the death and re-placed the node's work.
    detected: bool,
    /// One of its workers has processed a record.
    consuming: bool,
}

pub struct Cluster {
    spec: ClusterSpec,
    exe: PathBuf,
    settings: KafkaSettings,
    nodes: Vec<Node>,
    /// Worker → the node it runs on (`None`: waiting for a slot).
    placement: BTreeMap<String, Option<String>>,
    replacements_due: Vec<Instant>,
    next_id: u32,
    truth: Option<File>,
    /// Nodes lost since the last `take_losses`: when, and the workloads they hosted.
    losses: Vec<(SystemTime, BTreeSet<String>)>,
    /// When each running worker was placed, until it reports its first record.
    placed_at: BTreeMap<String, Instant>,
    /// Workers placed at least once (a placement of one of these is a restart).
    ever_placed: std::collections::BTreeSet<String>,
    startup: StartupTimes,
    /// Kubernetes: nodes cordoned (`spec.unschedulable`): nothing new is placed on them.
    cordoned: BTreeSet<String>,
}

/// How fast work starts in the lab.
#[derive(Clone, Debug, Default)]
pub struct StartupTimes {
    /// Per node: from spawning its process to its first worker's first record.
    pub node_to_consuming: Vec<Duration>,
    /// Per placement: from the scheduler placing a worker to its first record.
    pub placed_to_consuming: Vec<Duration>,
}

impl Cluster {
    /// Start the nodes and place every worker, spreading them over the nodes.
    pub fn start(
        spec: ClusterSpec,
        exe: &Path,
        settings: KafkaSettings,
        truth: Option<&Path>,
    ) -> anyhow::Result<Cluster> {
        let truth = truth
            .map(|p| {
                use std::os::unix::fs::OpenOptionsExt as _;
                // A link planted where the ground truth goes is refused, never written through.
                File::options()
                    .create(true)
                    .append(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(p)
                    .with_context(|| {
                        format!(
                            "cannot open the lab's ground truth {} (a link there is refused)",
                            p.display()
                        )
                    })
            })
            .transpose()?;
        let mut cluster = Cluster {
            placement: spec
                .workers
                .iter()
                .map(|(w, _)| (w.clone(), None))
                .collect(),
            spec,
            exe: exe.to_owned(),
            settings,
            nodes: Vec::new(),
            replacements_due: Vec::new(),
            next_id: 1,
            truth,
            losses: Vec::new(),
            placed_at: BTreeMap::new(),
            ever_placed: std::collections::BTreeSet::new(),
            startup: StartupTimes::default(),
            cordoned: BTreeSet::new(),
        };
        for _ in 0..cluster.spec.nodes {
            cluster.add_node()?;
        }
        cluster.place();
        Ok(cluster)
    }

    fn record(&mut self, event: &str, node: Option<&str>, worker: Option<&str>) {
        let name = self.spec.name.clone();
        let line = TruthEvent {
            at: SystemTime::now(),
            cluster: &name,
            event,
            node,
            worker,
            workload: None,
            peak_lag_s: None,
            steady_lag_s: None,
            since: None,
            took_ms: None,
        };
        self.record_event(&line);
    }

    /// Append one event to the ground truth.
    pub fn record_event(&mut self, line: &TruthEvent<'_>) {
        let Some(file) = &mut self.truth else {
            return;
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            let _ = file.write_all(text.as_bytes()).and_then(|()| file.flush());
        }
    }

    fn add_node(&mut self) -> anyhow::Result<()> {
        let id = format!("{}-{}", self.spec.name, self.next_id);
        self.next_id += 1;
        let spec = NodeSpec {
            id: id.clone(),
            workers: Vec::new(),
        };
        let process = NodeProcess::start(&self.exe, &self.settings, &spec, NODE_START)?;
        self.record("node_joined", Some(&id), None);
        self.nodes.push(Node {
            id,
            started: Instant::now(),
            process,
            workers: BTreeSet::new(),
            died_at: None,
            detected: false,
            consuming: false,
        });
        Ok(())
    }

    /// The ids of the nodes that run (or are dying unnoticed).
    pub fn node_ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.died_at.is_none())
            .map(|n| n.id.clone())
            .collect()
    }

    /// Id, cluster and pid of every live node.
    pub fn node_states(&self) -> Vec<super::up::NodeState> {
        self.nodes
            .iter()
            .filter(|n| n.died_at.is_none())
            .map(|n| super::up::NodeState {
                id: n.id.clone(),
                cluster: self.spec.name.clone(),
                pid: n.process.pid(),
            })
            .collect()
    }

    /// What the cluster's HTTP endpoints show now.
    pub fn view(&self) -> super::http::ClusterView {
        use super::http::{ClusterView, NodeView, WorkloadView};
        let live = self.nodes.iter().filter(|n| n.died_at.is_none());
        let mut workloads: Vec<WorkloadView> = Vec::new();
        for (worker, node) in &self.placement {
            let name = workload_of(worker);
            let entry = match workloads.iter_mut().position(|w| w.name == name) {
                Some(i) => &mut workloads[i],
                None => {
                    workloads.push(WorkloadView {
                        name: name.to_owned(),
                        instances: 0,
                        placed: Vec::new(),
                    });
                    workloads.last_mut().expect("just pushed")
                }
            };
            entry.instances += 1;
            if let Some(node) = node {
                entry.placed.push((worker.clone(), node.clone()));
            }
        }
        ClusterView {
            name: self.spec.name.clone(),
            kind: self.spec.kind,
            slots_per_node: self.spec.slots_per_node,
            nodes: live
                .map(|n| NodeView {
                    id: n.id.clone(),
                    started: n.started,
                    workers: n.workers.iter().cloned().collect(),
                })
                .collect(),
            workloads,
            lost: self
                .nodes
                .iter()
                .filter(|n| n.detected)
                .map(|n| n.id.clone())
                .collect(),
        }
    }

    /// Storm, Mesos or Kubernetes.
    pub fn spec_kind(&self) -> ClusterKind {
        self.spec.kind
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The nodes lost (killed or found dead) since the last call, with the workloads they hosted.
    pub fn take_losses(&mut self) -> Vec<(SystemTime, BTreeSet<String>)> {
        std::mem::take(&mut self.losses)
    }

    /// Whether every worker of `workload` runs on a live node.
    pub fn workload_placed(&self, workload: &str) -> bool {
        self.placement
            .iter()
            .filter(|(w, _)| workload_of(w) == workload)
            .all(|(_, node)| {
                node.as_ref().is_some_and(|id| {
                    self.nodes
                        .iter()
                        .any(|n| &n.id == id && n.died_at.is_none())
                })
            })
    }

    /// Workers waiting for a slot.
    pub fn unplaced(&self) -> Vec<String> {
        self.placement
            .iter()
            .filter(|(_, n)| n.is_none())
            .map(|(w, _)| w.clone())
            .collect()
    }

    /// Workers per node id (live nodes only).
    pub fn placement(&self) -> BTreeMap<String, Vec<String>> {
        self.nodes
            .iter()
            .filter(|n| n.died_at.is_none())
            .map(|n| (n.id.clone(), n.workers.iter().cloned().collect()))
            .collect()
    }

    /// Kill a node: with a notice, SIGTERM then SIGKILL after it; without, SIGKILL at once.
    pub fn kill(&mut self, node: &str, notice: Duration) -> anyhow::Result<()> {
        let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.id == node && n.died_at.is_none())
        else {
            anyhow::bail!("no running lab node `{node}` in cluster {}", self.spec.name);
        };
        self.nodes[i].process.terminate(notice);
        self.lose(i, Instant::now(), "node_killed");
        Ok(())
    }

    /// Kubernetes: cordon (or uncordon) a node; nothing new is placed on a cordoned node.
    pub fn cordon(&mut self, node: &str, on: bool) {
        if on {
            self.cordoned.insert(node.to_owned());
        } else {
            self.cordoned.remove(node);
        }
        self.record(
            if on {
                "node_cordoned"
            } else {
                "node_uncordoned"
            },
            Some(node),
            None,
        );
    }

    /// Kubernetes: an evicted pod's worker stops (committing what it processed) and waits to be
    /// placed again, as its Deployment re-creates it; `false` when it runs nowhere.
    pub fn evict(&mut self, worker: &str) -> bool {
        let Some(node) = self.placement.get(worker).cloned().flatten() else {
            return false;
        };
        let Some(n) = self.nodes.iter_mut().find(|n| n.id == node) else {
            return false;
        };
        let _ = n.process.command(&Command::Stop {
            worker: worker.to_owned(),
        });
        n.workers.remove(worker);
        self.placement.insert(worker.to_owned(), None);
        let hosted = BTreeSet::from([workload_of(worker).to_owned()]);
        self.losses.push((SystemTime::now(), hosted));
        self.record("worker_evicted", Some(&node), Some(worker));
        true
    }

    /// Kubernetes: the Node object was deleted (after a drain): its process ends at once and the
    /// scheduler knows it is gone (no detection delay); a replacement follows as for a loss.
    pub fn delete_node(&mut self, node: &str) -> anyhow::Result<()> {
        self.kill(node, Duration::ZERO)?;
        if let Some(n) = self.nodes.iter_mut().find(|n| n.id == node) {
            n.died_at = n
                .died_at
                .map(|t| t.checked_sub(self.spec.detection_delay).unwrap_or(t));
        }
        self.cordoned.remove(node);
        Ok(())
    }

    /// Kubernetes: the nodes (live, or dead and not yet noticed: NotReady), which are cordoned,
    /// and where every pod runs.
    pub fn kube_state(&self) -> super::kube_api::LabKubeState {
        use super::kube_api::{LabKubeNode, LabKubeState};
        LabKubeState {
            namespace: self.spec.name.clone(),
            slots_per_node: self.spec.slots_per_node,
            nodes: self
                .nodes
                .iter()
                .filter(|n| !n.detected)
                .map(|n| LabKubeNode {
                    name: n.id.clone(),
                    ready: n.died_at.is_none(),
                    cordoned: self.cordoned.contains(&n.id),
                    pods: n.workers.len() as u32,
                })
                .collect(),
            pods: self.placement.clone(),
        }
    }

    /// Node `i` is gone (killed, or found dead): note when, which workloads it hosted (for the
    /// backlog truth), and the event.
    fn lose(&mut self, i: usize, at: Instant, event: &str) {
        let n = &mut self.nodes[i];
        n.died_at = Some(at);
        let id = n.id.clone();
        let hosted = n
            .workers
            .iter()
            .map(|w| workload_of(w).to_owned())
            .collect();
        self.losses.push((SystemTime::now(), hosted));
        self.record(event, Some(&id), None);
    }

    /// One scheduler round: notice deaths, re-place work, bring replacements in.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.died_at.is_none() && !n.process.is_running() {
                self.lose(i, now, "node_died");
            }
        }
        self.note_consuming();
        let mut lost_nodes = 0;
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            let due = n
                .died_at
                .is_some_and(|t| !n.detected && now >= t + self.spec.detection_delay);
            if !due {
                continue;
            }
            n.detected = true;
            lost_nodes += 1;
            let (id, lost) = (n.id.clone(), std::mem::take(&mut n.workers));
            self.record("node_lost_detected", Some(&id), None);
            for w in lost {
                self.placement.insert(w.clone(), None);
                self.record("worker_lost", Some(&id), Some(&w));
            }
        }
        if let Some(delay) = self.spec.replacement_delay {
            for _ in 0..lost_nodes {
                self.replacements_due.push(now + delay);
            }
        }
        let due: Vec<Instant> = self
            .replacements_due
            .iter()
            .copied()
            .filter(|t| *t <= now)
            .collect();
        self.replacements_due.retain(|t| *t > now);
        for _ in due {
            self.add_node()?;
        }
        self.place();
        Ok(())
    }

    /// Record the workers that started consuming.
    fn note_consuming(&mut self) {
        let mut started = Vec::new();
        for n in &mut self.nodes {
            let reports = n.process.take_consuming();
            if let Some((_, first)) = reports.first()
                && !n.consuming
            {
                n.consuming = true;
                self.startup
                    .node_to_consuming
                    .push(first.duration_since(n.process.spawned));
            }
            started.extend(reports.into_iter().map(|(w, at)| (n.id.clone(), w, at)));
        }
        let name = self.spec.name.clone();
        for (node, worker, at) in started {
            let took = self
                .placed_at
                .remove(&worker)
                .map(|placed| at.saturating_duration_since(placed));
            if let Some(took) = took {
                self.startup.placed_to_consuming.push(took);
            }
            self.record_event(&TruthEvent {
                at: SystemTime::now(),
                cluster: &name,
                event: "worker_consuming",
                node: Some(&node),
                worker: Some(&worker),
                workload: None,
                peak_lag_s: None,
                steady_lag_s: None,
                since: None,
                took_ms: took.map(|d| d.as_millis() as u64),
            });
        }
    }

    /// How fast nodes and workers started consuming so far.
    pub fn startup_times(&self) -> &StartupTimes {
        &self.startup
    }

    /// Place waiting workers on the live nodes with the most free slots.
    fn place(&mut self) {
        let waiting = self.unplaced();
        for w in waiting {
            let slots = self.spec.slots_per_node as usize;
            let Some(i) = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    n.died_at.is_none() && n.workers.len() < slots && !self.cordoned.contains(&n.id)
                })
                .min_by_key(|(i, n)| (n.workers.len(), *i))
                .map(|(i, _)| i)
            else {
                break;
            };
            let Some(mut wire) = self
                .spec
                .workers
                .iter()
                .find(|(name, _)| *name == w)
                .map(|(_, s)| s.clone())
            else {
                continue;
            };
            // The lab fault: a worker placed before (so re-placed now) stalls.
            wire.stalled = wire.stall_after_restart && self.ever_placed.contains(&w);
            let stalled = wire.stalled;
            let node = &mut self.nodes[i];
            let start = Command::Start {
                worker: w.clone(),
                spec: wire,
            };
            if node.process.command(&start).is_err() {
                // The node died since the last round: the next tick notices it.
                continue;
            }
            node.workers.insert(w.clone());
            let id = node.id.clone();
            self.placed_at.insert(w.clone(), Instant::now());
            self.ever_placed.insert(w.clone());
            self.placement.insert(w.clone(), Some(id.clone()));
            self.record("worker_placed", Some(&id), Some(&w));
            if stalled {
                self.record("worker_stalled", Some(&id), Some(&w));
            }
        }
    }
}

/// The workload a worker belongs to (`coverage-topology-3` → `coverage-topology`).
pub fn workload_of(worker: &str) -> &str {
    worker.rsplit_once('-').map_or(worker, |(w, _)| w)
}

/// Workers of one workload: Storm workers own partitions of the first topic round-robin (task i
/// owns every partition p with p mod workers = i); Mesos tasks share one consumer group.
pub fn workload_workers(
    name: &str,
    kind: ClusterKind,
    workers: u32,
    partitions: i32,
    template: &WorkerWire,
) -> Vec<(String, WorkerWire)> {
    (0..workers)
        .map(|i| {
            let mut w = template.clone();
            w.partitions = match kind {
                ClusterKind::Storm => Some(
                    (0..partitions)
                        .filter(|p| *p as u32 % workers == i)
                        .collect(),
                ),
                ClusterKind::Mesos | ClusterKind::Kubernetes => None,
            };
            (format!("{name}-{i}"), w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_workers_own_partitions_round_robin() {
        let template = WorkerWire {
            group: "g".into(),
            topics: vec!["t".into()],
            partitions: None,
            cost_per_message_us: 1,
            commit_interval_ms: 1,
            stall_after_restart: false,
            stalled: false,
        };
        let w = workload_workers("cov", ClusterKind::Storm, 3, 8, &template);
        let owned: Vec<_> = w
            .iter()
            .map(|(n, s)| (n.as_str(), s.partitions.clone().unwrap()))
            .collect();
        assert_eq!(
            owned,
            [
                ("cov-0", vec![0, 3, 6]),
                ("cov-1", vec![1, 4, 7]),
                ("cov-2", vec![2, 5])
            ]
        );
        let m = workload_workers("agg", ClusterKind::Mesos, 2, 8, &template);
        assert!(m.iter().all(|(_, s)| s.partitions.is_none()));
    }
}
