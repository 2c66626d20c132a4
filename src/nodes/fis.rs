//! `provider: aws-fis`: real spot interruptions through AWS FIS: one experiment template per
//! step with `aws:ec2:send-spot-instance-interruptions` (`durationBeforeInterruption` = the
//! notice), one target and action per 5 instances; the experiment is started and awaited (each
//! state journaled), stopped on Ctrl-C, and its template deleted after.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::InstanceStateName;

use super::aws::{
    self, AwsError, AwsSettings, Ec2, InstanceFilter, call_error, gone, poll_interval, states,
};
use super::instances::{Delivery, Instances, Source};
use super::{Discovery, Found, Injection, NodeOutcome, ProviderEvent, Stop, Terminated};

/// How a step's interruption is sent.
#[derive(Clone, Debug)]
pub struct Interruption {
    /// `durationBeforeInterruption`: the rebalance recommendation comes this long before the end.
    pub notice: Duration,
    /// The IAM role FIS assumes.
    pub role_arn: String,
    /// Keep the experiment templates (default: deleted once the experiment ended).
    pub keep_templates: bool,
}

/// The instances an `aws-fis` selector names, interrupted through FIS.
pub struct FisNodes {
    fis: aws_sdk_fis::Client,
    filter: InstanceFilter,
    interruption: Interruption,
}

impl FisNodes {
    pub async fn connect(
        settings: &AwsSettings,
        region: Option<&str>,
        filter: InstanceFilter,
        interruption: Interruption,
    ) -> Instances<FisNodes> {
        let config = aws::sdk_config(settings, region).await;
        let source = FisNodes {
            fis: aws_sdk_fis::Client::new(&config),
            filter,
            interruption,
        };
        Instances::new(Ec2::connect(&config).await, source)
    }
}

#[async_trait::async_trait]
impl Source for FisNodes {
    fn name(&self) -> &'static str {
        "aws-fis"
    }

    /// The same instances as an `aws-ec2` selector with these filters: the same cluster.
    fn identity(&self) -> String {
        format!("instances/{};fleet=", self.filter.normalised())
    }

    async fn eligible(&self, ec2: &Ec2) -> Result<Discovery, AwsError> {
        aws::describe(&ec2.client, &self.filter, None).await
    }

    async fn terminate(
        &self,
        ec2: &Ec2,
        go: &[&Found],
        injection: Injection<'_>,
    ) -> Vec<Terminated> {
        let run = FisRun {
            fis: &self.fis,
            ec2: &ec2.client,
            notice: self.interruption.notice,
            role_arn: &self.interruption.role_arn,
            keep_templates: self.interruption.keep_templates,
            label: &injection.label,
        };
        run.interrupt(go, injection.events, injection.stop).await
    }

    /// The instances are lost when the interruption's notice ends, as the experiment does.
    fn delivery(&self) -> Delivery {
        Delivery {
            notice: self.interruption.notice,
            on_return: true,
        }
    }
}

/// FIS allows at most this many instances per `aws:ec2:send-spot-instance-interruptions` action.
pub const FIS_BATCH: usize = 5;

/// ISO 8601 duration for `durationBeforeInterruption`.
pub fn iso_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("PT{}M", s / 60)
    } else {
        format!("PT{s}S")
    }
}

struct FisRun<'a> {
    fis: &'a aws_sdk_fis::Client,
    ec2: &'a aws_sdk_ec2::Client,
    notice: Duration,
    role_arn: &'a str,
    keep_templates: bool,
    label: &'a str,
}

impl FisRun<'_> {
    async fn interrupt(
        &self,
        nodes: &[&Found],
        events: &(dyn Fn(ProviderEvent) + Sync),
        stop: Stop<'_>,
    ) -> Vec<Terminated> {
        let ids: Vec<String> = nodes.iter().map(|f| f.node.id.clone()).collect();
        let fail = |why: String| -> Vec<Terminated> {
            ids.iter()
                .map(|id| Terminated::new(id, NodeOutcome::Error, Some(why.clone())))
                .collect()
        };
        let Some(arns) = nodes
            .iter()
            .map(|f| f.arn.clone())
            .collect::<Option<Vec<String>>>()
        else {
            return fail("an instance has no ARN (no zone or owner in DescribeInstances)".into());
        };
        let template = match self.create_template(&arns).await {
            Ok(t) => t,
            Err(e) => return fail(e.to_string()),
        };
        let batches = arns.len().div_ceil(FIS_BATCH);
        events(ProviderEvent {
            event: "fis_template_created".into(),
            detail: format!(
                "template {template}: {batches} action(s) of at most {FIS_BATCH} instances, \
                 durationBeforeInterruption {}",
                iso_duration(self.notice)
            ),
        });
        let result = self.run_experiment(&template, events, stop).await;
        if !self.keep_templates {
            match self
                .fis
                .delete_experiment_template()
                .id(&template)
                .send()
                .await
            {
                Ok(_) => events(ProviderEvent {
                    event: "fis_template_deleted".into(),
                    detail: format!("template {template}"),
                }),
                Err(e) => events(ProviderEvent {
                    event: "fis_template_not_deleted".into(),
                    detail: call_error("DeleteExperimentTemplate", &e).to_string(),
                }),
            }
        }
        let (experiment, status, reason) = match result {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        if status != "completed" {
            return fail(format!(
                "FIS experiment {experiment} ended {status}: {reason}"
            ));
        }
        let seen = states(self.ec2, &ids).await.unwrap_or_default();
        ids.iter()
            .map(|id| {
                let state = seen.get(id);
                let detail = if gone(state) {
                    format!(
                        "interrupted by FIS experiment {experiment}; {}",
                        state.map_or("gone", InstanceStateName::as_str)
                    )
                } else {
                    format!(
                        "interruption sent by FIS experiment {experiment} (completed); the \
                         instance was still {} when it completed",
                        state.map_or("unknown", InstanceStateName::as_str)
                    )
                };
                Terminated::new(id, NodeOutcome::Terminated, Some(detail))
            })
            .collect()
    }

    /// One template: a target and an action per batch of at most 5 instances.
    async fn create_template(&self, arns: &[String]) -> Result<String, AwsError> {
        use aws_sdk_fis::types::{
            CreateExperimentTemplateActionInput, CreateExperimentTemplateStopConditionInput,
            CreateExperimentTemplateTargetInput,
        };
        let build = |e: aws_sdk_fis::error::BuildError| AwsError::Call {
            operation: "CreateExperimentTemplate",
            detail: e.to_string(),
        };
        let mut req = self
            .fis
            .create_experiment_template()
            .client_token(client_token(self.label))
            .description(format!("spotdrill {}", self.label))
            .role_arn(self.role_arn)
            .tags("spotdrill", self.label)
            .stop_conditions(
                CreateExperimentTemplateStopConditionInput::builder()
                    .source("none")
                    .build()
                    .map_err(build)?,
            );
        for (k, batch) in arns.chunks(FIS_BATCH).enumerate() {
            let target = format!("spot-instances-{}", k + 1);
            req = req
                .targets(
                    &target,
                    CreateExperimentTemplateTargetInput::builder()
                        .resource_type("aws:ec2:spot-instance")
                        .set_resource_arns(Some(batch.to_vec()))
                        .selection_mode("ALL")
                        .build()
                        .map_err(build)?,
                )
                .actions(
                    format!("interrupt-{}", k + 1),
                    CreateExperimentTemplateActionInput::builder()
                        .action_id("aws:ec2:send-spot-instance-interruptions")
                        .parameters("durationBeforeInterruption", iso_duration(self.notice))
                        .targets("SpotInstances", &target)
                        .build()
                        .map_err(build)?,
                );
        }
        let out = req
            .send()
            .await
            .map_err(|e| call_error("CreateExperimentTemplate", &e))?;
        out.experiment_template()
            .and_then(|t| t.id())
            .map(str::to_owned)
            .ok_or(AwsError::Call {
                operation: "CreateExperimentTemplate",
                detail: "no template id in the answer".into(),
            })
    }

    /// Start the experiment and wait until it ends, journaling each state; stop it when `stop`
    /// resolves first. Returns (experiment id, final status, reason).
    async fn run_experiment(
        &self,
        template: &str,
        events: &(dyn Fn(ProviderEvent) + Sync),
        stop: Stop<'_>,
    ) -> Result<(String, String, String), AwsError> {
        let out = self
            .fis
            .start_experiment()
            .experiment_template_id(template)
            .client_token(client_token(self.label))
            .send()
            .await
            .map_err(|e| call_error("StartExperiment", &e))?;
        let id = out
            .experiment()
            .and_then(|e| e.id())
            .map(str::to_owned)
            .ok_or(AwsError::Call {
                operation: "StartExperiment",
                detail: "no experiment id in the answer".into(),
            })?;
        events(ProviderEvent {
            event: "fis_experiment_started".into(),
            detail: format!("experiment {id} from template {template}"),
        });
        // The interruption comes `notice` after the start; allow generous slack beyond it.
        let deadline = Instant::now() + self.notice + Duration::from_secs(15 * 60);
        let mut last = String::new();
        let mut stopped = false;
        tokio::pin!(stop);
        loop {
            let got = self
                .fis
                .get_experiment()
                .id(&id)
                .send()
                .await
                .map_err(|e| call_error("GetExperiment", &e))?;
            let state = got.experiment().and_then(|e| e.state());
            let status = state
                .and_then(|s| s.status())
                .map_or("unknown", |s| s.as_str())
                .to_owned();
            let reason = state.and_then(|s| s.reason()).unwrap_or("").to_owned();
            if status != last {
                events(ProviderEvent {
                    event: "fis_experiment_state".into(),
                    detail: format!("experiment {id}: {status} ({reason})"),
                });
                last.clone_from(&status);
            }
            if matches!(
                status.as_str(),
                "completed" | "stopped" | "failed" | "cancelled"
            ) {
                return Ok((id, status, reason));
            }
            if Instant::now() >= deadline && !stopped {
                self.stop_experiment(&id, "it ran past its deadline", events)
                    .await;
                stopped = true;
            }
            tokio::select! {
                () = tokio::time::sleep(poll_interval()) => {}
                () = &mut stop, if !stopped => {
                    self.stop_experiment(&id, "the run was interrupted", events).await;
                    stopped = true;
                }
            }
        }
    }

    async fn stop_experiment(&self, id: &str, why: &str, events: &(dyn Fn(ProviderEvent) + Sync)) {
        let r = self.fis.stop_experiment().id(id).send().await;
        events(ProviderEvent {
            event: "fis_experiment_stop".into(),
            detail: match r {
                Ok(_) => format!("experiment {id} stopped: {why}"),
                Err(e) => format!(
                    "experiment {id}: stopping failed ({}): {why}",
                    call_error("StopExperiment", &e)
                ),
            },
        });
    }
}

/// An idempotency token unique to this call.
fn client_token(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut s: String = format!("spotdrill-{}-{nanos}-{label}", std::process::id())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fis_notice_is_an_iso_duration() {
        assert_eq!(iso_duration(Duration::from_secs(120)), "PT2M");
        assert_eq!(iso_duration(Duration::from_secs(150)), "PT150S");
    }
}
