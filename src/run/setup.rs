//! What a run holds before its first sample: the run directory (and, to resume, its journal),
//! one lock per target (keyed on the cluster's identity), the journal, the interrupt watcher, the
//! lab, the node providers, the health probes, the lag sampler and `samples.csv`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Options;
use super::capacity;
use super::clock::Clock;
use super::control::Control;
use super::lock::{self, Release, Store, TargetLock};
use super::progress::Progress;
use super::runner::{Runner, Series};
use crate::exit::{ExitCode, Failure, Kind};
use crate::journal::{self, Entry, Journal};
use crate::kafka::KafkaSettings;
use crate::lab::up::RunningLab;
use crate::nodes::aws::AwsSettings;
use crate::nodes::{self, Provider};
use crate::observe::health::LabUrl;
use crate::observe::promql::PromQuery;
use crate::observe::{GroupSpec, LagProbe};
use crate::plan::{Brokers, NodeSelector, Plan};

/// The journal of the run to resume (empty for a new run), after checking that the run
/// directory is what the options say it is.
pub fn previous_run(text: &str, opts: &Options) -> anyhow::Result<Vec<Entry>> {
    std::fs::create_dir_all(&opts.dir).map_err(|e| {
        Failure::environment(format!("cannot create {}", opts.dir.display())).because(e)
    })?;
    let shown = opts.dir.display();
    if !opts.resume {
        if opts.dir.join(journal::FILE).exists() {
            return Err(Failure::bad_input(format!(
                "{shown} already holds a run; choose another --out or continue it with --resume"
            ))
            .into());
        }
        return Ok(Vec::new());
    }
    let entries = journal::read(&opts.dir)?;
    let digest = entries.iter().find_map(|e| match e {
        Entry::RunStarted { plan_digest, .. } => Some(plan_digest.clone()),
        _ => None,
    });
    match digest {
        None => Err(Failure::bad_input(format!(
            "{shown} has no run to resume (its journal has no run_started)"
        ))
        .into()),
        Some(d) if d != journal::digest(text) => Err(Failure::bad_input(format!(
            "the plan changed since the run in {shown} started; resume it with the same plan"
        ))
        .into()),
        Some(_) => {
            super::resume::check(&entries, &shown.to_string(), opts.continued)?;
            Ok(entries)
        }
    }
}

/// The target's providers, by name.
pub type Providers = IndexMap<String, Arc<dyn Provider>>;

/// Connect the providers of the targets `which` selects (`lab`: the running lab, if any).
async fn connect(
    plan: &Plan,
    aws: &AwsSettings,
    lab: Option<&RunningLab>,
    lab_dir: Option<&Path>,
    which: impl Fn(&NodeSelector) -> bool,
) -> Providers {
    let handle = lab.map(RunningLab::handle);
    let cx = nodes::Context {
        aws,
        plan_lab: plan.lab.as_ref(),
        lab: handle.as_ref(),
        lab_dir,
    };
    let mut out = IndexMap::new();
    for (name, t) in plan.targets.iter().filter(|(_, t)| which(&t.nodes)) {
        out.insert(name.clone(), Arc::from(nodes::connect(&t.nodes, cx).await));
    }
    out
}

/// Every target's provider, for a look at where it acts (no run: a lab's has no directory).
pub async fn connect_all(plan: &Plan, aws: &AwsSettings) -> Providers {
    connect(plan, aws, None, None, |_| true).await
}

/// One run per target at a time: every target's provider, connected once, and a lock per
/// target keyed on its cluster's identity (a lab's lives in the run directory), in the plan's
/// lock store.
pub async fn locks(plan: &Plan, opts: &Options) -> anyhow::Result<(Vec<TargetLock>, Providers)> {
    let providers = connect(plan, &opts.aws, None, Some(&opts.dir), |_| true).await;
    super::place::known(&providers)?;
    let store = Store::of(plan, &opts.aws, opts.lock_dir.clone()).await?;
    let mut locks = Vec::new();
    for (name, p) in &providers {
        let key = lock::key(&p.lock_identity());
        match store.acquire(name, &key, &opts.dir).await {
            Ok(lock) => locks.push(lock),
            Err(e) => {
                lock::release_all(locks).await;
                return Err(Failure::of(Kind::Environment, e).into());
            }
        }
    }
    Ok((locks, providers))
}

/// Each target's lock key, as `unlock` clears it: its provider's identity of the cluster; for a
/// lab cluster (one lock per run directory) the prefix of all of them.
pub async fn lock_keys(plan: &Plan, aws: &AwsSettings) -> IndexMap<String, lock::Key> {
    connect_all(plan, aws)
        .await
        .into_iter()
        .map(|(name, p)| {
            let prefix = plan.targets[&name].nodes.on_lab();
            let text = lock::key(&p.lock_identity());
            (name, lock::Key { text, prefix })
        })
        .collect()
}

/// Everything the runner needs, started: journal, interrupts, lab, providers, probes, sampler.
pub async fn runner<'a>(
    plan: &'a Plan,
    opts: &Options,
    locks: &[TargetLock],
    mut providers: Providers,
) -> anyhow::Result<Runner<'a>> {
    let journal = Arc::new(Mutex::new(Journal::open(&opts.dir)?));
    let releases: Vec<Release> = locks.iter().map(TargetLock::releaser).collect();
    let interrupts = watch_interrupts(
        journal.clone(),
        releases,
        opts.control.clone(),
        providers.clone(),
    );
    let mut progress = Progress::new().quiet(opts.control.is_some());
    let lab = start_lab(plan, opts, &mut progress)?;
    let brokers = brokers(plan, lab.as_ref())?;
    let cancel = CancellationToken::new();
    // The lab's providers act on the lab just started; the others are kept as connected.
    if let Some(lab) = &lab {
        let is_lab = NodeSelector::on_lab;
        let dir = Some(opts.dir.as_path());
        providers.extend(connect(plan, &opts.aws, Some(lab), dir, is_lab).await);
    }
    let every = plan.observe.sample_interval.max(Duration::from_secs(1));
    for p in providers.values() {
        p.follow_capacity(every, cancel.clone());
    }
    let mut endpoints = endpoints(plan, opts, lab.as_ref())?;
    // Kubernetes targets: the capacity comes from the API server the provider reaches.
    for (name, p) in &providers {
        if let Some(e) = p.health().filter(|_| !endpoints.contains_key(name)) {
            endpoints.insert(name.clone(), e);
        }
    }
    let clock = Clock::start();
    let probes = capacity::spawn(
        endpoints
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect(),
        plan.observe.sample_interval,
        clock,
        cancel.clone(),
    );
    let capacity_file = match endpoints.is_empty() {
        true => None,
        false => Some(append(&opts.dir.join("capacity.jsonl"))?),
    };
    let mut settings = KafkaSettings::new(brokers);
    settings.security.clone_from(&plan.kafka.security);
    let specs: Vec<GroupSpec> = plan.consumer_groups().iter().map(GroupSpec::from).collect();
    let probe =
        LagProbe::connect(settings, &specs).map_err(|e| Failure::of(Kind::Environment, e))?;
    let (rx, sampler) = crate::observe::sampler::spawn_with(
        probe,
        promql_queries(plan, opts)?,
        plan.observe.sample_interval,
        cancel.clone(),
    );
    Ok(Runner {
        plan,
        journal,
        lab,
        providers,
        rx,
        series: series(plan),
        csv: samples_csv(&opts.dir)?,
        watermarks: Some(watermarks_csv(&opts.dir)?),
        endpoints,
        probes,
        capacity_file,
        last_capacity: IndexMap::new(),
        clock,
        cpu_start: crate::lab::stats::read(&[std::process::id()]),
        interrupts,
        seen_interrupts: 0,
        listening: true,
        progress,
        control: opts.control.clone(),
        stop: None,
        continued: opts.continued,
        active: None,
        sizes: IndexMap::new(),
        cancel,
        sampler: Some(sampler),
        dir: opts.dir.clone(),
    })
}

fn start_lab(
    plan: &Plan,
    opts: &Options,
    progress: &mut Progress,
) -> anyhow::Result<Option<RunningLab>> {
    let Some(lab) = &plan.lab else {
        return Ok(None);
    };
    progress.event(&format!(
        "starting the lab ({} clusters) in {}",
        lab.clusters.len(),
        opts.dir.display()
    ));
    Ok(Some(RunningLab::start(lab, &opts.exe, &opts.dir)?))
}

fn brokers(plan: &Plan, lab: Option<&RunningLab>) -> anyhow::Result<String> {
    Ok(match (&plan.kafka.brokers, lab) {
        (Brokers::Lab, Some(lab)) => lab.state().brokers,
        (Brokers::Lab, None) => {
            return Err(Failure::bad_input(
                "kafka.brokers is `lab` but the plan has no `lab:` section".into(),
            )
            .into());
        }
        (Brokers::External(list), _) => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// Health probes: each target's capacity as its scheduler sees it, sampled with the lag.
fn endpoints(
    plan: &Plan,
    opts: &Options,
    lab: Option<&RunningLab>,
) -> anyhow::Result<IndexMap<String, crate::observe::health::Endpoints>> {
    let lab_endpoints = lab.map(|l| l.state().endpoints).unwrap_or_default();
    let lab_url = |cluster: &str, api: &str| {
        lab_endpoints
            .iter()
            .find(|e| e.cluster == cluster && e.api == api)
            .map(|e| e.url.clone())
    };
    let lab_url: Option<&LabUrl<'_>> = lab.map(|_| &lab_url as _);
    let plan_dir = opts
        .plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut out = IndexMap::new();
    for (name, t) in &plan.targets {
        if let Some(e) = capacity::endpoints(name, t, lab_url, &plan_dir)
            .map_err(|e| Failure::of(Kind::Environment, e))?
        {
            out.insert(name.clone(), e);
        }
    }
    Ok(out)
}

/// The PromQL lag queries of the applications that take their lag from Prometheus; a secret
/// missing from the environment is an environment error naming the application.
fn promql_queries(plan: &Plan, opts: &Options) -> anyhow::Result<Vec<PromQuery>> {
    let plan_dir = opts.plan_path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (name, a) in &plan.applications {
        let Some(lag) = &a.lag else { continue };
        let health = crate::plan::Health {
            auth: lag.auth.clone(),
            ..Default::default()
        };
        let settings = crate::observe::health::settings_of(&health, plan_dir);
        let q = PromQuery::new(a.lag_key(name), lag, &settings).map_err(|e| {
            Failure::of(Kind::Environment, e)
                .because(anyhow::anyhow!("the lag of application {name}"))
        })?;
        out.push(q);
    }
    Ok(out)
}

pub(super) fn series(plan: &Plan) -> IndexMap<String, Series> {
    plan.applications
        .iter()
        .map(|(name, a)| {
            let s = Series {
                group: a.lag_key(name),
                samples: Vec::new(),
                last_status: None,
                band: None,
                groups: Default::default(),
            };
            (name.clone(), s)
        })
        .collect()
}

fn append(path: &Path) -> std::io::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::options().create(true).append(true).open(path)?,
    ))
}

/// `samples.csv`, appended to (a resumed run continues it), with its header when new.
fn samples_csv(dir: &Path) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join("samples.csv");
    let fresh = !path.exists();
    let mut csv = append(&path)?;
    if fresh {
        csv.write_all(b"at,t_s,application,group,status,lag_seconds,lag_messages\n")?;
    }
    Ok(csv)
}

/// `watermarks.csv`, appended to like `samples.csv`: per application sample its group's high
/// watermark and lag in messages, each summed over the group's partitions.
fn watermarks_csv(dir: &Path) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(WATERMARKS_CSV);
    let fresh = !path.exists();
    let mut csv = append(&path)?;
    if fresh {
        csv.write_all(b"at,t_s,application,group,high_watermark,lag_messages\n")?;
    }
    Ok(csv)
}

/// The file [`watermarks_csv`] writes.
pub const WATERMARKS_CSV: &str = "watermarks.csv";

/// The interrupt watcher: the first Ctrl-C (or SIGTERM, or SIGHUP: the operator's ssh session
/// dropped) asks the runner to stop injecting; the second stops what the providers left running
/// (an FIS experiment), writes `interrupted` to the journal and exits at once (exit 3). The
/// operator's abort key counts as a Ctrl-C.
fn watch_interrupts(
    journal: Arc<Mutex<Journal>>,
    locks: Vec<Release>,
    control: Option<Control>,
    providers: Providers,
) -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0_u32);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        let mut count = 0;
        let mut aborts = 0;
        loop {
            // The terminal going away (SIGHUP, which the kernel and the shell may each send,
            // or the dashboard ending) starts a stop but never makes it a hard one: no one is
            // there to ask twice.
            let gone = tokio::select! {
                _ = int.recv() => false,
                _ = term.recv() => false,
                _ = hup.recv() => true,
                n = Control::next_abort(control.as_ref(), aborts) => {
                    aborts = n;
                    control.as_ref().is_some_and(Control::abandoned)
                }
            };
            if gone && count > 0 {
                continue;
            }
            count += 1;
            if count >= 2 {
                release_providers(&providers, &journal).await;
                journal_hard_interrupt(&journal);
                // Then the locks go (a table lock is a call, bounded: a lock left behind is
                // stale, and the resume takes it over).
                let release = async {
                    for l in &locks {
                        l.run().await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), release).await;
                hard_exit(control.as_ref());
            }
            let _ = tx.send(count);
        }
    });
    rx
}

/// Before a hard exit: each provider stops what it left running (at most 20 s each), and the
/// journal says what it did.
async fn release_providers(providers: &Providers, journal: &Mutex<Journal>) {
    for (name, p) in providers {
        let released = tokio::time::timeout(Duration::from_secs(20), p.release()).await;
        for (step, ev) in released.unwrap_or_default() {
            if let Ok(mut j) = journal.lock() {
                let _ = j.append(&Entry::ProviderEvent {
                    at: journal::now(),
                    target: name.clone(),
                    step,
                    kind: ev.event,
                    detail: ev.detail,
                });
            }
        }
    }
}

/// The second Ctrl-C, first: the journal says so.
fn journal_hard_interrupt(journal: &Mutex<Journal>) {
    if let Ok(mut j) = journal.lock() {
        let _ = j.append(&Entry::Interrupted {
            at: journal::now(),
            hard: true,
        });
    }
}

/// The second Ctrl-C, last (the journal written, the locks released): the terminal is given
/// back, exit 3.
fn hard_exit(control: Option<&Control>) -> ! {
    if let Some(c) = control {
        c.restore();
    }
    crate::output::err("\ninterrupted twice: journal flushed, exiting now\n");
    std::process::exit(ExitCode::Aborted as i32);
}
