//! `spotdrill lag`: live consumer lag per group, in messages and in seconds.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::exit::{ExitCode, Failure};
use crate::kafka::KafkaSettings;
use crate::observe::{GroupLag, GroupSpec, LagProbe, Status, sampler};
use crate::output;
use crate::plan::{self, Brokers, Isolation, Sasl, SaslMechanism, Security, SecurityProtocol};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bootstrap brokers, host:port,host:port (default: the plan's `kafka.brokers`).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Consumer group(s) to measure (default: every application of --plan).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Only these topics (default: every topic the group committed to).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// How the groups' consumers read transactional topics: read_uncommitted (lag to the high
    /// watermark) or read_committed (lag to the last stable offset; open transactions are
    /// reported with their age). Default: each application's `isolation` with --plan, else
    /// read_uncommitted.
    #[arg(long, value_enum)]
    pub isolation: Option<IsolationArg>,
    /// Take brokers, security and (without --group) the groups and topics from a plan.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_parser = crate::plan::parse_duration)]
    pub interval: Duration,
    /// How long a broker may take to answer before it counts as unreachable.
    #[arg(long, default_value = "5s", value_parser = crate::plan::parse_duration)]
    pub timeout: Duration,
    /// Stop after this many samples.
    #[arg(long)]
    pub samples: Option<u64>,
    /// One sample, then exit (same as --samples 1).
    #[arg(long)]
    pub once: bool,
    /// JSON lines (one object per sample per group) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Security protocol: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, value_parser = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"], ignore_case = true)]
    pub security_protocol: Option<String>,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], ignore_case = true)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long)]
    pub sasl_username: Option<String>,
    /// Name of the environment variable holding the SASL password (never the password itself).
    #[arg(long, value_name = "VAR")]
    pub sasl_password_env: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates.
    #[arg(long, value_name = "FILE")]
    pub ssl_ca_file: Option<String>,
    /// Prometheus: --metrics, --metrics-partitions (see cli/metrics.rs).
    #[command(flatten)]
    pub prometheus: super::metrics::LagMetricsArgs,
}

/// `--isolation`, as Kafka spells it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum IsolationArg {
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    #[value(name = "read_committed")]
    ReadCommitted,
}

impl From<IsolationArg> for Isolation {
    fn from(a: IsolationArg) -> Isolation {
        match a {
            IsolationArg::ReadUncommitted => Isolation::ReadUncommitted,
            IsolationArg::ReadCommitted => Isolation::ReadCommitted,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (settings, specs) = resolve(&args)?;
    let samples = if args.once { Some(1) } else { args.samples };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(watch(settings, specs, &args, samples))
}

/// Kafka settings and groups from the flags, with the plan's as defaults.
fn resolve(args: &Args) -> anyhow::Result<(KafkaSettings, Vec<GroupSpec>)> {
    let plan = match &args.plan {
        Some(path) => Some(load_plan(path)?),
        None => None,
    };
    let brokers = match (&args.brokers, &plan) {
        (Some(b), _) => b.clone(),
        (None, Some(p)) => match &p.kafka.brokers {
            Brokers::External(list) => list
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Brokers::Lab => {
                return Err(Failure::bad_input(
                    "the plan uses the embedded lab's broker: give its address with --brokers"
                        .into(),
                )
                .into());
            }
        },
        (None, None) => {
            return Err(Failure::bad_input("give --brokers (or --plan)".into()).into());
        }
    };
    let mut settings = KafkaSettings::new(brokers);
    settings.timeout = args.timeout;
    settings.security = security(args, plan.as_ref().and_then(|p| p.kafka.security.clone()))?;

    let specs: Vec<GroupSpec> = if !args.groups.is_empty() {
        args.groups
            .iter()
            .map(|g| GroupSpec {
                group: g.clone(),
                topics: args.topics.clone(),
                isolation: args.isolation.map(Into::into).unwrap_or_default(),
            })
            .collect()
    } else if let Some(p) = &plan {
        p.consumer_groups()
            .iter()
            .map(|g| GroupSpec {
                group: g.group.clone(),
                topics: if args.topics.is_empty() {
                    g.topics.clone()
                } else {
                    args.topics.clone()
                },
                isolation: args.isolation.map_or(g.isolation, Into::into),
            })
            .collect()
    } else {
        return Err(Failure::bad_input("give at least one --group (or --plan)".into()).into());
    };
    Ok((settings, specs))
}

fn load_plan(path: &std::path::Path) -> anyhow::Result<plan::Plan> {
    Ok(super::load_plan(path)?.0)
}

/// Security from the flags; where no flag is given, the plan's.
fn security(args: &Args, from_plan: Option<Security>) -> anyhow::Result<Option<Security>> {
    let any_flag = args.security_protocol.is_some()
        || args.sasl_mechanism.is_some()
        || args.sasl_username.is_some()
        || args.sasl_password_env.is_some()
        || args.ssl_ca_file.is_some();
    if !any_flag {
        return Ok(from_plan);
    }
    let protocol = match args
        .security_protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
    {
        Some(p) if p == "ssl" => SecurityProtocol::Ssl,
        Some(p) if p == "sasl_plaintext" => SecurityProtocol::SaslPlaintext,
        Some(p) if p == "sasl_ssl" => SecurityProtocol::SaslSsl,
        Some(_) => SecurityProtocol::Plaintext,
        None if args.sasl_mechanism.is_some() => SecurityProtocol::SaslSsl,
        None if args.ssl_ca_file.is_some() => SecurityProtocol::Ssl,
        None => SecurityProtocol::Plaintext,
    };
    let sasl_wanted = matches!(
        protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    let sasl = if sasl_wanted {
        let mechanism = match args.sasl_mechanism.as_deref().map(str::to_ascii_uppercase) {
            Some(m) if m == "PLAIN" => SaslMechanism::Plain,
            Some(m) if m == "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
            Some(_) => SaslMechanism::ScramSha512,
            None => {
                return Err(
                    Failure::bad_input("a SASL protocol needs --sasl-mechanism".into()).into(),
                );
            }
        };
        let (Some(username), Some(password_env)) = (&args.sasl_username, &args.sasl_password_env)
        else {
            return Err(Failure::bad_input(
                "a SASL protocol needs --sasl-username and --sasl-password-env".into(),
            )
            .into());
        };
        Some(Sasl {
            mechanism,
            username: username.clone(),
            password_env: password_env.clone(),
        })
    } else {
        None
    };
    Ok(Some(Security {
        protocol,
        sasl,
        ca_file: args.ssl_ca_file.clone(),
    }))
}

async fn watch(
    settings: KafkaSettings,
    specs: Vec<GroupSpec>,
    args: &Args,
    samples: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let probe = tokio::task::spawn_blocking(move || LagProbe::connect(settings, &specs))
        .await
        .context("lag probe task")??;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let metrics = args.prometheus.serve()?;
    let (mut rx, handle) = sampler::spawn(probe, args.interval, cancel.clone());
    let mut view = View::new(args.json, std::io::stdout().is_terminal());
    let mut taken = 0;
    let mut last_all_missing = false;
    while let Some(snapshot) = rx.recv().await {
        taken += 1;
        last_all_missing = snapshot.iter().all(|g| g.status == Status::Missing);
        if let Some((_, m)) = &metrics {
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .update(&snapshot);
        }
        view.show(&snapshot)?;
        if samples.is_some_and(|n| taken >= n) {
            break;
        }
    }
    cancel.cancel();
    let _ = handle.await;
    if samples.is_some() && last_all_missing {
        return Ok(ExitCode::Environment);
    }
    Ok(ExitCode::Success)
}

/// How lag moves: compared with a few samples ago.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Trend {
    Rising,
    Draining,
    Steady,
    Unknown,
}

impl Trend {
    fn of(history: &VecDeque<f64>) -> Trend {
        let (Some(&first), Some(&last)) = (history.front(), history.back()) else {
            return Trend::Unknown;
        };
        if history.len() < 2 {
            return Trend::Unknown;
        }
        let tolerance = (first.abs() * 0.1).max(0.5);
        if last > first + tolerance {
            Trend::Rising
        } else if last < first - tolerance {
            Trend::Draining
        } else {
            Trend::Steady
        }
    }

    fn word(self) -> &'static str {
        match self {
            Trend::Rising => "rising",
            Trend::Draining => "draining",
            Trend::Steady => "steady",
            Trend::Unknown => "-",
        }
    }

    fn arrow(self) -> &'static str {
        match self {
            Trend::Rising => "↑ rising",
            Trend::Draining => "↓ draining",
            Trend::Steady => "→ steady",
            Trend::Unknown => "",
        }
    }
}

/// Samples kept per group for the trend.
const TREND_WINDOW: usize = 4;

struct View {
    json: bool,
    terminal: bool,
    history: HashMap<String, VecDeque<f64>>,
    drawn_lines: usize,
}

impl View {
    fn new(json: bool, terminal: bool) -> Self {
        View {
            json,
            terminal,
            history: HashMap::new(),
            drawn_lines: 0,
        }
    }

    fn trend(&mut self, g: &GroupLag) -> Trend {
        let h = self.history.entry(g.group.clone()).or_default();
        if let Some(s) = g.lag_seconds {
            h.push_back(s);
            while h.len() > TREND_WINDOW {
                h.pop_front();
            }
        }
        Trend::of(h)
    }

    fn show(&mut self, snapshot: &[GroupLag]) -> anyhow::Result<()> {
        if self.json {
            let mut text = String::new();
            for g in snapshot {
                text.push_str(&serde_json::to_string(g)?);
                text.push('\n');
            }
            output::out(&text);
            return Ok(());
        }
        let trends: Vec<Trend> = snapshot.iter().map(|g| self.trend(g)).collect();
        if self.terminal {
            self.table(snapshot, &trends);
        } else {
            self.lines(snapshot, &trends);
        }
        Ok(())
    }

    /// Plain lines for pipes and logs: one per group per sample.
    fn lines(&self, snapshot: &[GroupLag], trends: &[Trend]) {
        let mut text = String::new();
        for (g, trend) in snapshot.iter().zip(trends) {
            let at = humantime::format_rfc3339_millis(g.at);
            text.push_str(&format!(
                "{at} group={} partitions={} lag_messages={} lag_seconds={} trend={} status={}",
                g.group,
                g.partitions.len(),
                opt(g.lag_messages),
                g.lag_seconds.map_or("-".into(), |s| format!("{s:.3}")),
                trend.word(),
                status_word(&g.status),
            ));
            if let Some(s) = &g.group_state {
                text.push_str(&format!(
                    " state={} members={} rebalances={}",
                    s.state, s.members, s.rebalances
                ));
            }
            for p in &g.problems {
                text.push_str(&format!(" problem={p:?}"));
            }
            for n in &g.notes {
                text.push_str(&format!(" note={n:?}"));
            }
            text.push('\n');
        }
        output::out(&text);
    }

    /// A table redrawn in place on a terminal.
    fn table(&mut self, snapshot: &[GroupLag], trends: &[Trend]) {
        let mut lines = Vec::new();
        let at = snapshot
            .first()
            .map(|g| humantime::format_rfc3339_seconds(g.at).to_string())
            .unwrap_or_default();
        lines.push(format!("spotdrill lag  {at}  (Ctrl-C to stop)"));
        lines.push(format!(
            "{:<28} {:>10} {:>14} {:>12}  {:<11} {}",
            "GROUP", "PARTITIONS", "LAG MESSAGES", "LAG SECONDS", "TREND", "STATUS"
        ));
        for (g, trend) in snapshot.iter().zip(trends) {
            lines.push(format!(
                "{:<28} {:>10} {:>14} {:>12}  {:<11} {}",
                g.group,
                g.partitions.len(),
                opt(g.lag_messages),
                g.lag_seconds.map_or("-".into(), |s| format!("{s:.1}")),
                trend.arrow(),
                status_text(g),
            ));
            if let Some(s) = &g.group_state {
                lines.push(format!(
                    "  · group {}, {} member(s), {} rebalance(s) seen",
                    s.state, s.members, s.rebalances
                ));
            }
            for p in &g.problems {
                lines.push(format!("  ! {p}"));
            }
            for n in &g.notes {
                lines.push(format!("  · {n}"));
            }
        }
        let mut text = String::new();
        if self.drawn_lines > 0 {
            // Up to the first line of the previous table, then clear to the end of the screen.
            text.push_str(&format!("\x1b[{}A\x1b[J", self.drawn_lines));
        }
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        self.drawn_lines = lines.len();
        output::out(&text);
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn status_word(s: &Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::NeverCommitted => "never_committed",
        Status::Missing => "missing",
    }
}

fn status_text(g: &GroupLag) -> String {
    match g.status {
        Status::Ok => {
            let notes: Vec<&str> = g
                .partitions
                .iter()
                .filter_map(|p| p.note.map(|n| n.describe()))
                .collect();
            match notes.first() {
                Some(n) => format!("ok; {n}"),
                None => "ok".into(),
            }
        }
        Status::NeverCommitted => "never committed: lag counted from the log start".into(),
        Status::Missing => "no data (broker unreachable)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_follows_the_window() {
        let h = |v: &[f64]| v.iter().copied().collect::<VecDeque<f64>>();
        assert_eq!(Trend::of(&h(&[1.0])), Trend::Unknown);
        assert_eq!(Trend::of(&h(&[1.0, 1.2, 1.1])), Trend::Steady);
        assert_eq!(Trend::of(&h(&[1.0, 3.0, 6.0])), Trend::Rising);
        assert_eq!(Trend::of(&h(&[60.0, 40.0, 20.0])), Trend::Draining);
    }
}
