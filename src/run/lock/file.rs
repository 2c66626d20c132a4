//! Lock files on this machine: one per cluster, in `SPOTDRILL_LOCK_DIR` (else
//! `$XDG_RUNTIME_DIR/spotdrill-locks`, else the temporary directory), named by a digest of the
//! key and holding the [`Holder`] as JSON.
//!
//! A lock file never exists empty or half-written: its text is written and synced to a temporary
//! file first, which is then hard-linked to the lock's name (fails if the lock exists) or, to take
//! over a stale lock, renamed over it. Its holder keeps the file open with an exclusive `flock`
//! for as long as it runs: the kernel drops that when the process ends however it ends, so "its
//! holder is gone" is a fact here, not a guess from a pid. A takeover holds the `flock` of the old
//! file while it renames the new one (already locked) over it, and every look at a lock file
//! checks, after locking, that the name still leads to the file it locked; so of two `--resume`s
//! of one run, exactly one takes the lock.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Holder, Key, LockError, State, clearable, host, same_dir};

/// Where lock files live: `SPOTDRILL_LOCK_DIR`, else `$XDG_RUNTIME_DIR/spotdrill-locks`, else
/// the temporary directory.
pub fn lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SPOTDRILL_LOCK_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("spotdrill-locks")
}

/// The lock file of `key` in `dir`.
pub fn path_of(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.lock", crate::journal::digest(key)))
}

/// A held lock file; released (the file removed, the `flock` dropped) on drop.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    /// Open, with the exclusive `flock`, while held.
    file: Option<File>,
}

/// A lock file opened at its name, with whether this process got its `flock`.
struct Opened {
    /// Held open: its `flock` (when `locked`) lasts as long as this.
    _open: File,
    holder: Option<Holder>,
    /// Nobody else holds it: its holder is gone.
    locked: bool,
}

/// Whether `path` still names the file `file` is.
fn same_file(path: &Path, file: &File) -> std::io::Result<bool> {
    let here = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let open = file.metadata()?;
    Ok(here.dev() == open.dev() && here.ino() == open.ino())
}

/// Open the lock file at `path` and try its `flock` (without waiting); `None` if there is none.
/// Looks again when the name was given to another file meanwhile (a takeover), so what it
/// returns is the lock file that the name leads to now.
fn open_current(path: &Path) -> std::io::Result<Option<Opened>> {
    for tries in 0..16 {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let locked = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        };
        if !same_file(path, &file)? {
            continue;
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let holder = serde_json::from_str::<Holder>(&text).ok();
        // Locked, yet naming a holder of this host that is gone: a resume is taking it over
        // this instant (it holds the old file while it renames its own over it). Look again, to
        // name the one that takes it.
        let passing = holder
            .as_ref()
            .is_some_and(|h| h.host == host() && !super::alive(h.pid));
        if !locked && passing && tries < 15 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        }
        return Ok(Some(Opened {
            _open: file,
            holder,
            locked,
        }));
    }
    Err(std::io::Error::other("the lock file keeps being replaced"))
}

/// What an opened lock file says: a holder on another host is held (this host cannot check
/// it); otherwise the `flock` decides: nobody holds it, so its holder is gone.
fn state_of(o: &Opened, key: &str) -> State {
    let holder = o.holder.clone().unwrap_or_else(|| Holder::unknown(key));
    if o.holder.is_some() && holder.host != host() {
        State::Held(holder)
    } else if o.locked {
        State::Stale(holder)
    } else {
        State::Held(holder)
    }
}

/// Look at a lock file without changing it.
pub fn state(path: &Path) -> std::io::Result<State> {
    Ok(match open_current(path)? {
        None => State::Free,
        Some(o) => state_of(&o, ""),
    })
}

/// `holder` written and synced to a new temporary file in `dir`, already `flock`ed.
fn written(dir: &Path, holder: &Holder) -> std::io::Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}-{n}.lock.tmp", std::process::id()));
    let mut file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let text = serde_json::to_vec_pretty(holder).map_err(std::io::Error::other)?;
    let done = file
        .write_all(&text)
        .and_then(|()| file.sync_all())
        .and_then(|()| file.try_lock().map_err(std::io::Error::other));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, file))
}

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the lock of `key` (a cluster's identity) for the run in `run_dir`.
    pub fn acquire(
        dir: &Path,
        target: &str,
        key: &str,
        run_dir: &Path,
    ) -> Result<FileLock, LockError> {
        let path = path_of(dir, key);
        let io = |source| LockError::Io {
            target: target.to_owned(),
            where_: format!("lock file {}", path.display()),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let holder = Holder::this(key, run_dir);
        for _ in 0..16 {
            let (tmp, file) = written(dir, &holder).map_err(io)?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(Self::held(path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
            let Some(other) = open_current(&path).map_err(io)? else {
                continue; // released between the two looks: try again
            };
            match state_of(&other, key) {
                State::Free => {}
                // `run --resume DIR` of the run that crashed holding it: resuming is the
                // explicit act that clears it (a new run never reuses a run directory).
                State::Stale(h) if same_dir(&h.run_dir, run_dir) => {
                    return Self::take_over(dir, &path, &holder, other, target).map_err(io);
                }
                State::Stale(h) => return Err(Self::refused(target, h, &path, true)),
                State::Held(h) => return Err(Self::refused(target, h, &path, false)),
            }
        }
        Err(io(std::io::Error::other("the lock keeps changing hands")))
    }

    fn held(path: PathBuf, file: File) -> FileLock {
        FileLock {
            path,
            file: Some(file),
        }
    }

    fn refused(target: &str, holder: Holder, path: &Path, stale: bool) -> LockError {
        let (target, holder) = (target.to_owned(), Box::new(holder));
        let where_ = format!("lock file {}", path.display());
        match stale {
            true => LockError::Stale {
                target,
                holder,
                where_,
            },
            false => LockError::Held {
                target,
                holder,
                where_,
            },
        }
    }

    /// Replace a stale lock (whose `flock` `old` holds) by ours, renamed over it while both are
    /// locked: whoever looks next finds ours, held.
    fn take_over(
        dir: &Path,
        path: &Path,
        holder: &Holder,
        old: Opened,
        target: &str,
    ) -> std::io::Result<FileLock> {
        let gone = old.holder.as_ref().map_or(0, |h| h.pid);
        tracing::warn!(target = %target, pid = gone, "taking over the stale lock of the run being resumed");
        let (tmp, file) = written(dir, holder)?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        drop(old);
        Ok(Self::held(path.to_owned(), file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some(file) = self.file.take()
            && same_file(&self.path, &file).unwrap_or(false)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The lock files in `dir` whose key starts with `prefix`.
fn with_prefix(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if serde_json::from_str::<Holder>(&text).is_ok_and(|h| h.key.starts_with(prefix)) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Clear the lock files of `key`: only stale ones, or with `force` ones whose holder is on
/// another host (this host cannot tell whether it still runs). A lock held by a live process on
/// this host is never removed: stop that run instead.
pub fn clear(dir: &Path, target: &str, key: &Key, force: bool) -> Result<Vec<Holder>, LockError> {
    let io = |path: &Path, source| LockError::Io {
        target: target.to_owned(),
        where_: format!("lock file {}", path.display()),
        source,
    };
    let paths = match key.prefix {
        true => with_prefix(dir, &key.text).map_err(|e| io(dir, e))?,
        false => vec![path_of(dir, &key.text)],
    };
    let mut removed = Vec::new();
    for path in paths {
        let Some(o) = open_current(&path).map_err(|e| io(&path, e))? else {
            continue;
        };
        match clearable(state_of(&o, &key.text), force) {
            Ok(None) => {}
            Ok(Some(h)) => match std::fs::remove_file(&path) {
                Ok(()) => removed.push(h),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, e)),
            },
            Err(h) => return Err(FileLock::refused(target, *h, &path, false)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(k: &str) -> Key {
        Key {
            text: k.into(),
            prefix: false,
        }
    }

    #[test]
    fn a_second_run_is_refused_and_a_stale_lock_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let run = Path::new("/tmp/run-1");
        let lock = FileLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap();
        let err = FileLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()));
        assert!(err.to_string().contains("cluster storm|lab"), "{err}");
        // Another target is not blocked.
        let other = FileLock::acquire(dir.path(), "mesos", "mesos|lab", run).unwrap();
        drop(other);
        // A holder that is gone: stale, and the file stays.
        let (path, _) = orphan(lock);
        let another = Path::new("/tmp/run-3");
        let err = FileLock::acquire(dir.path(), "storm", "storm|lab", another).unwrap_err();
        assert!(matches!(err, LockError::Stale { .. }), "{err}");
        assert!(path.exists(), "a stale lock is not broken silently");
        assert!(err.to_string().contains("spotdrill unlock"), "{err}");
        // Resuming the run that held it takes it over.
        let resumed = FileLock::acquire(dir.path(), "storm", "storm|lab", run).unwrap();
        drop(resumed);
        assert!(!path.exists());
    }

    /// A lock whose holder died: left behind (its `flock` gone with it), naming a pid that does
    /// not run.
    fn orphan(mut lock: FileLock) -> (PathBuf, Holder) {
        let path = lock.path.clone();
        drop(lock.file.take());
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
        assert!(
            clear(dir.path(), "storm", &exact("k"), false)
                .unwrap()
                .is_empty()
        );
        let lock = FileLock::acquire(dir.path(), "storm", "k", run).unwrap();
        // Live holder: refused, even forced (it is on this host).
        let err = clear(dir.path(), "storm", &exact("k"), true).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        let (path, mut holder) = orphan(lock);
        assert_eq!(
            clear(dir.path(), "storm", &exact("k"), false).unwrap(),
            [holder.clone()]
        );
        assert!(!path.exists());
        // Another host's lock needs --force.
        holder.host = "elsewhere".into();
        std::fs::write(&path, serde_json::to_vec(&holder).unwrap()).unwrap();
        assert!(clear(dir.path(), "storm", &exact("k"), false).is_err());
        assert_eq!(
            clear(dir.path(), "storm", &exact("k"), true).unwrap().len(),
            1
        );
        // A cut lock file (an older spotdrill's crash) names no one: stale.
        std::fs::write(&path, b"{\"pid\": 1").unwrap();
        assert!(matches!(state(&path).unwrap(), State::Stale(_)));
    }

    /// A lab cluster's locks (one per run directory) are cleared by their common prefix.
    #[test]
    fn clear_by_prefix_takes_every_stale_lock_of_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileLock::acquire(dir.path(), "s", "cluster|lab/s@/r/a", Path::new("/r/a"));
        let b = FileLock::acquire(dir.path(), "s", "cluster|lab/s@/r/b", Path::new("/r/b"));
        let other = FileLock::acquire(dir.path(), "m", "cluster|lab/m@/r/a", Path::new("/r/a"));
        let prefix = Key {
            text: "cluster|lab/s@".into(),
            prefix: true,
        };
        assert!(clear(dir.path(), "s", &prefix, false).is_err(), "live");
        orphan(a.unwrap());
        orphan(b.unwrap());
        assert_eq!(clear(dir.path(), "s", &prefix, false).unwrap().len(), 2);
        assert!(
            other.unwrap().path().exists(),
            "another cluster's lock stays"
        );
    }

    /// While one thread takes and releases a lock over and over, another never sees the lock
    /// file empty or cut (before: created empty, then written, so a look in between found a
    /// holder-less "stale" lock).
    #[test]
    fn a_lock_file_is_never_seen_empty() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let taker = {
            let (d, stop) = (d.clone(), stop.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    drop(FileLock::acquire(&d, "t", "k", Path::new("/r")).unwrap());
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let (mut looks, mut seen) = (0, 0);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            looks += 1;
            // Absent between two takings; when there, always a whole holder.
            if let Ok(text) = std::fs::read_to_string(path_of(&d, "k")) {
                seen += 1;
                serde_json::from_str::<Holder>(&text)
                    .unwrap_or_else(|e| panic!("a lock file read as {text:?}: {e}"));
            }
        }
        taker.join().unwrap();
        assert!(
            looks > 0 && seen > 0,
            "the reader saw the lock ({seen} of {looks})"
        );
    }

    /// Many resumes of one run race for its stale lock: every round exactly one takes it (before:
    /// each removed the stale file and created its own, and several held it at once).
    #[test]
    fn of_concurrent_resumes_exactly_one_takes_the_stale_lock() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        for round in 0..40 {
            let lock = FileLock::acquire(dir.path(), "t", "k", &run).unwrap();
            orphan(lock);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let racers: Vec<_> = (0..6)
                .map(|_| {
                    let (d, run, barrier) = (dir.path().to_owned(), run.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        FileLock::acquire(&d, "t", "k", &run).ok()
                    })
                })
                .collect();
            let held: Vec<FileLock> = racers
                .into_iter()
                .filter_map(|r| r.join().unwrap())
                .collect();
            assert_eq!(held.len(), 1, "round {round}: {} hold the lock", held.len());
        }
    }
}
