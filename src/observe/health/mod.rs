//! Health probes (DESIGN.md "Health probes"): a target's capacity as its scheduler sees it —
//! Storm supervisors, slots and per-topology workers from the Storm UI REST API; Mesos agents and
//! resources from the Mesos master with per-app tasks, health and deployments from Marathon —
//! and whether each topology or app is whole again after a loss.
//!
//! The same code runs against production and against the lab (whose clusters serve the same
//! shapes, [`crate::lab::http`]). The client is blocking: from async code, call [`probe`]
//! through `tokio::task::spawn_blocking`.

pub mod client;
mod config;
pub mod hosts;
pub mod kube;
pub mod mesos;
pub mod storm;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use client::{
    ApiClient, Auth, AuthSpec, HealthError, HttpSettings, Secret, without_credentials,
};
pub use config::{LabUrl, endpoints_of, settings_of};
pub use hosts::same_host;
pub use kube::{KubeApi, KubeCapacity, WorkloadCapacity};
pub use mesos::{AppCapacity, Marathon, MesosCapacity, MesosMaster, UnreachableStrategy};
pub use storm::{StormCapacity, StormUi, TopologyCapacity};

use crate::plan::ClusterKind;

/// The health APIs of one target.
#[derive(Clone, Debug)]
pub enum Endpoints {
    Storm {
        storm_ui: StormUi,
    },
    Mesos {
        mesos_master: MesosMaster,
        marathon: Marathon,
    },
    /// A Kubernetes API server, reached as the target's node provider reaches it.
    Kubernetes(KubeApi),
}

impl Endpoints {
    /// A Storm target's endpoints.
    pub fn storm(storm_ui: &str, settings: &HttpSettings) -> Result<Endpoints, HealthError> {
        Ok(Endpoints::Storm {
            storm_ui: StormUi {
                client: ApiClient::new(storm_ui, settings)?,
            },
        })
    }

    /// A Mesos target's endpoints (the master and Marathon may need different credentials).
    pub fn mesos(
        mesos_master: (&str, &HttpSettings),
        marathon: (&str, &HttpSettings),
    ) -> Result<Endpoints, HealthError> {
        Ok(Endpoints::Mesos {
            mesos_master: MesosMaster {
                client: ApiClient::new(mesos_master.0, mesos_master.1)?,
            },
            marathon: Marathon {
                client: ApiClient::new(marathon.0, marathon.1)?,
            },
        })
    }

    pub fn kind(&self) -> ClusterKind {
        match self {
            Endpoints::Storm { .. } => ClusterKind::Storm,
            Endpoints::Mesos { .. } => ClusterKind::Mesos,
            Endpoints::Kubernetes(_) => ClusterKind::Kubernetes,
        }
    }
}

/// A target's capacity at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Capacity {
    Storm(StormCapacity),
    Mesos(MesosCapacity),
    Kubernetes(KubeCapacity),
}

impl Capacity {
    /// Every topology (every app) whole.
    pub fn is_whole(&self) -> bool {
        match self {
            Capacity::Storm(c) => c.is_whole(),
            Capacity::Mesos(c) => c.is_whole(),
            Capacity::Kubernetes(c) => c.is_whole(),
        }
    }

    /// Whether one application (a topology name or id, a Marathon app id with or without its
    /// leading `/`) is whole; `None` when the scheduler does not know it.
    pub fn application_whole(&self, name: &str) -> Option<bool> {
        match self {
            Capacity::Storm(c) => c.topology(name).map(TopologyCapacity::is_whole),
            Capacity::Mesos(c) => c.app(name).map(AppCapacity::is_whole),
            Capacity::Kubernetes(c) => c.workload(name).map(WorkloadCapacity::is_whole),
        }
    }

    /// The hosts running an application's workers or tasks, sorted.
    pub fn hosts_running(&self, name: &str) -> Vec<&str> {
        match self {
            Capacity::Storm(c) => c.hosts_running(name),
            Capacity::Mesos(c) => c.hosts_running(name),
            Capacity::Kubernetes(c) => c.hosts_running(name),
        }
    }

    /// The applications with work on `host`.
    pub fn applications_on(&self, host: &str) -> Vec<&str> {
        match self {
            Capacity::Storm(c) => c.topologies_on(host),
            Capacity::Mesos(c) => c.apps_on(host),
            Capacity::Kubernetes(c) => c.workloads_on(host),
        }
    }

    /// Live nodes: Storm supervisors alive, Mesos agents active.
    pub fn nodes_alive(&self) -> u32 {
        match self {
            Capacity::Storm(c) => c.supervisors_alive,
            Capacity::Mesos(c) => c.agents_active,
            Capacity::Kubernetes(c) => c.nodes_ready,
        }
    }

    /// Hosts of the live nodes (Storm supervisors, active Mesos agents, Ready schedulable
    /// Kubernetes nodes).
    pub fn live_hosts(&self) -> Vec<&str> {
        let hosts = match self {
            Capacity::Storm(s) => &s.supervisor_hosts,
            Capacity::Mesos(m) => &m.agent_hosts,
            Capacity::Kubernetes(k) => &k.node_names,
        };
        hosts.iter().map(String::as_str).collect()
    }
}

/// [`probe`] from async code: the Kubernetes API is read on the runtime (its client is async),
/// the HTTP APIs on a blocking thread, so a hanging API delays nothing but itself.
pub async fn probe_async(endpoints: &Endpoints, deadline: Duration) -> Result<Capacity, String> {
    if let Endpoints::Kubernetes(api) = endpoints {
        return kube::capacity(api, deadline)
            .await
            .map(Capacity::Kubernetes)
            .map_err(|e| e.to_string());
    }
    let e = endpoints.clone();
    tokio::task::spawn_blocking(move || probe(&e, deadline))
        .await
        .map_err(|e| format!("the probe failed: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()))
}

/// Fetch a target's capacity: every endpoint it needs, concurrently, all within `deadline`
/// (each request also within its own timeout; retries stop at the deadline).
pub fn probe(endpoints: &Endpoints, deadline: Duration) -> Result<Capacity, HealthError> {
    let until = Instant::now() + deadline;
    let _span = tracing::debug_span!("health_probe", kind = ?endpoints.kind()).entered();
    match endpoints {
        Endpoints::Storm { storm_ui } => storm_ui.capacity(until).map(Capacity::Storm),
        Endpoints::Mesos {
            mesos_master,
            marathon,
        } => mesos::capacity(mesos_master, marathon, until).map(Capacity::Mesos),
        // The Kubernetes client is async: see probe_async.
        Endpoints::Kubernetes(api) => Err(HealthError::Transport {
            url: api.cluster.clone(),
            reason: "the Kubernetes API is read with probe_async".into(),
        }),
    }
}

/// One line about a target's capacity as its health endpoints report it.
pub fn summary(c: &Capacity) -> String {
    match c {
        Capacity::Storm(s) => format!(
            "{} supervisors alive, {} of {} slots used; {}{}",
            s.supervisors_alive,
            s.slots_used,
            s.slots_total,
            s.topologies
                .iter()
                .map(|t| format!(
                    "{} {} ({}/{} workers)",
                    t.name,
                    if t.is_whole() { "whole" } else { "NOT whole" },
                    t.workers_assigned,
                    t.workers_configured.map_or("?".into(), |w| w.to_string())
                ))
                .collect::<Vec<_>>()
                .join(", "),
            s.gone
                .iter()
                .map(|id| format!("; {id} gone (listed, then its detail answered 404)"))
                .collect::<String>()
        ),
        Capacity::Mesos(m) => format!(
            "{} agents active, {} unreachable; {}",
            m.agents_active,
            m.agents_unreachable,
            m.apps
                .iter()
                .map(|a| format!(
                    "{} {} ({}/{} tasks)",
                    a.id,
                    if a.is_whole() { "whole" } else { "NOT whole" },
                    a.tasks_running,
                    a.instances
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Capacity::Kubernetes(k) => format!(
            "{} nodes Ready, {} not Ready; {}",
            k.nodes_ready,
            k.nodes_not_ready,
            k.workloads
                .iter()
                .map(|w| format!(
                    "{} {} ({}/{} ready)",
                    w.name,
                    if w.is_whole() { "whole" } else { "NOT whole" },
                    w.ready,
                    w.desired
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
