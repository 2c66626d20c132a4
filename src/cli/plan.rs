//! `spotdrill plan PLAN`: the preflight (`crate::preflight`), rendered; terminates nothing.
//!
//! Resolves each target's nodes (a lab's are predicted: the lab only starts with `run`), shows
//! what each step would terminate with the very selection `run` makes, checks that Kafka and the
//! health endpoints answer, warns about guards the ladder would breach, and says how long the run
//! takes. AWS targets are discovered for real (DescribeInstances, DescribeAutoScalingGroups) and
//! TerminateInstances is checked with DryRun=true. Exit 0 when everything is ready, 4 when Kafka
//! or AWS cannot be reached or a permission is missing (after printing everything else).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::exit::{ExitCode, Failure};
use crate::journal::MarketRef;
use crate::nodes;
use crate::output;
use crate::preflight::{self, Estimate, NodeOut, Preflight, TargetOut, d, plural};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print the preflight as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, aws: &super::AwsArgs) -> anyhow::Result<ExitCode> {
    let (plan, _text) = super::load_plan(&args.plan)?;
    let preflight = preflight::run(&plan, &args.plan, &aws.settings())?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&preflight)?;
        text.push('\n');
        output::out(&text);
    } else {
        let path = args.plan.display().to_string();
        output::out(&render_text(&preflight, &path, &preflight.estimate));
    }
    if let Some(e) = &preflight.kafka_error {
        return Err(Failure::environment(e.clone()).into());
    }
    let errors = preflight.node_errors();
    if !errors.is_empty() {
        return Err(Failure::environment(errors.join("; ")).into());
    }
    Ok(ExitCode::Success)
}

// ---- text --------------------------------------------------------------------------------------

/// The place a target acts in, without the cause of an unknown account when discovery failed
/// for the same cause (no credentials: the nodes line below says it, once).
fn said_once(place: &nodes::account::Place, nodes_error: Option<&str>) -> String {
    let cause = place
        .unknown_because
        .as_deref()
        .map(|w| w.split_once(": ").map_or(w, |(_, c)| c));
    match (cause, nodes_error) {
        (Some(cause), Some(e)) if e.contains(cause) => {
            let bare = nodes::account::Place {
                unknown_because: None,
                ..place.clone()
            };
            format!("{bare} (the cause is on the nodes line)")
        }
        _ => place.to_string(),
    }
}

fn render_text(p: &Preflight, path: &str, estimate: &Estimate) -> String {
    let mut s = format!(
        "plan `{}` ({path}): preflight, nothing is terminated\n",
        p.plan
    );
    for t in &p.targets {
        s.push_str(&format!(
            "\ntarget {} ({}, provider {})\n",
            t.name, t.kind, t.provider
        ));
        if let Some(place) = &t.aws {
            s.push_str(&format!(
                "  acting in: {}\n",
                said_once(place, t.error.as_deref())
            ));
        }
        s.push_str(&nodes_text(t));
        s.push_str(&steps_text(t));
        s.push_str(&checks_text(t));
    }
    s.push_str(&format!("\nkafka: {}\n", p.kafka));
    s.push_str(&lag_sources_text(&p.lag_sources));
    s.push_str(&format!(
        "\nduration:\n  worst case: {} = {}\n  typical:    ~{} (estimate: {}; a failing step ends \
         its target's ladder early)\n",
        d(estimate.worst),
        estimate.worst_parts,
        d(estimate.typical),
        estimate.typical_parts
    ));
    s
}

/// The PromQL lag sources: what each query gives now, or why a run would read gaps.
fn lag_sources_text(sources: &[preflight::LagSourceOut]) -> String {
    match sources.is_empty() {
        true => String::new(),
        false => sources
            .iter()
            .fold("\nlag from Prometheus:\n".into(), |s, l| {
                s + &format!("  {l}\n")
            }),
    }
}

/// A target's nodes (or why they are unknown), markets, notes, exclusions and permissions.
fn nodes_text(t: &TargetOut) -> String {
    let mut s = String::new();
    match &t.error {
        Some(e) => s.push_str(&format!("  nodes: {e}\n")),
        None => {
            s.push_str(&format!("  nodes ({}):\n", t.nodes.len()));
            for n in &t.nodes {
                s.push_str(&format!("    {}\n", describe_node(n)));
            }
            s.push_str(&markets_line(&t.markets));
            if let Some(note) = &t.note {
                s.push_str(&format!("  note: {note}\n"));
            }
            if let Some(note) = &t.capacity_note {
                s.push_str(&format!("  note: {note}\n"));
            }
            if !t.excluded.is_empty() {
                let mut why: BTreeMap<&str, usize> = BTreeMap::new();
                for x in &t.excluded {
                    *why.entry(x.reason.as_str()).or_default() += 1;
                }
                for (reason, count) in why {
                    s.push_str(&format!(
                        "  excluded: {count} matched instance(s): {reason}\n"
                    ));
                }
            }
            if let Some(p) = &t.permissions {
                s.push_str(&format!("  permissions: {p}\n"));
            }
        }
    }
    s
}

/// A target's search bounds and what each step would terminate.
fn steps_text(t: &TargetOut) -> String {
    let mut s = String::new();
    if let Some(q) = &t.search {
        s.push_str(&format!(
            "  search {}..{}: at most {} steps (a full ladder {}..{} takes {}); the steps \
             below are its escalation if every step passes, then it bisects\n",
            q.from, q.max, q.worst_case_steps, q.from, q.max, q.full_ladder_steps
        ));
    }
    s.push_str(&step_lines(t));
    s
}

/// A target's health endpoints, capacity and guard warnings.
fn checks_text(t: &TargetOut) -> String {
    let mut s = String::new();
    for h in &t.health {
        let detail = h
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let line = match h.status {
            "lab" => format!("  health: {} lab{detail}\n", h.endpoint),
            "reachable" => format!("  health: {} {} reachable{detail}\n", h.endpoint, h.url),
            status => format!(
                "  warning: health endpoint {} {} {status}{detail}\n",
                h.endpoint, h.url
            ),
        };
        s.push_str(&line);
    }
    if let Some(c) = &t.capacity {
        s.push_str(&format!(
            "  capacity: {}\n",
            crate::observe::health::summary(c)
        ));
    }
    if let Some(why) = &t.capacity_unknown {
        s.push_str(&format!("  warning: capacity unknown: {why}\n"));
    }
    for w in &t.guard_warnings {
        s.push_str(&format!("  warning: guard {w}\n"));
    }
    s
}

fn describe_node(n: &NodeOut) -> String {
    let mut parts = Vec::new();
    if n.host != n.id {
        parts.push(format!("host {}", n.host));
    }
    parts.extend(n.private_ip.clone());
    parts.extend(n.zone.clone());
    parts.extend(n.instance_type.clone());
    parts.push(n.lifecycle.to_owned());
    if !n.tags.is_empty() {
        let tags: Vec<String> = n.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags {}", tags.join(",")));
    }
    format!("{} ({})", n.id, parts.join(", "))
}

/// The markets of an AWS target's nodes, largest first; empty for a lab target.
fn markets_line(markets: &[crate::analysis::markets::Market]) -> String {
    if markets.is_empty() {
        return String::new();
    }
    let each: Vec<String> = markets
        .iter()
        .map(|m| {
            format!(
                "{}/{} {} ({}%)",
                m.instance_type, m.zone, m.nodes, m.share_pct
            )
        })
        .collect();
    format!(
        "  spot markets: {}; the largest holds {}% (price history and interruptions: spotdrill \
         markets PLAN)\n",
        each.join(", "),
        markets[0].share_pct
    )
}

/// A line per step: its rung and what it would terminate.
fn step_lines(t: &preflight::TargetOut) -> String {
    let mut s = String::new();
    for (i, step) in t.steps.iter().enumerate() {
        let what = match (&step.error, step.would_terminate.is_empty()) {
            (Some(_), _) if t.error.is_some() => "nodes unknown".into(),
            (Some(e), _) => format!("cannot choose: {e}"),
            (None, true) => "nothing".into(),
            (None, false) => format!("would terminate {}", step.would_terminate.join(", ")),
        };
        let rung = match &step.market {
            Some(m) => MarketRef::step_label(Some(m), step.terminations),
            None => format!(
                "{} termination{}",
                step.terminations,
                plural(step.terminations)
            ),
        };
        s.push_str(&format!("  step {}: {rung}: {what}\n", i + 1));
    }
    s
}
