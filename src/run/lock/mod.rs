//! One run per target at a time: a lock per target, keyed on the cluster's identity (the
//! provider's: AWS account, region and normalised selector; a lab cluster and its directory) and
//! naming its holder (pid, host, run directory). Locks live in files on this machine
//! ([`file`], the default) or, team-wide, in a DynamoDB table ([`table`]: `locks: {dynamodb:
//! …}` in the plan, or `SPOTDRILL_LOCK_TABLE`). The rules are the same in both: a lock whose
//! holder is gone is reported as stale, never silently broken; it is cleared by `spotdrill
//! unlock PLAN`, or taken over by `run --resume` of the very run directory that held it
//! (resuming that run is what clearing it is for), and of two such resumes exactly one wins.

pub mod file;
pub mod table;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::nodes::aws::AwsSettings;
use crate::plan::Plan;

pub use file::{lock_dir, path_of, state};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_dir: String,
    pub since: String,
    /// The lock key (the cluster's identity), so a lock names what it locks.
    #[serde(default)]
    pub key: String,
    /// Unique to one taking of the lock: a release or takeover removes only this one.
    #[serde(default)]
    pub token: String,
}

impl Holder {
    /// This process, holding `key` for the run in `run_dir`.
    fn this(key: &str, run_dir: &Path) -> Holder {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TAKEN: AtomicU64 = AtomicU64::new(0);
        let since = crate::journal::now();
        let n = TAKEN.fetch_add(1, Ordering::Relaxed);
        Holder {
            pid: std::process::id(),
            host: host(),
            run_dir: run_dir.display().to_string(),
            token: format!("{}/{}/{since}/{n}", host(), std::process::id()),
            since,
            key: key.to_owned(),
        }
    }

    /// A lock whose holder cannot be read (nothing names it).
    fn unknown(key: &str) -> Holder {
        Holder {
            pid: 0,
            host: "unknown".into(),
            run_dir: "unknown".into(),
            since: "unknown".into(),
            key: key.to_owned(),
            token: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "target `{target}` is being run by pid {} on {} (run directory {}, since {}); cluster {}, \
         {where_}",
        holder.pid, holder.host, holder.run_dir, holder.since, holder.key
    )]
    Held {
        target: String,
        holder: Box<Holder>,
        /// `lock file PATH` or `DynamoDB table T`.
        where_: String,
    },
    #[error(
        "target `{target}` has a stale lock: pid {} on this host ({}) is gone (run directory {}, since {}); \
         resume that run with `spotdrill run PLAN --resume {}`, or check it and clear the lock with \
         `spotdrill unlock PLAN --target {target}` (cluster {}, {where_})",
        holder.pid, holder.host, holder.run_dir, holder.since, holder.run_dir, holder.key
    )]
    Stale {
        target: String,
        holder: Box<Holder>,
        where_: String,
    },
    #[error("cannot lock target `{target}` ({where_}): {source}")]
    Io {
        target: String,
        where_: String,
        source: std::io::Error,
    },
    #[error("cannot lock target `{target}` in DynamoDB table {table}: {detail}")]
    Table {
        target: String,
        table: String,
        detail: String,
    },
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; it only waits for its parent to reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.starts_with(" Z"))
    })
}

/// The lock key of a target: its provider's identity of the cluster (AWS account, region and
/// normalised selector; a lab cluster and its directory), so that two plans naming the same
/// cluster differently exclude each other, whatever they call the target.
pub fn key(identity: &str) -> String {
    format!("cluster|{identity}")
}

/// Which locks `unlock` clears: one key, or every key with a prefix (a lab cluster's locks,
/// one per run directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub text: String,
    pub prefix: bool,
}

/// Who holds a lock, and whether it is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    /// Held by a live process on this host, or by a process on another host (which cannot be
    /// checked from here).
    Held(Holder),
    /// Its holder was on this host and is gone.
    Stale(Holder),
}

/// The stale-holder rule where no file lock can tell: a holder on this host whose pid is gone
/// (zombies count as gone) is stale; one on another host is held (it cannot be checked here).
fn judged(holder: Holder) -> State {
    if holder.host == host() && !alive(holder.pid) {
        State::Stale(holder)
    } else {
        State::Held(holder)
    }
}

/// The same run directory, however it was spelled.
fn same_dir(a: &str, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    canon(Path::new(a)) == canon(b)
}

/// Whether `clear` may remove a lock in `state`: a stale one, or forced one held on another
/// host; a live holder's on this host never.
fn clearable(state: State, force: bool) -> Result<Option<Holder>, Box<Holder>> {
    match state {
        State::Free => Ok(None),
        State::Stale(h) => Ok(Some(h)),
        State::Held(h) if force && h.host != host() => Ok(Some(h)),
        State::Held(h) => Err(Box::new(h)),
    }
}

/// Where locks are kept.
#[derive(Clone, Debug)]
pub enum Store {
    /// Lock files in a directory of this machine.
    Files(std::path::PathBuf),
    /// A DynamoDB table the team shares.
    Table(table::Table),
}

/// The env var that chooses the team-wide DynamoDB table when the plan names none.
pub const TABLE_ENV: &str = "SPOTDRILL_LOCK_TABLE";
/// The region of that table (else the one `--region` or the environment gives).
pub const TABLE_REGION_ENV: &str = "SPOTDRILL_LOCK_TABLE_REGION";

impl Store {
    /// The store a plan's runs lock in: the plan's `locks.dynamodb`, else `SPOTDRILL_LOCK_TABLE`,
    /// else lock files in `dir`.
    pub async fn of(
        plan: &Plan,
        aws: &AwsSettings,
        dir: std::path::PathBuf,
    ) -> Result<Store, crate::exit::Failure> {
        let chosen = match &plan.locks {
            Some(t) => Some((t.table.clone(), t.region.clone())),
            None => match std::env::var(TABLE_ENV) {
                Ok(t) if !t.trim().is_empty() => {
                    let t = t.trim().to_owned();
                    if let Err(why) = crate::plan::check_table_name(&t) {
                        return Err(crate::exit::Failure::bad_input(format!(
                            "{TABLE_ENV}: {why}"
                        )));
                    }
                    Some((t, std::env::var(TABLE_REGION_ENV).ok()))
                }
                _ => None,
            },
        };
        Ok(match chosen {
            Some((name, region)) => {
                Store::Table(table::Table::connect(aws, &name, region.as_deref()).await)
            }
            None => Store::Files(dir),
        })
    }

    /// Take the lock of `key` for the run in `run_dir`.
    pub async fn acquire(
        &self,
        target: &str,
        key: &str,
        run_dir: &Path,
    ) -> Result<TargetLock, LockError> {
        match self {
            Store::Files(dir) => {
                file::FileLock::acquire(dir, target, key, run_dir).map(TargetLock::File)
            }
            Store::Table(t) => t.acquire(target, key, run_dir).await.map(TargetLock::Table),
        }
    }

    /// Clear the locks of `key` (see [`clearable`]); the holders removed (none: not locked).
    pub async fn clear(
        &self,
        target: &str,
        key: &Key,
        force: bool,
    ) -> Result<Vec<Holder>, LockError> {
        match self {
            Store::Files(dir) => file::clear(dir, target, key, force),
            Store::Table(t) => t.clear(target, key, force).await,
        }
    }
}

/// A held lock. A file lock is released when dropped; [`TargetLock::release`] releases either.
#[derive(Debug)]
pub enum TargetLock {
    File(file::FileLock),
    Table(table::TableLock),
}

/// How to release a lock from elsewhere (the second Ctrl-C exits from the signal task).
#[derive(Clone, Debug)]
pub enum Release {
    File(std::path::PathBuf),
    Table(table::Table, String, String),
}

impl TargetLock {
    pub fn releaser(&self) -> Release {
        match self {
            TargetLock::File(f) => Release::File(f.path().to_owned()),
            TargetLock::Table(t) => t.releaser(),
        }
    }

    pub async fn release(self) {
        match self {
            TargetLock::File(f) => drop(f),
            TargetLock::Table(t) => t.release().await,
        }
    }
}

impl Release {
    /// Release the lock now (the process is about to exit).
    pub async fn run(&self) {
        match self {
            Release::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            Release::Table(t, key, token) => t.delete_own(key, token).await,
        }
    }
}

/// Release every lock, file or table.
pub async fn release_all(locks: Vec<TargetLock>) {
    for l in locks {
        l.release().await;
    }
}
