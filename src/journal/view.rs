//! One reading of the journal: a [`RunView`] folds its entries one by one into what every reader
//! of a run needs (the report, the live dashboard, the HTML charts), so the journal is
//! interpreted in one place. It holds what the journal says and nothing derived from elsewhere
//! (no samples, no clock); readers add their own conclusions on top.

use crate::analysis::Verdict;
use crate::journal::{
    AppResult, BaselineApp, Entry, Found, NodeOutcome, NodeRef, StepCapacity, TargetInfo,
};

/// A run as its journal tells it so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunView {
    pub meta: RunMeta,
    /// The targets in the order they run, with their ladders.
    pub targets: Vec<TargetRun>,
    /// Per application its band from the latest baseline, in the order first measured.
    pub baseline: Vec<BaselineApp>,
    /// Each `resumed` entry in order; attempt `n` (0 = the first) starts at `resumes[n - 1]`.
    pub resumes: Vec<Resume>,
    /// Every guard breach, abort and interrupt, each with the attempt it stopped.
    pub stops: Vec<Stop>,
    /// Outcomes naming a step the run does not have (a damaged journal), kept for the notes.
    pub stray_outcomes: Vec<StrayOutcome>,
    /// How many entries were applied: the position (`seq`) the next one gets.
    pub applied: usize,
}

/// What the run says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMeta {
    /// Whether a `run_started` entry was read.
    pub started: bool,
    /// The plan's name and path, and the spotdrill version, as the last `run_started` wrote them.
    pub plan: String,
    pub plan_path: String,
    pub version: String,
    pub lab: bool,
    /// When the run first started (RFC 3339).
    pub started_at: Option<String>,
    /// The last `run_finished`, of whichever attempt wrote it.
    pub finished: Option<Finish>,
}

/// A `run_finished` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Finish {
    pub at: String,
    pub verdict: Verdict,
    pub exit_code: crate::exit::ExitCode,
    pub wall_s: Option<f64>,
    pub cpu_s: Option<f64>,
    /// The attempt it ended (0 = the first, 1 after one resume, …).
    pub attempt: usize,
}

/// A `resumed` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    pub at: String,
    /// Its position in the journal (entries before it).
    pub seq: usize,
    /// `--continue`: escalation went on past the earlier attempts' stops.
    pub continued: bool,
}

/// Why escalation stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum StopKind {
    Guard {
        target: String,
        guard: String,
        detail: String,
    },
    Aborted {
        reason: String,
    },
    /// Ctrl-C or the dashboard's abort key; `hard`: the second one, the run ended at once.
    Interrupted {
        hard: bool,
    },
}

/// One stop of escalation.
#[derive(Clone, Debug, PartialEq)]
pub struct Stop {
    pub at: String,
    pub kind: StopKind,
    /// The attempt it stopped.
    pub attempt: usize,
}

/// A target and its ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRun {
    pub info: TargetInfo,
    /// One per rung of the ladder, in order.
    pub steps: Vec<StepRun>,
}

/// Where a step is, by the last entry about it.
#[derive(Clone, Debug, PartialEq)]
pub enum StepPhase {
    Pending,
    /// `step_started`: nodes chosen.
    Started,
    /// The intent is on disk: terminations under way (or interrupted during them).
    Injecting,
    /// Injected: lag is watched until recovery or the timeout (or interrupted meanwhile).
    Observing,
    Judged,
    /// Not run, and why.
    Skipped(String),
}

/// One rung of a target's ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRun {
    /// The step's terminations (a market rung's: 0 until its step resolved it).
    pub terminations: u32,
    /// The step is a market rung (`{market: largest}`).
    pub market_rung: bool,
    /// The market a market rung resolved to, once its step started (or was refused).
    pub market: Option<super::MarketRef>,
    pub phase: StepPhase,
    pub started_at: Option<String>,
    /// The running, eligible nodes the step chose from, as `step_started` says.
    pub nodes_alive: Option<u32>,
    pub intent: Option<Intent>,
    /// Per node the provider's outcome, in the order written.
    pub outcomes: Vec<NodeResult>,
    /// Nodes of the intent that had no outcome, as a resume found them.
    pub reconciled: Vec<Reconciliation>,
    /// The `injected` entry's time.
    pub injected_at: Option<String>,
    /// The step's judgment; it stays when a later entry moves the phase on.
    pub judgment: Option<Judgment>,
    /// Seconds from the injection until capacity was back: the latest `capacity_restored`, or
    /// the judgment's when it has one.
    pub capacity_restored_s: Option<f64>,
    /// What the provider found while terminating, in words (how long a PodDisruptionBudget
    /// held an eviction back), in journal order.
    pub provider_findings: Vec<String>,
}

/// The termination intent of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub at: String,
    pub provider: String,
    pub notice_s: f64,
    pub nodes: Vec<NodeRef>,
}

/// What happened to one node of an intent.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeResult {
    pub at: String,
    pub node: String,
    pub outcome: NodeOutcome,
    pub detail: Option<String>,
    /// Its position in the journal (entries before it).
    pub seq: usize,
}

/// What a resume found of a node whose intent had no outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconciliation {
    pub node: String,
    pub found: Found,
    pub detail: String,
    /// Its position in the journal (entries before it).
    pub seq: usize,
}

/// An outcome for a step the run does not have.
#[derive(Clone, Debug, PartialEq)]
pub struct StrayOutcome {
    pub target: String,
    pub step: usize,
    pub result: NodeResult,
}

/// A `step_judged` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgment {
    pub at: String,
    pub terminations: u32,
    pub nodes: Vec<String>,
    pub injected_at: Option<String>,
    pub verdict: Verdict,
    pub applications: Vec<AppResult>,
    pub capacity: Option<StepCapacity>,
    pub findings: Vec<String>,
}

impl StepRun {
    fn pending(rung: crate::plan::Rung) -> StepRun {
        StepRun {
            terminations: rung.count().unwrap_or(0),
            market_rung: rung.count().is_none(),
            market: None,
            phase: StepPhase::Pending,
            started_at: None,
            nodes_alive: None,
            intent: None,
            outcomes: Vec::new(),
            reconciled: Vec::new(),
            injected_at: None,
            judgment: None,
            capacity_restored_s: None,
            provider_findings: Vec::new(),
        }
    }

    /// The step's verdict; `None` until it is judged.
    pub fn verdict(&self) -> Option<Verdict> {
        self.judgment.as_ref().map(|j| j.verdict)
    }

    /// The nodes it terminated: the judgment's, else the intent's.
    pub fn nodes(&self) -> Vec<String> {
        match (&self.judgment, &self.intent) {
            (Some(j), _) => j.nodes.clone(),
            (None, Some(i)) => i.nodes.iter().map(|n| n.id.clone()).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// When it was injected: the judgment's record once judged (the runner writes the
    /// `injected` entry's time into it), else the `injected` entry's.
    pub fn injected(&self) -> Option<&str> {
        match &self.judgment {
            Some(j) => j.injected_at.as_deref(),
            None => self.injected_at.as_deref(),
        }
    }
}

impl RunView {
    /// The view of a whole journal.
    pub fn from_entries(entries: &[Entry]) -> RunView {
        let mut view = RunView::default();
        for e in entries {
            view.apply(e);
        }
        view
    }

    /// The attempt under way: 0, then one more per resume.
    pub fn attempt(&self) -> usize {
        self.resumes.len()
    }

    /// What stopped escalation in this attempt (the first such entry); an earlier attempt's
    /// stop does not stop the resumed one.
    pub fn current_stop(&self) -> Option<&Stop> {
        self.stops.iter().find(|s| s.attempt == self.attempt())
    }

    /// What stopped escalation and still holds: the first stop since the last resume with
    /// `--continue` (a resume without it keeps the earlier stop: a stopped run stays stopped).
    pub fn effective_stop(&self) -> Option<&Stop> {
        let since = self
            .resumes
            .iter()
            .rposition(|r| r.continued)
            .map_or(0, |i| i + 1);
        self.stops.iter().find(|s| s.attempt >= since)
    }

    /// The run's end, if this attempt wrote it.
    pub fn finished_now(&self) -> Option<&Finish> {
        self.meta
            .finished
            .as_ref()
            .filter(|f| f.attempt == self.attempt())
    }

    pub fn target(&self, name: &str) -> Option<&TargetRun> {
        self.targets.iter().find(|t| t.info.name == name)
    }

    pub fn step(&self, target: &str, step: usize) -> Option<&StepRun> {
        self.target(target).and_then(|t| t.steps.get(step))
    }

    /// A target's step; a search's steps are added as the journal names them.
    fn step_mut(&mut self, target: &str, step: usize, n: Option<u32>) -> Option<&mut StepRun> {
        let t = self.targets.iter_mut().find(|t| t.info.name == target)?;
        if let Some(n) = n.filter(|_| t.info.search.is_some() && step == t.steps.len()) {
            t.steps.push(StepRun::pending(crate::plan::Rung::Nodes(n)));
        }
        t.steps.get_mut(step)
    }

    /// Take in one entry.
    pub fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::RunStarted { .. } => self.start(entry),
            Entry::Resumed { at, continued } => self.resumes.push(Resume {
                at: at.clone(),
                seq: self.applied,
                continued: *continued,
            }),
            // The guard's arithmetic; the report does not show it.
            Entry::Fleet { .. } => {}
            Entry::Reconciled { .. } => self.reconciled(entry),
            Entry::Baseline { applications, .. } => self.measure(applications),
            Entry::GuardBreached { .. } | Entry::Aborted { .. } | Entry::Interrupted { .. } => {
                self.stop(entry);
            }
            Entry::RunFinished {
                at,
                verdict,
                exit_code,
                wall_s,
                cpu_s,
            } => {
                self.meta.finished = Some(Finish {
                    at: at.clone(),
                    verdict: *verdict,
                    exit_code: *exit_code,
                    wall_s: *wall_s,
                    cpu_s: *cpu_s,
                    attempt: self.attempt(),
                });
            }
            Entry::Outcome { .. } => self.outcome(entry),
            // Notes for people (the dashboard shows them from the entry itself); a blocked
            // eviction's end is a finding of its step.
            Entry::ProviderEvent { .. } => self.provider_event(entry),
            Entry::StepStarted { .. }
            | Entry::Intent { .. }
            | Entry::Injected { .. }
            | Entry::StepJudged { .. }
            | Entry::CapacityRestored { .. }
            | Entry::StepSkipped { .. } => self.step_entry(entry),
        }
        self.applied += 1;
    }

    /// `run_started`: the plan's names (the last entry's), the first start time, and the
    /// targets of the first entry that names any.
    fn start(&mut self, entry: &Entry) {
        let Entry::RunStarted {
            at,
            plan,
            plan_path,
            version,
            targets,
            lab,
            ..
        } = entry
        else {
            return;
        };
        let meta = &mut self.meta;
        meta.started = true;
        meta.plan.clone_from(plan);
        meta.plan_path.clone_from(plan_path);
        meta.version.clone_from(version);
        meta.lab = *lab;
        meta.started_at.get_or_insert_with(|| at.clone());
        if self.targets.is_empty() {
            self.targets = targets
                .iter()
                .map(|t| TargetRun {
                    info: t.clone(),
                    steps: t.ladder.iter().map(|&r| StepRun::pending(r)).collect(),
                })
                .collect();
        }
    }

    fn measure(&mut self, applications: &[BaselineApp]) {
        for a in applications {
            match self.baseline.iter_mut().find(|b| b.name == a.name) {
                Some(b) => b.clone_from(a),
                None => self.baseline.push(a.clone()),
            }
        }
    }

    fn stop(&mut self, entry: &Entry) {
        let (at, kind) = match entry {
            Entry::GuardBreached {
                at,
                target,
                guard,
                detail,
            } => (
                at,
                StopKind::Guard {
                    target: target.clone(),
                    guard: guard.clone(),
                    detail: detail.clone(),
                },
            ),
            Entry::Aborted { at, reason } => (
                at,
                StopKind::Aborted {
                    reason: reason.clone(),
                },
            ),
            Entry::Interrupted { at, hard } => (at, StopKind::Interrupted { hard: *hard }),
            _ => return,
        };
        let attempt = self.attempt();
        self.stops.push(Stop {
            at: at.clone(),
            kind,
            attempt,
        });
    }

    fn outcome(&mut self, entry: &Entry) {
        let Entry::Outcome {
            at,
            target,
            step,
            node,
            outcome,
            detail,
        } = entry
        else {
            return;
        };
        let result = NodeResult {
            at: at.clone(),
            node: node.clone(),
            outcome: *outcome,
            detail: detail.clone(),
            seq: self.applied,
        };
        match self.step_mut(target, *step, None) {
            Some(s) => s.outcomes.push(result),
            None => self.stray_outcomes.push(StrayOutcome {
                target: target.clone(),
                step: *step,
                result,
            }),
        }
    }

    fn provider_event(&mut self, entry: &Entry) {
        let Entry::ProviderEvent {
            target,
            step,
            kind,
            detail,
            ..
        } = entry
        else {
            return;
        };
        if kind == super::EVICTION_BLOCK_ENDED
            && let Some(s) = self.step_mut(target, *step, None)
        {
            s.provider_findings.push(detail.clone());
        }
    }

    fn reconciled(&mut self, entry: &Entry) {
        let Entry::Reconciled {
            target,
            step,
            node,
            found,
            detail,
            ..
        } = entry
        else {
            return;
        };
        let seq = self.applied;
        if let Some(s) = self.step_mut(target, *step, None) {
            s.reconciled.push(Reconciliation {
                node: node.clone(),
                found: *found,
                detail: detail.clone(),
                seq,
            });
        }
    }

    /// The entries that move one step on; those naming a step the run does not have are
    /// left out.
    fn step_entry(&mut self, entry: &Entry) {
        let (target, step, n) = match entry {
            Entry::StepStarted {
                target,
                step,
                terminations,
                ..
            }
            | Entry::StepJudged {
                target,
                step,
                terminations,
                ..
            }
            | Entry::StepSkipped {
                target,
                step,
                terminations,
                ..
            } => (target, *step, Some(*terminations)),
            Entry::Intent { target, step, .. }
            | Entry::Injected { target, step, .. }
            | Entry::CapacityRestored { target, step, .. } => (target, *step, None),
            _ => return,
        };
        if let Some(s) = self.step_mut(target, step, n) {
            resolve(s, entry, n);
            advance(s, entry);
        }
    }
}

/// A market rung's count and market, as its step resolved them (journaled with each entry that
/// names the step's terminations; a refusal before resolving says 0 and no market).
fn resolve(s: &mut StepRun, entry: &Entry, n: Option<u32>) {
    let market = match entry {
        Entry::StepStarted { market, .. }
        | Entry::StepJudged { market, .. }
        | Entry::StepSkipped { market, .. } => market,
        _ => return,
    };
    if let (true, Some(n), Some(m)) = (s.market_rung, n, market) {
        s.terminations = n;
        s.market = Some(m.clone());
    }
}

/// Move a step on by one of its entries.
fn advance(s: &mut StepRun, entry: &Entry) {
    match entry {
        Entry::StepStarted {
            at, nodes_alive, ..
        } => {
            s.phase = StepPhase::Started;
            s.started_at = Some(at.clone());
            s.nodes_alive = *nodes_alive;
        }
        Entry::Intent {
            at,
            provider,
            notice_s,
            nodes,
            ..
        } => {
            s.phase = StepPhase::Injecting;
            s.intent = Some(Intent {
                at: at.clone(),
                provider: provider.clone(),
                notice_s: *notice_s,
                nodes: nodes.clone(),
            });
        }
        Entry::Injected { at, .. } => {
            s.phase = StepPhase::Observing;
            s.injected_at = Some(at.clone());
        }
        Entry::StepJudged { .. } => judge(s, entry),
        Entry::CapacityRestored { after_s, .. } => s.capacity_restored_s = Some(*after_s),
        Entry::StepSkipped { reason, .. } => s.phase = StepPhase::Skipped(reason.clone()),
        _ => {}
    }
}

fn judge(s: &mut StepRun, entry: &Entry) {
    let Entry::StepJudged {
        at,
        terminations,
        nodes,
        injected_at,
        verdict,
        capacity_restored_s,
        applications,
        capacity,
        findings,
        ..
    } = entry
    else {
        return;
    };
    s.phase = StepPhase::Judged;
    if capacity_restored_s.is_some() {
        s.capacity_restored_s = *capacity_restored_s;
    }
    s.judgment = Some(Judgment {
        at: at.clone(),
        terminations: *terminations,
        nodes: nodes.clone(),
        injected_at: injected_at.clone(),
        verdict: *verdict,
        applications: applications.clone(),
        capacity: capacity.clone(),
        findings: findings.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-11-26T03:26:36.491Z";

    fn started() -> Entry {
        Entry::RunStarted {
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
                ladder: [1, 2, 3].map(crate::plan::Rung::Nodes).to_vec(),
                search: None,
                cumulative: false,
                safety_multiple: 3.0,
                applications: vec!["a".into()],
            }],
            lab: true,
            aws: Vec::new(),
        }
    }

    fn node(id: &str) -> NodeRef {
        NodeRef {
            id: id.into(),
            host: id.into(),
            zone: None,
            instance_type: None,
            lifecycle: "lab".into(),
        }
    }

    fn intent(step: usize, ids: &[&str]) -> Entry {
        Entry::Intent {
            at: AT.into(),
            target: "t".into(),
            step,
            provider: "lab".into(),
            notice_s: 0.0,
            nodes: ids.iter().map(|id| node(id)).collect(),
        }
    }

    fn outcome(step: usize, id: &str, outcome: NodeOutcome) -> Entry {
        Entry::Outcome {
            at: AT.into(),
            target: "t".into(),
            step,
            node: id.into(),
            outcome,
            detail: (outcome != NodeOutcome::Terminated).then(|| "why".into()),
        }
    }

    fn judged(step: usize, verdict: Verdict) -> Entry {
        Entry::StepJudged {
            at: AT.into(),
            target: "t".into(),
            step,
            terminations: 1,
            nodes: vec!["n1".into()],
            injected_at: Some(AT.into()),
            verdict,
            capacity_restored_s: None,
            applications: Vec::new(),
            capacity: None,
            findings: Vec::new(),
            market: None,
        }
    }

    fn step_of(view: &RunView, step: usize) -> &StepRun {
        view.step("t", step).expect("the step")
    }

    #[test]
    fn a_resumed_run_is_stopped_and_finished_only_by_its_own_attempt() {
        let view = RunView::from_entries(&[
            started(),
            Entry::Interrupted {
                at: AT.into(),
                hard: false,
            },
            Entry::RunFinished {
                at: AT.into(),
                verdict: Verdict::Fail,
                exit_code: crate::exit::ExitCode::Aborted,
                wall_s: Some(2.0),
                cpu_s: None,
            },
            Entry::Resumed {
                at: AT.into(),
                continued: false,
            },
        ]);
        assert_eq!(view.attempt(), 1);
        assert_eq!(view.resumes[0].seq, 3);
        assert_eq!(view.stops.len(), 1);
        assert_eq!(view.current_stop(), None);
        assert_eq!(view.finished_now(), None);
        assert_eq!(view.meta.finished.as_ref().map(|f| f.attempt), Some(0));
        let mut view = view;
        view.apply(&Entry::Aborted {
            at: AT.into(),
            reason: "broker died".into(),
        });
        let stop = view.current_stop().map(|s| &s.kind);
        assert!(matches!(stop, Some(StopKind::Aborted { reason }) if reason == "broker died"));
    }

    /// A stop holds across resumes until one of them continues past it; a stop after that
    /// holds again.
    #[test]
    fn an_earlier_stop_holds_until_a_resume_continues_past_it() {
        let resumed = |continued| Entry::Resumed {
            at: AT.into(),
            continued,
        };
        let interrupted = Entry::Interrupted {
            at: AT.into(),
            hard: false,
        };
        let mut view = RunView::from_entries(&[started(), interrupted, resumed(false)]);
        assert!(matches!(
            view.effective_stop().map(|s| &s.kind),
            Some(StopKind::Interrupted { hard: false })
        ));
        assert_eq!(view.current_stop(), None);
        view.apply(&resumed(false));
        assert_eq!(view.effective_stop().map(|s| s.attempt), Some(0));
        view.apply(&resumed(true));
        assert_eq!(view.effective_stop(), None);
        view.apply(&Entry::Aborted {
            at: AT.into(),
            reason: "broker died".into(),
        });
        view.apply(&resumed(false));
        assert_eq!(view.effective_stop().map(|s| s.attempt), Some(3));
    }

    /// A search's run_started lists no steps: they are added as the journal names them, in
    /// order, with their terminations; an entry for a step not yet named adds nothing.
    #[test]
    fn a_search_gains_its_steps_as_the_journal_names_them() {
        let Entry::RunStarted { mut targets, .. } = started() else {
            unreachable!()
        };
        targets[0].ladder.clear();
        targets[0].search = Some(crate::analysis::Search { from: 1, max: 8 });
        let start = Entry::RunStarted {
            at: AT.into(),
            plan: "p".into(),
            plan_path: "p.yaml".into(),
            plan_digest: "0".into(),
            version: "0.1.0".into(),
            targets,
            lab: true,
            aws: Vec::new(),
        };
        let started_step = |step: usize, terminations: u32| Entry::StepStarted {
            at: AT.into(),
            target: "t".into(),
            step,
            terminations,
            nodes_alive: Some(8),
            market: None,
        };
        let view = RunView::from_entries(&[
            start,
            intent(5, &["n1"]),
            started_step(0, 1),
            intent(0, &["n1"]),
            judged(0, Verdict::Pass),
            started_step(1, 2),
            Entry::StepSkipped {
                at: AT.into(),
                target: "t".into(),
                step: 1,
                terminations: 2,
                reason: "escalation stopped: interrupted".into(),
                ends: false,
                market: None,
            },
        ]);
        let t = &view.targets[0];
        let rungs: Vec<u32> = t.steps.iter().map(|s| s.terminations).collect();
        assert_eq!(rungs, [1, 2]);
        assert_eq!(step_of(&view, 0).verdict(), Some(Verdict::Pass));
        assert!(matches!(step_of(&view, 1).phase, StepPhase::Skipped(_)));
        // A journal from before searches (no `search`) still reads as a listed ladder.
        let old = r#"{"name":"t","kind":"storm","provider":"lab","required_tolerance":1,"ladder":[1,2],"cumulative":false,"safety_multiple":3.0,"applications":["a"]}"#;
        let info: TargetInfo = serde_json::from_str(old).unwrap();
        assert_eq!(
            (info.ladder, info.search),
            ([1, 2].map(crate::plan::Rung::Nodes).to_vec(), None)
        );
    }

    #[test]
    fn a_skipped_step_says_why_and_a_judged_one_keeps_its_judgment() {
        let view = RunView::from_entries(&[
            started(),
            intent(0, &["n1"]),
            judged(0, Verdict::Fail),
            Entry::StepSkipped {
                at: AT.into(),
                target: "t".into(),
                step: 1,
                terminations: 2,
                reason: "not run: step 1 (1) did not pass".into(),
                ends: false,
                market: None,
            },
        ]);
        let skipped = step_of(&view, 1);
        assert_eq!(
            skipped.phase,
            StepPhase::Skipped("not run: step 1 (1) did not pass".into())
        );
        assert_eq!(skipped.verdict(), None);
        assert!(skipped.nodes().is_empty());
        assert_eq!(step_of(&view, 0).verdict(), Some(Verdict::Fail));
        assert_eq!(step_of(&view, 2).phase, StepPhase::Pending);
    }

    #[test]
    fn an_interrupted_step_has_its_intent_and_no_judgment() {
        let view = RunView::from_entries(&[
            started(),
            Entry::StepStarted {
                at: AT.into(),
                target: "t".into(),
                step: 0,
                terminations: 2,
                nodes_alive: Some(4),
                market: None,
            },
            intent(0, &["n1", "n2"]),
            Entry::Interrupted {
                at: AT.into(),
                hard: true,
            },
        ]);
        let s = step_of(&view, 0);
        assert_eq!(s.phase, StepPhase::Injecting);
        assert_eq!(s.started_at.as_deref(), Some(AT));
        assert_eq!(s.nodes(), vec!["n1", "n2"]);
        assert_eq!(s.verdict(), None);
        assert_eq!(s.injected(), None);
        assert!(matches!(
            view.current_stop().map(|s| &s.kind),
            Some(StopKind::Interrupted { hard: true })
        ));
    }

    #[test]
    fn outcomes_are_kept_per_node_and_stray_ones_aside() {
        let mut view = RunView::from_entries(&[
            started(),
            intent(0, &["n1", "n2"]),
            outcome(0, "n1", NodeOutcome::Terminated),
            outcome(0, "n2", NodeOutcome::Refused),
            Entry::Injected {
                at: AT.into(),
                target: "t".into(),
                step: 0,
            },
        ]);
        view.apply(&outcome(9, "n3", NodeOutcome::Error));
        let s = step_of(&view, 0);
        assert_eq!(s.phase, StepPhase::Observing);
        assert_eq!(s.injected(), Some(AT));
        let got: Vec<(&str, NodeOutcome, usize)> = s
            .outcomes
            .iter()
            .map(|o| (o.node.as_str(), o.outcome, o.seq))
            .collect();
        assert_eq!(
            got,
            vec![
                ("n1", NodeOutcome::Terminated, 2),
                ("n2", NodeOutcome::Refused, 3)
            ]
        );
        assert_eq!(s.outcomes[1].detail.as_deref(), Some("why"));
        assert_eq!(view.stray_outcomes.len(), 1);
        assert_eq!(view.stray_outcomes[0].step, 9);
    }

    #[test]
    fn capacity_comes_from_the_latest_entry_and_the_baseline_is_replaced_by_name() {
        let band = |name: &str, upper_s: f64| BaselineApp {
            name: name.into(),
            group: name.into(),
            p99_s: 1.0,
            upper_s,
            samples: 3,
        };
        let view = RunView::from_entries(&[
            started(),
            Entry::Baseline {
                at: AT.into(),
                applications: vec![band("a", 3.0), band("b", 4.0)],
            },
            Entry::CapacityRestored {
                at: AT.into(),
                target: "t".into(),
                step: 0,
                after_s: 12.0,
            },
            judged(0, Verdict::Pass),
            Entry::Baseline {
                at: AT.into(),
                applications: vec![band("b", 5.0)],
            },
        ]);
        assert_eq!(step_of(&view, 0).capacity_restored_s, Some(12.0));
        let uppers: Vec<f64> = view.baseline.iter().map(|b| b.upper_s).collect();
        assert_eq!(uppers, vec![3.0, 5.0]);
    }

    /// A market rung is journaled as `{"market":"largest"}` in the ladder (numbers stay
    /// numbers, so older journals still read), and its step takes the count and market its
    /// `step_started` resolved; one never started keeps no count.
    #[test]
    fn a_market_rung_reads_back_its_count_and_market() {
        use crate::journal::MarketRef;
        use crate::plan::{MarketChoice, MarketRung, Rung};
        let market = Rung::Market(MarketRung {
            market: MarketChoice::Largest,
        });
        let Entry::RunStarted { mut targets, .. } = started() else {
            unreachable!()
        };
        targets[0].ladder = vec![Rung::Nodes(1), market];
        let text = serde_json::to_string(&targets[0]).unwrap();
        assert!(
            text.contains(r#""ladder":[1,{"market":"largest"}]"#),
            "{text}"
        );
        let back: TargetInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(back.ladder, targets[0].ladder);
        let m = MarketRef::new(("c5.2xlarge".into(), "us-east-1a".into()));
        let step_started = Entry::StepStarted {
            at: AT.into(),
            target: "t".into(),
            step: 1,
            terminations: 4,
            nodes_alive: Some(7),
            market: Some(m.clone()),
        };
        let mut entries = vec![started()];
        if let Entry::RunStarted { targets: t, .. } = &mut entries[0] {
            t.clone_from(&targets);
        }
        let before = RunView::from_entries(&entries);
        assert_eq!(step_of(&before, 1).terminations, 0);
        assert!(step_of(&before, 1).market_rung && step_of(&before, 1).market.is_none());
        entries.push(step_started);
        let view = RunView::from_entries(&entries);
        let s = step_of(&view, 1);
        assert_eq!((s.terminations, s.market.as_ref()), (4, Some(&m)));
        assert_eq!(
            MarketRef::step_label(s.market.as_ref(), s.terminations),
            "the largest market (c5.2xlarge/us-east-1a: 4 nodes)"
        );
        assert!(!step_of(&view, 0).market_rung);
    }
}
