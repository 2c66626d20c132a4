//! The lab's `kind: kubernetes` cluster: its Kubernetes API read by the same capacity probe that
//! reads a real cluster (held against the lab's own capacity and ground truth), and the
//! Kubernetes lab game day (experiments/lab-kubernetes.yaml), whose tolerance is the one its
//! capacity arithmetic predicts.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::Value;
use spotdrill::lab::up::RunningLab;
use spotdrill::nodes::kubernetes::Access;
use spotdrill::observe::health::{KubeCapacity, kube};
use spotdrill::plan::{ClusterKind, Lab, LabCluster, LabTopic, TimestampType, Workload};

use crate::util::{Cmd, root};

const DETECTION: Duration = Duration::from_secs(4);
const REPLACEMENT: Duration = Duration::from_secs(9);

/// 3 nodes × 2 slots running 4 pods of `ingest`.
fn small_lab() -> Lab {
    let cluster = LabCluster {
        kind: ClusterKind::Kubernetes,
        nodes: 3,
        slots_per_node: 2,
        detection_delay: DETECTION,
        replacement_delay: Some(REPLACEMENT),
        workloads: IndexMap::from([(
            "ingest".to_owned(),
            Workload {
                workers: 4,
                group: "ingest".into(),
                topics: vec!["events".into()],
                cost_per_message: Duration::from_micros(100),
                commit_interval: Duration::from_secs(1),
                stall_after_restart: false,
            },
        )]),
    };
    Lab {
        topics: vec![LabTopic {
            name: "events".into(),
            partitions: 4,
            rate: 40.0,
            message_bytes: 64,
            timestamp_type: TimestampType::CreateTime,
        }],
        clusters: IndexMap::from([("k8s-lab".to_owned(), cluster)]),
    }
}

async fn probe(api: &kube::KubeApi) -> KubeCapacity {
    kube::capacity(api, Duration::from_secs(5)).await.unwrap()
}

async fn probe_until(
    api: &kube::KubeApi,
    within: Duration,
    what: &str,
    ok: impl Fn(&KubeCapacity) -> bool,
) -> KubeCapacity {
    let started = Instant::now();
    loop {
        let c = probe(api).await;
        if ok(&c) {
            return c;
        }
        assert!(
            started.elapsed() < within,
            "not {what} within {within:?}: {c:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node lost without a drain: NotReady at once, its pods still bound to it (counted as on lost
/// nodes) until the toleration (the lab's detection delay) runs out, then re-created on the
/// nodes with room; the replacement node joins after its delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_kubernetes_api_shows_an_abrupt_loss_as_the_probe_reads_a_real_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_spotdrill"));
    let lab = small_lab();
    let running = tokio::task::block_in_place(|| RunningLab::start(&lab, exe, dir.path())).unwrap();
    let url = running.state().endpoints[0].url.clone();
    assert_eq!(running.state().endpoints[0].api, "kubernetes");
    let api = Access::lab("k8s-lab", &url).unwrap().health();

    let before = probe(&api).await;
    assert_eq!((before.nodes_ready, before.nodes_not_ready), (3, 0));
    let w = before
        .workload("default/ingest")
        .expect("one Deployment per workload");
    assert_eq!(
        (w.kind.as_str(), w.desired, w.ready, w.pending),
        ("Deployment", 4, 4, 0)
    );
    assert!(before.is_whole(), "{before:#?}");
    let lab_now = running.capacity("k8s-lab").unwrap();
    assert_eq!((lab_now.nodes, lab_now.workers_placed), (3, 4));

    let victim = before.hosts_running("ingest")[0].to_owned();
    let on_victim = running
        .view("k8s-lab")
        .unwrap()
        .nodes
        .iter()
        .find(|n| n.id == victim)
        .map(|n| n.workers.len())
        .unwrap();
    tokio::task::block_in_place(|| running.kill(&victim, Duration::ZERO)).unwrap();
    let lost = probe_until(&api, DETECTION, "NotReady", |c| c.nodes_not_ready == 1).await;
    let w = lost.workload("ingest").unwrap();
    assert_eq!(w.on_lost_nodes as usize, on_victim, "{lost:#?}");
    assert!(!lost.is_whole());
    assert!(!lost.node_names.contains(&victim));

    // After the toleration: 2 nodes × 2 slots hold the 4 pods again, none on the lost node.
    let back = probe_until(
        &api,
        Duration::from_secs(30),
        "whole again",
        KubeCapacity::is_whole,
    )
    .await;
    assert_eq!(
        back.nodes_ready, 2,
        "re-placed before the replacement: {back:#?}"
    );
    assert!(!back.hosts_running("ingest").contains(&victim.as_str()));
    let full = probe_until(&api, Duration::from_secs(30), "replaced", |c| {
        c.nodes_ready == 3
    })
    .await;
    assert!(full.is_whole());
    let truth = std::fs::read_to_string(running.truth_path()).unwrap();
    assert!(
        truth.contains(&format!(
            "\"event\":\"node_lost_detected\",\"node\":\"{victim}\""
        )),
        "{truth}"
    );
    tokio::task::block_in_place(|| running.stop()).unwrap();
}

fn json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// experiments/lab-kubernetes.yaml: 6 pods on 5 nodes × 2 slots. Draining 1 or 2 nodes leaves
/// room for all 6 (re-created at once); draining 3 leaves 4 slots, so 2 pods stay Pending until
/// a replacement node joins 40 s later, past the 25 s max_recovery: the cluster tolerates 2.
/// Every drained node is exactly one the journal intended, cordoned and emptied before its Node
/// was deleted, and the findings say what the scheduler did.
#[test]
fn the_kubernetes_lab_game_day_tolerates_what_its_capacity_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = Cmd::new([
        "run",
        "experiments/lab-kubernetes.yaml",
        "--yes",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .locks(dir.path().join("locks"))
    .run();
    out.expect_code(0);
    let report = json(&out_dir.join("report.json"));
    let t = &report["targets"][0];
    assert_eq!(t["name"], "k8s-lab");
    assert_eq!(t["tolerated_terminations"], 2, "{t:#}");
    assert_eq!(t["tolerance_bound"], "exact", "{t:#}");
    let steps = t["steps"].as_array().unwrap();
    let verdicts: Vec<&str> = steps
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "pass", "fail"], "{t:#}");
    let findings = |i: usize| -> String { steps[i]["findings"].to_string() };
    assert!(
        findings(0).contains("Kubernetes re-created the pods of default/ingest"),
        "{}",
        findings(0)
    );
    assert!(
        findings(2).contains("pods of default/ingest stayed Pending"),
        "{}",
        findings(2)
    );
    assert!(findings(2).contains("Insufficient cpu"), "{}", findings(2));
    let reason = &steps[2]["applications"][0]["reason"];
    assert!(
        reason.to_string().contains("was whole again only after"),
        "{reason}"
    );
    let cap = &steps[2]["capacity"];
    assert_eq!(
        (cap["nodes_before"].as_u64(), cap["nodes_lowest"].as_u64()),
        (Some(5), Some(2)),
        "{cap}"
    );
    assert!(
        steps[2]["capacity_restored_s"].as_f64().unwrap() >= 40.0,
        "{}",
        steps[2]
    );

    // What was drained: exactly the intended nodes, each cordoned, emptied, then deleted.
    let journal = lines(&out_dir.join("journal.jsonl"));
    let intended: Vec<String> = journal
        .iter()
        .filter(|e| e["event"] == "intent")
        .flat_map(|e| {
            e["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(intended.len(), 6, "1 + 2 + 3 nodes");
    let truth = lines(&out_dir.join("lab-truth.jsonl"));
    let of = |event: &str| -> Vec<String> {
        truth
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["node"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut cordoned = of("node_cordoned");
    let mut killed = of("node_killed");
    let mut want = intended.clone();
    want.sort();
    cordoned.sort();
    killed.sort();
    assert_eq!(cordoned, want, "only the intended nodes were cordoned");
    assert_eq!(killed, want, "only the intended nodes were lost");
    for e in truth.iter().filter(|e| e["event"] == "worker_evicted") {
        assert!(intended.iter().any(|n| e["node"] == n.as_str()), "{e}");
    }
    let capacity = lines(&out_dir.join("capacity.jsonl"));
    assert!(
        capacity
            .iter()
            .any(|l| l["capacity"]["kind"] == "kubernetes"),
        "capacity.jsonl: {capacity:?}"
    );
    assert!(root().join("experiments/lab-kubernetes.yaml").exists());
}
