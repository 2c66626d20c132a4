//! The Mesos master's HTTP endpoints (https://mesos.apache.org/documentation/latest/endpoints/;
//! source: apache/mesos `src/master/http.cpp`, `json(JSON::ObjectWriter*, const Summary<Slave>&)`
//! and the `/state` handler) and Marathon's REST API
//! (https://mesosphere.github.io/marathon/api-console/index.html; source: mesosphere/marathon
//! `docs/docs/rest-api/`): the typed answers spotdrill reads, and the capacity built from them.
//!
//! Only the fields needed are declared; unknown fields are ignored.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::client::{ApiClient, HealthError};
use super::hosts::same_host;
use super::storm::join;

/// `GET /master/slaves` (also the `slaves` of `/master/state` and `/master/state-summary`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Agents {
    pub slaves: Vec<Agent>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    /// False while the master has lost its connection (before it is marked unreachable).
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub used_resources: Resources,
}

fn yes() -> bool {
    true
}

/// Scalar resources (`ports` and custom resources are ignored).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct Resources {
    #[serde(default)]
    pub cpus: f64,
    /// MB.
    #[serde(default)]
    pub mem: f64,
}

/// `GET /master/state`, the part spotdrill reads.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct MasterState {
    /// Mesos writes the number of unreachable agents; the lab (and some proxies) a list of
    /// `{"id": …}` objects.
    #[serde(default)]
    pub unreachable_slaves: Option<Unreachable>,
    pub deactivated_slaves: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Unreachable {
    Count(u32),
    Agents(Vec<UnreachableAgent>),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct UnreachableAgent {
    pub id: String,
}

impl MasterState {
    pub fn unreachable_count(&self) -> u32 {
        match &self.unreachable_slaves {
            None => 0,
            Some(Unreachable::Count(n)) => *n,
            Some(Unreachable::Agents(list)) => list.len() as u32,
        }
    }
}

/// `GET /v2/apps?embed=apps.counts`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Apps {
    pub apps: Vec<App>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    /// `/group/name`.
    pub id: String,
    pub instances: u32,
    pub tasks_running: Option<u32>,
    pub tasks_healthy: Option<u32>,
    pub tasks_staged: Option<u32>,
    pub tasks_unhealthy: Option<u32>,
    #[serde(default)]
    pub deployments: Vec<DeploymentRef>,
    #[serde(default)]
    pub health_checks: Vec<serde_json::Value>,
    #[serde(default)]
    pub unreachable_strategy: Option<UnreachableStrategy>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DeploymentRef {
    pub id: String,
}

/// When Marathon replaces a task on an unreachable agent (`inactiveAfterSeconds`) and forgets
/// it (`expungeAfterSeconds`); `"disabled"`: never, the task waits for its agent.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UnreachableStrategy {
    Enabled {
        #[serde(rename = "inactiveAfterSeconds")]
        inactive_after_seconds: Option<u64>,
        #[serde(rename = "expungeAfterSeconds")]
        expunge_after_seconds: Option<u64>,
    },
    /// The string `"disabled"` (any other string is kept as written).
    Disabled(String),
}

/// `GET /v2/tasks`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Tasks {
    pub tasks: Vec<Task>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub host: String,
    /// `TASK_RUNNING`, `TASK_STAGING`, `TASK_UNREACHABLE`, … (absent in old versions).
    pub state: Option<String>,
    pub slave_id: Option<String>,
}

/// Task states that mean its agent is gone.
const GONE: &[&str] = &[
    "TASK_UNREACHABLE",
    "TASK_LOST",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
    "TASK_DROPPED",
];

/// Typed calls to one Mesos master.
#[derive(Clone, Debug)]
pub struct MesosMaster {
    pub client: ApiClient,
}

impl MesosMaster {
    pub fn agents(&self, until: Instant) -> Result<Agents, HealthError> {
        self.client.get_json("/master/slaves", until)
    }

    pub fn state(&self, until: Instant) -> Result<MasterState, HealthError> {
        self.client.get_json("/master/state", until)
    }
}

/// Typed calls to one Marathon.
#[derive(Clone, Debug)]
pub struct Marathon {
    pub client: ApiClient,
}

impl Marathon {
    pub fn apps(&self, until: Instant) -> Result<Apps, HealthError> {
        self.client.get_json("/v2/apps?embed=apps.counts", until)
    }

    pub fn tasks(&self, until: Instant) -> Result<Tasks, HealthError> {
        self.client.get_json("/v2/tasks", until)
    }
}

/// A Mesos cluster's capacity (with its Marathon apps) at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MesosCapacity {
    pub agents_active: u32,
    /// Registered but disconnected (`active: false`), not yet unreachable.
    pub agents_inactive: u32,
    pub agents_unreachable: u32,
    /// Host names of the active agents.
    pub agent_hosts: Vec<String>,
    /// Over active agents.
    pub cpus_total: f64,
    pub cpus_used: f64,
    /// MB, over active agents.
    pub mem_total: f64,
    pub mem_used: f64,
    pub apps: Vec<AppCapacity>,
}

/// One Marathon app's share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppCapacity {
    /// As Marathon writes it (`/live-aggregator`).
    pub id: String,
    pub instances: u32,
    pub tasks_running: u32,
    pub tasks_healthy: u32,
    pub tasks_staged: u32,
    pub tasks_unhealthy: u32,
    pub has_health_checks: bool,
    pub deployments_running: u32,
    /// Tasks on a host with no active agent, or in a state that says the agent is gone.
    pub tasks_on_dead_hosts: u32,
    /// Distinct hosts of its tasks, sorted.
    pub hosts: Vec<String>,
    pub unreachable_strategy: Option<UnreachableStrategy>,
}

impl AppCapacity {
    /// Back (DESIGN.md): tasksRunning ≥ instances (and tasksHealthy ≥ instances when it has
    /// health checks), no deployment running, no task on a dead host.
    pub fn is_whole(&self) -> bool {
        self.tasks_running >= self.instances
            && (!self.has_health_checks || self.tasks_healthy >= self.instances)
            && self.deployments_running == 0
            && self.tasks_on_dead_hosts == 0
    }
}

impl MesosCapacity {
    /// The capacity from the answers of the Mesos master and Marathon.
    pub fn from_api(
        agents: &Agents,
        state: &MasterState,
        apps: &Apps,
        tasks: &Tasks,
    ) -> MesosCapacity {
        let active: Vec<&Agent> = agents.slaves.iter().filter(|a| a.active).collect();
        let live_ids: BTreeSet<&str> = active.iter().map(|a| a.id.as_str()).collect();
        let live = |t: &Task| {
            let gone = t.state.as_deref().is_some_and(|s| GONE.contains(&s));
            let on_live_agent = match &t.slave_id {
                Some(id) => live_ids.contains(id.as_str()),
                None => active.iter().any(|a| same_host(&a.hostname, &t.host)),
            };
            !gone && on_live_agent
        };
        let apps = apps
            .apps
            .iter()
            .map(|app| {
                let own: Vec<&Task> = tasks.tasks.iter().filter(|t| t.app_id == app.id).collect();
                let hosts: BTreeSet<String> = own.iter().map(|t| t.host.clone()).collect();
                let running = own
                    .iter()
                    .filter(|t| t.state.as_deref().is_none_or(|s| s == "TASK_RUNNING"))
                    .count() as u32;
                AppCapacity {
                    id: app.id.clone(),
                    instances: app.instances,
                    tasks_running: app.tasks_running.unwrap_or(running),
                    tasks_healthy: app.tasks_healthy.unwrap_or(0),
                    tasks_staged: app.tasks_staged.unwrap_or(0),
                    tasks_unhealthy: app.tasks_unhealthy.unwrap_or(0),
                    has_health_checks: !app.health_checks.is_empty(),
                    deployments_running: app.deployments.len() as u32,
                    tasks_on_dead_hosts: own.iter().filter(|t| !live(t)).count() as u32,
                    hosts: hosts.into_iter().collect(),
                    unreachable_strategy: app.unreachable_strategy.clone(),
                }
            })
            .collect();
        MesosCapacity {
            agents_active: active.len() as u32,
            agents_inactive: (agents.slaves.len() - active.len()) as u32,
            agents_unreachable: state.unreachable_count(),
            agent_hosts: active.iter().map(|a| a.hostname.clone()).collect(),
            cpus_total: active.iter().map(|a| a.resources.cpus).sum(),
            cpus_used: active.iter().map(|a| a.used_resources.cpus).sum(),
            mem_total: active.iter().map(|a| a.resources.mem).sum(),
            mem_used: active.iter().map(|a| a.used_resources.mem).sum(),
            apps,
        }
    }

    /// Whole: every app whole.
    pub fn is_whole(&self) -> bool {
        self.apps.iter().all(AppCapacity::is_whole)
    }

    /// An app by id, with or without the leading `/` (`live-aggregator` finds
    /// `/live-aggregator`).
    pub fn app(&self, id: &str) -> Option<&AppCapacity> {
        let want = id.trim_start_matches('/');
        self.apps
            .iter()
            .find(|a| a.id.trim_start_matches('/') == want)
    }

    /// The hosts that run an app's tasks, sorted.
    pub fn hosts_running(&self, app: &str) -> Vec<&str> {
        self.app(app)
            .map(|a| a.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The apps (by id) with a task on `host` (matched by [`same_host`]).
    pub fn apps_on(&self, host: &str) -> Vec<&str> {
        self.apps
            .iter()
            .filter(|a| a.hosts.iter().any(|h| same_host(h, host)))
            .map(|a| a.id.as_str())
            .collect()
    }
}

/// Both APIs of a Mesos target, fetched at once.
pub fn capacity(
    master: &MesosMaster,
    marathon: &Marathon,
    until: Instant,
) -> Result<MesosCapacity, HealthError> {
    let (agents, state, apps, tasks) = std::thread::scope(|s| {
        let agents = s.spawn(|| master.agents(until));
        let state = s.spawn(|| master.state(until));
        let apps = s.spawn(|| marathon.apps(until));
        let tasks = marathon.tasks(until);
        (join(agents), join(state), join(apps), tasks)
    });
    Ok(MesosCapacity::from_api(&agents?, &state?, &apps?, &tasks?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_slaves_is_a_count_in_mesos_and_a_list_in_the_lab() {
        let real: MasterState =
            serde_json::from_str(r#"{"unreachable_slaves": 2, "deactivated_slaves": 1}"#).unwrap();
        assert_eq!(real.unreachable_count(), 2);
        let lab: MasterState =
            serde_json::from_str(r#"{"unreachable_slaves": [{"id": "m-3"}]}"#).unwrap();
        assert_eq!(lab.unreachable_count(), 1);
        let old: MasterState = serde_json::from_str("{}").unwrap();
        assert_eq!(old.unreachable_count(), 0);
    }

    #[test]
    fn unreachable_strategy_is_an_object_or_disabled() {
        let enabled: UnreachableStrategy =
            serde_json::from_str(r#"{"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600}"#)
                .unwrap();
        assert_eq!(
            enabled,
            UnreachableStrategy::Enabled {
                inactive_after_seconds: Some(300),
                expunge_after_seconds: Some(600)
            }
        );
        let disabled: UnreachableStrategy = serde_json::from_str(r#""disabled""#).unwrap();
        assert_eq!(disabled, UnreachableStrategy::Disabled("disabled".into()));
    }
}
