//! `provider: aws-ec2`: instances chosen by tags, zones, types and spot fleet request, terminated
//! with TerminateInstances (no notice: the abrupt loss), each outcome confirmed by describing
//! again.

use std::collections::HashSet;
use std::time::Duration;

use super::aws::{
    self, AwsError, AwsSettings, Ec2, InstanceFilter, api_error, confirm, failed_call,
};
use super::ec2_api;
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
async fn fleet_members(ec2: &ec2_api::Client, id: &str) -> Result<HashSet<String>, AwsError> {
    let ids = ec2
        .describe_spot_fleet_instances(id)
        .await
        .map_err(|e| api_error("DescribeSpotFleetInstances", &e))?;
    Ok(ids.into_iter().filter(|i| !i.is_empty()).collect())
}

/// TerminateInstances on these (just re-checked) instances; an outcome each, confirmed by
/// describing again.
pub(super) async fn terminate_ec2(ec2: &ec2_api::Client, ids: &[String]) -> Vec<Terminated> {
    let mut out = Vec::new();
    // TerminateInstances takes up to 1000 ids; one refused id fails its whole call, so a refused
    // batch is retried one instance at a time for per-instance outcomes.
    for batch in ids.chunks(1000) {
        let call = ec2.terminate_instances(batch, false).await;
        match call {
            Ok(_) => out.extend(confirm(ec2, batch, Duration::from_secs(30)).await),
            Err(_) if batch.len() > 1 => {
                for id in batch {
                    let one = std::slice::from_ref(id);
                    match ec2.terminate_instances(one, false).await {
                        Ok(_) => out.extend(confirm(ec2, one, Duration::from_secs(30)).await),
                        Err(e) => out.extend(
                            failed_call(ec2, one, &api_error("TerminateInstances", &e)).await,
                        ),
                    }
                }
            }
            Err(e) => {
                let err = api_error("TerminateInstances", &e);
                out.extend(failed_call(ec2, batch, &err).await);
            }
        }
    }
    out
}
