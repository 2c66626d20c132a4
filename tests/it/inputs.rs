//! Inputs (issue 16, items 11–15): what a plan, the lab's state files, a health API or the AWS
//! SDK hands spotdrill never makes it print a secret, panic, overflow, follow a planted link,
//! signal a stranger's process, hide why capacity is unknown, or bury a plain cause in a
//! screenful of SDK structures. SECURITY.md lists each with its figure.

use std::path::Path;

use crate::util::{Cmd, Outcome};

/// A short storm lab plan (4 × 2 slots running 6 workers, ladder [1]) with `health` lines.
fn lab_plan_with(health: &str) -> String {
    crate::run::Shape::storm(4, 2, 6, &[1]).plan().replace(
        "    applications: [app]\n    ladder",
        &format!("    {health}\n    applications: [app]\n    ladder"),
    )
}

fn write_plan(dir: &Path, text: &str) -> String {
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn spotdrill_at(dir: &Path, args: &[&str]) -> Outcome {
    Cmd::new(args).locks(dir.join("locks")).run()
}

#[track_caller]
fn assert_hidden(out: &Outcome, secrets: &[&str]) {
    for s in secrets {
        for (place, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(!text.contains(s), "{place} shows `{s}`:\n{text}");
        }
    }
}

// ---- 11. credentials in plan URLs ------------------------------------------------------------

/// Item 11: a health URL with a password (one with a bare `/`, one percent-escaped) and a
/// `password:` field are refused by `validate`, `plan` and `plan --json` (exit 2) with a located
/// error pointing to `auth: {…_env}`, and no output — the excerpt included — shows the password.
#[test]
fn plan_urls_with_credentials_are_refused_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"health: {storm_ui: "http://svc:Ab/Cd3f@nimbus:8080"}"#,
            &["Ab/Cd3f", "Cd3f"][..],
            "storm_ui",
        ),
        (
            r#"health: {storm_ui: "http://svc:Xy%2FZw9q@nimbus:8080"}"#,
            &["Xy%2FZw9q", "Xy/Zw9q", "Zw9q"][..],
            "storm_ui",
        ),
    ];
    for (health, secrets, field) in cases {
        let plan = write_plan(dir.path(), &lab_plan_with(health));
        for args in [vec!["validate"], vec!["plan"], vec!["plan", "--json"]] {
            let mut args = args.clone();
            args.push(&plan);
            let out = spotdrill_at(dir.path(), &args);
            out.expect_code(2);
            assert_hidden(&out, secrets);
            assert!(
                out.stderr.contains(&format!("targets.c.health.{field}"))
                    && out.stderr.contains("written with credentials")
                    && out.stderr.contains("password_env")
                    && out.stderr.contains("http://nimbus:8080"),
                "a located error naming the field and the fix:\n{}",
                out.stderr
            );
        }
    }
    let plan = crate::run::Shape::storm(4, 2, 6, &[1]).plan().replace(
        "kafka: {brokers: lab}",
        "kafka:\n  brokers: lab\n  security: {protocol: SASL_SSL, sasl_mechanism: PLAIN, username: svc, password: Tr0ub4dor-77}",
    );
    let out = spotdrill_at(dir.path(), &["validate", &write_plan(dir.path(), &plan)]);
    out.expect_code(2);
    assert_hidden(&out, &["Tr0ub4dor"]);
    assert!(
        out.stderr.contains("kafka.security.password") && out.stderr.contains("<redacted>"),
        "{}",
        out.stderr
    );
}

// ---- 12. panics and overflows -----------------------------------------------------------------

/// Item 12, first reproduction: `timeout: 300000000000y` validated, then `run` panicked after
/// the first termination (`Instant + timeout`, exit 101). Every duration is now bounded (30
/// days): `validate` and `run` refuse it (exit 2), naming the field, before anything runs.
#[test]
fn a_duration_past_the_bound_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::run::Shape::storm(4, 2, 6, &[1])
        .plan()
        .replace("  timeout: 8s\n", "  timeout: 300000000000y\n");
    assert!(
        plan.contains("300000000000y"),
        "the fixture has an observe timeout"
    );
    let plan = write_plan(dir.path(), &plan);
    let out_dir = dir.path().join("out");
    let runs = [
        vec!["validate", plan.as_str()],
        vec![
            "run",
            plan.as_str(),
            "--yes",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let out = spotdrill_at(dir.path(), &args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("observe.timeout")
                && out
                    .stderr
                    .contains("longer than the longest duration a plan may hold (30days)"),
            "{}",
            out.stderr
        );
    }
    assert!(!out_dir.join("journal.jsonl").exists(), "nothing ran");
}

/// Item 12, second reproduction: a ladder `[4000000000, 4294967295]` under `max_terminations:
/// 4294967295` overflowed a u32 sum in validation (a panic in debug builds, a wrapped sum in
/// release) and in `run`'s confirmation. Now the sums are exact: `validate` warns with the true
/// total and `run` without a terminal refuses for want of confirmation (exit 2), no panic.
#[test]
fn a_ladder_whose_sum_passes_u32_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::util::plan_fixture(
        "aws-flat.yaml",
        &[
            ("name", &"big"),
            ("brokers", &"127.0.0.1:1"),
            (
                "nodes",
                &"{provider: aws-ec2, region: us-east-1, tags: {cluster: x}}",
            ),
            ("ladder", &"[4000000000, 4294967295]"),
            ("selection", &"random"),
            ("extra", &"    guards: {max_terminations: 4294967295}\n"),
        ],
    );
    let plan = write_plan(dir.path(), &plan);
    let out = spotdrill_at(dir.path(), &["validate", &plan]);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("terminate 8294967295 nodes, more than max_terminations 4294967295"),
        "{}",
        out.stderr
    );
    let out = spotdrill_at(dir.path(), &["run", &plan]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("refusing to run without confirmation"),
        "{}",
        out.stderr
    );
}
