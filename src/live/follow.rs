//! Following a run directory as it grows: each file is read from where the last read stopped (by
//! byte offset), and a last line without its newline waits until it is complete.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::state::LiveState;

/// The files of a run directory the dashboard reads.
pub const JOURNAL: &str = crate::journal::FILE;
pub const SAMPLES: &str = "samples.csv";
pub const TRUTH: &str = "lab-truth.jsonl";
pub const CAPACITY: &str = "capacity.jsonl";

/// One file read incrementally, line by line.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
}

impl Tail {
    pub fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the last call. A missing file has none yet.
    pub fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Replaced by a shorter file: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            lines.push(String::from_utf8_lossy(line).into_owned());
            start += i + 1;
        }
        self.partial.drain(..start);
        Ok(lines)
    }
}

/// A run directory followed into a [`LiveState`].
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    journal: Tail,
    samples: Tail,
    truth: Tail,
    capacity: Tail,
    pub state: LiveState,
}

impl Follower {
    pub fn new(dir: &Path) -> Follower {
        Follower {
            dir: dir.to_owned(),
            journal: Tail::new(dir.join(JOURNAL)),
            samples: Tail::new(dir.join(SAMPLES)),
            truth: Tail::new(dir.join(TRUTH)),
            capacity: Tail::new(dir.join(CAPACITY)),
            state: LiveState::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Read what was written since the last call. Returns whether anything was new. The journal
    /// is read first so that injections are known before the lab's truth about them.
    pub fn poll(&mut self) -> std::io::Result<bool> {
        let mut new = false;
        for line in self.journal.poll()? {
            self.state.apply_journal_line(&line);
            new = true;
        }
        for line in self.samples.poll()? {
            self.state.apply_sample_line(&line);
            new = true;
        }
        for line in self.truth.poll()? {
            self.state.apply_truth_line(&line);
            new = true;
        }
        for line in self.capacity.poll()? {
            self.state.apply_capacity_line(&line);
            new = true;
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_torn_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut tail = Tail::new(path.clone());
        assert!(tail.poll().unwrap().is_empty(), "no file yet");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"one\ntw").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["one"]);
        assert!(tail.poll().unwrap().is_empty());
        f.write_all(b"o\r\nthree\n").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["two", "three"]);
        assert!(tail.poll().unwrap().is_empty());
    }
}
