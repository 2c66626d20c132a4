//! `junit.xml`: what CI systems show as tests. A `<testsuite>` per target holds a `<testcase>` per
//! application per step (`<failure>` with the reason when it failed, `<skipped>` when it was
//! inconclusive or not run), and one `tolerance` testcase that fails exactly when the target
//! misses its required tolerance: the gate the exit code reports. A failing step above the
//! required tolerance is an expected finding of the ladder, so its failure does not fail the run.

use std::fmt::Write;

use crate::analysis::Verdict;

use super::text::{escape, not_judged, secs, step_title, tolerance};
use super::{Report, TargetReport};

/// Counts of one suite, as its attributes state them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub tests: usize,
    pub failures: usize,
    pub skipped: usize,
}

enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

struct Case {
    name: String,
    time_s: f64,
    status: Status,
    out: String,
}

fn cases(t: &TargetReport) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, s) in t.steps.iter().enumerate() {
        let title = step_title(i, s);
        if s.applications.is_empty() {
            let why = not_judged(s);
            let names: Vec<String> = if t.applications.is_empty() {
                vec!["(all applications)".into()]
            } else {
                t.applications.clone()
            };
            for app in names {
                cases.push(Case {
                    name: format!("{title}: {app}"),
                    time_s: 0.0,
                    status: Status::Skipped(why.clone()),
                    out: String::new(),
                });
            }
            continue;
        }
        for a in &s.applications {
            let out = format!(
                "nodes: {}\nbaseline: {}\nband upper: {}\nspike: {}\ntime to peak: {}\n\
                 recovery: {}\ncapacity back: {}\n",
                s.nodes.join(", "),
                secs(a.baseline_lag_s),
                secs(a.band_upper_s),
                secs(a.spike_lag_s),
                secs(a.time_to_peak_s),
                secs(a.recovery_s),
                secs(s.capacity_restored_s)
            );
            cases.push(Case {
                name: format!("{title}: {}", a.name),
                time_s: a.recovery_s.unwrap_or(0.0),
                status: match a.verdict {
                    Verdict::Pass => Status::Passed,
                    Verdict::Fail => Status::Failed(a.reason.clone()),
                    Verdict::Inconclusive => Status::Skipped(format!("inconclusive: {}", a.reason)),
                },
                out,
            });
        }
    }
    let gate = format!(
        "{}; first failure: {}",
        tolerance(t),
        t.first_failure
            .as_ref()
            .map_or("none".to_owned(), |f| format!(
                "at {}: {}",
                super::text::failure_short(f),
                f.reason
            ))
    );
    cases.push(Case {
        name: format!(
            "tolerance: at least {} termination{}",
            t.required_tolerance,
            if t.required_tolerance == 1 { "" } else { "s" }
        ),
        time_s: 0.0,
        status: match t.verdict {
            Verdict::Pass => Status::Passed,
            Verdict::Fail => Status::Failed(gate.clone()),
            Verdict::Inconclusive => Status::Skipped(format!("inconclusive: {gate}")),
        },
        out: format!("{gate}\n"),
    });
    cases
}

fn count(cases: &[Case]) -> Counts {
    Counts {
        tests: cases.len(),
        failures: cases
            .iter()
            .filter(|c| matches!(c.status, Status::Failed(_)))
            .count(),
        skipped: cases
            .iter()
            .filter(|c| matches!(c.status, Status::Skipped(_)))
            .count(),
    }
}

pub fn render(r: &Report) -> String {
    let suites: Vec<(&TargetReport, Vec<Case>)> = r.targets.iter().map(|t| (t, cases(t))).collect();
    let total = suites.iter().fold(Counts::default(), |acc, (_, c)| {
        let n = count(c);
        Counts {
            tests: acc.tests + n.tests,
            failures: acc.failures + n.failures,
            skipped: acc.skipped + n.skipped,
        }
    });
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.1}\">",
        escape(&format!("spotdrill: {}", r.plan)),
        total.tests,
        total.failures,
        total.skipped,
        r.duration_s.unwrap_or(0.0)
    );
    for (t, cases) in &suites {
        let n = count(cases);
        let time: f64 = cases.iter().map(|c| c.time_s).sum();
        let _ = write!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{time:.1}\"",
            escape(&t.name),
            n.tests,
            n.failures,
            n.skipped
        );
        if let Some(at) = t.steps.iter().find_map(|s| s.injected_at.as_deref()) {
            // JUnit's timestamp has no zone designator.
            let at = at.trim_end_matches('Z');
            let _ = write!(
                x,
                " timestamp=\"{}\"",
                escape(at.split('.').next().unwrap_or(at))
            );
        }
        properties(&mut x, t);
        for c in cases {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.1}\"",
                escape(&c.name),
                escape(&format!("spotdrill.{}", t.name)),
                c.time_s
            );
            let body = match &c.status {
                Status::Passed => String::new(),
                Status::Failed(why) => format!(
                    "      <failure message=\"{}\" type=\"fail\">{}</failure>\n",
                    escape(why),
                    escape(why)
                ),
                Status::Skipped(why) => {
                    format!("      <skipped message=\"{}\"/>\n", escape(why))
                }
            };
            if body.is_empty() && c.out.is_empty() {
                x.push_str("/>\n");
                continue;
            }
            x.push_str(">\n");
            x.push_str(&body);
            if !c.out.is_empty() {
                let _ = writeln!(x, "      <system-out>{}</system-out>", escape(&c.out));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// A target suite's `<properties>`: kind, provider, the tolerance and its bound, and a search's
/// summary.
fn properties(x: &mut String, t: &TargetReport) {
    let bound = match t.tolerance_bound {
        Some(super::Bound::Exact) => "exact",
        Some(super::Bound::AtLeast) => "at_least",
        None => "unknown",
    };
    x.push_str(">\n    <properties>\n");
    let props = [
        ("kind", t.kind.clone()),
        ("provider", t.provider.clone()),
        (
            "tolerated_terminations",
            t.tolerated_terminations.to_string(),
        ),
        ("tolerance_bound", bound.into()),
        ("tolerance", super::text::bound_words(t)),
        ("required_tolerance", t.required_tolerance.to_string()),
        ("verdict", t.verdict.to_string()),
    ];
    let search = t.search.as_ref().map(|s| ("search", s.summary.clone()));
    for (k, v) in props.into_iter().chain(search) {
        let _ = writeln!(x, "      <property name=\"{k}\" value=\"{}\"/>", escape(&v));
    }
    x.push_str("    </properties>\n");
}
