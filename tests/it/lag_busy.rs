//! Lag in seconds on busy brokers (issue 17 item 4): a topic of 512 partitions whose every offset
//! moves — a producer writing to every partition in turn and a consumer that reads everything
//! and commits what it had read one tick earlier — sampled every second by the real
//! `spotdrill lag`. Every lagging partition of every snapshot must carry its lag in seconds: no
//! null, no "record timestamps not read" problem, no gap.
//!
//! Its preconditions (enough partitions lagging, every commit moving) need the CPU: the test
//! script runs this module after the rest of the suite, alone (`QUIET` in scripts/test).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::kafka::Kafka;
use crate::util::spotdrill;

const TOPIC: &str = "busy";
const GROUP: &str = "busy-consumer";
const PARTITIONS: i32 = 512;
/// Records per second over all partitions (each partition gets one about every half second).
const RATE: u32 = 1000;
/// How often the consumer commits, one tick late.
const COMMIT_EVERY: Duration = Duration::from_millis(500);
const SNAPSHOTS: usize = 6;

/// The producer and the committing consumer, running until dropped.
struct Busy {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Busy {
    fn start(kafka: &Kafka) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        // One record per batch: tansu's high watermark is wrong for bigger batches.
        let producer: BaseProducer = kafka
            .config()
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        let consumer: BaseConsumer = kafka
            .config()
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let threads = vec![
            std::thread::spawn({
                let stop = stop.clone();
                move || produce(&producer, &stop)
            }),
            std::thread::spawn({
                let (stop, commits) = (stop.clone(), commits.clone());
                move || consume(&consumer, &stop, &commits)
            }),
        ];
        let busy = Busy {
            stop,
            commits,
            threads,
        };
        // Sample only once the consumer has committed a few times: every partition has moved.
        while busy.commits.load(Ordering::Relaxed) < 3 {
            std::thread::sleep(Duration::from_millis(100));
        }
        busy
    }
}

/// RATE records a second, every partition in turn, stamped with the producer's clock.
fn produce(producer: &BaseProducer, stop: &AtomicBool) {
    let tick = Duration::from_millis(10);
    let per_tick = (RATE / 100) as i32;
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..per_tick {
            let record = BaseRecord::<(), str>::to(TOPIC)
                .partition(next)
                .payload("telemetry");
            if producer.send(record).is_err() {
                break;
            }
            next = (next + 1) % PARTITIONS;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(tick);
    }
    let _ = producer.flush(Duration::from_secs(10));
}

/// Read every partition from the start; every COMMIT_EVERY commit the positions of the tick
/// before (so commits trail the reads, and every partition lags by a record or two).
fn consume(consumer: &BaseConsumer, stop: &AtomicBool, commits: &AtomicU64) {
    let mut all = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let _ = all.add_partition(TOPIC, p).set_offset(Offset::Beginning);
    }
    consumer.assign(&all).expect("assign");
    let mut read: HashMap<i32, i64> = HashMap::new();
    let mut previous: HashMap<i32, i64> = HashMap::new();
    let mut last_commit = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            read.insert(m.partition(), m.offset() + 1);
        }
        if last_commit.elapsed() < COMMIT_EVERY {
            continue;
        }
        last_commit = std::time::Instant::now();
        if !previous.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (&p, &o) in &previous {
                let _ = tpl.add_partition(TOPIC, p).set_offset(Offset::Offset(o));
            }
            if consumer.commit(&tpl, CommitMode::Sync).is_ok() {
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
        previous = read.clone();
    }
}

/// (committed, lag in messages, lag in seconds) of every partition of a `spotdrill lag` line.
fn partitions(line: &serde_json::Value) -> Vec<(Option<i64>, i64, Option<f64>)> {
    line["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["committed"].as_i64(),
                p["lag_messages"].as_i64().expect("lag_messages"),
                p["lag_seconds"].as_f64(),
            )
        })
        .collect()
}

fn every_lagging_partition_has_lag_seconds(kafka: &Kafka) {
    kafka.create_topic(TOPIC, PARTITIONS, &[]);
    let busy = Busy::start(kafka);
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        GROUP,
        "--topic",
        TOPIC,
        "--interval",
        "1s",
        "--timeout",
        "5s",
        "--samples",
        &SNAPSHOTS.to_string(),
        "--json",
    ]);
    drop(busy);
    out.expect_code(0);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), SNAPSHOTS, "{}", out.stdout);
    let mut first_commits: Option<Vec<Option<i64>>> = None;
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["status"], "ok", "snapshot {n}: {line}");
        assert!(
            line["problems"].is_null(),
            "snapshot {n}: {}",
            line["problems"]
        );
        assert!(
            line["lag_seconds"].is_f64(),
            "snapshot {n}: no lag in seconds"
        );
        let parts = partitions(line);
        assert_eq!(parts.len(), PARTITIONS as usize);
        let missing: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].1 > 0 && parts[i].2.is_none())
            .collect();
        assert_eq!(
            missing,
            Vec::<usize>::new(),
            "snapshot {n}: lagging partitions without lag seconds"
        );
        // The topic is busy: many partitions lag in every snapshot (how many depends on how
        // the producer and the consumer are scheduled; a loaded machine lets the consumer keep
        // up with more of them).
        let lagging = parts.iter().filter(|p| p.1 > 0).count();
        assert!(
            lagging >= PARTITIONS as usize / 16,
            "snapshot {n}: only {lagging} lagging"
        );
        let commits: Vec<Option<i64>> = parts.iter().map(|p| p.0).collect();
        first_commits.get_or_insert(commits);
    }
    // Every offset moved while sampling: every partition's commit advanced.
    let first = first_commits.unwrap();
    let last = partitions(&lines[SNAPSHOTS - 1]);
    let still: Vec<usize> = (0..last.len())
        .filter(|&i| last[i].0.unwrap_or(-1) <= first[i].unwrap_or(-1))
        .collect();
    assert_eq!(
        still,
        Vec::<usize>::new(),
        "partitions whose commit did not move"
    );
}

#[test]
fn busy_topic_has_lag_seconds_in_every_snapshot_on_tansu() {
    every_lagging_partition_has_lag_seconds(&Kafka::tansu());
}

#[test]
fn busy_topic_has_lag_seconds_in_every_snapshot_on_apache_kafka() {
    every_lagging_partition_has_lag_seconds(&Kafka::apache());
}
