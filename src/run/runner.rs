//! The runner: what it holds while a game day runs, its loop over lag samples ([`Runner::pump`]),
//! and the one place where escalation stops ([`Breach`], [`Runner::breach`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::capacity;
use super::clock::Clock;
use super::control::Control;
use super::progress::Progress;
use crate::analysis::{Band, Sample};
use crate::exit::{ExitCode, Failure};
use crate::journal::{Entry, Journal};
use crate::lab::up::RunningLab;
use crate::nodes::{Node, Provider};
use crate::observe::health::{Capacity, Endpoints};
use crate::observe::{GroupLag, Snapshot, Status};
use crate::plan::Plan;

/// One application's samples during the run.
pub(super) struct Series {
    pub group: String,
    pub samples: Vec<Sample>,
    /// The status of the last sample.
    pub last_status: Option<Status>,
    pub band: Option<Band>,
    /// The group's state and stalls, per sample (rebalances per step come from it).
    pub groups: super::groups::GroupTrack,
}

/// The step being observed: for capacity tracking.
pub(super) struct Active {
    pub target: String,
    pub step: usize,
    /// Whether capacity is expected back (a provider that replaces, and steps that do not add
    /// up).
    pub track: bool,
    /// The nodes this step terminated (an Auto Scaling group is full again without them).
    pub gone: Vec<String>,
    pub t0: f64,
    pub restored: Option<f64>,
    /// The health probes' view of the step (targets with health endpoints).
    pub tracker: Option<capacity::Tracker>,
}

/// Why escalation stops: a guard, a failure, the operator. Handled in one place,
/// [`Runner::breach`]: journaled, said, and remembered so that no later step is injected.
#[derive(Clone, Debug, PartialEq)]
pub enum Breach {
    /// A target's guard before a step: `max_terminations`, `min_healthy`, `allowed_hours`,
    /// `max_per_topology`.
    Guard {
        target: String,
        guard: &'static str,
        detail: String,
    },
    /// An application's lag passed its `abort_lag` (seen on a sample).
    AbortLag { target: String, detail: String },
    /// Something the run relies on failed: discovery, a provider, the lab's broker.
    Failure(String),
    /// Ctrl-C (or SIGTERM, or the dashboard's abort key), the first time.
    Interrupted,
}

impl Breach {
    /// Why escalation stopped, as later skipped steps say it.
    pub fn why(&self) -> String {
        match self {
            Breach::Guard {
                target,
                guard,
                detail,
            } => format!("guard {guard} of {target}: {detail}"),
            Breach::AbortLag { detail, .. } => format!("guard abort_lag: {detail}"),
            Breach::Failure(why) => why.clone(),
            Breach::Interrupted => "interrupted (Ctrl-C)".into(),
        }
    }

    /// The reason of the step it cut short.
    pub fn skip_reason(&self) -> String {
        match self {
            Breach::Guard { guard, detail, .. } => format!("guard {guard}: {detail}"),
            _ => format!("escalation stopped: {}", self.why()),
        }
    }

    fn entry(&self, at: String) -> Entry {
        match self {
            Breach::Guard {
                target,
                guard,
                detail,
            } => Entry::GuardBreached {
                at,
                target: target.clone(),
                guard: (*guard).to_owned(),
                detail: detail.clone(),
            },
            Breach::AbortLag { target, detail } => Entry::GuardBreached {
                at,
                target: target.clone(),
                guard: "abort_lag".into(),
                detail: detail.clone(),
            },
            Breach::Failure(reason) => Entry::Aborted {
                at,
                reason: reason.clone(),
            },
            Breach::Interrupted => Entry::Interrupted { at, hard: false },
        }
    }

    fn progress(&self) -> String {
        match self {
            Breach::Guard { .. } => format!("{}; no more terminations", self.why()),
            Breach::AbortLag { detail, .. } => {
                format!("guard breached: {detail}; no more terminations")
            }
            Breach::Failure(why) => format!("{why}; no more terminations"),
            Breach::Interrupted => "interrupted: no more terminations; observing to the end of \
                 the step, then the report (Ctrl-C again to exit at once)"
                .into(),
        }
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WaitEnd {
    Met,
    Timeout,
}

pub(super) struct Runner<'a> {
    pub plan: &'a Plan,
    pub journal: Arc<Mutex<Journal>>,
    pub lab: Option<RunningLab>,
    /// Each target's node provider.
    pub providers: IndexMap<String, Arc<dyn Provider>>,
    pub rx: mpsc::Receiver<Snapshot>,
    pub series: IndexMap<String, Series>,
    pub csv: BufWriter<File>,
    /// `watermarks.csv`: per group sample, the high watermark summed over its partitions (the
    /// production rate for the report's headroom); `None` where nothing records it.
    pub watermarks: Option<BufWriter<File>>,
    /// Health endpoints of the targets that have them.
    pub endpoints: IndexMap<String, Endpoints>,
    pub probes: mpsc::Receiver<capacity::Probe>,
    /// `capacity.jsonl`, when any target is probed.
    pub capacity_file: Option<BufWriter<File>>,
    /// Each probed target's last answered capacity.
    pub last_capacity: IndexMap<String, Capacity>,
    pub clock: Clock,
    pub interrupts: watch::Receiver<u32>,
    pub seen_interrupts: u32,
    /// Whether the interrupt watcher is still there to listen to.
    pub listening: bool,
    pub progress: Progress,
    /// The operator's keys, with `--live`.
    pub control: Option<Control>,
    /// Why escalation stopped, once it has (at resume: an earlier attempt's stop that holds).
    pub stop: Option<Breach>,
    /// `--continue`: this resume escalates past the earlier attempts' stops.
    pub continued: bool,
    pub active: Option<Active>,
    /// This process's CPU time when the run started.
    pub cpu_start: crate::lab::stats::Reading,
    /// Each target's node count when the run started (100% for `min_healthy`).
    pub sizes: IndexMap<String, usize>,
    /// Ends the sampler, the probes and the providers' background work.
    pub cancel: CancellationToken,
    pub sampler: Option<JoinHandle<()>>,
    pub dir: PathBuf,
}

impl Runner<'_> {
    pub fn write(&self, entry: &Entry) -> anyhow::Result<()> {
        self.journal
            .lock()
            .map_err(|_| anyhow::anyhow!("the journal lock is poisoned"))?
            .append(entry)
            .map_err(|e| {
                Failure::environment("cannot write the journal".into())
                    .because(e)
                    .into()
            })
    }

    /// Now as the journal writes it.
    pub fn now(&self) -> String {
        self.clock.stamp()
    }

    pub fn now_s(&self) -> f64 {
        self.clock.now_s()
    }

    /// Why escalation stopped, if it did.
    pub fn stopped(&self) -> Option<String> {
        self.stop.as_ref().map(Breach::why)
    }

    /// Stop escalating: the journal says why, observation and the report go on. Only the first
    /// breach counts.
    pub fn breach(&mut self, breach: Breach) -> anyhow::Result<()> {
        if self.stop.is_some() {
            return Ok(());
        }
        self.write(&breach.entry(self.now()))?;
        self.progress.event(&breach.progress());
        self.stop = Some(breach);
        Ok(())
    }

    /// Stop the sampler, the probes and the lab.
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        // Whatever way the run ends, nothing a provider started is left running.
        let providers = self.providers.clone();
        for (name, p) in &providers {
            let released = p.release().await;
            self.provider_events(name, released)?;
        }
        self.cancel.cancel();
        if let Some(s) = self.sampler.take() {
            let _ = s.await;
        }
        let _ = self.csv.flush();
        if let Some(lab) = self.lab.take() {
            self.progress.event("stopping the lab");
            lab.stop()?;
        }
        Ok(())
    }

    /// Wait for samples until `done` holds or `deadline` passes. Interrupts are noted (`stop`),
    /// never end a wait by themselves: callers that should end on them say so in `done`.
    pub async fn pump(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<WaitEnd> {
        loop {
            if done(self) {
                return Ok(WaitEnd::Met);
            }
            tokio::select! {
                snapshot = self.rx.recv() => self.take(snapshot)?,
                () = tokio::time::sleep_until(deadline) => return Ok(WaitEnd::Timeout),
                changed = self.interrupts.changed(), if self.listening => match changed {
                    Ok(()) => self.note_interrupt()?,
                    // The watcher is gone (no signal handler could be installed): stop
                    // listening rather than spin on a closed channel.
                    Err(_) => self.listening = false,
                },
            }
        }
    }

    /// A snapshot from the sampler (`None`: it stopped).
    pub fn take(&mut self, snapshot: Option<Snapshot>) -> anyhow::Result<()> {
        match snapshot {
            Some(s) => self.ingest(&s),
            None => anyhow::bail!("the lag sampler stopped"),
        }
    }

    /// A future that resolves when the run is interrupted after what the runner has seen (never,
    /// without an interrupt watcher): the work done outside [`Runner::pump`] (discovery,
    /// probes, the provider) races it.
    pub fn interrupt_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut interrupts = self.interrupts.clone();
        let seen = self.seen_interrupts;
        async move {
            if interrupts.wait_for(|n| *n > seen).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Take in an interrupt that arrived while the runner was not listening (between two
    /// awaits); true when escalation has stopped, for whatever reason.
    pub fn stop_pending(&mut self) -> anyhow::Result<bool> {
        self.note_interrupt()?;
        Ok(self.stop.is_some())
    }

    fn note_interrupt(&mut self) -> anyhow::Result<()> {
        let count = *self.interrupts.borrow();
        if count > self.seen_interrupts {
            self.seen_interrupts = count;
            self.breach(Breach::Interrupted)?;
        }
        Ok(())
    }

    /// Take one snapshot in: samples per application, samples.csv, probes, capacity, guards,
    /// progress.
    fn ingest(&mut self, snapshot: &[GroupLag]) -> anyhow::Result<()> {
        for g in snapshot {
            self.record(g)?;
        }
        self.csv.flush()?;
        if let Some(w) = self.watermarks.as_mut() {
            w.flush()?;
        }
        self.take_probes()?;
        self.note_capacity_back()?;
        // The lab's broker must outlive the run.
        if let Some(why) = self.lab.as_mut().and_then(RunningLab::broker_exited) {
            self.breach(Breach::Failure(why))?;
        }
        if let Some(b) = self.abort_lag() {
            self.breach(b)?;
        }
        let status = self.status_line();
        self.progress.status(&status);
        Ok(())
    }

    /// One group's sample, for every application measured in that group.
    fn record(&mut self, g: &GroupLag) -> anyhow::Result<()> {
        let t = self.clock.secs(g.at);
        let at = humantime::format_rfc3339_millis(g.at);
        let lag = match g.status {
            Status::Ok => g.lag_seconds,
            Status::NeverCommitted | Status::Missing => None,
        };
        let status = match g.status {
            Status::Ok => "ok",
            Status::NeverCommitted => "never_committed",
            Status::Missing => "missing",
        };
        let high: i64 = g.partitions.iter().map(|p| p.high_watermark).sum();
        for (name, s) in &mut self.series {
            if s.group != g.group {
                continue;
            }
            if let (Some(w), Status::Ok) = (self.watermarks.as_mut(), &g.status) {
                let lag = g.lag_messages.unwrap_or_default();
                writeln!(w, "{at},{t:.3},{name},{},{high},{lag}", g.group)?;
            }
            s.samples.push(Sample {
                t,
                lag_s: lag,
                lag_messages: g.lag_messages.map(|m| m.max(0) as u64),
            });
            s.last_status = Some(g.status.clone());
            s.groups.take(t, g);
            writeln!(
                self.csv,
                "{at},{t:.3},{name},{},{status},{},{}",
                g.group,
                lag.map(|l| format!("{l:.3}")).unwrap_or_default(),
                g.lag_messages.map(|m| m.to_string()).unwrap_or_default()
            )?;
        }
        Ok(())
    }

    /// The `abort_lag` guard on the last samples.
    fn abort_lag(&self) -> Option<Breach> {
        if self.stop.is_some() {
            return None;
        }
        self.series.iter().find_map(|(name, s)| {
            let abort = self.plan.applications.get(name)?.abort_lag?;
            let lag = s.samples.last()?.valid_lag()?;
            (lag > abort.as_secs_f64()).then(|| Breach::AbortLag {
                target: self
                    .active
                    .as_ref()
                    .map(|a| a.target.clone())
                    .unwrap_or_default(),
                detail: format!(
                    "{name} lag {lag:.1} s is above its abort_lag {}",
                    humantime::format_duration(abort)
                ),
            })
        })
    }

    fn status_line(&self) -> String {
        let line = self
            .series
            .iter()
            .map(|(name, s)| {
                let last = s.samples.last();
                let secs = last
                    .and_then(|l| l.valid_lag())
                    .map_or("—".to_owned(), |l| format!("{l:.1} s"));
                let msgs = last
                    .and_then(|l| l.lag_messages)
                    .map_or(String::new(), |m| format!(" ({m} msgs)"));
                format!("{name} {secs}{msgs}")
            })
            .collect::<Vec<_>>()
            .join(" · ");
        let clock = self
            .active
            .as_ref()
            .map(|a| format!(" · recovery clock {:.0} s", self.now_s() - a.t0))
            .unwrap_or_default();
        format!("{line}{clock}")
    }

    /// The capacity of the step being observed: from the health probes when they answer,
    /// otherwise from the provider (a lab cluster, an Auto Scaling group).
    fn note_capacity_back(&mut self) -> anyhow::Result<()> {
        let Some(a) = &self.active else {
            return Ok(());
        };
        if a.restored.is_some() || !a.track {
            return Ok(());
        }
        let after = match &a.tracker {
            Some(t) if t.known() => t.restored(),
            _ => self
                .capacity_full(&a.target, &a.gone)
                .then(|| self.now_s() - a.t0),
        };
        let Some(after) = after else {
            return Ok(());
        };
        let (target, step) = (a.target.clone(), a.step);
        if let Some(a) = &mut self.active {
            a.restored = Some(after);
        }
        self.write(&Entry::CapacityRestored {
            at: self.now(),
            target: target.clone(),
            step,
            after_s: super::round1(after),
        })?;
        self.progress.event(&format!(
            "{target}: capacity back {after:.1} s after the injection"
        ));
        Ok(())
    }

    /// Record the health probes that arrived: `capacity.jsonl`, each target's last capacity, and
    /// the step being observed.
    fn take_probes(&mut self) -> anyhow::Result<()> {
        while let Ok(p) = self.probes.try_recv() {
            let t = self.clock.secs(p.at);
            if let Some(f) = &mut self.capacity_file {
                let line = capacity::Line {
                    at: humantime::format_rfc3339_millis(p.at).to_string(),
                    t_s: (t * 1000.0).round() / 1000.0,
                    target: &p.target,
                    capacity: p.result.as_ref().ok(),
                    error: p.result.as_ref().err().map(String::as_str),
                };
                serde_json::to_writer(&mut *f, &line)?;
                f.write_all(b"\n")?;
                f.flush()?;
            }
            if let Err(e) = &p.result {
                tracing::debug!(target = %p.target, error = %e, "health probe failed");
            }
            if let Some(a) = &mut self.active
                && a.target == p.target
                && let Some(tracker) = &mut a.tracker
            {
                tracker.observe(t, &p.result);
            }
            if let Ok(c) = p.result {
                self.last_capacity.insert(p.target, c);
            }
        }
        Ok(())
    }

    /// A target's capacity now, probed on the spot (`None`: the target has no health endpoints).
    pub async fn probe_now(&self, name: &str) -> Option<Result<Capacity, String>> {
        let e = self.endpoints.get(name)?.clone();
        let deadline = self
            .plan
            .observe
            .sample_interval
            .max(std::time::Duration::from_secs(2));
        Some(crate::observe::health::probe_async(&e, deadline).await)
    }

    /// The target's nodes now, as its provider discovers them.
    pub async fn discover(&self, name: &str) -> anyhow::Result<Vec<Node>> {
        let Some(p) = self.providers.get(name) else {
            return Ok(Vec::new());
        };
        Ok(p.discover().await?.nodes())
    }

    /// Whether a target's capacity is back without the nodes in `gone` (true where nothing is
    /// tracked).
    pub fn capacity_full(&self, name: &str, gone: &[String]) -> bool {
        self.providers
            .get(name)
            .is_none_or(|p| p.capacity_full(gone))
    }

    /// The exit code for a run that must not start.
    pub fn refuse(&self, why: &str) -> ExitCode {
        crate::output::err(&format!("error: refusing to start: {why}\n"));
        ExitCode::Environment
    }
}
