//! Pushing a run's final figures to a Prometheus Pushgateway: `PUT URL/metrics/job/JOB/instance/
//! INSTANCE` with the text format, which replaces that group's metrics as a whole (a rerun under
//! the same names leaves nothing of the one before).

use std::time::Duration;

use prometheus_client::registry::Registry;

use super::encode::{Format, exposition};
use crate::exit::Failure;

/// Where to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// The Pushgateway's base URL (`http://pushgateway:9091`).
    pub url: String,
    pub job: String,
    pub instance: String,
}

impl PushTarget {
    /// Checked before the run starts: an http(s) URL, and grouping names the Pushgateway's path
    /// can carry (not empty, no `/`).
    pub fn new(url: &str, job: &str, instance: &str) -> Result<PushTarget, Failure> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Failure::bad_input(format!("--pushgateway {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::bad_input(format!(
                "--pushgateway {url:?}: not an http(s) URL"
            )));
        }
        for (flag, v) in [
            ("--pushgateway-job", job),
            ("--pushgateway-instance", instance),
        ] {
            if v.is_empty() || v.contains('/') {
                return Err(Failure::bad_input(format!(
                    "{flag} {v:?}: must be non-empty and without '/'"
                )));
            }
        }
        Ok(PushTarget {
            url: url.trim_end_matches('/').to_owned(),
            job: job.to_owned(),
            instance: instance.to_owned(),
        })
    }

    /// The grouping key's URL.
    pub fn endpoint(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "{}/metrics/job/{}/instance/{}",
            self.url,
            enc(&self.job),
            enc(&self.instance)
        )
    }
}

/// Push `registry` to the gateway; an error says what it answered.
pub fn push(target: &PushTarget, registry: &Registry) -> anyhow::Result<()> {
    let body = exposition(registry, Format::Text);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let endpoint = target.endpoint();
    let mut answer = agent
        .put(&endpoint)
        .header("Content-Type", Format::Text.content_type())
        .send(body.as_str())
        .map_err(|e| Failure::environment(format!("push to {endpoint}: {e}")))?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        return Err(Failure::environment(format!(
            "push to {endpoint}: the Pushgateway answered {status}: {}",
            text.trim()
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_names_are_checked_and_escaped() {
        let t = PushTarget::new("http://gw:9091/", "game day", "ci-1").unwrap();
        assert_eq!(
            t.endpoint(),
            "http://gw:9091/metrics/job/game%20day/instance/ci%2D1"
        );
        assert!(PushTarget::new("http://gw:9091", "a/b", "i").is_err());
        assert!(PushTarget::new("http://gw:9091", "a", "").is_err());
        assert!(PushTarget::new("gw:9091", "a", "i").is_err());
    }
}
