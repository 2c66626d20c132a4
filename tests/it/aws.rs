//! The AWS node providers end to end against moto_server (real HTTP on a free loopback port):
//! `spotdrill plan` and `spotdrill run` reach it through `AWS_ENDPOINT_URL`; boto3 seeds the
//! instances and checks afterwards what was terminated. Lag is observed on the in-process mock
//! Kafka cluster (flat, so verdicts pass): the point here is what gets terminated.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;

use crate::support::kafka::Kafka;
use crate::support::moto::Moto;
use crate::util::{Cmd, Outcome, plan_fixture};

const TAGS: &[(&str, &str)] = &[("cluster", "storm-test"), ("role", "supervisor")];

/// A Kafka with one committed application group, so the baseline passes (lag stays flat).
pub(crate) fn kafka() -> Kafka {
    let kafka = Kafka::mock();
    kafka.create_topic("telemetry", 1, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    kafka.produce("telemetry", 0, &[now - 3000, now - 2000, now - 1000, now]);
    kafka.commit("coverage", "telemetry", &[(0, 3)]);
    kafka
}

/// A plan with one target whose `nodes:` is `nodes` (a YAML flow mapping):
/// tests/fixtures/plans/aws-flat.yaml.
pub(crate) fn plan(
    kafka: &Kafka,
    nodes: &str,
    ladder: &str,
    selection: &str,
    extra: &str,
) -> String {
    plan_fixture(
        "aws-flat.yaml",
        &[
            ("name", &"aws test"),
            ("brokers", &kafka.bootstrap),
            ("nodes", &nodes),
            ("ladder", &ladder),
            ("selection", &selection),
            ("extra", &extra),
        ],
    )
}

pub(crate) fn ec2_nodes() -> String {
    "{provider: aws-ec2, region: us-east-1, tags: {cluster: storm-test, role: supervisor}}".into()
}

/// `spotdrill ARGS…` with the environment that reaches `endpoint`.
pub(crate) fn spotdrill_aws(moto: &Moto, endpoint: &str, args: &[&str], dir: &Path) -> Outcome {
    Cmd::new(args)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .locks(dir.join("locks"))
        .env("SPOTDRILL_EC2_PAGE_SIZE", "100")
        .env("SPOTDRILL_AWS_POLL_MS", "200")
        .env_remove("AWS_PROFILE")
        .run()
}

pub(crate) fn write_plan(dir: &Path, text: &str) -> String {
    let p = dir.join("plan.yaml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn preflight(moto: &Moto, text: &str) -> (Outcome, Value) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), text);
    let out = spotdrill_aws(moto, &moto.endpoint, &["plan", &plan, "--json"], dir.path());
    let v = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn run(moto: &Moto, endpoint: &str, text: &str) -> (Outcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), text);
    let out_dir = dir.path().join("run");
    let out = spotdrill_aws(
        moto,
        endpoint,
        &["run", &plan, "--yes", "--out", out_dir.to_str().unwrap()],
        dir.path(),
    );
    (out, dir)
}

fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("run/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn entries<'a>(journal: &'a [Value], kind: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["event"] == kind).collect()
}

/// 20 tagged spot instances (2 zones × 2 types × 5), 5 tagged on-demand, 3 spot of another
/// cluster. Returns (spot ids, on-demand ids).
pub(crate) fn seed_storm(moto: &Moto) -> (Vec<String>, Vec<String>) {
    let mut spot = Vec::new();
    for zone in ["us-east-1a", "us-east-1b"] {
        for ty in ["c5.xlarge", "m5.large"] {
            spot.extend(moto.launch(5, zone, ty, true, TAGS));
        }
    }
    let on_demand = moto.launch(5, "us-east-1a", "c5.xlarge", false, TAGS);
    moto.launch(3, "us-east-1a", "c5.xlarge", true, &[("cluster", "other")]);
    (spot, on_demand)
}

fn terminated(moto: &Moto) -> Vec<String> {
    moto.instances()
        .into_iter()
        .filter(|(_, (state, _))| state == "terminated" || state == "shutting-down")
        .map(|(id, _)| id)
        .collect()
}

/// Ladder [1, 3]: exactly 4 instances go, all tag-matched spot, none on-demand; the preflight
/// showed the 20 eligible, the 5 on-demand excluded with why, and the DryRun check allowed.
#[test]
fn aws_ec2_ladder_terminates_exactly_four_tag_matched_spot_instances() {
    let moto = Moto::start();
    let kafka = kafka();
    let (spot, on_demand) = seed_storm(&moto);
    let text = plan(&kafka, &ec2_nodes(), "[1, 3]", "random", "");

    let (out, v) = preflight(&moto, &text);
    out.expect_code(0);
    let t = &v["targets"][0];
    assert_eq!(t["nodes"].as_array().unwrap().len(), 20, "{}", out.stdout);
    assert_eq!(t["excluded"].as_array().unwrap().len(), 5);
    assert!(
        t["excluded"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("on-demand")
    );
    assert!(t["permissions"].as_str().unwrap().starts_with("allowed"));
    assert_eq!(t["nodes"][0]["tags"]["cluster"], "storm-test");
    assert!(t["nodes"][0]["private_ip"].is_string());
    assert_eq!(
        t["steps"][1]["would_terminate"].as_array().unwrap().len(),
        3
    );

    let (out, dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let gone = terminated(&moto);
    assert_eq!(gone.len(), 4, "{gone:?}\n{}", out.stderr);
    assert!(gone.iter().all(|id| spot.contains(id)), "{gone:?}");
    assert!(!gone.iter().any(|id| on_demand.contains(id)));
    let j = journal(dir.path());
    let outcomes = entries(&j, "outcome");
    assert_eq!(outcomes.len(), 4);
    assert!(
        outcomes.iter().all(|o| o["outcome"] == "terminated"),
        "{outcomes:?}"
    );
    // Every termination was journaled as an intent first.
    let intended: Vec<String> = entries(&j, "intent")
        .iter()
        .flat_map(|e| e["nodes"].as_array().unwrap().iter())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = intended.clone();
    sorted.sort();
    assert_eq!(sorted, gone);
}

/// spread: the 3 picks come from 3 different markets; market: all from one (preflight and run
/// make the same choice from the same nodes).
#[test]
fn aws_ec2_spread_and_market_selection() {
    let moto = Moto::start();
    let kafka = kafka();
    let (spot, _) = seed_storm(&moto);
    let markets = moto.py(
        "out = {}\n\
         for r in ec2.describe_instances()['Reservations']:\n\
         \x20   for i in r['Instances']:\n\
         \x20       out[i['InstanceId']] = i['Placement']['AvailabilityZone'] + '/' + i['InstanceType']\n\
         print(json.dumps(out))",
    );
    let market_of = |id: &Value| markets[id.as_str().unwrap()].as_str().unwrap().to_owned();
    for (selection, distinct) in [("spread", 3), ("market", 1)] {
        let text = plan(&kafka, &ec2_nodes(), "[3]", selection, "");
        let (out, v) = preflight(&moto, &text);
        out.expect_code(0);
        let picks = v["targets"][0]["steps"][0]["would_terminate"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(picks.len(), 3);
        let mut m: Vec<String> = picks.iter().map(market_of).collect();
        m.sort();
        m.dedup();
        assert_eq!(m.len(), distinct, "{selection}: {m:?}");
        assert!(
            picks
                .iter()
                .all(|p| spot.contains(&p.as_str().unwrap().to_owned()))
        );
    }
    // The run terminates what the preflight showed for market.
    let text = plan(&kafka, &ec2_nodes(), "[3]", "market", "");
    let (_, v) = preflight(&moto, &text);
    let mut shown: Vec<String> = v["targets"][0]["steps"][0]["would_terminate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    shown.sort();
    let (out, _dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    assert_eq!(terminated(&moto), shown);
}

/// An Auto Scaling group of 4 spot instances (RunInstances spot + AttachInstances, as moto
/// needs); returns their ids.
pub(crate) fn seed_group(moto: &Moto, name: &str) -> Vec<String> {
    moto.py(&format!(
        "asg.create_launch_configuration(LaunchConfigurationName='{name}-lc', ImageId='ami-12c6146b', InstanceType='c5.xlarge')\n\
         asg.create_auto_scaling_group(AutoScalingGroupName='{name}', LaunchConfigurationName='{name}-lc', MinSize=0, MaxSize=10, DesiredCapacity=0, AvailabilityZones=['us-east-1a'])\n\
         print('null')"
    ));
    let ids = moto.launch(4, "us-east-1a", "c5.xlarge", true, &[("group", name)]);
    let list: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
    moto.py(&format!(
        "asg.attach_instances(AutoScalingGroupName='{name}', InstanceIds=[{}])\nprint('null')",
        list.join(", ")
    ));
    ids
}

fn group(moto: &Moto, name: &str) -> (i64, Vec<String>) {
    let v = moto.py(&format!(
        "g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=['{name}'])['AutoScalingGroups'][0]\n\
         print(json.dumps([g['DesiredCapacity'], [i['InstanceId'] for i in g['Instances'] if i['LifecycleState'] == 'InService']]))"
    ));
    (
        v[0].as_i64().unwrap(),
        serde_json::from_value(v[1].clone()).unwrap(),
    )
}

/// replace: true → the group launches a replacement, desired capacity stays, and the report
/// records capacity_restored_s; replace: false → desired capacity drops by the terminations.
#[test]
fn aws_asg_replace_true_and_false() {
    let moto = Moto::start();
    let kafka = kafka();
    let members = seed_group(&moto, "storm-replace");
    let text = plan(
        &kafka,
        "{provider: aws-asg, region: us-east-1, group: storm-replace, replace: true}",
        "[1]",
        "random",
        "",
    );
    let (out, dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let (desired, in_service) = group(&moto, "storm-replace");
    assert_eq!(desired, 4);
    assert_eq!(in_service.len(), 4, "{in_service:?}");
    let gone: Vec<&String> = members.iter().filter(|m| !in_service.contains(m)).collect();
    assert_eq!(gone.len(), 1, "one member replaced: {in_service:?}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    let step = &report["targets"][0]["steps"][0];
    assert!(step["capacity_restored_s"].is_number(), "{step}");

    let members = seed_group(&moto, "storm-shrink");
    let text = plan(
        &kafka,
        "{provider: aws-asg, region: us-east-1, group: storm-shrink, replace: false}",
        "[1, 2]",
        "random",
        "    cumulative: true\n",
    );
    let (out, _dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let (desired, in_service) = group(&moto, "storm-shrink");
    assert_eq!(desired, 1);
    assert_eq!(in_service.len(), 1);
    assert!(in_service.iter().all(|i| members.contains(i)));
}

/// 12 targets → one template with 3 actions of at most 5 instances; the experiment is started
/// and awaited; the template is deleted after.
#[test]
fn aws_fis_batches_twelve_instances_into_three_actions() {
    let moto = Moto::start();
    let kafka = kafka();
    let spot = moto.launch(12, "us-east-1a", "c5.xlarge", true, TAGS);
    let text = plan(
        &kafka,
        "{provider: aws-fis, region: us-east-1, tags: {cluster: storm-test}, notice: 2m, \
         role_arn: \"arn:aws:iam::123456789012:role/fis\"}",
        "[12]",
        "random",
        "",
    );
    let (out, dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let j = journal(dir.path());
    let events: Vec<String> = entries(&j, "provider_event")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("fis_template_created") && e.contains("3 action(s)")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("fis_experiment_started"))
    );
    assert!(
        events.iter().any(|e| e.contains(": completed")),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| e.starts_with("fis_template_deleted")));
    let v = moto.py(
        "t = fis.list_experiment_templates()['experimentTemplates']\n\
         e = fis.list_experiments()['experiments']\n\
         x = fis.get_experiment(id=e[0]['id'])['experiment']\n\
         print(json.dumps([len(t), len(e), x['state']['status'], \
         sorted(len(v['resourceArns']) for v in x['targets'].values()), \
         sorted(a['parameters']['durationBeforeInterruption'] for a in x['actions'].values())]))",
    );
    assert_eq!(v[0], 0, "templates deleted");
    assert_eq!(v[1], 1);
    assert_eq!(v[2], "completed");
    assert_eq!(v[3], serde_json::json!([2, 5, 5]));
    assert_eq!(v[4], serde_json::json!(["PT2M", "PT2M", "PT2M"]));
    let outcomes = entries(&j, "outcome");
    assert_eq!(outcomes.len(), 12);
    assert!(
        outcomes
            .iter()
            .all(|o| spot.contains(&o["node"].as_str().unwrap().to_owned()))
    );
}

/// `keep_templates: true` leaves the experiment template in place (for the FIS console's history).
#[test]
fn aws_fis_keeps_its_template_when_asked() {
    let moto = Moto::start();
    let kafka = kafka();
    moto.launch(3, "us-east-1a", "c5.xlarge", true, TAGS);
    let text = plan(
        &kafka,
        "{provider: aws-fis, region: us-east-1, tags: {cluster: storm-test}, notice: 2m, \
         role_arn: \"arn:aws:iam::123456789012:role/fis\", keep_templates: true}",
        "[2]",
        "random",
        "",
    );
    let (out, _dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let v =
        moto.py("print(json.dumps([len(fis.list_experiment_templates()['experimentTemplates'])]))");
    assert_eq!(v[0], 1, "the template is kept");
}

/// A proxy in front of moto that answers every TerminateInstances with UnauthorizedOperation
/// (DryRun or not) and passes everything else through.
fn deny_terminate_proxy(upstream: String) -> String {
    deny_proxy(upstream, |_, body| {
        body.contains("Action=TerminateInstances").then(|| {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>\
                <Code>UnauthorizedOperation</Code><Message>You are not authorized to perform \
                this operation.</Message></Error></Errors><RequestID>x</RequestID></Response>";
            ("text/xml", xml.to_owned())
        })
    })
}

/// What a denying proxy answers a request (its head lines, its body) with, when it does: 403
/// with this content type and body; `None` passes the request through to moto.
pub(crate) type Deny = fn(&[String], &str) -> Option<(&'static str, String)>;

/// A proxy in front of moto that answers the requests `deny` picks with 403 and passes
/// everything else through.
pub(crate) fn deny_proxy(upstream: String, deny: Deny) -> String {
    crate::support::http::serve_each(move |client| {
        let _ = serve(client, &upstream, deny);
    })
}

/// One request's head lines (without `Connection:` and the blank line) and body.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut head = Vec::new();
    let mut length = 0_usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        if !line.to_ascii_lowercase().starts_with("connection:") && !end {
            head.push(line);
        }
        if end {
            break;
        }
    }
    let mut body = vec![0_u8; length];
    reader.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn serve(client: TcpStream, upstream: &str, deny: Deny) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some((head, body)) = read_request(&mut reader)? {
        if let Some((content_type, answer)) = deny(&head, &String::from_utf8_lossy(&body)) {
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )?;
            continue;
        }
        let host = upstream.trim_start_matches("http://");
        let mut up = TcpStream::connect(host)?;
        for line in &head {
            up.write_all(line.as_bytes())?;
        }
        up.write_all(b"Connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        // Keep the client's connection: drop the upstream's Connection header.
        let text = String::from_utf8_lossy(&response).into_owned();
        let (rhead, rbody) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut out = String::new();
        let mut has_length = false;
        for line in rhead.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") || lower.starts_with("transfer-encoding:") {
                continue;
            }
            has_length |= lower.starts_with("content-length:");
            out.push_str(line);
            out.push_str("\r\n");
        }
        if !has_length {
            out.push_str(&format!("Content-Length: {}\r\n", rbody.len()));
        }
        out.push_str("\r\n");
        out.push_str(rbody);
        client.write_all(out.as_bytes())?;
    }
    Ok(())
}

/// DryRun denied: the preflight names the missing permission (exit 4); the run stops before
/// anything is terminated (exit 4).
#[test]
fn aws_dry_run_denied_exits_4_and_terminates_nothing() {
    let moto = Moto::start();
    let kafka = kafka();
    seed_storm(&moto);
    let proxy = deny_terminate_proxy(moto.endpoint.clone());
    let text = plan(&kafka, &ec2_nodes(), "[1, 3]", "random", "");
    let dir = tempfile::tempdir().unwrap();
    let path = write_plan(dir.path(), &text);
    let out = spotdrill_aws(&moto, &proxy, &["plan", &path], dir.path());
    out.expect_code(4);
    assert!(
        out.stdout.contains("ec2:TerminateInstances")
            || out.stderr.contains("ec2:TerminateInstances"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let (out, dir) = run(&moto, &proxy, &text);
    out.expect_code(4);
    assert!(
        out.stderr.contains("ec2:TerminateInstances"),
        "{}",
        out.stderr
    );
    assert!(terminated(&moto).is_empty());
    assert!(entries(&journal(dir.path()), "intent").is_empty());
}

/// Discovery of 1000 instances across pages (100 per page here). moto takes ~2.6 s a page alone
/// and many times that beside seven other tests on two cores, past the 30 s attempt timeout: the
/// test script runs it after the rest of the suite, alone (`QUIET` in scripts/test).
#[test]
fn aws_discovery_of_a_thousand_instances_across_pages() {
    let moto = Moto::start();
    let kafka = kafka();
    for zone in ["us-east-1a", "us-east-1b"] {
        moto.launch(500, zone, "c5.xlarge", true, TAGS);
    }
    let text = plan(&kafka, &ec2_nodes(), "[1, 3]", "spread", "");
    let (out, v) = preflight(&moto, &text);
    out.expect_code(0);
    assert_eq!(v["targets"][0]["nodes"].as_array().unwrap().len(), 1000);
}

/// The largest market c5.2xlarge/us-east-1a holds 4 tagged spot instances; the others hold 2
/// and 1. The same market also holds 3 tagged on-demand instances and 3 spot instances of
/// another cluster, neither of which the selector returns. Returns (largest, the other spot).
fn seed_markets(moto: &Moto) -> (Vec<String>, Vec<String>) {
    let largest = moto.launch(4, "us-east-1a", "c5.2xlarge", true, TAGS);
    let mut others = moto.launch(2, "us-east-1b", "m5.large", true, TAGS);
    others.extend(moto.launch(1, "us-east-1b", "c5.2xlarge", true, TAGS));
    moto.launch(3, "us-east-1a", "c5.2xlarge", false, TAGS);
    moto.launch(3, "us-east-1a", "c5.2xlarge", true, &[("cluster", "other")]);
    (largest, others)
}

fn ids(nodes: &Value) -> Vec<String> {
    let mut v: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().or(n.as_str()).unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// `ladder: [1, {market: largest}]` on aws-ec2: step 2 resolves, from the nodes discovered
/// then, to every node left in c5.2xlarge/us-east-1a and takes them at once; nothing outside
/// that market (on-demand, another cluster's, other markets) is terminated beyond step 1's one.
/// The journal says the count and the market; report.json, report.md and the console name the
/// step after it.
#[test]
fn aws_ec2_market_rung_takes_the_largest_market_whole() {
    let moto = Moto::start();
    let kafka = kafka();
    let (largest, _) = seed_markets(&moto);
    // What the market holds once `first` is gone (aws-ec2 without health endpoints: each step
    // chooses among the nodes the steps before left).
    let rest = |first: &[String]| -> Vec<String> {
        let mut left: Vec<String> = largest
            .iter()
            .filter(|id| !first.contains(id))
            .cloned()
            .collect();
        left.sort();
        left
    };
    let text = plan(&kafka, &ec2_nodes(), "[1, {market: largest}]", "random", "");
    let (out, v) = preflight(&moto, &text);
    out.expect_code(0);
    let steps = &v["targets"][0]["steps"];
    let shown = rest(&ids(&steps[0]["would_terminate"]));
    assert_eq!(ids(&steps[1]["would_terminate"]), shown, "{}", out.stdout);
    assert_eq!(steps[1]["market"]["instance_type"], "c5.2xlarge");
    assert_eq!(steps[1]["terminations"], shown.len());

    let (out, dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(0);
    let j = journal(dir.path());
    let intents = entries(&j, "intent");
    assert_eq!(intents.len(), 2, "{}", out.stderr);
    let first = ids(&intents[0]["nodes"]);
    let left = rest(&first);
    assert_eq!(
        ids(&intents[1]["nodes"]),
        left,
        "the market's remaining nodes, all of them"
    );
    let started = entries(&j, "step_started");
    assert_eq!(started[1]["terminations"], left.len());
    assert_eq!(started[1]["market"]["instance_type"], "c5.2xlarge");
    assert_eq!(started[1]["market"]["zone"], "us-east-1a");
    let mut expected: Vec<String> = first.iter().chain(&left).cloned().collect();
    expected.sort();
    assert_eq!(
        terminated(&moto),
        expected,
        "nothing outside the selection and the market"
    );

    let label = format!(
        "the largest market (c5.2xlarge/us-east-1a: {} nodes)",
        left.len()
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    let step = &report["targets"][0]["steps"][1];
    assert_eq!(step["terminations"], left.len());
    assert_eq!(step["market"]["label"], label.as_str());
    assert_eq!(step["verdict"], "pass");
    // The same through the report's strict, independent schema.
    let strict = crate::report::strict(&dir.path().join("run"));
    let s = &strict.targets[0].steps[1];
    let m = s.market.as_ref().unwrap();
    assert_eq!(
        (m.choice.as_str(), m.label.as_str()),
        ("largest", label.as_str())
    );
    assert_eq!(m.instance_type.as_deref(), Some("c5.2xlarge"));
    assert_eq!(m.zone.as_deref(), Some("us-east-1a"));
    assert_eq!(s.terminations as usize, left.len());
    assert!(strict.targets[0].steps[0].market.is_none());
    let md = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(md.contains(&label), "{md}");
    assert!(out.stderr.contains(&label), "{}", out.stderr);
}

/// A market rung is guarded like any step: with max_terminations 3 under a market of 4, the
/// step is refused with the reason (exit 3), journaled with the count and the market it
/// resolved to, and nothing is terminated.
#[test]
fn aws_ec2_market_rung_over_max_terminations_is_refused() {
    let moto = Moto::start();
    let kafka = kafka();
    seed_markets(&moto);
    let extra = "    guards: {max_terminations: 3}\n";
    let text = plan(&kafka, &ec2_nodes(), "[{market: largest}]", "random", extra);
    let (out, dir) = run(&moto, &moto.endpoint, &text);
    out.expect_code(3);
    assert!(terminated(&moto).is_empty());
    let j = journal(dir.path());
    assert!(entries(&j, "intent").is_empty());
    let breach = entries(&j, "guard_breached");
    assert_eq!(breach[0]["guard"], "max_terminations", "{}", out.stderr);
    let skipped = entries(&j, "step_skipped");
    assert_eq!(skipped[0]["terminations"], 4);
    assert_eq!(skipped[0]["market"]["zone"], "us-east-1a");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    let step = &report["targets"][0]["steps"][0];
    assert_eq!(
        step["market"]["label"],
        "the largest market (c5.2xlarge/us-east-1a: 4 nodes)"
    );
    let why = step["skipped"].as_str().unwrap();
    assert!(why.contains("max_terminations"), "{why}");
    assert!(out.stderr.contains("max_terminations"), "{}", out.stderr);

    // A finished run that stopped resumes only with --continue: the rung is resolved again from
    // a fresh discovery, the guard refuses it again, and nothing is terminated; the report,
    // rebuilt from the whole journal, names the market with its count.
    let run_dir = dir.path().join("run");
    let plan_path = dir.path().join("plan.yaml");
    let resumed = spotdrill_aws(
        &moto,
        &moto.endpoint,
        &[
            "run",
            plan_path.to_str().unwrap(),
            "--yes",
            "--resume",
            run_dir.to_str().unwrap(),
            "--continue",
        ],
        dir.path(),
    );
    resumed.expect_code(3);
    assert!(terminated(&moto).is_empty());
    let j = journal(dir.path());
    assert_eq!(entries(&j, "resumed").len(), 1, "{}", resumed.stderr);
    let skipped = entries(&j, "step_skipped");
    assert_eq!(skipped.len(), 2, "{}", resumed.stderr);
    assert_eq!(skipped[1]["terminations"], 4);
    assert_eq!(skipped[1]["market"]["instance_type"], "c5.2xlarge");
    let report = crate::report::strict(&run_dir);
    let label = &report.targets[0].steps[0].market.as_ref().unwrap().label;
    assert_eq!(label, "the largest market (c5.2xlarge/us-east-1a: 4 nodes)");
}
