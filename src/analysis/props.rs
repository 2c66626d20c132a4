//! Properties of the analysis over generated series.

use proptest::prelude::*;

use super::*;

const INTERVAL: f64 = 5.0;

/// A lag value: often in a typical band, often anywhere up to far above it, sometimes missing or
/// NaN.
fn lag() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        5 => (0.0f64..12.0).prop_map(Some),
        4 => (0.0f64..100.0).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
    ]
}

/// A series with strictly increasing times starting a little before t0 = 0, mostly one sample per
/// interval, sometimes with longer or shorter spacing.
fn series() -> impl Strategy<Value = Vec<Sample>> {
    let spacing = prop_oneof![6 => Just(INTERVAL), 3 => 0.5f64..20.0];
    prop::collection::vec((spacing, lag()), 0..80).prop_map(|steps| {
        let mut t = -12.0;
        steps
            .into_iter()
            .map(|(dt, lag_s)| {
                t += dt;
                Sample {
                    t,
                    lag_s,
                    lag_messages: None,
                }
            })
            .collect()
    })
}

fn rules() -> impl Strategy<Value = StepRules> {
    (
        prop_oneof![Just(0.0), Just(5.0), Just(10.0), Just(20.0)],
        60.0f64..300.0,
        20.0f64..150.0,
        10.0f64..300.0,
    )
        .prop_map(|(hold_s, timeout_s, max_lag_s, max_recovery_s)| StepRules {
            t0: 0.0,
            hold_s,
            timeout_s,
            sample_interval_s: INTERVAL,
            max_lag_s,
            max_recovery_s,
        })
}

fn band() -> impl Strategy<Value = Band> {
    (5.0f64..50.0).prop_map(|upper_s| Band {
        p99_s: upper_s / 1.5,
        upper_s,
        samples: 100,
    })
}

fn missing(s: &Sample) -> bool {
    s.valid_lag().is_none()
}

proptest! {
    #[test]
    fn never_pass_with_a_missing_sample_before_recovery(
        samples in series(), band in band(), rules in rules(), extra in 0.0f64..100.0,
    ) {
        let observed_until = samples.last().map_or(0.0, |s| s.t) + extra;
        let j = judge_step(&samples, &band, &rules, observed_until);
        if j.verdict == Verdict::Pass {
            let r = j.recovered_at.expect("a pass has a recovery");
            prop_assert!(!samples.iter().any(|s| s.t >= rules.t0 && s.t <= r && missing(s)));
            prop_assert!(j.gaps.iter().all(|g| g.from_s >= r - rules.t0));
            prop_assert!(j.spike_lag_s.is_some_and(|s| s <= rules.max_lag_s));
            prop_assert!(j.recovery_s.is_some_and(|s| s <= rules.max_recovery_s));
        }
    }

    #[test]
    fn fail_is_decided_by_observed_data(
        samples in series(), band in band(), rules in rules(), extra in 0.0f64..100.0,
    ) {
        let observed_until = samples.last().map_or(0.0, |s| s.t) + extra;
        let j = judge_step(&samples, &band, &rules, observed_until);
        if j.verdict == Verdict::Fail {
            let spiked = j.spike_lag_s.is_some_and(|s| s > rules.max_lag_s);
            let slow = j.recovery_s.is_none_or(|s| s > rules.max_recovery_s);
            prop_assert!(spiked || slow, "{}", j.reason);
        }
    }

    #[test]
    fn fail_stays_fail_whatever_the_missing_samples_were(
        samples in series(), band in band(), rules in rules(), extra in 0.0f64..100.0,
        fills in prop::collection::vec(0.0f64..100.0, 80),
    ) {
        let observed_until = samples.last().map_or(0.0, |s| s.t) + extra;
        let j = judge_step(&samples, &band, &rules, observed_until);
        if j.verdict == Verdict::Fail {
            let filled: Vec<Sample> = samples
                .iter()
                .zip(&fills)
                .map(|(s, &fill)| Sample { lag_s: Some(s.valid_lag().unwrap_or(fill)), ..*s })
                .collect();
            let again = judge_step(&filled, &band, &rules, observed_until);
            prop_assert_eq!(again.verdict, Verdict::Fail, "{} / {}", j.reason, again.reason);
        }
    }

    #[test]
    fn sample_order_does_not_matter(
        samples in series(), band in band(), rules in rules(), extra in 0.0f64..100.0,
    ) {
        let observed_until = samples.last().map_or(0.0, |s| s.t) + extra;
        let mut reversed = samples.clone();
        reversed.reverse();
        prop_assert_eq!(
            judge_step(&samples, &band, &rules, observed_until),
            judge_step(&reversed, &band, &rules, observed_until)
        );
    }

    #[test]
    fn complete_observation_is_never_inconclusive(
        lags in prop::collection::vec(0.0f64..100.0, 1..80),
        band in band(),
        rules in rules(),
    ) {
        // One valid sample per interval from t0 to the timeout: nothing is missing.
        let end = rules.t0 + rules.timeout_s;
        let samples: Vec<Sample> = (0..)
            .map(|i| rules.t0 + INTERVAL * f64::from(i))
            .take_while(|&t| t <= end)
            .zip(lags.iter().cycle())
            .map(|(t, &lag)| Sample { t, lag_s: Some(lag), lag_messages: None })
            .collect();
        let j = judge_step(&samples, &band, &rules, end);
        prop_assert!(j.gaps.iter().all(|g| g.to_s - g.from_s <= 2.5 * INTERVAL));
        if j.gaps.is_empty() {
            prop_assert_ne!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
            let pass = j.spike_lag_s.is_some_and(|s| s <= rules.max_lag_s)
                && j.recovery_s.is_some_and(|s| s <= rules.max_recovery_s);
            prop_assert_eq!(j.verdict == Verdict::Pass, pass, "{}", j.reason);
        }
    }

    #[test]
    fn a_recovered_run_is_in_band_without_gaps(
        samples in series(), upper in 5.0f64..50.0, hold in 0.0f64..30.0,
    ) {
        if let Some(r) = recovered_at(&samples, 0.0, upper, hold, INTERVAL) {
            let run: Vec<&Sample> =
                samples.iter().filter(|s| s.t >= r && s.t <= r + hold).collect();
            prop_assert!(run.iter().all(|s| s.valid_lag().is_some_and(|lag| lag <= upper)));
            prop_assert!(run.windows(2).all(|w| w[1].t - w[0].t <= 2.5 * INTERVAL));
            // The hold is covered: a sample of the run lies at or after r + hold.
            let completed = samples.iter().find(|s| s.t >= r + hold);
            let last_of_run = run.last().map_or(r, |l| l.t);
            let confirms = completed.is_some_and(|s| {
                s.valid_lag().is_some_and(|lag| lag <= upper) && s.t - last_of_run <= 2.5 * INTERVAL
            });
            prop_assert!(confirms);
        }
    }

    #[test]
    fn lag_rising_after_recovery_keeps_recovered_at(
        samples in series(), upper in 5.0f64..50.0, hold in 0.0f64..30.0,
        at in 0usize..100, high in 0.0f64..1000.0,
    ) {
        let Some(r) = recovered_at(&samples, 0.0, upper, hold, INTERVAL) else {
            return Ok(());
        };
        // Insert an above-band sample anywhere after the sample that completed the hold.
        let Some(done) = samples.iter().position(|s| s.t >= r + hold) else {
            return Ok(());
        };
        let pos = done + 1 + at % (samples.len() - done);
        let t = match samples.get(pos) {
            Some(next) => (samples[pos - 1].t + next.t) / 2.0,
            None => samples[pos - 1].t + 1.0,
        };
        // Above the band but below the peak: a new peak would move recovery after it.
        let peak = samples
            .iter()
            .filter(|s| s.t >= 0.0)
            .filter_map(Sample::valid_lag)
            .fold(f64::NEG_INFINITY, f64::max);
        if peak <= upper + 1e-6 {
            return Ok(());
        }
        let lag = upper + (peak - upper) * (high / 1000.0).min(0.999);
        let mut more = samples.clone();
        more.insert(pos, Sample { t, lag_s: Some(lag.max(upper + 1e-9)), lag_messages: None });
        prop_assert_eq!(recovered_at(&more, 0.0, upper, hold, INTERVAL), Some(r));
    }

    #[test]
    fn judge_step_agrees_with_the_live_check(
        samples in series(), band in band(), rules in rules(),
    ) {
        let end = rules.t0 + rules.timeout_s;
        let within: Vec<Sample> = samples.iter().copied().filter(|s| s.t <= end).collect();
        let j = judge_step(&samples, &band, &rules, end);
        let live = recovered_at(&within, rules.t0, band.upper_s, rules.hold_s, INTERVAL);
        prop_assert_eq!(j.recovered_at, live);
    }

    #[test]
    fn in_band_means_the_last_hold_is_in_band(
        samples in series(), upper in 5.0f64..50.0, hold in 0.0f64..30.0,
    ) {
        if in_band_for(&samples, upper, hold, INTERVAL) {
            let last = samples.last().map_or(f64::NAN, |s| s.t);
            prop_assert!(samples.first().is_some_and(|s| s.t <= last - hold));
            for s in samples.iter().filter(|s| s.t >= last - hold) {
                prop_assert!(s.valid_lag().is_some_and(|lag| lag <= upper));
            }
        }
    }

    #[test]
    fn nothing_panics_on_any_input(
        raw in prop::collection::vec(
            (prop::num::f64::ANY, prop::option::of(prop::num::f64::ANY)), 0..30),
        nums in prop::array::uniform8(prop::num::f64::ANY),
    ) {
        let samples: Vec<Sample> = raw
            .iter()
            .map(|&(t, lag_s)| Sample { t, lag_s, lag_messages: None })
            .collect();
        let rules = StepRules {
            t0: nums[0],
            hold_s: nums[1],
            timeout_s: nums[2],
            sample_interval_s: nums[3],
            max_lag_s: nums[4],
            max_recovery_s: nums[5],
        };
        let band = Band { p99_s: nums[6], upper_s: nums[6], samples: 1 };
        let _ = judge_step(&samples, &band, &rules, nums[7]);
        let _ = recovered_at(&samples, nums[0], nums[6], nums[1], nums[3]);
        let _ = in_band_for(&samples, nums[6], nums[1], nums[3]);
        let _ = baseline_band(&samples, BandSettings { margin: nums[4], floor_s: nums[5] });
        let times: Vec<f64> = raw.iter().map(|r| r.0).collect();
        let _ = overprovisioning(&times, nums[2], nums[3]);
        let _ = percentile(&times, nums[7]);
        let _ = fmt_secs(nums[7]);
    }

    #[test]
    fn band_upper_covers_both_rules(
        lags in prop::collection::vec(0.0f64..1000.0, 1..200),
        margin in 0.0f64..3.0,
        floor_s in 0.0f64..60.0,
    ) {
        let samples: Vec<Sample> = lags
            .iter()
            .enumerate()
            .map(|(i, &lag)| Sample { t: i as f64, lag_s: Some(lag), lag_messages: None })
            .collect();
        let band = baseline_band(&samples, BandSettings { margin, floor_s })
            .expect("values give a band");
        prop_assert_eq!(band.samples, lags.len());
        prop_assert!(band.upper_s >= band.p99_s + floor_s);
        prop_assert!(band.upper_s >= band.p99_s * (1.0 + margin));
    }

    #[test]
    fn percentile_is_the_nearest_rank(
        values in prop::collection::vec(-1000.0f64..1000.0, 1..200),
        p in 0.0f64..=100.0,
    ) {
        let v = percentile(&values, p).expect("values give a percentile");
        prop_assert!(values.contains(&v));
        let n = values.len() as f64;
        let at_or_below = values.iter().filter(|&&x| x <= v).count() as f64;
        let below = values.iter().filter(|&&x| x < v).count() as f64;
        prop_assert!(at_or_below >= p / 100.0 * n - 1e-9);
        prop_assert!(below < (p / 100.0 * n).max(1.0));
    }

    #[test]
    fn tolerance_is_a_passing_prefix(
        steps in prop::collection::vec(
            (1u32..12, prop::option::of(prop_oneof![
                Just(Verdict::Pass), Just(Verdict::Fail), Just(Verdict::Inconclusive)
            ])),
            0..10,
        ),
    ) {
        let t = tolerance(&steps);
        let max = steps.iter().map(|s| s.0).max().unwrap_or(0);
        prop_assert!(t.tolerated <= max);
        for &(n, verdict) in &steps {
            if n <= t.tolerated {
                prop_assert_eq!(verdict, Some(Verdict::Pass));
            }
        }
        match t.first_failure {
            None => {
                prop_assert!(steps.iter().all(|s| s.1 == Some(Verdict::Pass)));
                prop_assert_eq!(t.tolerated, max);
            }
            Some(i) => {
                let (n, verdict) = steps[i];
                prop_assert_ne!(verdict, Some(Verdict::Pass));
                prop_assert!(n > t.tolerated);
                // No step with fewer terminations failed, nor an earlier one with as many.
                for (j, &(m, v)) in steps.iter().enumerate() {
                    if m < n || (m == n && j < i) {
                        prop_assert_eq!(v, Some(Verdict::Pass));
                    }
                }
                // Every step below n passed, so tolerated is the largest of them.
                let below = steps.iter().map(|s| s.0).filter(|&m| m < n).max().unwrap_or(0);
                prop_assert_eq!(t.tolerated, below);
            }
        }
    }

    #[test]
    fn overprovisioning_matches_brute_force(
        losses in prop::collection::vec(0.0f64..3600.0, 0..40),
        lead in 0.0f64..900.0,
        multiple in 0.0f64..5.0,
    ) {
        let o = overprovisioning(&losses, lead, multiple);
        let brute = losses
            .iter()
            .map(|&a| losses.iter().filter(|&&b| b >= a && b - a <= lead).count())
            .max()
            .unwrap_or(0);
        prop_assert_eq!(o.max_losses_in_lead_time as usize, brute);
        let exact = f64::from(o.max_losses_in_lead_time) * multiple;
        prop_assert!(f64::from(o.spare_nodes) >= exact - 1e-6);
        prop_assert!(f64::from(o.spare_nodes) < exact + 1.0);
    }

    #[test]
    fn a_search_finds_any_monotone_limit_in_logarithmic_steps(
        from in 1u32..20,
        span in 0u32..200,
        limit_at in 0u32..250,
    ) {
        let search = Search { from, max: from + span };
        // Any limit from below `from` to above `max`: n passes exactly when n <= limit.
        let limit = (from - 1 + limit_at).min(search.max + 1);
        let mut results = Vec::new();
        while let Some(n) = search.next(&results) {
            prop_assert!((from..=search.max).contains(&n));
            prop_assert!(!results.iter().any(|r: &(u32, Verdict)| r.0 == n), "{} tried twice", n);
            results.push((n, if n <= limit { Verdict::Pass } else { Verdict::Fail }));
        }
        let bound = 2 * f64::from(search.max).log2().ceil() as usize + 1;
        prop_assert!(results.len() <= bound, "{} steps > {}", results.len(), bound);
        prop_assert!(results.len() <= search.worst_case_steps());
        let steps: Vec<(u32, Option<Verdict>)> = results.iter().map(|&(n, v)| (n, Some(v))).collect();
        let t = tolerance(&steps);
        if limit >= search.max {
            prop_assert_eq!(t.tolerated, search.max);
            prop_assert!(t.first_failure.is_none());
        } else if limit < from {
            prop_assert_eq!(t.tolerated, 0);
            prop_assert_eq!(steps[t.first_failure.unwrap()].0, from);
        } else {
            // Exact: the limit passed and the next count failed.
            prop_assert_eq!(t.tolerated, limit);
            prop_assert_eq!(steps[t.first_failure.unwrap()].0, limit + 1);
        }
        prop_assert!(anomalies(&results).is_empty());
    }
}
