//! The breaking-point search (`ladder: {search: {from, max}}`) on the embedded lab, held against
//! the lab's capacity arithmetic (issue 20 items 2 and 7).

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::run::{Shape, events, journal, report, run_plan, start_in_background};
use crate::util::{Cmd, wait_for};

/// 6 nodes × 2 slots running 8 workers: losing 2 leaves 8 slots, losing 3 leaves 6, so the
/// arithmetic says 2. The search from 1 to 6 escalates 1, 2, 4 (fails), then bisects to 3.
fn shape() -> Shape {
    Shape::storm(6, 2, 8, &[]).searched(1, 6)
}

/// The terminations of a target's steps in the order run, and which were judged pass.
fn steps(target: &Value) -> Vec<(u64, String)> {
    target["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let v = s["verdict"].as_str().unwrap_or("not run").to_owned();
            (s["terminations"].as_u64().unwrap(), v)
        })
        .collect()
}

#[test]
fn a_search_finds_the_capacity_limit_in_fewer_steps_than_a_full_ladder() {
    let shape = shape();
    let (outcome, dir) = run_plan(&shape.plan(), &[]);
    let report = report(dir.path());
    let t = &report["targets"][0];
    let pretty = serde_json::to_string_pretty(t).unwrap();
    let limit = shape.capacity_limit();
    assert_eq!(limit, 2, "the arithmetic: (6 − 2) × 2 ≥ 8 > (6 − 3) × 2");
    assert_eq!(
        t["tolerated_terminations"], limit,
        "{pretty}\n{}",
        outcome.stderr
    );
    assert_eq!(t["tolerance_bound"], "exact", "{pretty}");
    outcome.expect_code(0);
    let run = steps(t);
    let order: Vec<u64> = run.iter().map(|s| s.0).collect();
    assert_eq!(order, [1, 2, 4, 3], "{pretty}");
    assert_eq!(run[2].1, "fail", "{pretty}");
    assert_eq!(run[3].1, "fail", "{pretty}");
    let search = &t["search"];
    assert_eq!(search["steps_run"], 4);
    assert_eq!(search["full_ladder_steps"], 6);
    assert!(search["steps_run"].as_u64() < search["full_ladder_steps"].as_u64());
    assert!(search["cut_short"].is_null(), "{pretty}");
    assert_eq!(search["anomalies"], serde_json::json!([]));
    assert!(
        search["assumption"]
            .as_str()
            .unwrap()
            .contains("never hurts less")
    );
    // Each step terminated exactly its number of nodes.
    let journal = journal(&dir.path().join("run"));
    for i in events(&journal, "intent") {
        let step = i["step"].as_u64().unwrap() as usize;
        assert_eq!(i["nodes"].as_array().unwrap().len() as u64, order[step]);
    }
    let md = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(md.contains("Search 1..6: 4 steps"), "{md}");
    assert!(md.contains("never hurts less"), "{md}");
}

/// A search stopped by Ctrl-C during its second step, resumed with `--continue`, goes on with
/// the very search the journal's verdicts say (4, then 3), never repeating a step it ran.
#[test]
fn a_resumed_search_continues_the_same_search() {
    let mut bg = start_in_background(&shape().plan());
    wait_for("the second injection", Duration::from_secs(180), || {
        events(&journal(&bg.run), "injected").len() >= 2
    });
    bg.child.signal(Signal::SIGINT);
    bg.child.wait(Duration::from_secs(120)).expect_code(3);
    let cut = report(bg.dir.path());
    let t = &cut["targets"][0];
    assert_eq!(
        steps(t)[..2],
        [(1, "pass".into()), (2, "pass".into())],
        "{t}"
    );
    assert!(
        t["search"]["cut_short"]
            .as_str()
            .unwrap()
            .contains("stopped"),
        "{}",
        t["search"]
    );
    let before: Vec<Value> = events(&journal(&bg.run), "intent")
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(before.len(), 2);

    let plan = bg.plan();
    let continued = Cmd::new([
        "run",
        plan.to_str().unwrap(),
        "--yes",
        "--resume",
        bg.run.to_str().unwrap(),
        "--continue",
    ])
    .locks(bg.locks())
    .run();
    let done = report(bg.dir.path());
    let t = &done["targets"][0];
    let order: Vec<u64> = steps(t).iter().map(|s| s.0).collect();
    assert_eq!(order, [1, 2, 4, 3], "{t}\n{}", continued.stderr);
    assert_eq!(t["tolerated_terminations"], 2, "{t}");
    assert!(t["search"]["cut_short"].is_null(), "{}", t["search"]);
    let entries = journal(&bg.run);
    let intents = events(&entries, "intent");
    assert_eq!(intents.len(), 4, "one intent per step, none repeated");
    assert_eq!(intents[0]["nodes"], before[0]["nodes"]);
    assert_eq!(intents[1]["nodes"], before[1]["nodes"]);
    continued.expect_code(0);
}
