//! Reports from a run's journal: `report.json` (DESIGN.md "Machine-readable outputs", schema
//! version 1). Everything in a report comes from the journal, so a crashed run still gets one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::{self, Verdict};
use crate::run::journal::{AppResult, Entry, NodeOutcome};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub plan: String,
    pub plan_path: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub verdict: Verdict,
    pub exit_code: u8,
    /// How the targets ran: "one after another: a, b".
    pub order: String,
    /// Why escalation stopped early (a guard, Ctrl-C), if it did.
    pub aborted: Option<String>,
    /// Things the reader must know: missing pieces, an interrupted run.
    pub notes: Vec<String>,
    pub targets: Vec<TargetReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    pub name: String,
    pub kind: String,
    pub provider: String,
    pub tolerated_terminations: u32,
    pub required_tolerance: u32,
    pub verdict: Verdict,
    pub first_failure: Option<FirstFailure>,
    /// Steps add up (capacity that never comes back) instead of starting from full capacity.
    pub cumulative: bool,
    pub steps: Vec<StepReport>,
    pub overprovisioning: Option<Overprovisioning>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirstFailure {
    pub terminations: u32,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub terminations: u32,
    pub nodes: Vec<String>,
    pub injected_at: Option<String>,
    /// `null` when the step was not run (see `skipped`).
    pub verdict: Option<Verdict>,
    pub capacity_restored_s: Option<f64>,
    /// Why the step was not run.
    pub skipped: Option<String>,
    pub applications: Vec<AppResult>,
}

/// The seed's rule: spare nodes = most nodes lost within the replacement lead time × a safety
/// multiple, next to what the ladder measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overprovisioning {
    /// The longest time capacity took to come back after a step (seconds).
    pub replacement_lead_time_s: f64,
    pub max_losses_in_lead_time: u32,
    pub safety_multiple: f64,
    pub spare_nodes: u32,
    pub tolerated_terminations: u32,
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
                Entry::RunFinished { at, .. } => finished = Some(at.clone()),
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
                Entry::Baseline { .. } | Entry::StepStarted { .. } | Entry::Outcome { .. } => {}
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
        let tmp = dir.join("report.json.tmp");
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join("report.json"))
    }
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
        // Losses over the run, each at its step's injection (seconds since the first).
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
        let o = analysis::overprovisioning(&losses, lead, multiple);
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
