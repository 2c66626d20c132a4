//! Headroom: what makes recovery times differ (message rate, computation per message), from lag
//! in messages and the high watermark over time. Per application and step:
//!
//! - production rate: the high watermark's growth (messages a second) before the loss;
//! - consumption rate before the loss: production minus the growth of the lag in messages;
//! - catch-up rate: the consumption while the backlog drained, from its peak to recovery;
//! - headroom = catch-up ÷ production, and the drain time it predicts, the backlog above the
//!   lag before the loss ÷ (catch-up − production), against the measured one.
//!
//! Pure: points carry explicit times (seconds relative to the injection, negative before).

use serde::{Deserialize, Serialize};

/// One sample of a consumer group: lag in messages and the high watermark, both summed over
/// its partitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatePoint {
    pub t: f64,
    pub lag_messages: f64,
    pub high_watermark: f64,
}

/// What the rates say of one application in one step (messages a second; null where the
/// samples do not tell).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Headroom {
    /// The high watermark's growth before the loss.
    pub production_per_s: Option<f64>,
    /// What the application consumed before the loss.
    pub consumption_before_per_s: Option<f64>,
    /// What it consumed while the backlog drained (from the peak of the lag to recovery).
    pub catch_up_per_s: Option<f64>,
    /// catch-up ÷ production: above 1 the backlog drains; at or below 1 it never does.
    pub headroom: Option<f64>,
    /// The peak lag in messages.
    pub backlog_messages: Option<f64>,
    /// Measured: seconds from the peak to recovery.
    pub drain_s: Option<f64>,
    /// Predicted: (backlog − the lag before the loss) ÷ (catch-up − production).
    pub predicted_drain_s: Option<f64>,
    /// The check in one sentence.
    pub summary: String,
}

/// The rate of `value` over the points with `t` in `[from, to]`: last minus first over the time
/// between them; `None` with fewer than two points or no time between.
fn rate(points: &[RatePoint], from: f64, to: f64, value: fn(&RatePoint) -> f64) -> Option<f64> {
    let inside: Vec<&RatePoint> = points.iter().filter(|p| p.t >= from && p.t <= to).collect();
    let (first, last) = (inside.first()?, inside.last()?);
    let dt = last.t - first.t;
    (dt > 0.0).then(|| (value(last) - value(first)) / dt)
}

fn consumed(p: &RatePoint) -> f64 {
    p.high_watermark - p.lag_messages
}

/// Headroom of one application in one step: `points` in time order, `peak_t` the time of the
/// lag's peak, `recovered_t` when it recovered (None: it did not).
pub fn headroom(points: &[RatePoint], peak_t: Option<f64>, recovered_t: Option<f64>) -> Headroom {
    let before = points.first().map_or(0.0, |p| p.t.min(0.0));
    let production = rate(points, before, 0.0, |p| p.high_watermark);
    let consumption = rate(points, before, 0.0, consumed);
    let backlog = peak_t
        .and_then(|t| points.iter().find(|p| p.t >= t))
        .map(|p| p.lag_messages);
    // What was already there is not drained: recovery brings lag back to its usual level.
    let usual = points
        .iter()
        .rfind(|p| p.t <= 0.0)
        .map_or(0.0, |p| p.lag_messages);
    let drain = peak_t
        .zip(recovered_t)
        .map(|(p, r)| r - p)
        .filter(|d| *d > 0.0);
    let catch_up = peak_t
        .zip(recovered_t)
        .and_then(|(p, r)| rate(points, p, r, consumed));
    let ratio = catch_up
        .zip(production.filter(|p| *p > 0.0))
        .map(|(c, p)| c / p);
    let predicted = match (backlog, catch_up, production) {
        (Some(b), Some(c), Some(p)) if c > p => Some((b - usual).max(0.0) / (c - p)),
        _ => None,
    };
    let mut h = Headroom {
        production_per_s: production,
        consumption_before_per_s: consumption,
        catch_up_per_s: catch_up,
        headroom: ratio,
        backlog_messages: backlog,
        drain_s: drain,
        predicted_drain_s: predicted,
        summary: String::new(),
    };
    h.summary = summary(&h, recovered_t);
    h
}

/// `1.2 k` / `950`.
fn count(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{:.1} k", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

fn summary(h: &Headroom, recovered_t: Option<f64>) -> String {
    let Some(p) = h.production_per_s else {
        return "rates unknown: no high watermarks were recorded before the loss".into();
    };
    let Some(r) = recovered_t else {
        return format!("did not recover at a {} msg/s production rate", count(p));
    };
    match (h.backlog_messages, h.catch_up_per_s, h.predicted_drain_s) {
        (Some(b), Some(c), Some(pred)) => format!(
            "recovered in {r:.0} s: a backlog of {} messages drained at {} msg/s over a {} msg/s \
             production rate (headroom {:.2}×; predicted drain {pred:.0} s, measured {:.0} s)",
            count(b),
            count(c),
            count(p),
            h.headroom.unwrap_or(0.0),
            h.drain_s.unwrap_or(0.0)
        ),
        _ => format!(
            "recovered in {r:.0} s at a {} msg/s production rate (the drain rate is unknown)",
            count(p)
        ),
    }
}

/// A consumer with no headroom left before any node was lost: it consumed less than 95% of
/// what was produced (its lag in messages grew) over the window before the loss.
pub fn no_headroom(h: &Headroom) -> Option<String> {
    let (p, c) = (h.production_per_s?, h.consumption_before_per_s?);
    (p > 0.0 && c < 0.95 * p).then(|| {
        format!(
            "no headroom before any node was lost: consumed {} msg/s of the {} msg/s produced",
            count(c),
            count(p)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 200 msg/s produced; 1 200 consumed before the loss (lag flat at 100), nothing consumed
    /// for 10 s after it (lag to 12 100), then 2 000 msg/s until lag is back at 100.
    fn lab_like() -> Vec<RatePoint> {
        let mut pts = Vec::new();
        let mut lag: f64 = 100.0;
        for i in -20..=40 {
            let t = f64::from(i);
            let h = 1_000_000.0 + 1200.0 * (t + 20.0);
            if t > 0.0 && t <= 10.0 {
                lag += 1200.0;
            } else if t > 10.0 {
                lag = (lag - 800.0).max(100.0);
            }
            pts.push(RatePoint {
                t,
                lag_messages: lag,
                high_watermark: h,
            });
        }
        pts
    }

    #[test]
    fn rates_headroom_and_the_predicted_drain_follow_the_lag_and_watermarks() {
        let pts = lab_like();
        // Peak at t = 10 (12 100); 12 000 above the floor drain at 800/s net: back at t = 25.
        let h = headroom(&pts, Some(10.0), Some(25.0));
        assert_eq!(h.production_per_s, Some(1200.0));
        assert_eq!(h.consumption_before_per_s, Some(1200.0));
        assert_eq!(h.catch_up_per_s, Some(2000.0));
        assert!((h.headroom.unwrap() - 2000.0 / 1200.0).abs() < 1e-9);
        assert_eq!(h.backlog_messages, Some(12_100.0));
        assert_eq!(h.drain_s, Some(15.0));
        // The 100 messages of lag before the loss are not backlog: 12 000 drain at 800/s net.
        assert_eq!(h.predicted_drain_s, Some(15.0));
        assert_eq!(h.predicted_drain_s, h.drain_s);
        assert!(
            h.summary.starts_with(
                "recovered in 25 s: a backlog of 12.1 k messages drained at 2.0 k msg/s over a \
                 1.2 k msg/s production rate"
            ),
            "{}",
            h.summary
        );
        assert_eq!(no_headroom(&h), None);
    }

    #[test]
    fn a_consumer_falling_behind_before_the_loss_has_no_headroom() {
        // Lag grows by 300/s before the loss: 900 of 1 200 consumed.
        let pts: Vec<RatePoint> = (-10..=0)
            .map(|i| {
                let t = f64::from(i);
                RatePoint {
                    t,
                    lag_messages: 300.0 * (t + 10.0),
                    high_watermark: 1200.0 * (t + 10.0),
                }
            })
            .collect();
        let h = headroom(&pts, None, None);
        assert_eq!(h.consumption_before_per_s, Some(900.0));
        assert_eq!(
            no_headroom(&h).as_deref(),
            Some(
                "no headroom before any node was lost: consumed 900 msg/s of the 1.2 k msg/s produced"
            )
        );
        assert!(h.summary.starts_with("did not recover"));
        assert!(
            headroom(&[], None, None)
                .summary
                .starts_with("rates unknown")
        );
    }
}
