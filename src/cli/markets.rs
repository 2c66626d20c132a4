//! `spotdrill markets PLAN`: per AWS target, the spot markets its nodes sit in (instance type ×
//! zone), the largest market's share, the last 30 days of their spot prices and the account's
//! spot interruptions of the last 90 days (`crate::preflight::markets`). Terminates nothing.
//! `--json` writes the history `spotdrill report --history` reads. Exit 0, also when some calls
//! were refused (each is named); 4 when a target's nodes could not be discovered.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::analysis::markets::{Interruptions, MarketsReport, PriceHistory, TargetMarkets};
use crate::exit::{ExitCode, Failure};
use crate::output;
use crate::preflight::markets::{self, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print the markets and their history as JSON (the file `report --history` reads).
    #[arg(long)]
    pub json: bool,
    /// The window interruptions are counted in (default: the lab's replacement delay, else
    /// 5m, the seed's spot replacement lead time).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub lead_time: Option<Duration>,
    /// An instance type's on-demand price in USD per hour (`c5.xlarge=0.17`), to show the
    /// highest spot price as a share of it; repeat for more types.
    #[arg(long = "on-demand", value_name = "TYPE=PRICE", value_parser = on_demand_price)]
    pub on_demand: Vec<(String, f64)>,
}

fn on_demand_price(s: &str) -> Result<(String, f64), String> {
    let (t, p) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not TYPE=PRICE (c5.xlarge=0.17)"))?;
    let price: f64 = p
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p > 0.0)
        .ok_or_else(|| format!("`{p}` is not a price above 0 (USD per hour)"))?;
    Ok((t.to_owned(), price))
}

pub fn run(args: Args, aws: &super::AwsArgs) -> anyhow::Result<ExitCode> {
    let (plan, _text) = super::load_plan(&args.plan)?;
    let opts = Options {
        lead_time: args.lead_time,
        on_demand: args.on_demand.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let report = markets::read(&plan, &aws.settings(), &opts)?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&report)?;
        text.push('\n');
        output::out(&text);
    } else {
        output::out(&render(&report));
    }
    let failed: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.provider != "lab")
        .filter_map(|t| t.note.as_ref().map(|n| format!("{}: {n}", t.name)))
        .collect();
    if !failed.is_empty() {
        return Err(Failure::environment(failed.join("; ")).into());
    }
    Ok(ExitCode::Success)
}

/// The text form.
pub fn render(r: &MarketsReport) -> String {
    let mut s = format!("plan `{}`: spot markets and their history\n", r.plan);
    for t in &r.targets {
        s.push_str(&target_text(t));
    }
    s
}

fn target_text(t: &TargetMarkets) -> String {
    let region = t.region.as_deref().unwrap_or("-");
    let mut s = format!("\ntarget {} ({}, region {region})\n", t.name, t.provider);
    if let Some(note) = &t.note {
        s.push_str(&format!("  {note}\n"));
        return s;
    }
    s.push_str(&format!("  markets of {} nodes:\n", t.nodes));
    for m in &t.markets {
        s.push_str(&format!(
            "    {}/{}: {} ({}%)\n",
            m.instance_type, m.zone, m.nodes, m.share_pct
        ));
    }
    if let (Some(share), Some(m)) = (t.largest_share_pct, t.markets.first()) {
        s.push_str(&format!(
            "  largest market: {}/{} holds {share}% of the nodes (one price event can take it whole)\n",
            m.instance_type, m.zone
        ));
    }
    match &t.prices {
        Some(p) => s.push_str(&prices_text(p)),
        None => s.push_str("  prices: not read (below)\n"),
    }
    match &t.interruptions {
        Some(i) => s.push_str(&interruptions_text(i, t.lead_time_s, &t.lead_time_source)),
        None => s.push_str("  interruptions: not read (below)\n"),
    }
    for u in &t.unreadable {
        let why = if u.denied { "access denied" } else { "failed" };
        s.push_str(&format!(
            "  could not read {} ({why}): {}\n",
            u.call, u.error
        ));
    }
    s
}

fn price(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("${p}/h"))
}

fn prices_text(p: &PriceHistory) -> String {
    let mut s = format!("  spot prices, last {} days:\n", p.days);
    for m in &p.markets {
        let of_od = m
            .highest_of_on_demand_pct
            .map(|x| format!(" = {x}% of on-demand {}", price(m.on_demand)))
            .unwrap_or_default();
        s.push_str(&format!(
            "    {}/{}: highest {}{of_od}, lowest {}, now {}; moved {} time{}\n",
            m.instance_type,
            m.zone,
            price(m.highest),
            price(m.lowest),
            price(m.latest),
            m.changes,
            if m.changes == 1 { "" } else { "s" }
        ));
    }
    s.push_str(&format!("    on-demand prices: {}\n", p.on_demand_source));
    s
}

fn interruptions_text(i: &Interruptions, lead_s: f64, source: &str) -> String {
    let w = &i.worst_window;
    let when = match (&w.from, &w.to) {
        (Some(a), Some(b)) if a == b => format!(" at {a}"),
        (Some(a), Some(b)) => format!(" from {a} to {b}"),
        _ => String::new(),
    };
    let unknown = match w.unattributed {
        0 => String::new(),
        n => format!(" ({n} of them in unknown markets)"),
    };
    let mut s = format!(
        "  spot interruptions (CloudTrail BidEvictedEvent), last {} days: {} instance{} in the \
         account and region, {} in these markets, {} in unknown markets\n",
        i.days,
        i.instances,
        if i.instances == 1 { "" } else { "s" },
        i.in_these_markets,
        i.unattributed
    );
    s.push_str(&format!(
        "  most within any {lead_s:.0} s ({source}): {}{when}{unknown}\n",
        w.count
    ));
    if i.truncated {
        s.push_str("  note: the lookup stopped at its page limit: older events were not read\n");
    }
    s
}
