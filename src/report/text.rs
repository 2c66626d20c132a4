//! Small pieces every report format shares: numbers in words, escaping, step titles.

use crate::analysis::Verdict;
use crate::analysis::fmt_secs;

use super::{FirstFailure, Report, StepReport, TargetReport};

/// Seconds as people read them, or `—` when unknown.
pub fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_owned(), fmt_secs)
}

/// `step 2 (2 terminations)`.
/// When capacity was back, with the live nodes the probes saw (before → lowest → after).
pub fn capacity_cell(step: &StepReport) -> String {
    let back = secs(step.capacity_restored_s);
    match &step.capacity {
        Some(c) => match (c.nodes_before, c.nodes_lowest, c.nodes_after) {
            (Some(b), Some(l), Some(a)) => format!("{back} (nodes {b}→{l}→{a})"),
            _ if c.probes == 0 => format!("{back} (probes failed)"),
            _ => back,
        },
        None => back,
    }
}

/// `step 2 (2 terminations)`, `step 3 (the largest market (c5.2xlarge/us-east-1a: 4 nodes))`.
pub fn step_title(index: usize, step: &StepReport) -> String {
    format!("step {} ({})", index + 1, rung(step))
}

/// What a step terminates: `2 terminations`, or for a market rung `the largest market
/// (c5.2xlarge/us-east-1a: 4 nodes)`.
pub fn rung(step: &StepReport) -> String {
    match &step.market {
        Some(m) => m.label.clone(),
        None => terminations(step.terminations),
    }
}

/// `1 termination`, `3 terminations`.
pub fn terminations(n: u32) -> String {
    format!("{n} termination{}", if n == 1 { "" } else { "s" })
}

/// Where a target first failed: `3 terminations`, `the largest market (…: 4 nodes)`.
pub fn failure_at(f: &FirstFailure) -> String {
    f.rung
        .clone()
        .unwrap_or_else(|| format!("{} terminations", f.terminations))
}

/// Where a target first failed, briefly: `3`, `the largest market (…: 4 nodes)`.
pub fn failure_short(f: &FirstFailure) -> String {
    f.rung.clone().unwrap_or_else(|| f.terminations.to_string())
}

/// `pass`, `fail`, `inconclusive`, or `not run`.
pub fn step_verdict(step: &StepReport) -> &'static str {
    step.verdict.map_or("not run", Verdict::as_str)
}

/// Why a step has no verdict: `not run: …`, or `not judged: …` when its nodes were terminated.
pub fn not_judged(step: &StepReport) -> String {
    let why = step.skipped.as_deref().unwrap_or("no result recorded");
    let prefix = if step.injected_at.is_some() {
        "not judged"
    } else {
        "not run"
    };
    let why = why
        .strip_prefix(prefix)
        .map(|w| w.trim_start_matches(':').trim_start())
        .unwrap_or(why);
    if step.injected_at.is_some() {
        format!(
            "{prefix}: {why} (nodes {} were terminated)",
            step.nodes.join(", ")
        )
    } else {
        format!("{prefix}: {why}")
    }
}

/// `tolerates ≥ 3 (every step passed; the limit is above the ladder); required 2`.
pub fn tolerance(t: &TargetReport) -> String {
    format!(
        "tolerates {}; required {}",
        bound_words(t),
        t.required_tolerance
    )
}

/// The tolerance as a bound in words (`3 (step 4, 4 terminations, failed: …)`); for a report
/// written before the words were, the number alone.
pub fn bound_words(t: &TargetReport) -> String {
    t.tolerance
        .clone()
        .unwrap_or_else(|| t.tolerated_terminations.to_string())
}

/// The tolerance as a bound, short: `≥ 3` or `3`.
pub fn bound_short(t: &TargetReport) -> String {
    match t.tolerance_bound {
        Some(super::Bound::AtLeast) => format!("≥ {}", t.tolerated_terminations),
        _ => t.tolerated_terminations.to_string(),
    }
}

/// How long the run took, from the journal's own numbers.
pub fn duration(r: &Report) -> String {
    match (r.duration_s, &r.started_at, &r.finished_at) {
        (Some(d), _, _) => fmt_secs(d),
        (None, Some(a), Some(b)) => {
            match (
                super::evidence::parse_time(a),
                super::evidence::parse_time(b),
            ) {
                (Some(a), Some(b)) => fmt_secs(super::evidence::secs_between(a, b).round()),
                _ => "unknown".into(),
            }
        }
        _ => "unknown (the run did not finish)".into(),
    }
}

/// The first letter in upper case.
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Escape text for HTML and XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; keep tab and newlines.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape a Markdown table cell: pipes and line breaks would break the table.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}"
        );
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
