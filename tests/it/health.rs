//! Health probes (Storm UI, Mesos master, Marathon) against in-process HTTP servers answering
//! with recorded, documented JSON (tests/fixtures/health/, each naming its source), including
//! error pages, timeouts, half-written JSON, retries and credentials; and against the lab
//! ([`lab`]).

#[path = "health_lab.rs"]
mod lab;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spotdrill::observe::health::{
    self, ApiClient, AuthSpec, Capacity, Endpoints, HealthError, HttpSettings, Marathon,
    MesosMaster, StormUi, UnreachableStrategy,
};

/// A fixture's JSON, without its leading `//` comment lines.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/health/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: String = text
        .lines()
        .skip_while(|l| l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One answer of the fake server.
#[derive(Clone)]
pub(crate) enum Reply {
    Json(Value),
    /// A status with a body (an error page).
    Page(u16, &'static str),
    /// Raw body text with status 200 (half-written JSON).
    Text(String),
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
}

/// What the server saw.
#[derive(Clone, Debug)]
struct Seen {
    url: String,
    authorization: Option<String>,
}

/// An HTTP server on a free loopback port: each path answers with its replies in turn (the last
/// one repeats); other paths get 404. A listener thread of its own and a thread per connection
/// (keep-alive honoured), so no client ever waits on another or on the test's own threads.
pub(crate) struct FakeApi {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the server answers with, shared by its connection threads.
struct Routes {
    replies: HashMap<String, Vec<Reply>>,
    counts: Mutex<HashMap<String, usize>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    required_auth: Option<String>,
}

impl Routes {
    /// Record one request and choose its answer.
    fn answer(&self, url: &str, authorization: Option<String>) -> Reply {
        self.seen.lock().unwrap().push(Seen {
            url: url.to_owned(),
            authorization: authorization.clone(),
        });
        if self.required_auth.is_some() && authorization != self.required_auth {
            return Reply::Page(401, "<html><body>401 Unauthorized</body></html>");
        }
        let path = url.split('?').next().unwrap_or("").to_owned();
        let n = {
            let mut counts = self.counts.lock().unwrap();
            let n = counts.entry(path.clone()).or_default();
            *n += 1;
            *n - 1
        };
        match self.replies.get(&path) {
            Some(replies) => replies[n.min(replies.len() - 1)].clone(),
            None => Reply::Page(404, r#"{"error":"not found"}"#),
        }
    }
}

impl FakeApi {
    pub(crate) fn start(routes: Vec<(&str, Vec<Reply>)>) -> FakeApi {
        FakeApi::start_checking(routes, None)
    }

    /// With `required_auth`, requests without exactly that `Authorization` header get 401.
    fn start_checking(routes: Vec<(&str, Vec<Reply>)>, required_auth: Option<String>) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let routes = Arc::new(Routes {
            replies: routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect(),
            counts: Mutex::default(),
            seen: seen.clone(),
            required_auth,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || accept_until(&listener, &stop, &routes))
        };
        FakeApi {
            url,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.url.split('?').next() == Some(path))
            .count()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accept connections until `stop`, each served on a thread of its own.
fn accept_until(listener: &std::net::TcpListener, stop: &AtomicBool, routes: &Arc<Routes>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let routes = routes.clone();
                std::thread::spawn(move || serve_connection(stream, &routes));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One request head: the path and query, `Authorization`, and whether the client asked to close.
struct Head {
    url: String,
    authorization: Option<String>,
    close: bool,
}

/// Serve the requests of one connection in turn until the client closes it.
fn serve_connection(stream: std::net::TcpStream, routes: &Routes) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = std::io::BufReader::new(stream);
    while let Some(head) = read_head(&mut reader) {
        let reply = routes.answer(&head.url, head.authorization);
        if respond(&mut writer, reply).is_err() || head.close {
            return;
        }
    }
}

/// Read a request head (and skip its body); `None` at the end of the connection.
fn read_head(reader: &mut impl std::io::BufRead) -> Option<Head> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let url = line.split_whitespace().nth(1)?.to_owned();
    let (mut authorization, mut close, mut length) = (None, false, 0_usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|&n| n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.to_owned()),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    std::io::copy(&mut reader.take(length as u64), &mut std::io::sink()).ok()?;
    Some(Head {
        url,
        authorization,
        close,
    })
}

fn respond(out: &mut impl Write, reply: Reply) -> std::io::Result<()> {
    let (status, body, content_type) = match reply {
        Reply::Json(v) => (200, v.to_string(), "application/json"),
        Reply::Page(status, body) => (
            status,
            body.to_owned(),
            if body.starts_with('{') {
                "application/json"
            } else {
                "text/html"
            },
        ),
        Reply::Text(text) => (200, text, "application/json"),
        Reply::Slow(wait, inner) => {
            std::thread::sleep(wait);
            return respond(out, *inner);
        }
    };
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        reason(status),
        body.len()
    )?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn fast() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(3),
        retries: 2,
        backoff: Duration::from_millis(20),
        ..HttpSettings::default()
    }
}

pub(crate) fn storm_routes() -> Vec<(&'static str, Vec<Reply>)> {
    vec![
        (
            "/api/v1/cluster/summary",
            vec![Reply::Json(fixture("storm-cluster-summary.json"))],
        ),
        (
            "/api/v1/supervisor/summary",
            vec![Reply::Json(fixture("storm-supervisor-summary.json"))],
        ),
        (
            "/api/v1/topology/summary",
            vec![Reply::Json(fixture("storm-topology-summary.json"))],
        ),
        (
            "/api/v1/topology/coverage-topology-1-1700000000",
            vec![Reply::Json(fixture("storm-topology-coverage.json"))],
        ),
        (
            "/api/v1/topology/presence-topology-2-1700000100",
            vec![Reply::Json(fixture("storm-topology-presence.json"))],
        ),
    ]
}

fn mesos_routes() -> Vec<(&'static str, Vec<Reply>)> {
    vec![
        (
            "/master/slaves",
            vec![Reply::Json(fixture("mesos-master-slaves.json"))],
        ),
        (
            "/master/state",
            vec![Reply::Json(fixture("mesos-master-state.json"))],
        ),
        (
            "/v2/apps",
            vec![Reply::Json(fixture("marathon-apps-counts.json"))],
        ),
        (
            "/v2/tasks",
            vec![Reply::Json(fixture("marathon-tasks.json"))],
        ),
    ]
}

/// Replace one route's replies.
fn with(
    mut routes: Vec<(&'static str, Vec<Reply>)>,
    path: &'static str,
    replies: Vec<Reply>,
) -> Vec<(&'static str, Vec<Reply>)> {
    routes.retain(|(p, _)| *p != path);
    routes.push((path, replies));
    routes
}

fn storm(api: &FakeApi) -> Endpoints {
    Endpoints::storm(&api.url, &fast()).unwrap()
}

fn mesos(api: &FakeApi) -> Endpoints {
    Endpoints::mesos((&api.url, &fast()), (&api.url, &fast())).unwrap()
}

fn storm_capacity(routes: Vec<(&'static str, Vec<Reply>)>) -> health::StormCapacity {
    let api = FakeApi::start(routes);
    match health::probe(&storm(&api), Duration::from_secs(10)).unwrap() {
        Capacity::Storm(c) => c,
        other => panic!("{other:?}"),
    }
}

fn mesos_capacity(routes: Vec<(&'static str, Vec<Reply>)>) -> health::MesosCapacity {
    let api = FakeApi::start(routes);
    match health::probe(&mesos(&api), Duration::from_secs(10)).unwrap() {
        Capacity::Mesos(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn health_storm_fixtures_parse_into_a_whole_capacity() {
    let api = FakeApi::start(storm_routes());
    let capacity = health::probe(&storm(&api), Duration::from_secs(10)).unwrap();
    assert!(capacity.is_whole());
    assert_eq!(capacity.nodes_alive(), 3);
    let Capacity::Storm(c) = &capacity else {
        panic!("{capacity:?}")
    };
    assert_eq!(
        (
            c.supervisors_alive,
            c.slots_total,
            c.slots_used,
            c.slots_free
        ),
        (3, 12, 5, 7)
    );
    let coverage = c.topology("coverage-topology").unwrap();
    assert_eq!(coverage.id, "coverage-topology-1-1700000000");
    assert_eq!(coverage.status, "ACTIVE");
    assert_eq!(
        (
            coverage.workers_assigned,
            coverage.workers_configured,
            coverage.workers_on_dead_supervisors
        ),
        (3, Some(3), 0)
    );
    // Node ↔ host: by name or id, and by private IP or DNS name.
    assert_eq!(
        capacity.hosts_running("presence-topology"),
        ["ip-10-0-1-11.ec2.internal", "ip-10-0-1-12.ec2.internal"]
    );
    assert_eq!(
        capacity
            .hosts_running("coverage-topology-1-1700000000")
            .len(),
        3
    );
    assert_eq!(
        capacity.applications_on("10.0.1.12"),
        ["coverage-topology", "presence-topology"]
    );
    assert_eq!(
        capacity.applications_on("ip-10-0-1-13"),
        ["coverage-topology"]
    );
    assert_eq!(capacity.application_whole("presence-topology"), Some(true));
    assert_eq!(capacity.application_whole("nope"), None);
    // The topology ids were asked for one by one, and the documented paths only.
    assert_eq!(
        api.hits("/api/v1/topology/coverage-topology-1-1700000000"),
        1
    );
    assert!(api.seen().iter().all(|s| !s.url.contains("/lag")));
}

#[test]
fn health_storm_dead_supervisor_with_workers_is_not_whole() {
    // Supervisor ip-10-0-1-13 stopped heartbeating; Nimbus has not reassigned its worker yet.
    let mut supervisors = fixture("storm-supervisor-summary.json");
    supervisors["supervisors"].as_array_mut().unwrap().pop();
    let mut summary = fixture("storm-cluster-summary.json");
    summary["supervisors"] = json!(2);
    summary["slotsTotal"] = json!(8);
    summary["slotsUsed"] = json!(4);
    summary["slotsFree"] = json!(4);
    let routes = with(
        with(
            storm_routes(),
            "/api/v1/supervisor/summary",
            vec![Reply::Json(supervisors)],
        ),
        "/api/v1/cluster/summary",
        vec![Reply::Json(summary)],
    );
    let c = storm_capacity(routes);
    assert!(!c.is_whole());
    assert_eq!(
        (c.supervisors_alive, c.slots_total, c.slots_free),
        (2, 8, 4)
    );
    let coverage = c.topology("coverage-topology").unwrap();
    assert_eq!(coverage.workers_on_dead_supervisors, 1);
    assert!(!coverage.is_whole());
    // The other topology had nothing there.
    assert!(c.topology("presence-topology").unwrap().is_whole());
}

#[test]
fn health_storm_fewer_workers_than_configured_is_not_whole() {
    // Nimbus reassigned, but found slots for only two of the three workers.
    let mut detail = fixture("storm-topology-coverage.json");
    detail["workers"].as_array_mut().unwrap().pop();
    detail["workersTotal"] = json!(2);
    let c = storm_capacity(with(
        storm_routes(),
        "/api/v1/topology/coverage-topology-1-1700000000",
        vec![Reply::Json(detail)],
    ));
    let coverage = c.topology("coverage-topology").unwrap();
    assert_eq!(
        (coverage.workers_assigned, coverage.workers_configured),
        (2, Some(3))
    );
    assert!(!coverage.is_whole());
    assert!(!c.is_whole());
}

#[test]
fn health_storm_older_versions_without_numbers_still_parse() {
    // No slot numbers in the summary, no workers[] and no configuration in the detail.
    let mut summary = fixture("storm-cluster-summary.json");
    for key in ["slotsTotal", "slotsUsed", "slotsFree"] {
        summary.as_object_mut().unwrap().remove(key);
    }
    let mut detail = fixture("storm-topology-presence.json");
    for key in ["workers", "configuration"] {
        detail.as_object_mut().unwrap().remove(key);
    }
    let routes = with(
        with(
            storm_routes(),
            "/api/v1/cluster/summary",
            vec![Reply::Json(summary)],
        ),
        "/api/v1/topology/presence-topology-2-1700000100",
        vec![Reply::Json(detail)],
    );
    let c = storm_capacity(routes);
    // Slots summed from the supervisors.
    assert_eq!((c.slots_total, c.slots_used, c.slots_free), (12, 5, 7));
    let presence = c.topology("presence-topology").unwrap();
    assert_eq!(
        (presence.workers_assigned, presence.workers_configured),
        (2, None)
    );
    assert!(presence.hosts.is_empty());
}

#[test]
fn health_mesos_fixtures_parse_into_a_whole_capacity() {
    let api = FakeApi::start(mesos_routes());
    let capacity = health::probe(&mesos(&api), Duration::from_secs(10)).unwrap();
    assert!(capacity.is_whole(), "{capacity:#?}");
    let Capacity::Mesos(c) = &capacity else {
        panic!("{capacity:?}")
    };
    assert_eq!(
        (c.agents_active, c.agents_inactive, c.agents_unreachable),
        (3, 0, 0)
    );
    assert_eq!(
        (c.cpus_total, c.cpus_used, c.mem_total, c.mem_used),
        (12.0, 5.0, 46080.0, 10240.0)
    );
    let agg = c.app("live-aggregator").unwrap();
    assert_eq!(agg.id, "/live-aggregator");
    assert_eq!(
        (
            agg.instances,
            agg.tasks_running,
            agg.tasks_healthy,
            agg.has_health_checks
        ),
        (3, 3, 3, true)
    );
    assert_eq!(
        agg.unreachable_strategy,
        Some(UnreachableStrategy::Enabled {
            inactive_after_seconds: Some(300),
            expunge_after_seconds: Some(600)
        })
    );
    let enricher = c.app("/ingest/enricher").unwrap();
    assert!(!enricher.has_health_checks);
    assert_eq!(
        enricher.unreachable_strategy,
        Some(UnreachableStrategy::Disabled("disabled".into()))
    );
    // No health checks: tasksHealthy 0 does not matter.
    assert!(enricher.is_whole());
    assert_eq!(
        capacity.hosts_running("ingest/enricher"),
        ["ip-10-0-2-21.ec2.internal", "ip-10-0-2-22.ec2.internal"]
    );
    assert_eq!(
        capacity.applications_on("10.0.2.21"),
        ["/live-aggregator", "/ingest/enricher"]
    );
    assert_eq!(capacity.applications_on("10.0.2.23"), ["/live-aggregator"]);
    // Marathon was asked for the counts.
    assert!(
        api.seen()
            .iter()
            .any(|s| s.url == "/v2/apps?embed=apps.counts"),
        "{:?}",
        api.seen()
    );
}

#[test]
fn health_mesos_unreachable_agent_leaves_tasks_on_a_dead_host() {
    // Agent S2 (ip-10-0-2-23) is gone from the registered agents and counted unreachable;
    // Marathon still lists its task (TASK_UNREACHABLE until inactiveAfterSeconds).
    let mut agents = fixture("mesos-master-slaves.json");
    agents["slaves"].as_array_mut().unwrap().pop();
    let mut state = fixture("mesos-master-state.json");
    state["activated_slaves"] = json!(2);
    state["unreachable_slaves"] = json!(1);
    let mut tasks = fixture("marathon-tasks.json");
    tasks["tasks"][2]["state"] = json!("TASK_UNREACHABLE");
    let routes = with(
        with(
            with(mesos_routes(), "/master/slaves", vec![Reply::Json(agents)]),
            "/master/state",
            vec![Reply::Json(state)],
        ),
        "/v2/tasks",
        vec![Reply::Json(tasks)],
    );
    let c = mesos_capacity(routes);
    assert_eq!((c.agents_active, c.agents_unreachable), (2, 1));
    assert_eq!((c.cpus_total, c.cpus_used), (8.0, 4.0));
    let agg = c.app("live-aggregator").unwrap();
    assert_eq!(agg.tasks_on_dead_hosts, 1);
    assert!(!agg.is_whole());
    assert!(c.app("ingest/enricher").unwrap().is_whole());
    assert!(!c.is_whole());
}

#[test]
fn health_mesos_task_on_a_host_with_no_active_agent_is_on_a_dead_host() {
    // The agent is still registered but inactive (disconnected); the task still says RUNNING.
    let mut agents = fixture("mesos-master-slaves.json");
    agents["slaves"][0]["active"] = json!(false);
    let c = mesos_capacity(with(
        mesos_routes(),
        "/master/slaves",
        vec![Reply::Json(agents)],
    ));
    assert_eq!((c.agents_active, c.agents_inactive), (2, 1));
    assert_eq!(c.app("live-aggregator").unwrap().tasks_on_dead_hosts, 1);
    assert_eq!(c.app("ingest/enricher").unwrap().tasks_on_dead_hosts, 1);
    assert!(!c.is_whole());
}

#[test]
fn health_mesos_running_deployment_or_unhealthy_tasks_are_not_whole() {
    let mut apps = fixture("marathon-apps-counts.json");
    apps["apps"][1]["deployments"] = json!([{"id": "97c136bf-5a28-4821-9d94-480d9fbb01c8"}]);
    let c = mesos_capacity(with(mesos_routes(), "/v2/apps", vec![Reply::Json(apps)]));
    let enricher = c.app("ingest/enricher").unwrap();
    assert_eq!(enricher.deployments_running, 1);
    assert!(!enricher.is_whole());
    assert!(c.app("live-aggregator").unwrap().is_whole());

    // Relaunched but not yet healthy: running 3, healthy 2, with health checks.
    let mut apps = fixture("marathon-apps-counts.json");
    apps["apps"][0]["tasksHealthy"] = json!(2);
    apps["apps"][0]["tasksUnhealthy"] = json!(1);
    let c = mesos_capacity(with(mesos_routes(), "/v2/apps", vec![Reply::Json(apps)]));
    let agg = c.app("live-aggregator").unwrap();
    assert_eq!(
        (agg.tasks_running, agg.tasks_healthy, agg.tasks_unhealthy),
        (3, 2, 1)
    );
    assert!(!agg.is_whole());

    // Fewer running than instances, one staged.
    let mut apps = fixture("marathon-apps-counts.json");
    apps["apps"][1]["tasksRunning"] = json!(1);
    apps["apps"][1]["tasksStaged"] = json!(1);
    let c = mesos_capacity(with(mesos_routes(), "/v2/apps", vec![Reply::Json(apps)]));
    let enricher = c.app("ingest/enricher").unwrap();
    assert_eq!((enricher.tasks_running, enricher.tasks_staged), (1, 1));
    assert!(!enricher.is_whole());
}

fn storm_ui(api: &FakeApi, settings: &HttpSettings) -> StormUi {
    StormUi {
        client: ApiClient::new(&api.url, settings).unwrap(),
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn health_error_page_is_a_typed_status_error_naming_the_url() {
    let page = "<html>\n<head><title>Error 500 Server Error</title></head>\n<body><h2>HTTP ERROR 500</h2>\n<p>Problem accessing /api/v1/cluster/summary. Reason:\n<pre>    java.lang.RuntimeException: org.apache.storm.thrift.transport.TTransportException</pre></p>\n</body>\n</html>";
    let api = FakeApi::start(vec![(
        "/api/v1/cluster/summary",
        vec![Reply::Page(500, page)],
    )]);
    let settings = HttpSettings {
        retries: 1,
        ..fast()
    };
    let err = storm_ui(&api, &settings)
        .cluster_summary(far())
        .unwrap_err();
    let url = format!("{}/api/v1/cluster/summary", api.url);
    let HealthError::Status {
        url: got,
        status,
        body,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((got, *status), (&url, 500));
    assert!(
        body.starts_with("Error 500 Server Error HTTP ERROR 500"),
        "{body}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("GET {url}: HTTP 500: ")),
        "{text}"
    );
    assert!(!text.contains('<'), "{text}");
    // 5xx is retried (once here).
    assert_eq!(api.hits("/api/v1/cluster/summary"), 2);

    // A 404 is not retried.
    let err = storm_ui(&api, &settings)
        .topology("gone-1-1", far())
        .unwrap_err();
    assert!(
        matches!(err, HealthError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(api.hits("/api/v1/topology/gone-1-1"), 1);
}

#[test]
fn health_503_then_200_is_retried_to_success() {
    let api = FakeApi::start(vec![(
        "/v2/tasks",
        vec![
            Reply::Page(503, r#"{"message":"Marathon is not the leader"}"#),
            Reply::Page(502, "<html><body>Bad Gateway</body></html>"),
            Reply::Json(fixture("marathon-tasks.json")),
        ],
    )]);
    let marathon = Marathon {
        client: ApiClient::new(&api.url, &fast()).unwrap(),
    };
    let started = Instant::now();
    let tasks = marathon.tasks(far()).unwrap();
    assert_eq!(tasks.tasks.len(), 5);
    assert_eq!(tasks.tasks[0].app_id, "/live-aggregator");
    assert_eq!(api.hits("/v2/tasks"), 3);
    // Backoff 20 ms then 40 ms.
    assert!(started.elapsed() >= Duration::from_millis(60));

    // With no retries left, the 503 is the answer.
    let api = FakeApi::start(vec![(
        "/v2/tasks",
        vec![Reply::Page(503, "busy"), Reply::Json(json!({"tasks": []}))],
    )]);
    let marathon = Marathon {
        client: ApiClient::new(
            &api.url,
            &HttpSettings {
                retries: 0,
                ..fast()
            },
        )
        .unwrap(),
    };
    let err = marathon.tasks(far()).unwrap_err();
    assert!(
        matches!(err, HealthError::Status { status: 503, .. }),
        "{err:?}"
    );
}

#[test]
fn health_slow_server_times_out_with_the_url() {
    let api = FakeApi::start(vec![(
        "/master/slaves",
        vec![Reply::Slow(
            Duration::from_secs(3),
            Box::new(Reply::Json(fixture("mesos-master-slaves.json"))),
        )],
    )]);
    let master = MesosMaster {
        client: ApiClient::new(
            &api.url,
            &HttpSettings {
                timeout: Duration::from_millis(300),
                ..fast()
            },
        )
        .unwrap(),
    };
    let started = Instant::now();
    let err = master.agents(far()).unwrap_err();
    let elapsed = started.elapsed();
    let HealthError::Timeout { url, after } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(url, &format!("{}/master/slaves", api.url));
    assert_eq!(*after, Duration::from_millis(300));
    assert!(
        err.to_string().contains("no complete answer within 300ms"),
        "{err}"
    );
    // Not retried: a timeout would eat the deadline. (Bounds below the server's 3 s: what
    // counts is not waiting for its answer, with room for a loaded machine.)
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_eq!(api.hits("/master/slaves"), 1);

    // The probe's deadline caps each request's timeout too.
    let api = FakeApi::start(with(
        mesos_routes(),
        "/master/state",
        vec![Reply::Slow(
            Duration::from_secs(3),
            Box::new(Reply::Json(fixture("mesos-master-state.json"))),
        )],
    ));
    let started = Instant::now();
    let err = health::probe(&mesos(&api), Duration::from_millis(400)).unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        matches!(&err, HealthError::Timeout { url, .. } if url.ends_with("/master/state")),
        "{err:?}"
    );
}

#[test]
fn health_half_written_json_is_a_typed_json_error() {
    let full = fixture("storm-supervisor-summary.json").to_string();
    let half = full[..full.len() / 2].to_owned();
    let api = FakeApi::start(vec![
        ("/api/v1/supervisor/summary", vec![Reply::Text(half)]),
        (
            "/api/v1/cluster/summary",
            vec![Reply::Json(json!({"supervisors": "three"}))],
        ),
    ]);
    let ui = storm_ui(&api, &fast());
    let err = ui.supervisors(far()).unwrap_err();
    let HealthError::Json {
        url, line, reason, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(url, &format!("{}/api/v1/supervisor/summary", api.url));
    assert_eq!(*line, 1);
    assert!(reason.contains("EOF"), "{reason}");
    assert!(
        err.to_string()
            .contains("/api/v1/supervisor/summary: invalid JSON at line 1")
    );
    // A wrong type names the field's expectation.
    let err = ui.cluster_summary(far()).unwrap_err();
    assert!(
        matches!(&err, HealthError::Json { reason, .. } if reason.contains("invalid type: string \"three\", expected u32")),
        "{err:?}"
    );
}

#[test]
fn health_body_cut_short_by_the_server_names_the_url() {
    // A raw server that promises 1000 bytes and hangs up after a few, on every connection
    // until the test is done (a fixed count of connections was refused past the count when a
    // slow attempt was retried on a loaded machine).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"slaves\": [{\"id\": ",
                );
            }
        })
    };
    let master = MesosMaster {
        client: ApiClient::new(&format!("http://{addr}"), &fast()).unwrap(),
    };
    let err = master.agents(far()).unwrap_err();
    assert!(
        matches!(&err, HealthError::Transport { url, .. } if url == &format!("http://{addr}/master/slaves")),
        "{err:?}"
    );
    done.store(true, Ordering::Relaxed);
    server.join().unwrap();
}

#[test]
fn health_connection_refused_is_retried_then_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let marathon = Marathon {
        client: ApiClient::new(&base, &fast()).unwrap(),
    };
    let started = Instant::now();
    let err = marathon.apps(far()).unwrap_err();
    assert!(
        matches!(&err, HealthError::Connect { url, .. } if url == &format!("{base}/v2/apps?embed=apps.counts")),
        "{err:?}"
    );
    // Two retries: 20 ms + 40 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[test]
fn health_basic_auth_is_sent_and_never_shown() {
    let api = FakeApi::start_checking(
        storm_routes(),
        // base64("svc:pw-123"), computed independently.
        Some("Basic c3ZjOnB3LTEyMw==".into()),
    );
    let settings = HttpSettings {
        auth: AuthSpec::Basic {
            username: "svc".into(),
            password_env: "STORM_UI_PASSWORD".into(),
        },
        ..fast()
    };
    let env = |var: &str| (var == "STORM_UI_PASSWORD").then(|| "pw-123".to_owned());
    let endpoints = Endpoints::Storm {
        storm_ui: StormUi {
            client: ApiClient::with_env(&api.url, &settings, env).unwrap(),
        },
    };
    let capacity = health::probe(&endpoints, Duration::from_secs(10)).unwrap();
    assert!(capacity.is_whole());
    let seen = api.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Basic c3ZjOnB3LTEyMw==")),
        "{seen:?}"
    );
    let shown = format!("{endpoints:?}");
    assert!(
        shown.contains("svc") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert!(
        !shown.contains("pw-123") && !shown.contains("c3ZjOnB3LTEyMw"),
        "{shown}"
    );

    // Wrong password: the 401 names the URL, not the secret.
    let wrong = |_: &str| Some("nope-456".to_owned());
    let ui = StormUi {
        client: ApiClient::with_env(&api.url, &settings, wrong).unwrap(),
    };
    let err = ui.cluster_summary(far()).unwrap_err();
    assert!(
        matches!(err, HealthError::Status { status: 401, .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{ui:?}")] {
        assert!(!text.contains("nope-456"), "{text}");
    }
}

#[test]
fn health_bearer_token_is_sent_and_never_shown() {
    let token = "eyJhbGciOiJSUzI1NiJ9.dcos-acs-token.sig";
    let api = FakeApi::start_checking(mesos_routes(), Some(format!("Bearer {token}")));
    let settings = HttpSettings {
        auth: AuthSpec::Bearer {
            token_env: "DCOS_ACS_TOKEN".into(),
        },
        ..fast()
    };
    let env = |var: &str| (var == "DCOS_ACS_TOKEN").then(|| token.to_owned());
    let client = ApiClient::with_env(&api.url, &settings, env).unwrap();
    let endpoints = Endpoints::Mesos {
        mesos_master: MesosMaster {
            client: client.clone(),
        },
        marathon: Marathon { client },
    };
    let capacity = health::probe(&endpoints, Duration::from_secs(10)).unwrap();
    assert!(capacity.is_whole());
    assert_eq!(api.seen().len(), 4);
    let shown = format!("{endpoints:?}");
    assert!(!shown.contains("dcos-acs-token"), "{shown}");

    // The variable unset: a typed error naming the variable, before any request.
    let err = ApiClient::with_env(&api.url, &settings, |_| None).unwrap_err();
    assert!(
        matches!(&err, HealthError::MissingSecret { var, .. } if var == "DCOS_ACS_TOKEN"),
        "{err:?}"
    );
    assert_eq!(api.seen().len(), 4);
}

#[test]
fn health_ca_file_must_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let settings = HttpSettings {
        ca_file: Some(empty.clone()),
        ..fast()
    };
    let err = ApiClient::new("https://nimbus:8443", &settings).unwrap_err();
    assert!(
        matches!(&err, HealthError::CaFile { path, .. } if path == &empty.display().to_string()),
        "{err:?}"
    );
    let missing = HttpSettings {
        ca_file: Some(dir.path().join("missing.pem")),
        ..fast()
    };
    assert!(matches!(
        ApiClient::new("https://nimbus:8443", &missing).unwrap_err(),
        HealthError::CaFile { .. }
    ));
}

#[test]
fn health_custom_ca_loads_and_tls_failures_name_the_url() {
    let ca = format!(
        "{}/tests/fixtures/health/test-ca.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let settings = HttpSettings {
        ca_file: Some(ca.into()),
        retries: 0,
        ..fast()
    };
    // A plain-HTTP server spoken to over https: the handshake fails, and the error says where.
    let api = FakeApi::start(storm_routes());
    let base = api.url.replace("http://", "https://");
    let ui = StormUi {
        client: ApiClient::new(&base, &settings).unwrap(),
    };
    let err = ui.cluster_summary(far()).unwrap_err();
    assert_eq!(
        err.url(),
        Some(format!("{base}/api/v1/cluster/summary").as_str()),
        "{err:?}"
    );
}
