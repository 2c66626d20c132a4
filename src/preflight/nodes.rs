//! The preflight of a target's nodes: discovery through its provider (a lab's are predicted),
//! the permission check, and what each step would terminate (the very choice `run` makes).

use std::collections::BTreeSet;
use std::time::Instant;

use indexmap::IndexMap;

use super::guards;
use super::{ExcludedOut, NodeOut, StepOut, TargetOut};
use crate::journal::MarketRef;
use crate::nodes::aws::AwsSettings;
use crate::nodes::{Discovery, Node, Permission, Provider};
use crate::observe::health::Capacity;
use crate::plan::{Plan, Target};

/// What preflight learned of one target's nodes.
pub struct NodesPreview {
    pub discovery: Result<Discovery, String>,
    /// Wall time of the discovery (every page), for AWS targets.
    pub discovery_ms: Option<u64>,
    /// `allowed (…)` or `error: …`, where checked.
    pub permissions: Option<String>,
    /// Where an AWS target acts: account, region, endpoint.
    pub place: Option<crate::nodes::account::Place>,
}

/// Discover every target's nodes through its provider (a lab's are predicted) and check the
/// permission to terminate them (TerminateInstances with DryRun=true for AWS).
pub fn discover_all(
    plan: &Plan,
    settings: &AwsSettings,
) -> anyhow::Result<IndexMap<String, NodesPreview>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cx = crate::nodes::Context {
        aws: settings,
        plan_lab: plan.lab.as_ref(),
        lab: None,
        lab_dir: None,
    };
    Ok(runtime.block_on(async {
        let mut out = IndexMap::new();
        for (name, target) in &plan.targets {
            let provider = crate::nodes::connect(&target.nodes, cx).await;
            out.insert(name.clone(), preview_nodes(provider.as_ref()).await);
        }
        out
    }))
}

/// For `run`: a target's nodes now and, before anything else, the permission to terminate them
/// (`DryRun=true` on TerminateInstances for AWS). Errors name the target.
pub async fn ready(name: &str, provider: &dyn Provider) -> anyhow::Result<Vec<Node>> {
    use crate::exit::Failure;
    let nodes = provider
        .discover()
        .await
        .map_err(|e| {
            Failure::environment(format!("cannot discover the nodes of {name}")).because(e)
        })?
        .nodes();
    provider.check_permissions(&nodes).await.map_err(|e| {
        Failure::environment(format!("{name}: its nodes may not be terminated")).because(e)
    })?;
    Ok(nodes)
}

pub async fn preview_nodes(provider: &dyn Provider) -> NodesPreview {
    let started = Instant::now();
    let discovery = provider.discover().await.map_err(|e| e.to_string());
    let discovery_ms = started.elapsed().as_millis() as u64;
    let permissions = match &discovery {
        Ok(d) if !d.found.is_empty() => match provider.check_permissions(&d.nodes()).await {
            Ok(Permission::Allowed(how)) => Some(how),
            Ok(Permission::NotChecked) => None,
            Err(e) => Some(format!("error: {e}")),
        },
        _ => None,
    };
    let aws = provider.name() != "lab";
    NodesPreview {
        discovery,
        discovery_ms: aws.then_some(discovery_ms),
        permissions,
        place: provider.place(),
    }
}

pub fn preview_target(
    name: &str,
    target: &Target,
    aws: Option<&NodesPreview>,
    capacity: Option<&Result<Capacity, String>>,
) -> TargetOut {
    let _span = tracing::debug_span!("target", target = name).entered();
    let provider = target.nodes.provider().name();
    let mut out = TargetOut {
        name: name.to_owned(),
        kind: target.kind.name().to_owned(),
        provider,
        error: None,
        note: None,
        permissions: aws.and_then(|a| a.permissions.clone()),
        aws: aws.and_then(|a| a.place.clone()),
        discovery_ms: aws.and_then(|a| a.discovery_ms),
        nodes: Vec::new(),
        markets: Vec::new(),
        excluded: Vec::new(),
        search: target.search.map(super::SearchOut::of),
        steps: Vec::new(),
        health: Vec::new(),
        capacity: capacity.and_then(|c| c.as_ref().ok()).cloned(),
        capacity_unknown: capacity.and_then(|c| c.as_ref().err()).cloned(),
        guard_warnings: Vec::new(),
        capacity_note: target.capacity_note(),
    };
    let nodes = match aws.map(|a| &a.discovery) {
        Some(Ok(d)) => {
            out.note.clone_from(&d.note);
            out.excluded = d
                .excluded
                .iter()
                .map(|x| ExcludedOut {
                    id: x.id.clone(),
                    reason: x.reason.clone(),
                })
                .collect();
            Some(d.nodes())
        }
        Some(Err(e)) => {
            out.error = Some(format!("cannot discover nodes: {e}"));
            None
        }
        None => {
            out.error = Some(format!("provider {provider} did not connect"));
            None
        }
    };
    match &nodes {
        Some(nodes) => {
            out.nodes = nodes.iter().map(NodeOut::from).collect();
            if aws.is_some_and(|a| a.place.is_some()) {
                let placed: Vec<_> = nodes
                    .iter()
                    .map(|n| (n.instance_type.clone(), n.zone.clone()))
                    .collect();
                out.markets = crate::analysis::markets::markets_of(&placed).0;
            }
            if let Some(Ok(d)) = aws.map(|a| &a.discovery) {
                for (n, f) in out.nodes.iter_mut().zip(&d.found) {
                    n.private_ip.clone_from(&f.private_ip);
                    n.tags.clone_from(&f.matched_tags);
                }
            }
            let placement = match (capacity, &target.nodes) {
                (Some(Ok(c)), _) => Placement::Known(c),
                (Some(Err(e)), _) => Placement::Unknown(format!("health probe: {e}")),
                (None, n) if n.on_lab() => Placement::Unknown(
                    "the lab's placement is only known once `run` starts it".into(),
                ),
                (None, _) => Placement::Unknown("no health endpoints".into()),
            };
            out.steps = preview_steps(target, nodes, &placement);
        }
        None => {
            out.steps = target
                .preview_rungs(0)
                .into_iter()
                .map(|n| StepOut {
                    terminations: n,
                    would_terminate: Vec::new(),
                    market: None,
                    error: out.error.clone(),
                })
                .collect();
        }
    }
    let market = nodes
        .as_ref()
        .map_or(0, |nodes| largest_market(target, nodes).1.len());
    out.guard_warnings = guards::warnings(target, nodes.as_ref().map(Vec::len), market as u32);
    out
}

/// What the health probes say runs where, for `running:` and `max_per_topology`.
pub enum Placement<'a> {
    Known(&'a Capacity),
    Unknown(String),
}

/// The largest spot market among a target's running, eligible nodes (what a market rung takes),
/// and its nodes; no market and no nodes where none sits in one.
fn largest_market(target: &Target, nodes: &[Node]) -> (Option<MarketRef>, Vec<Node>) {
    let eligible: Vec<Node> = nodes
        .iter()
        .filter(|node| node.running && crate::nodes::eligible(&target.nodes, node))
        .cloned()
        .collect();
    match crate::nodes::select::largest_market(&eligible) {
        Some((m, nodes)) => (Some(MarketRef::new(m)), nodes),
        None => (None, Vec::new()),
    }
}

/// What each step would terminate: the same choice `run` makes from the same nodes (a market
/// rung: every node of the largest market among them). Steps that add up (`cumulative`, or
/// nothing reports capacity back) choose among the nodes earlier steps left.
pub fn preview_steps(target: &Target, nodes: &[Node], placement: &Placement<'_>) -> Vec<StepOut> {
    let needs_placement = target.running.is_some() || target.guards.max_per_topology.is_some();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    target
        .preview_rungs(0)
        .into_iter()
        .enumerate()
        .map(|(step, n)| {
            let left: Vec<Node> = nodes
                .iter()
                .filter(|node| !gone.contains(&node.id))
                .cloned()
                .collect();
            let market_rung = target.search.is_none()
                && target.ladder.get(step).is_some_and(|r| r.count().is_none());
            let (market, eligible, n) = if market_rung {
                let (m, in_it) = largest_market(target, &left);
                let size = in_it.len() as u32;
                (m, in_it, size)
            } else {
                let eligible: Vec<Node> = left
                    .into_iter()
                    .filter(|node| node.running && crate::nodes::eligible(&target.nodes, node))
                    .collect();
                (None, eligible, n)
            };
            if market_rung && market.is_none() {
                return StepOut {
                    terminations: 0,
                    would_terminate: Vec::new(),
                    market: None,
                    error: Some("no running, eligible node sits in a known spot market".into()),
                };
            }
            let capacity = match placement {
                Placement::Known(c) => Some(*c),
                Placement::Unknown(why) if needs_placement => {
                    return StepOut {
                        terminations: n,
                        would_terminate: Vec::new(),
                        market,
                        error: Some(format!(
                            "chosen by `run` among the nodes {}: {why}",
                            match &target.running {
                                Some(w) => format!("running {w}"),
                                None => "the max_per_topology guard allows".into(),
                            }
                        )),
                    };
                }
                Placement::Unknown(_) => None,
            };
            match crate::nodes::choose::choose_step(&eligible, n as usize, target, step, capacity) {
                Ok(chosen) => {
                    let ids: Vec<String> = chosen.into_iter().map(|c| c.id).collect();
                    if !target.steps_start_full() {
                        gone.extend(ids.iter().cloned());
                    }
                    StepOut {
                        terminations: n,
                        would_terminate: ids,
                        market,
                        error: None,
                    }
                }
                Err(e) => StepOut {
                    terminations: n,
                    would_terminate: Vec::new(),
                    market,
                    error: Some(e.reason()),
                },
            }
        })
        .collect()
}
