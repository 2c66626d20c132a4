//! `spotdrill completions SHELL`: the shell completion script, generated from the same clap
//! definitions as the parser, so it never drifts from the real flags.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::exit::ExitCode;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    output::out(&script(args.shell)?);
    Ok(ExitCode::Success)
}

/// The completion script for `shell`, for the command named `spotdrill`.
pub fn script(shell: Shell) -> anyhow::Result<String> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "spotdrill", &mut buf);
    Ok(String::from_utf8(buf)?)
}
