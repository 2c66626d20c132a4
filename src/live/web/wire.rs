//! What the live page is sent: a snapshot of everything but the lag samples (replaced whole on
//! every change), and the samples themselves as they arrive, each with its sequence number so a
//! reconnecting page asks only for the ones after its last. Built from a [`LiveState`] only —
//! the derived view the terminal dashboard draws — never from raw journal lines.

use serde::Serialize;

use crate::analysis::Verdict;
use crate::live::state::{LiveState, Point, StepView, TargetView, Tone};

/// The timeline keeps this many newest events on the page.
const EVENTS: usize = 200;

#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    pub plan: Option<&'a str>,
    /// Where the run is (`storm-lab step 2/3`, `cooldown`, `finished: pass`).
    pub phase: String,
    pub started_at: Option<f64>,
    /// The newest time any file mentioned.
    pub latest: f64,
    pub stopped: Option<&'a str>,
    pub finished: Option<FinishedWire>,
    pub apps: Vec<AppWire<'a>>,
    pub targets: Vec<TargetWire<'a>>,
    pub events: Vec<EventWire<'a>>,
    /// The newest sample's sequence number when this was taken.
    pub samples_read: u64,
}

#[derive(Debug, Serialize)]
pub struct FinishedWire {
    pub at: f64,
    pub verdict: Verdict,
    pub exit_code: crate::exit::ExitCode,
}

#[derive(Debug, Serialize)]
pub struct AppWire<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub target: Option<&'a str>,
    pub band_upper_s: Option<f64>,
    pub verdict: Option<Verdict>,
    /// Its verdict in each judged step.
    pub results: Vec<ResultWire<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ResultWire<'a> {
    pub step: usize,
    pub terminations: u32,
    pub verdict: Verdict,
    pub reason: &'a str,
}

#[derive(Debug, Serialize)]
pub struct TargetWire<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub required_tolerance: u32,
    /// The tolerance so far (`≥ N` or `N`); null before the first verdict.
    pub tolerance: Option<String>,
    pub steps: Vec<StepWire<'a>>,
    pub capacity: Option<CapacityWire<'a>>,
}

#[derive(Debug, Serialize)]
pub struct StepWire<'a> {
    pub terminations: u32,
    pub state: &'static str,
    pub started_at: Option<f64>,
    pub injected_at: Option<f64>,
    pub judged_at: Option<f64>,
    pub capacity_after_s: Option<f64>,
    pub note: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct CapacityWire<'a> {
    pub at: f64,
    pub summary: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct EventWire<'a> {
    pub at: f64,
    pub tone: &'static str,
    pub text: &'a str,
    /// Seconds since the injection it follows, when it follows one.
    pub since_injection_s: Option<f64>,
}

/// One lag sample on the wire.
#[derive(Debug, PartialEq, Serialize)]
pub struct SampleWire {
    pub seq: u64,
    pub app: String,
    pub at: f64,
    pub lag_s: Option<f64>,
    pub lag_messages: Option<u64>,
}

/// The snapshot of a state.
pub fn snapshot(s: &LiveState) -> Snapshot<'_> {
    let skip = s.events.len().saturating_sub(EVENTS);
    Snapshot {
        plan: s.plan.as_deref(),
        phase: s.phase(false),
        started_at: s.started_at,
        latest: s.latest,
        stopped: s.stopped.as_deref(),
        finished: s.finished.map(|f| FinishedWire {
            at: f.at,
            verdict: f.verdict,
            exit_code: f.exit_code,
        }),
        apps: s
            .apps
            .iter()
            .map(|(name, a)| AppWire {
                name,
                group: &a.group,
                target: a.target.as_deref(),
                band_upper_s: a.band.map(|b| b.upper_s),
                verdict: a.verdict_so_far(),
                results: a
                    .results
                    .iter()
                    .map(|(step, terminations, verdict, reason)| ResultWire {
                        step: *step,
                        terminations: *terminations,
                        verdict: *verdict,
                        reason,
                    })
                    .collect(),
            })
            .collect(),
        targets: s.targets.iter().map(|t| target(s, t)).collect(),
        events: s.events[skip..]
            .iter()
            .map(|e| EventWire {
                at: e.at,
                tone: tone(e.tone),
                text: &e.text,
                since_injection_s: s.injection_before(e.at).map(|i| e.at - i),
            })
            .collect(),
        samples_read: s.samples_read,
    }
}

fn target<'a>(s: &'a LiveState, t: &'a TargetView) -> TargetWire<'a> {
    TargetWire {
        name: &t.name,
        kind: &t.kind,
        required_tolerance: t.required_tolerance,
        tolerance: t.tolerance_so_far(),
        steps: t.steps.iter().map(step).collect(),
        capacity: s.capacity.get(&t.name).map(|c| CapacityWire {
            at: c.at,
            summary: c.summary.as_deref(),
            error: c.error.as_deref(),
        }),
    }
}

fn step(s: &StepView) -> StepWire<'_> {
    StepWire {
        terminations: s.terminations,
        state: s.state.label(),
        started_at: s.started_at,
        injected_at: s.injected_at,
        judged_at: s.judged_at,
        capacity_after_s: s.capacity_after_s,
        note: s.note.as_deref(),
    }
}

fn tone(t: Tone) -> &'static str {
    match t {
        Tone::Info => "info",
        Tone::Inject => "inject",
        Tone::Good => "good",
        Tone::Bad => "bad",
    }
}

/// Every sample kept in the state with a sequence number above `after`, oldest first.
pub fn samples_after(s: &LiveState, after: u64) -> Vec<SampleWire> {
    let mut out: Vec<SampleWire> = s
        .apps
        .iter()
        .flat_map(|(name, a)| {
            // Samples of one application are in sequence order: skip the old ones quickly.
            let from = a.samples.partition_point(|p| p.seq <= after);
            a.samples.range(from..).map(move |p| sample(name, p))
        })
        .collect();
    out.sort_by_key(|p| p.seq);
    out
}

fn sample(app: &str, p: &Point) -> SampleWire {
    SampleWire {
        seq: p.seq,
        app: app.to_owned(),
        at: p.at,
        lag_s: p.lag_s,
        lag_messages: p.lag_messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> LiveState {
        let mut s = LiveState::default();
        for line in [
            "2026-11-26T03:26:40.000Z,1.0,a,g,ok,2.500,40",
            "2026-11-26T03:26:40.000Z,1.0,b,h,ok,1.000,4",
            "2026-11-26T03:26:41.000Z,2.0,a,g,missing,,",
            "2026-11-26T03:26:41.000Z,2.0,b,h,ok,3.000,9",
        ] {
            assert!(s.apply_sample_line(line));
        }
        s
    }

    #[test]
    fn samples_after_a_sequence_number_are_the_newer_ones_in_order() {
        let s = state();
        let all = samples_after(&s, 0);
        assert_eq!(
            all.iter()
                .map(|p| (p.seq, p.app.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "a"), (2, "b"), (3, "a"), (4, "b")]
        );
        assert_eq!(all[2].lag_s, None, "a gap stays a gap");
        let after = samples_after(&s, 2);
        assert_eq!(after.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![3, 4]);
        assert!(samples_after(&s, 4).is_empty());
    }

    #[test]
    fn the_snapshot_carries_no_samples_and_no_journal_lines() {
        let mut s = state();
        s.apply_journal_line(r#"{"event":"run_started","at":"2026-11-26T03:26:36.491Z","plan":"p","plan_path":"secret-path.yaml","plan_digest":"0","version":"0.1.0","targets":[{"name":"t","kind":"storm","provider":"lab","required_tolerance":1,"ladder":[1,2],"cumulative":false,"safety_multiple":3.0,"applications":["a"]}],"lab":true}"#);
        let json = serde_json::to_string(&snapshot(&s)).unwrap();
        assert!(json.contains("\"samples_read\":4"), "{json}");
        assert!(!json.contains("2.5"), "samples travel on their own: {json}");
        assert!(!json.contains("secret-path"), "{json}");
        assert!(!json.contains("plan_digest"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["targets"][0]["steps"][1]["state"], "pending");
        assert_eq!(v["apps"][0]["target"], "t");
        assert_eq!(v["events"][0]["text"], "run started: p");
    }
}
