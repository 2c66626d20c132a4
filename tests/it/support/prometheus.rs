//! A real Prometheus and a real Pushgateway (Debian's packages, installed by
//! scripts/install-test-tools) as child processes on free loopback ports, each with its own
//! temporary storage; readiness is polled, and PromQL goes through Prometheus's HTTP API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::kafka::free_port;
use crate::util::wait_for;

/// A child process killed and reaped on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(program: &str, args: &[String], log: &Path) -> Process {
    let log = std::fs::File::create(log).expect("a log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log again"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} does not start ({e}): run scripts/install-test-tools")
        });
    Process(child)
}

/// GET a URL; the body of a 2xx answer.
pub fn get(url: &str) -> Option<String> {
    let mut answer = ureq::get(url).call().ok()?;
    answer.body_mut().read_to_string().ok()
}

/// Prometheus scraping `targets` (host:port) every second.
pub struct Prometheus {
    pub url: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn scraping(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: spotdrill\n    scrape_interval: 1s\n    \
             scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let arg = |k: &str, v: &Path| format!("--{k}={}", v.display());
        let args = vec![
            arg("config.file", &dir.path().join("prometheus.yml")),
            arg("storage.tsdb.path", &dir.path().join("data")),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        let process = start("prometheus", &args, &dir.path().join("prometheus.log"));
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            get(&ready).is_some()
        });
        Prometheus {
            url,
            _process: process,
            _dir: dir,
        }
    }

    /// An instant PromQL query: its result vector, `[{metric, value: [t, "v"]}]`.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/query", self.url);
        let mut answer = ureq::get(&url)
            .query("query", promql)
            .call()
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
        let text = answer.body_mut().read_to_string().expect("a body");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The value of every series of an instant query, with its labels.
    pub fn values(&self, promql: &str) -> Vec<(Value, f64)> {
        self.query(promql)
            .into_iter()
            .map(|r| {
                let v = r["value"][1].as_str().and_then(|v| v.parse().ok());
                (r["metric"].clone(), v.expect("a number"))
            })
            .collect()
    }

    /// The raw samples of a range selector (`metric[10m]`): per series its labels and `(t, v)`.
    pub fn samples(&self, selector: &str) -> Vec<(Value, Vec<(f64, f64)>)> {
        self.query(selector)
            .into_iter()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse().ok()?)))
                    .collect();
                (r["metric"].clone(), points)
            })
            .collect()
    }
}

/// A Pushgateway.
pub struct Pushgateway {
    pub url: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start() -> Pushgateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
        let process = start(
            "prometheus-pushgateway",
            &args,
            &dir.path().join("pushgateway.log"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait_for(
            "the Pushgateway to be ready",
            Duration::from_secs(60),
            || get(&ready).is_some(),
        );
        Pushgateway {
            url,
            _process: process,
            _dir: dir,
        }
    }
}
