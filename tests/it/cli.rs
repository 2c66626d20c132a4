//! The command line contract: every subcommand exists; unfinished ones say so and exit 2.

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

#[test]
fn unfinished_subcommands_exit_2_and_say_so() {
    let cases: &[&[&str]] = &[&["watch", "reports"]];
    for args in cases {
        let out = spotdrill(args);
        out.expect_code(2);
        assert!(
            out.stderr.starts_with("error: not implemented yet: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
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
