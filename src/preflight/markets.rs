//! `spotdrill markets PLAN`: per target, the spot markets its nodes sit in and the account's
//! history of them (DescribeSpotPriceHistory, CloudTrail `BidEvictedEvent`), as
//! [`MarketsReport`]. Nodes are discovered through the target's provider exactly as `plan` and
//! `run` do; the history calls are [`crate::nodes::markets`]. A call that fails is listed per
//! target (`unreadable`) and the rest still answers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::analysis::markets::{self, MarketsReport, TargetMarkets};
use crate::nodes::aws::AwsSettings;
use crate::nodes::markets::Ask;
use crate::plan::{NodeSelector, Plan, Target};

/// The lead time when neither `--lead-time` nor the plan gives one: the seed's spot replacement
/// lead time ("< 5 min").
pub const DEFAULT_LEAD_TIME: Duration = Duration::from_secs(300);

/// What the operator asked for beyond the plan.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--lead-time`: the window interruptions are counted in, for every target.
    pub lead_time: Option<Duration>,
    /// `--on-demand TYPE=PRICE`: on-demand prices, USD per hour.
    pub on_demand: BTreeMap<String, f64>,
}

/// Read every target's markets and history.
pub fn read(plan: &Plan, settings: &AwsSettings, opts: &Options) -> anyhow::Result<MarketsReport> {
    let _span = tracing::info_span!("markets", plan = %plan.name).entered();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = SystemTime::now();
    let targets = runtime.block_on(async {
        let mut out = Vec::new();
        for (name, target) in &plan.targets {
            out.push(target_markets(plan, name, target, settings, opts, now).await);
        }
        out
    });
    Ok(MarketsReport {
        schema: markets::SCHEMA.to_owned(),
        plan: plan.name.clone(),
        generated_at: humantime::format_rfc3339_seconds(now).to_string(),
        targets,
    })
}

/// The region a target's selector names, if any (a lab target has none).
fn selector_region(selector: &NodeSelector) -> Option<&str> {
    match selector {
        NodeSelector::Lab { .. } => None,
        NodeSelector::AwsEc2 { region, .. }
        | NodeSelector::AwsAsg { region, .. }
        | NodeSelector::AwsFis { region, .. } => region.as_deref(),
        NodeSelector::Kubernetes(k) => k.region.as_deref(),
    }
}

/// The target's lead time and where it comes from.
fn lead_time(plan: &Plan, target: &Target, opts: &Options) -> (Duration, String) {
    if let Some(l) = opts.lead_time {
        return (l, "--lead-time".into());
    }
    let cluster = match &target.nodes {
        NodeSelector::Lab { cluster, .. } => Some(cluster),
        NodeSelector::Kubernetes(k) => k.lab_cluster.as_ref(),
        _ => None,
    };
    if let Some(cluster) = cluster {
        let delay = plan.lab.as_ref().and_then(|l| l.clusters.get(cluster));
        if let Some(d) = delay.and_then(|c| c.replacement_delay) {
            return (d, format!("plan: lab.clusters.{cluster}.replacement.delay"));
        }
    }
    (
        DEFAULT_LEAD_TIME,
        "default: the seed's spot replacement lead time (< 5 min); --lead-time overrides".into(),
    )
}

async fn target_markets(
    plan: &Plan,
    name: &str,
    target: &Target,
    settings: &AwsSettings,
    opts: &Options,
    now: SystemTime,
) -> TargetMarkets {
    let (lead, source) = lead_time(plan, target, opts);
    let provider = target.nodes.provider().name();
    let mut out = TargetMarkets {
        name: name.to_owned(),
        provider: provider.to_owned(),
        region: None,
        nodes: 0,
        markets: Vec::new(),
        largest_share_pct: None,
        lead_time_s: lead.as_secs_f64(),
        lead_time_source: source,
        prices: None,
        interruptions: None,
        unreadable: Vec::new(),
        note: None,
    };
    if target.nodes.on_lab() {
        out.note = Some("a lab target: its nodes sit in no spot market".into());
        return out;
    }
    let cx = crate::nodes::Context {
        aws: settings,
        plan_lab: plan.lab.as_ref(),
        lab: None,
        lab_dir: None,
    };
    let p = crate::nodes::connect(&target.nodes, cx).await;
    out.region = p.place().map(|place| place.region);
    let nodes = match p.discover().await {
        Ok(d) => d.nodes(),
        Err(e) => {
            out.note = Some(format!("cannot discover the nodes: {e}"));
            return out;
        }
    };
    let placed: Vec<_> = nodes
        .iter()
        .map(|n| (n.instance_type.clone(), n.zone.clone()))
        .collect();
    out.nodes = nodes.len() as u32;
    (out.markets, out.largest_share_pct) = markets::markets_of(&placed);
    let config = crate::nodes::aws::sdk_config(settings, selector_region(&target.nodes)).await;
    let ask = Ask {
        lead_time_s: lead.as_secs_f64(),
        on_demand: &opts.on_demand,
        now,
    };
    let history = crate::nodes::markets::read(&config, &out.markets, &ask).await;
    out.prices = history.prices;
    out.interruptions = history.interruptions;
    out.unreadable = history.unreadable;
    out
}
