//! `--web ADDR` of `run` and `watch`: the live page for a room (src/live/web).

use std::path::Path;
use std::time::Duration;

use crate::exit::Failure;
use crate::live::web::{Access, TOKEN_ENV, WebServer};

/// How long the last state may take to reach slow viewers when the run ends.
const LAST_WORDS: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebArgs {
    /// Serve a live page of the run for a browser at ADDR (e.g. 127.0.0.1:8080; port 0 picks
    /// one). Read-only. Off loopback, viewers must give the token in $SPOTDRILL_WEB_TOKEN
    /// (?token= or Authorization: Bearer), and without it the page refuses to start.
    #[arg(long, value_name = "ADDR")]
    pub web: Option<String>,
}

impl WebArgs {
    /// Check the address and the token rule, and start serving `dir`; `None` without `--web`.
    /// A refused address is bad input (exit 2); one that cannot be bound, an environment error.
    pub fn start(&self, dir: &Path) -> anyhow::Result<Option<Web>> {
        let Some(addr) = &self.web else {
            return Ok(None);
        };
        let token = std::env::var(TOKEN_ENV).ok();
        let access = Access::new(addr, token).map_err(|e| Failure::bad_input(e.to_string()))?;
        let needs_token = access.needs_token();
        let server = WebServer::start(dir, access).map_err(|e| {
            Failure::environment(format!("--web {addr}: cannot listen there")).because(e)
        })?;
        // Never the token itself: it is a secret.
        crate::output::err(&format!(
            "live page: http://{}/{}\n",
            server.addr,
            if needs_token {
                format!(" (viewers add ?token= with the value of ${TOKEN_ENV})")
            } else {
                String::new()
            }
        ));
        Ok(Some(Web(server)))
    }
}

/// The page while it serves.
pub struct Web(WebServer);

impl Web {
    /// Give viewers the end of the run and stop.
    pub fn finish(self) {
        self.0.finish(LAST_WORDS);
    }
}
