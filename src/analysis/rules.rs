//! The judging rules beyond one application's lag (DESIGN.md "Recovery and verdicts"): recovery
//! needs the scheduler's work whole again, and a step that terminated fewer nodes than its rung
//! cannot pass. The step's verdict from its applications' is [`Verdict::combine`].

use super::{Verdict, fmt_secs};

/// One application's judgement with its rescheduling: a step recovers when lag is back in band
/// AND the scheduler has the application's work whole again, so the recovery time is the later
/// of the two. Only for work the step hit, with probes that answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub recovery_s: Option<f64>,
    pub reason: String,
}

pub fn with_rescheduling(
    lag: Judged,
    scheduled_as: &str,
    rescheduled_s: Option<f64>,
    max_recovery_s: f64,
) -> Judged {
    if lag.verdict != Verdict::Pass {
        return lag;
    }
    let lag_s = lag.recovery_s.unwrap_or(0.0);
    match rescheduled_s {
        None => Judged {
            verdict: Verdict::Fail,
            recovery_s: None,
            reason: format!(
                "lag back in band after {}, but {scheduled_as} was not whole again when the step ended",
                fmt_secs(lag_s)
            ),
        },
        Some(r) if r > max_recovery_s => Judged {
            verdict: Verdict::Fail,
            recovery_s: Some(r),
            reason: format!(
                "lag back in band after {}, but {scheduled_as} was whole again only after {} (max_recovery {})",
                fmt_secs(lag_s),
                fmt_secs(r),
                fmt_secs(max_recovery_s)
            ),
        },
        Some(r) if r > lag_s => Judged {
            verdict: Verdict::Pass,
            recovery_s: Some(r),
            reason: format!(
                "{}; recovery counted when {scheduled_as} was whole again, {} after the injection",
                lag.reason,
                fmt_secs(r)
            ),
        },
        Some(_) => lag,
    }
}

/// A step that terminated fewer nodes than its rung never tested the rung: it cannot pass (a
/// failure with fewer losses is still a failure).
pub fn short_of_rung(judged: Judged, terminated: usize, rung: usize) -> Judged {
    if terminated >= rung || judged.verdict != Verdict::Pass {
        return judged;
    }
    Judged {
        verdict: Verdict::Inconclusive,
        reason: format!(
            "only {terminated} of {rung} terminations done; {}",
            judged.reason
        ),
        ..judged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_terminations_than_the_rung_never_pass() {
        let pass = Judged {
            verdict: Verdict::Pass,
            recovery_s: Some(4.0),
            reason: "recovered".into(),
        };
        let short = short_of_rung(pass.clone(), 1, 2);
        assert_eq!(short.verdict, Verdict::Inconclusive);
        assert_eq!(short.reason, "only 1 of 2 terminations done; recovered");
        assert_eq!(short_of_rung(pass.clone(), 2, 2), pass);
        let fail = Judged {
            verdict: Verdict::Fail,
            ..pass
        };
        assert_eq!(short_of_rung(fail.clone(), 0, 2), fail);
    }
}
