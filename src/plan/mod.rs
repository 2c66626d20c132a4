//! The plan language: text → span-keeping YAML tree → raw serde spec → validated [`Plan`].
//!
//! [`load`] is the one entry point. It is pure (no network, no clock, no files: [`read`] is the
//! separate step that reads a file) and reports every problem it finds, each located by
//! file:line:column and field path.
//!
//! There is no serde_yaml here: the raw spec is deserialized straight from the span-keeping tree
//! ([`de`]), which is what lets one run report every structural problem with its position instead
//! of the first one.

pub mod de;
pub mod diag;
mod groups;
pub mod model;
pub mod reference;
pub mod spec;
pub mod validate;
pub mod yaml;

use std::path::Path as FsPath;

use serde::Deserialize;

pub use diag::{Diagnostic, Severity, Span};
pub use groups::ConsumerGroup;
pub use model::*;
pub use spec::RawPlan;
pub use validate::{MAX_DURATION, parse_duration};

use de::{ErrorKind, NodeDe};
use yaml::{Kind, Node, Path};

/// The outcome of loading a plan: the plan when it is valid, and every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub plan: Option<Plan>,
    /// Sorted by position; errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn failed(diagnostics: Vec<Diagnostic>) -> Loaded {
        Loaded {
            plan: None,
            diagnostics,
        }
    }
}

/// Most deserialize-and-repair rounds before giving up on finding more structural errors.
const MAX_ROUNDS: usize = 1000;

/// Parse and validate plan text.
pub fn load(text: &str) -> Loaded {
    let doc = yaml::parse(text);
    let mut diagnostics = doc.problems;
    let Some(mut root) = doc.root else {
        if diagnostics.is_empty() {
            diagnostics.push(Diagnostic::file("the plan is empty").with_help(
                "a plan needs at least `version`, `name`, `kafka`, `applications` and `targets`",
            ));
        }
        return Loaded::failed(diagnostics);
    };
    if !matches!(root.kind, Kind::Map(_)) {
        let what = root.describe();
        diagnostics.push(
            Diagnostic::error(
                None,
                root.span,
                format!("a plan is a mapping of fields, found {what}"),
            )
            .with_help("start with `version: 1` and `name: …`"),
        );
        return Loaded::failed(diagnostics);
    }

    let mut raw = None;
    for _ in 0..MAX_ROUNDS {
        match RawPlan::deserialize(NodeDe::new(&root, Path::root())) {
            Ok(r) => {
                raw = Some(r);
                break;
            }
            Err(e) => {
                if let Some(d) = structural(&root, &e) {
                    diagnostics.push(d);
                }
                if !repair(&mut root, &e) {
                    break;
                }
            }
        }
    }
    let plan = raw.and_then(|raw| {
        let (plan, more) = validate::check(&raw, &root);
        diagnostics.extend(more);
        plan
    });
    diagnostics.sort_by_key(|d| d.span.map(|s| (s.start.line, s.start.col)));
    // Any excerpt may show a secret's line: every diagnostic hides every secret.
    let secrets: Vec<_> = diagnostics.iter().flat_map(|d| d.secrets.clone()).collect();
    for d in &mut diagnostics {
        d.secrets.clone_from(&secrets);
    }
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    Loaded {
        plan: plan.filter(|_| !has_errors),
        diagnostics,
    }
}

/// Turn a deserialization error into a located diagnostic, unless it lies under a value that
/// already failed (then it is only a consequence of that failure).
fn structural(root: &Node, e: &de::Error) -> Option<Diagnostic> {
    let path = e.path.clone().unwrap_or_default();
    if root.under_poison(&path) && !matches!(e.kind, ErrorKind::UnknownField { .. }) {
        return None;
    }
    let node_span = root.nearest(&path).0.span;
    let key_span = root.key_span(&path);
    let (span, shown) = match e.kind {
        ErrorKind::UnknownField { .. } => (key_span.unwrap_or(node_span), path.clone()),
        // A missing field is reported at the mapping that lacks it, pointing at its key.
        ErrorKind::MissingField(_) => (key_span.unwrap_or(node_span), path.clone()),
        _ => (node_span, path.clone()),
    };
    let value = root.find(&shown).map(|n| n.span);
    let path = (!shown.is_root()).then_some(shown);
    let d = Diagnostic::error(path, span, e.to_string());
    Some(match &e.kind {
        ErrorKind::UnknownField { field, expected } if is_secret_field(field) => {
            let d = d.with_help(unknown_help(field, expected, "fields"));
            match value {
                Some(value) => d.with_secret(value),
                None => d,
            }
        }
        ErrorKind::UnknownField { field, expected } => {
            d.with_help(unknown_help(field, expected, "fields"))
        }
        ErrorKind::UnknownVariant { variant, expected } => {
            match validate::suggest(variant, expected) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d,
            }
        }
        _ => d,
    })
}

/// A field that would hold a secret: refused, and its value never shown.
fn is_secret_field(field: &str) -> bool {
    matches!(
        field,
        "password" | "secret" | "sasl_password" | "token" | "api_key"
    )
}

fn unknown_help(field: &str, expected: &[&str], what: &str) -> String {
    if is_secret_field(field) {
        return "passwords never go in a plan: name the environment variable that holds it with `password_env`".into();
    }
    match validate::suggest(field, expected) {
        Some(s) => format!("did you mean `{s}`?"),
        None if expected.is_empty() => format!("no {what} are allowed here"),
        None => format!("valid {what} here: {}", validate::join_ticked(expected)),
    }
}

/// Edit the tree so the next round gets past `e`. Returns false when no progress is possible.
fn repair(root: &mut Node, e: &de::Error) -> bool {
    let path = e.path.clone().unwrap_or_default();
    match &e.kind {
        ErrorKind::UnknownField { .. } if root.remove(&path) => true,
        ErrorKind::MissingField(field) if root.insert_poison(&path, field) => true,
        _ => {
            // Poison the failing node; if it already is poison, the failure comes from the
            // default poison produced, so poison upwards until something changes.
            let mut p = Some(path);
            while let Some(cur) = p {
                if root.poison_at(&cur) {
                    return true;
                }
                p = cur.parent();
            }
            false
        }
    }
}

/// Why a file cannot be read as a plan.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file")]
    NotFound,
    #[error("permission denied")]
    PermissionDenied,
    #[error("is a directory, not a plan file")]
    Directory,
    #[error("is a binary file (NUL byte at offset {0}), not a YAML plan")]
    Binary(usize),
    #[error("is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
    #[error("cannot read: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
            _ => ReadError::Io(e),
        }
    }
}

impl ReadError {
    /// The problem as a file-level diagnostic (no position inside the file).
    pub fn diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::file(self.to_string());
        match self {
            ReadError::Directory => d.with_help("give the YAML files, e.g. experiments/*.yaml"),
            _ => d,
        }
    }
}

/// Read a plan file, refusing what cannot be a plan (missing, a directory, binary, not UTF-8).
pub fn read(path: &FsPath) -> Result<String, ReadError> {
    if std::fs::metadata(path)?.is_dir() {
        return Err(ReadError::Directory);
    }
    let bytes = std::fs::read(path)?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(ReadError::Binary(at));
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// The JSON Schema of the plan language, for editors (yaml-language-server) and tooling.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPlan)).unwrap_or_default()
}
