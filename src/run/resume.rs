//! What earlier attempts leave to a resumed one, folded from the journal in one place: whether
//! the run may be resumed at all, the stop that still holds, where each step got to, the nodes
//! `max_terminations` counts, the fleet size `min_healthy` is a share of, the nodes whose intent
//! has no outcome (reconciled through the provider), and the judgment of a step the crash cut
//! between its intent and its judgment (from `samples.csv` and `capacity.jsonl`).

use std::time::SystemTime;

use super::capacity::{self, Tracker};
use super::runner::{Breach, Runner};
use super::step::{At, Outcome};
use crate::analysis::{self, Band, Sample, Verdict};
use crate::exit::Failure;
use crate::journal::view::{RunView, StepRun};
use crate::journal::{AppResult, Entry, Found, NodeOutcome};
use crate::plan::{Plan, Target};
use crate::report::evidence::{SampleRow, parse_time, secs_between};

/// Whether the run whose journal is `entries` may be resumed: a finished run may not, unless it
/// finished stopped and the operator continues past the stop (`--continue`).
pub fn check(entries: &[Entry], shown: &str, continued: bool) -> Result<(), Failure> {
    let view = RunView::from_entries(entries);
    let Some(f) = view.finished_now() else {
        return Ok(());
    };
    match (view.effective_stop(), continued) {
        (Some(_), true) => Ok(()),
        (Some(stop), false) => Err(Failure::bad_input(format!(
            "{shown} holds a finished run that stopped ({}); resuming it terminates nothing more. \
             To escalate past that stop, resume it with --resume {shown} --continue",
            crate::report::stop_text(stop)
        ))),
        (None, _) => Err(Failure::bad_input(format!(
            "{shown} holds a finished run (verdict {}, exit code {}); there is nothing to resume: \
             start a new run with --out",
            f.verdict, f.exit_code
        ))),
    }
}

/// The stop of an earlier attempt that still holds, in the report's words: the resumed attempt
/// terminates nothing. `None` without one, or when the operator continues past it.
pub fn earlier_stop(previous: &[Entry], continued: bool) -> Option<String> {
    if continued {
        return None;
    }
    RunView::from_entries(previous)
        .effective_stop()
        .map(crate::report::stop_text)
}

/// How the finding of a step judged at resume begins.
pub const REJUDGED: &str = "judged at resume from samples.csv";

/// Where an earlier attempt left one step.
#[derive(Clone, Debug, PartialEq)]
pub enum Prior {
    /// Not reached (or its end lifted by `--continue`): run it.
    Fresh,
    Judged(Verdict),
    /// Judged by an earlier resume from its samples (see [`Prior::Cut`]).
    Rejudged(Verdict),
    /// Its intent is on disk, its judgment is not: judge it from the samples, never repeat it.
    Cut,
    /// The target's ladder ended at this step (a cooldown that timed out, no node to choose).
    Ended(String),
}

/// Where the earlier attempts left step `step` of `target`. A ladder's end holds unless this
/// resume, or one since, continues past it.
pub fn prior(previous: &[Entry], continued: bool, target: &str, step: usize) -> Prior {
    let view = RunView::from_entries(previous);
    let Some(s) = view.step(target, step) else {
        return Prior::Fresh;
    };
    if let Some(j) = &s.judgment {
        let again = j.findings.first().is_some_and(|f| f.starts_with(REJUDGED));
        return match again {
            true => Prior::Rejudged(j.verdict),
            false => Prior::Judged(j.verdict),
        };
    }
    if s.intent.is_some() {
        return Prior::Cut;
    }
    if continued {
        return Prior::Fresh;
    }
    let since = previous
        .iter()
        .rposition(|e| {
            matches!(
                e,
                Entry::Resumed {
                    continued: true,
                    ..
                }
            )
        })
        .map_or(0, |i| i + 1);
    let ended = previous[since..].iter().rev().find_map(|e| match e {
        Entry::StepSkipped {
            target: t,
            step: n,
            reason,
            ends: true,
            ..
        } if t == target && *n == step => Some(reason.clone()),
        _ => None,
    });
    ended.map_or(Prior::Fresh, Prior::Ended)
}

/// Nodes of `target` that `max_terminations` counts: every node of every intent, unless an
/// outcome (already gone, refused) or a reconciliation (found running) proves it was not
/// terminated. A crash between an intent and its outcomes leaves the intent's nodes counted.
/// (Read straight from the entries: it holds for a journal without its `run_started` too.)
pub fn counted(entries: &[Entry], target: &str) -> u32 {
    let mut intended: Vec<(usize, &str)> = Vec::new();
    let mut spared: Vec<(usize, &str)> = Vec::new();
    for e in entries {
        match e {
            Entry::Intent {
                target: t,
                step,
                nodes,
                ..
            } if t == target => intended.extend(nodes.iter().map(|n| (*step, n.id.as_str()))),
            Entry::Outcome {
                target: t,
                step,
                node,
                outcome: NodeOutcome::AlreadyGone | NodeOutcome::Refused,
                ..
            }
            | Entry::Reconciled {
                target: t,
                step,
                node,
                found: Found::Running,
                ..
            } if t == target => spared.push((*step, node.as_str())),
            _ => {}
        }
    }
    intended.sort_unstable();
    intended.dedup();
    intended.iter().filter(|n| !spared.contains(n)).count() as u32
}

/// Nodes of a step proven terminated: a `terminated` outcome, or found gone at a resume.
fn proven(s: &StepRun) -> usize {
    let by_outcome = s
        .outcomes
        .iter()
        .filter(|o| o.outcome == NodeOutcome::Terminated)
        .count();
    let by_resume = s
        .reconciled
        .iter()
        .filter(|r| r.found == Found::Gone)
        .count();
    by_outcome + by_resume
}

/// The target's node count the run first started with (its `fleet` entry), if journaled.
pub fn fleet(entries: &[Entry], target: &str) -> Option<u32> {
    entries.iter().find_map(|e| match e {
        Entry::Fleet {
            target: t, nodes, ..
        } if t == target => Some(*nodes),
        _ => None,
    })
}

/// A node of an intent with neither an outcome nor a reconciliation.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsettled {
    pub target: String,
    pub step: usize,
    pub node: String,
}

/// Every node whose intent has no outcome yet (the run was cut between them).
pub fn unsettled(previous: &[Entry]) -> Vec<Unsettled> {
    let view = RunView::from_entries(previous);
    let mut out = Vec::new();
    for t in &view.targets {
        for (i, s) in t.steps.iter().enumerate() {
            let Some(intent) = &s.intent else { continue };
            let settled = |id: &str| {
                s.outcomes.iter().any(|o| o.node == id) || s.reconciled.iter().any(|r| r.node == id)
            };
            out.extend(
                intent
                    .nodes
                    .iter()
                    .filter(|n| !settled(&n.id))
                    .map(|n| Unsettled {
                        target: t.info.name.clone(),
                        step: i,
                        node: n.id.clone(),
                    }),
            );
        }
    }
    out
}

/// What the attempts left of a cut step: its run, the baseline bands, and when its attempt
/// ended (the next `resumed`).
pub struct Cut<'a> {
    pub plan: &'a Plan,
    pub name: &'a str,
    pub target: &'a Target,
    pub step: usize,
    /// Whether the target's capacity must come back (its provider replaces nodes and the
    /// steps do not add up), as for a step observed to its end.
    pub expect_back: bool,
}

/// What the cut attempt recorded: `samples.csv` and `capacity.jsonl`.
pub struct Recorded<'a> {
    pub samples: &'a [SampleRow],
    pub probes: &'a [capacity::Recorded],
}

/// The judgment of a step cut between its intent and its judgment, from what the attempt that
/// injected it recorded: `samples.csv` and the health probes of `capacity.jsonl` from the
/// injection (the `injected` entry, else its last outcome, else the intent) until that attempt
/// ended (the next `resumed` in `now`, the journal as it is). The baseline bands are the
/// journal's before this resume. Judged by the same functions as a step observed to its end
/// (the probes replayed through the same tracker); a step short of its rung cannot pass.
pub fn rejudge(
    cut: &Cut<'_>,
    previous: &[Entry],
    now: &[Entry],
    recorded: &Recorded<'_>,
) -> Option<Entry> {
    // The step as the journal now tells it (with this resume's reconciliations); the bands as
    // they were before it (this attempt measures its own baseline).
    let view = RunView::from_entries(now);
    let bands = RunView::from_entries(previous).baseline;
    let s = view.step(cut.name, cut.step)?;
    let intent = s.intent.as_ref()?;
    let t0_text = s
        .injected_at
        .clone()
        .or_else(|| s.outcomes.last().map(|o| o.at.clone()))
        .unwrap_or_else(|| intent.at.clone());
    let t0 = parse_time(&t0_text)?;
    let end = view
        .resumes
        .iter()
        .filter_map(|r| parse_time(&r.at))
        .find(|&at| at > t0);
    let tracker = replay(cut, s, recorded.probes, (t0, end));
    let mut observed = 0.0_f64;
    let mut results = Vec::new();
    let mut findings = tracker.as_ref().map(Tracker::findings).unwrap_or_default();
    for app in &cut.target.applications {
        let samples = window(recorded.samples, app, t0, end);
        observed = observed.max(samples.last().map_or(0.0, |x| x.t));
        let Some(b) = bands.iter().find(|b| &b.name == app) else {
            continue;
        };
        let band = Band {
            p99_s: b.p99_s,
            upper_s: b.upper_s,
            samples: b.samples,
        };
        let rung = (proven(s), intent.nodes.len());
        let (result, finding) = judge_app(cut, app, &samples, band, rung, tracker.as_ref());
        results.push(result);
        findings.extend(finding);
    }
    let seen = match &tracker {
        Some(_) => "lag and the health probes' view, replayed from capacity.jsonl",
        None => "lag only: the target has no health probes",
    };
    findings.insert(
        0,
        format!(
            "{REJUDGED}: the run was cut {observed:.0} s after this step's injection, before \
             judging it ({seen})"
        ),
    );
    Some(Entry::StepJudged {
        at: crate::journal::now(),
        target: cut.name.to_owned(),
        step: cut.step,
        terminations: s.terminations,
        nodes: intent.nodes.iter().map(|n| n.id.clone()).collect(),
        injected_at: Some(t0_text),
        verdict: Verdict::combine(results.iter().map(|r| r.verdict)),
        capacity_restored_s: tracker
            .as_ref()
            .and_then(Tracker::restored)
            .map(|r| (r * 10.0).round() / 10.0)
            .or(s.capacity_restored_s),
        applications: results,
        capacity: tracker.as_ref().map(Tracker::summary),
        findings,
        market: s.market.clone(),
    })
}

/// The health probes a cut step saw, replayed through a tracker as the step would have
/// followed them; `None` when the target recorded no probes.
fn replay(
    cut: &Cut<'_>,
    s: &StepRun,
    probes: &[capacity::Recorded],
    (t0, end): (SystemTime, Option<SystemTime>),
) -> Option<Tracker> {
    if !probes.iter().any(|p| p.target == cut.name) {
        return None;
    }
    let (before, after) = capacity::recorded_window(probes, cut.name, t0, end);
    let intent = s.intent.as_ref()?;
    let gone: Vec<String> = intent
        .nodes
        .iter()
        .filter(|n| !survived(s, &n.id))
        .map(|n| n.host.clone())
        .collect();
    let apps = capacity::scheduled(cut.plan, cut.target);
    let mut tracker = Tracker::new(cut.target.kind, 0.0, gone, &apps, before, cut.expect_back);
    for (t, probe) in &after {
        tracker.observe(*t, probe);
    }
    Some(tracker)
}

/// Whether a node of the step's intent is known not to have been terminated.
fn survived(s: &StepRun, node: &str) -> bool {
    let by_outcome = s
        .outcomes
        .iter()
        .any(|o| o.node == node && o.outcome != NodeOutcome::Terminated);
    let by_resume = s
        .reconciled
        .iter()
        .any(|r| r.node == node && r.found == Found::Running);
    by_outcome || by_resume
}

/// One application's samples from `t0` until `end`, in seconds after `t0`.
fn window(rows: &[SampleRow], app: &str, t0: SystemTime, end: Option<SystemTime>) -> Vec<Sample> {
    rows.iter()
        .filter(|r| r.application == app && r.at >= t0 && end.is_none_or(|e| r.at < e))
        .map(|r| Sample {
            t: secs_between(t0, r.at),
            lag_s: r.lag_s,
            lag_messages: None,
        })
        .collect()
}

/// One application judged on its samples (`t0` = 0) and the replayed probes; `(terminated,
/// rung)`: a step short of its rung cannot pass.
fn judge_app(
    cut: &Cut<'_>,
    name: &str,
    samples: &[Sample],
    band: Band,
    (terminated, rung): (usize, usize),
    tracker: Option<&Tracker>,
) -> (AppResult, Option<String>) {
    let observe = &cut.plan.observe;
    let app = &cut.plan.applications[name];
    let rules = super::inject::step_rules(observe, app, 0.0);
    let until = samples.last().map_or(0.0, |x| x.t);
    let j = analysis::judge_step(samples, &band, &rules, until);
    let (judged, finding) =
        super::inject::beyond_lag(tracker, (name, app), &j, (samples, 0.0), &band);
    let judged = analysis::short_of_rung(judged, terminated, rung);
    let rescheduled = tracker.and_then(|t| t.rescheduled(name));
    let result = super::inject::app_result(name, &band, &j, judged, rescheduled);
    (result, finding)
}

impl Runner<'_> {
    /// The `resumed` entry, and the earlier stop that still holds (without `--continue`):
    /// nothing more is terminated, the cut steps are judged and the report keeps the stop.
    pub(super) fn resume_from(&mut self, previous: &[Entry]) -> anyhow::Result<()> {
        self.write(&Entry::Resumed {
            at: self.now(),
            continued: self.continued,
        })?;
        let held = earlier_stop(previous, self.continued);
        self.progress.event(&match (&held, self.continued) {
            (Some(why), _) => format!(
                "resuming from the journal; the run stopped before ({why}): nothing more is \
                 terminated (--continue escalates past it)"
            ),
            (None, true) => "resuming from the journal with --continue".to_owned(),
            (None, false) => "resuming from the journal".to_owned(),
        });
        if let Some(why) = held {
            self.stop = Some(Breach::Failure(format!(
                "{why} (before this resume; --continue escalates past it)"
            )));
        }
        Ok(())
    }

    /// Every node whose intent has no outcome (the run was cut between them): where the
    /// provider's nodes outlive the run, discovery says whether it still runs; the journal
    /// keeps what was found (`reconciled`), which `max_terminations` then counts.
    pub(super) async fn reconcile(&mut self, previous: &[Entry]) -> anyhow::Result<()> {
        let open = unsettled(previous);
        let mut targets: Vec<&str> = open.iter().map(|u| u.target.as_str()).collect();
        targets.dedup();
        for name in targets {
            let running = self.still_running(name).await;
            for u in open.iter().filter(|u| u.target == name) {
                let (found, detail) = match &running {
                    Ok(ids) if ids.contains(&u.node) => (
                        Found::Running,
                        "discovered running: not terminated".to_owned(),
                    ),
                    Ok(_) => (Found::Gone, "not discovered running".to_owned()),
                    Err(why) => (Found::Unknown, why.clone()),
                };
                self.progress.event(&format!(
                    "{name} step {}: node {} had no outcome; {detail}",
                    u.step + 1,
                    u.node
                ));
                self.write(&Entry::Reconciled {
                    at: self.now(),
                    target: u.target.clone(),
                    step: u.step,
                    node: u.node.clone(),
                    found,
                    detail,
                })?;
            }
        }
        Ok(())
    }

    /// The ids discovery returns running now, or why it cannot tell.
    async fn still_running(&self, name: &str) -> Result<Vec<String>, String> {
        let Some(p) = self.providers.get(name) else {
            return Err("the target has no provider".into());
        };
        if !p.outlives_the_run() {
            return Err(format!(
                "{} nodes are started anew by each attempt: what became of it cannot be \
                 checked",
                p.name()
            ));
        }
        match p.discover().await {
            Ok(d) => Ok(d
                .nodes()
                .into_iter()
                .filter(|n| n.running)
                .map(|n| n.id)
                .collect()),
            Err(e) => Err(format!("discovery failed: {e}")),
        }
    }
}

impl Runner<'_> {
    /// Resume: a judged step stays judged; a step that reached its intent is never injected
    /// again but judged from what was sampled before the cut; a ladder that ended stays ended
    /// (unless `--continue`).
    pub(super) fn resumed(
        &mut self,
        at: At<'_>,
        previous: &[Entry],
    ) -> anyhow::Result<Option<Outcome>> {
        Ok(match prior(previous, self.continued, at.name, at.step) {
            Prior::Fresh => None,
            Prior::Judged(v) => Some(Outcome::JudgedBefore(v)),
            Prior::Rejudged(v) => Some(Outcome::Rejudged(v)),
            Prior::Ended(reason) => Some(Outcome::ends(reason)),
            Prior::Cut => Some(self.judge_cut(at, previous)?),
        })
    }

    /// A step cut between its intent and its judgment, judged from `samples.csv`.
    fn judge_cut(&mut self, at: At<'_>, previous: &[Entry]) -> anyhow::Result<Outcome> {
        let now = crate::journal::read(&self.dir)?;
        let rows = std::fs::read_to_string(self.dir.join("samples.csv"))
            .map(|text| crate::report::evidence::parse_samples(&text).0)
            .unwrap_or_default();
        let probes = std::fs::read_to_string(self.dir.join("capacity.jsonl"))
            .map(|text| capacity::read_recorded(&text))
            .unwrap_or_default();
        let cut = Cut {
            plan: self.plan,
            name: at.name,
            target: at.target,
            step: at.step,
            expect_back: self.providers[at.name].replaces() && !at.target.cumulative,
        };
        let recorded = Recorded {
            samples: &rows,
            probes: &probes,
        };
        let Some(entry) = rejudge(&cut, previous, &now, &recorded) else {
            return Ok(Outcome::skipped(
                "interrupted after its terminations; not repeated on resume",
            ));
        };
        let verdict = match &entry {
            Entry::StepJudged { verdict, .. } => *verdict,
            _ => Verdict::Inconclusive,
        };
        self.write(&entry)?;
        self.progress.event(&format!(
            "{}: cut before its judgment; judged from samples.csv: {verdict} (not repeated)",
            at.label()
        ));
        Ok(Outcome::Rejudged(verdict))
    }
}
