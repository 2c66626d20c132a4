//! The lab's own view of every workload's backlog, for the ground truth's `backlog_drained`
//! events: after a node hosting some of a workload's workers is lost, the workload's backlog has
//! drained once all its workers run on live nodes again, they had time to commit, and its lag is
//! back at the steady level it had before the loss.
//!
//! The lab measures lag with the same probe as the harness, but on its own, faster cadence
//! ([`CADENCE`]) and against its own steady level (the highest lag of the [`STEADY_WINDOW`] before
//! the loss), never the plan's band: the truth must not depend on the harness's settings.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::cluster::{Cluster, TruthEvent};
use crate::kafka::KafkaSettings;
use crate::observe::{GroupSpec, LagProbe};

/// How often the lab measures its workloads' lag.
pub const CADENCE: Duration = Duration::from_millis(250);
/// How far back the steady level before a loss is taken from.
pub const STEADY_WINDOW: Duration = Duration::from_secs(10);

/// One workload the lab watches.
struct Watched {
    cluster: usize,
    workload: String,
    group: String,
    commit_interval: Duration,
    /// (when, lag seconds) of recent measurements.
    history: VecDeque<(Instant, f64)>,
    backlog: Option<Backlog>,
}

/// A backlog in progress.
struct Backlog {
    since: SystemTime,
    steady: f64,
    peak: f64,
    /// Since when every worker of the workload has run on a live node.
    placed_since: Option<Instant>,
}

/// A workload to watch: its cluster (index), name, group, topics and commit interval.
pub struct WorkloadSpec {
    pub cluster: usize,
    pub workload: String,
    pub group: String,
    pub topics: Vec<String>,
    pub commit_interval: Duration,
}

pub struct Watcher {
    probe: LagProbe,
    watched: Vec<Watched>,
    next: Instant,
}

impl Watcher {
    pub fn new(settings: &KafkaSettings, workloads: Vec<WorkloadSpec>) -> anyhow::Result<Watcher> {
        let mut specs: Vec<GroupSpec> = Vec::new();
        for w in &workloads {
            let spec = GroupSpec {
                group: w.group.clone(),
                topics: w.topics.clone(),
                // Lab workers read plain (non-transactional) topics.
                isolation: Default::default(),
            };
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
        let probe = LagProbe::connect(settings.clone(), &specs)?;
        Ok(Watcher {
            probe,
            watched: workloads
                .into_iter()
                .map(|w| Watched {
                    cluster: w.cluster,
                    workload: w.workload,
                    group: w.group,
                    commit_interval: w.commit_interval,
                    history: VecDeque::new(),
                    backlog: None,
                })
                .collect(),
            next: Instant::now(),
        })
    }

    /// Called every scheduler tick, after the clusters ticked: note losses, measure when due,
    /// and record `backlog_drained` for every backlog that drained.
    pub fn tick(&mut self, clusters: &mut [Cluster]) {
        let now = Instant::now();
        for (ci, cluster) in clusters.iter_mut().enumerate() {
            for (at, hosted) in cluster.take_losses() {
                self.lost(ci, at, &hosted, now);
            }
        }
        if now < self.next {
            return;
        }
        self.next = now + CADENCE;
        let lags = self.probe.snapshot();
        for w in &mut self.watched {
            let Some(lag) = lags
                .iter()
                .find(|g| g.group == w.group)
                .and_then(|g| g.lag_seconds)
            else {
                continue;
            };
            w.history.push_back((now, lag));
            while w
                .history
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > STEADY_WINDOW)
            {
                w.history.pop_front();
            }
            let Some(backlog) = &mut w.backlog else {
                continue;
            };
            backlog.peak = backlog.peak.max(lag);
            let cluster = &mut clusters[w.cluster];
            if !cluster.workload_placed(&w.workload) {
                backlog.placed_since = None;
                continue;
            }
            let placed = *backlog.placed_since.get_or_insert(now);
            if now.duration_since(placed) < w.commit_interval || lag > backlog.steady {
                continue;
            }
            let name = cluster.name().to_owned();
            cluster.record_event(&TruthEvent {
                at: SystemTime::now(),
                cluster: &name,
                event: "backlog_drained",
                node: None,
                worker: None,
                workload: Some(&w.workload),
                peak_lag_s: Some(round3(backlog.peak)),
                steady_lag_s: Some(round3(backlog.steady)),
                since: Some(backlog.since),
                took_ms: None,
            });
            w.backlog = None;
        }
    }

    fn lost(&mut self, cluster: usize, at: SystemTime, hosted: &BTreeSet<String>, now: Instant) {
        for w in &mut self.watched {
            if w.cluster != cluster || !hosted.contains(&w.workload) {
                continue;
            }
            // A second loss during a backlog extends it; the steady level stays the one before
            // the first loss.
            if let Some(b) = &mut w.backlog {
                b.placed_since = None;
                continue;
            }
            let steady = w
                .history
                .iter()
                .filter(|(t, _)| now.duration_since(*t) <= STEADY_WINDOW)
                .map(|(_, l)| *l)
                .fold(0.0_f64, f64::max);
            w.backlog = Some(Backlog {
                since: at,
                steady,
                peak: steady,
                placed_since: None,
            });
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
