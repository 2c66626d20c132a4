//! `spotdrill lab up`: a whole lab from a plan's `lab:` section — the broker (librdkafka's mock
//! cluster, in-process, on loopback), its topics, the telemetry producers, and every cluster with
//! its nodes and scheduler — until cancelled. Its state (broker address, node ids and pids) is
//! kept in `DIR/lab.json` so `spotdrill lab kill NODE` can act from another terminal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::broker::{BrokerProcess, TopicWire};
use super::cluster::{Cluster, ClusterSpec, StartupTimes, workload_workers};
use super::http::{self, ClusterView, SharedView};
use super::kube_api::{self, Action, SharedWorld};
use super::node::WorkerWire;
use super::truth::{Watcher, WorkloadSpec};
use crate::kafka::KafkaSettings;
use crate::observe::health::{Endpoints, HealthError, HttpSettings};
use crate::plan::{ClusterKind, Lab, LabCluster};

/// What `lab.json` says about a running lab.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    pub brokers: String,
    pub pid: u32,
    /// The process running the lab's broker and producers.
    #[serde(default)]
    pub broker_pid: u32,
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

impl LabState {
    /// The health endpoints a lab cluster serves (its Storm UI, or Mesos master and Marathon);
    /// `None` when the lab has no such cluster.
    pub fn health_endpoints(
        &self,
        cluster: &str,
        settings: &HttpSettings,
    ) -> Option<Result<Endpoints, HealthError>> {
        let url = |api: &str| {
            self.endpoints
                .iter()
                .find(|e| e.cluster == cluster && e.api == api)
                .map(|e| e.url.as_str())
        };
        if let Some(ui) = url("storm_ui") {
            return Some(Endpoints::storm(ui, settings));
        }
        let (master, marathon) = (url("mesos_master")?, url("marathon")?);
        Some(Endpoints::mesos((master, settings), (marathon, settings)))
    }
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

/// What a lab cluster runs now, against what it should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Live nodes.
    pub nodes: u32,
    /// Nodes the cluster was started with.
    pub expected_nodes: u32,
    /// Workers running on live nodes.
    pub workers_placed: u32,
    pub workers: u32,
}

impl Capacity {
    /// Back to its size, with every worker placed.
    pub fn is_full(&self) -> bool {
        self.nodes >= self.expected_nodes && self.workers_placed >= self.workers
    }
}

enum Request {
    Kill {
        node: String,
        notice: Duration,
        done: std::sync::mpsc::Sender<anyhow::Result<()>>,
    },
}

/// A running lab: broker, producers, clusters (scheduled on a thread of their own) and their
/// HTTP APIs. Stops, leaving no node process behind, on [`RunningLab::stop`] or drop.
pub struct RunningLab {
    dir: PathBuf,
    state: Arc<Mutex<LabState>>,
    views: Vec<SharedView>,
    /// Per cluster, in order: the Kubernetes API's world of a `kind: kubernetes` cluster.
    worlds: Vec<Option<SharedWorld>>,
    expected: Vec<(String, u32)>,
    startup: Arc<Mutex<Vec<StartupTimes>>>,
    requests: std::sync::mpsc::Sender<Request>,
    cancel: CancellationToken,
    scheduler: Option<JoinHandle<anyhow::Result<()>>>,
    servers: Vec<JoinHandle<()>>,
    // Last: the broker goes after everything that talks to it.
    broker: Option<BrokerProcess>,
}

impl RunningLab {
    /// Start the lab of a plan: every node runs and every worker is placed when this returns.
    pub fn start(lab: &Lab, exe: &Path, dir: &Path) -> anyhow::Result<RunningLab> {
        std::fs::create_dir_all(dir)?;
        // Planted links in the directory are never followed (lab.json: write_state).
        let broker = BrokerProcess::start(exe, &topic_wires(lab), Duration::from_secs(15))?;
        let settings = KafkaSettings::new(broker.bootstrap.clone());
        let cancel = CancellationToken::new();
        let mut lab_handle = RunningLab {
            dir: dir.to_owned(),
            state: Arc::default(),
            views: Vec::new(),
            worlds: Vec::new(),
            expected: Vec::new(),
            startup: Arc::default(),
            requests: std::sync::mpsc::channel().0,
            cancel: cancel.clone(),
            scheduler: None,
            servers: Vec::new(),
            broker: Some(broker),
        };
        let truth = dir.join("lab-truth.jsonl");
        let mut clusters = Vec::new();
        let mut watched = Vec::new();
        for (name, c) in &lab.clusters {
            let spec = cluster_spec(lab, name, c, clusters.len(), &mut watched);
            lab_handle.expected.push((name.clone(), c.nodes));
            // Started one by one; a failure drops (and kills) the clusters started so far.
            clusters.push(Cluster::start(spec, exe, settings.clone(), Some(&truth))?);
        }
        let watcher = Watcher::new(&settings, watched)?;
        let endpoints = lab_handle.serve(&clusters, &cancel)?;
        let state = LabState {
            brokers: settings.brokers.clone(),
            pid: std::process::id(),
            broker_pid: lab_handle.broker_pid().unwrap_or(0),
            nodes: clusters.iter().flat_map(Cluster::node_states).collect(),
            endpoints,
        };
        write_state(dir, &state)?;
        *lab_handle.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        let (tx, rx) = std::sync::mpsc::channel();
        lab_handle.requests = tx;
        let scheduler = Scheduler {
            clusters,
            watcher,
            views: lab_handle.views.clone(),
            worlds: lab_handle.worlds.clone(),
            state: lab_handle.state.clone(),
            startup: lab_handle.startup.clone(),
            dir: dir.to_owned(),
        };
        lab_handle.scheduler = Some(std::thread::spawn(move || scheduler.run(&rx, &cancel)));
        Ok(lab_handle)
    }

    /// Serve each cluster's HTTP APIs on its own port; the endpoints, per API.
    fn serve(
        &mut self,
        clusters: &[Cluster],
        cancel: &CancellationToken,
    ) -> anyhow::Result<Vec<Endpoint>> {
        let mut endpoints = Vec::new();
        for c in clusters {
            let now = c.view();
            let apis: &[&str] = match now.kind {
                ClusterKind::Storm => &["storm_ui"],
                ClusterKind::Mesos => &["mesos_master", "marathon"],
                ClusterKind::Kubernetes => &["kubernetes"],
            };
            let name = now.name.clone();
            let view: SharedView = Arc::new(Mutex::new(now));
            let (addr, handle) = match c.spec_kind() {
                ClusterKind::Kubernetes => {
                    let world: SharedWorld = Arc::default();
                    world
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .sync(&c.kube_state());
                    self.worlds.push(Some(world.clone()));
                    kube_api::serve(world, cancel.clone())?
                }
                _ => {
                    self.worlds.push(None);
                    http::serve(view.clone(), cancel.clone())?
                }
            };
            let url = format!("http://{addr}");
            for api in apis {
                endpoints.push(Endpoint {
                    cluster: name.clone(),
                    api: (*api).to_owned(),
                    url: url.clone(),
                });
            }
            self.views.push(view);
            self.servers.push(handle);
        }
        Ok(endpoints)
    }

    /// Broker address, nodes and endpoints as they are now.
    pub fn state(&self) -> LabState {
        self.handle().state()
    }

    /// The lab's directory (lab.json, lab-truth.jsonl).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ground truth file.
    pub fn truth_path(&self) -> PathBuf {
        self.dir.join("lab-truth.jsonl")
    }

    /// What a cluster shows through its HTTP APIs now.
    pub fn view(&self, cluster: &str) -> Option<ClusterView> {
        self.handle().view(cluster)
    }

    /// A cluster's capacity now.
    pub fn capacity(&self, cluster: &str) -> Option<Capacity> {
        self.handle().capacity(cluster)
    }

    /// A handle on the lab's nodes for a node provider: cheap to clone, usable from any thread.
    pub fn handle(&self) -> LabHandle {
        LabHandle {
            state: self.state.clone(),
            views: self.views.clone(),
            expected: self.expected.clone(),
            requests: self.requests.clone(),
        }
    }

    /// How fast nodes and workers started consuming so far, per cluster (by name).
    pub fn startup_times(&self) -> Vec<(String, StartupTimes)> {
        let times = self
            .startup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.expected
            .iter()
            .map(|(name, _)| name.clone())
            .zip(times)
            .collect()
    }

    /// Pid of the lab's broker process.
    pub fn broker_pid(&self) -> Option<u32> {
        self.broker.as_ref().map(BrokerProcess::pid)
    }

    /// Why the lab's broker is gone, if it is (it should run as long as the lab).
    pub fn broker_exited(&mut self) -> Option<String> {
        let status = self.broker.as_mut()?.exited()?;
        Some(format!(
            "the lab's Kafka broker (mock cluster) exited: {status}"
        ))
    }

    /// Pids of the lab's node processes.
    pub fn node_pids(&self) -> Vec<u32> {
        self.state().nodes.iter().map(|n| n.pid).collect()
    }

    /// Kill a node: SIGKILL at once, or SIGTERM (the spot notice) and SIGKILL after `notice`.
    /// Returns once the node is dead.
    pub fn kill(&self, node: &str, notice: Duration) -> anyhow::Result<()> {
        self.handle().kill(node, notice)
    }

    /// Stop everything: node processes, producers, HTTP servers, broker.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let mut result = Ok(());
        if let Some(s) = self.scheduler.take() {
            result = s
                .join()
                .map_err(|_| anyhow::anyhow!("the lab scheduler panicked"))
                .and_then(|r| r);
        }
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        if let Some(mut b) = self.broker.take() {
            b.stop();
        }
        let _ = std::fs::remove_file(state_path(&self.dir));
        result
    }
}

/// The lab's nodes, clusters and kill requests, shared with the node provider.
#[derive(Clone)]
pub struct LabHandle {
    state: Arc<Mutex<LabState>>,
    views: Vec<SharedView>,
    expected: Vec<(String, u32)>,
    requests: std::sync::mpsc::Sender<Request>,
}

impl LabHandle {
    /// The lab's broker, nodes and endpoints now.
    pub fn state(&self) -> LabState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What a cluster shows through its HTTP APIs now.
    pub fn view(&self, cluster: &str) -> Option<ClusterView> {
        self.views
            .iter()
            .map(|v| v.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .find(|v| v.name == cluster)
    }

    /// A cluster's capacity now.
    pub fn capacity(&self, cluster: &str) -> Option<Capacity> {
        let view = self.view(cluster)?;
        let expected = self.expected.iter().find(|(n, _)| n == cluster)?.1;
        let live: Vec<&str> = view.nodes.iter().map(|n| n.id.as_str()).collect();
        let placed = view
            .workloads
            .iter()
            .flat_map(|w| &w.placed)
            .filter(|(_, node)| live.contains(&node.as_str()))
            .count();
        Some(Capacity {
            nodes: live.len() as u32,
            expected_nodes: expected,
            workers_placed: placed as u32,
            workers: view.workloads.iter().map(|w| w.instances).sum(),
        })
    }

    /// Kill a node: SIGKILL at once, or SIGTERM (the spot notice) and SIGKILL after `notice`.
    /// Returns once the node is dead.
    pub fn kill(&self, node: &str, notice: Duration) -> anyhow::Result<()> {
        let (done, result) = std::sync::mpsc::channel();
        self.requests
            .send(Request::Kill {
                node: node.to_owned(),
                notice,
                done,
            })
            .map_err(|_| anyhow::anyhow!("the lab has stopped"))?;
        result
            .recv()
            .map_err(|_| anyhow::anyhow!("the lab stopped while killing {node}"))?
    }
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The scheduler thread: ticks every cluster, takes kill requests, keeps views and state current.
struct Scheduler {
    clusters: Vec<Cluster>,
    watcher: Watcher,
    views: Vec<SharedView>,
    worlds: Vec<Option<SharedWorld>>,
    state: Arc<Mutex<LabState>>,
    startup: Arc<Mutex<Vec<StartupTimes>>>,
    dir: PathBuf,
}

impl Scheduler {
    fn run(
        mut self,
        requests: &std::sync::mpsc::Receiver<Request>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        use std::sync::mpsc::RecvTimeoutError;
        let mut next_tick = std::time::Instant::now();
        while !cancel.is_cancelled() {
            let wait = next_tick.saturating_duration_since(std::time::Instant::now());
            match requests.recv_timeout(wait) {
                Ok(Request::Kill { node, notice, done }) => {
                    let result = match self
                        .clusters
                        .iter_mut()
                        .find(|c| c.node_ids().contains(&node))
                    {
                        Some(c) => c.kill(&node, notice),
                        None => Err(anyhow::anyhow!("no running lab node `{node}`")),
                    };
                    let _ = done.send(result);
                    self.publish()?;
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            next_tick = std::time::Instant::now() + TICK;
            self.tick()?;
        }
        Ok(())
        // Dropping the clusters terminates every node process.
    }

    /// One round: every cluster's scheduler, and a Kubernetes cluster's API with it — what its
    /// clients wrote is carried out first, then it shows the outcome (under one lock, so no
    /// write is shown undone).
    fn tick(&mut self) -> anyhow::Result<()> {
        for (c, world) in self.clusters.iter_mut().zip(&self.worlds) {
            let Some(world) = world else {
                c.tick()?;
                continue;
            };
            let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
            for action in w.take_actions() {
                match action {
                    Action::Cordon { node, on } => c.cordon(&node, on),
                    Action::Evict { pod } => {
                        c.evict(&pod);
                    }
                    Action::DeleteNode { node } => {
                        // A node already gone needs nothing more.
                        let _ = c.delete_node(&node);
                    }
                }
            }
            c.tick()?;
            w.sync(&c.kube_state());
        }
        self.watcher.tick(&mut self.clusters);
        self.publish()
    }

    fn publish(&mut self) -> anyhow::Result<()> {
        for (c, view) in self.clusters.iter().zip(&self.views) {
            *view.lock().unwrap_or_else(|e| e.into_inner()) = c.view();
        }
        *self.startup.lock().unwrap_or_else(|e| e.into_inner()) = self
            .clusters
            .iter()
            .map(|c| c.startup_times().clone())
            .collect();
        let nodes: Vec<NodeState> = self
            .clusters
            .iter()
            .flat_map(Cluster::node_states)
            .collect();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.nodes != nodes {
            state.nodes = nodes;
            write_state(&self.dir, &state)?;
        }
        Ok(())
    }
}

/// Write `lab.json` without following a link planted in the directory: the bytes go to a new
/// file (`O_CREAT | O_EXCL`, which never follows a link) named for this process, then replace
/// `lab.json` by rename (which replaces a link, never writes through it).
fn write_state(dir: &Path, state: &LabState) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!("lab.json.{}.tmp", std::process::id()));
    // A leftover of a crashed lab of this pid, or something planted: unlinked, never followed.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(state)?)?;
    drop(file);
    std::fs::rename(tmp, state_path(dir))?;
    Ok(())
}

/// Where `lab up` and `lab kill` keep the lab's state without `--dir`: a directory of this
/// user's own, `$XDG_RUNTIME_DIR/spotdrill-lab`, else `$TMPDIR/spotdrill-lab-UID`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("spotdrill-lab"),
        None => std::env::temp_dir().join(format!("spotdrill-lab-{}", nix::unistd::getuid())),
    }
}

/// Make `dir` a private directory (created with mode 0700 when missing) and refuse one that is
/// a link, not a directory, owned by another user, or writable by group or others: anyone who
/// can write in it could plant the `lab.json` that `lab kill` acts on.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!("cannot create the lab directory {}: {e}", dir.display())
        }
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let me = nix::unistd::getuid().as_raw();
    let problem = if !meta.is_dir() {
        Some("it is not a directory (a link or a file)".to_owned())
    } else if meta.uid() != me {
        Some(format!(
            "it belongs to uid {}, not to you (uid {me})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "others can write in it (mode {:o})",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(why) => Err(crate::exit::Failure::environment(format!(
            "refusing the lab directory {}: {why}; remove it or pass --dir",
            dir.display()
        ))
        .into()),
        None => Ok(()),
    }
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
    let pid = Pid::from_raw(lab_node_pid(&state, n).map_err(|why| {
        crate::exit::Failure::bad_input(format!(
            "{}: refusing to signal pid {} for lab node `{node}`: {why}",
            path.display(),
            n.pid
        ))
    })?);
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

/// The pid of a lab node, when it is provably one of this lab's node processes: a pid that names
/// one process (not 0, 1, or a negative number, which `kill` reads as a process group or every
/// process), whose parent is the lab's process recorded in `lab.json`, running `lab node` on
/// the lab's brokers.
fn lab_node_pid(state: &LabState, node: &NodeState) -> Result<i32, String> {
    let pid = i32::try_from(node.pid)
        .ok()
        .filter(|&p| p > 1)
        .ok_or("not the pid of a single process")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|_| "no such process".to_owned())?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read after the last `)`.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    if ppid != Some(state.pid) {
        return Err(format!(
            "its parent is not the lab's process (pid {})",
            state.pid
        ));
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let wanted: [&[u8]; 4] = [b"lab", b"node", b"--brokers", state.brokers.as_bytes()];
    if !args.windows(4).any(|w| w == wanted) {
        return Err("it is not running `spotdrill lab node` on this lab's brokers".into());
    }
    Ok(pid)
}

/// The lab's topics as the broker takes them.
fn topic_wires(lab: &Lab) -> Vec<TopicWire> {
    lab.topics
        .iter()
        .map(|t| TopicWire {
            name: t.name.clone(),
            partitions: t.partitions,
            rate: t.rate,
            message_bytes: t.message_bytes,
        })
        .collect()
}

/// What cluster number `index` of the lab runs; its workloads join `watched`.
fn cluster_spec(
    lab: &Lab,
    name: &str,
    c: &LabCluster,
    index: usize,
    watched: &mut Vec<WorkloadSpec>,
) -> ClusterSpec {
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
            stall_after_restart: w.stall_after_restart,
            stalled: false,
        };
        workers.extend(workload_workers(
            wname, c.kind, w.workers, partitions, &template,
        ));
        watched.push(WorkloadSpec {
            cluster: index,
            workload: wname.clone(),
            group: w.group.clone(),
            topics: w.topics.clone(),
            commit_interval: w.commit_interval,
        });
    }
    ClusterSpec {
        name: name.to_owned(),
        kind: c.kind,
        nodes: c.nodes,
        slots_per_node: c.slots_per_node,
        detection_delay: c.detection_delay,
        replacement_delay: c.replacement_delay,
        workers,
    }
}
