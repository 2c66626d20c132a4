//! The second half of a step: inject (the intent on disk first), observe until every application
//! recovered or the timeout, judge.

use super::capacity;
use super::round1;
use super::runner::{Active, Breach, Runner};
use super::step::{At, Chosen, Injected, Outcome, Phase};
use crate::analysis::{self, Judged, StepRules, Verdict};
use crate::journal::{AppResult, Entry, NodeOutcome};
use crate::nodes::{Injection, Node, ProviderEvent, StepEvent, Terminated};

impl Runner<'_> {
    /// Terminate the chosen nodes: `step_started` and the fsynced intent first, then the
    /// provider (sampling goes on while it works), then each outcome and `injected`. A stop
    /// that arrived meanwhile (an interrupt the runner has not taken in yet) is checked right
    /// before `step_started` and right before the intent: then nothing is terminated.
    pub(super) async fn inject(&mut self, at: At<'_>, chosen: Chosen) -> Phase<Injected> {
        if let Err(o) = self.go_on()? {
            return Ok(Err(o));
        }
        self.trim_samples();
        self.write(&Entry::StepStarted {
            at: self.now(),
            target: at.name.to_owned(),
            step: at.step,
            terminations: at.n,
            nodes_alive: u32::try_from(chosen.alive).ok(),
            market: at.market.cloned(),
        })?;
        if let Err(o) = self.go_on()? {
            return Ok(Err(o));
        }
        let provider = &self.providers[at.name];
        let intent = Entry::Intent {
            at: self.now(),
            target: at.name.to_owned(),
            step: at.step,
            provider: provider.name().to_owned(),
            notice_s: provider.notice().as_secs_f64(),
            nodes: chosen.nodes.iter().map(Node::to_ref).collect(),
        };
        let on_return = provider.injected_on_return();
        self.write(&intent)?;
        let mut injected_at = self.clock.wall();
        let outcomes = self.terminate(at, &chosen.nodes).await?;
        for o in &outcomes {
            self.write(&Entry::Outcome {
                at: self.now(),
                target: at.name.to_owned(),
                step: at.step,
                node: o.id.clone(),
                outcome: o.outcome,
                detail: o.detail.clone(),
            })?;
        }
        // An FIS interruption terminates at the end of its notice, when the experiment
        // completes: that is the moment the cluster loses the nodes.
        if on_return {
            injected_at = self.clock.wall();
        }
        let t0 = self.clock.secs(injected_at);
        let injected_at = humantime::format_rfc3339_millis(injected_at).to_string();
        self.write(&Entry::Injected {
            at: injected_at.clone(),
            target: at.name.to_owned(),
            step: at.step,
        })?;
        let injected = Injected {
            chosen,
            outcomes,
            t0,
            injected_at,
        };
        self.after_injection(at, &injected)?;
        Ok(Ok(injected))
    }

    /// A resumed attempt: each provider looks up what the attempts before journaled and never
    /// saw end (FIS experiments), and stops it or records its state.
    pub(super) async fn reconcile_providers(&mut self, previous: &[Entry]) -> anyhow::Result<()> {
        let providers = self.providers.clone();
        for (name, p) in &providers {
            let theirs: Vec<StepEvent> = previous
                .iter()
                .filter_map(|e| match e {
                    Entry::ProviderEvent {
                        target,
                        step,
                        kind,
                        detail,
                        ..
                    } if target == name => Some((
                        *step,
                        ProviderEvent {
                            event: kind.clone(),
                            detail: detail.clone(),
                        },
                    )),
                    _ => None,
                })
                .collect();
            if theirs.is_empty() {
                continue;
            }
            let found = p.reconcile(&theirs).await;
            self.provider_events(name, found)?;
        }
        Ok(())
    }

    /// Journal (and say) what a provider did outside an injection.
    pub(super) fn provider_events(
        &mut self,
        name: &str,
        events: Vec<StepEvent>,
    ) -> anyhow::Result<()> {
        for (step, ev) in events {
            self.progress.event(&format!("{name}: {}", ev.detail));
            self.write(&Entry::ProviderEvent {
                at: self.now(),
                target: name.to_owned(),
                step,
                kind: ev.event,
                detail: ev.detail,
            })?;
        }
        Ok(())
    }

    /// Memory stays flat over a long run: a step is judged on its own samples (from its
    /// injection on) and the cooldown on the last `hold`; older samples are on disk in
    /// samples.csv, where the reports read them.
    fn trim_samples(&mut self) {
        let observe = &self.plan.observe;
        let keep_from =
            self.now_s() - observe.hold.as_secs_f64() - 2.0 * observe.sample_interval.as_secs_f64();
        for s in self.series.values_mut() {
            let old = s.samples.partition_point(|x| x.t < keep_from);
            s.samples.drain(..old);
        }
    }

    /// The provider terminates; lag is sampled meanwhile (an FIS experiment waits out the whole
    /// notice, 2–15 min, and lag must be measured through it).
    async fn terminate(&mut self, at: At<'_>, chosen: &[Node]) -> anyhow::Result<Vec<Terminated>> {
        let (journal, clock) = (self.journal.clone(), self.clock);
        let (name, step) = (at.name.to_owned(), at.step);
        let events = move |ev: ProviderEvent| {
            tracing::info!(step, event = %ev.event, "{name}: {}", ev.detail);
            let entry = Entry::ProviderEvent {
                at: clock.stamp(),
                target: name.clone(),
                step,
                kind: ev.event,
                detail: ev.detail,
            };
            if let Ok(mut j) = journal.lock()
                && let Err(e) = j.append(&entry)
            {
                tracing::warn!(error = %e, "cannot write the journal");
            }
        };
        let stop = Box::pin(self.interrupt_signal());
        let injection = Injection {
            label: format!("{}-step-{}", at.name, at.step + 1),
            events: &events,
            stop,
            step: at.step,
        };
        let provider = self.providers[at.name].clone();
        let work = provider.terminate(chosen, injection);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                snapshot = self.rx.recv() => self.take(snapshot)?,
            }
        }
    }

    /// A partial failure stops escalation; the step's capacity is tracked from here.
    fn after_injection(&mut self, at: At<'_>, injected: &Injected) -> anyhow::Result<()> {
        let (done, all) = (injected.terminated(), injected.outcomes.len());
        if done < all {
            let failed: Vec<String> = injected
                .outcomes
                .iter()
                .filter(|o| o.outcome != NodeOutcome::Terminated)
                .map(|o| format!("{} {:?}", o.id, o.outcome).to_lowercase())
                .collect();
            self.breach(Breach::Failure(format!(
                "{}: {} of {all} nodes not terminated ({})",
                at.label(),
                failed.len(),
                failed.join(", ")
            )))?;
        }
        let ids: Vec<&str> = injected
            .chosen
            .nodes
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        self.progress.event(&format!(
            "{}: terminated {done}/{} ({})",
            at.label(),
            injected.chosen.nodes.len(),
            ids.join(", ")
        ));
        let track = self.providers[at.name].replaces() && !at.target.cumulative;
        self.active = Some(Active {
            target: at.name.to_owned(),
            step: at.step,
            track,
            gone: injected.gone(),
            t0: injected.t0,
            restored: None,
            tracker: self.tracker(at, injected, track),
        });
        Ok(())
    }

    /// The health probes' view of the step, for targets with health endpoints.
    fn tracker(&self, at: At<'_>, injected: &Injected, track: bool) -> Option<capacity::Tracker> {
        if !self.endpoints.contains_key(at.name) {
            return None;
        }
        let gone = injected.gone();
        let gone_hosts = injected
            .chosen
            .nodes
            .iter()
            .filter(|c| gone.contains(&c.id))
            .map(|c| c.host.clone())
            .collect();
        let apps = capacity::scheduled(self.plan, at.target);
        Some(capacity::Tracker::new(
            at.target.kind,
            injected.t0,
            gone_hosts,
            &apps,
            injected.chosen.before.clone(),
            track,
        ))
    }

    /// Observe for at least `settle`, until every application recovered (with hold, and its
    /// work rescheduled where probes tell) or the timeout.
    pub(super) async fn observe(&mut self, at: At<'_>, t0: f64) -> anyhow::Result<()> {
        let observe = &self.plan.observe;
        let settled = self.clock.after(observe.settle);
        let deadline = self.clock.after(observe.timeout);
        self.pump(deadline, |r| {
            r.clock.now() >= settled && r.recovered(at, t0)
        })
        .await?;
        Ok(())
    }

    fn recovered(&self, at: At<'_>, t0: f64) -> bool {
        let observe = &self.plan.observe;
        let (hold, interval) = (
            observe.hold.as_secs_f64(),
            observe.sample_interval.as_secs_f64(),
        );
        let rescheduled = self
            .active
            .as_ref()
            .and_then(|a| a.tracker.as_ref())
            .is_none_or(capacity::Tracker::all_rescheduled);
        rescheduled
            && at.target.applications.iter().all(|a| {
                self.series.get(a.as_str()).is_some_and(|s| {
                    s.band.is_some_and(|b| {
                        analysis::recovered_at(&s.samples, t0, b.upper_s, hold, interval).is_some()
                    })
                })
            })
    }

    /// Judge each application, then the step, and write it down.
    pub(super) fn judge(&mut self, at: At<'_>, injected: &Injected) -> anyhow::Result<Outcome> {
        let observed_until = self.now_s();
        let tracker = self.active.as_ref().and_then(|a| a.tracker.as_ref());
        let mut findings = tracker.map(capacity::Tracker::findings).unwrap_or_default();
        let mut results = Vec::new();
        for app in &at.target.applications {
            if let Some((r, finding)) = self.judge_app(app, injected, observed_until) {
                results.push(r);
                findings.extend(finding);
            }
        }
        let verdict = Verdict::combine(results.iter().map(|r| r.verdict));
        let active = self.active.as_ref();
        self.write(&Entry::StepJudged {
            at: self.now(),
            target: at.name.to_owned(),
            step: at.step,
            terminations: at.n,
            nodes: injected.chosen.nodes.iter().map(|c| c.id.clone()).collect(),
            injected_at: Some(injected.injected_at.clone()),
            verdict,
            capacity_restored_s: active.and_then(|a| a.restored).map(round1),
            applications: results.clone(),
            capacity: active
                .and_then(|a| a.tracker.as_ref())
                .map(capacity::Tracker::summary),
            findings: findings.clone(),
            market: at.market.cloned(),
        })?;
        for r in &results {
            self.progress
                .event(&format!("  {}: {} — {}", r.name, r.verdict, r.reason));
        }
        for f in &findings {
            self.progress.event(&format!("  finding: {f}"));
        }
        Ok(Outcome::Judged(verdict))
    }

    /// One application's result in the step, and what its scheduler did when it did not pass.
    fn judge_app(
        &self,
        name: &str,
        injected: &Injected,
        observed_until: f64,
    ) -> Option<(AppResult, Vec<String>)> {
        let observe = &self.plan.observe;
        let app = &self.plan.applications[name];
        let s = &self.series[name];
        let band = s.band?;
        let rules = step_rules(observe, app, injected.t0);
        let j = analysis::judge_step(&s.samples, &band, &rules, observed_until);
        let tracker = self.active.as_ref().and_then(|a| a.tracker.as_ref());
        let (judged, finding) =
            beyond_lag(tracker, (name, app), &j, (&s.samples, injected.t0), &band);
        let judged =
            analysis::short_of_rung(judged, injected.terminated(), injected.chosen.nodes.len());
        let rescheduled = tracker.and_then(|t| t.rescheduled(name));
        let mut result = app_result(name, &band, &j, judged, rescheduled);
        let groups = s.groups.during(injected.t0, observed_until);
        result.rebalances = groups.rebalances;
        result.stalled_since = groups.stalled_since.clone();
        let mut findings: Vec<String> = finding.into_iter().collect();
        findings.extend(groups.findings(name, &s.group));
        Some((result, findings))
    }

    /// Capacity of the last step may come back later; the report is better for knowing it.
    pub(super) async fn capacity_tail(&mut self, name: &str) -> anyhow::Result<()> {
        let waiting = self
            .active
            .as_ref()
            .is_some_and(|a| a.restored.is_none() && a.track && a.target == name);
        if !waiting {
            return Ok(());
        }
        let until = self
            .clock
            .after(crate::preflight::capacity_tail(&self.plan.observe));
        self.pump(until, |r| {
            r.stop.is_some() || r.active.as_ref().is_some_and(|a| a.restored.is_some())
        })
        .await?;
        Ok(())
    }
}

/// The lag judgement `j` of one application with what the health probes saw (`tracker`): work
/// not yet rescheduled holds the verdict back; a step that did not pass says where its work
/// stalled. `samples` from the injection at `t0`.
pub(super) fn beyond_lag(
    tracker: Option<&capacity::Tracker>,
    (name, app): (&str, &crate::plan::Application),
    j: &analysis::StepJudgement,
    (samples, t0): (&[analysis::Sample], f64),
    band: &analysis::Band,
) -> (Judged, Option<String>) {
    let lag = Judged {
        verdict: j.verdict,
        recovery_s: j.recovery_s,
        reason: j.reason.clone(),
    };
    let judged = match tracker {
        Some(t) if t.known() && t.affected(name) == Some(true) => analysis::with_rescheduling(
            lag,
            &app.scheduled_as,
            t.rescheduled(name),
            app.max_recovery.as_secs_f64(),
        ),
        _ => lag,
    };
    let finding = match tracker {
        Some(t) if judged.verdict != Verdict::Pass => {
            let after: Vec<(f64, f64)> = samples
                .iter()
                .filter(|x| x.t >= t0)
                .filter_map(|x| x.valid_lag().map(|l| (x.t, l)))
                .collect();
            t.stalled(name, &after, band.upper_s)
        }
        _ => None,
    };
    (judged, finding)
}

/// The rules one application's step is judged by, the injection at `t0`.
pub(super) fn step_rules(
    observe: &crate::plan::Observe,
    app: &crate::plan::Application,
    t0: f64,
) -> StepRules {
    StepRules {
        t0,
        hold_s: observe.hold.as_secs_f64(),
        timeout_s: observe.timeout.as_secs_f64(),
        sample_interval_s: observe.sample_interval.as_secs_f64(),
        max_lag_s: app.max_lag.as_secs_f64(),
        max_recovery_s: app.max_recovery.as_secs_f64(),
    }
}

/// An application's result as the journal keeps it: the lag judgement `j`, the verdict the
/// rules beyond lag made of it (`judged`), the time the work was rescheduled.
pub(super) fn app_result(
    name: &str,
    band: &analysis::Band,
    j: &analysis::StepJudgement,
    judged: Judged,
    rescheduled: Option<f64>,
) -> AppResult {
    AppResult {
        name: name.to_owned(),
        baseline_lag_s: Some(round1(band.p99_s)),
        band_upper_s: Some(round1(band.upper_s)),
        spike_lag_s: j.spike_lag_s.map(round1),
        time_to_peak_s: j.time_to_peak_s.map(round1),
        recovery_s: judged.recovery_s.map(round1),
        rescheduled_s: rescheduled.map(round1),
        verdict: judged.verdict,
        reason: judged.reason,
        rebalances: None,
        stalled_since: None,
    }
}
