//! One ladder step as a state machine: resume → cooldown → guards → choose → confirm → inject →
//! observe → judge. Each phase is a small function that either hands the next one what it needs
//! or ends the step with a typed [`Outcome`]; [`Runner::conclude`] is the one place an outcome is
//! written down, and [`Runner::breach`] the one place escalation stops.

use std::time::Duration;

use super::capacity;
use super::resume;
use super::runner::{Breach, Runner, WaitEnd};
use crate::analysis::{self, Verdict};
use crate::journal::{Entry, MarketRef, NodeOutcome};
use crate::nodes::{Node, Terminated};
use crate::observe::health::Capacity;
use crate::plan::{Rung, Target};
use crate::preflight::guards;

/// How a step ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    /// Judged in this attempt.
    Judged(Verdict),
    /// Judged in the attempt this run resumes: nothing to write.
    JudgedBefore(Verdict),
    /// Cut by a crash between its intent and its judgment, judged at resume from its samples.
    /// A failure ends the ladder; a step the cut left inconclusive does not (later steps still
    /// run, for their evidence; the tolerance streak ends there all the same).
    Rejudged(Verdict),
    /// Not run, or cut short. `ends`: the ladder of this target ends here as well (the reason is
    /// why later steps are not run).
    Skipped { reason: String, ends: bool },
    /// Escalation stops for the whole run.
    Stopped(Breach),
}

impl Outcome {
    /// The step's verdict, when it was judged (now, before, or at resume).
    pub(super) fn verdict(&self) -> Option<Verdict> {
        match self {
            Outcome::Judged(v) | Outcome::JudgedBefore(v) | Outcome::Rejudged(v) => Some(*v),
            Outcome::Skipped { .. } | Outcome::Stopped(_) => None,
        }
    }

    pub(super) fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
            ends: false,
        }
    }

    pub(super) fn ends(reason: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
            ends: true,
        }
    }
}

/// A phase either goes on with a value or ends the step.
pub(super) type Phase<T> = anyhow::Result<Result<T, Outcome>>;

/// Go on with a phase's value, or end the step with its outcome.
macro_rules! proceed {
    ($phase:expr) => {
        match $phase? {
            Ok(v) => v,
            Err(outcome) => return Ok(outcome),
        }
    };
}

/// Inside a phase: go on with another phase's value, or end the step with its outcome.
macro_rules! phase {
    ($phase:expr) => {
        match $phase? {
            Ok(v) => v,
            Err(outcome) => return Ok(Err(outcome)),
        }
    };
}

/// Which step of which target.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub name: &'a str,
    pub target: &'a Target,
    pub step: usize,
    /// The step's terminations (a market rung's: 0 until its step resolved it).
    pub n: u32,
    /// The step is a market rung (`{market: largest}`).
    pub market_rung: bool,
    /// The market a market rung resolved to, once it did.
    pub market: Option<&'a MarketRef>,
}

/// A market rung resolved at the moment of its step: the market and its size then.
pub(super) type Pick = Option<(MarketRef, u32)>;

impl At<'_> {
    /// How many steps the ladder has: a search's worst case as "≤ N".
    pub fn of(&self) -> String {
        match self.target.search {
            Some(s) => format!("≤{}", s.worst_case_steps()),
            None => self.target.ladder.len().to_string(),
        }
    }

    pub fn label(&self) -> String {
        format!("{} step {}", self.name, self.step + 1)
    }

    /// What the step terminates, in words: `3 terminations`, `the largest market
    /// (c5.2xlarge/us-east-1a: 4 nodes)`.
    pub fn what(&self) -> String {
        if self.market_rung {
            return MarketRef::step_label(self.market, self.n);
        }
        format!(
            "{} termination{}",
            self.n,
            if self.n == 1 { "" } else { "s" }
        )
    }

    fn skip(&self, at: String, reason: String, ends: bool) -> Entry {
        Entry::StepSkipped {
            at,
            target: self.name.to_owned(),
            step: self.step,
            terminations: self.n,
            reason,
            ends,
            market: self.market.cloned(),
        }
    }
}

/// The nodes a step chose, and the target's capacity just before.
pub(super) struct Chosen {
    pub nodes: Vec<Node>,
    pub before: Option<Capacity>,
    /// The running, eligible nodes they were chosen from.
    pub alive: usize,
}

/// What an injection did.
pub(super) struct Injected {
    pub chosen: Chosen,
    pub outcomes: Vec<Terminated>,
    /// Seconds on the run's clock when the cluster lost the nodes.
    pub t0: f64,
    pub injected_at: String,
}

impl Injected {
    pub fn terminated(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.outcome == NodeOutcome::Terminated)
            .count()
    }

    pub fn gone(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.outcome == NodeOutcome::Terminated)
            .map(|o| o.id.clone())
            .collect()
    }
}

impl Runner<'_> {
    /// Every step of one target's ladder, then the wait for its last step's capacity. A
    /// search's next step comes from the verdicts so far (replayed from the journal on
    /// resume, so a resumed search continues the very same search); a step that is not judged
    /// (a guard, a stop, a cooldown that timed out) ends the search there, and its skip entry
    /// says why.
    pub async fn target(
        &mut self,
        name: &str,
        target: &Target,
        previous: &[Entry],
    ) -> anyhow::Result<()> {
        let mut ended: Option<String> = None;
        let mut results: Vec<(u32, Verdict)> = Vec::new();
        let mut step = 0;
        while let Some(r) = rung(target, step, &results) {
            let mut at = At {
                name,
                target,
                step,
                n: r.count().unwrap_or(0),
                market_rung: r.count().is_none(),
                market: None,
            };
            let mut pick: Pick = None;
            let outcome = self.step(at, previous, ended.as_deref(), &mut pick).await?;
            if let Some((m, size)) = &pick {
                (at.market, at.n) = (Some(m), *size);
            }
            let n = at.n;
            let verdict = outcome.verdict();
            if target.search.is_some() {
                // A failure does not end a search: it bisects below it.
                self.conclude(at, outcome, &mut None)?;
                let Some(v) = verdict else { break };
                results.push((n, v));
            } else {
                self.conclude(at, outcome, &mut ended)?;
            }
            step += 1;
        }
        self.capacity_tail(name).await?;
        self.active = None;
        Ok(())
    }

    /// One step. A market rung is resolved after the cooldown, from the nodes discovered then
    /// (`pick` says to what, for the journal and the report; on resume, what it was).
    async fn step(
        &mut self,
        at: At<'_>,
        previous: &[Entry],
        ended: Option<&str>,
        pick: &mut Pick,
    ) -> anyhow::Result<Outcome> {
        if let Some(o) = self.resumed(at, previous)? {
            *pick = resolved_before(previous, at);
            return Ok(o);
        }
        if let Some(why) = self.stopped() {
            return Ok(Outcome::skipped(format!("escalation stopped: {why}")));
        }
        if let Some(why) = ended {
            return Ok(Outcome::skipped(format!("not run: {why}")));
        }
        proceed!(self.cooldown(at).await);
        let mut first = None;
        if at.market_rung {
            let nodes = proceed!(self.discovered(at).await);
            *pick = Some(proceed!(self.largest_market(at, &nodes)));
            first = Some(nodes);
        }
        let at = match pick {
            Some((m, size)) => At {
                n: *size,
                market: Some(&*m),
                ..at
            },
            None => at,
        };
        let chosen = proceed!(self.checked_choice(at, previous, first).await);
        let injected = proceed!(self.inject(at, chosen).await);
        self.observe(at, injected.t0).await?;
        self.judge(at, &injected)
    }

    /// Guards and the choice, then (with `--step-confirm`) the operator's go. The wait for it
    /// has no bound and the world moves meanwhile (nodes die, hours pass, work moves), so the
    /// guards, `allowed_hours`, `min_healthy`, `max_per_topology` and the selection are
    /// evaluated again, on a fresh discovery, once the operator said go: the step goes on only
    /// with the very selection the operator confirmed, and asks again when it changed.
    /// `first`: the discovery a market rung was resolved from, used for the first choice.
    async fn checked_choice(
        &mut self,
        at: At<'_>,
        previous: &[Entry],
        mut first: Option<Vec<Node>>,
    ) -> Phase<Chosen> {
        let mut confirmed: Option<Vec<String>> = None;
        loop {
            let live = match first.take() {
                Some(nodes) => Some(nodes),
                None if at.market_rung => Some(phase!(self.discovered(at).await)),
                None => phase!(self.live_nodes(at).await),
            };
            phase!(self.guards(at, previous, live.as_ref().map(Vec::len)));
            let chosen = phase!(self.choose(at, live).await);
            let ids: Vec<String> = chosen.nodes.iter().map(|n| n.id.clone()).collect();
            let asks = self
                .control
                .as_ref()
                .is_some_and(super::Control::step_confirm);
            if !asks || confirmed.as_ref() == Some(&ids) {
                return Ok(Ok(chosen));
            }
            if let Some(before) = &confirmed {
                self.progress.event(&format!(
                    "{}: the selection changed while waiting for the go ({} → {}); asking again",
                    at.label(),
                    before.join(", "),
                    ids.join(", ")
                ));
            }
            phase!(self.confirm(at, &chosen.nodes).await);
            confirmed = Some(ids);
        }
    }

    /// Write down how a step ended.
    fn conclude(
        &mut self,
        at: At<'_>,
        outcome: Outcome,
        ended: &mut Option<String>,
    ) -> anyhow::Result<()> {
        let (step, n) = (at.step + 1, at.n);
        let n = if at.market_rung {
            at.what()
        } else {
            n.to_string()
        };
        match outcome {
            Outcome::Judged(v) if v != Verdict::Pass => {
                *ended = Some(format!("step {step} ({n}) {v}"))
            }
            Outcome::Judged(_) => {}
            Outcome::Rejudged(v) => {
                if v == Verdict::Fail {
                    *ended = Some(format!("step {step} ({n}) {v}"));
                }
            }
            Outcome::JudgedBefore(v) => {
                if v != Verdict::Pass && ended.is_none() {
                    *ended = Some(format!("step {step} ({n}) did not pass"));
                }
            }
            Outcome::Skipped { reason, ends } => {
                self.write(&at.skip(self.now(), reason.clone(), ends))?;
                if ends {
                    *ended = Some(reason);
                }
            }
            Outcome::Stopped(breach) => {
                let reason = breach.skip_reason();
                self.breach(breach)?;
                self.write(&at.skip(self.now(), reason, false))?;
            }
        }
        Ok(())
    }

    /// Cooldown: lag back in band for `hold`, and capacity back unless steps add up.
    async fn cooldown(&mut self, at: At<'_>) -> Phase<()> {
        let observe = &self.plan.observe;
        self.progress.event(&format!(
            "{} step {}/{}: {} — cooldown",
            at.name,
            at.step + 1,
            at.of(),
            at.what()
        ));
        let deadline = self.clock.after(observe.cooldown);
        let cooled = self.pump(deadline, |r| r.cooled(at)).await?;
        if let Some(why) = self.stopped() {
            return Ok(Err(Outcome::skipped(format!("escalation stopped: {why}"))));
        }
        if cooled == WaitEnd::Timeout {
            let why = format!(
                "lag{} did not come back within the cooldown of {}",
                if at.target.cumulative {
                    ""
                } else {
                    " or capacity"
                },
                humantime::format_duration(observe.cooldown)
            );
            self.progress
                .event(&format!("{}: {why}; later steps are not run", at.name));
            return Ok(Err(Outcome::ends(why)));
        }
        Ok(Ok(()))
    }

    /// Whether a step may start: stopped, or lag (and capacity) back.
    fn cooled(&self, at: At<'_>) -> bool {
        if self.stop.is_some() {
            return true;
        }
        let observe = &self.plan.observe;
        let (hold, interval) = (
            observe.hold.as_secs_f64(),
            observe.sample_interval.as_secs_f64(),
        );
        let lag_ok = at.target.applications.iter().all(|a| {
            self.series.get(a.as_str()).is_some_and(|s| {
                s.band
                    .is_some_and(|b| analysis::in_band_for(&s.samples, b.upper_s, hold, interval))
            })
        });
        lag_ok && (at.target.cumulative || self.capacity_back(at.name))
    }

    /// The target at full capacity again (with health probes, once they saw the previous step's
    /// capacity back, so that its `capacity_restored_s` is measured, not cut off).
    fn capacity_back(&self, name: &str) -> bool {
        let seen_back = self.active.as_ref().is_none_or(|a| {
            a.target != name
                || !a.track
                || a.restored.is_some()
                || a.tracker.as_ref().is_none_or(|t| !t.known())
        });
        self.capacity_full(name, &[])
            && seen_back
            && self.last_capacity.get(name).is_none_or(Capacity::is_whole)
    }

    /// The target's nodes now, where `min_healthy` needs them counted before the guards (the
    /// choice then uses the same discovery).
    async fn live_nodes(&mut self, at: At<'_>) -> Phase<Option<Vec<Node>>> {
        if at.target.guards.min_healthy.is_none() {
            return Ok(Ok(None));
        }
        Ok(self.discovered(at).await?.map(Some))
    }

    /// Discovery, or the breach a failed discovery is; an interrupt ends the wait for it.
    async fn discovered(&mut self, at: At<'_>) -> Phase<Vec<Node>> {
        let stop = self.interrupt_signal();
        let found = tokio::select! {
            found = self.discover(at.name) => found,
            () = stop => return self.go_on().map(|r| r.map(|()| Vec::new())),
        };
        Ok(found.map_err(|e| {
            Outcome::Stopped(Breach::Failure(format!(
                "cannot discover the nodes of {}: {e:#}",
                at.name
            )))
        }))
    }

    /// A market rung's market: the largest among the running, eligible nodes discovered now.
    fn largest_market(&mut self, at: At<'_>, nodes: &[Node]) -> Phase<(MarketRef, u32)> {
        let eligible: Vec<Node> = nodes
            .iter()
            .filter(|node| node.running && crate::nodes::eligible(&at.target.nodes, node))
            .cloned()
            .collect();
        let Some((market, in_it)) = crate::nodes::select::largest_market(&eligible) else {
            let why = format!(
                "none of the {} running, eligible nodes sits in a known spot market (instance \
                 type and zone)",
                eligible.len()
            );
            self.progress.event(&format!("{}: {why}", at.label()));
            return Ok(Err(Outcome::ends(why)));
        };
        let market = MarketRef::new(market);
        let size = u32::try_from(in_it.len()).unwrap_or(u32::MAX);
        self.progress.event(&format!(
            "{}: {} of {} running, eligible nodes",
            at.label(),
            MarketRef::step_label(Some(&market), size),
            eligible.len()
        ));
        Ok(Ok((market, size)))
    }

    /// Go on unless escalation stopped, an interrupt not yet taken in included.
    pub(super) fn go_on(&mut self) -> Phase<()> {
        if !self.stop_pending()? {
            return Ok(Ok(()));
        }
        let why = self.stopped().unwrap_or_default();
        Ok(Err(Outcome::skipped(format!("escalation stopped: {why}"))))
    }

    /// The first guard the step would breach: `allowed_hours`, `max_terminations`,
    /// `min_healthy` (of the nodes discovered now, against the size the run started with).
    fn guards(&self, at: At<'_>, previous: &[Entry], live: Option<usize>) -> Phase<()> {
        let g = &at.target.guards;
        let breach = |guard: &'static str, detail: String| {
            Err(Outcome::Stopped(Breach::Guard {
                target: at.name.to_owned(),
                guard,
                detail,
            }))
        };
        if let Some(window) = g.allowed_hours
            && let Some(d) = guards::outside_hours(window, crate::plan::HourWindow::now_minute())
        {
            return Ok(breach("allowed_hours", d));
        }
        if let Some(max) = g.max_terminations
            && let Some(d) =
                guards::over_max_terminations(max, self.terminated(at.name, previous), at.n)
        {
            return Ok(breach("max_terminations", d));
        }
        if let (Some(min), Some(live)) = (g.min_healthy, live) {
            let size = self.sizes.get(at.name).copied().unwrap_or(0) as u32;
            let needed = guards::min_healthy_needed(min, size);
            if let Some(d) = guards::below_min_healthy(needed, live as u32, at.n) {
                return Ok(breach("min_healthy", d));
            }
        }
        Ok(Ok(()))
    }

    /// Nodes of a target counted as terminated so far in this run (and the attempts it
    /// resumes): every node with an intent unless an outcome proves it was not terminated.
    fn terminated(&self, name: &str, previous: &[Entry]) -> u32 {
        let now = crate::journal::read(&self.dir).unwrap_or_else(|_| previous.to_vec());
        resume::counted(&now, name)
    }

    /// Select among the running, eligible nodes, knowing what runs where (for `running:`,
    /// `max_per_topology`, and the step's capacity before the injection). `discovered`: this
    /// step's discovery, if the guards already needed it.
    async fn choose(&mut self, at: At<'_>, discovered: Option<Vec<Node>>) -> Phase<Chosen> {
        let discovered = match discovered {
            Some(nodes) => nodes,
            None => phase!(self.discovered(at).await),
        };
        let eligible: Vec<Node> = discovered
            .into_iter()
            .filter(|node| node.running && crate::nodes::eligible(&at.target.nodes, node))
            .filter(|node| {
                at.market.is_none_or(|m| {
                    node.instance_type.as_ref() == Some(&m.instance_type)
                        && node.zone.as_ref() == Some(&m.zone)
                })
            })
            .collect();
        let before = phase!(self.placement(at).await);
        match capacity::choose_step(
            &eligible,
            at.n as usize,
            at.target,
            at.step,
            before.as_ref(),
        ) {
            Ok(nodes) => Ok(Ok(Chosen {
                nodes,
                before,
                alive: eligible.len(),
            })),
            Err(e @ capacity::ChoiceError::Select(..)) => {
                let why = e.reason();
                self.progress.event(&format!("{}: {why}", at.label()));
                Ok(Err(Outcome::ends(why)))
            }
            Err(e @ capacity::ChoiceError::MaxPerTopology { .. }) => {
                Ok(Err(Outcome::Stopped(Breach::Guard {
                    target: at.name.to_owned(),
                    guard: "max_per_topology",
                    detail: e.reason(),
                })))
            }
        }
    }

    /// What runs where right now, from the health probes; a probe that fails is a breach only
    /// where the choice depends on it.
    async fn placement(&mut self, at: At<'_>) -> Phase<Option<Capacity>> {
        let stop = self.interrupt_signal();
        let probed = tokio::select! {
            probed = self.probe_now(at.name) => probed,
            () = stop => return self.go_on().map(|r| r.map(|()| None)),
        };
        Ok(match probed {
            Some(Ok(c)) => {
                self.last_capacity.insert(at.name.to_owned(), c.clone());
                Ok(Some(c))
            }
            Some(Err(e))
                if at.target.running.is_some() || at.target.guards.max_per_topology.is_some() =>
            {
                Err(Outcome::Stopped(Breach::Failure(format!(
                    "cannot tell which nodes of {} run what (health probe: {e})",
                    at.name
                ))))
            }
            Some(Err(_)) => Ok(self.last_capacity.get(at.name).cloned()),
            None => Ok(None),
        })
    }

    /// `--step-confirm`: the operator lets the step go (sampling goes on meanwhile; the abort
    /// key ends the wait like a Ctrl-C).
    async fn confirm(&mut self, at: At<'_>, chosen: &[Node]) -> Phase<()> {
        let Some(c) = self.control.clone().filter(super::Control::step_confirm) else {
            return Ok(Ok(()));
        };
        let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
        c.ask(format!(
            "{} step {}/{}: terminate {} ({})",
            at.name,
            at.step + 1,
            at.of(),
            if at.market_rung {
                at.what()
            } else {
                at.n.to_string()
            },
            ids.join(", ")
        ));
        let forever = self.clock.after(Duration::from_secs(365 * 24 * 3600));
        self.pump(forever, |r| r.stop.is_some() || c.waiting().is_none())
            .await?;
        c.proceed();
        Ok(match self.stopped() {
            Some(why) => Err(Outcome::skipped(format!("escalation stopped: {why}"))),
            None => Ok(()),
        })
    }
}

/// The rung of a target's step `step`: the listed one, or the search's next after the verdicts
/// so far; `None` when the ladder is over.
fn rung(target: &Target, step: usize, results: &[(u32, Verdict)]) -> Option<Rung> {
    match target.search {
        Some(s) => s.next(results).map(Rung::Nodes),
        None => target.ladder.get(step).copied(),
    }
}

/// What an attempt before resolved a market rung to (its `step_started`, or the refusal that
/// names a market).
fn resolved_before(previous: &[Entry], at: At<'_>) -> Pick {
    if !at.market_rung {
        return None;
    }
    previous.iter().rev().find_map(|e| match e {
        Entry::StepStarted {
            target,
            step,
            terminations,
            market: Some(m),
            ..
        }
        | Entry::StepSkipped {
            target,
            step,
            terminations,
            market: Some(m),
            ..
        } if target == at.name && *step == at.step => Some((m.clone(), *terminations)),
        _ => None,
    })
}
