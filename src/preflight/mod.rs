//! The preflight, one for `plan` and `run`: what a run will act on and whether it can (nodes,
//! permissions, Kafka, health endpoints), what the guards allow, and how long it takes. `plan`
//! renders it; `run` relies on the same definitions.

pub mod guards;

use std::time::Duration;

use crate::plan::Observe;

/// How long a lab run waits at most for its workloads' first commits before the baseline.
pub const LAB_WARMUP: Duration = Duration::from_secs(60);

/// After a target's last step, `run` waits this long at most for its capacity to come back.
pub fn capacity_tail(observe: &Observe) -> Duration {
    observe.cooldown.min(Duration::from_secs(120))
}
