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
    /// applications read.
    pub fn consumer_groups(&self) -> Vec<ConsumerGroup> {
        let mut out: Vec<ConsumerGroup> = Vec::new();
        for app in self.applications.values() {
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
