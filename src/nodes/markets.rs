//! The account's history of a target's spot markets, read from AWS (the arithmetic is
//! [`crate::analysis::markets`]): DescribeSpotPriceHistory of the markets over the last 30 days,
//! and CloudTrail LookupEvents of `BidEvictedEvent` (the spot interruptions) over the last 90,
//! each interrupted instance placed in its market by DescribeInstances where EC2 still knows it.
//!
//! Every call may fail on its own (a missing permission, an emulator that lacks the call): what
//! it would have told is then null, and the failure is listed in `unreadable`, never fatal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;

use super::ec2_api::{self, Filter, cloudtrail::CloudTrail};
use crate::analysis::markets::{
    Interruption, Interruptions, Market, MarketPrice, PriceHistory, Unreadable, Window, densest,
    price_summary,
};

/// How far back prices are read.
pub const PRICE_DAYS: u32 = 30;
/// How far back interruptions are read (CloudTrail's event history keeps 90 days).
pub const INTERRUPTION_DAYS: u32 = 90;
const DAY: Duration = Duration::from_secs(86_400);

/// What to read, besides the markets.
pub struct Ask<'a> {
    /// The window interruptions are counted in, seconds.
    pub lead_time_s: f64,
    /// On-demand prices per instance type (USD per hour), given by the operator.
    pub on_demand: &'a BTreeMap<String, f64>,
    /// Now (the end of every window).
    pub now: SystemTime,
}

/// What was read; each part `None` when its call failed (see `unreadable`).
#[derive(Debug, Default)]
pub struct History {
    pub prices: Option<PriceHistory>,
    pub interruptions: Option<Interruptions>,
    pub unreadable: Vec<Unreadable>,
}

/// Read the history of `markets` with `config` (the target's region and credentials).
pub async fn read(config: &SdkConfig, markets: &[Market], ask: &Ask<'_>) -> History {
    let ec2 = ec2_api::Client::new(config);
    let mut out = History::default();
    match prices(&ec2, markets, ask).await {
        Ok(p) => out.prices = Some(p),
        Err(e) => out
            .unreadable
            .push(unreadable("ec2:DescribeSpotPriceHistory", &e)),
    }
    let trail = CloudTrail::new(config);
    let start = ask.now - DAY * INTERRUPTION_DAYS;
    match trail.lookup_events("BidEvictedEvent", start, ask.now).await {
        Ok(lookup) => {
            let (found, truncated) = (lookup.events, lookup.truncated);
            let losses: Vec<(String, f64)> = found
                .iter()
                .flat_map(|e| e.instance_ids.iter().map(|id| (id.clone(), e.time_s)))
                .collect();
            let placed = place(&ec2, &losses, &mut out.unreadable).await;
            out.interruptions = Some(interruptions(&losses, &placed, markets, ask, truncated));
        }
        Err(e) => out
            .unreadable
            .push(unreadable("cloudtrail:LookupEvents", &e)),
    }
    out
}

fn unreadable(call: &str, e: &ec2_api::Error) -> Unreadable {
    let denied = matches!(
        e.code(),
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException")
    );
    // One line, short: an emulator may answer with a whole HTML page.
    let text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let error = match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    };
    Unreadable {
        call: call.to_owned(),
        denied,
        error,
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn parse_time(s: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(s).ok().map(epoch)
}

/// The price history of each market (one call for all: every type, every zone, then sorted
/// out per market).
async fn prices(
    ec2: &ec2_api::Client,
    markets: &[Market],
    ask: &Ask<'_>,
) -> Result<PriceHistory, ec2_api::Error> {
    let start = ask.now - DAY * PRICE_DAYS;
    let mut types: Vec<String> = markets.iter().map(|m| m.instance_type.clone()).collect();
    let mut zones: Vec<String> = markets.iter().map(|m| m.zone.clone()).collect();
    types.sort();
    types.dedup();
    zones.sort();
    zones.dedup();
    let points = match markets.is_empty() {
        true => Vec::new(),
        false => {
            ec2.describe_spot_price_history(&types, &zones, start)
                .await?
        }
    };
    let mut by_market: HashMap<(&str, &str), Vec<(f64, f64)>> = HashMap::new();
    for p in &points {
        if let (Some(t), Ok(price)) = (parse_time(&p.timestamp), p.spot_price.parse::<f64>()) {
            let key = (p.instance_type.as_str(), p.availability_zone.as_str());
            by_market.entry(key).or_default().push((t, price));
        }
    }
    let start_s = epoch(start);
    let each = markets.iter().map(|m| {
        let key = (m.instance_type.as_str(), m.zone.as_str());
        let pts = by_market.get(&key).map(Vec::as_slice).unwrap_or_default();
        market_price(
            m,
            pts,
            start_s,
            ask.on_demand.get(&m.instance_type).copied(),
        )
    });
    Ok(PriceHistory {
        days: PRICE_DAYS,
        on_demand_source: on_demand_source(ask.on_demand),
        markets: each.collect(),
    })
}

fn on_demand_source(given: &BTreeMap<String, f64>) -> String {
    match given.is_empty() {
        true => "none: spotdrill ships no price list and does not call the AWS Price List API; \
                 pass --on-demand TYPE=USD_PER_HOUR to compare"
            .into(),
        false => "--on-demand (given by the operator)".into(),
    }
}

fn market_price(m: &Market, pts: &[(f64, f64)], start_s: f64, od: Option<f64>) -> MarketPrice {
    let s = price_summary(pts, start_s);
    let share = s
        .highest
        .zip(od.filter(|o| *o > 0.0))
        .map(|(h, o)| (h / o * 1000.0).round() / 10.0);
    MarketPrice {
        instance_type: m.instance_type.clone(),
        zone: m.zone.clone(),
        points: pts.len() as u32,
        changes: s.changes,
        lowest: s.lowest,
        highest: s.highest,
        latest: s.latest,
        on_demand: od,
        highest_of_on_demand_pct: share,
    }
}

/// The market (instance type, zone) of each interrupted instance EC2 still describes.
async fn place(
    ec2: &ec2_api::Client,
    losses: &[(String, f64)],
    unreadable_calls: &mut Vec<Unreadable>,
) -> HashMap<String, (String, String)> {
    let mut ids: Vec<String> = losses.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let filter = [Filter::new("instance-id", chunk.iter().cloned())];
        match ec2.describe_instances(&filter, 1000).await {
            Ok(reservations) => {
                for i in reservations.into_iter().flat_map(|r| r.instances) {
                    if let (Some(id), Some(t), Some(z)) =
                        (i.instance_id, i.instance_type, i.availability_zone)
                    {
                        out.insert(id, (t, z));
                    }
                }
            }
            Err(e) => {
                unreadable_calls.push(unreadable("ec2:DescribeInstances", &e));
                break;
            }
        }
    }
    out
}

/// Interruptions of these markets (and of unknown ones) and their densest window.
fn interruptions(
    losses: &[(String, f64)],
    placed: &HashMap<String, (String, String)>,
    markets: &[Market],
    ask: &Ask<'_>,
    truncated: bool,
) -> Interruptions {
    let ours: HashSet<(&str, &str)> = markets
        .iter()
        .map(|m| (m.instance_type.as_str(), m.zone.as_str()))
        .collect();
    let mut counted: Vec<(f64, bool)> = Vec::new();
    let mut events: Vec<(f64, Interruption)> = Vec::new();
    for (id, t) in losses {
        let market = match placed.get(id) {
            Some((ty, z)) if ours.contains(&(ty.as_str(), z.as_str())) => Some(format!("{ty}/{z}")),
            Some(_) => continue,
            None => None,
        };
        counted.push((*t, market.is_none()));
        let at = rfc3339(*t);
        let instance_id = id.clone();
        events.push((
            *t,
            Interruption {
                at,
                instance_id,
                market,
            },
        ));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let times: Vec<f64> = counted.iter().map(|(t, _)| *t).collect();
    let d = densest(&times, ask.lead_time_s);
    let in_window =
        |&&(t, _): &&(f64, bool)| d.first.zip(d.last).is_some_and(|(a, b)| t >= a && t <= b);
    let unattributed = counted.iter().filter(|(_, u)| *u).count() as u32;
    Interruptions {
        days: INTERRUPTION_DAYS,
        instances: losses.len() as u32,
        in_these_markets: counted.len() as u32 - unattributed,
        unattributed,
        truncated,
        worst_window: Window {
            count: d.count as u32,
            unattributed: counted.iter().filter(in_window).filter(|(_, u)| *u).count() as u32,
            from: d.first.map(rfc3339),
            to: d.last.map(rfc3339),
        },
        events: events.into_iter().map(|(_, e)| e).collect(),
    }
}

fn rfc3339(t: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(t: &str, z: &str) -> Market {
        Market {
            instance_type: t.into(),
            zone: z.into(),
            nodes: 1,
            share_pct: 50.0,
        }
    }

    #[test]
    fn interruptions_count_these_markets_and_unknown_ones_in_the_window() {
        let markets = [market("c5.xlarge", "us-east-1a")];
        let losses: Vec<(String, f64)> = [
            ("i-a", 1000.0), // ours
            ("i-b", 1100.0), // another market: left out
            ("i-c", 1200.0), // unknown: counted, said so
            ("i-d", 1250.0), // ours
            ("i-e", 9000.0), // ours, alone
        ]
        .iter()
        .map(|(i, t)| ((*i).to_owned(), *t))
        .collect();
        let placed: HashMap<String, (String, String)> = [
            ("i-a", "c5.xlarge", "us-east-1a"),
            ("i-b", "m5.large", "us-east-1a"),
            ("i-d", "c5.xlarge", "us-east-1a"),
            ("i-e", "c5.xlarge", "us-east-1a"),
        ]
        .iter()
        .map(|(i, t, z)| ((*i).to_owned(), ((*t).to_owned(), (*z).to_owned())))
        .collect();
        let od = BTreeMap::new();
        let ask = Ask {
            lead_time_s: 300.0,
            on_demand: &od,
            now: UNIX_EPOCH,
        };
        let i = interruptions(&losses, &placed, &markets, &ask, false);
        assert_eq!((i.instances, i.in_these_markets, i.unattributed), (5, 3, 1));
        assert_eq!((i.worst_window.count, i.worst_window.unattributed), (3, 1));
        assert_eq!(i.worst_window.from.as_deref(), Some("1970-01-01T00:16:40Z"));
        assert_eq!(i.worst_window.to.as_deref(), Some("1970-01-01T00:20:50Z"));
        // The events are kept, oldest first, so a report can count them in another window.
        let ids: Vec<&str> = i.events.iter().map(|e| e.instance_id.as_str()).collect();
        assert_eq!(ids, ["i-a", "i-c", "i-d", "i-e"]);
        assert_eq!(i.events[1].market, None);
        assert_eq!(i.within(300.0), (3, 1));
        assert_eq!(i.within(100.0), (2, 1));
        assert_eq!(i.within(10_000.0), (4, 1));
    }

    #[test]
    fn the_highest_price_is_a_share_of_on_demand_only_when_given() {
        let m = market("c5.xlarge", "us-east-1a");
        let p = market_price(&m, &[(0.0, 0.05), (200.0, 0.085)], 100.0, Some(0.17));
        assert_eq!((p.changes, p.highest), (1, Some(0.085)));
        assert_eq!(p.highest_of_on_demand_pct, Some(50.0));
        assert_eq!(
            market_price(&m, &[(0.0, 0.05)], 100.0, None).highest_of_on_demand_pct,
            None
        );
        assert!(on_demand_source(&BTreeMap::new()).starts_with("none"));
    }
}
