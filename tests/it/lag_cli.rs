//! `spotdrill lag` end to end: the real binary against real brokers.

use crate::support::kafka::{Kafka, free_port};
use crate::util::{Cmd, spotdrill, spotdrill_in};

const T0: i64 = 1_767_225_600_000;

fn ts(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| T0 + s * 1000).collect()
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Known data on tansu: the JSON line carries the exact lag of every partition.
#[test]
fn lag_json_on_tansu_is_exact() {
    let kafka = Kafka::tansu();
    kafka.create_topic("telemetry", 2, &[]);
    kafka.produce("telemetry", 0, &ts(&[0, 10, 20, 30, 40]));
    kafka.produce("telemetry", 1, &ts(&[5, 6]));
    kafka.commit("coverage", "telemetry", &[(0, 2), (1, 2)]);
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        "coverage",
        "--topic",
        "telemetry",
        "--once",
        "--json",
    ]);
    out.expect_code(0);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    let g = &lines[0];
    assert_eq!(g["group"], "coverage");
    assert_eq!(g["lag_messages"], 3);
    assert_eq!(g["lag_seconds"], 30.0);
    assert_eq!(g["status"], "ok");
    assert!(g["at"].as_str().unwrap().ends_with('Z'));
    assert!(g["elapsed_ms"].is_u64());
    let p = &g["partitions"];
    assert_eq!(
        (
            &p[0]["topic"],
            &p[0]["partition"],
            &p[0]["committed"],
            &p[0]["high_watermark"],
            &p[0]["lag_messages"],
            &p[0]["lag_seconds"]
        ),
        (
            &"telemetry".into(),
            &0.into(),
            &2.into(),
            &5.into(),
            &3.into(),
            &30.0.into()
        )
    );
    assert_eq!(
        (&p[1]["lag_messages"], &p[1]["lag_seconds"]),
        (&0.into(), &0.0.into())
    );
}

#[test]
fn several_groups_plain_lines_and_never_committed() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 1, 2, 3]));
    kafka.commit("a", "t", &[(0, 3)]);
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        "a",
        "--group",
        "b",
        "--topic",
        "t",
        "--samples",
        "2",
        "--interval",
        "100ms",
    ]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].contains(" group=a partitions=1 lag_messages=1 lag_seconds=1.000 "));
    // The mock cluster has no DescribeGroups: the first sample says so once, in a note.
    assert!(lines[0].contains(" status=ok"), "{}", lines[0]);
    assert!(lines[1].contains(" group=b partitions=1 lag_messages=4 lag_seconds=3.000 "));
    assert!(lines[1].contains(" status=never_committed"), "{}", lines[1]);
    assert!(lines[2].contains("trend=steady"), "{}", lines[2]);
}

#[test]
fn groups_and_topics_come_from_a_plan() {
    let kafka = Kafka::mock();
    kafka.create_topic("telemetry", 1, &[]);
    kafka.produce("telemetry", 0, &ts(&[0, 7]));
    kafka.commit("coverage", "telemetry", &[(0, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string(crate::util::root().join("experiments/mesos-prod-asg.yaml"))
        .unwrap()
        .replace(
            "kafka-1.prod.internal:9092,kafka-2.prod.internal:9092",
            &kafka.bootstrap,
        )
        .replace(
            "group: live-aggregators\n    topics: [estimated-metrics]",
            "group: coverage\n    topics: [telemetry]",
        )
        .replace(
            "group: anomaly-attribution\n    topics: [aggregates]",
            "group: coverage\n    topics: [telemetry]",
        );
    std::fs::write(dir.path().join("plan.yaml"), plan).unwrap();
    let out = spotdrill_in(
        dir.path(),
        &["lag", "--plan", "plan.yaml", "--once", "--json"],
    );
    out.expect_code(0);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "one group, listed once: {}", out.stdout);
    assert_eq!(lines[0]["group"], "coverage");
    assert_eq!(lines[0]["lag_seconds"], 7.0);
}

#[test]
fn an_unreachable_broker_exits_4_naming_it() {
    let port = free_port();
    let broker = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &broker,
        "--group",
        "g",
        "--timeout",
        "1s",
        "--once",
    ]);
    out.expect_code(4);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot reach Kafka at {broker} within 1s")),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_topic_exits_4_naming_it() {
    let kafka = Kafka::mock();
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        "g",
        "--topic",
        "nope",
        "--once",
    ]);
    out.expect_code(4);
    assert_eq!(
        out.stderr.lines().next(),
        Some(format!("error: topic `nope` does not exist on {}", kafka.bootstrap).as_str())
    );
}

#[test]
fn usage_problems_exit_2() {
    spotdrill(&["lag", "--group", "g"]).expect_code(2);
    spotdrill(&["lag", "--brokers", "x:1"]).expect_code(2);
    let out = spotdrill(&[
        "lag",
        "--brokers",
        "x:1",
        "--group",
        "g",
        "--security-protocol",
        "sasl_ssl",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("needs --sasl-mechanism"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_sasl_password_is_never_printed() {
    const SECRET: &str = "hunter2-do-not-print-me";
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    let out = Cmd::new([
        "-vvv",
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        "g",
        "--topic",
        "t",
        "--timeout",
        "1s",
        "--once",
        "--json",
        "--security-protocol",
        "sasl_plaintext",
        "--sasl-mechanism",
        "PLAIN",
        "--sasl-username",
        "svc",
        "--sasl-password-env",
        "IT_KAFKA_PASSWORD",
    ])
    .env("IT_KAFKA_PASSWORD", SECRET)
    .run();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains(SECRET), "the password leaked:\n{all}");

    // Unset: a clear error naming the variable (not its value), exit 4.
    let out = spotdrill(&[
        "lag",
        "--brokers",
        &kafka.bootstrap,
        "--group",
        "g",
        "--once",
        "--security-protocol",
        "sasl_ssl",
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        "svc",
        "--sasl-password-env",
        "IT_SURELY_UNSET_PASSWORD",
    ]);
    out.expect_code(4);
    assert!(
        out.stderr
            .contains("environment variable `IT_SURELY_UNSET_PASSWORD`"),
        "{}",
        out.stderr
    );
}

/// On a terminal the table is redrawn in place: the second sample moves the cursor back up over
/// the first and clears it. `script` (util-linux) gives the command a pseudo-terminal.
#[test]
fn on_a_terminal_the_table_refreshes_in_place() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 1, &[]);
    kafka.produce("t", 0, &ts(&[0, 6]));
    kafka.commit("coverage", "t", &[(0, 1)]);
    let cmd = format!(
        "{} lag --brokers {} --group coverage --topic t --samples 2 --interval 100ms",
        env!("CARGO_BIN_EXE_spotdrill"),
        kafka.bootstrap
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("GROUP"), "{text}");
    assert_eq!(text.matches("coverage").count(), 2, "{text}");
    // Redrawn: cursor up over the 4 lines of the first table (its last: the note that the mock
    // cluster has no group state), then clear to the end.
    assert!(text.contains("\x1b[4A\x1b[J"), "{text:?}");
    assert!(text.contains("6.0"), "{text}");
}
