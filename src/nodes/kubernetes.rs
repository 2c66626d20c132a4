//! `provider: kubernetes`: Node objects chosen by labels (only Ready, schedulable ones, never the
//! control plane), lost by a drain (cordon, evict through the Eviction API so PodDisruptionBudgets
//! hold, delete the Node) or by TerminateInstances on the EC2 instance behind `spec.providerID`
//! (the AWS safety rules re-checked on that instance at call time).
//!
//! Access: the kubeconfig (`KUBECONFIG` or `~/.kube/config`, the plan's `context` or
//! `--context`; EKS through its exec plugin), else the in-cluster service account. Permissions
//! are checked with SelfSubjectAccessReview before anything is touched.

mod access;
mod backing;
mod drain;

use std::time::Duration;

use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::{Api, ListParams};

use super::aws::{self, Ec2};
use super::fis::{Interrupter, Interruption};
use super::{
    Discovery, Excluded, Found, Injection, Lifecycle, Node, NodeOutcome, Permission, Provider,
    ProviderError, StepEvent, Terminated,
};
use crate::plan::{KubeSelector, KubeTerminate};

pub use access::{Access, REQUIRED};

/// What a node that a fresh discovery no longer returns gets as its detail.
const NO_LONGER: &str = "the selector no longer returns it as a Ready, schedulable node";

/// The Node objects a selector's labels name, in one cluster.
pub struct KubeNodes {
    selector: KubeSelector,
    /// A lab cluster before `run` starts it: how many nodes it will have (discovery predicts
    /// their names).
    lab_size: Option<u32>,
    /// A lab cluster's lock identity: the cluster in the lab of that directory.
    lab_lock: Option<String>,
    /// The running lab of a lab cluster (its capacity: back to full after a step).
    lab: Option<crate::lab::up::LabHandle>,
    /// The cluster, or why it cannot be reached (reported by discovery).
    access: Result<Access, String>,
    /// For `terminate: aws-ec2`, and a drain with a region: the EC2 client of the instances
    /// behind the nodes.
    ec2: Option<Ec2>,
    /// For `terminate: aws-fis`: the FIS experiments of the instances behind the nodes.
    fis: Option<Interrupter>,
}

impl KubeNodes {
    pub async fn connect(selector: &KubeSelector, cx: super::Context<'_>) -> KubeNodes {
        let settings = cx.aws;
        if let Some(cluster) = &selector.lab_cluster {
            return KubeNodes::lab(selector, cluster, cx);
        }
        let context = selector
            .context
            .as_deref()
            .or(settings.kube_context.as_deref());
        let access = Access::connect(context).await;
        // A drain also terminates the instance behind an AWS node where the target says where
        // AWS is (its `region`, or `--region`); elsewhere it only deletes the Node.
        let on_aws = match selector.terminate {
            KubeTerminate::AwsEc2 | KubeTerminate::AwsFis => true,
            KubeTerminate::Drain => selector.region.is_some() || settings.region.is_some(),
        };
        let (mut ec2, mut fis) = (None, None);
        if on_aws {
            let config = aws::sdk_config(settings, selector.region.as_deref()).await;
            fis = selector.interruption.as_ref().map(|i| {
                let interruption = Interruption {
                    notice: i.notice,
                    role_arn: i.role_arn.clone(),
                    keep_templates: i.keep_templates,
                };
                Interrupter::new(&config, interruption)
            });
            ec2 = Some(Ec2::connect(&config).await);
        }
        KubeNodes {
            selector: selector.clone(),
            lab_size: None,
            lab_lock: None,
            lab: None,
            access,
            ec2,
            fis,
        }
    }

    /// A lab cluster's nodes through the API the running lab serves for it; before the lab
    /// runs, the names it will give them.
    fn lab(selector: &KubeSelector, cluster: &str, cx: super::Context<'_>) -> KubeNodes {
        let url = cx.lab.and_then(|lab| {
            lab.state()
                .endpoints
                .into_iter()
                .find(|e| e.cluster == cluster && e.api == "kubernetes")
                .map(|e| e.url)
        });
        let lab_size = cx
            .plan_lab
            .and_then(|l| l.clusters.get(cluster))
            .map(|c| c.nodes);
        let access = match (&url, cx.lab) {
            (Some(url), _) => Access::lab(cluster, url),
            (None, Some(_)) => Err(format!("the lab serves no Kubernetes API for {cluster}")),
            (None, None) => Err(format!("the lab cluster {cluster} is started by `run`")),
        };
        KubeNodes {
            selector: selector.clone(),
            lab_size: lab_size.filter(|_| url.is_none()),
            lab_lock: Some(format!(
                "lab/{cluster}@{}",
                cx.lab_dir.map_or_else(String::new, super::lab::canonical)
            )),
            lab: cx.lab.cloned(),
            access,
            ec2: None,
            fis: None,
        }
    }

    /// Before `run` starts the lab: the nodes it will have (`lab::cluster` names them).
    fn predicted(&self, size: u32) -> Discovery {
        let cluster = self.selector.lab_cluster.as_deref().unwrap_or_default();
        Discovery {
            found: (1..=size)
                .map(|i| {
                    let mut node = Node::lab(format!("{cluster}-{i}"));
                    node.lifecycle = Lifecycle::Spot;
                    Found::bare(node)
                })
                .collect(),
            excluded: Vec::new(),
            note: Some(format!(
                "lab cluster {cluster}, started by `run`: these are the names it gives its \
                 nodes; they are lost by a drain through its Kubernetes API"
            )),
        }
    }

    fn access(&self) -> Result<&Access, ProviderError> {
        self.access
            .as_ref()
            .map_err(|e| ProviderError::Kubernetes(e.clone()))
    }

    /// The label selector as the API takes it (`k=v,k=v`).
    fn label_selector(&self) -> String {
        let terms: Vec<String> = self
            .selector
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        terms.join(",")
    }

    /// Drain each node in turn. With EC2 at hand, an AWS node's instance is checked first (a
    /// node whose instance is not running, or not spot unless allowed, is refused and not
    /// touched) and terminated once the Node is deleted; other nodes are drained as anywhere.
    async fn drain(
        &self,
        access: &Access,
        ec2: Option<&Ec2>,
        go: &[Seen],
        events: drain::Events<'_>,
    ) -> Vec<Terminated> {
        let allow = self.selector.allow_on_demand;
        let timeout = self.selector.drain_timeout;
        let (go, mut out): (Vec<Seen>, Vec<Terminated>) = match ec2 {
            Some(ec2) => {
                let checked = backing::recheck(ec2, go, allow).await;
                let refused = checked.refused;
                let go = go
                    .iter()
                    .filter(|s| !refused.iter().any(|r| r.id == s.found.node.id))
                    .cloned()
                    .collect();
                (go, refused)
            }
            None => (go.to_vec(), Vec::new()),
        };
        for s in &go {
            let drained = drain::node(access, &s.found.node.id, timeout, events).await;
            out.push(match ec2 {
                Some(ec2) => backing::after_drain(ec2, s, drained, allow).await,
                None => drained,
            });
        }
        out
    }

    /// The nodes now, each with the EC2 instance behind it where there is one.
    async fn nodes(&self) -> Result<Vec<Seen>, ProviderError> {
        let access = self.access()?;
        let api: Api<KubeNode> = Api::all(access.client.clone());
        let lp = ListParams::default().labels(&self.label_selector());
        let list = api.list(&lp).await.map_err(|e| {
            ProviderError::Kubernetes(format!("listing nodes on {}: {e}", access.cluster))
        })?;
        Ok(list
            .items
            .iter()
            .map(|n| Seen::of(n, &self.selector))
            .collect())
    }
}

/// One Node object as discovery saw it.
#[derive(Clone, Debug)]
struct Seen {
    found: Found,
    /// The EC2 instance behind it (`spec.providerID` = `aws:///ZONE/i-…`).
    instance: Option<String>,
    /// Why it may not be terminated, if it may not.
    excluded: Option<String>,
}

impl Seen {
    fn of(n: &KubeNode, selector: &KubeSelector) -> Seen {
        let name = n.metadata.name.clone().unwrap_or_default();
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let label = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
        let instance = n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(instance_of);
        let lifecycle = capacity_type(&labels);
        let node = Node {
            id: name.clone(),
            host: name,
            zone: label(&[
                "topology.kubernetes.io/zone",
                "failure-domain.beta.kubernetes.io/zone",
            ]),
            instance_type: label(&[
                "node.kubernetes.io/instance-type",
                "beta.kubernetes.io/instance-type",
            ]),
            lifecycle,
            running: ready(n),
        };
        let matched_tags = selector
            .labels
            .keys()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let excluded = exclusion(n, &node, selector, instance.is_some());
        let found = Found {
            node,
            private_ip: internal_ip(n),
            matched_tags,
            arn: None,
        };
        Seen {
            found,
            instance,
            excluded,
        }
    }
}

/// Why a matched node may not be terminated: the control plane, not Ready, cordoned, being
/// deleted, on-demand where the plan does not allow it, or (for `aws-ec2` and `aws-fis`) no
/// instance behind it.
fn exclusion(n: &KubeNode, node: &Node, sel: &KubeSelector, on_ec2: bool) -> Option<String> {
    let labels = n.metadata.labels.clone().unwrap_or_default();
    let control_plane = [
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    ]
    .iter()
    .any(|k| labels.contains_key(*k));
    let cordoned = n
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if control_plane {
        Some("a control-plane node".into())
    } else if n.metadata.deletion_timestamp.is_some() {
        Some("being deleted".into())
    } else if !node.running {
        Some("not Ready".into())
    } else if cordoned {
        Some("cordoned (spec.unschedulable)".into())
    } else if node.lifecycle == Lifecycle::OnDemand && !sel.allow_on_demand {
        Some(
            "not spot (no karpenter.sh/capacity-type=spot or eks.amazonaws.com/capacityType=SPOT \
             label); the plan does not say allow_on_demand: true"
                .into(),
        )
    } else if sel.terminate != KubeTerminate::Drain && !on_ec2 {
        Some("no EC2 instance behind it (spec.providerID is not aws:///ZONE/i-…)".into())
    } else {
        None
    }
}

/// The instance id of an AWS provider id (`aws:///us-east-1a/i-0abc`).
pub fn instance_of(provider_id: &str) -> Option<String> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then(|| id.to_owned())
}

/// Spot where Karpenter's or EKS's capacity-type label says so; everything else counts as
/// on-demand (so it is terminated only where the plan allows on-demand).
fn capacity_type(labels: &std::collections::BTreeMap<String, String>) -> Lifecycle {
    let karpenter = labels.get("karpenter.sh/capacity-type").map(String::as_str);
    let eks = labels
        .get("eks.amazonaws.com/capacityType")
        .map(String::as_str);
    if karpenter == Some("spot") || eks == Some("SPOT") {
        Lifecycle::Spot
    } else {
        Lifecycle::OnDemand
    }
}

/// Whether the node's `Ready` condition is `True`.
fn ready(n: &KubeNode) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn internal_ip(n: &KubeNode) -> Option<String> {
    n.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}

fn discovery(seen: &[Seen], note: Option<String>) -> Discovery {
    let mut d = Discovery {
        note,
        ..Discovery::default()
    };
    for s in seen {
        match &s.excluded {
            None => d.found.push(s.found.clone()),
            Some(reason) => d.excluded.push(Excluded {
                id: s.found.node.id.clone(),
                reason: reason.clone(),
            }),
        }
    }
    d
}

#[async_trait::async_trait]
impl Provider for KubeNodes {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn lock_identity(&self) -> String {
        if let Some(lab) = &self.lab_lock {
            return lab.clone();
        }
        let cluster = self
            .access
            .as_ref()
            .map_or("unreachable", |a| a.cluster.as_str());
        let mut labels: Vec<String> = self
            .selector
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        format!("kubernetes/{cluster};labels={}", labels.join(","))
    }

    fn place(&self) -> Option<super::account::Place> {
        self.ec2.as_ref().map(|e| e.place.clone())
    }

    async fn discover(&self) -> Result<Discovery, ProviderError> {
        if let Some(size) = self.lab_size {
            return Ok(self.predicted(size));
        }
        let seen = self.nodes().await?;
        let mut note = self.access()?.describe(self.selector.terminate);
        if self.selector.terminate == KubeTerminate::Drain
            && let Some(ec2) = &self.ec2
        {
            note.push_str(&format!(
                ", then TerminateInstances on the EC2 instance behind it ({})",
                ec2.place
            ));
        }
        Ok(discovery(&seen, Some(note)))
    }

    async fn check_permissions(&self, nodes: &[Node]) -> Result<Permission, ProviderError> {
        if self.lab_size.is_some() {
            return Ok(Permission::NotChecked);
        }
        let access = self.access()?;
        let mut how = access.check(self.selector.terminate).await?;
        if let Some(ec2) = &self.ec2 {
            let seen = self.nodes().await?;
            let instances = backing(&seen, nodes);
            if let Permission::Allowed(h) = ec2.check_permissions(&instances).await? {
                how.push_str(&format!("; {h}"));
            }
        }
        Ok(Permission::Allowed(how))
    }

    async fn terminate(&self, nodes: &[Node], injection: Injection<'_>) -> Vec<Terminated> {
        let fresh = match self.nodes().await {
            Ok(seen) => seen,
            Err(e) => return rediscovery_failed(nodes, &e),
        };
        let d = discovery(&fresh, None);
        let (go, mut results) = d.sort_out(nodes, NO_LONGER);
        let go: Vec<Seen> = go
            .iter()
            .filter_map(|f| fresh.iter().find(|s| s.found.node.id == f.node.id).cloned())
            .collect();
        let allow = self.selector.allow_on_demand;
        match (self.selector.terminate, &self.ec2, self.access()) {
            (KubeTerminate::AwsEc2, Some(ec2), _) => {
                results.extend(backing::terminate(ec2, &go, allow).await);
            }
            (KubeTerminate::AwsFis, Some(ec2), _) => {
                if let Some(fis) = &self.fis {
                    results.extend(backing::interrupt(ec2, fis, &go, injection).await);
                }
            }
            (KubeTerminate::Drain, ec2, Ok(access)) => {
                results.extend(
                    self.drain(access, ec2.as_ref(), &go, injection.events)
                        .await,
                );
            }
            (_, _, Err(e)) => {
                let names: Vec<Node> = go.iter().map(|s| s.found.node.clone()).collect();
                results.extend(rediscovery_failed(&names, &e));
            }
            (KubeTerminate::AwsEc2 | KubeTerminate::AwsFis, None, _) => {}
        }
        results.in_order(nodes)
    }

    fn outlives_the_run(&self) -> bool {
        self.lab_lock.is_none()
    }

    /// The capacity probes read the same API server (`None`: it cannot be reached).
    fn health(&self) -> Option<crate::observe::health::Endpoints> {
        let api = self.access.as_ref().ok()?.health();
        Some(crate::observe::health::Endpoints::Kubernetes(api))
    }

    /// A lab cluster brings replacement nodes in (Karpenter-like).
    fn replaces(&self) -> bool {
        self.lab_lock.is_some()
    }

    fn capacity_full(&self, _gone: &[String]) -> bool {
        let cluster = self.selector.lab_cluster.as_deref().unwrap_or_default();
        self.lab
            .as_ref()
            .and_then(|lab| lab.capacity(cluster))
            .is_none_or(|c| c.is_full())
    }

    /// An FIS interruption: the notice, and the nodes lost when the experiment ended.
    fn notice(&self) -> Duration {
        self.fis
            .as_ref()
            .map_or(Duration::ZERO, |f| f.delivery().notice)
    }

    fn injected_on_return(&self) -> bool {
        self.fis.as_ref().is_some_and(|f| f.delivery().on_return)
    }

    async fn release(&self) -> Vec<StepEvent> {
        match &self.fis {
            Some(f) => f.release().await,
            None => Vec::new(),
        }
    }

    async fn reconcile(&self, previous: &[StepEvent]) -> Vec<StepEvent> {
        match &self.fis {
            Some(f) => f.reconcile(previous).await,
            None => Vec::new(),
        }
    }
}

/// The EC2 instances behind these nodes, as nodes whose id is the instance id.
fn backing(seen: &[Seen], nodes: &[Node]) -> Vec<Node> {
    nodes
        .iter()
        .filter_map(|n| seen.iter().find(|s| s.found.node.id == n.id))
        .filter_map(|s| {
            let mut node = s.found.node.clone();
            node.id = s.instance.clone()?;
            Some(node)
        })
        .collect()
}

fn rediscovery_failed(nodes: &[Node], e: &ProviderError) -> Vec<Terminated> {
    nodes
        .iter()
        .map(|n| Terminated::new(&n.id, NodeOutcome::Error, Some(format!("rediscovery: {e}"))))
        .collect()
}

/// The settings a drain works with.
pub fn poll_interval() -> Duration {
    Duration::from_millis(500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_map_to_instances() {
        assert_eq!(
            instance_of("aws:///us-east-1a/i-0abc123").as_deref(),
            Some("i-0abc123")
        );
        assert_eq!(instance_of("gce://proj/zone/vm-1"), None);
        assert_eq!(instance_of("aws:///us-east-1a/"), None);
        assert_eq!(instance_of("kind://docker/kind/kind-worker"), None);
    }
}
