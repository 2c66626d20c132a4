//! Before the first step: the lab's warm-up (every application has a lag sample), then the
//! baseline window and each application's band.

use super::round1;
use super::runner::{Runner, Series};
use crate::analysis::{self, BandSettings, Sample};
use crate::exit::ExitCode;
use crate::journal::{BaselineApp, Entry};
use crate::observe::Status;

impl Runner<'_> {
    /// Lab warm-up, then the baseline window and each application's band. Returns an exit code
    /// when the run must not start.
    pub async fn baseline(&mut self) -> anyhow::Result<Option<ExitCode>> {
        if let Some(code) = self.warm_up().await? {
            return Ok(Some(code));
        }
        let observe = &self.plan.observe;
        self.progress.event(&format!(
            "baseline: {}",
            humantime::format_duration(observe.baseline)
        ));
        let start = self.now_s();
        let until = self.clock.after(observe.baseline);
        self.pump(until, |r| r.stop.is_some()).await?;
        if self.stop.is_some() {
            return Ok(Some(ExitCode::Aborted));
        }
        let (apps, refusals) = self.bands(start);
        self.write(&Entry::Baseline {
            at: self.now(),
            applications: apps,
        })?;
        if !refusals.is_empty() {
            return Ok(Some(self.refuse(&refusals.join("; "))));
        }
        Ok(None)
    }

    /// Wait until every application has a lag sample: a lab's workloads get up to
    /// `LAB_WARMUP` for their first commits; a group nothing in the lab consumes (or any group
    /// of an external broker) three sample intervals.
    async fn warm_up(&mut self) -> anyhow::Result<Option<ExitCode>> {
        let first_samples = self.plan.observe.sample_interval * 3;
        let lab_groups = self.lab_groups();
        let warmup = if self.lab.is_some() {
            self.progress
                .event("waiting for the lab's workloads to commit");
            crate::preflight::LAB_WARMUP
        } else {
            first_samples
        };
        let deadline = self.clock.after(warmup);
        let others_by = self.clock.after(first_samples);
        let sampled = |s: &Series| s.samples.last().is_some_and(|l| l.valid_lag().is_some());
        let done = |r: &Self| {
            let missing = |s: &&Series| !sampled(s);
            let mut missing = r.series.values().filter(missing);
            match missing.next() {
                None => true,
                // Past three intervals, a group no lab workload commits in never will.
                Some(_) => {
                    r.clock.now() >= others_by
                        && r.series
                            .values()
                            .any(|s| !sampled(s) && !lab_groups.contains(&s.group))
                }
            }
        };
        self.pump(deadline, done).await?;
        if self.series.values().all(sampled) {
            return Ok(None);
        }
        let bad: Vec<String> = self
            .series
            .iter()
            .filter(|(_, s)| s.samples.last().is_none_or(|l| l.valid_lag().is_none()))
            .map(|(name, s)| {
                let why = match s.last_status.as_ref() {
                    Some(Status::NeverCommitted) => "has no committed offsets",
                    Some(Status::Missing) => "cannot be measured (Kafka unreachable?)",
                    _ => "has no lag sample",
                };
                format!("{name} (group {}) {why}", s.group)
            })
            .collect();
        Ok(Some(self.refuse(&bad.join("; "))))
    }

    /// The consumer groups the lab's workloads commit in, and the lag keys of PromQL
    /// applications (none without a lab).
    fn lab_groups(&self) -> Vec<String> {
        let Some(lab) = self.plan.lab.as_ref().filter(|_| self.lab.is_some()) else {
            return Vec::new();
        };
        // Lag from PromQL in a lab run shows once Prometheus has scraped it: wait as for the
        // workloads' first commits.
        let promql = self
            .plan
            .applications
            .iter()
            .filter(|(_, a)| a.lag.is_some())
            .map(|(name, a)| a.lag_key(name));
        lab.clusters
            .values()
            .flat_map(|c| c.workloads.values().map(|w| w.group.clone()))
            .chain(promql)
            .collect()
    }

    /// Each application's band from the samples since `start`, and why the run must not start
    /// (no sample, or a baseline already above `abort_lag`).
    fn bands(&mut self, start: f64) -> (Vec<BaselineApp>, Vec<String>) {
        let plan = self.plan;
        let settings = BandSettings {
            margin: plan.observe.band_margin,
            floor_s: plan.observe.band_floor.as_secs_f64(),
        };
        let mut apps = Vec::new();
        let mut refusals = Vec::new();
        for (name, s) in &mut self.series {
            let window: Vec<Sample> = s.samples.iter().copied().filter(|x| x.t >= start).collect();
            let Some(band) = analysis::baseline_band(&window, settings) else {
                refusals.push(format!("{name}: no lag sample during the baseline"));
                continue;
            };
            if let Some(abort) = plan.applications[name.as_str()].abort_lag
                && band.p99_s > abort.as_secs_f64()
            {
                refusals.push(format!(
                    "{name}: baseline lag {:.1} s is already above its abort_lag {}",
                    band.p99_s,
                    humantime::format_duration(abort)
                ));
            }
            s.band = Some(band);
            apps.push(BaselineApp {
                name: name.clone(),
                group: s.group.clone(),
                p99_s: round1(band.p99_s),
                upper_s: round1(band.upper_s),
                samples: band.samples,
            });
            self.progress.event(&format!(
                "  {name}: baseline p99 {:.1} s, band up to {:.1} s",
                band.p99_s, band.upper_s
            ));
        }
        (apps, refusals)
    }
}
