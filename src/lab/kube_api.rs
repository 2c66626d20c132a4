//! The lab's Kubernetes API: an in-memory cluster (Node and Pod objects, PodDisruptionBudgets,
//! the caller's permissions) served over plain HTTP on loopback with the API shapes spotdrill
//! reads and writes: list and get of nodes and pods (label and field selectors), node merge
//! patches (cordon), node deletion, the Eviction subresource (429 while a budget forbids it) and
//! SelfSubjectAccessReview. Only the fields spotdrill uses are kept, under their real names.
//!
//! Tests fill it by hand ([`KubeWorld::add_node`], [`KubeWorld::add_pod`]); a lab cluster of
//! `kind: kubernetes` rebuilds it from its scheduler's state every tick ([`KubeWorld::sync`]):
//! its node processes are the Nodes, its workers the pods of one Deployment per workload (Pending
//! with the scheduler's message when no node has a free slot), and what clients write — cordon,
//! evictions, Node deletions — is queued as [`Action`]s the scheduler carries out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use indexmap::IndexMap;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A PodDisruptionBudget: pods of `namespace` matching `selector` must stay at least
/// `min_available` (the `minAvailable` form).
#[derive(Clone, Debug)]
pub struct Budget {
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub min_available: usize,
}

/// The cluster the API serves.
#[derive(Debug, Default)]
pub struct KubeWorld {
    nodes: IndexMap<String, Value>,
    pods: IndexMap<(String, String), Value>,
    budgets: Vec<Budget>,
    /// Permissions SelfSubjectAccessReview denies (`delete nodes`, `create pods/eviction`).
    denied: BTreeSet<String>,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    deployments: Vec<Value>,
    /// What clients asked for since the scheduler last took them.
    actions: Vec<Action>,
}

/// A write a lab cluster's scheduler carries out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Cordon { node: String, on: bool },
    Evict { pod: String },
    DeleteNode { node: String },
}

/// A lab cluster as its Kubernetes API shows it.
#[derive(Clone, Debug)]
pub struct LabKubeState {
    pub namespace: String,
    pub slots_per_node: u32,
    pub nodes: Vec<LabKubeNode>,
    /// Every pod (worker) and the node it is bound to (`None`: Pending).
    pub pods: BTreeMap<String, Option<String>>,
}

#[derive(Clone, Debug)]
pub struct LabKubeNode {
    pub name: String,
    pub ready: bool,
    pub cordoned: bool,
    pub pods: u32,
}

pub type SharedWorld = Arc<Mutex<KubeWorld>>;

/// What a test or the lab says about a node.
#[derive(Clone, Debug, Default)]
pub struct NodeSpec<'a> {
    pub name: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
    pub ready: bool,
    pub unschedulable: bool,
    /// `aws:///ZONE/i-…` where an EC2 instance backs it.
    pub provider_id: Option<&'a str>,
}

impl KubeWorld {
    pub fn add_node(&mut self, n: &NodeSpec<'_>) {
        let labels: BTreeMap<&str, &str> = n.labels.iter().copied().collect();
        let status = if n.ready { "True" } else { "Unknown" };
        let mut spec = json!({"unschedulable": n.unschedulable});
        if let Some(id) = n.provider_id {
            spec["providerID"] = json!(id);
        }
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": labels, "resourceVersion": "1"},
            "spec": spec,
            "status": {
                "conditions": [{"type": "Ready", "status": status}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                              {"type": "Hostname", "address": n.name}],
            },
        });
        self.nodes.insert(n.name.to_owned(), node);
    }

    /// A running, ready pod on `node`; `owner` is the kind of its controller (`ReplicaSet`,
    /// `DaemonSet`), if any.
    pub fn add_pod(
        &mut self,
        ns: &str,
        name: &str,
        node: &str,
        labels: &[(&str, &str)],
        owner: Option<&str>,
    ) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
        if let Some(kind) = owner {
            metadata["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": format!("{name}-owner"),
                "uid": format!("uid-{name}"), "controller": true,
            }]);
        }
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": "main"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        self.pods.insert((ns.to_owned(), name.to_owned()), pod);
    }

    pub fn add_budget(&mut self, budget: Budget) {
        self.budgets.push(budget);
    }

    /// SelfSubjectAccessReview answers `allowed: false` for this (`delete nodes`).
    pub fn deny(&mut self, permission: &str) {
        self.denied.insert(permission.to_owned());
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    pub fn node(&self, name: &str) -> Option<&Value> {
        self.nodes.get(name)
    }

    /// `ns/name` of the pods bound to `node`.
    pub fn pods_on(&self, node: &str) -> Vec<String> {
        self.pods
            .values()
            .filter(|p| p["spec"]["nodeName"] == node)
            .map(|p| {
                format!(
                    "{}/{}",
                    p["metadata"]["namespace"].as_str().unwrap_or(""),
                    p["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    pub fn requests(&self) -> &[String] {
        &self.requests
    }

    /// What clients asked for since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Show a lab cluster as it is now: its nodes (Karpenter-like spot nodes of one NodePool named
    /// after the cluster), its pods, one Deployment per workload.
    pub fn sync(&mut self, state: &LabKubeState) {
        self.nodes.clear();
        for (i, n) in state.nodes.iter().enumerate() {
            let zone = format!("lab-{}", ["a", "b", "c"][i % 3]);
            let kind = format!("lab.{}slot", state.slots_per_node);
            let labels = [
                ("karpenter.sh/capacity-type", "spot"),
                ("karpenter.sh/nodepool", state.namespace.as_str()),
                ("kubernetes.io/hostname", n.name.as_str()),
                ("topology.kubernetes.io/zone", zone.as_str()),
                ("node.kubernetes.io/instance-type", kind.as_str()),
            ];
            self.add_node(&NodeSpec {
                name: &n.name,
                labels: &labels,
                ready: n.ready,
                unschedulable: n.cordoned,
                provider_id: None,
            });
        }
        self.pods.clear();
        let unschedulable = unschedulable_message(state);
        let ns = "default";
        for (pod, node) in &state.pods {
            let app = super::cluster::workload_of(pod);
            match node {
                Some(node) => self.add_pod(ns, pod, node, &[("app", app)], Some("ReplicaSet")),
                None => self.add_pending_pod(ns, pod, app, &unschedulable),
            }
        }
        self.deployments = deployments(state, ns);
    }

    fn add_pending_pod(&mut self, ns: &str, name: &str, app: &str, message: &str) {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{app}-rs"), "uid": format!("uid-{app}"), "controller": true}]},
            "spec": {"containers": [{"name": "main"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable", "message": message}]},
        });
        self.pods.insert((ns.to_owned(), name.to_owned()), pod);
    }
}

/// What the scheduler says of a pod no node takes: `0/5 nodes are available: 3 Insufficient
/// cpu, 1 node(s) were unschedulable, 1 node(s) had untolerated taint …`.
fn unschedulable_message(state: &LabKubeState) -> String {
    let count = |f: &dyn Fn(&LabKubeNode) -> bool| state.nodes.iter().filter(|n| f(n)).count();
    let not_ready = count(&|n| !n.ready);
    let cordoned = count(&|n| n.ready && n.cordoned);
    let full = count(&|n| n.ready && !n.cordoned && n.pods >= state.slots_per_node);
    let mut parts = Vec::new();
    if full > 0 {
        parts.push(format!("{full} Insufficient cpu"));
    }
    if cordoned > 0 {
        parts.push(format!("{cordoned} node(s) were unschedulable"));
    }
    if not_ready > 0 {
        parts.push(format!(
            "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/unreachable: }}"
        ));
    }
    format!(
        "0/{} nodes are available: {}.",
        state.nodes.len(),
        parts.join(", ")
    )
}

/// One Deployment per workload: replicas its workers, ready those bound to a Ready node.
fn deployments(state: &LabKubeState, ns: &str) -> Vec<Value> {
    let ready_nodes: BTreeSet<&str> = state
        .nodes
        .iter()
        .filter(|n| n.ready)
        .map(|n| n.name.as_str())
        .collect();
    let mut per: IndexMap<&str, (u32, u32)> = IndexMap::new();
    for (pod, node) in &state.pods {
        let e = per.entry(super::cluster::workload_of(pod)).or_default();
        e.0 += 1;
        if node.as_deref().is_some_and(|n| ready_nodes.contains(n)) {
            e.1 += 1;
        }
    }
    per.into_iter()
        .map(|(app, (replicas, ready))| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": app, "namespace": ns, "resourceVersion": "1"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                         "template": {"metadata": {"labels": {"app": app}}}},
                "status": {"replicas": replicas, "readyReplicas": ready,
                           "availableReplicas": ready},
            })
        })
        .collect()
}

/// An answer: status code and JSON body.
type Reply = (u16, Value);

fn status(code: u16, reason: &str, message: &str) -> Reply {
    let outcome = if code < 300 { "Success" } else { "Failure" };
    (
        code,
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": outcome,
               "reason": reason, "message": message, "code": code}),
    )
}

fn list(kind: &str, items: Vec<Value>) -> Reply {
    (
        200,
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}

/// Serve `world` on a free loopback port until `cancel` fires.
pub fn serve(
    world: SharedWorld,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    super::http::serve_json("the lab Kubernetes API", cancel, move |request| {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let method = request.method().as_str().to_owned();
        let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
        w.requests.push(format!("{method} {}", request.url()));
        let (code, value) = route(&mut w, &method, request.url(), &body);
        (code, value.to_string())
    })
}

/// Split `/path?a=b&c=d` into the path and its decoded query parameters.
fn split_url(url: &str) -> (String, BTreeMap<String, String>) {
    let parsed = url::Url::parse(&format!("http://lab{url}"));
    match parsed {
        Ok(u) => (u.path().to_owned(), u.query_pairs().into_owned().collect()),
        Err(_) => (url.to_owned(), BTreeMap::new()),
    }
}

/// The answer to one request.
pub fn route(w: &mut KubeWorld, method: &str, url: &str, body: &str) -> Reply {
    let (path, query) = split_url(url);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["api", "v1", "nodes"]) => list_nodes(w, &query),
        ("GET", ["api", "v1", "nodes", name]) => match w.nodes.get(*name) {
            Some(n) => (200, n.clone()),
            None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
        },
        ("PATCH", ["api", "v1", "nodes", name]) => patch_node(w, name, body),
        ("DELETE", ["api", "v1", "nodes", name]) => match w.nodes.shift_remove(*name) {
            Some(n) => {
                w.actions.push(Action::DeleteNode {
                    node: (*name).to_owned(),
                });
                (200, n)
            }
            None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
        },
        ("GET", ["apis", "apps", "v1", "deployments"]) => {
            list("DeploymentList", w.deployments.clone())
        }
        ("GET", ["apis", "apps", "v1", "statefulsets"]) => list("StatefulSetList", Vec::new()),
        ("GET", ["api", "v1", "pods"]) => list_pods(w, None, &query),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => list_pods(w, Some(ns), &query),
        ("POST", ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => evict(w, ns, name),
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => access_review(w, body),
        _ => status(
            404,
            "NotFound",
            &format!("the lab serves no {method} {path}"),
        ),
    }
}

/// `k=v,k2=v2` (also `k==v`); anything else is a 400.
fn parse_selector(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(k, _)| !k.ends_with('!'))
            .ok_or_else(|| format!("the lab supports only equality selectors, not `{term}`"))?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

fn labels_match(obj: &Value, want: &BTreeMap<String, String>) -> bool {
    want.iter()
        .all(|(k, v)| obj["metadata"]["labels"][k].as_str() == Some(v.as_str()))
}

/// A field selector term's value at its dotted path (`spec.nodeName`).
fn fields_match(obj: &Value, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(path, v)| {
        let at = path.split('.').fold(obj, |o, k| &o[k]);
        at.as_str() == Some(v.as_str())
    })
}

fn selectors(query: &BTreeMap<String, String>) -> Result<[BTreeMap<String, String>; 2], Reply> {
    let get = |k: &str| parse_selector(query.get(k).map_or("", String::as_str));
    match (get("labelSelector"), get("fieldSelector")) {
        (Ok(l), Ok(f)) => Ok([l, f]),
        (Err(e), _) | (_, Err(e)) => Err(status(400, "BadRequest", &e)),
    }
}

fn list_nodes(w: &KubeWorld, query: &BTreeMap<String, String>) -> Reply {
    let [labels, fields] = match selectors(query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let items = w
        .nodes
        .values()
        .filter(|n| labels_match(n, &labels) && fields_match(n, &fields))
        .cloned()
        .collect();
    list("NodeList", items)
}

fn list_pods(w: &KubeWorld, ns: Option<&str>, query: &BTreeMap<String, String>) -> Reply {
    let [labels, fields] = match selectors(query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let items = w
        .pods
        .iter()
        .filter(|((pns, _), _)| ns.is_none_or(|n| n == pns))
        .map(|(_, p)| p)
        .filter(|p| labels_match(p, &labels) && fields_match(p, &fields))
        .cloned()
        .collect();
    list("PodList", items)
}

/// A JSON merge patch (RFC 7386) onto the node.
fn patch_node(w: &mut KubeWorld, name: &str, body: &str) -> Reply {
    let Ok(patch) = serde_json::from_str::<Value>(body) else {
        return status(400, "BadRequest", "the patch is not JSON");
    };
    let Some(node) = w.nodes.get_mut(name) else {
        return status(404, "NotFound", &format!("nodes \"{name}\" not found"));
    };
    merge(node, &patch);
    if let Some(on) = patch["spec"]["unschedulable"].as_bool() {
        w.actions.push(Action::Cordon {
            node: name.to_owned(),
            on,
        });
    }
    (200, node.clone())
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The Eviction subresource: 429 while a budget covering the pod would drop below its minimum.
fn evict(w: &mut KubeWorld, ns: &str, name: &str) -> Reply {
    let key = (ns.to_owned(), name.to_owned());
    let Some(pod) = w.pods.get(&key) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let covering = w
        .budgets
        .iter()
        .find(|b| b.namespace == ns && labels_match(pod, &b.selector));
    if let Some(b) = covering {
        let healthy = w
            .pods
            .iter()
            .filter(|((pns, _), p)| pns == ns && labels_match(p, &b.selector))
            .filter(|(_, p)| p["status"]["phase"] == "Running")
            .count();
        if healthy <= b.min_available {
            let msg = format!(
                "Cannot evict pod as it would violate the pod's disruption budget. \
                 The disruption budget {} needs {} healthy pods and has {healthy} currently",
                b.name, b.min_available
            );
            return status(429, "TooManyRequests", &msg);
        }
    }
    w.pods.shift_remove(&key);
    w.actions.push(Action::Evict {
        pod: name.to_owned(),
    });
    status(201, "", "")
}

fn access_review(w: &KubeWorld, body: &str) -> Reply {
    let Ok(mut review) = serde_json::from_str::<Value>(body) else {
        return status(400, "BadRequest", "the review is not JSON");
    };
    let attrs = &review["spec"]["resourceAttributes"];
    let verb = attrs["verb"].as_str().unwrap_or("");
    let resource = attrs["resource"].as_str().unwrap_or("");
    let permission = match attrs["subresource"].as_str().filter(|s| !s.is_empty()) {
        Some(sub) => format!("{verb} {resource}/{sub}"),
        None => format!("{verb} {resource}"),
    };
    let allowed = !w.denied.contains(&permission);
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "lab: allowed"})
    } else {
        json!({"allowed": false, "reason": format!("lab: {permission} is denied")})
    };
    (201, review)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_filter_and_budgets_block_evictions() {
        let mut w = KubeWorld::default();
        for (name, spot) in [("a", "spot"), ("b", "on-demand")] {
            w.add_node(&NodeSpec {
                name,
                labels: &[("karpenter.sh/capacity-type", spot)],
                ready: true,
                ..NodeSpec::default()
            });
        }
        let (code, v) = route(
            &mut w,
            "GET",
            "/api/v1/nodes?labelSelector=karpenter.sh%2Fcapacity-type%3Dspot",
            "",
        );
        assert_eq!(code, 200);
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert_eq!(v["items"][0]["metadata"]["name"], "a");
        w.add_pod("apps", "p1", "a", &[("app", "ingest")], Some("ReplicaSet"));
        w.add_pod("apps", "p2", "b", &[("app", "ingest")], Some("ReplicaSet"));
        w.add_budget(Budget {
            namespace: "apps".into(),
            name: "ingest".into(),
            selector: [("app".to_owned(), "ingest".to_owned())].into(),
            min_available: 1,
        });
        let (code, _) = route(
            &mut w,
            "POST",
            "/api/v1/namespaces/apps/pods/p1/eviction",
            "{}",
        );
        assert_eq!(code, 201);
        let (code, v) = route(
            &mut w,
            "POST",
            "/api/v1/namespaces/apps/pods/p2/eviction",
            "{}",
        );
        assert_eq!(code, 429, "{v}");
        assert_eq!(w.pods_on("b"), ["apps/p2"]);
        let (code, v) = route(
            &mut w,
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Db",
            "",
        );
        assert_eq!((code, v["items"].as_array().unwrap().len()), (200, 1));
    }

    #[test]
    fn merge_patch_cordons() {
        let mut w = KubeWorld::default();
        w.add_node(&NodeSpec {
            name: "a",
            ready: true,
            ..NodeSpec::default()
        });
        let (code, v) = route(
            &mut w,
            "PATCH",
            "/api/v1/nodes/a",
            r#"{"spec":{"unschedulable":true}}"#,
        );
        assert_eq!(code, 200);
        assert_eq!(v["spec"]["unschedulable"], true);
        assert_eq!(
            w.node("a").unwrap()["status"]["conditions"][0]["status"],
            "True"
        );
    }
}
