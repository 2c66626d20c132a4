//! The provider of every selector that EC2 instances back (aws-ec2, aws-asg, aws-fis): one
//! [`Provider`] written once over a [`Source`], which says only how its nodes are found and how
//! the chosen ones are terminated. Discovery, the DryRun permission check and the rule that only
//! what a fresh discovery returns as eligible is terminated live here, once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::aws::{AwsError, Ec2, NO_LONGER_RETURNED, rediscovery_failed};
use super::{
    Discovery, Found, Injection, Node, Permission, Provider, ProviderError, StepEvent, Terminated,
};

/// What one kind of EC2-backed selector adds to the instances it finds.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// The provider's name in plans and the journal.
    fn name(&self) -> &'static str;

    /// The cluster's identity below `aws/REGION/` (the normalised selector).
    fn identity(&self) -> String;

    /// The instances now: the eligible ones, and the matched ones left out.
    async fn eligible(&self, ec2: &Ec2) -> Result<Discovery, AwsError>;

    /// Terminate these instances, which a discovery a moment ago returned as eligible.
    async fn terminate(
        &self,
        ec2: &Ec2,
        go: &[&Found],
        injection: Injection<'_>,
    ) -> Vec<Terminated>;

    /// How a termination reaches the cluster, where it is not an abrupt loss at the call.
    fn delivery(&self) -> Delivery {
        Delivery::default()
    }

    /// The capacity the cluster gets back after a step, where it does.
    fn replacement(&self) -> Option<&dyn Replacement> {
        None
    }

    /// See [`Provider::release`].
    async fn release(&self) -> Vec<StepEvent> {
        Vec::new()
    }

    /// See [`Provider::reconcile`].
    async fn reconcile(&self, _previous: &[StepEvent]) -> Vec<StepEvent> {
        Vec::new()
    }
}

/// How a termination reaches the cluster: after a notice, and at the call's end or its start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delivery {
    pub notice: Duration,
    pub on_return: bool,
}

/// A cluster that replaces what is terminated (an Auto Scaling group keeping its capacity).
pub trait Replacement: Send + Sync {
    /// Follow the capacity in the background, every `every` until `cancel`.
    fn follow(&self, every: Duration, cancel: CancellationToken);

    /// Back at its capacity without the nodes in `gone` (as last followed).
    fn full(&self, gone: &[String]) -> bool;
}

/// A provider of EC2 instances: the shared client and what sets the selector apart.
pub struct Instances<S> {
    ec2: Ec2,
    source: S,
}

impl<S: Source> Instances<S> {
    pub fn new(ec2: Ec2, source: S) -> Instances<S> {
        Instances { ec2, source }
    }
}

#[async_trait::async_trait]
impl<S: Source> Provider for Instances<S> {
    fn name(&self) -> &'static str {
        self.source.name()
    }

    fn lock_identity(&self) -> String {
        let place = &self.ec2.place;
        format!(
            "aws/{}/{}/{}",
            place.account,
            place.region,
            self.source.identity()
        )
    }

    fn place(&self) -> Option<super::account::Place> {
        Some(self.ec2.place.clone())
    }

    async fn discover(&self) -> Result<Discovery, ProviderError> {
        Ok(self
            .source
            .eligible(&self.ec2)
            .await
            .map_err(|e| self.ec2.named(e))?)
    }

    async fn check_permissions(&self, nodes: &[Node]) -> Result<Permission, ProviderError> {
        Ok(self
            .ec2
            .check_permissions(nodes)
            .await
            .map_err(|e| self.ec2.named(e))?)
    }

    async fn terminate(&self, nodes: &[Node], injection: Injection<'_>) -> Vec<Terminated> {
        let now = match self.source.eligible(&self.ec2).await {
            Ok(d) => d,
            Err(e) => return rediscovery_failed(nodes, &e),
        };
        let (go, mut results) = now.sort_out(nodes, NO_LONGER_RETURNED);
        if !go.is_empty() {
            let done = self.source.terminate(&self.ec2, &go, injection).await;
            results.extend(done);
        }
        results.in_order(nodes)
    }

    fn notice(&self) -> Duration {
        self.source.delivery().notice
    }

    fn injected_on_return(&self) -> bool {
        self.source.delivery().on_return
    }

    fn replaces(&self) -> bool {
        self.source.replacement().is_some()
    }

    fn follow_capacity(&self, every: Duration, cancel: CancellationToken) {
        if let Some(r) = self.source.replacement() {
            r.follow(every, cancel);
        }
    }

    fn capacity_full(&self, gone: &[String]) -> bool {
        self.source.replacement().is_none_or(|r| r.full(gone))
    }

    async fn release(&self) -> Vec<StepEvent> {
        self.source.release().await
    }

    async fn reconcile(&self, previous: &[StepEvent]) -> Vec<StepEvent> {
        self.source.reconcile(previous).await
    }
}
