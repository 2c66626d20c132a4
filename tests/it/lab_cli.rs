//! `spotdrill lab up` and `lab kill` end to end: a running lab that `spotdrill lag` can watch.

use std::time::Duration;

use crate::util::{Cmd, Running, alive, spotdrill, wait_for};

struct LabUp {
    child: Running,
    brokers: String,
    dir: tempfile::TempDir,
}

/// `spotdrill lab up experiments/ci-gate.yaml` in the background, once it has said where its
/// broker listens (its first line).
fn lab_up() -> LabUp {
    let dir = tempfile::tempdir().unwrap();
    let child = Cmd::new(["lab", "up", "experiments/ci-gate.yaml", "--dir"])
        .arg(dir.path())
        .spawn();
    wait_for("lab up's first line", Duration::from_secs(120), || {
        child.stdout.text().contains('\n')
    });
    let text = child.stdout.text();
    let first = text.lines().next().unwrap_or_default();
    let brokers = first
        .strip_prefix("lab up: broker ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    LabUp {
        child,
        brokers,
        dir,
    }
}

fn node_pids(dir: &std::path::Path) -> Vec<(String, u32)> {
    let text = std::fs::read_to_string(dir.join("lab.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["id"].as_str().unwrap().to_owned(),
                        n["pid"].as_u64().unwrap() as u32,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// GET a JSON document over plain HTTP/1.1.
fn get_json(url: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

fn storm_ui(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("lab.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["endpoints"][0]["url"].as_str().unwrap().to_owned()
}

fn alive_u32(pid: u32) -> bool {
    alive(pid as i32)
}

#[test]
fn lab_up_runs_a_lab_that_lag_and_lab_kill_use() {
    let mut lab = lab_up();
    let pids = node_pids(lab.dir.path());
    assert_eq!(pids.len(), 4, "ci-gate has 4 nodes: {pids:?}");
    // spotdrill lag sees the lab's workers consume.
    wait_for(
        "the lab's workload consumes",
        Duration::from_secs(120),
        || {
            let out = spotdrill(&[
                "lag",
                "--brokers",
                &lab.brokers,
                "--group",
                "events-topology",
                "--topic",
                "events",
                "--once",
                "--json",
            ]);
            let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
            v["status"] == "ok" && v["lag_seconds"].as_f64().is_some_and(|s| s < 3.0)
        },
    );

    // The Storm UI API shows the cluster whole: 4 supervisors, 8 slots, 4 used.
    let ui = storm_ui(lab.dir.path());
    let summary = get_json(&ui, "/api/v1/cluster/summary");
    assert_eq!(
        (&summary["supervisors"], &summary["slotsTotal"]),
        (&4.into(), &8.into()),
        "{summary}"
    );
    assert_eq!(summary["slotsUsed"], 4);
    let sups = get_json(&ui, "/api/v1/supervisor/summary");
    assert_eq!(sups["supervisors"].as_array().unwrap().len(), 4);
    let topo = get_json(&ui, "/api/v1/topology/events-topology");
    assert_eq!(topo["workersTotal"], 4);

    let killed = &pids[0];
    let dir = lab.dir.path().to_str().unwrap().to_owned();
    spotdrill(&["lab", "kill", &killed.0, "--dir", &dir]).expect_code(0);
    wait_for(
        "the UI shows the supervisor gone",
        Duration::from_secs(60),
        || get_json(&ui, "/api/v1/cluster/summary")["supervisors"] == 3,
    );
    wait_for(
        "the killed node's process is gone",
        Duration::from_secs(60),
        || !alive_u32(killed.1),
    );
    // ci-gate replaces lost nodes after 10 s.
    wait_for("a replacement joins", Duration::from_secs(120), || {
        node_pids(lab.dir.path())
            .iter()
            .any(|(id, _)| id.ends_with("-5"))
    });
    let truth = std::fs::read_to_string(lab.dir.path().join("lab-truth.jsonl")).unwrap();
    assert!(
        truth.contains(&format!(r#""event":"node_died","node":"{}""#, killed.0)),
        "{truth}"
    );
    assert!(truth.contains(r#""event":"worker_placed""#));

    // Ctrl-C: the lab stops and leaves no node process behind.
    let nodes = node_pids(lab.dir.path());
    lab.child.signal(nix::sys::signal::Signal::SIGINT);
    lab.child.wait(Duration::from_secs(60)).expect_code(0);
    for (id, pid) in nodes {
        assert!(!alive_u32(pid), "node {id} (pid {pid}) outlived the lab");
    }
}

#[test]
fn nodes_do_not_outlive_a_killed_lab() {
    let mut lab = lab_up();
    let mut nodes = node_pids(lab.dir.path());
    assert!(!nodes.is_empty());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.path().join("lab.json")).unwrap())
            .unwrap();
    let broker = state["broker_pid"].as_u64().unwrap() as u32;
    assert!(alive_u32(broker), "the broker runs in its own process");
    nodes.push(("broker".into(), broker));
    lab.child.kill();
    wait_for(
        "orphaned nodes and broker stop",
        Duration::from_secs(60),
        || nodes.iter().all(|(_, pid)| !alive_u32(*pid)),
    );
}

#[test]
fn lab_kill_without_a_lab_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = spotdrill(&["lab", "kill", "x-1", "--dir", dir.path().to_str().unwrap()]);
    out.expect_code(4);
    assert!(out.stderr.contains("no running lab in"), "{}", out.stderr);
}
