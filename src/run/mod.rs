//! The game day (`spotdrill run`): preflight → baseline → for each target, for each ladder step:
//! cooldown (lag back in band, capacity back) → guards → select → journal the intent → terminate
//! → observe → judge → … → report. Judging is done by the pure functions of [`crate::analysis`];
//! this module only gathers samples, acts, and writes down what it did.

pub mod capacity;
pub mod lock;
mod progress;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::analysis::{self, Band, BandSettings, Sample, StepRules, Verdict};
use crate::exit::{ExitCode, Failure};
use crate::journal::{self, AppResult, BaselineApp, Entry, Journal, NodeOutcome, TargetInfo, now};
use crate::kafka::KafkaSettings;
use crate::lab::up::RunningLab;
use crate::nodes::aws::{AwsNodes, AwsSettings, GroupCapacity, ProviderEvent};
use crate::nodes::{LabNodes, Node};
use crate::observe::health::{Capacity, Endpoints};
use crate::observe::{GroupLag, GroupSpec, LagProbe, Snapshot, Status};
use crate::plan::{Brokers, MinHealthy, NodeSelector, Plan, Target};
use crate::report::Report;
use lock::TargetLock;
use progress::Progress;

/// How a run is started.
#[derive(Clone, Debug)]
pub struct Options {
    pub plan_path: PathBuf,
    /// The run directory (created; for `--resume`, the existing one).
    pub dir: PathBuf,
    pub resume: bool,
    /// The spotdrill executable (lab nodes run it).
    pub exe: PathBuf,
    pub lock_dir: PathBuf,
    /// How the AWS providers reach AWS (`--profile`, `--region`, `--endpoint-url`).
    pub aws: AwsSettings,
    /// The live dashboard's operator keys (`--live`): confirm each step, stop escalating. With it,
    /// progress lines are not printed (the dashboard owns the screen).
    pub control: Option<crate::live::Control>,
}

/// How long a lab run waits for its workloads' first commits before the baseline.
const LAB_WARMUP: Duration = Duration::from_secs(60);

/// Run a plan. Returns the exit code of the verdict (or of the abort).
pub async fn run(plan: &Plan, text: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    tracing::debug!(plan = %plan.name, dir = %opts.dir.display(), resume = opts.resume, "run");
    std::fs::create_dir_all(&opts.dir)
        .map_err(|e| Failure::Environment(format!("cannot create {}: {e}", opts.dir.display())))?;
    let previous = if opts.resume {
        let entries = journal::read(&opts.dir)?;
        let digest = entries.iter().find_map(|e| match e {
            Entry::RunStarted { plan_digest, .. } => Some(plan_digest.clone()),
            _ => None,
        });
        match digest {
            None => {
                return Err(Failure::BadInput(format!(
                    "{} has no run to resume (its journal has no run_started)",
                    opts.dir.display()
                ))
                .into());
            }
            Some(d) if d != journal::digest(text) => {
                return Err(Failure::BadInput(format!(
                    "the plan changed since the run in {} started; resume it with the same plan",
                    opts.dir.display()
                ))
                .into());
            }
            Some(_) => entries,
        }
    } else {
        if opts.dir.join(journal::FILE).exists() {
            return Err(Failure::BadInput(format!(
                "{} already holds a run; choose another --out or continue it with --resume",
                opts.dir.display()
            ))
            .into());
        }
        Vec::new()
    };

    // One run per target at a time.
    let mut locks = Vec::new();
    for (name, t) in &plan.targets {
        let key = lock::key(name, &t.nodes);
        let lock = TargetLock::acquire(&opts.lock_dir, name, &key, &opts.dir)
            .map_err(|e| Failure::Environment(e.to_string()))?;
        locks.push(lock);
    }
    let journal = Arc::new(Mutex::new(Journal::open(&opts.dir)?));
    let lock_paths: Vec<PathBuf> = locks.iter().map(|l| l.path().to_owned()).collect();
    let interrupts = watch_interrupts(journal.clone(), lock_paths, opts.control.clone());

    let mut progress = Progress::new().quiet(opts.control.is_some());
    let lab = match &plan.lab {
        Some(lab) => {
            progress.event(&format!(
                "starting the lab ({} clusters) in {}",
                lab.clusters.len(),
                opts.dir.display()
            ));
            Some(RunningLab::start(lab, &opts.exe, &opts.dir)?)
        }
        None => None,
    };
    let brokers = match (&plan.kafka.brokers, &lab) {
        (Brokers::Lab, Some(lab)) => lab.state().brokers,
        (Brokers::Lab, None) => {
            return Err(Failure::BadInput(
                "kafka.brokers is `lab` but the plan has no `lab:` section".into(),
            )
            .into());
        }
        (Brokers::External(list), _) => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    // The AWS providers: connected once per target; an Auto Scaling group's capacity is followed
    // in the background (replacement tracking).
    let cancel = CancellationToken::new();
    let mut aws = IndexMap::new();
    let mut groups = IndexMap::new();
    for (name, t) in &plan.targets {
        if let Some(p) = AwsNodes::connect(&t.nodes, &opts.aws).await {
            if let Some(rx) = p.watch_capacity(
                plan.observe.sample_interval.max(Duration::from_secs(1)),
                cancel.clone(),
            ) {
                groups.insert(name.clone(), rx);
            }
            aws.insert(name.clone(), p);
        }
    }
    // Health probes: each target's capacity as its scheduler sees it, sampled with the lag.
    let lab_endpoints = lab.as_ref().map(|l| l.state().endpoints);
    let plan_dir = opts
        .plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut endpoints = IndexMap::new();
    for (name, t) in &plan.targets {
        if let Some(e) = capacity::endpoints(name, t, lab_endpoints.as_deref(), &plan_dir)
            .map_err(|e| Failure::Environment(format!("{e:#}")))?
        {
            endpoints.insert(name.clone(), e);
        }
    }
    let probes = capacity::spawn(
        endpoints
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect(),
        plan.observe.sample_interval,
        cancel.clone(),
    );
    let capacity_file = if endpoints.is_empty() {
        None
    } else {
        Some(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(opts.dir.join("capacity.jsonl"))?,
        ))
    };
    let mut settings = KafkaSettings::new(brokers);
    settings.security.clone_from(&plan.kafka.security);

    let mut specs: Vec<GroupSpec> = Vec::new();
    for app in plan.applications.values() {
        let spec = GroupSpec {
            group: app.group.clone(),
            topics: app.topics.clone(),
        };
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    let probe =
        LagProbe::connect(settings, &specs).map_err(|e| Failure::Environment(e.to_string()))?;
    let (rx, sampler) =
        crate::observe::sampler::spawn(probe, plan.observe.sample_interval, cancel.clone());

    let csv_path = opts.dir.join("samples.csv");
    let fresh_csv = !csv_path.exists();
    let mut csv = BufWriter::new(File::options().create(true).append(true).open(&csv_path)?);
    if fresh_csv {
        csv.write_all(b"at,t_s,application,group,status,lag_seconds,lag_messages\n")?;
    }

    let mut runner = Runner {
        plan,
        journal,
        lab,
        aws,
        groups,
        rx,
        series: plan
            .applications
            .iter()
            .map(|(name, a)| {
                (
                    name.clone(),
                    Series {
                        group: a.group.clone(),
                        samples: Vec::new(),
                        last_status: None,
                        band: None,
                    },
                )
            })
            .collect(),
        csv,
        endpoints,
        probes,
        capacity_file,
        last_capacity: IndexMap::new(),
        epoch: SystemTime::now(),
        cpu_start: crate::lab::stats::read(&[std::process::id()]),
        interrupts,
        seen_interrupts: 0,
        progress,
        control: opts.control.clone(),
        stop: None,
        active: None,
        sizes: IndexMap::new(),
    };
    let result = runner.game_day(text, opts, &previous).await;
    cancel.cancel();
    let _ = sampler.await;
    let _ = runner.csv.flush();
    if let Some(lab) = runner.lab.take() {
        runner.progress.event("stopping the lab");
        lab.stop()?;
    }
    drop(locks);
    result
}

/// The interrupt watcher: the first Ctrl-C (or SIGTERM) asks the runner to stop injecting; the
/// second writes `interrupted` to the journal and exits at once (exit 3). The dashboard's abort
/// key counts as a Ctrl-C.
fn watch_interrupts(
    journal: Arc<Mutex<Journal>>,
    locks: Vec<PathBuf>,
    control: Option<crate::live::Control>,
) -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0_u32);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut count = 0;
        let mut aborts = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                n = crate::live::Control::next_abort(control.as_ref(), aborts) => aborts = n,
            }
            count += 1;
            if count >= 2 {
                if let Ok(mut j) = journal.lock() {
                    let _ = j.append(&Entry::Interrupted {
                        at: now(),
                        hard: true,
                    });
                }
                for l in &locks {
                    let _ = std::fs::remove_file(l);
                }
                // Give the terminal back (and print what was held) if the dashboard has it.
                crate::live::restore();
                crate::output::err("\ninterrupted twice: journal flushed, exiting now\n");
                std::process::exit(ExitCode::Aborted as i32);
            }
            let _ = tx.send(count);
        }
    });
    rx
}

/// One application's samples during the run.
struct Series {
    group: String,
    samples: Vec<Sample>,
    /// The status of the last sample.
    last_status: Option<Status>,
    band: Option<Band>,
}

/// The step being observed: for capacity tracking.
struct Active {
    target: String,
    step: usize,
    /// Whether capacity is expected back (a lab cluster or an Auto Scaling group that replaces,
    /// and steps that do not add up).
    track: bool,
    /// The nodes this step terminated (an Auto Scaling group is full again without them).
    gone: Vec<String>,
    t0: f64,
    restored: Option<f64>,
    /// The health probes' view of the step (targets with health endpoints).
    tracker: Option<capacity::Tracker>,
}

struct Runner<'a> {
    plan: &'a Plan,
    journal: Arc<Mutex<Journal>>,
    lab: Option<RunningLab>,
    /// The AWS provider of each AWS target.
    aws: IndexMap<String, AwsNodes>,
    /// The capacity of each `aws-asg` target's group, as last described.
    groups: IndexMap<String, watch::Receiver<Option<GroupCapacity>>>,
    rx: mpsc::Receiver<Snapshot>,
    series: IndexMap<String, Series>,
    csv: BufWriter<File>,
    /// Health endpoints of the targets that have them.
    endpoints: IndexMap<String, Endpoints>,
    probes: mpsc::Receiver<capacity::Probe>,
    /// `capacity.jsonl`, when any target is probed.
    capacity_file: Option<BufWriter<File>>,
    /// Each probed target's last answered capacity.
    last_capacity: IndexMap<String, Capacity>,
    epoch: SystemTime,
    interrupts: watch::Receiver<u32>,
    seen_interrupts: u32,
    progress: Progress,
    /// The dashboard's operator keys, with `--live`.
    control: Option<crate::live::Control>,
    /// Why escalation stopped (a guard, Ctrl-C), once it has.
    stop: Option<String>,
    active: Option<Active>,
    /// This process's CPU time when the run started.
    cpu_start: crate::lab::stats::Reading,
    /// Each target's node count when the run started (100% for `min_healthy`).
    sizes: IndexMap<String, usize>,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitEnd {
    Met,
    Timeout,
}

impl Runner<'_> {
    fn write(&self, entry: &Entry) -> anyhow::Result<()> {
        self.journal
            .lock()
            .map_err(|_| anyhow::anyhow!("the journal lock is poisoned"))?
            .append(entry)
            .map_err(|e| Failure::Environment(format!("cannot write the journal: {e}")).into())
    }

    fn secs_since_epoch(&self, t: SystemTime) -> f64 {
        t.duration_since(self.epoch)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
    }

    fn now_s(&self) -> f64 {
        self.secs_since_epoch(SystemTime::now())
    }

    async fn game_day(
        &mut self,
        text: &str,
        opts: &Options,
        previous: &[Entry],
    ) -> anyhow::Result<ExitCode> {
        let plan = self.plan;
        if previous.is_empty() {
            self.write(&Entry::RunStarted {
                at: now(),
                plan: plan.name.clone(),
                plan_path: opts.plan_path.display().to_string(),
                plan_digest: journal::digest(text),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                targets: plan
                    .targets
                    .iter()
                    .map(|(name, t)| TargetInfo {
                        name: name.clone(),
                        kind: format!("{:?}", t.kind).to_lowercase(),
                        provider: t.nodes.provider().name().to_owned(),
                        required_tolerance: t.required_tolerance,
                        ladder: t.ladder.clone(),
                        cumulative: t.cumulative,
                        safety_multiple: t.safety_multiple,
                        applications: t.applications.clone(),
                    })
                    .collect(),
                lab: plan.lab.is_some(),
            })?;
        } else {
            self.write(&Entry::Resumed { at: now() })?;
            self.progress.event("resuming from the journal");
        }
        for (name, t) in &plan.targets {
            let nodes = self.discover(name, t).await.map_err(|e| {
                Failure::Environment(format!("cannot discover the nodes of {name}: {e:#}"))
            })?;
            // Permissions before anything else: DryRun=true on TerminateInstances.
            if let Some(p) = self.aws.get(name.as_str()) {
                let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
                p.check_permissions(&ids)
                    .await
                    .map_err(|e| Failure::Environment(format!("{name}: {e}")))?;
            }
            self.sizes.insert(name.clone(), nodes.len());
        }

        let code = self.baseline().await?;
        if let Some(code) = code {
            return Ok(code);
        }

        for (name, target) in &plan.targets {
            self.target(name, target, previous).await?;
        }
        self.finish(opts)
    }

    /// Write the report and say the verdict.
    fn finish(&mut self, opts: &Options) -> anyhow::Result<ExitCode> {
        let entries = journal::read(&opts.dir)?;
        let provisional = Report::from_journal(&entries);
        let me = std::process::id();
        let cpu_now = crate::lab::stats::read(&[me]);
        let cpu = |r: &crate::lab::stats::Reading| r.cpu_s.first().map(|(_, s)| *s);
        let wall_s = cpu_now.at.duration_since(self.cpu_start.at).as_secs_f64();
        let cpu_s = cpu(&cpu_now).zip(cpu(&self.cpu_start)).map(|(b, a)| b - a);
        self.write(&Entry::RunFinished {
            at: now(),
            verdict: provisional.verdict,
            exit_code: provisional.exit_code,
            wall_s: Some(round1(wall_s)),
            cpu_s: cpu_s.map(|c| (c * 100.0).round() / 100.0),
        })?;
        let entries = journal::read(&opts.dir)?;
        let report = Report::from_journal(&entries);
        crate::report::write_all(&opts.dir, &report)?;
        self.progress.clear();
        let mut text = format!("\n{} — verdict {}\n", report.plan, report.verdict);
        for t in &report.targets {
            text.push_str(&format!(
                "  {}: tolerates {} terminations (required {}): {}\n",
                t.name, t.tolerated_terminations, t.required_tolerance, t.verdict
            ));
            if let Some(f) = &t.first_failure {
                text.push_str(&format!(
                    "    first failure at {}: {}\n",
                    f.terminations, f.reason
                ));
            }
            if let Some(o) = &t.overprovisioning {
                text.push_str(&format!("    {}\n", o.summary));
            }
        }
        if let Some(why) = &report.aborted {
            text.push_str(&format!("  aborted: {why}\n"));
        }
        if let Some(cpu_s) = cpu_s {
            text.push_str(&format!(
                "  took {:.0} s; spotdrill used {:.1}% of one core (the lab's scheduler included; its broker and nodes are processes of their own)\n",
                wall_s,
                cpu_s / wall_s.max(1e-9) * 100.0
            ));
        }
        text.push_str(&format!(
            "  reports: {}/{{report.json,report.md,report.html,junit.xml,samples.csv,journal.jsonl}}\n",
            opts.dir.display()
        ));
        crate::output::out(&text);
        Ok(match report.exit_code {
            0 => ExitCode::Success,
            1 => ExitCode::Failed,
            _ => ExitCode::Aborted,
        })
    }

    /// Wait for samples until `done` holds or `deadline` passes. Interrupts are noted (`stop`),
    /// never end a wait by themselves: callers that should end on them say so in `done`.
    async fn pump(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<WaitEnd> {
        loop {
            if done(self) {
                return Ok(WaitEnd::Met);
            }
            tokio::select! {
                snapshot = self.rx.recv() => match snapshot {
                    Some(s) => self.ingest(&s)?,
                    None => anyhow::bail!("the lag sampler stopped"),
                },
                () = tokio::time::sleep_until(deadline.into()) => return Ok(WaitEnd::Timeout),
                changed = self.interrupts.changed() => {
                    if changed.is_ok() {
                        let count = *self.interrupts.borrow();
                        if count > self.seen_interrupts {
                            self.seen_interrupts = count;
                            self.interrupted()?;
                        }
                    }
                }
            }
        }
    }

    /// Stop escalating (a provider failed or refused): the journal says why, observation and the
    /// report go on.
    fn stop_escalation(&mut self, why: &str) -> anyhow::Result<()> {
        if self.stop.is_none() {
            self.stop = Some(why.to_owned());
            self.write(&Entry::Aborted {
                at: now(),
                reason: why.to_owned(),
            })?;
            self.progress.event(&format!("{why}; no more terminations"));
        }
        Ok(())
    }

    fn interrupted(&mut self) -> anyhow::Result<()> {
        if self.stop.is_none() {
            self.stop = Some("interrupted (Ctrl-C)".into());
            self.write(&Entry::Interrupted {
                at: now(),
                hard: false,
            })?;
            self.progress.event(
                "interrupted: no more terminations; observing to the end of the step, then the report (Ctrl-C again to exit at once)",
            );
        }
        Ok(())
    }

    /// Take one snapshot in: samples per application, samples.csv, progress, guards.
    fn ingest(&mut self, snapshot: &[GroupLag]) -> anyhow::Result<()> {
        for g in snapshot {
            let t = self.secs_since_epoch(g.at);
            let at = humantime::format_rfc3339_millis(g.at);
            for (name, s) in &mut self.series {
                if s.group != g.group {
                    continue;
                }
                let lag = match g.status {
                    Status::Ok => g.lag_seconds,
                    Status::NeverCommitted | Status::Missing => None,
                };
                s.samples.push(Sample {
                    t,
                    lag_s: lag,
                    lag_messages: g.lag_messages.map(|m| m.max(0) as u64),
                });
                s.last_status = Some(g.status.clone());
                writeln!(
                    self.csv,
                    "{at},{t:.3},{name},{},{},{},{}",
                    g.group,
                    match g.status {
                        Status::Ok => "ok",
                        Status::NeverCommitted => "never_committed",
                        Status::Missing => "missing",
                    },
                    lag.map(|l| format!("{l:.3}")).unwrap_or_default(),
                    g.lag_messages.map(|m| m.to_string()).unwrap_or_default()
                )?;
            }
        }
        self.csv.flush()?;
        self.take_probes()?;
        // Capacity of the step being observed: from the health probes when they answer,
        // otherwise from the lab or the Auto Scaling group.
        let back = self.active.as_ref().and_then(|a| {
            if a.restored.is_some() || !a.track {
                return None;
            }
            match &a.tracker {
                Some(t) if t.known() => t.restored(),
                _ => self
                    .capacity_full(&a.target, &a.gone)
                    .then(|| self.now_s() - a.t0),
            }
        });
        if let (Some(after), Some(a)) = (back, &self.active) {
            let (target, step) = (a.target.clone(), a.step);
            if let Some(a) = &mut self.active {
                a.restored = Some(after);
            }
            self.write(&Entry::CapacityRestored {
                at: now(),
                target: target.clone(),
                step,
                after_s: round1(after),
            })?;
            self.progress.event(&format!(
                "{target}: capacity back {after:.1} s after the injection"
            ));
        }
        // The lab's broker must outlive the run.
        if let Some(why) = self.lab.as_mut().and_then(RunningLab::broker_exited)
            && self.stop.is_none()
        {
            self.stop = Some(why.clone());
            self.write(&Entry::Aborted {
                at: now(),
                reason: why.clone(),
            })?;
            self.progress.event(&format!("{why}; no more terminations"));
        }
        // The abort-lag guard.
        for (name, s) in &self.series {
            let (Some(app), Some(last)) = (self.plan.applications.get(name), s.samples.last())
            else {
                continue;
            };
            if let (Some(abort), Some(lag)) = (app.abort_lag, last.valid_lag())
                && lag > abort.as_secs_f64()
                && self.stop.is_none()
            {
                let detail = format!(
                    "{name} lag {lag:.1} s is above its abort_lag {}",
                    humantime::format_duration(abort)
                );
                self.stop = Some(format!("guard abort_lag: {detail}"));
                let target = self
                    .active
                    .as_ref()
                    .map(|a| a.target.clone())
                    .unwrap_or_default();
                self.write(&Entry::GuardBreached {
                    at: now(),
                    target,
                    guard: "abort_lag".into(),
                    detail: detail.clone(),
                })?;
                self.progress
                    .event(&format!("guard breached: {detail}; no more terminations"));
                break;
            }
        }
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
        self.progress.status(&format!("{line}{clock}"));
        Ok(())
    }

    /// Lab warm-up, then the baseline window and each application's band. Returns an exit code
    /// when the run must not start.
    async fn baseline(&mut self) -> anyhow::Result<Option<ExitCode>> {
        let plan = self.plan;
        let ready = |r: &Self| {
            r.series
                .values()
                .all(|s| s.samples.last().is_some_and(|l| l.valid_lag().is_some()))
        };
        let warmup = if self.lab.is_some() {
            self.progress
                .event("waiting for the lab's workloads to commit");
            LAB_WARMUP
        } else {
            plan.observe.sample_interval * 3
        };
        if self.pump(Instant::now() + warmup, ready).await? == WaitEnd::Timeout {
            let bad: Vec<String> = self
                .series
                .iter()
                .filter(|(_, s)| s.samples.last().is_none_or(|l| l.valid_lag().is_none()))
                .map(|(name, s)| {
                    let why = match s.last_status.as_ref() {
                        Some(Status::NeverCommitted) => "has no committed offsets",
                        Some(Status::Missing) => "cannot be measured (Kafka unreachable?)",
                        _ => "has no lag sample",
                    };
                    format!("{name} (group {}) {why}", s.group)
                })
                .collect();
            crate::output::err(&format!("error: refusing to start: {}\n", bad.join("; ")));
            return Ok(Some(ExitCode::Environment));
        }
        self.progress.event(&format!(
            "baseline: {}",
            humantime::format_duration(plan.observe.baseline)
        ));
        let start = self.now_s();
        let until = Instant::now() + plan.observe.baseline;
        self.pump(until, |r| r.stop.is_some()).await?;
        if self.stop.is_some() {
            return Ok(Some(ExitCode::Aborted));
        }
        let settings = BandSettings {
            margin: plan.observe.band_margin,
            floor_s: plan.observe.band_floor.as_secs_f64(),
        };
        let mut apps = Vec::new();
        let mut refusals = Vec::new();
        for (name, s) in &mut self.series {
            let window: Vec<Sample> = s.samples.iter().copied().filter(|x| x.t >= start).collect();
            let Some(band) = analysis::baseline_band(&window, settings) else {
                refusals.push(format!("{name}: no lag sample during the baseline"));
                continue;
            };
            let app = &plan.applications[name.as_str()];
            if let Some(abort) = app.abort_lag
                && band.p99_s > abort.as_secs_f64()
            {
                refusals.push(format!(
                    "{name}: baseline lag {:.1} s is already above its abort_lag {}",
                    band.p99_s,
                    humantime::format_duration(abort)
                ));
            }
            s.band = Some(band);
            apps.push(BaselineApp {
                name: name.clone(),
                group: s.group.clone(),
                p99_s: round1(band.p99_s),
                upper_s: round1(band.upper_s),
                samples: band.samples,
            });
            self.progress.event(&format!(
                "  {name}: baseline p99 {:.1} s, band up to {:.1} s",
                band.p99_s, band.upper_s
            ));
        }
        self.write(&Entry::Baseline {
            at: now(),
            applications: apps,
        })?;
        if !refusals.is_empty() {
            crate::output::err(&format!(
                "error: refusing to start: {}\n",
                refusals.join("; ")
            ));
            return Ok(Some(ExitCode::Environment));
        }
        Ok(None)
    }

    /// Record the health probes that arrived: `capacity.jsonl`, each target's last capacity, and
    /// the step being observed.
    fn take_probes(&mut self) -> anyhow::Result<()> {
        while let Ok(p) = self.probes.try_recv() {
            let t = self.secs_since_epoch(p.at);
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
    async fn probe_now(&self, name: &str) -> Option<Result<Capacity, String>> {
        let e = self.endpoints.get(name)?.clone();
        let deadline = self
            .plan
            .observe
            .sample_interval
            .max(Duration::from_secs(2));
        Some(
            tokio::task::spawn_blocking(move || crate::observe::health::probe(&e, deadline))
                .await
                .map_err(|e| format!("the probe failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
        )
    }

    /// The target's nodes now: the lab's, or its AWS provider's eligible instances.
    async fn discover(&self, name: &str, target: &Target) -> anyhow::Result<Vec<Node>> {
        if let Some(p) = self.aws.get(name) {
            return Ok(p.discover().await?.nodes());
        }
        Ok(match (&target.nodes, &self.lab) {
            (NodeSelector::Lab { cluster, notice }, Some(lab)) => LabNodes {
                lab,
                cluster: cluster.clone(),
                notice: *notice,
            }
            .discover(),
            _ => Vec::new(),
        })
    }

    /// Whether a target's capacity is back: a lab cluster full again, or an Auto Scaling group at
    /// its desired InService count without the nodes in `gone`. True where nothing is tracked.
    fn capacity_full(&self, name: &str, gone: &[String]) -> bool {
        let Some(target) = self.plan.targets.get(name) else {
            return true;
        };
        match (&target.nodes, &self.lab) {
            (NodeSelector::Lab { cluster, .. }, Some(lab)) => {
                lab.capacity(cluster).is_some_and(|c| c.is_full())
            }
            (NodeSelector::AwsAsg { replace: true, .. }, _) => self
                .groups
                .get(name)
                .is_some_and(|rx| rx.borrow().as_ref().is_some_and(|c| c.is_full(gone))),
            _ => true,
        }
    }

    async fn target(
        &mut self,
        name: &str,
        target: &Target,
        previous: &[Entry],
    ) -> anyhow::Result<()> {
        let plan = self.plan;
        let mut ended: Option<String> = None;
        // Capacity comes back after a step: a lab cluster, or a group that replaces.
        let tracks_capacity = matches!(
            target.nodes,
            NodeSelector::Lab { .. } | NodeSelector::AwsAsg { replace: true, .. }
        );
        for (step, &n) in target.ladder.iter().enumerate() {
            let skip = |r: &Self, reason: &str| {
                r.write(&Entry::StepSkipped {
                    at: now(),
                    target: name.to_owned(),
                    step,
                    terminations: n,
                    reason: reason.to_owned(),
                })
            };
            // Resume: a judged step stays judged; a step that reached its intent is never
            // injected again.
            let judged = previous.iter().find_map(|e| match e {
                Entry::StepJudged {
                    target: t,
                    step: s,
                    verdict,
                    ..
                } if t == name && *s == step => Some(*verdict),
                _ => None,
            });
            let intended = previous.iter().any(|e| {
                matches!(e, Entry::Intent { target: t, step: s, .. } if t == name && *s == step)
            });
            match judged {
                Some(v) => {
                    if v != Verdict::Pass && ended.is_none() {
                        ended = Some(format!("step {} ({n}) did not pass", step + 1));
                    }
                    continue;
                }
                None if intended => {
                    // Its terminations happened (or may have): never again. Later steps still
                    // run, for their evidence; the tolerance streak ends here all the same.
                    skip(
                        self,
                        "interrupted after its terminations; not repeated on resume",
                    )?;
                    continue;
                }
                None => {}
            }
            if let Some(why) = self.stop.clone() {
                skip(self, &format!("escalation stopped: {why}"))?;
                continue;
            }
            if let Some(why) = &ended {
                skip(self, &format!("not run: {why}"))?;
                continue;
            }
            // Cooldown: lag back in band (and capacity back unless steps add up).
            self.progress.event(&format!(
                "{name} step {}/{}: {n} termination{} — cooldown",
                step + 1,
                target.ladder.len(),
                if n == 1 { "" } else { "s" }
            ));
            let apps = target.applications.clone();
            let hold = plan.observe.hold.as_secs_f64();
            let interval = plan.observe.sample_interval.as_secs_f64();
            let wait_capacity = !target.cumulative;
            let target_name = name.to_owned();
            let ready = move |r: &Self| {
                if r.stop.is_some() {
                    return true;
                }
                let lag_ok = apps.iter().all(|a| {
                    r.series.get(a.as_str()).is_some_and(|s| {
                        s.band.is_some_and(|b| {
                            analysis::in_band_for(&s.samples, b.upper_s, hold, interval)
                        })
                    })
                });
                // With health probes, the previous step's capacity counts as back once they
                // saw it (so its `capacity_restored_s` is measured, not cut off).
                let seen_back = r.active.as_ref().is_none_or(|a| {
                    a.target != target_name
                        || !a.track
                        || a.restored.is_some()
                        || a.tracker.as_ref().is_none_or(|t| !t.known())
                });
                let capacity_ok = !wait_capacity
                    || (r.capacity_full(&target_name, &[])
                        && seen_back
                        && r.last_capacity
                            .get(&target_name)
                            .is_none_or(Capacity::is_whole));
                lag_ok && capacity_ok
            };
            let cooled = self
                .pump(Instant::now() + plan.observe.cooldown, ready)
                .await?;
            if let Some(why) = self.stop.clone() {
                skip(self, &format!("escalation stopped: {why}"))?;
                continue;
            }
            if cooled == WaitEnd::Timeout {
                let why = format!(
                    "lag{} did not come back within the cooldown of {}",
                    if wait_capacity { " or capacity" } else { "" },
                    humantime::format_duration(plan.observe.cooldown)
                );
                self.progress
                    .event(&format!("{name}: {why}; later steps are not run"));
                skip(self, &why)?;
                ended = Some(why);
                continue;
            }
            // Guards (min_healthy counts the nodes discovered now).
            let live = if target.guards.min_healthy.is_some() {
                match self.discover(name, target).await {
                    Ok(nodes) => Some(nodes.len()),
                    Err(e) => {
                        let why = format!("cannot discover the nodes of {name}: {e:#}");
                        self.stop_escalation(&why)?;
                        skip(self, &format!("escalation stopped: {why}"))?;
                        continue;
                    }
                }
            } else {
                None
            };
            if let Some((guard, detail)) = self.guard(name, target, n, previous, live) {
                self.write(&Entry::GuardBreached {
                    at: now(),
                    target: name.to_owned(),
                    guard: guard.clone(),
                    detail: detail.clone(),
                })?;
                self.progress.event(&format!(
                    "guard {guard} of {name}: {detail}; no more terminations"
                ));
                self.stop = Some(format!("guard {guard} of {name}: {detail}"));
                skip(self, &format!("guard {guard}: {detail}"))?;
                continue;
            }
            // Select.
            let discovered = match self.discover(name, target).await {
                Ok(nodes) => nodes,
                Err(e) => {
                    let why = format!("cannot discover the nodes of {name}: {e:#}");
                    self.stop_escalation(&why)?;
                    skip(self, &format!("escalation stopped: {why}"))?;
                    continue;
                }
            };
            let eligible: Vec<Node> = discovered
                .into_iter()
                .filter(|node| node.running && crate::nodes::eligible(&target.nodes, node))
                .collect();
            // What runs where, right now: for `running:`, `max_per_topology` and the step's
            // capacity before the injection.
            let before = match self.probe_now(name).await {
                Some(Ok(c)) => {
                    self.last_capacity.insert(name.to_owned(), c.clone());
                    Some(c)
                }
                Some(Err(e)) => {
                    if target.running.is_some() || target.guards.max_per_topology.is_some() {
                        let why = format!(
                            "cannot tell which nodes of {name} run what (health probe: {e})"
                        );
                        self.stop_escalation(&why)?;
                        skip(self, &format!("escalation stopped: {why}"))?;
                        continue;
                    }
                    self.last_capacity.get(name).cloned()
                }
                None => None,
            };
            let chosen =
                match capacity::choose_step(&eligible, n as usize, target, step, before.as_ref()) {
                    Ok(c) => c,
                    Err(e @ capacity::ChoiceError::Select(..)) => {
                        let why = e.reason();
                        self.progress
                            .event(&format!("{name} step {}: {why}", step + 1));
                        skip(self, &why)?;
                        ended = Some(why);
                        continue;
                    }
                    Err(e @ capacity::ChoiceError::MaxPerTopology { .. }) => {
                        let detail = e.reason();
                        self.write(&Entry::GuardBreached {
                            at: now(),
                            target: name.to_owned(),
                            guard: "max_per_topology".into(),
                            detail: detail.clone(),
                        })?;
                        self.progress.event(&format!(
                            "guard max_per_topology of {name}: {detail}; no more terminations"
                        ));
                        self.stop = Some(format!("guard max_per_topology of {name}: {detail}"));
                        skip(self, &format!("guard max_per_topology: {detail}"))?;
                        continue;
                    }
                };
            // `--step-confirm`: the operator lets the step go (sampling goes on meanwhile; the
            // abort key ends the wait like a Ctrl-C).
            if let Some(c) = self
                .control
                .clone()
                .filter(crate::live::Control::step_confirm)
            {
                let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
                c.ask(format!(
                    "{name} step {}/{}: terminate {n} ({})",
                    step + 1,
                    target.ladder.len(),
                    ids.join(", ")
                ));
                let forever = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                self.pump(forever, |r| r.stop.is_some() || c.waiting().is_none())
                    .await?;
                c.proceed();
                if let Some(why) = self.stop.clone() {
                    skip(self, &format!("escalation stopped: {why}"))?;
                    continue;
                }
            }
            // Memory stays flat over a long run: a step is judged on its own samples (from its
            // injection on) and the cooldown on the last `hold`; older samples are on disk in
            // samples.csv, where the reports read them.
            let keep_from = self.now_s() - hold - 2.0 * interval;
            for s in self.series.values_mut() {
                let old = s.samples.partition_point(|x| x.t < keep_from);
                s.samples.drain(..old);
            }
            // Inject: the intent is on disk before anything is terminated.
            self.write(&Entry::StepStarted {
                at: now(),
                target: name.to_owned(),
                step,
                terminations: n,
            })?;
            let notice = match &target.nodes {
                NodeSelector::Lab { notice, .. } => *notice,
                NodeSelector::AwsFis { notice, .. } => *notice,
                _ => Duration::ZERO,
            };
            self.write(&Entry::Intent {
                at: now(),
                target: name.to_owned(),
                step,
                provider: target.nodes.provider().name().to_owned(),
                notice_s: notice.as_secs_f64(),
                nodes: chosen.iter().map(Node::to_ref).collect(),
            })?;
            let mut injected_at = SystemTime::now();
            let aws_provider = self.aws.get(name).cloned();
            let outcomes = match (&target.nodes, &self.lab, aws_provider) {
                (NodeSelector::Lab { cluster, notice }, Some(lab), _) => LabNodes {
                    lab,
                    cluster: cluster.clone(),
                    notice: *notice,
                }
                .terminate(&chosen),
                (_, _, Some(provider)) => {
                    let journal = self.journal.clone();
                    let events = move |ev: ProviderEvent| {
                        tracing::info!(step, event = %ev.event, "{name}: {}", ev.detail);
                        let entry = Entry::ProviderEvent {
                            at: now(),
                            target: name.to_owned(),
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
                    let mut interrupts = self.interrupts.clone();
                    let seen = self.seen_interrupts;
                    let stop = async move {
                        let _ = interrupts.wait_for(|n| *n > seen).await;
                    };
                    let label = format!("{name}-step-{}", step + 1);
                    // Keep sampling while the provider works: an FIS experiment waits out the
                    // whole notice (2–15 min), and lag must be measured through it.
                    let work = provider.terminate(&chosen, &label, &events, stop);
                    tokio::pin!(work);
                    loop {
                        tokio::select! {
                            out = &mut work => break out,
                            snapshot = self.rx.recv() => match snapshot {
                                Some(s) => self.ingest(&s)?,
                                None => anyhow::bail!("the lag sampler stopped"),
                            },
                        }
                    }
                }
                _ => anyhow::bail!(
                    "provider {} has no nodes to terminate here",
                    target.nodes.provider().name()
                ),
            };
            for o in &outcomes {
                self.write(&Entry::Outcome {
                    at: now(),
                    target: name.to_owned(),
                    step,
                    node: o.id.clone(),
                    outcome: o.outcome,
                    detail: o.detail.clone(),
                })?;
            }
            // An FIS interruption terminates at the end of its notice, when the experiment
            // completes: that is the moment the cluster loses the nodes.
            if matches!(target.nodes, NodeSelector::AwsFis { .. }) {
                injected_at = SystemTime::now();
            }
            let t0 = self.secs_since_epoch(injected_at);
            let ids: Vec<String> = chosen.iter().map(|c| c.id.clone()).collect();
            let injected_text = humantime::format_rfc3339_millis(injected_at).to_string();
            self.write(&Entry::Injected {
                at: injected_text.clone(),
                target: name.to_owned(),
                step,
            })?;
            let done = outcomes
                .iter()
                .filter(|o| o.outcome == NodeOutcome::Terminated)
                .count();
            // A partial failure (some terminated, some refused or failed) is recorded per node
            // above and stops escalation.
            if done < outcomes.len() && self.stop.is_none() {
                let failed: Vec<String> = outcomes
                    .iter()
                    .filter(|o| o.outcome != NodeOutcome::Terminated)
                    .map(|o| format!("{} {:?}", o.id, o.outcome).to_lowercase())
                    .collect();
                self.stop_escalation(&format!(
                    "{name} step {}: {} of {} nodes not terminated ({})",
                    step + 1,
                    failed.len(),
                    outcomes.len(),
                    failed.join(", ")
                ))?;
            }
            self.progress.event(&format!(
                "{name} step {}: terminated {done}/{} ({})",
                step + 1,
                chosen.len(),
                ids.join(", ")
            ));
            self.active = Some(Active {
                target: name.to_owned(),
                step,
                track: tracks_capacity && !target.cumulative,
                gone: outcomes
                    .iter()
                    .filter(|o| o.outcome == NodeOutcome::Terminated)
                    .map(|o| o.id.clone())
                    .collect(),
                t0,
                restored: None,
                tracker: self.endpoints.contains_key(name).then(|| {
                    let gone_hosts = chosen
                        .iter()
                        .filter(|c| {
                            outcomes
                                .iter()
                                .any(|o| o.id == c.id && o.outcome == NodeOutcome::Terminated)
                        })
                        .map(|c| c.host.clone())
                        .collect();
                    let apps: Vec<(String, String)> = target
                        .applications
                        .iter()
                        .map(|a| {
                            (
                                a.clone(),
                                plan.applications[a.as_str()].scheduled_as.clone(),
                            )
                        })
                        .collect();
                    capacity::Tracker::new(
                        target.kind,
                        t0,
                        gone_hosts,
                        &apps,
                        before.clone(),
                        tracks_capacity && !target.cumulative,
                    )
                }),
            });
            // Observe until every application recovered (with hold) or the timeout.
            let apps = target.applications.clone();
            let settled = Instant::now() + plan.observe.settle;
            let recovered = move |r: &Self| {
                Instant::now() >= settled
                    && r.active
                        .as_ref()
                        .and_then(|a| a.tracker.as_ref())
                        .is_none_or(capacity::Tracker::all_rescheduled)
                    && apps.iter().all(|a| {
                        r.series.get(a.as_str()).is_some_and(|s| {
                            s.band.is_some_and(|b| {
                                analysis::recovered_at(&s.samples, t0, b.upper_s, hold, interval)
                                    .is_some()
                            })
                        })
                    })
            };
            let timeout = plan.observe.timeout;
            let deadline = Instant::now() + timeout;
            self.pump(deadline, recovered).await?;
            let observed_until = self.now_s();
            // Judge.
            let mut results = Vec::new();
            let mut findings = self
                .active
                .as_ref()
                .and_then(|a| a.tracker.as_ref())
                .map(capacity::Tracker::findings)
                .unwrap_or_default();
            for app_name in &target.applications {
                let app = &plan.applications[app_name.as_str()];
                let s = &self.series[app_name.as_str()];
                let Some(band) = s.band else {
                    continue;
                };
                let rules = StepRules {
                    t0,
                    hold_s: hold,
                    timeout_s: timeout.as_secs_f64(),
                    sample_interval_s: interval,
                    max_lag_s: app.max_lag.as_secs_f64(),
                    max_recovery_s: app.max_recovery.as_secs_f64(),
                };
                let j = analysis::judge_step(&s.samples, &band, &rules, observed_until);
                let tracker = self.active.as_ref().and_then(|a| a.tracker.as_ref());
                let rescheduled = tracker.and_then(|t| t.rescheduled(app_name));
                let lag = capacity::Judged {
                    verdict: j.verdict,
                    recovery_s: j.recovery_s,
                    reason: j.reason,
                };
                let judged = match tracker {
                    Some(t) if t.known() && t.affected(app_name) == Some(true) => {
                        capacity::with_rescheduling(
                            lag,
                            &app.scheduled_as,
                            rescheduled,
                            rules.max_recovery_s,
                        )
                    }
                    _ => lag,
                };
                if judged.verdict != Verdict::Pass
                    && let Some(t) = tracker
                {
                    let after: Vec<(f64, f64)> = s
                        .samples
                        .iter()
                        .filter(|x| x.t >= t0)
                        .filter_map(|x| x.valid_lag().map(|l| (x.t, l)))
                        .collect();
                    if let Some(f) = t.stalled(app_name, &after, band.upper_s) {
                        findings.push(f);
                    }
                }
                // A step that terminated fewer nodes than its rung never tested the rung: it
                // cannot pass (a failure with fewer losses is still a failure).
                let judged = if done < chosen.len() && judged.verdict == Verdict::Pass {
                    capacity::Judged {
                        verdict: Verdict::Inconclusive,
                        reason: format!(
                            "only {done} of {} terminations done; {}",
                            chosen.len(),
                            judged.reason
                        ),
                        ..judged
                    }
                } else {
                    judged
                };
                results.push(AppResult {
                    name: app_name.clone(),
                    baseline_lag_s: Some(round1(band.p99_s)),
                    band_upper_s: Some(round1(band.upper_s)),
                    spike_lag_s: j.spike_lag_s.map(round1),
                    time_to_peak_s: j.time_to_peak_s.map(round1),
                    recovery_s: judged.recovery_s.map(round1),
                    rescheduled_s: rescheduled.map(round1),
                    verdict: judged.verdict,
                    reason: judged.reason,
                });
            }
            let verdict = if results.iter().all(|r| r.verdict == Verdict::Pass) {
                Verdict::Pass
            } else if results.iter().any(|r| r.verdict == Verdict::Fail) {
                Verdict::Fail
            } else {
                Verdict::Inconclusive
            };
            let restored = self.active.as_ref().and_then(|a| a.restored);
            self.write(&Entry::StepJudged {
                at: now(),
                target: name.to_owned(),
                step,
                terminations: n,
                nodes: ids,
                injected_at: Some(injected_text),
                verdict,
                capacity_restored_s: restored.map(round1),
                applications: results.clone(),
                capacity: self
                    .active
                    .as_ref()
                    .and_then(|a| a.tracker.as_ref())
                    .map(capacity::Tracker::summary),
                findings: findings.clone(),
            })?;
            for r in &results {
                self.progress
                    .event(&format!("  {}: {} — {}", r.name, r.verdict, r.reason));
            }
            for f in &findings {
                self.progress.event(&format!("  finding: {f}"));
            }
            if verdict != Verdict::Pass {
                ended = Some(format!("step {} ({n}) {verdict}", step + 1));
            }
        }
        // Capacity of the last step may come back later; the report is better for knowing it.
        if let Some(a) = &self.active
            && a.restored.is_none()
            && a.track
            && a.target == name
        {
            let until = Instant::now() + plan.observe.cooldown.min(Duration::from_secs(120));
            self.pump(until, |r| {
                r.stop.is_some() || r.active.as_ref().is_some_and(|a| a.restored.is_some())
            })
            .await?;
        }
        self.active = None;
        Ok(())
    }

    /// The first guard the next step would breach, if any: (guard, detail).
    fn guard(
        &self,
        name: &str,
        target: &Target,
        n: u32,
        previous: &[Entry],
        live: Option<usize>,
    ) -> Option<(String, String)> {
        let g = &target.guards;
        if let Some(window) = g.allowed_hours {
            let minute = crate::plan::HourWindow::now_minute();
            if !window.contains(minute) {
                return Some((
                    "allowed_hours".into(),
                    format!(
                        "{:02}:{:02} UTC is outside {:02}:{:02}-{:02}:{:02}",
                        minute / 60,
                        minute % 60,
                        window.start_minute / 60,
                        window.start_minute % 60,
                        window.end_minute / 60,
                        window.end_minute % 60
                    ),
                ));
            }
        }
        if let Some(max) = g.max_terminations {
            let so_far = self.terminated(name, previous);
            if so_far + n > max {
                return Some((
                    "max_terminations".into(),
                    format!("{so_far} terminated so far + {n} would exceed {max}"),
                ));
            }
        }
        if let (Some(min), Some(live)) = (g.min_healthy, live) {
            let live = live as u32;
            let size = self.sizes.get(name).copied().unwrap_or(0) as u32;
            let left = live.saturating_sub(n);
            let needed = match min {
                MinHealthy::Count(c) => c,
                MinHealthy::Percent(p) => (f64::from(size) * p / 100.0).ceil() as u32,
            };
            if left < needed {
                return Some((
                    "min_healthy".into(),
                    format!("{live} healthy nodes − {n} would leave {left}, below {needed}"),
                ));
            }
        }
        None
    }

    /// Nodes of a target terminated so far in this run (and the runs it resumes).
    fn terminated(&self, name: &str, previous: &[Entry]) -> u32 {
        let journal_now = self
            .journal
            .lock()
            .ok()
            .and_then(|j| journal::read(j.path().parent().unwrap_or(Path::new("."))).ok())
            .unwrap_or_else(|| previous.to_vec());
        journal_now
            .iter()
            .filter(|e| {
                matches!(e, Entry::Outcome { target, outcome: NodeOutcome::Terminated, .. } if target == name)
            })
            .count() as u32
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The default run directory: `reports/<UTC time>-<plan name>`.
pub fn default_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    let slug: String = plan
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    PathBuf::from("reports").join(format!("{stamp}-{slug}"))
}
