//! `spotdrill report DIR` on a recorded lab run (tests/fixtures/runs/two-targets, recorded from
//! tests/fixtures/runs/two-targets.yaml): the reports are rebuilt without running a lab, read
//! back through strict test-side types, parsed by a real JUnit consumer and checked against the
//! committed JSON Schema. The browser checks are in report_browser.rs, `diff` in report_diff.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::util::{Outcome, root, spotdrill};

pub const FIXTURE: &str = "tests/fixtures/runs/two-targets";

/// A copy of the recorded run (journal, samples, lab truth; no reports) in a temporary directory.
pub fn recorded_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in ["journal.jsonl", "samples.csv", "lab-truth.jsonl"] {
        std::fs::copy(root().join(FIXTURE).join(name), dir.path().join(name))
            .unwrap_or_else(|e| panic!("copying {name} of the fixture: {e}"));
    }
    dir
}

/// `spotdrill report DIR`.
pub fn rebuild(dir: &Path) -> Outcome {
    spotdrill(&["report", dir.to_str().expect("utf-8 path")])
}

/// A copy of the recorded run with its reports rebuilt.
pub fn rebuilt_run() -> tempfile::TempDir {
    let dir = recorded_run();
    rebuild(dir.path()).expect_code(0);
    dir
}

pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// The test tools' Python: $SPOTDRILL_PYTHON, else $SPOTDRILL_VENV/bin/python, else
/// <repo>/.venv/bin/python (scripts/install-test-tools installs it and exports the first).
pub fn python() -> PathBuf {
    let path = std::env::var_os("SPOTDRILL_PYTHON")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("SPOTDRILL_VENV").map(|v| PathBuf::from(v).join("bin/python")))
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "no test Python at {}: run ./scripts/test, which installs .venv",
        path.display()
    );
    path
}

/// Run a Python snippet with arguments; its stdout, or a failure with what it printed.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

// --- report.json through an independent strict schema (DESIGN.md "Machine-readable outputs") ---

/// Present and possibly null: `Option` alone would also accept a missing field.
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[derive(Debug, Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum V {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Bound {
    Exact,
    AtLeast,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StrictReport {
    schema_version: u32,
    plan: String,
    plan_path: String,
    #[serde(deserialize_with = "nullable")]
    started_at: Option<String>,
    #[serde(deserialize_with = "nullable")]
    finished_at: Option<String>,
    verdict: V,
    exit_code: u8,
    order: String,
    #[serde(deserialize_with = "nullable")]
    aborted: Option<String>,
    notes: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    duration_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    cpu_one_core_pct: Option<f64>,
    pub(crate) targets: Vec<StrictTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StrictTarget {
    name: String,
    kind: String,
    provider: String,
    applications: Vec<String>,
    tolerated_terminations: u32,
    tolerance_bound: Bound,
    tolerance: String,
    required_tolerance: u32,
    verdict: V,
    #[serde(deserialize_with = "nullable")]
    first_failure: Option<StrictFirstFailure>,
    cumulative: bool,
    pub(crate) steps: Vec<StrictStep>,
    #[serde(deserialize_with = "nullable")]
    overprovisioning: Option<StrictOverprovisioning>,
    /// Optional (schema version 1 addition): only for a search ladder.
    #[serde(default)]
    search: Option<StrictSearch>,
    /// Optional (a schema version 1 addition).
    #[serde(default)]
    #[allow(dead_code)]
    safety_multiple: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StrictSearch {
    from: u32,
    max: u32,
    steps_run: usize,
    full_ladder_steps: usize,
    assumption: String,
    anomalies: Vec<StrictAnomaly>,
    #[serde(deserialize_with = "nullable")]
    cut_short: Option<String>,
    summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StrictAnomaly {
    passed: u32,
    failed_below: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictFirstFailure {
    terminations: u32,
    reason: String,
    /// Optional (a schema version 1 addition): a market rung's step in words.
    #[serde(default)]
    #[allow(dead_code)]
    rung: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StrictStep {
    pub(crate) terminations: u32,
    nodes: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    injected_at: Option<String>,
    #[serde(deserialize_with = "nullable")]
    verdict: Option<V>,
    #[serde(deserialize_with = "nullable")]
    capacity_restored_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    skipped: Option<String>,
    applications: Vec<StrictApp>,
    #[serde(deserialize_with = "nullable")]
    capacity: Option<StrictCapacity>,
    findings: Vec<String>,
    /// Optional (a schema version 1 addition): absent without watermarks.csv.
    #[serde(default)]
    #[allow(dead_code)]
    headroom: Option<serde_json::Value>,
    /// Optional (a schema version 1 addition): absent in runs journaled before it.
    #[serde(default)]
    #[allow(dead_code)]
    nodes_at_start: Option<u32>,
    /// Optional (a schema version 1 addition): a market rung's market; absent for a number.
    #[serde(default)]
    pub(crate) market: Option<StrictMarket>,
}

/// What a market rung took (`{market: largest}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StrictMarket {
    pub(crate) choice: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) instance_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) zone: Option<String>,
    pub(crate) label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictCapacity {
    #[serde(deserialize_with = "nullable")]
    nodes_before: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    nodes_lowest: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    nodes_after: Option<u32>,
    probes: u32,
    probes_failed: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictApp {
    name: String,
    #[serde(deserialize_with = "nullable")]
    baseline_lag_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    band_upper_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    spike_lag_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    time_to_peak_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    recovery_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    rescheduled_s: Option<f64>,
    verdict: V,
    reason: String,
    /// Optional (schema version 1 additions): absent where groups are not described; read
    /// only to check their types.
    #[serde(default)]
    #[allow(dead_code)]
    rebalances: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    stalled_since: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictOverprovisioning {
    replacement_lead_time_s: f64,
    max_losses_in_lead_time: u32,
    safety_multiple: f64,
    spare_nodes: u32,
    tolerated_terminations: u32,
    summary: String,
    /// Optional (schema version 1 additions): where each input comes from.
    #[serde(default)]
    #[allow(dead_code)]
    lead_time_source: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    losses_source: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    history: Option<serde_json::Value>,
}

pub(crate) fn strict(dir: &Path) -> StrictReport {
    let text = read(dir, "report.json");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("report.json does not match the contract: {e}\n{text}"))
}

#[test]
fn report_json_reads_back_through_a_strict_independent_schema() {
    let run = rebuilt_run();
    let r = strict(run.path());
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.plan, "report fixture");
    assert_eq!(r.plan_path, "tests/fixtures/runs/two-targets.yaml");
    assert!(r.started_at.is_some() && r.finished_at.is_some());
    assert_eq!((r.verdict, r.exit_code), (V::Fail, 1));
    assert_eq!(r.order, "one after another: storm-lab, mesos-lab");
    assert_eq!(r.aborted, None);
    assert_eq!(r.notes, Vec::<String>::new());
    assert!(r.duration_s.is_some_and(|d| d > 0.0));
    let _ = r.cpu_one_core_pct;

    let [storm, mesos] = &r.targets[..] else {
        panic!("two targets: {:?}", r.targets)
    };
    assert_eq!(
        (storm.name.as_str(), storm.kind.as_str()),
        ("storm-lab", "storm")
    );
    assert_eq!(
        (mesos.name.as_str(), mesos.kind.as_str()),
        ("mesos-lab", "mesos")
    );
    assert_eq!(storm.provider, "lab");
    // A listed ladder has no `search`.
    assert!(storm.search.is_none() && mesos.search.is_none());
    assert!(!storm.cumulative);
    assert_eq!(
        storm.applications,
        ["coverage-topology", "sessions-topology"]
    );
    assert_eq!(
        (
            storm.tolerated_terminations,
            storm.required_tolerance,
            storm.verdict
        ),
        (1, 2, V::Fail)
    );
    // Step 2 failed: the limit is known, and said as a number with the step that broke.
    assert_eq!(storm.tolerance_bound, Bound::Exact);
    assert!(
        storm
            .tolerance
            .starts_with("1 (step 2, 2 terminations, failed: "),
        "{}",
        storm.tolerance
    );
    let first = storm
        .first_failure
        .as_ref()
        .expect("storm-lab failed at a step");
    assert_eq!(first.terminations, 2);
    assert!(
        first.reason.starts_with("coverage-topology: "),
        "{}",
        first.reason
    );
    assert_eq!(
        storm
            .steps
            .iter()
            .map(|s| s.terminations)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        storm.steps.iter().map(|s| s.verdict).collect::<Vec<_>>(),
        [Some(V::Pass), Some(V::Fail), None]
    );
    let failed = &storm.steps[1];
    assert_eq!(failed.nodes.len(), 2);
    assert!(failed.injected_at.is_some() && failed.skipped.is_none());
    assert!(failed.capacity_restored_s.is_some());
    let cov = &failed.applications[0];
    assert_eq!(
        (cov.name.as_str(), cov.verdict),
        ("coverage-topology", V::Fail)
    );
    assert!(cov.spike_lag_s > cov.band_upper_s && cov.band_upper_s > cov.baseline_lag_s);
    assert!(cov.time_to_peak_s.is_some() && !cov.reason.is_empty());
    let _ = cov.recovery_s;
    // The health probes' evidence: rescheduled, nodes before → lowest → after, a finding.
    assert_eq!(cov.rescheduled_s, Some(4.0));
    assert_eq!(failed.applications[1].rescheduled_s, None, "not hit");
    let cap = failed.capacity.as_ref().expect("probed");
    assert_eq!(
        (cap.nodes_before, cap.nodes_lowest, cap.nodes_after),
        (Some(6), Some(4), Some(6))
    );
    assert_eq!((cap.probes, cap.probes_failed), (28, 0));
    assert!(failed.findings[0].starts_with("Nimbus reassigned"));
    assert!(storm.steps[0].capacity.is_none() && storm.steps[0].findings.is_empty());
    let skipped = &storm.steps[2];
    assert!(skipped.applications.is_empty() && skipped.nodes.is_empty());
    assert!(skipped.injected_at.is_none());
    assert!(
        skipped
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("not run"))
    );

    assert_eq!(
        (
            mesos.tolerated_terminations,
            mesos.required_tolerance,
            mesos.verdict
        ),
        (2, 1, V::Pass)
    );
    assert!(mesos.first_failure.is_none());
    // Every step passed: the limit lies above the ladder, and the report says so.
    assert_eq!(mesos.tolerance_bound, Bound::AtLeast);
    assert_eq!(
        mesos.tolerance,
        "≥ 2 (every step passed; the limit is above the ladder)"
    );
    let o = mesos.overprovisioning.as_ref().expect("capacity came back");
    assert_eq!(o.tolerated_terminations, 2);
    assert!(o.replacement_lead_time_s > 0.0 && o.safety_multiple == 3.0);
    assert_eq!(o.spare_nodes, o.max_losses_in_lead_time * 3);
    assert!(o.summary.contains("spare nodes"));
}

// --- snapshots of what people read ---

/// `text` with everything from each `open` to the next `close` replaced by `open…close`.
fn elide(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find(close)
            .unwrap_or_else(|| panic!("unclosed {open}"));
        out.push_str(&format!("{open}…{close}"));
        rest = &rest[start + end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// The HTML without its charts and style sheet: the text a reader sees, for a snapshot.
pub fn html_text_parts(html: &str) -> String {
    let text = elide(html, "<style>", "</style>");
    elide(&text, "<svg", "</svg>").replace(env!("CARGO_PKG_VERSION"), "[version]")
}

#[test]
fn markdown_report_snapshot() {
    let run = rebuilt_run();
    insta::assert_snapshot!("report_md", read(run.path(), "report.md"));
}

#[test]
fn html_report_text_snapshot() {
    let run = rebuilt_run();
    let html = read(run.path(), "report.html");
    insta::assert_snapshot!("report_html_text", html_text_parts(&html));
}

#[test]
fn html_report_is_self_contained_and_escapes_text() {
    let run = rebuilt_run();
    let html = read(run.path(), "report.html");
    // Nothing is fetched: no scripts, links, imports or remote URLs (the SVG namespace is a
    // name, not a fetch), and the page forbids loads in its content security policy.
    for needle in ["<script", "<link", "@import", "url(", "src=", "https://"] {
        assert!(!html.contains(needle), "report.html contains {needle}");
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    // One chart per step that ran (storm-lab 2, mesos-lab 2), one line per application.
    assert_eq!(html.matches("<svg class=\"lag-chart\"").count(), 4);
    assert_eq!(
        html.matches("<path data-application=\"coverage-topology\"")
            .count(),
        2
    );
    assert_eq!(
        html.matches("<path data-application=\"live-aggregators\"")
            .count(),
        2
    );

    // Text from the journal is escaped everywhere it appears.
    let dir = recorded_run();
    let journal = read(dir.path(), "journal.jsonl")
        .replace("\"plan\":\"report fixture\"", "\"plan\":\"<b>x</b> & 'y'\"");
    std::fs::write(dir.path().join("journal.jsonl"), journal).unwrap();
    rebuild(dir.path()).expect_code(0);
    let html = read(dir.path(), "report.html");
    assert!(!html.contains("<b>x</b>"), "unescaped plan name");
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;"));
    let junit = read(dir.path(), "junit.xml");
    assert!(junit.contains("name=\"spotdrill: &lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;\""));
}

// --- junit.xml through a real JUnit consumer ---

const JUNIT_SUMMARY: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped, Error
xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = list(suite)
    suites.append({
        "name": suite.name,
        "declared": [suite.tests, suite.failures, suite.skipped, suite.errors],
        "counted": [len(cases),
                    sum(any(isinstance(r, Failure) for r in c.result) for c in cases),
                    sum(any(isinstance(r, Skipped) for r in c.result) for c in cases),
                    sum(any(isinstance(r, Error) for r in c.result) for c in cases)],
        "cases": [{"name": c.name,
                   "results": [type(r).__name__ for r in c.result],
                   "messages": [r.message for r in c.result]} for c in cases],
    })
print(json.dumps({"declared": [xml.tests, xml.failures, xml.skipped, xml.errors], "suites": suites}))
"#;

#[test]
fn junit_xml_parses_in_junitparser_with_counts_matching_report_json() {
    let run = rebuilt_run();
    let report = strict(run.path());
    let junit = run.path().join("junit.xml");
    let out = run_python(JUNIT_SUMMARY, &[junit.to_str().unwrap()]);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("JSON from python");
    let suites = parsed["suites"].as_array().unwrap();
    assert_eq!(suites.len(), report.targets.len());
    let mut totals = [0u64; 4];
    for (suite, t) in suites.iter().zip(&report.targets) {
        assert_eq!(suite["name"], t.name.as_str());
        // Expected from report.json: a case per application per step, plus the tolerance gate.
        let mut tests = 1;
        let mut failures = u64::from(t.verdict == V::Fail);
        let mut skipped = u64::from(t.verdict == V::Inconclusive);
        for s in &t.steps {
            if s.applications.is_empty() {
                tests += t.applications.len() as u64;
                skipped += t.applications.len() as u64;
            }
            for a in &s.applications {
                tests += 1;
                failures += u64::from(a.verdict == V::Fail);
                skipped += u64::from(a.verdict == V::Inconclusive);
            }
        }
        let expected = serde_json::json!([tests, failures, skipped, 0]);
        assert_eq!(suite["declared"], expected, "{} declares", t.name);
        assert_eq!(suite["counted"], expected, "{} holds", t.name);
        for (i, n) in [tests, failures, skipped, 0].into_iter().enumerate() {
            totals[i] += n;
        }
        // Each failure carries the application's reason.
        for s in &t.steps {
            for a in s.applications.iter().filter(|a| a.verdict == V::Fail) {
                let name = format!(
                    "step {} ({} termination{}): {}",
                    t.steps.iter().position(|x| std::ptr::eq(x, s)).unwrap() + 1,
                    s.terminations,
                    if s.terminations == 1 { "" } else { "s" },
                    a.name
                );
                let case = suite["cases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == name.as_str())
                    .unwrap_or_else(|| panic!("no testcase {name}"));
                assert_eq!(case["results"], serde_json::json!(["Failure"]));
                assert_eq!(case["messages"], serde_json::json!([a.reason]));
            }
        }
    }
    assert_eq!(parsed["declared"], serde_json::json!(totals));
    // The fixture covers each kind of result.
    assert_eq!(totals, [10, 2, 2, 0]);
    let storm = &suites[0]["cases"];
    assert_eq!(
        storm[1]["name"],
        "step 1 (1 termination): sessions-topology"
    );
    assert_eq!(
        storm[4]["messages"],
        serde_json::json!(["not run: step 2 (2) fail"])
    );
}

// --- the JSON Schema of report.json ---

/// Tooling validates report.json against experiments/report.schema.json; it must be current.
#[test]
fn committed_report_schema_is_up_to_date() {
    let out = spotdrill(&["schema", "--report"]);
    out.expect_code(0);
    let committed = std::fs::read_to_string(root().join("experiments/report.schema.json"))
        .expect("experiments/report.schema.json exists");
    assert!(
        committed == out.stdout,
        "experiments/report.schema.json is stale: run \
         `cargo run -- schema --report > experiments/report.schema.json`"
    );
}

#[test]
fn report_json_validates_against_its_schema() {
    let run = rebuilt_run();
    let out = spotdrill(&["schema", "--report"]);
    out.expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["title"], "spotdrill report.json");
    let required = schema["required"].as_array().unwrap();
    for field in ["schema_version", "verdict", "exit_code", "targets"] {
        assert!(required.contains(&field.into()), "{field} not required");
    }
    let schema_path = run.path().join("report.schema.json");
    std::fs::write(&schema_path, &out.stdout).unwrap();
    let check = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
good = json.load(open(sys.argv[2]))
errors = [e.message for e in v.iter_errors(good)]
bad = json.loads(json.dumps(good))
bad["targets"][0]["steps"][0]["verdict"] = "maybe"
bad["targets"][0]["tolerated_terminations"] = -1
print(json.dumps({"errors": errors, "bad": len(list(v.iter_errors(bad)))}))
"#;
    let out = run_python(
        check,
        &[
            schema_path.to_str().unwrap(),
            run.path().join("report.json").to_str().unwrap(),
        ],
    );
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["errors"], serde_json::json!([]), "{out}");
    assert_eq!(
        result["bad"], 2,
        "the schema must reject a bad verdict and a negative count"
    );
}

// --- crashed runs and bad input ---

#[test]
fn a_journal_cut_short_still_gets_every_report_and_says_the_run_did_not_finish() {
    let dir = recorded_run();
    let journal = read(dir.path(), "journal.jsonl");
    let lines: Vec<&str> = journal.lines().collect();
    // Up to storm-lab step 2's injection: the crash came while it was observed.
    let cut = lines
        .iter()
        .position(|l| l.contains("\"event\":\"injected\"") && l.contains("\"step\":1"))
        .expect("storm-lab step 2 was injected")
        + 1;
    assert!(cut < lines.len() - 5);
    std::fs::write(
        dir.path().join("journal.jsonl"),
        lines[..cut].join("\n") + "\n",
    )
    .unwrap();
    for name in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(!dir.path().join(name).exists());
    }
    let out = rebuild(dir.path());
    out.expect_code(0);
    for name in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(dir.path().join(name).is_file(), "{name} not written");
        assert!(
            out.stdout.contains(name),
            "{name} not printed: {}",
            out.stdout
        );
    }
    let r = strict(dir.path());
    assert_eq!(r.finished_at, None);
    assert_eq!(r.duration_s, None);
    assert!(
        r.notes.iter().any(|n| n.contains("did not finish")),
        "{:?}",
        r.notes
    );
    // Nothing is invented: the step being observed has no verdict, later steps never ran.
    let storm = &r.targets[0];
    assert_eq!(storm.steps[1].verdict, None);
    assert!(storm.steps[1].injected_at.is_some());
    assert!(
        r.targets[1]
            .steps
            .iter()
            .all(|s| s.verdict.is_none() && s.injected_at.is_none())
    );
    let md = read(dir.path(), "report.md");
    assert!(md.contains("never (the run did not finish)"), "{md}");
    assert!(md.contains("- the run did not finish"), "{md}");
    assert!(
        md.contains("step 2 (2 terminations): not judged: interrupted during observation (nodes storm-lab-4, storm-lab-2 were terminated)"),
        "{md}"
    );
    // The interrupted step still gets its chart from the samples.
    let html = read(dir.path(), "report.html");
    assert_eq!(html.matches("<svg class=\"lag-chart\"").count(), 2);
    assert!(html.contains("the run did not finish"));
}

#[test]
fn missing_samples_and_truth_are_stated_not_invented() {
    let dir = recorded_run();
    std::fs::remove_file(dir.path().join("samples.csv")).unwrap();
    std::fs::remove_file(dir.path().join("lab-truth.jsonl")).unwrap();
    rebuild(dir.path()).expect_code(0);
    let r = strict(dir.path());
    assert!(
        r.notes.iter().any(|n| n.contains("samples.csv is missing")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("lab-truth.jsonl is missing")),
        "{:?}",
        r.notes
    );
    let html = read(dir.path(), "report.html");
    assert!(!html.contains("<svg"), "no samples, no charts");
    assert!(html.contains("samples.csv is missing"));
}

#[test]
fn report_without_a_journal_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = rebuild(dir.path());
    out.expect_code(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("has no journal.jsonl"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(!dir.path().join("report.json").exists());
}

/// Each JUnit suite's properties and its tolerance case, read with Python's own XML parser.
const JUNIT_TOLERANCE: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
out = []
for suite in ET.parse(sys.argv[1]).getroot().iter("testsuite"):
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    gate = [c for c in suite.iter("testcase") if c.get("name").startswith("tolerance")]
    out.append({"name": suite.get("name"), "props": props,
                "gate_out": gate[0].findtext("system-out") if gate else None})
print(json.dumps(out))
"#;

/// Issue 20 item 1: the JUnit file says the tolerance as the bound report.json says it — the
/// `tolerance_bound` property (`exact` / `at_least`), the `tolerance` property in words, and
/// the gate case's output, "≥ N (every step passed; …)" where every step passed.
#[test]
fn junit_carries_the_tolerance_bound_and_its_wording() {
    let run = rebuilt_run();
    let report = strict(run.path());
    let junit = run.path().join("junit.xml");
    let out = run_python(JUNIT_TOLERANCE, &[junit.to_str().unwrap()]);
    let suites: Vec<serde_json::Value> = serde_json::from_str(&out).expect("JSON from python");
    assert_eq!(suites.len(), report.targets.len());
    let mut kinds = Vec::new();
    for (suite, t) in suites.iter().zip(&report.targets) {
        let bound = match t.tolerance_bound {
            Bound::Exact => "exact",
            Bound::AtLeast => "at_least",
        };
        kinds.push(bound);
        let props = &suite["props"];
        assert_eq!(props["tolerance_bound"], bound, "{suite}");
        assert_eq!(props["tolerance"], t.tolerance.as_str(), "{suite}");
        assert_eq!(
            props["tolerated_terminations"],
            t.tolerated_terminations.to_string()
        );
        let gate = suite["gate_out"].as_str().unwrap();
        assert!(
            gate.starts_with(&format!("tolerates {}; ", t.tolerance)),
            "{gate}"
        );
        let at_least = format!("≥ {}", t.tolerated_terminations);
        assert_eq!(
            t.tolerance.starts_with(&at_least),
            t.tolerance_bound == Bound::AtLeast,
            "{}",
            t.tolerance
        );
        if t.tolerance_bound == Bound::AtLeast {
            assert!(gate.contains("every step passed; the limit is above the ladder"));
        }
    }
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["at_least", "exact"],
        "the fixture shows both bounds"
    );
}
