//! The command line: one module per subcommand, each with `Args` and `run(args)`.

use clap::{Parser, Subcommand};

use crate::exit::ExitCode;

pub mod completions;
pub mod diff;
pub mod lab;
pub mod lag;
pub mod man;
pub mod markets;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod run;
pub mod schema;
pub mod unlock;
pub mod validate;
pub mod watch;
pub mod web;

/// spotdrill: terminate spot nodes on purpose, measure Kafka consumer lag, and find out how many
/// losses each Storm and Mesos cluster tolerates.
#[derive(Debug, Parser)]
#[command(name = "spotdrill", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 every target met its required tolerance, 1 a verdict \
failed, 2 bad input or usage, 3 aborted, 4 environment error."
)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// How the AWS node providers reach AWS, beyond the standard credential chain.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// AWS profile (from ~/.aws/config) for the AWS node providers.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region for targets whose plan names none.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send AWS calls to this endpoint (an emulator); AWS_ENDPOINT_URL works too.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Kubernetes: the kubeconfig context for kubernetes targets whose plan names none (the
    /// kubeconfig comes from KUBECONFIG or ~/.kube/config, else the in-cluster service account).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

impl AwsArgs {
    pub fn settings(&self) -> crate::nodes::aws::AwsSettings {
        crate::nodes::aws::AwsSettings {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            kube_context: self.context.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plans without touching anything: every problem, with file:line:column.
    Validate(validate::Args),
    /// Preflight: resolve nodes and endpoints, show what each step would terminate.
    Plan(plan::Args),
    /// Per AWS target: its spot markets, their price history and the account's interruptions.
    Markets(markets::Args),
    /// Run a game day: terminate, observe, judge, report.
    Run(run::Args),
    /// Live consumer lag per group, in messages and seconds.
    Lag(lag::Args),
    /// Rebuild the reports of a run from its journal and samples.
    Report(report::Args),
    /// Compare two runs: tolerance, spikes, recovery.
    Diff(diff::Args),
    /// Follow a run started elsewhere in a live dashboard.
    Watch(watch::Args),
    /// The embedded lab on its own.
    #[command(subcommand)]
    Lab(lab::Command),
    /// Print the JSON Schema of the plan (or of report.json).
    Schema(schema::Args),
    /// Clear the stale target locks a crashed run left behind.
    Unlock(unlock::Args),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the man page, or write one page per command into a directory.
    Man(man::Args),
}

/// Read and validate a plan for a command that acts on it: diagnostics go to stderr, and an
/// invalid plan is bad input (exit 2). Returns the plan and its text.
pub fn load_plan(path: &std::path::Path) -> anyhow::Result<(crate::plan::Plan, String)> {
    use crate::exit::Failure;
    let name = path.display().to_string();
    let text = match crate::plan::read(path) {
        Ok(text) => text,
        Err(e) => {
            crate::output::err(&e.diagnostic().render(&name, ""));
            return Err(Failure::bad_input(format!("cannot read the plan {name}")).into());
        }
    };
    let loaded = crate::plan::load(&text);
    for d in &loaded.diagnostics {
        crate::output::err(&d.render(&name, &text));
    }
    match loaded.plan {
        Some(plan) => Ok((plan, text)),
        None => Err(Failure::bad_input(format!("{name} is not a valid plan")).into()),
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args, &cli.aws),
        Command::Markets(args) => markets::run(args, &cli.aws),
        Command::Run(args) => run::run(args, &cli.aws),
        Command::Lag(args) => lag::run(args),
        Command::Report(args) => report::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Schema(args) => schema::run(args),
        Command::Unlock(args) => unlock::run(args, &cli.aws),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}
