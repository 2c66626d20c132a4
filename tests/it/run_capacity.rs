//! Health probes in a lab game day: the same Storm UI / Mesos / Marathon probes as against
//! production, run against the lab's endpoints; their capacity and rescheduling times are held
//! against the lab's own record of what happened (`lab-truth.jsonl`), and targeting by topology
//! or app and the `max_per_topology` guard are checked against where the work really ran.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde_json::Value;

use crate::run::{events, journal, report, run_plan, time};

const INTERVAL_S: f64 = 0.5;

const PLAN: &str = r#"version: 1
name: capacity game day
kafka: {brokers: lab}
lab:
  topics:
    - {name: events, partitions: 8, rate: 200/s, message_bytes: 128}
    - {name: metrics, partitions: 4, rate: 200/s, message_bytes: 128}
  clusters:
    s:
      kind: storm
      nodes: 4
      slots_per_node: 2
      detection_delay: 1s
      replacement: {enabled: true, delay: 6s}
      workloads:
        ingest: {workers: 4, group: ingest, topics: [events], cost_per_message: 1ms, commit_interval: 1s}
    m:
      kind: mesos
      nodes: 3
      slots_per_node: 2
      detection_delay: 1s
      replacement: {enabled: true, delay: 6s}
      workloads:
        aggregate: {workers: 2, group: aggregate, topics: [metrics], cost_per_message: 1ms, commit_interval: 1s}
applications:
  ingest: {group: ingest, topics: [events], slo: {max_lag: 60s, max_recovery: 20s}}
  aggregate: {group: aggregate, topics: [metrics], slo: {max_lag: 60s, max_recovery: 20s}}
targets:
  s:
    kind: storm
    nodes: {provider: lab, cluster: s}
    health: {storm_ui: lab}
    running: {topology: ingest}
    applications: [ingest]
    ladder: [1, 2]
    seed: 3
  m:
    kind: mesos
    nodes: {provider: lab, cluster: m, notice: 1s}
    health: {mesos_master: lab, marathon: lab}
    running: {app: /aggregate}
    applications: [aggregate]
    ladder: [1]
    seed: 5
observe:
  sample_interval: 500ms
  baseline: 4s
  hold: 2s
  settle: 4s
  timeout: 20s
  cooldown: 60s
  band: {margin: 0.5, floor: 2s}
"#;

fn truth(run: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("lab-truth.jsonl"))
        .expect("lab-truth.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn secs_after(t: SystemTime, since: SystemTime) -> f64 {
    t.duration_since(since)
        .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
}

/// The nodes running each worker of `cluster` at `at`, from the lab's placements.
fn placement_at(truth: &[Value], cluster: &str, at: SystemTime) -> BTreeMap<String, String> {
    let mut place = BTreeMap::new();
    for e in truth {
        if e["cluster"] != cluster || time(&e["at"]) > at {
            continue;
        }
        match e["event"].as_str() {
            Some("worker_placed") => {
                place.insert(
                    e["worker"].as_str().unwrap().to_owned(),
                    e["node"].as_str().unwrap().to_owned(),
                );
            }
            Some("worker_lost") => {
                place.remove(e["worker"].as_str().unwrap());
            }
            _ => {}
        }
    }
    place
}

/// Capacity and rescheduling per step for both cluster kinds match the lab's truth within two
/// sample intervals; only nodes that ran the targeted topology/app were taken; the findings say
/// what Nimbus and Marathon did.
#[test]
fn capacity_and_rescheduling_match_the_lab_truth() {
    let (outcome, dir) = run_plan(PLAN, &[]);
    outcome.expect_code(0);
    let run = dir.path().join("run");
    let truth = truth(&run);
    let report = report(dir.path());
    let journal = journal(&run);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    let capacity_lines = std::fs::read_to_string(run.join("capacity.jsonl")).unwrap();
    for target in ["s", "m"] {
        assert!(
            capacity_lines
                .lines()
                .filter(|l| l.contains(&format!("\"target\":\"{target}\"")))
                .count()
                > 10,
            "capacity.jsonl samples {target}"
        );
    }
    let mut checked = 0;
    for t in report["targets"].as_array().unwrap() {
        let cluster = t["name"].as_str().unwrap();
        let app = t["applications"][0].as_str().unwrap();
        for step in t["steps"].as_array().unwrap() {
            let ctx = format!("{cluster} step {step}");
            assert_eq!(step["verdict"], "pass", "{ctx}");
            let injected = time(&step["injected_at"]);
            let k = step["terminations"].as_u64().unwrap() as usize;
            // `running:` — every node taken ran the workload when it was chosen.
            let intent = events(&journal, "intent")
                .into_iter()
                .find(|e| e["target"] == cluster && e["step"] == step_index(t, step))
                .unwrap();
            let intent_at = time(&intent["at"]);
            let hosts: BTreeSet<String> = placement_at(&truth, cluster, intent_at)
                .into_values()
                .collect();
            for n in intent["nodes"].as_array().unwrap() {
                let id = n["id"].as_str().unwrap();
                assert!(hosts.contains(id), "{ctx}: {id} ran no {app} ({hosts:?})");
            }
            // Rescheduled: the last placement of the lost workers, before the step was judged
            // (the next step's placements come later).
            let judged = events(&journal, "step_judged")
                .into_iter()
                .find(|e| e["target"] == cluster && e["step"] == step_index(t, step))
                .unwrap();
            let window = time(&judged["at"]);
            let placed: Vec<SystemTime> = truth
                .iter()
                .filter(|e| e["cluster"] == cluster && e["event"] == "worker_placed")
                .map(|e| time(&e["at"]))
                .filter(|&at| at > injected && at < window)
                .collect();
            let truth_resched = secs_after(*placed.iter().max().expect("re-placed"), injected);
            let a = &step["applications"][0];
            let measured = a["rescheduled_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("{ctx}"));
            assert!(
                (measured - truth_resched).abs() <= 2.0 * INTERVAL_S,
                "{ctx}: rescheduled {measured} s, lab truth {truth_resched:.2} s"
            );
            assert!(
                a["recovery_s"].as_f64().unwrap() >= measured - 0.05,
                "{ctx}: recovery waits for the work to be whole"
            );
            // Capacity back: the k-th replacement node joined (and the work was whole).
            let joined: Vec<SystemTime> = truth
                .iter()
                .filter(|e| e["cluster"] == cluster && e["event"] == "node_joined")
                .map(|e| time(&e["at"]))
                .filter(|&at| at > injected)
                .collect();
            let truth_back = secs_after(joined[k - 1], injected).max(truth_resched);
            let back = step["capacity_restored_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("{ctx}: capacity back"));
            assert!(
                (back - truth_back).abs() <= 2.0 * INTERVAL_S,
                "{ctx}: capacity back {back} s, lab truth {truth_back:.2} s"
            );
            let cap = &step["capacity"];
            let before = if cluster == "s" { 4 } else { 3 };
            assert_eq!(cap["nodes_before"], before, "{ctx}");
            assert_eq!(cap["nodes_lowest"], before - k as u64, "{ctx}");
            let findings: Vec<&str> = step["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            let said = if cluster == "s" {
                "Nimbus reassigned the executors of topology ingest"
            } else {
                "Marathon relaunched the tasks of aggregate"
            };
            assert!(
                findings.iter().any(|f| f.contains(said)),
                "{ctx}: {findings:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
    assert!(
        md.contains("| rescheduled |") && md.contains("Findings:"),
        "{md}"
    );
    assert!(md.contains("nodes 4→3→"), "{md}");
}

fn step_index(target: &Value, step: &Value) -> usize {
    target["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s == step)
        .unwrap()
}

/// `max_per_topology: 1` on a cluster where every node runs the topology: one node at a time is
/// fine, two would take two of its supervisors — the guard stops the ladder before the intent.
#[test]
fn max_per_topology_stops_a_step_that_would_take_two_supervisors_of_a_topology() {
    let plan = PLAN
        .replace("slots_per_node: 2\n      detection_delay: 1s\n      replacement: {enabled: true, delay: 6s}\n      workloads:\n        ingest",
                 "slots_per_node: 1\n      detection_delay: 1s\n      replacement: {enabled: true, delay: 6s}\n      workloads:\n        ingest")
        .replace("    running: {topology: ingest}\n", "    guards: {max_per_topology: 1}\n")
        .replace("    ladder: [1]\n", "    ladder: [1]\n    required_tolerance: 0\n");
    assert!(plan.contains("max_per_topology: 1") && plan.contains("slots_per_node: 1"));
    // Only the storm target: the mesos one is not needed here.
    let plan = plan.replace("    running: {app: /aggregate}\n", "");
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(3);
    let run = dir.path().join("run");
    let journal = journal(&run);
    let storm_intents: Vec<&Value> = events(&journal, "intent")
        .into_iter()
        .filter(|e| e["target"] == "s")
        .collect();
    assert_eq!(storm_intents.len(), 1, "only step 1 of s terminated");
    let breach = events(&journal, "guard_breached");
    assert_eq!(breach.len(), 1, "{breach:?}");
    assert_eq!(breach[0]["guard"], "max_per_topology");
    assert_eq!(breach[0]["target"], "s");
}

/// Health APIs that answer garbage, error pages or nothing at all: the run goes on, lag alone
/// decides, capacity is marked unknown in the report and every failed probe is in
/// `capacity.jsonl`.
#[test]
fn broken_health_apis_leave_capacity_unknown_and_the_run_goes_on() {
    use crate::health::{FakeApi, Reply};
    let api = FakeApi::start(vec![
        (
            "/api/v1/cluster/summary",
            vec![
                Reply::Text("{\"supervisors\": 3, \"slotsTo".into()),
                Reply::Page(502, "<html><body>502 Bad Gateway</body></html>"),
                Reply::Slow(
                    std::time::Duration::from_secs(30),
                    Box::new(Reply::Text("{}".into())),
                ),
            ],
        ),
        (
            "/api/v1/supervisor/summary",
            vec![Reply::Text("not json".into())],
        ),
    ]);
    let plan = crate::run::Shape::storm(4, 2, 4, &[1]).plan().replace(
        "    applications: [app]\n",
        &format!(
            "    health: {{storm_ui: \"{}\"}}\n    applications: [app]\n",
            api.url
        ),
    );
    assert!(plan.contains("storm_ui"), "{plan}");
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(0);
    let run = dir.path().join("run");
    let report = report(dir.path());
    let step = &report["targets"][0]["steps"][0];
    assert_eq!(step["verdict"], "pass", "lag decides: {step}");
    assert_eq!(step["capacity"]["probes"], 0, "{step}");
    assert!(
        step["capacity"]["probes_failed"].as_u64().unwrap() >= 1,
        "{step}"
    );
    assert!(
        step["findings"][0]
            .as_str()
            .unwrap()
            .contains("capacity unknown"),
        "{step}"
    );
    assert!(step["applications"][0]["rescheduled_s"].is_null());
    let lines: Vec<Value> = std::fs::read_to_string(run.join("capacity.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3);
    assert!(lines.iter().all(|l| l["capacity"].is_null()));
    let errors: Vec<&str> = lines.iter().map(|l| l["error"].as_str().unwrap()).collect();
    assert!(
        errors.iter().any(|e| e.contains("invalid JSON")),
        "{errors:?}"
    );
    assert!(api.hits("/api/v1/cluster/summary") >= 3);
}

/// The lab's `stall_after_restart` fault: the workers Nimbus re-places take their partitions and
/// never consume. The topology looks whole to the Storm UI while its lag climbs; the step fails
/// and the report calls the topology out by name.
#[test]
fn a_topology_that_looks_whole_but_stopped_consuming_is_called_out() {
    let plan = crate::run::Shape::storm(4, 2, 4, &[1])
        .plan()
        .replace(
            "commit_interval: 1s}",
            "commit_interval: 1s, stall_after_restart: true}",
        )
        .replace(
            "    applications: [app]\n",
            "    health: {storm_ui: lab}\n    applications: [app]\n",
        );
    assert!(
        plan.contains("stall_after_restart: true") && plan.contains("storm_ui: lab"),
        "{plan}"
    );
    let (outcome, dir) = run_plan(&plan, &[]);
    outcome.expect_code(1);
    let run = dir.path().join("run");
    let truth = truth(&run);
    assert!(
        truth.iter().any(|e| e["event"] == "worker_stalled"),
        "the fault was injected"
    );
    let report = report(dir.path());
    let step = &report["targets"][0]["steps"][0];
    assert_eq!(step["verdict"], "fail", "{step}");
    let app = &step["applications"][0];
    assert!(
        app["rescheduled_s"].as_f64().is_some(),
        "whole again: {step}"
    );
    let findings: Vec<&str> = step["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("app looks whole to its scheduler") && f.contains("kept rising")),
        "{findings:?}"
    );
}
