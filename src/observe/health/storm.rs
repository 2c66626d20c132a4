//! The Storm UI REST API (https://storm.apache.org/releases/2.6.0/STORM-UI-REST-API.html,
//! source: apache/storm `docs/STORM-UI-REST-API.md`): the typed answers spotdrill reads, and a
//! cluster's capacity built from them.
//!
//! Only the fields needed are declared; unknown fields are ignored and numbers that older
//! versions lack are `Option`.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::client::{ApiClient, HealthError};
use super::hosts::same_host;

/// `GET /api/v1/cluster/summary`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    /// Number of supervisors running.
    pub supervisors: u32,
    pub slots_total: Option<u32>,
    pub slots_used: Option<u32>,
    pub slots_free: Option<u32>,
    pub topologies: Option<u32>,
}

/// `GET /api/v1/supervisor/summary`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SupervisorSummary {
    pub supervisors: Vec<Supervisor>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Supervisor {
    pub id: String,
    pub host: String,
    pub uptime_seconds: Option<u64>,
    pub slots_total: Option<u32>,
    pub slots_used: Option<u32>,
}

/// `GET /api/v1/topology/summary`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TopologySummary {
    pub topologies: Vec<TopologyInfo>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopologyInfo {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `INACTIVE`, `REBALANCING`, `KILLED`.
    pub status: String,
    pub workers_total: Option<u32>,
    pub executors_total: Option<u32>,
}

/// `GET /api/v1/topology/:id`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopologyDetail {
    pub id: String,
    pub name: String,
    pub status: String,
    pub workers_total: Option<u32>,
    /// Absent before Storm 1.x.
    #[serde(default)]
    pub workers: Option<Vec<Worker>>,
    /// The topology's configuration; spotdrill reads `topology.workers`.
    #[serde(default)]
    pub configuration: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TopologyDetail {
    /// `configuration["topology.workers"]` (a number, or a number in a string).
    pub fn configured_workers(&self) -> Option<u32> {
        let value = self.configuration.as_ref()?.get("topology.workers")?;
        match value {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub host: String,
    pub port: Option<u16>,
    pub supervisor_id: Option<String>,
}

/// Typed calls to one Storm UI.
#[derive(Clone, Debug)]
pub struct StormUi {
    pub client: ApiClient,
}

impl StormUi {
    pub fn cluster_summary(&self, until: Instant) -> Result<ClusterSummary, HealthError> {
        self.client.get_json("/api/v1/cluster/summary", until)
    }

    pub fn supervisors(&self, until: Instant) -> Result<SupervisorSummary, HealthError> {
        self.client.get_json("/api/v1/supervisor/summary", until)
    }

    pub fn topologies(&self, until: Instant) -> Result<TopologySummary, HealthError> {
        self.client.get_json("/api/v1/topology/summary", until)
    }

    pub fn topology(&self, id: &str, until: Instant) -> Result<TopologyDetail, HealthError> {
        self.client
            .get_json(&format!("/api/v1/topology/{}", encode_segment(id)), until)
    }

    /// Every call the capacity needs: the three summaries at once, then each topology's detail
    /// at once.
    pub fn capacity(&self, until: Instant) -> Result<StormCapacity, HealthError> {
        let (summary, supervisors, topologies) = std::thread::scope(|s| {
            let summary = s.spawn(|| self.cluster_summary(until));
            let supervisors = s.spawn(|| self.supervisors(until));
            let topologies = self.topologies(until);
            (join(summary), join(supervisors), topologies)
        });
        let (summary, supervisors, topologies) = (summary?, supervisors?, topologies?);
        let details: Vec<Result<TopologyDetail, HealthError>> = std::thread::scope(|s| {
            let handles: Vec<_> = topologies
                .topologies
                .iter()
                .map(|t| s.spawn(|| self.topology(&t.id, until)))
                .collect();
            handles.into_iter().map(join).collect()
        });
        let (details, gone) = details_or_gone(&topologies, details)?;
        let mut capacity = StormCapacity::from_api(&summary, &supervisors, &topologies, &details);
        capacity.topologies.retain(|t| !gone.contains(&t.id));
        capacity.gone = gone;
        Ok(capacity)
    }
}

/// The topologies' details, and the ids of those whose detail answered 404: listed in the
/// summary, killed before their detail was read. They are gone, not a reason to call the whole
/// capacity unknown; any other failure still is.
fn details_or_gone(
    topologies: &TopologySummary,
    details: Vec<Result<TopologyDetail, HealthError>>,
) -> Result<(Vec<TopologyDetail>, Vec<String>), HealthError> {
    let mut found = Vec::new();
    let mut gone = Vec::new();
    for (t, detail) in topologies.topologies.iter().zip(details) {
        match detail {
            Ok(d) => found.push(d),
            Err(HealthError::Status { status: 404, .. }) => gone.push(t.id.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok((found, gone))
}

/// A scoped thread's result (its panic carried on).
pub(super) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Percent-encode a path segment (topology ids are `name-N-epoch`, but names are free text).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Storm cluster's capacity at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StormCapacity {
    pub supervisors_alive: u32,
    /// Hosts of the live supervisors.
    pub supervisor_hosts: Vec<String>,
    pub slots_total: u32,
    pub slots_used: u32,
    pub slots_free: u32,
    pub topologies: Vec<TopologyCapacity>,
    /// Topologies the summary listed whose detail then answered 404 (killed in between): ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

/// One topology's share of the capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopologyCapacity {
    pub id: String,
    pub name: String,
    pub status: String,
    /// Workers Nimbus has assigned (on live or dead supervisors).
    pub workers_assigned: u32,
    /// `topology.workers` of its configuration (`None`: not shown by this Storm version).
    pub workers_configured: Option<u32>,
    /// Assigned workers on a supervisor that is not alive.
    pub workers_on_dead_supervisors: u32,
    /// Distinct hosts of its workers, sorted.
    pub hosts: Vec<String>,
}

impl TopologyCapacity {
    /// Whole: every configured worker assigned, and none on a dead supervisor.
    pub fn is_whole(&self) -> bool {
        self.workers_configured
            .is_none_or(|want| self.workers_assigned >= want)
            && self.workers_on_dead_supervisors == 0
    }
}

/// The live supervisors, by id and by host.
struct Live<'a> {
    ids: BTreeSet<&'a str>,
    hosts: BTreeSet<&'a str>,
}

impl Live<'_> {
    /// A topology's capacity: its workers (from its detail, when the UI gave one) and those of
    /// them on supervisors that are gone.
    fn topology(&self, t: &TopologyInfo, detail: Option<&TopologyDetail>) -> TopologyCapacity {
        let workers = detail.and_then(|d| d.workers.as_deref()).unwrap_or(&[]);
        let dead = workers
            .iter()
            .filter(|w| match &w.supervisor_id {
                Some(id) => !self.ids.contains(id.as_str()),
                None => !self.hosts.contains(w.host.as_str()),
            })
            .count() as u32;
        let hosts: BTreeSet<String> = workers.iter().map(|w| w.host.clone()).collect();
        let assigned = match detail.and_then(|d| d.workers.as_ref()) {
            Some(w) => w.len() as u32,
            None => detail
                .and_then(|d| d.workers_total)
                .or(t.workers_total)
                .unwrap_or(0),
        };
        TopologyCapacity {
            id: t.id.clone(),
            name: t.name.clone(),
            status: detail.map_or(&t.status, |d| &d.status).clone(),
            workers_assigned: assigned,
            workers_configured: detail.and_then(TopologyDetail::configured_workers),
            workers_on_dead_supervisors: dead,
            hosts: hosts.into_iter().collect(),
        }
    }
}

impl StormCapacity {
    /// The capacity from the answers of the Storm UI.
    pub fn from_api(
        summary: &ClusterSummary,
        supervisors: &SupervisorSummary,
        topologies: &TopologySummary,
        details: &[TopologyDetail],
    ) -> StormCapacity {
        let live = Live {
            ids: supervisors
                .supervisors
                .iter()
                .map(|s| s.id.as_str())
                .collect(),
            hosts: supervisors
                .supervisors
                .iter()
                .map(|s| s.host.as_str())
                .collect(),
        };
        let sum = |f: fn(&Supervisor) -> Option<u32>| -> u32 {
            supervisors.supervisors.iter().filter_map(f).sum()
        };
        let slots_total = summary
            .slots_total
            .unwrap_or_else(|| sum(|s| s.slots_total));
        let slots_used = summary.slots_used.unwrap_or_else(|| sum(|s| s.slots_used));
        let topologies = topologies
            .topologies
            .iter()
            .map(|t| live.topology(t, details.iter().find(|d| d.id == t.id)))
            .collect();
        StormCapacity {
            supervisors_alive: supervisors.supervisors.len() as u32,
            supervisor_hosts: supervisors
                .supervisors
                .iter()
                .map(|s| s.host.clone())
                .collect(),
            slots_total,
            slots_used,
            slots_free: summary
                .slots_free
                .unwrap_or(slots_total.saturating_sub(slots_used)),
            topologies,
            gone: Vec::new(),
        }
    }

    /// Whole: every topology whole.
    pub fn is_whole(&self) -> bool {
        self.topologies.iter().all(TopologyCapacity::is_whole)
    }

    /// A topology by name or id.
    pub fn topology(&self, name: &str) -> Option<&TopologyCapacity> {
        self.topologies
            .iter()
            .find(|t| t.name == name || t.id == name)
    }

    /// The hosts that run a topology's workers (by name or id), sorted.
    pub fn hosts_running(&self, topology: &str) -> Vec<&str> {
        self.topology(topology)
            .map(|t| t.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The topologies (by name) with a worker on `host` (matched by [`same_host`]).
    pub fn topologies_on(&self, host: &str) -> Vec<&str> {
        self.topologies
            .iter()
            .filter(|t| t.hosts.iter().any(|h| same_host(h, host)))
            .map(|t| t.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topology_ids_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("wc-1-1402960825"), "wc-1-1402960825");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn configured_workers_reads_numbers_and_numeric_strings() {
        let detail = |conf: serde_json::Value| TopologyDetail {
            id: "t".into(),
            name: "t".into(),
            status: "ACTIVE".into(),
            workers_total: None,
            workers: None,
            configuration: conf.as_object().cloned(),
        };
        assert_eq!(
            detail(json!({"topology.workers": 4})).configured_workers(),
            Some(4)
        );
        assert_eq!(
            detail(json!({"topology.workers": "3"})).configured_workers(),
            Some(3)
        );
        assert_eq!(detail(json!({})).configured_workers(), None);
    }
}
