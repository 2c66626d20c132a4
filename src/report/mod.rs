//! Reports from a run's journal: `report.json` (DESIGN.md "Machine-readable outputs", schema
//! version 1), and from it `report.md`, `report.html` and `junit.xml` ([`write_all`]).
//! Everything in a report comes from the journal (the charts also from `samples.csv` and
//! `lab-truth.jsonl`), so a crashed run still gets one.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, Verdict};
use crate::exit::ExitCode;
use crate::journal::view::{
    NodeResult, Reconciliation, StepPhase, StepRun, Stop, StopKind, TargetRun,
};
use crate::journal::{AppResult, Entry, Found, NodeOutcome, RunView};

mod chart;
pub mod diff;
pub(crate) mod evidence;
mod html;
mod junit;
mod markdown;
mod rates;
mod schema;
mod spare;
pub(crate) mod text;

/// The look the live page shares with report.html: its style sheet and the charts' colours.
pub use chart::theme as chart_theme;
use evidence::Evidence;
pub use html::STYLE as PAGE_STYLE;
pub use schema::json_schema;
pub use spare::{HISTORY_FILE, HistorySizing, read_history};

pub const SCHEMA_VERSION: u32 = 1;

/// The files [`write_all`] writes into a run directory, in the order it writes them.
pub const FILES: [&str; 4] = ["report.json", "report.md", "report.html", "junit.xml"];

/// The result of a run (`report.json`): per target how many terminations it tolerated, and per
/// step and application what was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "spotdrill report.json")]
pub struct Report {
    /// The version of this format; 1.
    pub schema_version: u32,
    /// The plan's `name`.
    pub plan: String,
    /// Where the plan was read from.
    pub plan_path: String,
    /// When the run started (RFC 3339).
    pub started_at: Option<String>,
    /// When the run finished (RFC 3339); null when it did not (the report was rebuilt from the
    /// journal of a crashed run).
    pub finished_at: Option<String>,
    /// `pass` when every target met its required tolerance, `fail` when one failed, else
    /// `inconclusive`.
    pub verdict: Verdict,
    /// The exit code of the run: 0 pass, 1 a verdict failed, 3 aborted.
    #[schemars(with = "u8")]
    pub exit_code: ExitCode,
    /// How the targets ran: "one after another: a, b".
    pub order: String,
    /// Why escalation stopped early (a guard, Ctrl-C), if it did.
    pub aborted: Option<String>,
    /// Things the reader must know: missing pieces, an interrupted run.
    pub notes: Vec<String>,
    /// Wall time of the run (the last attempt when resumed), seconds.
    pub duration_s: Option<f64>,
    /// spotdrill's own CPU over the run as a share of one core, percent (the lab's schedulers
    /// included; its broker and node processes not).
    pub cpu_one_core_pct: Option<f64>,
    /// The targets in the order they ran.
    pub targets: Vec<TargetReport>,
}

/// One target (cluster under test) of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetReport {
    /// The target's name in the plan.
    pub name: String,
    /// `storm` or `mesos`.
    pub kind: String,
    /// The node provider: `lab`, `aws-ec2`, `aws-asg` or `aws-fis`.
    pub provider: String,
    /// The applications judged in this target's steps, in plan order.
    #[serde(default)]
    pub applications: Vec<String>,
    /// The largest N such that the step with N and every smaller step passed.
    pub tolerated_terminations: u32,
    /// What `tolerated_terminations` is: `exact` when a step above it failed (the limit is
    /// known), `at_least` when every step passed or the next one was not run or inconclusive
    /// (the limit lies above). Absent in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_bound: Option<Bound>,
    /// The tolerance in words: `≥ 3 (every step passed; the limit is above the ladder)` or
    /// `3 (step 4, 4 terminations, failed: …)`. Absent in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<String>,
    /// The plan's gate: the target fails unless it tolerates at least this many.
    pub required_tolerance: u32,
    /// `pass` when the tolerance met the requirement, `fail` when a failed step decided it,
    /// else `inconclusive`.
    pub verdict: Verdict,
    /// The first step that did not pass, and why; null when every step passed.
    pub first_failure: Option<FirstFailure>,
    /// Steps add up (capacity that never comes back) instead of starting from full capacity.
    pub cumulative: bool,
    /// The ladder's steps in order, run or not.
    pub steps: Vec<StepReport>,
    /// Spare nodes the target needs, from the observed replacement time; null when capacity
    /// was never seen coming back (and no history gave a lead time).
    pub overprovisioning: Option<Overprovisioning>,
    /// The ladder was a search for the breaking point (`ladder: {search: {from, max}}`);
    /// absent for a listed ladder and in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchReport>,
    /// The plan's safety multiple (absent in reports written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_multiple: Option<f64>,
}

/// How a search for the breaking point went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchReport {
    /// The plan's bounds: the first step, and the most terminations a step may try.
    pub from: u32,
    pub max: u32,
    /// The steps the search ran (judged).
    pub steps_run: usize,
    /// The steps a full ladder from..=max would have taken.
    pub full_ladder_steps: usize,
    /// What the search rests on: losing more nodes never hurts less.
    pub assumption: String,
    /// Passes above a failure (the assumption did not hold there: noise, timing), each with
    /// the smallest failure below it.
    pub anomalies: Vec<SearchAnomaly>,
    /// Why the search ended before it was over (a guard, a stop, a cooldown that timed out);
    /// null when it ran to its end.
    pub cut_short: Option<String>,
    /// The search in words.
    pub summary: String,
}

/// A step that passed above one that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchAnomaly {
    pub passed: u32,
    pub failed_below: u32,
}

/// What a tolerance is: the limit itself, or a floor under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// A step with more terminations failed: the target tolerates exactly this many (of the
    /// counts the ladder tried).
    Exact,
    /// No step above it failed (every step passed, or the next was not run or inconclusive):
    /// the limit is this many or more.
    AtLeast,
}

/// The first step of a target that did not pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FirstFailure {
    /// The step's number of terminations.
    pub terminations: u32,
    /// A market rung: the step in words, `the largest market (c5.2xlarge/us-east-1a: 4
    /// nodes)`. Absent for a numeric rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<String>,
    /// Why it did not pass: each failing application with its reason, or why it was not run.
    pub reason: String,
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    /// How many nodes the step terminates at once (a market rung: its market's size when the
    /// step ran; 0 when it never resolved).
    pub terminations: u32,
    /// A market rung (`{market: largest}`): the market it took whole. Absent for a numeric
    /// rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<StepMarket>,
    /// The ids of the nodes terminated.
    pub nodes: Vec<String>,
    /// When the terminations were injected (RFC 3339); null when the step was not run.
    pub injected_at: Option<String>,
    /// `null` when the step was not run (see `skipped`).
    pub verdict: Option<Verdict>,
    /// Seconds from the injection until the target's capacity (nodes and workers) was back;
    /// null when not seen.
    pub capacity_restored_s: Option<f64>,
    /// Why the step was not run.
    pub skipped: Option<String>,
    /// Per application: baseline, spike, time to peak, recovery, rescheduling, verdict and
    /// reason.
    pub applications: Vec<AppResult>,
    /// Live nodes before, at the lowest and after, as the health probes saw them; null without
    /// health endpoints.
    #[serde(default)]
    pub capacity: Option<crate::journal::StepCapacity>,
    /// What the scheduler did (reassigned, relaunched, did not), and work that looks whole but
    /// does not consume.
    #[serde(default)]
    pub findings: Vec<String>,
    /// The running, eligible nodes the step chose from (absent for runs journaled before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_at_start: Option<u32>,
    /// Per application: production, consumption and catch-up rates and the headroom they
    /// imply, from `watermarks.csv` (absent where the run did not record it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headroom: Vec<rates::AppHeadroom>,
}

/// What a market rung took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepMarket {
    /// Which market the rung takes: `largest`.
    pub choice: String,
    /// The market's instance type and zone when the step ran; null when it never resolved.
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    /// The step in words: `the largest market (c5.2xlarge/us-east-1a: 4 nodes)`.
    pub label: String,
}

/// The seed's rule: spare nodes = most nodes lost within the replacement lead time × a safety
/// multiple, next to what the ladder measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Overprovisioning {
    /// The longest time capacity took to come back after a step (seconds).
    pub replacement_lead_time_s: f64,
    /// The most nodes lost within that lead time.
    pub max_losses_in_lead_time: u32,
    /// The plan's safety multiple (3 by default).
    pub safety_multiple: f64,
    /// Spare nodes to keep: losses within the lead time × the safety multiple.
    pub spare_nodes: u32,
    /// The target's measured tolerance, for comparison.
    pub tolerated_terminations: u32,
    /// The recommendation in one sentence, each input with its source.
    pub summary: String,
    /// Where the lead time comes from: `run: …` (the longest `capacity_restored_s`) or the
    /// history's (`plan: …`, `default: …`). Absent in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time_source: Option<String>,
    /// Where the losses come from: `history: …` (the account's spot interruptions within the
    /// lead time) or `run: …` (the ladder's own largest step, when no history was given).
    /// Absent in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses_source: Option<String>,
    /// What the account's history says, when `report --history` gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySizing>,
}

impl Report {
    /// Build the report from the journal's entries.
    pub fn from_journal(entries: &[Entry]) -> Report {
        Report::from_view(&RunView::from_entries(entries))
    }

    /// Build the report from a reading of the journal.
    pub fn from_view(view: &RunView) -> Report {
        let targets: Vec<TargetReport> = view.targets.iter().map(target_report).collect();
        let mut notes = notes(view);
        notes.extend(targets.iter().filter_map(capacity_note));
        let aborted = view.effective_stop().map(stop_text);
        let verdict = run_verdict(&targets);
        let finished = view.meta.finished.as_ref();
        let wall_s = finished.and_then(|f| f.wall_s);
        Report {
            schema_version: SCHEMA_VERSION,
            plan: view.meta.plan.clone(),
            plan_path: view.meta.plan_path.clone(),
            started_at: view.meta.started_at.clone(),
            finished_at: finished.map(|f| f.at.clone()),
            verdict,
            exit_code: exit_code(aborted.is_some(), verdict),
            order: order(view),
            aborted,
            notes,
            duration_s: wall_s,
            cpu_one_core_pct: wall_s
                .zip(finished.and_then(|f| f.cpu_s))
                .filter(|(w, _)| *w > 0.0)
                .map(|(w, c)| (c / w * 1000.0).round() / 10.0),
            targets,
        }
    }

    /// Write `report.json` atomically (a temporary file renamed into place).
    pub fn write_json(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        write_atomic(dir, "report.json", &text)
    }

    /// Read a `report.json` written by [`Report::write_json`].
    pub fn read_json(path: &Path) -> anyhow::Result<Report> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a report", path.display()))
    }
}

/// The report of a run for comparing: a `report.json` file, a run directory's `report.json`, or
/// a run directory's journal rebuilt when it has no `report.json`. Anything else is bad input.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    use crate::exit::{Failure, Kind};
    use crate::journal;
    let bad = |e: anyhow::Error| anyhow::Error::from(Failure::of(Kind::BadInput, e));
    if path.is_file() {
        return Report::read_json(path).map_err(bad);
    }
    let json = path.join("report.json");
    if json.is_file() {
        return Report::read_json(&json).map_err(bad);
    }
    if path.join(journal::FILE).is_file() {
        let entries = journal::read(path).map_err(|e| Failure::of(Kind::BadInput, e))?;
        return Ok(Report::from_journal(&entries));
    }
    Err(Failure::bad_input(format!(
        "{} is not a run directory: it has neither report.json nor {}",
        path.display(),
        journal::FILE
    ))
    .into())
}

/// Write every report of a run directory: `report.json`, `report.md`, `report.html` and
/// `junit.xml` (see [`FILES`]), from `report` and what the directory holds (`samples.csv` and
/// `lab-truth.jsonl` for the charts). Pieces missing from the directory are added to the notes.
pub fn write_all(dir: &Path, report: &Report) -> anyhow::Result<()> {
    use anyhow::Context;
    let evidence = Evidence::load(dir);
    let mut report = report.clone();
    for note in &evidence.notes {
        if !report.notes.contains(note) {
            report.notes.push(note.clone());
        }
    }
    with_history(dir, &mut report);
    rates::add_headroom(dir, &mut report);
    let context = |name: &str| format!("while writing {}", dir.join(name).display());
    report
        .write_json(dir)
        .with_context(|| context("report.json"))?;
    write_atomic(dir, "report.md", markdown::render(&report).as_bytes())
        .with_context(|| context("report.md"))?;
    write_atomic(
        dir,
        "report.html",
        html::render(&report, &evidence).as_bytes(),
    )
    .with_context(|| context("report.html"))?;
    write_atomic(dir, "junit.xml", junit::render(&report).as_bytes())
        .with_context(|| context("junit.xml"))?;
    Ok(())
}

/// Size the spare capacity with the spot history the run directory holds ([`HISTORY_FILE`]),
/// if it holds one; an unreadable one is a note, not an error (the report is still written).
fn with_history(dir: &Path, report: &mut Report) {
    let path = dir.join(HISTORY_FILE);
    if !path.is_file() {
        return;
    }
    match read_history(&path) {
        Ok(h) => {
            report.apply_history(&h);
            report.notes.push(format!(
                "spare capacity sized with the spot history in {HISTORY_FILE} (read {})",
                h.generated_at
            ));
        }
        Err(e) => report.notes.push(format!("{HISTORY_FILE} left out: {e:#}")),
    }
}

/// Write `dir/name` through a temporary file renamed into place, so a reader never sees half.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, dir.join(name))
}

/// The run's verdict from its targets'. A run without targets (a journal without its start)
/// has always passed vacuously, where [`Verdict::combine`] would say inconclusive: kept so.
fn run_verdict(targets: &[TargetReport]) -> Verdict {
    if targets.is_empty() {
        return Verdict::Pass;
    }
    Verdict::combine(targets.iter().map(|t| t.verdict))
}

/// 3 when escalation was stopped (a guard, an abort, Ctrl-C), else 0 on a pass and 1 otherwise.
fn exit_code(stopped: bool, verdict: Verdict) -> ExitCode {
    if stopped {
        ExitCode::Aborted
    } else if verdict == Verdict::Pass {
        ExitCode::Success
    } else {
        ExitCode::Failed
    }
}

fn order(view: &RunView) -> String {
    if !view.meta.started {
        return String::new();
    }
    let names: Vec<&str> = view.targets.iter().map(|t| t.info.name.as_str()).collect();
    format!("one after another: {}", names.join(", "))
}

/// Why escalation stopped, in the report's words.
pub fn stop_text(stop: &Stop) -> String {
    match &stop.kind {
        StopKind::Guard {
            target,
            guard,
            detail,
        } => format!("guard {guard} of {target}: {detail}; escalation stopped"),
        StopKind::Aborted { reason } => format!("{reason}; escalation stopped"),
        StopKind::Interrupted { hard: true } => {
            format!("interrupted twice at {}: the run ended at once", stop.at)
        }
        StopKind::Interrupted { hard: false } => {
            format!("interrupted at {}: escalation stopped", stop.at)
        }
    }
}

/// Resumptions and nodes not terminated, in journal order; then whether the run finished.
fn notes(view: &RunView) -> Vec<String> {
    let mut dated: Vec<(usize, String)> = view
        .resumes
        .iter()
        .map(|r| (r.seq, resume_note(r)))
        .collect();
    for t in &view.targets {
        for (i, s) in t.steps.iter().enumerate() {
            dated.extend(
                s.outcomes
                    .iter()
                    .filter_map(|o| outcome_note(&t.info.name, i, o)),
            );
            dated.extend(
                s.reconciled
                    .iter()
                    .map(|r| reconciled_note(&t.info.name, i, r)),
            );
        }
    }
    dated.extend(
        view.stray_outcomes
            .iter()
            .filter_map(|o| outcome_note(&o.target, o.step, &o.result)),
    );
    dated.sort_by_key(|(seq, _)| *seq);
    let mut notes: Vec<String> = dated.into_iter().map(|(_, n)| n).collect();
    if view.meta.finished.is_none() {
        notes.push("the run did not finish: this report is rebuilt from its journal".into());
    }
    notes
}

fn resume_note(r: &crate::journal::view::Resume) -> String {
    match r.continued {
        true => format!(
            "resumed at {} with --continue: escalation went on past the earlier stop",
            r.at
        ),
        false => format!("resumed at {}", r.at),
    }
}

/// A note for a node whose intent had no outcome, as the resume found it.
fn reconciled_note(target: &str, step: usize, r: &Reconciliation) -> (usize, String) {
    let what = match r.found {
        Found::Running => "was found running (not terminated)",
        Found::Gone => "was found gone (counted as terminated)",
        Found::Unknown => "could not be checked (counted as terminated)",
    };
    let step = step + 1;
    let text = format!(
        "{target} step {step}: node {} had no outcome when the run was cut; at resume it {what}: {}",
        r.node, r.detail
    );
    (r.seq, text)
}

/// A note for a node that was not terminated, with its journal position.
fn outcome_note(target: &str, step: usize, o: &NodeResult) -> Option<(usize, String)> {
    let what = match o.outcome {
        NodeOutcome::Terminated => return None,
        NodeOutcome::AlreadyGone => "was already gone",
        NodeOutcome::Refused => "was refused",
        NodeOutcome::Error => "could not be terminated",
    };
    let detail = o
        .detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    Some((
        o.seq,
        format!("{target} step {}: node {} {what}{detail}", step + 1, o.node),
    ))
}

/// Where a target's steps did not start from full capacity: an `aws-ec2` or `aws-fis` target
/// (nothing replaces what they terminate) that no health endpoint followed (no step has a
/// capacity summary) and whose steps do not say they add up.
fn capacity_note(t: &TargetReport) -> Option<String> {
    let unreplaced = matches!(t.provider.as_str(), "aws-ec2" | "aws-fis");
    let injected = t.steps.iter().filter(|s| s.injected_at.is_some()).count();
    let followed = t.steps.iter().any(|s| s.capacity.is_some());
    (unreplaced && !t.cumulative && !followed && injected > 1).then(|| {
        let alive: Vec<String> = t
            .steps
            .iter()
            .filter(|s| s.injected_at.is_some())
            .map(|s| s.nodes_at_start.map_or("?".to_owned(), |n| n.to_string()))
            .collect();
        format!(
            "{}: steps did not start from full capacity ({} does not replace what it terminates \
             and no health endpoint said when capacity was back): each step chose among the \
             nodes the steps before left (nodes at step start: {})",
            t.name,
            t.provider,
            alive.join(", ")
        )
    })
}

/// A target's report: its steps as the journal tells them, then its conclusions.
fn target_report(t: &TargetRun) -> TargetReport {
    let info = &t.info;
    let mut report = TargetReport {
        name: info.name.clone(),
        kind: info.kind.clone(),
        provider: info.provider.clone(),
        applications: info.applications.clone(),
        tolerated_terminations: 0,
        tolerance_bound: None,
        tolerance: None,
        required_tolerance: info.required_tolerance,
        verdict: Verdict::Inconclusive,
        first_failure: None,
        cumulative: info.cumulative,
        steps: t.steps.iter().map(step_report).collect(),
        overprovisioning: None,
        search: None,
        safety_multiple: Some(info.safety_multiple),
    };
    judge_target(&mut report, info.safety_multiple);
    report.search = info.search.map(|s| search_report(s, &report));
    report
}

/// How the search went, from its steps.
fn search_report(s: analysis::Search, t: &TargetReport) -> SearchReport {
    let results: Vec<(u32, Verdict)> = t
        .steps
        .iter()
        .filter_map(|st| st.verdict.map(|v| (st.terminations, v)))
        .collect();
    let anomalies: Vec<SearchAnomaly> = analysis::anomalies(&results)
        .into_iter()
        .map(|(passed, failed_below)| SearchAnomaly {
            passed,
            failed_below,
        })
        .collect();
    let cut_short = t
        .steps
        .last()
        .filter(|st| st.verdict.is_none())
        .map(|st| st.skipped.clone().unwrap_or_else(|| "not reached".into()));
    let full = (s.max.saturating_sub(s.from) as usize) + 1;
    let mut summary = format!(
        "search {}..{}: {} step{} ({}) where a full ladder takes {full}",
        s.from,
        s.max,
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        results
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(why) = &cut_short {
        summary.push_str(&format!("; cut short before its end: {why}"));
    }
    for a in &anomalies {
        summary.push_str(&format!(
            "; {} passed above a failure at {} (the assumption did not hold there)",
            a.passed, a.failed_below
        ));
    }
    SearchReport {
        from: s.from,
        max: s.max,
        steps_run: results.len(),
        full_ladder_steps: full,
        assumption: analysis::ASSUMPTION.to_owned(),
        anomalies,
        cut_short,
        summary,
    }
}

fn step_report(s: &StepRun) -> StepReport {
    let judgment = s.judgment.as_ref();
    StepReport {
        terminations: s.terminations,
        market: s.market_rung.then(|| StepMarket {
            choice: "largest".into(),
            instance_type: s.market.as_ref().map(|m| m.instance_type.clone()),
            zone: s.market.as_ref().map(|m| m.zone.clone()),
            label: crate::journal::MarketRef::step_label(s.market.as_ref(), s.terminations),
        }),
        nodes: s.nodes(),
        injected_at: s.injected().map(str::to_owned),
        verdict: s.verdict(),
        capacity_restored_s: s.capacity_restored_s,
        skipped: skipped(s),
        applications: judgment.map(|j| j.applications.clone()).unwrap_or_default(),
        capacity: judgment.and_then(|j| j.capacity.clone()),
        findings: step_findings(s),
        nodes_at_start: s.nodes_alive,
        headroom: Vec::new(),
    }
}

/// The judgment's findings, then the provider's (a blocked eviction), once each.
fn step_findings(s: &StepRun) -> Vec<String> {
    let mut out: Vec<String> = s
        .judgment
        .as_ref()
        .map(|j| j.findings.clone())
        .unwrap_or_default();
    for f in &s.provider_findings {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

/// Why a step has no verdict; `None` once it is judged.
fn skipped(s: &StepRun) -> Option<String> {
    if s.judgment.is_some() {
        return None;
    }
    let why = match &s.phase {
        StepPhase::Pending | StepPhase::Started | StepPhase::Judged => "not reached",
        StepPhase::Injecting => "interrupted after the termination intent",
        StepPhase::Observing => "interrupted during observation",
        StepPhase::Skipped(reason) => reason,
    };
    Some(why.to_owned())
}

/// Tolerance, verdict, first failure and overprovisioning of a target from its steps.
fn judge_target(t: &mut TargetReport, multiple: f64) {
    // A market rung never resolved has no count: it ranks above every count (it never passed,
    // so it can only be the first failure once every counted step passed).
    let steps: Vec<(u32, Option<Verdict>)> = t
        .steps
        .iter()
        .map(|s| match (&s.market, s.terminations) {
            (Some(_), 0) => (u32::MAX, s.verdict),
            _ => (s.terminations, s.verdict),
        })
        .collect();
    let tol = analysis::tolerance(&steps);
    t.tolerated_terminations = tol.tolerated;
    t.first_failure = tol.first_failure.map(|i| first_failure(&t.steps[i]));
    let deciding = tol.first_failure.map(|i| t.steps[i].verdict);
    let (bound, words) = bound(t, tol.first_failure);
    t.tolerance_bound = Some(bound);
    t.tolerance = Some(words);
    t.verdict = if t.tolerated_terminations >= t.required_tolerance {
        Verdict::Pass
    } else if deciding == Some(Some(Verdict::Fail)) {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    t.overprovisioning = spare::sizing(t, multiple, None);
}

/// The tolerance as a bound, and in words, from the first step (index into the steps) that did
/// not pass.
fn bound(t: &TargetReport, first: Option<usize>) -> (Bound, String) {
    let n = t.tolerated_terminations;
    let (Some(i), Some(f)) = (first, t.first_failure.as_ref()) else {
        return (
            Bound::AtLeast,
            format!("≥ {n} (every step passed; the limit is above the ladder)"),
        );
    };
    let s = &t.steps[i];
    let step = format!("step {}, {}", i + 1, text::rung(s));
    match s.verdict {
        Some(Verdict::Fail) => (Bound::Exact, format!("{n} ({step}, failed: {})", f.reason)),
        Some(_) => (
            Bound::AtLeast,
            format!("≥ {n} ({step}, inconclusive: {})", f.reason),
        ),
        None => (Bound::AtLeast, format!("≥ {n} ({step}, {})", f.reason)),
    }
}

fn first_failure(s: &StepReport) -> FirstFailure {
    let reason = match (&s.verdict, &s.skipped) {
        (Some(_), _) => s
            .applications
            .iter()
            .filter(|a| a.verdict != Verdict::Pass)
            .map(|a| format!("{}: {}", a.name, a.reason))
            .collect::<Vec<_>>()
            .join("; "),
        (None, Some(why)) => format!("not run: {why}"),
        (None, None) => "not run".into(),
    };
    FirstFailure {
        terminations: s.terminations,
        rung: s.market.as_ref().map(|m| m.label.clone()),
        reason,
    }
}

/// Losses over the run, each at its step's injection (seconds since the first). Steps that
/// start from full capacity do not overlap by construction (each waits for the last one's
/// replacements), so there the most lost within the lead time is the largest step, all at
/// once; cumulative steps add up within the window.
pub(crate) fn losses(t: &TargetReport) -> Vec<f64> {
    if !t.cumulative {
        let largest = t
            .steps
            .iter()
            .filter(|s| s.injected_at.is_some())
            .map(|s| s.nodes.len() as f64)
            .fold(0.0, f64::max);
        return [0.0].repeat(largest as usize);
    }
    let mut losses = Vec::new();
    let first = t
        .steps
        .iter()
        .find_map(|s| s.injected_at.as_deref().and_then(parse_time));
    for s in &t.steps {
        if let (Some(at), Some(first)) = (s.injected_at.as_deref().and_then(parse_time), first) {
            let dt = at.duration_since(first).map_or(0.0, |d| d.as_secs_f64());
            losses.extend(std::iter::repeat_n(dt, s.nodes.len()));
        }
    }
    losses
}

fn parse_time(s: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::TargetInfo;

    const AT: &str = "2026-11-26T03:26:36.491Z";

    fn judged(step: usize, terminations: u32, verdict: Verdict) -> Entry {
        Entry::StepJudged {
            at: AT.into(),
            target: "t".into(),
            step,
            terminations,
            nodes: vec![format!("n{step}")],
            injected_at: Some(AT.into()),
            verdict,
            capacity_restored_s: None,
            applications: Vec::new(),
            capacity: None,
            findings: Vec::new(),
            market: None,
        }
    }

    /// A search's report names its steps against a full ladder's, states the assumption,
    /// reports a pass above a failure, and says what cut it short.
    #[test]
    fn a_search_report_shows_anomalies_and_what_cut_it_short() {
        let start = Entry::RunStarted {
            at: AT.into(),
            plan: "p".into(),
            plan_path: "p.yaml".into(),
            plan_digest: "0".into(),
            version: "0.1.0".into(),
            targets: vec![TargetInfo {
                name: "t".into(),
                kind: "storm".into(),
                provider: "lab".into(),
                required_tolerance: 1,
                ladder: Vec::new(),
                search: Some(analysis::Search { from: 1, max: 8 }),
                cumulative: false,
                safety_multiple: 3.0,
                applications: vec!["a".into()],
            }],
            lab: true,
            aws: Vec::new(),
        };
        let r = Report::from_journal(&[
            start,
            judged(0, 1, Verdict::Pass),
            judged(1, 2, Verdict::Fail),
            judged(2, 4, Verdict::Pass),
            Entry::StepSkipped {
                at: AT.into(),
                target: "t".into(),
                step: 3,
                terminations: 3,
                reason: "guard max_terminations: 7 terminated so far + 3 would exceed 8".into(),
                ends: false,
                market: None,
            },
        ]);
        let t = &r.targets[0];
        assert_eq!(t.tolerated_terminations, 1);
        let s = t.search.as_ref().expect("a search report");
        assert_eq!(
            (s.from, s.max, s.steps_run, s.full_ladder_steps),
            (1, 8, 3, 8)
        );
        assert_eq!(
            s.anomalies,
            [SearchAnomaly {
                passed: 4,
                failed_below: 2
            }]
        );
        assert!(s.cut_short.as_deref().unwrap().contains("max_terminations"));
        assert!(
            s.summary.contains("4 passed above a failure at 2"),
            "{}",
            s.summary
        );
        assert!(s.summary.contains("cut short"), "{}", s.summary);
        assert_eq!(s.assumption, analysis::ASSUMPTION);
    }

    fn market_run(after: Vec<Entry>) -> TargetReport {
        use crate::plan::{MarketChoice, MarketRung, Rung};
        let market = Rung::Market(MarketRung {
            market: MarketChoice::Largest,
        });
        let mut entries = vec![Entry::RunStarted {
            at: AT.into(),
            plan: "p".into(),
            plan_path: "p.yaml".into(),
            plan_digest: "0".into(),
            version: "0.1.0".into(),
            targets: vec![TargetInfo {
                name: "t".into(),
                kind: "storm".into(),
                provider: "aws-ec2".into(),
                required_tolerance: 1,
                ladder: vec![Rung::Nodes(1), market],
                search: None,
                cumulative: false,
                safety_multiple: 3.0,
                applications: vec!["a".into()],
            }],
            lab: false,
            aws: Vec::new(),
        }];
        entries.extend(after);
        Report::from_journal(&entries).targets.remove(0)
    }

    /// A market rung that ran is named after its market and counts its size; one that never
    /// resolved has no count and ranks above every count: the tolerance is a floor, and the
    /// report says the step was not run rather than "every step passed".
    #[test]
    fn a_market_rung_is_named_after_its_market_and_counts_what_it_resolved_to() {
        let m = crate::journal::MarketRef::new(("c5.2xlarge".into(), "us-east-1a".into()));
        let mut failed = judged(1, 4, Verdict::Fail);
        if let Entry::StepJudged { market, .. } = &mut failed {
            *market = Some(m);
        }
        let t = market_run(vec![judged(0, 1, Verdict::Pass), failed]);
        let label = "the largest market (c5.2xlarge/us-east-1a: 4 nodes)";
        assert_eq!(t.steps[1].market.as_ref().unwrap().label, label);
        assert_eq!(t.steps[1].terminations, 4);
        assert_eq!(
            (t.tolerated_terminations, t.tolerance_bound),
            (1, Some(Bound::Exact))
        );
        let words = t.tolerance.as_deref().unwrap();
        assert!(
            words.starts_with(&format!("1 (step 2, {label}, failed")),
            "{words}"
        );
        assert_eq!(
            t.first_failure.as_ref().unwrap().rung.as_deref(),
            Some(label)
        );

        let stopped = Entry::StepSkipped {
            at: AT.into(),
            target: "t".into(),
            step: 1,
            terminations: 0,
            reason: "escalation stopped: interrupted".into(),
            ends: false,
            market: None,
        };
        let t = market_run(vec![judged(0, 1, Verdict::Pass), stopped]);
        assert_eq!(
            (t.tolerated_terminations, t.tolerance_bound),
            (1, Some(Bound::AtLeast))
        );
        let words = t.tolerance.as_deref().unwrap();
        assert!(
            words.starts_with("≥ 1 (step 2, the largest market, not run"),
            "{words}"
        );
    }
}
