//! Group state with each sample (issue 17 item 6), on real Apache Kafka: state and members of
//! classic and consumer-protocol groups, rebalances counted, stalled commits, Storm-style manual
//! assignment; and the mock cluster, which has no DescribeGroups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use spotdrill::observe::{GroupLag, LagProbe};

use crate::lag_edges::one;
use crate::support::kafka::Kafka;

const T0: i64 = 1_767_225_600_000;

fn ts(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| T0 + s * 1000).collect()
}

fn probe(kafka: &Kafka, group: &str) -> LagProbe {
    crate::lag_edges::probe(kafka, group, "t")
}

/// A member of `group` subscribed to `t`, polling on its own thread until dropped.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn join(kafka: &Kafka, group: &str, protocol: &str) -> Member {
        let mut cfg = kafka.config();
        cfg.set("group.id", group)
            .set("group.protocol", protocol)
            .set("enable.auto.commit", "false");
        if protocol == "classic" {
            cfg.set("session.timeout.ms", "6000");
        }
        let consumer: BaseConsumer = cfg.create().unwrap();
        consumer.subscribe(&["t"]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(50));
            }
            consumer.unsubscribe();
            let _ = consumer.poll(Duration::from_millis(200));
        });
        Member {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Snapshots until the group shows `state` with `members` members.
fn until_state(probe: &mut LagProbe, state: &str, members: usize) -> GroupLag {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = one(probe);
        let s = g.group_state.as_ref();
        if s.is_some_and(|s| s.state == state && s.members == members) {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "no {state} with {members}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn group_with_records(kafka: &Kafka) {
    kafka.create_topic("t", 2, &[]);
    kafka.produce("t", 0, &ts(&[0, 1, 2]));
}

#[test]
fn a_classic_group_shows_its_state_members_and_each_rebalance() {
    let kafka = Kafka::apache();
    group_with_records(&kafka);
    let mut probe = probe(&kafka, "classic");
    let first = Member::join(&kafka, "classic", "classic");
    let g = until_state(&mut probe, "Stable", 1);
    let s = g.group_state.clone().unwrap();
    assert_eq!(s.protocol_type, "consumer");
    assert!(!s.manual_assignment);
    let before = s.rebalances;
    // A second member: one rebalance.
    let second = Member::join(&kafka, "classic", "classic");
    let g = until_state(&mut probe, "Stable", 2);
    assert_eq!(g.group_state.unwrap().rebalances, before + 1);
    // It leaves: another.
    drop(second);
    let g = until_state(&mut probe, "Stable", 1);
    assert_eq!(g.group_state.as_ref().unwrap().rebalances, before + 2);
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["group_state"]["state"], "Stable");
    assert_eq!(json["group_state"]["members"], 1);
    drop(first);
    let g = until_state(&mut probe, "Empty", 0);
    assert_eq!(g.group_state.unwrap().rebalances, before + 3);
}

#[test]
fn a_consumer_protocol_group_is_said_to_be_unknown_not_dead() {
    // Kafka 4.4 answers the classic DescribeGroups for a group of the new consumer protocol
    // with `Dead`; ConsumerGroupDescribe would describe it, but rdkafka 0.39 cannot send it.
    let kafka = Kafka::apache();
    group_with_records(&kafka);
    // Committed before it joins (the new protocol takes commits from members only).
    kafka.commit("kip848", "t", &[(0, 1)]);
    let member = Member::join(&kafka, "kip848", "consumer");
    let mut probe = probe(&kafka, "kip848");
    let unknown = |g: &GroupLag| {
        g.notes
            .iter()
            .filter(|n| n.starts_with("group state unknown"))
            .count()
    };
    let g = one(&mut probe);
    assert_eq!(
        (g.group_state.clone(), unknown(&g)),
        (None, 1),
        "{:?}",
        g.notes
    );
    // Lag is measured all the same (its value moves with what the member commits meanwhile).
    assert!(g.lag_seconds.is_some(), "{g:?}");
    // Said once, not with every sample; never called dead.
    let g = one(&mut probe);
    assert_eq!((g.group_state.clone(), unknown(&g)), (None, 0));
    drop(member);
}

#[test]
fn a_group_that_commits_without_members_is_manual_assignment_not_dead() {
    let kafka = Kafka::apache();
    group_with_records(&kafka);
    // Storm's spouts: partitions assigned by hand, offsets committed without joining.
    kafka.commit("spout", "t", &[(0, 1), (1, 0)]);
    let g = one(&mut probe(&kafka, "spout"));
    let s = g.group_state.clone().expect("described");
    assert_eq!((s.state.as_str(), s.members), ("Empty", 0));
    assert!(s.manual_assignment);
    assert!(
        g.notes
            .iter()
            .any(|n| n.contains("assigned by hand (as Storm's spouts do)")),
        "{:?}",
        g.notes
    );
    // Records 2 (t = 2) and 0 (t = 0): C = 1 on partition 0.
    assert_eq!(g.lag_seconds, Some(2.0));
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["group_state"]["manual_assignment"], true);
}

#[test]
fn commits_that_stop_while_the_high_watermark_grows_are_stalled_since_the_last_commit() {
    let kafka = Kafka::apache();
    group_with_records(&kafka);
    kafka.commit("g", "t", &[(0, 1), (1, 0)]);
    let mut probe = probe(&kafka, "g");
    probe.set_stall_after(Duration::ZERO);
    let first = one(&mut probe);
    assert_eq!(first.stalled_since, None);
    // Nothing new to read: a quiet group is not stalled.
    assert_eq!(one(&mut probe).stalled_since, None);
    kafka.produce("t", 0, &ts(&[3]));
    let g = one(&mut probe);
    assert_eq!(g.stalled_since, Some(first.at));
    assert!(!g.slow);
    assert!(
        g.notes.iter().any(|n| n.starts_with("stalled since ")),
        "{:?}",
        g.notes
    );
    let json = serde_json::to_value(&g).unwrap();
    assert!(json["stalled_since"].as_str().is_some(), "{json}");
    // It commits again: no longer stalled.
    kafka.commit("g", "t", &[(0, 4), (1, 0)]);
    let g = one(&mut probe);
    assert_eq!(g.stalled_since, None);
    assert!(!g.notes.iter().any(|n| n.starts_with("stalled")));
}

#[test]
fn the_mock_cluster_has_no_group_state_said_once_and_no_error() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 5]));
    kafka.commit("g", "t", &[(0, 1)]);
    let mut probe = probe(&kafka, "g");
    let said = |g: &GroupLag| {
        g.notes
            .iter()
            .filter(|n| n.starts_with("group state not read"))
            .count()
    };
    let g = one(&mut probe);
    assert!(g.problems.is_empty(), "{:?}", g.problems);
    assert_eq!(
        (g.group_state.clone(), said(&g)),
        (None, 1),
        "{:?}",
        g.notes
    );
    assert_eq!(g.lag_seconds, Some(5.0));
    let g = one(&mut probe);
    assert_eq!((g.group_state.clone(), said(&g)), (None, 0));
    assert_eq!(g.lag_seconds, Some(5.0));
}
