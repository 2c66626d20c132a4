//! From a plan's `health:` to the endpoints the probes use: URLs, credentials from the
//! environment, a CA file relative to the plan, timeouts and retries.

use std::path::Path;

use super::{AuthSpec, Endpoints, HttpSettings};
use crate::plan::{ClusterKind, Endpoint, Health, HealthAuth, Target};

/// Where a running lab serves an API: (cluster, `storm_ui` | `mesos_master` | `marathon`) → URL.
pub type LabUrl<'a> = dyn Fn(&str, &str) -> Option<String> + 'a;

/// How the plan says to reach a target's health APIs; a relative `ca_file` is taken from the
/// plan file's directory.
pub fn settings_of(health: &Health, plan_dir: &Path) -> HttpSettings {
    let mut s = HttpSettings::default();
    if let Some(t) = health.timeout {
        s.timeout = t;
    }
    if let Some(r) = health.retries {
        s.retries = r;
    }
    s.ca_file = health.ca_file.as_ref().map(|f| plan_dir.join(f));
    s.auth = match &health.auth {
        HealthAuth::None => AuthSpec::None,
        HealthAuth::Basic {
            username,
            password_env,
        } => AuthSpec::Basic {
            username: username.clone(),
            password_env: password_env.clone(),
        },
        HealthAuth::Bearer { token_env } => AuthSpec::Bearer {
            token_env: token_env.clone(),
        },
    };
    s
}

/// A target's health endpoints, when its plan gives them; `lab` endpoints come from `lab`
/// (cluster, api) → URL, the running lab. Errors (a missing secret, an unreadable CA file) name the target.
pub fn endpoints_of(
    name: &str,
    target: &Target,
    lab: Option<&LabUrl<'_>>,
    plan_dir: &Path,
) -> anyhow::Result<Option<Endpoints>> {
    let h = &target.health;
    if !h.configured(target.kind) {
        return Ok(None);
    }
    let settings = settings_of(h, plan_dir);
    let cluster = match &target.nodes {
        crate::plan::NodeSelector::Lab { cluster, .. } => Some(cluster.as_str()),
        _ => None,
    };
    let url = |e: &Endpoint, api: &str| -> anyhow::Result<String> {
        match e {
            Endpoint::Url(u) => Ok(u.clone()),
            Endpoint::Lab => lab
                .zip(cluster)
                .and_then(|(lab, cluster)| lab(cluster, api))
                .ok_or_else(|| anyhow::anyhow!("target {name}: the lab serves no {api}")),
        }
    };
    let made = match (target.kind, &h.storm_ui, &h.mesos_master, &h.marathon) {
        (ClusterKind::Storm, Some(ui), _, _) => Endpoints::storm(&url(ui, "storm_ui")?, &settings),
        (ClusterKind::Mesos, _, Some(master), Some(marathon)) => Endpoints::mesos(
            (&url(master, "mesos_master")?, &settings),
            (&url(marathon, "marathon")?, &settings),
        ),
        _ => return Ok(None),
    };
    made.map(Some)
        .map_err(|e| anyhow::anyhow!("target {name}: health endpoints: {e}"))
}
