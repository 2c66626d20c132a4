//! The preflight's reach: Kafka (every application's group and topics), each health endpoint,
//! and what the health endpoints say runs where — each bounded by its own timeout, all at once.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use indexmap::IndexMap;

use super::{CAPACITY_TIMEOUT, HEALTH_TIMEOUT, HealthOut, LagSourceOut};
use crate::kafka::KafkaSettings;
use crate::observe::health::{ApiClient, Capacity, HttpSettings};
use crate::observe::{GroupSpec, LagProbe};
use crate::plan::{Brokers, Endpoint, Plan, Target};

/// What runs where: the targets whose health endpoints are URLs are probed like `run` probes
/// them (a lab's endpoints only exist once `run` starts it).
pub fn capacities(plan: &Plan, plan_dir: &Path) -> IndexMap<String, Result<Capacity, String>> {
    std::thread::scope(|s| {
        let probes: Vec<_> = plan
            .targets
            .iter()
            .filter(|(_, t)| {
                t.health.configured(t.kind)
                    && !health_endpoints(t).any(|(_, e)| *e == Endpoint::Lab)
            })
            .map(|(name, t)| {
                let probe =
                    move || match crate::observe::health::endpoints_of(name, t, None, plan_dir) {
                        Ok(Some(e)) => crate::observe::health::probe(&e, CAPACITY_TIMEOUT)
                            .map_err(|e| e.to_string()),
                        Ok(None) => Err("no health endpoints".into()),
                        Err(e) => Err(format!("{e:#}")),
                    };
                (name.clone(), s.spawn(probe))
            })
            .collect();
        probes
            .into_iter()
            .map(|(n, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err("the capacity probe failed".into()));
                (n, r)
            })
            .collect()
    })
}

/// Kafka and every health endpoint at once: each is bounded by its own timeout. The health
/// checks come with the index of their target.
pub fn reach(plan: &Plan, plan_dir: &Path) -> (Result<String, String>, Vec<(usize, HealthOut)>) {
    let endpoints: Vec<(usize, &'static str, &Endpoint, HttpSettings)> = plan
        .targets
        .values()
        .enumerate()
        .flat_map(|(i, t)| {
            let settings = crate::observe::health::settings_of(&t.health, plan_dir);
            health_endpoints(t).map(move |(field, e)| (i, field, e, settings.clone()))
        })
        .collect();
    std::thread::scope(|s| {
        let kafka = s.spawn(|| check_kafka(plan));
        let probes: Vec<_> = endpoints
            .iter()
            .map(|(i, field, endpoint, settings)| {
                (*i, s.spawn(move || check_health(field, endpoint, settings)))
            })
            .collect();
        let health: Vec<(usize, HealthOut)> = probes
            .into_iter()
            .filter_map(|(i, h)| h.join().ok().map(|h| (i, h)))
            .collect();
        let kafka = kafka
            .join()
            .unwrap_or_else(|_| Err("the Kafka check failed".into()));
        (kafka, health)
    })
}

/// `Ok(what to show)` when Kafka is ready for the run, `Err(why)` when it cannot be reached or
/// lacks a topic the applications read.
fn check_kafka(plan: &Plan) -> Result<String, String> {
    let list = match &plan.kafka.brokers {
        Brokers::Lab => return Ok("lab (started by run)".into()),
        Brokers::External(list) => list,
    };
    let brokers = list
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    tracing::debug!(brokers = %brokers, "checking Kafka");
    let mut settings = KafkaSettings::new(brokers.clone());
    settings.security = plan.kafka.security.clone();
    let specs: Vec<GroupSpec> = plan.consumer_groups().iter().map(GroupSpec::from).collect();
    tracing::debug!(brokers = %brokers, groups = specs.len(), "checking Kafka");
    LagProbe::connect(settings, &specs).map_err(|e| e.to_string())?;
    let topics: BTreeSet<&str> = specs
        .iter()
        .flat_map(|s| s.topics.iter().map(String::as_str))
        .collect();
    Ok(format!(
        "{brokers} reachable (topics found: {})",
        topics.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// A target's health endpoints: (field, endpoint).
pub fn health_endpoints(target: &Target) -> impl Iterator<Item = (&'static str, &Endpoint)> {
    let h = &target.health;
    [
        ("storm_ui", h.storm_ui.as_ref()),
        ("mesos_master", h.mesos_master.as_ref()),
        ("marathon", h.marathon.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, e)| e.map(|e| (field, e)))
}

/// The path each kind of endpoint is asked for: one the health probes read anyway.
fn health_path(field: &str) -> &'static str {
    match field {
        "storm_ui" => "/api/v1/cluster/summary",
        "mesos_master" => "/master/slaves",
        _ => "/v2/apps",
    }
}

fn check_health(field: &'static str, endpoint: &Endpoint, settings: &HttpSettings) -> HealthOut {
    let url = match endpoint {
        Endpoint::Lab => {
            return HealthOut {
                endpoint: field,
                url: "lab".into(),
                status: "lab",
                detail: Some("started by run".into()),
            };
        }
        Endpoint::Url(url) => url.clone(),
    };
    let path = health_path(field);
    // Credentials written into the URL go to the client only, never to what is shown.
    let (full, url) = (
        url.clone(),
        crate::observe::health::without_credentials(&url),
    );
    let _span = tracing::debug_span!("health", endpoint = field, url = %url).entered();
    // The client the run's probes use: same TLS trust, credentials, timeouts and retries.
    let answer = ApiClient::new(&full, settings)
        .and_then(|c| c.get_json::<serde_json::Value>(path, Instant::now() + HEALTH_TIMEOUT));
    let (status, detail) = match answer {
        Ok(_) => ("reachable", format!("GET {path}: JSON")),
        Err(e) => ("unreachable", e.to_string()),
    };
    HealthOut {
        endpoint: field,
        url,
        status,
        detail: Some(detail),
    }
}

/// Each application that takes its lag from Prometheus: its query asked once, as a run's first
/// sample would ask it (all at once, each bounded by the health timeout). A secret missing from
/// the environment is `setup_error`, which `run` would refuse too.
pub fn lag_sources(plan: &Plan, plan_dir: &Path) -> Vec<LagSourceOut> {
    std::thread::scope(|s| {
        let asks: Vec<_> = plan
            .applications
            .iter()
            .filter_map(|(name, a)| a.lag.as_ref().map(|lag| (name, a, lag)))
            .map(|(name, a, lag)| s.spawn(move || ask_prometheus(name, a, lag, plan_dir)))
            .collect();
        asks.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

fn ask_prometheus(
    name: &str,
    app: &crate::plan::Application,
    lag: &crate::plan::PromLag,
    plan_dir: &Path,
) -> LagSourceOut {
    let health = crate::plan::Health {
        auth: lag.auth.clone(),
        timeout: Some(HEALTH_TIMEOUT),
        ..Default::default()
    };
    let mut settings = crate::observe::health::settings_of(&health, plan_dir);
    settings.retries = 0;
    let mut out = LagSourceOut {
        application: name.to_owned(),
        prometheus: lag.url.clone(),
        query: lag.query.clone(),
        lag_seconds: None,
        error: None,
        setup_error: None,
    };
    match crate::observe::promql::PromQuery::new(app.lag_key(name), lag, &settings) {
        Ok(q) => match q.check() {
            Ok(v) => out.lag_seconds = Some(v),
            Err(e) => out.error = Some(e),
        },
        Err(e) => out.setup_error = Some(e.to_string()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_uses_the_run_client_with_its_credentials() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let serve = std::thread::spawn(move || {
            let req = server.recv().unwrap();
            let seen = (
                req.url().to_owned(),
                req.headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string()),
            );
            req.respond(tiny_http::Response::from_string("{\"apps\": []}"))
                .unwrap();
            seen
        });
        // Credentials in the URL become basic auth, and never appear in what is printed.
        let url = Endpoint::Url(format!("http://ops:s3cret@127.0.0.1:{port}/prefix"));
        let out = check_health("marathon", &url, &HttpSettings::default());
        assert_eq!(out.status, "reachable", "{out:?}");
        assert_eq!(
            serve.join().unwrap(),
            (
                "/prefix/v2/apps".to_owned(),
                Some("Basic b3BzOnMzY3JldA==".to_owned())
            )
        );
        assert!(!format!("{out:?}").contains("s3cret"), "{out:?}");
    }

    #[test]
    fn health_check_says_why_it_failed() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Endpoint::Url(format!("http://127.0.0.1:{port}"));
        let out = check_health("storm_ui", &url, &HttpSettings::default());
        assert_eq!(out.status, "unreachable");
        let detail = out.detail.unwrap();
        assert!(detail.contains("cannot connect"), "{detail}");
        assert!(detail.contains(&format!("127.0.0.1:{port}")), "{detail}");
    }
}
