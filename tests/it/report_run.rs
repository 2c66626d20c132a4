//! A real lab run writes every report next to its journal (the runner's `finish` calls
//! `report::write_all`), and they agree with its report.json.

use crate::report::{read, run_python};
use crate::util::spotdrill_in;

/// One storm target, one step of one termination absorbed by spare slots: the shortest run.
const PLAN: &str = r#"version: 1
name: reports of a live run
kafka: {brokers: lab}
lab:
  topics:
    - {name: events, partitions: 4, rate: 100/s, message_bytes: 64}
  clusters:
    tiny:
      kind: storm
      nodes: 3
      slots_per_node: 2
      detection_delay: 1s
      replacement: {enabled: true, delay: 3s}
      workloads:
        counter: {workers: 2, group: counter, topics: [events], cost_per_message: 1ms, commit_interval: 1s}
applications:
  counter:
    group: counter
    topics: [events]
    slo: {max_lag: 30s, max_recovery: 10s}
targets:
  tiny:
    kind: storm
    nodes: {provider: lab, cluster: tiny}
    applications: [counter]
    ladder: [1]
    seed: 1
    required_tolerance: 1
observe:
  sample_interval: 500ms
  baseline: 3s
  hold: 1s
  settle: 2s
  timeout: 10s
  cooldown: 30s
  band: {margin: 0.5, floor: 2s}
"#;

#[test]
fn a_lab_run_writes_all_five_reports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), PLAN).unwrap();
    let out = spotdrill_in(dir.path(), &["run", "plan.yaml", "--yes", "--out", "run"]);
    assert!(
        matches!(out.code, 0 | 1),
        "the run did not complete (exit {}):\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    let run = dir.path().join("run");
    for name in [
        "report.json",
        "report.md",
        "report.html",
        "junit.xml",
        "samples.csv",
        "journal.jsonl",
    ] {
        assert!(run.join(name).is_file(), "{name} is not written");
    }
    let report: serde_json::Value = serde_json::from_str(&read(&run, "report.json")).unwrap();
    assert_eq!(report["exit_code"].as_i64(), Some(i64::from(out.code)));
    // The console's closing line says the tolerance as a bound, as report.json does (issue 20
    // item 1): "≥ 1 (every step passed; …)" when the one step passed, the exact figure and the
    // failing step when it did not.
    let t = &report["targets"][0];
    let words = t["tolerance"].as_str().unwrap();
    let line = format!(
        "  tiny: tolerates {words}; required 1: {}",
        t["verdict"].as_str().unwrap()
    );
    assert!(out.stdout.contains(&line), "{line}\n{}", out.stdout);
    let at_least = t["tolerance_bound"] == "at_least";
    assert_eq!(words.starts_with("≥ "), at_least, "{words}");
    if t["steps"][0]["verdict"] == "pass" {
        assert!(at_least, "every step passed: {words}");
        assert!(words.ends_with("(every step passed; the limit is above the ladder)"));
    }
    // The high watermarks, for the headroom: their growth is the lab producer's 100/s.
    let rows: Vec<(f64, f64)> = read(&run, "watermarks.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[f.len() - 2].parse().unwrap())
        })
        .collect();
    let ((t0, h0), (t1, h1)) = (rows[0], rows[rows.len() - 1]);
    let rate = (h1 - h0) / (t1 - t0);
    assert!(
        (70.0..=130.0).contains(&rate),
        "produced {rate}/s, the lab's rate is 100/s"
    );
    // The report turns them into rates per application and step.
    let step = &report["targets"][0]["steps"][0];
    let h = &step["headroom"][0];
    assert_eq!(h["application"], "counter", "{step:#}");
    let production = h["production_per_s"].as_f64().expect("a production rate");
    assert!((70.0..=130.0).contains(&production), "{h:#}");
    let md = read(&run, "report.md");
    assert!(
        md.starts_with("# spotdrill report: reports of a live run\n"),
        "{md}"
    );
    assert!(md.contains("| step 1 (1 termination) |"), "{md}");
    let html = read(&run, "report.html");
    assert_eq!(html.matches("<svg class=\"lag-chart\"").count(), 1);
    assert_eq!(
        html.matches("<path data-application=\"counter\"").count(),
        1
    );
    let cases = run_python(
        "import sys\nfrom junitparser import JUnitXml\n\
         print(sum(len(list(s)) for s in JUnitXml.fromfile(sys.argv[1])))",
        &[run.join("junit.xml").to_str().unwrap()],
    );
    // The step's application and the tolerance gate.
    assert_eq!(cases.trim(), "2");
}
