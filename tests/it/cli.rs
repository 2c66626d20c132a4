//! The command line contract: every subcommand exists; bad usage exits 2.

use crate::util::spotdrill;

#[test]
fn help_lists_every_subcommand_and_the_exit_codes() {
    let out = spotdrill(&["--help"]);
    out.expect_code(0);
    for cmd in [
        "validate", "plan", "run", "lag", "report", "diff", "watch", "lab", "schema",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "`{cmd}` missing from --help:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("4 environment error"));
}

/// `watch` needs a run directory: a missing one, or a directory of runs, is bad input (exit 2).
#[test]
fn watch_of_something_that_is_not_a_run_directory_exits_2() {
    let out = spotdrill(&["watch", "no/such/run"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("is not a run directory"),
        "{}",
        out.stderr
    );
    let runs = tempfile::tempdir().unwrap();
    std::fs::create_dir(runs.path().join("20261126T010203-game-day")).unwrap();
    std::fs::write(
        runs.path().join("20261126T010203-game-day/journal.jsonl"),
        "",
    )
    .unwrap();
    let out = spotdrill(&["watch", runs.path().to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("20261126T010203-game-day"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    spotdrill(&["validate"]).expect_code(2);
    spotdrill(&["frobnicate"]).expect_code(2);
    spotdrill(&[
        "lag",
        "--brokers",
        "x:1",
        "--group",
        "g",
        "--interval",
        "soon",
    ])
    .expect_code(2);
}
