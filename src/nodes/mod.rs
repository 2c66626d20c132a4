//! Node providers: finding a target's nodes and terminating them (DESIGN.md "Node providers").
//!
//! One trait, [`Provider`], is all the runner and the preflight know of a provider: discover,
//! check permissions, terminate (a typed outcome per node), the notice, when an injection counts
//! as done, replacement tracking, and a lock identity naming the cluster. [`connect`] is the one
//! registry that builds a provider from a plan's [`NodeSelector`]; a new provider is its file, one
//! line there, and its plan fields.
//!
//! Safety: a provider never terminates a node that its own discovery does not return, at the
//! moment of the call, as running (and spot, unless the plan allows on-demand).

pub mod account;
pub mod asg;
pub mod aws;
pub mod choose;
pub mod ec2;
pub mod ec2_api;
pub mod fis;
pub mod instances;
pub mod kubernetes;
pub mod lab;
pub mod markets;
pub mod select;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use crate::journal::{NodeOutcome, NodeRef};
use crate::lab::up::LabHandle;
use crate::plan::{Lab, NodeSelector};

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
impl Node {
    /// A lab node: its id is its host name.
    pub fn lab(id: String) -> Node {
        Node {
            host: id.clone(),
            id,
            zone: None,
            instance_type: None,
            lifecycle: Lifecycle::Lab,
            running: true,
        }
    }
}

pub fn eligible(selector: &NodeSelector, node: &Node) -> bool {
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

impl Terminated {
    pub fn new(id: &str, outcome: NodeOutcome, detail: Option<String>) -> Terminated {
        Terminated {
            id: id.to_owned(),
            outcome,
            detail,
        }
    }
}

/// A node found by discovery, with what the preflight shows beyond [`Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub node: Node,
    pub private_ip: Option<String>,
    /// The selector's tags as the instance carries them.
    pub matched_tags: BTreeMap<String, String>,
    /// `arn:…:ec2:REGION:ACCOUNT:instance/ID` (FIS targets instances by ARN).
    pub arn: Option<String>,
}

impl Found {
    /// A node with nothing known beyond itself (the lab's).
    pub fn bare(node: Node) -> Found {
        Found {
            node,
            private_ip: None,
            matched_tags: BTreeMap::new(),
            arn: None,
        }
    }
}

/// A node the selector matched but that is not eligible, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub id: String,
    pub reason: String,
}

/// The result of discovery: eligible nodes (running; spot unless on-demand is allowed) and the
/// matched nodes left out, with a note for the reader where the nodes are only predicted.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub found: Vec<Found>,
    pub excluded: Vec<Excluded>,
    /// What to keep in mind about these nodes (a lab not started yet: its nodes are predicted).
    pub note: Option<String>,
}

impl Discovery {
    pub fn nodes(&self) -> Vec<Node> {
        self.found.iter().map(|f| f.node.clone()).collect()
    }

    /// Sort the nodes a step chose by what this (fresh) discovery says of them: the eligible
    /// ones to terminate, and an outcome for each of the others (`refused` when matched but not
    /// eligible, `already_gone` with `gone` as the detail when not returned at all).
    pub fn sort_out<'a>(&'a self, chosen: &[Node], gone: &str) -> (Vec<&'a Found>, Outcomes) {
        let mut go: Vec<&Found> = Vec::new();
        let mut results = Outcomes::default();
        for n in chosen {
            if let Some(f) = self.found.iter().find(|f| f.node.id == n.id) {
                if !go.iter().any(|g| g.node.id == n.id) {
                    go.push(f);
                }
            } else if let Some(x) = self.excluded.iter().find(|x| x.id == n.id) {
                results.record(Terminated::new(
                    &n.id,
                    NodeOutcome::Refused,
                    Some(x.reason.clone()),
                ));
            } else {
                results.record(Terminated::new(
                    &n.id,
                    NodeOutcome::AlreadyGone,
                    Some(gone.to_owned()),
                ));
            }
        }
        (go, results)
    }
}

/// Outcomes per node id, collected in any order and returned in the order of the request.
#[derive(Debug, Default)]
pub struct Outcomes(HashMap<String, Terminated>);

impl Outcomes {
    pub fn record(&mut self, t: Terminated) {
        self.0.insert(t.id.clone(), t);
    }

    pub fn extend(&mut self, all: impl IntoIterator<Item = Terminated>) {
        for t in all {
            self.record(t);
        }
    }

    /// One outcome per requested node, in its order (`error` where none was recorded).
    pub fn in_order(mut self, chosen: &[Node]) -> Vec<Terminated> {
        chosen
            .iter()
            .map(|n| {
                self.0.remove(&n.id).unwrap_or_else(|| {
                    Terminated::new(
                        &n.id,
                        NodeOutcome::Error,
                        Some("no outcome recorded".into()),
                    )
                })
            })
            .collect()
    }
}

/// Something a provider did that belongs in the journal (FIS templates and experiment states).
#[derive(Clone, Debug)]
pub struct ProviderEvent {
    pub event: String,
    pub detail: String,
}

/// What went wrong finding or checking nodes.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
    #[error("{0}")]
    Lab(String),
    #[error("{0}")]
    Kubernetes(String),
}

/// What a permission check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Nothing to check (the lab), or no node to check it on.
    NotChecked,
    /// Allowed, with how that was established.
    Allowed(String),
}

/// A future that resolves when the run is interrupted.
pub type Stop<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a provider gets along with the nodes to terminate.
pub struct Injection<'a> {
    /// A name for what this injection creates (`storm-prod-step-2`).
    pub label: String,
    /// Receives what belongs in the journal, as it happens.
    pub events: &'a (dyn Fn(ProviderEvent) + Sync),
    /// Resolves when the run is interrupted (FIS stops its experiment then).
    pub stop: Stop<'a>,
    /// The ladder step (0-based) this injection belongs to.
    pub step: usize,
}

/// A provider event of a given step (0-based), as the journal keeps it.
pub type StepEvent = (usize, ProviderEvent);

/// A node provider (DESIGN.md "Node providers").
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider's name in plans and the journal (`lab`, `aws-ec2`, …).
    fn name(&self) -> &'static str;

    /// What the target's lock is keyed on: the cluster itself (region and the normalised
    /// selector; a lab cluster's name), not the plan's wording or the target's name.
    fn lock_identity(&self) -> String;

    /// Where an AWS provider acts (account, region, endpoint); `None` for the lab.
    fn place(&self) -> Option<account::Place> {
        None
    }

    /// The nodes now: the eligible ones, and the matched ones left out.
    async fn discover(&self) -> Result<Discovery, ProviderError>;

    /// Check, without terminating anything, that these (discovered) nodes may be terminated.
    async fn check_permissions(&self, nodes: &[Node]) -> Result<Permission, ProviderError>;

    /// Terminate exactly these nodes, each only if discovery returns it right now as eligible;
    /// one outcome per node, in their order.
    async fn terminate(&self, nodes: &[Node], injection: Injection<'_>) -> Vec<Terminated>;

    /// Time between a node's notice and its termination.
    fn notice(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether the cluster loses its nodes when [`Provider::terminate`] returns rather than when
    /// it is called (an FIS interruption terminates at the end of its notice).
    fn injected_on_return(&self) -> bool {
        false
    }

    /// Whether capacity comes back after a step (a lab cluster, an Auto Scaling group that
    /// replaces): then cooldown waits for it and the report measures it.
    fn replaces(&self) -> bool {
        false
    }

    /// Where the capacity probes read the target's capacity, where the provider knows it (a
    /// Kubernetes API server); `None`: from the plan's `health:`, if anywhere.
    fn health(&self) -> Option<crate::observe::health::Endpoints> {
        None
    }

    /// Start following the cluster's capacity in the background (every `every`, until
    /// `cancel`), where the provider can.
    fn follow_capacity(&self, _every: Duration, _cancel: CancellationToken) {}

    /// Whether the nodes discovered now are those an earlier attempt of the run acted on (AWS
    /// instances are; a lab is started anew by each attempt, so its nodes say nothing of the
    /// earlier ones): a resume asks discovery what became of nodes left without an outcome only
    /// where they are.
    fn outlives_the_run(&self) -> bool {
        true
    }

    /// Whether the cluster is full again without the nodes in `gone`; true where nothing is
    /// tracked.
    fn capacity_full(&self, _gone: &[String]) -> bool {
        true
    }

    /// Before a hard exit (a second Ctrl-C): stop what an injection still has running (an FIS
    /// experiment), and say so for the journal.
    async fn release(&self) -> Vec<StepEvent> {
        Vec::new()
    }

    /// On resume: what the attempt before journaled (`previous`, this target's provider events)
    /// that may still be running (an FIS experiment never seen to end) is looked up, and stopped
    /// or its state recorded; returns what belongs in the journal.
    async fn reconcile(&self, _previous: &[StepEvent]) -> Vec<StepEvent> {
        Vec::new()
    }
}

/// What providers are built with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// How the AWS providers reach AWS.
    pub aws: &'a aws::AwsSettings,
    /// The plan's lab section, for predicting a lab's nodes before it runs.
    pub plan_lab: Option<&'a Lab>,
    /// The running lab, once `run` started it.
    pub lab: Option<&'a LabHandle>,
    /// The directory a run's lab lives in (the run directory): part of a lab cluster's lock
    /// identity, since two runs' labs are two clusters. `None` where no run is meant.
    pub lab_dir: Option<&'a std::path::Path>,
}

/// The registry: the provider of a selector.
pub async fn connect(selector: &NodeSelector, cx: Context<'_>) -> Box<dyn Provider> {
    use aws::InstanceFilter;
    match selector {
        NodeSelector::Lab { cluster, notice } => Box::new(lab::LabNodes::new(cluster, *notice, cx)),
        NodeSelector::AwsEc2 {
            region,
            spot_fleet_request,
            ..
        } => {
            let filter = InstanceFilter::of(selector);
            let fleet = spot_fleet_request.clone();
            Box::new(ec2::Ec2Nodes::connect(cx.aws, region.as_deref(), filter, fleet).await)
        }
        NodeSelector::AwsAsg {
            region,
            group,
            replace,
            allow_on_demand,
        } => {
            let group = asg::Group {
                name: group.clone(),
                replace: *replace,
                allow_on_demand: *allow_on_demand,
            };
            Box::new(asg::AsgNodes::connect(cx.aws, region.as_deref(), group).await)
        }
        NodeSelector::AwsFis {
            region,
            notice,
            role_arn,
            keep_templates,
            ..
        } => {
            let settings = fis::Interruption {
                notice: *notice,
                role_arn: role_arn.clone(),
                keep_templates: *keep_templates,
            };
            let filter = InstanceFilter::of(selector);
            Box::new(fis::FisNodes::connect(cx.aws, region.as_deref(), filter, settings).await)
        }
        NodeSelector::Kubernetes(k) => Box::new(kubernetes::KubeNodes::connect(k, cx).await),
    }
}
