//! `terminate: drain`: cordon the node, evict its pods through the Eviction API (so
//! PodDisruptionBudgets hold: a blocked eviction is retried until the drain timeout), wait until
//! they are gone, then delete the Node. A drain that cannot finish uncordons the node again and
//! reports an error: nothing half-drained is left behind without saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use tokio::time::Instant;

use super::Access;
use crate::journal::EVICTION_BLOCK_ENDED as BLOCK_ENDED;
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
    let mut blocks = Blocks::default();
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
                    blocks.ended(&key, "", events);
                    evicted.insert(key);
                }
                Err(Evict::Blocked(msg)) => {
                    blocked = Some(format!("eviction of {}/{} blocked: {msg}", key.0, key.1));
                    blocks.blocked(key, &msg, events);
                }
                Err(Evict::Failed(e)) => return Err(format!("evicting {}/{}: {e}", key.0, key.1)),
            }
        }
        if Instant::now() >= deadline {
            blocks.end_all("; the drain gave up", events);
            let why = blocked.unwrap_or_else(|| "evicted pods did not go away".to_owned());
            return Err(format!(
                "drain of {node} did not finish within {}: {why}",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(super::poll_interval()).await;
    }
}

/// Evictions a PodDisruptionBudget holds back: since when, and which budget (where the API's
/// message names it). The first refusal of each pod is journaled as `eviction_blocked`, and the
/// end of the block (evicted, or the drain gave up) once as [`BLOCK_ENDED`], whose detail is the
/// finding: "eviction of apps/ingest-7 was blocked 30s by PodDisruptionBudget ingest".
#[derive(Default)]
struct Blocks(BTreeMap<(String, String), (Instant, Option<String>)>);

impl Blocks {
    fn blocked(&mut self, key: (String, String), msg: &str, events: Events<'_>) {
        if self.0.contains_key(&key) {
            return;
        }
        events(ProviderEvent {
            event: "eviction_blocked".into(),
            detail: format!("eviction of {}/{} blocked: {msg}", key.0, key.1),
        });
        self.0.insert(key, (Instant::now(), budget_name(msg)));
    }

    fn ended(&mut self, key: &(String, String), suffix: &str, events: Events<'_>) {
        let Some((since, budget)) = self.0.remove(key) else {
            return;
        };
        let budget = budget.map_or("a PodDisruptionBudget".to_owned(), |b| {
            format!("PodDisruptionBudget {b}")
        });
        let secs = since.elapsed().as_secs_f64().round();
        events(ProviderEvent {
            event: BLOCK_ENDED.into(),
            detail: format!(
                "eviction of {}/{} was blocked {secs}s by {budget}{suffix}",
                key.0, key.1
            ),
        });
    }

    fn end_all(&mut self, suffix: &str, events: Events<'_>) {
        let keys: Vec<(String, String)> = self.0.keys().cloned().collect();
        for key in &keys {
            self.ended(key, suffix, events);
        }
    }
}

/// The budget a 429's message names ("… The disruption budget ingest needs 4 healthy pods …");
/// the API server of a real cluster puts it in the status' causes, which the client does not
/// keep, so there it stays unnamed.
fn budget_name(msg: &str) -> Option<String> {
    msg.match_indices("disruption budget ").find_map(|(i, m)| {
        let word = msg[i + m.len()..].split_whitespace().next()?;
        let ok = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !word.ends_with('.');
        ok.then(|| word.to_owned())
    })
}

enum Evict {
    /// 429: a PodDisruptionBudget does not allow it now.
    Blocked(String),
    Failed(kube::Error),
}

async fn evict(access: &Access, (ns, name): &(String, String)) -> Result<(), Evict> {
    let api: Api<Pod> = Api::namespaced(access.evictions.clone(), ns);
    match api.evict(name, &EvictParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 429 => Err(Evict::Blocked(s.message.clone())),
        Err(e) => Err(Evict::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_named_where_the_message_names_it() {
        let lab = "Cannot evict pod as it would violate the pod's disruption budget. The \
                   disruption budget ingest-pdb needs 4 healthy pods and has 4 currently";
        assert_eq!(budget_name(lab).as_deref(), Some("ingest-pdb"));
        let real = "Cannot evict pod as it would violate the pod's disruption budget.";
        assert_eq!(budget_name(real), None);
    }
}
