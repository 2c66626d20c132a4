//! Lag: the one definition (DESIGN.md), as pure functions over offsets and record timestamps.
//!
//! Per partition, with committed offset C (the next record the group reads), log start L and high
//! watermark H:
//! - lag in messages = max(H − C, 0); with no commit, C counts as L (and the sample says so);
//! - lag in seconds = 0 if C ≥ H, else timestamp(H−1) − timestamp(C−1). Where C−1 is gone (C is 0,
//!   or retention deleted it) the reference is the first record still there, max(C, L), and the
//!   sample says so.
//!
//! Only data records count: transaction markers (control records) occupy offsets that no consumer
//! ever receives, and a read_committed consumer never receives aborted records either. So
//! "record H−1" is the newest data record below H, "record C−1" the newest data record below C,
//! and a partition whose unread offsets hold no data record has no lag at all. For a group read
//! with `isolation: read_committed`, H is the last stable offset.

use std::time::SystemTime;

use serde::Serialize;

pub use super::group::GroupState;
pub use crate::plan::Isolation;

/// Why a partition's lag was measured in a non-standard way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Note {
    /// The group has no commit for this partition: lag is counted from the log start.
    NoCommit,
    /// The committed offset is below the log start (retention deleted those records): lag in
    /// seconds is measured from the first record still there.
    CommitBelowLogStart,
    /// C−1 does not exist (C is 0 or equals the log start): timestamp(C) stood in for it.
    ReferenceIsCommittedRecord,
    /// The unread offsets hold only transaction markers (or, for read_committed, aborted
    /// records): no consumer will ever receive a record there, so the lag is 0.
    OnlyMarkersUnread,
    /// A compacted topic's cleaner removed the record before the committed offset: lag in
    /// seconds is timed from the nearest earlier record, so it is an upper bound (at most this).
    ReferenceCompacted,
    /// The committed offset is above the high watermark: the topic was re-created or truncated
    /// since the group committed. No lag is counted (never negative).
    CommitAboveHighWatermark,
}

impl Note {
    pub fn describe(self) -> &'static str {
        match self {
            Note::NoCommit => "no commit yet: lag counted from the log start",
            Note::CommitBelowLogStart => {
                "committed offset below the log start (deleted by retention): measured from the first record"
            }
            Note::ReferenceIsCommittedRecord => {
                "the record before the committed offset is gone: measured from the committed record"
            }
            Note::OnlyMarkersUnread => {
                "the unread offsets are transaction markers or aborted records only: no lag"
            }
            Note::ReferenceCompacted => {
                "the record before the committed offset was compacted away: timed from the nearest \
                 earlier record, so the lag in seconds is an upper bound"
            }
            Note::CommitAboveHighWatermark => {
                "committed offset above the high watermark (topic re-created or truncated): no lag counted"
            }
        }
    }
}

/// Offsets of one partition as read from the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub committed: Option<i64>,
    pub log_start: i64,
    pub high_watermark: i64,
    /// For a read_committed group: the last stable offset, the end it reads to (H for it).
    pub last_stable: Option<i64>,
}

impl Offsets {
    /// The end the group reads to: the last stable offset for read_committed, else H.
    pub fn end(&self) -> i64 {
        self.last_stable.unwrap_or(self.high_watermark)
    }
}

/// What must be known about records to finish one partition's lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Offsets between C and H; [`finish`] makes it 0 when none of them holds a data record.
    pub lag_messages: i64,
    /// `(end, reference)`: lag in seconds is timestamp(newest data record below `end`) −
    /// timestamp(newest data record below `reference`, or, when there is none, the first one
    /// at or after it); `None` when lag in seconds is 0 without reading anything.
    pub records: Option<(i64, i64)>,
    pub note: Option<Note>,
}

/// A data record the timestamp reader found: its offset and timestamp (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub ms: i64,
    pub kind: Option<TimestampKind>,
}

/// What the reader found for "the newest data record below offset E".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// The newest data record below E.
    Below(Record),
    /// No data record below E (down to the log start): the first data record at or after E.
    After(Record),
    /// No data record at all from the log start to the end of the partition.
    Nothing,
}

/// Step one: from offsets, the lag in messages and which records are needed.
pub fn plan(o: Offsets) -> Plan {
    let h = o.end();
    let l = o.log_start.min(h);
    let (c, mut note) = match o.committed {
        Some(c) => (c, None),
        None => (l, Some(Note::NoCommit)),
    };
    let lag_messages = (h - c).max(0);
    if c >= h || h <= l {
        // Caught up, or nothing left to read: lag in seconds is 0.
        let note = note
            .or((c < l).then_some(Note::CommitBelowLogStart))
            .or((c > o.high_watermark).then_some(Note::CommitAboveHighWatermark));
        return Plan {
            lag_messages,
            records: None,
            note,
        };
    }
    if c < l {
        note = note.or(Some(Note::CommitBelowLogStart));
    }
    Plan {
        lag_messages,
        records: Some((h, c.max(l))),
        note,
    }
}

/// One partition's lag, finished from what the reader found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finished {
    pub lag_messages: i64,
    pub lag_seconds: f64,
    pub kind: Option<TimestampKind>,
    pub note: Option<Note>,
}

/// Step two: lag from the newest data record below the end and the reference record (see
/// [`Plan::records`]). When the newest data record lies below the reference, every unread offset
/// is a marker (or an aborted record): no lag, in messages or in seconds.
pub fn finish(plan: &Plan, newest: Found, reference: Found) -> Finished {
    let done = |lag_messages, lag_seconds, kind, note| Finished {
        lag_messages,
        lag_seconds,
        kind,
        note,
    };
    let Some((_, from)) = plan.records else {
        return done(plan.lag_messages, 0.0, None, plan.note);
    };
    let only_markers = plan.note.or(Some(Note::OnlyMarkersUnread));
    let Found::Below(n) = newest else {
        // Not one data record below the end: nothing to read, ever.
        return done(0, 0.0, None, only_markers);
    };
    if n.offset < from {
        return done(0, 0.0, n.kind, only_markers);
    }
    match reference {
        Found::Below(r) => done(plan.lag_messages, seconds(n.ms, r.ms), n.kind, plan.note),
        Found::After(r) => done(
            plan.lag_messages,
            seconds(n.ms, r.ms),
            n.kind,
            plan.note.or(Some(Note::ReferenceIsCommittedRecord)),
        ),
        // Cannot happen (n itself is at or after the reference); never negative either way.
        Found::Nothing => done(plan.lag_messages, 0.0, n.kind, plan.note),
    }
}

/// Step two: lag in seconds from the two record timestamps (ms). Clock skew between producers
/// (CreateTime) can make the reference newer than the newest record: that is 0 lag, not negative.
pub fn seconds(newest_ms: i64, reference_ms: i64) -> f64 {
    ((newest_ms - reference_ms).max(0)) as f64 / 1000.0
}

/// The timestamp type of the records a lag in seconds was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampKind {
    CreateTime,
    LogAppendTime,
}

/// One partition in one sample (the JSON contract's `partitions[]`, plus `log_start`, `note`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// `null` where the group has no commit for this partition.
    pub committed: Option<i64>,
    pub high_watermark: i64,
    pub log_start: i64,
    pub lag_messages: i64,
    /// `null` only when a record timestamp could not be read in time.
    pub lag_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_type: Option<TimestampKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
    /// read_committed groups: the last stable offset, the end their lag is measured against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_stable_offset: Option<i64>,
    /// read_committed groups: an open transaction holds the last stable offset below H.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_transaction: Option<OpenTransaction>,
    /// Data loss: records deleted (retention, DeleteRecords) between the committed offset and
    /// the log start, which the group never read. Lag in messages still counts from H − C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_messages: Option<i64>,
}

impl PartitionLag {
    /// Records deleted before the group read them: the log start minus the commit.
    pub fn lost(committed: Option<i64>, log_start: i64) -> Option<i64> {
        committed.filter(|&c| c < log_start).map(|c| log_start - c)
    }
}

/// A transaction still open on a partition, holding its last stable offset back: records past
/// it stay invisible to read_committed consumers until it commits or aborts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OpenTransaction {
    /// Its first offset (the last stable offset).
    pub first_offset: i64,
    /// Offsets above the last stable offset (up to H) read_committed consumers cannot read yet.
    pub held_back: i64,
    /// Seconds since its first record was written (its timestamp); `null` when not read in time.
    pub age_s: Option<f64>,
}

impl OpenTransaction {
    pub fn describe(&self, topic: &str, partition: i32) -> String {
        let age = self
            .age_s
            .map_or("of unknown age".into(), |a| format!("open for {a:.1}s"));
        format!(
            "{topic}/{partition}: an open transaction since offset {} ({age}) holds the last \
             stable offset back: {} offsets above it are not readable by read_committed consumers yet",
            self.first_offset, self.held_back
        )
    }
}

/// The state of a group's sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every partition measured.
    Ok,
    /// The group has no commit on any of its partitions: lag is counted from the log start,
    /// which is rarely what anyone means. Shown, never silently reported as 0.
    NeverCommitted,
    /// No data: the broker could not be reached (a gap in the samples).
    Missing,
}

/// One group at one moment: the unit the runner judges and `spotdrill lag --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct GroupLag {
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    pub group: String,
    /// Milliseconds since sampling started.
    pub elapsed_ms: u64,
    /// Sum over partitions; `null` in a gap.
    pub lag_messages: Option<i64>,
    /// Max over partitions; `null` in a gap.
    pub lag_seconds: Option<f64>,
    pub status: Status,
    /// What went wrong, for `missing` samples and topics that disappeared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// What is worth knowing but not wrong: open transactions holding a read_committed group's
    /// last stable offset back, with their age.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Shown only for read_committed groups (read_uncommitted is the default).
    #[serde(skip_serializing_if = "Isolation::is_default")]
    pub isolation: Isolation,
    /// How long taking this snapshot took, in milliseconds.
    pub took_ms: u64,
    /// Messages lost to retention or DeleteRecords before the group read them (sum over
    /// partitions); absent when none were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_messages: Option<i64>,
    /// The coordinator's view of the group (DescribeGroups); absent where the broker does not
    /// answer it (the librdkafka mock cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_state: Option<GroupState>,
    /// The group's commits have not moved since this time while its high watermarks grew.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    pub stalled_since: Option<SystemTime>,
    /// Commits move but the lag in messages grew over the last window: consuming too slowly
    /// (not stalled).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub slow: bool,
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// Aggregate partitions into the group's lag: sum of messages, max of seconds.
    pub fn from_partitions(
        group: &str,
        at: SystemTime,
        elapsed_ms: u64,
        took_ms: u64,
        partitions: Vec<PartitionLag>,
        problems: Vec<String>,
    ) -> GroupLag {
        let lag_messages = partitions.iter().map(|p| p.lag_messages).sum();
        let all_read = partitions.iter().all(|p| p.lag_seconds.is_some());
        let lag_seconds = partitions
            .iter()
            .filter_map(|p| p.lag_seconds)
            .fold(0.0_f64, f64::max);
        let never = !partitions.is_empty() && partitions.iter().all(|p| p.committed.is_none());
        let mut notes: Vec<String> = partitions
            .iter()
            .filter_map(|p| Some(p.open_transaction?.describe(&p.topic, p.partition)))
            .collect();
        let lost: i64 = partitions.iter().filter_map(|p| p.lost_messages).sum();
        notes.extend(partitions.iter().filter_map(|p| {
            Some(format!(
                "{}/{}: data loss: {} messages were deleted (retention or DeleteRecords) before \
                 the group read them",
                p.topic, p.partition, p.lost_messages?
            ))
        }));
        GroupLag {
            at,
            group: group.to_owned(),
            elapsed_ms,
            lag_messages: Some(lag_messages),
            lag_seconds: all_read.then_some(lag_seconds),
            status: if never {
                Status::NeverCommitted
            } else {
                Status::Ok
            },
            problems,
            notes,
            isolation: Isolation::default(),
            took_ms,
            lost_messages: (lost > 0).then_some(lost),
            group_state: None,
            stalled_since: None,
            slow: false,
            partitions,
        }
    }

    /// A gap: nothing could be measured.
    pub fn missing(
        group: &str,
        at: SystemTime,
        elapsed_ms: u64,
        took_ms: u64,
        why: String,
    ) -> Self {
        GroupLag {
            at,
            group: group.to_owned(),
            elapsed_ms,
            lag_messages: None,
            lag_seconds: None,
            status: Status::Missing,
            problems: vec![why],
            notes: Vec::new(),
            isolation: Isolation::default(),
            took_ms,
            lost_messages: None,
            group_state: None,
            stalled_since: None,
            slow: false,
            partitions: Vec::new(),
        }
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

#[allow(clippy::ref_option)] // serde's serialize_with passes a reference
fn rfc3339_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(committed: Option<i64>, log_start: i64, high_watermark: i64) -> Offsets {
        Offsets {
            committed,
            log_start,
            high_watermark,
            last_stable: None,
        }
    }

    fn rec(offset: i64, secs: i64) -> Record {
        Record {
            offset,
            ms: secs * 1000,
            kind: Some(TimestampKind::CreateTime),
        }
    }

    #[test]
    fn lagging_partition_reads_newest_and_last_consumed() {
        let p = plan(o(Some(40), 0, 100));
        assert_eq!(p.lag_messages, 60);
        assert_eq!(p.records, Some((100, 40)));
        assert_eq!(p.note, None);
    }

    #[test]
    fn caught_up_and_idle_partitions_have_zero_lag() {
        for offsets in [o(Some(100), 0, 100), o(Some(0), 0, 0), o(Some(7), 7, 7)] {
            let p = plan(offsets);
            assert_eq!(
                (p.lag_messages, p.records, p.note),
                (0, None, None),
                "{offsets:?}"
            );
        }
    }

    #[test]
    fn a_commit_above_the_high_watermark_is_no_lag_and_flagged() {
        // The topic was re-created: the group's old commit (40) is past the new log's end (3).
        let p = plan(o(Some(40), 0, 3));
        assert_eq!((p.lag_messages, p.records), (0, None));
        assert_eq!(p.note, Some(Note::CommitAboveHighWatermark));
    }

    #[test]
    fn data_loss_is_the_log_start_minus_the_commit() {
        assert_eq!(PartitionLag::lost(Some(5), 20), Some(15));
        assert_eq!(PartitionLag::lost(Some(20), 20), None);
        assert_eq!(PartitionLag::lost(None, 20), None);
    }

    #[test]
    fn no_commit_counts_from_the_log_start() {
        let p = plan(o(None, 10, 50));
        assert_eq!(p.lag_messages, 40);
        assert_eq!(p.records, Some((50, 10)));
        assert_eq!(p.note, Some(Note::NoCommit));
        // An empty partition with no commit: no lag, but still flagged.
        assert_eq!(plan(o(None, 0, 0)).note, Some(Note::NoCommit));
    }

    #[test]
    fn commit_below_log_start_uses_first_available_record() {
        let p = plan(o(Some(5), 20, 30));
        assert_eq!(p.lag_messages, 25);
        assert_eq!(p.records, Some((30, 20)));
        assert_eq!(p.note, Some(Note::CommitBelowLogStart));
    }

    #[test]
    fn commit_at_zero_uses_the_committed_record() {
        let p = plan(o(Some(0), 0, 3));
        assert_eq!(p.records, Some((3, 0)));
        // Nothing below offset 0: the reader answers with the committed record itself.
        let f = finish(&p, Found::Below(rec(2, 9)), Found::After(rec(0, 4)));
        assert_eq!((f.lag_messages, f.lag_seconds), (3, 5.0));
        assert_eq!(f.note, Some(Note::ReferenceIsCommittedRecord));
    }

    #[test]
    fn lag_is_timed_from_the_newest_data_records_below_h_and_c() {
        // H = 10, C = 6; offsets 9 and 5 are commit markers: 8 and 4 are the data records.
        let p = plan(o(Some(6), 0, 10));
        let f = finish(&p, Found::Below(rec(8, 20)), Found::Below(rec(4, 12)));
        assert_eq!((f.lag_messages, f.lag_seconds, f.note), (4, 8.0, None));
    }

    #[test]
    fn a_group_whose_unread_offsets_are_only_markers_has_no_lag() {
        // Read everything: C = 10 = H − 1, and offset 10 is the last transaction's marker.
        let p = plan(o(Some(10), 0, 11));
        assert_eq!(p.lag_messages, 1);
        let f = finish(&p, Found::Below(rec(9, 20)), Found::Below(rec(9, 20)));
        assert_eq!((f.lag_messages, f.lag_seconds), (0, 0.0));
        assert_eq!(f.note, Some(Note::OnlyMarkersUnread));
        // A partition holding nothing but markers (or aborted records).
        let f = finish(&plan(o(Some(0), 0, 4)), Found::Nothing, Found::Nothing);
        assert_eq!((f.lag_messages, f.lag_seconds), (0, 0.0));
    }

    #[test]
    fn read_committed_measures_against_the_last_stable_offset() {
        let mut offsets = o(Some(4), 0, 20);
        offsets.last_stable = Some(8);
        let p = plan(offsets);
        assert_eq!((p.lag_messages, p.records), (4, Some((8, 4))));
        offsets.committed = Some(8);
        assert_eq!(plan(offsets).records, None);
        assert_eq!(plan(offsets).lag_messages, 0);
    }

    #[test]
    fn seconds_never_go_negative() {
        assert_eq!(seconds(10_500, 4_000), 6.5);
        assert_eq!(seconds(1_000, 2_000), 0.0);
    }

    #[test]
    fn group_lag_is_max_seconds_and_sum_of_messages() {
        let part = |p, msgs, secs| PartitionLag {
            topic: "t".into(),
            partition: p,
            committed: Some(1),
            high_watermark: 10,
            log_start: 0,
            lag_messages: msgs,
            lag_seconds: Some(secs),
            timestamp_type: None,
            note: None,
            last_stable_offset: None,
            open_transaction: None,
            lost_messages: None,
        };
        let g = GroupLag::from_partitions(
            "g",
            SystemTime::UNIX_EPOCH,
            0,
            0,
            vec![part(0, 3, 1.5), part(1, 4, 7.25)],
            vec![],
        );
        assert_eq!(g.lag_messages, Some(7));
        assert_eq!(g.lag_seconds, Some(7.25));
        assert_eq!(g.status, Status::Ok);
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["partitions"][1]["lag_seconds"], 7.25);
    }
}
