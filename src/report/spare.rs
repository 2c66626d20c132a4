//! Spare capacity by the seed's rule: the most nodes lost within the replacement lead time ×
//! the safety multiple, next to the measured tolerance, each input with its source.
//!
//! - lead time: `run` (the longest `capacity_restored_s` of the steps), else the history's
//!   (`plan: lab.clusters.…replacement.delay`, `--lead-time`, or the seed's 5 min default).
//! - losses: `history` (the account's spot interruptions of the target's markets, from a
//!   `spotdrill markets --json` file, counted again within that lead time), else `run` (the
//!   ladder's own largest step, said to be circular).
//!
//! The history is a file in the run directory ([`HISTORY_FILE`], copied there by `report
//! --history`), so rebuilding a report stays offline and gives the same answer every time.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Overprovisioning, Report, TargetReport, text};
use crate::analysis::fmt_secs;
use crate::analysis::markets::{MarketsReport, SCHEMA, TargetMarkets};

/// The history file a run directory may hold: `spotdrill markets --json` output.
pub const HISTORY_FILE: &str = "markets.json";

/// What the account's spot history says of a target's spare capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistorySizing {
    /// When `spotdrill markets` read the history (RFC 3339).
    pub generated_at: String,
    /// How many days of interruptions it holds (CloudTrail keeps 90); null when they could not
    /// be read.
    pub days: Option<u32>,
    /// The most interruptions of the target's markets (and of unknown markets) within the lead
    /// time; null when they could not be read.
    pub max_interruptions_in_lead_time: Option<u32>,
    /// Of them, in markets EC2 no longer names (counted, so the figure is an upper bound).
    pub unattributed: Option<u32>,
    /// Nodes to add beyond what the cluster absorbs: spare nodes − measured tolerance (0 when
    /// the tolerance covers them); null without interruptions.
    pub add_nodes: Option<u32>,
    /// The largest market (`TYPE/ZONE`) and its share of the nodes, percent.
    pub largest_market: Option<String>,
    pub largest_share_pct: Option<f64>,
    /// What the history could not read (AccessDenied and other failures), call by call.
    pub unreadable: Vec<String>,
}

/// Read a history file: bad input names the file, line and column.
pub fn read_history(path: &Path) -> anyhow::Result<MarketsReport> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the history {}", path.display()))?;
    let history: MarketsReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a `spotdrill markets --json` output",
            path.display()
        )
    })?;
    if history.schema != SCHEMA {
        anyhow::bail!(
            "{}: schema is `{}`, not `{SCHEMA}`",
            path.display(),
            history.schema
        );
    }
    Ok(history)
}

impl Report {
    /// Size every target's spare capacity again with the account's history: targets by name;
    /// a target the history does not hold keeps the run-only sizing and a note says why.
    pub fn apply_history(&mut self, history: &MarketsReport) {
        for t in &mut self.targets {
            let found = history.targets.iter().find(|h| h.name == t.name);
            let multiple = t.safety_multiple.unwrap_or(3.0);
            match found {
                Some(h) => t.overprovisioning = sizing(t, multiple, Some((h, history))),
                None => self.notes.push(format!(
                    "{}: the spot history ({HISTORY_FILE}, plan `{}`) has no target of this name",
                    t.name, history.plan
                )),
            }
        }
    }
}

/// The target's spare capacity; `None` when no lead time is known (capacity never seen coming
/// back, and no history).
pub(super) fn sizing(
    t: &TargetReport,
    multiple: f64,
    history: Option<(&TargetMarkets, &MarketsReport)>,
) -> Option<Overprovisioning> {
    let measured = t
        .steps
        .iter()
        .filter_map(|s| s.capacity_restored_s)
        .reduce(f64::max);
    let (lead, lead_source) = match (measured, history) {
        (Some(l), _) => (
            l,
            "run: the longest capacity_restored_s of its steps".to_owned(),
        ),
        (None, Some((h, _))) => (h.lead_time_s, format!("history: {}", h.lead_time_source)),
        (None, None) => return None,
    };
    let interrupted = history.and_then(|(h, _)| h.interruptions.as_ref().map(|i| i.within(lead)));
    let (losses, losses_source) = match (interrupted, history) {
        (Some((n, _)), Some((h, file))) => (vec![0.0; n as usize], history_source(h, file)),
        _ => (super::losses(t), run_source(history)),
    };
    let o = crate::analysis::overprovisioning(&losses, lead, multiple);
    let sized = history.map(|(h, file)| HistorySizing {
        generated_at: file.generated_at.clone(),
        days: h.interruptions.as_ref().map(|i| i.days),
        max_interruptions_in_lead_time: interrupted.map(|(n, _)| n),
        unattributed: interrupted.map(|(_, u)| u),
        add_nodes: interrupted.map(|_| o.spare_nodes.saturating_sub(t.tolerated_terminations)),
        largest_market: h
            .markets
            .first()
            .map(|m| format!("{}/{}", m.instance_type, m.zone)),
        largest_share_pct: h.largest_share_pct,
        unreadable: h
            .unreadable
            .iter()
            .map(|u| format!("{}: {}", u.call, u.error))
            .collect(),
    });
    let mut out = Overprovisioning {
        replacement_lead_time_s: (lead * 10.0).round() / 10.0,
        max_losses_in_lead_time: o.max_losses_in_lead_time,
        safety_multiple: multiple,
        spare_nodes: o.spare_nodes,
        tolerated_terminations: t.tolerated_terminations,
        summary: String::new(),
        lead_time_source: Some(lead_source),
        losses_source: Some(losses_source),
        history: sized,
    };
    out.summary = summary(t, &out);
    Some(out)
}

fn history_source(h: &TargetMarkets, file: &MarketsReport) -> String {
    let days = h.interruptions.as_ref().map_or(0, |i| i.days);
    format!(
        "history: the account's spot interruptions of these markets (CloudTrail \
         BidEvictedEvent, {days} days, read {})",
        file.generated_at
    )
}

fn run_source(history: Option<(&TargetMarkets, &MarketsReport)>) -> String {
    let why = match history {
        None => "no spot history was given, see `spotdrill markets`".to_owned(),
        Some((h, _)) => {
            let failed: Vec<&str> = h.unreadable.iter().map(|u| u.call.as_str()).collect();
            match failed.is_empty() {
                true => "the history holds no interruptions".to_owned(),
                false => format!("the history could not read {}", failed.join(", ")),
            }
        }
    };
    format!("run: the ladder's own largest step, not observed losses; {why}")
}

/// "history says 9 within 5 min × 3 = 27; the cluster absorbs 6: add 21, or diversify: …"
fn summary(t: &TargetReport, o: &Overprovisioning) -> String {
    let lead = fmt_secs(o.replacement_lead_time_s);
    let lead_from = o.lead_time_source.as_deref().unwrap_or_default();
    let absorbs = text::bound_short(t);
    let Some(h) = o
        .history
        .as_ref()
        .filter(|h| h.max_interruptions_in_lead_time.is_some())
    else {
        return format!(
            "keep {} spare nodes: up to {} lost within the {lead} replacement lead time × {}; \
             lead time from {}, losses from {}; the ladder measured a tolerance of {absorbs}",
            o.spare_nodes,
            o.max_losses_in_lead_time,
            o.safety_multiple,
            said(lead_from),
            said(o.losses_source.as_deref().unwrap_or_default())
        );
    };
    let unknown = match h.unattributed {
        Some(n) if n > 0 => format!(" ({n} in markets EC2 no longer names)"),
        _ => String::new(),
    };
    let diversify = match (&h.largest_market, h.largest_share_pct) {
        (Some(m), Some(p)) => format!(", or diversify: {p}% of the nodes are in {m}"),
        _ => String::new(),
    };
    let gap = match h.add_nodes {
        Some(0) | None => format!("the measured tolerance covers it{diversify}"),
        Some(n) => format!("add {n}{diversify}"),
    };
    format!(
        "history says {}{unknown} within {lead} × {} = {} spare nodes (lead time from {}); \
         the cluster absorbs {absorbs} (run): {gap}",
        o.max_losses_in_lead_time,
        o.safety_multiple,
        o.spare_nodes,
        said(lead_from)
    )
}

/// `run: the longest …` → `run (the longest …)`.
fn said(source: &str) -> String {
    match source.split_once(": ") {
        Some((from, what)) => format!("{from} ({what})"),
        None => source.to_owned(),
    }
}
