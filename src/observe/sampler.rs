//! The sampler: a tokio task that takes a lag snapshot every interval and sends it on a channel,
//! until its cancellation token fires. The runner, `spotdrill lag` and the lab all use it.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lag::GroupLag;
use super::probe::LagProbe;
use super::promql::PromQuery;

/// One tick: every group measured at (about) the same moment.
pub type Snapshot = Vec<GroupLag>;

/// Start sampling. The first snapshot is taken at once, then one per `interval`; a snapshot that
/// takes longer than the interval delays the next one rather than piling up. The channel closes
/// when the token is cancelled or the receiver is dropped.
pub fn spawn(
    probe: LagProbe,
    interval: Duration,
    cancel: CancellationToken,
) -> (mpsc::Receiver<Snapshot>, JoinHandle<()>) {
    spawn_with(probe, Vec::new(), interval, cancel)
}

/// [`spawn`], with applications whose lag comes from PromQL queries measured in each snapshot
/// too (after the groups, under their lag keys).
pub fn spawn_with(
    mut probe: LagProbe,
    promql: Vec<PromQuery>,
    interval: Duration,
    cancel: CancellationToken,
) -> (mpsc::Receiver<Snapshot>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    let promql = std::sync::Arc::new(promql);
    let handle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.restart_clock();
        let started = std::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let queries = promql.clone();
            let work = tokio::task::spawn_blocking(move || {
                let mut snapshot = probe.snapshot();
                snapshot.extend(queries.iter().map(|q| q.sample(started)));
                (probe, snapshot)
            });
            let (returned, snapshot) = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                done = work => match done {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::error!(error = %e, "lag snapshot task failed");
                        break;
                    }
                },
            };
            probe = returned;
            if tx.send(snapshot).await.is_err() {
                break;
            }
        }
    });
    (rx, handle)
}
