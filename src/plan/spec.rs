//! The raw plan spec: what a plan file may say, exactly as written.
//!
//! Field names are a contract (DESIGN.md "The plan language"). Every struct denies unknown fields
//! and every field carries the doc comment that becomes its description in `spotdrill schema`.
//! Durations, rates and percentages stay text here; [`super::validate`] parses them into the
//! validated [`super::Plan`] with located messages.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $schema_name:literal, $schema:tt) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, Deserialize, PartialEq)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

text_type!(
    /// A humantime duration: `500ms`, `20s`, `2m`, `1h 30m`.
    DurationText,
    "Duration",
    {
        "type": "string",
        "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zµ]+(\\s*[0-9]+(\\.[0-9]+)?\\s*[a-zµ]+)*\\s*$",
        "description": "A duration with a unit: 500ms, 20s, 2m, 1h 30m",
        "examples": ["500ms", "20s", "2m"]
    }
);

text_type!(
    /// A rate in messages per second: `400/s`.
    RateText,
    "Rate",
    {
        "type": "string",
        "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*/\\s*s\\s*$",
        "description": "Messages per second, written N/s",
        "examples": ["400/s"]
    }
);

text_type!(
    /// A percentage `N%` (0–100).
    PercentText,
    "Percent",
    {
        "type": "string",
        "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%\\s*$",
        "description": "A percentage from 0% to 100%",
        "examples": ["50%"]
    }
);

text_type!(
    /// A node count (`3`) or a percentage of the target's nodes (`50%`).
    CountOrPercentText,
    "CountOrPercent",
    {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%?\\s*$"}
        ],
        "description": "A node count (3) or a percentage of the target's nodes (50%)"
    }
);

/// A spotdrill plan: which clusters to terminate spot nodes in, which Kafka applications to
/// judge, the ladder of termination counts, SLOs and guards.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "spotdrill plan")]
pub struct RawPlan {
    /// Plan language version; this spotdrill reads version 1.
    pub version: u32,
    /// Short name of the plan, shown in reports.
    pub name: String,
    /// Free text, shown in the report.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the applications' Kafka lives.
    pub kafka: RawKafka,
    /// The embedded lab: present only when the plan runs on it.
    #[serde(default)]
    pub lab: Option<RawLab>,
    /// The Kafka consumers whose lag is judged, by name.
    pub applications: IndexMap<String, RawApplication>,
    /// The clusters under test, by name.
    pub targets: IndexMap<String, RawTarget>,
    /// How lag is sampled and judged.
    #[serde(default)]
    pub observe: Option<RawObserve>,
    /// Where the targets' locks are kept: lock files on this machine by default; a shared
    /// backend makes one run per cluster hold across the team (`SPOTDRILL_LOCK_TABLE` chooses a
    /// DynamoDB table for plans that name none).
    #[serde(default)]
    pub locks: Option<RawLocks>,
}

/// A shared lock backend.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLocks {
    /// A DynamoDB table (partition key `lock_key`, a string) that every run of the team locks
    /// its clusters in, with conditional writes.
    #[serde(default)]
    pub dynamodb: Option<RawDynamoLocks>,
}

/// The DynamoDB table of the team-wide locks.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDynamoLocks {
    /// The table's name (3–255 of `a-z A-Z 0-9 _ - .`).
    pub table: String,
    /// The table's region; else the region of `--region` or the AWS environment.
    #[serde(default)]
    pub region: Option<String>,
}

/// Kafka connection settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// `lab` for the embedded lab's broker, otherwise `host:port,host:port`.
    pub brokers: String,
    /// TLS and SASL settings for a secured cluster.
    #[serde(default)]
    pub security: Option<RawSecurity>,
}

/// Security settings; the password is never written in a plan, only the name of the environment
/// variable that holds it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: SecurityProtocol,
    /// SASL mechanism (required with SASL_*): `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable that holds the SASL password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM file of the certificate authority that signed the brokers' certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// Kafka security protocol.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum SecurityProtocol {
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

/// SASL mechanism.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// The embedded lab: a Kafka-protocol broker, producers, and Storm/Mesos-like clusters of node
/// processes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLab {
    /// Topics the lab creates and produces telemetry into.
    pub topics: Vec<RawLabTopic>,
    /// Lab clusters by name; targets refer to them with `nodes: {provider: lab, cluster: NAME}`.
    pub clusters: IndexMap<String, RawLabCluster>,
}

/// A lab topic and the telemetry produced into it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// Produce rate over all partitions, `N/s`.
    pub rate: RateText,
    /// Size of each message's payload in bytes.
    #[serde(default)]
    pub message_bytes: Option<u32>,
    /// Which timestamp records carry: `create-time` (the producer's, default) or `log-append-time`.
    #[serde(default)]
    pub timestamp_type: Option<TimestampType>,
}

/// Kafka record timestamp type.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A cluster kind.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// Apache Storm: workers own fixed partitions; a lost worker stalls them until re-placed.
    Storm,
    /// Mesos/Marathon: tasks share one consumer group; survivors take over after a rebalance.
    Mesos,
    /// Kubernetes: Node objects chosen by labels; the scheduler re-places the pods of lost nodes.
    Kubernetes,
}

impl ClusterKind {
    /// The kind as plans, journals and reports name it: `storm`, `mesos` or `kubernetes`.
    pub fn name(self) -> &'static str {
        match self {
            ClusterKind::Storm => "storm",
            ClusterKind::Mesos => "mesos",
            ClusterKind::Kubernetes => "kubernetes",
        }
    }
}

/// A lab cluster: node processes, their slots, and a Nimbus/Marathon-like scheduler.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabCluster {
    /// `storm`, `mesos` or `kubernetes` (a Karpenter-like NodePool of spot nodes behind a
    /// Kubernetes API: one Deployment per workload, nodes lost by a drain through that API).
    pub kind: ClusterKind,
    /// Number of nodes at full capacity.
    pub nodes: u32,
    /// Workers (storm), tasks (mesos) or pods (kubernetes) one node can host.
    pub slots_per_node: u32,
    /// How long the scheduler takes to notice a dead node (default 3s); kubernetes: how long
    /// the pods of a node lost without a drain stay bound to it (the unreachable toleration).
    #[serde(default)]
    pub detection_delay: Option<DurationText>,
    /// Whether and when a replacement node joins after a loss (the spot fleet refilling).
    #[serde(default)]
    pub replacement: Option<RawReplacement>,
    /// The applications' workers, by workload name.
    pub workloads: IndexMap<String, RawWorkload>,
}

/// Replacement of lost nodes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplacement {
    /// Whether a lost node is replaced at all (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long after a loss the replacement joins (default 20s).
    #[serde(default)]
    pub delay: Option<DurationText>,
}

/// Workers of one application in a lab cluster.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Number of workers (storm), tasks (mesos) or pods (kubernetes); each takes one slot.
    pub workers: u32,
    /// Kafka consumer group the workers consume in.
    pub group: String,
    /// Topics the workers consume.
    pub topics: Vec<String>,
    /// Processing time per message in one worker.
    pub cost_per_message: DurationText,
    /// How often workers commit offsets (the checkpoint).
    #[serde(default)]
    pub commit_interval: Option<DurationText>,
    /// A lab fault: a worker re-placed after its node was lost stops consuming while its
    /// scheduler shows it running (a spout stuck after its worker restarted). Default false.
    #[serde(default)]
    pub stall_after_restart: Option<bool>,
}

/// How an application's scheduler knows it: a name, or a Kubernetes workload by kind.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawScheduledAs {
    Name(String),
    Workload(RawWorkloadRef),
}

impl<'de> Deserialize<'de> for RawScheduledAs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawScheduledAs, D::Error> {
        use serde::de::value::MapAccessDeserializer;
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawScheduledAs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name, or {deployment: ns/name} or {statefulset: ns/name}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawScheduledAs, E> {
                Ok(RawScheduledAs::Name(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<RawScheduledAs, A::Error> {
                RawWorkloadRef::deserialize(MapAccessDeserializer::new(a))
                    .map(RawScheduledAs::Workload)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A Kubernetes workload by kind: exactly one of the two.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkloadRef {
    /// A Deployment, `namespace/name`.
    #[serde(default)]
    pub deployment: Option<String>,
    /// A StatefulSet, `namespace/name`.
    #[serde(default)]
    pub statefulset: Option<String>,
}

/// An application: a Kafka consumer whose lag is judged.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    /// The application's consumer group (spotdrill reads its commits, never joins it). Required
    /// unless `lag` says where else its lag comes from.
    #[serde(default)]
    pub group: String,
    /// Topics the application consumes. Required unless `lag` is given.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Where the application's lag comes from when not from its consumer group's commits (a
    /// consumer that never commits: Spark Structured Streaming, Flink without
    /// commit-on-checkpoint): a PromQL query on the monitoring that already publishes it.
    #[serde(default)]
    pub lag: Option<RawLagSource>,
    /// What the application must achieve after each step.
    pub slo: RawSlo,
    /// A guard: stop escalating the ladder once this application's lag passes this.
    #[serde(default)]
    pub abort_lag: Option<DurationText>,
    /// The application's name in its scheduler, for the health probes: the Storm topology name,
    /// the Marathon app id, or the Kubernetes workload (`namespace/name`, or the name alone where
    /// it is unambiguous; `{deployment: ns/name}` or `{statefulset: ns/name}` names its kind too)
    /// (default: the application's name).
    #[serde(default)]
    pub scheduled_as: Option<RawScheduledAs>,
    /// How the application's consumers read transactional topics: `read_uncommitted` (default,
    /// as Kafka's own tools) or `read_committed` (lag measured against the last stable offset;
    /// an open transaction holding it back is reported with its age).
    #[serde(default)]
    pub isolation: Option<Isolation>,
}

/// An application's lag from Prometheus: the value of an instant PromQL query, judged with the
/// same band, spike and recovery rules as lag from Kafka. A query error, an empty result or a
/// stale series is a gap in the samples, never a zero.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLagSource {
    /// The Prometheus server's base URL (e.g. `http://prometheus:9090`), queried through its
    /// HTTP API (`/api/v1/query`).
    pub prometheus: String,
    /// An instant PromQL query whose value is the application's lag; with several series, the
    /// largest counts (e.g. `max(kafka_consumergroup_group_max_lag_seconds{group="views"})`).
    pub query: String,
    /// The query's unit: `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub unit: Option<LagUnit>,
    /// Credentials, named by environment variable (never inline), as for health endpoints.
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// A series whose newest sample is older than this is stale: a gap (default 30s; checked
    /// where the query is a plain selector, whose samples keep their own timestamps).
    #[serde(default)]
    pub max_age: Option<DurationText>,
}

/// The unit of a PromQL lag query.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LagUnit {
    #[default]
    Seconds,
    Milliseconds,
}

/// A consumer's isolation level (librdkafka's and Kafka's `isolation.level`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Every record, including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions, up to the last stable offset.
    ReadCommitted,
}

impl Isolation {
    /// The value of librdkafka's `isolation.level`.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read_uncommitted",
            Isolation::ReadCommitted => "read_committed",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Isolation::ReadUncommitted
    }
}

/// Service level objective for one step.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    /// Largest acceptable lag (seconds behind) at the spike.
    pub max_lag: DurationText,
    /// Longest acceptable time from injection until lag is back inside its baseline band.
    pub max_recovery: DurationText,
}

/// A cluster under test.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `storm`, `mesos` or `kubernetes`.
    pub kind: ClusterKind,
    /// How the target's nodes are found and terminated.
    pub nodes: RawNodes,
    /// Health endpoints (capacity, not only lag).
    #[serde(default)]
    pub health: Option<RawHealth>,
    /// Only nodes that run this topology (storm) or Marathon app (mesos), as the health
    /// endpoints say at each step; needs `health`.
    #[serde(default)]
    pub running: Option<RawRunning>,
    /// Names of the applications (from `applications:`) judged on this target.
    pub applications: Vec<String>,
    /// Terminations per step: a list, strictly increasing (`[1, 2, 3]`), whose rungs may also
    /// take a whole spot market (`[1, 2, {market: largest}]`), or a search for the breaking
    /// point (`{search: {from: 1, max: 12}}`).
    pub ladder: RawLadder,
    /// How nodes are chosen: `random` (seeded), `spread` (across zone × instance type) or
    /// `market` (all nodes of one spot market, the way a price spike takes them).
    #[serde(default)]
    pub selection: Option<Selection>,
    /// Seed for `random` selection, so a run can be reproduced.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The gate: the run fails unless the tolerated terminations reach this (default: the
    /// largest ladder step, i.e. every step must pass; for a search, its `from`).
    #[serde(default)]
    pub required_tolerance: Option<u32>,
    /// Guards that stop the ladder.
    #[serde(default)]
    pub guards: Option<RawGuards>,
    /// Steps add up (for capacity that never comes back); default false: every step starts
    /// from full capacity.
    #[serde(default)]
    pub cumulative: Option<bool>,
    /// The overprovisioning rule's safety multiple: the report recommends (most nodes lost
    /// within the replacement lead time) × this many spare nodes (default 3).
    #[serde(default)]
    pub safety_multiple: Option<f64>,
}

/// A target's ladder: the steps as listed, or a search for the breaking point.
#[derive(Clone, Debug, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum RawLadder {
    /// Terminations per step, strictly increasing (a market rung counts when its step runs).
    Steps(Vec<Rung>),
    /// A search: escalate (`from`, 2·`from`, 4·`from` … capped at `max`) until the first step
    /// that does not pass, then bisect between the last pass and it, so the exact limit is
    /// found in O(log max) steps.
    Search(RawSearchLadder),
}

impl RawLadder {
    /// The listed steps (none for a search).
    pub fn steps(&self) -> &[Rung] {
        match self {
            RawLadder::Steps(s) => s,
            RawLadder::Search(_) => &[],
        }
    }
}

impl<'de> Deserialize<'de> for RawLadder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawLadder, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct LadderVisitor;
        impl<'de> serde::de::Visitor<'de> for LadderVisitor {
            type Value = RawLadder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of terminations per step, or {search: {from, max}}")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RawLadder, E> {
                Ok(RawLadder::Steps(Vec::new()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<RawLadder, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(a)).map(RawLadder::Steps)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<RawLadder, A::Error> {
                RawSearchLadder::deserialize(MapAccessDeserializer::new(a)).map(RawLadder::Search)
            }
        }
        d.deserialize_any(LadderVisitor)
    }
}

/// One rung of a listed ladder: a number of nodes, or a whole spot market.
#[derive(Clone, Copy, Debug, JsonSchema, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Rung {
    /// Terminate this many nodes at once.
    Nodes(u32),
    /// Terminate every node of one spot market at once (`{market: largest}`).
    Market(MarketRung),
}

impl Rung {
    /// The rung's terminations when the plan says them (not for a market rung, whose count is
    /// resolved from the nodes discovered when its step runs).
    pub fn count(self) -> Option<u32> {
        match self {
            Rung::Nodes(n) => Some(n),
            Rung::Market(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Rung {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rung, D::Error> {
        use serde::de::{Error, Unexpected, value::MapAccessDeserializer};
        struct RungVisitor;
        impl<'de> serde::de::Visitor<'de> for RungVisitor {
            type Value = Rung;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number ≥ 0 or {market: largest}")
            }
            // An empty rung (and a rung an earlier error left poisoned) reads as 0, which
            // validation reports as a step of no nodes.
            fn visit_unit<E: Error>(self) -> Result<Rung, E> {
                Ok(Rung::Nodes(0))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Rung, E> {
                u32::try_from(v)
                    .map(Rung::Nodes)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Rung, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<Rung, A::Error> {
                MarketRung::deserialize(MapAccessDeserializer::new(a)).map(Rung::Market)
            }
        }
        d.deserialize_any(RungVisitor)
    }
}

/// `{market: largest}`: a step that terminates every node of the target's largest spot market
/// (instance type × availability zone) at once, the way one price event takes it; its count is
/// the market's size among the nodes discovered when the step runs, and the guards judge it
/// like any step.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarketRung {
    /// Which market: `largest` (the most running, eligible nodes; ties go to the first by
    /// instance type, then zone).
    pub market: MarketChoice,
}

/// Which spot market a market rung takes.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketChoice {
    /// The market with the most of the target's running, eligible nodes.
    Largest,
}

/// `ladder: {search: …}`.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSearchLadder {
    /// The search's bounds.
    pub search: RawSearch,
}

/// The bounds of a breaking-point search.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    /// The first step's terminations, and the floor of the search (at least 1).
    pub from: u32,
    /// The most terminations any step of the search may try (at least `from`, at most the
    /// target's nodes and `guards.max_terminations`).
    pub max: u32,
}

/// Node provider.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Node processes of the embedded lab.
    Lab,
    /// EC2 spot instances selected by tags, zones, types or spot fleet request; TerminateInstances.
    AwsEc2,
    /// Members of an Auto Scaling group; TerminateInstanceInAutoScalingGroup.
    AwsAsg,
    /// AWS FIS spot interruptions: rebalance recommendation, two-minute notice, termination.
    AwsFis,
    /// Kubernetes Node objects chosen by labels; lost by a drain or by terminating the EC2
    /// instance behind `spec.providerID`.
    Kubernetes,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Lab => "lab",
            Provider::AwsEc2 => "aws-ec2",
            Provider::AwsAsg => "aws-asg",
            Provider::AwsFis => "aws-fis",
            Provider::Kubernetes => "kubernetes",
        }
    }
}

/// Node selector. Which fields apply depends on `provider`; `spotdrill validate` says which.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNodes {
    /// `lab`, `aws-ec2`, `aws-asg`, `aws-fis` or `kubernetes`.
    pub provider: Provider,
    /// lab: the lab cluster (from `lab.clusters`); kubernetes: a lab cluster of `kind:
    /// kubernetes`, whose Kubernetes API is used instead of a kubeconfig.
    #[serde(default)]
    pub cluster: Option<String>,
    /// aws-*, kubernetes: the AWS region (default: from the AWS configuration). A kubernetes
    /// target with `terminate: drain` terminates the EC2 instance behind each drained AWS node
    /// (`spec.providerID` `aws:///ZONE/i-…`) only where a region is given (here or `--region`).
    #[serde(default)]
    pub region: Option<String>,
    /// aws-ec2, aws-fis: instance tags that must all match.
    #[serde(default)]
    pub tags: Option<IndexMap<String, String>>,
    /// aws-ec2, aws-fis: only instances in these availability zones.
    #[serde(default)]
    pub availability_zones: Option<Vec<String>>,
    /// aws-ec2, aws-fis: only instances of these types.
    #[serde(default)]
    pub instance_types: Option<Vec<String>>,
    /// aws-ec2: only instances of this spot fleet request (`sfr-…`).
    #[serde(default)]
    pub spot_fleet_request: Option<String>,
    /// aws-asg: the Auto Scaling group.
    #[serde(default)]
    pub group: Option<String>,
    /// aws-asg: true (default) keeps desired capacity so the group replaces the node; false
    /// measures the loss of capacity.
    #[serde(default)]
    pub replace: Option<bool>,
    /// aws-fis, kubernetes with `terminate: aws-fis`: time between the rebalance recommendation
    /// and termination (2m–15m, default 2m); lab: time between SIGTERM and SIGKILL (default 0s:
    /// SIGKILL at once).
    #[serde(default)]
    pub notice: Option<DurationText>,
    /// aws-fis, kubernetes with `terminate: aws-fis`: IAM role FIS assumes to interrupt the
    /// instances.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// aws-fis, kubernetes with `terminate: aws-fis`: keep the experiment templates spotdrill
    /// creates (default false: each is deleted once its experiment ended).
    #[serde(default)]
    pub keep_templates: Option<bool>,
    /// aws-*, kubernetes: also terminate on-demand instances (nodes) the selector returns
    /// (default false: spot only; a Kubernetes node without a capacity-type label counts as
    /// on-demand).
    #[serde(default)]
    pub allow_on_demand: Option<bool>,
    /// kubernetes: node labels that must all match (`karpenter.sh/capacity-type: spot`,
    /// `eks.amazonaws.com/capacityType: SPOT`, `karpenter.sh/nodepool: ingest`).
    #[serde(default)]
    pub labels: Option<IndexMap<String, String>>,
    /// kubernetes: the kubeconfig context (default: `--context`, else the kubeconfig's current
    /// context, else the in-cluster service account).
    #[serde(default)]
    pub context: Option<String>,
    /// kubernetes: how a node is lost: `drain` (default), `aws-ec2` or `aws-fis`.
    #[serde(default)]
    pub terminate: Option<KubeTerminate>,
    /// kubernetes with `terminate: drain`: how long evictions a PodDisruptionBudget blocks are
    /// retried before the drain of a node fails and it is uncordoned (default 2m).
    #[serde(default)]
    pub drain_timeout: Option<DurationText>,
}

/// How a Kubernetes node is lost.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KubeTerminate {
    /// Cordon, evict every pod through the Eviction API (honouring PodDisruptionBudgets), delete
    /// the Node, and with a `region` terminate the EC2 instance behind it: a perfectly handled
    /// interruption; works on any cluster.
    Drain,
    /// TerminateInstances on the EC2 instance behind `spec.providerID`: the abrupt loss (the
    /// node goes NotReady; its pods wait for the unreachable toleration).
    AwsEc2,
    /// A real spot interruption of the EC2 instance behind `spec.providerID` through AWS FIS
    /// (`aws:ec2:send-spot-instance-interruptions`: a rebalance recommendation, then the
    /// two-minute notice, then termination): what Karpenter's interruption queue and the Node
    /// Termination Handler react to. Needs `role_arn`; `notice` and `keep_templates` as for
    /// provider aws-fis.
    AwsFis,
}

impl KubeTerminate {
    pub fn name(self) -> &'static str {
        match self {
            KubeTerminate::Drain => "drain",
            KubeTerminate::AwsEc2 => "aws-ec2",
            KubeTerminate::AwsFis => "aws-fis",
        }
    }
}

/// Health endpoints; each is `lab` or an http(s) URL.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// storm: the Storm UI (e.g. `http://nimbus:8080`).
    #[serde(default)]
    pub storm_ui: Option<String>,
    /// mesos: the Mesos master (e.g. `http://mesos-master:5050`).
    #[serde(default)]
    pub mesos_master: Option<String>,
    /// mesos: Marathon (e.g. `http://marathon:8080`).
    #[serde(default)]
    pub marathon: Option<String>,
    /// Credentials for the endpoints, named by environment variable (never inline).
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// PEM file with the CA certificates to trust for `https://` endpoints (relative to the
    /// plan file), instead of the built-in roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Time for one request (default 5s).
    #[serde(default)]
    pub timeout: Option<DurationText>,
    /// Further attempts after a connection error or a 5xx answer (default 2).
    #[serde(default)]
    pub retries: Option<u32>,
}

/// Credentials for health endpoints: basic (`username` + `password_env`) or bearer
/// (`token_env`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Basic auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the basic auth password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The environment variable holding a bearer token (e.g. a DC/OS ACS token).
    #[serde(default)]
    pub token_env: Option<String>,
}

/// Which work the chosen nodes must be running.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRunning {
    /// storm: a topology name.
    #[serde(default)]
    pub topology: Option<String>,
    /// mesos: a Marathon app id (`/live-aggregators`).
    #[serde(default)]
    pub app: Option<String>,
    /// kubernetes: a workload (`namespace/name`, or its name alone where unambiguous).
    #[serde(default)]
    pub workload: Option<String>,
}

/// Node selection mode.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// Seeded random choice, reproducible with `seed`.
    Random,
    /// Spread across availability zone × instance type.
    Spread,
    /// All nodes of one spot market (instance type × zone).
    Market,
}

/// Guards: a breached guard stops the ladder; observation and the report continue.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGuards {
    /// Most terminations in the whole run, over all steps.
    #[serde(default)]
    pub max_terminations: Option<u32>,
    /// Nodes that must stay healthy: a count (`3`) or a share of the target's nodes (`50%`).
    #[serde(default)]
    pub min_healthy: Option<CountOrPercentText>,
    /// Only inject within these UTC hours, `HH:MM-HH:MM`.
    #[serde(default)]
    pub allowed_hours: Option<String>,
    /// Never take more than this many nodes running one topology (storm) or app (mesos) in
    /// one step; needs `health`.
    #[serde(default)]
    pub max_per_topology: Option<u32>,
    /// kubernetes: never take more than this many nodes running pods of one workload in one
    /// step (what the Kubernetes API says runs where).
    #[serde(default)]
    pub max_per_workload: Option<u32>,
}

/// Sampling and judging.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawObserve {
    /// Time between lag samples (default 1s).
    #[serde(default)]
    pub sample_interval: Option<DurationText>,
    /// Length of the baseline window before the first step (default 20s).
    #[serde(default)]
    pub baseline: Option<DurationText>,
    /// Lag must stay inside the band this long to count as recovered (default 5s).
    #[serde(default)]
    pub hold: Option<DurationText>,
    /// Per step: not recovered by then = fail (default 3m).
    #[serde(default)]
    pub timeout: Option<DurationText>,
    /// Per step: observe at least this long after the injection before calling it recovered,
    /// because a loss takes time to show in lag (the scheduler's detection delay plus a commit
    /// interval); default 30s, at most `timeout`.
    #[serde(default)]
    pub settle: Option<DurationText>,
    /// Longest wait before a step for lag and capacity to come back (default 10m).
    #[serde(default)]
    pub cooldown: Option<DurationText>,
    /// The baseline band: upper = max(p99 × (1 + margin), p99 + floor).
    #[serde(default)]
    pub band: Option<RawBand>,
}

/// Baseline band parameters.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    /// Relative margin above the baseline p99 (default 0.5).
    #[serde(default)]
    pub margin: Option<f64>,
    /// Absolute margin above the baseline p99 (default 5s).
    #[serde(default)]
    pub floor: Option<DurationText>,
}
