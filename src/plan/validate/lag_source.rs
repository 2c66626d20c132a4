//! `applications.<name>.lag`: lag from a PromQL query.

use std::time::Duration;

use super::{Checker, Path, UrlProblem, check_http_url};
use crate::plan::PromLag;
use crate::plan::spec::{RawApplication, RawLagSource};

/// A series older than this is stale unless the plan says otherwise.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30);

impl Checker<'_> {
    /// The consumer group and topics: required unless the lag comes from elsewhere.
    pub(super) fn group_and_topics(&mut self, a: &RawApplication, p: &Path) {
        if a.lag.is_some() {
            return;
        }
        if !self.present(&p.key("group")) {
            self.error_help(
                p,
                "an application needs its consumer `group`",
                "give `group: NAME`, or take its lag from Prometheus with `lag: {prometheus: URL, query: …}`",
            );
        } else {
            self.nonempty_text(&p.key("group"), "the consumer group", &a.group);
        }
        if a.topics.is_empty() {
            self.error(&p.key("topics"), "at least one topic is needed");
        }
    }

    /// `lag: {prometheus, query, unit, auth, max_age}`.
    pub(super) fn lag_source(&mut self, raw: Option<&RawLagSource>, p: &Path) -> Option<PromLag> {
        let l = raw?;
        let p = p.key("lag");
        let url = l.prometheus.trim();
        match check_http_url(url) {
            Ok(()) => {}
            Err(UrlProblem::Credentials { shown }) => self.error_secret(
                &p.key("prometheus"),
                format!("`{shown}` is written with credentials; a plan never holds a password"),
                "write the URL without them and the credentials as `auth: {username: NAME, password_env: VAR}` (or `auth: {token_env: VAR}`)",
            ),
            Err(UrlProblem::Invalid(reason)) => self.error_help(
                &p.key("prometheus"),
                format!("`{url}` is not an http(s) URL: {reason}"),
                "write the Prometheus server's URL, e.g. http://prometheus:9090",
            ),
        }
        self.nonempty_text(&p.key("query"), "the PromQL query", &l.query);
        let max_age = self.duration(&p.key("max_age"), l.max_age.as_ref(), DEFAULT_MAX_AGE);
        self.positive(&p.key("max_age"), "max_age", max_age);
        Some(PromLag {
            url: url.trim_end_matches('/').to_owned(),
            query: l.query.trim().to_owned(),
            unit: l.unit.unwrap_or_default(),
            auth: self.health_auth(l.auth.as_ref(), &p.key("auth")),
            max_age,
        })
    }
}
