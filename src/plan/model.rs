//! The validated plan: the only plan type the rest of spotdrill sees. Every value here has been
//! parsed and checked, so later code never re-checks input.

use std::time::Duration;

use indexmap::IndexMap;

use crate::analysis::{Search, Verdict};
pub use crate::plan::spec::{MarketChoice, MarketRung, Rung};

pub use super::spec::{
    ClusterKind, Isolation, KubeTerminate, Provider, SaslMechanism, SecurityProtocol, Selection,
    TimestampType,
};

#[derive(Clone, Debug)]
pub struct Plan {
    pub version: u32,
    pub name: String,
    pub description: Option<String>,
    pub kafka: Kafka,
    pub lab: Option<Lab>,
    pub applications: IndexMap<String, Application>,
    pub targets: IndexMap<String, Target>,
    pub observe: Observe,
    /// The team-wide lock table, when the plan names one (else lock files on this machine).
    pub locks: Option<LockTable>,
}

/// A DynamoDB table of locks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockTable {
    pub table: String,
    pub region: Option<String>,
}

/// Whether `name` is a DynamoDB table name: 3–255 characters of `a-z A-Z 0-9 _ - .`.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if (3..=255).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.`)"
        ))
    }
}

#[derive(Clone, Debug)]
pub struct Kafka {
    pub brokers: Brokers,
    pub security: Option<Security>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Brokers {
    /// The embedded lab's broker.
    Lab,
    /// Bootstrap brokers given by address.
    External(Vec<BrokerAddr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Clone, Debug)]
pub struct Security {
    pub protocol: SecurityProtocol,
    pub sasl: Option<Sasl>,
    pub ca_file: Option<String>,
}

/// SASL credentials: the password is read from `password_env` at run time, never stored here.
#[derive(Clone, Debug)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password_env: String,
}

#[derive(Clone, Debug)]
pub struct Lab {
    pub topics: Vec<LabTopic>,
    pub clusters: IndexMap<String, LabCluster>,
}

#[derive(Clone, Debug)]
pub struct LabTopic {
    pub name: String,
    pub partitions: u32,
    /// Messages per second over all partitions.
    pub rate: f64,
    pub message_bytes: u32,
    pub timestamp_type: TimestampType,
}

#[derive(Clone, Debug)]
pub struct LabCluster {
    pub kind: ClusterKind,
    pub nodes: u32,
    pub slots_per_node: u32,
    pub detection_delay: Duration,
    /// `None` when lost nodes are not replaced.
    pub replacement_delay: Option<Duration>,
    pub workloads: IndexMap<String, Workload>,
}

impl LabCluster {
    /// Saturating: validation bounds nodes and slots, but this also runs on what it refuses.
    pub fn slots(&self) -> u32 {
        self.nodes.saturating_mul(self.slots_per_node)
    }

    /// Saturating, like [`LabCluster::slots`].
    pub fn workers(&self) -> u32 {
        self.workloads
            .values()
            .fold(0u32, |sum, w| sum.saturating_add(w.workers))
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub workers: u32,
    pub group: String,
    pub topics: Vec<String>,
    pub cost_per_message: Duration,
    pub commit_interval: Duration,
    /// Lab fault: re-placed workers stop consuming.
    pub stall_after_restart: bool,
}

#[derive(Clone, Debug)]
pub struct Application {
    pub group: String,
    pub topics: Vec<String>,
    pub max_lag: Duration,
    pub max_recovery: Duration,
    pub abort_lag: Option<Duration>,
    /// The topology name, Marathon app id or Kubernetes workload (`namespace/name`) the health
    /// probes know it by.
    pub scheduled_as: String,
    /// `Deployment` or `StatefulSet` where the plan named the workload's kind
    /// (`scheduled_as: {deployment: …}`): only a kubernetes target may judge it.
    pub workload_kind: Option<&'static str>,
    /// How its consumers read transactional topics (and so how its lag is measured).
    pub isolation: Isolation,
    /// Lag from a PromQL query instead of the group's commits.
    pub lag: Option<PromLag>,
}

impl Application {
    /// The name its samples go by: its consumer group, or for lag from PromQL
    /// `prometheus:APPLICATION` (never measured in Kafka, never shared).
    pub fn lag_key(&self, name: &str) -> String {
        match &self.lag {
            Some(_) => format!("prometheus:{name}"),
            None => self.group.clone(),
        }
    }
}

/// An application's lag from Prometheus (`lag: {prometheus, query, unit}`).
#[derive(Clone, Debug, PartialEq)]
pub struct PromLag {
    /// Without a trailing slash.
    pub url: String,
    pub query: String,
    pub unit: crate::plan::spec::LagUnit,
    pub auth: HealthAuth,
    pub max_age: Duration,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub kind: ClusterKind,
    pub nodes: NodeSelector,
    pub health: Health,
    /// Only nodes running this topology or app (`running:`).
    pub running: Option<String>,
    pub applications: Vec<String>,
    /// The listed steps; empty when the ladder is a search.
    pub ladder: Vec<Rung>,
    /// `ladder: {search: {from, max}}`: the steps come from [`Search::next`] as the run goes.
    pub search: Option<Search>,
    pub selection: Selection,
    pub seed: Option<u64>,
    pub required_tolerance: u32,
    pub guards: Guards,
    pub cumulative: bool,
    pub safety_multiple: f64,
}

impl Target {
    /// The steps `plan` previews and its guard warnings walk: the listed ones, or for a search
    /// the escalation every passing step would take (1, 2, 4 … max). A market rung counts
    /// `market` nodes (the largest market's size where discovery told it, else 0).
    pub fn preview_rungs(&self, market: u32) -> Vec<u32> {
        let Some(search) = self.search else {
            return self
                .ladder
                .iter()
                .map(|r| r.count().unwrap_or(market))
                .collect();
        };
        let mut results = Vec::new();
        while let Some(n) = search.next(&results) {
            results.push((n, Verdict::Pass));
        }
        results.into_iter().map(|r| r.0).collect()
    }

    /// The most steps a run of this target can take (a search's worst case).
    pub fn worst_case_steps(&self) -> usize {
        self.search
            .map_or(self.ladder.len(), |s| s.worst_case_steps())
    }

    /// The most nodes a run of this target can terminate over all its steps (for a search, over
    /// every possible limit), widened so no ladder overflows it; a market rung is not counted
    /// (its size is known only when its step runs: see [`Target::has_market_rung`]).
    pub fn most_terminations(&self) -> u64 {
        let Some(search) = self.search else {
            return self.numeric_rungs().map(u64::from).sum();
        };
        (search.from.saturating_sub(1)..=search.max)
            .map(|limit| {
                let mut results = Vec::new();
                while let Some(n) = search.next(&results) {
                    let v = if n <= limit {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    };
                    results.push((n, v));
                }
                results.iter().map(|r| u64::from(r.0)).sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    }

    /// The largest step the ladder may take (of those whose count the plan says).
    pub fn largest_rung(&self) -> u32 {
        self.search
            .map_or_else(|| self.numeric_rungs().max().unwrap_or(0), |s| s.max)
    }

    /// The listed rungs whose count the plan says.
    pub fn numeric_rungs(&self) -> impl Iterator<Item = u32> + '_ {
        self.ladder.iter().filter_map(|r| r.count())
    }

    /// Whether a listed rung takes a whole spot market (`{market: largest}`).
    pub fn has_market_rung(&self) -> bool {
        self.ladder.iter().any(|r| r.count().is_none())
    }

    /// Whether every step starts from full capacity: cooldown can only wait for capacity that
    /// something reports back: health endpoints, or a provider that replaces what it
    /// terminates (a lab cluster, an Auto Scaling group with `replace: true`). `aws-ec2` and
    /// `aws-fis` without health endpoints start each step from the nodes the steps before left
    /// (as `cumulative` says outright).
    pub fn steps_start_full(&self) -> bool {
        let h = &self.health;
        let probed = h.storm_ui.is_some() || h.mesos_master.is_some() || h.marathon.is_some();
        let replaces = match &self.nodes {
            NodeSelector::AwsAsg { replace, .. } => *replace,
            n => n.on_lab(),
        };
        !self.cumulative && (probed || replaces)
    }

    /// What `plan` and the report say where steps do not start from full capacity and the plan
    /// did not say `cumulative`.
    pub fn capacity_note(&self) -> Option<String> {
        if self.cumulative || self.steps_start_full() {
            return None;
        }
        Some(format!(
            "steps do not start from full capacity: {} does not replace what it terminates and \
             no health endpoint says when capacity is back, so each step chooses among the nodes \
             the steps before left (a replacement is used once discovery returns it)",
            self.nodes.provider().name()
        ))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeSelector {
    Lab {
        cluster: String,
        /// Time between SIGTERM and SIGKILL; zero kills at once.
        notice: Duration,
    },
    AwsEc2 {
        region: Option<String>,
        tags: IndexMap<String, String>,
        availability_zones: Vec<String>,
        instance_types: Vec<String>,
        spot_fleet_request: Option<String>,
        allow_on_demand: bool,
    },
    AwsAsg {
        region: Option<String>,
        group: String,
        replace: bool,
        allow_on_demand: bool,
    },
    AwsFis {
        region: Option<String>,
        tags: IndexMap<String, String>,
        availability_zones: Vec<String>,
        instance_types: Vec<String>,
        notice: Duration,
        role_arn: String,
        keep_templates: bool,
        allow_on_demand: bool,
    },
    /// Kubernetes Node objects (src/nodes/kubernetes.rs).
    Kubernetes(KubeSelector),
}

/// `provider: kubernetes`: which Node objects, through which kubeconfig context, lost how.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeSelector {
    /// Labels that must all match.
    pub labels: IndexMap<String, String>,
    /// The lab cluster (`kind: kubernetes`) whose Kubernetes API to use instead of a kubeconfig.
    pub lab_cluster: Option<String>,
    /// The kubeconfig context; `None`: `--context`, else the current one, else in-cluster.
    pub context: Option<String>,
    pub terminate: KubeTerminate,
    /// For `terminate: aws-ec2`, and for a drain that also terminates AWS instances.
    pub region: Option<String>,
    /// How long PDB-blocked evictions are retried before a drain fails.
    pub drain_timeout: Duration,
    pub allow_on_demand: bool,
    /// For `terminate: aws-fis` (and only then): how the interruption is sent.
    pub interruption: Option<KubeInterruption>,
}

/// A Kubernetes target's FIS spot interruption (the fields of provider aws-fis).
#[derive(Clone, Debug, PartialEq)]
pub struct KubeInterruption {
    /// `durationBeforeInterruption` (2m–15m).
    pub notice: Duration,
    pub role_arn: String,
    pub keep_templates: bool,
}

impl NodeSelector {
    /// Whether the nodes are a lab cluster's (started by `run`, in its directory).
    pub fn on_lab(&self) -> bool {
        self.lab_cluster().is_some()
    }

    /// The lab cluster whose nodes these are, if any.
    pub fn lab_cluster(&self) -> Option<&str> {
        match self {
            NodeSelector::Lab { cluster, .. } => Some(cluster),
            NodeSelector::Kubernetes(k) => k.lab_cluster.as_deref(),
            _ => None,
        }
    }

    /// Whether on-demand nodes may be terminated (lab nodes are always eligible).
    pub fn allow_on_demand(&self) -> bool {
        match self {
            NodeSelector::Lab { .. } => true,
            NodeSelector::AwsEc2 {
                allow_on_demand, ..
            }
            | NodeSelector::AwsAsg {
                allow_on_demand, ..
            }
            | NodeSelector::AwsFis {
                allow_on_demand, ..
            } => *allow_on_demand,
            NodeSelector::Kubernetes(k) => k.allow_on_demand,
        }
    }

    pub fn provider(&self) -> Provider {
        match self {
            NodeSelector::Lab { .. } => Provider::Lab,
            NodeSelector::AwsEc2 { .. } => Provider::AwsEc2,
            NodeSelector::AwsAsg { .. } => Provider::AwsAsg,
            NodeSelector::AwsFis { .. } => Provider::AwsFis,
            NodeSelector::Kubernetes(_) => Provider::Kubernetes,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Lab,
    Url(String),
}

#[derive(Clone, Debug, Default)]
pub struct Health {
    pub storm_ui: Option<Endpoint>,
    pub mesos_master: Option<Endpoint>,
    pub marathon: Option<Endpoint>,
    pub auth: HealthAuth,
    /// As written (relative to the plan file unless absolute).
    pub ca_file: Option<String>,
    /// Per request; `None`: the client's default.
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
}

impl Health {
    /// Whether the target's capacity can be probed: storm with its UI, mesos with its master
    /// and Marathon.
    pub fn configured(&self, kind: ClusterKind) -> bool {
        match kind {
            ClusterKind::Storm => self.storm_ui.is_some(),
            ClusterKind::Mesos => self.mesos_master.is_some() && self.marathon.is_some(),
            // Capacity comes from the Kubernetes API through the provider, not from `health:`.
            ClusterKind::Kubernetes => false,
        }
    }
}

/// Credentials for the health endpoints, named by environment variable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HealthAuth {
    #[default]
    None,
    Basic {
        username: String,
        password_env: String,
    },
    Bearer {
        token_env: String,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Guards {
    pub max_terminations: Option<u32>,
    pub min_healthy: Option<MinHealthy>,
    pub allowed_hours: Option<HourWindow>,
    pub max_per_topology: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinHealthy {
    Count(u32),
    Percent(f64),
}

/// UTC minutes since midnight; `start > end` wraps past midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourWindow {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl HourWindow {
    /// Whether a minute of the UTC day lies inside the window (which may wrap past midnight).
    pub fn contains(&self, minute: u16) -> bool {
        if self.start_minute <= self.end_minute {
            minute >= self.start_minute && minute < self.end_minute
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }

    /// The minute of the UTC day now.
    pub fn now_minute() -> u16 {
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            / 60
            % (24 * 60)) as u16
    }
}

#[derive(Clone, Debug)]
pub struct Observe {
    pub sample_interval: Duration,
    pub baseline: Duration,
    pub hold: Duration,
    pub timeout: Duration,
    pub cooldown: Duration,
    pub settle: Duration,
    pub band_margin: f64,
    pub band_floor: Duration,
}

impl Plan {
    /// The steps of all targets, for a rough duration estimate.
    pub fn step_count(&self) -> usize {
        self.targets.values().map(Target::worst_case_steps).sum()
    }

    /// The most nodes the plan would terminate if every step ran (the confirmation's figure),
    /// widened so no ladder overflows it.
    pub fn most_terminations(&self) -> u64 {
        self.targets
            .values()
            .map(Target::most_terminations)
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::HourWindow;

    #[test]
    fn hour_windows_include_the_start_exclude_the_end_and_wrap_past_midnight() {
        let office = HourWindow {
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        };
        assert!(office.contains(9 * 60) && office.contains(16 * 60 + 59));
        assert!(!office.contains(17 * 60) && !office.contains(8 * 60 + 59));
        let night = HourWindow {
            start_minute: 22 * 60,
            end_minute: 2 * 60,
        };
        assert!(night.contains(23 * 60) && night.contains(60));
        assert!(!night.contains(2 * 60) && !night.contains(12 * 60));
        assert!(HourWindow::now_minute() < 24 * 60);
    }
}
