//! The verdict of one application in one step.
//!
//! The rule behind every branch: decide from observed data only. A spike above `max_lag` fails
//! whatever else is missing; a recovery that cannot have come in time (even if every missing sample
//! had been in band) fails; a pass needs a recovery observed with no gap between the injection and
//! it. Anything else that depends on missing data is inconclusive.

use super::series::{self, Point, Span};
use super::{Band, Sample, Verdict, fmt_secs};

/// Everything that decides one application's verdict in one step. Times are in seconds; `t0` is on
/// the same clock as the samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepRules {
    /// The injection moment.
    pub t0: f64,
    /// Lag must stay at or below the band's upper bound this long to count as recovered.
    pub hold_s: f64,
    /// Not recovered by `t0 + timeout_s` fails; samples after it are ignored.
    pub timeout_s: f64,
    /// Expected spacing of samples; consecutive valid samples further apart than 2.5 × this are a
    /// gap.
    pub sample_interval_s: f64,
    /// SLO: the spike must be at or below this.
    pub max_lag_s: f64,
    /// SLO: the recovery time must be at or below this.
    pub max_recovery_s: f64,
}

/// The outcome of [`judge_step`]: what was measured and the verdict, with its reason in words.
#[derive(Clone, Debug, PartialEq)]
pub struct StepJudgement {
    /// Max observed lag at or after `t0` (`None` if no valid sample).
    pub spike_lag_s: Option<f64>,
    /// Time of the (first) max minus `t0`.
    pub time_to_peak_s: Option<f64>,
    /// Absolute time where recovery starts: the first sample at or after `t0` of a run of samples
    /// all at or below the band's upper bound, with no gap, lasting at least `hold_s`.
    pub recovered_at: Option<f64>,
    /// `recovered_at − t0`.
    pub recovery_s: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// One sentence saying why, with the numbers that decided it.
    pub reason: String,
    /// Gaps at or after `t0`, relative to `t0`, in time order.
    pub gaps: Vec<Gap>,
}

/// A stretch of missing data, in seconds relative to the injection: from the last valid sample
/// before it (or the injection) to the first valid sample after it (or the end of observation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// Start, seconds after `t0`.
    pub from_s: f64,
    /// End, seconds after `t0`.
    pub to_s: f64,
}

/// Judge one application in one step from the samples observed for it.
///
/// Samples before `rules.t0` and after `t0 + timeout_s` are ignored. `observed_until` is the time
/// up to which observation actually ran: when it is before `t0 + timeout_s` and the application has
/// not recovered, the verdict is inconclusive unless the observed data already fails an SLO
/// (a spike above `max_lag`, or too little time left for a recovery within `max_recovery`).
///
/// The verdict, in order:
/// - no valid sample in the window: inconclusive;
/// - spike above `max_lag_s`: fail (observed, so gaps do not matter);
/// - no recovery possible within `max_recovery_s` (nor within the timeout), even if every missing
///   or unobserved sample had been in band: fail;
/// - recovered (observed) with no gap before `recovered_at`: pass;
/// - otherwise inconclusive, naming the gap (or the early end of observation) that prevents
///   deciding.
pub fn judge_step(
    samples: &[Sample],
    band: &Band,
    rules: &StepRules,
    observed_until: f64,
) -> StepJudgement {
    let mut judgement = StepJudgement {
        spike_lag_s: None,
        time_to_peak_s: None,
        recovered_at: None,
        recovery_s: None,
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        gaps: Vec::new(),
    };
    if let Some(problem) = invalid(band, rules) {
        judgement.reason = format!("cannot judge: {problem}");
        return judgement;
    }

    let t0 = rules.t0;
    let end = t0 + rules.timeout_s;
    let upper = band.upper_s;
    let spacing = series::max_spacing(rules.sample_interval_s);
    let points = series::points(samples, t0, end);
    let observed_end = observed_end(&points, t0, end, observed_until);
    let gaps = series::gaps(&points, t0, observed_end, spacing);
    judgement.gaps = gaps
        .iter()
        .map(|g| Gap {
            from_s: g.from - t0,
            to_s: g.to - t0,
        })
        .collect();

    let Some((peak_t, spike)) = peak(&points) else {
        judgement.reason = "no lag samples after the injection".to_owned();
        return judgement;
    };
    judgement.spike_lag_s = Some(spike);
    judgement.time_to_peak_s = Some(peak_t - t0);

    let calm = series::after_peak(&points);
    let recovered = series::low_runs(calm, upper, spacing)
        .iter()
        .find(|run| series::holds(run, rules.hold_s))
        .map(|run| run.start);
    judgement.recovered_at = recovered;
    judgement.recovery_s = recovered.map(|r| r - t0);

    let (verdict, reason) = decide(&Facts {
        rules,
        upper,
        end,
        spacing,
        observed_end,
        points: &points,
        gaps: &gaps,
        spike,
        recovered,
    });
    judgement.verdict = verdict;
    judgement.reason = reason;
    judgement
}

/// What [`decide`] works from.
struct Facts<'a> {
    rules: &'a StepRules,
    upper: f64,
    /// `t0 + timeout`.
    end: f64,
    spacing: f64,
    observed_end: f64,
    points: &'a [Point],
    gaps: &'a [Span],
    spike: f64,
    recovered: Option<f64>,
}

fn decide(f: &Facts<'_>) -> (Verdict, String) {
    let rules = f.rules;
    let t0 = rules.t0;
    if f.spike > rules.max_lag_s {
        let reason = format!(
            "spike {:.1} s exceeds max_lag {}",
            f.spike,
            fmt_secs(rules.max_lag_s)
        );
        return (Verdict::Fail, reason);
    }
    let earliest = earliest_recovery(f);
    if earliest.is_none_or(|e| e - t0 > rules.max_recovery_s) {
        return (Verdict::Fail, too_late(f, earliest));
    }
    match f.recovered {
        Some(r) => recovered(f, r),
        None => (Verdict::Inconclusive, undecided(f, earliest)),
    }
}

/// The earliest time recovery could have held, counting unknown data (the gaps, and the time
/// not yet observed before the timeout) as possibly in band; `None` when it cannot in time.
fn earliest_recovery(f: &Facts<'_>) -> Option<f64> {
    let mut unknown = f.gaps.to_vec();
    if f.observed_end < f.end {
        unknown.push(Span {
            from: f.observed_end,
            to: f.end,
        });
    }
    // Recovery follows the spike: it cannot start before the peak — the observed one, or a
    // higher one hidden in unknown data before it.
    let observed_peak = series::after_peak(f.points)
        .first()
        .map_or(f.rules.t0, |p| p.t);
    let peak_t = unknown
        .iter()
        .map(|u| u.from)
        .filter(|&from| from < observed_peak)
        .fold(observed_peak, f64::min);
    let calm: Vec<Point> = f.points.iter().copied().filter(|p| p.t >= peak_t).collect();
    let unknown: Vec<Span> = unknown
        .iter()
        .filter(|u| u.to > peak_t)
        .map(|u| Span {
            from: u.from.max(peak_t),
            to: u.to,
        })
        .collect();
    earliest_possible_recovery(&calm, f.upper, f.rules.hold_s, &unknown)
}

/// Why a step that cannot recover within max_recovery fails.
fn too_late(f: &Facts<'_>, earliest: Option<f64>) -> String {
    let rules = f.rules;
    match f.recovered {
        Some(r) => format!(
            "recovered in {:.1} s, slower than max_recovery {}",
            r - rules.t0,
            fmt_secs(rules.max_recovery_s)
        ),
        None if earliest.is_none() => format!(
            "not recovered within timeout {} ({})",
            fmt_secs(rules.timeout_s),
            last_lag(f)
        ),
        None => format!(
            "not recovered within max_recovery {} ({})",
            fmt_secs(rules.max_recovery_s),
            last_lag(f)
        ),
    }
}

/// Recovered at `r` in time: a pass, unless samples are missing before it.
fn recovered(f: &Facts<'_>, r: f64) -> (Verdict, String) {
    let rules = f.rules;
    let t0 = rules.t0;
    match f.gaps.iter().find(|g| g.from < r) {
        None => {
            let reason = format!(
                "recovered in {:.1} s (max_recovery {}), spike {:.1} s (max_lag {})",
                r - t0,
                fmt_secs(rules.max_recovery_s),
                f.spike,
                fmt_secs(rules.max_lag_s)
            );
            (Verdict::Pass, reason)
        }
        Some(g) => {
            let reason = format!(
                "samples missing from {:.1} s to {:.1} s after injection, before recovery at \
                 {:.1} s: the spike may have been missed",
                g.from - t0,
                g.to - t0,
                r - t0
            );
            (Verdict::Inconclusive, reason)
        }
    }
}

/// Not recovered, but a recovery in time is possible through unknown data: name that data.
fn undecided(f: &Facts<'_>, earliest: Option<f64>) -> String {
    let t0 = f.rules.t0;
    let blocking = earliest.and_then(|e| f.gaps.iter().find(|g| g.to > e));
    match blocking {
        Some(g) => format!(
            "samples missing from {:.1} s to {:.1} s after injection, when recovery was being \
             decided",
            g.from - t0,
            g.to - t0
        ),
        None => format!(
            "observation ended {:.1} s after injection, before recovery (timeout {})",
            f.observed_end - t0,
            fmt_secs(f.rules.timeout_s)
        ),
    }
}

/// "lag 95.0 s at the end, band 7.0 s", from the last valid sample.
fn last_lag(f: &Facts<'_>) -> String {
    let last = f
        .points
        .iter()
        .rev()
        .find_map(|p| p.lag.map(|lag| (p.t, lag)));
    match last {
        Some((t, lag)) if f.end - t <= f.spacing => {
            format!("lag {lag:.1} s at the end, band {:.1} s", f.upper)
        }
        Some((t, lag)) => format!(
            "lag {lag:.1} s at {:.1} s after injection, band {:.1} s",
            t - f.rules.t0,
            f.upper
        ),
        None => format!("band {:.1} s", f.upper),
    }
}

/// Why the band or rules cannot be judged with, if they cannot.
fn invalid(band: &Band, rules: &StepRules) -> Option<String> {
    let checks = [
        ("the injection time", rules.t0, rules.t0.is_finite()),
        (
            "the band's upper bound",
            band.upper_s,
            band.upper_s.is_finite(),
        ),
        ("timeout", rules.timeout_s, rules.timeout_s >= 0.0),
        ("hold", rules.hold_s, rules.hold_s >= 0.0),
        ("max_lag", rules.max_lag_s, !rules.max_lag_s.is_nan()),
        (
            "max_recovery",
            rules.max_recovery_s,
            !rules.max_recovery_s.is_nan(),
        ),
    ];
    checks
        .iter()
        .find(|(_, _, ok)| !ok)
        .map(|(what, value, _)| format!("{what} is {value}"))
}

/// The time up to which lag was observed: `observed_until`, but never before the last sample nor
/// after the timeout.
fn observed_end(points: &[Point], t0: f64, end: f64, observed_until: f64) -> f64 {
    let mut observed = points.last().map_or(t0, |p| p.t.max(t0));
    if observed_until > observed {
        observed = observed_until;
    }
    observed.min(end)
}

/// The first valid sample with the highest lag, as (t, lag).
fn peak(points: &[Point]) -> Option<(f64, f64)> {
    points
        .iter()
        .filter_map(|p| p.lag.map(|lag| (p.t, lag)))
        .fold(None, |best, (t, lag)| match best {
            Some((_, top)) if top >= lag => best,
            _ => Some((t, lag)),
        })
}

/// The earliest time recovery could have started if every unknown stretch had been in band, or
/// `None` when no recovery was possible by `end`.
///
/// A start is a known in-band sample, or the start of an unknown region (an infimum: recovery
/// could start just after it). From a start `s`, no known above-band sample may lie within
/// `s..=s + hold_s`, and the hold must be confirmed before the next known above-band sample: by a
/// known in-band sample at or after `s + hold_s`, or by an unknown region reaching past it (where
/// such a sample could have been). Between known samples without a gap nothing else is possible.
fn earliest_possible_recovery(
    points: &[Point],
    upper: f64,
    hold_s: f64,
    unknown: &[Span],
) -> Option<f64> {
    let valid = || points.iter().filter_map(|p| p.lag.map(|lag| (p.t, lag)));
    let highs: Vec<f64> = valid()
        .filter(|&(_, lag)| lag > upper)
        .map(|(t, _)| t)
        .collect();
    let lows: Vec<f64> = valid()
        .filter(|&(_, lag)| lag <= upper)
        .map(|(t, _)| t)
        .collect();
    // Regions are disjoint and in time order, so their ends are sorted too.
    let regions: Vec<&Span> = unknown.iter().filter(|u| u.to > u.from).collect();

    let feasible = |s: f64, open: bool| {
        let held = s + hold_s;
        // The first known above-band sample from s on (after s, for an infimum).
        let next_high = highs
            .get(highs.partition_point(|&h| if open { h <= s } else { h < s }))
            .copied()
            .unwrap_or(f64::INFINITY);
        if next_high <= held {
            return false;
        }
        let confirmed_by_sample = lows
            .get(lows.partition_point(|&l| l < held))
            .is_some_and(|&l| l < next_high);
        let confirmed_by_region = regions
            .get(regions.partition_point(|u| u.to <= held))
            .is_some_and(|u| u.from < next_high);
        confirmed_by_sample || confirmed_by_region
    };
    let from_samples = lows.iter().copied().filter(|&s| feasible(s, false));
    let from_regions = regions
        .iter()
        .map(|u| u.from)
        .filter(|&s| feasible(s, true));
    from_samples.chain(from_regions).min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::series::tests::series;

    /// Band 10 s; hold 10 s; timeout 3m; one sample per 5 s; max_lag 60 s; max_recovery 2m.
    const BAND: Band = Band {
        p99_s: 5.0,
        upper_s: 10.0,
        samples: 100,
    };
    const RULES: StepRules = StepRules {
        t0: 100.0,
        hold_s: 10.0,
        timeout_s: 180.0,
        sample_interval_s: 5.0,
        max_lag_s: 60.0,
        max_recovery_s: 120.0,
    };

    /// RULES with time to recover up to the timeout and beyond.
    const PATIENT: StepRules = StepRules {
        max_recovery_s: 600.0,
        ..RULES
    };

    /// Not recovered, with this verdict and reason.
    fn assert_unrecovered(j: &StepJudgement, verdict: Verdict, reason: &str) {
        assert_eq!(j.verdict, verdict);
        assert_eq!(j.recovered_at, None);
        assert_eq!(j.reason, reason);
    }

    /// Inconclusive, with one gap from `from_s` to `to_s` after the injection.
    fn assert_inconclusive_gap(j: &StepJudgement, from_s: f64, to_s: f64) {
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.gaps, [Gap { from_s, to_s }]);
    }

    fn all(lags: &[f64]) -> Vec<Option<f64>> {
        lags.iter().copied().map(Some).collect()
    }

    /// Samples every 5 s from t0 with the given lags, then in-band samples (5 s) up to `until`.
    fn rising_then_calm(lags: &[f64], until: f64) -> Vec<Sample> {
        let mut s = series(RULES.t0, 5.0, &all(lags));
        let mut t = RULES.t0 + 5.0 * lags.len() as f64;
        while t <= until {
            s.push(Sample {
                t,
                lag_s: Some(5.0),
                lag_messages: None,
            });
            t += 5.0;
        }
        s
    }

    fn judge(samples: &[Sample], observed_until: f64) -> StepJudgement {
        judge_step(samples, &BAND, &RULES, observed_until)
    }

    #[test]
    fn pass_with_spike_time_to_peak_and_recovery() {
        // Baseline before t0 is ignored; peak 40 at t0 + 10; in band from t0 + 20, held to + 30.
        let mut s = series(0.0, 5.0, &all(&[99.0; 20]));
        s.extend(rising_then_calm(&[12.0, 30.0, 40.0, 20.0], RULES.t0 + 30.0));
        let j = judge(&s, RULES.t0 + 30.0);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert_eq!(j.spike_lag_s, Some(40.0));
        assert_eq!(j.time_to_peak_s, Some(10.0));
        assert_eq!(j.recovered_at, Some(RULES.t0 + 20.0));
        assert_eq!(j.recovery_s, Some(20.0));
        assert_eq!(
            j.reason,
            "recovered in 20.0 s (max_recovery 2m), spike 40.0 s (max_lag 60 s)"
        );
        assert!(j.gaps.is_empty());
    }

    #[test]
    fn time_to_peak_is_the_first_max() {
        let s = rising_then_calm(&[30.0, 40.0, 40.0], RULES.t0 + 40.0);
        let j = judge(&s, RULES.t0 + 40.0);
        assert_eq!(j.time_to_peak_s, Some(5.0));
    }

    #[test]
    fn a_dip_shorter_than_the_hold_is_not_recovery() {
        let s = rising_then_calm(&[40.0, 8.0, 40.0, 30.0], RULES.t0 + 50.0);
        let j = judge(&s, RULES.t0 + 50.0);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert_eq!(j.recovery_s, Some(20.0));
    }

    #[test]
    fn fail_on_spike_names_both_numbers() {
        let s = rising_then_calm(&[30.0, 75.2, 20.0], RULES.t0 + 40.0);
        let j = judge(&s, RULES.t0 + 40.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reason, "spike 75.2 s exceeds max_lag 60 s");
        assert_eq!(j.recovery_s, Some(15.0));
    }

    #[test]
    fn fail_on_spike_despite_gaps() {
        let s = series(RULES.t0, 5.0, &[None, Some(90.0), None, None]);
        let j = judge(&s, RULES.t0 + 15.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(!j.gaps.is_empty());
    }

    #[test]
    fn fail_on_slow_recovery() {
        // 30 samples above band (150 s), then calm: recovered in 150 s > 2m.
        let s = rising_then_calm(&[30.0; 30], RULES.t0 + 170.0);
        let j = judge(&s, RULES.t0 + 170.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.recovery_s, Some(150.0));
        assert_eq!(
            j.reason,
            "recovered in 150.0 s, slower than max_recovery 2m"
        );
    }

    #[test]
    fn fail_on_timeout() {
        let s = series(RULES.t0, 5.0, &all(&[30.0; 36]));
        let mut s = s;
        s.push(Sample {
            t: RULES.t0 + 180.0,
            lag_s: Some(45.0),
            lag_messages: None,
        });
        let j = judge_step(&s, &BAND, &PATIENT, RULES.t0 + 180.0);
        assert_unrecovered(
            &j,
            Verdict::Fail,
            "not recovered within timeout 3m (lag 45.0 s at the end, band 10.0 s)",
        );
    }

    #[test]
    fn fail_on_timeout_when_the_last_dip_is_shorter_than_the_hold() {
        let mut lags = vec![30.0; 35];
        lags.extend([5.0, 5.0]);
        let s = series(RULES.t0, 5.0, &all(&lags));
        let j = judge_step(&s, &BAND, &PATIENT, RULES.t0 + 180.0);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
    }

    #[test]
    fn fail_early_when_max_recovery_has_passed() {
        // Observed for 130 s, always above band: recovery within 2m is no longer possible.
        let s = series(RULES.t0, 5.0, &all(&[30.0; 27]));
        let j = judge(&s, RULES.t0 + 130.0);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(
            j.reason,
            "not recovered within max_recovery 2m (lag 30.0 s at 130.0 s after injection, band 10.0 s)"
        );
    }

    #[test]
    fn inconclusive_on_a_gap_before_recovery() {
        let mut lags = all(&[20.0, 30.0, 30.0]);
        lags.extend([None, None]);
        lags.extend(all(&[20.0, 5.0, 5.0, 5.0]));
        let s = series(RULES.t0, 5.0, &lags);
        let j = judge(&s, RULES.t0 + 40.0);
        assert_inconclusive_gap(&j, 10.0, 25.0);
        assert_eq!(j.recovered_at, Some(RULES.t0 + 30.0));
        assert_eq!(
            j.reason,
            "samples missing from 10.0 s to 25.0 s after injection, before recovery at 30.0 s: \
             the spike may have been missed"
        );
    }

    #[test]
    fn inconclusive_when_the_first_sample_comes_late() {
        // Nothing for 20 s after the injection: the spike may have been there.
        let s = series(RULES.t0 + 20.0, 5.0, &all(&[5.0, 5.0, 5.0]));
        let j = judge(&s, RULES.t0 + 30.0);
        assert_inconclusive_gap(&j, 0.0, 20.0);
    }

    #[test]
    fn inconclusive_on_spacing_gap_before_recovery() {
        let mut s = series(RULES.t0, 5.0, &all(&[30.0, 30.0]));
        s.extend(series(RULES.t0 + 20.0, 5.0, &all(&[5.0, 5.0, 5.0])));
        let j = judge(&s, RULES.t0 + 30.0);
        assert_inconclusive_gap(&j, 5.0, 20.0);
    }

    #[test]
    fn inconclusive_when_cut_short() {
        let s = series(RULES.t0, 5.0, &all(&[30.0, 40.0, 30.0, 20.0]));
        let j = judge(&s, RULES.t0 + 15.0);
        assert_unrecovered(
            &j,
            Verdict::Inconclusive,
            "observation ended 15.0 s after injection, before recovery (timeout 3m)",
        );
    }

    #[test]
    fn inconclusive_when_a_gap_could_hide_the_recovery() {
        // Above band, 60 s of nothing, above band to the timeout: lag may have recovered in the gap.
        let mut lags = all(&[30.0; 10]);
        lags.extend([None; 11]);
        lags.extend(all(&[30.0; 16]));
        let s = series(RULES.t0, 5.0, &lags);
        let j = judge_step(&s, &BAND, &PATIENT, RULES.t0 + 180.0);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert_eq!(
            j.reason,
            "samples missing from 45.0 s to 105.0 s after injection, when recovery was being decided"
        );
    }

    #[test]
    fn fail_when_gaps_are_too_short_to_hide_a_recovery() {
        // A one-sample gap (10 s) cannot hold a 15 s hold: still a timeout.
        let rules = StepRules {
            max_recovery_s: 600.0,
            hold_s: 15.0,
            ..RULES
        };
        let mut lags = all(&[30.0; 10]);
        lags.push(None);
        lags.extend(all(&[30.0; 26]));
        let s = series(RULES.t0, 5.0, &lags);
        let j = judge_step(&s, &BAND, &rules, RULES.t0 + 180.0);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(
            j.gaps,
            [Gap {
                from_s: 45.0,
                to_s: 55.0
            }]
        );
    }

    #[test]
    fn slow_recovery_after_a_gap_is_inconclusive_if_it_could_have_been_faster() {
        // Gap from 10 s to 140 s, in band from 140 s: recovery may have been at 10 s.
        let mut s = series(RULES.t0, 5.0, &all(&[30.0, 30.0, 30.0]));
        s.extend(series(RULES.t0 + 140.0, 5.0, &all(&[5.0; 5])));
        let j = judge(&s, RULES.t0 + 160.0);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert_eq!(j.recovery_s, Some(140.0));
    }

    #[test]
    fn slow_recovery_after_a_late_gap_still_fails() {
        // Above band for 125 s, a gap, in band from 140 s: recovery cannot have been within 2m.
        let mut s = series(RULES.t0, 5.0, &all(&[30.0; 26]));
        s.extend(series(RULES.t0 + 140.0, 5.0, &all(&[5.0; 5])));
        let j = judge(&s, RULES.t0 + 160.0);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
    }

    #[test]
    fn gaps_after_recovery_do_not_matter() {
        let mut s = rising_then_calm(&[30.0, 20.0], RULES.t0 + 30.0);
        s.push(Sample {
            t: RULES.t0 + 35.0,
            lag_s: None,
            lag_messages: None,
        });
        let j = judge(&s, RULES.t0 + 60.0);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert_eq!(
            j.gaps,
            [Gap {
                from_s: 30.0,
                to_s: 60.0
            }]
        );
    }

    #[test]
    fn no_samples_is_inconclusive() {
        let s = series(RULES.t0, 5.0, &[None, None, Some(f64::NAN)]);
        let j = judge(&s, RULES.t0 + 180.0);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.reason, "no lag samples after the injection");
        assert_eq!(j.spike_lag_s, None);
        assert_eq!(
            j.gaps,
            [Gap {
                from_s: 0.0,
                to_s: 180.0
            }]
        );
        let j = judge(&[], RULES.t0);
        assert_eq!(j.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn samples_after_the_timeout_are_ignored() {
        let s = rising_then_calm(&[30.0; 37], RULES.t0 + 300.0);
        let j = judge_step(&s, &BAND, &PATIENT, RULES.t0 + 300.0);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(j.recovered_at, None);
    }

    #[test]
    fn invalid_rules_are_inconclusive() {
        let rules = StepRules {
            t0: f64::NAN,
            ..RULES
        };
        let s = rising_then_calm(&[30.0], RULES.t0 + 30.0);
        let j = judge_step(&s, &BAND, &rules, RULES.t0 + 30.0);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.reason, "cannot judge: the injection time is NaN");
        let band = Band {
            upper_s: f64::NAN,
            ..BAND
        };
        assert_eq!(
            judge_step(&s, &band, &RULES, RULES.t0 + 30.0).verdict,
            Verdict::Inconclusive
        );
        // A bad interval makes every spacing a gap: never a pass.
        let rules = StepRules {
            sample_interval_s: 0.0,
            ..RULES
        };
        assert_ne!(
            judge_step(&s, &BAND, &rules, RULES.t0 + 30.0).verdict,
            Verdict::Pass
        );
    }
}
