//! What the samples say of an application's consumer group over a step: the rebalances the
//! probe counted (a rebalance storm after a spot loss is a finding) and whether its commits
//! stalled while its high watermark grew.

use crate::observe::GroupLag;

/// Rebalances within one step from which they are called a storm.
pub const REBALANCE_STORM: u64 = 3;

/// One sample's group facts, at the run's clock `t`.
#[derive(Clone, Debug)]
struct Point {
    t: f64,
    /// The probe's running count of rebalances (`None`: the group was not described).
    rebalances: Option<u64>,
    stalled_since: Option<String>,
}

/// Per application, every sample's group facts.
#[derive(Debug, Default)]
pub struct GroupTrack {
    points: Vec<Point>,
}

/// The group over one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct During {
    pub rebalances: Option<u64>,
    /// The first stall seen in the step: since when.
    pub stalled_since: Option<String>,
}

impl GroupTrack {
    pub fn take(&mut self, t: f64, g: &GroupLag) {
        self.points.push(Point {
            t,
            rebalances: g.group_state.as_ref().map(|s| s.rebalances),
            stalled_since: g
                .stalled_since
                .map(|s| humantime::format_rfc3339_seconds(s).to_string()),
        });
    }

    /// The group from `t0` (the injection) to `until`: rebalances counted since the last
    /// sample before `t0`, and the first stall.
    pub fn during(&self, t0: f64, until: f64) -> During {
        let counted = |p: &&Point| p.rebalances.is_some();
        let before = self.points.iter().filter(|p| p.t < t0).rfind(counted);
        let within: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.t >= t0 && p.t <= until)
            .collect();
        let last = within.iter().copied().rfind(counted);
        let first = before.or_else(|| within.iter().copied().find(counted));
        let rebalances = match (first, last) {
            (Some(a), Some(b)) => Some(
                b.rebalances
                    .unwrap_or(0)
                    .saturating_sub(a.rebalances.unwrap_or(0)),
            ),
            _ => None,
        };
        During {
            rebalances,
            stalled_since: within.iter().find_map(|p| p.stalled_since.clone()),
        }
    }
}

impl During {
    /// What the report says of it: a rebalance storm, a stall.
    pub fn findings(&self, app: &str, group: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = self.rebalances.filter(|&n| n >= REBALANCE_STORM) {
            out.push(format!(
                "{app}: a rebalance storm: group `{group}` rebalanced {n} times during the step \
                 (each rebalance pauses consumption)"
            ));
        }
        if let Some(since) = &self.stalled_since {
            out.push(format!(
                "{app}: group `{group}` stalled since {since}: its commits stopped while its high \
                 watermark grew (stalled, not slow)"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f64, rebalances: Option<u64>, stalled: Option<&str>) -> Point {
        Point {
            t,
            rebalances,
            stalled_since: stalled.map(str::to_owned),
        }
    }

    #[test]
    fn rebalances_are_counted_from_the_last_sample_before_the_injection() {
        let track = GroupTrack {
            points: vec![
                point(0.0, Some(2), None),
                point(1.0, Some(2), None),
                point(2.0, Some(4), None),
                point(3.0, Some(7), None),
                point(9.0, Some(9), None),
            ],
        };
        let d = track.during(1.5, 5.0);
        assert_eq!(d.rebalances, Some(5));
        assert_eq!(d.findings("app", "g").len(), 1);
        assert!(d.findings("app", "g")[0].contains("rebalanced 5 times"));
        assert_eq!(track.during(0.5, 1.0).rebalances, Some(0));
        assert!(track.during(0.5, 1.0).findings("app", "g").is_empty());
    }

    #[test]
    fn no_description_is_no_count_and_a_stall_is_a_finding() {
        let track = GroupTrack {
            points: vec![
                point(0.0, None, None),
                point(2.0, None, Some("2026-01-01T00:00:00Z")),
            ],
        };
        let d = track.during(1.0, 3.0);
        assert_eq!(d.rebalances, None);
        assert_eq!(d.stalled_since.as_deref(), Some("2026-01-01T00:00:00Z"));
        let f = d.findings("app", "g");
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("stalled since 2026-01-01T00:00:00Z"), "{f:?}");
    }
}
