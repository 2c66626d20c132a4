//! The live dashboard: frames drawn from a recorded run, the follower over growing files, `watch`
//! without a terminal, and `run --live` in a real terminal (tmux).

use std::io::Write;
use std::path::{Path, PathBuf};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use spotdrill::live::{Follower, LiveState, StepState, View, render, to_text};

use crate::util::{Cmd, plan_fixture, root, spotdrill};

fn fixture_dir() -> PathBuf {
    root().join("tests/fixtures/runs/two-targets")
}

fn recorded() -> LiveState {
    let mut f = Follower::new(&fixture_dir());
    f.poll().expect("the fixture run reads");
    f.state
}

fn frame(state: &LiveState, now: f64, w: u16, h: u16) -> String {
    let view = View {
        now,
        color: false,
        window_s: 60.0,
        waiting: None,
        keys: "any key: leave",
        note: None,
    };
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| render(f, state, &view)).unwrap();
    to_text(term.backend().buffer())
}

/// The recorded run at its end, in the smallest terminal the dashboard supports.
#[test]
fn dashboard_of_a_recorded_run_at_80x24() {
    let state = recorded();
    insta::assert_snapshot!("dashboard_80x24", frame(&state, state.latest, 80, 24));
}

/// The same run in a large terminal: charts side by side, the whole ladder and timeline.
#[test]
fn dashboard_of_a_recorded_run_at_160x48() {
    let state = recorded();
    insta::assert_snapshot!("dashboard_160x48", frame(&state, state.latest, 160, 48));
}

/// Append bytes to a file of a run directory.
fn append(dir: &Path, file: &str, bytes: &[u8]) {
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join(file))
        .unwrap();
    f.write_all(bytes).unwrap();
    f.sync_data().unwrap();
}

/// The recorded journal and samples, replayed into an empty directory a piece at a time, cutting
/// lines in the middle: the follower sees each step move, never reads half a line, and ends with
/// the same state as reading the files whole.
#[test]
fn the_follower_sees_a_run_grow_through_torn_lines() {
    let src = fixture_dir();
    let journal = std::fs::read(src.join("journal.jsonl")).unwrap();
    let samples = std::fs::read(src.join("samples.csv")).unwrap();
    let truth = std::fs::read(src.join("lab-truth.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut f = Follower::new(dir.path());
    assert!(!f.poll().unwrap(), "nothing yet");
    assert!(f.state.plan.is_none());

    // Pieces of 37 bytes: most cut a line.
    let mut seen_states = Vec::new();
    for (i, chunk) in journal.chunks(37).enumerate() {
        append(dir.path(), "journal.jsonl", chunk);
        if let Some(s) = samples.chunks(97).nth(i) {
            append(dir.path(), "samples.csv", s);
        }
        f.poll().unwrap();
        assert_eq!(f.state.unreadable, 0, "a torn line was read as a whole one");
        if let Some(t) = f.state.targets.first() {
            let s = t.steps[0].state;
            if seen_states.last() != Some(&s) {
                seen_states.push(s);
            }
        }
    }
    assert_eq!(
        seen_states,
        [
            StepState::Pending,
            StepState::Injecting,
            StepState::Observing,
            StepState::Passed
        ],
        "storm-lab's first step, as the journal grew"
    );
    for s in samples.chunks(97).skip(journal.chunks(37).count()) {
        append(dir.path(), "samples.csv", s);
    }
    append(dir.path(), "lab-truth.jsonl", &truth);
    // capacity.jsonl appears late and is read from then on.
    append(
        dir.path(),
        "capacity.jsonl",
        br#"{"at":"2026-11-26T03:27:29.100Z","t_s":52.6,"target":"storm-lab","capacity":{"kind":"storm","supervisors_alive":6,"slots_total":12,"slots_used":8,"slots_free":4,"topologies":[]},"error":null}"#,
    );
    f.poll().unwrap();
    assert!(
        f.state.capacity.is_empty(),
        "the capacity line has no newline yet"
    );
    append(dir.path(), "capacity.jsonl", b"\n");
    assert!(f.poll().unwrap());
    assert_eq!(
        f.state.capacity["storm-lab"].summary.as_deref(),
        Some("6 supervisors · slots 8/12 used")
    );

    let whole = recorded();
    assert_eq!(f.state.targets, whole.targets);
    assert_eq!(f.state.apps, whole.apps);
    assert_eq!(f.state.events, whole.events);
    assert_eq!(f.state.finished, whole.finished);
    assert_eq!(
        f.state.finished.map(|f| f.exit_code),
        Some(spotdrill::exit::ExitCode::Failed)
    );
}

/// `watch` without a terminal prints the timeline as lines and exits with the run's own code.
#[test]
fn watch_without_a_terminal_prints_the_timeline_and_the_runs_exit_code() {
    let out = spotdrill(&["watch", "tests/fixtures/runs/two-targets"]);
    out.expect_code(1);
    for line in [
        "run started: report fixture",
        "storm-lab step 1/3: terminating 1 node",
        "storm-lab: storm-lab-1 died",
        "coverage-topology recovered",
        "storm-lab step 2/3 judged: fail",
        "run finished: verdict fail, exit code 1",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing:\n{}",
            out.stdout
        );
    }
}

/// `watch` follows a run that is still being written, and ends when it finishes.
#[test]
fn watch_follows_a_growing_run_until_it_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Cmd::new(["watch", dir.path().to_str().unwrap()]).spawn();
    let journal = std::fs::read_to_string(fixture_dir().join("journal.jsonl")).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    // Everything but run_finished, then a run_finished that says abort (exit 3).
    for l in &lines[..lines.len() - 1] {
        append(dir.path(), "journal.jsonl", format!("{l}\n").as_bytes());
    }
    std::thread::sleep(std::time::Duration::from_millis(600));
    append(
        dir.path(),
        "journal.jsonl",
        br#"{"event":"run_finished","at":"2026-11-26T03:27:29.008Z","verdict":"fail","#,
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    append(dir.path(), "journal.jsonl", b"\"exit_code\":3}\n");
    let out = child.wait(std::time::Duration::from_secs(60));
    let stdout = &out.stdout;
    assert_eq!(out.code, 3, "{stdout}");
    assert!(
        stdout.contains("run finished: verdict fail, exit code 3"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("run started").count(), 1, "{stdout}");
}

/// `--step-confirm` needs keys, so a terminal; without one it is refused before anything runs.
#[test]
fn step_confirm_without_a_terminal_is_refused() {
    let out = spotdrill(&[
        "run",
        "experiments/lab-game-day.yaml",
        "--yes",
        "--live",
        "--step-confirm",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--step-confirm needs the dashboard"),
        "{}",
        out.stderr
    );
}

/// A terminal for the dashboard: a tmux server of its own, one pane running a plain shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Tmux {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "spotdrill-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let t = Tmux { socket };
        let status = std::process::Command::new("tmux")
            .args([
                "-f",
                "/dev/null",
                "-L",
                &t.socket,
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args([
                "env",
                "PS1=$ ",
                "TERM=xterm-256color",
                "bash",
                "--norc",
                "--noprofile",
            ])
            .status()
            .expect("tmux is installed: run ./scripts/test, which installs it (apt)");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Type a command line into the shell.
    fn type_line(&self, line: &str) {
        self.send(&["-l", line]);
        self.send(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// A pane property (`alternate_on`, `cursor_flag`, …).
    fn pane(&self, format: &str) -> String {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "t",
            &format!("#{{{format}}}"),
        ])
        .trim()
        .to_owned()
    }

    /// Wait until the screen shows `what`; returns the screen.
    #[track_caller]
    fn wait_for(&self, what: &str, secs: u64) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < until,
                "{what:?} did not appear within {secs} s; the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// A small lab game day: 4 storm nodes × 2 slots running 4 workers, ladder 1 then 3 (the
/// second step leaves 2 slots for 4 workers until replacements join 5 s later).
fn small_plan(dir: &Path) -> PathBuf {
    let plan = dir.join("plan.yaml");
    std::fs::write(&plan, plan_fixture("live-storm.yaml", &[])).unwrap();
    plan
}

/// The command line that runs a plan live in the pane, then prints its exit code.
fn live_command(dir: &Path, plan: &Path, extra: &str) -> String {
    format!(
        "cd {root} && env SPOTDRILL_LOCK_DIR={locks} {bin} run {plan} --yes --live --out {out} {extra}; echo EXIT''=$?",
        root = root().display(),
        locks = dir.join("locks").display(),
        bin = env!("CARGO_BIN_EXE_spotdrill"),
        plan = plan.display(),
        out = dir.join("run").display(),
    )
}

fn journal_events(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The exit code the shell printed after the run (`EXIT=n`).
fn shell_exit(screen: &str) -> i32 {
    let at = screen.rfind("EXIT=").expect("EXIT= on screen");
    screen[at + 5..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exit code after EXIT=:\n{screen}"))
}

/// Whether the pane's terminal is back in cooked mode (what `stty -a` says).
fn assert_terminal_restored(t: &Tmux) {
    assert_eq!(t.pane("alternate_on"), "0", "still on the alternate screen");
    assert_eq!(t.pane("cursor_flag"), "1", "the cursor is still hidden");
    t.send(&["clear", "Enter"]);
    t.type_line(
        "stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo|isig)' | tr '\\n' ' '; echo \"STTY\"-done",
    );
    let screen = t.wait_for("STTY-done", 10);
    let line = screen
        .lines()
        .find(|l| l.contains("icanon") && !l.contains("grep"))
        .unwrap_or_else(|| panic!("no stty output:\n{screen}"));
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            line.split_whitespace().any(|w| w == flag),
            "{flag} is off after the dashboard: {line}"
        );
    }
}

/// `run --live` in an 80×24 terminal: the chart, the events and the verdict appear, the exit
/// code shown is the run's, and the terminal is given back (normal screen, cooked mode) with the
/// run's summary printed on it.
#[test]
fn live_run_in_a_terminal_shows_chart_events_and_verdict_then_gives_the_terminal_back() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(dir.path());
    let t = Tmux::start(80, 24);
    t.type_line(&live_command(dir.path(), &plan, ""));
    t.wait_for("spotdrill live", 30);
    assert_eq!(t.pane("alternate_on"), "1", "the dashboard owns the screen");
    let screen = t.wait_for("c step 1/2: terminating 1 node", 120);
    assert!(screen.contains("┌ app "), "the lag chart:\n{screen}");
    assert!(screen.contains("band≤"), "the band:\n{screen}");
    assert!(screen.contains("┌ ladder "), "{screen}");
    // Capacity from the health probes (capacity.jsonl).
    t.wait_for(" supervisors · slots ", 30);
    // Lag is drawn (braille) once samples come in.
    let screen = t.wait_for(" died", 60);
    assert!(
        screen
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "no chart line:\n{screen}"
    );
    assert!(screen.contains("+0."), "time since injection:\n{screen}");
    let screen = t.wait_for("VERDICT", 180);
    assert!(!screen.contains("EXIT="), "{screen}");
    // Once the report is written, a key leaves.
    let screen = t.wait_for("any key: leave", 60);
    let shown: i32 = screen
        .lines()
        .find(|l| l.contains("VERDICT"))
        .unwrap_or_default()
        .split("exit code ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exit code with the verdict:\n{screen}"));
    // The verdict stays until a key is pressed.
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(t.screen().contains("VERDICT"));
    t.send(&["x"]);
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(
        shell_exit(&screen),
        shown,
        "the dashboard showed another code:\n{screen}"
    );
    assert!(
        screen.contains("live storm lab — verdict"),
        "the summary after the dashboard:\n{screen}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["exit_code"], shown);
    assert_terminal_restored(&t);
}

/// `--step-confirm`: the first step waits for Enter (nothing is terminated meanwhile); at the
/// second, the abort key stops escalation like a first Ctrl-C: exit 3, no second step.
#[test]
fn step_confirm_waits_for_enter_and_the_abort_key_stops_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(dir.path());
    let run = dir.path().join("run");
    let t = Tmux::start(100, 30);
    t.type_line(&live_command(dir.path(), &plan, "--step-confirm"));
    let screen = t.wait_for("NEXT c step 1/2: terminate 1", 120);
    assert!(screen.contains("Enter: go"), "{screen}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let started = |run: &Path| {
        journal_events(run)
            .into_iter()
            .filter(|e| e["event"] == "step_started")
            .count()
    };
    assert_eq!(started(&run), 0, "a step started without the operator's go");
    t.send(&["Enter"]);
    t.wait_for("c step 1/2: terminating 1 node", 20);
    t.wait_for("NEXT c step 2/2: terminate 3", 120);
    t.send(&["a"]);
    let screen = t.wait_for("VERDICT", 60);
    assert!(screen.contains("exit code 3"), "{screen}");
    t.send(&["Enter"]);
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(shell_exit(&screen), 3, "{screen}");
    let journal = journal_events(&run);
    assert_eq!(
        started(&run),
        1,
        "the second step started after the abort key"
    );
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "interrupted" && e["hard"] == false),
        "the abort key is journaled as a first Ctrl-C"
    );
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == 1),
        "the second step is skipped"
    );
    assert_terminal_restored(&t);
}

/// `--step-confirm` and the terminal closes while a step waits for Enter: no one is left to
/// confirm, so escalation stops (nothing is terminated), the run writes its end and exits; it
/// never waits for ever in the background.
#[test]
fn a_terminal_closed_while_a_step_waits_stops_escalation_and_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(dir.path());
    let run = dir.path().join("run");
    let t = Tmux::start(100, 30);
    t.type_line(&live_command(dir.path(), &plan, "--step-confirm"));
    t.wait_for("NEXT c step 1/2: terminate 1", 120);
    drop(t);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let journal = loop {
        let journal = journal_events(&run);
        if journal.iter().any(|e| e["event"] == "run_finished") {
            break journal;
        }
        assert!(
            std::time::Instant::now() < until,
            "the run did not end within 60 s of its terminal closing: {journal:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        !journal.iter().any(|e| e["event"] == "step_started"),
        "a step started after the terminal closed: {journal:?}"
    );
    let out = run.display().to_string();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::process::Command::new("pgrep")
        .args(["-f", "--", &format!("--out {out}")])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            std::time::Instant::now() < until,
            "spotdrill still runs 30 s after writing run_finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Without a terminal on stdout, `--live` says so once and the run goes on with the plain
/// progress lines; its exit code is the report's.
#[test]
fn live_without_a_terminal_falls_back_to_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(dir.path());
    let out = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--live", "--out"])
        .arg(dir.path().join("run"))
        .locks(dir.path().join("locks"))
        .run();
    let (stderr, stdout) = (&out.stderr, &out.stdout);
    assert_eq!(
        stderr.matches("--live: stdout is not a terminal").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("c step 1: terminated 1/1"),
        "progress lines:\n{stderr}"
    );
    assert!(stdout.contains("live storm lab — verdict"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    assert_eq!(Some(i64::from(out.code)), report["exit_code"].as_i64());
}

/// Ctrl-C reaches the dashboard as a key (the terminal is in raw mode) and keeps its meaning:
/// twice exits at once (journaled as a hard interrupt, exit 3), with the terminal given back.
#[test]
fn ctrl_c_twice_on_the_dashboard_exits_at_once_and_gives_the_terminal_back() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan(dir.path());
    let run = dir.path().join("run");
    let t = Tmux::start(80, 24);
    t.type_line(&live_command(dir.path(), &plan, "--step-confirm"));
    t.wait_for("NEXT c step 1/2", 120);
    t.send(&["C-c", "C-c"]);
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(shell_exit(&screen), 3, "{screen}");
    assert!(screen.contains("interrupted twice"), "{screen}");
    let journal = journal_events(&run);
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "interrupted" && e["hard"] == true),
        "{journal:?}"
    );
    assert!(!journal.iter().any(|e| e["event"] == "step_started"));
    assert_terminal_restored(&t);
}

/// `watch` on a terminal: the recorded run's verdict and exit code stay on screen until a key;
/// then the terminal is given back and the process exits with the run's code.
#[test]
fn watch_in_a_terminal_shows_the_verdict_and_exits_with_the_runs_code() {
    let t = Tmux::start(80, 24);
    t.type_line(&format!(
        "cd {} && {} watch tests/fixtures/runs/two-targets; echo EXIT''=$?",
        root().display(),
        env!("CARGO_BIN_EXE_spotdrill")
    ));
    let screen = t.wait_for("VERDICT FAIL · exit code 1", 30);
    assert!(screen.contains("┌ coverage-topology "), "{screen}");
    assert!(screen.contains("storm-lab storm · needs 2"), "{screen}");
    // As the report bounds it: storm-lab's step 2 failed (exactly 1), mesos-lab passed both.
    assert!(screen.contains("tolerates 1 "), "{screen}");
    assert!(screen.contains("tolerates ≥ 2"), "{screen}");
    assert_eq!(t.pane("alternate_on"), "1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!t.screen().contains("EXIT="), "left without a key");
    t.send(&["Enter"]);
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(shell_exit(&screen), 1, "{screen}");
    assert_terminal_restored(&t);
}

/// With stdin not a terminal (nobody to press a key), `watch` on a terminal leaves by itself
/// at the end of the run, with its exit code, and gives the terminal back.
#[test]
fn watch_with_stdin_not_a_terminal_leaves_by_itself_at_the_end() {
    let t = Tmux::start(80, 24);
    t.type_line(&format!(
        "cd {} && {} watch tests/fixtures/runs/two-targets < /dev/null; echo EXIT''=$?",
        root().display(),
        env!("CARGO_BIN_EXE_spotdrill")
    ));
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(shell_exit(&screen), 1, "{screen}");
    assert_terminal_restored(&t);
}

/// `--step-confirm` acts on what holds after the wait for Enter, not before it (issue 16, item
/// 5): a node the step did not choose dies while step 1 waits. `min_healthy: 3` of 4 allowed one
/// termination before the wait and no longer does after it; once the operator says go, the
/// guards are evaluated again on a fresh discovery and stop the step: nothing is terminated.
#[test]
fn step_confirm_evaluates_the_guards_again_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let text = plan_fixture("live-storm.yaml", &[])
        .replace("delay: 5s}", "delay: 10m}")
        .replace(
            "    required_tolerance: 1\n",
            "    required_tolerance: 1\n    guards: {min_healthy: 3}\n",
        );
    assert!(text.contains("min_healthy") && text.contains("delay: 10m"));
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let run = dir.path().join("run");
    let t = Tmux::start(100, 30);
    t.type_line(&live_command(dir.path(), &plan, "--step-confirm"));
    let screen = t.wait_for("NEXT c step 1/2: terminate 1", 120);
    let other = (1..=4)
        .map(|i| format!("c-{i}"))
        .find(|id| !screen.contains(&format!("({id})")))
        .expect("a node the step did not choose");
    spotdrill(&["lab", "kill", &other, "--dir", run.to_str().unwrap()]).expect_code(0);
    crate::util::wait_for(
        "the lab to lose the node",
        std::time::Duration::from_secs(30),
        || {
            let state = std::fs::read_to_string(run.join("lab.json")).unwrap_or_default();
            !state.contains(&format!("\"{other}\""))
        },
    );
    let lab_state = std::fs::read_to_string(run.join("lab.json")).unwrap_or_default();
    t.send(&["Enter"]);
    crate::util::wait_for(
        "the step to go on or stop",
        std::time::Duration::from_secs(60),
        || {
            journal_events(&run)
                .iter()
                .any(|e| e["event"] == "guard_breached" || e["event"] == "intent")
        },
    );
    // Stop escalating (a no-op after a breach), and leave.
    t.send(&["a"]);
    let screen = t.wait_for("VERDICT", 60);
    t.send(&["Enter"]);
    t.wait_for("EXIT=", 30);
    let journal = journal_events(&run);
    let screen = format!("{screen}\nlab.json at the go:\n{lab_state}\nkilled {other}");
    let breached: Vec<_> = journal
        .iter()
        .filter(|e| e["event"] == "guard_breached")
        .collect();
    assert!(
        breached.iter().any(|e| e["guard"] == "min_healthy"),
        "{screen}\n{journal:#?}"
    );
    for kind in ["step_started", "intent"] {
        assert!(
            !journal.iter().any(|e| e["event"] == kind),
            "{kind} after the world changed during the wait: {journal:#?}"
        );
    }
    assert_terminal_restored(&t);
}

/// Issue 16 item 1: resuming a stopped run asks on the terminal, and the question names the
/// stop and `--continue`; answering no terminates nothing (exit 2). Without `--continue` a
/// finished, stopped run is refused before anything is asked.
#[test]
fn the_confirmation_of_a_resume_with_continue_names_the_stop_it_escalates_past() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("experiments/lab-game-day.yaml")).unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, &text).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let journal = [
        serde_json::json!({"event": "run_started", "at": "2026-11-26T03:26:36.491Z",
            "plan": "p", "plan_path": "plan.yaml", "plan_digest": spotdrill::journal::digest(&text),
            "version": "0.1.0", "targets": [], "lab": true}),
        serde_json::json!({"event": "interrupted", "at": "2026-11-26T03:27:00.000Z", "hard": false}),
        serde_json::json!({"event": "run_finished", "at": "2026-11-26T03:27:10.000Z",
            "verdict": "fail", "exit_code": 3}),
    ];
    let lines: Vec<String> = journal.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(run.join("journal.jsonl"), lines.concat()).unwrap();
    let (p, r) = (plan.to_str().unwrap(), run.to_str().unwrap());
    let refused = spotdrill(&["run", p, "--resume", r]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--continue"), "{}", refused.stderr);

    let t = Tmux::start(250, 24);
    let exe = env!("CARGO_BIN_EXE_spotdrill");
    t.type_line(&format!(
        "{exe} run {p} --resume {r} --continue; echo EXIT''=$?"
    ));
    let screen = t.wait_for("Type yes to go on", 30);
    assert!(
        screen.contains("with --continue: it stopped (interrupted at 2026-11-26T03:27:00.000Z"),
        "{screen}"
    );
    assert!(
        screen.contains("escalation goes on past that stop"),
        "{screen}"
    );
    t.type_line("no");
    let screen = t.wait_for("EXIT=", 30);
    assert_eq!(shell_exit(&screen), 2, "{screen}");
    assert!(screen.contains("nothing was terminated"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(run.join("journal.jsonl")).unwrap(),
        lines.concat()
    );
}
