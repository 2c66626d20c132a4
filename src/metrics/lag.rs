//! The metrics of `spotdrill lag`: the last sample of each group, and per partition only when
//! asked (`--metrics-partitions`: 4096 partitions × 20 groups is not a default cardinality).
//! A group in a gap (broker unreachable) has no lag series, never a zero.

use prometheus_client::registry::Registry;

use super::family::{self, counters, gauges, messages, seconds, set};
use crate::observe::{GroupLag, Status};

/// What `spotdrill lag` measured last.
#[derive(Debug, Default)]
pub struct LagMetrics {
    last: Vec<GroupLag>,
    samples: u64,
    partitions: bool,
}

impl LagMetrics {
    pub fn new(partitions: bool) -> LagMetrics {
        LagMetrics {
            partitions,
            ..LagMetrics::default()
        }
    }

    /// Take in one snapshot (one sample of every group).
    pub fn update(&mut self, snapshot: &[GroupLag]) {
        self.last = snapshot.to_vec();
        self.samples += 1;
    }

    pub fn registry(&self) -> Registry {
        let mut r = family::registry();
        let lag_s = gauges(
            &mut r,
            "group_lag",
            "Consumer group lag (max over partitions)",
            seconds(),
        );
        let lag_m = gauges(
            &mut r,
            "group_lag",
            "Consumer group lag (sum over partitions)",
            messages(),
        );
        let up = gauges(
            &mut r,
            "group_up",
            "Whether the group's last sample was measured (1) or a gap (0)",
            None,
        );
        let took = gauges(
            &mut r,
            "group_sample_duration",
            "How long the last sample took",
            seconds(),
        );
        let samples = counters(&mut r, "lag_samples", "Samples taken since start");
        samples.get_or_create(&Vec::new()).inc_by(self.samples);
        for g in &self.last {
            let who = [("group", g.group.as_str())];
            set(
                &up,
                &who,
                if g.status == Status::Missing {
                    0.0
                } else {
                    1.0
                },
            );
            set(&took, &who, g.took_ms as f64 / 1000.0);
            if g.status == Status::Missing {
                continue;
            }
            if let Some(l) = g.lag_seconds {
                set(&lag_s, &who, l);
            }
            if let Some(m) = g.lag_messages {
                set(&lag_m, &who, m as f64);
            }
        }
        if self.partitions {
            self.partition_series(&mut r);
        }
        r
    }

    fn partition_series(&self, r: &mut Registry) {
        let lag_s = gauges(r, "partition_lag", "Partition lag", seconds());
        let lag_m = gauges(r, "partition_lag", "Partition lag", messages());
        for g in self.last.iter().filter(|g| g.status != Status::Missing) {
            for p in &g.partitions {
                let partition = p.partition.to_string();
                let labels = [
                    ("group", g.group.as_str()),
                    ("topic", p.topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                if let Some(l) = p.lag_seconds {
                    set(&lag_s, &labels, l);
                }
                set(&lag_m, &labels, p.lag_messages as f64);
            }
        }
    }
}
