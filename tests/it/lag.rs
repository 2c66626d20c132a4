//! The lag probe against real brokers: exact lag in messages and seconds for known data.

use std::time::Duration;

use spotdrill::observe::{GroupLag, GroupSpec, LagProbe, Note, Status};

use crate::support::kafka::Kafka;

/// 2026-01-01T00:00:00Z in ms: records carry explicit timestamps from here.
const T0: i64 = 1_767_225_600_000;

fn ts(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| T0 + s * 1000).collect()
}

fn probe(kafka: &Kafka, group: &str, topics: &[&str]) -> LagProbe {
    LagProbe::connect(
        kafka.settings(),
        &[GroupSpec {
            group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }],
    )
    .expect("probe connects")
}

fn one(probe: &mut LagProbe) -> GroupLag {
    let mut s = probe.snapshot();
    assert_eq!(s.len(), 1);
    s.remove(0)
}

/// Two partitions with known records and commits: exact lag per partition and for the group.
fn exact_lag(kafka: &Kafka) {
    kafka.create_topic("telemetry", 3, &[]);
    // Partition 0: records at t = 0..9 s; committed 4 (last consumed record 3 at t=3).
    kafka.produce("telemetry", 0, &ts(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    // Partition 1: records at t = 0, 10, 20, 30; committed 4 (caught up).
    kafka.produce("telemetry", 1, &ts(&[0, 10, 20, 30]));
    // Partition 2: idle, empty.
    kafka.commit("coverage", "telemetry", &[(0, 4), (1, 4), (2, 0)]);

    let mut probe = probe(kafka, "coverage", &["telemetry"]);
    let g = one(&mut probe);
    assert_eq!(g.status, Status::Ok, "{g:?}");
    let p: Vec<_> = g
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition,
                p.committed,
                p.high_watermark,
                p.lag_messages,
                p.lag_seconds,
            )
        })
        .collect();
    assert_eq!(
        p,
        [
            (0, Some(4), 10, 6, Some(6.0)),
            (1, Some(4), 4, 0, Some(0.0)),
            (2, Some(0), 0, 0, Some(0.0)),
        ]
    );
    assert_eq!(g.lag_messages, Some(6));
    assert_eq!(g.lag_seconds, Some(6.0));

    // The group catches up on partition 0 to offset 8: lag 1 message, 9 − 7 = 2 s.
    kafka.commit("coverage", "telemetry", &[(0, 8)]);
    let g = one(&mut probe);
    assert_eq!(g.partitions[0].lag_messages, 2);
    assert_eq!(g.partitions[0].lag_seconds, Some(2.0));
    // Two new records on partition 1 at t=15 (a producer with a skewed clock) and t=40: the
    // newest (t=40) minus the last consumed record (offset 3, t=30) is 10 s.
    kafka.produce("telemetry", 1, &ts(&[15, 40]));
    let g = one(&mut probe);
    assert_eq!(g.partitions[1].lag_messages, 2);
    assert_eq!(g.partitions[1].lag_seconds, Some(10.0));
    assert_eq!(g.lag_seconds, Some(10.0));
}

#[test]
fn exact_lag_on_the_mock_cluster() {
    exact_lag(&Kafka::mock());
}

#[test]
fn exact_lag_on_tansu() {
    exact_lag(&Kafka::tansu());
}

#[test]
fn a_partition_without_commit_counts_from_the_log_start() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 2, &[]);
    kafka.produce("t", 0, &ts(&[0, 5, 9]));
    kafka.produce("t", 1, &ts(&[0, 1]));
    kafka.commit("g", "t", &[(1, 1)]);
    let g = one(&mut probe(&kafka, "g", &["t"]));
    let p0 = &g.partitions[0];
    assert_eq!(
        (p0.committed, p0.lag_messages, p0.lag_seconds),
        (None, 3, Some(9.0))
    );
    assert_eq!(p0.note, Some(Note::NoCommit));
    assert_eq!(g.status, Status::Ok);
    let json = serde_json::to_value(&g).unwrap();
    assert!(json["partitions"][0]["committed"].is_null());
    assert_eq!(json["partitions"][0]["note"], "no_commit");
}

#[test]
fn a_group_that_never_committed_is_not_zero_lag() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 2, &[]);
    kafka.produce("t", 0, &ts(&[0, 3]));
    let g = one(&mut probe(&kafka, "never", &["t"]));
    assert_eq!(g.status, Status::NeverCommitted);
    assert_eq!(g.lag_messages, Some(2));
    assert_eq!(g.lag_seconds, Some(3.0));
    assert!(g.partitions.iter().all(|p| p.committed.is_none()));
}

#[test]
fn a_group_without_topics_and_without_commits_is_a_clear_error() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    let err = LagProbe::connect(
        kafka.settings(),
        &[GroupSpec {
            group: "ghost".into(),
            topics: vec![],
        }],
    )
    .err()
    .expect("no topics to measure");
    assert!(
        err.to_string()
            .contains("group `ghost` has no committed offsets"),
        "{err}"
    );
}

#[test]
fn topics_are_found_from_the_groups_commits() {
    let kafka = Kafka::mock();
    kafka.create_topic("a", 1, &[]);
    kafka.create_topic("b", 1, &[]);
    kafka.produce("b", 0, &ts(&[0, 1]));
    kafka.commit("g", "b", &[(0, 1)]);
    let probe = LagProbe::connect(
        kafka.settings(),
        &[GroupSpec {
            group: "g".into(),
            topics: vec![],
        }],
    )
    .unwrap();
    let groups: Vec<_> = probe
        .groups()
        .map(|(g, t)| (g.to_owned(), t.to_vec()))
        .collect();
    assert_eq!(groups, [("g".to_owned(), vec!["b".to_owned()])]);
}

#[test]
fn an_unknown_topic_is_a_clear_error() {
    let kafka = Kafka::mock();
    let err = LagProbe::connect(
        kafka.settings(),
        &[GroupSpec {
            group: "g".into(),
            topics: vec!["nope".into()],
        }],
    )
    .err()
    .expect("unknown topic");
    assert_eq!(
        err.to_string(),
        format!("topic `nope` does not exist on {}", kafka.bootstrap)
    );
}

#[test]
fn an_unreachable_broker_fails_within_the_timeout() {
    let port = crate::support::kafka::free_port();
    let mut settings = spotdrill::kafka::KafkaSettings::new(format!("127.0.0.1:{port}"));
    settings.timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = LagProbe::connect(
        settings,
        &[GroupSpec {
            group: "g".into(),
            topics: vec!["t".into()],
        }],
    )
    .err()
    .expect("unreachable");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach Kafka at 127.0.0.1:{port} within 1s")),
        "{err}"
    );
}

#[test]
fn create_time_records_are_reported_as_such() {
    for kafka in [Kafka::mock(), Kafka::tansu()] {
        kafka.create_topic("t", 1, &[]);
        kafka.produce("t", 0, &ts(&[0, 4]));
        kafka.commit("g", "t", &[(0, 1)]);
        let g = one(&mut probe(&kafka, "g", &["t"]));
        let json = serde_json::to_value(&g.partitions[0]).unwrap();
        assert_eq!(json["timestamp_type"], "create_time");
        assert_eq!(json["lag_seconds"], 4.0);
    }
}

#[test]
fn a_commit_below_the_log_start_is_flagged_and_measured_from_the_first_record() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 1, 2]));
    kafka.commit("g", "t", &[(0, 1)]);
    // 900 kB records: the mock keeps about 5 MB, so the oldest records go, like retention.
    kafka.produce_sized("t", 0, &ts(&[10, 11, 12, 13, 14, 15, 16, 17]), 900_000);
    let g = one(&mut probe(&kafka, "g", &["t"]));
    let p = &g.partitions[0];
    assert!(p.log_start > 1, "retention moved the log start: {p:?}");
    assert_eq!(p.committed, Some(1));
    assert_eq!(p.high_watermark, 11);
    assert_eq!(p.lag_messages, 10);
    assert_eq!(p.note, Some(Note::CommitBelowLogStart));
    // Newest record at t=17 minus the first record still there.
    let first_left = [0, 1, 2, 10, 11, 12, 13, 14, 15, 16, 17][p.log_start as usize];
    assert_eq!(p.lag_seconds, Some((17 - first_left) as f64));
}

#[test]
fn a_topic_that_disappears_is_reported_and_sampling_goes_on() {
    let kafka = Kafka::mock();
    kafka.create_topic("a", 1, &[]);
    kafka.create_topic("b", 1, &[]);
    kafka.produce("a", 0, &ts(&[0, 2]));
    kafka.produce("b", 0, &ts(&[0, 3]));
    kafka.commit("g", "a", &[(0, 1)]);
    kafka.commit("g", "b", &[(0, 1)]);
    let mut probe = probe(&kafka, "g", &["a", "b"]);
    assert_eq!(one(&mut probe).partitions.len(), 2);
    kafka
        .cluster()
        .topic_error(
            "b",
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        )
        .unwrap();
    let g = one(&mut probe);
    assert_eq!(g.partitions.len(), 1, "{g:?}");
    assert_eq!(g.partitions[0].topic, "a");
    assert_eq!(g.lag_seconds, Some(2.0));
    assert!(
        g.problems
            .iter()
            .any(|p| p.starts_with("topic `b` is gone")),
        "{:?}",
        g.problems
    );

    // The topic comes back: its partitions join the sample again (the reader is re-assigned).
    // Neither test broker can add partitions to a topic (no CreatePartitions), so a topic
    // coming back is how these tests grow the partition set while sampling.
    kafka
        .cluster()
        .topic_error(
            "b",
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR,
        )
        .unwrap();
    kafka.produce("b", 0, &ts(&[9]));
    let g = one(&mut probe);
    assert_eq!(g.partitions.len(), 2, "{g:?}");
    assert_eq!(g.partitions[1].lag_messages, 2);
    assert_eq!(g.lag_seconds, Some(9.0));
    assert!(g.problems.is_empty(), "{:?}", g.problems);
}
