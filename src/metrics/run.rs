//! The metrics of a game day, from the same run files the dashboard reads: the journal and
//! samples through [`Follower`] (the dashboard's own [`LiveState`]), and `capacity.jsonl` for the
//! numbers the health probes read. Every scrape reads what was appended since the last one and
//! builds a fresh registry, so a series that has no value now (a gap in the lag, a probe that
//! failed) is absent, never zero.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use prometheus_client::registry::Registry;

use super::family::{self, Gauges, Labels, counters, gauges, messages, seconds, set};
use crate::journal::NodeOutcome;
use crate::live::{Follower, LiveState, StepState, Tail};
use crate::observe::health::Capacity;
use crate::run::capacity::Recorded;

/// Every state a step (and an application in it) can be in, for the 0/1 state series.
const STATES: [StepState; 7] = [
    StepState::Pending,
    StepState::Injecting,
    StepState::Observing,
    StepState::Passed,
    StepState::Failed,
    StepState::Inconclusive,
    StepState::Skipped,
];

/// A run directory followed for its metrics.
#[derive(Debug)]
pub struct RunSource {
    follower: Follower,
    capacity: Tail,
    /// Per target its last probe: the capacity, or `None` when the probe failed.
    probes: IndexMap<String, Option<Capacity>>,
    run_id: String,
}

impl RunSource {
    pub fn new(dir: &Path) -> RunSource {
        let run_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        RunSource {
            follower: Follower::new(dir),
            capacity: Tail::new(dir.join("capacity.jsonl")),
            probes: IndexMap::new(),
            run_id,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.follower.dir().to_owned()
    }

    /// Read what the run wrote since the last call.
    pub fn poll(&mut self) -> std::io::Result<()> {
        self.follower.poll()?;
        for line in self.capacity.poll()? {
            if let Ok(r) = serde_json::from_str::<Recorded>(&line) {
                self.probes.insert(r.target, r.capacity);
            }
        }
        Ok(())
    }

    pub fn state(&self) -> &LiveState {
        &self.follower.state
    }

    /// The run's metrics as they stand.
    pub fn registry(&self) -> Registry {
        let mut r = family::registry();
        let state = self.state();
        run_series(&mut r, state, &self.run_id);
        application_series(&mut r, state);
        target_series(&mut r, state);
        capacity_series(&mut r, state, &self.probes);
        r
    }
}

/// The run's info, its start and end, and each injection and recovery as a time.
fn run_series(r: &mut Registry, state: &LiveState, run_id: &str) {
    let info = gauges(
        r,
        "run_info",
        "The run: its plan's name and run id (always 1)",
        None,
    );
    let plan = state.plan.as_deref().unwrap_or("");
    set(&info, &[("plan", plan), ("run_id", run_id)], 1.0);
    let started = gauges(
        r,
        "run_started_timestamp",
        "When the run started",
        seconds(),
    );
    if let Some(t) = state.started_at {
        set(&started, &[], t);
    }
    let finished = gauges(
        r,
        "run_finished_timestamp",
        "When the run finished",
        seconds(),
    );
    let code = gauges(
        r,
        "run_exit_code",
        "The run's exit code, once finished",
        None,
    );
    if let Some(f) = state.finished {
        set(&finished, &[], f.at);
        set(&code, &[], f64::from(u8::from(f.exit_code)));
    }
    let injected = gauges(
        r,
        "injection_timestamp",
        "When a step's terminations were done (for annotations)",
        seconds(),
    );
    let recovered = gauges(
        r,
        "recovery_timestamp",
        "When an application recovered after a step's injection (for annotations)",
        seconds(),
    );
    for t in &state.targets {
        for (i, s) in t.steps.iter().enumerate() {
            let Some(at) = s.injected_at else { continue };
            let step = (i + 1).to_string();
            let n = s.terminations.to_string();
            set(
                &injected,
                &[("target", &t.name), ("step", &step), ("terminations", &n)],
                at,
            );
            for (app, recovery) in recoveries(state, &t.name, i) {
                let labels = [
                    ("target", t.name.as_str()),
                    ("step", &step),
                    ("application", app),
                ];
                set(&recovered, &labels, at + recovery);
            }
        }
    }
}

/// The applications of a target's step `i` that recovered, with their recovery times.
fn recoveries<'a>(state: &'a LiveState, target: &str, i: usize) -> Vec<(&'a str, f64)> {
    let Some(judgment) = state
        .run()
        .step(target, i)
        .and_then(|s| s.judgment.as_ref())
    else {
        return Vec::new();
    };
    judgment
        .applications
        .iter()
        .filter_map(|a| Some((a.name.as_str(), a.recovery_s?)))
        .collect()
}

/// Per application: lag, its band and the state of its target's current step.
fn application_series(r: &mut Registry, state: &LiveState) {
    let lag_s = gauges(
        r,
        "application_lag",
        "Application lag (max over partitions)",
        seconds(),
    );
    let lag_m = gauges(
        r,
        "application_lag",
        "Application lag (sum over partitions)",
        messages(),
    );
    let upper = gauges(
        r,
        "application_band_upper",
        "Upper bound of the baseline band: recovered means lag at or below it",
        seconds(),
    );
    let p99 = gauges(
        r,
        "application_baseline_p99",
        "p99 of the baseline lag",
        seconds(),
    );
    let states = gauges(
        r,
        "application_state",
        "The application in its target's current step: 1 for the state it is in",
        None,
    );
    let now = wall_clock();
    for (name, app) in &state.apps {
        let labels = [
            ("application", name.as_str()),
            ("group", app.group.as_str()),
        ];
        let times = newest(app.samples.iter().map(|p| p.at));
        let measuring = state.finished.is_none() && fresh(&times, now);
        if let Some(p) = app.current().filter(|_| measuring) {
            if let Some(l) = p.lag_s {
                set(&lag_s, &labels, l);
            }
            if let (Some(m), Some(_)) = (p.lag_messages, p.lag_s) {
                set(&lag_m, &labels, m as f64);
            }
        }
        if let Some(b) = app.band {
            set(&upper, &labels, b.upper_s);
            set(&p99, &labels, b.p99_s);
        }
        let now = application_state(state, name, app.target.as_deref());
        state_series(&states, ("application", name), now);
    }
}

/// The two newest of sample times (oldest first), newest first.
fn newest(times: impl DoubleEndedIterator<Item = f64>) -> Vec<f64> {
    times.rev().take(2).collect()
}

/// Seconds since the Unix epoch now.
fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether an application's newest sample is still its lag now: no older than five sample
/// spacings (at least 5 s). Past that, sampling stalled, and a stale value would hide the gap.
fn fresh(newest: &[f64], now: f64) -> bool {
    let spacing = match newest {
        [last, before, ..] => last - before,
        _ => 1.0,
    };
    newest
        .first()
        .is_some_and(|last| now - last <= (5.0 * spacing).max(5.0))
}

/// The state of the current step of `target` for one application: its own verdict once judged.
fn application_state(state: &LiveState, app: &str, target: Option<&str>) -> StepState {
    let Some(t) = target.and_then(|t| state.targets.iter().find(|x| x.name == t)) else {
        return StepState::Pending;
    };
    let Some(i) = current_step(t.steps.iter().map(|s| s.state)) else {
        return StepState::Pending;
    };
    let judged = state
        .apps
        .get(app)
        .and_then(|a| a.results.iter().find(|r| r.0 == i));
    match judged.map(|r| r.2) {
        Some(crate::analysis::Verdict::Pass) => StepState::Passed,
        Some(crate::analysis::Verdict::Fail) => StepState::Failed,
        Some(crate::analysis::Verdict::Inconclusive) => StepState::Inconclusive,
        None => t.steps[i].state,
    }
}

/// The step under way, else the last one that left `pending`.
fn current_step(steps: impl Iterator<Item = StepState> + Clone) -> Option<usize> {
    let active = |s: StepState| matches!(s, StepState::Injecting | StepState::Observing);
    let states: Vec<StepState> = steps.collect();
    states
        .iter()
        .position(|&s| active(s))
        .or_else(|| states.iter().rposition(|&s| s != StepState::Pending))
}

/// 1 for `now`, 0 for every other state.
fn state_series(family: &Gauges, who: (&'static str, &str), now: StepState) {
    for s in STATES {
        let labels = [who, ("state", s.label())];
        set(family, &labels, if s == now { 1.0 } else { 0.0 });
    }
}

/// Per target: its ladder's current step, terminations by outcome, and its tolerance.
fn target_series(r: &mut Registry, state: &LiveState) {
    let step = gauges(
        r,
        "target_step",
        "The current step, 1-based (0 before the first)",
        None,
    );
    let step_n = gauges(
        r,
        "target_step_terminations",
        "Terminations of the current step",
        None,
    );
    let steps = gauges(r, "target_steps", "Steps in the ladder", None);
    let states = gauges(
        r,
        "target_step_state",
        "The target's current step: 1 for the state it is in",
        None,
    );
    let tolerated = gauges(
        r,
        "target_tolerated_terminations",
        "Tolerance measured so far: the largest N such that every step up to N passed",
        None,
    );
    let bound = gauges(
        r,
        "target_tolerance_bound",
        "What the tolerance so far is: 1 for its bound, exact (a step above it failed) or \
         at_least (none did: the limit lies above), 0 for the other",
        None,
    );
    let required = gauges(
        r,
        "target_required_tolerance",
        "The tolerance the plan requires",
        None,
    );
    for t in &state.targets {
        let who = [("target", t.name.as_str())];
        let current = current_step(t.steps.iter().map(|s| s.state));
        set(&step, &who, current.map_or(0.0, |i| (i + 1) as f64));
        let n = current.map_or(0, |i| t.steps[i].terminations);
        set(&step_n, &who, f64::from(n));
        set(&steps, &who, t.steps.len() as f64);
        let now = current.map_or(StepState::Pending, |i| t.steps[i].state);
        state_series(&states, ("target", &t.name), now);
        let (n, exact) = tolerance_so_far(state, &t.name);
        set(&tolerated, &who, f64::from(n));
        for (label, is) in [("exact", exact), ("at_least", !exact)] {
            let labels = [who[0], ("bound", label)];
            set(&bound, &labels, if is { 1.0 } else { 0.0 });
        }
        set(&required, &who, f64::from(t.required_tolerance));
    }
    terminations(r, state);
}

/// The tolerance as report.json computes it, from the steps judged so far, and whether it is
/// exact (a step above it failed) rather than a floor. A market rung not yet resolved has no
/// count: it ranks above every count, as in report.json.
fn tolerance_so_far(state: &LiveState, target: &str) -> (u32, bool) {
    let Some(t) = state.run().target(target) else {
        return (0, false);
    };
    let steps: Vec<_> = t
        .steps
        .iter()
        .map(|s| match (s.market_rung, s.market.is_some()) {
            (true, false) => (u32::MAX, s.verdict()),
            _ => (s.terminations, s.verdict()),
        })
        .collect();
    let tol = crate::analysis::tolerance(&steps);
    let exact = tol
        .first_failure
        .is_some_and(|i| steps[i].1 == Some(crate::analysis::Verdict::Fail));
    (tol.tolerated, exact)
}

/// `spotdrill_target_terminations_total{target, outcome}`: every outcome the providers wrote.
fn terminations(r: &mut Registry, state: &LiveState) {
    let total = counters(
        r,
        "target_terminations",
        "Node terminations by the provider's outcome",
    );
    for t in &state.run().targets {
        for outcome in [
            NodeOutcome::Terminated,
            NodeOutcome::AlreadyGone,
            NodeOutcome::Refused,
            NodeOutcome::Error,
        ] {
            let n = t
                .steps
                .iter()
                .flat_map(|s| &s.outcomes)
                .filter(|o| o.outcome == outcome)
                .count();
            let labels: Labels = family::owned(&[
                ("target", &t.info.name),
                ("outcome", outcome_label(outcome)),
            ]);
            total.get_or_create(&labels).inc_by(n as u64);
        }
    }
}

fn outcome_label(o: NodeOutcome) -> &'static str {
    match o {
        NodeOutcome::Terminated => "terminated",
        NodeOutcome::AlreadyGone => "already_gone",
        NodeOutcome::Refused => "refused",
        NodeOutcome::Error => "error",
    }
}

/// What the health probes read: nodes alive, slots (Storm), agents and tasks (Mesos/Marathon).
fn capacity_series(
    r: &mut Registry,
    state: &LiveState,
    probes: &IndexMap<String, Option<Capacity>>,
) {
    let up = gauges(
        r,
        "target_health_up",
        "Whether the target's last health probe answered (1) or failed (0)",
        None,
    );
    let alive = gauges(
        r,
        "target_nodes_alive",
        "Nodes alive: live supervisors (Storm), active agents (Mesos), else the eligible nodes the current step chose from",
        None,
    );
    let slots = gauges(r, "target_slots", "Storm worker slots, by state", None);
    let tasks = gauges(
        r,
        "target_tasks",
        "Marathon tasks over the target's apps, by state",
        None,
    );
    let on_dead = gauges(
        r,
        "target_workers_on_dead_nodes",
        "Workers (Storm) or tasks (Marathon) assigned to a node that is gone",
        None,
    );
    for t in &state.targets {
        let who = [("target", t.name.as_str())];
        match probes.get(&t.name) {
            Some(Some(c)) => {
                set(&up, &who, 1.0);
                capacity_numbers(c, &t.name, [&alive, &slots, &tasks, &on_dead]);
            }
            Some(None) => set(&up, &who, 0.0),
            None => {
                if let Some(n) = step_nodes_alive(state, &t.name) {
                    set(&alive, &who, f64::from(n));
                }
            }
        }
    }
}

/// Without health probes: the eligible nodes the latest started step chose from.
fn step_nodes_alive(state: &LiveState, target: &str) -> Option<u32> {
    let t = state.run().target(target)?;
    t.steps.iter().rev().find_map(|s| s.nodes_alive)
}

fn capacity_numbers(c: &Capacity, target: &str, [alive, slots, tasks, on_dead]: [&Gauges; 4]) {
    let who = [("target", target)];
    match c {
        Capacity::Storm(s) => {
            set(alive, &who, f64::from(s.supervisors_alive));
            for (state, n) in [
                ("total", s.slots_total),
                ("used", s.slots_used),
                ("free", s.slots_free),
            ] {
                set(slots, &[("target", target), ("state", state)], f64::from(n));
            }
            let dead: u32 = s
                .topologies
                .iter()
                .map(|t| t.workers_on_dead_supervisors)
                .sum();
            set(on_dead, &who, f64::from(dead));
        }
        Capacity::Mesos(m) => {
            set(alive, &who, f64::from(m.agents_active));
            let sum = |f: fn(&crate::observe::health::AppCapacity) -> u32| -> f64 {
                f64::from(m.apps.iter().map(f).sum::<u32>())
            };
            for (state, n) in [
                ("wanted", sum(|a| a.instances)),
                ("running", sum(|a| a.tasks_running)),
                ("healthy", sum(|a| a.tasks_healthy)),
            ] {
                set(tasks, &[("target", target), ("state", state)], n);
            }
            set(on_dead, &who, sum(|a| a.tasks_on_dead_hosts));
        }
        Capacity::Kubernetes(k) => {
            set(alive, &who, f64::from(k.nodes_ready));
            let sum = |f: fn(&crate::observe::health::WorkloadCapacity) -> u32| -> f64 {
                f64::from(k.workloads.iter().map(f).sum::<u32>())
            };
            for (state, n) in [
                ("wanted", sum(|w| w.desired)),
                ("running", sum(|w| w.ready)),
                ("pending", sum(|w| w.pending)),
            ] {
                set(tasks, &[("target", target), ("state", state)], n);
            }
            set(on_dead, &who, sum(|w| w.on_lost_nodes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::{Format, exposition};

    /// The recorded two-target run: storm-lab failed its second step (exact 1), mesos-lab
    /// passed every step (at least 2).
    #[test]
    fn the_tolerance_bound_is_one_for_its_kind_and_zero_for_the_other() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs/two-targets");
        let mut source = RunSource::new(&dir);
        source.poll().unwrap();
        let text = exposition(&source.registry(), Format::Text);
        for (target, bound, value) in [
            ("storm-lab", "exact", 1),
            ("storm-lab", "at_least", 0),
            ("mesos-lab", "at_least", 1),
            ("mesos-lab", "exact", 0),
        ] {
            let line = format!(
                "spotdrill_target_tolerance_bound{{target=\"{target}\",bound=\"{bound}\"}} {value}.0\n"
            );
            assert!(text.contains(&line), "{line}in\n{text}");
        }
        assert!(
            text.contains("spotdrill_target_tolerated_terminations{target=\"storm-lab\"} 1.0\n")
        );
    }
}
