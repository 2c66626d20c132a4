//! `provider: aws-asg`: the InService members of an Auto Scaling group (their lifecycle read from
//! EC2), terminated with TerminateInstanceInAutoScalingGroup: with `replace: true` the group keeps
//! its desired capacity and replaces the node (followed in the background: replacement tracking),
//! with `replace: false` the capacity is lost.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::aws::{self, AwsError, AwsSettings, Ec2, InstanceFilter, call_error, confirm, refusal};
use super::instances::{Instances, Replacement, Source};
use super::{Discovery, Found, Injection, Terminated};

/// The group a target names.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    /// Keep the desired capacity (the group replaces what is terminated).
    pub replace: bool,
    pub allow_on_demand: bool,
}

/// The InService members of an Auto Scaling group.
pub struct AsgNodes {
    asg: aws_sdk_autoscaling::Client,
    group: Group,
    /// The group's capacity as last described, once followed.
    followed: OnceLock<watch::Receiver<Option<GroupCapacity>>>,
}

impl AsgNodes {
    pub async fn connect(
        settings: &AwsSettings,
        region: Option<&str>,
        group: Group,
    ) -> Instances<AsgNodes> {
        let config = aws::sdk_config(settings, region).await;
        let source = AsgNodes {
            asg: aws_sdk_autoscaling::Client::new(&config),
            group,
            followed: OnceLock::new(),
        };
        Instances::new(Ec2::connect(&config).await, source)
    }
}

#[async_trait::async_trait]
impl Source for AsgNodes {
    fn name(&self) -> &'static str {
        "aws-asg"
    }

    fn identity(&self) -> String {
        format!("asg/{}", self.group.name)
    }

    async fn eligible(&self, ec2: &Ec2) -> Result<Discovery, AwsError> {
        let capacity = group_capacity(&self.asg, &self.group.name).await?;
        if capacity.in_service.is_empty() {
            return Ok(Discovery::default());
        }
        let filter = InstanceFilter {
            allow_on_demand: self.group.allow_on_demand,
            ..InstanceFilter::default()
        };
        let members = Some(capacity.in_service.as_slice());
        aws::describe(&ec2.client, &filter, members).await
    }

    /// The group terminates with its own service-linked role (the caller's TerminateInstances
    /// permission is still what the DryRun check can see).
    async fn terminate(&self, ec2: &Ec2, go: &[&Found], _: Injection<'_>) -> Vec<Terminated> {
        let ids: Vec<String> = go.iter().map(|f| f.node.id.clone()).collect();
        let called = terminate_asg(&self.asg, &ids, self.group.replace).await;
        let (mut out, called) = called;
        if !called.is_empty() {
            out.extend(self.confirm(&ec2.client, &called).await);
        }
        out
    }

    fn replacement(&self) -> Option<&dyn Replacement> {
        self.group.replace.then_some(self as &dyn Replacement)
    }
}

impl Replacement for AsgNodes {
    /// Describe the group every `every` until `cancel`.
    fn follow(&self, every: Duration, cancel: CancellationToken) {
        if self.followed.get().is_some() {
            return;
        }
        let (tx, rx) = watch::channel(None);
        let (asg, group) = (self.asg.clone(), self.group.name.clone());
        tokio::spawn(async move {
            loop {
                match group_capacity(&asg, &group).await {
                    Ok(c) => {
                        if tx.send(Some(c)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %group, error = %e, "cannot describe the group")
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        let _ = self.followed.set(rx);
    }

    /// At its desired InService count without the nodes in `gone` (as last described).
    fn full(&self, gone: &[String]) -> bool {
        self.followed
            .get()
            .is_some_and(|rx| rx.borrow().as_ref().is_some_and(|c| c.is_full(gone)))
    }
}

/// An Auto Scaling group's capacity as last described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCapacity {
    pub desired: u32,
    pub in_service: Vec<String>,
    /// Members on their way out, with their lifecycle state (`Terminating:Wait` while a
    /// lifecycle hook holds them: EC2 still says `running`).
    pub terminating: Vec<(String, String)>,
}

impl GroupCapacity {
    /// Back to its desired InService count, with none of `gone` still counted.
    pub fn is_full(&self, gone: &[String]) -> bool {
        self.in_service.len() as u32 >= self.desired
            && !self.in_service.iter().any(|id| gone.contains(id))
    }
}

pub async fn group_capacity(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Result<GroupCapacity, AwsError> {
    use aws_sdk_autoscaling::types::LifecycleState;
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(|e| call_error("DescribeAutoScalingGroups", &e))?;
    let g = out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(group))
        .ok_or_else(|| AwsError::NoGroup(group.to_owned()))?;
    let mut in_service: Vec<String> = g
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    in_service.sort();
    let terminating = g
        .instances()
        .iter()
        .filter_map(|i| {
            let state = i.lifecycle_state()?.as_str();
            let id = i.instance_id()?;
            state
                .starts_with("Terminating")
                .then(|| (id.to_owned(), state.to_owned()))
        })
        .collect();
    Ok(GroupCapacity {
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        in_service,
        terminating,
    })
}

impl AsgNodes {
    /// The instances the group was asked to terminate, confirmed: gone in EC2, or terminating
    /// in the group. A lifecycle hook holds an instance in `Terminating:Wait` (EC2 still says
    /// `running`) for as long as the hook's timeout: it is terminating, not an error, and it is
    /// counted; the group's InService count (what cooldown waits on) no longer has it.
    async fn confirm(&self, ec2: &super::ec2_api::Client, ids: &[String]) -> Vec<Terminated> {
        let deadline = std::time::Instant::now() + CONFIRM_WITHIN;
        loop {
            let states = aws::states(ec2, ids).await.unwrap_or_default();
            let terminating = group_capacity(&self.asg, &self.group.name)
                .await
                .map(|c| c.terminating)
                .unwrap_or_default();
            // Still running in EC2, terminating in the group.
            let held = |id: &String| -> Option<&(String, String)> {
                if aws::gone(states.get(id)) {
                    return None;
                }
                terminating.iter().find(|(t, _)| t == id)
            };
            let settled = ids
                .iter()
                .all(|id| aws::gone(states.get(id)) || held(id).is_some());
            if settled || std::time::Instant::now() >= deadline {
                let (waiting, rest): (Vec<String>, Vec<String>) =
                    ids.iter().cloned().partition(|id| held(id).is_some());
                let mut out = confirm(ec2, &rest, Duration::ZERO).await;
                out.extend(waiting.iter().filter_map(held).map(|(id, state)| {
                    Terminated::new(
                        id,
                        crate::nodes::NodeOutcome::Terminated,
                        Some(format!(
                            "{state} in group {}: a lifecycle hook holds it (EC2 still says \
                             running); counted as terminated, capacity is waited for",
                            self.group.name
                        )),
                    )
                }));
                return out;
            }
            tokio::time::sleep(aws::poll_interval()).await;
        }
    }
}

/// How long terminations are confirmed for, before an instance still running is an error.
const CONFIRM_WITHIN: Duration = Duration::from_secs(60);

/// TerminateInstanceInAutoScalingGroup for each: (refusals, the ids the group accepted).
async fn terminate_asg(
    asg: &aws_sdk_autoscaling::Client,
    ids: &[String],
    replace: bool,
) -> (Vec<Terminated>, Vec<String>) {
    let mut out = Vec::new();
    let mut called = Vec::new();
    for id in ids {
        let call = asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(!replace)
            .send()
            .await;
        match call {
            Ok(_) => called.push(id.clone()),
            Err(e) => out.push(refusal(
                id,
                &call_error("TerminateInstanceInAutoScalingGroup", &e),
            )),
        }
    }
    (out, called)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_capacity_is_full_only_without_the_terminated_instances() {
        let c = GroupCapacity {
            desired: 2,
            in_service: vec!["i-1".into(), "i-2".into()],
            terminating: Vec::new(),
        };
        assert!(c.is_full(&[]));
        assert!(!c.is_full(&["i-1".into()]));
        let short = GroupCapacity { desired: 3, ..c };
        assert!(!short.is_full(&[]));
    }
}
