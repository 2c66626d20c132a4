//! Headroom per application and step ([`crate::analysis::headroom`]) from `watermarks.csv`
//! (`at,t_s,application,group,high_watermark,lag_messages`): the window is the 30 s before the
//! step's injection to its recovery (or the next step). A consumer already falling behind
//! before the loss is a finding of its step.

use std::path::Path;
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::evidence::{parse_time, secs_between};
use super::{Report, StepReport};
use crate::analysis::headroom::{Headroom, RatePoint, headroom, no_headroom};

/// How far before the injection production and consumption are measured, seconds.
const BEFORE_S: f64 = 30.0;

/// One application's rates in one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppHeadroom {
    pub application: String,
    #[serde(flatten)]
    pub headroom: Headroom,
}

struct Row {
    at: SystemTime,
    application: String,
    high_watermark: f64,
    lag_messages: f64,
}

fn rows(text: &str) -> Vec<Row> {
    let parse = |l: &str| {
        let f: Vec<&str> = l.split(',').collect();
        let n = f.len();
        (n >= 6).then_some(())?;
        Some(Row {
            at: parse_time(f[0])?,
            application: f[2..n - 3].join(","),
            high_watermark: f[n - 2].parse().ok()?,
            lag_messages: f[n - 1].parse().ok()?,
        })
    };
    text.lines().skip(1).filter_map(parse).collect()
}

/// Fill every step's `headroom` (and its findings) from the run directory's `watermarks.csv`.
pub(super) fn add_headroom(dir: &Path, report: &mut Report) {
    let Ok(text) = std::fs::read_to_string(dir.join("watermarks.csv")) else {
        return;
    };
    let rows = rows(&text);
    for t in &mut report.targets {
        for s in &mut t.steps {
            step_headroom(s, &rows);
        }
    }
}

fn step_headroom(s: &mut StepReport, rows: &[Row]) {
    let Some(t0) = s.injected_at.as_deref().and_then(parse_time) else {
        return;
    };
    for app in &s.applications {
        let end = app.recovery_s.unwrap_or(f64::INFINITY);
        let points: Vec<RatePoint> = rows
            .iter()
            .filter(|r| r.application == app.name)
            .map(|r| RatePoint {
                t: secs_between(t0, r.at),
                lag_messages: r.lag_messages,
                high_watermark: r.high_watermark,
            })
            .filter(|p| p.t >= -BEFORE_S && p.t <= end)
            .collect();
        if points.is_empty() {
            continue;
        }
        let h = headroom(&points, app.time_to_peak_s, app.recovery_s);
        if let Some(f) = no_headroom(&h) {
            s.findings.push(format!("{}: {f}", app.name));
        }
        s.findings
            .push(format!("{} headroom: {}", app.name, h.summary));
        s.headroom.push(AppHeadroom {
            application: app.name.clone(),
            headroom: h,
        });
    }
}
