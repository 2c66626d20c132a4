//! `report.md`: the summary a person pastes into a postmortem.

use std::fmt::Write;

use super::text::{
    capacity_cell, capitalized, duration, md_cell, not_judged, secs, step_title, tolerance,
};
use super::{Report, TargetReport};

pub fn render(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# spotdrill report: {}\n", r.plan);
    let _ = writeln!(
        md,
        "**Verdict: {}** (exit code {})  ",
        r.verdict.as_str().to_uppercase(),
        r.exit_code
    );
    let _ = writeln!(md, "Plan: `{}`  ", r.plan_path);
    let _ = writeln!(
        md,
        "Started {}, finished {}; took {}.  ",
        r.started_at.as_deref().unwrap_or("at an unknown time"),
        r.finished_at
            .as_deref()
            .unwrap_or("never (the run did not finish)"),
        duration(r)
    );
    let _ = writeln!(md, "Targets ran {}.", r.order);
    if let Some(why) = &r.aborted {
        let _ = writeln!(md, "\n> **Aborted:** {why}");
    }

    md.push_str("\n## Summary\n\n");
    md.push_str("| target | kind | tolerated | required | verdict | first failure |\n");
    md.push_str("|---|---|---:|---:|---|---|\n");
    for t in &r.targets {
        let first = t.first_failure.as_ref().map_or_else(
            || "—".to_owned(),
            |f| format!("at {}: {}", super::text::failure_short(f), f.reason),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | **{}** | {} |",
            md_cell(&t.name),
            md_cell(&t.kind),
            md_cell(&super::text::bound_short(t)),
            t.required_tolerance,
            t.verdict,
            md_cell(&first)
        );
    }

    for t in &r.targets {
        target(&mut md, t);
    }

    md.push_str("\n## Notes\n\n");
    if r.notes.is_empty() && r.aborted.is_none() {
        md.push_str("None.\n");
    }
    if let Some(why) = &r.aborted {
        let _ = writeln!(md, "- aborted: {why}");
    }
    for n in &r.notes {
        let _ = writeln!(md, "- {n}");
    }
    md
}

fn target(md: &mut String, t: &TargetReport) {
    let _ = writeln!(
        md,
        "\n## {} ({}, provider {})\n",
        t.name, t.kind, t.provider
    );
    let _ = writeln!(md, "{}: **{}**.", capitalized(&tolerance(t)), t.verdict);
    if let Some(s) = &t.search {
        let _ = writeln!(md, "\n{}. The {}.", capitalized(&s.summary), s.assumption);
    }
    if let Some(f) = &t.first_failure {
        let _ = writeln!(
            md,
            "First failure at {}: {}.",
            super::text::failure_at(f),
            f.reason
        );
    }
    if t.cumulative {
        md.push_str("Steps add up: capacity lost in one step is not replaced before the next.\n");
    }
    md.push('\n');
    md.push_str(
        "| step | nodes | capacity back | application | baseline | spike | time to peak | \
         recovery | rescheduled | verdict | reason |\n",
    );
    md.push_str("|---|---|---:|---|---:|---:|---:|---:|---:|---|---|\n");
    let mut skipped = Vec::new();
    for (i, s) in t.steps.iter().enumerate() {
        if s.applications.is_empty() {
            skipped.push((i, s));
            continue;
        }
        for (k, a) in s.applications.iter().enumerate() {
            let (step, nodes, capacity) = if k == 0 {
                (
                    step_title(i, s),
                    if s.nodes.is_empty() {
                        "—".to_owned()
                    } else {
                        s.nodes.join(", ")
                    },
                    capacity_cell(s),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md_cell(&step),
                md_cell(&nodes),
                md_cell(&capacity),
                md_cell(&a.name),
                secs(a.baseline_lag_s),
                secs(a.spike_lag_s),
                secs(a.time_to_peak_s),
                secs(a.recovery_s),
                secs(a.rescheduled_s),
                a.verdict,
                md_cell(&a.reason)
            );
        }
    }
    let findings: Vec<(usize, &String)> = t
        .steps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.findings.iter().map(move |f| (i, f)))
        .collect();
    if !findings.is_empty() {
        md.push_str("\nFindings:\n\n");
        for (i, f) in findings {
            let _ = writeln!(md, "- {}: {}", step_title(i, &t.steps[i]), f);
        }
    }
    if !skipped.is_empty() {
        md.push_str("\nNot judged:\n\n");
        for (i, s) in skipped {
            let _ = writeln!(md, "- {}: {}", step_title(i, s), not_judged(s));
        }
    }
    match &t.overprovisioning {
        Some(o) => {
            let _ = writeln!(md, "\nOverprovisioning: {}.", o.summary);
        }
        None => md.push_str(
            "\nOverprovisioning: no recommendation (capacity was never seen coming back).\n",
        ),
    }
}
