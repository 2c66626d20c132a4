//! Trust: spotdrill attacked from outside (SECURITY.md lists each threat with the test here that
//! covers it). Secrets never leak into any output; a crash never corrupts the journal or makes a
//! resume terminate twice; a target is run by one process at a time and a stale lock is cleared
//! only on purpose; no plan text makes loading panic or answer without a location.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run::{events, journal, start_in_background};
use crate::support::kafka::Kafka;
use crate::util::{Cmd, Outcome, Running, alive, root, wait_for};

#[path = "../../fuzz/invariants.rs"]
pub(crate) mod invariants;

// ---- helpers --------------------------------------------------------------------------------

/// A short storm lab plan: `nodes` × 2 slots running `workers`, the given ladder. With 6 × 2
/// running 8, capacity arithmetic predicts a tolerance of 2 ((6 − k) × 2 ≥ 8 ⇔ k ≤ 2).
fn lab_plan(nodes: u32, workers: u32, ladder: &'static [u32]) -> String {
    crate::run::Shape::storm(nodes, 2, workers, ladder).plan()
}

/// `spotdrill ARGS…` from the repository root with locks under `locks` and extra env.
fn spotdrill_with(args: &[&str], locks: &Path, env: &[(&str, &str)]) -> Outcome {
    Cmd::new(args).locks(locks).envs(env.iter().copied()).run()
}

/// `spotdrill run PLAN --yes --out OUT` in the background.
fn spawn_run(plan: &Path, out: &Path, locks: &Path) -> Running {
    Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--out"])
        .arg(out)
        .locks(locks)
        .spawn()
}

fn lab_pids(run: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(run.join("lab.json")).unwrap_or_default();
    let state: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut pids: Vec<i32> = state["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|n| n["pid"].as_i64())
                .map(|p| p as i32)
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = state["broker_pid"].as_i64().filter(|&p| p > 0) {
        pids.push(p as i32);
    }
    pids
}

/// Every node id of every intent, in order.
fn intended_nodes(journal: &[Value]) -> Vec<String> {
    events(journal, "intent")
        .iter()
        .flat_map(|i| i["nodes"].as_array().unwrap().iter())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_no_node_twice(journal: &[Value]) {
    let all = intended_nodes(journal);
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        all.len(),
        "a node was terminated twice: {all:?}"
    );
    // And no step was intended twice.
    let mut steps: Vec<(String, u64)> = events(journal, "intent")
        .iter()
        .map(|i| {
            (
                i["target"].as_str().unwrap().to_owned(),
                i["step"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = steps.len();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), n, "a step was injected twice");
}

// ---- 1. secrets -----------------------------------------------------------------------------

/// Distinctive secret values: none may appear in any output.
const SASL_PASSWORD: &str = "sasl-pw-Tr0ub4dor-SECRET-7731";
const AWS_KEY_ID: &str = "AKIATRUSTSECRET77310";
const AWS_SECRET_KEY: &str = "aws-secret-key-Tr0ub4dor-SECRET-7732";
const AWS_SESSION: &str = "aws-session-token-SECRET-7733";
const HEALTH_TOKEN: &str = "bearer-tok-SECRET-7734";

fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TRUST_KAFKA_PASSWORD", SASL_PASSWORD),
        ("AWS_ACCESS_KEY_ID", AWS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY),
        ("AWS_SESSION_TOKEN", AWS_SESSION),
        ("TRUST_HEALTH_TOKEN", HEALTH_TOKEN),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
}

/// Every secret (or recognizable part of one) that shows in `text`, with where and an excerpt.
fn leaks(place: &str, text: &str) -> Vec<String> {
    [
        SASL_PASSWORD,
        AWS_KEY_ID,
        AWS_SECRET_KEY,
        AWS_SESSION,
        HEALTH_TOKEN,
        "Tr0ub4dor",
        "SECRET-77",
    ]
    .into_iter()
    .filter(|secret| text.contains(secret))
    .map(|secret| format!("`{secret}` in {place}: …{}…", excerpt(text, secret)))
    .collect()
}

/// Known leak, reported in SECURITY.md ("open"): at -vvv the AWS SDK's own trace events print
/// its `Credentials` with their Debug form, which shows the access key id (the secret key and
/// session token are redacted by the SDK). The fix is in src/output.rs (cap the `aws_*` targets
/// at debug); until then only lines holding that Debug form are left out of the check, and
/// `aws_access_key_id_never_logged_at_trace_level` (ignored) holds the fix to account.
fn without_known_sdk_identity_trace(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.contains("Credentials { provider_name: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fail naming the place when any secret shows in `text`.
#[track_caller]
fn assert_no_secret(place: &str, text: &str) {
    let found = leaks(place, text);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(200)
        .map_or(0, |(i, _)| i);
    let end = (at + needle.len() + 200).min(text.len());
    let end = (end..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..end].to_owned()
}

/// Every file under `dir`, read as (lossy) text: how many were checked, and the leaks found.
fn leaks_in_dir(dir: &Path) -> (usize, Vec<String>) {
    let mut found = Vec::new();
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                found.extend(leaks(&p.display().to_string(), &text));
                checked += 1;
            }
        }
    }
    (checked, found)
}

/// A loopback HTTP server that answers every request with a Storm UI cluster summary and
/// records the requests' headers (so the test knows the secret was really used).
fn recording_health_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = crate::support::http::serve_each(move |stream| record_and_answer(stream, &log));
    (url, seen)
}

/// Read one request head into `log`, answer with a small cluster summary.
fn record_and_answer(mut s: std::net::TcpStream, log: &Mutex<Vec<String>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match std::io::Read::read(&mut s, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    log.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&buf).into_owned());
    let body = r#"{"supervisors":1,"slotsTotal":2,"slotsUsed":0,"slotsFree":2,"topologies":0}"#;
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// SASL password (env), AWS keys (env) and the credentials of a health endpoint never appear in
/// stdout, stderr at trace level (-vvv), the journal, the samples or any file of the run
/// directory, for `validate`, `plan` and `run` (an external-broker plan whose SASL login fails,
/// and a short lab game day run to its report).
#[test]
fn secrets_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let env = secret_env();
    let kafka = Kafka::mock();
    let (health, seen) = recording_health_server();
    let plan = format!(
        r#"version: 1
name: secrets
kafka:
  brokers: "{brokers}"
  security: {{protocol: SASL_PLAINTEXT, sasl_mechanism: SCRAM-SHA-512, username: svc, password_env: TRUST_KAFKA_PASSWORD}}
applications:
  app: {{group: app, topics: [events], slo: {{max_lag: 60s, max_recovery: 1m}}}}
targets:
  storm:
    kind: storm
    nodes: {{provider: aws-ec2, region: us-east-1, tags: {{cluster: trust}}}}
    health: {{storm_ui: "{health}"}}
    applications: [app]
    ladder: [1]
observe: {{sample_interval: 200ms, baseline: 1s, hold: 1s, timeout: 5s}}
"#,
        brokers = kafka.bootstrap
    );
    let plan_path = dir.path().join("plan.yaml");
    std::fs::write(&plan_path, &plan).unwrap();
    let p = plan_path.to_str().unwrap();
    let run_dir = dir.path().join("run");
    // AWS is a closed port: discovery fails after the credentials were used to sign.
    let mut aws_env = env.clone();
    aws_env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9"));
    aws_env.push(("AWS_MAX_ATTEMPTS", "1"));
    let mut outputs = Vec::new();
    for args in [
        vec!["-vvv", "validate", p],
        vec!["-vvv", "plan", p],
        vec!["-vvv", "plan", p, "--json"],
        vec![
            "-vvv",
            "run",
            p,
            "--yes",
            "--out",
            run_dir.to_str().unwrap(),
        ],
    ] {
        let out = spotdrill_with(&args, &locks, &aws_env);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        outputs.push((args.join(" "), out));
    }
    // The test would be void if the secrets were never read: the password env was read (the
    // commands did not complain that it is unset) and the run got past planning.
    let mut found = Vec::new();
    for (cmd, out) in &outputs {
        assert!(
            !out.stderr.contains("is not set"),
            "{cmd}: a secret was not configured\n{}",
            out.stderr
        );
        found.extend(leaks(&format!("stdout of `{cmd}`"), &out.stdout));
        found.extend(leaks(
            &format!("stderr of `{cmd}`"),
            &without_known_sdk_identity_trace(&out.stderr),
        ));
    }
    assert!(
        outputs[3].1.stderr.contains("TRACE") || outputs[3].1.stderr.contains("DEBUG"),
        "-vvv logs at trace level:\n{}",
        outputs[3].1.stderr
    );
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the health endpoint was probed"
    );
    if run_dir.exists() {
        found.extend(leaks_in_dir(&run_dir).1);
    }

    // A lab game day to its report, with the same secrets in the environment (lab nodes inherit
    // it), at trace level.
    let lab_dir = dir.path().join("lab");
    std::fs::create_dir_all(&lab_dir).unwrap();
    let lab_plan_path = lab_dir.join("plan.yaml");
    std::fs::write(&lab_plan_path, lab_plan(4, 6, &[1])).unwrap();
    let lab_run = lab_dir.join("run");
    let out = spotdrill_with(
        &[
            "-vvv",
            "run",
            lab_plan_path.to_str().unwrap(),
            "--yes",
            "--out",
            lab_run.to_str().unwrap(),
        ],
        &locks,
        &env,
    );
    out.expect_code(0);
    found.extend(leaks("stdout of the lab run", &out.stdout));
    found.extend(leaks("stderr of the lab run", &out.stderr));
    let (files, more) = leaks_in_dir(&lab_run);
    found.extend(more);
    for f in [
        "journal.jsonl",
        "samples.csv",
        "report.json",
        "report.md",
        "report.html",
        "junit.xml",
    ] {
        assert!(lab_run.join(f).exists(), "{f} was written and checked");
    }
    assert!(files >= 6);
    let rebuilt = spotdrill_with(&["-vvv", "report", lab_run.to_str().unwrap()], &locks, &env);
    rebuilt.expect_code(0);
    found.extend(leaks("stderr of `report`", &rebuilt.stderr));
    found.extend(leaks_in_dir(&lab_run).1);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// The AWS SDK logs the resolved credentials at trace level; the access key id must not reach
/// stderr even with -vvv. Known leak: see `without_known_sdk_identity_trace`.
#[test]
fn aws_access_key_id_never_logged_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = secret_env();
    env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9"));
    env.push(("AWS_MAX_ATTEMPTS", "1"));
    env.push(("KAFKA_PASSWORD", SASL_PASSWORD));
    let plan = dir.path().join("plan.yaml");
    let text = std::fs::read_to_string(root().join("experiments/storm-prod-aws.yaml")).unwrap();
    std::fs::write(&plan, text).unwrap();
    let out = spotdrill_with(
        &["-vvv", "plan", plan.to_str().unwrap()],
        &dir.path().join("locks"),
        &env,
    );
    assert!(out.stderr.contains("TRACE"), "{}", out.stderr);
    assert_no_secret("stderr of `-vvv plan`", &out.stderr);
}

/// Credentials written into a health URL's user-info (`http://user:password@host`) are a secret
/// too: `plan` must not print them. Known leak (SECURITY.md "open"): src/cli/plan.rs prints the
/// endpoint URL as written, and logs it in its debug span.
#[test]
fn health_url_credentials_never_printed_by_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (health, _seen) = recording_health_server();
    let url = health.replace("http://", &format!("http://svc:{HEALTH_TOKEN}@"));
    let plan = lab_plan(4, 6, &[1]).replace(
        "    applications: [app]\n    ladder",
        &format!("    health: {{storm_ui: \"{url}\"}}\n    applications: [app]\n    ladder"),
    );
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, plan).unwrap();
    for args in [
        vec!["-vvv", "validate"],
        vec!["-vvv", "plan"],
        vec!["plan", "--json"],
    ] {
        let mut args = args.clone();
        args.push(path.to_str().unwrap());
        let out = spotdrill_with(&args, &dir.path().join("locks"), &[]);
        assert_no_secret("stdout", &out.stdout);
        assert_no_secret("stderr", &out.stderr);
    }
}

// ---- 2. journal crash safety ----------------------------------------------------------------

fn copy_fixture_run(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let fixture = root().join("tests/fixtures/runs/two-targets");
    for f in ["journal.jsonl", "samples.csv", "lab-truth.jsonl"] {
        std::fs::copy(fixture.join(f), to.join(f)).unwrap();
    }
}

/// `spotdrill report DIR` on a journal whose last line a crash cut short: the report is the one
/// of the whole lines (the cut line is left out with a warning), exit 0. A bad line in the middle
/// is corruption: exit 2, naming file and line.
#[test]
fn report_accepts_a_torn_last_line_and_locates_corruption_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let clean = dir.path().join("clean");
    let torn = dir.path().join("torn");
    copy_fixture_run(&clean);
    copy_fixture_run(&torn);
    // The crash came while the last entry was written: the clean journal is every entry before
    // it, the torn one has half of that last entry's bytes after them.
    let whole = std::fs::read_to_string(clean.join("journal.jsonl")).unwrap();
    let last = whole.lines().last().unwrap().to_owned();
    let before = &whole[..whole.len() - last.len() - 1];
    std::fs::write(clean.join("journal.jsonl"), before).unwrap();
    std::fs::write(
        torn.join("journal.jsonl"),
        format!("{before}{}", &last[..last.len() / 2]),
    )
    .unwrap();
    spotdrill_with(&["report", clean.to_str().unwrap()], &locks, &[]).expect_code(0);
    let out = spotdrill_with(&["report", torn.to_str().unwrap()], &locks, &[]);
    out.expect_code(0);
    assert!(
        out.stderr.contains("cut it short"),
        "a note is given:\n{}",
        out.stderr
    );
    let read = |d: &Path| -> Value {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    let (mut torn_report, clean_report) = (read(&torn), read(&clean));
    let note = torn_report["notes"]
        .as_array_mut()
        .unwrap()
        .pop()
        .expect("the report notes the torn line");
    assert!(
        note.as_str().unwrap().contains("cut short by a crash"),
        "{note}"
    );
    assert_eq!(
        torn_report, clean_report,
        "the torn line changes nothing else"
    );

    // The same bytes followed by more entries: corruption in the middle.
    let lines = before.lines().count();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(torn.join("journal.jsonl"))
        .unwrap();
    f.write_all(format!("\n{last}\n").as_bytes()).unwrap();
    drop(f);
    let out = spotdrill_with(&["report", torn.to_str().unwrap()], &locks, &[]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains(&format!("journal.jsonl:{}:", lines + 1)),
        "the bad line is located:\n{}",
        out.stderr
    );
}

/// SIGKILL in the middle of a lab game day (after the first step's terminations, with a torn
/// line at the end of the journal): the lab's processes go away by themselves, `run --resume`
/// takes over the dead run's locks, finishes the run without terminating anything twice, and
/// the journal reads clean.
#[test]
fn sigkill_mid_run_then_resume_finishes_without_terminating_twice() {
    let bg = start_in_background(&lab_plan(6, 8, &[1, 2]));
    bg.wait_first_injection();
    let (dir, locks, plan, run) = (bg.dir.path(), bg.locks(), bg.plan(), bg.run.clone());
    let mut child = bg.child;
    let pids = lab_pids(&run);
    assert!(
        pids.len() >= 6,
        "lab.json names the lab's processes: {pids:?}"
    );
    child.kill();
    // Orphans: the lab's nodes and broker end when their parent's end of stdin closes.
    wait_for("no lab process left", Duration::from_secs(60), || {
        pids.iter().all(|&p| !alive(p))
    });
    let before = journal(&run);
    let first = intended_nodes(&before);
    std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("journal.jsonl"))
        .unwrap()
        .write_all(br#"{"event":"outcome","at":"2026-"#)
        .unwrap();
    // The dead run's lock is left, naming it and its lab (the cluster in that run directory:
    // a run elsewhere is another lab, and another lock).
    let _ = dir;
    let left: Vec<Value> = std::fs::read_dir(&locks)
        .unwrap()
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["pid"], child.id());
    let lab = format!(
        "cluster|lab/c@{}",
        std::fs::canonicalize(&run).unwrap().display()
    );
    assert_eq!(left[0]["key"], lab.as_str());

    let resumed = spotdrill_with(
        &[
            "run",
            plan.to_str().unwrap(),
            "--yes",
            "--resume",
            run.to_str().unwrap(),
        ],
        &locks,
        &[],
    );
    assert!(
        matches!(resumed.code, 0 | 1),
        "resume finishes with a verdict\n{}",
        resumed.stderr
    );
    let after = journal(&run);
    assert_eq!(
        std::fs::read_to_string(run.join("journal.jsonl"))
            .unwrap()
            .lines()
            .count(),
        after.len(),
        "every line of the resumed journal is an entry"
    );
    assert!(
        run.join("journal.jsonl.torn").exists(),
        "the cut line is kept aside"
    );
    assert_no_node_twice(&after);
    assert_eq!(&intended_nodes(&after)[..first.len()], &first[..]);
    assert_eq!(events(&after, "run_finished").len(), 1);
    assert!(!events(&after, "resumed").is_empty());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["exit_code"], resumed.code);
    // No lock is left behind.
    assert_eq!(std::fs::read_dir(&locks).map(|d| d.count()).unwrap_or(0), 0);
}

/// Issue 16 item 2, on AWS (moto): 6 spot instances, ladder [2, 4], `max_terminations: 4`. The
/// journal is cut right after step 1's intent (what a SIGKILL there leaves; samples.csv as the
/// attempt wrote it). The resume asks EC2 what became of the two nodes without outcome (gone,
/// journaled as `reconciled`), counts them, judges step 1 from its samples, and the guard stops
/// step 2 (2 + 4 > 4): 2 instances terminated in all, not 6.
#[test]
fn aws_crash_after_an_intent_then_resume_counts_its_nodes() {
    let moto = crate::support::moto::Moto::start();
    let kafka = crate::aws::kafka();
    launch_trust_nodes(&moto, 6);
    let text = crate::aws::plan(
        &kafka,
        "{provider: aws-ec2, region: us-east-1, tags: {cluster: trust}}",
        "[2, 4]",
        "random",
        "    guards: {max_terminations: 4}\n",
    );
    let (first, _, dir) = aws_run(&moto, &moto.endpoint, &text, &[], Duration::from_secs(120));
    first.expect_code(3);
    let run = dir.path().join("run");
    let path = run.join("journal.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let cut = 1 + lines
        .iter()
        .position(|l| l.contains(r#""event":"intent""#))
        .expect("step 1's intent");
    std::fs::write(&path, lines[..cut].join("\n") + "\n").unwrap();
    let intended = intended_nodes(&journal(&run));
    assert_eq!(intended.len(), 2);

    let plan = dir.path().join("plan.yaml");
    let resumed = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--resume"])
        .arg(&run)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .locks(dir.path().join("locks"))
        .env("SPOTDRILL_AWS_POLL_MS", "200")
        .env_remove("AWS_PROFILE")
        .run();
    resumed.expect_code(3);
    let after = journal(&run);
    let reconciled = events(&after, "reconciled");
    let found: Vec<(&str, &str)> = reconciled
        .iter()
        .map(|r| (r["node"].as_str().unwrap(), r["found"].as_str().unwrap()))
        .collect();
    let want: Vec<(&str, &str)> = intended.iter().map(|id| (id.as_str(), "gone")).collect();
    assert_eq!(found, want, "{}", resumed.stderr);
    let breach = events(&after, "guard_breached");
    assert_eq!(breach.len(), 1, "{}", resumed.stderr);
    assert_eq!(breach[0]["guard"], "max_terminations");
    assert_eq!(
        breach[0]["detail"],
        "2 terminated so far + 4 would exceed 4"
    );
    assert_eq!(
        events(&after, "intent").len(),
        1,
        "nothing intended past the guard"
    );
    let terminated = moto
        .instances()
        .values()
        .filter(|(state, _)| state == "terminated" || state == "shutting-down")
        .count();
    assert_eq!(terminated, 2, "{:?}", moto.instances());
    let judged = events(&after, "step_judged");
    assert_eq!(judged.len(), 1);
    assert!(
        judged[0]["findings"][0]
            .as_str()
            .unwrap()
            .starts_with("judged at resume from samples.csv"),
        "{}",
        judged[0]
    );
}

// ---- 3. concurrency -------------------------------------------------------------------------

/// A lab's lock names its run directory (two runs' labs are two clusters; plans that word one
/// AWS cluster differently share one lock: tests/it/locks.rs). A `--resume` of a run that is
/// still going refuses (exit 4) naming its pid and run directory; `unlock` will not remove a live
/// run's lock; after the holder is SIGKILLed, `unlock` clears it (saying whose it was), and then
/// there is nothing left to clear.
#[test]
fn a_resume_of_a_live_run_is_refused_and_a_stale_lock_is_cleared_only_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, lab_plan(4, 6, &[1])).unwrap();
    let p = plan.to_str().unwrap();
    let first_run = dir.path().join("first");
    let mut first = spawn_run(&plan, &first_run, &locks);
    wait_for("the first run to start", Duration::from_secs(60), || {
        !events(&journal(&first_run), "run_started").is_empty()
    });
    let pid = first.id().to_string();
    let before = journal(&first_run).len();
    let second = spotdrill_with(
        &["run", p, "--yes", "--resume", first_run.to_str().unwrap()],
        &locks,
        &[],
    );
    second.expect_code(4);
    assert!(
        second.stderr.contains("is being run by pid"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&pid),
        "the holder is named: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains(first_run.to_str().unwrap()),
        "its run directory too: {}",
        second.stderr
    );
    assert!(
        events(&journal(&first_run)[before..], "resumed").is_empty(),
        "the refused resume wrote nothing"
    );
    let live = spotdrill_with(&["unlock", p], &locks, &[]);
    live.expect_code(4);
    assert!(live.stderr.contains(&pid), "{}", live.stderr);

    let pids = lab_pids(&first_run);
    first.kill();
    wait_for("no lab process left", Duration::from_secs(60), || {
        pids.iter().all(|&p| !alive(p))
    });
    let cleared = spotdrill_with(&["unlock", p], &locks, &[]);
    cleared.expect_code(0);
    assert!(
        cleared.stdout.contains("removed the stale lock"),
        "{}",
        cleared.stdout
    );
    assert!(cleared.stdout.contains(&pid), "{}", cleared.stdout);
    let again = spotdrill_with(&["unlock", p, "--target", "c"], &locks, &[]);
    again.expect_code(0);
    assert!(again.stdout.contains("c: not locked"), "{}", again.stdout);
    spotdrill_with(&["unlock", p, "--target", "nope"], &locks, &[]).expect_code(2);
}

// ---- 4. bad plans ---------------------------------------------------------------------------

fn corpus() -> Vec<PathBuf> {
    let dir = root().join("fuzz/corpus/plan_load");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every input of the saved fuzz corpus (fuzz/corpus/plan_load: seeds plus what the fuzzer
/// found) loads without a panic, into a plan or located errors, within 5 s each (they take
/// milliseconds; the bound catches a hang, not a slow CI machine).
#[test]
fn the_fuzz_corpus_loads_into_a_plan_or_located_errors() {
    let files = corpus();
    assert!(files.len() >= 50, "the corpus is there: {}", files.len());
    let mut valid = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| invariants::check_plan_text(text));
        let took = started.elapsed();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("{}: {why}", f.display()),
            Err(_) => panic!("{}: plan::load panicked", f.display()),
        }
        assert!(
            took < Duration::from_secs(5),
            "{}: took {took:?}",
            f.display()
        );
        if spotdrill::plan::load(text).plan.is_some() {
            valid += 1;
        }
    }
    // Both sides are exercised: the experiments are valid plans.
    assert!(valid >= 3, "{valid} valid plans in the corpus");
}

// ---- 5. AWS faults --------------------------------------------------------------------------

/// A response body rewritten on its way back.
pub(crate) type Rewrite = Arc<dyn Fn(String) -> String + Send + Sync>;

/// What the fault proxy does with one request to moto.
#[derive(Clone)]
pub(crate) enum Fault {
    Pass,
    /// Answer with this status and EC2 error code.
    Error(u16, &'static str),
    /// Never answer (hold the connection until the client gives up).
    Hang,
    /// Forward a TerminateInstances naming only its first instance (moto terminates that one and
    /// answers for it alone): a partial success.
    OnlyFirst,
    /// Hold the request until the gate opens, then pass it on.
    Hold(Arc<Gate>),
    /// Pass the request on, then never answer (the call went through; the client times out).
    AnswerNever,
    /// Answer 200 with this XML body, without passing the request on.
    Answer(String),
    /// Pass the request on and rewrite the body of moto's answer.
    Rewrite(Rewrite),
}

/// A gate the fault proxy holds requests at: counts what it holds, opens once.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    pub held: std::sync::atomic::AtomicUsize,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn pass(&self) {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

/// A loopback HTTP proxy in front of moto. `decide(body, n)` picks the fault for the n-th
/// (0-based) non-DryRun TerminateInstances call; every other request passes. Returns the proxy's
/// URL and the count of TerminateInstances calls seen.
fn fault_proxy(
    upstream: String,
    decide: impl Fn(usize) -> Fault + Send + Sync + 'static,
) -> (String, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0_usize));
    let seen = calls.clone();
    let url = proxy_by(upstream, move |_, text| {
        if text.contains("Action=TerminateInstances") && !text.contains("DryRun=true") {
            let mut n = seen.lock().unwrap();
            *n += 1;
            decide(*n - 1)
        } else {
            Fault::Pass
        }
    });
    (url, calls)
}

/// A loopback HTTP proxy in front of moto: `pick(request line, body)` decides the fault of each
/// request. Returns the proxy's URL.
pub(crate) fn proxy_by(
    upstream: String,
    pick: impl Fn(&str, &str) -> Fault + Send + Sync + 'static,
) -> String {
    crate::support::http::serve_each(move |client| {
        let _ = proxy_one(client, &upstream, &pick);
    })
}

fn proxy_one(
    client: std::net::TcpStream,
    upstream: &str,
    pick: &(dyn Fn(&str, &str) -> Fault + Send + Sync),
) -> std::io::Result<()> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let mut head = Vec::new();
        let mut length = 0_usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            let end = line == "\r\n";
            if !lower.starts_with("connection:") && !lower.starts_with("content-length:") && !end {
                head.push(line);
            }
            if end {
                break;
            }
        }
        let mut body = vec![0_u8; length];
        reader.read_exact(&mut body)?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let fault = pick(head.first().map_or("", String::as_str), &text);
        let mut answer = true;
        let mut rewrite: Option<Rewrite> = None;
        let body = match fault {
            Fault::Answer(xml) => {
                write!(
                    client,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                    xml.len()
                )?;
                continue;
            }
            Fault::Rewrite(r) => {
                rewrite = Some(r);
                body
            }
            Fault::Error(status, code) => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>\
                     <Code>{code}</Code><Message>injected by the trust test proxy</Message>\
                     </Error></Errors><RequestID>trust</RequestID></Response>"
                );
                write!(
                    client,
                    "HTTP/1.1 {status} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                    xml.len()
                )?;
                continue;
            }
            Fault::Hang => {
                std::thread::sleep(Duration::from_secs(600));
                return Ok(());
            }
            Fault::OnlyFirst => {
                // InstanceId.1=…&InstanceId.2=…: keep the first.
                let kept: Vec<&str> = text
                    .split('&')
                    .filter(|p| !p.starts_with("InstanceId.") || p.starts_with("InstanceId.1="))
                    .collect();
                kept.join("&").into_bytes()
            }
            Fault::Hold(gate) => {
                gate.pass();
                body
            }
            Fault::AnswerNever => {
                answer = false;
                body
            }
            Fault::Pass => body,
        };
        let mut up = std::net::TcpStream::connect(upstream.trim_start_matches("http://"))?;
        for line in &head {
            up.write_all(line.as_bytes())?;
        }
        write!(
            up,
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        up.write_all(&body)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        if !answer {
            std::thread::sleep(Duration::from_secs(600));
            return Ok(());
        }
        let text = String::from_utf8_lossy(&response).into_owned();
        let (rhead, rbody) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let rbody = match &rewrite {
            Some(r) => r(rbody.to_owned()),
            None => rbody.to_owned(),
        };
        let mut out = String::new();
        for line in rhead.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:")
                || lower.starts_with("transfer-encoding:")
                || lower.starts_with("content-length:")
            {
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", rbody.len()));
        out.push_str(&rbody);
        client.write_all(out.as_bytes())?;
    }
}

/// The AWS plan of tests/it/aws.rs over the instances tagged `cluster: trust`.
fn aws_plan(kafka: &Kafka, ladder: &str) -> String {
    crate::aws::plan(
        kafka,
        "{provider: aws-ec2, region: us-east-1, tags: {cluster: trust}}",
        ladder,
        "random",
        "",
    )
}

/// What one run against moto through a fault proxy left behind.
struct FaultRun {
    moto: crate::support::moto::Moto,
    out: Outcome,
    journal: Vec<Value>,
    dir: tempfile::TempDir,
    /// TerminateInstances calls the proxy saw.
    calls: Arc<Mutex<usize>>,
}

/// `nodes` trust instances in moto, and one run of `aws_plan(ladder)` through a proxy whose
/// answer to the n-th TerminateInstances is `fault(n)`; `within` bounds the run (a hang).
fn fault_run(
    nodes: u32,
    ladder: &str,
    fault: impl Fn(usize) -> Fault + Send + Sync + 'static,
    env: &[(&str, &str)],
    within: Duration,
) -> FaultRun {
    let moto = crate::support::moto::Moto::start();
    let kafka = crate::aws::kafka();
    launch_trust_nodes(&moto, nodes);
    let (proxy, calls) = fault_proxy(moto.endpoint.clone(), fault);
    let (out, journal, dir) = aws_run(&moto, &proxy, &aws_plan(&kafka, ladder), env, within);
    FaultRun {
        moto,
        out,
        journal,
        dir,
        calls,
    }
}

/// One `spotdrill run` against moto through `endpoint`; (outcome, journal, run dir guard).
fn aws_run(
    moto: &crate::support::moto::Moto,
    endpoint: &str,
    text: &str,
    extra_env: &[(&str, &str)],
    within: Duration,
) -> (Outcome, Vec<Value>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let run = dir.path().join("run");
    let out = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--out"])
        .arg(&run)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .locks(dir.path().join("locks"))
        .env("SPOTDRILL_AWS_POLL_MS", "200")
        .env_remove("AWS_PROFILE")
        .envs(extra_env.iter().copied())
        .spawn()
        .wait(within);
    let j = journal(&run);
    (out, j, dir)
}

/// Every instance moto has terminated had an intent and a `terminated` outcome in the journal
/// (never an unrecorded termination), and every intended node has exactly one outcome.
fn assert_every_termination_recorded(moto: &crate::support::moto::Moto, journal: &[Value]) {
    let intended = intended_nodes(journal);
    let outcomes = events(journal, "outcome");
    for id in &intended {
        assert_eq!(
            outcomes.iter().filter(|o| o["node"] == id.as_str()).count(),
            1,
            "one outcome for {id}: {outcomes:?}"
        );
    }
    for (id, (state, _)) in moto.instances() {
        if state == "terminated" || state == "shutting-down" {
            assert!(
                intended.contains(&id),
                "{id} was terminated without an intent"
            );
            assert!(
                outcomes
                    .iter()
                    .any(|o| o["node"] == id.as_str() && o["outcome"] == "terminated"),
                "{id} was terminated but its outcome says otherwise: {outcomes:?}"
            );
        }
    }
}

fn launch_trust_nodes(moto: &crate::support::moto::Moto, n: u32) -> Vec<String> {
    moto.launch(n, "us-east-1a", "c5.xlarge", true, &[("cluster", "trust")])
}

/// Throttling (400 RequestLimitExceeded, then 503 SlowDown) on TerminateInstances: retried with
/// backoff, the node is terminated once, and the run passes.
#[test]
fn aws_throttling_is_retried_and_terminates_once() {
    let FaultRun {
        moto,
        out,
        journal,
        dir: _dir,
        calls,
    } = fault_run(
        4,
        "[1]",
        |n| match n {
            0 => Fault::Error(400, "RequestLimitExceeded"),
            1 => Fault::Error(503, "SlowDown"),
            _ => Fault::Pass,
        },
        &[],
        Duration::from_secs(120),
    );
    out.expect_code(0);
    assert_eq!(
        *calls.lock().unwrap(),
        3,
        "two throttled attempts, then the one that worked"
    );
    let outcomes = events(&journal, "outcome");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["outcome"], "terminated", "{outcomes:?}");
    assert_every_termination_recorded(&moto, &journal);
}

/// 5xx on every TerminateInstances: after the retries, each node's outcome is an error with the
/// cause in the journal, nothing was terminated, and escalation stops (exit 3).
#[test]
fn aws_5xx_on_terminate_is_recorded_and_stops_escalation() {
    let FaultRun {
        moto,
        out,
        journal,
        dir: _dir,
        calls,
    } = fault_run(
        4,
        "[2]",
        |_| Fault::Error(500, "InternalError"),
        &[("AWS_MAX_ATTEMPTS", "2")],
        Duration::from_secs(120),
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(*calls.lock().unwrap() >= 2, "retried");
    let outcomes = events(&journal, "outcome");
    assert_eq!(outcomes.len(), 2, "{journal:?}");
    for o in &outcomes {
        assert_eq!(o["outcome"], "error", "{o}");
        assert!(
            o["detail"].as_str().unwrap().contains("InternalError"),
            "{o}"
        );
    }
    assert_every_termination_recorded(&moto, &journal);
    // Escalation stops (exit 3, aborted), and the report says why.
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        !events(&journal, "aborted").is_empty() || out.stderr.contains("not terminated"),
        "{}",
        out.stderr
    );
}

/// Known gap (SECURITY.md "open"): when every termination of a step failed, src/run/mod.rs still
/// observes and judges the step, and with flat lag it is a `pass` — the report then claims a
/// tolerance the run never tested. A step whose terminations did not all happen should be
/// `inconclusive` (and end the tolerance streak).
#[test]
fn a_step_whose_terminations_all_failed_is_never_a_pass() {
    let FaultRun {
        out, journal, dir, ..
    } = fault_run(
        4,
        "[2]",
        |_| Fault::Error(500, "InternalError"),
        &[("AWS_MAX_ATTEMPTS", "2")],
        Duration::from_secs(120),
    );
    let judged = events(&journal, "step_judged");
    assert!(
        judged.iter().all(|s| s["verdict"] != "pass"),
        "a step whose terminations failed is not a pass: {judged:?}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["targets"][0]["tolerated_terminations"], 0,
        "{}",
        out.stdout
    );
}

/// Partial success: TerminateInstances terminates only the first of two nodes. The journal says
/// which one went and which did not; no termination is unrecorded.
#[test]
fn aws_partial_terminate_is_recorded_node_by_node() {
    let FaultRun {
        moto,
        out,
        journal,
        dir: _dir,
        calls: _calls,
    } = fault_run(
        4,
        "[2]",
        |_| Fault::OnlyFirst,
        &[],
        Duration::from_secs(180),
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let outcomes = events(&journal, "outcome");
    assert_eq!(outcomes.len(), 2, "{journal:?}");
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"terminated") && kinds.contains(&"error"),
        "{kinds:?}"
    );
    assert_every_termination_recorded(&moto, &journal);
    assert_ne!(
        out.code, 0,
        "a step with a failed termination does not pass\n{}",
        out.stderr
    );
}

/// Expired credentials at the moment of terminating (400 RequestExpired / ExpiredToken): a clear
/// message in the journal, nothing terminated unrecorded, and the run does not pass.
#[test]
fn aws_expired_credentials_on_terminate_are_recorded() {
    let FaultRun {
        moto,
        out,
        journal,
        dir: _dir,
        calls: _calls,
    } = fault_run(
        4,
        "[1]",
        |_| Fault::Error(400, "ExpiredToken"),
        &[],
        Duration::from_secs(120),
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    let outcomes = events(&journal, "outcome");
    assert_eq!(outcomes.len(), 1, "{journal:?}");
    assert!(
        outcomes[0]["detail"]
            .as_str()
            .unwrap()
            .contains("ExpiredToken"),
        "{outcomes:?}"
    );
    assert_every_termination_recorded(&moto, &journal);
}

/// No credentials at all: `plan` and `run` stop with exit 4 and a message that says so, before
/// any intent.
#[test]
fn aws_missing_credentials_exit_4_before_any_intent() {
    let moto = crate::support::moto::Moto::start();
    let kafka = crate::aws::kafka();
    launch_trust_nodes(&moto, 2);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, aws_plan(&kafka, "[1]")).unwrap();
    let run = dir.path().join("run");
    for args in [
        vec!["plan", plan.to_str().unwrap()],
        vec![
            "run",
            plan.to_str().unwrap(),
            "--yes",
            "--out",
            run.to_str().unwrap(),
        ],
    ] {
        let out = Cmd::new(&args)
            .envs(moto.env())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("HOME", dir.path())
            .env("AWS_MAX_ATTEMPTS", "1")
            .locks(dir.path().join("locks"))
            .run();
        out.expect_code(4);
        let all = format!("{}{}", out.stdout, out.stderr).to_lowercase();
        assert!(
            all.contains("credential"),
            "the message names credentials:\n{all}"
        );
    }
    assert!(events(&journal(&run), "intent").is_empty());
    assert!(moto.instances().values().all(|(s, _)| s == "running"));
}

/// A TerminateInstances that never answers: the run must not hang forever, and must record
/// what it knows. The SDK's timeouts (src/nodes/aws.rs `sdk_config`: 30 s per attempt, 2 min per
/// operation, shortened here through the environment) end the call; the instance's state then
/// decides its outcome.
#[test]
fn aws_hanging_terminate_does_not_hang_the_run() {
    let FaultRun {
        moto,
        out,
        journal,
        dir: _dir,
        calls: _calls,
    } = fault_run(
        2,
        "[1]",
        |_| Fault::Hang,
        // The SDK's own bounds, shortened: 30 s per attempt and 2 min per call otherwise.
        &[
            ("SPOTDRILL_AWS_ATTEMPT_TIMEOUT_MS", "2000"),
            ("SPOTDRILL_AWS_OPERATION_TIMEOUT_MS", "6000"),
        ],
        Duration::from_secs(180),
    );
    assert_ne!(out.code, 0);
    assert_eq!(events(&journal, "outcome").len(), 1, "{journal:?}");
    assert_every_termination_recorded(&moto, &journal);
}

// ---- 6. broker outage -----------------------------------------------------------------------

/// The lab's broker dies during a step's observation (SIGKILL of its process): escalation stops
/// (exit 3, the journal says why), the affected step is never judged `pass` on the missing data
/// (`inconclusive` or `fail`), no later step terminates anything, and the report is written and
/// says the samples were missing.
#[test]
fn broker_death_mid_observation_is_never_a_pass() {
    let bg = start_in_background(&lab_plan(6, 8, &[1, 2]));
    bg.wait_first_injection();
    let run = bg.run.clone();
    let mut child = bg.child;
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("lab.json")).unwrap()).unwrap();
    let broker = state["broker_pid"]
        .as_i64()
        .expect("lab.json names the broker") as i32;
    assert!(broker > 0 && alive(broker));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(broker),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The run ends after its broker died.
    let out = child.wait(Duration::from_secs(180));
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let j = journal(&run);
    assert!(
        events(&j, "aborted")
            .iter()
            .any(|a| a["reason"].as_str().unwrap().contains("broker")),
        "the journal says the broker died: {j:?}"
    );
    assert_eq!(
        events(&j, "intent").len(),
        1,
        "no termination after the broker died"
    );
    for s in events(&j, "step_judged") {
        assert_ne!(s["verdict"], "pass", "a step judged on missing data: {s}");
        for a in s["applications"].as_array().unwrap() {
            assert_ne!(a["verdict"], "pass", "{a}");
        }
    }
    let report = std::fs::read_to_string(run.join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["exit_code"], out.code);
    assert_eq!(report["targets"][0]["tolerated_terminations"], 0);
    let samples = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    assert!(
        samples.contains("missing") || samples.contains("error"),
        "samples.csv records the gap"
    );
}

/// Found by fuzzing (SECURITY.md "Bad plans"): YAML counts a lone CR as a line break, so the
/// parser's positions count it, but `Diagnostic::render` counts lines by LF only and clamps a
/// position past its last line: the error is then shown at the wrong place (the last line).
/// Either both should count lines alike, or the renderer should map the parser's positions.
#[test]
fn a_lone_cr_does_not_move_where_an_error_is_shown() {
    let text =
        std::fs::read_to_string(root().join("fuzz/corpus/plan_load/lone-cr-line-breaks.yaml"))
            .unwrap();
    let loaded = spotdrill::plan::load(&text);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.is_error() && d.span.is_some())
        .expect("a located error");
    let span = d.span.unwrap();
    let shown = d.render("plan.yaml", &text);
    assert!(
        shown.starts_with(&format!(
            "plan.yaml:{}:{}:",
            span.start.line, span.start.col
        )),
        "the span says {}:{}, the rendering says:\n{shown}",
        span.start.line,
        span.start.col
    );
}
