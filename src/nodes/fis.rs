//! `provider: aws-fis`: real spot interruptions through AWS FIS: one experiment template per
//! step with `aws:ec2:send-spot-instance-interruptions` (`durationBeforeInterruption` = the
//! notice), one target and action per 5 instances; the experiment is started and awaited (each
//! state journaled), stopped on Ctrl-C, and its template deleted after.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::aws::{
    self, AwsError, AwsSettings, Ec2, InstanceFilter, call_error, gone, poll_interval, states,
};
use super::ec2_api::{self, InstanceState};
use super::instances::{Delivery, Instances, Source};
use super::{Discovery, Found, Injection, NodeOutcome, ProviderEvent, StepEvent, Stop, Terminated};

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
    filter: InstanceFilter,
    interrupter: Interrupter,
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
            filter,
            interrupter: Interrupter::new(&config, interruption),
        };
        Instances::new(Ec2::connect(&config).await, source)
    }
}

/// Spot interruptions through FIS on instances a discovery just returned as eligible, and the
/// experiments still open: what `aws-fis` and a Kubernetes target's `terminate: aws-fis` share.
pub struct Interrupter {
    fis: aws_sdk_fis::Client,
    interruption: Interruption,
    /// Experiments started and not yet seen to end, with their step: stopped on every exit.
    open: Mutex<Vec<(usize, String)>>,
}

impl Interrupter {
    pub fn new(config: &aws_config::SdkConfig, interruption: Interruption) -> Interrupter {
        Interrupter {
            fis: aws_sdk_fis::Client::new(config),
            interruption,
            open: Mutex::new(Vec::new()),
        }
    }

    /// One experiment interrupting `go` (each with its ARN); an outcome per instance id.
    pub async fn interrupt(
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
            open: &self.open,
            step: injection.step,
        };
        run.interrupt(go, injection.events, injection.stop).await
    }

    /// The instances are lost when the interruption's notice ends, as the experiment does.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            notice: self.interruption.notice,
            on_return: true,
        }
    }

    /// Every experiment still open is stopped (a hard exit, or the runner giving up mid-step).
    pub async fn release(&self) -> Vec<StepEvent> {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = Vec::new();
        for (step, id) in open {
            let why = "the run exited before the experiment ended";
            out.push((step, stop_call(&self.fis, &id, why).await));
        }
        out
    }

    /// Each experiment the journal says was started and never ended: stopped if it still runs,
    /// its state recorded otherwise.
    pub async fn reconcile(&self, previous: &[StepEvent]) -> Vec<StepEvent> {
        let mut out = Vec::new();
        for (step, id) in unended(previous) {
            out.push((step, self.reconcile_one(&id).await));
        }
        out
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
        self.interrupter.interrupt(ec2, go, injection).await
    }

    fn delivery(&self) -> Delivery {
        self.interrupter.delivery()
    }

    async fn release(&self) -> Vec<StepEvent> {
        self.interrupter.release().await
    }

    async fn reconcile(&self, previous: &[StepEvent]) -> Vec<StepEvent> {
        self.interrupter.reconcile(previous).await
    }
}

impl Interrupter {
    async fn reconcile_one(&self, id: &str) -> ProviderEvent {
        match experiment_state(&self.fis, id).await {
            Ok((status, _)) if TERMINAL.contains(&status.as_str()) => ProviderEvent {
                event: "fis_experiment_reconciled".into(),
                detail: format!("experiment {id}: {status} when the run resumed"),
            },
            Ok((status, _)) => {
                let why = format!("still {status} when the run resumed");
                stop_call(&self.fis, id, &why).await
            }
            Err(e) => {
                let why = format!("its state is unknown when the run resumed ({e})");
                stop_call(&self.fis, id, &why).await
            }
        }
    }
}

/// The states an experiment no longer leaves.
const TERMINAL: [&str; 4] = ["completed", "stopped", "failed", "cancelled"];

/// The journal's detail of a started experiment.
fn started_detail(id: &str, template: &str) -> String {
    format!("experiment {id} from template {template}")
}

/// Experiments journaled as started and never journaled as ended (a terminal state, a stop
/// that went through, or a reconciliation), with their step, once each.
fn unended(events: &[StepEvent]) -> Vec<(usize, String)> {
    let id_of = |detail: &str| -> Option<String> {
        let rest = detail.strip_prefix("experiment ")?;
        let end = rest.find([' ', ':']).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    };
    let ended = |id: &str| {
        events.iter().any(|(_, e)| {
            id_of(&e.detail).as_deref() == Some(id)
                && match e.event.as_str() {
                    "fis_experiment_state" => TERMINAL
                        .iter()
                        .any(|t| e.detail.contains(&format!("experiment {id}: {t} "))),
                    "fis_experiment_stop" => {
                        e.detail.starts_with(&format!("experiment {id} stopped"))
                    }
                    "fis_experiment_reconciled" => true,
                    _ => false,
                }
        })
    };
    let mut out: Vec<(usize, String)> = Vec::new();
    for (step, e) in events {
        if e.event == "fis_experiment_started"
            && let Some(id) = id_of(&e.detail)
            && !ended(&id)
            && !out.iter().any(|(_, o)| *o == id)
        {
            out.push((*step, id));
        }
    }
    out
}

/// An experiment's (status, reason) now.
async fn experiment_state(
    fis: &aws_sdk_fis::Client,
    id: &str,
) -> Result<(String, String), AwsError> {
    let got = fis
        .get_experiment()
        .id(id)
        .send()
        .await
        .map_err(|e| call_error("GetExperiment", &e))?;
    let state = got.experiment().and_then(|e| e.state());
    let status = state
        .and_then(|s| s.status())
        .map_or("unknown", |s| s.as_str())
        .to_owned();
    let reason = state.and_then(|s| s.reason()).unwrap_or("").to_owned();
    Ok((status, reason))
}

/// StopExperiment, and the journal's word on it.
async fn stop_call(fis: &aws_sdk_fis::Client, id: &str, why: &str) -> ProviderEvent {
    let r = fis.stop_experiment().id(id).send().await;
    ProviderEvent {
        event: "fis_experiment_stop".into(),
        detail: match r {
            Ok(_) => format!("experiment {id} stopped: {why}"),
            Err(e) => format!(
                "experiment {id}: stopping failed ({}): {why}",
                call_error("StopExperiment", &e)
            ),
        },
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
    ec2: &'a ec2_api::Client,
    notice: Duration,
    role_arn: &'a str,
    keep_templates: bool,
    label: &'a str,
    open: &'a Mutex<Vec<(usize, String)>>,
    step: usize,
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
                        state.map_or("gone", InstanceState::as_str)
                    )
                } else {
                    format!(
                        "interruption sent by FIS experiment {experiment} (completed); the \
                         instance was still {} when it completed",
                        state.map_or("unknown", InstanceState::as_str)
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
    /// resolves first, and on every way out before it ended (GetExperiment failing, the
    /// deadline). A StartExperiment that failed may have started it all the same (a timeout
    /// after the call went through): the template's experiments are looked up and stopped.
    /// Returns (experiment id, final status, reason).
    async fn run_experiment(
        &self,
        template: &str,
        events: &(dyn Fn(ProviderEvent) + Sync),
        stop: Stop<'_>,
    ) -> Result<(String, String, String), AwsError> {
        let id = match self.start(template).await {
            Ok(id) => id,
            Err(e) => {
                self.stop_strays(template, events).await;
                return Err(e);
            }
        };
        self.track(&id, true);
        events(ProviderEvent {
            event: "fis_experiment_started".into(),
            detail: started_detail(&id, template),
        });
        let ended = self.await_end(&id, events, stop).await;
        self.track(&id, false);
        ended.map(|(status, reason)| (id, status, reason))
    }

    /// StartExperiment: the experiment's id.
    async fn start(&self, template: &str) -> Result<String, AwsError> {
        let out = self
            .fis
            .start_experiment()
            .experiment_template_id(template)
            .client_token(client_token(self.label))
            .send()
            .await
            .map_err(|e| call_error("StartExperiment", &e))?;
        out.experiment()
            .and_then(|e| e.id())
            .map(str::to_owned)
            .ok_or(AwsError::Call {
                operation: "StartExperiment",
                detail: "no experiment id in the answer".into(),
            })
    }

    /// An experiment open (started, not seen to end), or no longer.
    fn track(&self, id: &str, open: bool) {
        let mut list = self.open.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(_, o)| o != id);
        if open {
            list.push((self.step, id.to_owned()));
        }
    }

    /// After a failed StartExperiment: every experiment of the template that is not over is
    /// journaled and stopped.
    async fn stop_strays(&self, template: &str, events: &(dyn Fn(ProviderEvent) + Sync)) {
        let listed = self
            .fis
            .list_experiments()
            .experiment_template_id(template)
            .send()
            .await;
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                return events(ProviderEvent {
                    event: "fis_experiment_unknown".into(),
                    detail: format!(
                        "StartExperiment failed and {}: an experiment of template {template} \
                         may be running",
                        call_error("ListExperiments", &e)
                    ),
                });
            }
        };
        for x in listed.experiments() {
            let status = x.state().and_then(|s| s.status()).map(|s| s.as_str());
            let Some(id) = x
                .id()
                .filter(|_| !status.is_some_and(|s| TERMINAL.contains(&s)))
            else {
                continue;
            };
            events(ProviderEvent {
                event: "fis_experiment_started".into(),
                detail: started_detail(id, template),
            });
            let why = "StartExperiment failed, but the experiment had started";
            events(stop_call(self.fis, id, why).await);
        }
    }

    /// Poll the experiment until it ends; journal each state. Returns (final status, reason).
    async fn await_end(
        &self,
        id: &str,
        events: &(dyn Fn(ProviderEvent) + Sync),
        stop: Stop<'_>,
    ) -> Result<(String, String), AwsError> {
        // The interruption comes `notice` after the start; allow generous slack beyond it.
        let deadline = Instant::now() + self.notice + Duration::from_secs(15 * 60);
        let mut last = String::new();
        let mut stopped = false;
        tokio::pin!(stop);
        loop {
            let (status, reason) = match experiment_state(self.fis, id).await {
                Ok(s) => s,
                Err(e) => {
                    let why = format!("its state cannot be read ({e})");
                    events(stop_call(self.fis, id, &why).await);
                    return Err(e);
                }
            };
            if status != last {
                events(ProviderEvent {
                    event: "fis_experiment_state".into(),
                    detail: format!("experiment {id}: {status} ({reason})"),
                });
                last.clone_from(&status);
            }
            if TERMINAL.contains(&status.as_str()) {
                return Ok((status, reason));
            }
            if Instant::now() >= deadline && !stopped {
                events(stop_call(self.fis, id, "it ran past its deadline").await);
                stopped = true;
            }
            tokio::select! {
                () = tokio::time::sleep(poll_interval()) => {}
                () = &mut stop, if !stopped => {
                    events(stop_call(self.fis, id, "the run was interrupted").await);
                    stopped = true;
                }
            }
        }
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
