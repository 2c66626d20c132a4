//! `provider: aws-ec2`: instances chosen by tags, zones, types and spot fleet request, terminated
//! with TerminateInstances (no notice: the abrupt loss), each outcome confirmed by describing
//! again.

use std::collections::HashSet;
use std::time::Duration;

use super::aws::{
    self, AwsError, AwsSettings, Ec2, InstanceFilter, call_error, confirm, failed_call,
};
use super::instances::{Instances, Source};
use super::{Discovery, Found, Injection, Terminated};

/// The instances a selector's tags, zones, types and spot fleet request name.
pub struct Ec2Nodes {
    filter: InstanceFilter,
    spot_fleet_request: Option<String>,
}

impl Ec2Nodes {
    pub async fn connect(
        settings: &AwsSettings,
        region: Option<&str>,
        filter: InstanceFilter,
        spot_fleet_request: Option<String>,
    ) -> Instances<Ec2Nodes> {
        let config = aws::sdk_config(settings, region).await;
        let source = Ec2Nodes {
            filter,
            spot_fleet_request,
        };
        Instances::new(Ec2::connect(&config).await, source)
    }
}

#[async_trait::async_trait]
impl Source for Ec2Nodes {
    fn name(&self) -> &'static str {
        "aws-ec2"
    }

    fn identity(&self) -> String {
        let fleet = self.spot_fleet_request.as_deref().unwrap_or("");
        format!("instances/{};fleet={fleet}", self.filter.normalised())
    }

    async fn eligible(&self, ec2: &Ec2) -> Result<Discovery, AwsError> {
        let members = match &self.spot_fleet_request {
            Some(id) => Some(fleet_members(&ec2.client, id).await?),
            None => None,
        };
        let mut d = aws::describe(&ec2.client, &self.filter, None).await?;
        if let Some(members) = members {
            d.found.retain(|f| members.contains(&f.node.id));
            d.excluded.retain(|e| members.contains(&e.id));
        }
        Ok(d)
    }

    async fn terminate(&self, ec2: &Ec2, go: &[&Found], _: Injection<'_>) -> Vec<Terminated> {
        let ids: Vec<String> = go.iter().map(|f| f.node.id.clone()).collect();
        terminate_ec2(&ec2.client, &ids).await
    }
}

/// The active instances of a spot fleet request (DescribeSpotFleetInstances, every page).
async fn fleet_members(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<HashSet<String>, AwsError> {
    let mut members = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .describe_spot_fleet_instances()
            .spot_fleet_request_id(id)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| call_error("DescribeSpotFleetInstances", &e))?;
        members.extend(
            out.active_instances()
                .iter()
                .filter_map(|i| i.instance_id().map(str::to_owned)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(members),
        }
    }
}

async fn terminate_ec2(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Vec<Terminated> {
    let mut out = Vec::new();
    // TerminateInstances takes up to 1000 ids; one refused id fails its whole call, so a refused
    // batch is retried one instance at a time for per-instance outcomes.
    for batch in ids.chunks(1000) {
        let call = ec2
            .terminate_instances()
            .set_instance_ids(Some(batch.to_vec()))
            .send()
            .await;
        match call {
            Ok(_) => out.extend(confirm(ec2, batch, Duration::from_secs(30)).await),
            Err(_) if batch.len() > 1 => {
                for id in batch {
                    match ec2.terminate_instances().instance_ids(id).send().await {
                        Ok(_) => out.extend(
                            confirm(ec2, std::slice::from_ref(id), Duration::from_secs(30)).await,
                        ),
                        Err(e) => out.extend(
                            failed_call(
                                ec2,
                                std::slice::from_ref(id),
                                &call_error("TerminateInstances", &e),
                            )
                            .await,
                        ),
                    }
                }
            }
            Err(e) => {
                let err = call_error("TerminateInstances", &e);
                out.extend(failed_call(ec2, batch, &err).await);
            }
        }
    }
    out
}
