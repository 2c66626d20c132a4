//! Analysis: pure functions over timestamped lag samples.
//!
//! Nothing here reads a clock, a file or the network: every function takes samples with explicit
//! timestamps (seconds since the run start) and returns plain values, so the runner can call them
//! live (each sample, to decide when a step may end) and the report can call them afterwards with
//! the same result.
//!
//! The rules follow DESIGN.md, "Recovery and verdicts":
//! - [`baseline_band`]: the band lag must return into, from the baseline window.
//! - [`judge_step`]: spike, time to peak, recovery and the verdict of one application in one step.
//!   A verdict that depends on missing data is [`Verdict::Inconclusive`], never [`Verdict::Pass`].
//! - [`recovered_at`] and [`in_band_for`]: the live checks behind a step's end and the cooldown.
//! - [`tolerance`] and [`overprovisioning`]: per-target conclusions from a whole ladder.
//! - [`markets`]: a target's spot markets and the arithmetic over their history.
//!
//! A sample whose lag is `None`, NaN or infinite is missing: a gap, never a value.

mod band;
mod fmt;
pub mod headroom;
mod judge;
mod ladder;
pub mod markets;
#[cfg(test)]
mod props;
mod rules;
mod search;
mod series;

pub use band::{Band, BandSettings, baseline_band, percentile};
pub use fmt::fmt_secs;
pub use judge::{Gap, StepJudgement, StepRules, judge_step};
pub use ladder::{Overprovisioning, Tolerance, overprovisioning, tolerance};
pub use rules::{Judged, short_of_rung, with_rescheduling};
pub use search::{ASSUMPTION, Search, anomalies};
pub use series::{in_band_for, recovered_at};

/// One lag observation of one application.
///
/// `t` is seconds since an arbitrary epoch (the run start), monotonically increasing within a
/// series. `lag_s == None` means the sample is missing (broker unreachable, group missing, probe
/// error): a gap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the run start.
    pub t: f64,
    /// Application lag in seconds (max over its partitions); `None` when the sample is missing.
    pub lag_s: Option<f64>,
    /// Application lag in messages (sum over its partitions); `None` when unknown.
    pub lag_messages: Option<u64>,
}

impl Sample {
    /// The lag of this sample if it is usable: present and finite. NaN and infinities count as
    /// missing.
    pub fn valid_lag(&self) -> Option<f64> {
        self.lag_s.filter(|lag| lag.is_finite())
    }
}

/// The verdict for one application in one step (and, combined, for a step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Both SLOs held, decided by data with no gap before recovery.
    Pass,
    /// An SLO was broken, decided by observed data.
    Fail,
    /// Missing data (gaps, observation cut short) prevents deciding.
    Inconclusive,
}

impl Verdict {
    /// The name used in reports and JSON: `pass`, `fail` or `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The verdict of a whole made of parts (a step of its applications, a run of its targets):
    /// `fail` when any part failed, `pass` when every part passed, otherwise `inconclusive` —
    /// also for nothing at all (no part, no evidence).
    pub fn combine(parts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut combined = None;
        for v in parts {
            combined = Some(match (combined, v) {
                (_, Verdict::Fail) | (Some(Verdict::Fail), _) => Verdict::Fail,
                (None | Some(Verdict::Pass), Verdict::Pass) => Verdict::Pass,
                _ => Verdict::Inconclusive,
            });
        }
        combined.unwrap_or(Verdict::Inconclusive)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_match_serde() {
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(v.to_string(), v.as_str());
            let back: Verdict = serde_json::from_str(&json).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn combine_fails_on_any_failure_and_is_inconclusive_on_nothing() {
        use Verdict::{Fail, Inconclusive, Pass};
        assert_eq!(Verdict::combine([]), Inconclusive);
        assert_eq!(Verdict::combine([Pass, Pass]), Pass);
        assert_eq!(Verdict::combine([Pass, Inconclusive]), Inconclusive);
        assert_eq!(Verdict::combine([Inconclusive, Fail, Pass]), Fail);
        assert_eq!(Verdict::combine([Fail, Inconclusive]), Fail);
    }

    #[test]
    fn nan_and_infinite_lag_are_missing() {
        let s = |lag| Sample {
            t: 0.0,
            lag_s: Some(lag),
            lag_messages: None,
        };
        assert_eq!(s(f64::NAN).valid_lag(), None);
        assert_eq!(s(f64::INFINITY).valid_lag(), None);
        assert_eq!(s(3.0).valid_lag(), Some(3.0));
    }
}
