//! The lab's clusters seen through the HTTP APIs of the real systems, on loopback, so health
//! probes run against the lab exactly as against production: the Storm UI REST API for storm
//! clusters; the Mesos master and Marathon for mesos clusters. Only the fields spotdrill reads
//! (DESIGN.md "Health probes") are served, with the real names. A lab node's id is its host name.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::plan::ClusterKind;

/// What the endpoints show, refreshed by the lab's scheduler loop.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub name: String,
    pub kind: ClusterKind,
    pub slots_per_node: u32,
    pub nodes: Vec<NodeView>,
    pub workloads: Vec<WorkloadView>,
    /// Nodes lost and noticed (Mesos: unreachable agents).
    pub lost: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct NodeView {
    pub id: String,
    pub started: Instant,
    pub workers: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct WorkloadView {
    pub name: String,
    pub instances: u32,
    /// (worker, node) of each placed worker.
    pub placed: Vec<(String, String)>,
}

pub type SharedView = Arc<Mutex<ClusterView>>;

/// Serve a cluster's endpoints on a free loopback port until `cancel` fires.
pub fn serve(
    view: SharedView,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    serve_json("the lab HTTP server", cancel, move |request| {
        // Query strings (`?embed=apps.counts`) are accepted and ignored: the lab always
        // embeds the counts.
        let path = request.url().split('?').next().unwrap_or("").to_owned();
        let view = view.lock().unwrap_or_else(|e| e.into_inner());
        match route(&view, &path) {
            Some(v) => (200, v.to_string()),
            None => (404, r#"{"error":"not found"}"#.to_owned()),
        }
    })
}

/// Answer JSON requests on a free loopback port, one at a time, until `cancel` fires:
/// `answer` gives each request's status code and body. `what` names the server in errors.
pub fn serve_json(
    what: &str,
    cancel: CancellationToken,
    mut answer: impl FnMut(&mut tiny_http::Request) -> (u16, String) + Send + 'static,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("{what} has no IP address"))?;
    let handle = std::thread::spawn(move || {
        while !cancel.is_cancelled() {
            let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let (code, body) = answer(&mut request);
            let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                .expect("a valid header");
            let response = tiny_http::Response::from_string(body)
                .with_status_code(code)
                .with_header(header);
            let _ = request.respond(response);
        }
    });
    Ok((addr, handle))
}

fn uptime(started: Instant) -> (String, u64) {
    let secs = started.elapsed().as_secs();
    (format!("{}m {}s", secs / 60, secs % 60), secs)
}

/// The JSON for a path, or `None` (404).
pub fn route(v: &ClusterView, path: &str) -> Option<Value> {
    match (v.kind, path) {
        (ClusterKind::Storm, "/api/v1/cluster/summary") => {
            let total = v.nodes.len() as u32 * v.slots_per_node;
            let used: usize = v.nodes.iter().map(|n| n.workers.len()).sum();
            Some(json!({
                "supervisors": v.nodes.len(),
                "slotsTotal": total,
                "slotsUsed": used,
                "slotsFree": total as usize - used.min(total as usize),
                "topologies": v.workloads.len(),
                "executorsTotal": used,
                "tasksTotal": used,
            }))
        }
        (ClusterKind::Storm, "/api/v1/supervisor/summary") => Some(json!({
            "supervisors": v.nodes.iter().map(|n| {
                let (uptime, secs) = uptime(n.started);
                json!({"id": n.id, "host": n.id, "uptime": uptime, "uptimeSeconds": secs,
                       "slotsTotal": v.slots_per_node, "slotsUsed": n.workers.len()})
            }).collect::<Vec<_>>(),
        })),
        (ClusterKind::Storm, "/api/v1/topology/summary") => Some(json!({
            "topologies": v.workloads.iter().map(|w| json!({
                "id": w.name, "name": w.name, "status": "ACTIVE",
                "workersTotal": w.placed.len(), "executorsTotal": w.placed.len(),
                "tasksTotal": w.placed.len(),
            })).collect::<Vec<_>>(),
        })),
        (ClusterKind::Storm, p) if p.starts_with("/api/v1/topology/") => {
            let id = &p["/api/v1/topology/".len()..];
            let w = v.workloads.iter().find(|w| w.name == id)?;
            Some(json!({
                "id": w.name, "name": w.name, "status": "ACTIVE",
                "workersTotal": w.placed.len(),
                "workers": w.placed.iter().enumerate().map(|(i, (_, node))| json!({
                    "topologyId": w.name, "topologyName": w.name,
                    "host": node, "port": 6700 + i, "supervisorId": node,
                })).collect::<Vec<_>>(),
                // The topology's configuration: what it asked for, placed or not.
                "configuration": {"storm.id": w.name, "topology.workers": w.instances},
            }))
        }
        (ClusterKind::Mesos, "/master/slaves") => {
            Some(json!({ "slaves": agents(v), "recovered_slaves": [] }))
        }
        (ClusterKind::Mesos, "/master/state-summary") => Some(json!({
            "hostname": v.name, "cluster": v.name, "slaves": agents(v), "frameworks": [],
        })),
        // Mesos writes `unreachable_slaves` as a count; the lab lists the agents (`{"id"}`),
        // which probes read as their count too.
        (ClusterKind::Mesos, "/master/state") => Some(json!({
            "cluster": v.name,
            "activated_slaves": v.nodes.len(),
            "deactivated_slaves": 0,
            "slaves": agents(v),
            "unreachable_slaves": v.lost.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        })),
        (ClusterKind::Mesos, "/v2/apps") => Some(json!({
            "apps": v.workloads.iter().map(|w| json!({
                "id": format!("/{}", w.name), "instances": w.instances,
                "tasksRunning": w.placed.len(), "tasksHealthy": w.placed.len(),
                "tasksStaged": 0, "tasksUnhealthy": 0, "deployments": [],
                "healthChecks": [],
                "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
            })).collect::<Vec<_>>(),
        })),
        (ClusterKind::Mesos, "/v2/tasks") => Some(json!({
            "tasks": v.workloads.iter().flat_map(|w| w.placed.iter().map(move |(task, node)| json!({
                "id": task, "appId": format!("/{}", w.name), "host": node, "slaveId": node,
                "state": "TASK_RUNNING",
            }))).collect::<Vec<_>>(),
        })),
        _ => None,
    }
}

fn agents(v: &ClusterView) -> Vec<Value> {
    v.nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id, "hostname": n.id, "active": true,
                "resources": {"cpus": v.slots_per_node, "mem": 1024 * v.slots_per_node},
                "used_resources": {"cpus": n.workers.len(), "mem": 1024 * n.workers.len()},
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(kind: ClusterKind) -> ClusterView {
        let node = |id: &str, workers: &[&str]| NodeView {
            id: id.into(),
            started: Instant::now(),
            workers: workers.iter().map(|w| w.to_string()).collect(),
        };
        ClusterView {
            name: "c".into(),
            kind,
            slots_per_node: 2,
            nodes: vec![node("c-1", &["agg-0", "agg-1"]), node("c-2", &[])],
            workloads: vec![WorkloadView {
                name: "agg".into(),
                instances: 3,
                placed: vec![
                    ("agg-0".into(), "c-1".into()),
                    ("agg-1".into(), "c-1".into()),
                ],
            }],
            lost: vec!["c-3".into()],
        }
    }

    #[test]
    fn mesos_and_marathon_shapes() {
        let v = view(ClusterKind::Mesos);
        let apps = route(&v, "/v2/apps").unwrap();
        assert_eq!(apps["apps"][0]["id"], "/agg");
        assert_eq!(apps["apps"][0]["instances"], 3);
        assert_eq!(apps["apps"][0]["tasksRunning"], 2);
        let tasks = route(&v, "/v2/tasks").unwrap();
        assert_eq!(tasks["tasks"][1]["host"], "c-1");
        let slaves = route(&v, "/master/slaves").unwrap();
        assert_eq!(slaves["slaves"][0]["used_resources"]["cpus"], 2);
        assert_eq!(slaves["slaves"][1]["hostname"], "c-2");
        let state = route(&v, "/master/state").unwrap();
        assert_eq!(state["unreachable_slaves"][0]["id"], "c-3");
        let summary = route(&v, "/master/state-summary").unwrap();
        assert_eq!(summary["slaves"], slaves["slaves"]);
        assert_eq!(apps["apps"][0]["healthChecks"], json!([]));
        assert_eq!(tasks["tasks"][1]["slaveId"], "c-1");
        assert!(route(&v, "/api/v1/cluster/summary").is_none());
    }

    #[test]
    fn storm_ui_shapes() {
        let v = view(ClusterKind::Storm);
        let summary = route(&v, "/api/v1/cluster/summary").unwrap();
        assert_eq!(
            (
                &summary["supervisors"],
                &summary["slotsTotal"],
                &summary["slotsUsed"],
                &summary["slotsFree"]
            ),
            (&json!(2), &json!(4), &json!(2), &json!(2))
        );
        let sup = route(&v, "/api/v1/supervisor/summary").unwrap();
        assert_eq!(sup["supervisors"][0]["host"], "c-1");
        assert!(sup["supervisors"][0]["uptimeSeconds"].is_u64());
        let topo = route(&v, "/api/v1/topology/agg").unwrap();
        assert_eq!(topo["workersTotal"], 2);
        assert_eq!(topo["workers"][0]["host"], "c-1");
        assert_eq!(topo["configuration"]["topology.workers"], 3);
        assert!(route(&v, "/api/v1/topology/nope").is_none());
        assert!(route(&v, "/v2/apps").is_none());
    }
}
