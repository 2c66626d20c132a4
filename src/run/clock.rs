//! The runner's time, read in one place. It follows tokio's clock, so a test that pauses or
//! advances tokio's time (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) moves the
//! runner's deadlines, waits and journal times with it; wall-clock times are the run's start plus
//! the elapsed tokio time.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The wall-clock time of `start`.
    wall: SystemTime,
    start: Instant,
}

impl Clock {
    /// A clock whose epoch (t = 0 s) is now.
    pub fn start() -> Clock {
        Clock {
            wall: SystemTime::now(),
            start: Instant::now(),
        }
    }

    /// Now, for deadlines.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall-clock time now.
    pub fn wall(&self) -> SystemTime {
        self.wall + self.start.elapsed()
    }

    /// Now as the journal writes times (RFC 3339, milliseconds).
    pub fn stamp(&self) -> String {
        humantime::format_rfc3339_millis(self.wall()).to_string()
    }

    /// Seconds from the epoch to `t` (negative before it).
    pub fn secs(&self, t: SystemTime) -> f64 {
        t.duration_since(self.wall)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
    }

    /// Seconds from the epoch to now.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// A deadline `after` from now.
    pub fn after(&self, after: Duration) -> Instant {
        Instant::now() + after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_paused_time() {
        let c = Clock::start();
        let deadline = c.after(Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(12)).await;
        assert!((c.now_s() - 12.0).abs() < 0.01, "{}", c.now_s());
        assert!((c.secs(c.wall()) - 12.0).abs() < 0.01);
        assert!(c.now() < deadline);
        tokio::time::sleep_until(deadline).await;
        assert!((c.now_s() - 30.0).abs() < 0.01);
    }
}
