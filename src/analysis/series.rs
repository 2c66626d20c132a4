//! A series of samples: normalising, gaps, runs in band, and the live recovery checks.

use super::Sample;

/// One sample reduced to what the analysis uses: a finite time and a usable lag (or none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub t: f64,
    /// `None` when the sample is missing (also for NaN or infinite lag).
    pub lag: Option<f64>,
}

/// The samples with a finite `t` in `from..=to`, ordered by time (stable for equal times).
///
/// Series are expected in order already; sorting a copy keeps the analysis right if one is not.
pub(crate) fn points(samples: &[Sample], from: f64, to: f64) -> Vec<Point> {
    let mut points: Vec<Point> = samples
        .iter()
        .filter(|s| s.t.is_finite() && s.t >= from && s.t <= to)
        .map(|s| Point {
            t: s.t,
            lag: s.valid_lag(),
        })
        .collect();
    if !points.is_sorted_by(|a, b| a.t <= b.t) {
        points.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
    points
}

/// Consecutive valid samples further apart than this are a gap: 2.5 × the sample interval.
///
/// A nonsensical interval (zero, negative, NaN, infinite) makes any spacing a gap, so bad settings
/// can only make a verdict inconclusive, never pass it.
pub(crate) fn max_spacing(sample_interval_s: f64) -> f64 {
    if sample_interval_s.is_finite() && sample_interval_s > 0.0 {
        2.5 * sample_interval_s
    } else {
        0.0
    }
}

/// A maximal run of consecutive valid samples all at or below the band, with no gap between them
/// (no missing sample, no spacing above [`max_spacing`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Run {
    /// Time of the first sample of the run.
    pub start: f64,
    /// Time of the last sample of the run.
    pub end: f64,
}

/// All maximal in-band runs of `points` (which must be ordered by time), in order.
pub(crate) fn low_runs(points: &[Point], upper_s: f64, max_spacing: f64) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut current: Option<Run> = None;
    for p in points {
        let in_band = p.lag.is_some_and(|lag| lag <= upper_s);
        current = match (current, in_band) {
            (Some(run), true) if p.t - run.end <= max_spacing => Some(Run { end: p.t, ..run }),
            (Some(run), true) => {
                runs.push(run);
                Some(Run {
                    start: p.t,
                    end: p.t,
                })
            }
            (None, true) => Some(Run {
                start: p.t,
                end: p.t,
            }),
            (Some(run), false) => {
                runs.push(run);
                None
            }
            (None, false) => None,
        };
    }
    runs.extend(current);
    runs
}

/// Whether `run` lasts at least `hold_s`: its last sample is at or after start + hold.
pub(crate) fn holds(run: &Run, hold_s: f64) -> bool {
    run.end - run.start >= hold_s
}

/// The live recovery check: the time at which recovery started, once a run of valid samples at or
/// below `upper_s` has lasted `hold_s` with no gap inside, considering samples at or after `t0`.
///
/// Recovery follows the spike: this is the first such run starting at or after the peak (the
/// first sample with the highest lag so far), so calm samples before the impact shows do not
/// count, and lag still rising (a new peak at every sample) never counts as recovered. A dip into the band shorter than `hold_s` does not count either, and lag rising again
/// after a run that held does not undo it unless it rises to a new peak. Missing samples and
/// samples further apart than 2.5 × `sample_interval_s` break a run. `None` until recovered.
pub fn recovered_at(
    samples: &[Sample],
    t0: f64,
    upper_s: f64,
    hold_s: f64,
    sample_interval_s: f64,
) -> Option<f64> {
    let points = points(samples, t0, f64::INFINITY);
    let points = after_peak(&points);
    low_runs(points, upper_s, max_spacing(sample_interval_s))
        .iter()
        .find(|run| holds(run, hold_s))
        .map(|run| run.start)
}

/// Where recovery may start: from the peak on (the first valid sample with the highest lag), also
/// when the peak stayed inside the band — a loss that only nudges lag still settles after its
/// peak, and lag that keeps rising keeps moving the peak (so it never counts as recovered). All
/// points when none is valid.
pub(crate) fn after_peak(points: &[Point]) -> &[Point] {
    let mut peak: Option<(usize, f64)> = None;
    for (i, p) in points.iter().enumerate() {
        if let Some(lag) = p.lag
            && peak.is_none_or(|(_, top)| lag > top)
        {
            peak = Some((i, lag));
        }
    }
    peak.map_or(points, |(i, _)| &points[i..])
}

/// Whether lag is back inside the band "now", for the cooldown before a step: the samples of the
/// last `hold_s` (up to the last sample, which stands for now) are all valid, at or below
/// `upper_s`, with no gap among them, and they reach back at least `hold_s`.
///
/// `false` for no samples, or when the last sample is missing.
pub fn in_band_for(samples: &[Sample], upper_s: f64, hold_s: f64, sample_interval_s: f64) -> bool {
    let points = points(samples, f64::NEG_INFINITY, f64::INFINITY);
    let Some(last) = points.last() else {
        return false;
    };
    low_runs(&points, upper_s, max_spacing(sample_interval_s))
        .last()
        .is_some_and(|run| run.end == last.t && last.lag.is_some() && holds(run, hold_s))
}

/// A stretch of missing data, in absolute seconds: from the last valid sample before it (or the
/// start) to the first valid sample after it (or the end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Span {
    pub from: f64,
    pub to: f64,
}

/// The gaps of `points` (ordered, all within `start..=end`) between `start` and `end`.
///
/// A gap is a missing sample (the gap spans from the valid sample before it to the valid sample
/// after it), two consecutive valid samples further apart than `max_spacing`, more than
/// `max_spacing` from `start` to the first valid sample, or from the last valid sample to `end`.
pub(crate) fn gaps(points: &[Point], start: f64, end: f64, max_spacing: f64) -> Vec<Span> {
    let mut gaps = Vec::new();
    let mut prev = start;
    let mut missing = false;
    for p in points {
        match p.lag {
            None => missing = true,
            Some(_) => {
                if missing || p.t - prev > max_spacing {
                    gaps.push(Span {
                        from: prev,
                        to: p.t,
                    });
                }
                prev = p.t;
                missing = false;
            }
        }
    }
    if missing || end - prev > max_spacing {
        gaps.push(Span {
            from: prev,
            to: end.max(prev),
        });
    }
    gaps
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn span(from: f64, to: f64) -> Span {
        Span { from, to }
    }

    /// Samples one per `step` seconds from `start`, with the given lags (`None` = missing).
    pub(crate) fn series(start: f64, step: f64, lags: &[Option<f64>]) -> Vec<Sample> {
        lags.iter()
            .enumerate()
            .map(|(i, &lag_s)| Sample {
                t: start + step * i as f64,
                lag_s,
                lag_messages: None,
            })
            .collect()
    }

    fn all(lags: &[f64]) -> Vec<Option<f64>> {
        lags.iter().copied().map(Some).collect()
    }

    #[test]
    fn recovery_needs_the_hold() {
        // Band 10, hold 10 s, one sample per 5 s: the dip at 15 s lasts one sample only.
        let s = series(
            0.0,
            5.0,
            &all(&[50.0, 40.0, 30.0, 8.0, 30.0, 9.0, 9.0, 9.0, 9.0]),
        );
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(25.0));
        // Not yet: only two in-band samples (5 s) after the dip.
        assert_eq!(recovered_at(&s[..7], 0.0, 10.0, 10.0, 5.0), None);
        // Exactly the hold: samples at 25, 30, 35.
        assert_eq!(recovered_at(&s[..8], 0.0, 10.0, 10.0, 5.0), Some(25.0));
    }

    #[test]
    fn recovery_is_the_first_run_that_held() {
        let s = series(0.0, 5.0, &all(&[50.0, 5.0, 5.0, 5.0, 50.0, 5.0, 5.0, 5.0]));
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(5.0));
    }

    #[test]
    fn recovery_with_zero_hold_is_the_first_sample_in_band() {
        let s = series(0.0, 5.0, &all(&[50.0, 20.0, 9.0]));
        assert_eq!(recovered_at(&s, 0.0, 10.0, 0.0, 5.0), Some(10.0));
    }

    #[test]
    fn recovery_inside_the_band_still_follows_the_peak() {
        // The peak (3, at t = 5) is inside the band (10): recovery settles after it.
        let s = series(0.0, 5.0, &all(&[1.0, 3.0, 2.0, 1.0]));
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(5.0));
        // Lag rising inside the band never settles.
        let rising = series(0.0, 5.0, &all(&[1.0, 2.0, 3.0, 4.0, 5.0]));
        assert_eq!(recovered_at(&rising, 0.0, 10.0, 10.0, 5.0), None);
    }

    #[test]
    fn recovery_ignores_samples_before_t0() {
        let s = series(0.0, 5.0, &all(&[1.0, 1.0, 1.0, 50.0, 1.0, 1.0, 1.0]));
        // Recovery follows the peak (50 at t = 15).
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(20.0));
        // From t0 = 16 the peak is the first sample seen.
        assert_eq!(recovered_at(&s, 16.0, 10.0, 10.0, 5.0), Some(20.0));
        assert_eq!(recovered_at(&s, 16.0, 10.0, 15.0, 5.0), None);
    }

    #[test]
    fn a_missing_sample_breaks_a_run() {
        let s = series(
            0.0,
            5.0,
            &[Some(50.0), Some(5.0), None, Some(5.0), Some(5.0), Some(5.0)],
        );
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(15.0));
        let nan = series(
            0.0,
            5.0,
            &[Some(50.0), Some(5.0), Some(f64::NAN), Some(5.0), Some(5.0)],
        );
        assert_eq!(recovered_at(&nan, 0.0, 10.0, 10.0, 5.0), None);
    }

    #[test]
    fn samples_too_far_apart_break_a_run() {
        // 5 s interval: 12.5 s is the most two samples may be apart.
        let mut s = series(0.0, 5.0, &all(&[5.0, 5.0]));
        s.push(Sample {
            t: 18.0,
            lag_s: Some(5.0),
            lag_messages: None,
        });
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), None);
        s.push(Sample {
            t: 23.0,
            lag_s: Some(5.0),
            lag_messages: None,
        });
        s.push(Sample {
            t: 28.0,
            lag_s: Some(5.0),
            lag_messages: None,
        });
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(18.0));
    }

    #[test]
    fn unordered_samples_are_ordered_first() {
        let mut s = series(0.0, 5.0, &all(&[50.0, 5.0, 5.0, 5.0]));
        s.reverse();
        assert_eq!(recovered_at(&s, 0.0, 10.0, 10.0, 5.0), Some(5.0));
    }

    #[test]
    fn in_band_needs_the_whole_hold_up_to_now() {
        let s = series(0.0, 5.0, &all(&[50.0, 5.0, 5.0, 5.0]));
        assert!(in_band_for(&s, 10.0, 10.0, 5.0));
        assert!(!in_band_for(&s, 10.0, 15.0, 5.0));
        let high_now = series(0.0, 5.0, &all(&[5.0, 5.0, 5.0, 50.0]));
        assert!(!in_band_for(&high_now, 10.0, 10.0, 5.0));
    }

    #[test]
    fn in_band_is_false_with_a_gap_or_nothing() {
        let missing_now = series(0.0, 5.0, &[Some(5.0), Some(5.0), Some(5.0), None]);
        assert!(!in_band_for(&missing_now, 10.0, 5.0, 5.0));
        let missing_inside = series(0.0, 5.0, &[Some(5.0), None, Some(5.0), Some(5.0)]);
        assert!(!in_band_for(&missing_inside, 10.0, 15.0, 5.0));
        assert!(in_band_for(&missing_inside, 10.0, 5.0, 5.0));
        assert!(!in_band_for(&[], 10.0, 0.0, 5.0));
    }

    #[test]
    fn gaps_from_missing_samples_and_spacing() {
        let mut s = series(0.0, 5.0, &[Some(1.0), None, Some(1.0), Some(1.0)]);
        s.push(Sample {
            t: 40.0,
            lag_s: Some(1.0),
            lag_messages: None,
        });
        let p = points(&s, 0.0, 100.0);
        let got = gaps(&p, 0.0, 42.0, 12.5);
        assert_eq!(got, [span(0.0, 10.0), span(15.0, 40.0)]);
    }

    #[test]
    fn gaps_at_the_start_and_the_end() {
        let s = series(20.0, 5.0, &all(&[1.0, 1.0]));
        let p = points(&s, 0.0, 100.0);
        let got = gaps(&p, 0.0, 60.0, 12.5);
        assert_eq!(got, [span(0.0, 20.0), span(25.0, 60.0)]);
        // A missing last sample is a gap even when it is recent.
        let s = series(0.0, 5.0, &[Some(1.0), None]);
        let got = gaps(&points(&s, 0.0, 5.0), 0.0, 5.0, 12.5);
        assert_eq!(got, [span(0.0, 5.0)]);
    }
}
