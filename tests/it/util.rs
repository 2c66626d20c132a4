//! Small helpers so each test reads like a scenario.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The repository root; tests run the CLI from here so paths in messages are short and stable.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one CLI invocation did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn of(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Outcome {
        Outcome {
            // A signal death has no code: report it as -1, which no expectation accepts.
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(stdout).into_owned(),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
        }
    }

    /// Fail with everything the command printed when it did not exit with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }
}

/// Run `spotdrill ARGS…` in `dir`.
pub fn spotdrill_in(dir: &Path, args: &[&str]) -> Outcome {
    Cmd::new(args).current_dir(dir).run()
}

/// Run `spotdrill ARGS…` from the repository root.
pub fn spotdrill(args: &[&str]) -> Outcome {
    spotdrill_in(&root(), args)
}

/// Sorted `*.yaml` files of a directory under the repository root, as relative paths.
pub fn yaml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .expect("directory exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    files.sort();
    files
}

/// How long a command may run before it counts as hung (far beyond any test's plan).
pub const HANG: Duration = Duration::from_secs(600);

/// One way to run the `spotdrill` binary (or any program): from the repository root, with
/// `RUST_LOG` unset and stdin closed unless told otherwise.
pub struct Cmd {
    cmd: Command,
}

impl Cmd {
    /// `spotdrill ARGS…`.
    pub fn new<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd::program(env!("CARGO_BIN_EXE_spotdrill"), args)
    }

    /// `PROGRAM ARGS…` (e.g. a shell or tmux), with the same defaults.
    pub fn program<S: AsRef<OsStr>>(program: &str, args: impl IntoIterator<Item = S>) -> Cmd {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(root())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        Cmd { cmd }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Cmd {
        self.cmd.envs(vars);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Cmd {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    /// Locks under `dir` (`SPOTDRILL_LOCK_DIR`), so runs of different tests never meet.
    pub fn locks(self, dir: impl AsRef<Path>) -> Cmd {
        self.env("SPOTDRILL_LOCK_DIR", dir.as_ref())
    }

    /// Run to the end and capture what it printed; a command still running after
    /// [`HANG`] is killed and the test fails with its output so far.
    #[track_caller]
    pub fn run(self) -> Outcome {
        self.spawn().wait(HANG)
    }

    /// Start in the background; stdout and stderr are read as they come (a full pipe never
    /// stalls the child).
    pub fn spawn(mut self) -> Running {
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the command starts");
        let stdout = Capture::of(child.stdout.take());
        let stderr = Capture::of(child.stderr.take());
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

/// Everything a pipe delivered so far, read by a thread of its own.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>, Arc<Mutex<Option<JoinHandle<()>>>>);

impl Capture {
    fn of(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let capture = Capture::default();
        if let Some(mut pipe) = pipe {
            let buf = capture.0.clone();
            let reader = std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            *capture.1.lock().unwrap() = Some(reader);
        }
        capture
    }

    /// The text so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Wait for the pipe to close (the child and its heirs are gone), then the whole text.
    fn finish(&self) -> Vec<u8> {
        if let Some(reader) = self.1.lock().unwrap().take() {
            let _ = reader.join();
        }
        self.0.lock().unwrap().clone()
    }
}

/// A command running in the background. Dropping it kills the child, so a failed test leaves
/// no process behind.
pub struct Running {
    child: Child,
    pub stdout: Capture,
    pub stderr: Capture,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Send `signal` (e.g. SIGINT for Ctrl-C).
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal)
            .expect("the child can be signalled");
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the child can be waited on")
    }

    /// Wait for the end, at most `within` (a hang, not a slow machine): past it, kill the child
    /// and fail with what it printed.
    #[track_caller]
    pub fn wait(&mut self, within: Duration) -> Outcome {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "the command did not end within {within:?} (hung)\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Outcome::of(status, &self.stdout.finish(), &self.stderr.finish())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Poll `ok` until it holds, failing after `within` (bound generously: a hang, not a slow
/// machine).
#[track_caller]
pub fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether process `pid` is alive (a zombie is dead; it only waits for its parent to reap it).
pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// A plan fixture (tests/fixtures/plans/NAME) with each `{key}` replaced by its value; fails on a
/// placeholder left unreplaced, so a fixture and its callers cannot drift apart silently.
#[track_caller]
pub fn plan_fixture(name: &str, vars: &[(&str, &dyn std::fmt::Display)]) -> String {
    let path = root().join("tests/fixtures/plans").join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (key, value) in vars {
        let placeholder = format!("{{{key}}}");
        assert!(text.contains(&placeholder), "{name} has no {placeholder}");
        text = text.replace(&placeholder, &value.to_string());
    }
    if let Some(left) = placeholder_in(&text) {
        panic!("{name}: placeholder {left} is not replaced");
    }
    text
}

/// The first `{word}` (lowercase letters and `_`) of `text`: YAML flow maps always hold a `:`.
fn placeholder_in(text: &str) -> Option<&str> {
    text.match_indices('{').find_map(|(i, _)| {
        let end = i + 1 + text[i + 1..].find('}')?;
        let word = &text[i + 1..end];
        let is_word = !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        is_word.then(|| &text[i..=end])
    })
}
