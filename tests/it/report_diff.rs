//! `spotdrill diff OLD NEW`: what changed between two runs, and the `--fail-on-drop` gate. The
//! second run is the recorded one with its report.json edited.

use std::path::Path;

use crate::report::{read, rebuilt_run};
use crate::util::{Outcome, spotdrill};

fn diff(old: &Path, new: &Path, flags: &[&str]) -> Outcome {
    let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(flags);
    spotdrill(&args)
}

/// A copy of `run` whose report.json went through `edit`.
fn edited(run: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut report: serde_json::Value = serde_json::from_str(&read(run, "report.json")).unwrap();
    edit(&mut report);
    std::fs::write(
        dir.path().join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    dir
}

/// storm-lab tolerates one termination less, and coverage-topology recovers more slowly.
fn worse(r: &mut serde_json::Value) {
    let storm = &mut r["targets"][0];
    assert_eq!(storm["name"], "storm-lab");
    assert_eq!(storm["tolerated_terminations"], 1);
    storm["tolerated_terminations"] = 0.into();
    let step1 = &mut storm["steps"][0];
    step1["verdict"] = "fail".into();
    let cov = &mut step1["applications"][0];
    assert_eq!(cov["name"], "coverage-topology");
    assert_eq!(cov["recovery_s"], 2.0);
    cov["recovery_s"] = 48.0.into();
    cov["spike_lag_s"] = 30.0.into();
    cov["verdict"] = "fail".into();
    cov["reason"] = "recovered in 48 s, exceeds max_recovery 10 s".into();
}

#[test]
fn a_tolerance_drop_fails_with_fail_on_drop_and_names_target_and_numbers() {
    let old = rebuilt_run();
    let new = edited(old.path(), worse);
    let out = diff(old.path(), new.path(), &["--fail-on-drop"]);
    out.expect_code(1);
    for line in [
        "storm-lab tolerance 1 → 0 (required 2): dropped",
        "storm-lab: coverage-topology pass → fail at step 1 (1 termination): recovered in 48 s",
        "storm-lab: coverage-topology spike 2.5 s → 30 s at step 1 (1 termination)",
        "storm-lab: coverage-topology recovery 2 s → 48 s at step 1 (1 termination)",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing `{line}`:\n{}",
            out.stdout
        );
    }
    // Nothing else changed.
    assert_eq!(out.stdout.lines().count(), 5, "{}", out.stdout);
    assert!(!out.stdout.contains("mesos-lab"), "{}", out.stdout);

    // Without the flag the change is stated and the exit is 0.
    let out = diff(old.path(), new.path(), &[]);
    out.expect_code(0);
    assert!(out.stdout.contains("storm-lab tolerance 1 → 0"));

    // The other way round the tolerance rose: no drop.
    let out = diff(new.path(), old.path(), &["--fail-on-drop"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("storm-lab tolerance 0 → 1 (required 2)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("recovery 48 s → 2 s"), "{}", out.stdout);
}

#[test]
fn the_same_run_twice_has_no_change_and_passes_the_gate() {
    let run = rebuilt_run();
    let out = diff(run.path(), run.path(), &["--fail-on-drop"]);
    out.expect_code(0);
    assert!(out.stdout.contains("no change"), "{}", out.stdout);
    // A run directory without report.json is compared through its journal.
    let bare = crate::report::recorded_run();
    let out = diff(
        bare.path(),
        &run.path().join("report.json"),
        &["--fail-on-drop"],
    );
    out.expect_code(0);
    assert!(out.stdout.contains("no change"), "{}", out.stdout);
}

#[test]
fn json_output_and_targets_or_steps_in_only_one_run() {
    let old = rebuilt_run();
    let new = edited(old.path(), |r| {
        let targets = r["targets"].as_array_mut().unwrap();
        targets.retain(|t| t["name"] != "mesos-lab");
        let steps = targets[0]["steps"].as_array_mut().unwrap();
        steps.pop();
        let mut four = steps[1].clone();
        four["terminations"] = 4.into();
        steps.push(four);
    });
    let out = diff(old.path(), new.path(), &["--json", "--fail-on-drop"]);
    out.expect_code(0);
    let d: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(d["tolerance_dropped"], false);
    assert_eq!(d["old"]["plan"], "report fixture");
    let lines: Vec<&str> = d["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "storm-lab step 3 (4 terminations) only in the new run",
            "storm-lab step 3 (3 terminations) only in the old run",
            "target mesos-lab only in the old run (tolerance ≥ 2, required 1)",
        ]
    );
    let kinds: Vec<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["presence", "presence", "presence"]);
}

#[test]
fn diff_of_something_that_is_not_a_run_is_bad_input() {
    let run = rebuilt_run();
    let empty = tempfile::tempdir().unwrap();
    let out = diff(run.path(), empty.path(), &[]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("is not a run directory"),
        "{}",
        out.stderr
    );
    std::fs::write(empty.path().join("report.json"), "{\"schema_version\": 1}").unwrap();
    let out = diff(run.path(), empty.path(), &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("is not a report"), "{}", out.stderr);
}

/// The same count as a floor instead of the limit is a change of the tolerance, and says so.
#[test]
fn a_tolerance_that_becomes_a_floor_is_a_change() {
    let old = rebuilt_run();
    let new = edited(old.path(), |r| {
        let storm = &mut r["targets"][0];
        assert_eq!(storm["tolerance_bound"], "exact");
        storm["tolerance_bound"] = "at_least".into();
    });
    let out = diff(old.path(), new.path(), &["--fail-on-drop"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("storm-lab tolerance 1 → ≥ 1 (required 2)\n"),
        "{}",
        out.stdout
    );
}
