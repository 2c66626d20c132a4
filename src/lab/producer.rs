//! The lab's telemetry producer: timestamped records at a set rate and size, spread over a
//! topic's partitions, the way access points feed Kafka. It runs on its own thread (librdkafka's
//! producer API is blocking) until its cancellation token fires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use tokio_util::sync::CancellationToken;

use crate::kafka::{KafkaSettings, SettingsError};

/// What to produce into one topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicLoad {
    pub topic: String,
    pub partitions: i32,
    /// Messages per second over all partitions.
    pub rate: f64,
    /// Payload size of each message.
    pub message_bytes: usize,
}

/// Counts, shared with whoever watches the producer.
#[derive(Debug, Default)]
pub struct ProducerStats {
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot create the telemetry producer: {0}")]
    Client(#[from] KafkaError),
    #[error("topic `{0}` has no partitions to produce to")]
    NoPartitions(String),
}

struct Counting(Arc<ProducerStats>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = match result {
            Ok(_) => &self.0.delivered,
            Err(_) => &self.0.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often the pacing loop wakes up.
const TICK: Duration = Duration::from_millis(5);

/// A running producer: its counters, and the thread to join after cancelling.
pub struct RunningProducer {
    pub stats: Arc<ProducerStats>,
    pub thread: JoinHandle<()>,
}

/// Start producing `load` until `cancel` fires; the thread flushes what is queued before it ends.
pub fn spawn(
    settings: &KafkaSettings,
    load: TopicLoad,
    cancel: CancellationToken,
) -> Result<RunningProducer, ProducerError> {
    if load.partitions < 1 {
        return Err(ProducerError::NoPartitions(load.topic));
    }
    let stats = Arc::new(ProducerStats::default());
    let producer: BaseProducer<Counting> = settings
        .client_config()?
        // Batches of ~500 ms: the mock broker finds a fetch offset by walking its message sets
        // one by one, so one set per record makes every fetch slower as the log grows.
        .set("linger.ms", "500")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Counting(stats.clone()))?;
    let shared = stats.clone();
    let thread = std::thread::Builder::new()
        .name(format!("lab-producer-{}", load.topic))
        .spawn(move || run(&producer, &load, &shared, &cancel))
        .map_err(|e| ProducerError::Client(KafkaError::ClientCreation(e.to_string())))?;
    Ok(RunningProducer { stats, thread })
}

fn run(
    producer: &BaseProducer<Counting>,
    load: &TopicLoad,
    stats: &ProducerStats,
    cancel: &CancellationToken,
) {
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut partition = 0;
    while !cancel.is_cancelled() {
        // As many records as the rate allows by now: no drift, no bursts beyond one tick.
        let due = (load.rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due && !cancel.is_cancelled() {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let payload = telemetry(sent, now_ms, load.message_bytes);
            let record = BaseRecord::<(), [u8]>::to(&load.topic)
                .partition(partition)
                .timestamp(now_ms)
                .payload(&payload);
            match producer.send(record) {
                Ok(()) => {
                    sent += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    partition = (partition + 1) % load.partitions;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Queue full (the broker is away): wait for room instead of spinning.
                    break;
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    sent += 1;
                }
            }
        }
        // Serve delivery reports without waiting, then sleep: rdkafka's `poll(timeout)` spins
        // on the clock while it waits (40% of a core for two producers, found with perf).
        producer.poll(Duration::ZERO);
        std::thread::sleep(TICK);
    }
    let _ = producer.flush(Duration::from_secs(5));
}

/// A telemetry payload of exactly `bytes` bytes: a small JSON document padded with spaces.
fn telemetry(seq: u64, ts_ms: i64, bytes: usize) -> Vec<u8> {
    let mut body = format!(
        r#"{{"seq":{seq},"ts":{ts_ms},"ap":"ap-{:04}"}}"#,
        seq % 10_000
    )
    .into_bytes();
    body.resize(bytes, b' ');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_size() {
        assert_eq!(telemetry(7, 1_000, 512).len(), 512);
        assert_eq!(telemetry(7, 1_000, 10).len(), 10);
        assert!(
            String::from_utf8(telemetry(7, 1_000, 64))
                .unwrap()
                .starts_with(r#"{"seq":7,"#)
        );
    }
}
