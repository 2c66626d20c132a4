//! Prometheus metrics with the real things: a lab game day runs with `--metrics` while a real
//! Prometheus scrapes it every second, and pushes its final figures to a real Pushgateway;
//! `lag --metrics` serves per-partition series only when asked; the Grafana dashboard queries
//! only metrics a live `/metrics` serves.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::kafka::{Kafka, free_port};
use crate::support::prometheus::{Prometheus, Pushgateway, get};
use crate::util::{Cmd, plan_fixture, root, spotdrill, wait_for};

/// `cmd` with more arguments.
fn with(mut cmd: Cmd, args: &[&str]) -> Cmd {
    for a in args {
        cmd = cmd.arg(a);
    }
    cmd
}

fn epoch(rfc3339: &str) -> f64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The lag values of samples.csv: (time, application, lag in seconds) of the measured rows.
fn measured(dir: &Path) -> Vec<(f64, String, f64)> {
    std::fs::read_to_string(dir.join("samples.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[4] == "ok").then(|| (epoch(c[0]), c[2].to_owned(), c[5].parse().unwrap()))
        })
        .collect()
}

/// Every metric name the committed dashboard queries.
fn dashboard_metrics() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("contrib/grafana/spotdrill.json")).unwrap();
    let json: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    let mut names: Vec<String> = exprs
        .iter()
        .flat_map(|e| {
            e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("spotdrill_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether an exposition has a sample of metric `name`.
fn has_sample(exposition: &str, name: &str) -> bool {
    exposition.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// The one value of an instant query.
fn one(prom: &Prometheus, promql: &str) -> f64 {
    let v = prom.values(promql);
    assert_eq!(v.len(), 1, "{promql}: {v:?}");
    v[0].1
}

/// A lab game day with `--metrics` scraped by a real Prometheus and `--pushgateway` to a real
/// Pushgateway: PromQL returns the lag it measured, its injections and the tolerance,
/// required tolerance and exit code report.json states; the Pushgateway serves the final
/// figures back under the job and instance given; the dashboard's metrics all exist.
#[test]
fn a_lab_game_day_is_scraped_by_prometheus_and_pushed_to_a_pushgateway() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, plan_fixture("live-storm.yaml", &[])).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let prom = Prometheus::scraping(std::slice::from_ref(&addr));
    let gateway = Pushgateway::start();
    let out = dir.path().join("run");
    let cmd = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--out"]).arg(&out);
    let cmd = with(cmd, &["--metrics", &addr, "--metrics-linger", "4s"]);
    let cmd = with(
        cmd,
        &["--pushgateway", &gateway.url, "--pushgateway-job", "ci"],
    );
    let cmd = with(cmd, &["--pushgateway-instance", "storm-lab"]);
    let mut run = cmd.locks(dir.path().join("locks")).spawn();
    // A live /metrics mid-run (lag measured after an injection), for the dashboard's metrics;
    // then the run's end (it lingers after it).
    let url = format!("http://{addr}/metrics");
    let (mut mid, mut last) = (String::new(), String::new());
    wait_for(
        "the run's end on /metrics",
        Duration::from_secs(240),
        || {
            last = get(&url).unwrap_or_default();
            if has_sample(&last, "spotdrill_injection_timestamp_seconds")
                && has_sample(&last, "spotdrill_application_lag_seconds")
            {
                mid.clone_from(&last);
            }
            has_sample(&last, "spotdrill_run_exit_code")
        },
    );
    let outcome = run.wait(Duration::from_secs(60));
    assert!(
        !has_sample(&last, "spotdrill_application_lag_seconds"),
        "lag is not measured after the run: {last}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        outcome.code,
        report["exit_code"].as_i64().unwrap() as i32,
        "{}",
        outcome.stderr
    );
    let names = dashboard_metrics();
    assert!(names.len() >= 6, "the dashboard queries {names:?}");
    for name in &names {
        assert!(
            has_sample(&mid, name),
            "{name} (queried by the dashboard) is not served:\n{mid}"
        );
    }
    scraped_figures_match_the_report(&prom, &report, &out);
    pushed_figures_match_the_report(&gateway, &report);
}

fn scraped_figures_match_the_report(prom: &Prometheus, report: &Value, out: &Path) {
    let target = &report["targets"][0];
    let last = |m: &str| format!("last_over_time({m}{{target=\"c\"}}[10m])");
    // The last scrape saw the end (the run lingered for it).
    wait_for(
        "Prometheus to scrape the run's end",
        Duration::from_secs(30),
        || {
            !prom
                .query("last_over_time(spotdrill_run_exit_code[10m])")
                .is_empty()
        },
    );
    assert_eq!(
        one(prom, &last("spotdrill_target_tolerated_terminations")),
        target["tolerated_terminations"].as_f64().unwrap()
    );
    // The bound beside it (issue 20 item 1): 1 for report.json's, 0 for the other.
    let bound = target["tolerance_bound"].as_str().unwrap();
    for b in ["exact", "at_least"] {
        let q = format!(
            "last_over_time(spotdrill_target_tolerance_bound{{target=\"c\",bound=\"{b}\"}}[10m])"
        );
        assert_eq!(one(prom, &q), if b == bound { 1.0 } else { 0.0 }, "{q}");
    }
    assert_eq!(
        one(prom, &last("spotdrill_target_required_tolerance")),
        target["required_tolerance"].as_f64().unwrap()
    );
    assert_eq!(
        one(prom, "last_over_time(spotdrill_run_exit_code[10m])"),
        report["exit_code"].as_f64().unwrap()
    );
    let steps = target["steps"].as_array().unwrap();
    let terminated: usize = steps
        .iter()
        .map(|s| s["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        one(
            prom,
            "last_over_time(spotdrill_target_terminations_total{outcome=\"terminated\"}[10m])"
        ),
        terminated as f64
    );
    // One injection time per step, as report.json has it.
    let mut recoveries = 0;
    for (i, s) in steps.iter().enumerate() {
        let q = format!(
            "last_over_time(spotdrill_injection_timestamp_seconds{{target=\"c\",step=\"{}\"}}[10m])",
            i + 1
        );
        let at = one(prom, &q);
        let want = epoch(s["injected_at"].as_str().unwrap());
        assert!((at - want).abs() < 0.5, "step {}: {at} vs {want}", i + 1);
        // And each recovery at the injection plus the report's recovery time (0.1 s rounding).
        for a in s["applications"].as_array().unwrap() {
            let Some(recovery) = a["recovery_s"].as_f64() else {
                continue;
            };
            let q = format!(
                "last_over_time(spotdrill_recovery_timestamp_seconds{{target=\"c\",step=\"{}\",application=\"{}\"}}[10m])",
                i + 1,
                a["name"].as_str().unwrap()
            );
            let back = one(prom, &q);
            recoveries += 1;
            assert!(
                (back - (want + recovery)).abs() < 0.6,
                "step {} {}: recovered at {back}, the report says {want} + {recovery}",
                i + 1,
                a["name"]
            );
        }
    }
    assert!(recoveries > 0, "no step recovered: {steps:#?}");
    scraped_lag_is_the_measured_lag(prom, report, out);
}

/// Every lag value Prometheus scraped is one spotdrill measured (samples.csv), taken at most a
/// sample interval (and the scrape's own delay) before the scrape; and the spike above the band
/// was seen.
fn scraped_lag_is_the_measured_lag(prom: &Prometheus, report: &Value, out: &Path) {
    let rows = measured(out);
    let series = prom.samples("spotdrill_application_lag_seconds{application=\"app\"}[10m]");
    assert_eq!(series.len(), 1, "{series:?}");
    let points = &series[0].1;
    assert!(points.len() >= 10, "too few scrapes: {points:?}");
    for &(t, v) in points {
        let found = rows.iter().any(|(at, app, lag)| {
            app == "app" && (lag - v).abs() < 1e-9 && *at <= t + 0.05 && *at >= t - 5.0
        });
        let near: Vec<_> = rows.iter().filter(|r| (r.0 - t).abs() < 3.0).collect();
        assert!(
            found,
            "Prometheus has lag {v} at {t}, which samples.csv does not have just before: {near:?}"
        );
    }
    let seen = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let spike = report["targets"][0]["steps"][1]["applications"][0]["spike_lag_s"]
        .as_f64()
        .unwrap();
    let upper = one(
        prom,
        "last_over_time(spotdrill_application_band_upper_seconds{application=\"app\"}[10m])",
    );
    // report.json rounds to 0.1 s.
    assert!(
        seen <= spike + 0.05,
        "Prometheus saw {seen} s, above the report's spike {spike} s"
    );
    assert!(
        spike > upper && seen > upper,
        "the spike ({spike} s) above the band ({upper} s) was not scraped: max {seen} s"
    );
}

fn pushed_figures_match_the_report(gateway: &Pushgateway, report: &Value) {
    let body = get(&format!("{}/metrics", gateway.url)).expect("the Pushgateway answers");
    let value = |name: &str| -> Option<f64> {
        body.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains("job=\"ci\"")
                    && l.contains("instance=\"storm-lab\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let target = &report["targets"][0];
    assert_eq!(
        value("spotdrill_target_tolerated_terminations"),
        target["tolerated_terminations"].as_f64(),
        "{body}"
    );
    assert_eq!(
        value("spotdrill_run_exit_code"),
        report["exit_code"].as_f64(),
        "{body}"
    );
    assert!(
        value("push_time_seconds").is_some_and(|t| t > 0.0),
        "{body}"
    );
}

/// Grouping names the Pushgateway's path cannot carry are refused before anything runs.
#[test]
fn a_pushgateway_job_with_a_slash_is_refused_before_the_run() {
    let out = spotdrill(&[
        "run",
        "experiments/lab-game-day.yaml",
        "--yes",
        "--pushgateway",
        "http://127.0.0.1:9",
        "--pushgateway-job",
        "a/b",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--pushgateway-job \"a/b\""),
        "{}",
        out.stderr
    );
}

/// `lag --metrics`: group lag always, per-partition series only with `--metrics-partitions`.
#[test]
fn lag_serves_partition_series_only_when_asked() {
    let kafka = Kafka::mock();
    kafka.create_topic("t", 3, &[]);
    let t0 = 1_767_225_600_000;
    for p in 0..3 {
        kafka.produce("t", p, &[t0, t0 + 1000, t0 + 4000]);
    }
    kafka.commit("g", "t", &[(0, 1), (1, 2), (2, 3)]);
    for (extra, partitions) in [(None, false), (Some("--metrics-partitions"), true)] {
        let addr = format!("127.0.0.1:{}", free_port());
        let cmd = Cmd::new(["lag", "--brokers", &kafka.bootstrap, "--group", "g"]);
        let mut cmd = with(
            cmd,
            &["--topic", "t", "--interval", "200ms", "--metrics", &addr],
        );
        if let Some(e) = extra {
            cmd = cmd.arg(e);
        }
        let mut lag = cmd.spawn();
        let url = format!("http://{addr}/metrics");
        let mut body = String::new();
        wait_for("lag on /metrics", Duration::from_secs(60), || {
            body = get(&url).unwrap_or_default();
            has_sample(&body, "spotdrill_group_lag_seconds")
        });
        lag.kill();
        assert!(
            body.contains("spotdrill_group_lag_seconds{group=\"g\"} 4.0\n"),
            "{body}"
        );
        assert!(
            body.contains("spotdrill_group_lag_messages{group=\"g\"} 3.0\n"),
            "{body}"
        );
        assert_eq!(
            has_sample(&body, "spotdrill_partition_lag_messages"),
            partitions,
            "{body}"
        );
        if partitions {
            let p0 =
                "spotdrill_partition_lag_seconds{group=\"g\",topic=\"t\",partition=\"0\"} 4.0\n";
            assert!(body.contains(p0), "{body}");
        }
    }
}

/// The rows of samples.csv: (time, application, status, lag in seconds where measured).
fn rows(dir: &Path) -> Vec<(f64, String, String, Option<f64>)> {
    std::fs::read_to_string(dir.join("samples.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                epoch(c[0]),
                c[2].to_owned(),
                c[4].to_owned(),
                c[5].parse().ok(),
            )
        })
        .collect()
}

/// An application's lag from PromQL (`lag: {prometheus, query, unit}`), against a real
/// Prometheus scraping this very run's /metrics: every value it took is one the Kafka-based
/// measurement of the same group had within the exporter's resolution (a scrape interval and a
/// sample interval before), the gaps before the first scrape are gaps (never 0), and the step is
/// judged from it with the same rules.
#[test]
fn lag_from_promql_agrees_with_the_kafka_measurement_of_the_same_group() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let prom = Prometheus::scraping(std::slice::from_ref(&addr));
    let plan = dir.path().join("plan.yaml");
    let text = plan_fixture("promql-storm.yaml", &[("prometheus", &prom.url)]);
    std::fs::write(&plan, text).unwrap();
    let out = dir.path().join("run");
    let cmd = Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--out"]).arg(&out);
    let outcome = with(cmd, &["--metrics", &addr])
        .locks(dir.path().join("locks"))
        .run();
    let report = std::fs::read_to_string(out.join("report.json"))
        .unwrap_or_else(|e| panic!("no report ({e}):\n{}\n{}", outcome.stdout, outcome.stderr));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        outcome.code,
        report["exit_code"].as_i64().unwrap() as i32,
        "{}",
        outcome.stderr
    );
    let rows = rows(&out);
    let kafka: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.1 == "app" && r.2 == "ok")
        .map(|r| (r.0, r.3.unwrap()))
        .collect();
    let promql: Vec<&(f64, String, String, Option<f64>)> =
        rows.iter().filter(|r| r.1 == "app-prom").collect();
    let measured: Vec<(f64, f64)> = promql.iter().filter_map(|r| Some((r.0, r.3?))).collect();
    assert!(measured.len() >= 20, "too few PromQL samples: {promql:?}");
    for &(t, v) in &measured {
        let agrees = kafka
            .iter()
            .any(|&(at, lag)| (lag - v).abs() < 1e-6 && at <= t && at >= t - 6.0);
        assert!(
            agrees,
            "PromQL lag {v} s at {t} is no Kafka measurement of the 6 s before"
        );
    }
    // Before Prometheus had the lag (the group had not committed yet): gaps, not zeros.
    let gaps: Vec<_> = promql.iter().filter(|r| r.2 == "missing").collect();
    assert!(
        !gaps.is_empty(),
        "no gap before the first scrape: {promql:?}"
    );
    assert!(gaps.iter().all(|r| r.3.is_none()), "{gaps:?}");
    assert!(
        promql[0].2 == "missing",
        "the first sample predates any scrape: {promql:?}"
    );
    // Judged like any application: the step that hurt shows in its spike.
    let step = &report["targets"][0]["steps"][1]["applications"];
    let by_name = |n: &str| {
        step.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .cloned()
            .unwrap()
    };
    let (k, p) = (by_name("app"), by_name("app-prom"));
    let (ks, ps) = (
        k["spike_lag_s"].as_f64().unwrap(),
        p["spike_lag_s"].as_f64().unwrap(),
    );
    assert!(
        ps <= ks + 0.05 && ps >= ks * 0.5,
        "spikes: Kafka {ks} s, PromQL {ps} s"
    );
    assert!(p["verdict"].is_string(), "{p}");
}

/// `lag:` is validated with its place: a URL that is not http(s), an empty query, and an
/// application without a group and without `lag`.
#[test]
fn a_bad_promql_lag_source_is_reported_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let text = plan_fixture("promql-storm.yaml", &[("prometheus", &"prometheus:9090")])
        .replace(
            "query: 'spotdrill_application_lag_seconds{application=\"app\"} * 1000'",
            "query: ''",
        )
        .replace("  app:\n    group: app\n", "  app:\n");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, text).unwrap();
    let out = spotdrill(&["validate", plan.to_str().unwrap()]);
    out.expect_code(2);
    let err = &out.stderr;
    for want in [
        "applications.app-prom.lag.prometheus",
        "is not an http(s) URL",
        "applications.app-prom.lag.query",
        "the PromQL query must not be empty",
        "an application needs its consumer `group`",
    ] {
        assert!(err.contains(want), "{want:?} missing:\n{err}");
    }
    assert!(
        err.contains("plan.yaml:25:"),
        "no file:line:column for the URL:\n{err}"
    );
}

/// The PromQL lag source against a real Prometheus: a value (in the unit given), and each kind
/// of gap with its reason: an empty result, a stale series, a query Prometheus refuses, a
/// Prometheus that cannot be reached.
#[test]
fn promql_lag_gaps_are_gaps_with_their_reason() {
    use spotdrill::observe::Status;
    use spotdrill::observe::health::HttpSettings;
    use spotdrill::observe::promql::PromQuery;
    use spotdrill::plan::spec::LagUnit;
    use spotdrill::plan::{HealthAuth, PromLag};
    // Scraping a port nobody listens on: `up` is 0, one sample a second.
    let prom = Prometheus::scraping(&[format!("127.0.0.1:{}", free_port())]);
    wait_for("Prometheus's first scrape", Duration::from_secs(60), || {
        !prom.query("up").is_empty()
    });
    let sample = |url: &str, query: &str, max_age: Duration| {
        let lag = PromLag {
            url: url.to_owned(),
            query: query.to_owned(),
            unit: LagUnit::Milliseconds,
            auth: HealthAuth::None,
            max_age,
        };
        let settings = HttpSettings {
            retries: 0,
            ..HttpSettings::default()
        };
        let q = PromQuery::new("prometheus:a".into(), &lag, &settings).unwrap();
        q.sample(std::time::Instant::now())
    };
    let long = Duration::from_secs(60);
    let ok = sample(&prom.url, "(up + 7) * 1000", long);
    assert_eq!(
        (ok.status.clone(), ok.lag_seconds),
        (Status::Ok, Some(7.0)),
        "{ok:?}"
    );
    assert_eq!(ok.group, "prometheus:a");
    let gaps = [
        (
            sample(&prom.url, "no_such_metric", long),
            "returned no series",
        ),
        (
            sample(&prom.url, "up", Duration::from_millis(1)),
            "is stale",
        ),
        (sample(&prom.url, "up{", long), "HTTP 400"),
        (
            sample(&format!("http://127.0.0.1:{}", free_port()), "up", long),
            "cannot connect",
        ),
    ];
    for (g, why) in gaps {
        assert_eq!(g.status, Status::Missing, "{g:?}");
        assert_eq!(g.lag_seconds, None, "a gap is never a value: {g:?}");
        assert!(
            g.problems.iter().any(|p| p.contains(why)),
            "{why:?}: {:?}",
            g.problems
        );
    }
}

/// `plan` asks each PromQL lag source once before anything runs, against a real Prometheus:
/// the lag its query gives now; a query without series or a Prometheus that cannot be reached
/// is a warning that the run would read gaps; a token missing from the environment fails the
/// preflight (exit 4) as it would fail the run.
#[test]
fn plan_asks_each_promql_lag_source_before_the_run() {
    let prom = Prometheus::scraping(&[format!("127.0.0.1:{}", free_port())]);
    wait_for("Prometheus's first scrape", Duration::from_secs(60), || {
        !prom.query("up").is_empty()
    });
    let dir = tempfile::tempdir().unwrap();
    let fixture_query = "query: 'spotdrill_application_lag_seconds{application=\"app\"} * 1000'";
    let plan = |name: &str, url: &str, query: &str, auth: &str| {
        let text = plan_fixture("promql-storm.yaml", &[("prometheus", &url)])
            .replace(fixture_query, &format!("query: '{query}'{auth}"));
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let answers = plan("answers.yaml", &prom.url, "(up + 7) * 1000", "");
    let out = spotdrill(&["plan", &answers]);
    out.expect_code(0);
    let want = format!("app-prom: {} answers: 7.0 s of lag now", prom.url);
    assert!(
        out.stdout.contains(&want),
        "{want:?} missing:\n{}",
        out.stdout
    );
    let json: Value = serde_json::from_str(&spotdrill(&["plan", &answers, "--json"]).stdout)
        .expect("plan --json is JSON");
    assert_eq!(json["lag_sources"][0]["lag_seconds"], 7.0, "{json:#}");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    for (name, url, query, why) in [
        (
            "empty.yaml",
            prom.url.as_str(),
            "no_such_metric",
            "returned no series",
        ),
        ("gone.yaml", nobody.as_str(), "up", "cannot connect"),
    ] {
        let out = spotdrill(&["plan", &plan(name, url, query, "")]);
        out.expect_code(0);
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("warning: app-prom:"));
        let line = line.unwrap_or_else(|| panic!("no warning for {name}:\n{}", out.stdout));
        assert!(
            line.contains(why) && line.contains("a run reads gaps"),
            "{line}"
        );
    }
    let token = "\n      auth: {token_env: SPOTDRILL_TEST_PROMQL_TOKEN_NEVER_SET}";
    let secret = plan("secret.yaml", &prom.url, "up", token);
    let out = spotdrill(&["plan", &secret]);
    out.expect_code(4);
    for want in ["app-prom", "SPOTDRILL_TEST_PROMQL_TOKEN_NEVER_SET"] {
        assert!(
            out.stderr.contains(want),
            "{want:?} missing:\n{}",
            out.stderr
        );
    }
}
