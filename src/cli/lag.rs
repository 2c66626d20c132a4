//! `spotdrill lag`: live consumer lag per group.

use std::time::Duration;

use crate::exit::{ExitCode, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bootstrap brokers, host:port,host:port.
    #[arg(long)]
    pub brokers: String,
    /// Consumer group(s) to measure.
    #[arg(long = "group", required = true)]
    pub groups: Vec<String>,
    /// Only these topics (default: every topic the group committed to).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Stop after this many samples.
    #[arg(long)]
    pub samples: Option<u64>,
    /// One sample, then exit.
    #[arg(long)]
    pub once: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Failure::NotImplemented("the lag sampler (`spotdrill lag`)").into())
}
