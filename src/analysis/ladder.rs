//! Conclusions per target from a whole ladder: tolerance and the overprovisioning hint.

use super::Verdict;

/// How many simultaneous terminations a target tolerates, and where the ladder first broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// The largest N such that every step with N or fewer terminations passed (0 if the smallest
    /// step did not pass).
    pub tolerated: u32,
    /// Index (into the given steps) of the first step, by ascending terminations, that did not pass
    /// (fail, inconclusive, or not run); `None` when every step passed.
    pub first_failure: Option<usize>,
}

/// The tolerance of a target from its steps in ladder order, as (terminations, verdict), with
/// `None` for a step that was not run.
///
/// Steps are considered by ascending terminations; the first that did not pass ends the streak.
/// Steps with the same number of terminations must all pass for that number to be tolerated, and
/// between them the one earlier in the ladder is named as the first failure.
pub fn tolerance(steps: &[(u32, Option<Verdict>)]) -> Tolerance {
    let mut order: Vec<usize> = (0..steps.len()).collect();
    // Stable: among equal terminations, ladder order decides.
    order.sort_by_key(|&i| steps[i].0);
    let mut tolerated = 0;
    let mut i = 0;
    while let Some(&first) = order.get(i) {
        let n = steps[first].0;
        let same = order[i..].iter().take_while(|&&j| steps[j].0 == n).count();
        let group = &order[i..i + same];
        if let Some(&failed) = group.iter().find(|&&j| steps[j].1 != Some(Verdict::Pass)) {
            return Tolerance {
                tolerated,
                first_failure: Some(failed),
            };
        }
        tolerated = n;
        i += same;
    }
    Tolerance {
        tolerated,
        first_failure: None,
    }
}

/// The overprovisioning hint for a target (the seed rule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overprovisioning {
    /// The most node losses within any window as long as the replacement lead time.
    pub max_losses_in_lead_time: u32,
    /// The safety multiple applied (3 by default in plans).
    pub multiple: f64,
    /// Spare nodes to keep: `max_losses_in_lead_time × multiple`, rounded up.
    pub spare_nodes: u32,
}

/// The seed's overprovisioning rule: spare nodes = (most nodes lost within the replacement lead
/// time) × `multiple`, rounded up.
///
/// `losses` are the times (seconds) at which nodes were lost, in any order; `lead_time_s` is the
/// observed time for a replacement to join. Losses `lead_time_s` apart or less count in the same
/// window. Non-finite times are skipped; a negative or NaN lead time counts only simultaneous
/// losses together; a negative or NaN multiple gives no spare nodes.
pub fn overprovisioning(losses: &[f64], lead_time_s: f64, multiple: f64) -> Overprovisioning {
    let mut times: Vec<f64> = losses.iter().copied().filter(|t| t.is_finite()).collect();
    times.sort_by(f64::total_cmp);
    let lead = if lead_time_s >= 0.0 { lead_time_s } else { 0.0 };
    // Two pointers: for each loss as the window's last, the earliest loss within `lead` before it.
    let mut most = 0usize;
    let mut start = 0usize;
    for (end, &t) in times.iter().enumerate() {
        while times.get(start).is_some_and(|&s| t - s > lead) {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    let max_losses = u32::try_from(most).unwrap_or(u32::MAX);
    // A little slack so that 10 × 0.3 is 3, not 4; the cast saturates (NaN and negatives give 0).
    let spare = (f64::from(max_losses) * multiple - 1e-9).ceil() as u32;
    Overprovisioning {
        max_losses_in_lead_time: max_losses,
        multiple,
        spare_nodes: spare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Fail, Inconclusive, Pass};

    #[test]
    fn all_pass_tolerates_the_largest() {
        let t = tolerance(&[(1, Some(Pass)), (2, Some(Pass)), (3, Some(Pass))]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 3,
                first_failure: None
            }
        );
    }

    #[test]
    fn a_failure_ends_the_streak() {
        let t = tolerance(&[(1, Some(Pass)), (2, Some(Fail)), (3, Some(Pass))]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 1,
                first_failure: Some(1)
            }
        );
    }

    #[test]
    fn unsorted_ladder_is_taken_by_terminations() {
        let t = tolerance(&[(3, Some(Pass)), (1, Some(Pass)), (2, Some(Pass))]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 3,
                first_failure: None
            }
        );
        let t = tolerance(&[(3, Some(Pass)), (1, Some(Pass)), (2, Some(Inconclusive))]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 1,
                first_failure: Some(2)
            }
        );
    }

    #[test]
    fn steps_not_run_end_the_streak() {
        let t = tolerance(&[(1, Some(Pass)), (3, Some(Pass)), (6, None)]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 3,
                first_failure: Some(2)
            }
        );
        let t = tolerance(&[(1, None), (3, None)]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 0,
                first_failure: Some(0)
            }
        );
    }

    #[test]
    fn smallest_step_failing_tolerates_nothing() {
        let t = tolerance(&[(2, Some(Pass)), (1, Some(Fail))]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 0,
                first_failure: Some(1)
            }
        );
    }

    #[test]
    fn empty_ladder() {
        assert_eq!(
            tolerance(&[]),
            Tolerance {
                tolerated: 0,
                first_failure: None
            }
        );
    }

    #[test]
    fn repeated_terminations_must_all_pass() {
        let t = tolerance(&[
            (1, Some(Pass)),
            (2, Some(Pass)),
            (2, Some(Fail)),
            (3, Some(Pass)),
        ]);
        assert_eq!(
            t,
            Tolerance {
                tolerated: 1,
                first_failure: Some(2)
            }
        );
    }

    #[test]
    fn overprovisioning_counts_the_busiest_window() {
        // Lead time 5m: 0, 100, 250 fall in one window; 400, 650 in another.
        let o = overprovisioning(&[400.0, 0.0, 250.0, 650.0, 100.0], 300.0, 3.0);
        assert_eq!(
            o,
            Overprovisioning {
                max_losses_in_lead_time: 3,
                multiple: 3.0,
                spare_nodes: 9
            }
        );
    }

    #[test]
    fn overprovisioning_window_includes_its_ends() {
        let o = overprovisioning(&[0.0, 300.0, 600.0], 300.0, 3.0);
        assert_eq!(o.max_losses_in_lead_time, 2);
        let o = overprovisioning(&[0.0, 300.5, 601.0], 300.0, 3.0);
        assert_eq!(o.max_losses_in_lead_time, 1);
    }

    #[test]
    fn overprovisioning_simultaneous_losses() {
        let o = overprovisioning(&[10.0; 6], 0.0, 1.5);
        assert_eq!(o.max_losses_in_lead_time, 6);
        assert_eq!(o.spare_nodes, 9);
    }

    #[test]
    fn overprovisioning_rounds_up_without_float_noise() {
        assert_eq!(overprovisioning(&[0.0; 3], 10.0, 1.1).spare_nodes, 4);
        assert_eq!(overprovisioning(&[0.0; 10], 10.0, 0.3).spare_nodes, 3);
    }

    #[test]
    fn overprovisioning_odd_inputs() {
        assert_eq!(overprovisioning(&[], 300.0, 3.0).spare_nodes, 0);
        let o = overprovisioning(&[f64::NAN, 1.0, f64::INFINITY], f64::NAN, f64::NAN);
        assert_eq!(o.max_losses_in_lead_time, 1);
        assert_eq!(o.spare_nodes, 0);
        assert_eq!(overprovisioning(&[1.0], 10.0, -3.0).spare_nodes, 0);
    }
}
