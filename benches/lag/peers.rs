//! The peers on moving offsets (`--peers klag,python`): spotdrill's `lag` CLI, klag-exporter
//! 0.1.29 (message mode: it reads record timestamps, like spotdrill) and the confluent-kafka peer,
//! one after the other against the same broker while every offset moves (a record per partition
//! and a commit per group and partition every second). Then, with the churn stopped, whether
//! they agree on lag in messages.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{PEER_LIMIT, Usage, churn, group_name, median, proc_usage, root, topic_name};

/// One tool's figures over a moving run.
pub struct Figures {
    pub tool: &'static str,
    pub snapshots: usize,
    pub median_ms: f64,
    pub max_ms: f64,
    /// CPU time per snapshot, and as a share of one core over the run.
    pub cpu_ms_per_snapshot: f64,
    pub cpu_pct: f64,
    pub rss_mb: f64,
    /// Lagging partitions without lag in seconds, or snapshots with problems (spotdrill only).
    pub gaps: Option<usize>,
    /// Lag in messages per group once the churn stopped.
    pub lag: Option<BTreeMap<String, i64>>,
}

/// /proc readings of a process, every 100 ms, until it exits or is stopped.
pub struct Monitor {
    usage: Arc<Mutex<Vec<Usage>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(pid: u32) -> Monitor {
        let usage: Arc<Mutex<Vec<Usage>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (usage, stop) = (usage.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some((cpu, rss, hwm)) = proc_usage(pid) else {
                        break;
                    };
                    usage.lock().unwrap().push((Instant::now(), cpu, rss, hwm));
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Monitor {
            usage,
            stop,
            thread: Some(thread),
        }
    }

    /// CPU seconds and wall seconds from `from` to the last reading, and the highest RSS (MB).
    pub fn window(&mut self, from: Instant) -> (f64, f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let usage = self.usage.lock().unwrap();
        let window: Vec<&Usage> = usage.iter().filter(|u| u.0 >= from).collect();
        let rss = usage.iter().map(|u| u.2).max().unwrap_or(0) as f64 / 1024.0;
        match (window.first(), window.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1, (b.0 - a.0).as_secs_f64(), rss),
            _ => (f64::NAN, f64::NAN, rss),
        }
    }
}

fn figures(tool: &'static str, took: &[f64], cpu: (f64, f64, f64), counted: usize) -> Figures {
    Figures {
        tool,
        snapshots: took.len(),
        median_ms: median(took.to_vec()),
        max_ms: took.iter().copied().fold(0.0, f64::max),
        cpu_ms_per_snapshot: cpu.0 * 1000.0 / counted.max(1) as f64,
        cpu_pct: cpu.0 / cpu.1 * 100.0,
        rss_mb: cpu.2,
        gaps: None,
        lag: None,
    }
}

/// spotdrill: `spotdrill lag --interval 1s --json` for `samples` snapshots. Counts the gaps: a
/// sample that is not `ok`, has problems, or a lagging partition without lag in seconds.
pub fn spotdrill(bootstrap: &str, partitions: i32, groups: usize, samples: usize) -> Figures {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotdrill"));
    cmd.args([
        "lag",
        "--brokers",
        bootstrap,
        "--topic",
        &topic_name(partitions),
    ])
    .args(["--interval", "1s", "--timeout", "5s", "--json"])
    .args(["--samples", &samples.to_string()]);
    for g in 0..groups {
        cmd.args(["--group", &group_name(partitions, g)]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("spotdrill lag runs");
    let mut monitor = Monitor::start(child.id());
    let stdout = child.stdout.take().unwrap();
    let (mut took, mut gaps, mut from) = (Vec::new(), 0, None);
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        gaps += usize::from(v["status"] != "ok" || !v["problems"].is_null());
        gaps += v["partitions"].as_array().map_or(0, |ps| {
            ps.iter()
                .filter(|p| p["lag_messages"].as_i64() > Some(0) && p["lag_seconds"].is_null())
                .count()
        });
        if v["group"] == group_name(partitions, 0) {
            took.push(v["took_ms"].as_f64().unwrap_or(f64::NAN));
            // From the 3rd snapshot on: connecting and the cold first reads excluded.
            if took.len() == 2 {
                from = Some(Instant::now());
            }
        }
    }
    assert!(child.wait().unwrap().success(), "spotdrill lag failed");
    let cpu = monitor.window(from.unwrap_or_else(Instant::now));
    let counted = took.len().saturating_sub(2);
    let mut f = figures("spotdrill", &took[2.min(took.len())..], cpu, counted);
    f.gaps = Some(gaps);
    f
}

/// Lag in messages per group from one `spotdrill lag --once --json`.
pub fn spotdrill_lag(bootstrap: &str, partitions: i32, groups: usize) -> BTreeMap<String, i64> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotdrill"));
    cmd.args([
        "lag",
        "--brokers",
        bootstrap,
        "--topic",
        &topic_name(partitions),
    ])
    .args(["--once", "--json", "--timeout", "30s"]);
    for g in 0..groups {
        cmd.args(["--group", &group_name(partitions, g)]);
    }
    let out = cmd.output().expect("spotdrill lag runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let group = v["group"].as_str().unwrap_or_default().to_owned();
            (group, v["lag_messages"].as_i64().unwrap_or(-1))
        })
        .collect()
}

/// klag-exporter's binary, installed by bench/run-lag into .tools/klag.
fn klag_binary() -> std::path::PathBuf {
    root().join(".tools/klag/bin/klag-exporter")
}

/// A running klag-exporter, its cycle times read from its debug log.
pub struct Klag {
    child: Child,
    port: u16,
    cycles: Arc<Mutex<Vec<(Instant, f64)>>>,
}

impl Drop for Klag {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// klag-exporter's poll interval. Its collection timeout is the poll interval (up to 10 s), and
/// with its defaults (5 timestamp fetches at a time) a message-mode cycle over 512 moving
/// partitions on Apache Kafka did not finish within 10 s (every cycle "Collection timed out"),
/// so it gets 10 s and 32 fetches at a time (the most its default 64 blocking threads allow
/// beside its 10 concurrent groups), and the table shows how long a cycle took.
const KLAG_POLL: &str = "10s";

/// klag-exporter watching exactly the configuration's groups (the topic holds commits of more:
/// a pattern over all of them made it read 20 × 512 timestamps a cycle in the one-group rows).
fn klag_config(bootstrap: &str, partitions: i32, groups: usize, port: u16) -> String {
    let whitelist: Vec<String> = (0..groups)
        .map(|g| format!("\"^{}$\"", super::group_name(partitions, g)))
        .collect();
    let whitelist = whitelist.join(", ");
    format!(
        "[exporter]\n\
         poll_interval = \"{KLAG_POLL}\"\n\
         http_port = {port}\n\
         http_host = \"127.0.0.1\"\n\
         granularity = \"partition\"\n\
         [exporter.timestamp_sampling]\n\
         enabled = true\n\
         mode = \"message\"\n\
         fetch_timeout = \"5s\"\n\
         max_concurrent_fetches = 32\n\
         [[clusters]]\n\
         name = \"bench\"\n\
         bootstrap_servers = \"{bootstrap}\"\n\
         group_whitelist = [{whitelist}]\n\
         topic_whitelist = [\"^bench-{partitions}$\"]\n"
    )
}

impl Klag {
    pub fn start(bootstrap: &str, partitions: i32, groups: usize) -> Option<Klag> {
        if !klag_binary().exists() {
            eprintln!("klag-exporter is not installed in .tools/klag: run ./bench/run-lag");
            return None;
        }
        let port = super::free_port();
        let path = std::env::temp_dir().join(format!("klag-bench-{port}.toml"));
        std::fs::write(&path, klag_config(bootstrap, partitions, groups, port)).unwrap();
        let child = Command::new(klag_binary())
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("klag-exporter runs");
        let cycles: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
        let seen = cycles.clone();
        // A cycle is done when its last-update timestamp moves; its length is then the
        // scrape-duration gauge (`kafka_lag_exporter_scrape_duration_seconds`).
        std::thread::spawn(move || {
            let mut last = None;
            loop {
                let Some(body) = metrics(port) else {
                    if last.is_some() {
                        return; // it was up and is gone: stopped
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let updated = gauge(&body, "kafka_lag_exporter_last_update_timestamp_seconds");
                if updated.is_some_and(|u| u > 0.0) && updated != last {
                    last = updated;
                    if let Some(d) = gauge(&body, "kafka_lag_exporter_scrape_duration_seconds") {
                        seen.lock().unwrap().push((Instant::now(), d * 1000.0));
                    }
                } else if updated.is_some() && last.is_none() {
                    last = Some(0.0);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Some(Klag {
            child,
            port,
            cycles,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `n` cycles completed (or a limit passed); returns how many did.
    pub fn wait_cycles(&self, n: usize, limit: Duration) -> usize {
        let t = Instant::now();
        loop {
            let done = self.cycles.lock().unwrap().len();
            if done >= n || t.elapsed() > limit {
                return done;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cycles(&self) -> Vec<(Instant, f64)> {
        self.cycles.lock().unwrap().clone()
    }

    /// `kafka_consumergroup_group_sum_lag` per group from /metrics.
    pub fn lag(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for line in metrics(self.port).unwrap_or_default().lines() {
            let Some(rest) = line.strip_prefix("kafka_consumergroup_group_sum_lag{") else {
                continue;
            };
            let group = rest
                .split("group=\"")
                .nth(1)
                .and_then(|g| g.split('"').next())
                .unwrap_or_default();
            let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if let Some(v) = value {
                *out.entry(group.to_owned()).or_insert(0) += v as i64;
            }
        }
        out
    }
}

/// klag-exporter's /metrics, or `None` while it does not answer.
fn metrics(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    // Read until the server closes, or (if it keeps the connection) until it goes quiet.
    let mut body = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    text.contains("\r\n\r\n").then_some(text)
}

/// The value of a gauge (its first series: with or without labels).
fn gauge(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let value = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse().ok()
    })
}

/// klag-exporter for `samples` cycles (after two cold ones), left running for the lag check.
pub fn klag(
    bootstrap: &str,
    partitions: i32,
    groups: usize,
    samples: usize,
) -> Option<(Figures, Klag)> {
    let k = Klag::start(bootstrap, partitions, groups)?;
    let mut monitor = Monitor::start(k.pid());
    let limit = Duration::from_secs(30) + Duration::from_secs(12) * samples as u32;
    k.wait_cycles(2, limit);
    let from = Instant::now();
    k.wait_cycles(2 + samples, limit);
    let cpu = monitor.window(from);
    let took: Vec<f64> = k.cycles().iter().skip(2).map(|c| c.1).collect();
    let f = figures("klag-exporter", &took, cpu, took.len());
    Some((f, k))
}

/// The confluent-kafka peer for `samples` snapshots (None past [`PEER_LIMIT`]).
pub fn python(bootstrap: &str, partitions: i32, groups: usize, samples: usize) -> Option<Figures> {
    let (v, cpu) = run_python(bootstrap, partitions, groups, samples, false)?;
    let took: Vec<f64> = v["snapshots_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    // Its CPU over its whole run (warm-up included), per snapshot taken (warm-up counted).
    let mut f = figures("confluent-kafka peer", &took, cpu, took.len() + 1);
    f.cpu_pct = cpu.0 / cpu.1 * 100.0;
    Some(f)
}

/// Lag in messages per group from one peer snapshot.
pub fn python_lag(
    bootstrap: &str,
    partitions: i32,
    groups: usize,
) -> Option<BTreeMap<String, i64>> {
    let (v, _) = run_python(bootstrap, partitions, groups, 1, true)?;
    let lag = v["lag_messages"].as_object()?;
    Some(
        lag.iter()
            .map(|(g, n)| (g.clone(), n.as_i64().unwrap_or(-1)))
            .collect(),
    )
}

fn run_python(
    bootstrap: &str,
    partitions: i32,
    groups: usize,
    samples: usize,
    no_warmup: bool,
) -> Option<(serde_json::Value, (f64, f64, f64))> {
    let mut cmd = Command::new(root().join(".venv/bin/python"));
    cmd.arg(root().join("bench/peers/lag_peer.py"))
        .args(["--brokers", bootstrap, "--topic", &topic_name(partitions)])
        .args(["--partitions", &partitions.to_string()])
        .args(["--samples", &samples.to_string()]);
    if no_warmup {
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
    let mut monitor = Monitor::start(child.id());
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    while child.try_wait().expect("peer status").is_none() {
        if started.elapsed() > PEER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = monitor.window(started);
    let out = reader.join().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some((v, cpu))
}

/// The moving-offsets comparison for one topic size and group count: prints one row per tool.
pub fn compare(bootstrap: &str, partitions: i32, groups: usize, o: &super::Options) {
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (b, s) = (bootstrap.to_owned(), stop.clone());
        std::thread::spawn(move || churn(b, partitions, groups, s))
    };
    std::thread::sleep(Duration::from_secs(2));
    let mut rows = vec![spotdrill(bootstrap, partitions, groups, o.samples + 2)];
    let with_klag = o.peers.iter().any(|p| p == "klag");
    // Each tool alone on the machine (klag-exporter stopped before the next one starts).
    if with_klag {
        // Its cycles are 10 s apart (KLAG_POLL): a few are enough.
        rows.extend(klag(bootstrap, partitions, groups, o.samples.min(4)).map(|(f, _)| f));
    }
    let with_python =
        o.peers.iter().any(|p| p == "python") && partitions as usize * groups <= 10_000;
    if with_python {
        rows.extend(python(bootstrap, partitions, groups, o.peer_samples));
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    // Lag in messages once nothing moves: every tool reads the same offsets.
    std::thread::sleep(Duration::from_secs(2));
    rows[0].lag = Some(spotdrill_lag(bootstrap, partitions, groups));
    let lag_of = |rows: &mut Vec<Figures>, tool: &str, lag: Option<BTreeMap<String, i64>>| {
        if let Some(r) = rows.iter_mut().find(|r| r.tool == tool) {
            r.lag = lag;
        }
    };
    if with_klag {
        let lag = Klag::start(bootstrap, partitions, groups).map(|k| {
            k.wait_cycles(2, Duration::from_secs(120));
            k.lag()
        });
        lag_of(&mut rows, "klag-exporter", lag);
    }
    if with_python {
        let lag = python_lag(bootstrap, partitions, groups);
        lag_of(&mut rows, "confluent-kafka peer", lag);
    }
    print_rows(partitions, groups, &rows);
}

fn print_rows(partitions: i32, groups: usize, rows: &[Figures]) {
    let ours = rows[0].median_ms;
    let reference = rows[0].lag.clone().unwrap_or_default();
    for r in rows {
        let agrees = match &r.lag {
            Some(l) if r.tool == "spotdrill" => format!("{} msgs", l.values().sum::<i64>()),
            Some(l) if *l == reference => "yes".into(),
            Some(l) => format!("NO ({} msgs)", l.values().sum::<i64>()),
            None => "-".into(),
        };
        println!(
            "{partitions:>10} {groups:>6} | {:<20} | {:>3} | {:>9.1} {:>9.1} | {:>8} | {:>9.1} {:>6.1}% | {:>6.0} | {:>5} | {}",
            r.tool,
            r.snapshots,
            r.median_ms,
            r.max_ms,
            if r.tool == "spotdrill" {
                "1×".to_owned()
            } else {
                format!("{:.1}×", r.median_ms / ours)
            },
            r.cpu_ms_per_snapshot,
            r.cpu_pct,
            r.rss_mb,
            r.gaps.map_or("-".into(), |g| g.to_string()),
            agrees,
        );
    }
}

pub fn print_header() {
    println!(
        "{:>10} {:>6} | {:<20} | {:>3} | {:>9} {:>9} | {:>8} | {:>9} {:>7} | {:>6} | {:>5} | lag in messages agrees",
        "partitions",
        "groups",
        "tool",
        "n",
        "median ms",
        "max ms",
        "÷ ours",
        "CPU ms/sn",
        "core",
        "RSS MB",
        "gaps"
    );
}
