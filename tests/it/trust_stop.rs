//! Trust, round two (issue 16): a stopped game day stays stopped. A stop that arrives while a
//! step does its pre-injection work (discovery held by the fault proxy) terminates nothing,
//! whichever signal brings it (SIGINT, SIGTERM, SIGHUP); an FIS experiment is never left
//! running (GetExperiment failing, StartExperiment timing out after it started, a second
//! Ctrl-C, a crash then `--resume`). Everything runs against moto through the fault proxy of
//! tests/it/trust.rs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::run::{events, journal};
use crate::support::moto::Moto;
use crate::trust::{Fault, Gate, proxy_by};
use crate::util::{Cmd, Running, wait_for};

const ROLE: &str = "arn:aws:iam::123456789012:role/fis";

/// A run directory with its plan: `dir/plan.yaml`, the run in `dir/run`, locks in `dir/locks`.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new(nodes: &str, kafka: &crate::support::kafka::Kafka) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::aws::plan(kafka, nodes, "[1]", "random", "");
        std::fs::write(dir.path().join("plan.yaml"), text).unwrap();
        Place { dir }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn journal(&self) -> Vec<Value> {
        journal(&self.run_dir())
    }

    /// `spotdrill run PLAN --yes --out RUN` (`--resume RUN` when `resume`) through `endpoint`,
    /// in the background.
    fn spawn(&self, moto: &Moto, endpoint: &str, resume: bool, env: &[(&str, &str)]) -> Running {
        let plan = self.dir.path().join("plan.yaml");
        let how = if resume { "--resume" } else { "--out" };
        Cmd::new(["run", plan.to_str().unwrap(), "--yes", how])
            .arg(self.run_dir())
            .envs(moto.env())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("SPOTDRILL_AWS_POLL_MS", "200")
            .env_remove("AWS_PROFILE")
            .envs(env.iter().copied())
            .locks(self.dir.path().join("locks"))
            .spawn()
    }
}

fn has(journal: &[Value], event: &str) -> bool {
    !events(journal, event).is_empty()
}

/// The journal's provider events of one kind, as their details.
fn provider_details(journal: &[Value], kind: &str) -> Vec<String> {
    events(journal, "provider_event")
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn trust_nodes(moto: &Moto) -> Vec<String> {
    moto.launch(4, "us-east-1a", "c5.xlarge", true, &[("cluster", "trust")])
}

/// Journal lines of `run` read from the proxy's thread (a request decides by them).
fn journal_has(run: &Path, event: &str) -> bool {
    has(&journal(run), event)
}

// ---- item 4: a stop during pre-injection work -----------------------------------------------

/// The step's discovery is held by the proxy (every DescribeInstances after the baseline and
/// before any intent); `signal` arrives while it waits. The stop must be taken in at once (the
/// journal says `interrupted` while discovery is still held), and once the proxy lets the
/// discovery through nothing is terminated: no `step_started`, no intent, every instance still
/// running, exit 3.
fn a_stop_during_discovery_terminates_nothing(signal: Signal) {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let ids = trust_nodes(&moto);
    let place = Place::new(
        "{provider: aws-ec2, region: us-east-1, tags: {cluster: trust}}",
        &kafka,
    );
    let gate = Arc::new(Gate::default());
    let (run, held) = (place.run_dir(), gate.clone());
    let proxy = proxy_by(moto.endpoint.clone(), move |_, body| {
        let discovery = body.contains("Action=DescribeInstances");
        if discovery && journal_has(&run, "baseline") && !journal_has(&run, "intent") {
            Fault::Hold(held.clone())
        } else {
            Fault::Pass
        }
    });
    let mut running = place.spawn(&moto, &proxy, false, &[]);
    wait_for(
        "the step's discovery to be held",
        Duration::from_secs(60),
        || gate.held.load(Ordering::SeqCst) > 0,
    );
    running.signal(signal);
    // Taken in while discovery is still held: before the fix it is seen only after the step
    // injected.
    let taken = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        has(&place.journal(), "interrupted")
    });
    gate.open();
    let out = running.wait(Duration::from_secs(90));
    let j = place.journal();
    assert!(
        taken,
        "{signal}: the stop was not taken in during discovery: {j:#?}"
    );
    out.expect_code(3);
    assert!(!has(&j, "step_started"), "{signal}: a step started: {j:#?}");
    assert!(
        !has(&j, "intent"),
        "{signal}: an intent was written: {j:#?}"
    );
    for (id, (state, _)) in moto.instances() {
        if ids.contains(&id) {
            assert_eq!(state, "running", "{signal}: {id} was terminated");
        }
    }
}

#[test]
fn a_ctrl_c_during_discovery_terminates_nothing() {
    a_stop_during_discovery_terminates_nothing(Signal::SIGINT);
}

#[test]
fn a_sigterm_during_discovery_terminates_nothing() {
    a_stop_during_discovery_terminates_nothing(Signal::SIGTERM);
}

#[test]
fn a_sighup_during_discovery_terminates_nothing() {
    a_stop_during_discovery_terminates_nothing(Signal::SIGHUP);
}

// ---- item 6: FIS experiments are never left running -----------------------------------------

/// moto's FIS experiments stay `pending` (and a stopped one `stopping`) until told otherwise:
/// an experiment that nobody stops stays open, as a real one does through its notice.
fn hold_experiments(moto: &Moto) {
    moto.py(&format!(
        "import urllib.request\n\
         body = json.dumps({{'model_name': 'fis::experiment', 'transition': \
         {{'progression': 'manual', 'times': 1000000}}}}).encode()\n\
         r = urllib.request.Request('{}/moto-api/state-manager/set-transition', data=body, \
         method='POST')\n\
         urllib.request.urlopen(r).read()\n\
         print(json.dumps(True))",
        moto.endpoint
    ));
}

/// Every FIS experiment moto knows: its status.
fn experiment_statuses(moto: &Moto) -> Vec<String> {
    let v = moto.py("e = fis.list_experiments()['experiments']\n\
         print(json.dumps([fis.get_experiment(id=x['id'])['experiment']['state']['status'] \
         for x in e]))");
    serde_json::from_value(v).unwrap()
}

/// An `aws-fis` run of `[1]` over 4 trust instances, experiments held open by moto.
fn fis_place(moto: &Moto, kafka: &crate::support::kafka::Kafka) -> Place {
    trust_nodes(moto);
    hold_experiments(moto);
    Place::new(
        &format!(
            "{{provider: aws-fis, region: us-east-1, tags: {{cluster: trust}}, notice: 2m, \
             role_arn: \"{ROLE}\"}}"
        ),
        kafka,
    )
}

/// Every experiment started (one, here) was stopped: moto has it `stopping`.
#[track_caller]
fn assert_all_stopped(moto: &Moto, journal: &[Value]) {
    let statuses = experiment_statuses(moto);
    assert!(!statuses.is_empty(), "an experiment was started");
    assert!(
        statuses.iter().all(|s| s == "stopping" || s == "stopped"),
        "an experiment is left running: {statuses:?}\n{journal:#?}"
    );
}

/// GetExperiment fails (500, no retry): the experiment is stopped, the journal says why, and
/// the step's nodes are errors (escalation stops).
#[test]
fn fis_experiment_is_stopped_when_get_experiment_fails() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let place = fis_place(&moto, &kafka);
    let proxy = proxy_by(moto.endpoint.clone(), |line, _| {
        if line.starts_with("GET /experiments/") {
            Fault::Error(500, "InternalError")
        } else {
            Fault::Pass
        }
    });
    let out = place
        .spawn(&moto, &proxy, false, &[("AWS_MAX_ATTEMPTS", "1")])
        .wait(Duration::from_secs(120));
    let j = place.journal();
    assert_eq!(out.code, 3, "{}", out.stderr);
    let stops = provider_details(&j, "fis_experiment_stop");
    assert!(
        stops
            .iter()
            .any(|d| d.contains("stopped: its state cannot be read")),
        "{stops:?}"
    );
    assert_all_stopped(&moto, &j);
}

/// StartExperiment goes through but its answer never comes (the SDK times out): the template's
/// experiment is found, journaled as started, and stopped.
#[test]
fn fis_experiment_started_despite_a_start_timeout_is_stopped() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let place = fis_place(&moto, &kafka);
    let proxy = proxy_by(moto.endpoint.clone(), |line, _| {
        if line.starts_with("POST /experiments ") {
            Fault::AnswerNever
        } else {
            Fault::Pass
        }
    });
    let env = [
        ("AWS_MAX_ATTEMPTS", "1"),
        ("SPOTDRILL_AWS_ATTEMPT_TIMEOUT_MS", "2000"),
        ("SPOTDRILL_AWS_OPERATION_TIMEOUT_MS", "4000"),
    ];
    let out = place
        .spawn(&moto, &proxy, false, &env)
        .wait(Duration::from_secs(120));
    let j = place.journal();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        provider_details(&j, "fis_experiment_started").len(),
        1,
        "{j:#?}"
    );
    let stops = provider_details(&j, "fis_experiment_stop");
    assert!(
        stops
            .iter()
            .any(|d| d.contains("StartExperiment failed, but the experiment had started")),
        "{stops:?}"
    );
    assert_all_stopped(&moto, &j);
}

/// The first Ctrl-C's StopExperiment fails (500, no retry), so the experiment is still open at
/// the second Ctrl-C: the hard exit stops it before exiting, and the journal says so.
#[test]
fn fis_experiment_is_stopped_by_a_second_ctrl_c() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let place = fis_place(&moto, &kafka);
    let stops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = stops.clone();
    let proxy = proxy_by(moto.endpoint.clone(), move |line, _| {
        if line.starts_with("DELETE /experiments/") && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Fault::Error(500, "InternalError")
        } else {
            Fault::Pass
        }
    });
    let mut running = place.spawn(&moto, &proxy, false, &[("AWS_MAX_ATTEMPTS", "1")]);
    wait_for("the experiment to start", Duration::from_secs(60), || {
        !provider_details(&place.journal(), "fis_experiment_started").is_empty()
    });
    running.signal(Signal::SIGINT);
    wait_for("the first stop to fail", Duration::from_secs(60), || {
        provider_details(&place.journal(), "fis_experiment_stop")
            .iter()
            .any(|d| d.contains("stopping failed"))
    });
    running.signal(Signal::SIGINT);
    let out = running.wait(Duration::from_secs(60));
    let j = place.journal();
    out.expect_code(3);
    let details = provider_details(&j, "fis_experiment_stop");
    assert!(
        details
            .iter()
            .any(|d| d.contains("stopped: the run exited before")),
        "{details:?}"
    );
    assert_all_stopped(&moto, &j);
}

/// A run SIGKILLed while its experiment is open leaves it running; `--resume` looks up every
/// experiment the journal started and never saw end, stops it, and says so.
#[test]
fn resume_stops_the_fis_experiment_a_killed_run_left_running() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let place = fis_place(&moto, &kafka);
    let mut running = place.spawn(&moto, &moto.endpoint, false, &[]);
    wait_for("the experiment to start", Duration::from_secs(60), || {
        !provider_details(&place.journal(), "fis_experiment_started").is_empty()
    });
    running.kill();
    assert_eq!(
        experiment_statuses(&moto),
        ["pending"],
        "left open by the kill"
    );
    let out = place
        .spawn(&moto, &moto.endpoint, true, &[])
        .wait(Duration::from_secs(120));
    let j = place.journal();
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let details = provider_details(&j, "fis_experiment_stop");
    assert!(
        details
            .iter()
            .any(|d| d.contains("stopped: still pending when the run resumed")),
        "{details:?}\n{}",
        out.stderr
    );
    assert_all_stopped(&moto, &j);
}

// ---- item 7: Auto Scaling lifecycle hooks ---------------------------------------------------

/// moto has no lifecycle hooks, so the proxy plays one: TerminateInstanceInAutoScalingGroup is
/// accepted (not passed on: the instance stays `running` in EC2, as a hook keeps it), and the
/// group then describes that instance as `Terminating:Wait`.
fn lifecycle_hook_proxy(moto: &Moto) -> String {
    let held: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    proxy_by(moto.endpoint.clone(), move |_, body| {
        if body.contains("Action=TerminateInstanceInAutoScalingGroup") {
            let id = body
                .split('&')
                .find_map(|p| p.strip_prefix("InstanceId="))
                .unwrap_or_default()
                .to_owned();
            held.lock().unwrap().push(id.clone());
            return Fault::Answer(format!(
                "<TerminateInstanceInAutoScalingGroupResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
                 <TerminateInstanceInAutoScalingGroupResult><Activity><ActivityId>hook-1</ActivityId>\
                 <AutoScalingGroupName>hooked</AutoScalingGroupName><Cause>trust test</Cause>\
                 <Description>Terminating EC2 instance: {id}</Description><Progress>0</Progress>\
                 <StartTime>2026-01-01T00:00:00Z</StartTime><StatusCode>InProgress</StatusCode></Activity>\
                 </TerminateInstanceInAutoScalingGroupResult><ResponseMetadata><RequestId>hook</RequestId>\
                 </ResponseMetadata></TerminateInstanceInAutoScalingGroupResponse>"
            ));
        }
        if body.contains("Action=DescribeAutoScalingGroups") {
            let held = held.lock().unwrap().clone();
            return Fault::Rewrite(Arc::new(move |xml: String| {
                xml.split_inclusive("<member>")
                    .map(|part| {
                        let mine = held.iter().any(|id| part.contains(&format!(">{id}<")));
                        if mine {
                            part.replacen(">InService<", ">Terminating:Wait<", 1)
                        } else {
                            part.to_owned()
                        }
                    })
                    .collect()
            }));
        }
        Fault::Pass
    })
}

/// An instance a lifecycle hook holds in `Terminating:Wait` (EC2 still says running) is
/// terminating, not an error: its outcome is `terminated`, naming the state, and the run is not
/// stopped as if the termination had failed.
#[test]
fn asg_instance_in_terminating_wait_is_counted_as_terminated() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    let members = crate::aws::seed_group(&moto, "hooked");
    let place = Place::new(
        "{provider: aws-asg, region: us-east-1, group: hooked, replace: true}",
        &kafka,
    );
    let proxy = lifecycle_hook_proxy(&moto);
    let out = place
        .spawn(&moto, &proxy, false, &[])
        .wait(Duration::from_secs(180));
    let j = place.journal();
    let outcomes = events(&j, "outcome");
    assert_eq!(outcomes.len(), 1, "{j:#?}");
    let o = outcomes[0];
    assert!(members.contains(&o["node"].as_str().unwrap().to_owned()));
    assert_eq!(o["outcome"], "terminated", "{o}");
    assert!(
        o["detail"].as_str().unwrap().contains("Terminating:Wait"),
        "{o}"
    );
    assert!(!has(&j, "aborted"), "{j:#?}\n{}", out.stderr);
    assert_ne!(out.code, 3, "{}", out.stderr);
}

// ---- item 7: aws-ec2 and aws-fis without health endpoints ----------------------------------

/// Nothing replaces what `aws-ec2` terminates and no health endpoint says when capacity is
/// back, so steps do not start from full capacity: `plan` says so (a note), predicts
/// `min_healthy` and the choices on the nodes the steps before left, and the report of a run
/// says so too.
#[test]
fn aws_ec2_without_health_endpoints_does_not_claim_full_capacity_at_each_step() {
    let moto = Moto::start();
    let kafka = crate::aws::kafka();
    trust_nodes(&moto);
    let nodes = "{provider: aws-ec2, region: us-east-1, tags: {cluster: trust}}";
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("guarded.yaml");
    let guarded = crate::aws::plan(
        &kafka,
        nodes,
        "[1, 2]",
        "random",
        "    guards: {min_healthy: 2}\n",
    );
    std::fs::write(&plan, guarded).unwrap();
    let out = Cmd::new(["plan", plan.to_str().unwrap(), "--json"])
        .envs(moto.env())
        .env_remove("AWS_PROFILE")
        .locks(dir.path().join("locks"))
        .run();
    let v: Value = serde_json::from_str(&out.stdout).expect(&out.stderr);
    let t = &v["targets"][0];
    let note = t["capacity_note"].as_str().unwrap_or_default();
    assert!(note.contains("do not start from full capacity"), "{t:#}");
    let warnings = t["guard_warnings"].to_string();
    assert!(
        warnings.contains("step 2 (2) would leave 1 of 3"),
        "min_healthy predicted on the nodes step 1 left: {warnings}"
    );
    let first = &t["steps"][0]["would_terminate"][0];
    assert!(
        !t["steps"][1]["would_terminate"]
            .as_array()
            .unwrap()
            .contains(first),
        "step 2 chooses among the nodes step 1 left: {t:#}"
    );
    let place = Place::new(nodes, &kafka);
    let text = crate::aws::plan(&kafka, nodes, "[1, 2]", "random", "");
    std::fs::write(place.dir.path().join("plan.yaml"), text).unwrap();
    let out = place
        .spawn(&moto, &moto.endpoint, false, &[])
        .wait(Duration::from_secs(120));
    out.expect_code(0);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(place.run_dir().join("report.json")).unwrap(),
    )
    .unwrap();
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("steps did not start from full capacity"),
        "{notes}"
    );
    // The nodes each step chose from, as its step_started journaled them: the 4 trust nodes,
    // then the 3 that step 1 left.
    let alive: Vec<&Value> = report["targets"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["nodes_at_start"])
        .collect();
    assert_eq!(alive, [4, 3], "{report:#}");
    assert!(notes.contains("(nodes at step start: 4, 3)"), "{notes}");
}
