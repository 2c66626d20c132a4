//! The kubernetes node provider end to end: `spotdrill plan` and `spotdrill run` reach the lab's
//! Kubernetes API (src/lab/kube_api.rs, real HTTP on a free loopback port; no kube-apiserver can
//! run here) through a kubeconfig in `KUBECONFIG`, exactly as they would reach a cluster. Lag is
//! observed on the in-process mock Kafka cluster (flat, so verdicts pass): the point here is what
//! gets drained, and that nothing is touched when a permission is missing.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use spotdrill::lab::kube_api::{Budget, KubeWorld, NodeSpec, SharedWorld, serve};
use tokio_util::sync::CancellationToken;

use crate::support::kafka::Kafka;
use crate::util::{Cmd, Outcome, plan_fixture};

pub(crate) const SPOT: (&str, &str) = ("karpenter.sh/capacity-type", "spot");
pub(crate) const POOL: (&str, &str) = ("karpenter.sh/nodepool", "ingest");
const NODES: &str = "{provider: kubernetes, labels: {karpenter.sh/nodepool: ingest}, \
                     terminate: drain, drain_timeout: 1s, allow_on_demand: false}";

/// The lab API serving `world`, and a kubeconfig whose context `lab-ctx` points at it.
pub(crate) struct Cluster {
    world: SharedWorld,
    cancel: CancellationToken,
    dir: tempfile::TempDir,
}

impl Cluster {
    pub(crate) fn start(world: KubeWorld) -> Cluster {
        let world = Arc::new(Mutex::new(world));
        let cancel = CancellationToken::new();
        let (addr, _) = serve(world.clone(), cancel.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster: {{server: \"http://{addr}\"}}\n\
             users:\n- name: spotdrill\n  user: {{token: lab-token}}\ncontexts:\n\
             - name: lab-ctx\n  context: {{cluster: lab, user: spotdrill}}\ncurrent-context: lab-ctx\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Cluster { world, cancel, dir }
    }

    /// `spotdrill ARGS…` reaching this cluster (and nothing else).
    pub(crate) fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .locks(self.dir.path().join("locks"))
    }

    fn spotdrill(&self, args: &[&str]) -> Outcome {
        self.cmd(args).run()
    }

    fn plan_file(&self, kafka: &Kafka, ladder: &str) -> String {
        self.plan_with(kafka, NODES, ladder)
    }

    /// tests/fixtures/plans/kube-flat.yaml with `nodes` (a YAML flow mapping) and `ladder`.
    pub(crate) fn plan_with(&self, kafka: &Kafka, nodes: &str, ladder: &str) -> String {
        let text = plan_fixture(
            "kube-flat.yaml",
            &[
                ("name", &"kube test"),
                ("brokers", &kafka.bootstrap),
                ("nodes", &nodes),
                ("ladder", &ladder),
                ("selection", &"random"),
                ("extra", &""),
            ],
        );
        let p = self.dir.path().join("plan.yaml");
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }

    fn run(&self, kafka: &Kafka, ladder: &str) -> Outcome {
        let plan = self.plan_file(kafka, ladder);
        let out = self.dir.path().join("run");
        self.spotdrill(&["run", &plan, "--yes", "--out", out.to_str().unwrap()])
    }

    /// The run directory `run` writes to.
    pub(crate) fn out_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("run")
    }

    pub(crate) fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("run/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, KubeWorld> {
        self.world.lock().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Four Ready spot workers of the nodepool (each with a ReplicaSet pod and a DaemonSet pod), and
/// matched nodes that must never be chosen: the control plane, a NotReady one, a cordoned one,
/// an on-demand one; plus a spot node of another nodepool.
fn world() -> KubeWorld {
    let mut w = KubeWorld::default();
    for (i, name) in ["w1", "w2", "w3", "w4"].into_iter().enumerate() {
        let zone = if i % 2 == 0 {
            "us-east-1a"
        } else {
            "us-east-1b"
        };
        let labels = [SPOT, POOL, ("topology.kubernetes.io/zone", zone)];
        w.add_node(&NodeSpec {
            provider_id: Some(&format!("aws:///{zone}/i-0000{i}")),
            ..ready(name, &labels)
        });
        w.add_pod(
            "apps",
            &format!("ingest-{i}"),
            name,
            &[("app", "ingest")],
            Some("ReplicaSet"),
        );
        w.add_pod(
            "kube-system",
            &format!("proxy-{i}"),
            name,
            &[],
            Some("DaemonSet"),
        );
    }
    w.add_node(&ready(
        "cp",
        &[SPOT, POOL, ("node-role.kubernetes.io/control-plane", "")],
    ));
    w.add_node(&NodeSpec {
        ready: false,
        ..ready("sick", &[SPOT, POOL])
    });
    w.add_node(&NodeSpec {
        unschedulable: true,
        ..ready("cordoned", &[SPOT, POOL])
    });
    w.add_node(&ready(
        "od",
        &[("karpenter.sh/capacity-type", "on-demand"), POOL],
    ));
    w.add_node(&ready("other", &[SPOT, ("karpenter.sh/nodepool", "batch")]));
    w
}

pub(crate) fn ready<'a>(name: &'a str, labels: &'a [(&'a str, &'a str)]) -> NodeSpec<'a> {
    NodeSpec {
        name,
        labels,
        ready: true,
        ..NodeSpec::default()
    }
}

pub(crate) fn mutations(w: &KubeWorld) -> Vec<String> {
    w.requests()
        .iter()
        .filter(|r| !r.starts_with("GET ") && !r.contains("selfsubjectaccessreviews"))
        .cloned()
        .collect()
}

/// `plan` shows the cluster and context, the four eligible workers (zone from the label), the
/// four matched nodes left out with why, and the SelfSubjectAccessReview answers; it touches
/// nothing.
#[test]
fn kubernetes_plan_shows_cluster_permissions_and_only_ready_schedulable_spot_workers() {
    let cluster = Cluster::start(world());
    let kafka = crate::aws::kafka();
    let plan = cluster.plan_file(&kafka, "[1, 2]");

    let out = cluster.spotdrill(&["plan", &plan, "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let t = &v["targets"][0];
    let ids: Vec<&str> = t["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["w1", "w2", "w3", "w4"], "{}", out.stdout);
    assert_eq!(t["nodes"][1]["zone"], "us-east-1b");
    assert_eq!(t["nodes"][0]["lifecycle"], "spot");
    let excluded: Vec<(String, String)> = t["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().into(),
                x["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let reason = |id: &str| &excluded.iter().find(|x| x.0 == id).unwrap().1;
    assert_eq!(excluded.len(), 4, "{excluded:?}");
    assert!(reason("cp").contains("control-plane"));
    assert!(reason("sick").contains("not Ready"));
    assert!(reason("cordoned").contains("cordoned"));
    assert!(reason("od").contains("not spot"));
    let perms = t["permissions"].as_str().unwrap();
    assert!(
        perms.starts_with("allowed by SelfSubjectAccessReview"),
        "{perms}"
    );
    for p in [
        "list nodes",
        "watch pods",
        "patch nodes",
        "create pods/eviction",
        "delete nodes",
    ] {
        assert!(perms.contains(p), "{p} not checked: {perms}");
    }

    let human = cluster.spotdrill(&["plan", &plan]);
    human.expect_code(0);
    assert!(human.stdout.contains("context lab-ctx"), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("Kubernetes cluster http://127.0.0.1:")
    );
    assert_eq!(mutations(&cluster.world()), Vec::<String>::new());
}

/// The context: the kubeconfig's current one unless `--context` or the plan's `context` names
/// another. Here the current context points at a port nobody listens on: `plan` says the
/// cluster cannot be reached (exit 4); `--context lab-ctx` and the plan's `context: lab-ctx`
/// each reach the lab, and nothing is touched.
#[test]
fn kubernetes_context_comes_from_the_flag_or_the_plan_over_the_current_one() {
    let cluster = Cluster::start(world());
    let path = cluster.dir.path().join("kubeconfig");
    let text = std::fs::read_to_string(&path).unwrap();
    let nobody = crate::support::kafka::free_port();
    let text = text
        .replace(
            "clusters:\n",
            &format!(
                "clusters:\n- name: gone\n  cluster: {{server: \"http://127.0.0.1:{nobody}\"}}\n"
            ),
        )
        .replace(
            "contexts:\n",
            "contexts:\n- name: gone-ctx\n  context: {cluster: gone, user: spotdrill}\n",
        )
        .replace("current-context: lab-ctx", "current-context: gone-ctx");
    std::fs::write(&path, text).unwrap();
    let kafka = crate::aws::kafka();
    let plan = cluster.plan_file(&kafka, "[1]");
    let current = cluster.spotdrill(&["plan", &plan]);
    current.expect_code(4);
    assert!(
        current.stdout.contains(&format!("127.0.0.1:{nobody}")),
        "the unreachable cluster is not named:\n{}",
        current.stdout
    );
    let flag = cluster.spotdrill(&["plan", &plan, "--context", "lab-ctx"]);
    flag.expect_code(0);
    assert!(flag.stdout.contains("context lab-ctx"), "{}", flag.stdout);
    let in_plan = cluster.plan_with(
        &kafka,
        &NODES.replace("terminate: drain", "context: lab-ctx, terminate: drain"),
        "[1]",
    );
    let planned = cluster.spotdrill(&["plan", &in_plan]);
    planned.expect_code(0);
    assert!(
        planned.stdout.contains("context lab-ctx"),
        "{}",
        planned.stdout
    );
    assert_eq!(mutations(&cluster.world()), Vec::<String>::new());
}

/// A missing permission (delete nodes) is found before anything is touched: exit 4, named.
#[test]
fn kubernetes_permission_denied_exits_4_and_touches_nothing() {
    let mut w = world();
    w.deny("delete nodes");
    let cluster = Cluster::start(w);
    let kafka = crate::aws::kafka();

    let out = cluster.run(&kafka, "[1]");
    out.expect_code(4);
    assert!(out.stderr.contains("delete nodes"), "{}", out.stderr);
    assert_eq!(mutations(&cluster.world()), Vec::<String>::new());
    assert_eq!(cluster.world().node_names().len(), 9);
}

/// Ladder [1, 2]: exactly three of the four workers are drained: cordoned, their ReplicaSet pods
/// evicted (DaemonSet pods are not), then the Node deleted, in that order; nothing else changes.
#[test]
fn kubernetes_drain_cordons_evicts_and_deletes_exactly_the_chosen_nodes() {
    let cluster = Cluster::start(world());
    let kafka = crate::aws::kafka();

    let out = cluster.run(&kafka, "[1, 2]");
    out.expect_code(0);
    let w = cluster.world();
    let left = w.node_names();
    let gone: Vec<&str> = ["w1", "w2", "w3", "w4"]
        .into_iter()
        .filter(|n| !left.iter().any(|l| l == n))
        .collect();
    assert_eq!(gone.len(), 3, "{left:?}\n{}", out.stderr);
    for keep in ["cp", "sick", "cordoned", "od", "other"] {
        assert!(left.iter().any(|l| l == keep), "{keep} was touched");
    }
    let m = mutations(&w);
    for node in &gone {
        let at = |what: &str| {
            m.iter()
                .position(|r| r == what)
                .unwrap_or_else(|| panic!("no {what}: {m:?}"))
        };
        let i = node[1..].parse::<usize>().unwrap() - 1;
        let cordon = at(&format!("PATCH /api/v1/nodes/{node}?"));
        let evict = at(&format!(
            "POST /api/v1/namespaces/apps/pods/ingest-{i}/eviction?"
        ));
        let delete = at(&format!("DELETE /api/v1/nodes/{node}?"));
        assert!(cordon < evict && evict < delete, "{m:?}");
        assert_eq!(w.pods_on(node), [format!("kube-system/proxy-{i}")]);
    }
    assert_eq!(m.len(), 9, "{m:?}");
    let journal = cluster.journal();
    let outcomes: Vec<&Value> = journal.iter().filter(|e| e["event"] == "outcome").collect();
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| o["outcome"] == "terminated"),
        "{outcomes:?}"
    );
}

/// A PodDisruptionBudget that never allows the eviction: the drain gives up after
/// `drain_timeout`, the node is uncordoned again and stays, the outcome is an error naming the
/// budget, the journal records the blocked eviction, and the step's findings say how long it
/// was blocked. (kube's own retry of a 429 once hid the block here for minutes.)
#[test]
fn kubernetes_drain_blocked_by_a_pdb_uncordons_and_reports_it() {
    let mut w = world();
    w.add_budget(Budget {
        namespace: "apps".into(),
        name: "ingest".into(),
        selector: [("app".to_owned(), "ingest".to_owned())].into(),
        min_available: 4,
    });
    let cluster = Cluster::start(w);
    let kafka = crate::aws::kafka();

    let out = cluster.run(&kafka, "[1]");
    assert_ne!(out.code, 0, "{}", out.stderr);
    let w = cluster.world();
    assert_eq!(w.node_names().len(), 9, "a node was deleted");
    for n in ["w1", "w2", "w3", "w4"] {
        assert_eq!(
            w.node(n).unwrap()["spec"]["unschedulable"],
            false,
            "{n} left cordoned"
        );
    }
    let journal = cluster.journal();
    let outcome = journal.iter().find(|e| e["event"] == "outcome").unwrap();
    assert_eq!(outcome["outcome"], "error", "{outcome}");
    let detail = outcome["detail"].as_str().unwrap();
    assert!(detail.contains("disruption budget ingest"), "{detail}");
    assert!(detail.contains("uncordoned again"), "{detail}");
    assert!(
        journal
            .iter()
            .any(|e| e.to_string().contains("eviction_blocked")),
        "no blocked eviction journaled"
    );
    // The block is a finding of the step, with how long the drain waited before giving up.
    let report = std::fs::read_to_string(cluster.out_dir().join("report.json")).unwrap();
    let report: Value = serde_json::from_str(&report).unwrap();
    let findings = report["targets"][0]["steps"][0]["findings"].to_string();
    let node = outcome["node"].as_str().unwrap();
    let pod = format!("ingest-{}", node[1..].parse::<usize>().unwrap() - 1);
    // drain_timeout 1s, retried every 500 ms: the drain gives up 1 s (2 s on a slow machine) in.
    let waited = ["1s", "2s"].iter().any(|n| {
        findings.contains(&format!(
            "eviction of apps/{pod} was blocked {n} by PodDisruptionBudget ingest; the drain gave up"
        ))
    });
    assert!(waited, "{findings}");
}

/// A budget that holds one eviction back for a while: ladder [2] under `minAvailable: 3` of the
/// four ingest pods lets the first eviction through and refuses the second (429) until the test
/// starts a fifth ingest pod elsewhere, about 2 s later; then the drain finishes. The wait
/// becomes a finding of the step, in report.json and report.md: "eviction of apps/ingest-N was
/// blocked Ns by PodDisruptionBudget ingest", and the journal has the block's start and end once.
#[test]
fn kubernetes_blocked_eviction_is_a_finding_of_its_step() {
    let mut w = world();
    w.add_budget(Budget {
        namespace: "apps".into(),
        name: "ingest".into(),
        selector: [("app".to_owned(), "ingest".to_owned())].into(),
        min_available: 3,
    });
    let cluster = Cluster::start(w);
    let kafka = crate::aws::kafka();
    let shared = cluster.world.clone();
    let lifter = std::thread::spawn(move || {
        let evictions = |w: &KubeWorld| {
            w.requests()
                .iter()
                .filter(|r| r.starts_with("POST ") && r.contains("/eviction"))
                .count()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while evictions(&shared.lock().unwrap()) < 2 {
            assert!(std::time::Instant::now() < deadline, "no second eviction");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(2000));
        let mut w = shared.lock().unwrap();
        let blocked_retries = evictions(&w) - 1;
        w.add_pod(
            "apps",
            "ingest-new",
            "other",
            &[("app", "ingest")],
            Some("ReplicaSet"),
        );
        blocked_retries
    });
    let nodes = "{provider: kubernetes, labels: {karpenter.sh/nodepool: ingest}, \
                 terminate: drain, drain_timeout: 20s}";
    let plan = cluster.plan_with(&kafka, nodes, "[2]");
    let out_dir = cluster.out_dir();
    let out = cluster.spotdrill(&["run", &plan, "--yes", "--out", out_dir.to_str().unwrap()]);
    let retries = lifter.join().unwrap();
    out.expect_code(0);
    assert!(
        retries >= 2,
        "the blocked eviction was retried {retries} times"
    );
    assert_eq!(cluster.world().node_names().len(), 7, "two nodes drained");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let findings: Vec<&str> = report["targets"][0]["steps"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {report}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let blocked: Vec<&&str> = findings
        .iter()
        .filter(|f| f.starts_with("eviction of apps/ingest-"))
        .collect();
    assert_eq!(blocked.len(), 1, "{findings:?}");
    let secs: f64 = blocked[0]
        .split(" was blocked ")
        .nth(1)
        .and_then(|r| r.strip_suffix("s by PodDisruptionBudget ingest"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not the finding's shape: {}", blocked[0]));
    assert!(
        (2.0..=4.0).contains(&secs),
        "blocked {secs}s, the budget held ~2s"
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains(*blocked[0]), "not in report.md:\n{md}");
    let kinds: Vec<String> = cluster
        .journal()
        .iter()
        .filter(|e| e["event"] == "provider_event")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("eviction_blocked"), 1, "{kinds:?}");
    assert_eq!(count("eviction_block_ended"), 1, "{kinds:?}");
}

/// `ladder: [{market: largest}]` on Kubernetes: the market comes from the nodes' instance-type
/// and zone labels; the three m5.large nodes of us-east-1a are drained, the two c5.large nodes
/// of us-east-1b and every node the selector does not return stay.
#[test]
fn kubernetes_market_rung_drains_the_largest_market_whole() {
    let mut w = world();
    for (i, (name, ty, zone)) in [
        ("m1", "m5.large", "us-east-1a"),
        ("m2", "m5.large", "us-east-1a"),
        ("m3", "m5.large", "us-east-1a"),
        ("c1", "c5.large", "us-east-1b"),
        ("c2", "c5.large", "us-east-1b"),
    ]
    .into_iter()
    .enumerate()
    {
        let labels = [
            SPOT,
            POOL,
            ("topology.kubernetes.io/zone", zone),
            ("node.kubernetes.io/instance-type", ty),
        ];
        w.add_node(&NodeSpec {
            provider_id: Some(&format!("aws:///{zone}/i-0001{i}")),
            ..ready(name, &labels)
        });
    }
    let cluster = Cluster::start(w);
    let kafka = crate::aws::kafka();
    let out = cluster.run(&kafka, "[{market: largest}]");
    out.expect_code(0);
    let left = cluster.world().node_names();
    for gone in ["m1", "m2", "m3"] {
        assert!(!left.iter().any(|l| l == gone), "{gone} stayed: {left:?}");
    }
    for keep in ["c1", "c2", "w1", "w2", "w3", "w4", "cp", "od", "other"] {
        assert!(left.iter().any(|l| l == keep), "{keep} was touched");
    }
    let journal = cluster.journal();
    let started: Vec<&Value> = journal
        .iter()
        .filter(|e| e["event"] == "step_started")
        .collect();
    assert_eq!(started[0]["terminations"], 3, "{}", out.stderr);
    assert_eq!(started[0]["market"]["instance_type"], "m5.large");
    assert_eq!(started[0]["market"]["zone"], "us-east-1a");
    assert!(
        out.stderr
            .contains("the largest market (m5.large/us-east-1a: 3 nodes)"),
        "{}",
        out.stderr
    );
}
