//! Raw spec → validated [`Plan`]: every semantic rule of the plan language, each problem located
//! by field path through the span-keeping tree. Pure: no network, no files, no clock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use indexmap::IndexMap;

use crate::analysis::Search;

use super::de;
use super::diag::{Diagnostic, Severity, Span};
use super::model::*;
use super::spec::*;
use super::yaml::{Kind, Node, Path};

mod lag_source;

/// Validate a raw plan. Returns the plan only when there is no error; warnings come either way.
pub fn check(raw: &RawPlan, tree: &Node) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut c = Checker {
        tree,
        problems: Vec::new(),
        unparsed: HashSet::new(),
    };
    let plan = c.plan(raw);
    let ok = !c.problems.iter().any(Diagnostic::is_error);
    (ok.then_some(plan), c.problems)
}

struct Checker<'a> {
    tree: &'a Node,
    problems: Vec<Diagnostic>,
    /// Values whose text did not parse (a bad duration): checks of their meaning are skipped.
    unparsed: HashSet<Path>,
}

/// What each target is checked against, shared by all targets of the plan.
struct TargetCtx<'p> {
    lab: Option<&'p Lab>,
    apps: &'p IndexMap<String, Application>,
    /// Lab cluster → the target that already selects it (a lab cluster serves one target).
    lab_clusters: HashMap<String, String>,
}

const FIS_NOTICE_MIN: Duration = Duration::from_secs(120);
const FIS_NOTICE_MAX: Duration = Duration::from_secs(15 * 60);
const LAB_MAX_NODES: u32 = 64;
const MAX_PARTITIONS: u32 = 10_000;
const MAX_MESSAGE_BYTES: u32 = 1 << 20;
const LAB_MAX_SLOTS_PER_NODE: u32 = 256;
/// The longest duration a plan may hold (30 days): every later `Instant + duration`, sum of
/// steps and estimate stays far inside what the clock types can hold.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Checker<'_> {
    // ---- reporting ------------------------------------------------------------------------

    /// Where to point for `path`: the value, or for a mapping value its key (a block mapping's
    /// own span starts at its first child, which would point at the wrong line).
    fn span_of(&self, path: &Path) -> Span {
        let (node, depth) = self.tree.nearest(path);
        if matches!(node.kind, Kind::Map(_)) {
            let found = Path(path.0[..depth].to_vec());
            if let Some(key) = self.tree.key_span(&found) {
                return key;
            }
        }
        node.span
    }

    /// True when nothing at or above `path` already failed to parse: checks that read it can run.
    fn intact(&self, path: &Path) -> bool {
        !self.tree.under_poison(path) && !self.unparsed.contains(path)
    }

    fn push(&mut self, severity: Severity, path: &Path, msg: String, help: Option<String>) {
        if !self.intact(path) {
            return;
        }
        self.problems.push(Diagnostic {
            severity,
            path: Some(path.clone()),
            span: Some(self.span_of(path)),
            message: msg,
            help,
            secrets: Vec::new(),
        });
    }

    fn error(&mut self, path: &Path, msg: impl Into<String>) {
        self.push(Severity::Error, path, msg.into(), None);
    }

    fn error_help(&mut self, path: &Path, msg: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, path, msg.into(), Some(help.into()));
    }

    /// An error about a value that holds a secret: the excerpt hides the value.
    fn error_secret(&mut self, path: &Path, msg: impl Into<String>, help: impl Into<String>) {
        let before = self.problems.len();
        self.error_help(path, msg, help);
        let value = self.tree.find(path).map(|n| n.span);
        if let (Some(d), Some(span)) = (self.problems.get_mut(before), value) {
            d.secrets.push(span);
        }
    }

    fn warn(&mut self, path: &Path, msg: impl Into<String>) {
        self.push(Severity::Warning, path, msg.into(), None);
    }

    fn present(&self, path: &Path) -> bool {
        self.tree.find(path).is_some()
    }

    // ---- typed values -----------------------------------------------------------------------

    fn duration(
        &mut self,
        path: &Path,
        text: Option<&DurationText>,
        default: Duration,
    ) -> Duration {
        match text {
            None => default,
            Some(t) => match parse_duration(&t.0) {
                Ok(d) => d,
                Err(msg) => {
                    self.error_help(
                        path,
                        msg,
                        "write a number with a unit: 500ms, 20s, 2m, 1h (at most 30days)",
                    );
                    self.unparsed.insert(path.clone());
                    default
                }
            },
        }
    }

    fn required_duration(&mut self, path: &Path, text: &DurationText) -> Duration {
        self.duration(path, Some(text), Duration::ZERO)
    }

    fn positive(&mut self, path: &Path, what: &str, d: Duration) {
        if d.is_zero() && self.present(path) {
            self.error(path, format!("{what} must be longer than 0s"));
        }
    }

    fn nonempty_text(&mut self, path: &Path, what: &str, value: &str) {
        if value.trim().is_empty() {
            self.error(path, format!("{what} must not be empty"));
        }
    }

    // ---- the plan -----------------------------------------------------------------------------

    fn plan(&mut self, raw: &RawPlan) -> Plan {
        let root = Path::root();
        if raw.version != 1 {
            self.error_help(
                &root.key("version"),
                format!("unsupported plan version {}", raw.version),
                "this spotdrill reads plans of version 1",
            );
        }
        self.nonempty_text(&root.key("name"), "the plan name", &raw.name);
        let lab = raw.lab.as_ref().map(|l| self.lab(l, &root.key("lab")));
        let kafka = self.kafka(&raw.kafka, lab.is_some(), &root.key("kafka"));
        let observe = self.observe(raw.observe.as_ref(), &root.key("observe"));
        let applications = self.applications(raw, &kafka, lab.as_ref(), &observe);
        let targets = self.targets(raw, lab.as_ref(), &applications);
        let locks = raw
            .locks
            .as_ref()
            .and_then(|l| self.locks(l, &root.key("locks")));
        Plan {
            version: raw.version,
            name: raw.name.trim().to_owned(),
            description: raw.description.clone(),
            kafka,
            lab,
            applications,
            targets,
            observe,
            locks,
        }
    }

    /// The shared lock backend: a DynamoDB table with a valid name (and region).
    fn locks(&mut self, raw: &RawLocks, path: &Path) -> Option<LockTable> {
        let Some(d) = &raw.dynamodb else {
            self.error_help(
                path,
                "`locks` names no backend",
                "write `locks: {dynamodb: {table: NAME, region: REGION}}`, or leave `locks` out for lock files on this machine",
            );
            return None;
        };
        let dpath = path.key("dynamodb");
        if let Err(why) = check_table_name(d.table.trim()) {
            self.error(&dpath.key("table"), why);
        }
        if let Some(region) = &d.region
            && !is_region(region)
        {
            self.error(
                &dpath.key("region"),
                format!("`{region}` is not an AWS region name (like us-east-1)"),
            );
        }
        Some(LockTable {
            table: d.table.trim().to_owned(),
            region: d.region.clone(),
        })
    }

    fn kafka(&mut self, raw: &RawKafka, has_lab: bool, path: &Path) -> Kafka {
        let bpath = path.key("brokers");
        let brokers = if raw.brokers.trim() == "lab" {
            if !has_lab {
                self.error_help(
                    &bpath,
                    "`brokers: lab` needs a `lab:` section describing the lab",
                    "add a `lab:` section, or give the brokers as host:port,host:port",
                );
            }
            Brokers::Lab
        } else {
            match parse_brokers(&raw.brokers) {
                Ok(list) => Brokers::External(list),
                Err(msg) => {
                    self.error_help(&bpath, msg, "write `lab` or host:port,host:port");
                    Brokers::External(Vec::new())
                }
            }
        };
        let security = raw.security.as_ref().map(|s| {
            let spath = path.key("security");
            if brokers == Brokers::Lab {
                self.error(&spath, "the lab broker takes no security settings");
            }
            self.security(s, &spath)
        });
        Kafka { brokers, security }
    }

    fn security(&mut self, raw: &RawSecurity, path: &Path) -> Security {
        let sasl_protocol = matches!(
            raw.protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        );
        let sasl = if sasl_protocol {
            self.sasl(raw, path)
        } else {
            self.without_sasl(raw, path);
            None
        };
        if let Some(var) = &raw.password_env
            && !is_env_name(var)
        {
            self.error_help(
                &path.key("password_env"),
                format!("`{var}` is not an environment variable name"),
                "password_env names the variable that holds the password (e.g. KAFKA_PASSWORD); \
                     the password itself never goes in a plan",
            );
        }
        if let Some(ca) = &raw.ca_file {
            self.nonempty_text(&path.key("ca_file"), "ca_file", ca);
        }
        Security {
            protocol: raw.protocol,
            sasl,
            ca_file: raw.ca_file.clone(),
        }
    }

    /// A SASL protocol needs a mechanism, a username and the password's variable.
    fn sasl(&mut self, raw: &RawSecurity, path: &Path) -> Option<Sasl> {
        let missing: Vec<&str> = [
            ("sasl_mechanism", raw.sasl_mechanism.is_none()),
            ("username", raw.username.is_none()),
            ("password_env", raw.password_env.is_none()),
        ]
        .into_iter()
        .filter_map(|(field, missing)| missing.then_some(field))
        .collect();
        if !missing.is_empty() {
            self.error(
                path,
                format!(
                    "a SASL protocol also needs {}",
                    de::one_of(&missing).replace(" or ", " and ")
                ),
            );
        }
        let (Some(mechanism), Some(username), Some(password_env)) =
            (raw.sasl_mechanism, &raw.username, &raw.password_env)
        else {
            return None;
        };
        Some(Sasl {
            mechanism,
            username: username.clone(),
            password_env: password_env.clone(),
        })
    }

    /// An error at each field of `set` that is set, saying `why`.
    fn refuse_set(&mut self, path: &Path, set: &[(&str, bool)], why: impl Fn(&str) -> String) {
        for (field, _) in set.iter().filter(|(_, is_set)| *is_set) {
            self.error(&path.key(field), why(field));
        }
    }

    /// Without SASL, its fields have no use.
    fn without_sasl(&mut self, raw: &RawSecurity, path: &Path) {
        let set = [
            ("sasl_mechanism", raw.sasl_mechanism.is_some()),
            ("username", raw.username.is_some()),
            ("password_env", raw.password_env.is_some()),
        ];
        self.refuse_set(path, &set, |f| {
            format!("`{f}` needs protocol SASL_PLAINTEXT or SASL_SSL")
        });
    }

    // ---- lab ----------------------------------------------------------------------------------

    fn lab(&mut self, raw: &RawLab, path: &Path) -> Lab {
        let tpath = path.key("topics");
        if raw.topics.is_empty() {
            self.error(&tpath, "the lab needs at least one topic");
        }
        let mut topics = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, t) in raw.topics.iter().enumerate() {
            let p = tpath.index(i);
            self.nonempty_text(&p.key("name"), "the topic name", &t.name);
            if let Some(first) = seen.insert(&t.name, i) {
                self.error(
                    &p.key("name"),
                    format!(
                        "duplicate topic `{}`: already defined at lab.topics[{first}]",
                        t.name
                    ),
                );
            }
            topics.push(self.lab_topic(t, &p));
        }
        let cpath = path.key("clusters");
        if raw.clusters.is_empty() {
            self.error(&cpath, "the lab needs at least one cluster");
        }
        let mut clusters = IndexMap::new();
        let mut groups: HashMap<String, String> = HashMap::new();
        for (name, c) in &raw.clusters {
            let cluster = self.lab_cluster(c, &cpath.key(name), &topics, &mut groups);
            clusters.insert(name.clone(), cluster);
        }
        Lab { topics, clusters }
    }

    /// A lab topic's partitions, rate and message size are in range.
    fn lab_topic(&mut self, t: &RawLabTopic, p: &Path) -> LabTopic {
        if !(1..=MAX_PARTITIONS).contains(&t.partitions) {
            self.error(
                &p.key("partitions"),
                format!(
                    "partitions must be between 1 and {MAX_PARTITIONS}, got {}",
                    t.partitions
                ),
            );
        }
        let rate = match parse_rate(&t.rate.0) {
            Ok(r) if r > 0.0 => r,
            Ok(_) => {
                self.error(&p.key("rate"), "the lab producer needs a rate above 0/s");
                0.0
            }
            Err(msg) => {
                self.error_help(&p.key("rate"), msg, "write messages per second, e.g. 400/s");
                0.0
            }
        };
        let message_bytes = t.message_bytes.unwrap_or(512);
        if !(1..=MAX_MESSAGE_BYTES).contains(&message_bytes) {
            self.error(
                &p.key("message_bytes"),
                format!(
                    "message_bytes must be between 1 and {MAX_MESSAGE_BYTES} (1 MiB), got {message_bytes}"
                ),
            );
        }
        LabTopic {
            name: t.name.clone(),
            partitions: t.partitions,
            rate,
            message_bytes,
            timestamp_type: t.timestamp_type.unwrap_or(TimestampType::CreateTime),
        }
    }

    fn lab_cluster(
        &mut self,
        raw: &RawLabCluster,
        path: &Path,
        topics: &[LabTopic],
        groups: &mut HashMap<String, String>,
    ) -> LabCluster {
        self.lab_cluster_size(raw, path);
        let detection_delay = self.duration(
            &path.key("detection_delay"),
            raw.detection_delay.as_ref(),
            Duration::from_secs(3),
        );
        let replacement_delay = self.replacement_delay(raw, &path.key("replacement"));
        let wpath = path.key("workloads");
        if raw.workloads.is_empty() {
            self.error(&wpath, "a lab cluster needs at least one workload");
        }
        let mut workloads = IndexMap::new();
        for (name, w) in &raw.workloads {
            let workload = self.lab_workload(w, &wpath.key(name), name, topics, groups);
            workloads.insert(name.clone(), workload);
        }
        let cluster = LabCluster {
            kind: raw.kind,
            nodes: raw.nodes,
            slots_per_node: raw.slots_per_node,
            detection_delay,
            replacement_delay,
            workloads,
        };
        self.lab_slots(raw, &cluster, &wpath);
        cluster
    }

    /// The node count and slots per node are in range.
    fn lab_cluster_size(&mut self, raw: &RawLabCluster, path: &Path) {
        if !(1..=LAB_MAX_NODES).contains(&raw.nodes) {
            self.error(
                &path.key("nodes"),
                format!(
                    "a lab cluster has between 1 and {LAB_MAX_NODES} nodes, got {}",
                    raw.nodes
                ),
            );
        }
        if !(1..=LAB_MAX_SLOTS_PER_NODE).contains(&raw.slots_per_node) {
            self.error(
                &path.key("slots_per_node"),
                format!(
                    "slots_per_node must be between 1 and {LAB_MAX_SLOTS_PER_NODE}, got {}",
                    raw.slots_per_node
                ),
            );
        }
    }

    /// How long a terminated lab node takes to come back; `None` when replacement is off.
    fn replacement_delay(&mut self, raw: &RawLabCluster, rpath: &Path) -> Option<Duration> {
        match &raw.replacement {
            Some(r) if r.enabled == Some(false) => None,
            Some(r) => Some(self.duration(
                &rpath.key("delay"),
                r.delay.as_ref(),
                Duration::from_secs(20),
            )),
            None => Some(Duration::from_secs(20)),
        }
    }

    /// One lab workload: its own consumer group, known topics, a sane cost and commit interval.
    fn lab_workload(
        &mut self,
        w: &RawWorkload,
        p: &Path,
        name: &str,
        topics: &[LabTopic],
        groups: &mut HashMap<String, String>,
    ) -> Workload {
        if w.workers == 0 {
            self.error(&p.key("workers"), "workers must be at least 1");
        }
        self.nonempty_text(&p.key("group"), "the consumer group", &w.group);
        if let Some(other) = groups.insert(w.group.clone(), name.to_string())
            && !w.group.trim().is_empty()
        {
            self.error(
                &p.key("group"),
                format!(
                    "group `{}` is already used by lab workload `{other}`: each workload needs its own group",
                    w.group
                ),
            );
        }
        self.topic_refs(&p.key("topics"), &w.topics, topics);
        let cost = self.required_duration(&p.key("cost_per_message"), &w.cost_per_message);
        if cost > Duration::from_secs(60) {
            self.error(
                &p.key("cost_per_message"),
                format!(
                    "cost_per_message {} is more than a minute per message",
                    humantime::format_duration(cost)
                ),
            );
        }
        let commit_interval = self.duration(
            &p.key("commit_interval"),
            w.commit_interval.as_ref(),
            Duration::from_secs(5),
        );
        self.positive(
            &p.key("commit_interval"),
            "commit_interval",
            commit_interval,
        );
        let workload = Workload {
            workers: w.workers,
            group: w.group.clone(),
            topics: w.topics.clone(),
            cost_per_message: cost,
            commit_interval,
            stall_after_restart: w.stall_after_restart.unwrap_or(false),
        };
        self.throughput(p, name, &workload, topics);
        workload
    }

    /// The workloads' workers fit in the cluster's slots.
    fn lab_slots(&mut self, raw: &RawLabCluster, cluster: &LabCluster, wpath: &Path) {
        if cluster.workers() > cluster.slots() && raw.nodes > 0 && raw.slots_per_node > 0 {
            self.error_help(
                wpath,
                format!(
                    "the workloads need {} slots but the cluster has {} nodes × {} slots = {}",
                    cluster.workers(),
                    cluster.nodes,
                    cluster.slots_per_node,
                    cluster.slots()
                ),
                "add nodes or slots_per_node, or run fewer workers",
            );
        }
    }

    /// Warn when a workload cannot keep up with its topics even at full capacity.
    fn throughput(&mut self, path: &Path, name: &str, w: &Workload, topics: &[LabTopic]) {
        let rate: f64 = topics
            .iter()
            .filter(|t| w.topics.contains(&t.name))
            .map(|t| t.rate)
            .sum();
        if w.cost_per_message.is_zero() || w.workers == 0 || rate == 0.0 {
            return;
        }
        let capacity = f64::from(w.workers) / w.cost_per_message.as_secs_f64();
        if capacity < rate {
            self.warn(
                path,
                format!(
                    "workload `{name}` cannot keep up even at full capacity: {} workers × 1/{} = {capacity:.0}/s < {rate:.0}/s produced",
                    w.workers,
                    humantime::format_duration(w.cost_per_message)
                ),
            );
        }
    }

    fn topic_refs(&mut self, path: &Path, names: &[String], topics: &[LabTopic]) {
        if names.is_empty() {
            self.error(path, "at least one topic is needed");
        }
        let known: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        for (i, name) in names.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let help = match suggest(name, &known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("lab topics: {}", join_ticked(&known)),
                };
                self.error_help(
                    &path.index(i),
                    format!("topic `{name}` is not one of the lab's topics"),
                    help,
                );
            }
        }
    }

    // ---- applications -------------------------------------------------------------------------

    fn applications(
        &mut self,
        raw: &RawPlan,
        kafka: &Kafka,
        lab: Option<&Lab>,
        observe: &Observe,
    ) -> IndexMap<String, Application> {
        let path = Path::root().key("applications");
        if raw.applications.is_empty() {
            self.error(&path, "a plan judges at least one application");
        }
        let used: HashSet<&String> = raw
            .targets
            .values()
            .flat_map(|t| t.applications.iter())
            .collect();
        // Only say an application is unused when every target's list could be read.
        let targets_readable = raw
            .targets
            .keys()
            .all(|t| self.intact(&Path::root().key("targets").key(t).key("applications")))
            && self.intact(&Path::root().key("targets"));
        let mut apps = IndexMap::new();
        for (name, a) in &raw.applications {
            let p = path.key(name);
            self.group_and_topics(a, &p);
            let lag = self.lag_source(a.lag.as_ref(), &p);
            if let (Brokers::Lab, Some(lab)) = (&kafka.brokers, lab)
                && !(a.lag.is_some() && a.topics.is_empty())
            {
                self.topic_refs(&p.key("topics"), &a.topics, &lab.topics);
            }
            let (max_lag, max_recovery) = self.slo(a, &p, observe);
            let abort_lag = self.abort_lag(a, &p, max_lag);
            if !used.contains(name) && targets_readable && !raw.targets.is_empty() {
                self.warn(
                    &p,
                    format!("application `{name}` is not judged by any target"),
                );
            }
            let mut workload_kind = None;
            apps.insert(
                name.clone(),
                Application {
                    group: a.group.clone(),
                    topics: a.topics.clone(),
                    max_lag,
                    max_recovery,
                    abort_lag,
                    scheduled_as: self.scheduled_as(a, &p, name, &mut workload_kind),
                    workload_kind,
                    isolation: a.isolation.unwrap_or_default(),
                    lag,
                },
            );
        }
        self.isolation_per_group(raw, &path);
        apps
    }

    /// Applications measured in one consumer group read it the same way: the group's lag is
    /// measured once, against one end (H or the last stable offset).
    fn isolation_per_group(&mut self, raw: &RawPlan, path: &Path) {
        let mut first: HashMap<&str, (&str, Isolation)> = HashMap::new();
        for (name, a) in raw.applications.iter().filter(|(_, a)| a.lag.is_none()) {
            let isolation = a.isolation.unwrap_or_default();
            let Some(&(other, theirs)) = first.get(a.group.as_str()) else {
                first.insert(&a.group, (name, isolation));
                continue;
            };
            if theirs != isolation {
                let p = path.key(name);
                let at = if self.present(&p.key("isolation")) {
                    p.key("isolation")
                } else {
                    p
                };
                self.error_help(
                    &at,
                    format!(
                        "application `{name}` reads group `{}` with isolation {}, but `{other}` \
                         reads it with {}",
                        a.group,
                        isolation.name(),
                        theirs.name()
                    ),
                    "one consumer group is measured one way: give both the same `isolation`",
                );
            }
        }
    }

    /// An application's SLO: max_lag and max_recovery, positive; max_recovery within the step
    /// timeout (else a warning).
    /// The name the scheduler knows the application by (and, for `{deployment: …}` or
    /// `{statefulset: …}`, the workload's kind).
    fn scheduled_as(
        &mut self,
        a: &RawApplication,
        p: &Path,
        name: &str,
        kind: &mut Option<&'static str>,
    ) -> String {
        let sp = p.key("scheduled_as");
        let (text, path) = match &a.scheduled_as {
            None => return name.to_owned(),
            Some(RawScheduledAs::Name(s)) => (s.as_str(), sp),
            Some(RawScheduledAs::Workload(w)) => match (&w.deployment, &w.statefulset) {
                (Some(d), None) => {
                    *kind = Some("Deployment");
                    (d.as_str(), sp.key("deployment"))
                }
                (None, Some(s)) => {
                    *kind = Some("StatefulSet");
                    (s.as_str(), sp.key("statefulset"))
                }
                _ => {
                    self.error(&sp, "name exactly one of `deployment` and `statefulset`");
                    return name.to_owned();
                }
            },
        };
        self.nonempty_text(&path, "scheduled_as", text);
        if kind.is_some() && text.trim().split('/').count() != 2 {
            self.error(&path, format!("`{}` is not `namespace/name`", text.trim()));
        }
        text.trim().to_owned()
    }

    fn slo(&mut self, a: &RawApplication, p: &Path, observe: &Observe) -> (Duration, Duration) {
        let max_lag = self.required_duration(&p.key("slo").key("max_lag"), &a.slo.max_lag);
        self.positive(&p.key("slo").key("max_lag"), "max_lag", max_lag);
        let max_recovery =
            self.required_duration(&p.key("slo").key("max_recovery"), &a.slo.max_recovery);
        self.positive(
            &p.key("slo").key("max_recovery"),
            "max_recovery",
            max_recovery,
        );
        if max_recovery > observe.timeout {
            self.warn(
                &p.key("slo").key("max_recovery"),
                format!(
                    "max_recovery {} is longer than observe.timeout {}: a step times out before this SLO can fail",
                    humantime::format_duration(max_recovery),
                    humantime::format_duration(observe.timeout)
                ),
            );
        }
        (max_lag, max_recovery)
    }

    /// The lag that stops the ladder: above slo.max_lag.
    fn abort_lag(&mut self, a: &RawApplication, p: &Path, max_lag: Duration) -> Option<Duration> {
        let t = a.abort_lag.as_ref()?;
        let ap = p.key("abort_lag");
        let d = self.required_duration(&ap, t);
        if d <= max_lag && self.intact(&p.key("slo").key("max_lag")) {
            self.error(
                &ap,
                format!(
                    "abort_lag {} must exceed slo.max_lag {}: the guard would stop the ladder before the SLO is judged",
                    humantime::format_duration(d),
                    humantime::format_duration(max_lag)
                ),
            );
        }
        Some(d)
    }

    // ---- targets ------------------------------------------------------------------------------

    fn targets(
        &mut self,
        raw: &RawPlan,
        lab: Option<&Lab>,
        apps: &IndexMap<String, Application>,
    ) -> IndexMap<String, Target> {
        let path = Path::root().key("targets");
        if raw.targets.is_empty() {
            self.error(&path, "a plan needs at least one target");
        }
        let mut ctx = TargetCtx {
            lab,
            apps,
            lab_clusters: HashMap::new(),
        };
        let mut targets = IndexMap::new();
        for (name, t) in &raw.targets {
            let target = self.target(name, t, &path.key(name), &mut ctx);
            targets.insert(name.clone(), target);
        }
        targets
    }

    fn target(&mut self, name: &str, raw: &RawTarget, path: &Path, ctx: &mut TargetCtx) -> Target {
        let (lab, apps) = (ctx.lab, ctx.apps);
        let nodes = self.nodes(name, raw, &path.key("nodes"), ctx);
        let health = self.health(raw, &path.key("health"), &nodes);
        let running = self.running(raw, path, &health);
        self.target_applications(raw, &path.key("applications"), apps, &nodes, lab);
        let lpath = path.key("ladder");
        let search = self.search(&raw.ladder, &lpath);
        let ladder = match search {
            Some(_) => Vec::new(),
            None => self.ladder(raw.ladder.steps(), &lpath, &nodes),
        };
        self.ladder_fits_lab(&lpath, &ladder, &nodes, lab);
        self.search_fits(raw, &lpath, search, &nodes, lab);
        let required_tolerance = self.required_tolerance(raw, path, &ladder, search);
        let selection = raw.selection.unwrap_or(Selection::Random);
        if raw.seed.is_some() && selection != Selection::Random {
            self.warn(
                &path.key("seed"),
                "seed only matters with `selection: random`",
            );
        }
        let guards = self.guards(raw, &path.key("guards"), &ladder, &nodes, lab);
        if guards.max_per_topology.is_some() && !knows_placement(raw.kind, &health) {
            self.error_help(
                &path.key("guards").key("max_per_topology"),
                "max_per_topology needs to know which node runs which topology or app",
                health_help(raw.kind),
            );
        }
        let safety_multiple = raw.safety_multiple.unwrap_or(3.0);
        if !(safety_multiple.is_finite() && safety_multiple > 0.0 && safety_multiple <= 100.0) {
            self.error(
                &path.key("safety_multiple"),
                format!("safety_multiple must be above 0 and at most 100, not {safety_multiple}"),
            );
        }
        Target {
            kind: raw.kind,
            nodes,
            health,
            running,
            applications: raw.applications.clone(),
            ladder,
            search,
            selection,
            seed: raw.seed,
            required_tolerance,
            guards,
            cumulative: raw.cumulative.unwrap_or(false),
            safety_multiple,
        }
    }

    /// No step of a lab target terminates more nodes than its lab cluster has.
    fn ladder_fits_lab(
        &mut self,
        lpath: &Path,
        ladder: &[Rung],
        nodes: &NodeSelector,
        lab: Option<&Lab>,
    ) {
        if let (NodeSelector::Lab { cluster, .. }, Some(lab)) = (nodes, lab)
            && let Some(c) = lab.clusters.get(cluster)
            && let Some((i, n)) = ladder
                .iter()
                .enumerate()
                .find_map(|(i, r)| r.count().filter(|&n| n > c.nodes).map(|n| (i, n)))
        {
            self.error(
                &lpath.index(i),
                format!(
                    "step {n} terminates more nodes than lab cluster `{cluster}` has ({})",
                    c.nodes
                ),
            );
        }
    }

    /// `ladder: {search: {from, max}}`: from ≥ 1 and max ≥ from.
    fn search(&mut self, raw: &RawLadder, path: &Path) -> Option<Search> {
        let RawLadder::Search(s) = raw else {
            return None;
        };
        let (from, max) = (s.search.from, s.search.max);
        let p = path.key("search");
        if from == 0 {
            self.error_help(
                &p.key("from"),
                "the search starts at 0 terminations: a step terminates at least 1 node",
                "start the search at 1 or more, e.g. {search: {from: 1, max: 12}}",
            );
        } else if max < from {
            self.error_help(
                &p.key("max"),
                format!("the search's max {max} is below its from {from}"),
                "max is the most terminations the search may try: at least from",
            );
        }
        Some(Search { from, max })
    }

    /// A search's max fits the lab cluster's nodes and `guards.max_terminations`.
    fn search_fits(
        &mut self,
        raw: &RawTarget,
        lpath: &Path,
        search: Option<Search>,
        nodes: &NodeSelector,
        lab: Option<&Lab>,
    ) {
        let Some(s) = search else { return };
        let p = lpath.key("search").key("max");
        if let (NodeSelector::Lab { cluster, .. }, Some(lab)) = (nodes, lab)
            && let Some(c) = lab.clusters.get(cluster)
            && s.max > c.nodes
        {
            self.error_help(
                &p,
                format!(
                    "the search's max {} is more nodes than lab cluster `{cluster}` has ({})",
                    s.max, c.nodes
                ),
                format!("lower max to {} or fewer", c.nodes),
            );
        }
        let guard = raw.guards.as_ref().and_then(|g| g.max_terminations);
        if let Some(g) = guard.filter(|&g| g > 0 && s.max > g) {
            self.error_help(
                &p,
                format!(
                    "the search's max {} is above guards.max_terminations {g}: no step could try it",
                    s.max
                ),
                format!("lower max to {g} or fewer, or raise guards.max_terminations"),
            );
        }
    }

    /// The tolerance a run must reach: as given (a step must reach it), else the largest step
    /// (for a search: its `from`, the first step must pass).
    fn required_tolerance(
        &mut self,
        raw: &RawTarget,
        path: &Path,
        ladder: &[Rung],
        search: Option<Search>,
    ) -> u32 {
        let counts = || ladder.iter().filter_map(|r| r.count());
        let largest = search.map_or_else(|| counts().max().unwrap_or(0), |s| s.max);
        let Some(r) = raw.required_tolerance else {
            return search.map_or(largest, |s| s.from);
        };
        let listed = search.is_some() || counts().next().is_some();
        if r > largest && self.intact(&path.key("ladder")) && listed {
            self.error_help(
                &path.key("required_tolerance"),
                format!(
                    "required_tolerance {r} is above the largest ladder step ({largest}): no run could meet it"
                ),
                format!("add a step of {r} or more to the ladder, or lower required_tolerance"),
            );
        }
        r
    }

    /// Listed rungs: numbers strictly increasing (market rungs aside: their count is known when
    /// their step runs), at most one market rung, and only where nodes sit in spot markets.
    fn ladder(&mut self, raw: &[Rung], path: &Path, nodes: &NodeSelector) -> Vec<Rung> {
        if raw.is_empty() {
            self.error_help(
                path,
                "the ladder is empty",
                "list the terminations per step, e.g. [1, 2, 3]",
            );
        }
        let mut before: Option<u32> = None;
        let mut market_at: Option<usize> = None;
        for (i, rung) in raw.iter().enumerate() {
            match rung.count() {
                Some(n) => {
                    self.ladder_count(&path.index(i), n, before);
                    before = Some(n);
                }
                None => self.market_rung(&path.index(i), &mut market_at, i, nodes),
            }
        }
        raw.to_vec()
    }

    /// A numeric rung: at least 1, and above the numeric rung before it.
    fn ladder_count(&mut self, p: &Path, n: u32, before: Option<u32>) {
        if n == 0 {
            self.error(p, "a step terminates at least 1 node, got 0");
        } else if let Some(b) = before.filter(|&b| n <= b) {
            self.error_help(
                p,
                format!("the ladder must be strictly increasing: {n} follows {b}"),
                "each step terminates more nodes than the one before",
            );
        }
    }

    /// `{market: largest}`: once per ladder, and not for lab nodes (they sit in no market).
    fn market_rung(
        &mut self,
        p: &Path,
        market_at: &mut Option<usize>,
        i: usize,
        nodes: &NodeSelector,
    ) {
        if let Some(first) = *market_at {
            self.error_help(
                p,
                format!(
                    "the ladder takes the largest market twice (first at step {})",
                    first + 1
                ),
                "a second identical step measures the same thing again: keep one",
            );
        }
        market_at.get_or_insert(i);
        if matches!(nodes, NodeSelector::Lab { .. }) {
            self.error_help(
                p,
                "lab nodes sit in no spot market (they have no instance type or zone)",
                "use a number of terminations, or a target whose nodes are EC2 or Kubernetes nodes",
            );
        }
    }

    fn target_applications(
        &mut self,
        raw: &RawTarget,
        path: &Path,
        apps: &IndexMap<String, Application>,
        nodes: &NodeSelector,
        lab: Option<&Lab>,
    ) {
        if raw.applications.is_empty() {
            self.error(path, "a target judges at least one application");
        }
        let known: Vec<&str> = apps.keys().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let cluster = nodes
            .lab_cluster()
            .zip(lab)
            .and_then(|(cluster, lab)| lab.clusters.get(cluster).map(|c| (cluster, c)));
        for (i, name) in raw.applications.iter().enumerate() {
            let p = path.index(i);
            if !seen.insert(name) {
                self.error(&p, format!("application `{name}` is listed twice"));
                continue;
            }
            let Some(app) = apps.get(name) else {
                let help = match suggest(name, &known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if known.is_empty() => "no applications are defined".to_owned(),
                    None => format!("defined applications: {}", join_ticked(&known)),
                };
                self.error_help(
                    &p,
                    format!("unknown application `{name}`: it is not under `applications:`"),
                    help,
                );
                continue;
            };
            if let Some(kind) = app
                .workload_kind
                .filter(|_| raw.kind != ClusterKind::Kubernetes)
            {
                self.error(
                    &p,
                    format!(
                        "application `{name}` is scheduled as a Kubernetes {kind}; a {} target \
                         cannot follow it",
                        kind_name(raw.kind)
                    ),
                );
            }
            if let Some((cname, c)) = cluster
                && !(app.lag.is_some() && app.group.is_empty())
                && !c.workloads.values().any(|w| w.group == app.group)
            {
                self.error_help(
                        &p,
                        format!(
                            "application `{name}` (group `{}`) has no workload in lab cluster `{cname}`",
                            app.group
                        ),
                        "add a workload with this group to the cluster, or judge it on the target whose cluster runs it",
                    );
            }
        }
    }

    fn nodes(
        &mut self,
        target: &str,
        raw: &RawTarget,
        path: &Path,
        ctx: &mut TargetCtx,
    ) -> NodeSelector {
        let n = &raw.nodes;
        self.provider_fields(n, path);
        self.region_name(n, path);
        self.zones(n, path);
        self.instance_types(n, path);
        let tags = n.tags.clone().unwrap_or_default();
        for (k, _) in &tags {
            if k.trim().is_empty() {
                self.error(&path.key("tags"), "tag keys must not be empty");
            }
        }
        match n.provider {
            Provider::Lab => {
                let cluster = self.lab_cluster_ref(target, raw, path, ctx);
                let notice = self.lab_notice(n, path);
                NodeSelector::Lab { cluster, notice }
            }
            Provider::AwsEc2 => self.ec2_selector(n, path, tags),
            Provider::AwsAsg => self.asg_selector(n, path),
            Provider::AwsFis => self.fis_selector(n, path, tags),
            Provider::Kubernetes => self.kube_selector(target, raw, path, ctx),
        }
    }

    /// Every field set in `nodes` applies to its provider.
    fn provider_fields(&mut self, n: &RawNodes, path: &Path) {
        let provider = n.provider;
        let set: [(&str, bool); 16] = [
            ("cluster", n.cluster.is_some()),
            ("region", n.region.is_some()),
            ("tags", n.tags.is_some()),
            ("availability_zones", n.availability_zones.is_some()),
            ("instance_types", n.instance_types.is_some()),
            ("spot_fleet_request", n.spot_fleet_request.is_some()),
            ("group", n.group.is_some()),
            ("replace", n.replace.is_some()),
            ("notice", n.notice.is_some()),
            ("role_arn", n.role_arn.is_some()),
            ("keep_templates", n.keep_templates.is_some()),
            ("allow_on_demand", n.allow_on_demand.is_some()),
            ("labels", n.labels.is_some()),
            ("context", n.context.is_some()),
            ("terminate", n.terminate.is_some()),
            ("drain_timeout", n.drain_timeout.is_some()),
        ];
        let allowed = provider_allows(provider);
        for (field, is_set) in set {
            if is_set && !allowed.contains(&field) {
                let mut msg = format!("`{field}` does not apply to provider {}", provider.name());
                if field == "allow_on_demand" && provider == Provider::AwsFis {
                    msg.push_str(": FIS interrupts spot instances only");
                }
                self.error_help(
                    &path.key(field),
                    msg,
                    format!(
                        "provider {} takes: {}",
                        provider.name(),
                        join_ticked(allowed)
                    ),
                );
            }
        }
    }

    fn region_name(&mut self, n: &RawNodes, path: &Path) {
        if let Some(region) = &n.region
            && !is_region(region)
        {
            self.error(
                &path.key("region"),
                format!("`{region}` is not an AWS region name (like us-east-1)"),
            );
        }
    }

    /// Each availability zone lies in the selector's region (when it names one).
    fn zones(&mut self, n: &RawNodes, path: &Path) {
        let Some(zones) = &n.availability_zones else {
            return;
        };
        let in_region = |z: &str| {
            n.region.as_ref().is_none_or(|r| {
                z.strip_prefix(r.as_str())
                    .is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase()))
            })
        };
        let region = n.region.as_deref().unwrap_or("the region");
        self.name_list(
            &path.key("availability_zones"),
            zones,
            "availability_zones is empty: leave it out to allow every zone",
            |z| in_region(z) && is_zone(z),
            |z| format!("`{z}` is not an availability zone of {region}"),
        );
    }

    fn instance_types(&mut self, n: &RawNodes, path: &Path) {
        let Some(types) = &n.instance_types else {
            return;
        };
        self.name_list(
            &path.key("instance_types"),
            types,
            "instance_types is empty: leave it out to allow every type",
            is_instance_type,
            |t| format!("`{t}` is not an EC2 instance type (like c5.xlarge)"),
        );
    }

    /// A list of names that must not be empty, each passing `ok` (else `bad` says why).
    fn name_list(
        &mut self,
        path: &Path,
        names: &[String],
        empty: &str,
        ok: impl Fn(&str) -> bool,
        bad: impl Fn(&str) -> String,
    ) {
        if names.is_empty() {
            self.error(path, empty);
        }
        for (i, name) in names.iter().enumerate() {
            if !ok(name) {
                self.error(&path.index(i), bad(name));
            }
        }
    }

    fn lab_notice(&mut self, n: &RawNodes, path: &Path) -> Duration {
        let notice = self.duration(&path.key("notice"), n.notice.as_ref(), Duration::ZERO);
        if notice > FIS_NOTICE_MAX {
            self.error(
                &path.key("notice"),
                format!(
                    "notice {} is longer than 15m",
                    humantime::format_duration(notice)
                ),
            );
        }
        notice
    }

    fn ec2_selector(
        &mut self,
        n: &RawNodes,
        path: &Path,
        tags: IndexMap<String, String>,
    ) -> NodeSelector {
        if tags.is_empty() && n.spot_fleet_request.is_none() {
            self.error_help(
                path,
                "an aws-ec2 selector needs `tags` or `spot_fleet_request`",
                "without them it would select every spot instance in the region",
            );
        }
        if let Some(sfr) = &n.spot_fleet_request
            && (!sfr.starts_with("sfr-") || sfr.len() <= 4)
        {
            self.error(
                &path.key("spot_fleet_request"),
                format!("`{sfr}` is not a spot fleet request id (sfr-…)"),
            );
        }
        NodeSelector::AwsEc2 {
            region: n.region.clone(),
            tags,
            availability_zones: n.availability_zones.clone().unwrap_or_default(),
            instance_types: n.instance_types.clone().unwrap_or_default(),
            spot_fleet_request: n.spot_fleet_request.clone(),
            allow_on_demand: n.allow_on_demand.unwrap_or(false),
        }
    }

    fn asg_selector(&mut self, n: &RawNodes, path: &Path) -> NodeSelector {
        match &n.group {
            None => self.error(
                path,
                "provider aws-asg needs `group`: the Auto Scaling group name",
            ),
            Some(g) => self.nonempty_text(&path.key("group"), "group", g),
        }
        NodeSelector::AwsAsg {
            region: n.region.clone(),
            group: n.group.clone().unwrap_or_default(),
            replace: n.replace.unwrap_or(true),
            allow_on_demand: n.allow_on_demand.unwrap_or(false),
        }
    }

    fn fis_selector(
        &mut self,
        n: &RawNodes,
        path: &Path,
        tags: IndexMap<String, String>,
    ) -> NodeSelector {
        if tags.is_empty() {
            self.error_help(
                path,
                "an aws-fis selector needs `tags`",
                "FIS targets instances by tag; without tags it would pick any spot instance",
            );
        }
        let notice = self.fis_notice(n, path);
        self.role_arn(n, path, "provider aws-fis");
        NodeSelector::AwsFis {
            region: n.region.clone(),
            tags,
            availability_zones: n.availability_zones.clone().unwrap_or_default(),
            instance_types: n.instance_types.clone().unwrap_or_default(),
            notice,
            role_arn: n.role_arn.clone().unwrap_or_default(),
            keep_templates: n.keep_templates.unwrap_or(false),
            allow_on_demand: false,
        }
    }

    /// `notice` of an FIS interruption: 2m (the default) to 15m.
    fn fis_notice(&mut self, n: &RawNodes, path: &Path) -> Duration {
        let npath = path.key("notice");
        let notice = self.duration(&npath, n.notice.as_ref(), FIS_NOTICE_MIN);
        if !(FIS_NOTICE_MIN..=FIS_NOTICE_MAX).contains(&notice) {
            self.error_help(
                &npath,
                format!(
                    "notice {} is outside what FIS allows",
                    humantime::format_duration(notice)
                ),
                "durationBeforeInterruption must be between 2m and 15m",
            );
        }
        notice
    }

    fn role_arn(&mut self, n: &RawNodes, path: &Path, who: &str) {
        match &n.role_arn {
            None => self.error(
                path,
                format!("{who} needs `role_arn`: the IAM role FIS assumes"),
            ),
            Some(arn) if !is_role_arn(arn) => self.error(
                &path.key("role_arn"),
                format!("`{arn}` is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
            ),
            Some(_) => {}
        }
    }

    fn kube_selector(
        &mut self,
        target: &str,
        raw: &RawTarget,
        path: &Path,
        ctx: &mut TargetCtx,
    ) -> NodeSelector {
        let n = &raw.nodes;
        let lab_cluster = n
            .cluster
            .is_some()
            .then(|| self.kube_lab(target, raw, path, ctx));
        let kind_path = path.parent().unwrap_or_default().key("kind");
        if raw.kind != ClusterKind::Kubernetes && self.intact(&kind_path) {
            self.error(
                &kind_path,
                format!(
                    "provider kubernetes needs `kind: kubernetes`, not `{}`",
                    kind_name(raw.kind)
                ),
            );
        }
        let labels = n.labels.clone().unwrap_or_default();
        if labels.is_empty() {
            self.error_help(
                path,
                "a kubernetes selector needs `labels`",
                "e.g. labels: {karpenter.sh/capacity-type: spot}; without them it would select every node",
            );
        }
        for (k, v) in &labels {
            if let Some(why) = label_problem(k, v) {
                self.error(&path.key("labels").key(k), why);
            }
        }
        if let Some(c) = &n.context {
            self.nonempty_text(&path.key("context"), "context", c);
        }
        let terminate = n.terminate.unwrap_or(KubeTerminate::Drain);
        let dpath = path.key("drain_timeout");
        let drain_timeout = self.duration(&dpath, n.drain_timeout.as_ref(), KUBE_DRAIN_TIMEOUT);
        if n.drain_timeout.is_some() && terminate != KubeTerminate::Drain {
            self.error(
                &dpath,
                "`drain_timeout` applies only with `terminate: drain`",
            );
        }
        let interruption = self.kube_interruption(n, path, terminate);
        NodeSelector::Kubernetes(KubeSelector {
            labels,
            lab_cluster,
            context: n.context.as_ref().map(|c| c.trim().to_owned()),
            terminate,
            region: n.region.clone(),
            drain_timeout,
            allow_on_demand: n.allow_on_demand.unwrap_or(false),
            interruption,
        })
    }

    /// `cluster:` on a kubernetes selector: a lab cluster of `kind: kubernetes`, whose nodes have
    /// no EC2 instance and no kubeconfig context (so a drain, without `region` or `context`).
    fn kube_lab(
        &mut self,
        target: &str,
        raw: &RawTarget,
        path: &Path,
        ctx: &mut TargetCtx,
    ) -> String {
        let n = &raw.nodes;
        let set = [
            ("context", n.context.is_some()),
            ("region", n.region.is_some()),
        ];
        self.refuse_set(path, &set, |f| {
            format!("`{f}` does not apply to a lab cluster's nodes (`cluster` is set)")
        });
        if n.terminate.is_some_and(|t| t != KubeTerminate::Drain) {
            self.error(
                &path.key("terminate"),
                "lab nodes have no EC2 instance behind them: a lab cluster's nodes are lost by \
                 `terminate: drain`",
            );
        }
        self.lab_cluster_ref(target, raw, path, ctx)
    }

    /// `terminate: aws-fis` takes the FIS fields (`role_arn` required, `notice` 2m–15m,
    /// `keep_templates`) and no `allow_on_demand: true`; the other modes take none of them.
    fn kube_interruption(
        &mut self,
        n: &RawNodes,
        path: &Path,
        terminate: KubeTerminate,
    ) -> Option<KubeInterruption> {
        if terminate != KubeTerminate::AwsFis {
            let set = [
                ("notice", n.notice.is_some()),
                ("role_arn", n.role_arn.is_some()),
                ("keep_templates", n.keep_templates.is_some()),
            ];
            self.refuse_set(path, &set, |f| {
                format!("`{f}` applies only with `terminate: aws-fis`")
            });
            return None;
        }
        if n.allow_on_demand == Some(true) {
            self.error(
                &path.key("allow_on_demand"),
                "`allow_on_demand: true` does not apply with `terminate: aws-fis`: FIS interrupts \
                 spot instances only",
            );
        }
        let notice = self.fis_notice(n, path);
        self.role_arn(n, path, "`terminate: aws-fis`");
        Some(KubeInterruption {
            notice,
            role_arn: n.role_arn.clone().unwrap_or_default(),
            keep_templates: n.keep_templates.unwrap_or(false),
        })
    }

    fn lab_cluster_ref(
        &mut self,
        target: &str,
        raw: &RawTarget,
        path: &Path,
        ctx: &mut TargetCtx,
    ) -> String {
        let Some(lab) = ctx.lab else {
            self.error_help(
                &path.key("provider"),
                format!(
                    "provider {} with `cluster` needs a `lab:` section",
                    raw.nodes.provider.name()
                ),
                "add a `lab:` section, or select real nodes with aws-ec2, aws-asg or aws-fis",
            );
            return raw.nodes.cluster.clone().unwrap_or_default();
        };
        let Some(cluster) = &raw.nodes.cluster else {
            self.error(
                path,
                format!(
                    "provider {} needs `cluster`: a name from lab.clusters",
                    raw.nodes.provider.name()
                ),
            );
            return String::new();
        };
        let cpath = path.key("cluster");
        match lab.clusters.get(cluster) {
            None => {
                let known: Vec<&str> = lab.clusters.keys().map(String::as_str).collect();
                let help = match suggest(cluster, &known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("lab clusters: {}", join_ticked(&known)),
                };
                self.error_help(&cpath, format!("unknown lab cluster `{cluster}`"), help);
            }
            Some(c) => {
                if c.kind != raw.kind && self.intact(&path.parent().unwrap_or_default().key("kind"))
                {
                    self.error(
                        &path.parent().unwrap_or_default().key("kind"),
                        format!(
                            "target kind `{}` does not match lab cluster `{cluster}`, which is `{}`",
                            kind_name(raw.kind),
                            kind_name(c.kind)
                        ),
                    );
                }
                if let Some(other) = ctx.lab_clusters.insert(cluster.clone(), target.to_owned()) {
                    self.error(
                        &cpath,
                        format!("lab cluster `{cluster}` is already the target of `{other}`"),
                    );
                }
            }
        }
        cluster.clone()
    }

    fn health(&mut self, raw: &RawTarget, path: &Path, nodes: &NodeSelector) -> Health {
        let Some(h) = &raw.health else {
            return Health::default();
        };
        let lab_nodes = matches!(nodes, NodeSelector::Lab { .. });
        let endpoint = |c: &mut Self, field: &str, value: &Option<String>, kinds: ClusterKind| {
            let value = value.as_ref()?;
            let p = path.key(field);
            if raw.kind != kinds {
                c.error(
                    &p,
                    format!(
                        "`{field}` is a {} endpoint but this target is `{}`",
                        kind_name(kinds),
                        kind_name(raw.kind)
                    ),
                );
            }
            if value.trim() == "lab" {
                if !lab_nodes {
                    c.error(&p, "`lab` endpoints need a target with `provider: lab`");
                }
                return Some(Endpoint::Lab);
            }
            match check_http_url(value) {
                Ok(()) => {}
                Err(UrlProblem::Credentials { shown }) => c.error_secret(
                    &p,
                    format!(
                        "`{shown}` is written with credentials (`user:password@`); a plan never holds a password"
                    ),
                    format!(
                        "write the URL without them ({shown}) and the credentials as \
                         `auth: {{username: NAME, password_env: VAR}}` (or `auth: {{token_env: VAR}}`)"
                    ),
                ),
                Err(UrlProblem::Invalid(reason)) => c.error_help(
                    &p,
                    format!("`{value}` is not an http(s) URL: {reason}"),
                    "write `lab` or a URL such as http://nimbus:8080",
                ),
            }
            Some(Endpoint::Url(value.trim_end_matches('/').to_owned()))
        };
        let health = Health {
            storm_ui: endpoint(self, "storm_ui", &h.storm_ui, ClusterKind::Storm),
            mesos_master: endpoint(self, "mesos_master", &h.mesos_master, ClusterKind::Mesos),
            marathon: endpoint(self, "marathon", &h.marathon, ClusterKind::Mesos),
            auth: self.health_auth(h.auth.as_ref(), &path.key("auth")),
            ca_file: h.ca_file.as_ref().map(|f| {
                self.nonempty_text(&path.key("ca_file"), "ca_file", f);
                f.clone()
            }),
            timeout: h.timeout.as_ref().map(|t| {
                let d = self.required_duration(&path.key("timeout"), t);
                self.positive(&path.key("timeout"), "timeout", d);
                d
            }),
            retries: h.retries,
        };
        if raw.kind == ClusterKind::Mesos
            && (health.mesos_master.is_some() != health.marathon.is_some())
        {
            self.error_help(
                path,
                "a mesos target's capacity needs both `mesos_master` (agents) and `marathon` (apps)",
                health_help(ClusterKind::Mesos),
            );
        }
        health
    }

    fn health_auth(&mut self, raw: Option<&RawAuth>, path: &Path) -> HealthAuth {
        let Some(a) = raw else {
            return HealthAuth::None;
        };
        let env_name = |c: &mut Self, field: &str, v: &str| {
            let ok = !v.is_empty()
                && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                && !v.starts_with(|ch: char| ch.is_ascii_digit());
            if !ok {
                c.error_help(
                    &path.key(field),
                    format!("`{v}` is not an environment variable name"),
                    "name the variable that holds the secret (e.g. STORM_UI_PASSWORD); secrets are never written in the plan",
                );
            }
        };
        match (&a.username, &a.password_env, &a.token_env) {
            (Some(user), Some(pw), None) => {
                self.nonempty_text(&path.key("username"), "username", user);
                env_name(self, "password_env", pw);
                HealthAuth::Basic {
                    username: user.clone(),
                    password_env: pw.clone(),
                }
            }
            (None, None, Some(token)) => {
                env_name(self, "token_env", token);
                HealthAuth::Bearer {
                    token_env: token.clone(),
                }
            }
            _ => {
                self.error_help(
                    path,
                    "auth is either basic (`username` and `password_env`) or bearer (`token_env`)",
                    "e.g. auth: {username: spotdrill, password_env: MARATHON_PASSWORD} or auth: {token_env: DCOS_TOKEN}",
                );
                HealthAuth::None
            }
        }
    }

    fn running(&mut self, raw: &RawTarget, path: &Path, health: &Health) -> Option<String> {
        let r = raw.running.as_ref()?;
        let p = path.key("running");
        let fields = [
            (ClusterKind::Storm, "topology", &r.topology),
            (ClusterKind::Mesos, "app", &r.app),
            (ClusterKind::Kubernetes, "workload", &r.workload),
        ];
        let (_, field, mine) = fields.iter().find(|(k, _, _)| *k == raw.kind)?;
        for (_, other, _) in fields
            .iter()
            .filter(|(k, _, v)| *k != raw.kind && v.is_some())
        {
            self.error(
                &p.key(other),
                format!(
                    "a {} target selects by `{field}`, not `{other}`",
                    kind_name(raw.kind)
                ),
            );
        }
        let Some(name) = mine else {
            if fields.iter().all(|(_, _, v)| v.is_none()) {
                self.error(
                    &p,
                    format!("say which {field} the nodes must run: `{field}: NAME`"),
                );
            }
            return None;
        };
        self.nonempty_text(&p.key(field), field, name);
        if !knows_placement(raw.kind, health) {
            self.error_help(
                &p,
                format!("selecting nodes by {field} needs to know which node runs what"),
                health_help(raw.kind),
            );
        }
        Some(name.trim().to_owned())
    }

    fn guards(
        &mut self,
        raw: &RawTarget,
        path: &Path,
        ladder: &[Rung],
        nodes: &NodeSelector,
        lab: Option<&Lab>,
    ) -> Guards {
        let Some(g) = &raw.guards else {
            return Guards::default();
        };
        if let Some(max) = g.max_terminations {
            self.max_terminations(path, max, ladder);
        }
        let min_healthy = g
            .min_healthy
            .as_ref()
            .and_then(|t| self.min_healthy(&path.key("min_healthy"), t, nodes, lab));
        let allowed_hours = g.allowed_hours.as_ref().and_then(|t| match parse_hours(t) {
            Ok(w) => Some(w),
            Err(msg) => {
                self.error_help(
                    &path.key("allowed_hours"),
                    msg,
                    "write UTC hours as HH:MM-HH:MM, e.g. 09:00-17:00",
                );
                None
            }
        });
        Guards {
            max_terminations: g.max_terminations,
            min_healthy,
            allowed_hours,
            max_per_topology: self.max_per_work(g, path, nodes),
        }
    }

    /// `max_per_topology` (storm, mesos) or `max_per_workload` (kubernetes): one limit on how
    /// many nodes of one topology, app or workload a step takes; above 0.
    fn max_per_work(&mut self, g: &RawGuards, path: &Path, nodes: &NodeSelector) -> Option<u32> {
        let kube = nodes.provider() == crate::plan::Provider::Kubernetes;
        let (field, wrong) = match kube {
            true => ("max_per_workload", ("max_per_topology", g.max_per_topology)),
            false => ("max_per_topology", ("max_per_workload", g.max_per_workload)),
        };
        if wrong.1.is_some() {
            self.error(
                &path.key(wrong.0),
                format!(
                    "`{}` does not apply here: this target's limit is `{field}`",
                    wrong.0
                ),
            );
        }
        let max = if kube {
            g.max_per_workload
        } else {
            g.max_per_topology
        };
        if max == Some(0) {
            self.error(
                &path.key(field),
                format!("{field} 0 would never let a step take a node that runs anything"),
            );
        }
        max
    }

    /// max_terminations is above 0; a warning when the ladder would pass it.
    fn max_terminations(&mut self, path: &Path, max: u32, ladder: &[Rung]) {
        let p = path.key("max_terminations");
        if max == 0 {
            self.error(
                &p,
                "max_terminations 0 would stop the ladder before its first step",
            );
            return;
        }
        if !self.intact(&path.parent().unwrap_or_default().key("ladder")) {
            return;
        }
        let mut total = 0u64;
        // A market rung's size is known only when its step runs: `run` refuses it there.
        let counted = ladder
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.count().map(|n| (i, n)));
        for (i, step) in counted {
            // Widened: a ladder of large rungs ([4000000000, 4294967295]) overflows a u32 sum.
            total = total.saturating_add(u64::from(step));
            if total > u64::from(max) {
                self.warn(
                    &p,
                    format!(
                        "the guard stops the ladder before step {} ({step} terminations): the steps up to it terminate {total} nodes, more than max_terminations {max}",
                        i + 1
                    ),
                );
                break;
            }
        }
    }

    /// min_healthy parses, and as a count fits in the target's lab cluster.
    fn min_healthy(
        &mut self,
        p: &Path,
        t: &CountOrPercentText,
        nodes: &NodeSelector,
        lab: Option<&Lab>,
    ) -> Option<MinHealthy> {
        let m = match parse_count_or_percent(&t.0) {
            Ok(m) => m,
            Err(msg) => {
                self.error_help(p, msg, "write a node count (3) or a percentage (50%)");
                return None;
            }
        };
        if let (MinHealthy::Count(n), NodeSelector::Lab { cluster, .. }, Some(lab)) =
            (m, nodes, lab)
            && let Some(c) = lab.clusters.get(cluster)
            && n > c.nodes
        {
            self.error(
                p,
                format!(
                    "min_healthy {n} is more than the {} nodes of lab cluster `{cluster}`",
                    c.nodes
                ),
            );
        }
        Some(m)
    }

    // ---- observe ------------------------------------------------------------------------------

    fn observe(&mut self, raw: Option<&RawObserve>, path: &Path) -> Observe {
        let none = RawObserve {
            sample_interval: None,
            baseline: None,
            hold: None,
            timeout: None,
            settle: None,
            cooldown: None,
            band: None,
        };
        let raw = raw.unwrap_or(&none);
        let mut o = self.observe_times(raw, path);
        if raw.settle.is_some() && o.settle > o.timeout {
            self.error(
                &path.key("settle"),
                format!(
                    "settle {} is longer than the step timeout {}",
                    humantime::format_duration(o.settle),
                    humantime::format_duration(o.timeout)
                ),
            );
        }
        self.observe_order(&o, path);
        (o.band_margin, o.band_floor) = self.band(raw.band.as_ref(), &path.key("band"));
        o.settle = o.settle.min(o.timeout);
        o
    }

    /// The observation's durations with their defaults; the band is filled in by [`Self::band`].
    fn observe_times(&mut self, raw: &RawObserve, path: &Path) -> Observe {
        let secs = Duration::from_secs;
        let sample_interval = self.duration(
            &path.key("sample_interval"),
            raw.sample_interval.as_ref(),
            secs(1),
        );
        let baseline = self.duration(&path.key("baseline"), raw.baseline.as_ref(), secs(20));
        let hold = self.duration(&path.key("hold"), raw.hold.as_ref(), secs(5));
        let timeout = self.duration(&path.key("timeout"), raw.timeout.as_ref(), secs(180));
        let cooldown = self.duration(&path.key("cooldown"), raw.cooldown.as_ref(), secs(600));
        let settle = self.duration(&path.key("settle"), raw.settle.as_ref(), secs(30));
        Observe {
            settle,
            sample_interval,
            baseline,
            hold,
            timeout,
            cooldown,
            band_margin: 0.5,
            band_floor: secs(5),
        }
    }

    /// The durations are positive and in order: sample_interval ≤ a minute, a baseline of at
    /// least 5 samples, hold ≥ sample_interval, timeout > hold.
    fn observe_order(&mut self, o: &Observe, path: &Path) {
        for (field, d) in [
            ("sample_interval", o.sample_interval),
            ("baseline", o.baseline),
            ("hold", o.hold),
            ("timeout", o.timeout),
            ("cooldown", o.cooldown),
        ] {
            self.positive(&path.key(field), field, d);
        }
        let fmt = humantime::format_duration;
        let (sample_interval, baseline, hold, timeout) =
            (o.sample_interval, o.baseline, o.hold, o.timeout);
        if sample_interval > Duration::from_secs(60) {
            self.error(
                &path.key("sample_interval"),
                format!(
                    "sample_interval {} is longer than a minute: spikes would go unseen",
                    fmt(sample_interval)
                ),
            );
        }
        if !sample_interval.is_zero() && baseline < sample_interval * 5 && !baseline.is_zero() {
            self.error(
                &path.key("baseline"),
                format!(
                    "baseline {} holds fewer than 5 samples at sample_interval {}",
                    fmt(baseline),
                    fmt(sample_interval)
                ),
            );
        }
        if hold < sample_interval && !hold.is_zero() {
            self.error(
                &path.key("hold"),
                format!(
                    "hold {} is shorter than sample_interval {}",
                    fmt(hold),
                    fmt(sample_interval)
                ),
            );
        }
        if timeout <= hold && !timeout.is_zero() {
            self.error(
                &path.key("timeout"),
                format!(
                    "timeout {} must be longer than hold {}",
                    fmt(timeout),
                    fmt(hold)
                ),
            );
        }
    }

    /// The recovery band: its margin above the baseline p99 and its floor.
    fn band(&mut self, band: Option<&RawBand>, bpath: &Path) -> (f64, Duration) {
        let band_margin = band.and_then(|b| b.margin).unwrap_or(0.5);
        if !(band_margin.is_finite() && band_margin >= 0.0) {
            self.error(
                &bpath.key("margin"),
                format!("margin must be a number ≥ 0 (0.5 = 50% above the baseline p99), got {band_margin}"),
            );
        }
        let band_floor = self.duration(
            &bpath.key("floor"),
            band.and_then(|b| b.floor.as_ref()),
            Duration::from_secs(5),
        );
        (band_margin, band_floor)
    }
}

// ---- value parsers (pure, tested below) -------------------------------------------------------

/// A humantime duration with a unit; a bare number is refused because `30` could mean anything.
/// How to give a target health endpoints, for errors that need them.
fn health_help(kind: ClusterKind) -> &'static str {
    match kind {
        ClusterKind::Storm => "add `health: {storm_ui: URL}` (or `lab` on a lab target)",
        ClusterKind::Mesos => {
            "add `health: {mesos_master: URL, marathon: URL}` (or `lab` on a lab target)"
        }
        ClusterKind::Kubernetes => {
            "kubernetes targets learn what runs where from the Kubernetes API, not from `health:`"
        }
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.parse::<f64>().is_ok() {
        return Err(format!("`{t}` has no unit: write {t}s or {t}ms"));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        use humantime::DurationError as E;
        let why = match e {
            E::InvalidCharacter(i) => format!("unexpected character at position {}", i + 1),
            E::NumberExpected(i) => format!("expected a number at position {}", i + 1),
            E::UnknownUnit { unit, .. } => format!("unknown unit `{unit}`"),
            E::NumberOverflow => "the number is too large".to_owned(),
            E::Empty => "it is empty".to_owned(),
        };
        format!("`{t}` is not a duration: {why}")
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "`{t}` is longer than the longest duration a plan may hold ({})",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// `N/s` → messages per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let Some((n, unit)) = t.split_once('/') else {
        return Err(format!("`{t}` is not a rate: it needs a unit, like {t}/s"));
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a rate: `{}` is not a number", n.trim()))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("`{t}` is not a rate: it must be a number ≥ 0"));
    }
    match unit.trim() {
        "s" => Ok(n),
        other => Err(format!(
            "`{t}` is not a rate: the unit is `/s`, not `/{other}`"
        )),
    }
}

/// `N%` → a percentage from 0 to 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let Some(n) = t.strip_suffix('%') else {
        return Err(format!("`{t}` is not a percentage: write it as N%"));
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a percentage: write it as N%"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{t}` is not between 0% and 100%"));
    }
    Ok(n)
}

pub fn parse_count_or_percent(text: &str) -> Result<MinHealthy, String> {
    let t = text.trim();
    if t.ends_with('%') {
        return parse_percent(t).map(MinHealthy::Percent);
    }
    t.parse::<u32>()
        .map(MinHealthy::Count)
        .map_err(|_| format!("`{t}` is neither a node count nor a percentage"))
}

pub fn parse_brokers(text: &str) -> Result<Vec<BrokerAddr>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        if p.is_empty() {
            return Err(format!("empty broker address in `{text}`"));
        }
        let (host, port) = p
            .rsplit_once(':')
            .ok_or_else(|| format!("broker `{p}` has no port: write {p}:9092"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("broker `{p}` has no valid host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| format!("broker `{p}` has an invalid port `{port}`"))?;
        out.push(BrokerAddr {
            host: host.to_owned(),
            port,
        });
    }
    Ok(out)
}

/// `HH:MM-HH:MM`, UTC.
pub fn parse_hours(text: &str) -> Result<HourWindow, String> {
    let bad = || format!("`{text}` is not an hour range");
    let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
    let minute = |s: &str| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && s.trim().len() == 5).then_some(h * 60 + m)
    };
    let (start_minute, end_minute) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
    if start_minute == end_minute {
        return Err(format!("`{text}` is an empty hour range"));
    }
    Ok(HourWindow {
        start_minute,
        end_minute,
    })
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn is_zone(s: &str) -> bool {
    s.len() > 1 && s.ends_with(|c: char| c.is_ascii_lowercase()) && is_region(&s[..s.len() - 1])
}

fn is_instance_type(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(family), Some(size), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    ok(family) && ok(size) && family.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// Why a health URL cannot be used.
enum UrlProblem {
    /// It holds `user:password@` (or any `@`, which is how a password with a `/` in it looks
    /// to a URL parser: a path); `shown` is the URL with everything up to the last `@` cut out.
    Credentials {
        shown: String,
    },
    Invalid(String),
}

/// An http(s) URL with a host and without credentials, parsed by a real URL parser.
fn check_http_url(s: &str) -> Result<(), UrlProblem> {
    if let Some(at) = s.rfind('@') {
        let scheme = s.split_once("://").map_or("http", |(scheme, _)| scheme);
        return Err(UrlProblem::Credentials {
            shown: format!("{scheme}://{}", &s[at + 1..]),
        });
    }
    let url = url::Url::parse(s).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::Invalid(format!(
            "the scheme is `{}`, expected http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::Invalid("it names no host".into()));
    }
    Ok(())
}

/// How long a drain retries evictions a PodDisruptionBudget blocks, unless the plan says.
const KUBE_DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What is wrong with a Kubernetes label selector term, if anything: the key is an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters; the value at most 63.
pub fn label_problem(key: &str, value: &str) -> Option<String> {
    let name_ok = |t: &str| {
        let b = t.as_bytes();
        t.len() <= 63
            && !t.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.')
                .all(|part| name_ok(part) && !part.contains('_'))
    });
    if !prefix_ok || !name_ok(name) {
        return Some(format!(
            "`{key}` is not a Kubernetes label key (an optional DNS prefix and `/`, then up to \
             63 letters, digits, `-`, `_` or `.`)"
        ));
    }
    if !value.is_empty() && !name_ok(value) {
        return Some(format!(
            "`{value}` is not a Kubernetes label value (up to 63 letters, digits, `-`, `_` or \
             `.`, starting and ending with a letter or digit)"
        ));
    }
    None
}

fn kind_name(kind: ClusterKind) -> &'static str {
    kind.name()
}

/// The closest candidate to a misspelled name, if one is close enough to be a likely typo.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The `nodes` fields each provider takes.
fn provider_allows(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Lab => &["cluster", "notice"],
        Provider::AwsEc2 => &[
            "region",
            "tags",
            "availability_zones",
            "instance_types",
            "spot_fleet_request",
            "allow_on_demand",
        ],
        Provider::AwsAsg => &["region", "group", "replace", "allow_on_demand"],
        Provider::AwsFis => &[
            "region",
            "tags",
            "availability_zones",
            "instance_types",
            "notice",
            "role_arn",
            "keep_templates",
        ],
        Provider::Kubernetes => &[
            "cluster",
            "labels",
            "context",
            "terminate",
            "drain_timeout",
            "region",
            "allow_on_demand",
            "notice",
            "role_arn",
            "keep_templates",
        ],
    }
}

/// Whether `run` knows which node runs what: from `health:` (storm, mesos), or from the
/// Kubernetes API (kubernetes).
fn knows_placement(kind: ClusterKind, health: &Health) -> bool {
    kind == ClusterKind::Kubernetes || health.configured(kind)
}

pub fn join_ticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("2 parsecs").is_err());
        // Bounded: a duration past 30 days is refused, not carried into `Instant + d`.
        assert_eq!(parse_duration("30days"), Ok(MAX_DURATION));
        assert!(
            parse_duration("300000000000y")
                .unwrap_err()
                .contains("longest")
        );
        assert!(parse_duration("31days").unwrap_err().contains("30days"));
    }

    #[test]
    fn rates_are_per_second() {
        assert_eq!(parse_rate("400/s"), Ok(400.0));
        assert_eq!(parse_rate(" 0.5 / s "), Ok(0.5));
        assert!(parse_rate("400").unwrap_err().contains("needs a unit"));
        assert!(parse_rate("400/m").unwrap_err().contains("not `/m`"));
        assert!(parse_rate("-1/s").is_err());
    }

    #[test]
    fn percentages_are_bounded() {
        assert_eq!(parse_percent("50%"), Ok(50.0));
        assert!(parse_percent("150%").is_err());
        assert!(parse_percent("50").is_err());
        assert_eq!(parse_count_or_percent("3"), Ok(MinHealthy::Count(3)));
        assert_eq!(parse_count_or_percent("25%"), Ok(MinHealthy::Percent(25.0)));
    }

    #[test]
    fn brokers_and_hours_parse() {
        let b = parse_brokers("k1:9092, k2:9093").unwrap();
        assert_eq!(b[1].to_string(), "k2:9093");
        assert!(parse_brokers("k1").is_err());
        assert!(parse_brokers("k1:0").is_err());
        assert!(parse_brokers("k1:9092,").is_err());
        assert_eq!(parse_hours("09:00-17:30").unwrap().end_minute, 17 * 60 + 30);
        assert!(parse_hours("9-17").is_err());
    }

    #[test]
    fn aws_names() {
        assert!(is_region("us-east-1") && is_region("us-gov-west-1"));
        assert!(!is_region("useast1") && !is_region("US-EAST-1"));
        assert!(is_zone("us-east-1a") && !is_zone("us-east-1"));
        assert!(is_instance_type("c5.xlarge") && !is_instance_type("c5"));
        assert!(is_role_arn("arn:aws:iam::123456789012:role/fis"));
        assert!(!is_role_arn("arn:aws:iam::123:role/fis"));
    }

    #[test]
    fn suggestions_are_close_only() {
        let c = ["ladder", "selection", "seed"];
        assert_eq!(suggest("ladr", &c), Some("ladder"));
        assert_eq!(suggest("sede", &c), Some("seed"));
        assert_eq!(suggest("zzzzzz", &c), None);
    }
}
