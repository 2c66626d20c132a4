//! The health probes, unmodified, against a running lab's Storm UI, Mesos master and Marathon:
//! whole at start; a killed node shows up as lost capacity (fewer supervisors/agents, work on a
//! dead host) until the scheduler re-places the work and the replacement joins; whole again
//! after. Every probe is held against the lab's own `capacity()`.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use spotdrill::lab::up::RunningLab;
use spotdrill::observe::health::{self, Capacity, HttpSettings};
use spotdrill::plan::{ClusterKind, Lab, LabCluster, LabTopic, TimestampType, Workload};

// Wide enough windows for a loaded machine: the probe right after the kill must finish before
// the scheduler notices (it once needed more than 2 s), and the re-placed state must last long
// enough to be probed before the replacement joins (it lasted 1 s).
const DETECTION: Duration = Duration::from_secs(4);
const REPLACEMENT: Duration = Duration::from_secs(9);

fn cluster(kind: ClusterKind, workload: &str, group: &str) -> LabCluster {
    LabCluster {
        kind,
        nodes: 3,
        slots_per_node: 2,
        detection_delay: DETECTION,
        replacement_delay: Some(REPLACEMENT),
        workloads: IndexMap::from([(
            workload.to_owned(),
            Workload {
                workers: 4,
                group: group.to_owned(),
                topics: vec!["telemetry".into()],
                cost_per_message: Duration::from_micros(100),
                commit_interval: Duration::from_secs(1),
                stall_after_restart: false,
            },
        )]),
    }
}

fn small_lab() -> Lab {
    Lab {
        topics: vec![LabTopic {
            name: "telemetry".into(),
            partitions: 4,
            rate: 40.0,
            message_bytes: 64,
            timestamp_type: TimestampType::CreateTime,
        }],
        clusters: IndexMap::from([
            (
                "storm-lab".to_owned(),
                cluster(ClusterKind::Storm, "coverage-topology", "coverage"),
            ),
            (
                "mesos-lab".to_owned(),
                cluster(ClusterKind::Mesos, "live-aggregator", "aggregator"),
            ),
        ]),
    }
}

fn probe(running: &RunningLab, cluster: &str) -> Capacity {
    let endpoints = running
        .state()
        .health_endpoints(cluster, &HttpSettings::default())
        .expect("the lab serves this cluster")
        .unwrap();
    health::probe(&endpoints, Duration::from_secs(5)).unwrap()
}

/// Probe until `ok`, or fail after `within` with the last capacity.
fn probe_until(
    running: &RunningLab,
    cluster: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&Capacity) -> bool,
) -> Capacity {
    let started = Instant::now();
    loop {
        let c = probe(running, cluster);
        if ok(&c) {
            return c;
        }
        assert!(
            started.elapsed() < within,
            "{cluster}: not {what} within {within:?}: {c:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The probe's view agrees with the lab's own capacity (taken right after, so allow for a tick).
fn agrees_with_lab(running: &RunningLab, cluster: &str, c: &Capacity) {
    let lab = running.capacity(cluster).unwrap();
    assert_eq!(c.nodes_alive(), lab.nodes, "{cluster}: {c:#?} vs {lab:?}");
    let assigned = match c {
        Capacity::Storm(s) => s.topologies.iter().map(|t| t.workers_assigned).sum::<u32>(),
        Capacity::Mesos(m) => m.apps.iter().map(|a| a.tasks_running).sum::<u32>(),
        Capacity::Kubernetes(k) => k.workloads.iter().map(|w| w.ready).sum::<u32>(),
    };
    let configured = match c {
        Capacity::Storm(s) => s
            .topologies
            .iter()
            .map(|t| t.workers_configured.unwrap())
            .sum::<u32>(),
        Capacity::Mesos(m) => m.apps.iter().map(|a| a.instances).sum::<u32>(),
        Capacity::Kubernetes(k) => k.workloads.iter().map(|w| w.desired).sum::<u32>(),
    };
    assert_eq!(configured, lab.workers, "{cluster}");
    if c.is_whole() {
        assert_eq!(assigned, lab.workers_placed, "{cluster}: {c:#?} vs {lab:?}");
        assert!(lab.workers_placed >= lab.workers, "{cluster}: {lab:?}");
    }
}

#[test]
fn health_probes_follow_lab_losses_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_spotdrill"));
    let running = RunningLab::start(&small_lab(), exe, dir.path()).unwrap();

    for (cluster, app) in [
        ("storm-lab", "coverage-topology"),
        ("mesos-lab", "/live-aggregator"),
    ] {
        // Whole at start, 3 nodes, 4 of 4 workers.
        let before = probe(&running, cluster);
        assert!(before.is_whole(), "{cluster}: {before:#?}");
        assert_eq!(before.nodes_alive(), 3);
        assert_eq!(before.application_whole(app), Some(true));
        agrees_with_lab(&running, cluster, &before);
        match &before {
            Capacity::Storm(s) => {
                assert_eq!((s.slots_total, s.slots_used, s.slots_free), (6, 4, 2));
                let t = s.topology(app).unwrap();
                assert_eq!((t.workers_assigned, t.workers_configured), (4, Some(4)));
            }
            Capacity::Mesos(m) => {
                assert_eq!((m.agents_active, m.agents_unreachable), (3, 0));
                assert_eq!((m.cpus_total, m.cpus_used), (6.0, 4.0));
                let a = m.app(app).unwrap();
                assert_eq!((a.instances, a.tasks_running), (4, 4));
            }
            other => panic!("not a storm or mesos cluster: {other:?}"),
        }

        // Kill a node that runs the application (node ↔ host: a lab node's host is its id).
        let victim = before.hosts_running(app)[0].to_owned();
        assert_eq!(before.applications_on(&victim), [app]);
        running.kill(&victim, Duration::ZERO).unwrap();
        let killed_at = Instant::now();

        // Before the scheduler notices: one node fewer, its work on a dead host.
        let lost = probe(&running, cluster);
        assert!(
            killed_at.elapsed() < DETECTION,
            "probing took too long to see the undetected loss"
        );
        assert_eq!(lost.nodes_alive(), 2, "{cluster}: {lost:#?}");
        assert!(!lost.is_whole(), "{cluster}: {lost:#?}");
        assert_eq!(lost.application_whole(app), Some(false));
        match &lost {
            Capacity::Storm(s) => assert!(s.topology(app).unwrap().workers_on_dead_supervisors > 0),
            Capacity::Mesos(m) => assert!(m.app(app).unwrap().tasks_on_dead_hosts > 0),
            other => panic!("not a storm or mesos cluster: {other:?}"),
        }
        agrees_with_lab(&running, cluster, &lost);

        // Re-placed onto the spare slots (2 nodes × 2 slots hold 4 workers): whole on 2 nodes,
        // not before the detection delay.
        let replaced = probe_until(
            &running,
            cluster,
            Duration::from_secs(60),
            "re-placed",
            |c| c.is_whole(),
        );
        assert!(killed_at.elapsed() >= DETECTION, "{replaced:#?}");
        assert!(replaced.nodes_alive() <= 3);
        assert!(!replaced.hosts_running(app).contains(&victim.as_str()));
        if let Capacity::Mesos(m) = &replaced {
            assert_eq!(m.agents_unreachable, 1, "{m:#?}");
        }

        // The replacement joins: 3 nodes again, still whole.
        let refilled = probe_until(
            &running,
            cluster,
            Duration::from_secs(60),
            "refilled",
            |c| c.nodes_alive() == 3,
        );
        assert!(refilled.is_whole(), "{refilled:#?}");
        assert!(killed_at.elapsed() >= REPLACEMENT);
        agrees_with_lab(&running, cluster, &refilled);
    }
    running.stop().unwrap();
}
