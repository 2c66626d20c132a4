//! `spotdrill validate`: every problem, located, in one run; exit 2 on any error.

use crate::util::{spotdrill, spotdrill_in, yaml_files};

const INVALID: &str = "tests/fixtures/invalid";

/// Lines of the form `file:line:column: …` that are errors (not warnings).
fn located_errors<'a>(stderr: &'a str, file: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{file}:")) && !l.contains(": warning: "))
        .collect()
}

#[test]
fn every_invalid_plan_is_rejected_with_located_messages() {
    let files = yaml_files(INVALID);
    assert!(files.len() >= 25, "only {} invalid plans", files.len());
    for file in &files {
        let out = spotdrill(&["validate", file]);
        out.expect_code(2);
        assert!(
            out.stdout.is_empty(),
            "{file}: nothing on stdout for an invalid plan"
        );
        let errors = located_errors(&out.stderr, file);
        assert!(
            !errors.is_empty(),
            "{file}: no located error in\n{}",
            out.stderr
        );
        for line in errors {
            // file:LINE:COLUMN: with real numbers.
            let rest = &line[file.len() + 1..];
            let mut parts = rest.splitn(3, ':');
            let (l, c) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                l.parse::<usize>().is_ok_and(|n| n > 0) && c.parse::<usize>().is_ok_and(|n| n > 0),
                "{file}: `{line}` has no line:column"
            );
        }
        let name = file
            .trim_start_matches(&format!("{INVALID}/"))
            .trim_end_matches(".yaml");
        insta::assert_snapshot!(name, out.stderr);
    }
}

#[test]
fn five_independent_errors_are_all_reported_in_one_run() {
    let file = format!("{INVALID}/five-independent-errors.yaml");
    let out = spotdrill(&["validate", &file]);
    out.expect_code(2);
    let errors = located_errors(&out.stderr, &file);
    let paths: Vec<&str> = errors
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "lab.topics[0].rate",
            "applications.coverage.slo.max_lag",
            "targets.storm-lab.nodes.zone",
            "targets.storm-lab.applications[1]",
            "targets.storm-lab.ladder[1]",
        ],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("error: 5 problem(s) in 1 of 1 plan(s)"));
}

#[test]
fn valid_and_invalid_plans_together_exit_2_and_report_both() {
    let bad = format!("{INVALID}/ladder-not-increasing.yaml");
    let out = spotdrill(&["validate", "experiments/ci-gate.yaml", &bad]);
    out.expect_code(2);
    assert!(out.stdout.contains("experiments/ci-gate.yaml: ok"));
    assert!(
        out.stderr
            .contains(&format!("{bad}:25:20: targets.storm-lab.ladder[2]"))
    );
    assert!(out.stderr.contains("in 1 of 2 plan(s)"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = spotdrill_in(dir.path(), &["validate", "nope.yaml"]);
    out.expect_code(2);
    assert_eq!(out.stderr.lines().next(), Some("nope.yaml: no such file"));
}

#[test]
fn a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    let out = spotdrill_in(dir.path(), &["validate", "plans"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("plans: is a directory, not a plan file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_binary_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), b"version: 1\n\x00\x01\xff").unwrap();
    let out = spotdrill_in(dir.path(), &["validate", "plan.yaml"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("plan.yaml: is a binary file (NUL byte at offset 11)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_non_utf8_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), b"name: caf\xe9\n").unwrap();
    let out = spotdrill_in(dir.path(), &["validate", "plan.yaml"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("plan.yaml: is not UTF-8 text (invalid byte at offset 9)")
    );
}

#[test]
fn an_empty_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
    std::fs::write(dir.path().join("comments.yaml"), "# nothing yet\n\n").unwrap();
    for file in ["empty.yaml", "comments.yaml"] {
        let out = spotdrill_in(dir.path(), &["validate", file]);
        out.expect_code(2);
        assert!(
            out.stderr
                .starts_with(&format!("{file}: the plan is empty")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn warnings_alone_do_not_fail_validation() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(crate::util::root().join("experiments/ci-gate.yaml"))
        .unwrap()
        .replace(
            "    guards: {max_terminations: 3}",
            "    guards: {max_terminations: 2}",
        );
    std::fs::write(dir.path().join("plan.yaml"), text).unwrap();
    let out = spotdrill_in(dir.path(), &["validate", "plan.yaml"]);
    out.expect_code(0);
    assert!(
        out.stderr.contains(
            "warning: targets.gate-storm.guards.max_terminations: the guard stops the ladder before step 2"
        ),
        "{}",
        out.stderr
    );
}
