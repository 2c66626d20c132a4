//! One run per target at a time: a lock file per target, naming its holder (pid, host, run
//! directory). A lock whose holder is gone is reported as stale, never silently broken: it is
//! cleared by `spotdrill unlock PLAN` ([`clear`]), or taken over by `run --resume` of the very
//! run directory that held it (resuming that run is what clearing it is for).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_dir: String,
    pub since: String,
}

/// A held lock; released (the file removed) on drop.
#[derive(Debug)]
pub struct TargetLock {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "target `{target}` is being run by pid {} on {} (run directory {}, since {}); lock file {}",
        holder.pid, holder.host, holder.run_dir, holder.since, path.display()
    )]
    Held {
        target: String,
        holder: Box<Holder>,
        path: PathBuf,
    },
    #[error(
        "target `{target}` has a stale lock: pid {} on this host ({}) is gone (run directory {}, since {}); \
         resume that run with `spotdrill run PLAN --resume {}`, or check it and clear the lock with \
         `spotdrill unlock PLAN --target {target}` (lock file {})",
        holder.pid, holder.host, holder.run_dir, holder.since, holder.run_dir, path.display()
    )]
    Stale {
        target: String,
        holder: Box<Holder>,
        path: PathBuf,
    },
    #[error("cannot lock target `{target}` ({}): {source}", path.display())]
    Io {
        target: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where lock files live: `SPOTDRILL_LOCK_DIR`, else `$XDG_RUNTIME_DIR/spotdrill`, else the
/// temporary directory.
pub fn lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SPOTDRILL_LOCK_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("spotdrill-locks")
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

/// The lock key of a target: its provider's identity of the cluster (region and normalised
/// selector; a lab cluster's name), so that two plans naming the same cluster differently
/// exclude each other, whatever they call the target.
pub fn key(identity: &str) -> String {
    format!("cluster|{identity}")
}

/// The lock file of `key` in `dir`.
pub fn path_of(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.lock", crate::journal::digest(key)))
}

/// Who holds the lock at `path`, and whether it is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    /// Held by a live process on this host, or by a process on another host (which cannot be
    /// checked from here).
    Held(Holder),
    /// Its holder was on this host and is gone.
    Stale(Holder),
}

fn unreadable() -> Holder {
    Holder {
        pid: 0,
        host: "unknown".into(),
        run_dir: "unknown".into(),
        since: "unknown".into(),
    }
}

/// Look at a lock file without touching it.
pub fn state(path: &Path) -> std::io::Result<State> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Free),
        Err(e) => return Err(e),
    };
    // An unreadable lock (a crash while it was written) names no one: stale when nothing can
    // hold it, which is the case for an empty or cut file.
    let Ok(holder) = serde_json::from_str::<Holder>(&text) else {
        return Ok(State::Stale(unreadable()));
    };
    if holder.host == host() && !alive(holder.pid) {
        Ok(State::Stale(holder))
    } else {
        Ok(State::Held(holder))
    }
}

/// What [`clear`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleared {
    /// There was no lock.
    Free,
    /// A stale lock (or, forced, one held on another host) was removed; its holder.
    Removed(Holder),
}

/// Clear the lock of `key`: only a stale one, or with `force` one whose holder is on another host
/// (this host cannot tell whether it still runs). A lock held by a live process on this host is
/// never removed: stop that run instead.
pub fn clear(dir: &Path, target: &str, key: &str, force: bool) -> Result<Cleared, LockError> {
    let path = path_of(dir, key);
    let io = |source| LockError::Io {
        target: target.to_owned(),
        path: path.clone(),
        source,
    };
    let holder = match state(&path).map_err(io)? {
        State::Free => return Ok(Cleared::Free),
        State::Stale(h) => h,
        State::Held(h) if force && h.host != host() => h,
        State::Held(h) => {
            return Err(LockError::Held {
                target: target.to_owned(),
                holder: Box::new(h),
                path,
            });
        }
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Cleared::Removed(holder)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cleared::Free),
        Err(e) => Err(io(e)),
    }
}

/// The same run directory, however it was spelled.
fn same_dir(a: &str, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    canon(Path::new(a)) == canon(b)
}

impl TargetLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the lock of `key` (a target's identity: its name and what its selector points at).
    pub fn acquire(
        dir: &Path,
        target: &str,
        key: &str,
        run_dir: &Path,
    ) -> Result<TargetLock, LockError> {
        let path = path_of(dir, key);
        let io = |source| LockError::Io {
            target: target.to_owned(),
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let holder = Holder {
            pid: std::process::id(),
            host: host(),
            run_dir: run_dir.display().to_string(),
            since: crate::journal::now(),
        };
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let text = serde_json::to_vec_pretty(&holder).map_err(std::io::Error::other);
                text.and_then(|t| f.write_all(&t))
                    .and_then(|()| f.sync_all())
                    .map_err(io)?;
                Ok(TargetLock { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let target = target.to_owned();
                match state(&path).map_err(io)? {
                    // Released between the two looks: try once more.
                    State::Free => Self::acquire(dir, &target, key, run_dir),
                    // `run --resume DIR` of the run that crashed holding it: resuming is the
                    // explicit act that clears it (a new run never reuses a run directory).
                    State::Stale(other) if same_dir(&other.run_dir, run_dir) => {
                        tracing::warn!(
                            target = %target,
                            pid = other.pid,
                            run_dir = %other.run_dir,
                            "taking over the stale lock of the run being resumed"
                        );
                        std::fs::remove_file(&path).map_err(io)?;
                        Self::acquire(dir, &target, key, run_dir)
                    }
                    State::Stale(other) => Err(LockError::Stale {
                        target,
                        holder: Box::new(other),
                        path,
                    }),
                    State::Held(other) => Err(LockError::Held {
                        target,
                        holder: Box::new(other),
                        path,
                    }),
                }
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_and_a_stale_lock_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let run = Path::new("/tmp/run-1");
        let lock = TargetLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap();
        let err = TargetLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()));
        // Another target is not blocked.
        let other = TargetLock::acquire(dir.path(), "mesos", "mesos|lab", run).unwrap();
        drop(other);
        // A holder that is gone: stale, and the file stays.
        let (path, _) = orphan(lock);
        let another = Path::new("/tmp/run-3");
        let err = TargetLock::acquire(dir.path(), "storm", "storm|lab", another).unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err}");
        assert!(path.exists(), "a stale lock is not broken silently");
        assert!(err.to_string().contains("spotdrill unlock"), "{err}");
        // Resuming the run that held it takes it over.
        let resumed = TargetLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap();
        drop(resumed);
        assert!(!path.exists());
    }

    /// A lock whose holder died: left behind, naming a pid that does not run.
    fn orphan(lock: TargetLock) -> (PathBuf, Holder) {
        let path = lock.path.clone();
        std::mem::forget(lock);
        let mut holder: Holder =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        holder.pid = u32::MAX - 1;
        std::fs::write(&path, serde_json::to_vec(&holder).unwrap()).unwrap();
        (path, holder)
    }

    #[test]
    fn clear_removes_only_a_stale_lock() {
        let dir = tempfile::tempdir().unwrap();
        let run = Path::new("/tmp/run-2");
        assert_eq!(
            clear(dir.path(), "storm", "k", false).unwrap(),
            Cleared::Free
        );
        let lock = TargetLock::acquire(dir.path(), "storm", "k", run).unwrap();
        // Live holder: refused, even forced (it is on this host).
        let err = clear(dir.path(), "storm", "k", true).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        let (path, mut holder) = orphan(lock);
        match clear(dir.path(), "storm", "k", false).unwrap() {
            Cleared::Removed(h) => assert_eq!(h, holder),
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
        // Another host's lock needs --force.
        holder.host = "elsewhere".into();
        std::fs::write(&path, serde_json::to_vec(&holder).unwrap()).unwrap();
        assert!(clear(dir.path(), "storm", "k", false).is_err());
        assert!(matches!(
            clear(dir.path(), "storm", "k", true).unwrap(),
            Cleared::Removed(_)
        ));
        // A cut lock file names no one: stale.
        std::fs::write(&path, b"{\"pid\": 1").unwrap();
        assert!(matches!(state(&path).unwrap(), State::Stale(_)));
    }
}
