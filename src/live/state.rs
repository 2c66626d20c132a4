//! What the dashboard shows, built only from what a run directory says: journal entries, lag
//! samples, the lab's truth and capacity probes. Each `apply_*` takes one line's worth; nothing
//! here reads a file or a clock, so a recorded run renders the same every time.

use std::collections::VecDeque;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::analysis::Verdict;
use crate::journal::view::{StepPhase, StepRun, StopKind, TargetRun};
use crate::journal::{Entry, NodeOutcome, RunView};

/// Samples older than this (before the newest) are dropped: the chart shows less.
const KEEP_S: f64 = 30.0 * 60.0;

/// Seconds since the Unix epoch of an RFC 3339 time, as the run's files write them.
pub fn parse_time(text: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// Everything the dashboard knows about a run so far.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    /// The plan's name, once `run_started` is read.
    pub plan: Option<String>,
    pub started_at: Option<f64>,
    pub lab: bool,
    pub targets: Vec<TargetView>,
    /// Per application, in the order they appear (baseline, then samples).
    pub apps: IndexMap<String, AppView>,
    /// The timeline, sorted by time.
    pub events: Vec<TimelineEvent>,
    /// Per target, the last capacity probe.
    pub capacity: IndexMap<String, CapacityView>,
    /// Why escalation stopped (a guard, Ctrl-C or the abort key, a failing provider).
    pub stopped: Option<String>,
    pub finished: Option<Finished>,
    /// The newest time any line mentioned: "now" for a recorded run.
    pub latest: f64,
    /// Lines that could not be read (a format from another version): counted, not fatal.
    pub unreadable: usize,
    /// Lag samples read so far: the newest sample's [`Point::seq`].
    pub samples_read: u64,
    /// The journal's reading, folded entry by entry; the fields above project it.
    run: RunView,
}

/// A target and its ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetView {
    pub name: String,
    pub kind: String,
    pub provider: String,
    pub required_tolerance: u32,
    pub applications: Vec<String>,
    pub steps: Vec<StepView>,
}

/// Where a ladder step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Pending,
    /// Started: nodes chosen, terminations under way.
    Injecting,
    /// Terminated; lag is watched until recovery or the timeout.
    Observing,
    Passed,
    Failed,
    Inconclusive,
    Skipped,
}

impl StepState {
    pub fn label(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Injecting => "injecting",
            StepState::Observing => "observing",
            StepState::Passed => "passed",
            StepState::Failed => "failed",
            StepState::Inconclusive => "inconclusive",
            StepState::Skipped => "skipped",
        }
    }
}

impl StepState {
    /// The verdict of a judged step.
    pub fn verdict(self) -> Option<Verdict> {
        match self {
            StepState::Passed => Some(Verdict::Pass),
            StepState::Failed => Some(Verdict::Fail),
            StepState::Inconclusive => Some(Verdict::Inconclusive),
            _ => None,
        }
    }
}

impl TargetView {
    /// The tolerance the steps judged so far give, in the report's words: `N` once a step
    /// with more terminations failed, `≥ N` otherwise (the limit is above what passed); `None`
    /// before the first verdict.
    pub fn tolerance_so_far(&self) -> Option<String> {
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| (s.terminations, s.state.verdict()))
            .collect();
        steps.iter().any(|s| s.1.is_some()).then_some(())?;
        let t = crate::analysis::tolerance(&steps);
        let exact = t
            .first_failure
            .is_some_and(|i| steps[i].1 == Some(Verdict::Fail));
        Some(match exact {
            true => t.tolerated.to_string(),
            false => format!("≥ {}", t.tolerated),
        })
    }
}

/// One rung of a target's ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct StepView {
    pub terminations: u32,
    pub state: StepState,
    pub started_at: Option<f64>,
    pub injected_at: Option<f64>,
    pub judged_at: Option<f64>,
    /// Capacity came back this long after the injection.
    pub capacity_after_s: Option<f64>,
    /// Why it was skipped, or the first failing application's reason.
    pub note: Option<String>,
}

/// One application's lag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppView {
    pub group: String,
    /// The target whose ladder judges it.
    pub target: Option<String>,
    pub band: Option<BandView>,
    pub samples: VecDeque<Point>,
    /// Its verdict in each judged step: (step index, terminations, verdict, reason).
    pub results: Vec<(usize, u32, Verdict, String)>,
}

impl AppView {
    /// The newest sample with a lag value.
    pub fn current(&self) -> Option<&Point> {
        self.samples.back()
    }

    /// The verdict so far: the worst of its judged steps; `None` before any.
    pub fn verdict_so_far(&self) -> Option<Verdict> {
        (!self.results.is_empty()).then(|| Verdict::combine(self.results.iter().map(|r| r.2)))
    }
}

/// The baseline band of an application.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandView {
    pub p99_s: f64,
    pub upper_s: f64,
}

/// One lag sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Its place among every sample of the run as read (1, 2, …), whatever the application:
    /// the live page resumes a stream after the last one it has.
    pub seq: u64,
    pub at: f64,
    /// `None`: not measurable (never committed, broker unreachable).
    pub lag_s: Option<f64>,
    pub lag_messages: Option<u64>,
}

/// How an event is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    /// Something was done to the cluster (terminations, notices).
    Inject,
    /// The cluster healed a bit (re-placed, joined, recovered, passed).
    Good,
    /// Something went wrong (failed, guard, abort).
    Bad,
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEvent {
    pub at: f64,
    pub tone: Tone,
    pub text: String,
}

/// A target's capacity from its last health probe.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityView {
    pub at: f64,
    /// One line: nodes, slots or tasks.
    pub summary: Option<String>,
    pub error: Option<String>,
}

/// The run's end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finished {
    pub at: f64,
    pub verdict: Verdict,
    pub exit_code: crate::exit::ExitCode,
}

/// A line of `lab-truth.jsonl` (only the fields shown).
#[derive(Debug, Deserialize)]
struct Truth {
    at: String,
    cluster: String,
    event: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    peak_lag_s: Option<f64>,
}

/// A line of `capacity.jsonl`.
#[derive(Debug, Deserialize)]
struct Probe {
    at: String,
    target: String,
    #[serde(default)]
    capacity: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

impl LiveState {
    fn seen(&mut self, at: f64) {
        if at > self.latest {
            self.latest = at;
        }
    }

    fn event(&mut self, at: f64, tone: Tone, text: String) {
        self.seen(at);
        let i = self.events.partition_point(|e| e.at <= at);
        self.events.insert(i, TimelineEvent { at, tone, text });
    }

    fn step_label(&self, target: &str, step: usize) -> String {
        let of = self
            .targets
            .iter()
            .find(|t| t.name == target)
            .map(|t| t.steps.len())
            .unwrap_or(0);
        if of > 0 {
            format!("{target} step {}/{of}", step + 1)
        } else {
            format!("{target} step {}", step + 1)
        }
    }

    /// The zero of "time since injection" for a moment: the latest injection at or before it,
    /// unless a newer step had started by then and not injected yet (its notice, its
    /// terminations under way): those moments have no injection to count from.
    pub fn injection_before(&self, at: f64) -> Option<f64> {
        let latest = |f: fn(&StepView) -> Option<f64>| {
            self.targets
                .iter()
                .flat_map(|t| t.steps.iter())
                .filter_map(f)
                .filter(|&x| x <= at + 1e-6)
                .fold(None, |best: Option<f64>, x| {
                    Some(best.map_or(x, |b| b.max(x)))
                })
        };
        let injected = latest(|s| s.injected_at)?;
        match latest(|s| s.started_at) {
            Some(started) if started > injected => None,
            _ => Some(injected),
        }
    }

    /// Whether any step was injected at or before `at`.
    fn injected_by(&self, at: f64) -> bool {
        self.targets
            .iter()
            .flat_map(|t| t.steps.iter())
            .any(|s| s.injected_at.is_some_and(|i| i <= at + 1e-6))
    }

    /// The step being observed now, if any: (target, step index).
    pub fn active_step(&self) -> Option<(&TargetView, usize)> {
        self.targets.iter().find_map(|t| {
            t.steps
                .iter()
                .position(|s| matches!(s.state, StepState::Injecting | StepState::Observing))
                .map(|i| (t, i))
        })
    }

    /// Where the run is, in a few words: finished, stopped, waiting for the operator (when
    /// `waiting`), the step being observed, the baseline or a cooldown. Empty before it starts.
    pub fn phase(&self, waiting: bool) -> String {
        match (&self.finished, &self.stopped) {
            (Some(f), _) => format!("finished: {}", f.verdict),
            (None, Some(_)) => "escalation stopped".to_owned(),
            (None, None) if waiting => "waiting for the operator".to_owned(),
            (None, None) => match self.active_step() {
                Some((t, i)) => format!("{} step {}/{}", t.name, i + 1, t.steps.len()),
                None if self.plan.is_none() => String::new(),
                None if self.apps.values().all(|a| a.band.is_none()) => "baseline".to_owned(),
                None => "cooldown".to_owned(),
            },
        }
    }

    /// The journal as read so far.
    pub fn run(&self) -> &RunView {
        &self.run
    }

    /// Take in one journal entry: the run's reading of it, then what the dashboard shows.
    pub fn apply_entry(&mut self, entry: &Entry) {
        self.run.apply(entry);
        self.project();
        self.timeline(entry);
    }

    /// The run, its targets and its applications' bands and results, from the journal's reading.
    fn project(&mut self) {
        let run = &self.run;
        self.plan = run.meta.started.then(|| run.meta.plan.clone());
        if let Some(at) = &run.meta.started_at {
            self.started_at = parse_time(at).or(self.started_at).or(Some(self.latest));
        }
        self.lab = run.meta.lab;
        self.targets = run.targets.iter().map(target_view).collect();
        self.stopped = run.effective_stop().map(|s| stop_text(&s.kind));
        let before = self.finished.map(|f| f.at);
        self.finished = run.finished_now().map(|f| Finished {
            at: parse_time(&f.at).or(before).unwrap_or(self.latest),
            verdict: f.verdict,
            exit_code: f.exit_code,
        });
        self.project_apps();
    }

    /// Per application its target, band and results; the map keeps the order of first mention.
    fn project_apps(&mut self) {
        let run = &self.run;
        for t in &run.targets {
            for a in &t.info.applications {
                self.apps.entry(a.clone()).or_default().target = Some(t.info.name.clone());
            }
        }
        for b in &run.baseline {
            let app = self.apps.entry(b.name.clone()).or_default();
            app.group.clone_from(&b.group);
            app.band = Some(BandView {
                p99_s: b.p99_s,
                upper_s: b.upper_s,
            });
        }
        for app in self.apps.values_mut() {
            app.results.clear();
        }
        for t in &run.targets {
            for (i, s) in t.steps.iter().enumerate() {
                let Some(j) = &s.judgment else { continue };
                for a in &j.applications {
                    let app = self.apps.entry(a.name.clone()).or_default();
                    app.results
                        .push((i, j.terminations, a.verdict, a.reason.clone()));
                }
            }
        }
    }

    /// The timeline's lines for one entry.
    fn timeline(&mut self, entry: &Entry) {
        match entry {
            Entry::RunStarted { .. }
            | Entry::Resumed { .. }
            | Entry::Baseline { .. }
            | Entry::RunFinished { .. } => self.run_event(entry),
            Entry::StepStarted { .. }
            | Entry::Injected { .. }
            | Entry::CapacityRestored { .. }
            | Entry::StepSkipped { .. } => self.step_event(entry),
            Entry::Intent { .. } => self.notice_event(entry),
            Entry::Outcome { .. } | Entry::ProviderEvent { .. } => self.provider_event(entry),
            Entry::Fleet { .. } | Entry::Reconciled { .. } => {}
            Entry::StepJudged { .. } => self.judged_events(entry),
            Entry::GuardBreached { .. } | Entry::Aborted { .. } | Entry::Interrupted { .. } => {
                self.stop_event();
            }
        }
    }

    fn run_event(&mut self, entry: &Entry) {
        match entry {
            Entry::RunStarted { at, plan, .. } => {
                let at = parse_time(at).unwrap_or(self.latest);
                self.event(at, Tone::Info, format!("run started: {plan}"));
            }
            Entry::Resumed { at, continued } => {
                if let Some(at) = parse_time(at) {
                    let text = match continued {
                        true => "resumed from the journal, with --continue",
                        false => "resumed from the journal",
                    };
                    self.event(at, Tone::Info, text.into());
                }
            }
            Entry::Baseline { at, .. } => {
                if let Some(at) = parse_time(at) {
                    self.event(at, Tone::Info, "baseline measured".into());
                }
            }
            Entry::RunFinished {
                at,
                verdict,
                exit_code,
                ..
            } => {
                let t = parse_time(at).unwrap_or(self.latest);
                let tone = if *exit_code == crate::exit::ExitCode::Success {
                    Tone::Good
                } else {
                    Tone::Bad
                };
                let text = format!("run finished: verdict {verdict}, exit code {exit_code}");
                self.event(t, tone, text);
            }
            _ => {}
        }
    }

    fn step_event(&mut self, entry: &Entry) {
        match entry {
            Entry::StepStarted {
                at,
                target,
                step,
                terminations,
                ..
            } => {
                if let Some(t) = parse_time(at) {
                    let label = self.step_label(target, *step);
                    let s = if *terminations == 1 { "" } else { "s" };
                    let text = format!("{label}: terminating {terminations} node{s}");
                    self.event(t, Tone::Inject, text);
                }
            }
            Entry::Injected { at, .. } => {
                if let Some(t) = parse_time(at) {
                    self.seen(t);
                }
            }
            Entry::CapacityRestored { at, target, .. } => {
                if let Some(t) = parse_time(at) {
                    self.event(t, Tone::Good, format!("{target}: capacity back"));
                }
            }
            Entry::StepSkipped {
                at,
                target,
                step,
                reason,
                ..
            } => {
                if let Some(t) = parse_time(at) {
                    let label = self.step_label(target, *step);
                    self.event(t, Tone::Info, format!("{label} skipped: {reason}"));
                }
            }
            _ => {}
        }
    }

    /// The interruption notice an intent announces, when it has one.
    fn notice_event(&mut self, entry: &Entry) {
        let Entry::Intent {
            at,
            target,
            provider,
            notice_s,
            ..
        } = entry
        else {
            return;
        };
        let Some(t) = parse_time(at).filter(|_| *notice_s > 0.0) else {
            return;
        };
        let notice = crate::analysis::fmt_secs(*notice_s);
        let text = match provider.as_str() {
            "aws-fis" => format!(
                "{target}: FIS sends the rebalance recommendation and the interruption notice; termination in {notice}"
            ),
            "lab" => format!("{target}: interruption notice (SIGTERM); termination in {notice}"),
            _ => format!("{target}: interruption notice; termination in {notice}"),
        };
        self.event(t, Tone::Inject, text);
    }

    fn provider_event(&mut self, entry: &Entry) {
        match entry {
            Entry::Outcome {
                at,
                target,
                node,
                outcome,
                detail,
                ..
            } => {
                if let Some(t) = parse_time(at) {
                    let (tone, what) = match outcome {
                        NodeOutcome::Terminated => (Tone::Inject, "terminated"),
                        NodeOutcome::AlreadyGone => (Tone::Info, "already gone"),
                        NodeOutcome::Refused => (Tone::Bad, "refused"),
                        NodeOutcome::Error => (Tone::Bad, "error"),
                    };
                    let detail = detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    self.event(t, tone, format!("{target}: {node} {what}{detail}"));
                }
            }
            Entry::ProviderEvent {
                at,
                target,
                detail,
                kind,
                ..
            } => {
                if let Some(t) = parse_time(at) {
                    let what = kind.replace('_', " ");
                    self.event(t, Tone::Inject, format!("{target}: {what}: {detail}"));
                }
            }
            _ => {}
        }
    }

    /// A judgment's lines: each application whole again and recovered (at the injection plus
    /// its times), the verdict and the scheduler's findings.
    fn judged_events(&mut self, entry: &Entry) {
        let Entry::StepJudged {
            at,
            target,
            step,
            injected_at,
            verdict,
            applications,
            findings,
            ..
        } = entry
        else {
            return;
        };
        if let Some(i) = injected_at.as_deref().and_then(parse_time) {
            for a in applications {
                if let Some(r) = a.rescheduled_s {
                    let text = format!("{} whole again (scheduler)", a.name);
                    self.event(i + r, Tone::Good, text);
                }
                if let Some(r) = a.recovery_s {
                    self.event(i + r, Tone::Good, format!("{} recovered", a.name));
                }
            }
        }
        let Some(t) = parse_time(at) else {
            return;
        };
        let label = self.step_label(target, *step);
        let tone = if *verdict == Verdict::Pass {
            Tone::Good
        } else {
            Tone::Bad
        };
        self.event(t, tone, format!("{label} judged: {verdict}"));
        for f in findings {
            self.event(t, Tone::Info, format!("{target}: {f}"));
        }
    }

    /// The stop just read, on the timeline.
    fn stop_event(&mut self) {
        let Some(stop) = self.run.stops.last() else {
            return;
        };
        let text = match &stop.kind {
            StopKind::Aborted { reason } => format!("escalation stopped: {reason}"),
            kind => stop_text(kind),
        };
        if let Some(t) = parse_time(&stop.at) {
            self.event(t, Tone::Bad, text);
        }
    }

    /// Take in one journal line; false when it is not an entry.
    pub fn apply_journal_line(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => {
                self.apply_entry(&e);
                true
            }
            Err(_) => {
                self.unreadable += 1;
                false
            }
        }
    }

    /// Take in one line of `samples.csv` (the header is skipped).
    pub fn apply_sample_line(&mut self, line: &str) -> bool {
        let cols: Vec<&str> = line.trim_end().split(',').collect();
        if cols.first() == Some(&"at") {
            return true;
        }
        let [at, _t, app, group, status, lag_s, msgs] = cols.as_slice() else {
            self.unreadable += 1;
            return false;
        };
        let Some(at) = parse_time(at) else {
            self.unreadable += 1;
            return false;
        };
        let lag_s = if *status == "ok" {
            lag_s.parse::<f64>().ok().filter(|l| l.is_finite())
        } else {
            None
        };
        self.seen(at);
        self.samples_read += 1;
        let view = self.apps.entry((*app).to_owned()).or_default();
        if view.group.is_empty() {
            (*group).clone_into(&mut view.group);
        }
        view.samples.push_back(Point {
            seq: self.samples_read,
            at,
            lag_s,
            lag_messages: msgs.parse().ok(),
        });
        while view.samples.front().is_some_and(|p| p.at < at - KEEP_S) {
            view.samples.pop_front();
        }
        true
    }

    /// Take in one line of `lab-truth.jsonl`. Start-up placements are not news: only what
    /// follows an injection is put on the timeline.
    pub fn apply_truth_line(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        let Ok(t) = serde_json::from_str::<Truth>(line) else {
            self.unreadable += 1;
            return false;
        };
        let Some(at) = parse_time(&t.at) else {
            self.unreadable += 1;
            return false;
        };
        let after_injection = self.injected_by(at);
        let c = &t.cluster;
        let node = t.node.as_deref().unwrap_or("?");
        let text = match t.event.as_str() {
            "node_killed" => Some((Tone::Inject, format!("{c}: {node} died"))),
            "node_lost_detected" => Some((Tone::Bad, format!("{c}: {node} detected dead"))),
            "worker_placed" if after_injection => Some((
                Tone::Good,
                format!(
                    "{c}: {} re-placed on {node}",
                    t.worker.as_deref().unwrap_or("a worker")
                ),
            )),
            "node_joined" if after_injection => {
                Some((Tone::Good, format!("{c}: replacement {node} joined")))
            }
            "backlog_drained" => Some((
                Tone::Good,
                format!(
                    "{c}: {} backlog drained{}",
                    t.workload.as_deref().unwrap_or("a workload"),
                    t.peak_lag_s
                        .map(|p| format!(" (peak {p:.1} s)"))
                        .unwrap_or_default()
                ),
            )),
            _ => None,
        };
        match text {
            Some((tone, text)) => self.event(at, tone, text),
            None => self.seen(at),
        }
        true
    }

    /// Take in one line of `capacity.jsonl`.
    pub fn apply_capacity_line(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        let Ok(p) = serde_json::from_str::<Probe>(line) else {
            self.unreadable += 1;
            return false;
        };
        let Some(at) = parse_time(&p.at) else {
            self.unreadable += 1;
            return false;
        };
        self.seen(at);
        let summary = p.capacity.as_ref().map(capacity_summary);
        self.capacity.insert(
            p.target,
            CapacityView {
                at,
                summary,
                error: p.error,
            },
        );
        true
    }
}

/// Why escalation stopped, in the dashboard's words.
fn stop_text(kind: &StopKind) -> String {
    match kind {
        StopKind::Guard {
            target,
            guard,
            detail,
        } => format!("guard {guard} of {target}: {detail}"),
        StopKind::Aborted { reason } => reason.clone(),
        StopKind::Interrupted { hard: true } => "interrupted twice: the run ended at once".into(),
        StopKind::Interrupted { hard: false } => "interrupted: no more terminations".into(),
    }
}

fn target_view(t: &TargetRun) -> TargetView {
    let info = &t.info;
    TargetView {
        name: info.name.clone(),
        kind: info.kind.clone(),
        provider: info.provider.clone(),
        required_tolerance: info.required_tolerance,
        applications: info.applications.clone(),
        steps: t.steps.iter().map(step_view).collect(),
    }
}

fn step_view(s: &StepRun) -> StepView {
    let judgment = s.judgment.as_ref();
    StepView {
        terminations: s.terminations,
        state: step_state(s),
        started_at: s.started_at.as_deref().and_then(parse_time),
        // The injected entry's time, else the judgment's record of it.
        injected_at: s
            .injected_at
            .as_deref()
            .or_else(|| judgment.and_then(|j| j.injected_at.as_deref()))
            .and_then(parse_time),
        judged_at: judgment.and_then(|j| parse_time(&j.at)),
        capacity_after_s: s.capacity_restored_s,
        note: step_note(s),
    }
}

fn step_state(s: &StepRun) -> StepState {
    match (&s.phase, s.verdict()) {
        (StepPhase::Pending, _) => StepState::Pending,
        (StepPhase::Started | StepPhase::Injecting, _) => StepState::Injecting,
        (StepPhase::Observing, _) => StepState::Observing,
        (StepPhase::Skipped(_), _) => StepState::Skipped,
        (StepPhase::Judged, Some(Verdict::Pass)) => StepState::Passed,
        (StepPhase::Judged, Some(Verdict::Fail)) => StepState::Failed,
        (StepPhase::Judged, _) => StepState::Inconclusive,
    }
}

/// Why a step was skipped, or its first failing application's reason.
fn step_note(s: &StepRun) -> Option<String> {
    match (&s.phase, &s.judgment) {
        (StepPhase::Skipped(reason), _) => Some(reason.clone()),
        (StepPhase::Judged, Some(j)) => j
            .applications
            .iter()
            .find(|a| a.verdict != Verdict::Pass)
            .map(|a| format!("{}: {}", a.name, a.reason)),
        _ => None,
    }
}

/// One line for a capacity object: Storm supervisors and slots, Mesos agents and tasks.
fn capacity_summary(c: &serde_json::Value) -> String {
    let n = |k: &str| c.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    match c.get("kind").and_then(|k| k.as_str()) {
        Some("storm") => {
            let on_dead: u64 = c
                .get("topologies")
                .and_then(|t| t.as_array())
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| t.get("workers_on_dead_supervisors")?.as_u64())
                        .sum()
                })
                .unwrap_or(0);
            let mut s = format!(
                "{} supervisors · slots {}/{} used",
                n("supervisors_alive"),
                n("slots_used"),
                n("slots_total"),
            );
            if on_dead > 0 {
                s.push_str(&format!(" · {on_dead} on dead nodes"));
            }
            s
        }
        Some("mesos") => {
            let (mut running, mut wanted) = (0, 0);
            if let Some(apps) = c.get("apps").and_then(|a| a.as_array()) {
                for a in apps {
                    running += a.get("tasks_running").and_then(|v| v.as_u64()).unwrap_or(0);
                    wanted += a.get("instances").and_then(|v| v.as_u64()).unwrap_or(0);
                }
            }
            let mut s = format!(
                "{} agents · tasks {running}/{wanted} running",
                n("agents_active")
            );
            let unreachable = n("agents_unreachable") + n("agents_inactive");
            if unreachable > 0 {
                s.push_str(&format!(" · {unreachable} agents lost"));
            }
            s
        }
        Some("kubernetes") => {
            let sum = |k: &str| -> u64 {
                c.get("workloads")
                    .and_then(|w| w.as_array())
                    .map(|ws| ws.iter().filter_map(|w| w.get(k)?.as_u64()).sum())
                    .unwrap_or(0)
            };
            let mut s = format!(
                "{} nodes Ready · pods {}/{} ready",
                n("nodes_ready"),
                sum("ready"),
                sum("desired")
            );
            for (k, what) in [("pending", "Pending"), ("on_lost_nodes", "on lost nodes")] {
                if sum(k) > 0 {
                    s.push_str(&format!(" · {} {what}", sum(k)));
                }
            }
            s
        }
        _ => "capacity reported".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_goes_from_pending_to_passed() {
        let mut s = LiveState::default();
        for line in [
            r#"{"event":"run_started","at":"2026-11-26T03:26:36.491Z","plan":"p","plan_path":"p.yaml","plan_digest":"0","version":"0.1.0","targets":[{"name":"t","kind":"storm","provider":"lab","required_tolerance":1,"ladder":[1,2],"cumulative":false,"safety_multiple":3.0,"applications":["a"]}],"lab":true}"#,
            r#"{"event":"step_started","at":"2026-11-26T03:26:44.003Z","target":"t","step":0,"terminations":1}"#,
        ] {
            assert!(s.apply_journal_line(line));
        }
        assert_eq!(s.targets[0].steps[0].state, StepState::Injecting);
        assert_eq!(s.targets[0].steps[1].state, StepState::Pending);
        s.apply_journal_line(
            r#"{"event":"injected","at":"2026-11-26T03:26:44.005Z","target":"t","step":0}"#,
        );
        assert_eq!(s.targets[0].steps[0].state, StepState::Observing);
        assert_eq!(
            s.active_step().map(|(t, i)| (t.name.as_str(), i)),
            Some(("t", 0))
        );
        s.apply_journal_line(r#"{"event":"step_judged","at":"2026-11-26T03:26:49.503Z","target":"t","step":0,"terminations":1,"nodes":["n"],"injected_at":"2026-11-26T03:26:44.005Z","verdict":"pass","capacity_restored_s":null,"applications":[{"name":"a","baseline_lag_s":1.0,"band_upper_s":3.0,"spike_lag_s":2.5,"time_to_peak_s":2.0,"recovery_s":2.0,"verdict":"pass","reason":"ok"}]}"#);
        assert_eq!(s.targets[0].steps[0].state, StepState::Passed);
        assert_eq!(s.apps["a"].verdict_so_far(), Some(Verdict::Pass));
        assert!(s.active_step().is_none());
        let recovered = s
            .events
            .iter()
            .find(|e| e.text.contains("a recovered"))
            .expect("a recovery event");
        // At the injection plus its recovery time, before the judgement.
        assert!((recovered.at - parse_time("2026-11-26T03:26:46.005Z").unwrap()).abs() < 1e-3);
    }

    /// The dashboards say the tolerance as the report will: a floor while nothing failed, the
    /// limit once a larger step failed, nothing before a verdict.
    #[test]
    fn the_tolerance_so_far_is_a_bound_until_a_step_fails() {
        let step = |terminations, state| StepView {
            terminations,
            state,
            started_at: None,
            injected_at: None,
            judged_at: None,
            capacity_after_s: None,
            note: None,
        };
        let target = |steps| TargetView {
            name: "t".into(),
            kind: "storm".into(),
            provider: "lab".into(),
            required_tolerance: 1,
            applications: Vec::new(),
            steps,
        };
        use StepState::*;
        let cases = [
            (vec![step(1, Observing), step(2, Pending)], None),
            (vec![step(1, Passed), step(2, Pending)], Some("≥ 1")),
            (vec![step(1, Passed), step(2, Passed)], Some("≥ 2")),
            (vec![step(1, Passed), step(2, Inconclusive)], Some("≥ 1")),
            (
                vec![step(1, Passed), step(2, Failed), step(3, Pending)],
                Some("1"),
            ),
            (vec![step(1, Failed)], Some("0")),
        ];
        for (steps, want) in cases {
            let t = target(steps);
            assert_eq!(t.tolerance_so_far().as_deref(), want, "{:?}", t.steps);
        }
    }

    #[test]
    fn a_resumed_run_is_not_finished_by_its_earlier_attempt() {
        let mut s = LiveState::default();
        s.apply_journal_line(r#"{"event":"interrupted","at":"2026-11-26T03:26:50Z","hard":false}"#);
        s.apply_journal_line(r#"{"event":"run_finished","at":"2026-11-26T03:26:51Z","verdict":"fail","exit_code":3}"#);
        assert_eq!(
            s.finished.map(|f| f.exit_code),
            Some(crate::exit::ExitCode::Aborted)
        );
        assert!(s.stopped.is_some());
        // A resume without --continue keeps the earlier stop (a stopped run stays stopped)…
        s.apply_journal_line(r#"{"event":"resumed","at":"2026-11-26T03:30:00Z"}"#);
        assert_eq!(s.finished, None);
        assert!(s.stopped.is_some());
        // … one with --continue escalates past it.
        s.apply_journal_line(r#"{"event":"resumed","at":"2026-11-26T03:31:00Z","continued":true}"#);
        assert_eq!(s.stopped, None);
    }

    #[test]
    fn a_skipped_step_and_a_guard_show_their_reasons() {
        let mut s = LiveState::default();
        for line in [
            r#"{"event":"run_started","at":"2026-11-26T03:26:36.491Z","plan":"p","plan_path":"p.yaml","plan_digest":"0","version":"0.1.0","targets":[{"name":"t","kind":"storm","provider":"lab","required_tolerance":1,"ladder":[1,2],"cumulative":false,"safety_multiple":3.0,"applications":["a"]}],"lab":true}"#,
            r#"{"event":"guard_breached","at":"2026-11-26T03:26:40Z","target":"t","guard":"abort_lag","detail":"lag 700 s"}"#,
            r#"{"event":"step_skipped","at":"2026-11-26T03:26:41Z","target":"t","step":0,"terminations":1,"reason":"escalation stopped"}"#,
        ] {
            assert!(s.apply_journal_line(line));
        }
        assert_eq!(s.targets[0].steps[0].state, StepState::Skipped);
        assert_eq!(
            s.targets[0].steps[0].note.as_deref(),
            Some("escalation stopped")
        );
        assert_eq!(
            s.stopped.as_deref(),
            Some("guard abort_lag of t: lag 700 s")
        );
        let texts: Vec<&str> = s.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "run started: p",
                "guard abort_lag of t: lag 700 s",
                "t step 1/2 skipped: escalation stopped"
            ]
        );
        assert_eq!(s.run().stops.len(), 1);
    }

    #[test]
    fn samples_and_capacity_lines_are_read() {
        let mut s = LiveState::default();
        assert!(s.apply_sample_line("at,t_s,application,group,status,lag_seconds,lag_messages"));
        assert!(s.apply_sample_line("2026-11-26T03:26:40.000Z,3.5,a,g,ok,2.500,40"));
        assert!(s.apply_sample_line("2026-11-26T03:26:40.500Z,4.0,a,g,missing,,"));
        assert!(!s.apply_sample_line("garbage"));
        let a = &s.apps["a"];
        assert_eq!(a.samples.len(), 2);
        assert_eq!(a.samples[0].lag_s, Some(2.5));
        assert_eq!(a.samples[0].lag_messages, Some(40));
        assert_eq!(a.samples[1].lag_s, None);
        assert_eq!(s.unreadable, 1);
        assert!(s.apply_capacity_line(r#"{"at":"2026-11-26T03:26:41Z","t_s":4.0,"target":"storm-lab","capacity":{"kind":"storm","supervisors_alive":5,"supervisor_hosts":[],"slots_total":10,"slots_used":8,"slots_free":2,"topologies":[{"workers_on_dead_supervisors":1}]},"error":null}"#));
        assert!(s.apply_capacity_line(r#"{"at":"2026-11-26T03:26:41Z","t_s":4.0,"target":"mesos-lab","capacity":null,"error":"connection refused"}"#));
        assert_eq!(
            s.capacity["storm-lab"].summary.as_deref(),
            Some("5 supervisors · slots 8/10 used · 1 on dead nodes")
        );
        assert_eq!(
            s.capacity["mesos-lab"].error.as_deref(),
            Some("connection refused")
        );
    }
}
