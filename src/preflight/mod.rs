//! The preflight, one for `plan` and `run`: what a run will act on and whether it can (nodes
//! through each target's provider, permissions, Kafka, health endpoints and what runs where),
//! what each step would terminate, which guards the ladder would breach, and how long it takes.
//! `spotdrill plan` renders it ([`Preflight`] is its `--json` contract); `run` discovers and
//! checks permissions with [`nodes::preview_nodes`] and uses the same constants and guards.

mod checks;
mod estimate;
pub mod guards;
pub mod markets;
pub mod nodes;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::nodes::Node;
use crate::nodes::aws::AwsSettings;
use crate::observe::health::Capacity;
use crate::plan::{Observe, Plan};
pub use checks::health_endpoints;
pub use estimate::{Estimate, d, plural};

/// How long a lab run waits at most for its workloads' first commits before the baseline.
pub const LAB_WARMUP: Duration = Duration::from_secs(60);
/// How long a lab's workloads usually take to commit for the first time.
const LAB_WARMUP_TYPICAL: Duration = Duration::from_secs(5);
/// Samples a typical step takes beyond `settle` and `hold`.
const TYPICAL_EXTRA_SAMPLES: u32 = 3;
/// How long one health endpoint may take to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long reading a target's whole capacity may take (several requests, one per topology).
const CAPACITY_TIMEOUT: Duration = Duration::from_secs(15);

/// After a target's last step, `run` waits this long at most for its capacity to come back.
pub fn capacity_tail(observe: &Observe) -> Duration {
    observe.cooldown.min(Duration::from_secs(120))
}

/// Everything the preflight found, for `plan` to render.
pub fn run(plan: &Plan, plan_path: &Path, aws: &AwsSettings) -> anyhow::Result<Preflight> {
    let _span = tracing::info_span!("preflight", plan = %plan.name).entered();
    let discovered = nodes::discover_all(plan, aws)?;
    let plan_dir = plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let capacities = checks::capacities(plan, &plan_dir);
    let mut targets: Vec<TargetOut> = plan
        .targets
        .iter()
        .map(|(name, target)| {
            nodes::preview_target(name, target, discovered.get(name), capacities.get(name))
        })
        .collect();
    let (kafka, health) = checks::reach(plan, &plan_dir);
    let lag_sources = checks::lag_sources(plan, &plan_dir);
    for (i, h) in health {
        targets[i].health.push(h);
    }
    let estimate = Estimate::of(plan);
    Ok(Preflight {
        plan: plan.name.clone(),
        targets,
        kafka: match &kafka {
            Ok(text) => text.clone(),
            Err(e) => format!("error: {e}"),
        },
        worst_case_s: estimate.worst.as_secs(),
        typical_s: estimate.typical.as_secs(),
        kafka_error: kafka.err(),
        lag_sources,
        estimate,
    })
}

impl Preflight {
    /// Why a target's nodes cannot be acted on: discovery failed, a permission is missing, or
    /// the AWS account cannot be told (`run` refuses then).
    pub fn node_errors(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter_map(|t| {
                let unknown = t.aws.as_ref().and_then(|p| p.unknown_because.as_ref());
                t.error
                    .as_ref()
                    .or(t.permissions.as_ref().filter(|p| p.starts_with("error")))
                    .or(unknown)
                    .map(|e| format!("{}: {e}", t.name))
            })
            .chain(self.lag_sources.iter().filter_map(|l| {
                let e = l.setup_error.as_ref()?;
                Some(format!("the lag of application {}: {e}", l.application))
            }))
            .collect()
    }
}

// ---- the preflight as data (the `--json` contract, DESIGN.md "Machine-readable outputs") ------

#[derive(Debug, Serialize)]
pub struct Preflight {
    pub plan: String,
    pub targets: Vec<TargetOut>,
    /// `lab (started by run)`, `HOSTS reachable (…)`, or `error: WHY`.
    pub kafka: String,
    pub worst_case_s: u64,
    pub typical_s: u64,
    /// Why Kafka cannot be reached, if it cannot.
    #[serde(skip)]
    pub kafka_error: Option<String>,
    /// The applications that take their lag from Prometheus, each asked once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lag_sources: Vec<LagSourceOut>,
    /// How the duration was estimated.
    #[serde(skip)]
    pub estimate: Estimate,
}

/// An application's PromQL lag source as the preflight found it.
#[derive(Clone, Debug, Serialize)]
pub struct LagSourceOut {
    pub application: String,
    pub prometheus: String,
    pub query: String,
    /// The lag the query gives now, in seconds.
    pub lag_seconds: Option<f64>,
    /// Why a run would read a gap now (unreachable, refused, no series, stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why a run would refuse to start (a secret missing from the environment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_error: Option<String>,
}

impl std::fmt::Display for LagSourceOut {
    /// `APP: URL answers: 1.2 s of lag now`, a warning, or an error (a missing secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (app, url) = (&self.application, &self.prometheus);
        match (&self.lag_seconds, &self.error, &self.setup_error) {
            (_, _, Some(e)) => write!(f, "error: {app}: {e}"),
            (Some(v), _, _) => write!(f, "{app}: {url} answers: {v:.1} s of lag now"),
            (None, e, None) => write!(
                f,
                "warning: {app}: {url}: {} (a run reads gaps)",
                e.as_deref().unwrap_or("no answer")
            ),
        }
    }
}

/// A search ladder in `plan`: its bounds and how many steps it takes at most.
#[derive(Clone, Debug, Serialize)]
pub struct SearchOut {
    pub from: u32,
    pub max: u32,
    /// The most steps the search takes, over every possible limit.
    pub worst_case_steps: usize,
    /// The steps a full ladder from..=max would take.
    pub full_ladder_steps: usize,
}

impl SearchOut {
    pub fn of(s: crate::analysis::Search) -> SearchOut {
        SearchOut {
            from: s.from,
            max: s.max,
            worst_case_steps: s.worst_case_steps(),
            full_ladder_steps: (s.max.saturating_sub(s.from) as usize) + 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TargetOut {
    pub name: String,
    pub kind: String,
    pub provider: &'static str,
    /// AWS: where the target acts (`account` from STS GetCallerIdentity, `region`, `endpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<crate::nodes::account::Place>,
    /// Why the nodes could not be discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to keep in mind about the nodes shown (a lab's are predicted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// AWS: the TerminateInstances DryRun check, `allowed (…)` or `error: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    /// AWS: how long discovery took (every page of DescribeInstances), in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_ms: Option<u64>,
    pub nodes: Vec<NodeOut>,
    /// AWS: the spot markets (instance type × zone) the nodes sit in, largest first (their
    /// history: `spotdrill markets PLAN`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub markets: Vec<crate::analysis::markets::Market>,
    /// AWS: instances the selector matched that are not eligible (on-demand, not running).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<ExcludedOut>,
    /// The ladder is a search: `steps` preview its escalation (every step passing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchOut>,
    pub steps: Vec<StepOut>,
    pub health: Vec<HealthOut>,
    /// What the health endpoints report (URL endpoints only; a lab's start with `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Why `capacity` is missing when the health endpoints were probed and gave none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_unknown: Option<String>,
    pub guard_warnings: Vec<String>,
    /// Where steps do not start from full capacity (nothing reports capacity back), why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NodeOut {
    pub id: String,
    pub host: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub lifecycle: &'static str,
    /// AWS: the private IP address (`host` is the private DNS name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// AWS: the selector's tags as the instance carries them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct ExcludedOut {
    pub id: String,
    pub reason: String,
}

impl From<&Node> for NodeOut {
    fn from(n: &Node) -> Self {
        NodeOut {
            id: n.id.clone(),
            host: n.host.clone(),
            zone: n.zone.clone(),
            instance_type: n.instance_type.clone(),
            lifecycle: n.lifecycle.as_str(),
            private_ip: None,
            tags: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StepOut {
    pub terminations: u32,
    pub would_terminate: Vec<String>,
    /// A market rung: the market it would take whole now (`c5.2xlarge/us-east-1a`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market: Option<crate::journal::MarketRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HealthOut {
    /// `storm_ui`, `mesos_master` or `marathon`.
    pub endpoint: &'static str,
    /// The URL, or `lab`.
    pub url: String,
    /// `lab`, `reachable`, `unreachable` or `not checked`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
