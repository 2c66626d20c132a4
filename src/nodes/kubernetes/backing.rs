//! The EC2 instances behind Kubernetes nodes (`spec.providerID` = `aws:///ZONE/i-…`). Each is
//! re-checked at call time with the `aws-ec2` rules (running; spot unless the plan allows
//! on-demand), whatever the node's labels say, and only then terminated; outcomes are by node
//! name, their detail naming the instance.

use super::{Seen, rediscovery_failed};
use crate::nodes::aws::{self, Ec2, InstanceFilter};
use crate::nodes::ec2::terminate_ec2;
use crate::nodes::fis::Interrupter;
use crate::nodes::{Found, Injection, Node, NodeOutcome, ProviderError, Terminated};

/// What EC2 says right now of the instances behind some nodes.
pub(super) struct Checked {
    /// Nodes whose instance is running (and spot unless allowed), each with EC2's own view of
    /// the instance (its ARN among it).
    pub allowed: Vec<(Seen, Found)>,
    /// The others: refused (matched but not running, or not spot), already gone, or an error.
    pub refused: Vec<Terminated>,
}

/// Describe the instances behind `go` now. A node without an instance is neither allowed nor
/// refused: the caller decides (a drain goes on without one; `aws-ec2` never chose it).
pub(super) async fn recheck(ec2: &Ec2, go: &[Seen], allow_on_demand: bool) -> Checked {
    let ids: Vec<String> = go.iter().filter_map(|s| s.instance.clone()).collect();
    let mut checked = Checked {
        allowed: Vec::new(),
        refused: Vec::new(),
    };
    if ids.is_empty() {
        return checked;
    }
    let filter = InstanceFilter {
        allow_on_demand,
        ..InstanceFilter::default()
    };
    let fresh = match aws::describe(&ec2.client, &filter, Some(&ids)).await {
        Ok(d) => d,
        Err(e) => {
            let nodes: Vec<Node> = go.iter().map(|s| s.found.node.clone()).collect();
            checked.refused = rediscovery_failed(&nodes, &ProviderError::Aws(e));
            return checked;
        }
    };
    let mut unseen = Vec::new();
    for s in go {
        let Some(id) = s.instance.as_deref() else {
            continue;
        };
        let name = &s.found.node.id;
        if let Some(f) = fresh.found.iter().find(|f| f.node.id == id) {
            checked.allowed.push((s.clone(), f.clone()));
        } else if let Some(x) = fresh.excluded.iter().find(|x| x.id == id) {
            let detail = format!("{id}: {}", x.reason);
            checked
                .refused
                .push(Terminated::new(name, NodeOutcome::Refused, Some(detail)));
        } else {
            unseen.push(s);
        }
    }
    checked.refused.extend(not_running(ec2, &unseen).await);
    checked
}

/// Nodes whose instance a `running` describe did not return: refused where EC2 still knows it
/// in another state (stopped, pending), already gone where it is terminated or unknown.
async fn not_running(ec2: &Ec2, unseen: &[&Seen]) -> Vec<Terminated> {
    if unseen.is_empty() {
        return Vec::new();
    }
    let ids: Vec<String> = unseen.iter().filter_map(|s| s.instance.clone()).collect();
    let states = aws::states(&ec2.client, &ids).await.unwrap_or_default();
    unseen
        .iter()
        .filter_map(|s| Some((s, s.instance.as_deref()?)))
        .map(|(s, id)| {
            let state = states.get(id);
            let name = &s.found.node.id;
            if aws::gone(state) {
                let how = state.map_or("unknown to EC2", |st| st.as_str());
                let detail = format!("{id}: EC2 no longer returns it as running ({how})");
                Terminated::new(name, NodeOutcome::AlreadyGone, Some(detail))
            } else {
                let how = state.map_or("unknown", |st| st.as_str());
                let detail = format!("{id}: not running ({how})");
                Terminated::new(name, NodeOutcome::Refused, Some(detail))
            }
        })
        .collect()
}

/// TerminateInstances on the instances behind `go`, each only if EC2 itself says right now that
/// it is running (and spot, unless allowed); outcomes by node name.
pub(super) async fn terminate(ec2: &Ec2, go: &[Seen], allow_on_demand: bool) -> Vec<Terminated> {
    let checked = recheck(ec2, go, allow_on_demand).await;
    let mut out = checked.refused;
    let ids: Vec<String> = checked
        .allowed
        .iter()
        .map(|(_, f)| f.node.id.clone())
        .collect();
    let done = terminate_ec2(&ec2.client, &ids).await;
    out.extend(by_node(&checked.allowed, done));
    out
}

/// Outcomes by instance id as outcomes by node name, the instance named in the detail.
fn by_node(allowed: &[(Seen, Found)], done: Vec<Terminated>) -> Vec<Terminated> {
    done.into_iter()
        .map(|t| {
            let name = allowed
                .iter()
                .find(|(_, f)| f.node.id == t.id)
                .map_or(t.id.clone(), |(s, _)| s.found.node.id.clone());
            let detail = t.detail.map(|d| format!("{}: {d}", t.id));
            Terminated::new(&name, t.outcome, detail)
        })
        .collect()
}

/// After a drain deleted the Node: its instance terminated too (re-checked once more: a drain
/// takes time). The outcome is the instance's, its detail the drain's and then the instance's;
/// an instance gone meanwhile (Karpenter terminates what it no longer backs) still counts as
/// terminated, since the node is lost.
pub(super) async fn after_drain(
    ec2: &Ec2,
    seen: &Seen,
    drained: Terminated,
    allow_on_demand: bool,
) -> Terminated {
    if drained.outcome != NodeOutcome::Terminated {
        return drained;
    }
    let name = &seen.found.node.id;
    let drain = drained.detail.unwrap_or_default();
    let Some(t) = terminate(ec2, std::slice::from_ref(seen), allow_on_demand)
        .await
        .pop()
    else {
        let detail = format!("{drain}; no EC2 instance behind it (not an aws:/// providerID)");
        return Terminated::new(name, NodeOutcome::Terminated, Some(detail));
    };
    let outcome = match t.outcome {
        NodeOutcome::AlreadyGone => NodeOutcome::Terminated,
        o => o,
    };
    let detail = format!("{drain}; {}", t.detail.unwrap_or_default());
    Terminated::new(name, outcome, Some(detail))
}

/// One FIS experiment interrupting the instances behind `go` that EC2 returns right now as
/// running spot instances (FIS interrupts nothing else); outcomes by node name.
pub(super) async fn interrupt(
    ec2: &Ec2,
    fis: &Interrupter,
    go: &[Seen],
    injection: Injection<'_>,
) -> Vec<Terminated> {
    let checked = recheck(ec2, go, false).await;
    let mut out = checked.refused;
    if checked.allowed.is_empty() {
        return out;
    }
    let found: Vec<&Found> = checked.allowed.iter().map(|(_, f)| f).collect();
    let done = fis.interrupt(ec2, &found, injection).await;
    out.extend(by_node(&checked.allowed, done));
    out
}
