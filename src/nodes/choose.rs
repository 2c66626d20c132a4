//! Which nodes a step terminates: `running:` narrows the eligible nodes to those running a
//! topology or app (as the health probes say), the seeded selection chooses ([`super::select`]),
//! and `max_per_topology` keeps any one topology or app from losing too many at once. The same
//! choice for `plan`'s preview and `run`.

use indexmap::IndexMap;

use super::{Node, select};
use crate::observe::health::{Capacity, same_host};
use crate::plan::Target;

/// Why a step's nodes could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("{0}")]
    Select(select::SelectError, Option<String>),
    /// The `max_per_topology` guard cannot be kept.
    #[error(
        "no {wanted} of the {eligible} eligible nodes leave every topology or app with at most {max} of its nodes taken"
    )]
    MaxPerTopology {
        wanted: usize,
        eligible: usize,
        max: u32,
    },
}

impl ChoiceError {
    /// The reason as the report says it.
    pub fn reason(&self) -> String {
        match self {
            ChoiceError::Select(e, Some(work)) => format!("{e} (nodes running {work})"),
            other => other.to_string(),
        }
    }
}

/// The nodes step `step` of a target terminates: `running:` narrows the eligible nodes to those
/// running its topology or app, the seeded selection chooses, and `max_per_topology` keeps the
/// selection's order while skipping nodes that would take one topology or app past its limit.
/// `capacity` is what the health probes say runs where (`None`: not known, and then `running:`
/// and `max_per_topology` cannot be honoured — callers must not get here without it).
pub fn choose_step(
    eligible: &[Node],
    n: usize,
    target: &Target,
    step: usize,
    capacity: Option<&Capacity>,
) -> Result<Vec<Node>, ChoiceError> {
    let mut eligible = eligible.to_vec();
    if let (Some(work), Some(c)) = (&target.running, capacity) {
        let hosts = c.hosts_running(work);
        eligible.retain(|node| hosts.iter().any(|h| same_host(h, &node.host)));
    }
    let seed = target.seed.unwrap_or(0);
    let chosen = select::choose(&eligible, n, target.selection, seed, step)
        .map_err(|e| ChoiceError::Select(e, target.running.clone()))?;
    let (Some(max), Some(c)) = (target.guards.max_per_topology, capacity) else {
        return Ok(chosen);
    };
    let work_on = |host: &str| -> Vec<String> {
        c.applications_on(host)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let ranked = select::choose(&eligible, eligible.len(), target.selection, seed, step)
        .unwrap_or_else(|_| chosen.clone());
    choose_within(&chosen, n, max, work_on)
        .or_else(|| choose_within(&ranked, n, max, work_on))
        .ok_or(ChoiceError::MaxPerTopology {
            wanted: n,
            eligible: eligible.len(),
            max,
        })
}

/// Choose up to `n` nodes in `ranked` order (the seeded selection's order) so that no topology or
/// app has more than `max` of its hosts chosen; `running` maps each host to the work on it.
/// `None` when no such choice exists.
pub fn choose_within(
    ranked: &[Node],
    n: usize,
    max: u32,
    work_on: impl Fn(&str) -> Vec<String>,
) -> Option<Vec<Node>> {
    let mut taken: IndexMap<String, u32> = IndexMap::new();
    let mut out = Vec::new();
    for node in ranked {
        if out.len() == n {
            break;
        }
        let work = work_on(&node.host);
        if work
            .iter()
            .any(|w| taken.get(w).copied().unwrap_or(0) >= max)
        {
            continue;
        }
        for w in work {
            *taken.entry(w).or_default() += 1;
        }
        out.push(node.clone());
    }
    (out.len() == n).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_per_topology_picks_within_the_limit_in_ranked_order() {
        let node = |id: &str| Node {
            id: id.into(),
            host: id.into(),
            zone: None,
            instance_type: None,
            lifecycle: super::super::Lifecycle::Spot,
            running: true,
        };
        let ranked = vec![node("a"), node("b"), node("c"), node("d")];
        let work = |h: &str| match h {
            "a" | "b" => vec!["t".to_owned()],
            "c" => vec!["u".to_owned()],
            _ => vec![],
        };
        let chosen = choose_within(&ranked, 3, 1, work).unwrap();
        let ids: Vec<&str> = chosen.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "d"]);
        assert!(choose_within(&ranked, 4, 1, work).is_none());
    }

    /// A kubernetes target: `running: {workload}` narrows the choice to the nodes running that
    /// workload's ready pods and `max_per_workload` keeps a step from taking two of its nodes,
    /// both from what the Kubernetes API says runs where.
    #[test]
    fn a_kubernetes_target_aims_at_a_workload_and_keeps_max_per_workload() {
        use crate::observe::health::{Capacity, KubeCapacity, WorkloadCapacity};
        let plan = |extra: &str| {
            let text = format!(
                "version: 1\nname: k\nkafka: {{brokers: \"k:9092\"}}\napplications:\n  \
                 ingest: {{group: g, topics: [t], slo: {{max_lag: 1m, max_recovery: 1m}}}}\n\
                 targets:\n  k:\n    kind: kubernetes\n    nodes: {{provider: kubernetes, \
                 labels: {{a: b}}}}\n    applications: [ingest]\n    ladder: [1, 2]\n{extra}"
            );
            let loaded = crate::plan::load(&text);
            let plan = loaded
                .plan
                .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
            plan.targets["k"].clone()
        };
        let node = |id: &str| Node::lab(id.into());
        let nodes = vec![node("a"), node("b"), node("c"), node("d")];
        let workload = |name: &str, hosts: &[&str]| WorkloadCapacity {
            name: name.into(),
            kind: "Deployment".into(),
            desired: hosts.len() as u32,
            ready: hosts.len() as u32,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..WorkloadCapacity::default()
        };
        let c = Capacity::Kubernetes(KubeCapacity {
            nodes_ready: 4,
            workloads: vec![
                workload("apps/ingest", &["a", "b"]),
                workload("apps/web", &["c"]),
            ],
            ..KubeCapacity::default()
        });
        let aimed = plan("    running: {workload: apps/ingest}\n");
        let chosen = choose_step(&nodes, 2, &aimed, 0, Some(&c)).unwrap();
        let mut ids: Vec<&str> = chosen.iter().map(|n| n.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        let limited = plan("    guards: {max_per_workload: 1}\n");
        for step in 0..4 {
            let chosen = choose_step(&nodes, 3, &limited, step, Some(&c)).unwrap();
            let on_ingest = chosen.iter().filter(|n| n.id == "a" || n.id == "b").count();
            assert_eq!(on_ingest, 1, "step {step}: {chosen:?}");
        }
        assert!(choose_step(&nodes, 4, &limited, 0, Some(&c)).is_err());
    }
}
