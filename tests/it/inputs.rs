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

// ---- 13. the lab's directory, state file and signals --------------------------------------

/// Item 13: without `--dir` the lab's state lives in a directory of the user's own — under
/// `$XDG_RUNTIME_DIR`, else `$TMPDIR/spotdrill-lab-UID` (before: a fixed `/tmp/spotdrill-lab`
/// anyone could create first) — created with mode 0700; one others can write in is refused.
#[test]
fn the_default_lab_dir_is_the_users_own_and_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let kill = || {
        Cmd::new(["lab", "kill", "n-1"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .run()
    };
    let out = kill();
    out.expect_code(4);
    let lab = runtime.join("spotdrill-lab");
    assert!(out.stderr.contains("no running lab in"), "{}", out.stderr);
    assert!(out.stderr.contains(lab.to_str().unwrap()), "{}", out.stderr);
    let mode = std::fs::metadata(&lab).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "created private");
    std::fs::set_permissions(&lab, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = kill();
    out.expect_code(4);
    assert!(
        out.stderr.contains("refusing the lab directory") && out.stderr.contains("mode 777"),
        "{}",
        out.stderr
    );
    // Without XDG_RUNTIME_DIR: a per-user directory under TMPDIR.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = Cmd::new(["lab", "kill", "n-1"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmp)
        .run();
    out.expect_code(4);
    let uid = nix::unistd::getuid();
    let lab = tmp.join(format!("spotdrill-lab-{uid}"));
    assert!(out.stderr.contains(lab.to_str().unwrap()), "{}", out.stderr);
    let mode = std::fs::metadata(&lab).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "created private");
}

/// Item 13: `lab kill` signals only a process that is provably the lab's own node (a child of
/// the lab's recorded process running `spotdrill lab node` on its brokers). A `lab.json` naming
/// an unrelated process — even a child of the named lab pid — or a pid `kill` would read as a
/// group or as every process (0, 1, 4294967295 = -1) is refused (exit 2), and nothing is signalled.
#[test]
fn lab_kill_signals_only_the_labs_own_node_processes() {
    let dir = tempfile::tempdir().unwrap();
    // An unrelated process whose parent is this test: the `pid` the forged lab.json names.
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let bystander_pid = bystander.id();
    let state = |pid: u64| {
        serde_json::json!({
            "brokers": "127.0.0.1:9", "pid": std::process::id(), "broker_pid": 0,
            "nodes": [{"id": "n-1", "cluster": "c", "pid": pid}], "endpoints": []
        })
    };
    for pid in [u64::from(bystander_pid), 0, 1, 4_294_967_295] {
        std::fs::write(dir.path().join("lab.json"), state(pid).to_string()).unwrap();
        let out = Cmd::new(["lab", "kill", "n-1", "--dir"])
            .arg(dir.path())
            .run();
        out.expect_code(2);
        assert!(
            out.stderr
                .contains(&format!("refusing to signal pid {pid} for lab node `n-1`")),
            "{}",
            out.stderr
        );
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "the bystander was signalled (pid {pid})"
        );
    }
    let _ = bystander.kill();
    let _ = bystander.wait();
}

/// Item 13: links planted in a lab directory are never followed. `lab.json.tmp` and `lab.json`
/// pointing at someone's file (before: the file was overwritten with the lab's state): the lab
/// runs and the files are untouched. `lab-truth.jsonl` pointing at one: the lab refuses to
/// start, naming the file, and it is untouched.
#[test]
fn links_planted_in_the_lab_dir_are_never_followed() {
    use std::os::unix::fs::symlink;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    std::fs::create_dir(&lab).unwrap();
    let victims: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|v| {
            let p = dir.path().join(format!("victim-{v}"));
            std::fs::write(&p, format!("precious {v}\n")).unwrap();
            p
        })
        .collect();
    symlink(&victims[0], lab.join("lab.json.tmp")).unwrap();
    symlink(&victims[1], lab.join("lab.json")).unwrap();
    let mut up = Cmd::new(["lab", "up", "experiments/ci-gate.yaml", "--dir"])
        .arg(&lab)
        .spawn();
    crate::util::wait_for("lab up's state", Duration::from_secs(120), || {
        up.stdout.text().contains("Ctrl-C to stop")
    });
    let state = std::fs::symlink_metadata(lab.join("lab.json")).unwrap();
    assert!(state.is_file(), "lab.json is the lab's own file now");
    up.signal(nix::sys::signal::Signal::SIGTERM);
    up.wait(Duration::from_secs(60)).expect_code(0);
    for (i, v) in victims[..2].iter().enumerate() {
        let text = std::fs::read_to_string(v).unwrap();
        assert_eq!(
            text,
            format!("precious {}\n", ["a", "b"][i]),
            "{}",
            v.display()
        );
    }
    let lab = dir.path().join("lab2");
    std::fs::create_dir(&lab).unwrap();
    symlink(&victims[2], lab.join("lab-truth.jsonl")).unwrap();
    let out = Cmd::new(["lab", "up", "experiments/ci-gate.yaml", "--dir"])
        .arg(&lab)
        .run();
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("lab-truth.jsonl (a link there is refused)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&victims[2]).unwrap(),
        "precious c\n"
    );
}

// ---- 15. AWS errors a person can read ---------------------------------------------------------

/// Every variable the AWS credential, region and endpoint chains read.
const AWS_VARS: [&str; 16] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
];

/// `spotdrill [-vv] plan` of an aws-ec2 plan on a "laptop": no AWS variable, an empty HOME, the
/// instance metadata service at a closed port, plus `env`.
fn laptop_plan(dir: &Path, region: bool, verbose: bool, env: &[(&str, String)]) -> Outcome {
    let kafka = crate::support::kafka::Kafka::mock();
    let nodes = match region {
        true => "{provider: aws-ec2, region: us-east-1, tags: {cluster: x}}",
        false => "{provider: aws-ec2, tags: {cluster: x}}",
    };
    let plan = crate::util::plan_fixture(
        "aws-flat.yaml",
        &[
            ("name", &"laptop"),
            ("brokers", &kafka.bootstrap),
            ("nodes", &nodes),
            ("ladder", &"[1]"),
            ("selection", &"random"),
            ("extra", &""),
        ],
    );
    let plan = write_plan(dir, &plan);
    let imds = format!("http://127.0.0.1:{}", crate::support::kafka::free_port());
    let args = match verbose {
        true => vec!["-vv", "plan", &plan],
        false => vec!["plan", &plan],
    };
    let mut cmd = Cmd::new(args)
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds)
        .env("AWS_MAX_ATTEMPTS", "1");
    for var in AWS_VARS {
        cmd = cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

/// The one `nodes:` line of a plan printout.
#[track_caller]
fn nodes_line(out: &Outcome) -> String {
    out.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("nodes:"))
        .unwrap_or_else(|| panic!("no nodes line:\n{}", out.stdout))
        .trim()
        .to_owned()
}

#[track_caller]
fn assert_no_sdk_structures(out: &Outcome) {
    let all = format!("{}{}", out.stdout, out.stderr);
    for debug in [
        "DispatchFailure",
        "ConnectorError",
        "ProviderAttempt",
        "WARN",
        " { ",
    ] {
        assert!(
            !all.contains(debug),
            "`{debug}` at default verbosity:\n{all}"
        );
    }
}

/// Item 15: `plan` on a laptop without credentials printed a WARN line holding the SDK's IMDS
/// `Debug` structure and a screenful of `DispatchFailure(…)`; now one sentence per failure
/// (no credentials with the sources tried and the fix; no region; an unreachable endpoint,
/// named), exit 4, no SDK structure and no SDK warning at default verbosity, the raw chain at `-vv`.
#[test]
fn aws_failures_read_as_one_sentence_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = laptop_plan(dir.path(), true, false, &[]);
    out.expect_code(4);
    assert_eq!(
        nodes_line(&out),
        "nodes: cannot discover nodes: DescribeInstances: no AWS credentials found (tried: \
         environment variables, shared config and credentials files, web identity token, ECS \
         container, EC2 instance metadata); pass --profile NAME, run `aws sso login`, or set \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    );
    // Said once: the account line (GetCallerIdentity, same cause) points at the nodes line.
    assert_eq!(
        out.stdout.matches("no AWS credentials found").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("acting in: AWS account unknown, region us-east-1, endpoint default (the cause is on the nodes line)"),
        "{}",
        out.stdout
    );
    assert_no_sdk_structures(&out);
    let out = laptop_plan(dir.path(), true, true, &[]);
    assert!(
        out.stderr.contains("AWS call failed") && out.stderr.contains("ProviderAttempt"),
        "-vv keeps the raw chain:\n{}",
        out.stderr
    );
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIAINPUTSTEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "inputs-test".to_owned()),
    ];
    let out = laptop_plan(dir.path(), false, false, &keys);
    out.expect_code(4);
    assert_eq!(
        nodes_line(&out),
        "nodes: cannot discover nodes: DescribeInstances: no AWS region; name one in the target \
         (`region:`), pass --region, or set AWS_REGION"
    );
    assert_no_sdk_structures(&out);
    let endpoint = format!("http://127.0.0.1:{}", crate::support::kafka::free_port());
    let mut env = keys.to_vec();
    env.push(("AWS_ENDPOINT_URL", endpoint.clone()));
    let out = laptop_plan(dir.path(), true, false, &env);
    out.expect_code(4);
    let line = nodes_line(&out);
    assert!(
        line.starts_with(&format!(
            "nodes: cannot discover nodes: DescribeInstances: cannot reach the AWS endpoint {endpoint} ("
        )) && line.ends_with("); check the network, or --endpoint-url / AWS_ENDPOINT_URL"),
        "{line}"
    );
    assert_no_sdk_structures(&out);
}

// ---- 12, again: the same invariants the fuzz target checks, over extreme numbers -----------

use crate::trust::invariants;

/// A number a plan may hold where a count goes: small ones, the edges of u32 and u64, and any.
fn count() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        0..8u64,
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) - 1),
        Just(4_000_000_000u64),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

/// A duration text: a count with any humantime unit.
fn duration() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    (
        count(),
        prop::sample::select(vec!["ms", "s", "m", "h", "d", "y", "days"]),
    )
        .prop_map(|(n, unit)| format!("{n}{unit}"))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Item 12 in a debug build (overflow checks on): plans whose ladders, guards, lab sizes
    /// and durations sit at the edges of their types load into a plan or located errors, and
    /// the confirmation total and guard arithmetic on a valid one never panic.
    #[test]
    fn extreme_numbers_in_a_plan_never_panic(
        ladder in proptest::collection::vec(count(), 1..4),
        max in count(),
        min_healthy in count(),
        lab in (count(), count(), count()),
        durations in proptest::collection::vec(duration(), 4),
    ) {
        let ladder: Vec<String> = ladder.iter().map(u64::to_string).collect();
        let ladder = ladder.join(", ");
        let lab_plan = format!(
            "version: 1\nname: edges\nkafka: {{brokers: lab}}\nlab:\n  topics:\n    - {{name: t, \
             partitions: 2, rate: 10/s, message_bytes: 100}}\n  clusters:\n    c:\n      kind: storm\n      \
             nodes: {}\n      slots_per_node: {}\n      workloads: {{a: {{workers: {}, group: a, topics: [t], \
             cost_per_message: 1ms}}}}\napplications:\n  a: {{group: a, topics: [t], slo: {{max_lag: 1m, \
             max_recovery: {}}}}}\ntargets:\n  c:\n    kind: storm\n    nodes: {{provider: lab, cluster: c}}\n    \
             applications: [a]\n    ladder: [{ladder}]\n    required_tolerance: 0\n    guards: \
             {{max_terminations: {max}, min_healthy: {min_healthy}}}\nobserve: {{timeout: {}, cooldown: {}}}\n",
            lab.0, lab.1, lab.2, durations[0], durations[1], durations[2],
        );
        // Valid whenever the ladder increases and the numbers fit: the guard arithmetic runs.
        let aws_plan = format!(
            "version: 1\nname: edges\nkafka: {{brokers: \"127.0.0.1:9\"}}\napplications:\n  a: {{group: a, \
             topics: [t], slo: {{max_lag: 1m, max_recovery: 1m}}}}\ntargets:\n  e:\n    kind: storm\n    \
             nodes: {{provider: aws-ec2, region: us-east-1, tags: {{c: x}}}}\n    applications: [a]\n    \
             ladder: [{ladder}]\n    required_tolerance: 0\n    guards: {{max_terminations: {max}, \
             min_healthy: {min_healthy}}}\nobserve: {{baseline: {}}}\n",
            durations[3],
        );
        for text in [lab_plan, aws_plan] {
            let result = std::panic::catch_unwind(|| invariants::check_plan_text(&text));
            proptest::prop_assert!(result.is_ok(), "panicked on:\n{}", text);
            proptest::prop_assert!(result.unwrap().is_ok(), "invariant broken on:\n{}", text);
        }
    }
}
