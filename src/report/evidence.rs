//! What a run directory holds besides the report: the journal (step windows, terminations,
//! capacity), `samples.csv` (the lag charts) and the lab's `lab-truth.jsonl` (node events).
//! Each piece is optional; what is missing is said in `notes`, never invented.

use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;

use crate::journal::{self, NodeOutcome, RunView};

/// One row of `samples.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRow {
    pub at: SystemTime,
    pub application: String,
    /// `ok`, `never_committed` or `missing`.
    pub status: String,
    /// Empty in the file when the sample has no lag (missing, never committed).
    pub lag_s: Option<f64>,
}

/// One event of `lab-truth.jsonl` (the lab's own account of what happened).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TruthEvent {
    pub at: String,
    #[serde(default)]
    pub cluster: Option<String>,
    pub event: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub worker: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
}

/// Everything a run directory holds that the charts and the event lists draw from.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The journal's reading (empty when it could not be read).
    pub run: RunView,
    /// `None` when `samples.csv` is missing or unreadable.
    pub samples: Option<Vec<SampleRow>>,
    /// `None` when there is no `lab-truth.jsonl` (runs against real clusters have none).
    pub truth: Option<Vec<TruthEvent>>,
    /// Missing or damaged pieces, for the report's notes.
    pub notes: Vec<String>,
}

/// A moment the charts mark, in seconds relative to a step's injection.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub t: f64,
    /// Short text for the chart ("3 nodes killed").
    pub label: String,
    /// Where it comes from, for the event list: `journal` or `lab truth`.
    pub source: &'static str,
}

pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// `b − a` in seconds, negative when `b` is earlier.
pub fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl Evidence {
    /// Read what `dir` holds. Never fails: what cannot be read is a note.
    pub fn load(dir: &Path) -> Evidence {
        let mut ev = Evidence::default();
        match journal::read(dir) {
            Ok(entries) => ev.run = RunView::from_entries(&entries),
            Err(e) => ev.notes.push(format!("the journal could not be read: {e}")),
        }
        let lab = ev.run.meta.lab;
        match std::fs::read_to_string(dir.join("samples.csv")) {
            Ok(text) => {
                let (rows, bad) = parse_samples(&text);
                if bad > 0 {
                    ev.notes.push(format!(
                        "samples.csv: {bad} line(s) could not be read and are left out of the charts"
                    ));
                }
                ev.samples = Some(rows);
            }
            Err(_) => ev
                .notes
                .push("samples.csv is missing: the HTML report has no lag charts".into()),
        }
        match std::fs::read_to_string(dir.join("lab-truth.jsonl")) {
            Ok(text) => {
                let mut events = Vec::new();
                let mut bad = 0;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match serde_json::from_str::<TruthEvent>(line) {
                        Ok(e) => events.push(e),
                        Err(_) => bad += 1,
                    }
                }
                if bad > 0 {
                    ev.notes.push(format!(
                        "lab-truth.jsonl: {bad} line(s) could not be read and are left out"
                    ));
                }
                ev.truth = Some(events);
            }
            Err(_) if lab => ev.notes.push(
                "lab-truth.jsonl is missing: the charts mark only the journal's events".into(),
            ),
            Err(_) => {}
        }
        ev
    }

    /// Lag samples of one application, as (seconds since `t0`, lag seconds or none).
    pub fn series(&self, application: &str, t0: SystemTime) -> Vec<(f64, Option<f64>)> {
        self.samples
            .iter()
            .flatten()
            .filter(|s| s.application == application)
            .map(|s| (secs_between(t0, s.at), s.lag_s))
            .collect()
    }

    /// When a step was judged, seconds since `t0`; `None` when it never was (a crash).
    pub fn step_end(&self, target: &str, step: usize, t0: SystemTime) -> Option<f64> {
        let judged = self
            .run
            .step(target, step)
            .and_then(|s| s.judgment.as_ref())
            .and_then(|j| parse_time(&j.at));
        judged.map(|at| secs_between(t0, at))
    }

    /// The next step's injection after `t0` (any target), seconds since `t0`: a chart of one
    /// step ends there.
    pub fn next_injection(&self, t0: SystemTime) -> Option<f64> {
        self.run
            .targets
            .iter()
            .flat_map(|t| &t.steps)
            .filter_map(|s| s.injected_at.as_deref().and_then(parse_time))
            .map(|at| secs_between(t0, at))
            .filter(|&dt| dt > 0.5)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))
    }

    /// The moments around one step worth marking: terminations from the journal, and from the
    /// lab's truth the node deaths, their detection, workers re-placed, replacements joining
    /// and backlogs drained. Events of one kind are combined at the first one's time.
    pub fn markers(
        &self,
        target: &str,
        step: usize,
        nodes: &[String],
        t0: SystemTime,
        window: (f64, f64),
    ) -> Vec<Marker> {
        let mut out: Vec<Marker> = self.terminated(target, step, t0).into_iter().collect();
        out.extend(self.truth_markers(nodes, t0, window));
        out.sort_by(|a, b| a.t.total_cmp(&b.t));
        out
    }

    /// The step's terminations from the journal, at the first one's time.
    fn terminated(&self, target: &str, step: usize, t0: SystemTime) -> Option<Marker> {
        let times: Vec<f64> = self
            .run
            .step(target, step)
            .map(|s| s.outcomes.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|o| o.outcome == NodeOutcome::Terminated)
            .filter_map(|o| parse_time(&o.at).map(|at| secs_between(t0, at)))
            .collect();
        let first = times.iter().copied().reduce(f64::min)?;
        Some(Marker {
            t: first,
            label: count_label(times.len(), "node terminated", "nodes terminated"),
            source: "journal",
        })
    }

    /// The lab's events of the cluster that lost `nodes`, within the window, one marker per
    /// kind of event.
    fn truth_markers(&self, nodes: &[String], t0: SystemTime, window: (f64, f64)) -> Vec<Marker> {
        let Some(truth) = &self.truth else {
            return Vec::new();
        };
        // The lab cluster of this target: the one its terminated nodes belonged to.
        let cluster = truth
            .iter()
            .find(|e| e.node.as_ref().is_some_and(|n| nodes.contains(n)))
            .and_then(|e| e.cluster.clone());
        let Some(cluster) = cluster else {
            return Vec::new();
        };
        let kinds: [(&str, &str, &str); 6] = [
            ("node_killed", "node killed", "nodes killed"),
            ("node_died", "node died", "nodes died"),
            ("node_lost_detected", "loss detected", "losses detected"),
            ("worker_placed", "worker re-placed", "workers re-placed"),
            ("node_joined", "replacement joined", "replacements joined"),
            ("backlog_drained", "backlog drained", "backlogs drained"),
        ];
        let in_window = |t: f64| t >= window.0 && t <= window.1;
        let mut out = Vec::new();
        for (event, one, many) in kinds {
            let times: Vec<f64> = truth
                .iter()
                .filter(|e| e.event == event && e.cluster.as_deref() == Some(cluster.as_str()))
                .filter_map(|e| parse_time(&e.at).map(|at| secs_between(t0, at)))
                // From the injection on (a replacement that joined during the cooldown before
                // belongs to the step before); the journal's and the lab's clocks are one.
                .filter(|&t| t >= -0.05 && in_window(t))
                .collect();
            if let Some(first) = times.iter().copied().reduce(f64::min) {
                out.push(Marker {
                    t: first,
                    label: count_label(times.len(), one, many),
                    source: "lab truth",
                });
            }
        }
        out
    }
}

fn count_label(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_owned()
    } else {
        format!("{n} {many}")
    }
}

/// Rows of `samples.csv` (`at,t_s,application,group,status,lag_seconds,lag_messages`) and the
/// number of lines that could not be read. Application names may hold commas: the fixed
/// columns are taken from both ends.
pub fn parse_samples(text: &str) -> (Vec<SampleRow>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 7 {
            bad += 1;
            continue;
        }
        let n = fields.len();
        let at = parse_time(fields[0]);
        let lag = fields[n - 2];
        let lag_s = if lag.is_empty() {
            Some(None)
        } else {
            lag.parse::<f64>().ok().map(Some)
        };
        match (at, lag_s) {
            (Some(at), Some(lag_s)) => rows.push(SampleRow {
                at,
                application: fields[2..n - 4].join(","),
                status: fields[n - 3].to_owned(),
                lag_s,
            }),
            _ => bad += 1,
        }
    }
    (rows, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_gaps_and_commas_in_names() {
        let text = "at,t_s,application,group,status,lag_seconds,lag_messages\n\
            2026-11-26T03:23:01.517Z,0.003,app,app,never_committed,,39\n\
            2026-11-26T03:23:02.017Z,0.503,a,b,g,ok,1.250,7\n\
            not a line\n";
        let (rows, bad) = parse_samples(text);
        assert_eq!(bad, 1);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].lag_s, None);
        assert_eq!(rows[1].application, "a,b");
        assert_eq!(rows[1].status, "ok");
        assert_eq!(rows[1].lag_s, Some(1.25));
    }
}
