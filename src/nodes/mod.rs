//! Node providers: finding a target's nodes and terminating them (DESIGN.md "Node providers").
//! A provider returns a typed outcome per node and never terminates a node that its own
//! discovery did not return as running (and spot, unless the plan allows on-demand).
//!
//! The lab (`provider: lab`) lives here; the AWS providers (`aws-ec2`, `aws-asg`, `aws-fis`) in
//! [`aws`].

pub mod aws;
pub mod select;

use std::time::Duration;

use crate::journal::{NodeOutcome, NodeRef};
use crate::lab::up::RunningLab;

/// One node as discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub host: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub lifecycle: Lifecycle,
    pub running: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Spot,
    OnDemand,
    Lab,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Spot => "spot",
            Lifecycle::OnDemand => "on-demand",
            Lifecycle::Lab => "lab",
        }
    }
}

/// Whether a node may be terminated under a selector: spot and lab nodes always, on-demand ones
/// only where the plan says `allow_on_demand: true`.
pub fn eligible(selector: &crate::plan::NodeSelector, node: &Node) -> bool {
    node.lifecycle != Lifecycle::OnDemand || selector.allow_on_demand()
}

impl Node {
    pub fn to_ref(&self) -> NodeRef {
        NodeRef {
            id: self.id.clone(),
            host: self.host.clone(),
            zone: self.zone.clone(),
            instance_type: self.instance_type.clone(),
            lifecycle: self.lifecycle.as_str().to_owned(),
        }
    }

    /// The spot market (instance type × zone) the node belongs to.
    pub fn market(&self) -> (String, String) {
        (
            self.instance_type.clone().unwrap_or_default(),
            self.zone.clone().unwrap_or_default(),
        )
    }
}

/// The result of terminating one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub id: String,
    pub outcome: NodeOutcome,
    pub detail: Option<String>,
}

/// The lab provider: the nodes of one lab cluster, killed like spot instances (SIGTERM as the
/// notice, SIGKILL after it; SIGKILL at once with no notice).
pub struct LabNodes<'a> {
    pub lab: &'a RunningLab,
    pub cluster: String,
    pub notice: Duration,
}

impl LabNodes<'_> {
    /// The cluster's live nodes.
    pub fn discover(&self) -> Vec<Node> {
        self.lab
            .state()
            .nodes
            .into_iter()
            .filter(|n| n.cluster == self.cluster)
            .map(|n| Node {
                host: n.id.clone(),
                id: n.id,
                zone: None,
                instance_type: None,
                lifecycle: Lifecycle::Lab,
                running: true,
            })
            .collect()
    }

    /// Terminate exactly these nodes, each only if discovery still returns it as running.
    pub fn terminate(&self, nodes: &[Node]) -> Vec<Terminated> {
        let live = self.discover();
        nodes
            .iter()
            .map(|n| {
                if !live.iter().any(|l| l.id == n.id) {
                    return Terminated {
                        id: n.id.clone(),
                        outcome: NodeOutcome::AlreadyGone,
                        detail: Some("not running any more".into()),
                    };
                }
                match self.lab.kill(&n.id, self.notice) {
                    Ok(()) => Terminated {
                        id: n.id.clone(),
                        outcome: NodeOutcome::Terminated,
                        detail: None,
                    },
                    Err(e) => Terminated {
                        id: n.id.clone(),
                        outcome: NodeOutcome::Error,
                        detail: Some(e.to_string()),
                    },
                }
            })
            .collect()
    }
}
