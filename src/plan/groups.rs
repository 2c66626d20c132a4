//! The consumer groups a plan's applications are measured in: one definition for `run`, `plan`
//! and `lab`.

use super::{Isolation, Plan};

/// One consumer group and every topic an application reads in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub group: String,
    pub topics: Vec<String>,
    /// The isolation its applications read with (validation makes them agree).
    pub isolation: Isolation,
}

impl Plan {
    /// Each application's group once (in plan order), with the union of the topics its
    /// applications read; applications whose lag comes from PromQL are not measured in Kafka.
    pub fn consumer_groups(&self) -> Vec<ConsumerGroup> {
        let mut out: Vec<ConsumerGroup> = Vec::new();
        for app in self.applications.values().filter(|a| a.lag.is_none()) {
            let i = match out.iter().position(|g| g.group == app.group) {
                Some(i) => i,
                None => {
                    out.push(ConsumerGroup {
                        group: app.group.clone(),
                        topics: Vec::new(),
                        isolation: app.isolation,
                    });
                    out.len() - 1
                }
            };
            for t in &app.topics {
                if !out[i].topics.contains(t) {
                    out[i].topics.push(t.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{Isolation, load};

    fn plan(first: &str, second: &str) -> crate::plan::Loaded {
        load(&format!(
            "version: 1\n\
             name: isolation\n\
             kafka: {{brokers: \"k1:9092\"}}\n\
             applications:\n  \
               a: {{group: g, topics: [t], slo: {{max_lag: 1m, max_recovery: 2m}}{first}}}\n  \
               b: {{group: g, topics: [u], slo: {{max_lag: 1m, max_recovery: 2m}}{second}}}\n\
             targets:\n  \
               s:\n    \
                 kind: storm\n    \
                 nodes: {{provider: aws-ec2, region: us-east-1, tags: {{role: storm}}}}\n    \
                 applications: [a, b]\n    \
                 ladder: [1]\n"
        ))
    }

    #[test]
    fn isolation_is_read_uncommitted_unless_said_and_carried_to_the_group() {
        let loaded = plan("", "");
        let groups = loaded.plan.expect("valid").consumer_groups();
        assert_eq!(groups[0].isolation, Isolation::ReadUncommitted);
        let committed = ", isolation: read_committed";
        let loaded = plan(committed, committed);
        let groups = loaded.plan.expect("valid").consumer_groups();
        assert_eq!(groups[0].isolation, Isolation::ReadCommitted);
    }

    #[test]
    fn applications_of_one_group_must_agree_on_isolation_and_the_value_is_checked() {
        let loaded = plan(", isolation: read_committed", "");
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.path.as_ref().unwrap(), d.message))
            .collect();
        assert_eq!(
            errors,
            [
                "applications.b: application `b` reads group `g` with isolation read_uncommitted, \
              but `a` reads it with read_committed"
            ]
        );
        let loaded = plan(", isolation: serializable", "");
        let d = loaded.diagnostics.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(
            d.path.as_ref().unwrap().to_string(),
            "applications.a.isolation"
        );
        assert!(
            d.message.contains("`read_uncommitted` or `read_committed`"),
            "{}",
            d.message
        );
    }
}
