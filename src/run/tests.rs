//! The step machine in paused time: a fake provider and lag samples fed on tokio's clock, so a
//! whole ladder (baseline, cooldown, inject, observe, judge) runs in milliseconds and the same
//! way every time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::progress::Progress;
use super::runner::Runner;
use crate::journal::{self, Entry, Journal};
use crate::nodes::{
    Discovery, Found, Injection, Lifecycle, Node, NodeOutcome, Permission, Provider, ProviderError,
    Terminated,
};
use crate::observe::{GroupLag, Snapshot, Status};
use crate::plan::Plan;

const PLAN: &str = r#"
version: 1
name: paused
kafka: {brokers: "127.0.0.1:9"}
applications:
  app:
    group: g
    topics: [t]
    slo: {max_lag: 60s, max_recovery: 10s}
targets:
  c:
    kind: storm
    nodes: {provider: aws-ec2, region: us-east-1, tags: {cluster: c}}
    applications: [app]
    ladder: [1, 2, 3]
    guards: {max_terminations: 4}
observe:
  sample_interval: 1s
  baseline: 5s
  hold: 2s
  settle: 3s
  timeout: 30s
  cooldown: 60s
"#;

/// When (on the run's clock) and how many nodes an injection terminated.
type Injected = (f64, usize);
type Injections = Arc<Mutex<Vec<Injected>>>;

/// Four spot nodes; terminating remembers when, and how many.
struct Fake {
    alive: Mutex<Vec<String>>,
    injections: Injections,
    clock: Option<Clock>,
}

#[async_trait::async_trait]
impl Provider for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn lock_identity(&self) -> String {
        "fake".into()
    }

    async fn discover(&self) -> Result<Discovery, ProviderError> {
        let node = |id: &String| Node {
            id: id.clone(),
            host: id.clone(),
            zone: None,
            instance_type: None,
            lifecycle: Lifecycle::Spot,
            running: true,
        };
        let alive = self.alive.lock().unwrap();
        Ok(Discovery {
            found: alive.iter().map(|id| Found::bare(node(id))).collect(),
            ..Discovery::default()
        })
    }

    async fn check_permissions(&self, _: &[Node]) -> Result<Permission, ProviderError> {
        Ok(Permission::NotChecked)
    }

    async fn terminate(&self, nodes: &[Node], _: Injection<'_>) -> Vec<Terminated> {
        let t = self.clock.map_or(0.0, |c| c.now_s());
        self.injections.lock().unwrap().push((t, nodes.len()));
        nodes
            .iter()
            .map(|n| Terminated::new(&n.id, NodeOutcome::Terminated, None))
            .collect()
    }
}

/// Lag of the fake cluster at `t`: 1 s at rest; after losing k nodes at t0 it peaks at 10·k s
/// and drains in 4·k s, so it is back under the band (6 s: the 5 s floor above a 1 s baseline)
/// after 4·k − 2 s: 2 s for one loss, 6 s for two, 10 s for three.
fn lag_at(t: f64, injections: &[(f64, usize)]) -> f64 {
    injections
        .iter()
        .filter(|(t0, _)| t >= *t0)
        .map(|(t0, k)| {
            let (peak, drain) = (10.0 * *k as f64, 4.0 * *k as f64);
            let since = t - t0;
            if since < drain {
                peak * (1.0 - since / drain) + 1.0
            } else {
                1.0
            }
        })
        .fold(1.0, f64::max)
}

/// A runner on target `c` of four fake nodes, fed a sample every second; the injections the
/// fake saw, on the run's clock.
fn runner<'a>(plan: &'a Plan, dir: &std::path::Path) -> (Runner<'a>, Injections) {
    let (_probe_tx, probes) = mpsc::channel(1);
    let (_int_tx, interrupts) = watch::channel(0);
    let clock = Clock::start();
    let injections = Injections::default();
    let fake = Fake {
        alive: Mutex::new((1..=4).map(|i| format!("n-{i}")).collect()),
        injections: injections.clone(),
        clock: Some(clock),
    };
    let mut providers: IndexMap<String, Arc<dyn Provider>> = IndexMap::new();
    providers.insert("c".into(), Arc::new(fake));
    let runner = Runner {
        plan,
        journal: Arc::new(Mutex::new(Journal::open(dir).unwrap())),
        lab: None,
        providers,
        rx: feed(clock, injections.clone()),
        series: super::setup::series(plan),
        csv: std::io::BufWriter::new(std::fs::File::create(dir.join("samples.csv")).unwrap()),
        endpoints: IndexMap::new(),
        probes,
        capacity_file: None,
        last_capacity: IndexMap::new(),
        clock,
        interrupts,
        seen_interrupts: 0,
        listening: true,
        progress: Progress::new().quiet(true),
        control: None,
        stop: None,
        active: None,
        cpu_start: crate::lab::stats::read(&[std::process::id()]),
        sizes: [("c".to_owned(), 4)].into_iter().collect(),
        cancel: CancellationToken::new(),
        sampler: None,
        dir: dir.to_owned(),
    };
    (runner, injections)
}

/// A sample of group `g` every second, following [`lag_at`].
fn feed(clock: Clock, injections: Injections) -> mpsc::Receiver<Snapshot> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let lag = lag_at(clock.now_s(), &injections.lock().unwrap());
            let sample = GroupLag {
                at: clock.wall(),
                group: "g".into(),
                elapsed_ms: 0,
                lag_messages: Some((lag * 100.0) as i64),
                lag_seconds: Some(lag),
                status: Status::Ok,
                problems: Vec::new(),
                notes: Vec::new(),
                isolation: Default::default(),
                took_ms: 0,
                partitions: Vec::new(),
            };
            if tx.send(vec![sample]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

/// Target `c` of this plan run in paused time (its baseline, then its ladder): the journal, the
/// injections made and the seconds the run's clock advanced.
async fn ladder(plan_text: &str) -> (Vec<Entry>, Vec<Injected>, f64) {
    let plan = crate::plan::load(plan_text).plan.expect("a valid plan");
    let dir = tempfile::tempdir().unwrap();
    let (mut r, injections) = runner(&plan, dir.path());
    assert_eq!(r.baseline().await.unwrap(), None);
    r.target("c", &plan.targets["c"], &[]).await.unwrap();
    let entries = journal::read(dir.path()).unwrap();
    let done = injections.lock().unwrap().clone();
    (entries, done, r.clock.now_s())
}

#[tokio::test(start_paused = true)]
async fn a_ladder_runs_in_paused_time_and_stops_at_its_first_failure_and_guard() {
    let (entries, done, elapsed) = ladder(PLAN).await;
    let judged: Vec<(usize, crate::analysis::Verdict)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::StepJudged { step, verdict, .. } => Some((*step, *verdict)),
            _ => None,
        })
        .collect();
    use crate::analysis::Verdict::Pass;
    // 1 loss: 4 s to drain, 2 losses: 8 s (both within max_recovery 10 s)…
    assert_eq!(judged[..2], [(0, Pass), (1, Pass)], "{entries:#?}");
    // … and 3 losses would exceed max_terminations 4 (1 + 2 so far): the guard stops the ladder.
    assert!(entries.iter().any(|e| matches!(e,
        Entry::GuardBreached { guard, .. } if guard == "max_terminations")));
    assert_eq!(judged.len(), 2);
    assert_eq!(done.iter().map(|(_, k)| *k).collect::<Vec<_>>(), [1, 2]);
    // The baseline (5 s) and each step's settle (3 s) were waited out on the run's clock, in
    // no real time at all.
    assert!(elapsed >= 11.0, "{elapsed}");
}

#[tokio::test(start_paused = true)]
async fn a_step_that_recovers_too_late_fails_and_ends_the_ladder() {
    let plan_text = PLAN
        .replace("    guards: {max_terminations: 4}\n", "")
        .replace("[1, 2, 3]", "[3, 4]")
        .replace("max_recovery: 10s", "max_recovery: 8s");
    let (entries, done, _) = ladder(&plan_text).await;
    let first = entries.iter().find_map(|e| match e {
        Entry::StepJudged {
            verdict,
            applications,
            ..
        } => Some((*verdict, applications[0].recovery_s)),
        _ => None,
    });
    let (verdict, recovery) = first.expect("step 1 judged");
    assert_eq!(verdict, crate::analysis::Verdict::Fail, "{entries:#?}");
    // Back in band 10 s after losing three nodes (± a sample), past max_recovery 8 s.
    assert!(
        recovery.is_some_and(|r| (9.0..=11.0).contains(&r)),
        "{recovery:?}"
    );
    let skipped = entries.iter().find_map(|e| match e {
        Entry::StepSkipped {
            step: 1, reason, ..
        } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(skipped.as_deref(), Some("not run: step 1 (3) fail"));
    assert_eq!(done.len(), 1, "nothing after the failure");
}

#[tokio::test(start_paused = true)]
async fn min_healthy_counts_the_nodes_the_step_then_chooses_from() {
    let plan_text = PLAN
        .replace("guards: {max_terminations: 4}", "guards: {min_healthy: 3}")
        .replace("[1, 2, 3]", "[1, 2]");
    let (entries, done, _) = ladder(&plan_text).await;
    // 4 healthy nodes − 1 leaves 3: step 1 runs; − 2 would leave 2, below 3: the guard stops it.
    let breach = entries.iter().find_map(|e| match e {
        Entry::GuardBreached { guard, detail, .. } if guard == "min_healthy" => {
            Some(detail.clone())
        }
        _ => None,
    });
    assert_eq!(
        breach.as_deref(),
        Some("4 healthy nodes − 2 would leave 2, below 3"),
        "{entries:#?}"
    );
    assert_eq!(done.len(), 1);
}
