//! `spotdrill markets` against moto_server: the markets of the discovered nodes and
//! DescribeSpotPriceHistory (moto answers one point per market: $0.00001, dated 2006, i.e. the
//! price in effect all window long), while CloudTrail LookupEvents is missing from moto (HTTP
//! 500): said so, and the rest still answers. A proxy that refuses both calls shows the partial
//! permission path. The interruption-window arithmetic is unit-tested on CloudTrail's documented
//! shapes (src/nodes/ec2_api/cloudtrail.rs, src/nodes/markets.rs).

use std::path::Path;

use serde_json::Value;

use crate::aws::{deny_proxy, seed_storm, write_plan};
use crate::support::moto::Moto;
use crate::util::{Cmd, Outcome, plan_fixture};

/// The AWS plan of tests/it/aws.rs; its broker is never reached by `markets`.
fn markets_plan() -> String {
    plan_fixture(
        "aws-flat.yaml",
        &[
            ("name", &"markets test"),
            ("brokers", &"127.0.0.1:9"),
            ("nodes", &crate::aws::ec2_nodes()),
            ("ladder", &"[1]"),
            ("selection", &"market"),
            ("extra", &""),
        ],
    )
}

fn markets(moto: &Moto, endpoint: &str, args: &[&str], dir: &Path) -> Outcome {
    let plan = write_plan(dir, &markets_plan());
    let mut all = vec!["markets", plan.as_str()];
    all.extend_from_slice(args);
    Cmd::new(&all)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        // moto answers LookupEvents with HTTP 500, which is retried: keep it short.
        .env("AWS_MAX_ATTEMPTS", "2")
        .env_remove("AWS_PROFILE")
        .run()
}

fn json(out: &Outcome) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

/// 20 spot nodes in 4 markets of 5 (the 5 on-demand are not eligible, the 3 of another cluster
/// not selected): each market 25%; moto's prices read; LookupEvents unreadable, not denied.
#[test]
fn markets_against_moto_reads_markets_and_prices_and_names_what_it_could_not_read() {
    let moto = Moto::start();
    seed_storm(&moto);
    let dir = tempfile::tempdir().unwrap();
    let out = markets(
        &moto,
        &moto.endpoint,
        &["--json", "--on-demand", "c5.xlarge=0.17"],
        dir.path(),
    );
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(v["schema"], "spotdrill-markets/1");
    let t = &v["targets"][0];
    assert_eq!(t["nodes"], 20);
    let found = t["markets"].as_array().unwrap();
    assert_eq!(found.len(), 4, "{t:#}");
    assert!(
        found
            .iter()
            .all(|m| m["nodes"] == 5 && m["share_pct"] == 25.0)
    );
    assert_eq!(t["largest_share_pct"], 25.0);
    let prices = t["prices"]["markets"].as_array().unwrap();
    assert_eq!(prices.len(), 4);
    for p in prices {
        assert_eq!(p["highest"], 0.00001, "{p}");
        assert_eq!(p["changes"], 0);
        let c5 = p["instance_type"] == "c5.xlarge";
        assert_eq!(p["on_demand"].as_f64().is_some(), c5, "{p}");
    }
    assert!(
        t["prices"]["on_demand_source"]
            .as_str()
            .unwrap()
            .contains("--on-demand")
    );
    assert_eq!(t["interruptions"], Value::Null);
    let unreadable = t["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(unreadable[0]["call"], "cloudtrail:LookupEvents");
    assert_eq!(unreadable[0]["denied"], false);
    // The text form says the same.
    let out = markets(&moto, &moto.endpoint, &[], dir.path());
    out.expect_code(0);
    assert!(
        out.stdout.contains("holds 25% of the nodes"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("could not read cloudtrail:LookupEvents"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("on-demand prices: none"),
        "{}",
        out.stdout
    );
}

/// Both history calls refused (UnauthorizedOperation, AccessDeniedException): each named as
/// denied, the markets still shown, exit 0.
#[test]
fn markets_with_partial_permissions_says_what_was_denied() {
    let moto = Moto::start();
    seed_storm(&moto);
    let proxy = deny_proxy(moto.endpoint.clone(), |head, body| {
        let trail = head.iter().any(|l| {
            l.to_ascii_lowercase().starts_with("x-amz-target:") && l.contains("LookupEvents")
        });
        if trail {
            let json = r#"{"__type":"AccessDeniedException","Message":"not authorized to cloudtrail:LookupEvents"}"#;
            return Some(("application/x-amz-json-1.1", json.to_owned()));
        }
        body.contains("Action=DescribeSpotPriceHistory").then(|| {
            let xml = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>\
                       You are not authorized to perform this operation.</Message></Error>\
                       </Errors><RequestID>r</RequestID></Response>";
            ("text/xml", xml.to_owned())
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let out = markets(&moto, &proxy, &["--json"], dir.path());
    out.expect_code(0);
    let t = &json(&out)["targets"][0];
    assert_eq!(t["markets"].as_array().unwrap().len(), 4);
    assert_eq!(
        (&t["prices"], &t["interruptions"]),
        (&Value::Null, &Value::Null)
    );
    let calls: Vec<(&str, bool)> = t["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["call"].as_str().unwrap(), u["denied"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        calls,
        [
            ("ec2:DescribeSpotPriceHistory", true),
            ("cloudtrail:LookupEvents", true)
        ]
    );
}

// --- `report --history`: the spare capacity from the account's history -----------------------

/// A `markets --json` output for the recorded run's mesos target: 3 interruptions of its
/// markets within 2 s (one of them in a market EC2 no longer names), one an hour later; 40% of
/// the nodes in c5.2xlarge/us-east-1a. The storm target is not in it.
const HISTORY: &str = r#"{
  "schema": "spotdrill-markets/1", "plan": "two targets", "generated_at": "2026-11-26T00:00:00Z",
  "targets": [{
    "name": "mesos-lab", "provider": "aws-ec2", "region": "us-east-1", "nodes": 5,
    "markets": [{"instance_type": "c5.2xlarge", "zone": "us-east-1a", "nodes": 2, "share_pct": 40.0},
                {"instance_type": "c5.2xlarge", "zone": "us-east-1b", "nodes": 3, "share_pct": 60.0}],
    "largest_share_pct": 40.0, "lead_time_s": 300.0, "lead_time_source": "default: 5 min",
    "prices": null,
    "interruptions": {"days": 90, "instances": 4, "in_these_markets": 3, "unattributed": 1,
      "truncated": false,
      "worst_window": {"count": 3, "unattributed": 1, "from": "2026-10-01T10:00:00Z", "to": "2026-10-01T10:00:02Z"},
      "events": [
        {"at": "2026-10-01T10:00:00Z", "instance_id": "i-1", "market": "c5.2xlarge/us-east-1a"},
        {"at": "2026-10-01T10:00:01Z", "instance_id": "i-2", "market": null},
        {"at": "2026-10-01T10:00:02Z", "instance_id": "i-3", "market": "c5.2xlarge/us-east-1b"},
        {"at": "2026-10-01T11:00:02Z", "instance_id": "i-4", "market": "c5.2xlarge/us-east-1b"}]},
    "unreadable": [{"call": "ec2:DescribeSpotPriceHistory", "denied": true, "error": "UnauthorizedOperation"}],
    "note": null
  }]
}"#;

fn overprovisioning(dir: &Path, target: &str) -> Value {
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let t = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target)
        .unwrap()
        .clone();
    t["overprovisioning"].clone()
}

/// With the history: losses from it (3 within the lead time, × 3 = 9), next to the measured
/// tolerance (≥ 2: add 7) and the largest market; the file is kept in the run directory, so a
/// rebuild without the flag gives the same report. Without it, the losses are the run's own
/// and the report says no history was given.
#[test]
fn report_history_sizes_spare_nodes_from_interruptions_with_their_sources() {
    let dir = crate::report::recorded_run();
    crate::report::rebuild(dir.path()).expect_code(0);
    let before = overprovisioning(dir.path(), "mesos-lab");
    assert!(
        before["losses_source"]
            .as_str()
            .unwrap()
            .starts_with("run:"),
        "{before}"
    );
    assert!(
        before["summary"]
            .as_str()
            .unwrap()
            .contains("no spot history was given"),
        "{before}"
    );

    let history = dir.path().join("history.json");
    std::fs::write(&history, HISTORY).unwrap();
    let d = dir.path().to_str().unwrap();
    crate::util::spotdrill(&["report", d, "--history", history.to_str().unwrap()]).expect_code(0);
    let o = overprovisioning(dir.path(), "mesos-lab");
    assert_eq!(o["max_losses_in_lead_time"], 3, "{o:#}");
    assert_eq!(o["spare_nodes"], 9);
    assert_eq!(o["history"]["add_nodes"], 7);
    assert_eq!(o["history"]["unattributed"], 1);
    assert!(o["losses_source"].as_str().unwrap().starts_with("history:"));
    let summary = o["summary"].as_str().unwrap();
    assert!(
        summary.contains("history says 3 (1 in markets EC2 no longer names)"),
        "{summary}"
    );
    assert!(
        summary.contains("the cluster absorbs ≥ 2 (run): add 7"),
        "{summary}"
    );
    assert!(
        summary.contains("diversify: 40% of the nodes are in c5.2xlarge/us-east-1a"),
        "{summary}"
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("history says 3"), "{md}");
    assert!(
        md.contains("storm-lab: the spot history"),
        "the target it lacks is named: {md}"
    );

    // Kept: a rebuild without --history gives the same answer.
    crate::report::rebuild(dir.path()).expect_code(0);
    assert_eq!(overprovisioning(dir.path(), "mesos-lab"), o);
}

/// A history that is not `markets --json` output is bad input (exit 2) naming the file and the
/// place in it.
#[test]
fn report_history_refuses_a_bad_file_with_its_place() {
    let dir = crate::report::recorded_run();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"spotdrill-markets/1\",\n \"plan\": 3}").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = crate::util::spotdrill(&["report", d, "--history", bad.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("bad.json"), "{}", out.stderr);
    assert!(out.stderr.contains("line 2 column"), "{}", out.stderr);
    assert!(!dir.path().join("markets.json").exists());
}
