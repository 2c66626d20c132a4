//! What changed between two runs' reports: per target the tolerance and verdict, per step and
//! application the verdict, spike and recovery. Used by `spotdrill diff` and `run --compare`.
//!
//! Steps are matched by their number of terminations (ladders may differ between runs), and
//! applications by name. Lag numbers move a little from run to run, so a spike or recovery
//! change is stated only when it is at least [`MIN_CHANGE_S`] and [`MIN_CHANGE_SHARE`] of the
//! larger value; appearing or disappearing (recovered → not recovered) is always stated.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::fmt_secs;
use crate::journal::AppResult;

use super::text::{self, step_title};
use super::{Report, StepReport, TargetReport};

/// Smallest change in seconds worth stating.
pub const MIN_CHANGE_S: f64 = 0.5;
/// Smallest change, as a share of the larger value, worth stating.
pub const MIN_CHANGE_SHARE: f64 = 0.1;

/// The comparison of two reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diff {
    pub old: RunRef,
    pub new: RunRef,
    /// Every change in words, in report order: targets, then steps, then applications.
    pub lines: Vec<String>,
    /// Some target present in both runs tolerates fewer terminations in the new one.
    pub tolerance_dropped: bool,
    /// The same changes as data.
    pub changes: Vec<Change>,
}

/// Which run a side of the comparison is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRef {
    pub plan: String,
    pub started_at: Option<String>,
    pub verdict: crate::analysis::Verdict,
}

/// One change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// The target; null for the run as a whole.
    pub target: Option<String>,
    /// The step's number of terminations; null for target-wide changes.
    pub terminations: Option<u32>,
    /// The application; null for target- or step-wide changes.
    pub application: Option<String>,
    pub kind: ChangeKind,
    /// The old value (a number of seconds or terminations, a verdict), null when absent.
    pub old: serde_json::Value,
    /// The new value, null when absent.
    pub new: serde_json::Value,
    /// The change in words (also in `lines`).
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Verdict,
    Tolerance,
    Spike,
    Recovery,
    /// A target, step or application present in only one of the runs, or run in only one.
    Presence,
}

impl Diff {
    /// No change worth stating.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn run_ref(r: &Report) -> RunRef {
    RunRef {
        plan: r.plan.clone(),
        started_at: r.started_at.clone(),
        verdict: r.verdict,
    }
}

fn secs_or(v: Option<f64>, none: &str) -> String {
    v.map_or_else(|| none.to_owned(), fmt_secs)
}

fn json(v: Option<f64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, serde_json::Value::from)
}

/// Whether a number moved enough to state.
fn significant(old: Option<f64>, new: Option<f64>) -> bool {
    match (old, new) {
        (Some(a), Some(b)) => {
            let d = (a - b).abs();
            d >= MIN_CHANGE_S && d >= MIN_CHANGE_SHARE * a.abs().max(b.abs())
        }
        (None, None) => false,
        _ => true,
    }
}

struct Builder {
    changes: Vec<Change>,
}

impl Builder {
    fn push(
        &mut self,
        at: (Option<&str>, Option<u32>, Option<&str>),
        kind: ChangeKind,
        old: serde_json::Value,
        new: serde_json::Value,
        text: String,
    ) {
        self.changes.push(Change {
            target: at.0.map(str::to_owned),
            terminations: at.1,
            application: at.2.map(str::to_owned),
            kind,
            old,
            new,
            text,
        });
    }
}

/// Compare an earlier run's report with a later one's.
pub fn compare(old: &Report, new: &Report) -> Diff {
    let mut b = Builder {
        changes: Vec::new(),
    };
    if old.verdict != new.verdict {
        b.push(
            (None, None, None),
            ChangeKind::Verdict,
            serde_json::json!(old.verdict),
            serde_json::json!(new.verdict),
            format!(
                "run verdict {} → {} (exit code {} → {})",
                old.verdict, new.verdict, old.exit_code, new.exit_code
            ),
        );
    }
    let mut dropped = false;
    for nt in &new.targets {
        match old.targets.iter().find(|t| t.name == nt.name) {
            Some(ot) => dropped |= target(&mut b, ot, nt),
            None => b.push(
                (Some(&nt.name), None, None),
                ChangeKind::Presence,
                serde_json::Value::Null,
                serde_json::json!(nt.tolerated_terminations),
                format!(
                    "target {} only in the new run (tolerance {}, required {})",
                    nt.name,
                    text::bound_short(nt),
                    nt.required_tolerance
                ),
            ),
        }
    }
    for ot in &old.targets {
        if !new.targets.iter().any(|t| t.name == ot.name) {
            b.push(
                (Some(&ot.name), None, None),
                ChangeKind::Presence,
                serde_json::json!(ot.tolerated_terminations),
                serde_json::Value::Null,
                format!(
                    "target {} only in the old run (tolerance {}, required {})",
                    ot.name,
                    text::bound_short(ot),
                    ot.required_tolerance
                ),
            );
        }
    }
    Diff {
        old: run_ref(old),
        new: run_ref(new),
        lines: b.changes.iter().map(|c| c.text.clone()).collect(),
        tolerance_dropped: dropped,
        changes: b.changes,
    }
}

/// Changes of one target present in both runs; whether its tolerance dropped.
fn target(b: &mut Builder, ot: &TargetReport, nt: &TargetReport) -> bool {
    let name = nt.name.as_str();
    let dropped = nt.tolerated_terminations < ot.tolerated_terminations;
    if nt.tolerated_terminations != ot.tolerated_terminations
        || nt.tolerance_bound != ot.tolerance_bound
    {
        let required = if ot.required_tolerance == nt.required_tolerance {
            format!("required {}", nt.required_tolerance)
        } else {
            format!(
                "required {} → {}",
                ot.required_tolerance, nt.required_tolerance
            )
        };
        b.push(
            (Some(name), None, None),
            ChangeKind::Tolerance,
            serde_json::json!(ot.tolerated_terminations),
            serde_json::json!(nt.tolerated_terminations),
            format!(
                "{name} tolerance {} → {} ({required}){}",
                text::bound_short(ot),
                text::bound_short(nt),
                if dropped { ": dropped" } else { "" }
            ),
        );
    }
    if nt.verdict != ot.verdict {
        b.push(
            (Some(name), None, None),
            ChangeKind::Verdict,
            serde_json::json!(ot.verdict),
            serde_json::json!(nt.verdict),
            format!("{name} verdict {} → {}", ot.verdict, nt.verdict),
        );
    }
    for (i, ns) in nt.steps.iter().enumerate() {
        let title = step_title(i, ns);
        let Some(os) = ot.steps.iter().find(|s| s.terminations == ns.terminations) else {
            b.push(
                (Some(name), Some(ns.terminations), None),
                ChangeKind::Presence,
                serde_json::Value::Null,
                serde_json::json!(ns.verdict),
                format!("{name} {} only in the new run", step_title(i, ns)),
            );
            continue;
        };
        step(b, name, &title, os, ns);
    }
    for (i, os) in ot.steps.iter().enumerate() {
        if !nt.steps.iter().any(|s| s.terminations == os.terminations) {
            b.push(
                (Some(name), Some(os.terminations), None),
                ChangeKind::Presence,
                serde_json::json!(os.verdict),
                serde_json::Value::Null,
                format!("{name} {} only in the old run", step_title(i, os)),
            );
        }
    }
    dropped
}

fn step(b: &mut Builder, target: &str, title: &str, os: &StepReport, ns: &StepReport) {
    if !step_ran(b, target, title, os, ns) {
        return;
    }
    let n = Some(ns.terminations);
    let at = format!("at {title}");
    for na in &ns.applications {
        let app = na.name.as_str();
        match os.applications.iter().find(|a| a.name == na.name) {
            Some(oa) => application(b, (target, n, &at), oa, na),
            None if os.verdict.is_some() => b.push(
                (Some(target), n, Some(app)),
                ChangeKind::Presence,
                serde_json::Value::Null,
                serde_json::json!(na.verdict),
                format!("{target}: {app} only in the new run {at} ({})", na.verdict),
            ),
            None => {}
        }
    }
    for oa in &os.applications {
        if ns.verdict.is_some() && !ns.applications.iter().any(|a| a.name == oa.name) {
            b.push(
                (Some(target), n, Some(&oa.name)),
                ChangeKind::Presence,
                serde_json::json!(oa.verdict),
                serde_json::Value::Null,
                format!("{target}: {} only in the old run {at}", oa.name),
            );
        }
    }
}

/// A step that ran in only one of the runs is a change; true when it ran in the new run, so
/// its applications are compared (with nothing, when the old run did not run it).
fn step_ran(b: &mut Builder, target: &str, title: &str, os: &StepReport, ns: &StepReport) -> bool {
    let n = Some(ns.terminations);
    match (os.verdict, ns.verdict) {
        (Some(_), None) => {
            b.push(
                (Some(target), n, None),
                ChangeKind::Presence,
                serde_json::json!(os.verdict),
                serde_json::Value::Null,
                format!(
                    "{target} {title} ran in the old run ({}) but not in the new one: {}",
                    os.verdict.map_or("not run", |v| v.as_str()),
                    ns.skipped.as_deref().unwrap_or("no result recorded")
                ),
            );
            false
        }
        (None, Some(v)) => {
            b.push(
                (Some(target), n, None),
                ChangeKind::Presence,
                serde_json::Value::Null,
                serde_json::json!(v),
                format!(
                    "{target} {title} ran in the new run ({v}) but not in the old one: {}",
                    os.skipped.as_deref().unwrap_or("no result recorded")
                ),
            );
            true
        }
        (None, None) => false,
        (Some(_), Some(_)) => true,
    }
}

/// Changes of one application in a step of both runs: verdict, spike, recovery. `place`: the
/// target, the step's terminations and "at step …".
fn application(b: &mut Builder, place: (&str, Option<u32>, &str), oa: &AppResult, na: &AppResult) {
    let (target, n, at) = place;
    let app = na.name.as_str();
    if oa.verdict != na.verdict {
        b.push(
            (Some(target), n, Some(app)),
            ChangeKind::Verdict,
            serde_json::json!(oa.verdict),
            serde_json::json!(na.verdict),
            format!(
                "{target}: {app} {} → {} {at}: {}",
                oa.verdict, na.verdict, na.reason
            ),
        );
    }
    // (kind, what, what a missing value means, old, new)
    let timings = [
        (
            ChangeKind::Spike,
            "spike",
            "unknown",
            oa.spike_lag_s,
            na.spike_lag_s,
        ),
        (
            ChangeKind::Recovery,
            "recovery",
            "not recovered",
            oa.recovery_s,
            na.recovery_s,
        ),
    ];
    for (kind, what, missing, old, new) in timings {
        if significant(old, new) {
            b.push(
                (Some(target), n, Some(app)),
                kind,
                json(old),
                json(new),
                format!(
                    "{target}: {app} {what} {} → {} {at}",
                    secs_or(old, missing),
                    secs_or(new, missing)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_moves_are_noise_and_appearing_always_counts() {
        assert!(!significant(Some(2.0), Some(2.3)));
        assert!(!significant(Some(48.0), Some(50.0)));
        assert!(significant(Some(48.0), Some(95.0)));
        assert!(significant(Some(2.0), Some(3.0)));
        assert!(significant(Some(2.0), None));
        assert!(!significant(None, None));
    }
}
