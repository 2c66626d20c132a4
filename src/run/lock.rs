//! One run per target at a time: a lock file per target, naming its holder (pid, host, run
//! directory). A lock whose holder is gone is reported as stale, never silently broken.

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
         check that run, then remove {}",
        holder.pid, holder.host, holder.run_dir, holder.since, path.display()
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
    Path::new(&format!("/proc/{pid}")).exists()
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
        let path = dir.join(format!("{}.lock", crate::run::journal::digest(key)));
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
            since: crate::run::journal::now(),
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
                let text = std::fs::read_to_string(&path).map_err(io)?;
                let other: Holder = serde_json::from_str(&text).unwrap_or(Holder {
                    pid: 0,
                    host: "unknown".into(),
                    run_dir: "unknown".into(),
                    since: "unknown".into(),
                });
                let target = target.to_owned();
                if other.host == holder.host && !alive(other.pid) {
                    Err(LockError::Stale {
                        target,
                        holder: Box::new(other),
                        path,
                    })
                } else {
                    Err(LockError::Held {
                        target,
                        holder: Box::new(other),
                        path,
                    })
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
        let path = lock.path.clone();
        std::mem::forget(lock);
        let mut holder: Holder =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        holder.pid = u32::MAX - 1;
        std::fs::write(&path, serde_json::to_vec(&holder).unwrap()).unwrap();
        let err = TargetLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err}");
        assert!(path.exists(), "a stale lock is not broken silently");
    }
}
