//! Locks name the cluster and say where a run acts (SECURITY.md "Concurrency and stale locks",
//! "Where a run acts"): plans that word one cluster differently share one lock, keyed on the AWS
//! account (STS GetCallerIdentity), region and normalised selector; of two `--resume`s of one
//! run exactly one holds its lock; a DynamoDB table (moto, conditional writes) makes the lock
//! team-wide; `plan` and `run_started` name the account, region and endpoint, and `--resume`
//! refuses another one.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::run::{events, journal};
use crate::support::kafka::Kafka;
use crate::support::moto::Moto;
use crate::util::{Cmd, Outcome, Running, alive, wait_for};

const TAGS: &[(&str, &str)] = &[("cluster", "storm-test"), ("role", "supervisor")];
const ACCOUNT: &str = "123456789012";
const TABLE: &str = "spotdrill-locks";

/// A plan with one target `name` whose `nodes:` is `nodes`, observing the flat lag of `kafka`
/// for `baseline` before its one step; `extra` is top-level lines (e.g. `locks:`).
fn plan(kafka: &Kafka, name: &str, nodes: &str, baseline: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: locks test\nkafka: {{brokers: \"{}\"}}\n{extra}\
         applications:\n  coverage:\n    group: coverage\n    topics: [telemetry]\n    \
         slo: {{max_lag: 10m, max_recovery: 5s}}\n\
         targets:\n  {name}:\n    kind: storm\n    nodes: {nodes}\n    applications: [coverage]\n    \
         ladder: [1]\n    seed: 7\n    required_tolerance: 0\n\
         observe: {{sample_interval: 200ms, baseline: {baseline}, hold: 1s, settle: 1s, timeout: 5s, cooldown: 10s}}\n",
        kafka.bootstrap
    )
}

const EC2: &str =
    "{provider: aws-ec2, region: us-east-1, tags: {cluster: storm-test, role: supervisor}}";
/// The same instances, the tags in another order.
const EC2_REORDERED: &str =
    "{provider: aws-ec2, region: us-east-1, tags: {role: supervisor, cluster: storm-test}}";
/// The same instances, worded another way: tags reordered, another provider.
const FIS: &str = "{provider: aws-fis, region: us-east-1, tags: {role: supervisor, cluster: storm-test}, \
                   notice: 2m, role_arn: 'arn:aws:iam::123456789012:role/fis'}";

fn write(dir: &Path, file: &str, text: &str) -> String {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// `spotdrill ARGS…` against moto with lock files in `locks` and extra env.
fn cmd(moto: &Moto, locks: &Path, args: &[&str], env: &[(&str, String)]) -> Cmd {
    Cmd::new(args)
        .envs(moto.env())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .locks(locks)
        .env("SPOTDRILL_AWS_POLL_MS", "200")
        .env_remove("AWS_PROFILE")
        .env_remove("SPOTDRILL_LOCK_TABLE")
}

fn run_in(moto: &Moto, locks: &Path, args: &[&str], env: &[(&str, String)]) -> Outcome {
    cmd(moto, locks, args, env).run()
}

/// `run PLAN --yes --out OUT` in the background, waited for until it has started (so it holds
/// its locks).
fn holder(moto: &Moto, locks: &Path, plan: &str, out: &Path, env: &[(&str, String)]) -> Running {
    let run = cmd(
        moto,
        locks,
        &["run", plan, "--yes", "--out", out.to_str().unwrap()],
        env,
    )
    .spawn();
    wait_for("the holder to start", Duration::from_secs(60), || {
        !events(&journal(out), "run_started").is_empty()
    });
    run
}

/// Plans for one cluster that call it differently (another target name, the tags in another
/// order, another provider) share one lock, keyed on the account STS names: the second is
/// refused while the first runs (naming it and the cluster with its account), and its lock is
/// stale once the first is killed, until `unlock` of the other plan clears it. `plan` and
/// `run_started` say where the run acts: account, region, endpoint.
#[test]
fn one_cluster_is_one_lock_whatever_the_plan_calls_it() {
    let moto = Moto::start();
    moto.launch(3, "us-east-1a", "c5.xlarge", true, TAGS);
    let kafka = crate::aws::kafka();
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let a = write(
        dir.path(),
        "a.yaml",
        &plan(&kafka, "storm-test", EC2, "10m", ""),
    );
    let b = write(
        dir.path(),
        "b.yaml",
        &plan(&kafka, "supervisors", FIS, "1s", ""),
    );

    let shown = run_in(&moto, &locks, &["plan", &a], &[]);
    shown.expect_code(0);
    let place = format!(
        "acting in: AWS account {ACCOUNT}, region us-east-1, endpoint {}",
        moto.endpoint
    );
    assert!(shown.stdout.contains(&place), "{}", shown.stdout);
    let json = run_in(&moto, &locks, &["plan", &a, "--json"], &[]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["targets"][0]["aws"]["account"], ACCOUNT);
    assert_eq!(v["targets"][0]["aws"]["endpoint"], moto.endpoint.as_str());

    let out_a = dir.path().join("run-a");
    let mut first = holder(&moto, &locks, &a, &out_a, &[]);
    let started = events(&journal(&out_a), "run_started")[0].clone();
    assert_eq!(started["aws"][0]["target"], "storm-test");
    assert_eq!(started["aws"][0]["account"], ACCOUNT);
    assert_eq!(started["aws"][0]["region"], "us-east-1");
    assert_eq!(started["aws"][0]["endpoint"], moto.endpoint.as_str());

    let pid = first.id().to_string();
    let out_b = dir.path().join("run-b");
    let args_b = ["run", b.as_str(), "--yes", "--out", out_b.to_str().unwrap()];
    let second = run_in(&moto, &locks, &args_b, &[]);
    second.expect_code(4);
    assert!(
        second
            .stderr
            .contains(&format!("is being run by pid {pid}")),
        "{}",
        second.stderr
    );
    let cluster = format!(
        "cluster cluster|aws/{ACCOUNT}/us-east-1/instances/tags=cluster=storm-test,role=supervisor"
    );
    assert!(second.stderr.contains(&cluster), "{}", second.stderr);
    assert!(events(&journal(&out_b), "intent").is_empty());
    run_in(&moto, &locks, &["unlock", &b], &[]).expect_code(4);

    first.kill();
    let stale = run_in(&moto, &locks, &args_b, &[]);
    stale.expect_code(4);
    assert!(stale.stderr.contains("stale lock"), "{}", stale.stderr);
    let cleared = run_in(&moto, &locks, &["unlock", &b], &[]);
    cleared.expect_code(0);
    assert!(
        cleared
            .stdout
            .contains(&format!("removed the stale lock of pid {pid}")),
        "{}",
        cleared.stdout
    );
    let again = run_in(&moto, &locks, &["unlock", &a], &[]);
    assert!(
        again.stdout.contains("storm-test: not locked"),
        "{}",
        again.stdout
    );
}

/// Credentials of another account (a role assumed in 111111111111), or another endpoint for
/// the same AWS, and `--resume` refuses (exit 2) naming both places, before anything else: the
/// journal gets no `resumed`.
#[test]
fn resume_refuses_another_account_or_endpoint() {
    let moto = Moto::start();
    moto.launch(3, "us-east-1a", "c5.xlarge", true, TAGS);
    let kafka = crate::aws::kafka();
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let a = write(
        dir.path(),
        "a.yaml",
        &plan(&kafka, "storm-test", EC2, "1s", ""),
    );
    let out = dir.path().join("run");
    let done = run_in(
        &moto,
        &locks,
        &["run", &a, "--yes", "--out", out.to_str().unwrap()],
        &[],
    );
    assert!(matches!(done.code, 0 | 1), "{}", done.stderr);
    // A finished run is not resumed at all (issue 16): cut its end off, as a crash would.
    let path = out.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(r#""event":"run_finished""#))
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let entries = journal(&out).len();
    let resume = [
        "run",
        a.as_str(),
        "--yes",
        "--resume",
        out.to_str().unwrap(),
    ];

    let elsewhere = moto.endpoint.replace("127.0.0.1", "localhost");
    let moved = run_in(
        &moto,
        &locks,
        &resume,
        &[("AWS_ENDPOINT_URL", elsewhere.clone())],
    );
    moved.expect_code(2);
    assert!(
        moved.stderr.contains("refusing to resume in another place"),
        "{}",
        moved.stderr
    );
    assert!(moved.stderr.contains(&elsewhere), "{}", moved.stderr);
    assert!(moved.stderr.contains(&moto.endpoint), "{}", moved.stderr);

    let creds = moto.py(
        "c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::111111111111:role/chaos', \
         RoleSessionName='game-day')['Credentials']\n\
         print(json.dumps([c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken']]))",
    );
    let env: Vec<(&str, String)> = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    .into_iter()
    .zip(
        creds
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned()),
    )
    .collect();
    let other = run_in(&moto, &locks, &resume, &env);
    other.expect_code(2);
    assert!(
        other.stderr.contains("account 111111111111"),
        "{}",
        other.stderr
    );
    assert!(
        other.stderr.contains(&format!("account {ACCOUNT}")),
        "{}",
        other.stderr
    );
    assert_eq!(journal(&out).len(), entries, "nothing was written");
}

/// A lab game day SIGKILLed leaves its stale lock; two `--resume`s of it start at once: exactly
/// one takes the lock and goes on, the other is refused (exit 4) naming the winner.
#[test]
fn two_resumes_of_one_run_cannot_both_hold_its_lock() {
    let bg = crate::run::start_in_background(&crate::run::Shape::storm(4, 2, 6, &[1]).plan());
    let (locks, plan, run) = (bg.locks(), bg.plan(), bg.run.clone());
    wait_for("the run to start", Duration::from_secs(60), || {
        !events(&journal(&run), "run_started").is_empty()
    });
    let mut child = bg.child;
    child.kill();
    let resume = || {
        Cmd::new(["run", plan.to_str().unwrap(), "--yes", "--resume"])
            .arg(&run)
            .locks(&locks)
            .spawn()
    };
    let mut racers = [resume(), resume()];
    wait_for("one resume to end", Duration::from_secs(60), || {
        racers.iter_mut().any(|r| r.try_wait().is_some())
    });
    let (lost, won) = match racers[0].try_wait() {
        Some(_) => (0, 1),
        None => (1, 0),
    };
    let winner = racers[won].id().to_string();
    assert!(
        racers[won].try_wait().is_none() && alive(racers[won].id() as i32),
        "the winner goes on"
    );
    let loser = racers[lost].wait(Duration::from_secs(10));
    loser.expect_code(4);
    assert!(
        loser
            .stderr
            .contains(&format!("is being run by pid {winner}")),
        "{}",
        loser.stderr
    );
}

/// Create the lock table in moto (partition key `lock_key`).
fn create_table(moto: &Moto) {
    moto.py(&format!(
        "d = boto3.client('dynamodb')\n\
         d.create_table(TableName='{TABLE}', KeySchema=[{{'AttributeName': 'lock_key', 'KeyType': 'HASH'}}], \
         AttributeDefinitions=[{{'AttributeName': 'lock_key', 'AttributeType': 'S'}}], BillingMode='PAY_PER_REQUEST')\n\
         print(json.dumps(True))"
    ));
}

/// Every item of the lock table: lock_key → pid.
fn table_items(moto: &Moto) -> Value {
    moto.py(&format!(
        "items = boto3.client('dynamodb').scan(TableName='{TABLE}', ConsistentRead=True)['Items']\n\
         print(json.dumps({{i['lock_key']['S']: i.get('pid', {{}}).get('N') for i in items}}))"
    ))
}

/// The team-wide lock: a colleague's lock in the DynamoDB table (another host) refuses the run
/// until `unlock --force`; a run holding its lock there refuses a run of the same cluster from
/// another machine's lock directory (the table chosen by `SPOTDRILL_LOCK_TABLE` there), is stale
/// once killed, and `unlock` clears it; a run that ends releases its item.
#[test]
fn a_team_wide_dynamodb_lock_stops_a_colleagues_run() {
    let moto = Moto::start();
    moto.launch(3, "us-east-1a", "c5.xlarge", true, TAGS);
    create_table(&moto);
    let kafka = crate::aws::kafka();
    let dir = tempfile::tempdir().unwrap();
    let (laptop, ci) = (dir.path().join("laptop"), dir.path().join("ci"));
    let table = format!("locks: {{dynamodb: {{table: {TABLE}, region: us-east-1}}}}\n");
    let a = write(
        dir.path(),
        "a.yaml",
        &plan(&kafka, "storm-test", EC2, "10m", &table),
    );
    let b = write(
        dir.path(),
        "b.yaml",
        &plan(&kafka, "supervisors", FIS, "1s", ""),
    );
    let key = format!(
        "cluster|aws/{ACCOUNT}/us-east-1/instances/tags=cluster=storm-test,role=supervisor;zones=;types=;fleet="
    );
    moto.py(&format!(
        "boto3.client('dynamodb').put_item(TableName='{TABLE}', Item={{'lock_key': {{'S': '{key}'}}, \
         'pid': {{'N': '4242'}}, 'host': {{'S': 'ci-runner-7'}}, 'run_dir': {{'S': '/builds/run'}}, \
         'since': {{'S': '2026-12-01T08:00:00Z'}}, 'token': {{'S': 'theirs'}}}})\n\
         print(json.dumps(True))"
    ));
    let out_a = dir.path().join("run-a");
    let run_a = ["run", a.as_str(), "--yes", "--out", out_a.to_str().unwrap()];
    let refused = run_in(&moto, &laptop, &run_a, &[]);
    refused.expect_code(4);
    assert!(
        refused.stderr.contains("pid 4242 on ci-runner-7"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!("DynamoDB table {TABLE}")),
        "{}",
        refused.stderr
    );
    run_in(&moto, &laptop, &["unlock", &a], &[]).expect_code(4);
    let forced = run_in(&moto, &laptop, &["unlock", &a, "--force"], &[]);
    forced.expect_code(0);
    assert!(
        forced.stdout.contains("pid 4242 on ci-runner-7"),
        "{}",
        forced.stdout
    );

    let mut first = holder(&moto, &laptop, &a, &out_a, &[]);
    let pid = first.id().to_string();
    assert_eq!(
        table_items(&moto)[&key],
        pid.as_str(),
        "the lock is in the table"
    );
    let env = [("SPOTDRILL_LOCK_TABLE", TABLE.to_owned())];
    let out_b = dir.path().join("run-b");
    let run_b = ["run", b.as_str(), "--yes", "--out", out_b.to_str().unwrap()];
    let colleague = cmd(&moto, &ci, &run_b, &[])
        .env("SPOTDRILL_LOCK_TABLE", TABLE)
        .run();
    colleague.expect_code(4);
    assert!(
        colleague
            .stderr
            .contains(&format!("is being run by pid {pid}")),
        "{}",
        colleague.stderr
    );

    first.kill();
    let stale = cmd(&moto, &ci, &run_b, &[])
        .env("SPOTDRILL_LOCK_TABLE", TABLE)
        .run();
    stale.expect_code(4);
    assert!(stale.stderr.contains("stale lock"), "{}", stale.stderr);
    let cleared = cmd(&moto, &ci, &["unlock", &b], &[])
        .env("SPOTDRILL_LOCK_TABLE", TABLE)
        .run();
    cleared.expect_code(0);
    assert!(
        cleared.stdout.contains(&format!("stale lock of pid {pid}")),
        "{}",
        cleared.stdout
    );
    assert_eq!(table_items(&moto), serde_json::json!({}));

    let c = write(
        dir.path(),
        "c.yaml",
        &plan(&kafka, "supervisors", EC2_REORDERED, "1s", ""),
    );
    let out_c = dir.path().join("run-c");
    let run_c = ["run", c.as_str(), "--yes", "--out", out_c.to_str().unwrap()];
    let whole = run_in(&moto, &ci, &run_c, &env);
    assert!(matches!(whole.code, 0 | 1), "{}", whole.stderr);
    assert_eq!(
        table_items(&moto),
        serde_json::json!({}),
        "released at the end"
    );
}

/// `locks:` is validated with located errors: a backend must be named, the table name and the
/// region must be valid.
#[test]
fn bad_lock_settings_are_located() {
    let kafka_free = "version: 1\nname: p\nkafka: {brokers: \"localhost:9092\"}\n\
        applications:\n  a: {group: g, topics: [t], slo: {max_lag: 1m, max_recovery: 1m}}\n\
        targets:\n  t:\n    kind: storm\n    nodes: {provider: aws-ec2, region: us-east-1, tags: {c: s}}\n    \
        applications: [a]\n    ladder: [1]\n";
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &format!("{kafka_free}locks: {{dynamodb: {{table: 'no way', region: mars-1}}}}\n"),
    );
    let none = write(
        dir.path(),
        "none.yaml",
        &format!("{kafka_free}locks: {{}}\n"),
    );
    let out = Cmd::new(["validate", bad.as_str(), none.as_str()]).run();
    out.expect_code(2);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("locks.dynamodb.table"), "{all}");
    assert!(
        all.contains("`no way` is not a DynamoDB table name"),
        "{all}"
    );
    assert!(all.contains("locks.dynamodb.region"), "{all}");
    assert!(all.contains("bad.yaml:12:"), "{all}");
    assert!(all.contains("`locks` names no backend"), "{all}");
    let good = write(dir.path(), "good.yaml", kafka_free);
    let env = Cmd::new(["unlock", good.as_str()])
        .env("SPOTDRILL_LOCK_TABLE", "x")
        .run();
    env.expect_code(2);
    assert!(
        env.stderr
            .contains("SPOTDRILL_LOCK_TABLE: `x` is not a DynamoDB table name"),
        "{}",
        env.stderr
    );
}

/// Asked on a terminal (`script` gives `run` one), the confirmation says where each AWS target
/// acts before anything happens; answering no terminates nothing (exit 2, no journal).
#[test]
fn the_confirmation_names_the_account_region_and_endpoint() {
    use std::io::Write;
    let moto = Moto::start();
    moto.launch(2, "us-east-1a", "c5.xlarge", true, TAGS);
    let kafka = crate::aws::kafka();
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        &plan(&kafka, "storm-test", EC2, "1s", ""),
    );
    let out = dir.path().join("run");
    let line = format!(
        "{} run {a} --out {}",
        env!("CARGO_BIN_EXE_spotdrill"),
        out.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .envs(moto.env())
        .env("SPOTDRILL_LOCK_DIR", dir.path().join("locks"))
        .env_remove("AWS_PROFILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0_u8; 4096];
        let mut text = String::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("Type yes to go on") && !text.contains("ANSWERED") {
                let _ = stdin.write_all(b"no\n");
                text.push_str("ANSWERED");
            }
        }
        text
    });
    let status = child.wait().unwrap();
    seen.push_str(&reader.join().unwrap());
    let place = format!(
        "storm-test: AWS account {ACCOUNT}, region us-east-1, endpoint {}",
        moto.endpoint
    );
    assert!(seen.contains("Acting in:"), "{seen}");
    assert!(seen.contains(&place), "{seen}");
    assert!(seen.contains("not confirmed"), "{seen}");
    assert_eq!(status.code(), Some(2), "{seen}");
    assert!(!out.join("journal.jsonl").exists(), "nothing was started");
}

/// Credentials whose account STS cannot name (GetCallerIdentity unreachable, EC2 reachable):
/// `plan` says the account is unknown and why; `run` refuses (exit 4) before any intent, since
/// its lock could not name the cluster.
#[test]
fn a_run_whose_account_cannot_be_told_is_refused() {
    let moto = Moto::start();
    moto.launch(2, "us-east-1a", "c5.xlarge", true, TAGS);
    let kafka = crate::aws::kafka();
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let a = write(
        dir.path(),
        "a.yaml",
        &plan(&kafka, "storm-test", EC2, "1s", ""),
    );
    let closed = format!("http://127.0.0.1:{}", crate::support::kafka::free_port());
    let env = [
        ("AWS_ENDPOINT_URL_STS", closed),
        ("AWS_MAX_ATTEMPTS", "1".to_owned()),
    ];
    let shown = run_in(&moto, &locks, &["plan", &a], &env);
    shown.expect_code(4);
    assert!(
        shown
            .stdout
            .contains("acting in: AWS account unknown (GetCallerIdentity: cannot reach AWS ("),
        "{}",
        shown.stdout
    );
    let out = dir.path().join("run");
    let refused = run_in(
        &moto,
        &locks,
        &["run", &a, "--yes", "--out", out.to_str().unwrap()],
        &env,
    );
    refused.expect_code(4);
    assert!(
        refused.stderr.contains("cannot tell which AWS account"),
        "{}",
        refused.stderr
    );
    assert!(events(&journal(&out), "intent").is_empty());
    assert!(
        moto.instances()
            .values()
            .all(|(state, _)| state == "running")
    );
}
