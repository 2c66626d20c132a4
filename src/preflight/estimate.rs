//! How long a run takes: at most, and typically.

use std::time::Duration;

use super::{LAB_WARMUP, LAB_WARMUP_TYPICAL, TYPICAL_EXTRA_SAMPLES, capacity_tail};
use crate::plan::Plan;

/// How long the run takes: at most, and typically, with how each was added up.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub worst: Duration,
    pub worst_parts: String,
    pub typical: Duration,
    pub typical_parts: String,
}

impl Estimate {
    pub fn of(plan: &Plan) -> Estimate {
        let o = &plan.observe;
        let steps = plan.step_count() as u32;
        let (warmup, warmup_typical, warmup_name) = if plan.lab.is_some() {
            (LAB_WARMUP, LAB_WARMUP_TYPICAL, "lab warm-up")
        } else {
            (o.sample_interval * 3, o.sample_interval, "first samples")
        };
        // After a lab target's last step (unless steps add up), `run` waits for its capacity.
        let tails = plan
            .targets
            .values()
            .filter(|t| t.nodes.on_lab() && !t.cumulative)
            .count() as u32;
        let tail = capacity_tail(o);
        let worst = warmup + o.baseline + (o.cooldown + o.timeout) * steps + tail * tails;
        let mut worst_parts = format!(
            "{warmup_name} {} + baseline {} + {steps} step{} × (cooldown {} + timeout {})",
            d(warmup),
            d(o.baseline),
            plural(steps),
            d(o.cooldown),
            d(o.timeout)
        );
        if tails > 0 {
            worst_parts.push_str(&format!(
                " + {tails} × capacity wait after the last step {}",
                d(tail)
            ));
        }
        let samples = o.sample_interval * TYPICAL_EXTRA_SAMPLES;
        let typical = warmup_typical + o.baseline + (o.settle + o.hold + samples) * steps;
        let typical_parts = format!(
            "{warmup_name} {} + baseline {} + {steps} step{} × (settle {} + hold {} + \
             {TYPICAL_EXTRA_SAMPLES} samples {})",
            d(warmup_typical),
            d(o.baseline),
            plural(steps),
            d(o.settle),
            d(o.hold),
            d(samples)
        );
        Estimate {
            worst,
            worst_parts,
            typical,
            typical_parts,
        }
    }
}

/// A duration for people, in whole seconds or more precise when shorter than a second.
pub fn d(duration: Duration) -> String {
    let shown = if duration >= Duration::from_secs(1) {
        Duration::from_secs(duration.as_secs())
    } else {
        duration
    };
    humantime::format_duration(shown).to_string()
}

pub fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}
