//! Exit codes: the one place they are defined (DESIGN.md "Command line").

use std::process;

/// How a spotdrill command ends. CI jobs gate on these numbers; never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "u8", try_from = "u8")]
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

impl From<ExitCode> for u8 {
    fn from(code: ExitCode) -> u8 {
        code as u8
    }
}

impl TryFrom<u8> for ExitCode {
    type Error = String;

    /// The code as journals and reports write it (a number).
    fn try_from(code: u8) -> Result<ExitCode, String> {
        Ok(match code {
            0 => ExitCode::Success,
            1 => ExitCode::Failed,
            2 => ExitCode::BadInput,
            3 => ExitCode::Aborted,
            4 => ExitCode::Environment,
            other => return Err(format!("{other} is not a spotdrill exit code (0–4)")),
        })
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

impl From<ExitCode> for process::ExitCode {
    fn from(code: ExitCode) -> Self {
        process::ExitCode::from(code as u8)
    }
}

/// What kind of failure an error is: it decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A command or option that is not built yet (exit 2).
    NotImplemented,
    /// Bad input or usage (exit 2).
    BadInput,
    /// The environment is not as needed: unreachable broker, no credentials, a held lock
    /// (exit 4).
    Environment,
}

/// An error that knows which exit code it ends the program with, and keeps its cause: the chain
/// `main` prints as `error:` then `Caused by:` lines.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    /// What failed, in words; `None`: the cause says it all (the failure only classifies it).
    message: Option<String>,
    cause: Option<anyhow::Error>,
}

impl Failure {
    fn new(kind: Kind, message: String) -> Failure {
        Failure {
            kind,
            message: Some(message),
            cause: None,
        }
    }

    pub fn bad_input(message: String) -> Failure {
        Failure::new(Kind::BadInput, message)
    }

    pub fn environment(message: String) -> Failure {
        Failure::new(Kind::Environment, message)
    }

    pub fn not_implemented(what: &'static str) -> Failure {
        Failure::new(Kind::NotImplemented, format!("not implemented yet: {what}"))
    }

    /// An error classified as it is: its own words and causes, this kind's exit code.
    pub fn of(kind: Kind, cause: impl Into<anyhow::Error>) -> Failure {
        Failure {
            kind,
            message: None,
            cause: Some(cause.into()),
        }
    }

    /// The error this failure comes from (shown as `Caused by:`).
    pub fn because(mut self, cause: impl Into<anyhow::Error>) -> Failure {
        self.cause = Some(cause.into());
        self
    }

    pub fn code(&self) -> ExitCode {
        match self.kind {
            Kind::NotImplemented | Kind::BadInput => ExitCode::BadInput,
            Kind::Environment => ExitCode::Environment,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.message, &self.cause) {
            (Some(m), _) => f.write_str(m),
            (None, Some(c)) => write!(f, "{c}"),
            (None, None) => f.write_str("failed"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let cause: &(dyn std::error::Error + 'static) = self.cause.as_ref()?.as_ref();
        match self.message {
            Some(_) => Some(cause),
            // Transparent: the cause's own causes follow.
            None => cause.source(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_cause_and_decides_the_exit_code() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = anyhow::Error::from(Failure::environment("cannot create /x".into()).because(io));
        let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        assert_eq!(chain, ["cannot create /x", "denied"]);
        assert_eq!(code_for(&err), ExitCode::Environment);
        let bad = anyhow::Error::from(Failure::bad_input("no such target".into()))
            .context("while checking");
        assert_eq!(code_for(&bad), ExitCode::BadInput);
        let plain = anyhow::anyhow!("broken pipe");
        assert_eq!(code_for(&plain), ExitCode::Environment);
    }

    #[test]
    fn a_classified_error_reads_as_itself() {
        let inner = anyhow::anyhow!("root cause").context("stale lock: pid 7 is gone");
        let err = anyhow::Error::from(Failure::of(Kind::Environment, inner));
        let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        assert_eq!(chain, ["stale lock: pid 7 is gone", "root cause"]);
    }
}
