//! Capacity during a run (DESIGN.md "Health probes"): every target with health endpoints is
//! probed once per sample interval — the same probes against production and the lab — each
//! answer goes to `capacity.jsonl`, and the step being observed follows the topologies and apps
//! it hit until their scheduler has them whole again: `rescheduled_s` per application,
//! `capacity_restored_s` for the target, and findings that say what the scheduler did.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::analysis::{Judged, with_rescheduling};
pub use crate::journal::StepCapacity;
pub use crate::nodes::choose::{ChoiceError, choose_step, choose_within};
use crate::observe::health::{self, Capacity, Endpoints, UnreachableStrategy, same_host};
pub use crate::observe::health::{endpoints_of as endpoints, settings_of as settings};
use crate::plan::ClusterKind;

/// One probe of one target.
#[derive(Debug)]
pub struct Probe {
    pub target: String,
    pub at: SystemTime,
    pub result: Result<Capacity, String>,
}

/// One line of `capacity.jsonl`.
#[derive(Serialize)]
pub struct Line<'a> {
    pub at: String,
    pub t_s: f64,
    pub target: &'a str,
    pub capacity: Option<&'a Capacity>,
    pub error: Option<&'a str>,
}

/// A line of `capacity.jsonl` read back (at resume, to replay a cut step).
#[derive(Debug, Deserialize)]
pub struct Recorded {
    pub at: String,
    pub target: String,
    #[serde(default)]
    pub capacity: Option<Capacity>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A recorded probe: seconds after the injection, and its answer.
pub type Replayed = (f64, Result<Capacity, String>);

/// The lines of `capacity.jsonl` that parse (a line cut by a crash is left out).
pub fn read_recorded(text: &str) -> Vec<Recorded> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// One target's recorded probes, as `(seconds after t0, answer)`, from `t0` until `end`; and the
/// last answer before `t0` (the capacity at the injection).
pub fn recorded_window(
    lines: &[Recorded],
    target: &str,
    t0: SystemTime,
    end: Option<SystemTime>,
) -> (Option<Capacity>, Vec<Replayed>) {
    let mut before = None;
    let mut after = Vec::new();
    for l in lines.iter().filter(|l| l.target == target) {
        let Ok(at) = humantime::parse_rfc3339_weak(&l.at) else {
            continue;
        };
        if end.is_some_and(|e| at >= e) {
            break;
        }
        let result = match (&l.capacity, &l.error) {
            (Some(c), _) => Ok(c.clone()),
            (None, e) => Err(e.clone().unwrap_or_else(|| "no answer recorded".into())),
        };
        match at.duration_since(t0) {
            Ok(d) => after.push((d.as_secs_f64(), result)),
            Err(_) => before = result.ok().or(before),
        }
    }
    (before, after)
}

/// Probe every target once per `interval` until cancelled, each within `interval` (at least
/// 1 s) and in a task of its own, so a hanging API delays nothing but itself.
pub fn spawn(
    targets: Vec<(String, Endpoints)>,
    interval: Duration,
    clock: super::clock::Clock,
    cancel: CancellationToken,
) -> mpsc::Receiver<Probe> {
    let (tx, rx) = mpsc::channel(64);
    let deadline = interval.max(Duration::from_secs(1));
    for (name, endpoints) in targets {
        let tx = tx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let at = clock.wall();
                let result = health::probe_async(&endpoints, deadline).await;
                let probe = Probe {
                    target: name.clone(),
                    at,
                    result,
                };
                if tx.send(probe).await.is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// A target's applications with what their scheduler calls them (topology, Marathon app).
pub fn scheduled(plan: &crate::plan::Plan, target: &crate::plan::Target) -> Vec<(String, String)> {
    target
        .applications
        .iter()
        .map(|a| {
            (
                a.clone(),
                plan.applications[a.as_str()].scheduled_as.clone(),
            )
        })
        .collect()
}

/// One application as the scheduler knows it.
#[derive(Clone, Debug)]
struct Tracked {
    /// The plan's application name.
    app: String,
    /// Its topology name or Marathon app id.
    scheduled_as: String,
    /// It had work on a terminated host at the injection.
    affected: bool,
    /// Hosts of its work at the injection.
    hosts_before: Vec<String>,
    /// Seconds from the injection until it was whole again, on live hosts only.
    rescheduled: Option<f64>,
    /// Hosts of its work when it was whole again.
    hosts_after: Vec<String>,
    /// Kubernetes: how its pods waited (Pending, bound to lost nodes).
    waits: KubeWaits,
}

/// What one workload's pods waited for while a step was observed (seconds after the injection).
#[derive(Clone, Debug, Default)]
struct KubeWaits {
    /// Pods Pending: first and last probe that saw any, the most at once, the scheduler's reason.
    pending: Option<(f64, f64, u32)>,
    reason: Option<String>,
    /// Pods bound to a node that is not Ready or gone: first and last probe that saw any.
    on_lost: Option<(f64, f64)>,
}

impl KubeWaits {
    fn observe(&mut self, after: f64, w: &crate::observe::health::WorkloadCapacity) {
        if w.pending > 0 {
            let (from, _, most) = self.pending.unwrap_or((after, after, 0));
            self.pending = Some((from, after, most.max(w.pending)));
            self.reason = w.unschedulable.clone().or(self.reason.take());
        }
        if w.on_lost_nodes > 0 {
            let (from, _) = self.on_lost.unwrap_or((after, after));
            self.on_lost = Some((from, after));
        }
    }
}

/// Follows the probes of one step.
#[derive(Debug)]
pub struct Tracker {
    kind: ClusterKind,
    t0: f64,
    /// Host names of the terminated nodes.
    gone: Vec<String>,
    apps: Vec<Tracked>,
    before: Option<Capacity>,
    last: Option<Capacity>,
    /// Whether the whole target's capacity must come back (not for steps that add up).
    expect_back: bool,
    restored: Option<f64>,
    summary: StepCapacity,
    /// Set when this step's last probe error is worth saying.
    last_error: Option<String>,
}

impl Tracker {
    /// A step injected at `t0` (seconds on the run's clock) on `gone` hosts; `before` is the last
    /// capacity probed before the injection (`None`: unknown).
    pub fn new(
        kind: ClusterKind,
        t0: f64,
        gone: Vec<String>,
        apps: &[(String, String)],
        before: Option<Capacity>,
        expect_back: bool,
    ) -> Tracker {
        let tracked = apps
            .iter()
            .map(|(app, sched)| {
                let hosts_before: Vec<String> = before
                    .as_ref()
                    .map(|c| {
                        c.hosts_running(sched)
                            .into_iter()
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                let affected = hosts_before
                    .iter()
                    .any(|h| gone.iter().any(|g| same_host(g, h)));
                Tracked {
                    app: app.clone(),
                    scheduled_as: sched.clone(),
                    affected,
                    hosts_before,
                    rescheduled: None,
                    hosts_after: Vec::new(),
                    waits: KubeWaits::default(),
                }
            })
            .collect();
        Tracker {
            kind,
            t0,
            summary: StepCapacity {
                nodes_before: before.as_ref().map(Capacity::nodes_alive),
                ..StepCapacity::default()
            },
            gone,
            apps: tracked,
            before,
            last: None,
            expect_back,
            restored: None,
            last_error: None,
        }
    }

    fn on_gone_host(&self, hosts: &[&str]) -> bool {
        hosts
            .iter()
            .any(|h| self.gone.iter().any(|g| same_host(g, h)))
    }

    /// A probe at `t` (the run's clock): an answer or an error.
    pub fn observe(&mut self, t: f64, probe: &Result<Capacity, String>) {
        if t < self.t0 {
            return;
        }
        let after = t - self.t0;
        let c = match probe {
            Ok(c) => c,
            Err(e) => {
                self.summary.probes_failed += 1;
                self.last_error = Some(e.clone());
                return;
            }
        };
        self.summary.probes += 1;
        let alive = c.nodes_alive();
        self.summary.nodes_lowest = Some(self.summary.nodes_lowest.map_or(alive, |l| l.min(alive)));
        self.summary.nodes_after = Some(alive);
        for i in 0..self.apps.len() {
            if let Capacity::Kubernetes(k) = c
                && let Some(w) = k.workload(&self.apps[i].scheduled_as)
            {
                self.apps[i].waits.observe(after, w);
            }
            if self.apps[i].rescheduled.is_some() || !self.apps[i].affected {
                continue;
            }
            let hosts = c.hosts_running(&self.apps[i].scheduled_as);
            let whole = c.application_whole(&self.apps[i].scheduled_as) == Some(true);
            if whole && !self.on_gone_host(&hosts) {
                let hosts_after = hosts.into_iter().map(str::to_owned).collect();
                let a = &mut self.apps[i];
                a.rescheduled = Some(after);
                a.hosts_after = hosts_after;
            }
        }
        if self.expect_back && self.restored.is_none() {
            let before = self.summary.nodes_before.unwrap_or(0);
            let live_hosts = c.live_hosts();
            if alive >= before && c.is_whole() && !self.on_gone_host(&live_hosts) {
                self.restored = Some(after);
            }
        }
        self.last = Some(c.clone());
    }

    /// Whether every affected application is whole again (true when the probes never answered:
    /// capacity unknown does not hold the step open).
    pub fn all_rescheduled(&self) -> bool {
        self.summary.probes == 0
            || self
                .apps
                .iter()
                .all(|a| !a.affected || a.rescheduled.is_some())
    }

    /// Seconds until the target's capacity was back, when it was.
    pub fn restored(&self) -> Option<f64> {
        self.restored
    }

    /// When one application was whole again; `None` also when it was not affected.
    pub fn rescheduled(&self, app: &str) -> Option<f64> {
        self.apps
            .iter()
            .find(|a| a.app == app)
            .and_then(|a| a.rescheduled)
    }

    /// Whether the step hit the application's work (needs a probe before the injection).
    pub fn affected(&self, app: &str) -> Option<bool> {
        self.before.as_ref()?;
        self.apps.iter().find(|a| a.app == app).map(|a| a.affected)
    }

    /// The probes answered while the step was observed.
    pub fn known(&self) -> bool {
        self.summary.probes > 0 && self.before.is_some()
    }

    pub fn summary(&self) -> StepCapacity {
        self.summary.clone()
    }

    /// What the scheduler did, in words, for the report.
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(unknown) = self.probe_findings(&mut out) {
            out.push(unknown);
            return out;
        }
        for a in self.apps.iter().filter(|a| a.affected) {
            let lost: Vec<&str> = a
                .hosts_before
                .iter()
                .filter(|h| self.gone.iter().any(|g| same_host(g, h)))
                .map(String::as_str)
                .collect();
            out.push(match self.kind {
                ClusterKind::Storm => self.storm_finding(a, &lost),
                ClusterKind::Mesos => self.mesos_finding(a, &lost),
                ClusterKind::Kubernetes => self.kube_finding(a, &lost),
            });
        }
        for a in &self.apps {
            out.extend(kube_waits(a, self.gone.len()));
        }
        out
    }

    /// How the probes went; `Some` when capacity is unknown (nothing more can be said).
    fn probe_findings(&self, out: &mut Vec<String>) -> Option<String> {
        let last = self
            .last_error
            .as_ref()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default();
        if self.before.is_none() {
            // Say why when a probe said so: the error of the last failed one.
            return Some(format!(
                "capacity unknown at the injection (no health probe had answered){last}: \
                 rescheduling was not followed"
            ));
        }
        if self.summary.probes == 0 {
            return Some(format!(
                "capacity unknown while observing: {} health probes failed{last}",
                self.summary.probes_failed,
            ));
        }
        if self.summary.probes_failed > 0 {
            out.push(format!(
                "{} of {} health probes failed while observing{last}",
                self.summary.probes_failed,
                self.summary.probes + self.summary.probes_failed,
            ));
        }
        None
    }

    fn storm_finding(&self, a: &Tracked, lost: &[&str]) -> String {
        if let Some(r) = a.rescheduled {
            return format!(
                "Nimbus reassigned the executors of topology {} from dead supervisor{} {} in {r:.1} s (workers now on {})",
                a.scheduled_as,
                plural(lost.len()),
                lost.join(", "),
                a.hosts_after.join(", ")
            );
        }
        let detail = match self.last.as_ref() {
            Some(Capacity::Storm(s)) => s
                .topology(&a.scheduled_as)
                .map(|t| {
                    format!(
                        " ({} of {} workers assigned, {} on dead supervisors)",
                        t.workers_assigned,
                        t.workers_configured
                            .map_or("?".to_owned(), |w| w.to_string()),
                        t.workers_on_dead_supervisors
                    )
                })
                .unwrap_or_else(|| " (the topology is no longer listed)".into()),
            _ => String::new(),
        };
        format!(
            "Nimbus did not reassign the executors of topology {} from {} while the step was observed{detail}",
            a.scheduled_as,
            self.gone.join(", ")
        )
    }

    fn kube_finding(&self, a: &Tracked, lost: &[&str]) -> String {
        if let Some(r) = a.rescheduled {
            return format!(
                "Kubernetes re-created the pods of {} lost on {} in {r:.1} s (pods now on {})",
                a.scheduled_as,
                lost.join(", "),
                a.hosts_after.join(", ")
            );
        }
        let detail = match self.last.as_ref() {
            Some(Capacity::Kubernetes(k)) => k
                .workload(&a.scheduled_as)
                .map(|w| {
                    format!(
                        " ({} of {} ready, {} Pending, {} on lost nodes)",
                        w.ready, w.desired, w.pending, w.on_lost_nodes
                    )
                })
                .unwrap_or_else(|| " (the workload is no longer listed)".into()),
            _ => String::new(),
        };
        format!(
            "the pods of {} lost on {} were not all Ready again while the step was observed{detail}",
            a.scheduled_as,
            lost.join(", ")
        )
    }

    fn mesos_finding(&self, a: &Tracked, lost: &[&str]) -> String {
        let app = match self.last.as_ref() {
            Some(Capacity::Mesos(m)) => m.app(&a.scheduled_as),
            _ => None,
        };
        let strategy = app.and_then(|x| x.unreachable_strategy.as_ref());
        let explained = strategy.map(explain_strategy);
        // The strategy explains a relaunch that waited for it, or none at all.
        let waited = strategy.is_some_and(|s| match s {
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                ..
            } => inactive_after_seconds.unwrap_or(0) > 0,
            UnreachableStrategy::Disabled(_) => true,
        });
        match a.rescheduled {
            Some(r) => format!(
                "Marathon relaunched the tasks of {} lost on {} in {r:.1} s (tasks now on {}){}",
                a.scheduled_as,
                lost.join(", "),
                a.hosts_after.join(", "),
                explained
                    .filter(|_| waited)
                    .map(|s| format!("; {s}"))
                    .unwrap_or_default()
            ),
            None => format!(
                "Marathon did not relaunch the tasks of {} lost on {} while the step was observed{}{}",
                a.scheduled_as,
                lost.join(", "),
                app.map(|x| format!(
                    " ({} of {} running, {} on dead hosts, {} deployments)",
                    x.tasks_running, x.instances, x.tasks_on_dead_hosts, x.deployments_running
                ))
                .unwrap_or_default(),
                explained.map(|s| format!("; {s}")).unwrap_or_default()
            ),
        }
    }

    /// A topology or app the scheduler shows whole while its lag still climbs: work that was put
    /// back but does not consume (a spout stalled after its worker restarted). `lag` is the
    /// application's lag samples (t, seconds) after the injection.
    pub fn stalled(&self, app: &str, lag: &[(f64, f64)], band_upper: f64) -> Option<String> {
        let a = self.apps.iter().find(|a| a.app == app)?;
        let whole_at = self.t0
            + a.rescheduled
                .or(if a.affected { None } else { Some(0.0) })?;
        // Lag after the work was whole again: still above the band and rising at the end.
        let after: Vec<&(f64, f64)> = lag.iter().filter(|(t, _)| *t >= whole_at).collect();
        if after.len() < 3 {
            return None;
        }
        let (first, last) = (after[0].1, after[after.len() - 1].1);
        let tail_rising = after.windows(2).rev().take(3).all(|w| w[1].1 >= w[0].1);
        (last > band_upper && last > first && tail_rising).then(|| {
            format!(
                "{} looks whole to its scheduler since {:.1} s after the injection, yet its lag kept rising ({first:.1} s → {last:.1} s): a spout or consumer that stopped consuming after its worker restarted?",
                a.scheduled_as,
                whole_at - self.t0
            )
        })
    }
}

/// What a workload's pods waited for, in words: Pending (with the scheduler's reason) and bound
/// to lost nodes (the unreachable toleration).
fn kube_waits(a: &Tracked, lost_nodes: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((from, to, most)) = a.waits.pending {
        let reason = a
            .waits
            .reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push(format!(
            "{most} pod{} of {} stayed Pending {:.0} s{reason}",
            plural(most as usize),
            a.scheduled_as,
            (to - from).max(0.0)
        ));
    }
    if let Some((from, to)) = a.waits.on_lost {
        out.push(format!(
            "pods of {} stayed bound to the lost node{} for {:.0} s before they were re-created \
             (the node.kubernetes.io/unreachable toleration, 300 s by default): a lower \
             tolerationSeconds would shorten recovery",
            a.scheduled_as,
            plural(lost_nodes),
            (to - from).max(0.0)
        ));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What an app's `unreachableStrategy` means for a relaunch.
fn explain_strategy(s: &UnreachableStrategy) -> String {
    match s {
        UnreachableStrategy::Enabled {
            inactive_after_seconds,
            expunge_after_seconds,
        } => format!(
            "its unreachableStrategy replaces tasks of an unreachable agent after {} s (inactiveAfterSeconds) and expunges them after {} s",
            inactive_after_seconds.map_or("?".into(), |s| s.to_string()),
            expunge_after_seconds.map_or("?".into(), |s| s.to_string())
        ),
        UnreachableStrategy::Disabled(w) if w == "disabled" => {
            "its unreachableStrategy is disabled: tasks of an unreachable agent are not replaced until the agent is gone for good".to_owned()
        }
        UnreachableStrategy::Disabled(w) => format!("its unreachableStrategy is `{w}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::health::{StormCapacity, TopologyCapacity};

    fn storm(alive: &[&str], topo_hosts: &[&str], assigned: u32, on_dead: u32) -> Capacity {
        Capacity::Storm(StormCapacity {
            supervisors_alive: alive.len() as u32,
            supervisor_hosts: alive.iter().map(|s| s.to_string()).collect(),
            slots_total: alive.len() as u32 * 2,
            slots_used: assigned,
            slots_free: alive.len() as u32 * 2 - assigned.min(alive.len() as u32 * 2),
            topologies: vec![TopologyCapacity {
                id: "t-1".into(),
                name: "t".into(),
                status: "ACTIVE".into(),
                workers_assigned: assigned,
                workers_configured: Some(4),
                workers_on_dead_supervisors: on_dead,
                hosts: topo_hosts.iter().map(|s| s.to_string()).collect(),
            }],
            gone: Vec::new(),
        })
    }

    fn apps() -> Vec<(String, String)> {
        vec![("app".into(), "t".into())]
    }

    /// A storm step injected at `t0` that lost host `a`.
    fn storm_step(t0: f64, before: Option<Capacity>, expect_back: bool) -> Tracker {
        Tracker::new(
            ClusterKind::Storm,
            t0,
            vec!["a".into()],
            &apps(),
            before,
            expect_back,
        )
    }

    #[test]
    fn rescheduled_when_whole_on_live_hosts_only() {
        let before = storm(&["a", "b", "c"], &["a", "b"], 4, 0);
        let mut t = storm_step(10.0, Some(before), true);
        assert_eq!(t.affected("app"), Some(true));
        // Before detection: still listed on the dead host, counted whole.
        t.observe(11.0, &Ok(storm(&["b", "c"], &["a", "b"], 4, 2)));
        assert_eq!(t.rescheduled("app"), None);
        assert!(!t.all_rescheduled());
        t.observe(12.0, &Err("GET x: timeout".into()));
        t.observe(14.5, &Ok(storm(&["b", "c"], &["b", "c"], 4, 0)));
        assert_eq!(t.rescheduled("app"), Some(4.5));
        assert!(t.all_rescheduled());
        // Capacity: 2 of 3 nodes until a replacement joins.
        assert_eq!(t.restored(), None);
        t.observe(20.0, &Ok(storm(&["b", "c", "d"], &["b", "c"], 4, 0)));
        assert_eq!(t.restored(), Some(10.0));
        let s = t.summary();
        assert_eq!(
            (s.nodes_before, s.nodes_lowest, s.nodes_after),
            (Some(3), Some(2), Some(3))
        );
        assert_eq!((s.probes, s.probes_failed), (3, 1));
        let f = t.findings();
        assert!(
            f.iter().any(|x| x.contains(
                "Nimbus reassigned the executors of topology t from dead supervisor a in 4.5 s"
            )),
            "{f:?}"
        );
        assert!(f.iter().any(|x| x.contains("1 of 4 health probes failed")));
    }

    #[test]
    fn unaffected_applications_are_not_followed() {
        let before = storm(&["a", "b", "c"], &["b"], 4, 0);
        let t = storm_step(0.0, Some(before), false);
        assert_eq!(t.affected("app"), Some(false));
        assert!(t.all_rescheduled());
    }

    #[test]
    fn never_answered_is_unknown_and_does_not_hold_the_step() {
        let mut t = storm_step(0.0, None, true);
        t.observe(
            1.0,
            &Err("GET http://x/api/v1/cluster/summary: HTTP 503".into()),
        );
        assert!(t.all_rescheduled());
        assert!(!t.known());
        assert_eq!(t.affected("app"), None);
        // … and says why (issue 16 item 14: it used to say only that no probe had answered).
        assert_eq!(
            t.findings()[0],
            "capacity unknown at the injection (no health probe had answered) (last: GET \
             http://x/api/v1/cluster/summary: HTTP 503): rescheduling was not followed"
        );
    }

    #[test]
    fn a_stalled_consumer_is_called_out() {
        let before = storm(&["a", "b"], &["a", "b"], 4, 0);
        let mut t = storm_step(0.0, Some(before), false);
        t.observe(3.0, &Ok(storm(&["b"], &["b"], 4, 0)));
        let rising: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 1.0 + i as f64)).collect();
        let msg = t.stalled("app", &rising, 5.0).expect("called out");
        assert!(msg.contains("t looks whole"), "{msg}");
        let draining: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, (20 - i) as f64)).collect();
        assert_eq!(t.stalled("app", &draining, 5.0), None);
    }

    #[test]
    fn recovery_waits_for_the_work_to_be_whole() {
        use crate::analysis::Verdict;
        let lag = Judged {
            verdict: Verdict::Pass,
            recovery_s: Some(4.0),
            reason: "recovered in 4 s".into(),
        };
        assert_eq!(with_rescheduling(lag.clone(), "t", Some(3.0), 60.0), lag);
        let later = with_rescheduling(lag.clone(), "t", Some(9.0), 60.0);
        assert_eq!(
            (later.verdict, later.recovery_s),
            (Verdict::Pass, Some(9.0))
        );
        let late = with_rescheduling(lag.clone(), "t", Some(90.0), 60.0);
        assert_eq!(late.verdict, Verdict::Fail);
        let never = with_rescheduling(lag, "t", None, 60.0);
        assert_eq!((never.verdict, never.recovery_s), (Verdict::Fail, None));
        assert!(
            never.reason.contains("t was not whole again"),
            "{}",
            never.reason
        );
        let failed = Judged {
            verdict: Verdict::Fail,
            recovery_s: None,
            reason: "not recovered".into(),
        };
        assert_eq!(
            with_rescheduling(failed.clone(), "t", Some(1.0), 60.0),
            failed
        );
    }
}
