//! `report.html`: one self-contained page (no scripts, fonts or styles from the network) with
//! what `report.md` says plus a lag chart per step (one line per application).

use std::fmt::Write;
use std::time::SystemTime;

use super::chart::{self, Line, StepChart};
use super::evidence::{Evidence, Marker, parse_time};
use super::text::{
    capacity_cell, capitalized, duration, escape, not_judged, secs, step_title, step_verdict,
    tolerance,
};
use super::{Report, StepReport, TargetReport};

/// Seconds shown before the injection.
const BEFORE_S: f64 = 10.0;
/// Seconds shown after the last thing worth seeing (recovery, capacity back, judgement).
const AFTER_S: f64 = 3.0;

/// The page's style; the live page (src/live/web) starts from it too, so both look alike.
pub const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2rem auto;
  max-width: 1100px; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d6d6d6; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; white-space: nowrap; }
.verdict { font-weight: 600; padding: .05rem .45rem; border-radius: .25rem; }
.pass { background: #dff3e4; color: #185c2c; }
.fail { background: #fbe0e0; color: #8a1c1c; }
.inconclusive, .not-run { background: #fff1cc; color: #6b5000; }
.aborted { border-left: 4px solid #c81e1e; padding: .3rem .8rem; background: #fdf0f0; }
figure { margin: 1.2rem 0 2rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.lag-chart { max-width: 100%; height: auto; border: 1px solid #e2e2e2; }
.legend span { display: inline-block; margin-right: 1rem; }
.swatch { display: inline-block; width: .9rem; height: .25rem; vertical-align: middle;
  margin-right: .3rem; }
ul.events, p.key { font-size: .85rem; color: #444; margin: .3rem 0; }
footer { margin-top: 3rem; font-size: .8rem; color: #666; }
";

pub fn render(r: &Report, ev: &Evidence) -> String {
    let mut h = String::new();
    let title = format!("spotdrill report: {}", r.plan);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut h, r, &title);
    summary(&mut h, r);
    for t in &r.targets {
        target(&mut h, t, ev);
    }
    notes(&mut h, r);
    let _ = writeln!(
        h,
        "<footer>Written by spotdrill {} from the run's journal{}.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        if ev.samples.is_some() {
            " and samples"
        } else {
            ""
        }
    );
    h
}

/// The heading: verdict, plan, times, order, and why the run was aborted.
fn header(h: &mut String, r: &Report, title: &str) {
    let _ = writeln!(h, "<header>\n<h1>{}</h1>", escape(title));
    let _ = writeln!(
        h,
        "<p>Verdict: {} (exit code {})</p>",
        verdict_badge(r.verdict.as_str()),
        r.exit_code
    );
    let _ = writeln!(
        h,
        "<p>Plan <code>{}</code>. Started {}, finished {}; took {}. Targets ran {}.</p>",
        escape(&r.plan_path),
        escape(r.started_at.as_deref().unwrap_or("at an unknown time")),
        escape(
            r.finished_at
                .as_deref()
                .unwrap_or("never (the run did not finish)")
        ),
        escape(&duration(r)),
        escape(&r.order)
    );
    if let Some(why) = &r.aborted {
        let _ = writeln!(
            h,
            "<p class=\"aborted\"><strong>Aborted:</strong> {}</p>",
            escape(why)
        );
    }
    h.push_str("</header>\n");
}

/// One row per target: tolerance, verdict and first failure.
fn summary(h: &mut String, r: &Report) {
    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table>\n");
    h.push_str(
        "<tr><th>target</th><th>kind</th><th>tolerated</th><th>required</th><th>verdict</th>\
         <th>first failure</th></tr>\n",
    );
    for t in &r.targets {
        let first = t.first_failure.as_ref().map_or_else(
            || "—".to_owned(),
            |f| format!("at {}: {}", super::text::failure_short(f), f.reason),
        );
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#target-{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&anchor(&t.name)),
            escape(&t.name),
            escape(&t.kind),
            escape(&super::text::bound_short(t)),
            t.required_tolerance,
            verdict_badge(t.verdict.as_str()),
            escape(&first)
        );
    }
    h.push_str("</table>\n</section>\n");
}

/// The run's notes, and the abort among them.
fn notes(h: &mut String, r: &Report) {
    h.push_str("<section id=\"notes\">\n<h2>Notes</h2>\n");
    if r.notes.is_empty() && r.aborted.is_none() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<ul>\n");
        if let Some(why) = &r.aborted {
            let _ = writeln!(h, "<li>aborted: {}</li>", escape(why));
        }
        for n in &r.notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

fn verdict_badge(v: &str) -> String {
    format!(
        "<span class=\"verdict {}\">{}</span>",
        v.replace(' ', "-"),
        escape(v)
    )
}

/// An id for a target's section.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn target(h: &mut String, t: &TargetReport, ev: &Evidence) {
    target_head(h, t);
    h.push_str("</p>\n<table class=\"steps\">\n");
    h.push_str(
        "<tr><th>step</th><th>nodes</th><th>capacity back</th><th>application</th>\
         <th>baseline</th><th>spike</th><th>time to peak</th><th>recovery</th>\
         <th>rescheduled</th><th>verdict</th><th>reason</th></tr>\n",
    );
    for (i, s) in t.steps.iter().enumerate() {
        step_rows(h, i, s);
    }
    h.push_str("</table>\n");
    findings(h, t);
    let _ = writeln!(
        h,
        "<p>Overprovisioning: {}.</p>",
        escape(t.overprovisioning.as_ref().map_or(
            "no recommendation (capacity was never seen coming back)",
            |o| o.summary.as_str()
        ))
    );
    if ev.samples.is_some() {
        for (i, s) in t.steps.iter().enumerate() {
            if let Some(fig) = figure(t, i, s, ev) {
                h.push_str(&fig);
            }
        }
    }
    h.push_str("</section>\n");
}

/// The section's heading and the opening of its summary paragraph (tolerance, verdict, first
/// failure).
fn target_head(h: &mut String, t: &TargetReport) {
    let _ = writeln!(
        h,
        "<section class=\"target\" id=\"target-{}\">\n<h2>{} ({}, provider {})</h2>",
        escape(&anchor(&t.name)),
        escape(&t.name),
        escape(&t.kind),
        escape(&t.provider)
    );
    let _ = writeln!(
        h,
        "<p>{}: {}.",
        escape(&capitalized(&tolerance(t))),
        verdict_badge(t.verdict.as_str())
    );
    if let Some(f) = &t.first_failure {
        let _ = write!(
            h,
            " First failure at {}: {}.",
            escape(&super::text::failure_at(f)),
            escape(&f.reason)
        );
    }
    if let Some(s) = &t.search {
        let _ = write!(
            h,
            " {}. The {}.",
            escape(&capitalized(&s.summary)),
            escape(&s.assumption)
        );
    }
    if t.cumulative {
        h.push_str(" Steps add up: capacity lost in one step is not replaced before the next.");
    }
}

/// A step's rows in the steps table: one per application, the step's own cells spanning them.
fn step_rows(h: &mut String, i: usize, s: &StepReport) {
    let rows = s.applications.len().max(1);
    let lead = format!(
        "<td rowspan=\"{rows}\">{}</td><td rowspan=\"{rows}\">{}</td>\
         <td rowspan=\"{rows}\" class=\"num\">{}</td>",
        escape(&step_title(i, s)),
        escape(&if s.nodes.is_empty() {
            "—".to_owned()
        } else {
            s.nodes.join(", ")
        }),
        escape(&capacity_cell(s))
    );
    if s.applications.is_empty() {
        let _ = writeln!(
            h,
            "<tr>{lead}<td colspan=\"6\">—</td><td>{}</td><td>{}</td></tr>",
            verdict_badge(step_verdict(s)),
            escape(&not_judged(s))
        );
        return;
    }
    for (k, a) in s.applications.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr>{}<td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td></tr>",
            if k == 0 { lead.as_str() } else { "" },
            escape(&a.name),
            escape(&secs(a.baseline_lag_s)),
            escape(&secs(a.spike_lag_s)),
            escape(&secs(a.time_to_peak_s)),
            escape(&secs(a.recovery_s)),
            escape(&secs(a.rescheduled_s)),
            verdict_badge(a.verdict.as_str()),
            escape(&a.reason)
        );
    }
}

/// The steps' findings as a list, when there are any.
fn findings(h: &mut String, t: &TargetReport) {
    let findings: Vec<String> = t
        .steps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.findings
                .iter()
                .map(move |f| format!("<li>{}: {}</li>", escape(&step_title(i, s)), escape(f)))
        })
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(
            h,
            "<p>Findings:</p>\n<ul class=\"findings\">\n{}\n</ul>",
            findings.join("\n")
        );
    }
}

/// The chart of one step with its legend and event list; `None` when the step was not
/// injected.
fn figure(t: &TargetReport, i: usize, s: &StepReport, ev: &Evidence) -> Option<String> {
    let t0 = parse_time(s.injected_at.as_deref()?)?;
    let fig = Figure { t, i, s, ev, t0 };
    let lines = fig.lines();
    let (start, end) = fig.window(&lines);
    let markers = ev.markers(&t.name, i, &s.nodes, t0, (start, end));
    let title = format!("{} {}", t.name, step_title(i, s));
    let chart = StepChart {
        title: title.clone(),
        x: (start, end.max(start + 1.0)),
        lines,
        markers,
    };
    let svg = match chart.svg() {
        Ok(svg) => svg,
        Err(e) => format!("<p>The chart could not be drawn: {}</p>\n", escape(&e)),
    };
    let mut f = String::new();
    let _ = writeln!(
        f,
        "<figure class=\"chart\" data-target=\"{}\" data-step=\"{}\" data-applications=\"{}\">",
        escape(&t.name),
        i + 1,
        chart.lines.len()
    );
    let _ = writeln!(
        f,
        "<figcaption>{}: lag seconds since the injection ({}; nodes {})</figcaption>",
        escape(&title),
        escape(step_verdict(s)),
        escape(&s.nodes.join(", "))
    );
    f.push_str(&svg);
    legend(&mut f, &chart);
    f.push_str("</figure>\n");
    Some(f)
}

/// One step's chart in the making: the target, the step (and its index), the evidence and the
/// injection time.
struct Figure<'a> {
    t: &'a TargetReport,
    i: usize,
    s: &'a StepReport,
    ev: &'a Evidence,
    t0: SystemTime,
}

impl Figure<'_> {
    /// A line per application of the target (or, when it names none, of the step).
    fn lines(&self) -> Vec<Line> {
        let (t, s) = (self.t, self.s);
        let apps: Vec<String> = if t.applications.is_empty() {
            s.applications.iter().map(|a| a.name.clone()).collect()
        } else {
            t.applications.clone()
        };
        apps.iter()
            .enumerate()
            .map(|(k, name)| {
                let result = s.applications.iter().find(|a| &a.name == name);
                Line {
                    application: name.clone(),
                    color: chart::PALETTE[k % chart::PALETTE.len()],
                    points: self.ev.series(name, self.t0),
                    band_upper_s: result.and_then(|a| a.band_upper_s),
                    recovery_s: result.and_then(|a| a.recovery_s),
                }
            })
            .collect()
    }

    /// The window: a little before the injection, until recovery, capacity and the judgement
    /// are in, never into the next step.
    fn window(&self, lines: &[Line]) -> (f64, f64) {
        let s = self.s;
        let last_sample = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(0.0, f64::max);
        let first_sample = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(0.0, f64::min);
        let limit = self.ev.next_injection(self.t0).unwrap_or(last_sample);
        let judged = self.ev.step_end(&self.t.name, self.i, self.t0);
        let mut end = [judged, s.capacity_restored_s]
            .into_iter()
            .flatten()
            .chain(lines.iter().filter_map(|l| l.recovery_s))
            .chain(s.applications.iter().filter_map(|a| a.time_to_peak_s))
            .fold(0.0, f64::max);
        if judged.is_none() {
            // Never judged (a crash): as far as the samples go.
            end = end.max(last_sample);
        }
        let end = (end + AFTER_S).min(limit);
        let start = (-BEFORE_S).max(first_sample.min(0.0));
        (start, end)
    }
}

/// The chart's legend, its key and the list of node events.
fn legend(f: &mut String, chart: &StepChart) {
    f.push_str("<div class=\"legend\">");
    for l in &chart.lines {
        let none = l.points.iter().all(|(_, v)| v.is_none());
        let _ = write!(
            f,
            "<span><span class=\"swatch\" style=\"background:{}\"></span>{}{}</span>",
            chart::hex(l.color),
            escape(&l.application),
            if none { " (no lag samples)" } else { "" }
        );
    }
    f.push_str(
        "</div>\n<p class=\"key\">Red line: the injection; shaded: each application's baseline \
         band; coloured vertical lines: its recovery; grey lines: node events.</p>\n",
    );
    if !chart.markers.is_empty() {
        f.push_str("<ul class=\"events\">\n");
        for Marker { t, label, source } in &chart.markers {
            let _ = writeln!(f, "<li>{t:+.1} s: {} ({source})</li>", escape(label));
        }
        f.push_str("</ul>\n");
    }
}
