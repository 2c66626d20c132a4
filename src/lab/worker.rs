//! A lab worker: one Kafka consumer of a workload, consuming the way the real systems do.
//!
//! - `Manual` (Storm): the worker owns a fixed share of the partitions, assigned by hand as
//!   storm-kafka-client does; while it is not running, nobody consumes them.
//! - `Group` (Mesos/Marathon tasks): the worker subscribes to the workload's consumer group; after
//!   a rebalance the survivors take over every partition.
//!
//! Each record costs `cost_per_message` of simulated work (sleeping, so a lab on a laptop does not
//! burn its cores), which caps a worker at 1/`cost_per_message` records per second; offsets are
//! committed every `commit_interval` (the checkpoint). Runs until its cancellation token fires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::kafka::{KafkaSettings, SettingsError};

/// How a worker gets its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consumption {
    /// Storm: these partitions of the first topic, assigned by hand.
    Manual { partitions: Vec<i32> },
    /// Mesos: a member of the workload's consumer group.
    Group,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSpec {
    pub group: String,
    pub topics: Vec<String>,
    pub consumption: Consumption,
    pub cost_per_message: Duration,
    pub commit_interval: Duration,
    /// The lab fault: join, take the partitions, never consume.
    pub stalled: bool,
}

#[derive(Debug, Default)]
pub struct WorkerStats {
    pub processed: AtomicU64,
    pub commits: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("lab worker of group `{group}`: {source}")]
    Kafka { group: String, source: KafkaError },
    #[error("a storm worker needs a topic to own partitions of")]
    NoTopic,
}

/// Sleep in slices no shorter than this, so per-record costs of microseconds add up correctly.
const MIN_SLEEP: Duration = Duration::from_millis(2);

/// Consume until `cancel` fires; commits what was processed before returning.
pub fn run(
    settings: &KafkaSettings,
    spec: &WorkerSpec,
    stats: &Arc<WorkerStats>,
    cancel: &CancellationToken,
) -> Result<(), WorkerError> {
    let kafka = |source| WorkerError::Kafka {
        group: spec.group.clone(),
        source,
    };
    let consumer: BaseConsumer = settings
        .client_config()?
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", "roundrobin")
        // The mock broker holds an empty fetch for the full wait; workers at the head of the
        // log would otherwise ask (and make it walk the log) 20 times a second.
        .set("fetch.wait.max.ms", "250")
        .create()
        .map_err(kafka)?;
    match &spec.consumption {
        Consumption::Manual { partitions } => {
            let topic = spec.topics.first().ok_or(WorkerError::NoTopic)?;
            // Resume from the group's commits, as a restarted Storm worker does.
            let mut tpl = TopicPartitionList::new();
            for &p in partitions {
                tpl.add_partition(topic, p);
            }
            let committed = consumer
                .committed_offsets(tpl, settings.timeout)
                .map_err(kafka)?;
            let mut start = TopicPartitionList::new();
            for e in committed.elements() {
                let offset = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                start
                    .add_partition(e.topic(), e.partition())
                    .set_offset(offset)
                    .map_err(kafka)?;
            }
            consumer.assign(&start).map_err(kafka)?;
        }
        Consumption::Group => {
            let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
            consumer.subscribe(&topics).map_err(kafka)?;
        }
    }

    if spec.stalled {
        // Holds its partitions (storm) or its group membership (mesos: the session stays alive
        // on librdkafka's background thread until max.poll.interval.ms) and does nothing.
        while !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    let mut pace = Pace::default();
    let mut last_commit = Instant::now();
    let mut uncommitted = false;
    while !cancel.is_cancelled() {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(msg)) => {
                pace.work(spec.cost_per_message);
                consumer.store_offset_from_message(&msg).map_err(kafka)?;
                stats.processed.fetch_add(1, Ordering::Relaxed);
                uncommitted = true;
            }
            Some(Err(_)) => {}
            None => pace.idle(),
        }
        if uncommitted && last_commit.elapsed() >= spec.commit_interval {
            commit(&consumer, stats);
            last_commit = Instant::now();
            uncommitted = false;
        }
    }
    if uncommitted {
        commit(&consumer, stats);
    }
    Ok(())
}

fn commit(consumer: &BaseConsumer, stats: &WorkerStats) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
        }
        // Nothing stored yet, or a rebalance in progress: the next checkpoint retries.
        Err(e) => tracing::debug!(error = %e, "lab worker commit"),
    }
}

/// The simulated work of a worker, paced against a deadline: each record moves the moment the
/// work done so far is paid for by its cost, and the worker sleeps until then (in steps of at
/// least `MIN_SLEEP`). Time a sleep overran is credited to the next records (up to `CREDIT`),
/// so a loaded machine does not lower a worker's capacity below 1/`cost_per_message`; idle time
/// is never credited.
#[derive(Debug, Default)]
struct Pace {
    due: Option<Instant>,
}

/// The most overrun a worker may catch up on.
const CREDIT: Duration = Duration::from_millis(200);

impl Pace {
    fn work(&mut self, cost: Duration) {
        let now = Instant::now();
        let floor = now.checked_sub(CREDIT).unwrap_or(now);
        let from = self.due.map_or(now, |d| d.max(floor));
        let due = from + cost;
        self.due = Some(due);
        if let Some(wait) = due.checked_duration_since(now).filter(|w| *w >= MIN_SLEEP) {
            std::thread::sleep(wait);
        }
    }

    /// No record came: the work is paid for up to now.
    fn idle(&mut self) {
        self.due = None;
    }
}
