//! What people watch during a run: event lines with a timestamp, and on a terminal one status
//! line (per application lag and the recovery clock) refreshed in place below them.

use std::io::IsTerminal;

pub struct Progress {
    tty: bool,
    /// A status line is on screen and must be cleared before the next event line.
    shown: bool,
    /// Nothing is printed: the live dashboard owns the screen and tells the story.
    quiet: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            shown: false,
            quiet: false,
        }
    }

    /// Print nothing (the live dashboard is on screen).
    pub fn quiet(self, quiet: bool) -> Progress {
        Progress { quiet, ..self }
    }

    fn stamp() -> String {
        let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        t.get(11..19).unwrap_or(&t).to_owned()
    }

    /// Something happened: one timestamped line.
    pub fn event(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        crate::output::err(&format!("{} {text}\n", Self::stamp()));
    }

    /// The current state: in place on a terminal; otherwise not shown (events carry the story,
    /// and samples.csv the numbers).
    pub fn status(&mut self, text: &str) {
        if !self.tty || self.quiet {
            return;
        }
        let width = terminal_width();
        let line: String = format!("{} {text}", Self::stamp())
            .chars()
            .take(width - 1)
            .collect();
        crate::output::err(&format!("\r\x1b[2K{line}"));
        self.shown = true;
    }

    /// Remove the status line.
    pub fn clear(&mut self) {
        if self.shown {
            crate::output::err("\r\x1b[2K");
            self.shown = false;
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w >= 20)
        .unwrap_or(100)
}
