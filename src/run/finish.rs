//! The start and the end of a game day: `run_started` (or `resumed`) and the targets' discovery
//! and permissions; at the end `run_finished`, the reports, and the summary people read.

use super::resume;
use super::runner::Runner;
use super::{Options, round1};
use crate::exit::ExitCode;
use crate::journal::{self, Entry, TargetInfo};
use crate::report::Report;

impl Runner<'_> {
    pub async fn game_day(
        &mut self,
        text: &str,
        opts: &Options,
        previous: &[Entry],
    ) -> anyhow::Result<ExitCode> {
        if previous.is_empty() {
            self.write(&self.run_started(text, opts))?;
        } else {
            self.resume_from(previous)?;
            self.reconcile_providers(previous).await?;
        }
        let stop = self.interrupt_signal();
        tokio::select! {
            found = self.discover_all(previous) => found?,
            // Interrupted before the first sample: the baseline says so and ends the run.
            () = stop => {}
        }
        self.reconcile(previous).await?;
        // A run that stays stopped observes no step: no baseline to measure.
        if self.stop.is_none()
            && let Some(code) = self.baseline().await?
        {
            return Ok(code);
        }
        let plan = self.plan;
        for (name, target) in &plan.targets {
            self.target(name, target, previous).await?;
        }
        self.finish(opts)
    }

    fn run_started(&self, text: &str, opts: &Options) -> Entry {
        let plan = self.plan;
        Entry::RunStarted {
            at: self.now(),
            plan: plan.name.clone(),
            plan_path: opts.plan_path.display().to_string(),
            plan_digest: journal::digest(text),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            targets: plan
                .targets
                .iter()
                .map(|(name, t)| TargetInfo {
                    name: name.clone(),
                    kind: t.kind.name().to_owned(),
                    provider: t.nodes.provider().name().to_owned(),
                    required_tolerance: t.required_tolerance,
                    ladder: t.ladder.clone(),
                    search: t.search,
                    cumulative: t.cumulative,
                    safety_multiple: t.safety_multiple,
                    applications: t.applications.clone(),
                })
                .collect(),
            lab: plan.lab.is_some(),
            aws: super::place::of(&self.providers),
        }
    }

    /// Every target's nodes and, before anything else, the permission to terminate them
    /// (`DryRun=true` on TerminateInstances for AWS). Each target's size when the run first
    /// started is its 100% (`min_healthy`): journaled then, read back by every resume.
    pub(super) async fn discover_all(&mut self, previous: &[Entry]) -> anyhow::Result<()> {
        let mut found = Vec::new();
        for (name, p) in &self.providers {
            let nodes = crate::preflight::nodes::ready(name, p.as_ref()).await?;
            found.push((name.clone(), nodes.len() as u32));
        }
        for (name, now) in found {
            let size = match resume::fleet(previous, &name) {
                Some(size) => size,
                None => {
                    self.write(&Entry::Fleet {
                        at: self.now(),
                        target: name.clone(),
                        nodes: now,
                    })?;
                    now
                }
            };
            self.sizes.insert(name, size as usize);
        }
        Ok(())
    }

    /// Write the report and say the verdict.
    fn finish(&mut self, opts: &Options) -> anyhow::Result<ExitCode> {
        let entries = journal::read(&opts.dir)?;
        let provisional = Report::from_journal(&entries);
        let cpu_now = crate::lab::stats::read(&[std::process::id()]);
        let cpu = |r: &crate::lab::stats::Reading| r.cpu_s.first().map(|(_, s)| *s);
        let wall_s = cpu_now.at.duration_since(self.cpu_start.at).as_secs_f64();
        let cpu_s = cpu(&cpu_now).zip(cpu(&self.cpu_start)).map(|(b, a)| b - a);
        self.write(&Entry::RunFinished {
            at: self.now(),
            verdict: provisional.verdict,
            exit_code: provisional.exit_code,
            wall_s: Some(round1(wall_s)),
            cpu_s: cpu_s.map(|c| (c * 100.0).round() / 100.0),
        })?;
        let entries = journal::read(&opts.dir)?;
        let report = Report::from_journal(&entries);
        crate::report::write_all(&opts.dir, &report)?;
        self.progress.clear();
        crate::output::out(&summary(&report, opts, wall_s, cpu_s));
        Ok(report.exit_code)
    }
}

/// The verdict, per target, as the run ends.
fn summary(report: &Report, opts: &Options, wall_s: f64, cpu_s: Option<f64>) -> String {
    let mut text = format!("\n{} — verdict {}\n", report.plan, report.verdict);
    for t in &report.targets {
        text.push_str(&format!(
            "  {}: {}: {}\n",
            t.name,
            crate::report::text::tolerance(t),
            t.verdict
        ));
        if let Some(f) = &t.first_failure {
            text.push_str(&format!(
                "    first failure at {}: {}\n",
                crate::report::text::failure_short(f),
                f.reason
            ));
        }
        if let Some(s) = &t.search {
            text.push_str(&format!("    {}\n", s.summary));
        }
        if let Some(o) = &t.overprovisioning {
            text.push_str(&format!("    {}\n", o.summary));
        }
    }
    if let Some(why) = &report.aborted {
        text.push_str(&format!("  aborted: {why}\n"));
    }
    if let Some(cpu_s) = cpu_s {
        text.push_str(&format!(
            "  took {:.0} s; spotdrill used {:.1}% of one core (the lab's scheduler included; its broker and nodes are processes of their own)\n",
            wall_s,
            cpu_s / wall_s.max(1e-9) * 100.0
        ));
    }
    text.push_str(&format!(
        "  reports: {}/{{report.json,report.md,report.html,junit.xml,samples.csv,journal.jsonl}}\n",
        opts.dir.display()
    ));
    text
}
