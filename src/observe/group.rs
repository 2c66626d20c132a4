//! Group state with each sample: the coordinator's state and members (DescribeGroups), the
//! rebalances seen between samples, and whether commits stopped while the log grew.
//!
//! - state and members: librdkafka's `rd_kafka_list_groups` for one group (the classic
//!   DescribeGroups request, which Kafka 4.x also answers for groups of the new consumer protocol,
//!   `group.protocol=consumer`, in the classic words). rdkafka 0.39 has no binding for
//!   ConsumerGroupDescribe, so a consumer-protocol group's own states (assigning, reconciling), its
//!   epochs and its target assignment are not read.
//! - rebalances: DescribeGroups carries no generation, so a rebalance is counted when the state
//!   enters PreparingRebalance or CompletingRebalance, or, between two samples that both saw
//!   none, when the set of member ids changed (a generation that came and went between them). Two
//!   rebalances between one pair of samples count as one.
//! - stalled: the group's committed offsets did not move for `stall_after` while the high
//!   watermarks grew: "stalled since" the last commit. Slow (commits moving, lag growing) is not
//!   stalled, and says so separately.
//! - manual assignment: Storm's spouts assign partitions by hand and commit with their own
//!   offsets, so their group has no members at all; that is said, never read as "dead".

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use serde::Serialize;

/// One group as the coordinator describes it, in one sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupState {
    /// The coordinator's word: `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`,
    /// `Dead` (`Dead` also for a group the coordinator does not know).
    pub state: String,
    /// Members in the group now.
    pub members: usize,
    /// `consumer` for Kafka consumers (either protocol), empty for a group with no members.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol_type: String,
    /// Rebalances seen since sampling started (see the module's rules).
    pub rebalances: u64,
    /// No members, but commits: partitions assigned by hand (Storm's spouts do this).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual_assignment: bool,
}

/// What DescribeGroups answered for a group, before tracking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub state: String,
    pub protocol_type: String,
    pub member_ids: BTreeSet<String>,
}

impl Described {
    fn rebalancing(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PreparingRebalance" | "CompletingRebalance"
        )
    }
}

/// What a group's commits and watermarks did since the last commit moved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Progress {
    /// Commits moved and the lag did not grow (or nothing to say yet).
    Fine,
    /// Commits move, but the lag in messages grew over the window: consuming, too slowly.
    Slow,
    /// Commits have not moved since this time while the high watermarks grew.
    Stalled(SystemTime),
}

/// Per group, across samples: the last description and commits, and the counters.
#[derive(Debug)]
pub struct Tracker {
    last: Option<Described>,
    rebalances: u64,
    /// The committed offsets last seen (summed: any commit moves the sum forward), when they
    /// last changed, and the high watermarks' sum then.
    commits: Option<(i64, SystemTime, i64)>,
    /// Lag in messages at the start of the current window (for "slow").
    window: Option<(SystemTime, i64)>,
    pub stall_after: Duration,
    /// [`UNKNOWN_NOTE`] was said for this group.
    pub said_unknown: bool,
}

/// Default `stall_after`: two of storm-kafka-client's 30 s commit intervals.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            last: None,
            rebalances: 0,
            commits: None,
            window: None,
            stall_after: STALL_AFTER,
            said_unknown: false,
        }
    }
}

impl Tracker {
    /// Take in one description; returns the state to report with the sample.
    pub fn describe(&mut self, now: Described, committed_any: bool) -> GroupState {
        if let Some(last) = &self.last {
            let entered = now.rebalancing() && !last.rebalancing();
            let changed =
                !now.rebalancing() && !last.rebalancing() && now.member_ids != last.member_ids;
            if entered || changed {
                self.rebalances += 1;
            }
        }
        let state = GroupState {
            state: now.state.clone(),
            members: now.member_ids.len(),
            protocol_type: now.protocol_type.clone(),
            rebalances: self.rebalances,
            manual_assignment: now.member_ids.is_empty() && committed_any,
        };
        self.last = Some(now);
        state
    }

    /// Take in the sums of committed offsets and high watermarks, and the lag in messages, at
    /// `at`; say how the group progresses.
    pub fn progress(&mut self, at: SystemTime, committed: i64, high: i64, lag: i64) -> Progress {
        let moved = self.commits.is_none_or(|(c, _, _)| c != committed);
        if moved {
            self.commits = Some((committed, at, high));
        }
        let Some((_, since, high_then)) = self.commits else {
            return Progress::Fine;
        };
        let quiet = at.duration_since(since).unwrap_or_default();
        if quiet >= self.stall_after && high > high_then {
            self.window = None;
            return Progress::Stalled(since);
        }
        let (start, lag_then) = *self.window.get_or_insert((at, lag));
        if at.duration_since(start).unwrap_or_default() < self.stall_after {
            return Progress::Fine;
        }
        self.window = Some((at, lag));
        if lag > lag_then && quiet < self.stall_after {
            Progress::Slow
        } else {
            Progress::Fine
        }
    }
}

/// Why one DescribeGroups failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub why: String,
    /// The brokers do not implement the request at all (the librdkafka mock cluster): asking
    /// again is pointless. Any other failure (a timeout on a busy cluster, a coordinator moving)
    /// is of this sample only.
    pub unsupported: bool,
}

/// Describe one group (DescribeGroups through librdkafka). A group the coordinator does not
/// know is `Dead` with no members, as Kafka itself answers.
pub fn describe(meta: &BaseConsumer, group: &str, timeout: Duration) -> Result<Described, Failure> {
    let list = meta
        .client()
        .fetch_group_list(Some(group), timeout)
        .map_err(|e| Failure {
            why: e.to_string(),
            unsupported: e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature),
        })?;
    // One answer per broker; those that are not the coordinator answer with no state.
    let found = list
        .groups()
        .iter()
        .filter(|g| g.name() == group && !g.state().is_empty())
        .max_by_key(|g| g.members().len());
    Ok(match found {
        Some(g) => Described {
            state: g.state().to_owned(),
            protocol_type: g.protocol_type().to_owned(),
            member_ids: g.members().iter().map(|m| m.id().to_owned()).collect(),
        },
        None => Described {
            state: "Dead".into(),
            protocol_type: String::new(),
            member_ids: BTreeSet::new(),
        },
    })
}

/// Whether DescribeGroups knows nothing of the group (`Dead`, no members): no classic group
/// by that id. Kafka 4.x answers so for a group of the new consumer protocol too.
pub fn unknown(d: &Result<Described, Failure>) -> bool {
    matches!(d, Ok(d) if d.state == "Dead" && d.member_ids.is_empty())
}

/// The note, said once, of a group DescribeGroups does not know.
pub const UNKNOWN_NOTE: &str = "group state unknown: the coordinator knows no classic group by this id \
     (DescribeGroups says Dead); either it has neither members nor offsets, or it uses the new \
     consumer protocol (group.protocol=consumer), which only ConsumerGroupDescribe describes and \
     rdkafka 0.39 cannot send";

/// The note of a group that has no members but commits.
pub const MANUAL_NOTE: &str = "no members: its partitions are assigned by hand (as Storm's spouts do) \
     and it commits its own offsets; liveness is read from its commits, not from membership";

#[cfg(test)]
mod tests {
    use super::*;

    fn d(state: &str, members: &[&str]) -> Described {
        Described {
            state: state.into(),
            protocol_type: "consumer".into(),
            member_ids: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn rebalances_count_state_entries_and_member_changes_once_each() {
        let mut t = Tracker::default();
        assert_eq!(t.describe(d("Stable", &["a", "b"]), true).rebalances, 0);
        // b leaves: the group rebalances, then is stable with a alone (one rebalance).
        assert_eq!(
            t.describe(d("PreparingRebalance", &["a"]), true).rebalances,
            1
        );
        assert_eq!(
            t.describe(d("CompletingRebalance", &["a"]), true)
                .rebalances,
            1
        );
        assert_eq!(t.describe(d("Stable", &["a"]), true).rebalances, 1);
        // c joined and the rebalance finished between two samples: seen by the members.
        assert_eq!(t.describe(d("Stable", &["a", "c"]), true).rebalances, 2);
        assert_eq!(t.describe(d("Stable", &["a", "c"]), true).rebalances, 2);
    }

    #[test]
    fn a_group_without_members_that_commits_is_manually_assigned() {
        let mut t = Tracker::default();
        let s = t.describe(d("Empty", &[]), true);
        assert!(s.manual_assignment);
        assert_eq!(s.members, 0);
        // Nothing committed and nobody in it: not called manual.
        assert!(
            !Tracker::default()
                .describe(d("Empty", &[]), false)
                .manual_assignment
        );
    }

    #[test]
    fn commits_that_stop_while_the_log_grows_are_a_stall_since_the_last_commit() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s| t0 + Duration::from_secs(s);
        let mut t = Tracker {
            stall_after: Duration::from_secs(10),
            ..Tracker::default()
        };
        assert_eq!(t.progress(at(0), 5, 10, 5), Progress::Fine);
        assert_eq!(t.progress(at(5), 7, 12, 5), Progress::Fine);
        assert_eq!(t.progress(at(10), 7, 14, 5), Progress::Fine);
        assert_eq!(t.progress(at(15), 7, 16, 9), Progress::Stalled(at(5)));
        // Quiet but nothing new to read: not stalled (an idle topic).
        let mut idle = Tracker {
            stall_after: Duration::from_secs(10),
            ..Tracker::default()
        };
        idle.progress(at(0), 5, 5, 0);
        assert_eq!(idle.progress(at(30), 5, 5, 0), Progress::Fine);
    }

    #[test]
    fn commits_that_move_while_lag_grows_are_slow_not_stalled() {
        let t0 = SystemTime::UNIX_EPOCH;
        let at = |s| t0 + Duration::from_secs(s);
        let mut t = Tracker {
            stall_after: Duration::from_secs(10),
            ..Tracker::default()
        };
        assert_eq!(t.progress(at(0), 0, 10, 10), Progress::Fine);
        assert_eq!(t.progress(at(5), 3, 20, 17), Progress::Fine);
        assert_eq!(t.progress(at(10), 6, 30, 24), Progress::Slow);
    }
}
