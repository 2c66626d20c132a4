//! Reports from a run's journal: `report.json` (DESIGN.md "Machine-readable outputs", schema
//! version 1), and from it `report.md`, `report.html` and `junit.xml` ([`write_all`]).
//! Everything in a report comes from the journal (the charts also from `samples.csv` and
//! `lab-truth.jsonl`), so a crashed run still gets one.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, Verdict};
use crate::journal::{AppResult, Entry, NodeOutcome};

mod chart;
pub mod diff;
mod evidence;
mod html;
mod junit;
mod markdown;
mod schema;
mod text;

use evidence::Evidence;
pub use schema::json_schema;

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
    pub exit_code: u8,
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
    /// was never seen coming back.
    pub overprovisioning: Option<Overprovisioning>,
}

/// The first step of a target that did not pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FirstFailure {
    /// The step's number of terminations.
    pub terminations: u32,
    /// Why it did not pass: each failing application with its reason, or why it was not run.
    pub reason: String,
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    /// How many nodes the step terminates at once.
    pub terminations: u32,
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
    /// The recommendation in one sentence.
    pub summary: String,
}

impl Report {
    /// Build the report from the journal's entries.
    pub fn from_journal(entries: &[Entry]) -> Report {
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            plan: String::new(),
            plan_path: String::new(),
            started_at: None,
            finished_at: None,
            verdict: Verdict::Inconclusive,
            exit_code: 4,
            order: String::new(),
            aborted: None,
            notes: Vec::new(),
            duration_s: None,
            cpu_one_core_pct: None,
            targets: Vec::new(),
        };
        let mut finished = None;
        let mut interrupted = false;
        for e in entries {
            match e {
                Entry::RunStarted {
                    at,
                    plan,
                    plan_path,
                    targets,
                    ..
                } => {
                    report.plan.clone_from(plan);
                    report.plan_path.clone_from(plan_path);
                    report.started_at.get_or_insert_with(|| at.clone());
                    if report.targets.is_empty() {
                        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                        report.order = format!("one after another: {}", names.join(", "));
                        report.targets = targets
                            .iter()
                            .map(|t| TargetReport {
                                name: t.name.clone(),
                                kind: t.kind.clone(),
                                provider: t.provider.clone(),
                                applications: t.applications.clone(),
                                tolerated_terminations: 0,
                                required_tolerance: t.required_tolerance,
                                verdict: Verdict::Inconclusive,
                                first_failure: None,
                                cumulative: t.cumulative,
                                steps: t
                                    .ladder
                                    .iter()
                                    .map(|&n| StepReport {
                                        terminations: n,
                                        nodes: Vec::new(),
                                        injected_at: None,
                                        verdict: None,
                                        capacity_restored_s: None,
                                        skipped: Some("not reached".into()),
                                        applications: Vec::new(),
                                        capacity: None,
                                        findings: Vec::new(),
                                    })
                                    .collect(),
                                overprovisioning: None,
                            })
                            .collect();
                    }
                }
                Entry::Resumed { at } => {
                    report.notes.push(format!("resumed at {at}"));
                    // What stopped the earlier attempt does not stop the resumed one.
                    report.aborted = None;
                    interrupted = false;
                }
                Entry::Intent {
                    target,
                    step,
                    nodes,
                    ..
                } => {
                    if let Some(s) = step_mut(&mut report, target, *step) {
                        s.nodes = nodes.iter().map(|n| n.id.clone()).collect();
                        s.skipped = Some("interrupted after the termination intent".into());
                    }
                }
                Entry::Outcome {
                    target,
                    step,
                    node,
                    outcome,
                    detail,
                    ..
                } if *outcome != NodeOutcome::Terminated => {
                    report.notes.push(format!(
                        "{target} step {}: node {node} {}{}",
                        step + 1,
                        match outcome {
                            NodeOutcome::AlreadyGone => "was already gone",
                            NodeOutcome::Refused => "was refused",
                            _ => "could not be terminated",
                        },
                        detail
                            .as_ref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ));
                }
                Entry::Injected { at, target, step } => {
                    if let Some(s) = step_mut(&mut report, target, *step) {
                        s.injected_at = Some(at.clone());
                        s.skipped = Some("interrupted during observation".into());
                    }
                }
                Entry::StepJudged {
                    target,
                    step,
                    nodes,
                    injected_at,
                    verdict,
                    capacity_restored_s,
                    applications,
                    capacity,
                    findings,
                    ..
                } => {
                    if let Some(s) = step_mut(&mut report, target, *step) {
                        s.nodes.clone_from(nodes);
                        s.injected_at.clone_from(injected_at);
                        s.verdict = Some(*verdict);
                        if capacity_restored_s.is_some() {
                            s.capacity_restored_s = *capacity_restored_s;
                        }
                        s.skipped = None;
                        s.applications.clone_from(applications);
                        s.capacity.clone_from(capacity);
                        s.findings.clone_from(findings);
                    }
                }
                Entry::StepSkipped {
                    target,
                    step,
                    reason,
                    ..
                } => {
                    if let Some(s) = step_mut(&mut report, target, *step)
                        && s.verdict.is_none()
                    {
                        s.skipped = Some(reason.clone());
                    }
                }
                Entry::GuardBreached {
                    target,
                    guard,
                    detail,
                    ..
                } => {
                    report.aborted.get_or_insert_with(|| {
                        format!("guard {guard} of {target}: {detail}; escalation stopped")
                    });
                }
                Entry::Aborted { reason, .. } => {
                    report
                        .aborted
                        .get_or_insert_with(|| format!("{reason}; escalation stopped"));
                }
                Entry::Interrupted { at, hard } => {
                    interrupted = true;
                    report.aborted.get_or_insert_with(|| {
                        if *hard {
                            format!("interrupted twice at {at}: the run ended at once")
                        } else {
                            format!("interrupted at {at}: escalation stopped")
                        }
                    });
                }
                Entry::RunFinished {
                    at, wall_s, cpu_s, ..
                } => {
                    finished = Some(at.clone());
                    report.duration_s = *wall_s;
                    report.cpu_one_core_pct = wall_s
                        .zip(*cpu_s)
                        .filter(|(w, _)| *w > 0.0)
                        .map(|(w, c)| (c / w * 1000.0).round() / 10.0);
                }
                Entry::CapacityRestored {
                    target,
                    step,
                    after_s,
                    ..
                } => {
                    if let Some(s) = step_mut(&mut report, target, *step) {
                        s.capacity_restored_s = Some(*after_s);
                    }
                }
                Entry::Baseline { .. }
                | Entry::StepStarted { .. }
                | Entry::Outcome { .. }
                | Entry::ProviderEvent { .. } => {}
            }
        }
        for t in &mut report.targets {
            judge_target(t, entries);
        }
        if finished.is_none() {
            report
                .notes
                .push("the run did not finish: this report is rebuilt from its journal".into());
        }
        report.finished_at = finished;
        report.verdict = if report.targets.iter().any(|t| t.verdict == Verdict::Fail) {
            Verdict::Fail
        } else if report.targets.iter().all(|t| t.verdict == Verdict::Pass) {
            Verdict::Pass
        } else {
            Verdict::Inconclusive
        };
        report.exit_code = if report.aborted.is_some() || interrupted {
            3
        } else if report.verdict == Verdict::Pass {
            0
        } else {
            1
        };
        report
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
    use crate::exit::Failure;
    use crate::journal;
    let bad = |e: anyhow::Error| anyhow::Error::from(Failure::BadInput(format!("{e:#}")));
    if path.is_file() {
        return Report::read_json(path).map_err(bad);
    }
    let json = path.join("report.json");
    if json.is_file() {
        return Report::read_json(&json).map_err(bad);
    }
    if path.join(journal::FILE).is_file() {
        let entries = journal::read(path).map_err(|e| Failure::BadInput(e.to_string()))?;
        return Ok(Report::from_journal(&entries));
    }
    Err(Failure::BadInput(format!(
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

/// Write `dir/name` through a temporary file renamed into place, so a reader never sees half.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, dir.join(name))
}

fn step_mut<'a>(report: &'a mut Report, target: &str, step: usize) -> Option<&'a mut StepReport> {
    report
        .targets
        .iter_mut()
        .find(|t| t.name == target)
        .and_then(|t| t.steps.get_mut(step))
}

/// Tolerance, verdict, first failure and overprovisioning of a target from its steps.
fn judge_target(t: &mut TargetReport, entries: &[Entry]) {
    let steps: Vec<(u32, Option<Verdict>)> = t
        .steps
        .iter()
        .map(|s| (s.terminations, s.verdict))
        .collect();
    let tol = analysis::tolerance(&steps);
    t.tolerated_terminations = tol.tolerated;
    t.first_failure = tol.first_failure.map(|i| {
        let s = &t.steps[i];
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
            reason,
        }
    });
    let deciding = tol.first_failure.map(|i| t.steps[i].verdict);
    t.verdict = if t.tolerated_terminations >= t.required_tolerance {
        Verdict::Pass
    } else if deciding == Some(Some(Verdict::Fail)) {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    let multiple = entries
        .iter()
        .find_map(|e| match e {
            Entry::RunStarted { targets, .. } => targets
                .iter()
                .find(|i| i.name == t.name)
                .map(|i| i.safety_multiple),
            _ => None,
        })
        .unwrap_or(3.0);
    let lead = t
        .steps
        .iter()
        .filter_map(|s| s.capacity_restored_s)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    if let Some(lead) = lead {
        // Losses over the run, each at its step's injection (seconds since the first). Steps
        // that start from full capacity do not overlap by construction (each waits for the
        // last one's replacements), so there the most lost within the lead time is the largest
        // step; cumulative steps add up within the window.
        let mut losses = Vec::new();
        let first = t
            .steps
            .iter()
            .find_map(|s| s.injected_at.as_deref().and_then(parse_time));
        for s in &t.steps {
            if let (Some(at), Some(first)) = (s.injected_at.as_deref().and_then(parse_time), first)
            {
                let dt = at.duration_since(first).map_or(0.0, |d| d.as_secs_f64());
                losses.extend(std::iter::repeat_n(dt, s.nodes.len()));
            }
        }
        let o = if t.cumulative {
            analysis::overprovisioning(&losses, lead, multiple)
        } else {
            let largest = t
                .steps
                .iter()
                .filter(|s| s.injected_at.is_some())
                .map(|s| s.nodes.len() as f64)
                .fold(0.0, f64::max);
            analysis::overprovisioning(&[0.0].repeat(largest as usize), lead, multiple)
        };
        t.overprovisioning = Some(Overprovisioning {
            replacement_lead_time_s: (lead * 10.0).round() / 10.0,
            max_losses_in_lead_time: o.max_losses_in_lead_time,
            safety_multiple: multiple,
            spare_nodes: o.spare_nodes,
            tolerated_terminations: t.tolerated_terminations,
            summary: format!(
                "keep {} spare nodes: up to {} lost within the {:.0} s replacement lead time × {}; \
                 the ladder measured a tolerance of {}",
                o.spare_nodes, o.max_losses_in_lead_time, lead, multiple, t.tolerated_terminations
            ),
        });
    }
}

fn parse_time(s: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}
