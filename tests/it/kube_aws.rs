//! Kubernetes nodes backed by EC2 instances, end to end: the lab's Kubernetes API serves Node
//! objects whose `spec.providerID` names instances created in moto, and `spotdrill run` reaches
//! both (KUBECONFIG and AWS_ENDPOINT_URL) exactly as it would reach EKS. Node labels claim spot
//! for every node; EC2 has the last word at call time: an on-demand instance and one stopped
//! after `plan` chose it are refused, and only the other chosen instances are terminated.

use std::collections::BTreeMap;

use serde_json::Value;
use spotdrill::lab::kube_api::{KubeWorld, NodeSpec};

use crate::kube::{Cluster, POOL, SPOT, mutations, ready};
use crate::support::moto::Moto;
use crate::util::{Cmd, Outcome};

/// The instances behind the nodes `n1`…`n4` (and one spot instance no node names).
struct Backing {
    /// Behind n1 and n2: running spot instances.
    spot: Vec<String>,
    /// Behind n3: on-demand, although the node's label says spot.
    on_demand: String,
    /// Behind n4: spot, stopped by the test after `plan`.
    stopped: String,
    /// Behind no node.
    stray: String,
}

impl Backing {
    fn launch(moto: &Moto) -> Backing {
        let tags = [("cluster", "eks-test")];
        let spot = moto.launch(3, "us-east-1a", "m5.large", true, &tags);
        let on_demand = moto.launch(1, "us-east-1a", "m5.large", false, &tags);
        let stray = moto.launch(1, "us-east-1a", "m5.large", true, &tags);
        Backing {
            spot: spot[..2].to_vec(),
            stopped: spot[2].clone(),
            on_demand: on_demand[0].clone(),
            stray: stray[0].clone(),
        }
    }

    /// Node name → instance id, n1…n4.
    fn by_node(&self) -> Vec<(String, String)> {
        let ids = [&self.spot[0], &self.spot[1], &self.on_demand, &self.stopped];
        ids.iter()
            .enumerate()
            .map(|(i, id)| (format!("n{}", i + 1), (*id).clone()))
            .collect()
    }
}

/// n1…n4 (all labelled spot, each with a ReplicaSet pod) backed by `b`, and `plain`, a spot node
/// of the nodepool with no AWS provider ID (a non-AWS node: drained, never an instance).
fn world(b: &Backing) -> KubeWorld {
    let mut w = KubeWorld::default();
    let labels = [SPOT, POOL, ("topology.kubernetes.io/zone", "us-east-1a")];
    for (i, (name, id)) in b.by_node().iter().enumerate() {
        let provider_id = format!("aws:///us-east-1a/{id}");
        w.add_node(&NodeSpec {
            provider_id: Some(&provider_id),
            ..ready(name, &labels)
        });
        let pod = format!("ingest-{}", i + 1);
        w.add_pod("apps", &pod, name, &[("app", "ingest")], Some("ReplicaSet"));
    }
    w.add_node(&ready("plain", &labels));
    w.add_pod(
        "apps",
        "ingest-plain",
        "plain",
        &[("app", "ingest")],
        Some("ReplicaSet"),
    );
    w
}

fn aws_cmd(cluster: &Cluster, moto: &Moto, args: &[&str]) -> Cmd {
    cluster
        .cmd(args)
        .envs(moto.env())
        .env("SPOTDRILL_AWS_POLL_MS", "200")
        .env_remove("AWS_PROFILE")
}

/// `plan` (which must offer n1…n4), then the n4 instance stopped, then `run`.
fn plan_stop_run(
    cluster: &Cluster,
    moto: &Moto,
    b: &Backing,
    nodes: &str,
    ladder: &str,
) -> Outcome {
    let kafka = crate::aws::kafka();
    let plan = cluster.plan_with(&kafka, nodes, ladder);
    let preview = aws_cmd(cluster, moto, &["plan", &plan, "--json"]).run();
    preview.expect_code(0);
    let v: Value = serde_json::from_str(&preview.stdout).unwrap();
    let offered: Vec<&str> = v["targets"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for n in ["n1", "n2", "n3", "n4"] {
        assert!(offered.contains(&n), "{n} not offered: {offered:?}");
    }
    let perms = v["targets"][0]["permissions"].as_str().unwrap();
    assert!(perms.contains("DryRunOperation"), "{perms}");
    if nodes.contains("terminate: drain") {
        let note = v["targets"][0]["note"].to_string();
        assert!(
            note.contains("then TerminateInstances"),
            "{}",
            preview.stdout
        );
    }
    moto.py(&format!(
        "ec2.stop_instances(InstanceIds=['{}'])\nprint(json.dumps(1))",
        b.stopped
    ));
    let out = cluster.out_dir();
    aws_cmd(
        cluster,
        moto,
        &["run", &plan, "--yes", "--out", out.to_str().unwrap()],
    )
    .run()
}

/// Outcome and detail per node, from the journal.
fn outcomes(cluster: &Cluster) -> BTreeMap<String, (String, String)> {
    cluster
        .journal()
        .iter()
        .filter(|e| e["event"] == "outcome")
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            (s("node"), (s("outcome"), s("detail")))
        })
        .collect()
}

/// Every node of an outcome was journaled as an intent first.
fn intents_first(cluster: &Cluster) {
    let j = cluster.journal();
    for (i, o) in j
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "outcome")
    {
        let node = &o["node"];
        let intended = j[..i].iter().any(|e| {
            e["event"] == "intent"
                && e["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| &n["id"] == node)
        });
        assert!(intended, "no intent before the outcome of {node}");
    }
}

/// In moto: the spot instances behind n1 and n2 are terminated (or going), the on-demand,
/// stopped and stray ones are as they were.
fn assert_only_the_spot_instances_terminated(moto: &Moto, b: &Backing) {
    let states = moto.instances();
    let state = |id: &String| states[id].0.as_str();
    for id in &b.spot {
        assert!(
            matches!(state(id), "terminated" | "shutting-down"),
            "{id}: {states:?}"
        );
    }
    assert_eq!(state(&b.on_demand), "running");
    assert_eq!(state(&b.stopped), "stopped");
    assert_eq!(state(&b.stray), "running");
}

/// The refusals EC2's answer at call time calls for: n3 on-demand, n4 stopped.
fn assert_refused(o: &BTreeMap<String, (String, String)>, b: &Backing) {
    let (n3, why3) = &o["n3"];
    assert_eq!(n3, "refused", "{o:?}");
    assert!(
        why3.contains(&b.on_demand) && why3.contains("on-demand"),
        "{why3}"
    );
    let (n4, why4) = &o["n4"];
    assert_eq!(n4, "refused", "{o:?}");
    assert!(
        why4.contains(&b.stopped) && why4.contains("not running (stopped)"),
        "{why4}"
    );
}

/// `terminate: aws-ec2`, ladder [4]: all four AWS nodes are chosen; TerminateInstances reaches
/// exactly the two running spot instances behind n1 and n2. n3's instance is on-demand and n4's
/// was stopped after `plan`: both refused with EC2's reason. The Kubernetes API is not written.
#[test]
fn kubernetes_aws_ec2_terminates_only_running_spot_instances_behind_the_chosen_nodes() {
    let moto = Moto::start();
    let b = Backing::launch(&moto);
    let cluster = Cluster::start(world(&b));
    let nodes = "{provider: kubernetes, labels: {karpenter.sh/nodepool: ingest}, \
                 terminate: aws-ec2, region: us-east-1}";

    let out = plan_stop_run(&cluster, &moto, &b, nodes, "[4]");
    let o = outcomes(&cluster);
    assert_eq!(o.len(), 4, "{o:?}\n{}", out.stderr);
    for n in ["n1", "n2"] {
        assert_eq!(o[n].0, "terminated", "{o:?}");
    }
    assert_refused(&o, &b);
    intents_first(&cluster);
    assert_only_the_spot_instances_terminated(&moto, &b);
    assert_eq!(mutations(&cluster.world()), Vec::<String>::new());
}

/// `terminate: drain` with a region, ladder [5]: n1 and n2 are drained, their Nodes deleted and
/// then their instances terminated; `plain` (no AWS provider ID) is drained as on any cluster;
/// n3 (on-demand instance) and n4 (stopped instance) are refused before the cordon: not
/// cordoned, not evicted, still there.
#[test]
fn kubernetes_drain_on_aws_terminates_the_instance_after_deleting_the_node() {
    let moto = Moto::start();
    let b = Backing::launch(&moto);
    let cluster = Cluster::start(world(&b));
    let nodes = "{provider: kubernetes, labels: {karpenter.sh/nodepool: ingest}, \
                 terminate: drain, drain_timeout: 2s, region: us-east-1}";

    let out = plan_stop_run(&cluster, &moto, &b, nodes, "[5]");
    let o = outcomes(&cluster);
    assert_eq!(o.len(), 5, "{o:?}\n{}", out.stderr);
    for (n, id) in [("n1", &b.spot[0]), ("n2", &b.spot[1])] {
        let (outcome, detail) = &o[n];
        assert_eq!(outcome, "terminated", "{o:?}");
        assert!(
            detail.contains("Node deleted") && detail.contains(id.as_str()),
            "{detail}"
        );
    }
    assert_eq!(o["plain"].0, "terminated", "{o:?}");
    assert_refused(&o, &b);
    intents_first(&cluster);

    assert_only_the_spot_instances_terminated(&moto, &b);

    let w = cluster.world();
    assert_eq!(w.node_names(), ["n3", "n4"]);
    let m = mutations(&w);
    for n in ["n3", "n4"] {
        assert!(
            !m.iter().any(|r| r.contains(&format!("/nodes/{n}?"))),
            "{n} touched: {m:?}"
        );
        assert_eq!(w.node(n).unwrap()["spec"]["unschedulable"], false);
    }
    // Per drained node: cordon, one eviction, delete.
    assert_eq!(m.len(), 9, "{m:?}");
}

/// `terminate: aws-fis`, ladder [4]: one FIS experiment whose template names exactly the two
/// running spot instances behind n1 and n2 (by ARN), with the plan's notice; n3 (on-demand) and
/// n4 (stopped after `plan`) are refused before any FIS call. moto's FIS runs the experiment but
/// changes nothing, so every instance is still as it was; the template is deleted after.
#[test]
fn kubernetes_aws_fis_interrupts_exactly_the_running_spot_instances_behind_the_chosen_nodes() {
    let moto = Moto::start();
    let b = Backing::launch(&moto);
    let cluster = Cluster::start(world(&b));
    let nodes = "{provider: kubernetes, labels: {karpenter.sh/nodepool: ingest}, \
                 terminate: aws-fis, region: us-east-1, notice: 3m, \
                 role_arn: \"arn:aws:iam::123456789012:role/fis\"}";

    let out = plan_stop_run(&cluster, &moto, &b, nodes, "[4]");
    let o = outcomes(&cluster);
    assert_eq!(o.len(), 4, "{o:?}\n{}", out.stderr);
    for (n, id) in [("n1", &b.spot[0]), ("n2", &b.spot[1])] {
        let (outcome, detail) = &o[n];
        assert_eq!(outcome, "terminated", "{o:?}");
        assert!(
            detail.contains(id.as_str()) && detail.contains("FIS experiment"),
            "{detail}"
        );
    }
    assert_refused(&o, &b);
    intents_first(&cluster);

    let v = moto.py(
        "t = fis.list_experiment_templates()['experimentTemplates']\n\
         e = fis.list_experiments()['experiments']\n\
         x = fis.get_experiment(id=e[0]['id'])['experiment']\n\
         print(json.dumps([len(t), len(e), x['state']['status'], \
         sorted(a for v in x['targets'].values() for a in v['resourceArns']), \
         [v['resourceType'] for v in x['targets'].values()], \
         [(a['actionId'], a['parameters']['durationBeforeInterruption']) \
          for a in x['actions'].values()]]))",
    );
    assert_eq!(v[0], 0, "the template is deleted: {v}");
    assert_eq!(v[1], 1, "one experiment: {v}");
    assert_eq!(v[2], "completed");
    let mut wanted: Vec<String> = b
        .spot
        .iter()
        .map(|id| format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"))
        .collect();
    wanted.sort();
    assert_eq!(v[3], serde_json::json!(wanted));
    assert_eq!(v[4], serde_json::json!(["aws:ec2:spot-instance"]));
    assert_eq!(
        v[5],
        serde_json::json!([["aws:ec2:send-spot-instance-interruptions", "PT3M"]])
    );
    let events: Vec<String> = cluster
        .journal()
        .iter()
        .filter(|e| e["event"] == "provider_event")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    for kind in [
        "fis_template_created",
        "fis_experiment_started",
        "fis_template_deleted",
    ] {
        assert!(events.iter().any(|e| e == kind), "no {kind}: {events:?}");
    }

    let states = moto.instances();
    for id in b.spot.iter().chain([&b.on_demand, &b.stray]) {
        assert_eq!(states[id].0, "running", "{id}: moto's FIS changes nothing");
    }
    assert_eq!(states[&b.stopped].0, "stopped");
    assert_eq!(mutations(&cluster.world()), Vec::<String>::new());
}
