//! The run's journal (`journal.jsonl`): every intent is written and fsynced before spotdrill acts,
//! every outcome after. A report can always be rebuilt from it, and `run --resume` continues a
//! crashed run without terminating anything twice.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::Verdict;

pub mod view;
pub use view::RunView;

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

/// The spot market (instance type × availability zone) a market rung took whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MarketRef {
    pub instance_type: String,
    pub zone: String,
}

impl MarketRef {
    pub fn new((instance_type, zone): (String, String)) -> MarketRef {
        MarketRef {
            instance_type,
            zone,
        }
    }

    /// `c5.2xlarge/us-east-1a`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.instance_type, self.zone)
    }

    /// A market step as people read it: `the largest market (c5.2xlarge/us-east-1a: 4 nodes)`.
    pub fn step_label(market: Option<&MarketRef>, n: u32) -> String {
        match market {
            Some(m) => format!(
                "the largest market ({}: {n} node{})",
                m.name(),
                if n == 1 { "" } else { "s" }
            ),
            None => "the largest market".to_owned(),
        }
    }
}

/// What the report needs to know about a target, recorded when the run starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub kind: String,
    pub provider: String,
    pub required_tolerance: u32,
    /// The listed steps (a number, or `{"market": "largest"}` for a step whose count is
    /// resolved when it runs); empty for a search.
    pub ladder: Vec<crate::plan::Rung>,
    /// The ladder is a search for the breaking point (absent in journals before it and for a
    /// listed ladder): its steps are journaled as they are chosen, and a resume replays their
    /// verdicts to continue the very same search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::analysis::Search>,
    pub cumulative: bool,
    pub safety_multiple: f64,
    pub applications: Vec<String>,
}

/// Where an AWS target acted, recorded when the run starts: `--resume` refuses another account,
/// region or endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPlace {
    pub target: String,
    pub account: String,
    pub region: String,
    pub endpoint: String,
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
    /// Seconds from the injection until the scheduler had this application's topology or app
    /// whole again on live nodes (health probes); null when the step did not hit its work or
    /// it was not seen whole.
    #[serde(default)]
    pub rescheduled_s: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
    /// Rebalances of the application's consumer group seen from the injection to the judgment
    /// (state changes into a rebalance, or member changes between samples); absent where the
    /// brokers do not describe groups (and in journals written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalances: Option<u64>,
    /// The group's commits stopped while its high watermark grew, since this time (RFC 3339),
    /// during the step: stalled, not slow. Absent when it never stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_since: Option<String>,
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

/// What a resume found of a node whose intent has no outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// Discovered running: it was not terminated (not counted by `max_terminations`).
    Running,
    /// Not discovered running: counted as terminated.
    Gone,
    /// The provider cannot tell (the lab restarted, discovery failed): counted as terminated.
    Unknown,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// What the probes saw of a target during one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepCapacity {
    /// Live nodes (Storm supervisors alive, Mesos agents active) at the injection.
    pub nodes_before: Option<u32>,
    /// The fewest live nodes seen while the step was observed.
    pub nodes_lowest: Option<u32>,
    /// Live nodes when the step was judged.
    pub nodes_after: Option<u32>,
    /// Probes answered / failed while the step was observed.
    pub probes: u32,
    pub probes_failed: u32,
}

/// The provider event of a drain whose detail is a finding of its step: how long a
/// PodDisruptionBudget held an eviction back ("eviction of apps/ingest-7 was blocked 30s by
/// PodDisruptionBudget ingest").
pub const EVICTION_BLOCK_ENDED: &str = "eviction_block_ended";

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
        /// Where each AWS target acts (account, region, endpoint); empty without AWS targets
        /// and in journals written before it was recorded.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        aws: Vec<TargetPlace>,
    },
    Resumed {
        at: String,
        /// `run --resume --continue`: the operator lets escalation go on past the stops of the
        /// attempts before (absent in older journals: a stop holds).
        #[serde(default, skip_serializing_if = "is_false")]
        continued: bool,
    },
    /// A target's node count when the run first started: the 100% of `min_healthy` for every
    /// attempt (a resumed run does not re-measure it from a shrunk fleet).
    Fleet {
        at: String,
        target: String,
        nodes: u32,
    },
    /// At resume, what became of a node whose intent has no outcome (the run was cut between
    /// them): asked of the provider.
    Reconciled {
        at: String,
        target: String,
        step: usize,
        node: String,
        found: Found,
        detail: String,
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
        /// The running, eligible nodes the step chose from (absent in journals before it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes_alive: Option<u32>,
        /// A market rung: the market it took whole (`terminations` is the count it resolved
        /// to). Absent for a numeric rung.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        market: Option<MarketRef>,
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
        /// What the health probes saw (targets with health endpoints).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity: Option<StepCapacity>,
        /// What the scheduler did, in words.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        findings: Vec<String>,
        /// A market rung: the market it took whole. Absent for a numeric rung.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        market: Option<MarketRef>,
    },
    /// Something a node provider did while terminating (an FIS template created, an experiment's
    /// state); notes for people, not read back by the report, except
    /// [`EVICTION_BLOCK_ENDED`], whose detail is a finding of its step.
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
        /// The target's ladder ends here (a cooldown that timed out, no node left to choose):
        /// a resume keeps it ended unless `--continue`.
        #[serde(default, skip_serializing_if = "is_false")]
        ends: bool,
        /// A market rung resolved before it was refused: the market (`terminations` is its
        /// size then). Absent for a numeric rung and a market rung never resolved (0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        market: Option<MarketRef>,
    },
    GuardBreached {
        at: String,
        target: String,
        guard: String,
        detail: String,
    },
    /// Escalation stopped for a reason other than a guard or Ctrl-C (the lab's broker died).
    Aborted { at: String, reason: String },
    Interrupted {
        at: String,
        /// The second Ctrl-C: the run ended at once.
        hard: bool,
    },
    RunFinished {
        at: String,
        verdict: Verdict,
        exit_code: crate::exit::ExitCode,
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
    ///
    /// A journal whose last line was cut short by a crash (no newline at the end) is repaired
    /// first, so that the next entry starts on a line of its own: a cut line that still holds a
    /// whole entry gets its newline; anything else is moved to `journal.jsonl.torn` (kept for
    /// people, never read back) and cut off. It was never acted on: `append` returns, and the
    /// runner acts, only after the whole line is on disk.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        let path = dir.join(FILE);
        let mut file = File::options()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        repair_tail(&path, &mut file)?;
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

/// Where torn journal tails are kept.
pub const TORN_FILE: &str = "journal.jsonl.torn";

fn repair_tail(path: &Path, file: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    let Some(tail) = torn_tail(&bytes) else {
        return Ok(());
    };
    let keep = bytes.len() - tail.len();
    if serde_json::from_slice::<Entry>(tail).is_ok() {
        // Whole but for its newline.
        file.write_all(b"\n")?;
    } else {
        let torn = path.with_file_name(TORN_FILE);
        let mut t = File::options().create(true).append(true).open(&torn)?;
        t.write_all(tail)?;
        t.write_all(b"\n")?;
        t.sync_data()?;
        file.set_len(keep as u64)?;
        tracing::warn!(
            path = %path.display(),
            bytes = tail.len(),
            kept_in = %torn.display(),
            "the journal's last line was cut short by a crash; it was never acted on and is set aside"
        );
    }
    file.sync_data()
}

/// The bytes after the last newline, when there are any.
fn torn_tail(bytes: &[u8]) -> Option<&[u8]> {
    let start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (start < bytes.len()).then(|| &bytes[start..])
}

/// Why a journal cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: not a journal entry ({source}); the journal is corrupt before its last line, \
         so it cannot be trusted: do not resume this run, rebuild nothing from it, and keep the file \
         for inspection"
    )]
    Entry {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}:{line}: not UTF-8 text (byte {offset} of the line); the journal is corrupt")]
    NotUtf8 {
        path: String,
        line: usize,
        offset: usize,
    },
}

/// A journal as read: its entries, and the last line when a crash cut it short.
#[derive(Debug, Default)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// The cut line: its 1-based number and its length in bytes.
    pub torn: Option<Torn>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    pub line: usize,
    pub bytes: usize,
}

/// Read every entry of a run directory's journal. A last line cut short by a crash (no newline
/// at its end, and not a whole entry) is left out with a warning: it was never acted on. Any
/// other bad line is an error naming its line.
pub fn read(dir: &Path) -> Result<Vec<Entry>, ReadError> {
    let contents = read_contents(dir)?;
    if let Some(t) = contents.torn {
        tracing::warn!(
            path = %dir.join(FILE).display(),
            line = t.line,
            bytes = t.bytes,
            "ignoring the journal's last line: a crash cut it short (it was never acted on)"
        );
    }
    Ok(contents.entries)
}

/// [`read`], saying whether the last line was cut short instead of warning.
pub fn read_contents(dir: &Path) -> Result<Contents, ReadError> {
    let path = dir.join(FILE);
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    parse(&bytes, &shown)
}

/// Parse journal bytes; `shown` names the file in errors.
pub fn parse(bytes: &[u8], shown: &str) -> Result<Contents, ReadError> {
    let tail = torn_tail(bytes);
    let whole = &bytes[..bytes.len() - tail.map_or(0, <[u8]>::len)];
    let mut contents = Contents::default();
    let mut number = 0;
    for line in whole.split(|&b| b == b'\n') {
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|e| ReadError::NotUtf8 {
            path: shown.to_owned(),
            line: number,
            offset: e.valid_up_to(),
        })?;
        let entry = serde_json::from_str(text).map_err(|source| ReadError::Entry {
            path: shown.to_owned(),
            line: number,
            source,
        })?;
        contents.entries.push(entry);
    }
    if let Some(tail) = tail {
        // Splitting `whole` (empty, or ending with a newline) counted the tail's line last.
        let line = number;
        match serde_json::from_slice::<Entry>(tail) {
            Ok(e) => contents.entries.push(e),
            Err(_) if tail.iter().all(u8::is_ascii_whitespace) => {}
            Err(_) => {
                contents.torn = Some(Torn {
                    line,
                    bytes: tail.len(),
                });
            }
        }
    }
    Ok(contents)
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

    fn intent() -> Entry {
        Entry::Intent {
            at: "2026-01-01T00:00:00.000Z".into(),
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
        }
    }

    fn append_raw(dir: &Path, bytes: &[u8]) {
        let mut f = File::options().append(true).open(dir.join(FILE)).unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn entries_round_trip_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&intent()).unwrap();
        drop(j);
        append_raw(dir.path(), b"{\"event\":\"outcome\",\"at\":\"20");
        let c = read_contents(dir.path()).unwrap();
        assert_eq!(c.entries, vec![intent()]);
        assert_eq!(c.torn, Some(Torn { line: 2, bytes: 27 }));
        append_raw(dir.path(), b"\n{}\n");
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl:2:"), "{err}");
    }

    /// A cut that ends on an inner `}` (inside the nodes list) is still a torn last line.
    #[test]
    fn a_torn_line_ending_in_a_brace_is_still_torn() {
        let text = serde_json::to_string(&intent()).unwrap();
        let cut = &text[..text.find('}').unwrap() + 1];
        let c = parse(cut.as_bytes(), "j").unwrap();
        assert!(c.entries.is_empty());
        assert_eq!(c.torn.map(|t| t.line), Some(1));
    }

    /// A cut inside a multi-byte character is a torn line, not an unreadable journal.
    #[test]
    fn a_torn_line_cut_inside_a_utf8_character_is_torn() {
        let mut bytes = serde_json::to_vec(&intent()).unwrap();
        bytes.push(b'\n');
        bytes.extend_from_slice("{\"event\":\"aborted\",\"reason\":\"é".as_bytes());
        bytes.pop();
        let c = parse(&bytes, "j").unwrap();
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.torn.map(|t| t.line), Some(2));
        // The same bytes in the middle are corruption, located.
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(&serde_json::to_vec(&intent()).unwrap());
        let err = parse(&bytes, "j").unwrap_err().to_string();
        assert!(err.starts_with("j:2: not UTF-8"), "{err}");
    }

    /// A whole entry that only lacks its newline is kept.
    #[test]
    fn a_whole_last_entry_without_its_newline_is_kept() {
        let text = serde_json::to_string(&intent()).unwrap();
        let c = parse(text.as_bytes(), "j").unwrap();
        assert_eq!(c.entries, vec![intent()]);
        assert_eq!(c.torn, None);
    }

    /// Reopening a torn journal (a resume) sets the cut line aside, so the next entry starts on
    /// its own line and the journal reads clean.
    #[test]
    fn reopening_a_torn_journal_sets_the_cut_line_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&intent()).unwrap();
        drop(j);
        append_raw(dir.path(), b"{\"event\":\"outcome\",\"at");
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&Entry::Resumed {
            at: now(),
            continued: false,
        })
        .unwrap();
        drop(j);
        let c = read_contents(dir.path()).unwrap();
        assert_eq!(c.torn, None);
        assert_eq!(c.entries.len(), 2);
        assert!(matches!(c.entries[1], Entry::Resumed { .. }));
        let torn = std::fs::read_to_string(dir.path().join(TORN_FILE)).unwrap();
        assert_eq!(torn, "{\"event\":\"outcome\",\"at\n");
        // A whole entry without its newline gets one.
        let text = serde_json::to_string(&intent()).unwrap();
        append_raw(dir.path(), text.as_bytes());
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&Entry::Resumed {
            at: now(),
            continued: false,
        })
        .unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 4);
    }
}
