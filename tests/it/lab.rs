//! The lab against a real broker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use spotdrill::lab::producer::{self, TopicLoad};
use tokio_util::sync::CancellationToken;

use crate::support::kafka::Kafka;

#[test]
fn the_telemetry_producer_keeps_its_rate_size_and_timestamps() {
    let kafka = Kafka::mock();
    kafka.create_topic("telemetry", 4, &[]);
    let cancel = CancellationToken::new();
    let load = TopicLoad {
        topic: "telemetry".into(),
        partitions: 4,
        rate: 200.0,
        message_bytes: 300,
    };
    let started = Instant::now();
    let running = producer::spawn(&kafka.settings(), load, cancel.clone()).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    cancel.cancel();
    running.thread.join().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let delivered = running
        .stats
        .delivered
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        running
            .stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let expected = 200.0 * seconds;
    assert!(
        (delivered as f64) > expected * 0.85 && (delivered as f64) < expected * 1.05,
        "{delivered} records in {seconds:.2}s at 200/s"
    );

    // Spread evenly over the partitions, every record delivered is in the log.
    let consumer: BaseConsumer = kafka.config().set("group.id", "check").create().unwrap();
    let mut total = 0;
    for p in 0..4 {
        let (low, high) = consumer
            .fetch_watermarks("telemetry", p, Duration::from_secs(5))
            .unwrap();
        let n = high - low;
        assert!(
            (n - delivered as i64 / 4).abs() <= 1,
            "partition {p}: {n} of {delivered}"
        );
        total += n;
    }
    assert_eq!(total, delivered as i64);

    // A record: the asked size, a fresh CreateTime timestamp.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("telemetry", 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let msg = loop {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => break m,
            Some(Err(_)) => continue,
            None => panic!("no record"),
        }
    };
    assert_eq!(msg.payload().map(<[u8]>::len), Some(300));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = msg.timestamp().to_millis().unwrap();
    assert!(
        now - ts < 10_000 && ts <= now,
        "timestamp {ts} vs now {now}"
    );
}
