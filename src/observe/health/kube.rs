//! A Kubernetes target's capacity from its API server: Nodes Ready, and per workload (Deployment
//! or StatefulSet) ready pods against desired replicas, pods Pending and the scheduler's reason,
//! and pods still bound to nodes that are not Ready or gone. The same reading runs against a
//! real cluster and the lab's Kubernetes API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use super::HealthError;

/// A cluster's API server, as its node provider reached it.
#[derive(Clone)]
pub struct KubeApi {
    pub client: kube::Client,
    /// The API server's URL (for errors).
    pub cluster: String,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// A Kubernetes cluster's capacity at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeCapacity {
    /// Nodes whose `Ready` condition is `True`.
    pub nodes_ready: u32,
    /// Nodes listed but not Ready (NotReady or Unknown).
    pub nodes_not_ready: u32,
    /// Ready, schedulable nodes by name, sorted.
    pub node_names: Vec<String>,
    pub workloads: Vec<WorkloadCapacity>,
}

/// One Deployment's or StatefulSet's pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadCapacity {
    /// `namespace/name`.
    pub name: String,
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    pub desired: u32,
    /// Pods Running and Ready on a Ready node.
    pub ready: u32,
    pub pending: u32,
    /// The scheduler's message on a Pending pod (`0/5 nodes are available: …`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<String>,
    /// Pods bound to a node that is not Ready or no longer exists.
    pub on_lost_nodes: u32,
    /// Nodes of its ready pods, sorted.
    pub hosts: Vec<String>,
}

impl WorkloadCapacity {
    pub fn is_whole(&self) -> bool {
        self.ready >= self.desired && self.on_lost_nodes == 0
    }
}

impl KubeCapacity {
    pub fn is_whole(&self) -> bool {
        self.workloads.iter().all(WorkloadCapacity::is_whole)
    }

    /// A workload by `namespace/name`, or by name alone where that is unambiguous.
    pub fn workload(&self, name: &str) -> Option<&WorkloadCapacity> {
        let exact = self.workloads.iter().find(|w| w.name == name);
        exact.or_else(|| {
            let mut by_name = self
                .workloads
                .iter()
                .filter(|w| w.name.rsplit('/').next() == Some(name));
            let first = by_name.next()?;
            by_name.next().is_none().then_some(first)
        })
    }

    pub fn hosts_running(&self, name: &str) -> Vec<&str> {
        self.workload(name)
            .map(|w| w.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn workloads_on(&self, host: &str) -> Vec<&str> {
        self.workloads
            .iter()
            .filter(|w| w.hosts.iter().any(|h| h == host))
            .map(|w| w.name.as_str())
            .collect()
    }
}

/// Read the cluster's capacity; every list within `deadline`.
pub async fn capacity(api: &KubeApi, deadline: Duration) -> Result<KubeCapacity, HealthError> {
    let until = Instant::now() + deadline;
    let lp = ListParams::default();
    let client = &api.client;
    let nodes = list(api, Api::<Node>::all(client.clone()), &lp, until, "nodes");
    let pods = list(api, Api::<Pod>::all(client.clone()), &lp, until, "pods");
    let deployments = list(
        api,
        Api::<Deployment>::all(client.clone()),
        &lp,
        until,
        "deployments",
    );
    let sets = list(
        api,
        Api::<StatefulSet>::all(client.clone()),
        &lp,
        until,
        "statefulsets",
    );
    let (nodes, pods, deployments, sets) = tokio::try_join!(nodes, pods, deployments, sets)?;
    Ok(assemble(&nodes, &pods, &deployments, &sets))
}

async fn list<K>(
    api: &KubeApi,
    on: Api<K>,
    lp: &ListParams,
    until: Instant,
    what: &str,
) -> Result<Vec<K>, HealthError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let url = format!("{} (list {what})", api.cluster);
    let left = until.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, on.list(lp)).await {
        Err(_) => Err(HealthError::Timeout { url, after: left }),
        Ok(Err(kube::Error::Api(s))) => Err(HealthError::Status {
            url,
            status: s.code,
            body: s.message,
        }),
        Ok(Err(e)) => Err(HealthError::Transport {
            url,
            reason: e.to_string(),
        }),
        Ok(Ok(list)) => Ok(list.items),
    }
}

/// The capacity of what the lists say.
pub fn assemble(
    nodes: &[Node],
    pods: &[Pod],
    deployments: &[Deployment],
    sets: &[StatefulSet],
) -> KubeCapacity {
    let ready: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| node_ready(n))
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let mut node_names: Vec<String> = nodes
        .iter()
        .filter(|n| node_ready(n) && !cordoned(n))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    node_names.sort();
    // Each owner: its metadata, kind, desired replicas (default 1) and pod selector.
    let owners = deployments
        .iter()
        .map(|d| {
            let spec = d.spec.as_ref();
            (
                &d.metadata,
                "Deployment",
                spec.and_then(|s| s.replicas),
                spec.map(|s| &s.selector),
            )
        })
        .chain(sets.iter().map(|st| {
            let spec = st.spec.as_ref();
            (
                &st.metadata,
                "StatefulSet",
                spec.and_then(|s| s.replicas),
                spec.map(|s| &s.selector),
            )
        }));
    let workloads = owners
        .map(|(meta, kind, replicas, selector)| {
            workload(meta, kind, replicas.unwrap_or(1), selector, pods, &ready)
        })
        .collect();
    KubeCapacity {
        nodes_ready: ready.len() as u32,
        nodes_not_ready: (nodes.len() - ready.len()) as u32,
        node_names,
        workloads,
    }
}

type Meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn workload(
    meta: &Meta,
    kind: &str,
    desired: i32,
    selector: Option<&LabelSelector>,
    pods: &[Pod],
    ready_nodes: &BTreeSet<&str>,
) -> WorkloadCapacity {
    let ns = meta.namespace.clone().unwrap_or_default();
    let want = selector
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let mine = pods.iter().filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns.as_str())
            && !want.is_empty()
            && matches(p.metadata.labels.as_ref(), &want)
            && p.metadata.deletion_timestamp.is_none()
    });
    let mut w = WorkloadCapacity {
        name: format!("{ns}/{}", meta.name.clone().unwrap_or_default()),
        kind: kind.to_owned(),
        desired: desired.max(0) as u32,
        ..WorkloadCapacity::default()
    };
    let mut hosts = BTreeSet::new();
    for p in mine {
        let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        match node {
            None => {
                w.pending += 1;
                w.unschedulable = w.unschedulable.take().or_else(|| unschedulable(p));
            }
            Some(n) if !ready_nodes.contains(n) => w.on_lost_nodes += 1,
            Some(n) if pod_ready(p) => {
                w.ready += 1;
                hosts.insert(n.to_owned());
            }
            Some(_) => w.pending += 1,
        }
    }
    w.hosts = hosts.into_iter().collect();
    w
}

fn matches(labels: Option<&BTreeMap<String, String>>, want: &BTreeMap<String, String>) -> bool {
    want.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn cordoned(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn pod_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    running && ready
}

/// The scheduler's message of a pod it could not place (`PodScheduled=False`, `Unschedulable`).
fn unschedulable(p: &Pod) -> Option<String> {
    let conditions = p.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .and_then(|c| c.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("a valid object")
    }

    #[test]
    fn ready_pending_and_lost_pods_are_counted_per_deployment() {
        let node = |name: &str, ready: &str| -> Node {
            from(json!({"metadata": {"name": name},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
        };
        let pod = |name: &str, node: Option<&str>| -> Pod {
            let mut p = json!({"metadata": {"name": name, "namespace": "apps",
                    "labels": {"app": "ingest"}},
                "spec": {"containers": []},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}]}});
            match node {
                Some(n) => p["spec"]["nodeName"] = json!(n),
                None => {
                    p["status"] = json!({"phase": "Pending", "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/2 nodes are available: 2 Insufficient cpu."}]});
                }
            }
            from(p)
        };
        let d: Deployment = from(json!({"metadata": {"name": "ingest", "namespace": "apps"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "ingest"}},
                     "template": {}}}));
        let nodes = [node("a", "True"), node("b", "True"), node("c", "Unknown")];
        let pods = [
            pod("p1", Some("a")),
            pod("p2", Some("b")),
            pod("p3", Some("c")),
            pod("p4", None),
        ];
        let c = assemble(&nodes, &pods, &[d], &[]);
        assert_eq!((c.nodes_ready, c.nodes_not_ready), (2, 1));
        let w = c.workload("ingest").expect("found by name alone");
        assert_eq!(
            (w.desired, w.ready, w.pending, w.on_lost_nodes),
            (4, 2, 1, 1)
        );
        assert_eq!(w.hosts, ["a", "b"]);
        assert_eq!(
            w.unschedulable.as_deref(),
            Some("0/2 nodes are available: 2 Insufficient cpu.")
        );
        assert!(!c.is_whole());
        assert_eq!(c.workloads_on("a"), ["apps/ingest"]);
    }
}
