//! The edge cases real clusters have, on real Apache Kafka (issue 17 item 5): LogAppendTime
//! topics, compaction, retention and DeleteRecords, partitions added while sampling, a topic
//! deleted and re-created.

use std::time::{Duration, Instant};

use spotdrill::observe::{GroupLag, GroupSpec, LagProbe, Note};

use crate::support::kafka::Kafka;

/// 2026-01-01T00:00:00Z in ms: records carry explicit timestamps from here.
const T0: i64 = 1_767_225_600_000;

fn ts(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| T0 + s * 1000).collect()
}

pub(crate) fn probe(kafka: &Kafka, group: &str, topic: &str) -> LagProbe {
    let spec = GroupSpec {
        group: group.into(),
        topics: vec![topic.into()],
        isolation: Default::default(),
    };
    LagProbe::connect(kafka.settings(), &[spec]).expect("probe connects")
}

pub(crate) fn one(probe: &mut LagProbe) -> GroupLag {
    let mut s = probe.snapshot();
    assert_eq!(s.len(), 1);
    s.remove(0)
}

/// Snapshots until `done` holds (the broker applies some changes in the background).
fn until(probe: &mut LagProbe, what: &str, done: impl Fn(&GroupLag) -> bool) -> GroupLag {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = one(probe);
        if done(&g) {
            return g;
        }
        assert!(Instant::now() < deadline, "{what}: {g:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn log_append_time_topics_are_timed_by_the_brokers_clock() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[("message.timestamp.type", "LogAppendTime")]);
    // The producer's timestamps are 100 s apart; the broker replaces them with its own clock.
    kafka.produce("t", 0, &ts(&[0]));
    std::thread::sleep(Duration::from_millis(300));
    kafka.produce("t", 0, &ts(&[100]));
    kafka.commit("g", "t", &[(0, 1)]);
    let stored = kafka.records("t", 0);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(
        stored.iter().all(|r| r.2 == "log_append_time"),
        "{stored:?}"
    );
    let g = one(&mut probe(&kafka, "g", "t"));
    assert!(g.problems.is_empty(), "{:?}", g.problems);
    let p = &g.partitions[0];
    let json = serde_json::to_value(p).unwrap();
    assert_eq!(json["timestamp_type"], "log_append_time");
    assert_eq!(
        p.lag_seconds,
        Some((stored[1].1 - stored[0].1) as f64 / 1000.0)
    );
    assert_ne!(
        p.lag_seconds,
        Some(100.0),
        "the producer's timestamps were used"
    );
}

/// Broker settings that make the log cleaner run within a test.
const CLEANER: &str = "log.cleaner.backoff.ms=200\n";

#[test]
fn a_compacted_reference_record_is_timed_from_the_nearest_earlier_one_and_flagged() {
    let kafka = Kafka::apache_with(CLEANER);
    kafka.create_topic(
        "t",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    // One segment per write (segment.ms = 100): offsets 1 and 2 are superseded by 3 and 4, so the
    // cleaner removes them; the group committed 3, so C−1 = 2 is gone.
    let segments: [&[(&str, i64)]; 4] = [
        &[("k0", T0), ("k1", T0 + 1000), ("k2", T0 + 2000)],
        &[("k2", T0 + 10_000), ("k1", T0 + 11_000)],
        &[("f", T0 + 20_000)],
        &[("g", T0 + 21_000)],
    ];
    for records in segments {
        kafka.produce_keyed("t", 0, records);
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while kafka.records("t", 0).iter().any(|r| r.0 == 2) {
        assert!(Instant::now() < deadline, "the cleaner did not run");
        std::thread::sleep(Duration::from_millis(300));
    }
    kafka.commit("g", "t", &[(0, 3)]);
    // Which topics are compacted is read in the background (DescribeConfigs): under load the
    // first snapshots may not know it yet, never for long.
    let mut probe = probe(&kafka, "g", "t");
    let g = until(&mut probe, "the compacted reference flagged", |g| {
        g.partitions[0].note == Some(Note::ReferenceCompacted)
    });
    assert!(g.problems.is_empty(), "{:?}", g.problems);
    let p = &g.partitions[0];
    assert_eq!(
        (p.committed, p.high_watermark, p.lag_messages),
        (Some(3), 7, 4)
    );
    // Newest record 6 (t = 21) minus the nearest record left below C−1: offset 0 (t = 0).
    assert_eq!(p.lag_seconds, Some(21.0));
    assert_eq!(p.note, Some(Note::ReferenceCompacted));
    let json = serde_json::to_value(p).unwrap();
    assert_eq!(json["note"], "reference_compacted");
}

#[test]
fn a_compacted_topic_whose_reference_record_is_there_is_not_flagged() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[("cleanup.policy", "compact")]);
    kafka.produce_keyed("t", 0, &[("a", T0), ("b", T0 + 4000), ("c", T0 + 9000)]);
    kafka.commit("g", "t", &[(0, 2)]);
    let p = one(&mut probe(&kafka, "g", "t")).partitions.remove(0);
    assert_eq!((p.lag_seconds, p.note), (Some(5.0), None));
}

#[test]
fn delete_records_below_the_commit_is_data_loss_with_the_number_of_messages_lost() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    kafka.commit("g", "t", &[(0, 2)]);
    kafka.delete_records("t", 0, 6);
    let g = one(&mut probe(&kafka, "g", "t"));
    let p = &g.partitions[0];
    assert_eq!((p.log_start, p.committed), (6, Some(2)));
    // Lag in messages still counts from H: 10 − 2.
    assert_eq!(p.lag_messages, 8);
    assert_eq!(p.lost_messages, Some(4));
    assert_eq!(p.note, Some(Note::CommitBelowLogStart));
    // Timed from the first record left (6, t = 6) to the newest (9, t = 9).
    assert_eq!(p.lag_seconds, Some(3.0));
    assert_eq!(g.lost_messages, Some(4));
    assert!(
        g.notes
            .iter()
            .any(|n| n.starts_with("t/0: data loss: 4 messages")),
        "{:?}",
        g.notes
    );
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["lost_messages"], 4);
    assert_eq!(json["partitions"][0]["lost_messages"], 4);
}

#[test]
fn retention_below_the_commit_is_data_loss_too() {
    let kafka = Kafka::apache_with("log.retention.check.interval.ms=200\n");
    kafka.create_topic("t", 1, &[("retention.ms", "60000"), ("segment.ms", "100")]);
    // Records stamped in the past (T0): past retention as soon as their segment is closed.
    kafka.produce("t", 0, &ts(&[0, 1, 2]));
    std::thread::sleep(Duration::from_millis(300));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    kafka.produce("t", 0, &[now, now + 1000]);
    kafka.commit("g", "t", &[(0, 1)]);
    let mut probe = probe(&kafka, "g", "t");
    let g = until(&mut probe, "retention deletes the old segment", |g| {
        g.partitions[0].log_start >= 3
    });
    let p = &g.partitions[0];
    assert_eq!((p.log_start, p.high_watermark, p.lag_messages), (3, 5, 4));
    assert_eq!(p.lost_messages, Some(2));
    assert_eq!(p.lag_seconds, Some(1.0));
}

#[test]
fn partitions_added_while_sampling_join_the_next_snapshot() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 2]));
    kafka.commit("g", "t", &[(0, 1)]);
    let mut probe = probe(&kafka, "g", "t");
    assert_eq!(one(&mut probe).partitions.len(), 1);
    kafka.add_partitions("t", 3);
    kafka.produce("t", 2, &ts(&[10, 11, 17]));
    kafka.commit("g", "t", &[(0, 1), (2, 1)]);
    let g = until(&mut probe, "the new partitions appear", |g| {
        g.partitions.len() == 3
    });
    assert!(g.problems.is_empty(), "{:?}", g.problems);
    let rows: Vec<(i32, Option<i64>, i64, Option<f64>)> = g
        .partitions
        .iter()
        .map(|p| (p.partition, p.committed, p.lag_messages, p.lag_seconds))
        .collect();
    assert_eq!(
        rows,
        [
            (0, Some(1), 1, Some(2.0)),
            (1, None, 0, Some(0.0)),
            (2, Some(1), 2, Some(7.0))
        ]
    );
    assert_eq!(g.lag_seconds, Some(7.0));
}

#[test]
fn a_topic_deleted_and_re_created_resets_without_negative_lag() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    kafka.commit("g", "t", &[(0, 1)]);
    let mut probe = probe(&kafka, "g", "t");
    // Timed from record 0 (t = 0): the answer for "below offset 1" is cached.
    assert_eq!(one(&mut probe).partitions[0].lag_seconds, Some(9.0));
    kafka.delete_topic("t");
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[50, 51, 52]));
    // The application (a Storm spout keeps its own offsets) commits its old position again.
    kafka.commit("g", "t", &[(0, 8)]);
    let g = one(&mut probe);
    let p = &g.partitions[0];
    assert_eq!((p.committed, p.high_watermark), (Some(8), 3));
    assert_eq!((p.lag_messages, p.lag_seconds), (0, Some(0.0)));
    assert_eq!(p.note, Some(Note::CommitAboveHighWatermark));
    assert!(
        g.notes
            .iter()
            .any(|n| n.starts_with("t/0: offsets went back (high watermark 10 → 3")),
        "{:?}",
        g.notes
    );
    // It re-reads from the start: lag is timed on the new records (record 0 at t = 50), not on
    // the old topic's cached record 0 (t = 0).
    kafka.commit("g", "t", &[(0, 1)]);
    let g = one(&mut probe);
    assert_eq!(g.partitions[0].lag_seconds, Some(2.0));
    assert_eq!(g.partitions[0].note, None);
    assert!(
        !g.notes.iter().any(|n| n.contains("offsets went back")),
        "{:?}",
        g.notes
    );
}
