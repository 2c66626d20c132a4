//! `spotdrill plan` end to end: the preflight previews each step, checks Kafka and the health
//! endpoints, warns about guards, and terminates nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::kafka::{Kafka, free_port};
use crate::util::{Cmd, Outcome, spotdrill};

fn json(out: &Outcome) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout))
}

/// Write `plan.yaml` into a fresh directory and run `spotdrill plan plan.yaml ARGS…` there.
fn plan_in_tempdir(yaml: &str, args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("plan.yaml"), yaml).expect("the plan is written");
    run_plan(dir.path(), args)
}

fn run_plan(dir: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["plan", "plan.yaml"];
    all.extend_from_slice(args);
    // AWS targets are discovered for real: point them at a closed local port, with dummy
    // credentials and no instance-metadata lookups, so nothing leaves the machine.
    Cmd::new(&all).current_dir(dir).envs(NO_AWS).run()
}

/// An AWS that refuses connections at once.
pub const NO_AWS: [(&str, &str); 7] = [
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_MAX_ATTEMPTS", "1"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// A plan with one lab cluster `c` of `nodes` nodes; `brokers` and `targets` are YAML snippets.
fn lab_plan(brokers: &str, nodes: u32, targets: &str) -> String {
    format!(
        "version: 1
name: preflight test
kafka:
  brokers: {brokers}
lab:
  topics:
    - {{name: t, partitions: 2, rate: 10/s, message_bytes: 100}}
  clusters:
    c:
      kind: storm
      nodes: {nodes}
      slots_per_node: 2
      detection_delay: 1s
      replacement: {{enabled: true, delay: 5s}}
      workloads:
        w: {{workers: 2, group: g, topics: [t], cost_per_message: 1ms, commit_interval: 1s}}
applications:
  a:
    group: g
    topics: [t]
    slo: {{max_lag: 60s, max_recovery: 2m}}
observe: {{sample_interval: 1s, baseline: 10s, hold: 2s, timeout: 30s, cooldown: 1m, settle: 5s}}
targets:
{targets}"
    )
}

/// The aws-ec2 target of experiments/storm-prod-aws.yaml.
const AWS_TARGET: &str = "  storm-prod:
    kind: storm
    nodes:
      provider: aws-ec2
      region: us-east-1
      tags: {cluster: storm-prod, role: supervisor}
      availability_zones: [us-east-1a, us-east-1b, us-east-1c]
      instance_types: [c5.2xlarge, c5a.2xlarge, m5.2xlarge]
    applications: [a]
    ladder: [1, 3, 6, 9]
    selection: spread
    required_tolerance: 6
    guards: {max_terminations: 19, min_healthy: 60%}
";

fn ids(values: &serde_json::Value) -> Vec<String> {
    values
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn plan_json_previews_every_step_of_the_lab_game_day_reproducibly() {
    let out = spotdrill(&["plan", "experiments/lab-game-day.yaml", "--json"]);
    out.expect_code(0);
    let v = json(&out);
    let targets = v["targets"].as_array().expect("targets");
    let sizes: Vec<(&str, usize)> = targets
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["nodes"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(sizes, [("storm-lab", 6), ("mesos-lab", 4)]);
    let storm_ids: Vec<String> = targets[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        storm_ids,
        (1..=6)
            .map(|i| format!("storm-lab-{i}"))
            .collect::<Vec<_>>()
    );
    for t in targets {
        assert_eq!(t["provider"], "lab");
        let nodes: BTreeSet<String> = t["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                assert_eq!(n["host"], n["id"]);
                assert!(n["zone"].is_null() && n["instance_type"].is_null());
                assert_eq!(n["lifecycle"], "lab");
                n["id"].as_str().unwrap().to_owned()
            })
            .collect();
        let steps = t["steps"].as_array().unwrap();
        // storm-lab searches 1..5: its preview is the escalation if every step passes.
        let rungs: Vec<u64> = steps
            .iter()
            .map(|s| s["terminations"].as_u64().unwrap())
            .collect();
        match t["name"].as_str().unwrap() {
            "storm-lab" => {
                assert_eq!(rungs, [1, 2, 4, 5]);
                assert_eq!(
                    t["search"],
                    serde_json::json!({"from": 1, "max": 5, "worst_case_steps": 4, "full_ladder_steps": 5})
                );
            }
            _ => {
                assert_eq!(rungs, [1, 2, 3]);
                assert!(t.get("search").is_none(), "{t}");
            }
        }
        for step in steps {
            let n = step["terminations"].as_u64().unwrap() as usize;
            let chosen = ids(&step["would_terminate"]);
            let distinct: BTreeSet<String> = chosen.iter().cloned().collect();
            assert_eq!(chosen.len(), n, "{}: {step}", t["name"]);
            assert_eq!(distinct.len(), n, "{}: {step}", t["name"]);
            assert!(distinct.is_subset(&nodes), "{}: {step}", t["name"]);
            assert!(step.get("error").is_none(), "{step}");
        }
        assert_eq!(t["guard_warnings"], serde_json::json!([]));
    }
    assert_eq!(v["kafka"], "lab (started by run)");
    assert!(v["typical_s"].as_u64().unwrap() < v["worst_case_s"].as_u64().unwrap());

    let again = spotdrill(&["plan", "experiments/lab-game-day.yaml", "--json"]);
    again.expect_code(0);
    assert_eq!(again.stdout, out.stdout, "the preview is seeded");
}

#[test]
fn plan_text_names_each_step_and_the_worst_case_duration() {
    let out = spotdrill(&["plan", "experiments/lab-game-day.yaml"]);
    out.expect_code(0);
    let text = &out.stdout;
    for target in ["storm-lab", "mesos-lab"] {
        assert!(text.contains(&format!("target {target} ")), "{text}");
    }
    for (step, times) in [
        ("step 1: 1 termination: would terminate ", 2),
        ("step 2: 2 terminations: would terminate ", 2),
        ("step 3: 3 terminations: would terminate ", 1),
        ("step 3: 4 terminations: would terminate ", 1),
        ("step 4: 5 terminations: would terminate ", 1),
    ] {
        assert_eq!(
            text.matches(step).count(),
            times,
            "`{step}` {times} times:\n{text}"
        );
    }
    assert!(
        text.contains("search 1..5: at most 4 steps (a full ladder 1..5 takes 5)"),
        "{text}"
    );
    assert!(text.contains("storm-lab-6"), "{text}");
    assert!(text.contains("the lab is started by `run`"), "{text}");
    assert!(text.contains("replacements get new ids"), "{text}");
    let worst = json(&spotdrill(&[
        "plan",
        "experiments/lab-game-day.yaml",
        "--json",
    ]))["worst_case_s"]
        .as_u64()
        .expect("worst_case_s");
    let worst = humantime::format_duration(Duration::from_secs(worst));
    assert!(text.contains(&format!("worst case: {worst} = ")), "{text}");
    assert!(text.contains("typical:"), "{text}");
    assert!(text.contains("kafka: lab (started by run)"), "{text}");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn plan_with_an_unreachable_broker_exits_4_naming_it() {
    let plan = format!(
        "version: 1
name: unreachable broker
kafka:
  brokers: 127.0.0.1:1
applications:
  a:
    group: g
    topics: [t]
    slo: {{max_lag: 60s, max_recovery: 2m}}
targets:
{AWS_TARGET}"
    );
    let started = Instant::now();
    let out = plan_in_tempdir(&plan, &[]);
    out.expect_code(4);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("127.0.0.1:1"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("kafka: error: "), "{}", out.stdout);
    // The probe waits for the Kafka timeout (5 s) twice: the reader's and the metadata's.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// An AWS target whose discovery fails (AWS unreachable): the lab target is still previewed,
/// and the preflight exits 4 (environment) naming the target.
#[test]
fn plan_with_an_unreachable_aws_target_exits_4_after_previewing_the_lab_target() {
    let targets = format!(
        "  lab:
    kind: storm
    nodes: {{provider: lab, cluster: c}}
    applications: [a]
    ladder: [1, 2]
    seed: 3
    required_tolerance: 1
{AWS_TARGET}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), lab_plan("lab", 3, &targets)).unwrap();

    let out = run_plan(dir.path(), &[]);
    out.expect_code(4);
    assert!(
        out.stderr.contains("storm-prod: cannot discover nodes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("DescribeInstances: cannot reach the AWS endpoint http://127.0.0.1:1 ("),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("step 2: 2 terminations: would terminate c-"),
        "{}",
        out.stdout
    );

    let out = run_plan(dir.path(), &["--json"]);
    out.expect_code(4);
    let v = json(&out);
    assert_eq!(v["targets"][0]["nodes"].as_array().unwrap().len(), 3);
    let aws = &v["targets"][1];
    assert_eq!(aws["provider"], "aws-ec2");
    assert_eq!(aws["nodes"], serde_json::json!([]));
    assert_eq!(aws["steps"].as_array().unwrap().len(), 4);
    assert_eq!(aws["steps"][0]["would_terminate"], serde_json::json!([]));
    assert!(aws["steps"][0]["error"].is_string());
}

#[test]
fn plan_warns_when_the_ladder_would_breach_a_guard() {
    let targets = "  lab:
    kind: storm
    nodes: {provider: lab, cluster: c}
    applications: [a]
    ladder: [1, 2, 3]
    required_tolerance: 1
    guards: {max_terminations: 4, min_healthy: 2}
";
    let plan = lab_plan("lab", 3, targets);
    let out = plan_in_tempdir(&plan, &[]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "warning: guard max_terminations 4: step 3 (3) would exceed it (3 terminated so far + 3)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("warning: guard min_healthy 2: step 2 (2) would leave 1 of 3 healthy nodes"),
        "{}",
        out.stdout
    );

    let out = plan_in_tempdir(&plan, &["--json"]);
    out.expect_code(0);
    let v = json(&out);
    let warnings = &v["targets"][0]["guard_warnings"];
    assert_eq!(warnings.as_array().unwrap().len(), 2, "{warnings}");
    // The run would stop at the guard, but the preview still shows every step.
    assert_eq!(
        v["targets"][0]["steps"][2]["would_terminate"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Lab warm-up 60 s + baseline 10 s + 3 steps × (cooldown 60 s + timeout 30 s) + the capacity
    // wait after the last step (the cooldown, at most 2 m); typically 5 s + 10 s + 3 × (settle
    // 5 s + hold 2 s + 3 samples of 1 s).
    assert_eq!(v["worst_case_s"], 60 + 10 + 3 * (60 + 30) + 60);
    assert_eq!(v["typical_s"], 5 + 10 + 3 * (5 + 2 + 3));
}

#[test]
fn plan_checks_external_kafka_and_health_endpoints() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 2, &[]);
    // A Storm UI answering with the recorded shapes (tests/fixtures/health).
    let api = crate::health::FakeApi::start(crate::health::storm_routes());
    let targets = format!(
        "  up:
    kind: storm
    nodes: {{provider: lab, cluster: c}}
    health: {{storm_ui: \"{url}\"}}
    applications: [a]
    ladder: [1]
    required_tolerance: 1
  aimed:
    kind: storm
    nodes: {{provider: lab, cluster: d}}
    health: {{storm_ui: \"{url}\"}}
    running: {{topology: coverage-topology}}
    applications: [b]
    ladder: [1]
    required_tolerance: 1
",
        url = api.url
    );
    let plan = lab_plan(&kafka.bootstrap, 3, &targets)
        .replace(
            "    c:\n",
            "    d: {kind: storm, nodes: 2, slots_per_node: 2, workloads: {w2: {workers: 1, \
             group: g2, topics: [t], cost_per_message: 1ms}}}\n    c:\n",
        )
        .replace(
            "applications:\n",
            "applications:\n  b: {group: g2, topics: [t], slo: {max_lag: 60s, max_recovery: 20s}}\n",
        );
    assert!(plan.contains("    d: {kind: storm"), "{plan}");
    let out = plan_in_tempdir(&plan, &[]);
    out.expect_code(0);
    assert!(api.hits("/api/v1/cluster/summary") >= 2);
    let text = &out.stdout;
    assert!(
        text.contains(&format!(
            "health: storm_ui {} reachable (GET /api/v1/cluster/summary: JSON)",
            api.url
        )),
        "{text}"
    );
    // The capacity the run's probes will see, and `running:` applied to the preview: no lab
    // node of `d` runs coverage-topology (its workers are on the recorded EC2 hosts).
    assert!(
        text.contains("capacity: 3 supervisors alive") && text.contains("coverage-topology"),
        "{text}"
    );
    assert!(
        text.contains("cannot choose: needs 1 nodes but only 0 are running and eligible (nodes running coverage-topology)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("kafka: {} reachable", kafka.bootstrap)),
        "{text}"
    );
}

#[test]
fn plan_warns_about_an_unreachable_health_endpoint_without_failing() {
    let closed = free_port();
    let targets = format!(
        "  down:
    kind: storm
    nodes: {{provider: lab, cluster: c}}
    health: {{storm_ui: \"http://127.0.0.1:{closed}/ui\"}}
    applications: [a]
    ladder: [1]
    required_tolerance: 1
"
    );
    let out = plan_in_tempdir(&lab_plan("lab", 3, &targets), &[]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(&format!(
            "warning: health endpoint storm_ui http://127.0.0.1:{closed}/ui unreachable \
             (GET http://127.0.0.1:{closed}/ui/api/v1/cluster/summary: cannot connect"
        )),
        "{}",
        out.stdout
    );
    let v = json(&plan_in_tempdir(&lab_plan("lab", 3, &targets), &["--json"]));
    assert_eq!(v["targets"][0]["health"][0]["status"], "unreachable");
}

/// Issue 16 item 14: a topology the Storm UI's summary lists whose detail then answers 404
/// (killed in between) is reported gone and the rest of the capacity kept (before: the whole
/// capacity unknown and `plan` printed no capacity line and no reason); when the capacity is
/// unknown, `plan` says why (text and `--json` `capacity_unknown`).
#[test]
fn a_topology_gone_between_summary_and_detail_keeps_the_rest_of_the_capacity() {
    use crate::health::{FakeApi, Reply, storm_routes};
    let gone = "/api/v1/topology/presence-topology-2-1700000100";
    let routes = storm_routes()
        .into_iter()
        .map(|(p, r)| match p == gone {
            true => (p, vec![Reply::Page(404, r#"{"error":"not found"}"#)]),
            false => (p, r),
        })
        .collect();
    let api = FakeApi::start(routes);
    let targets = |url: &str| {
        format!(
            "  c:
    kind: storm
    nodes: {{provider: lab, cluster: c}}
    health: {{storm_ui: \"{url}\"}}
    applications: [a]
    ladder: [1]
    required_tolerance: 1
"
        )
    };
    let out = plan_in_tempdir(&lab_plan("lab", 3, &targets(&api.url)), &[]);
    out.expect_code(0);
    assert_eq!(
        api.hits(gone),
        1,
        "the detail was asked for once (a 404 is not retried)"
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("capacity:"))
        .unwrap_or_else(|| panic!("no capacity line:\n{}", out.stdout));
    assert!(
        line.contains("3 supervisors alive")
            && line.contains("coverage-topology")
            && !line.contains("presence-topology whole")
            && line.contains(
                "presence-topology-2-1700000100 gone (listed, then its detail answered 404)"
            ),
        "{line}"
    );
    // A summary that fails: the capacity is unknown, and `plan` says why.
    let broken = storm_routes()
        .into_iter()
        .map(|(p, r)| match p == "/api/v1/topology/summary" {
            true => (
                p,
                vec![Reply::Page(403, "<html><body>403 Forbidden</body></html>")],
            ),
            false => (p, r),
        })
        .collect();
    let api = FakeApi::start(broken);
    let out = plan_in_tempdir(&lab_plan("lab", 3, &targets(&api.url)), &[]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(&format!(
            "warning: capacity unknown: GET {}/api/v1/topology/summary: HTTP 403",
            api.url
        )),
        "{}",
        out.stdout
    );
    let v = json(&plan_in_tempdir(
        &lab_plan("lab", 3, &targets(&api.url)),
        &["--json"],
    ));
    assert!(
        v["targets"][0]["capacity_unknown"]
            .as_str()
            .is_some_and(|s| s.contains("HTTP 403")),
        "{v}"
    );
}
