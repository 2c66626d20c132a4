//! Lag on transactional topics, on real Apache Kafka (the only test broker that writes commit and
//! abort markers and keeps a last stable offset): markers are never waited for, aborted records
//! are no lag for read_committed groups, and an open transaction is reported with its age.

use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::producer::Producer;
use spotdrill::observe::{GroupLag, GroupSpec, Isolation, LagProbe, Note, PartitionLag};

use crate::support::kafka::Kafka;
use crate::util::spotdrill;

/// 2026-01-01T00:00:00Z in ms: records carry explicit timestamps from here.
const T0: i64 = 1_767_225_600_000;

fn ts(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| T0 + s * 1000).collect()
}

fn spec(group: &str, isolation: Isolation) -> GroupSpec {
    GroupSpec {
        group: group.into(),
        topics: vec!["t".into()],
        isolation,
    }
}

fn by_group<'a>(snapshot: &'a [GroupLag], group: &str) -> &'a GroupLag {
    snapshot.iter().find(|g| g.group == group).unwrap()
}

/// (committed, high watermark, lag in messages, lag in seconds, note) of a partition.
fn row(p: &PartitionLag) -> (Option<i64>, i64, i64, Option<f64>, Option<Note>) {
    (
        p.committed,
        p.high_watermark,
        p.lag_messages,
        p.lag_seconds,
        p.note,
    )
}

#[test]
fn commit_markers_are_skipped_and_never_waited_for() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    let producer = kafka.transactional("txn-markers");
    // Offsets 0–4 (t = 0..4 s), commit marker at 5; 6–10 (t = 10..14 s), commit marker at 11.
    kafka.transaction(&producer, "t", 0, &ts(&[0, 1, 2, 3, 4]), Some(true));
    kafka.transaction(&producer, "t", 0, &ts(&[10, 11, 12, 13, 14]), Some(true));
    // `done` read every record (its position is past offset 10, before the last marker);
    // `behind` read offsets 0–2; `between` read the first transaction and its marker.
    kafka.commit("done", "t", &[(0, 11)]);
    kafka.commit("behind", "t", &[(0, 3)]);
    kafka.commit("between", "t", &[(0, 6)]);
    let specs: Vec<GroupSpec> = ["done", "behind", "between"]
        .iter()
        .map(|g| spec(g, Isolation::ReadUncommitted))
        .collect();
    let mut probe = LagProbe::connect(kafka.settings(), &specs).unwrap();
    let s = probe.snapshot();
    for g in &s {
        assert!(g.problems.is_empty(), "{}: {:?}", g.group, g.problems);
    }
    let done = by_group(&s, "done");
    // Only the marker at 11 is unread: no lag, in messages or seconds.
    assert_eq!(
        row(&done.partitions[0]),
        (Some(11), 12, 0, Some(0.0), Some(Note::OnlyMarkersUnread))
    );
    assert_eq!((done.lag_messages, done.lag_seconds), (Some(0), Some(0.0)));
    // Newest data record below H = 12 is offset 10 (t = 14); below C = 3 it is offset 2 (t = 2).
    assert_eq!(
        row(&by_group(&s, "behind").partitions[0]),
        (Some(3), 12, 9, Some(12.0), None)
    );
    // Below C = 6 the record is a marker (5): the data record before it is 4 (t = 4).
    assert_eq!(
        row(&by_group(&s, "between").partitions[0]),
        (Some(6), 12, 6, Some(10.0), None)
    );
    // The marker at H−1 ended the search through the partition's end, not the deadline.
    assert!(probe.read_stats().eofs >= 1, "{:?}", probe.read_stats());
    eprintln!(
        "first snapshot {} ms, reader {:?}",
        done.took_ms,
        probe.read_stats()
    );
    // Answers are cached: the next snapshot reads nothing.
    let again = probe.snapshot();
    assert_eq!(by_group(&again, "behind").lag_seconds, Some(12.0));
    assert_eq!(probe.read_stats().rounds, 0);
}

#[test]
fn aborted_records_are_not_lag_for_read_committed_groups() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    let producer = kafka.transactional("txn-aborted");
    // Committed: 0–2 (t = 0..2 s), marker 3. Aborted: 4–6 (t = 10..12 s), marker 7. H = 8.
    kafka.transaction(&producer, "t", 0, &ts(&[0, 1, 2]), Some(true));
    kafka.transaction(&producer, "t", 0, &ts(&[10, 11, 12]), Some(false));
    kafka.commit("rc", "t", &[(0, 4)]);
    kafka.commit("ru", "t", &[(0, 4)]);
    kafka.commit("rc-behind", "t", &[(0, 2)]);
    let specs = [
        spec("rc", Isolation::ReadCommitted),
        spec("ru", Isolation::ReadUncommitted),
        spec("rc-behind", Isolation::ReadCommitted),
    ];
    let mut probe = LagProbe::connect(kafka.settings(), &specs).unwrap();
    let s = probe.snapshot();
    for g in &s {
        assert!(g.problems.is_empty(), "{}: {:?}", g.group, g.problems);
    }
    // read_committed: everything unread is aborted or a marker.
    let rc = by_group(&s, "rc");
    assert_eq!(
        row(&rc.partitions[0]),
        (Some(4), 8, 0, Some(0.0), Some(Note::OnlyMarkersUnread))
    );
    assert_eq!(rc.partitions[0].last_stable_offset, Some(8));
    assert_eq!(rc.partitions[0].open_transaction, None);
    // read_uncommitted consumers do receive aborted records: 6 (t = 12) − 2 (t = 2).
    let ru = by_group(&s, "ru");
    assert_eq!(row(&ru.partitions[0]), (Some(4), 8, 4, Some(10.0), None));
    assert_eq!(ru.partitions[0].last_stable_offset, None);
    // Behind, read_committed: newest committed data record 2 (t = 2) − record 1 (t = 1).
    assert_eq!(
        row(&by_group(&s, "rc-behind").partitions[0]),
        (Some(2), 8, 6, Some(1.0), None)
    );
    let json = serde_json::to_value(rc).unwrap();
    assert_eq!(json["isolation"], "read_committed");
    assert_eq!(json["partitions"][0]["note"], "only_markers_unread");
    assert!(serde_json::to_value(ru).unwrap().get("isolation").is_none());
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn an_open_transaction_holds_read_committed_lag_at_the_last_stable_offset_and_is_reported() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    let producer = kafka.transactional("txn-open");
    // Committed: 0–2 (t = 0..2 s), marker 3. Open: 4–5, written 60 s "ago".
    kafka.transaction(&producer, "t", 0, &ts(&[0, 1, 2]), Some(true));
    let started = now_ms() - 60_000;
    kafka.transaction(&producer, "t", 0, &[started, started + 1000], None);
    kafka.commit("rc", "t", &[(0, 2)]);
    kafka.commit("ru", "t", &[(0, 2)]);
    let specs = [
        spec("rc", Isolation::ReadCommitted),
        spec("ru", Isolation::ReadUncommitted),
    ];
    let mut probe = LagProbe::connect(kafka.settings(), &specs).unwrap();
    let s = probe.snapshot();
    let rc = by_group(&s, "rc");
    assert!(rc.problems.is_empty(), "{:?}", rc.problems);
    let p = &rc.partitions[0];
    // Measured to the last stable offset 4: records 2 (t = 2) − 1 (t = 1).
    assert_eq!(row(p), (Some(2), 6, 2, Some(1.0), None));
    assert_eq!(p.last_stable_offset, Some(4));
    let open = p
        .open_transaction
        .expect("the open transaction is reported");
    assert_eq!((open.first_offset, open.held_back), (4, 2));
    let age = open.age_s.expect("its age is known");
    assert!((60.0..3600.0).contains(&age), "age {age}");
    assert!(
        rc.notes
            .iter()
            .any(|n| n.starts_with("t/0: an open transaction since offset 4 (open for")),
        "{:?}",
        rc.notes
    );
    // read_uncommitted: to the high watermark, no transaction to report.
    let ru = by_group(&s, "ru");
    assert_eq!(ru.partitions[0].lag_messages, 4);
    assert_eq!(ru.partitions[0].open_transaction, None);
    assert!(
        !ru.notes.iter().any(|n| n.contains("open transaction")),
        "{:?}",
        ru.notes
    );

    // It commits: the last stable offset reaches H (7), the note goes.
    producer
        .commit_transaction(std::time::Duration::from_secs(30))
        .unwrap();
    // The coordinator writes the commit marker after EndTxn returns: poll until it is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let s = loop {
        let s = probe.snapshot();
        if by_group(&s, "rc").partitions[0].last_stable_offset == Some(7) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no commit marker: {s:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let rc = by_group(&s, "rc");
    let p = &rc.partitions[0];
    assert_eq!((p.last_stable_offset, p.high_watermark), (Some(7), 7));
    assert_eq!(p.lag_messages, 5);
    assert_eq!(p.open_transaction, None);
    assert!(
        !rc.notes.iter().any(|n| n.contains("open transaction")),
        "{:?}",
        rc.notes
    );
    assert_eq!(p.lag_seconds, Some((started - T0) as f64 / 1000.0));
}

#[test]
fn lag_isolation_flag_measures_read_committed_from_the_command_line() {
    let kafka = Kafka::apache();
    kafka.create_topic("t", 1, &[]);
    let producer = kafka.transactional("txn-cli");
    kafka.transaction(&producer, "t", 0, &ts(&[0, 1, 2]), Some(true));
    kafka.transaction(&producer, "t", 0, &[now_ms()], None);
    kafka.commit("g", "t", &[(0, 1)]);
    let args = |isolation: &'static str| {
        let mut a = vec!["lag", "--brokers", kafka.bootstrap.as_str(), "--group", "g"];
        a.extend(["--topic", "t", "--once", "--json", "--isolation", isolation]);
        a
    };
    let out = spotdrill(&args("read_committed"));
    out.expect_code(0);
    let g: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(g["isolation"], "read_committed");
    // To the last stable offset 4: record 2 (t = 2; 3 is a marker) − record 0 (t = 0).
    assert_eq!(g["lag_messages"], 3);
    assert_eq!(g["lag_seconds"], 2.0);
    assert_eq!(g["partitions"][0]["last_stable_offset"], 4);
    assert_eq!(g["partitions"][0]["open_transaction"]["first_offset"], 4);
    // The open transaction, and the group's manual assignment (standalone commits, no members).
    let notes = g["notes"].as_array().unwrap();
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.as_str().unwrap().contains("open transaction"))
            .count(),
        1,
        "{notes:?}"
    );

    let out = spotdrill(&args("read_uncommitted"));
    out.expect_code(0);
    let g: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(g.get("isolation").is_none());
    assert_eq!(g["lag_messages"], 4);
    let notes = g["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("open transaction")),
        "{notes:?}"
    );

    let bad = spotdrill(&args("serializable"));
    bad.expect_code(2);
    assert!(bad.stderr.contains("read_committed"), "{}", bad.stderr);
}
