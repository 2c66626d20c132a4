//! `terminate: drain`: cordon the node, evict its pods through the Eviction API (so
//! PodDisruptionBudgets hold: a blocked eviction is retried until the drain timeout), wait until
//! they are gone, then delete the Node. A drain that cannot finish uncordons the node again and
//! reports an error: nothing half-drained is left behind without saying so.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use tokio::time::Instant;

use super::Access;
use crate::nodes::{NodeOutcome, ProviderEvent, Terminated};

/// Where provider events go (the journal).
pub type Events<'a> = &'a (dyn Fn(ProviderEvent) + Sync);

/// Drain one node and delete it; the outcome says what happened.
pub async fn node(
    access: &Access,
    name: &str,
    timeout: Duration,
    events: Events<'_>,
) -> Terminated {
    let nodes: Api<KubeNode> = Api::all(access.client.clone());
    if let Err(e) = cordon(&nodes, name, true).await {
        return Terminated::new(name, NodeOutcome::Error, Some(format!("cordon: {e}")));
    }
    let evicted = match evict_all(access, name, timeout, events).await {
        Ok(n) => n,
        Err(why) => {
            let undo = match cordon(&nodes, name, false).await {
                Ok(()) => "uncordoned again".to_owned(),
                Err(e) => format!("left cordoned: uncordon failed: {e}"),
            };
            return Terminated::new(name, NodeOutcome::Error, Some(format!("{why}; {undo}")));
        }
    };
    match nodes.delete(name, &DeleteParams::default()).await {
        Ok(_) => Terminated::new(
            name,
            NodeOutcome::Terminated,
            Some(format!("drained ({evicted} pods evicted), Node deleted")),
        ),
        Err(kube::Error::Api(s)) if s.code == 404 => Terminated::new(
            name,
            NodeOutcome::Terminated,
            Some(format!(
                "drained ({evicted} pods evicted); the Node was already gone"
            )),
        ),
        Err(e) => Terminated::new(
            name,
            NodeOutcome::Error,
            Some(format!(
                "drained ({evicted} pods evicted), but deleting the Node failed: {e}"
            )),
        ),
    }
}

async fn cordon(nodes: &Api<KubeNode>, name: &str, on: bool) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"spec": {"unschedulable": on}});
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// The pods a drain must evict: not DaemonSet-owned, not mirror pods, not finished.
fn evictable(p: &Pod) -> bool {
    let owned_by_daemonset = p
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"));
    let mirror = p
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    !(owned_by_daemonset || mirror || finished)
}

fn pod_key(p: &Pod) -> (String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    )
}

/// Evict every evictable pod on the node and wait until none is left; a PDB-blocked eviction is
/// retried every poll until `timeout`. Returns how many pods were evicted.
async fn evict_all(
    access: &Access,
    node: &str,
    timeout: Duration,
    events: Events<'_>,
) -> Result<usize, String> {
    let pods: Api<Pod> = Api::all(access.client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let deadline = Instant::now() + timeout;
    let mut evicted: BTreeSet<(String, String)> = BTreeSet::new();
    loop {
        let list = pods
            .list(&on_node)
            .await
            .map_err(|e| format!("listing the pods on {node}: {e}"))?;
        let left: Vec<&Pod> = list.items.iter().filter(|p| evictable(p)).collect();
        if left.is_empty() {
            return Ok(evicted.len());
        }
        let mut blocked = None;
        for p in left
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let key = pod_key(p);
            match evict(access, &key).await {
                Ok(()) => {
                    evicted.insert(key);
                }
                Err(Evict::Blocked(msg)) => {
                    let detail = format!("eviction of {}/{} blocked: {msg}", key.0, key.1);
                    events(ProviderEvent {
                        event: "eviction_blocked".into(),
                        detail: detail.clone(),
                    });
                    blocked = Some(detail);
                }
                Err(Evict::Failed(e)) => return Err(format!("evicting {}/{}: {e}", key.0, key.1)),
            }
        }
        if Instant::now() >= deadline {
            let why = blocked.unwrap_or_else(|| "evicted pods did not go away".to_owned());
            return Err(format!(
                "drain of {node} did not finish within {}: {why}",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(super::poll_interval()).await;
    }
}

enum Evict {
    /// 429: a PodDisruptionBudget does not allow it now.
    Blocked(String),
    Failed(kube::Error),
}

async fn evict(access: &Access, (ns, name): &(String, String)) -> Result<(), Evict> {
    let api: Api<Pod> = Api::namespaced(access.client.clone(), ns);
    match api.evict(name, &EvictParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 429 => Err(Evict::Blocked(s.message.clone())),
        Err(e) => Err(Evict::Failed(e)),
    }
}
