//! `spotdrill plan PLAN`: preflight; terminates nothing.
//!
//! Resolves each target's nodes (a lab's are predicted: the lab only starts with `run`), shows
//! what each step would terminate with the very selection `run` makes, checks that Kafka and the
//! health endpoints answer, warns about guards the ladder would breach, and says how long the run
//! takes. AWS targets are discovered for real (DescribeInstances, DescribeAutoScalingGroups) and
//! TerminateInstances is checked with DryRun=true. Exit 0 when everything is ready, 4 when Kafka
//! or AWS cannot be reached or a permission is missing (after printing everything else).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde::Serialize;

use crate::exit::{ExitCode, Failure};
use crate::kafka::KafkaSettings;
use crate::nodes::aws::AwsSettings;
use crate::nodes::{Discovery, Node, Permission, Provider};
use crate::observe::health::{ApiClient, Capacity, HttpSettings};
use crate::observe::{GroupSpec, LagProbe};
use crate::output;
use crate::plan::{Brokers, Endpoint, MinHealthy, NodeSelector, Plan, Target};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print the preflight as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The longest `run` waits for a lab's workloads to commit before the baseline (its
/// `LAB_WARMUP`).
const LAB_WARMUP: Duration = Duration::from_secs(60);
/// How long a lab's workloads usually take to commit for the first time.
const LAB_WARMUP_TYPICAL: Duration = Duration::from_secs(5);
/// Samples a typical step takes beyond `settle` and `hold`.
const TYPICAL_EXTRA_SAMPLES: u32 = 3;
/// After a target's last step, `run` waits this long at most for a lab cluster's capacity.
const CAPACITY_TAIL: Duration = Duration::from_secs(120);
/// How long one health endpoint may take to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long reading a target's whole capacity may take (several requests, one per topology).
const CAPACITY_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(args: Args, aws: &super::AwsArgs) -> anyhow::Result<ExitCode> {
    let (plan, _text) = super::load_plan(&args.plan)?;
    let _span = tracing::info_span!("preflight", plan = %plan.name).entered();

    let discovered = discover_all(&plan, &aws.settings())?;
    let plan_dir = args
        .plan
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    // What runs where: the targets whose health endpoints are URLs are probed like `run` probes
    // them (a lab's endpoints only exist once `run` starts it).
    let capacities: IndexMap<String, Result<Capacity, String>> = std::thread::scope(|s| {
        let probes: Vec<_> = plan
            .targets
            .iter()
            .filter(|(_, t)| {
                t.health.configured(t.kind)
                    && !health_endpoints(t).any(|(_, e)| *e == Endpoint::Lab)
            })
            .map(|(name, t)| {
                let dir = plan_dir.clone();
                (
                    name.clone(),
                    s.spawn(
                        move || match crate::run::capacity::endpoints(name, t, None, &dir) {
                            Ok(Some(e)) => crate::observe::health::probe(&e, CAPACITY_TIMEOUT)
                                .map_err(|e| e.to_string()),
                            Ok(None) => Err("no health endpoints".into()),
                            Err(e) => Err(format!("{e:#}")),
                        },
                    ),
                )
            })
            .collect();
        probes
            .into_iter()
            .map(|(n, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err("the capacity probe failed".into()));
                (n, r)
            })
            .collect()
    });
    let mut targets: Vec<TargetOut> = plan
        .targets
        .iter()
        .map(|(name, target)| {
            preview_target(name, target, discovered.get(name), capacities.get(name))
        })
        .collect();

    // Kafka and every health endpoint at once: each is bounded by its own timeout.
    let endpoints: Vec<(usize, &'static str, &Endpoint, HttpSettings)> = plan
        .targets
        .values()
        .enumerate()
        .flat_map(|(i, t)| {
            let settings = crate::run::capacity::settings(&t.health, &plan_dir);
            health_endpoints(t).map(move |(field, e)| (i, field, e, settings.clone()))
        })
        .collect();
    let (kafka, health) = std::thread::scope(|s| {
        let kafka = s.spawn(|| check_kafka(&plan));
        let probes: Vec<_> = endpoints
            .iter()
            .map(|(i, field, endpoint, settings)| {
                (*i, s.spawn(move || check_health(field, endpoint, settings)))
            })
            .collect();
        let health: Vec<(usize, HealthOut)> = probes
            .into_iter()
            .map(|(i, h)| (i, h.join().expect("a health check does not panic")))
            .collect();
        (
            kafka.join().expect("the Kafka check does not panic"),
            health,
        )
    });
    for (i, h) in health {
        targets[i].health.push(h);
    }

    let estimate = Estimate::of(&plan);
    let preflight = Preflight {
        plan: plan.name.clone(),
        targets,
        kafka: match &kafka {
            Ok(text) => text.clone(),
            Err(e) => format!("error: {e}"),
        },
        worst_case_s: estimate.worst.as_secs(),
        typical_s: estimate.typical.as_secs(),
    };
    if args.json {
        let mut text = serde_json::to_string_pretty(&preflight)?;
        text.push('\n');
        output::out(&text);
    } else {
        output::out(&render_text(
            &preflight,
            &args.plan.display().to_string(),
            &estimate,
        ));
    }

    if let Err(e) = kafka {
        return Err(Failure::Environment(e).into());
    }
    let aws_errors: Vec<String> = preflight
        .targets
        .iter()
        .filter_map(|t| {
            t.error
                .as_ref()
                .or(t.permissions.as_ref().filter(|p| p.starts_with("error")))
                .map(|e| format!("{}: {e}", t.name))
        })
        .collect();
    if !aws_errors.is_empty() {
        return Err(Failure::Environment(aws_errors.join("; ")).into());
    }
    Ok(ExitCode::Success)
}

/// What preflight learned of one target's nodes.
struct NodesPreview {
    discovery: Result<Discovery, String>,
    /// Wall time of the discovery (every page), for AWS targets.
    discovery_ms: Option<u64>,
    /// `allowed (…)` or `error: …`, where checked.
    permissions: Option<String>,
}

/// Discover every target's nodes through its provider (a lab's are predicted) and check the
/// permission to terminate them (TerminateInstances with DryRun=true for AWS).
fn discover_all(
    plan: &Plan,
    settings: &AwsSettings,
) -> anyhow::Result<IndexMap<String, NodesPreview>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cx = crate::nodes::Context {
        aws: settings,
        plan_lab: plan.lab.as_ref(),
        lab: None,
    };
    Ok(runtime.block_on(async {
        let mut out = IndexMap::new();
        for (name, target) in &plan.targets {
            let provider = crate::nodes::connect(&target.nodes, cx).await;
            out.insert(name.clone(), preview_nodes(provider.as_ref()).await);
        }
        out
    }))
}

async fn preview_nodes(provider: &dyn Provider) -> NodesPreview {
    let started = Instant::now();
    let discovery = provider.discover().await.map_err(|e| e.to_string());
    let discovery_ms = started.elapsed().as_millis() as u64;
    let permissions = match &discovery {
        Ok(d) if !d.found.is_empty() => match provider.check_permissions(&d.nodes()).await {
            Ok(Permission::Allowed(how)) => Some(how),
            Ok(Permission::NotChecked) => None,
            Err(e) => Some(format!("error: {e}")),
        },
        _ => None,
    };
    let aws = provider.name() != "lab";
    NodesPreview {
        discovery,
        discovery_ms: aws.then_some(discovery_ms),
        permissions,
    }
}

// ---- the preflight as data (the `--json` contract, DESIGN.md "Machine-readable outputs") ------

#[derive(Debug, Serialize)]
struct Preflight {
    plan: String,
    targets: Vec<TargetOut>,
    /// `lab (started by run)`, `HOSTS reachable (…)`, or `error: WHY`.
    kafka: String,
    worst_case_s: u64,
    typical_s: u64,
}

#[derive(Debug, Serialize)]
struct TargetOut {
    name: String,
    kind: String,
    provider: &'static str,
    /// Why the nodes could not be discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What to keep in mind about the nodes shown (a lab's are predicted).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// AWS: the TerminateInstances DryRun check, `allowed (…)` or `error: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<String>,
    /// AWS: how long discovery took (every page of DescribeInstances), in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery_ms: Option<u64>,
    nodes: Vec<NodeOut>,
    /// AWS: instances the selector matched that are not eligible (on-demand, not running).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    excluded: Vec<ExcludedOut>,
    steps: Vec<StepOut>,
    health: Vec<HealthOut>,
    /// What the health endpoints report (URL endpoints only; a lab's start with `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<Capacity>,
    guard_warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct NodeOut {
    id: String,
    host: String,
    zone: Option<String>,
    instance_type: Option<String>,
    lifecycle: &'static str,
    /// AWS: the private IP address (`host` is the private DNS name).
    #[serde(skip_serializing_if = "Option::is_none")]
    private_ip: Option<String>,
    /// AWS: the selector's tags as the instance carries them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ExcludedOut {
    id: String,
    reason: String,
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
struct StepOut {
    terminations: u32,
    would_terminate: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct HealthOut {
    /// `storm_ui`, `mesos_master` or `marathon`.
    endpoint: &'static str,
    /// The URL, or `lab`.
    url: String,
    /// `lab`, `reachable`, `unreachable` or `not checked`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

// ---- nodes and steps ---------------------------------------------------------------------------

fn preview_target(
    name: &str,
    target: &Target,
    aws: Option<&NodesPreview>,
    capacity: Option<&Result<Capacity, String>>,
) -> TargetOut {
    let _span = tracing::debug_span!("target", target = name).entered();
    let provider = target.nodes.provider().name();
    let mut out = TargetOut {
        name: name.to_owned(),
        kind: target.kind.name().to_owned(),
        provider,
        error: None,
        note: None,
        permissions: aws.and_then(|a| a.permissions.clone()),
        discovery_ms: aws.and_then(|a| a.discovery_ms),
        nodes: Vec::new(),
        excluded: Vec::new(),
        steps: Vec::new(),
        health: Vec::new(),
        capacity: capacity.and_then(|c| c.as_ref().ok()).cloned(),
        guard_warnings: Vec::new(),
    };
    let nodes = match aws.map(|a| &a.discovery) {
        Some(Ok(d)) => {
            out.note.clone_from(&d.note);
            out.excluded = d
                .excluded
                .iter()
                .map(|x| ExcludedOut {
                    id: x.id.clone(),
                    reason: x.reason.clone(),
                })
                .collect();
            Some(d.nodes())
        }
        Some(Err(e)) => {
            out.error = Some(format!("cannot discover nodes: {e}"));
            None
        }
        None => {
            out.error = Some(format!("provider {provider} did not connect"));
            None
        }
    };
    match &nodes {
        Some(nodes) => {
            out.nodes = nodes.iter().map(NodeOut::from).collect();
            if let Some(Ok(d)) = aws.map(|a| &a.discovery) {
                for (n, f) in out.nodes.iter_mut().zip(&d.found) {
                    n.private_ip.clone_from(&f.private_ip);
                    n.tags.clone_from(&f.matched_tags);
                }
            }
            let placement = match (capacity, &target.nodes) {
                (Some(Ok(c)), _) => Placement::Known(c),
                (Some(Err(e)), _) => Placement::Unknown(format!("health probe: {e}")),
                (None, NodeSelector::Lab { .. }) => Placement::Unknown(
                    "the lab's placement is only known once `run` starts it".into(),
                ),
                (None, _) => Placement::Unknown("no health endpoints".into()),
            };
            out.steps = preview_steps(target, nodes, &placement);
        }
        None => {
            out.steps = target
                .ladder
                .iter()
                .map(|&n| StepOut {
                    terminations: n,
                    would_terminate: Vec::new(),
                    error: out.error.clone(),
                })
                .collect();
        }
    }
    out.guard_warnings = guard_warnings(target, nodes.as_ref().map(Vec::len));
    out
}

/// What the health probes say runs where, for `running:` and `max_per_topology`.
enum Placement<'a> {
    Known(&'a Capacity),
    Unknown(String),
}

/// What each step would terminate: the same choice `run` makes from the same nodes. Steps that
/// add up (`cumulative`) choose among the nodes earlier steps left.
fn preview_steps(target: &Target, nodes: &[Node], placement: &Placement<'_>) -> Vec<StepOut> {
    let needs_placement = target.running.is_some() || target.guards.max_per_topology.is_some();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    target
        .ladder
        .iter()
        .enumerate()
        .map(|(step, &n)| {
            let eligible: Vec<Node> = nodes
                .iter()
                .filter(|node| node.running && crate::nodes::eligible(&target.nodes, node))
                .filter(|node| !gone.contains(&node.id))
                .cloned()
                .collect();
            let capacity = match placement {
                Placement::Known(c) => Some(*c),
                Placement::Unknown(why) if needs_placement => {
                    return StepOut {
                        terminations: n,
                        would_terminate: Vec::new(),
                        error: Some(format!(
                            "chosen by `run` among the nodes {}: {why}",
                            match &target.running {
                                Some(w) => format!("running {w}"),
                                None => "the max_per_topology guard allows".into(),
                            }
                        )),
                    };
                }
                Placement::Unknown(_) => None,
            };
            match crate::run::capacity::choose_step(&eligible, n as usize, target, step, capacity) {
                Ok(chosen) => {
                    let ids: Vec<String> = chosen.into_iter().map(|c| c.id).collect();
                    if target.cumulative {
                        gone.extend(ids.iter().cloned());
                    }
                    StepOut {
                        terminations: n,
                        would_terminate: ids,
                        error: None,
                    }
                }
                Err(e) => StepOut {
                    terminations: n,
                    would_terminate: Vec::new(),
                    error: Some(e.reason()),
                },
            }
        })
        .collect()
}

/// The guards the ladder would breach, each at its first breaching step; `run` stops the ladder
/// at the first breach (exit 3). `size` is the number of nodes, where known.
fn guard_warnings(target: &Target, size: Option<usize>) -> Vec<String> {
    let g = &target.guards;
    let mut warnings = Vec::new();
    if let Some(max) = g.max_terminations {
        let mut so_far = 0u32;
        for (step, &n) in target.ladder.iter().enumerate() {
            if so_far + n > max {
                warnings.push(format!(
                    "max_terminations {max}: step {} ({n}) would exceed it ({so_far} terminated \
                     so far + {n}); the run stops there (exit 3)",
                    step + 1
                ));
                break;
            }
            so_far += n;
        }
    }
    if let (Some(min), Some(size)) = (g.min_healthy, size) {
        let size = size as u32;
        let (needed, what) = match min {
            MinHealthy::Count(c) => (c, format!("{c}")),
            MinHealthy::Percent(p) => {
                let needed = (f64::from(size) * p / 100.0).ceil() as u32;
                (needed, format!("{p}% of {size} = {needed}"))
            }
        };
        // Without `cumulative`, every step starts from full capacity (cooldown waits for it).
        let mut live = size;
        for (step, &n) in target.ladder.iter().enumerate() {
            let left = live.saturating_sub(n);
            if left < needed {
                warnings.push(format!(
                    "min_healthy {what}: step {} ({n}) would leave {left} of {live} healthy \
                     nodes; the run stops there (exit 3)",
                    step + 1
                ));
                break;
            }
            if target.cumulative {
                live = left;
            }
        }
    }
    if let Some(window) = g.allowed_hours {
        let minute = crate::plan::HourWindow::now_minute();
        if !window.contains(minute) {
            warnings.push(format!(
                "allowed_hours {:02}:{:02}-{:02}:{:02} UTC: it is {:02}:{:02} UTC now, so a run \
                 started now stops before its first step (exit 3)",
                window.start_minute / 60,
                window.start_minute % 60,
                window.end_minute / 60,
                window.end_minute % 60,
                minute / 60,
                minute % 60
            ));
        }
    }
    warnings
}

// ---- Kafka -------------------------------------------------------------------------------------

/// `Ok(what to show)` when Kafka is ready for the run, `Err(why)` when it cannot be reached or
/// lacks a topic the applications read.
fn check_kafka(plan: &Plan) -> Result<String, String> {
    let list = match &plan.kafka.brokers {
        Brokers::Lab => return Ok("lab (started by run)".into()),
        Brokers::External(list) => list,
    };
    let brokers = list
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    tracing::debug!(brokers = %brokers, "checking Kafka");
    let mut settings = KafkaSettings::new(brokers.clone());
    settings.security = plan.kafka.security.clone();
    let mut groups: IndexMap<&str, Vec<String>> = IndexMap::new();
    for app in plan.applications.values() {
        let topics = groups.entry(app.group.as_str()).or_default();
        for t in &app.topics {
            if !topics.contains(t) {
                topics.push(t.clone());
            }
        }
    }
    let specs: Vec<GroupSpec> = groups
        .into_iter()
        .map(|(group, topics)| GroupSpec {
            group: group.to_owned(),
            topics,
        })
        .collect();
    tracing::debug!(brokers = %brokers, groups = specs.len(), "checking Kafka");
    LagProbe::connect(settings, &specs).map_err(|e| e.to_string())?;
    let topics: BTreeSet<&str> = specs
        .iter()
        .flat_map(|s| s.topics.iter().map(String::as_str))
        .collect();
    Ok(format!(
        "{brokers} reachable (topics found: {})",
        topics.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

// ---- health endpoints --------------------------------------------------------------------------

/// A target's health endpoints: (field, endpoint).
fn health_endpoints(target: &Target) -> impl Iterator<Item = (&'static str, &Endpoint)> {
    let h = &target.health;
    [
        ("storm_ui", h.storm_ui.as_ref()),
        ("mesos_master", h.mesos_master.as_ref()),
        ("marathon", h.marathon.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, e)| e.map(|e| (field, e)))
}

/// The path each kind of endpoint is asked for: one the health probes read anyway.
fn health_path(field: &str) -> &'static str {
    match field {
        "storm_ui" => "/api/v1/cluster/summary",
        "mesos_master" => "/master/slaves",
        _ => "/v2/apps",
    }
}

fn check_health(field: &'static str, endpoint: &Endpoint, settings: &HttpSettings) -> HealthOut {
    let url = match endpoint {
        Endpoint::Lab => {
            return HealthOut {
                endpoint: field,
                url: "lab".into(),
                status: "lab",
                detail: Some("started by run".into()),
            };
        }
        Endpoint::Url(url) => url.clone(),
    };
    let path = health_path(field);
    // Credentials written into the URL go to the client only, never to what is shown.
    let (full, url) = (
        url.clone(),
        crate::observe::health::without_credentials(&url),
    );
    let _span = tracing::debug_span!("health", endpoint = field, url = %url).entered();
    // The client the run's probes use: same TLS trust, credentials, timeouts and retries.
    let answer = ApiClient::new(&full, settings)
        .and_then(|c| c.get_json::<serde_json::Value>(path, Instant::now() + HEALTH_TIMEOUT));
    let (status, detail) = match answer {
        Ok(_) => ("reachable", format!("GET {path}: JSON")),
        Err(e) => ("unreachable", e.to_string()),
    };
    HealthOut {
        endpoint: field,
        url,
        status,
        detail: Some(detail),
    }
}

/// One line about a target's capacity as its health endpoints report it.
fn capacity_line(c: &Capacity) -> String {
    match c {
        Capacity::Storm(s) => format!(
            "{} supervisors alive, {} of {} slots used; {}",
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
                .join(", ")
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
    }
}

// ---- duration ----------------------------------------------------------------------------------

/// How long the run takes: at most, and typically.
struct Estimate {
    worst: Duration,
    worst_parts: String,
    typical: Duration,
    typical_parts: String,
}

impl Estimate {
    fn of(plan: &Plan) -> Estimate {
        let o = &plan.observe;
        let steps = plan.step_count() as u32;
        let (warmup, warmup_typical, warmup_name) = if plan.lab.is_some() {
            (LAB_WARMUP, LAB_WARMUP_TYPICAL, "lab warm-up")
        } else {
            (o.sample_interval * 3, o.sample_interval, "first samples")
        };
        // After a lab target's last step (unless steps add up), `run` waits for its capacity.
        let tails = plan
            .targets
            .values()
            .filter(|t| matches!(t.nodes, NodeSelector::Lab { .. }) && !t.cumulative)
            .count() as u32;
        let tail = o.cooldown.min(CAPACITY_TAIL);
        let worst = warmup + o.baseline + (o.cooldown + o.timeout) * steps + tail * tails;
        let mut worst_parts = format!(
            "{warmup_name} {} + baseline {} + {steps} step{} × (cooldown {} + timeout {})",
            d(warmup),
            d(o.baseline),
            plural(steps),
            d(o.cooldown),
            d(o.timeout)
        );
        if tails > 0 {
            worst_parts.push_str(&format!(
                " + {tails} × capacity wait after the last step {}",
                d(tail)
            ));
        }
        let samples = o.sample_interval * TYPICAL_EXTRA_SAMPLES;
        let typical = warmup_typical + o.baseline + (o.settle + o.hold + samples) * steps;
        let typical_parts = format!(
            "{warmup_name} {} + baseline {} + {steps} step{} × (settle {} + hold {} + \
             {TYPICAL_EXTRA_SAMPLES} samples {})",
            d(warmup_typical),
            d(o.baseline),
            plural(steps),
            d(o.settle),
            d(o.hold),
            d(samples)
        );
        Estimate {
            worst,
            worst_parts,
            typical,
            typical_parts,
        }
    }
}

/// A duration for people, in whole seconds or more precise when shorter than a second.
fn d(duration: Duration) -> String {
    let shown = if duration >= Duration::from_secs(1) {
        Duration::from_secs(duration.as_secs())
    } else {
        duration
    };
    humantime::format_duration(shown).to_string()
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

// ---- text --------------------------------------------------------------------------------------

fn render_text(p: &Preflight, path: &str, estimate: &Estimate) -> String {
    let mut s = format!(
        "plan `{}` ({path}): preflight, nothing is terminated\n",
        p.plan
    );
    for t in &p.targets {
        s.push_str(&format!(
            "\ntarget {} ({}, provider {})\n",
            t.name, t.kind, t.provider
        ));
        match &t.error {
            Some(e) => s.push_str(&format!("  nodes: {e}\n")),
            None => {
                s.push_str(&format!("  nodes ({}):\n", t.nodes.len()));
                for n in &t.nodes {
                    s.push_str(&format!("    {}\n", describe_node(n)));
                }
                if let Some(note) = &t.note {
                    s.push_str(&format!("  note: {note}\n"));
                }
                if !t.excluded.is_empty() {
                    let mut why: BTreeMap<&str, usize> = BTreeMap::new();
                    for x in &t.excluded {
                        *why.entry(x.reason.as_str()).or_default() += 1;
                    }
                    for (reason, count) in why {
                        s.push_str(&format!(
                            "  excluded: {count} matched instance(s): {reason}\n"
                        ));
                    }
                }
                if let Some(p) = &t.permissions {
                    s.push_str(&format!("  permissions: {p}\n"));
                }
            }
        }
        for (i, step) in t.steps.iter().enumerate() {
            let what = match (&step.error, step.would_terminate.is_empty()) {
                (Some(_), _) if t.error.is_some() => "nodes unknown".into(),
                (Some(e), _) => format!("cannot choose: {e}"),
                (None, true) => "nothing".into(),
                (None, false) => format!("would terminate {}", step.would_terminate.join(", ")),
            };
            s.push_str(&format!(
                "  step {}: {} termination{}: {what}\n",
                i + 1,
                step.terminations,
                plural(step.terminations)
            ));
        }
        for h in &t.health {
            let detail = h
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let line = match h.status {
                "lab" => format!("  health: {} lab{detail}\n", h.endpoint),
                "reachable" => format!("  health: {} {} reachable{detail}\n", h.endpoint, h.url),
                status => format!(
                    "  warning: health endpoint {} {} {status}{detail}\n",
                    h.endpoint, h.url
                ),
            };
            s.push_str(&line);
        }
        if let Some(c) = &t.capacity {
            s.push_str(&format!("  capacity: {}\n", capacity_line(c)));
        }
        for w in &t.guard_warnings {
            s.push_str(&format!("  warning: guard {w}\n"));
        }
    }
    s.push_str(&format!("\nkafka: {}\n", p.kafka));
    s.push_str(&format!(
        "\nduration:\n  worst case: {} = {}\n  typical:    ~{} (estimate: {}; a failing step ends \
         its target's ladder early)\n",
        d(estimate.worst),
        estimate.worst_parts,
        d(estimate.typical),
        estimate.typical_parts
    ));
    s
}

fn describe_node(n: &NodeOut) -> String {
    let mut parts = Vec::new();
    if n.host != n.id {
        parts.push(format!("host {}", n.host));
    }
    parts.extend(n.private_ip.clone());
    parts.extend(n.zone.clone());
    parts.extend(n.instance_type.clone());
    parts.push(n.lifecycle.to_owned());
    if !n.tags.is_empty() {
        let tags: Vec<String> = n.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags {}", tags.join(",")));
    }
    format!("{} ({})", n.id, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_uses_the_run_client_with_its_credentials() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let serve = std::thread::spawn(move || {
            let req = server.recv().unwrap();
            let seen = (
                req.url().to_owned(),
                req.headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string()),
            );
            req.respond(tiny_http::Response::from_string("{\"apps\": []}"))
                .unwrap();
            seen
        });
        // Credentials in the URL become basic auth, and never appear in what is printed.
        let url = Endpoint::Url(format!("http://ops:s3cret@127.0.0.1:{port}/prefix"));
        let out = check_health("marathon", &url, &HttpSettings::default());
        assert_eq!(out.status, "reachable", "{out:?}");
        assert_eq!(
            serve.join().unwrap(),
            (
                "/prefix/v2/apps".to_owned(),
                Some("Basic b3BzOnMzY3JldA==".to_owned())
            )
        );
        assert!(!format!("{out:?}").contains("s3cret"), "{out:?}");
    }

    #[test]
    fn health_check_says_why_it_failed() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Endpoint::Url(format!("http://127.0.0.1:{port}"));
        let out = check_health("storm_ui", &url, &HttpSettings::default());
        assert_eq!(out.status, "unreachable");
        let detail = out.detail.unwrap();
        assert!(detail.contains("cannot connect"), "{detail}");
        assert!(detail.contains(&format!("127.0.0.1:{port}")), "{detail}");
    }
}
