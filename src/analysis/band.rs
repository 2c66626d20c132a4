//! The baseline band: how high lag may be and still count as normal.

use super::Sample;

/// How the band's upper bound is derived from the baseline p99 (plan fields `margin` and `floor`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandSettings {
    /// Relative headroom above the p99: 0.5 means 50 % above it.
    pub margin: f64,
    /// Absolute headroom above the p99, in seconds; dominates for small baselines.
    pub floor_s: f64,
}

/// The baseline band of one application.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// p99 (nearest rank) of the baseline lag, in seconds.
    pub p99_s: f64,
    /// Lag at or below this is "in band", in seconds.
    pub upper_s: f64,
    /// How many valid samples the baseline had.
    pub samples: usize,
}

/// The band from baseline samples: upper = max(p99 × (1 + margin), p99 + floor).
///
/// Missing samples (and NaN or infinite lag) are skipped. `None` when no sample has a value.
pub fn baseline_band(samples: &[Sample], settings: BandSettings) -> Option<Band> {
    let lags: Vec<f64> = samples.iter().filter_map(Sample::valid_lag).collect();
    let p99 = percentile(&lags, 99.0)?;
    let upper = (p99 * (1.0 + settings.margin)).max(p99 + settings.floor_s);
    Some(Band {
        p99_s: p99,
        upper_s: upper,
        samples: lags.len(),
    })
}

/// The `p`-th percentile (`p` in percent, 99.0 for p99) by the nearest-rank method: the smallest
/// value such that at least `p` % of the values are at or below it.
///
/// NaN values are skipped; `p` is clamped to 0..=100 (0 gives the minimum). `None` for empty input
/// or a NaN `p`.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if p.is_nan() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // p × n / 100 (not p / 100 × n) keeps whole ranks exact: 99 × 100 / 100 is exactly 99.
    let rank = (p.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(lags: &[f64]) -> Vec<Sample> {
        lags.iter()
            .enumerate()
            .map(|(i, &lag)| Sample {
                t: i as f64,
                lag_s: Some(lag),
                lag_messages: None,
            })
            .collect()
    }

    const DEFAULTS: BandSettings = BandSettings {
        margin: 0.5,
        floor_s: 5.0,
    };

    #[test]
    fn percentile_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        // Nearest rank rounds the rank up: with 10 values, p99 is the 10th.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 99.0), Some(10.0));
        assert_eq!(percentile(&ten, 95.0), Some(10.0));
        assert_eq!(percentile(&ten, 90.0), Some(9.0));
    }

    #[test]
    fn percentile_ignores_order_and_nan() {
        assert_eq!(percentile(&[3.0, f64::NAN, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[f64::NAN], 99.0), None);
        assert_eq!(percentile(&[], 99.0), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
        assert_eq!(percentile(&[1.0, 2.0], 250.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0], -5.0), Some(1.0));
    }

    #[test]
    fn band_floor_dominates_for_small_lag() {
        // p99 = 2: 2 × 1.5 = 3 < 2 + 5 = 7.
        let band = baseline_band(&samples(&[1.0, 2.0, 2.0, 1.5]), DEFAULTS).unwrap();
        assert_eq!(
            band,
            Band {
                p99_s: 2.0,
                upper_s: 7.0,
                samples: 4
            }
        );
    }

    #[test]
    fn band_margin_dominates_for_large_lag() {
        // Storm commits every 30 s: p99 = 30, 30 × 1.5 = 45 > 30 + 5 = 35.
        let band = baseline_band(&samples(&[10.0, 20.0, 30.0, 25.0]), DEFAULTS).unwrap();
        assert_eq!(
            band,
            Band {
                p99_s: 30.0,
                upper_s: 45.0,
                samples: 4
            }
        );
    }

    #[test]
    fn band_skips_missing_samples() {
        let mut s = samples(&[4.0, 6.0]);
        s.push(Sample {
            t: 9.0,
            lag_s: None,
            lag_messages: None,
        });
        s.push(Sample {
            t: 10.0,
            lag_s: Some(f64::NAN),
            lag_messages: None,
        });
        s.push(Sample {
            t: 11.0,
            lag_s: Some(f64::INFINITY),
            lag_messages: None,
        });
        let band = baseline_band(&s, DEFAULTS).unwrap();
        assert_eq!(
            band,
            Band {
                p99_s: 6.0,
                upper_s: 11.0,
                samples: 2
            }
        );
    }

    #[test]
    fn band_needs_a_value() {
        let missing = [Sample {
            t: 0.0,
            lag_s: None,
            lag_messages: Some(3),
        }];
        assert_eq!(baseline_band(&missing, DEFAULTS), None);
        assert_eq!(baseline_band(&[], DEFAULTS), None);
    }
}
