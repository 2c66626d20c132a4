//! Exit codes: the one place they are defined (DESIGN.md "Command line").

use std::process;

/// How a spotdrill command ends. CI jobs gate on these numbers; never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Every target met its required tolerance (or the command succeeded).
    Success = 0,
    /// A verdict failed: some target tolerated fewer terminations than required.
    Failed = 1,
    /// Bad input or usage: an invalid plan, a bad flag, a command not implemented yet.
    BadInput = 2,
    /// Aborted: a stop condition or Ctrl-C.
    Aborted = 3,
    /// Environment error: unreachable broker, missing credentials, unwritable output.
    Environment = 4,
}

impl ExitCode {
    /// The code a report records (`exit_code` in report.json: 0, 1 or 3).
    pub fn from_report(code: u8) -> ExitCode {
        match code {
            0 => ExitCode::Success,
            1 => ExitCode::Failed,
            2 => ExitCode::BadInput,
            4 => ExitCode::Environment,
            _ => ExitCode::Aborted,
        }
    }
}

impl From<ExitCode> for process::ExitCode {
    fn from(code: ExitCode) -> Self {
        process::ExitCode::from(code as u8)
    }
}

/// An error that knows which exit code it ends the program with.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
    #[error("{0}")]
    BadInput(String),
    /// The environment is not as needed: unreachable broker, no credentials, a held lock.
    #[error("{0}")]
    Environment(String),
}

impl Failure {
    pub fn code(&self) -> ExitCode {
        match self {
            Failure::NotImplemented(_) | Failure::BadInput(_) => ExitCode::BadInput,
            Failure::Environment(_) => ExitCode::Environment,
        }
    }
}

/// The exit code for an error that reached `main`: the first classified cause decides; anything
/// else is the environment's fault (I/O, network), never reported as success.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(ExitCode::Environment, Failure::code)
}
