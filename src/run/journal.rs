//! The run's journal (`journal.jsonl`): every intent is written and fsynced before spotdrill acts,
//! every outcome after. A report can always be rebuilt from it, and `run --resume` continues a
//! crashed run without terminating anything twice.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::Verdict;

pub const FILE: &str = "journal.jsonl";

/// A node as the journal and reports name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: String,
    pub host: String,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    /// `spot`, `on-demand`, or `lab`.
    pub lifecycle: String,
}

/// What the report needs to know about a target, recorded when the run starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub kind: String,
    pub provider: String,
    pub required_tolerance: u32,
    pub ladder: Vec<u32>,
    pub cumulative: bool,
    pub safety_multiple: f64,
    pub applications: Vec<String>,
}

/// One application's band from the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineApp {
    pub name: String,
    pub group: String,
    pub p99_s: f64,
    pub upper_s: f64,
    pub samples: usize,
}

/// One application's result in one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppResult {
    pub name: String,
    pub baseline_lag_s: Option<f64>,
    pub band_upper_s: Option<f64>,
    pub spike_lag_s: Option<f64>,
    pub time_to_peak_s: Option<f64>,
    pub recovery_s: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
}

/// What happened to one node the runner meant to terminate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeOutcome {
    Terminated,
    AlreadyGone,
    Refused,
    Error,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        at: String,
        plan: String,
        plan_path: String,
        /// FNV-1a of the plan text: `--resume` refuses a plan that changed.
        plan_digest: String,
        version: String,
        /// Targets in the order they run.
        targets: Vec<TargetInfo>,
        lab: bool,
    },
    Resumed {
        at: String,
    },
    Baseline {
        at: String,
        applications: Vec<BaselineApp>,
    },
    StepStarted {
        at: String,
        target: String,
        step: usize,
        terminations: u32,
    },
    /// Written and fsynced before the provider is called.
    Intent {
        at: String,
        target: String,
        step: usize,
        provider: String,
        notice_s: f64,
        nodes: Vec<NodeRef>,
    },
    Outcome {
        at: String,
        target: String,
        step: usize,
        node: String,
        outcome: NodeOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Injected {
        at: String,
        target: String,
        step: usize,
    },
    StepJudged {
        at: String,
        target: String,
        step: usize,
        terminations: u32,
        nodes: Vec<String>,
        injected_at: Option<String>,
        verdict: Verdict,
        capacity_restored_s: Option<f64>,
        applications: Vec<AppResult>,
    },
    /// Something a node provider did while terminating (an FIS template created, an experiment's
    /// state); notes for people, not read back by the report.
    ProviderEvent {
        at: String,
        target: String,
        step: usize,
        /// `fis_template_created`, `fis_experiment_state`, …
        kind: String,
        detail: String,
    },
    /// The target's capacity came back (all nodes and workers) this long after the injection.
    CapacityRestored {
        at: String,
        target: String,
        step: usize,
        after_s: f64,
    },
    StepSkipped {
        at: String,
        target: String,
        step: usize,
        terminations: u32,
        reason: String,
    },
    GuardBreached {
        at: String,
        target: String,
        guard: String,
        detail: String,
    },
    /// Escalation stopped for a reason other than a guard or Ctrl-C (the lab's broker died).
    Aborted {
        at: String,
        reason: String,
    },
    Interrupted {
        at: String,
        /// The second Ctrl-C: the run ended at once.
        hard: bool,
    },
    RunFinished {
        at: String,
        verdict: Verdict,
        exit_code: u8,
        /// Wall time of this attempt, seconds.
        #[serde(default)]
        wall_s: Option<f64>,
        /// CPU time of the spotdrill process over this attempt (the lab's schedulers included;
        /// its broker and node processes not), seconds.
        #[serde(default)]
        cpu_s: Option<f64>,
    },
}

/// Now, as the journal writes times.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The journal, open for appending. Every `append` is on disk when it returns.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Open (creating or appending to) the journal of a run directory.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        let path = dir.join(FILE);
        let file = File::options().create(true).append(true).open(&path)?;
        Ok(Journal { path, file })
    }

    /// Write one entry and fsync it.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a journal entry: {source}")]
    Entry {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
}

/// Read every entry of a run directory's journal. A last line cut short by a crash is left out
/// (it was never fsynced as a whole); any other bad line is an error naming its line.
pub fn read(dir: &Path) -> Result<Vec<Entry>, ReadError> {
    let path = dir.join(FILE);
    let shown = path.display().to_string();
    let file = File::open(&path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
    let mut entries = Vec::new();
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(e) => entries.push(e),
            Err(_) if i + 1 == last && !line.ends_with('}') => {
                tracing::warn!(path = %shown, line = i + 1, "ignoring a journal line cut short");
            }
            Err(source) => {
                return Err(ReadError::Entry {
                    path: shown,
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(entries)
}

/// FNV-1a, 64 bits, as hex: a stable digest of the plan text.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let intent = Entry::Intent {
            at: now(),
            target: "storm-lab".into(),
            step: 0,
            provider: "lab".into(),
            notice_s: 0.0,
            nodes: vec![NodeRef {
                id: "storm-lab-1".into(),
                host: "storm-lab-1".into(),
                zone: None,
                instance_type: None,
                lifecycle: "lab".into(),
            }],
        };
        j.append(&intent).unwrap();
        drop(j);
        let mut f = File::options()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.write_all(b"{\"event\":\"outcome\",\"at\":\"20").unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![intent]);
        f.write_all(b"\n{}\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl:2:"), "{err}");
    }
}
