//! A real browser for tests: Debian's chromium driven by playwright-core from npm
//! (browser.mjs beside this file; `scripts/install-test-tools` installs both and exports
//! `SPOTDRILL_PLAYWRIGHT`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// How long one command may take (a hang, not a slow machine).
const ANSWER: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Browser {
    /// A headless chromium with one page.
    pub fn start() -> Browser {
        let playwright = std::env::var_os("SPOTDRILL_PLAYWRIGHT").unwrap_or_else(|| {
            panic!("SPOTDRILL_PLAYWRIGHT is not set: source scripts/install-test-tools first")
        });
        let script = crate::util::root().join("tests/it/support/browser.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("SPOTDRILL_PLAYWRIGHT", playwright)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (apt install nodejs npm)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            answers,
        }
    }

    fn ask(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("the browser driver reads commands");
        let line = self
            .answers
            .recv_timeout(ANSWER)
            .unwrap_or_else(|e| panic!("no answer to {cmd} within {ANSWER:?}: {e}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        match v.get("error") {
            Some(e) => panic!("the browser failed at {cmd}: {e}"),
            None => v["ok"].clone(),
        }
    }

    pub fn open(&mut self, url: &str) {
        self.ask(json!({ "open": url }));
    }

    /// The value of a JavaScript expression on the page.
    pub fn eval(&mut self, js: &str) -> Value {
        self.ask(json!({ "eval": js }))
    }

    pub fn screenshot(&mut self, path: &std::path::Path) {
        self.ask(json!({ "screenshot": path }));
    }

    /// Console errors, uncaught exceptions and requests the page made elsewhere, so far.
    pub fn problems(&mut self) -> Vec<String> {
        serde_json::from_value(self.ask(json!({ "problems": true }))).unwrap_or_default()
    }

    /// Poll `js` until it is truthy; fails after `within`.
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, js: &str, within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let v = self.eval(js);
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {within:?} waiting for {what} ({js})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({ "close": true }));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
