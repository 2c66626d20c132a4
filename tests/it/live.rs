//! The live dashboard: frames drawn from a recorded run, the follower over growing files, `watch`
//! without a terminal, and `run --live` in a real terminal (tmux).

use std::io::Write;
use std::path::{Path, PathBuf};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use spotdrill::live::{Follower, LiveState, StepState, View, render, to_text};

use crate::util::{root, spotdrill};

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
        Some("6 supervisors · slots 8/12 used, 4 free")
    );

    let whole = recorded();
    assert_eq!(f.state.targets, whole.targets);
    assert_eq!(f.state.apps, whole.apps);
    assert_eq!(f.state.events, whole.events);
    assert_eq!(f.state.finished, whole.finished);
    assert_eq!(f.state.finished.map(|f| f.exit_code), Some(1));
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
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_spotdrill"))
        .args(["watch", dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
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
