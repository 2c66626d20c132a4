//! `spotdrill run` end to end on the embedded lab, held against the lab's ground truth.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::util::{Cmd, Outcome, Running, alive, plan_fixture, root, wait_for};

/// A lab cluster shape and what capacity arithmetic predicts for it.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    kind: &'static str,
    nodes: u32,
    slots: u32,
    workers: u32,
    ladder: &'static [u32],
    /// Messages per second on the topic, and each worker's cost per message.
    rate: u32,
    cost: &'static str,
    partitions: u32,
    /// SIGTERM notice before SIGKILL (mesos tasks leave their group on SIGTERM).
    notice: &'static str,
    /// When a lost node's replacement joins. Every step waits for it (cooldown, and the capacity
    /// wait after the last step), so it sets most of a run's length; it only has to come after
    /// the step's `timeout`, so that a step past the arithmetic cannot recover in time.
    replacement: &'static str,
}

impl Shape {
    pub(crate) fn storm(nodes: u32, slots: u32, workers: u32, ladder: &'static [u32]) -> Shape {
        Shape {
            kind: "storm",
            nodes,
            slots,
            workers,
            ladder,
            rate: 200,
            cost: "1ms",
            partitions: 16,
            notice: "0s",
            // timeout 8s: the replacement comes 7 s after a failing step is judged.
            replacement: "15s",
        }
    }

    /// Two tasks of at most 250 msg/s each (4 ms per message) on 4 partitions at 375 msg/s:
    /// two keep up with 125 msg/s to spare for a backlog; one falls 125 msg/s behind, so its lag
    /// grows by a third of a second every second and sets a new peak at every commit. So the placed tasks' throughput
    /// decides, and both tasks are placed while (nodes − k) × slots ≥ 2.
    pub(crate) fn mesos(nodes: u32, slots: u32, ladder: &'static [u32]) -> Shape {
        Shape {
            kind: "mesos",
            nodes,
            slots,
            workers: 2,
            ladder,
            rate: 375,
            cost: "4ms",
            partitions: 4,
            notice: "1s",
            // timeout 20s.
            replacement: "30s",
        }
    }

    /// The largest step k of the ladder such that every step up to k keeps every worker placed
    /// before replacements arrive: (nodes − k) × slots ≥ workers.
    fn predicted_tolerance(&self) -> u32 {
        self.ladder
            .iter()
            .take_while(|&&k| (self.nodes - k) * self.slots >= self.workers)
            .last()
            .copied()
            .unwrap_or(0)
    }

    /// The plan: tests/fixtures/plans/lab-shape.yaml filled in with this shape.
    pub(crate) fn plan(&self) -> String {
        let (timeout, settle) = match self.kind {
            "storm" => ("8s", "4s"),
            _ => ("20s", "10s"),
        };
        let ladder = format!("{:?}", self.ladder);
        plan_fixture(
            "lab-shape.yaml",
            &[
                ("kind", &self.kind),
                ("nodes", &self.nodes),
                ("slots", &self.slots),
                ("workers", &self.workers),
                ("partitions", &self.partitions),
                ("rate", &self.rate),
                ("cost", &self.cost),
                ("notice", &self.notice),
                ("ladder", &ladder),
                ("replacement", &self.replacement),
                ("timeout", &timeout),
                ("settle", &settle),
            ],
        )
    }
}

/// Run a plan text with `--yes` into a fresh directory; returns the outcome and the directory.
pub(crate) fn run_plan(text: &str, extra: &[&str]) -> (Outcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let out = dir.path().join("run");
    let mut args = vec![
        "run",
        plan.to_str().unwrap(),
        "--yes",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let outcome = spotdrill_env(&args, dir.path());
    (outcome, dir)
}

fn spotdrill_env(args: &[&str], locks: &Path) -> Outcome {
    Cmd::new(args).locks(locks.join("locks")).run()
}

pub(crate) fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("run/report.json")).expect("report.json");
    serde_json::from_str(&text).unwrap()
}

/// The journal of run directory `run`: only whole lines, since a run in progress may be in the
/// middle of writing the last one.
pub(crate) fn journal(run: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a journal line is JSON"))
        .collect()
}

pub(crate) fn events<'a>(journal: &'a [Value], event: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["event"] == event).collect()
}

pub(crate) fn time(v: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(v.as_str().expect("a time")).unwrap()
}

fn check_shape(shape: &Shape) {
    let (outcome, dir) = run_plan(&shape.plan(), &[]);
    let predicted = shape.predicted_tolerance();
    let report = report(dir.path());
    let target = &report["targets"][0];
    assert_eq!(
        target["tolerated_terminations"],
        predicted,
        "{shape:?}: capacity arithmetic predicts {predicted}\n{}\n--- stderr\n{}",
        serde_json::to_string_pretty(target).unwrap(),
        outcome.stderr
    );
    outcome.expect_code(0);
    // The first failing step, if any, is the first one past the arithmetic, and says why.
    let steps = target["steps"].as_array().unwrap();
    if let Some(i) = shape.ladder.iter().position(|&k| k > predicted) {
        assert_eq!(
            steps[i]["verdict"],
            "fail",
            "{}",
            serde_json::to_string_pretty(&steps[i]).unwrap()
        );
        assert_eq!(target["first_failure"]["terminations"], shape.ladder[i]);
        assert!(
            target["first_failure"]["reason"]
                .as_str()
                .unwrap()
                .contains("not recovered")
        );
        // Escalation stops after a failed step.
        for s in &steps[i + 1..] {
            assert!(s["verdict"].is_null() && s["skipped"].is_string(), "{s}");
        }
    }
    // Every judged step terminated exactly its number of distinct nodes, each one once.
    let journal = journal(&dir.path().join("run"));
    let intents = events(&journal, "intent");
    let mut all: Vec<&str> = Vec::new();
    for i in &intents {
        let nodes = i["nodes"].as_array().unwrap();
        let step = i["step"].as_u64().unwrap() as usize;
        assert_eq!(nodes.len() as u32, shape.ladder[step]);
        all.extend(nodes.iter().map(|n| n["id"].as_str().unwrap()));
    }
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        all.len(),
        "a node was terminated twice: {all:?}"
    );
    // Each step started from full capacity: the lab saw every node of a step's intent alive.
    for name in [
        "report.json",
        "samples.csv",
        "journal.jsonl",
        "lab-truth.jsonl",
    ] {
        assert!(
            dir.path().join("run").join(name).exists(),
            "{name} is written"
        );
    }
}

#[test]
fn storm_6x2_running_8_tolerates_2() {
    check_shape(&Shape::storm(6, 2, 8, &[1, 2, 3]));
}

#[test]
fn storm_6x3_running_8_tolerates_3() {
    check_shape(&Shape::storm(6, 3, 8, &[2, 3, 4]));
}

#[test]
fn storm_4x2_running_6_tolerates_1() {
    check_shape(&Shape::storm(4, 2, 6, &[1, 2]));
}

#[test]
fn mesos_4x1_running_2_tolerates_2() {
    check_shape(&Shape::mesos(4, 1, &[1, 2, 3]));
}

#[test]
fn mesos_3x1_running_2_tolerates_1() {
    check_shape(&Shape::mesos(3, 1, &[1, 2]));
}

/// The harness's recovery time per step is within ± 2 sample intervals of the lab's truth: from
/// the node kill to the `backlog_drained` event. A precision test: the test script runs it after
/// the rest of the suite, alone (`QUIET` in scripts/test), since a loaded machine delays the lab's
/// commits past the band it measures against.
#[test]
fn measured_recovery_matches_the_lab_truth() {
    // The band at the steady level (p99 + one commit interval, 1 s): recovered then means what
    // the lab's truth means by drained — lag back at the top of its steady saw (the truth takes
    // the highest lag of the 10 s before the loss, sampled every 250 ms) — not merely back under
    // a generous band. A tighter floor (0.5 s) sat below that saw's top, so samples of the steady
    // saw read as "not yet recovered" (measured 5 s against a 2.2 s truth, once in CI).
    // Sampled every second (the default), so ± 2 intervals is ± 2 s: lag moves in steps of one
    // commit interval (1 s), which both the harness and the lab see, a step apart at worst.
    let plan = Shape::storm(6, 2, 8, &[1, 2])
        .plan()
        .replace(
            "band: {margin: 0.5, floor: 2s}",
            "band: {margin: 0.1, floor: 1s}",
        )
        .replace("sample_interval: 500ms", "sample_interval: 1s")
        // Twelve samples of the steady level: with a commit every second the lag saws between
        // ~0 and ~1 s, and six samples once caught only the low half (band 1.1 s, steady lag
        // at 1.1 s: "not recovered"). The truth compares with the 10 s before the loss.
        .replace("baseline: 4s", "baseline: 12s")
        // Room for the slowest re-placement seen here; the bound below stays ± 2 intervals.
        .replace("timeout: 8s", "timeout: 15s")
        .replace("max_recovery: 8s", "max_recovery: 15s")
        // Replacements still come after the longest recovery judged here.
        .replace("delay: 15s", "delay: 20s");
    assert!(
        plan.contains("floor: 1s")
            && plan.contains("sample_interval: 1s")
            && plan.contains("baseline: 12s")
            && plan.contains("timeout: 15s")
            && plan.contains("delay: 20s")
    );
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(0);
    let run = dir.path().join("run");
    let truth: Vec<Value> = std::fs::read_to_string(run.join("lab-truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let report = report(dir.path());
    let steps = report["targets"][0]["steps"].as_array().unwrap();
    let interval = 1.0;
    for step in steps {
        let injected = time(&step["injected_at"]);
        let measured = step["applications"][0]["recovery_s"]
            .as_f64()
            .expect("recovered");
        // The drained event of the backlog this step caused.
        let drained = truth
            .iter()
            .filter(|e| e["event"] == "backlog_drained")
            .find(|e| {
                let since = time(&e["since"]);
                since >= injected
                    && since.duration_since(injected).unwrap() < Duration::from_secs(1)
            })
            .unwrap_or_else(|| {
                panic!("no backlog_drained for the step at {}", step["injected_at"])
            });
        let truth_s = time(&drained["at"])
            .duration_since(injected)
            .unwrap()
            .as_secs_f64();
        assert!(
            (measured - truth_s).abs() <= 2.0 * interval,
            "measured recovery {measured} s, lab truth {truth_s:.2} s (step {step})"
        );
    }
}

/// A guard that the ladder breaches stops escalation: no terminations past it, the report is
/// written, exit 3.
#[test]
fn a_breached_guard_stops_escalation_and_exits_3() {
    let plan = Shape::storm(6, 2, 8, &[1, 2, 3]).plan().replace(
        "    seed: 3\n",
        "    seed: 3\n    guards: {max_terminations: 2}\n",
    );
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(3);
    let journal = journal(&dir.path().join("run"));
    assert_eq!(
        events(&journal, "intent").len(),
        1,
        "only step 1 (1 node) fits under 2"
    );
    let breach = events(&journal, "guard_breached");
    assert_eq!(breach.len(), 1);
    assert_eq!(breach[0]["guard"], "max_terminations");
    let report = report(dir.path());
    assert!(
        report["aborted"]
            .as_str()
            .unwrap()
            .contains("max_terminations")
    );
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["targets"][0]["steps"][0]["verdict"], "pass");
    assert!(
        report["targets"][0]["steps"][1]["skipped"]
            .as_str()
            .unwrap()
            .contains("max_terminations")
    );
}

/// A run in the background (the interrupt and crash tests); its directory holds `plan.yaml`,
/// the run directory `run` and the locks.
pub(crate) struct Background {
    pub(crate) child: Running,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) run: PathBuf,
}

impl Background {
    pub(crate) fn plan(&self) -> PathBuf {
        self.dir.path().join("plan.yaml")
    }

    pub(crate) fn locks(&self) -> PathBuf {
        self.dir.path().join("locks")
    }

    /// Wait for the first step's injection (past the lab's warm-up and the baseline).
    pub(crate) fn wait_first_injection(&self) {
        wait_for("the first injection", Duration::from_secs(120), || {
            !events(&journal(&self.run), "injected").is_empty()
        });
    }
}

pub(crate) fn start_in_background(plan: &str) -> Background {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, plan).unwrap();
    let run = dir.path().join("run");
    let child = Cmd::new(["run", path.to_str().unwrap(), "--yes", "--out"])
        .arg(&run)
        .locks(dir.path().join("locks"))
        .spawn();
    Background { child, dir, run }
}

fn lab_node_pids(run: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(run.join("lab.json")).unwrap_or_default();
    let state: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    state["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["pid"].as_i64().unwrap() as i32)
                .collect()
        })
        .unwrap_or_default()
}

/// The first Ctrl-C stops injecting but finishes observing the step and writes the report
/// (exit 3); the later steps never terminate anything, and no node process is left behind.
#[test]
fn one_ctrl_c_finishes_the_step_writes_the_report_and_exits_3() {
    let mut bg = start_in_background(&Shape::storm(6, 2, 8, &[1, 2, 3]).plan());
    let run = bg.run.clone();
    bg.wait_first_injection();
    let pids = lab_node_pids(&run);
    assert!(!pids.is_empty());
    bg.child.signal(Signal::SIGINT);
    bg.child.wait(Duration::from_secs(120)).expect_code(3);
    let journal = journal(&run);
    assert_eq!(
        events(&journal, "intent").len(),
        1,
        "no termination after Ctrl-C"
    );
    let judged = events(&journal, "step_judged");
    assert_eq!(
        judged.len(),
        1,
        "the interrupted step is observed to its end and judged"
    );
    let report = report(bg.dir.path());
    assert_eq!(report["exit_code"], 3);
    assert!(report["aborted"].as_str().unwrap().contains("interrupted"));
    wait_for("no lab node left", Duration::from_secs(60), || {
        pids.iter().all(|&p| !alive(p))
    });
    // Issue 16 item 1: the stopped, finished run is not resumed into more terminations: plain
    // `--resume` refuses (exit 2) naming --continue, and leaves the journal as it was.
    let before = std::fs::read(run.join("journal.jsonl")).unwrap();
    let plan_path = bg.dir.path().join("plan.yaml");
    let again = spotdrill_env(
        &[
            "run",
            plan_path.to_str().unwrap(),
            "--yes",
            "--resume",
            run.to_str().unwrap(),
        ],
        bg.dir.path(),
    );
    again.expect_code(2);
    assert!(
        again.stderr.contains("finished run that stopped") && again.stderr.contains("--continue"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(run.join("journal.jsonl")).unwrap(), before);
}

/// `spotdrill run PLAN --yes --resume RUN [extra…]` from the background run's directory.
fn resume(bg: &Background, extra: &[&str]) -> Outcome {
    let plan = bg.plan();
    let mut args = vec![
        "run",
        plan.to_str().unwrap(),
        "--yes",
        "--resume",
        bg.run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spotdrill_env(&args, bg.dir.path())
}

/// A second Ctrl-C exits at once (exit 3) with the journal flushed. Issue 16 items 1 and 3:
/// `--resume` keeps the run stopped (exit 3, nothing terminated) and judges the step the exit
/// cut from its samples instead of skipping it; `--resume --continue` then escalates past the
/// stop, never terminating the cut step's nodes again.
#[test]
fn two_ctrl_c_exit_at_once_resume_stays_stopped_and_continue_escalates() {
    let plan = Shape::storm(6, 2, 8, &[1, 2]).plan();
    let mut bg = start_in_background(&plan);
    let run = bg.run.clone();
    bg.wait_first_injection();
    let pids = lab_node_pids(&run);
    bg.child.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    bg.child.signal(Signal::SIGINT);
    let started = Instant::now();
    bg.child.wait(Duration::from_secs(30)).expect_code(3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second Ctrl-C exits at once"
    );
    let journal_then = journal(&run);
    let last = journal_then.last().unwrap();
    assert_eq!(last["event"], "interrupted");
    assert_eq!(last["hard"], true);
    assert!(events(&journal_then, "step_judged").is_empty());
    wait_for("no lab node left", Duration::from_secs(60), || {
        pids.iter().all(|&p| !alive(p))
    });
    let first_nodes = events(&journal_then, "intent")[0]["nodes"].clone();

    // Resume (the lock of the dead run is gone: it removed it on the way out): still stopped.
    let stayed = resume(&bg, &[]);
    stayed.expect_code(3);
    let journal_now = journal(&run);
    assert_eq!(
        events(&journal_now, "intent").len(),
        1,
        "nothing terminated after the stop\n{}",
        stayed.stderr
    );
    let stopped = report(bg.dir.path());
    assert!(
        stopped["aborted"]
            .as_str()
            .unwrap()
            .contains("interrupted at"),
        "{}",
        stopped["aborted"]
    );
    let steps = stopped["targets"][0]["steps"].as_array().unwrap();
    assert!(
        steps[0]["verdict"].is_string(),
        "step 1 judged: {}",
        steps[0]
    );
    assert!(
        steps[0]["findings"][0]
            .as_str()
            .unwrap()
            .starts_with("judged at resume from samples.csv"),
        "{}",
        steps[0]
    );
    assert!(
        steps[1]["skipped"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );

    // --continue: escalation goes on past the stop; step 1 is not injected again.
    let continued = resume(&bg, &["--continue"]);
    let intents_now = journal(&run);
    let intents = events(&intents_now, "intent");
    assert_eq!(intents.len(), 2, "{}", continued.stderr);
    assert_eq!(intents[0]["nodes"], first_nodes);
    assert_eq!(intents[1]["step"], 1);
    let report = report(bg.dir.path());
    assert!(report["aborted"].is_null(), "{}", report["aborted"]);
    assert_eq!(report["targets"][0]["steps"][1]["verdict"], "pass");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("with --continue"))
    );
    // Step 1, cut 0.3 s after its injection, cannot pass: tolerance 0, the gate fails: exit 1.
    continued.expect_code(1);
    // A finished run is not resumed again, --continue or not.
    let done = resume(&bg, &["--continue"]);
    done.expect_code(2);
    assert!(done.stderr.contains("nothing to resume"), "{}", done.stderr);
}

#[test]
fn run_without_yes_and_without_a_terminal_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = spotdrill_env(
        &[
            "run",
            "experiments/lab-game-day.yaml",
            "--out",
            dir.path().join("r").to_str().unwrap(),
        ],
        dir.path(),
    );
    out.expect_code(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(!dir.path().join("r").exists(), "nothing started");
}

/// An application whose group never committed: the run refuses to start (exit 4) and terminates
/// nothing (the lab waits a minute for its workloads' first commits before it gives up).
#[test]
fn a_group_without_commits_is_refused_before_anything_is_terminated() {
    // A second application, on no target, whose group nobody runs.
    let plan = Shape::storm(4, 2, 6, &[1]).plan().replace(
        "applications:\n",
        "applications:\n  ghost: {group: nobody, topics: [events], slo: {max_lag: 60s, max_recovery: 8s}}\n",
    );
    assert!(plan.contains("group: nobody"));
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(4);
    assert!(
        outcome.stderr.contains("no committed offsets"),
        "{}",
        outcome.stderr
    );
    let journal = journal(&dir.path().join("run"));
    assert!(events(&journal, "intent").is_empty());
}

/// A plan with AWS targets whose AWS (and Kafka) cannot be reached: exit 4 (environment) and
/// nothing is intended, let alone terminated.
#[test]
fn a_plan_with_unreachable_aws_targets_stops_before_any_intent() {
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new([
        "run",
        "experiments/storm-prod-aws.yaml",
        "--yes",
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ])
    .locks(dir.path().join("locks"))
    .envs(crate::plan_cli::NO_AWS)
    .run();
    out.expect_code(4);
    let journal = std::fs::read_to_string(dir.path().join("r/journal.jsonl")).unwrap_or_default();
    assert!(!journal.contains("\"intent\""), "{journal}");
}

/// `run --compare PREVIOUS --fail-on-drop`: a tolerance below the earlier run's fails the run
/// (exit 1) and the comparison names the target and both numbers.
#[test]
fn run_compare_fails_on_a_tolerance_drop() {
    // The earlier run: the recorded fixture's report, with its storm target renamed to this
    // plan's target and claiming a tolerance of 2.
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("earlier");
    std::fs::create_dir_all(&earlier).unwrap();
    let fixture = root().join("tests/fixtures/runs/two-targets");
    for f in ["journal.jsonl", "samples.csv", "lab-truth.jsonl"] {
        std::fs::copy(fixture.join(f), earlier.join(f)).unwrap();
    }
    spotdrill_env(&["report", earlier.to_str().unwrap()], dir.path()).expect_code(0);
    let mut old: Value =
        serde_json::from_str(&std::fs::read_to_string(earlier.join("report.json")).unwrap())
            .unwrap();
    let targets = old["targets"].as_array_mut().unwrap();
    targets.retain(|t| t["kind"] == "storm");
    targets[0]["name"] = "c".into();
    targets[0]["tolerated_terminations"] = 2.into();
    std::fs::write(
        earlier.join("report.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();

    let plan = Shape::storm(4, 2, 6, &[1]).plan();
    let (outcome, _run) = run_plan(
        &plan,
        &[
            "--compare",
            earlier.join("report.json").to_str().unwrap(),
            "--fail-on-drop",
        ],
    );
    outcome.expect_code(1);
    assert!(
        outcome.stdout.contains("compared with"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("c tolerance 2 → ≥ 1"),
        "{}",
        outcome.stdout
    );
}
