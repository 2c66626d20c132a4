//! The Prometheus flags of `run` and `lag` (issue 18): `/metrics` while they run, and a push of
//! a run's final figures to a Pushgateway.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::exit::ExitCode;
use crate::metrics::{self, LagMetrics, PushTarget, RunSource, Server};

/// `run`'s Prometheus flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RunMetricsArgs {
    /// Serve the run's Prometheus metrics on this address at /metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// With --metrics: keep serving this long after the run ends, so a last scrape sees its end.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::plan::parse_duration)]
    pub metrics_linger: Duration,
    /// Push the run's final figures to this Prometheus Pushgateway when it ends (http://host:9091).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// The Pushgateway job the figures are grouped under.
    #[arg(long, value_name = "JOB", default_value = "spotdrill")]
    pub pushgateway_job: String,
    /// The Pushgateway instance (default: the plan's name).
    #[arg(long, value_name = "INSTANCE")]
    pub pushgateway_instance: Option<String>,
}

/// `lag`'s Prometheus flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LagMetricsArgs {
    /// Serve the groups' lag as Prometheus metrics on this address at /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// With --metrics: per-partition series too (one per group × partition: off by default).
    #[arg(long, requires = "metrics")]
    pub metrics_partitions: bool,
}

impl RunMetricsArgs {
    /// Where to push, checked before anything runs.
    pub fn push_target(&self, plan_name: &str) -> anyhow::Result<Option<PushTarget>> {
        let Some(url) = &self.pushgateway else {
            return Ok(None);
        };
        let instance = match &self.pushgateway_instance {
            Some(i) => i.clone(),
            None => plan_name.replace('/', "-"),
        };
        Ok(Some(PushTarget::new(
            url,
            &self.pushgateway_job,
            &instance,
        )?))
    }

    /// The server of `--metrics`, following the run directory.
    pub fn serve(&self, dir: &Path) -> anyhow::Result<Option<Server>> {
        let Some(addr) = self.metrics else {
            return Ok(None);
        };
        let mut source = RunSource::new(dir);
        let server = metrics::serve(
            addr,
            Box::new(move || {
                if let Err(e) = source.poll() {
                    tracing::warn!(dir = %source.dir().display(), error = %e, "metrics: cannot read the run");
                }
                source.registry()
            }),
        )?;
        crate::output::err(&format!("metrics: http://{}/metrics\n", server.addr));
        Ok(Some(server))
    }

    /// After the run: linger for the last scrape, stop serving, push the final figures. A push
    /// that fails turns a passing run's exit code into an environment error (the figures asked
    /// for are not where CI looks).
    pub fn finish(
        &self,
        server: Option<Server>,
        push: Option<&PushTarget>,
        dir: &Path,
        code: ExitCode,
    ) -> ExitCode {
        if server.is_some() && !self.metrics_linger.is_zero() {
            std::thread::sleep(self.metrics_linger);
        }
        drop(server);
        let Some(target) = push else {
            return code;
        };
        let mut source = RunSource::new(dir);
        let pushed = source
            .poll()
            .map_err(anyhow::Error::from)
            .and_then(|()| metrics::push(target, &source.registry()));
        match pushed {
            Ok(()) => {
                crate::output::err(&format!("metrics pushed to {}\n", target.endpoint()));
                code
            }
            Err(e) => {
                crate::output::error_chain(&e);
                if code == ExitCode::Success {
                    ExitCode::Environment
                } else {
                    code
                }
            }
        }
    }
}

impl LagMetricsArgs {
    /// The server of `--metrics`, and the state each sample updates.
    pub fn serve(&self) -> anyhow::Result<Option<(Server, Arc<Mutex<LagMetrics>>)>> {
        let Some(addr) = self.metrics else {
            return Ok(None);
        };
        let state = Arc::new(Mutex::new(LagMetrics::new(self.metrics_partitions)));
        let shared = state.clone();
        let server = metrics::serve(
            addr,
            Box::new(move || shared.lock().unwrap_or_else(|e| e.into_inner()).registry()),
        )?;
        crate::output::err(&format!("metrics: http://{}/metrics\n", server.addr));
        Ok(Some((server, state)))
    }
}
