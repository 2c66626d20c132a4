//! Durations in words, for verdict reasons.

/// A duration in seconds as people write it: `"45 s"`, `"7.5 s"` below two minutes, then whole
/// units rounded to the second: `"2m"`, `"2m 30s"`, `"1h"`, `"1h 5m"`.
///
/// Never panics: negative durations get a leading `-`, NaN and infinities print as `"NaN s"` and
/// `"inf s"`.
pub fn fmt_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs} s");
    }
    if secs < 0.0 {
        return format!("-{}", fmt_secs(-secs));
    }
    if secs < 120.0 {
        return if secs.fract() == 0.0 {
            format!("{secs:.0} s")
        } else {
            format!("{secs:.1} s")
        };
    }
    // Saturating cast: finite, non-negative, so only absurdly large values saturate.
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each duration formats as written beside it.
    fn formats(cases: &[(f64, &str)]) {
        for &(secs, want) in cases {
            assert_eq!(fmt_secs(secs), want, "fmt_secs({secs})");
        }
    }

    #[test]
    fn short_durations_in_seconds() {
        formats(&[
            (0.0, "0 s"),
            (5.0, "5 s"),
            (60.0, "60 s"),
            (7.5, "7.5 s"),
            (119.5, "119.5 s"),
        ]);
    }

    #[test]
    fn long_durations_in_units() {
        formats(&[
            (120.0, "2m"),
            (150.0, "2m 30s"),
            (180.4, "3m"),
            (3600.0, "1h"),
            (3900.0, "1h 5m"),
            (3661.0, "1h 1m 1s"),
        ]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        formats(&[
            (-5.0, "-5 s"),
            (f64::NAN, "NaN s"),
            (f64::INFINITY, "inf s"),
        ]);
        assert!(!fmt_secs(f64::MAX).is_empty());
    }
}
