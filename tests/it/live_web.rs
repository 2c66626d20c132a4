//! The live page (`--web`): a lab game day followed in a real browser (Debian's chromium driven
//! by playwright-core) through a connection that is cut mid-run, and the HTTP rules: the token
//! off loopback, the resume point of the event stream, nothing but the page served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::proxy::Proxy;
use crate::util::{Cmd, Running, plan_fixture, root, wait_for};

const TOKEN: &str = "a-token-for-the-room-0123456789";

/// The address in `live page: http://ADDR/` on the command's stderr, once printed.
fn page_addr(run: &Running) -> SocketAddr {
    let mut found = None;
    wait_for("the live page's address", Duration::from_secs(60), || {
        let err = run.stderr.text();
        found = err
            .split_once("live page: http://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(addr, _)| addr.parse::<SocketAddr>().ok());
        found.is_some()
    });
    let addr = found.unwrap();
    // 0.0.0.0 is reached through loopback.
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

fn journal_has(run: &Path, event: &str) -> bool {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap_or_default()
        .contains(&format!("\"event\":\"{event}\""))
}

/// Per sample line of samples.csv (header skipped), its application: line k is sample k.
fn sample_apps(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("samples.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').nth(2).unwrap_or("").to_owned())
        .collect()
}

/// What the page holds for `app`: its sequence numbers, in order.
fn page_seqs(b: &mut Browser, app: &str) -> Vec<u64> {
    let v = b.eval(&format!(
        "(window.spotdrillLive.points.get({app:?}) || []).map(p => p.seq)"
    ));
    serde_json::from_value(v).unwrap()
}

/// The page holds each sample of `app` up to its newest exactly once: no gap, no duplicate.
#[track_caller]
fn assert_points_match_samples(b: &mut Browser, run: &Path, app: &str) {
    let seqs = page_seqs(b, app);
    let last = *seqs.last().expect("points on the page");
    let expected: Vec<u64> = sample_apps(run)
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == app)
        .map(|(i, _)| i as u64 + 1)
        .take_while(|&seq| seq <= last)
        .collect();
    assert_eq!(seqs, expected, "the page's points against samples.csv");
    let drawn = b.eval(&format!(
        "document.querySelector('path.lag[data-application={app:?}]').dataset.points"
    ));
    assert_eq!(drawn, Value::from(seqs.len().to_string()));
}

/// A lab game day with `--web`: the page loads, its chart gains points as samples arrive, the
/// injection shows as a mark, a cut connection resumes without losing or repeating a point,
/// and the verdict appears at the end, as report.json says it.
#[test]
fn a_lab_game_day_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_fixture("live-storm.yaml", &[])).unwrap();
    let run_dir = dir.path().join("run");
    let mut run = Cmd::new([
        "run",
        plan.to_str().unwrap(),
        "--yes",
        "--web",
        "127.0.0.1:0",
    ])
    .arg("--out")
    .arg(&run_dir)
    .locks(dir.path().join("locks"))
    .spawn();
    let proxy = Proxy::to(page_addr(&run));
    let mut b = Browser::start();
    b.open(&format!("http://{}/", proxy.addr));
    let long = Duration::from_secs(120);
    b.wait_for(
        "the page to connect and show the plan",
        "document.getElementById('connection').dataset.state === 'open' && \
         document.getElementById('plan').textContent === 'live storm lab'",
        long,
    );
    let first = b
        .wait_for(
            "the chart's first points",
            "Number(document.querySelector('path.lag[data-application=\"app\"]')?.dataset.points)",
            long,
        )
        .as_u64()
        .unwrap();
    let more = format!(
        "Number(document.querySelector('path.lag[data-application=\"app\"]').dataset.points) >= {}",
        first + 4
    );
    b.wait_for("the chart to gain points", &more, long);

    wait_for("the first injection", long, || {
        journal_has(&run_dir, "injected")
    });
    b.wait_for(
        "an injection mark on the chart",
        "document.querySelectorAll('figure[data-application=\"app\"] g.injection').length",
        Duration::from_secs(30),
    );
    // What the terminal dashboard shows, the page shows: the band, the step's recovery clock,
    // capacity as probed, and the injection in the timeline (the clock first: a step observes
    // for a few seconds, and the second step gives it another chance).
    for (what, js) in [
        (
            "the recovery clock of the step observed",
            "/^\\d+:\\d\\d$/.test(document.querySelector('.steps li[data-state=\"observing\"] .clock')?.textContent.trim())",
        ),
        (
            "the baseline band",
            "document.querySelectorAll('figure[data-application=\"app\"] rect.band').length",
        ),
        (
            "capacity",
            "/supervisors/.test(document.querySelector('.target p.capacity')?.textContent)",
        ),
        (
            "the injection in the timeline",
            "[...document.querySelectorAll('#events li')].some((l) => /terminat/.test(l.textContent))",
        ),
    ] {
        b.wait_for(what, js, Duration::from_secs(30));
    }
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    b.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 40_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );

    reconnect_after_a_cut(&mut b, &proxy, &run_dir);

    b.wait_for(
        "the verdict",
        "!document.getElementById('verdict').hidden && document.getElementById('verdict').dataset.verdict",
        Duration::from_secs(180),
    );
    let out = run.wait(Duration::from_secs(120));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let shown = b.eval("document.getElementById('verdict').dataset.verdict");
    assert_eq!(shown, report["verdict"], "{}", out.stderr);
    assert_eq!(
        b.eval("document.getElementById('verdict').textContent"),
        Value::from(format!(
            "VERDICT {} · exit code {}",
            report["verdict"].as_str().unwrap().to_uppercase(),
            out.code
        ))
    );
    // Each target's ladder says the tolerance as report.json bounds it.
    for t in report["targets"].as_array().unwrap() {
        let n = t["tolerated_terminations"].as_u64().unwrap();
        let want = match t["tolerance_bound"].as_str() {
            Some("at_least") => format!("tolerates ≥ {n}"),
            _ => format!("tolerates {n}"),
        };
        let name = t["name"].as_str().unwrap();
        let shown = b.eval(&format!(
            "document.querySelector('.target[data-target=\"{name}\"] h3').textContent"
        ));
        assert!(
            shown.as_str().is_some_and(|h| h.ends_with(&want)),
            "{name}: {shown} should end with {want:?}"
        );
    }
    b.wait_for(
        "the stream's end",
        "document.getElementById('connection').dataset.state === 'ended'",
        Duration::from_secs(10),
    );
    assert_points_match_samples(&mut b, &run_dir, "app");
    assert_eq!(b.problems(), Vec::<String>::new());
}

/// Cut the page's connection: the browser reconnects by itself (EventSource, Last-Event-ID) and
/// the server sends only what it has not seen.
fn reconnect_after_a_cut(b: &mut Browser, proxy: &Proxy, run_dir: &Path) {
    let before = page_seqs(b, "app").len();
    assert!(
        proxy.cut_all() >= 1,
        "the page's stream goes through the proxy"
    );
    b.wait_for(
        "the page to reconnect",
        "window.spotdrillLive.connects >= 2 && \
         document.getElementById('connection').dataset.state === 'open'",
        Duration::from_secs(30),
    );
    let grown = format!(
        "window.spotdrillLive.points.get('app').length >= {}",
        before + 4
    );
    b.wait_for(
        "points after the reconnect",
        &grown,
        Duration::from_secs(30),
    );
    assert_points_match_samples(b, run_dir, "app");
}

/// A GET on loopback with extra header lines; the status and what the body said within `read`.
fn get(addr: SocketAddr, path: &str, headers: &str, read: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let host = match headers.contains("Host:") {
        true => String::new(),
        false => format!("Host: {addr}\r\n"),
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\n{host}{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + read;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The recorded run without its end, in a directory of its own: `watch` follows it until the
/// test writes the end.
fn unfinished_run() -> (tempfile::TempDir, PathBuf, String) {
    let src = root().join("tests/fixtures/runs/two-targets");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let journal = std::fs::read_to_string(src.join("journal.jsonl")).unwrap();
    let (head, last) = journal.trim_end().rsplit_once('\n').unwrap();
    assert!(last.contains("\"run_finished\""), "{last}");
    std::fs::write(run.join("journal.jsonl"), format!("{head}\n")).unwrap();
    std::fs::copy(src.join("samples.csv"), run.join("samples.csv")).unwrap();
    (dir, run, format!("{last}\n"))
}

/// Bound anywhere but loopback, the page refuses to start without a token (bad input, exit 2,
/// nothing run), and with one it answers only requests that carry it.
#[test]
fn off_loopback_the_page_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_fixture("live-storm.yaml", &[])).unwrap();
    let out_dir = dir.path().join("run");
    let refused = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--web", "0.0.0.0:0"])
        .arg("--out")
        .arg(&out_dir)
        .env_remove("SPOTDRILL_WEB_TOKEN")
        .locks(dir.path().join("locks"))
        .run();
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains("--web 0.0.0.0:0: 0.0.0.0 is not a loopback address")
            && refused.stderr.contains("SPOTDRILL_WEB_TOKEN"),
        "{}",
        refused.stderr
    );
    assert!(!out_dir.exists(), "nothing ran");
    Cmd::new(["watch", out_dir.to_str().unwrap(), "--web", "0.0.0.0:0"])
        .env("SPOTDRILL_WEB_TOKEN", "short")
        .run()
        .expect_code(2);

    let (_keep, run, end) = unfinished_run();
    let watch = Cmd::new(["watch", run.to_str().unwrap(), "--web", "0.0.0.0:0"])
        .env("SPOTDRILL_WEB_TOKEN", TOKEN)
        .spawn();
    let addr = page_addr(&watch);
    assert!(
        !watch.stderr.text().contains(TOKEN),
        "the token is never printed"
    );
    let quick = Duration::from_secs(2);
    for path in ["/", "/state", "/events"] {
        assert_eq!(get(addr, path, "", quick).0, 401, "{path} without a token");
        let wrong = get(addr, &format!("{path}?token={TOKEN}x"), "", quick).0;
        assert_eq!(wrong, 401, "{path} with a wrong token");
    }
    let (status, page) = get(addr, &format!("/?token={TOKEN}"), "", quick);
    assert_eq!(status, 200);
    assert!(page.contains("<title>spotdrill live</title>"));
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, state) = get(addr, "/state", &bearer, quick);
    assert_eq!(status, 200);
    assert!(state.contains("\"plan\":\"report fixture\""), "{state}");
    finish_watch(watch, &run, &end, addr, &bearer);
}

/// Write the run's end: an open stream gets it and `end`, and `watch` exits with the run's code.
fn finish_watch(mut watch: Running, run: &Path, end: &str, addr: SocketAddr, auth: &str) {
    let auth = auth.to_owned();
    let stream = std::thread::spawn(move || get(addr, "/events", &auth, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("journal.jsonl"))
        .unwrap()
        .write_all(end.as_bytes())
        .unwrap();
    let code: i32 = serde_json::from_str::<Value>(end).unwrap()["exit_code"]
        .as_i64()
        .unwrap() as i32;
    watch.wait(Duration::from_secs(60)).expect_code(code);
    let (status, events) = stream.join().unwrap();
    assert_eq!(status, 200);
    assert!(events.contains("\"finished\":{"), "{events}");
    assert!(events.trim_end().ends_with("event: end\ndata:"), "{events}");
}

/// The event stream resumes after `Last-Event-ID`: only newer samples, no reset; without it, a
/// reset and every sample from the first. Only the page, its state and its stream are served:
/// no file of the run directory.
#[test]
fn the_stream_resumes_after_the_last_event_id_and_serves_no_files() {
    let (_keep, run, end) = unfinished_run();
    let watch = Cmd::new(["watch", run.to_str().unwrap(), "--web", "127.0.0.1:0"])
        .env_remove("SPOTDRILL_WEB_TOKEN")
        .spawn();
    let addr = page_addr(&watch);
    let quick = Duration::from_secs(2);
    let samples = sample_apps(&run).len() as u64;
    assert!(samples > 10);
    let (status, fresh) = get(addr, "/events", "", quick);
    assert_eq!(status, 200);
    assert!(fresh.contains("text/event-stream"), "{fresh}");
    assert!(fresh.contains("event: reset"));
    assert_eq!(first_seq(&fresh), Some(1));
    assert!(
        fresh.contains(&format!("id: {samples}\n")),
        "the last sample's id"
    );
    let (_, resumed) = get(addr, "/events", "Last-Event-ID: 7\r\n", quick);
    assert!(!resumed.contains("event: reset"), "{resumed}");
    assert_eq!(first_seq(&resumed), Some(8));
    let (_, caught_up) = get(
        addr,
        "/events",
        &format!("Last-Event-ID: {samples}\r\n"),
        quick,
    );
    assert!(!caught_up.contains("event: samples"), "nothing new to send");
    assert!(caught_up.contains("event: state"));
    for path in [
        "/journal.jsonl",
        "/samples.csv",
        "/../journal.jsonl",
        "/report.json",
    ] {
        assert_eq!(get(addr, path, "", quick).0, 404, "{path}");
    }
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let line = journal.lines().next().unwrap();
    assert!(!fresh.contains(line), "no raw journal line is sent");
    let foreign = get(addr, "/state", "Host: attacker.example\r\n", quick);
    assert_eq!(foreign.0, 403, "{}", foreign.1);
    finish_watch(watch, &run, &end, addr, "");
}

/// The first sample's sequence number in a stream's text.
fn first_seq(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("\"seq\":")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
