//! The sampler: a tokio task that takes a lag snapshot every interval and sends it on a channel,
//! until its cancellation token fires. The runner, `spotdrill lag` and the lab all use it.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lag::GroupLag;
use super::probe::LagProbe;

/// One tick: every group measured at (about) the same moment.
pub type Snapshot = Vec<GroupLag>;

/// Start sampling. The first snapshot is taken at once, then one per `interval`; a snapshot that
/// takes longer than the interval delays the next one rather than piling up. The channel closes
/// when the token is cancelled or the receiver is dropped.
pub fn spawn(
    mut probe: LagProbe,
    interval: Duration,
    cancel: CancellationToken,
) -> (mpsc::Receiver<Snapshot>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    let handle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.restart_clock();
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let work = tokio::task::spawn_blocking(move || {
                let snapshot = probe.snapshot();
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
