//! The lab's Kafka side in a child process of its own (`spotdrill lab broker`): librdkafka's mock
//! cluster on loopback, the plan's topics, and the telemetry producers. Kept out of the process
//! that judges, so a fault in the mock broker (it is test code, with assertions) can cost a run
//! its samples but never abort the harness, and so the harness's own CPU can be measured alone.
//!
//! Like a lab node, it reads its stdin until the parent closes it (or dies), and ends on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::node::spawn_lab_process;
use super::producer::{self, TopicLoad};
use crate::kafka::KafkaSettings;

/// A topic on the wire: `spotdrill lab broker --spec JSON`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicWire {
    pub name: String,
    pub partitions: u32,
    pub rate: f64,
    pub message_bytes: u32,
}

/// What the broker process prints once its topics exist and its producers run.
pub const READY: &str = "BROKER";

/// In the child: run the broker and producers until stdin closes or a signal arrives.
pub fn serve(topics: &[TopicWire]) -> anyhow::Result<()> {
    let broker = MockCluster::new(1)?;
    for t in topics {
        broker.create_topic(&t.name, t.partitions as i32, 1)?;
    }
    let settings = KafkaSettings::new(broker.bootstrap_servers());
    let cancel = CancellationToken::new();
    let producers = topics
        .iter()
        .map(|t| {
            let load = TopicLoad {
                topic: t.name.clone(),
                partitions: t.partitions as i32,
                rate: t.rate,
                message_bytes: t.message_bytes as usize,
            };
            producer::spawn(&settings, load, cancel.clone())
        })
        .collect::<Result<Vec<_>, _>>()?;
    {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            let mut sink = String::new();
            while std::io::stdin()
                .lock()
                .read_line(&mut sink)
                .is_ok_and(|n| n > 0)
            {
                sink.clear();
            }
            cancel.cancel();
        });
    }
    crate::output::out(&format!("{READY} {}\n", settings.brokers));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = cancel.cancelled() => {}
        }
        anyhow::Ok(())
    })?;
    cancel.cancel();
    for p in producers {
        let _ = p.thread.join();
    }
    drop(broker);
    Ok(())
}

/// In the lab: the running broker process.
pub struct BrokerProcess {
    child: Child,
    pub bootstrap: String,
}

impl BrokerProcess {
    /// Start `exe lab broker` and wait for its address.
    pub fn start(
        exe: &Path,
        topics: &[TopicWire],
        within: Duration,
    ) -> anyhow::Result<BrokerProcess> {
        let (mut child, stdout) =
            spawn_lab_process(exe, &["lab", "broker"], &topics, "the lab broker")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix(READY) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(within) {
            Ok(bootstrap) => Ok(BrokerProcess { child, bootstrap }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "the lab broker did not start within {}",
                    humantime::format_duration(within)
                )
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while it runs; its exit status once it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stop it: close its stdin (it ends by itself), SIGKILL if it has not within 5 s.
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
