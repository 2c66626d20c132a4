//! The lag probe: reads committed offsets, watermarks and record timestamps from Kafka the cheap
//! way (DESIGN.md "Lag: the one definition"), and turns them into [`GroupLag`] samples.
//!
//! - committed offsets: one `BaseConsumer` per group with the group's `group.id`, asked with an
//!   explicit partition list; it never subscribes or commits, so it never joins the group;
//! - watermarks and log starts: one batched ListOffsets each (one request per leader);
//! - timestamps: one long-lived reader per isolation level ([`super::reader`]), assigned only
//!   the partitions it must read, that finds the newest data record below H and below C
//!   (transaction markers and, read_committed, aborted records are never returned by Kafka);
//!   answers are cached per (partition, query, isolation) because records never change;
//! - read_committed groups: the last stable offset from a ListOffsets with that isolation level
//!   (librdkafka sends its client's `isolation.level`), and an open transaction's age from the
//!   timestamp of its first record (the record at the last stable offset).
//!
//! Blocking: the [`super::sampler`] runs it on tokio's blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::config::{self, Admin};
use super::group::{self, Described, Progress, Tracker};
use super::lag::{self, Found, GroupLag, Isolation, Note, Offsets, OpenTransaction, PartitionLag};
use super::reader::{Query, Reader, Want};
use crate::kafka::{KafkaSettings, SettingsError};

/// A group to measure and, optionally, the topics to measure it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub group: String,
    /// Empty: every topic the group has committed offsets on (found when the probe connects).
    pub topics: Vec<String>,
    /// How the group's consumers read: read_committed lag ends at the last stable offset.
    pub isolation: Isolation,
}

impl From<&crate::plan::ConsumerGroup> for GroupSpec {
    fn from(g: &crate::plan::ConsumerGroup) -> GroupSpec {
        GroupSpec {
            group: g.group.clone(),
            topics: g.topics.clone(),
            isolation: g.isolation,
        }
    }
}

/// Why the probe cannot start or a snapshot cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach Kafka at {brokers} within {timeout}: {source}")]
    Unreachable {
        brokers: String,
        timeout: String,
        source: Box<KafkaError>,
    },
    #[error("topic `{topic}` does not exist on {brokers}")]
    UnknownTopic { topic: String, brokers: String },
    #[error(
        "group `{group}` has no committed offsets on any topic of {brokers}: it never committed, \
         or is not a consumer group of this cluster; name its topics with --topic to watch it anyway"
    )]
    NoTopics { group: String, brokers: String },
    #[error("cannot read the committed offsets of group `{group}` on {brokers}: {why}")]
    Committed {
        group: String,
        brokers: String,
        why: String,
    },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot create a Kafka client: {0}")]
    Client(Box<KafkaError>),
}

type Key = (Arc<str>, i32);

/// A group's committed offsets, aligned with its partitions (or why they could not be read).
type Committed = Result<Vec<Option<i64>>, String>;

/// A group's description, when it was asked for.
type Description = Option<Result<Described, group::Failure>>;

/// Topic → why it cannot be measured (it is gone).
type TopicProblems = BTreeMap<String, String>;

/// A partition's index in the layout, its offsets and what its lag needs.
type PartPlan = (usize, Offsets, lag::Plan);

/// When a snapshot was taken, and how long it took.
struct When {
    at: SystemTime,
    elapsed_ms: u64,
    took: u64,
}

impl When {
    fn missing(&self, group: &str, why: String) -> GroupLag {
        GroupLag::missing(group, self.at, self.elapsed_ms, self.took, why)
    }
}

/// What one round of offset requests returned, aligned with the partitions asked for (and, for
/// committed offsets, with each group's partitions).
struct Fetched {
    high: Result<Vec<Option<i64>>, String>,
    start: Result<Vec<Option<i64>>, String>,
    /// Last stable offsets, when a group reads read_committed.
    stable: Option<Result<Vec<Option<i64>>, String>>,
    committed: Vec<Result<Vec<Option<i64>>, String>>,
    /// Each group's description (DescribeGroups), when the broker answers it.
    described: Vec<Description>,
}

/// The partitions of one snapshot, and where each group's partitions are among them.
#[derive(Default)]
struct Layout {
    all: Vec<Key>,
    slot: HashMap<Key, usize>,
    /// For each group, the indices in `all` of its partitions.
    groups: Vec<Vec<usize>>,
}

impl Layout {
    fn new(all: Vec<Key>, groups: &[GroupProbe]) -> Layout {
        let slot = all
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let groups = groups
            .iter()
            .map(|g| {
                all.iter()
                    .enumerate()
                    .filter(|(_, (t, _))| g.topics.iter().any(|gt| gt.as_str() == &**t))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        Layout { all, slot, groups }
    }
}

/// A reader's answer, cached: records never change, so neither does the newest data record
/// below an offset (nor the first at or after one). "Nothing" is kept for its snapshot only.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    query: Query,
    isolation: Isolation,
    found: Found,
    generation: u64,
}

/// Cached answers per partition before those not used lately are dropped.
const CACHE_PER_PARTITION: usize = 64;

/// Queries to read, per (isolation, partition index).
type Wanted = BTreeMap<(Isolation, usize), Vec<Query>>;

pub struct LagProbe {
    settings: KafkaSettings,
    meta: BaseConsumer,
    /// ListOffsets with isolation read_committed (the last stable offsets), when a group needs it.
    meta_committed: Option<BaseConsumer>,
    reader: Reader,
    committed_reader: Option<Reader>,
    groups: Vec<GroupProbe>,
    /// Cached answers, per partition of `layout.all`.
    stamps: Vec<Vec<Stamp>>,
    generation: u64,
    started: Instant,
    names: HashMap<String, Arc<str>>,
    /// Record timestamps the last snapshot had to read (not cached).
    last_reads: usize,
    /// The partitions of the last snapshot.
    layout: Layout,
    /// Per partition of `layout.all`: the log start and high watermark last seen (offsets that
    /// go back mean the topic was re-created or truncated).
    seen: Vec<Option<(i64, i64)>>,
    /// The compacted topics among the groups' (read when the partition set changes, in the
    /// background: the mock cluster never answers DescribeConfigs, and a snapshot must not wait).
    compacted: Compacted,
    describing: Describing,
}

/// Which topics are compacted, asked of the brokers in the background.
struct Compacted {
    admin: Arc<Admin>,
    topics: BTreeSet<String>,
    /// The answer to come (in a mutex: the probe is shared by its snapshot's threads).
    pending: Option<std::sync::Mutex<std::sync::mpsc::Receiver<ConfigAnswer>>>,
    /// DescribeConfigs failed once: not asked again (no value is flagged as compacted).
    unsupported: bool,
}

type ConfigAnswer = Result<BTreeSet<String>, String>;

/// How long a new partition set waits for the topic configs before its snapshot goes on.
const CONFIG_WAIT: Duration = Duration::from_millis(250);

impl Compacted {
    /// Ask for the configs of these topics; wait a little for the answer.
    fn ask(&mut self, topics: BTreeSet<String>, timeout: Duration) {
        if self.unsupported || self.pending.is_some() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let admin = self.admin.clone();
        std::thread::spawn(move || {
            let _ = tx.send(config::compacted(&admin, &topics, timeout));
        });
        self.pending = Some(std::sync::Mutex::new(rx));
        self.collect(CONFIG_WAIT);
    }

    /// Take the answer in if it came (within `wait`).
    fn collect(&mut self, wait: Duration) {
        let Some(rx) = &self.pending else { return };
        let answer = match rx.lock() {
            Ok(rx) => rx.recv_timeout(wait),
            Err(_) => Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(Ok(topics)) => self.topics = topics,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "topic configs not read: no value is flagged as compacted");
                self.unsupported = true;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => self.unsupported = true,
        }
        self.pending = None;
    }
}

/// Whether the brokers answer DescribeGroups.
#[derive(Clone, Debug, PartialEq)]
enum Describing {
    /// Not asked yet, or never answered so far.
    Unknown,
    Works,
    /// The brokers do not implement DescribeGroups: not asked again; said once, with the next
    /// sample.
    Unsupported {
        why: String,
        said: bool,
    },
}

impl Describing {
    /// What a failed description tells: unsupported for good, or unknown still.
    fn after(failure: group::Failure) -> Describing {
        if failure.unsupported {
            tracing::info!(error = %failure.why, "the brokers do not answer DescribeGroups: no group state");
            Describing::Unsupported {
                why: failure.why,
                said: false,
            }
        } else {
            tracing::debug!(error = %failure.why, "DescribeGroups failed this time; asked again");
            Describing::Unknown
        }
    }
}

struct GroupProbe {
    group: String,
    topics: Vec<String>,
    isolation: Isolation,
    consumer: BaseConsumer,
    tracker: Tracker,
}

impl LagProbe {
    /// Connect, check that the brokers answer and the topics exist, and find the topics of groups
    /// given without any. Fails within `settings.timeout` when Kafka is unreachable.
    pub fn connect(settings: KafkaSettings, specs: &[GroupSpec]) -> Result<LagProbe, ProbeError> {
        let base = settings.client_config()?;
        let probe_group = format!("spotdrill-probe-{}", std::process::id());
        let meta_cfg = without_commits(&base, &probe_group);
        let uncommitted = isolated(&meta_cfg, Isolation::ReadUncommitted);
        let meta = create(&uncommitted)?;
        let reader = Reader::new(create(&reader_config(&uncommitted))?);
        // Connect the reader now, so the first snapshot does not wait for its first metadata.
        reader.warm_up(settings.timeout);
        let (meta_committed, committed_reader) = if specs
            .iter()
            .any(|s| s.isolation == Isolation::ReadCommitted)
        {
            let committed = isolated(&meta_cfg, Isolation::ReadCommitted);
            let reader = Reader::new(create(&reader_config(&committed))?);
            reader.warm_up(settings.timeout);
            (Some(create(&committed)?), Some(reader))
        } else {
            (None, None)
        };
        let admin: Arc<Admin> = Arc::new(
            uncommitted
                .create()
                .map_err(|e| ProbeError::Client(Box::new(e)))?,
        );
        let existing = existing_topics(&meta, &settings)?;
        let groups = specs
            .iter()
            .map(|spec| group_probe(&base, spec, &existing, &settings))
            .collect::<Result<Vec<_>, _>>()?;
        let describing = std::thread::scope(|s| {
            let first = s.spawn(|| first_describe(&meta, &groups, settings.timeout));
            find_coordinators(&groups, settings.timeout);
            first.join().unwrap_or(Describing::Unknown)
        });
        Ok(LagProbe {
            settings,
            meta,
            meta_committed,
            reader,
            committed_reader,
            groups,
            stamps: Vec::new(),
            generation: 0,
            started: Instant::now(),
            names: HashMap::new(),
            last_reads: 0,
            layout: Layout::default(),
            seen: Vec::new(),
            compacted: Compacted {
                admin,
                topics: BTreeSet::new(),
                pending: None,
                unsupported: false,
            },
            describing,
        })
    }

    /// How long commits may stand still while the high watermarks grow before a group is
    /// "stalled" (default [`group::STALL_AFTER`]).
    pub fn set_stall_after(&mut self, after: Duration) {
        for g in &mut self.groups {
            g.tracker.stall_after = after;
        }
    }

    /// The groups and the topics each is measured on.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.groups
            .iter()
            .map(|g| (g.group.as_str(), g.topics.as_slice()))
    }

    /// Reset the clock `elapsed_ms` counts from.
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Measure every group once. A broker outage gives `missing` samples (a gap), not an error.
    pub fn snapshot(&mut self) -> Vec<GroupLag> {
        let t0 = Instant::now();
        let at = SystemTime::now();
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        self.generation += 1;
        match self.measure(t0, at, elapsed_ms) {
            Ok(samples) => samples,
            Err(why) => {
                let when = When {
                    at,
                    elapsed_ms,
                    took: t0.elapsed().as_millis() as u64,
                };
                self.groups
                    .iter()
                    .map(|g| when.missing(&g.group, why.clone()))
                    .collect()
            }
        }
    }

    fn measure(
        &mut self,
        t0: Instant,
        at: SystemTime,
        elapsed_ms: u64,
    ) -> Result<Vec<GroupLag>, String> {
        let timeout = self.settings.timeout;
        let (fetched, topic_problems, t_metadata) = self.fetch(t0)?;
        let (high, start) = (fetched.high?, fetched.start?);
        let stable = fetched.stable.transpose()?.unwrap_or_default();
        let resets = self.detect_resets(&high, &start);
        let t_offsets = t0.elapsed();
        let (plans, wanted) = self.plan_partitions(&fetched.committed, &high, &start, &stable);

        // 5. Read what is not cached yet.
        self.last_reads = wanted.values().map(Vec::len).sum();
        self.reader.stats = Default::default();
        if let Some(r) = &mut self.committed_reader {
            r.stats = Default::default();
        }
        if !wanted.is_empty() {
            self.read_timestamps(wanted, &start, t0 + timeout);
        }
        tracing::debug!(
            partitions = self.layout.all.len(),
            groups = self.groups.len(),
            reads = self.last_reads,
            seeks = self.reader.stats.seeks,
            widened = self.reader.stats.widened,
            eofs = self.reader.stats.eofs,
            assigned = self.reader.stats.assigned,
            rounds = self.reader.stats.rounds,
            metadata_ms = t_metadata.as_millis() as u64,
            offsets_ms = t_offsets.as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64,
            "lag snapshot"
        );

        let when = When {
            at,
            elapsed_ms,
            took: t0.elapsed().as_millis() as u64,
        };
        self.compacted.collect(Duration::ZERO);
        let mut out = self.assemble(&when, &fetched.committed, plans, &topic_problems);
        let answers = (&fetched.committed[..], &fetched.described[..]);
        self.annotate(&mut out, answers, &high, &resets);
        self.prune_cache(&start);
        Ok(out)
    }

    /// The reader's counters for the last snapshot (uncommitted and committed readers summed).
    pub fn read_stats(&self) -> super::reader::ReadStats {
        let mut s = self.reader.stats;
        if let Some(c) = &self.committed_reader {
            s.rounds += c.stats.rounds;
            s.seeks += c.stats.seeks;
            s.widened += c.stats.widened;
            s.eofs += c.stats.eofs;
            s.assigned += c.stats.assigned;
        }
        s
    }

    /// 1–3. Partitions (fresh each time: partitions get added, topics deleted), high watermarks,
    /// log starts and every group's committed offsets, all at once. The offsets are asked for the
    /// partitions of the previous snapshot; when the metadata shows the set changed, they are
    /// asked again for the new set. Also returns a problem per topic that is gone, and when the
    /// metadata came (since `t0`).
    fn fetch(&mut self, t0: Instant) -> Result<(Fetched, TopicProblems, Duration), String> {
        let topics: BTreeSet<String> = self
            .groups
            .iter()
            .flat_map(|g| g.topics.iter().cloned())
            .collect();
        let (metadata, fetched, described) = std::thread::scope(|s| {
            let metadata = s.spawn(|| self.metadata(&topics));
            let described = s.spawn(|| self.describe_groups());
            let fetched = (!self.layout.all.is_empty()).then(|| self.fetch_offsets(&self.layout));
            let metadata = metadata
                .join()
                .unwrap_or_else(|_| Err("metadata lookup failed".into()));
            let described = described.join().unwrap_or_default();
            (metadata, fetched, described)
        });
        let (partitions, topic_problems) = metadata?;
        let all: Vec<Key> = partitions
            .iter()
            .flat_map(|(t, ps)| {
                let name = intern(&mut self.names, t);
                ps.iter().map(move |p| (name.clone(), *p))
            })
            .collect();
        let t_metadata = t0.elapsed();
        let mut fetched = match fetched {
            Some(f) if all == self.layout.all => f,
            _ => {
                self.relayout(all);
                self.fetch_offsets(&self.layout)
            }
        };
        fetched.described = described;
        Ok((fetched, topic_problems, t_metadata))
    }

    /// 4. What each partition of each group needs, and the queries not answered yet.
    fn plan_partitions(
        &mut self,
        committed: &[Result<Vec<Option<i64>>, String>],
        high: &[Option<i64>],
        start: &[Option<i64>],
        stable: &[Option<i64>],
    ) -> (Vec<Vec<PartPlan>>, Wanted) {
        let generation = self.generation;
        let mut plans: Vec<Vec<PartPlan>> = Vec::new();
        let mut wanted = Wanted::new();
        let groups = self.groups.iter().zip(&self.layout.groups).zip(committed);
        for ((g, slots), committed) in groups {
            let Ok(committed) = committed else {
                plans.push(Vec::new());
                continue;
            };
            let mut group_plans = Vec::with_capacity(slots.len());
            for (&i, &c) in slots.iter().zip(committed) {
                let (Some(h), Some(l)) = (high[i], start[i]) else {
                    continue;
                };
                let last_stable = match g.isolation {
                    Isolation::ReadCommitted => match stable.get(i).copied().flatten() {
                        Some(lso) => Some(lso.min(h)),
                        None => continue,
                    },
                    Isolation::ReadUncommitted => None,
                };
                let offsets = Offsets {
                    committed: c,
                    log_start: l,
                    high_watermark: h,
                    last_stable,
                };
                let plan = lag::plan(offsets);
                let mut need = |query, isolation| {
                    if cached(&mut self.stamps[i], query, isolation, generation).is_none() {
                        wanted.entry((isolation, i)).or_default().push(query);
                    }
                };
                if let Some((end, reference)) = plan.records {
                    need(Query::Before(end), g.isolation);
                    need(Query::Before(reference), g.isolation);
                }
                if let Some(lso) = last_stable.filter(|&lso| lso < h) {
                    // An open transaction: its first record (only read_uncommitted sees it).
                    need(Query::From(lso), Isolation::ReadUncommitted);
                }
                group_plans.push((i, offsets, plan));
            }
            plans.push(group_plans);
        }
        (plans, wanted)
    }

    /// 6. Each group's sample from its partitions' plans and the answers now known.
    fn assemble(
        &mut self,
        when: &When,
        committed: &[Result<Vec<Option<i64>>, String>],
        plans: Vec<Vec<PartPlan>>,
        topic_problems: &TopicProblems,
    ) -> Vec<GroupLag> {
        let timeout = self.settings.timeout;
        let mut out = Vec::with_capacity(self.groups.len());
        for ((g, committed), group_plans) in self.groups.iter().zip(committed).zip(plans) {
            if let Err(why) = committed {
                out.push(when.missing(&g.group, why.clone()));
                continue;
            }
            let mut problems: Vec<String> = g
                .topics
                .iter()
                .filter_map(|t| topic_problems.get(t).cloned())
                .collect();
            let mut parts = Vec::with_capacity(group_plans.len());
            for (i, offsets, plan) in group_plans {
                let key = &self.layout.all[i];
                let stamps = &mut self.stamps[i];
                let mut part = partition_lag(
                    stamps,
                    key,
                    g.isolation,
                    offsets,
                    &plan,
                    when,
                    self.generation,
                );
                if self.compacted.topics.contains(&*key.0) {
                    compaction_note(&mut part, stamps, &plan, g.isolation, self.generation);
                }
                if part.lag_seconds.is_none() {
                    problems.push(format!(
                        "{}/{}: record timestamps not read within {}",
                        key.0,
                        key.1,
                        humantime::format_duration(timeout)
                    ));
                }
                parts.push(part);
            }
            let mut sample = GroupLag::from_partitions(
                &g.group,
                when.at,
                when.elapsed_ms,
                when.took,
                parts,
                problems,
            );
            sample.isolation = g.isolation;
            out.push(sample);
        }
        out
    }

    /// Offsets that went back since the last snapshot (the topic was deleted and re-created, or
    /// truncated): the partition's cached timestamps are wrong now, so they go. Returns a note
    /// per such partition.
    fn detect_resets(
        &mut self,
        high: &[Option<i64>],
        start: &[Option<i64>],
    ) -> Vec<(usize, String)> {
        let n = self.layout.all.len();
        self.seen.resize(n, None);
        let mut out = Vec::new();
        for i in 0..n {
            let (Some(h), Some(l)) = (high[i], start[i]) else {
                continue;
            };
            if let Some((l0, h0)) = self.seen[i].filter(|&(l0, h0)| h < h0 || l < l0) {
                self.stamps[i].clear();
                let (t, p) = &self.layout.all[i];
                out.push((
                    i,
                    format!(
                        "{t}/{p}: offsets went back (high watermark {h0} → {h}, log start {l0} → \
                         {l}): the topic was re-created or truncated"
                    ),
                ));
            }
            self.seen[i] = Some((l, h));
        }
        out
    }

    /// Every group's description, concurrently; none once the brokers proved not to answer.
    fn describe_groups(&self) -> Vec<Description> {
        if matches!(self.describing, Describing::Unsupported { .. }) {
            return self.groups.iter().map(|_| None).collect();
        }
        let timeout = self.settings.timeout;
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .groups
                .iter()
                .map(|g| s.spawn(move || group::describe(&self.meta, &g.group, timeout)))
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        })
    }

    /// Whether DescribeGroups works, from this snapshot's answers; the note to add once when
    /// it never did.
    fn update_describing(&mut self, described: &[Description]) -> Option<String> {
        let works = described.iter().any(|d| matches!(d, Some(Ok(_))));
        let failed = described.iter().find_map(|d| d.as_ref()?.as_ref().err());
        match (&mut self.describing, works, failed) {
            (Describing::Unknown, true, _) => self.describing = Describing::Works,
            (Describing::Unknown, false, Some(failure)) => {
                self.describing = Describing::after(failure.clone());
            }
            _ => {}
        }
        match &mut self.describing {
            Describing::Unsupported { why, said } if !*said => {
                *said = true;
                Some(format!(
                    "group state not read: the brokers do not answer DescribeGroups ({why}); \
                     samples carry no state or member count"
                ))
            }
            _ => None,
        }
    }

    /// Each group's state, rebalances, progress and the notes that go with them.
    fn annotate(
        &mut self,
        out: &mut [GroupLag],
        (committed, described): (&[Committed], &[Description]),
        high: &[Option<i64>],
        resets: &[(usize, String)],
    ) {
        let once = self.update_describing(described);
        let groups = self.groups.iter_mut().zip(&self.layout.groups);
        let answers = committed.iter().zip(described);
        for ((sample, (g, slots)), (committed, described)) in
            out.iter_mut().zip(groups).zip(answers)
        {
            sample.notes.extend(once.iter().cloned());
            let Ok(committed) = committed else { continue };
            let committed_any = committed.iter().any(Option::is_some);
            if let Some(Ok(d)) = described.as_ref().filter(|d| !group::unknown(d)) {
                let state = g.tracker.describe(d.clone(), committed_any);
                if state.manual_assignment {
                    sample.notes.push(group::MANUAL_NOTE.into());
                }
                sample.group_state = Some(state);
            } else if matches!(described, Some(Ok(_)))
                && !std::mem::replace(&mut g.tracker.said_unknown, true)
            {
                sample.notes.push(group::UNKNOWN_NOTE.into());
            }
            let commits: i64 = committed.iter().flatten().sum();
            let highs: i64 = slots.iter().filter_map(|&i| high[i]).sum();
            let lag = sample.lag_messages.unwrap_or(0);
            match g.tracker.progress(sample.at, commits, highs, lag) {
                Progress::Stalled(since) => {
                    sample.stalled_since = Some(since);
                    sample.notes.push(format!(
                        "stalled since {}: no commit since then while the high watermark grew",
                        humantime::format_rfc3339_seconds(since)
                    ));
                }
                Progress::Slow => sample.slow = true,
                Progress::Fine => {}
            }
            let mine = resets.iter().filter(|(i, _)| slots.contains(i));
            sample.notes.extend(mine.map(|(_, n)| n.clone()));
        }
    }

    /// A new partition set: keep the cached timestamps of the partitions that stay.
    fn relayout(&mut self, all: Vec<Key>) {
        let old = std::mem::take(&mut self.layout);
        let mut old_stamps = std::mem::take(&mut self.stamps);
        self.stamps = all
            .iter()
            .map(|k| {
                old.slot
                    .get(k)
                    .map(|&i| std::mem::take(&mut old_stamps[i]))
                    .unwrap_or_default()
            })
            .collect();
        let old_seen = std::mem::take(&mut self.seen);
        self.seen = all
            .iter()
            .map(|k| {
                old.slot
                    .get(k)
                    .and_then(|&i| old_seen.get(i).copied().flatten())
            })
            .collect();
        self.layout = Layout::new(all, &self.groups);
        let topics: BTreeSet<String> = self.layout.all.iter().map(|(t, _)| t.to_string()).collect();
        self.compacted.ask(topics, self.settings.timeout);
    }

    /// Partitions of each topic, and a problem for each topic that is gone.
    #[allow(clippy::type_complexity)]
    fn metadata(
        &self,
        topics: &BTreeSet<String>,
    ) -> Result<(BTreeMap<String, Vec<i32>>, BTreeMap<String, String>), String> {
        let mut partitions = BTreeMap::new();
        let mut problems = BTreeMap::new();
        for topic in topics {
            let md = self
                .meta
                .fetch_metadata(Some(topic), self.settings.timeout)
                .map_err(|e| format!("cannot reach Kafka at {}: {e}", self.settings.brokers))?;
            match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    partitions.insert(
                        topic.clone(),
                        t.partitions().iter().map(|p| p.id()).collect(),
                    );
                }
                Some(t) => {
                    let why = t
                        .error()
                        .map(|e| RDKafkaErrorCode::from(e).to_string())
                        .unwrap_or_else(|| "no partitions".into());
                    problems.insert(
                        topic.clone(),
                        format!("topic `{topic}` is gone or unavailable ({why})"),
                    );
                }
                None => {
                    problems.insert(topic.clone(), format!("topic `{topic}` is gone"));
                }
            }
        }
        Ok((partitions, problems))
    }

    /// High watermarks, log starts and every group's committed offsets, concurrently.
    fn fetch_offsets(&self, layout: &Layout) -> Fetched {
        let timeout = self.settings.timeout;
        let all = &layout.all;
        std::thread::scope(|s| {
            let high = s.spawn(|| list_offsets(&self.meta, &self.settings, all, Offset::End));
            let start =
                s.spawn(|| list_offsets(&self.meta, &self.settings, all, Offset::Beginning));
            let stable = self
                .meta_committed
                .as_ref()
                .map(|m| s.spawn(|| list_offsets(m, &self.settings, all, Offset::End)));
            let groups: Vec<_> = self
                .groups
                .iter()
                .zip(&layout.groups)
                .map(|(g, slots)| {
                    let keys: Vec<Key> = slots.iter().map(|&i| all[i].clone()).collect();
                    s.spawn(move || committed_offsets(&g.consumer, &keys, timeout))
                })
                .collect();
            let failed = "offset lookup failed";
            Fetched {
                high: high.join().unwrap_or_else(|_| Err(failed.into())),
                start: start.join().unwrap_or_else(|_| Err(failed.into())),
                stable: stable.map(|h| h.join().unwrap_or_else(|_| Err(failed.into()))),
                committed: groups
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(failed.into())))
                    .collect(),
                described: Vec::new(),
            }
        })
    }

    /// Ask each reader its queries (both at once), and cache the answers.
    fn read_timestamps(&mut self, wanted: Wanted, log_start: &[Option<i64>], deadline: Instant) {
        let all = &self.layout.all;
        let mut wants: BTreeMap<Isolation, Vec<Want>> = BTreeMap::new();
        for ((isolation, i), queries) in wanted {
            wants.entry(isolation).or_default().push(Want {
                slot: i,
                key: all[i].clone(),
                log_start: log_start[i].unwrap_or(0),
                queries,
            });
        }
        let uncommitted = wants
            .remove(&Isolation::ReadUncommitted)
            .unwrap_or_default();
        let committed = wants.remove(&Isolation::ReadCommitted).unwrap_or_default();
        let (reader, committed_reader) = (&mut self.reader, &mut self.committed_reader);
        let (a, b) = std::thread::scope(|s| {
            let b = committed_reader
                .as_mut()
                .filter(|_| !committed.is_empty())
                .map(|r| s.spawn(move || r.read(committed, deadline)));
            let a = reader.read(uncommitted, deadline);
            (a, b.and_then(|h| h.join().ok()).unwrap_or_default())
        });
        let generation = self.generation;
        let answers = a
            .into_iter()
            .map(|x| (Isolation::ReadUncommitted, x))
            .chain(b.into_iter().map(|x| (Isolation::ReadCommitted, x)));
        for (isolation, (i, query, found)) in answers {
            self.stamps[i].push(Stamp {
                query,
                isolation,
                found,
                generation,
            });
        }
    }

    /// Drop timestamps below the log start, and, past the cap, those not used lately.
    fn prune_cache(&mut self, log_start: &[Option<i64>]) {
        let recent = self.generation.saturating_sub(1);
        for (stamps, start) in self.stamps.iter_mut().zip(log_start) {
            if stamps.len() > CACHE_PER_PARTITION {
                stamps.retain(|s| {
                    s.generation >= recent && start.is_none_or(|l| s.query.offset() >= l)
                });
            }
        }
    }
}

/// Partitions per request: librdkafka matches each partition of a response against the request
/// list with a linear search, so one request for n partitions costs O(n²) CPU (0.6 s for 20
/// groups × 4096 partitions); requests of 256 partitions keep that linear in practice.
const CHUNK: usize = 128;

/// A partition list built in O(n) (`add_partition_offset` looks the entry up again: O(n²)).
fn partition_list<'a>(entries: impl Iterator<Item = (&'a str, i32, Offset)>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in entries {
        let _ = tpl.add_partition(topic, partition).set_offset(offset);
    }
    tpl
}

/// Offsets for every partition at `which` (End: high watermark, or the last stable offset for a
/// read_committed client; Beginning: log start).
fn list_offsets(
    meta: &BaseConsumer,
    settings: &KafkaSettings,
    keys: &[Key],
    which: Offset,
) -> Result<Vec<Option<i64>>, String> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let tpl = partition_list(chunk.iter().map(|(t, p)| (&**t, *p, which)));
        let result = meta
            .offsets_for_times(tpl, settings.timeout)
            .map_err(|e| format!("cannot list offsets on {}: {e}", settings.brokers))?;
        out.extend(in_order(chunk, &result, |e| {
            match (e.offset(), e.error()) {
                (Offset::Offset(o), Ok(())) => Some(o),
                _ => None,
            }
        }));
    }
    Ok(out)
}

/// Read a result list that librdkafka filled in place, in the order of `keys`, in O(n); falls
/// back to lookups if the order is not the one sent.
fn in_order<T>(
    keys: &[Key],
    result: &TopicPartitionList,
    value: impl Fn(&rdkafka::topic_partition_list::TopicPartitionListElem<'_>) -> Option<T>,
) -> Vec<Option<T>> {
    let elements = result.elements();
    let same_order = elements.len() == keys.len()
        && elements
            .iter()
            .zip(keys)
            .all(|(e, (t, p))| e.partition() == *p && e.topic() == &**t);
    if same_order {
        return elements.iter().map(&value).collect();
    }
    keys.iter()
        .map(|(t, p)| result.find_partition(t, *p).and_then(|e| value(&e)))
        .collect()
}

/// A client config with `group.id` that never commits nor stores offsets.
fn without_commits(base: &ClientConfig, group: &str) -> ClientConfig {
    let mut cfg = base.clone();
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    cfg
}

/// A client config reading with this isolation level (librdkafka's default is read_committed;
/// it also sends it in ListOffsets, which then returns the last stable offset for End).
fn isolated(cfg: &ClientConfig, isolation: Isolation) -> ClientConfig {
    let mut cfg = cfg.clone();
    cfg.set("isolation.level", isolation.name());
    cfg
}

/// The timestamp reader's config: reads from the earliest record, prefetches little, and says
/// when it reaches a partition's end (so a window holding only markers is never waited for).
fn reader_config(meta_cfg: &ClientConfig) -> ClientConfig {
    let mut cfg = meta_cfg.clone();
    cfg.set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.error.backoff.ms", "50")
        // Prefetch little (memory stays bounded with thousands of partitions), and never
        // back off for long once the queue thresholds are reached: librdkafka's default
        // fetch.queue.backoff.ms is 1 s, which is a 1 s stall for the next wanted record.
        .set("queued.min.messages", "100")
        .set("queued.max.messages.kbytes", "2048")
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.message.max.bytes", "8192");
    cfg
}

fn create(cfg: &ClientConfig) -> Result<BaseConsumer, ProbeError> {
    cfg.create().map_err(|e| ProbeError::Client(Box::new(e)))
}

/// The topics of the cluster and their partition counts; fails when the brokers do not answer.
fn existing_topics(
    meta: &BaseConsumer,
    settings: &KafkaSettings,
) -> Result<BTreeMap<String, usize>, ProbeError> {
    let metadata = meta
        .fetch_metadata(None, settings.timeout)
        .map_err(|source| ProbeError::Unreachable {
            brokers: settings.brokers.clone(),
            timeout: humantime::format_duration(settings.timeout).to_string(),
            source: Box::new(source),
        })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

/// One group's consumer and topics: those given (they must exist), or else those it committed on.
fn group_probe(
    base: &ClientConfig,
    spec: &GroupSpec,
    existing: &BTreeMap<String, usize>,
    settings: &KafkaSettings,
) -> Result<GroupProbe, ProbeError> {
    if let Some(topic) = spec.topics.iter().find(|t| !existing.contains_key(*t)) {
        return Err(ProbeError::UnknownTopic {
            topic: topic.clone(),
            brokers: settings.brokers.clone(),
        });
    }
    let consumer = create(&without_commits(base, &spec.group))?;
    let topics = if spec.topics.is_empty() {
        let found = committed_topics(&consumer, existing, settings.timeout).map_err(|why| {
            ProbeError::Committed {
                group: spec.group.clone(),
                brokers: settings.brokers.clone(),
                why,
            }
        })?;
        if found.is_empty() {
            return Err(ProbeError::NoTopics {
                group: spec.group.clone(),
                brokers: settings.brokers.clone(),
            });
        }
        found
    } else {
        spec.topics.clone()
    };
    Ok(GroupProbe {
        group: spec.group.clone(),
        topics,
        isolation: spec.isolation,
        consumer,
        tracker: Tracker::default(),
    })
}

/// Whether the brokers answer DescribeGroups, asked once at connect with a short timeout so
/// that connecting does not wait on it. Only brokers that do not implement the request (the
/// librdkafka mock cluster answers at once that it is unsupported) are never asked again; a
/// timeout on a busy cluster leaves it to the next snapshot, which asks with the full timeout.
fn first_describe(meta: &BaseConsumer, groups: &[GroupProbe], timeout: Duration) -> Describing {
    let Some(g) = groups.first() else {
        return Describing::Unknown;
    };
    match group::describe(meta, &g.group, timeout.min(DESCRIBE_CHECK)) {
        Ok(_) => Describing::Works,
        Err(failure) => Describing::after(failure),
    }
}

/// How long the first DescribeGroups may take before the brokers count as not answering it.
const DESCRIBE_CHECK: Duration = Duration::from_secs(2);

/// Find every group's coordinator now, all at once, so the first snapshot (the start of the
/// baseline) does not wait for it.
fn find_coordinators(groups: &[GroupProbe], timeout: Duration) {
    std::thread::scope(|s| {
        for g in groups {
            let first: Vec<Key> = g
                .topics
                .first()
                .map(|t| (Arc::from(t.as_str()), 0))
                .into_iter()
                .collect();
            s.spawn(move || committed_offsets(&g.consumer, &first, timeout));
        }
    });
}

/// One partition of a sample, from its plan and the cached answers; `lag_seconds` is `None`
/// when the records it needs were not read in time.
fn partition_lag(
    stamps: &mut [Stamp],
    key: &Key,
    isolation: Isolation,
    offsets: Offsets,
    plan: &lag::Plan,
    when: &When,
    generation: u64,
) -> PartitionLag {
    let finished = match plan.records {
        None => Some(lag::finish(plan, Found::Nothing, Found::Nothing)),
        Some((end, reference)) => {
            let newest = cached(stamps, Query::Before(end), isolation, generation);
            let from = cached(stamps, Query::Before(reference), isolation, generation);
            match (newest, from) {
                (Some(n), Some(r)) => Some(lag::finish(plan, n, r)),
                // Only markers unread: the reference is not needed.
                (Some(n), None) if !matches!(n, Found::Below(n) if n.offset >= reference) => {
                    Some(lag::finish(plan, n, Found::Nothing))
                }
                _ => None,
            }
        }
    };
    let open_transaction = offsets
        .last_stable
        .filter(|&lso| lso < offsets.high_watermark)
        .map(|lso| {
            let first = cached(
                stamps,
                Query::From(lso),
                Isolation::ReadUncommitted,
                generation,
            );
            let at_ms = when
                .at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            OpenTransaction {
                first_offset: lso,
                held_back: offsets.high_watermark - lso,
                age_s: match first {
                    Some(Found::After(r) | Found::Below(r)) => Some(lag::seconds(at_ms, r.ms)),
                    _ => None,
                },
            }
        });
    PartitionLag {
        topic: key.0.to_string(),
        partition: key.1,
        committed: offsets.committed,
        high_watermark: offsets.high_watermark,
        log_start: offsets.log_start,
        lag_messages: finished.map_or(plan.lag_messages, |f| f.lag_messages),
        lag_seconds: finished.map(|f| f.lag_seconds),
        timestamp_type: finished.and_then(|f| f.kind),
        note: finished.map_or(plan.note, |f| f.note),
        last_stable_offset: offsets.last_stable,
        open_transaction,
        lost_messages: PartitionLag::lost(offsets.committed, offsets.log_start),
    }
}

/// On a compacted topic, a reference record found below C−1 means the cleaner removed C−1: the
/// lag in seconds was timed from an older record, an upper bound.
fn compaction_note(
    part: &mut PartitionLag,
    stamps: &mut [Stamp],
    plan: &lag::Plan,
    isolation: Isolation,
    generation: u64,
) {
    let Some((_, reference)) = plan.records else {
        return;
    };
    if part.note.is_some() || part.lag_seconds.is_none() {
        return;
    }
    let found = cached(stamps, Query::Before(reference), isolation, generation);
    if matches!(found, Some(Found::Below(r)) if r.offset < reference - 1) {
        part.note = Some(Note::ReferenceCompacted);
    }
}

/// The cached answer to `query`, marked as used in this generation. "Nothing" holds only for
/// the snapshot it was read in: records may come after it.
fn cached(
    stamps: &mut [Stamp],
    query: Query,
    isolation: Isolation,
    generation: u64,
) -> Option<Found> {
    let s = stamps.iter_mut().find(|s| {
        s.query == query
            && s.isolation == isolation
            && (s.found != Found::Nothing || s.generation == generation)
    })?;
    s.generation = generation;
    Some(s.found)
}

fn intern(names: &mut HashMap<String, Arc<str>>, topic: &str) -> Arc<str> {
    if let Some(n) = names.get(topic) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(topic);
    names.insert(topic.to_owned(), n.clone());
    n
}

/// Committed offsets of a group for an explicit list of partitions (a lookup without a list
/// returns nothing). `None` where the group has no commit.
fn committed_offsets(
    consumer: &BaseConsumer,
    keys: &[Key],
    timeout: Duration,
) -> Result<Vec<Option<i64>>, String> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let tpl = partition_list(chunk.iter().map(|(t, p)| (&**t, *p, Offset::Invalid)));
        let result = consumer
            .committed_offsets(tpl, timeout)
            .map_err(|e| format!("cannot read committed offsets: {e}"))?;
        out.extend(in_order(chunk, &result, |e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        }));
    }
    Ok(out)
}

/// Topics on which the group has at least one committed offset.
fn committed_topics(
    consumer: &BaseConsumer,
    existing: &BTreeMap<String, usize>,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let keys: Vec<Key> = existing
        .iter()
        .filter(|(t, _)| !t.starts_with("__"))
        .flat_map(|(t, n)| {
            let name: Arc<str> = Arc::from(t.as_str());
            (0..*n as i32).map(move |p| (name.clone(), p))
        })
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let committed = committed_offsets(consumer, &keys, timeout)?;
    let topics: BTreeSet<String> = keys
        .iter()
        .zip(committed)
        .filter(|(_, c)| c.is_some())
        .map(|((t, _), _)| t.to_string())
        .collect();
    Ok(topics.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(unsupported: bool) -> group::Failure {
        group::Failure {
            why: "Local: Timed out".into(),
            unsupported,
        }
    }

    #[test]
    fn only_brokers_without_describe_groups_are_never_asked_again() {
        // A timeout on a busy cluster: the next snapshot asks again.
        assert!(matches!(
            Describing::after(failure(false)),
            Describing::Unknown
        ));
        assert!(matches!(
            Describing::after(failure(true)),
            Describing::Unsupported { said: false, .. }
        ));
    }
}
