//! The timestamp reader: finds the data records lag in seconds is timed from.
//!
//! A consumer never receives control records (transaction markers), nor, reading
//! read_committed, aborted records; its position moves past them. So "the newest data record
//! below E" is found by reading from a little before E and keeping the last record returned
//! below E; the search is over when a record at or after E arrives, or the partition's end (EOF)
//! is reached. A window that holds no data record is widened backwards (×4 each time) down to the
//! log start. The end of a window is never waited for: EOF says it was reached.
//!
//! Cost: a data record right below E answers at once (no extra fetch). When E−1 is a marker, the
//! first window (two offsets) usually holds the data record before it, and the answer comes with
//! the next record or the EOF of the same or the next fetch: one extra fetch response, no seek.
//! Each widening is one seek and one fetch.
//!
//! A round keeps at most [`WINDOW`] partitions assigned: each answered partition is unassigned
//! and a waiting one assigned in its place (see [`WINDOW`] for why).
//!
//! librdkafka's EOF event names the partition but not the topic (rdkafka's `PartitionEOF(i32)`),
//! so one round assigns at most one partition per partition number; reads of several topics run
//! as several rounds, one after the other.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use super::lag::{Found, Record, TimestampKind};

pub type Key = (Arc<str>, i32);

/// What to find on a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// The newest data record below this offset (none down to the log start: the first one at
    /// or after it).
    Before(i64),
    /// The first data record at or after this offset.
    From(i64),
}

impl Query {
    pub fn offset(self) -> i64 {
        match self {
            Query::Before(o) | Query::From(o) => o,
        }
    }

    fn order(self) -> (i64, u8) {
        match self {
            Query::Before(o) => (o, 0),
            Query::From(o) => (o, 1),
        }
    }
}

/// One partition's queries.
pub struct Want {
    /// The caller's index of the partition, returned with the answers.
    pub slot: usize,
    pub key: Key,
    pub log_start: i64,
    pub queries: Vec<Query>,
}

/// Answers, as `(slot, query, found)`; queries not answered by the deadline are left out.
pub type Answers = Vec<(usize, Query, Found)>;

/// The first window below an offset: two offsets, so a commit marker at E−1 costs no seek.
const FIRST_WINDOW: i64 = 2;
/// A query this close after the current position is reached by reading on, not by seeking.
const READ_ON: i64 = 32;
/// Partitions assigned at once. What a read costs grows faster than the partitions assigned
/// together (measured on tansu under load: the last two records of 30 partitions in 16 ms, of
/// 300 partitions in 1–5 s, some not within 5 s), and an answered partition left assigned is
/// fetched on for nothing. So a round reads through a window: an answered partition is
/// unassigned and the next waiting one assigned in its place.
const WINDOW: usize = 32;
/// Answered partitions are swapped for waiting ones this many at a time (one unassign and one
/// assign call each), or when every assigned partition is answered.
const REFILL: usize = 8;

/// The reader's counters for the last read (for the snapshot's debug line and the tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub rounds: usize,
    /// Seeks after the first assignment (windows widened or queries far apart).
    pub seeks: usize,
    /// Windows widened because they held no data record.
    pub widened: usize,
    /// Partition EOFs that ended a search.
    pub eofs: usize,
    /// Partitions assigned (each once per round).
    pub assigned: usize,
}

pub struct Reader {
    consumer: BaseConsumer,
    pub stats: ReadStats,
}

impl Reader {
    pub fn new(consumer: BaseConsumer) -> Reader {
        Reader {
            consumer,
            stats: ReadStats::default(),
        }
    }

    /// Connect now, so the first read does not wait for the first metadata.
    pub fn warm_up(&self, timeout: Duration) {
        let _ = self.consumer.fetch_metadata(None, timeout);
    }

    /// Answer every query that can be answered before the deadline.
    pub fn read(&mut self, wants: Vec<Want>, deadline: Instant) -> Answers {
        self.stats = ReadStats::default();
        let mut out = Vec::new();
        for round in rounds(wants) {
            let mut tasks: Vec<Task> = round.into_iter().map(Task::new).collect();
            self.stats.rounds += 1;
            self.read_round(&mut tasks, deadline);
            for t in tasks {
                out.extend(t.found.into_iter().map(|(q, f)| (t.slot, q, f)));
            }
        }
        out
    }

    fn read_round(&mut self, tasks: &mut [Task], deadline: Instant) {
        let (mut window, index) = Window::new(tasks);
        let Index {
            by_topic,
            by_partition,
            mut open,
        } = index;
        if open == 0 {
            return;
        }
        self.refill(&mut window, tasks);
        while open > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let (i, step) = match self.consumer.poll(deadline - now) {
                Some(Ok(msg)) => {
                    let Some(&i) = by_topic
                        .get(msg.topic())
                        .and_then(|p| p.get(&msg.partition()))
                    else {
                        continue;
                    };
                    (
                        i,
                        tasks[i].on_record(record_of(msg.offset(), msg.timestamp())),
                    )
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let Some(&i) = by_partition.get(&p) else {
                        continue;
                    };
                    (i, tasks[i].on_end(&mut self.stats))
                }
                Some(Err(_)) | None => continue,
            };
            match step {
                Step::Wait => {}
                Step::Done => {
                    open -= 1;
                    window.done.push(i);
                    if window.done.len() >= REFILL || window.done.len() == window.active {
                        self.refill(&mut window, tasks);
                    }
                }
                Step::Seek(at, widened) => {
                    self.stats.seeks += 1;
                    self.stats.widened += usize::from(widened);
                    self.seek(&tasks[i].key, at);
                }
            }
        }
        // Every partition still assigned, answered or not, is unassigned.
        window.done.clear();
        window.done.extend(window.assigned.drain());
        window.pending.clear();
        self.refill(&mut window, tasks);
    }

    /// Unassign the partitions answered since the last call and assign as many waiting ones,
    /// so that at most [`WINDOW`] partitions are assigned (and fetched) at a time.
    fn refill(&mut self, window: &mut Window, tasks: &[Task]) {
        if !window.done.is_empty() {
            let done = partition_list(window.done.drain(..).map(|i| {
                window.assigned.remove(&i);
                (&tasks[i].key, Offset::Invalid)
            }));
            if let Err(e) = self.consumer.incremental_unassign(&done) {
                tracing::warn!(error = %e, "cannot unassign the timestamp reader");
            }
        }
        let room = WINDOW.saturating_sub(window.assigned.len());
        let next: Vec<(usize, i64)> = window
            .pending
            .drain(..room.min(window.pending.len()))
            .collect();
        window.active = window.assigned.len() + next.len();
        if next.is_empty() {
            return;
        }
        window.assigned.extend(next.iter().map(|&(i, _)| i));
        self.stats.assigned += next.len();
        let start = partition_list(
            next.iter()
                .map(|&(i, at)| (&tasks[i].key, Offset::Offset(at))),
        );
        // Only the partitions being read are assigned, and only while they are read: an
        // assigned partition is fetched continuously.
        if let Err(e) = self.consumer.incremental_assign(&start) {
            tracing::warn!(error = %e, "cannot assign the timestamp reader");
        }
    }

    fn seek(&self, key: &Key, at: i64) {
        let mut tpl = TopicPartitionList::new();
        let _ = tpl
            .add_partition(&key.0, key.1)
            .set_offset(Offset::Offset(at));
        // Asynchronous (timeout 0): the records arrive through poll. librdkafka drops records
        // fetched before the seek (its version barrier), so none of them reaches a new window.
        if let Err(e) = self.consumer.seek_partitions(tpl, Duration::ZERO) {
            tracing::debug!(error = %e, "seek failed");
        }
    }
}

/// Where a round's records and EOFs go: task by (topic, partition), and by partition alone.
struct Index {
    by_topic: HashMap<Arc<str>, HashMap<i32, usize>>,
    by_partition: HashMap<i32, usize>,
    open: usize,
}

/// The partitions of a round: those waiting to be assigned (at their first query's window),
/// those assigned, and those answered but still assigned.
struct Window {
    pending: VecDeque<(usize, i64)>,
    assigned: HashSet<usize>,
    done: Vec<usize>,
    /// Partitions assigned and not answered.
    active: usize,
}

impl Window {
    /// The round's partitions, all waiting, and where their records and EOFs go.
    fn new(tasks: &mut [Task]) -> (Window, Index) {
        let mut index = Index {
            by_topic: HashMap::new(),
            by_partition: HashMap::new(),
            open: 0,
        };
        let mut pending = VecDeque::new();
        for (i, t) in tasks.iter_mut().enumerate() {
            let Some(at) = t.begin() else { continue };
            pending.push_back((i, at));
            index
                .by_topic
                .entry(t.key.0.clone())
                .or_default()
                .insert(t.key.1, i);
            index.by_partition.insert(t.key.1, i);
            index.open += 1;
        }
        let window = Window {
            pending,
            assigned: HashSet::new(),
            done: Vec::new(),
            active: 0,
        };
        (window, index)
    }
}

/// A partition list built in O(n).
fn partition_list<'a>(entries: impl Iterator<Item = (&'a Key, Offset)>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (key, offset) in entries {
        let _ = tpl.add_partition(&key.0, key.1).set_offset(offset);
    }
    tpl
}

/// Split the wants so that no round holds the same partition number twice.
fn rounds(wants: Vec<Want>) -> Vec<Vec<Want>> {
    let mut rounds: Vec<(HashSet<i32>, Vec<Want>)> = Vec::new();
    for w in wants {
        if w.queries.is_empty() {
            continue;
        }
        match rounds.iter_mut().find(|(used, _)| !used.contains(&w.key.1)) {
            Some((used, list)) => {
                used.insert(w.key.1);
                list.push(w);
            }
            None => rounds.push(([w.key.1].into(), vec![w])),
        }
    }
    rounds.into_iter().map(|(_, list)| list).collect()
}

/// A record's timestamp in ms and its type. CreateTime is the producer's clock, LogAppendTime
/// the broker's; lag in seconds is the same difference either way.
pub fn record_of(offset: i64, ts: Timestamp) -> Record {
    let (ms, kind) = match ts {
        Timestamp::CreateTime(ms) => (ms, Some(TimestampKind::CreateTime)),
        Timestamp::LogAppendTime(ms) => (ms, Some(TimestampKind::LogAppendTime)),
        Timestamp::NotAvailable => (0, None),
    };
    Record { offset, ms, kind }
}

/// What the read loop does next for a partition.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Wait,
    /// Seek to this offset (true: a window was widened).
    Seek(i64, bool),
    /// Every query of the partition is answered.
    Done,
}

/// The current search of a partition: the newest data record in `[start, end)`.
#[derive(Debug, Default)]
struct Search {
    start: i64,
    end: i64,
    width: i64,
    best: Option<Record>,
    /// The lowest offset the window may widen to, and the data record known right below it
    /// (nothing in between).
    floor: i64,
    below: Option<Record>,
}

struct Task {
    slot: usize,
    key: Key,
    log_start: i64,
    queries: VecDeque<Query>,
    s: Search,
    found: Vec<(Query, Found)>,
}

impl Task {
    fn new(w: Want) -> Task {
        let mut queries = w.queries;
        queries.sort_by_key(|q| q.order());
        queries.dedup();
        Task {
            slot: w.slot,
            key: w.key,
            log_start: w.log_start,
            queries: queries.into(),
            s: Search::default(),
            found: Vec::new(),
        }
    }

    /// Where to start reading for the first query.
    fn begin(&mut self) -> Option<i64> {
        let q = *self.queries.front()?;
        Some(self.fresh(q, self.log_start, None))
    }

    /// A new search for `q` that may widen down to `floor`; returns where it reads from.
    fn fresh(&mut self, q: Query, floor: i64, below: Option<Record>) -> i64 {
        self.s = match q {
            Query::Before(e) => Search {
                start: (e - FIRST_WINDOW).max(floor),
                end: e,
                width: FIRST_WINDOW,
                best: None,
                floor,
                below,
            },
            // The first record at or after `s` answers: an empty window at the floor.
            Query::From(s) => {
                let s = s.max(floor);
                Search {
                    start: s,
                    end: s,
                    width: 0,
                    best: None,
                    floor: s,
                    below: None,
                }
            }
        };
        self.s.start
    }

    fn on_record(&mut self, r: Record) -> Step {
        if self.queries.is_empty() || r.offset < self.s.start {
            return Step::Wait;
        }
        let s = &mut self.s;
        if r.offset < s.end {
            s.best = Some(r);
            if r.offset == s.end - 1 {
                return self.answer(Found::Below(r), Some(r));
            }
            return Step::Wait;
        }
        // Past the window's end: its newest data record, if it held one, is known.
        if let Some(b) = s.best {
            return self.answer(Found::Below(b), Some(r));
        }
        if s.start <= s.floor {
            let found = s.below.map_or(Found::After(r), Found::Below);
            return self.answer(found, Some(r));
        }
        Step::Seek(self.widen(), true)
    }

    /// The partition's end was reached (EOF): nothing more will come.
    fn on_end(&mut self, stats: &mut ReadStats) -> Step {
        if self.queries.is_empty() {
            return Step::Wait;
        }
        stats.eofs += 1;
        let s = &self.s;
        if let Some(b) = s.best {
            return self.answer(Found::Below(b), None);
        }
        if s.start <= s.floor {
            let found = s.below.map_or(Found::Nothing, Found::Below);
            return self.answer(found, None);
        }
        Step::Seek(self.widen(), true)
    }

    /// The window held no data record: search the four times wider one below it.
    fn widen(&mut self) -> i64 {
        let s = &mut self.s;
        s.end = s.start;
        s.width *= 4;
        s.start = (s.end - s.width).max(s.floor);
        s.best = None;
        s.start
    }

    /// Record the answer to the current query and go on with the next. `last` is the record
    /// that ended the search (`None`: the partition's end): the newest data record below its
    /// offset + 1, so later queries continue from it.
    fn answer(&mut self, mut found: Found, last: Option<Record>) -> Step {
        loop {
            let Some(q) = self.queries.pop_front() else {
                return Step::Done;
            };
            self.found.push((q, found));
            let Some(&next) = self.queries.front() else {
                return Step::Done;
            };
            let Some(r) = last else {
                // Everything up to the end was read: the same answer for every later Before;
                // no data record after the previous answer for a From.
                found = match next {
                    Query::Before(_) => found,
                    Query::From(_) => Found::Nothing,
                };
                continue;
            };
            if r.offset >= next.offset() {
                // `r` is also past the next query: nothing between the two answers.
                found = match (next, found) {
                    (Query::From(_), _) => Found::After(r),
                    (Query::Before(_), f) => f,
                };
                continue;
            }
            let from = r.offset + 1;
            let at = self.fresh(next, from, Some(r));
            if next == Query::Before(from) {
                found = Found::Below(r);
                continue;
            }
            if at - from <= READ_ON {
                // Close enough: read on (no seek). A window then starts right after `r`.
                if let Query::Before(_) = next {
                    self.s.start = from;
                }
                return Step::Wait;
            }
            return Step::Seek(at, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: i64) -> Record {
        Record {
            offset,
            ms: offset * 10,
            kind: None,
        }
    }

    fn task(log_start: i64, queries: &[Query]) -> Task {
        let mut t = Task::new(Want {
            slot: 0,
            key: (Arc::from("t"), 0),
            log_start,
            queries: queries.to_vec(),
        });
        t.begin();
        t
    }

    #[test]
    fn a_record_right_below_the_end_answers_at_once() {
        let mut t = task(0, &[Query::Before(10)]);
        assert_eq!(t.s.start, 8);
        assert_eq!(t.on_record(rec(8)), Step::Wait);
        assert_eq!(t.on_record(rec(9)), Step::Done);
        assert_eq!(t.found, [(Query::Before(10), Found::Below(rec(9)))]);
    }

    #[test]
    fn a_marker_at_the_end_is_answered_by_the_eof() {
        // Offset 9 is a commit marker: the reader returns 8, then the partition's end.
        let mut t = task(0, &[Query::Before(10)]);
        let mut stats = ReadStats::default();
        assert_eq!(t.on_record(rec(8)), Step::Wait);
        assert_eq!(t.on_end(&mut stats), Step::Done);
        assert_eq!(t.found, [(Query::Before(10), Found::Below(rec(8)))]);
    }

    #[test]
    fn an_empty_window_widens_backwards_down_to_the_log_start() {
        // Offsets 3..10 are aborted records and markers; 2 is the newest data record.
        let mut t = task(0, &[Query::Before(10)]);
        let mut stats = ReadStats::default();
        assert_eq!(t.on_end(&mut stats), Step::Seek(0, true));
        assert_eq!((t.s.start, t.s.end), (0, 8));
        assert_eq!(t.on_record(rec(1)), Step::Wait);
        assert_eq!(t.on_record(rec(2)), Step::Wait);
        assert_eq!(t.on_end(&mut stats), Step::Done);
        assert_eq!(t.found, [(Query::Before(10), Found::Below(rec(2)))]);
        // Nothing at all: no data record in the partition.
        let mut t = task(5, &[Query::Before(7)]);
        assert_eq!(t.on_end(&mut stats), Step::Done);
        assert_eq!(t.found, [(Query::Before(7), Found::Nothing)]);
    }

    #[test]
    fn nothing_below_the_reference_answers_with_the_first_record_after_it() {
        let mut t = task(4, &[Query::Before(4), Query::Before(9)]);
        assert_eq!(t.s.start, 4);
        assert_eq!(t.on_record(rec(6)), Step::Wait);
        assert_eq!(t.found, [(Query::Before(4), Found::After(rec(6)))]);
        assert_eq!(t.on_record(rec(8)), Step::Done);
        assert_eq!(t.found[1], (Query::Before(9), Found::Below(rec(8))));
    }

    #[test]
    fn one_pass_answers_the_committed_and_the_end_queries() {
        // C = 5 (offset 4 a marker), H = 8 (offset 7 a marker), records 3, 5, 6.
        let mut t = task(0, &[Query::Before(8), Query::Before(5)]);
        let mut stats = ReadStats::default();
        assert_eq!(t.s.start, 3);
        assert_eq!(t.on_record(rec(3)), Step::Wait);
        assert_eq!(t.on_record(rec(5)), Step::Wait);
        assert_eq!(t.on_record(rec(6)), Step::Wait);
        assert_eq!(t.on_end(&mut stats), Step::Done);
        assert_eq!(
            t.found,
            [
                (Query::Before(5), Found::Below(rec(3))),
                (Query::Before(8), Found::Below(rec(6)))
            ]
        );
        // The unread offsets are markers only: both answers are the same record.
        let mut t = task(0, &[Query::Before(8), Query::Before(6)]);
        assert_eq!(t.on_record(rec(5)), Step::Wait);
        assert_eq!(t.on_end(&mut stats), Step::Done);
        assert_eq!(t.found[1], (Query::Before(8), Found::Below(rec(5))));
    }

    #[test]
    fn far_apart_queries_seek_and_a_from_query_takes_the_first_record() {
        let mut t = task(
            0,
            &[Query::Before(10), Query::Before(100), Query::From(100)],
        );
        assert_eq!(t.on_record(rec(9)), Step::Seek(98, false));
        assert_eq!(t.on_record(rec(99)), Step::Wait);
        assert_eq!(t.found.len(), 2);
        assert_eq!(t.on_record(rec(102)), Step::Done);
        assert_eq!(t.found[2], (Query::From(100), Found::After(rec(102))));
    }

    #[test]
    fn rounds_never_hold_one_partition_number_twice() {
        let w = |t: &str, p| Want {
            slot: 0,
            key: (Arc::from(t), p),
            log_start: 0,
            queries: vec![Query::Before(1)],
        };
        let r = rounds(vec![w("a", 0), w("a", 1), w("b", 0), w("b", 2)]);
        let shape: Vec<Vec<(String, i32)>> = r
            .iter()
            .map(|l| l.iter().map(|w| (w.key.0.to_string(), w.key.1)).collect())
            .collect();
        assert_eq!(
            shape,
            [
                vec![("a".into(), 0), ("a".into(), 1), ("b".into(), 2)],
                vec![("b".into(), 0)]
            ]
        );
    }
}
