//! A registry in the format the client asked for: OpenMetrics when its `Accept` header names
//! `application/openmetrics-text` (Prometheus asks for it first), the Prometheus text format
//! (0.0.4) otherwise. Both come from `prometheus-client`'s OpenMetrics encoder; the text format
//! is the same lines without what 0.0.4 does not have: the `# EOF` marker and `# UNIT` lines,
//! and with a counter's `# HELP`/`# TYPE` under its sample's name (`…_total`).

use prometheus_client::encoding::text::{encode, encode_registry};
use prometheus_client::registry::Registry;

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// The format an `Accept` header asks for (none: the text format).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The registry's exposition in `format`.
pub fn exposition(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    match format {
        // Writing into a String cannot fail.
        Format::OpenMetrics => encode(&mut out, registry).unwrap_or_default(),
        Format::Text => {
            encode_registry(&mut out, registry).unwrap_or_default();
            out = to_text_format(&out);
        }
    }
    out
}

/// OpenMetrics lines as the Prometheus text format 0.0.4 writes them.
fn to_text_format(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Unit;

    use super::*;

    fn registry() -> Registry {
        let mut r = Registry::with_prefix("spotdrill");
        let c: Counter = Counter::default();
        c.inc_by(3);
        r.register("terminations", "Terminations", c);
        let g: Gauge = Gauge::default();
        g.set(7);
        r.register_with_unit("lag", "Lag", Unit::Seconds, g);
        r
    }

    #[test]
    fn openmetrics_ends_with_eof_and_keeps_units() {
        let text = exposition(&registry(), Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("# UNIT spotdrill_lag_seconds seconds\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE spotdrill_terminations counter\n"),
            "{text}"
        );
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_has_no_eof() {
        let text = exposition(&registry(), Format::Text);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        assert!(
            text.contains(
                "# TYPE spotdrill_terminations_total counter\nspotdrill_terminations_total 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE spotdrill_lag_seconds gauge\nspotdrill_lag_seconds 7\n"),
            "{text}"
        );
    }

    #[test]
    fn accept_headers_choose_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(Format::from_accept(None), Format::Text);
    }
}
