//! The spot markets a target's nodes sit in (instance type × availability zone), and what the
//! account's history says of them: the output of `spotdrill markets --json`, which `spotdrill
//! report --history` reads back to size the spare capacity. Pure: the AWS calls that fill it
//! are in `nodes::markets`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `markets --json` writes (and `report --history` reads): `schema` is [`SCHEMA`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketsReport {
    /// `spotdrill-markets/1`.
    pub schema: String,
    /// The plan's name.
    pub plan: String,
    /// When the history was read (RFC 3339).
    pub generated_at: String,
    /// The targets in plan order.
    pub targets: Vec<TargetMarkets>,
}

/// The format of [`MarketsReport`].
pub const SCHEMA: &str = "spotdrill-markets/1";

/// One target's markets and their history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetMarkets {
    pub name: String,
    pub provider: String,
    /// The AWS region; null for a lab target.
    pub region: Option<String>,
    /// The nodes discovered (running, eligible).
    pub nodes: u32,
    /// Largest first.
    pub markets: Vec<Market>,
    /// The largest market's share of the nodes, percent (one price event can take it whole).
    pub largest_share_pct: Option<f64>,
    /// The window interruptions are counted in: the target's replacement lead time (seconds).
    pub lead_time_s: f64,
    /// Where the lead time comes from (`plan: …`, `--lead-time`, `default: …`).
    pub lead_time_source: String,
    /// DescribeSpotPriceHistory of these markets; null when it could not be read.
    pub prices: Option<PriceHistory>,
    /// The account's spot interruptions (CloudTrail); null when they could not be read.
    pub interruptions: Option<Interruptions>,
    /// The calls that failed (AccessDenied and others): what this answer lacks.
    pub unreadable: Vec<Unreadable>,
    /// Why there is nothing to read (a lab target, discovery failed).
    pub note: Option<String>,
}

/// One spot market of a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    pub instance_type: String,
    pub zone: String,
    pub nodes: u32,
    pub share_pct: f64,
}

/// The spot price history of a target's markets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceHistory {
    /// How far back, days.
    pub days: u32,
    /// Where the on-demand prices come from (`--on-demand`), or why there are none.
    pub on_demand_source: String,
    pub markets: Vec<MarketPrice>,
}

/// One market's prices over the window (USD per hour).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketPrice {
    pub instance_type: String,
    pub zone: String,
    /// Price points in the answer (the one in effect at the window's start included).
    pub points: u32,
    /// How often the price moved within the window.
    pub changes: u32,
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    pub latest: Option<f64>,
    /// The on-demand price of the instance type, when given.
    pub on_demand: Option<f64>,
    /// `highest` as a share of `on_demand`, percent.
    pub highest_of_on_demand_pct: Option<f64>,
}

/// The account's spot interruptions (`BidEvictedEvent`) in the target's region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interruptions {
    /// How far back, days.
    pub days: u32,
    /// Instances interrupted in the account and region.
    pub instances: u32,
    /// Of them, in this target's markets.
    pub in_these_markets: u32,
    /// Of them, whose market is unknown (terminated instances can be described for about an
    /// hour only): counted with these markets, so the window below is an upper bound.
    pub unattributed: u32,
    /// The page limit cut the lookup short.
    pub truncated: bool,
    /// The most interruptions of these markets (and unattributed ones) within any window of
    /// the lead time.
    pub worst_window: Window,
    /// Each interruption counted (these markets and unknown ones), oldest first: `report
    /// --history` counts them again within the run's measured lead time.
    pub events: Vec<Interruption>,
}

/// One interrupted instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interruption {
    /// When (RFC 3339).
    pub at: String,
    pub instance_id: String,
    /// `TYPE/ZONE`; null when EC2 no longer knows the instance.
    pub market: Option<String>,
}

impl Interruptions {
    /// The densest window of [`Interruptions::events`] within `lead_s`: (count, of them
    /// unattributed).
    pub fn within(&self, lead_s: f64) -> (u32, u32) {
        let times: Vec<(f64, bool)> = self
            .events
            .iter()
            .filter_map(|e| {
                let t = humantime::parse_rfc3339_weak(&e.at).ok()?;
                let s = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
                Some((s, e.market.is_none()))
            })
            .collect();
        let only: Vec<f64> = times.iter().map(|(t, _)| *t).collect();
        let d = densest(&only, lead_s);
        let inside = |t: f64| d.first.zip(d.last).is_some_and(|(a, b)| t >= a && t <= b);
        let unknown = times.iter().filter(|(t, u)| *u && inside(*t)).count();
        (d.count as u32, unknown as u32)
    }
}

/// The densest window of interruptions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub count: u32,
    /// Of `count`, whose market is unknown.
    pub unattributed: u32,
    /// The first and last interruption in it (RFC 3339); null when there were none.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A call that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unreadable {
    /// `ec2:DescribeSpotPriceHistory`, `cloudtrail:LookupEvents`, `ec2:DescribeInstances`.
    pub call: String,
    /// The permission was refused (AccessDenied, UnauthorizedOperation).
    pub denied: bool,
    pub error: String,
}

/// The markets of nodes given as (instance type, zone), largest first (ties by name), and the
/// largest one's share (percent). Nodes with no type or zone are left out.
pub fn markets_of(nodes: &[(Option<String>, Option<String>)]) -> (Vec<Market>, Option<f64>) {
    let mut counts: BTreeMap<(String, String), u32> = BTreeMap::new();
    for (t, z) in nodes {
        if let (Some(t), Some(z)) = (t, z) {
            *counts.entry((t.clone(), z.clone())).or_default() += 1;
        }
    }
    let total = nodes.len().max(1) as f64;
    let mut out: Vec<Market> = counts
        .into_iter()
        .map(|((instance_type, zone), n)| Market {
            instance_type,
            zone,
            nodes: n,
            share_pct: round1(f64::from(n) / total * 100.0),
        })
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.nodes));
    let largest = out.first().map(|m| m.share_pct);
    (out, largest)
}

/// The prices of one market over a window from `start_s`: `points` are (seconds since the
/// epoch, price) in any order. The last point at or before the start is the price in effect
/// then (DescribeSpotPriceHistory returns it); points after it count, and `changes` is how
/// often the price differed from the one before.
pub fn price_summary(points: &[(f64, f64)], start_s: f64) -> PriceStats {
    let mut sorted: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, p)| t.is_finite() && p.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first_inside = sorted.partition_point(|(t, _)| *t <= start_s);
    let from = first_inside.saturating_sub(1);
    let window = &sorted[from..];
    let prices = window.iter().map(|(_, p)| *p);
    PriceStats {
        changes: window.windows(2).filter(|w| w[0].1 != w[1].1).count() as u32,
        lowest: prices.clone().reduce(f64::min),
        highest: prices.reduce(f64::max),
        latest: window.last().map(|(_, p)| *p),
    }
}

/// What [`price_summary`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriceStats {
    pub changes: u32,
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    pub latest: Option<f64>,
}

/// The densest window of `times` (seconds, any order): the most within `lead_s` of each other
/// (both ends included), and the indexes of its first and last in the sorted order. Non-finite
/// times are left out; a negative lead counts only simultaneous ones together.
pub fn densest(times: &[f64], lead_s: f64) -> Densest {
    let mut sorted: Vec<f64> = times.iter().copied().filter(|t| t.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let lead = lead_s.max(0.0);
    let mut best = Densest::default();
    let mut start = 0;
    for (end, &t) in sorted.iter().enumerate() {
        while t - sorted[start] > lead {
            start += 1;
        }
        if end + 1 - start > best.count {
            best = Densest {
                count: end + 1 - start,
                first: Some(sorted[start]),
                last: Some(t),
            };
        }
    }
    best
}

/// The densest window: how many, and the first and last time in it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Densest {
    pub count: usize,
    pub first: Option<f64>,
    pub last: Option<f64>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(t: &str, z: &str) -> (Option<String>, Option<String>) {
        (Some(t.into()), Some(z.into()))
    }

    #[test]
    fn markets_are_counted_largest_first_with_the_largest_share() {
        let nodes = [
            node("c5.xlarge", "us-east-1a"),
            node("c5.2xlarge", "us-east-1b"),
            node("c5.xlarge", "us-east-1a"),
            node("c5.xlarge", "us-east-1b"),
            node("c5.xlarge", "us-east-1a"),
        ];
        let (m, largest) = markets_of(&nodes);
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].instance_type.as_str(), m[0].zone.as_str()),
            ("c5.xlarge", "us-east-1a")
        );
        assert_eq!(m[0].nodes, 3);
        assert_eq!(largest, Some(60.0));
        assert_eq!(markets_of(&[]).1, None);
    }

    #[test]
    fn the_price_in_effect_at_the_start_counts_and_moves_are_counted() {
        // 0.10 since before the window; then 0.12, 0.12 (no move), 0.09.
        let points = [
            (50.0, 0.10),
            (300.0, 0.09),
            (150.0, 0.12),
            (200.0, 0.12),
            (10.0, 0.50),
        ];
        let s = price_summary(&points, 100.0);
        assert_eq!(s.changes, 2);
        assert_eq!(s.highest, Some(0.12));
        assert_eq!(s.lowest, Some(0.09));
        assert_eq!(s.latest, Some(0.09));
        // moto's one point from 2006: in effect all window long, never moved.
        let s = price_summary(&[(1.0, 0.00001)], 100.0);
        assert_eq!((s.changes, s.highest), (0, Some(0.00001)));
        assert_eq!(price_summary(&[], 0.0).highest, None);
    }

    #[test]
    fn the_densest_window_holds_the_most_within_the_lead_time() {
        // Three within 300 s (1000, 1200, 1300), then two far apart.
        let d = densest(&[5000.0, 1200.0, 1000.0, 1300.0, 9000.0, 1301.0], 300.0);
        assert_eq!(d.count, 3);
        assert_eq!((d.first, d.last), (Some(1000.0), Some(1300.0)));
        // Both ends are included; simultaneous losses always count together.
        assert_eq!(densest(&[0.0, 300.0], 300.0).count, 2);
        assert_eq!(densest(&[7.0, 7.0, 8.0], -1.0).count, 2);
        assert_eq!(densest(&[], 300.0), Densest::default());
    }
}
