//! The guards' arithmetic, one definition for the preflight's warnings and the runner's checks
//! (DESIGN.md "Safety rules").

use crate::plan::{HourWindow, MinHealthy, Target};

/// The nodes `min_healthy` requires to stay healthy in a target of `size` nodes (a percentage is
/// of the size the run started with, rounded up).
pub fn min_healthy_needed(min: MinHealthy, size: u32) -> u32 {
    match min {
        MinHealthy::Count(c) => c,
        MinHealthy::Percent(p) => (f64::from(size) * p / 100.0).ceil() as u32,
    }
}

/// `min_healthy` as the preflight shows it: `3`, or `50% of 6 = 3`.
pub fn min_healthy_text(min: MinHealthy, size: u32) -> String {
    match min {
        MinHealthy::Count(c) => format!("{c}"),
        MinHealthy::Percent(p) => format!("{p}% of {size} = {}", min_healthy_needed(min, size)),
    }
}

/// `HH:MM`.
pub fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The window as `HH:MM-HH:MM`.
pub fn window_text(w: HourWindow) -> String {
    format!("{}-{}", hhmm(w.start_minute), hhmm(w.end_minute))
}

/// Why `allowed_hours` forbids injecting at `minute` (UTC), if it does.
pub fn outside_hours(window: HourWindow, minute: u16) -> Option<String> {
    (!window.contains(minute))
        .then(|| format!("{} UTC is outside {}", hhmm(minute), window_text(window)))
}

/// Why `max_terminations` forbids `n` more after `so_far`, if it does.
pub fn over_max_terminations(max: u32, so_far: u32, n: u32) -> Option<String> {
    (u64::from(so_far) + u64::from(n) > u64::from(max))
        .then(|| format!("{so_far} terminated so far + {n} would exceed {max}"))
}

/// Why `min_healthy` forbids terminating `n` of `live` healthy nodes, if it does.
pub fn below_min_healthy(needed: u32, live: u32, n: u32) -> Option<String> {
    let left = live.saturating_sub(n);
    (left < needed)
        .then(|| format!("{live} healthy nodes − {n} would leave {left}, below {needed}"))
}

/// The guards the ladder would breach, each at its first breaching step; `run` stops the ladder
/// at the first breach (exit 3). `size` is the number of nodes, where known; `market` the size
/// of their largest spot market (what a market rung would take now; 0 where unknown).
pub fn warnings(target: &Target, size: Option<usize>, market: u32) -> Vec<String> {
    let g = &target.guards;
    let mut warnings = Vec::new();
    if let Some(max) = g.max_terminations {
        let mut so_far = 0u64;
        for (step, n) in target.preview_rungs(market).into_iter().enumerate() {
            let n = u64::from(n);
            if so_far + n > u64::from(max) {
                warnings.push(format!(
                    "max_terminations {max}: step {} ({n}) would exceed it ({so_far} terminated \
                     so far + {n}); the run stops there (exit 3)",
                    step + 1
                ));
                break;
            }
            so_far += n;
        }
    }
    if let (Some(min), Some(size)) = (g.min_healthy, size) {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let (needed, what) = match min {
            MinHealthy::Count(c) => (c, format!("{c}")),
            MinHealthy::Percent(p) => {
                let needed = (f64::from(size) * p / 100.0).ceil() as u32;
                (needed, format!("{p}% of {size} = {needed}"))
            }
        };
        // Where cooldown waits for capacity, every step starts from full capacity; elsewhere
        // (`cumulative`, or nothing reports capacity back) steps add up.
        let mut live = size;
        for (step, n) in target.preview_rungs(market).into_iter().enumerate() {
            let left = live.saturating_sub(n);
            if left < needed {
                warnings.push(format!(
                    "min_healthy {what}: step {} ({n}) would leave {left} of {live} healthy \
                     nodes; the run stops there (exit 3)",
                    step + 1
                ));
                break;
            }
            if !target.steps_start_full() {
                live = left;
            }
        }
    }
    if let Some(window) = g.allowed_hours {
        let minute = crate::plan::HourWindow::now_minute();
        if !window.contains(minute) {
            warnings.push(format!(
                "allowed_hours {:02}:{:02}-{:02}:{:02} UTC: it is {:02}:{:02} UTC now, so a run \
                 started now stops before its first step (exit 3)",
                window.start_minute / 60,
                window.start_minute % 60,
                window.end_minute / 60,
                window.end_minute % 60,
                minute / 60,
                minute % 60
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_healthy_percent_rounds_up_of_the_starting_size() {
        assert_eq!(min_healthy_needed(MinHealthy::Percent(50.0), 5), 3);
        assert_eq!(min_healthy_needed(MinHealthy::Count(2), 5), 2);
        assert_eq!(
            min_healthy_text(MinHealthy::Percent(50.0), 6),
            "50% of 6 = 3"
        );
    }

    #[test]
    fn guards_say_why_they_refuse() {
        assert_eq!(
            over_max_terminations(4, 2, 3).as_deref(),
            Some("2 terminated so far + 3 would exceed 4")
        );
        assert_eq!(over_max_terminations(4, 1, 3), None);
        assert_eq!(
            below_min_healthy(3, 4, 2).as_deref(),
            Some("4 healthy nodes − 2 would leave 2, below 3")
        );
        assert_eq!(below_min_healthy(2, 4, 2), None);
        let w = HourWindow {
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        };
        assert_eq!(
            outside_hours(w, 8 * 60 + 5).as_deref(),
            Some("08:05 UTC is outside 09:00-17:00")
        );
        assert_eq!(outside_hours(w, 12 * 60), None);
    }

    /// Issue 16 item 12: rungs whose sum passes u32::MAX are counted exactly (before: an
    /// overflow panic in debug builds, a wrapped sum in release).
    #[test]
    fn guard_arithmetic_never_overflows() {
        assert_eq!(
            over_max_terminations(u32::MAX, 4_000_000_000, u32::MAX).as_deref(),
            Some("4000000000 terminated so far + 4294967295 would exceed 4294967295")
        );
        assert_eq!(over_max_terminations(u32::MAX, 0, u32::MAX), None);
        let text = "version: 1\nname: big\nkafka: {brokers: \"127.0.0.1:1\"}\n\
            applications: {a: {group: a, topics: [t], slo: {max_lag: 1m, max_recovery: 1m}}}\n\
            targets:\n  t:\n    kind: storm\n\
            \x20   nodes: {provider: aws-ec2, region: us-east-1, tags: {cluster: x}}\n\
            \x20   applications: [a]\n    ladder: [4000000000, 4294967295]\n\
            \x20   required_tolerance: 0\n    guards: {max_terminations: 4294967295, min_healthy: 1}\n";
        let loaded = crate::plan::load(text);
        let plan = loaded.plan.expect("the plan is valid");
        assert_eq!(plan.most_terminations(), 8_294_967_295);
        let w = warnings(&plan.targets["t"], Some(usize::MAX), 0);
        assert!(
            w[0].starts_with("max_terminations 4294967295: step 2"),
            "{w:?}"
        );
        assert!(w[1].starts_with("min_healthy 1: step 2"), "{w:?}");
    }
}
