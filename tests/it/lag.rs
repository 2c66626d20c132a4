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
            isolation: Default::default(),
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
fn exact_lag_on_apache_kafka() {
    exact_lag(&Kafka::apache());
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
            isolation: Default::default(),
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
            isolation: Default::default(),
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
            isolation: Default::default(),
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
            isolation: Default::default(),
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
    for kafka in [Kafka::mock(), Kafka::tansu(), Kafka::apache()] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_is_a_gap_and_sampling_resumes() {
    use spotdrill::observe::sampler;
    use tokio_util::sync::CancellationToken;

    let kafka = Kafka::mock();
    kafka.create_topic("t", 2, &[]);
    kafka.produce("t", 0, &ts(&[0, 5]));
    kafka.commit("g", "t", &[(0, 1), (1, 0)]);
    let mut settings = kafka.settings();
    // Short enough that an outage shows within seconds, long enough that a loaded machine
    // still reads the records a lag in seconds needs.
    settings.timeout = Duration::from_secs(3);
    let spec = GroupSpec {
        group: "g".into(),
        topics: vec!["t".into()],
        isolation: Default::default(),
    };
    let probe = LagProbe::connect(settings, &[spec]).unwrap();
    let cancel = CancellationToken::new();
    let (mut rx, handle) = sampler::spawn(probe, Duration::from_millis(200), cancel.clone());
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a snapshot within 30s")
            .expect("sampler running")
            .remove(0)
    };
    let first = next().await;
    assert_eq!((first.status, first.lag_seconds), (Status::Ok, Some(5.0)));

    kafka.cluster().broker_down(1).unwrap();
    let down = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        let s = next().await;
        seen.push(s.status.clone());
        if s.status == Status::Missing {
            assert_eq!((s.lag_messages, s.lag_seconds), (None, None));
            assert!(
                s.problems[0].contains("cannot reach Kafka"),
                "{:?}",
                s.problems
            );
            let json = serde_json::to_value(&s).unwrap();
            assert!(json["lag_seconds"].is_null());
            break;
        }
        // Each snapshot of a down broker waits out the 3 s timeout; on a loaded machine
        // librdkafka may need a few of them to notice: bounded in time, not in snapshots.
        assert!(
            down.elapsed() < Duration::from_secs(60),
            "no gap within 60 s after the broker went down: {seen:?}"
        );
    }

    kafka.cluster().broker_up(1).unwrap();
    let up = std::time::Instant::now();
    loop {
        let s = next().await;
        if s.status == Status::Ok {
            assert_eq!(s.lag_seconds, Some(5.0));
            break;
        }
        seen.push(s.status);
        // librdkafka reconnects with a backoff of up to 10 s (reconnect.backoff.max.ms).
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "sampling did not resume within 60 s: {seen:?}"
        );
    }
    cancel.cancel();
    handle.await.unwrap();
    // The channel closes once the task is gone.
    while rx.recv().await.is_some() {}
}

/// Not a test: the consumer process the kill test starts and SIGKILLs. It consumes in a group,
/// auto-commits every 200 ms, and prints its assignment each time it changes.
#[test]
#[ignore = "helper process for a_killed_consumer_stalls_its_partitions_until_the_survivor_takes_over"]
fn consumer_process() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (Ok(bootstrap), Ok(group), Ok(topic)) = (
        std::env::var("IT_BOOTSTRAP"),
        std::env::var("IT_GROUP"),
        std::env::var("IT_TOPIC"),
    ) else {
        return;
    };
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        // Cooperative rebalancing: the survivor keeps its own partitions while it takes over.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut last = String::new();
    loop {
        let _ = consumer.poll(Duration::from_millis(50));
        let mut parts: Vec<i32> = consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        parts.sort();
        let now = format!("{parts:?}");
        if now != last {
            println!("ASSIGNED {now}");
            last = now;
        }
    }
}

#[test]
fn a_killed_consumer_stalls_its_partitions_until_the_survivor_takes_over() {
    use std::collections::BTreeMap;
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    let kafka = Kafka::mock();
    kafka.create_topic("telemetry", 4, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    // A producer writing "now" records to every partition, 20 per second each.
    let producer = {
        let stop = stop.clone();
        let bootstrap = kafka.bootstrap.clone();
        std::thread::spawn(move || {
            use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
            let p: BaseProducer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "0")
                .create()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                for part in 0..4 {
                    let r = BaseRecord::<(), str>::to("telemetry")
                        .partition(part)
                        .timestamp(now)
                        .payload("x");
                    let _ = p.send(r);
                }
                p.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = p.flush(Duration::from_secs(5));
        })
    };
    let (tx, rx) = mpsc::channel::<(usize, Vec<i32>)>();
    let mut children: Vec<_> = (0..2)
        .map(|i| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "lag::consumer_process",
                    "--ignored",
                    "--nocapture",
                ])
                .env("IT_BOOTSTRAP", &kafka.bootstrap)
                .env("IT_GROUP", "coverage")
                .env("IT_TOPIC", "telemetry")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let out = std::io::BufReader::new(child.stdout.take().unwrap());
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in out.lines().map_while(Result::ok) {
                    if let Some(list) = line.strip_prefix("ASSIGNED ") {
                        let parts: Vec<i32> = list
                            .trim_matches(['[', ']'])
                            .split(", ")
                            .filter_map(|p| p.parse().ok())
                            .collect();
                        let _ = tx.send((i, parts));
                    }
                }
            });
            child
        })
        .collect();

    // Wait until the two consumers share the four partitions.
    let mut assigned: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(assigned.len() == 2
        && assigned.values().all(|p| !p.is_empty())
        && assigned.values().map(Vec::len).sum::<usize>() == 4)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, parts) = rx
            .recv_timeout(left)
            .expect("both consumers get partitions");
        assigned.insert(i, parts);
    }
    let victim = assigned[&0].clone();
    let survivor = assigned[&1].clone();

    let mut probe = probe(&kafka, "coverage", &["telemetry"]);
    let lag_of = |g: &GroupLag, parts: &[i32]| {
        g.partitions
            .iter()
            .filter(|p| parts.contains(&p.partition))
            .filter_map(|p| p.lag_seconds)
            .fold(0.0_f64, f64::max)
    };
    // Both consume: lag stays low.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let g = one(&mut probe);
        if g.lag_seconds.is_some_and(|s| s < 1.0)
            && g.partitions.iter().all(|p| p.committed.is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumers never caught up: {g:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    children[0].kill().unwrap();
    children[0].wait().unwrap();
    let mut victim_peak = 0.0_f64;
    let mut survivor_peak = 0.0_f64;
    let mut drained_after_peak = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let g = one(&mut probe);
        let (v, s) = (lag_of(&g, &victim), lag_of(&g, &survivor));
        victim_peak = victim_peak.max(v);
        survivor_peak = survivor_peak.max(s);
        if victim_peak >= 3.0 && v < 1.0 && s < 1.0 {
            drained_after_peak = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    children[1].kill().unwrap();
    children[1].wait().unwrap();
    // The killed consumer's partitions stall for the whole session timeout (3 s) and the
    // rebalance; the survivor's only while the rebalance blocks its commits.
    assert!(
        victim_peak >= 3.0,
        "the killed consumer's partitions {victim:?} peaked at {victim_peak}s"
    );
    assert!(
        victim_peak >= survivor_peak + 1.0,
        "the killed consumer's partitions {victim:?} peaked at {victim_peak}s, the survivor's \
         {survivor:?} at {survivor_peak}s"
    );
    assert!(drained_after_peak, "lag never drained after the takeover");
    eprintln!("victim {victim:?} peak {victim_peak}s, survivor {survivor:?} peak {survivor_peak}s");
}
