//! Lag: the one definition (DESIGN.md), as pure functions over offsets and record timestamps.
//!
//! Per partition, with committed offset C (the next record the group reads), log start L and high
//! watermark H:
//! - lag in messages = max(H − C, 0); with no commit, C counts as L (and the sample says so);
//! - lag in seconds = 0 if C ≥ H, else timestamp(H−1) − timestamp(C−1). Where C−1 is gone (C is 0,
//!   or retention deleted it) the reference is the first record still there, max(C, L), and the
//!   sample says so.

use std::time::SystemTime;

use serde::Serialize;

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
        }
    }
}

/// Offsets of one partition as read from the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub committed: Option<i64>,
    pub log_start: i64,
    pub high_watermark: i64,
}

/// What must be known about records to finish one partition's lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub lag_messages: i64,
    /// `(newest, reference)`: the offsets whose timestamps give lag in seconds; `None` when lag
    /// in seconds is 0 without reading anything.
    pub records: Option<(i64, i64)>,
    pub note: Option<Note>,
}

/// Step one: from offsets, the lag in messages and which record timestamps are needed.
pub fn plan(o: Offsets) -> Plan {
    let h = o.high_watermark;
    let l = o.log_start.min(h);
    let (c, mut note) = match o.committed {
        Some(c) => (c, None),
        None => (l, Some(Note::NoCommit)),
    };
    let lag_messages = (h - c).max(0);
    if c >= h || h <= l {
        // Caught up, or nothing left to read: lag in seconds is 0.
        let note = note.or((c < l).then_some(Note::CommitBelowLogStart));
        return Plan {
            lag_messages,
            records: None,
            note,
        };
    }
    let reference = if c < l {
        note = note.or(Some(Note::CommitBelowLogStart));
        l
    } else if c == l {
        note = note.or(Some(Note::ReferenceIsCommittedRecord));
        c
    } else {
        c - 1
    };
    Plan {
        lag_messages,
        records: Some((h - 1, reference)),
        note,
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
    /// How long taking this snapshot took, in milliseconds.
    pub took_ms: u64,
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
            took_ms,
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
            took_ms,
            partitions: Vec::new(),
        }
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(committed: Option<i64>, log_start: i64, high_watermark: i64) -> Offsets {
        Offsets {
            committed,
            log_start,
            high_watermark,
        }
    }

    #[test]
    fn lagging_partition_reads_newest_and_last_consumed() {
        let p = plan(o(Some(40), 0, 100));
        assert_eq!(p.lag_messages, 60);
        assert_eq!(p.records, Some((99, 39)));
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
    fn no_commit_counts_from_the_log_start() {
        let p = plan(o(None, 10, 50));
        assert_eq!(p.lag_messages, 40);
        assert_eq!(p.records, Some((49, 10)));
        assert_eq!(p.note, Some(Note::NoCommit));
        // An empty partition with no commit: no lag, but still flagged.
        assert_eq!(plan(o(None, 0, 0)).note, Some(Note::NoCommit));
    }

    #[test]
    fn commit_below_log_start_uses_first_available_record() {
        let p = plan(o(Some(5), 20, 30));
        assert_eq!(p.lag_messages, 25);
        assert_eq!(p.records, Some((29, 20)));
        assert_eq!(p.note, Some(Note::CommitBelowLogStart));
    }

    #[test]
    fn commit_at_zero_uses_the_committed_record() {
        let p = plan(o(Some(0), 0, 3));
        assert_eq!(p.records, Some((2, 0)));
        assert_eq!(p.note, Some(Note::ReferenceIsCommittedRecord));
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
