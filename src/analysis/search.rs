//! The ladder as a search for the breaking point: escalate (`from`, 2·`from`, 4·`from` … capped
//! at `max`) until the first step that does not pass, then bisect between the last pass below it
//! and it. The next rung is a pure function of the results so far, so a resumed run that replays
//! its journaled results continues the very same search.
//!
//! The assumption: losing more nodes never hurts less (a pass above a failure is noise or
//! timing, and [`anomalies`] names it).

use serde::{Deserialize, Serialize};

use super::Verdict;

/// A ladder that searches: the plan's `ladder: {search: {from, max}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    /// The first rung, and the floor of the search.
    pub from: u32,
    /// The largest rung the search may try.
    pub max: u32,
}

/// The assumption a search rests on, in the report's words.
pub const ASSUMPTION: &str = "the search assumes that losing more nodes never hurts less: it \
     escalates until the first step that does not pass, then bisects between the last pass \
     below it and it";

impl Search {
    /// The next number of terminations to try after `results` (terminations, verdict, in the
    /// order run); `None` when the search is over. A verdict other than pass counts as a
    /// failure.
    pub fn next(&self, results: &[(u32, Verdict)]) -> Option<u32> {
        if self.from == 0 || self.max < self.from {
            return None;
        }
        let Some(hi) = lowest_failure(results) else {
            // Escalating: every step so far passed.
            let top = results.iter().map(|r| r.0).max();
            return match top {
                None => Some(self.from),
                Some(t) if t >= self.max => None,
                Some(t) => Some(t.saturating_mul(2).clamp(self.from, self.max)),
            };
        };
        let lo = highest_pass_below(results, hi)?;
        (hi - lo > 1).then(|| lo + (hi - lo) / 2)
    }

    /// The most steps the search can take, over every possible limit.
    pub fn worst_case_steps(&self) -> usize {
        (self.from.saturating_sub(1)..=self.max)
            .map(|limit| self.steps_for(limit))
            .max()
            .unwrap_or(0)
    }

    /// The steps the search takes against a target that tolerates exactly `limit`.
    pub fn steps_for(&self, limit: u32) -> usize {
        let mut results = Vec::new();
        while let Some(n) = self.next(&results) {
            let v = if n <= limit {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            results.push((n, v));
        }
        results.len()
    }
}

/// The smallest number of terminations that did not pass.
fn lowest_failure(results: &[(u32, Verdict)]) -> Option<u32> {
    results
        .iter()
        .filter(|r| r.1 != Verdict::Pass)
        .map(|r| r.0)
        .min()
}

/// The largest pass below `hi`; `None` when none (the first rung failed: the search is over).
fn highest_pass_below(results: &[(u32, Verdict)], hi: u32) -> Option<u32> {
    results
        .iter()
        .filter(|r| r.1 == Verdict::Pass && r.0 < hi)
        .map(|r| r.0)
        .max()
}

/// Passes above a failure (the assumption did not hold: noise, timing), as (pass, failure)
/// terminations, each pass with the smallest failure below it.
pub fn anomalies(results: &[(u32, Verdict)]) -> Vec<(u32, u32)> {
    let Some(hi) = lowest_failure(results) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, u32)> = results
        .iter()
        .filter(|r| r.1 == Verdict::Pass && r.0 > hi)
        .map(|r| (r.0, hi))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Fail, Inconclusive, Pass};

    const S: Search = Search { from: 1, max: 12 };

    fn run(search: Search, limit: u32) -> Vec<u32> {
        let mut results = Vec::new();
        while let Some(n) = search.next(&results) {
            results.push((n, if n <= limit { Pass } else { Fail }));
        }
        results.iter().map(|r| r.0).collect()
    }

    #[test]
    fn escalates_by_doubling_up_to_max() {
        assert_eq!(run(S, 12), vec![1, 2, 4, 8, 12]);
        assert_eq!(run(Search { from: 3, max: 20 }, 99), vec![3, 6, 12, 20]);
    }

    #[test]
    fn bisects_between_the_last_pass_and_the_first_failure() {
        // 1, 2, 4 pass; 8 fails; then 6 passes, 7 fails: the limit is 6.
        assert_eq!(run(S, 6), vec![1, 2, 4, 8, 6, 7]);
        assert_eq!(run(S, 4), vec![1, 2, 4, 8, 6, 5]);
        assert_eq!(run(S, 0), vec![1]);
        assert_eq!(run(S, 11), vec![1, 2, 4, 8, 12, 10, 11]);
    }

    #[test]
    fn an_inconclusive_step_counts_as_not_passing() {
        let r = [(1, Pass), (2, Pass), (4, Inconclusive)];
        assert_eq!(S.next(&r), Some(3));
    }

    #[test]
    fn a_pass_above_a_failure_is_named_and_does_not_move_the_search() {
        let r = [(1, Pass), (2, Pass), (4, Fail), (3, Fail), (8, Pass)];
        assert_eq!(S.next(&r), None);
        assert_eq!(anomalies(&r), vec![(8, 3)]);
        assert!(anomalies(&[(1, Pass), (2, Fail)]).is_empty());
    }

    #[test]
    fn worst_case_steps() {
        assert_eq!(S.worst_case_steps(), 7);
        assert_eq!(Search { from: 1, max: 1 }.worst_case_steps(), 1);
        assert_eq!(Search { from: 0, max: 3 }.worst_case_steps(), 0);
    }
}
