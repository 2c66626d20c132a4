//! The AWS node providers (DESIGN.md "Node providers"): `aws-ec2` (TerminateInstances),
//! `aws-asg` (TerminateInstanceInAutoScalingGroup, with or without replacement) and `aws-fis`
//! (spot interruptions through AWS FIS, batched 5 instances per action).
//!
//! Settings come from the standard credential chain, `AWS_ENDPOINT_URL` (so emulators need no
//! special code path), and `--profile` / `--region` / `--endpoint-url`. Every call retries with
//! backoff on throttling (the SDK's standard retry mode) and every listing is paginated.
//!
//! Safety: a provider terminates only instances that its own discovery returns, at the time of the
//! call, as running and spot (unless the plan allows on-demand); everything else in the request is
//! refused, per instance. Outcomes are confirmed by describing the instances again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{Filter, InstanceLifecycleType, InstanceStateName};
use indexmap::IndexMap;

use super::{Lifecycle, Node, Terminated};
use crate::journal::NodeOutcome;
use crate::plan::NodeSelector;

/// How spotdrill reaches AWS, beyond the standard chain (from the command line).
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub profile: Option<String>,
    /// Used where a target names no region of its own.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// What went wrong talking to AWS.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{operation} failed: {detail}")]
    Call {
        operation: &'static str,
        detail: String,
    },
    #[error(
        "permission denied: {permission} is not allowed for these credentials ({detail}); grant \
         {permission} on the target's instances"
    )]
    Denied { permission: String, detail: String },
    #[error("Auto Scaling group {0} does not exist")]
    NoGroup(String),
}

fn call_error<E>(operation: &'static str, e: &E) -> AwsError
where
    E: std::error::Error + ProvideErrorMetadata,
{
    let detail = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    };
    AwsError::Call { operation, detail }
}

/// Load the SDK configuration: the standard chain, then `settings`, then the target's region.
pub async fn sdk_config(settings: &AwsSettings, region: Option<&str>) -> SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    // Every call ends: an attempt that gets no answer in 30 s is retried, an operation gives up
    // after 2 minutes (a TerminateInstances that timed out is then confirmed by describing).
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        );
    // Standard retries (exponential backoff with jitter on throttling and transient errors),
    // a little more patient than the default; AWS_MAX_ATTEMPTS / AWS_RETRY_MODE still win.
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_max_backoff(Duration::from_secs(10)),
        );
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region.or(settings.region.as_deref()) {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// A node found by discovery, with what the preflight shows beyond [`Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub node: Node,
    pub private_ip: Option<String>,
    /// The selector's tags as the instance carries them.
    pub matched_tags: BTreeMap<String, String>,
    /// `arn:…:ec2:REGION:ACCOUNT:instance/ID` (FIS targets instances by ARN).
    pub arn: Option<String>,
}

/// An instance the selector matched but that is not eligible, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub id: String,
    pub reason: String,
}

/// The result of discovery: eligible nodes (running; spot unless on-demand is allowed) and the
/// matched instances left out.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub found: Vec<Found>,
    pub excluded: Vec<Excluded>,
}

impl Discovery {
    pub fn nodes(&self) -> Vec<Node> {
        self.found.iter().map(|f| f.node.clone()).collect()
    }
}

/// Something a provider did that belongs in the journal (FIS templates and experiment states).
#[derive(Clone, Debug)]
pub struct ProviderEvent {
    pub event: String,
    pub detail: String,
}

/// An Auto Scaling group's capacity as last described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCapacity {
    pub desired: u32,
    pub in_service: Vec<String>,
}

impl GroupCapacity {
    /// Back to its desired InService count, with none of `gone` still counted.
    pub fn is_full(&self, gone: &[String]) -> bool {
        self.in_service.len() as u32 >= self.desired
            && !self.in_service.iter().any(|id| gone.contains(id))
    }
}

/// The instance selector shared by `aws-ec2` and `aws-fis`.
#[derive(Clone, Debug, Default)]
pub struct InstanceFilter {
    pub tags: IndexMap<String, String>,
    pub availability_zones: Vec<String>,
    pub instance_types: Vec<String>,
    pub allow_on_demand: bool,
}

/// One of the AWS providers, connected (cheap to clone: the SDK clients are handles).
#[derive(Clone)]
pub enum AwsNodes {
    Ec2 {
        ec2: aws_sdk_ec2::Client,
        filter: InstanceFilter,
        spot_fleet_request: Option<String>,
    },
    Asg {
        ec2: aws_sdk_ec2::Client,
        asg: aws_sdk_autoscaling::Client,
        group: String,
        replace: bool,
        allow_on_demand: bool,
    },
    Fis {
        ec2: aws_sdk_ec2::Client,
        fis: aws_sdk_fis::Client,
        filter: InstanceFilter,
        notice: Duration,
        role_arn: String,
        keep_templates: bool,
    },
}

/// DescribeInstances page size; `SPOTDRILL_EC2_PAGE_SIZE` (5–1000) lets tests exercise paging.
fn page_size() -> i32 {
    std::env::var("SPOTDRILL_EC2_PAGE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| (5..=1000).contains(n))
        .unwrap_or(1000)
}

/// How often FIS experiments and confirmations are polled.
fn poll_interval() -> Duration {
    std::env::var("SPOTDRILL_AWS_POLL_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

impl AwsNodes {
    /// Connect the provider of an AWS selector; `None` for the lab.
    pub async fn connect(selector: &NodeSelector, settings: &AwsSettings) -> Option<AwsNodes> {
        Some(match selector {
            NodeSelector::Lab { .. } => return None,
            NodeSelector::AwsEc2 {
                region,
                tags,
                availability_zones,
                instance_types,
                spot_fleet_request,
                allow_on_demand,
            } => {
                let config = sdk_config(settings, region.as_deref()).await;
                AwsNodes::Ec2 {
                    ec2: aws_sdk_ec2::Client::new(&config),
                    filter: InstanceFilter {
                        tags: tags.clone(),
                        availability_zones: availability_zones.clone(),
                        instance_types: instance_types.clone(),
                        allow_on_demand: *allow_on_demand,
                    },
                    spot_fleet_request: spot_fleet_request.clone(),
                }
            }
            NodeSelector::AwsAsg {
                region,
                group,
                replace,
                allow_on_demand,
            } => {
                let config = sdk_config(settings, region.as_deref()).await;
                AwsNodes::Asg {
                    ec2: aws_sdk_ec2::Client::new(&config),
                    asg: aws_sdk_autoscaling::Client::new(&config),
                    group: group.clone(),
                    replace: *replace,
                    allow_on_demand: *allow_on_demand,
                }
            }
            NodeSelector::AwsFis {
                region,
                tags,
                availability_zones,
                instance_types,
                notice,
                role_arn,
                keep_templates,
                allow_on_demand,
            } => {
                let config = sdk_config(settings, region.as_deref()).await;
                AwsNodes::Fis {
                    ec2: aws_sdk_ec2::Client::new(&config),
                    fis: aws_sdk_fis::Client::new(&config),
                    filter: InstanceFilter {
                        tags: tags.clone(),
                        availability_zones: availability_zones.clone(),
                        instance_types: instance_types.clone(),
                        allow_on_demand: *allow_on_demand,
                    },
                    notice: *notice,
                    role_arn: role_arn.clone(),
                    keep_templates: *keep_templates,
                }
            }
        })
    }

    fn ec2(&self) -> &aws_sdk_ec2::Client {
        match self {
            AwsNodes::Ec2 { ec2, .. } | AwsNodes::Asg { ec2, .. } | AwsNodes::Fis { ec2, .. } => {
                ec2
            }
        }
    }

    /// The eligible nodes now, and the matched instances left out.
    pub async fn discover(&self) -> Result<Discovery, AwsError> {
        match self {
            AwsNodes::Ec2 {
                ec2,
                filter,
                spot_fleet_request,
            } => {
                let members = match spot_fleet_request {
                    Some(id) => Some(fleet_members(ec2, id).await?),
                    None => None,
                };
                let mut d = describe(ec2, filter, None).await?;
                if let Some(members) = members {
                    d.found.retain(|f| members.contains(&f.node.id));
                    d.excluded.retain(|e| members.contains(&e.id));
                }
                Ok(d)
            }
            AwsNodes::Fis { ec2, filter, .. } => describe(ec2, filter, None).await,
            AwsNodes::Asg {
                ec2,
                asg,
                group,
                allow_on_demand,
                ..
            } => {
                let capacity = group_capacity(asg, group).await?;
                if capacity.in_service.is_empty() {
                    return Ok(Discovery::default());
                }
                let filter = InstanceFilter {
                    allow_on_demand: *allow_on_demand,
                    ..InstanceFilter::default()
                };
                describe(ec2, &filter, Some(capacity.in_service.as_slice())).await
            }
        }
    }

    /// The Auto Scaling group's capacity (`aws-asg` only).
    pub async fn capacity(&self) -> Option<Result<GroupCapacity, AwsError>> {
        match self {
            AwsNodes::Asg { asg, group, .. } => Some(group_capacity(asg, group).await),
            _ => None,
        }
    }

    /// Follow an Auto Scaling group's capacity in the background (`aws-asg` only): described
    /// every `every` until `cancel`; `None` in the channel until the first answer.
    pub fn watch_capacity(
        &self,
        every: Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::sync::watch::Receiver<Option<GroupCapacity>>> {
        let AwsNodes::Asg { asg, group, .. } = self else {
            return None;
        };
        let (tx, rx) = tokio::sync::watch::channel(None);
        let (asg, group) = (asg.clone(), group.clone());
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
        Some(rx)
    }

    /// Whether capacity comes back after a step (`aws-asg` with `replace: true`).
    pub fn replaces(&self) -> bool {
        matches!(self, AwsNodes::Asg { replace: true, .. })
    }

    /// Check with `DryRun=true` that TerminateInstances is allowed (DryRunOperation = allowed,
    /// UnauthorizedOperation = denied). `ids` are instances discovery returned (one is enough).
    pub async fn check_permissions(&self, ids: &[String]) -> Result<(), AwsError> {
        // For aws-asg the group terminates with its own service-linked role; the caller's
        // TerminateInstances permission is still what DryRun can check.
        let permission = "ec2:TerminateInstances";
        let Some(id) = ids.first() else {
            return Ok(());
        };
        let result = self
            .ec2()
            .terminate_instances()
            .instance_ids(id)
            .dry_run(true)
            .send()
            .await;
        match result {
            Ok(_) => Err(AwsError::Call {
                operation: "TerminateInstances (DryRun)",
                detail: "the dry run was not refused as a dry run: refusing to go on".into(),
            }),
            Err(e) => match e.code() {
                Some("DryRunOperation") => Ok(()),
                Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
                    Err(AwsError::Denied {
                        permission: permission.to_owned(),
                        detail: e.message().unwrap_or("UnauthorizedOperation").to_owned(),
                    })
                }
                _ => Err(call_error("TerminateInstances (DryRun)", &e)),
            },
        }
    }

    /// Terminate exactly these nodes, each only if discovery returns it right now as eligible;
    /// one outcome per node, confirmed by describing again. `events` receives what belongs in the
    /// journal as it happens; `stop` resolves when the run is interrupted (FIS stops its
    /// experiment then).
    pub async fn terminate(
        &self,
        nodes: &[Node],
        label: &str,
        events: &(dyn Fn(ProviderEvent) + Sync),
        stop: impl std::future::Future<Output = ()>,
    ) -> Vec<Terminated> {
        let now = match self.discover().await {
            Ok(d) => d,
            Err(e) => {
                return nodes
                    .iter()
                    .map(|n| outcome(&n.id, NodeOutcome::Error, Some(format!("rediscovery: {e}"))))
                    .collect();
            }
        };
        let mut results: HashMap<String, Terminated> = HashMap::new();
        let mut go: Vec<&Found> = Vec::new();
        for n in nodes {
            if let Some(f) = now.found.iter().find(|f| f.node.id == n.id) {
                if !go.iter().any(|g| g.node.id == n.id) {
                    go.push(f);
                }
            } else if let Some(x) = now.excluded.iter().find(|x| x.id == n.id) {
                results.insert(
                    n.id.clone(),
                    outcome(&n.id, NodeOutcome::Refused, Some(x.reason.clone())),
                );
            } else {
                results.insert(
                    n.id.clone(),
                    outcome(
                        &n.id,
                        NodeOutcome::AlreadyGone,
                        Some("the selector no longer returns it as running".into()),
                    ),
                );
            }
        }
        let ids: Vec<String> = go.iter().map(|f| f.node.id.clone()).collect();
        if !ids.is_empty() {
            let done = match self {
                AwsNodes::Ec2 { ec2, .. } => terminate_ec2(ec2, &ids).await,
                AwsNodes::Asg {
                    asg, ec2, replace, ..
                } => terminate_asg(asg, ec2, &ids, *replace).await,
                AwsNodes::Fis {
                    ec2,
                    fis,
                    notice,
                    role_arn,
                    keep_templates,
                    ..
                } => {
                    let fis_run = FisRun {
                        fis,
                        ec2,
                        notice: *notice,
                        role_arn,
                        keep_templates: *keep_templates,
                        label,
                    };
                    fis_run.interrupt(&go, events, stop).await
                }
            };
            for t in done {
                results.insert(t.id.clone(), t);
            }
        }
        nodes
            .iter()
            .map(|n| {
                results.remove(&n.id).unwrap_or_else(|| {
                    outcome(
                        &n.id,
                        NodeOutcome::Error,
                        Some("no outcome recorded".into()),
                    )
                })
            })
            .collect()
    }
}

fn outcome(id: &str, outcome: NodeOutcome, detail: Option<String>) -> Terminated {
    Terminated {
        id: id.to_owned(),
        outcome,
        detail,
    }
}

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// DescribeInstances with the selector's filters plus `instance-state-name=running`, every page;
/// each instance then checked on the client side (state, tags, zone, type, lifecycle).
async fn describe(
    ec2: &aws_sdk_ec2::Client,
    f: &InstanceFilter,
    ids: Option<&[String]>,
) -> Result<Discovery, AwsError> {
    let mut filters = vec![filter("instance-state-name", ["running"])];
    for (k, v) in &f.tags {
        filters.push(filter(&format!("tag:{k}"), [v.clone()]));
    }
    if !f.availability_zones.is_empty() {
        filters.push(filter("availability-zone", f.availability_zones.clone()));
    }
    if !f.instance_types.is_empty() {
        filters.push(filter("instance-type", f.instance_types.clone()));
    }
    if let Some(ids) = ids {
        filters.push(filter("instance-id", ids.to_vec()));
    }
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(page_size())
        .into_paginator()
        .send();
    let mut d = Discovery::default();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("DescribeInstances", &e))?;
        for r in page.reservations() {
            for i in r.instances() {
                match classify(i, f, ids, r.owner_id()) {
                    Ok(found) => d.found.push(found),
                    Err(Some(x)) => d.excluded.push(x),
                    Err(None) => {}
                }
            }
        }
    }
    d.found.sort_by(|a, b| a.node.id.cmp(&b.node.id));
    d.excluded.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(d)
}

/// Whether one described instance is eligible. `Err(Some(_))`: matched but left out (shown in
/// the preflight); `Err(None)`: not matched at all (the server's filters should not have
/// returned it).
pub(crate) fn classify(
    i: &aws_sdk_ec2::types::Instance,
    f: &InstanceFilter,
    ids: Option<&[String]>,
    owner: Option<&str>,
) -> Result<Found, Option<Excluded>> {
    let id = i.instance_id().unwrap_or_default().to_owned();
    if id.is_empty() {
        return Err(None);
    }
    if ids.is_some_and(|ids| !ids.contains(&id)) {
        return Err(None);
    }
    let tags: HashMap<&str, &str> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    if !f
        .tags
        .iter()
        .all(|(k, v)| tags.get(k.as_str()) == Some(&v.as_str()))
    {
        return Err(None);
    }
    let zone = i
        .placement()
        .and_then(|p| p.availability_zone())
        .map(str::to_owned);
    if !f.availability_zones.is_empty()
        && !zone
            .as_ref()
            .is_some_and(|z| f.availability_zones.contains(z))
    {
        return Err(None);
    }
    let instance_type = i.instance_type().map(|t| t.as_str().to_owned());
    if !f.instance_types.is_empty()
        && !instance_type
            .as_ref()
            .is_some_and(|t| f.instance_types.contains(t))
    {
        return Err(None);
    }
    let running = i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running);
    if !running {
        let state = i
            .state()
            .and_then(|s| s.name())
            .map_or("unknown", |s| s.as_str());
        return Err(Some(Excluded {
            id,
            reason: format!("not running ({state})"),
        }));
    }
    let spot = i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot);
    if !spot && !f.allow_on_demand {
        return Err(Some(Excluded {
            id,
            reason: "on-demand (not spot; the target does not say allow_on_demand: true)".into(),
        }));
    }
    let private_ip = i
        .private_ip_address()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let host = i
        .private_dns_name()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| private_ip.clone())
        .unwrap_or_else(|| id.clone());
    let region = zone
        .as_deref()
        .map(|z| z.trim_end_matches(char::is_alphabetic));
    let arn = match (region, owner) {
        (Some(region), Some(owner)) => Some(format!("arn:aws:ec2:{region}:{owner}:instance/{id}")),
        _ => None,
    };
    Ok(Found {
        matched_tags: f
            .tags
            .keys()
            .filter_map(|k| tags.get(k.as_str()).map(|v| (k.clone(), (*v).to_owned())))
            .collect(),
        node: Node {
            id,
            host,
            zone,
            instance_type,
            lifecycle: if spot {
                Lifecycle::Spot
            } else {
                Lifecycle::OnDemand
            },
            running,
        },
        private_ip,
        arn,
    })
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

async fn group_capacity(
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
    Ok(GroupCapacity {
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        in_service,
    })
}

/// The state of each instance, every page (instances missing from the answer are absent).
async fn states(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<HashMap<String, InstanceStateName>, AwsError> {
    let mut pages = ec2
        .describe_instances()
        .filters(filter("instance-id", ids.to_vec()))
        .max_results(page_size())
        .into_paginator()
        .send();
    let mut out = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("DescribeInstances", &e))?;
        for r in page.reservations() {
            for i in r.instances() {
                if let (Some(id), Some(state)) = (i.instance_id(), i.state().and_then(|s| s.name()))
                {
                    out.insert(id.to_owned(), state.clone());
                }
            }
        }
    }
    Ok(out)
}

fn gone(state: Option<&InstanceStateName>) -> bool {
    matches!(
        state,
        None | Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
    )
}

/// Describe until every instance left `running` (or `within` passed); an outcome each.
async fn confirm(ec2: &aws_sdk_ec2::Client, ids: &[String], within: Duration) -> Vec<Terminated> {
    let deadline = Instant::now() + within;
    loop {
        let seen = states(ec2, ids).await;
        let done = seen
            .as_ref()
            .is_ok_and(|s| ids.iter().all(|id| gone(s.get(id))));
        if done || Instant::now() >= deadline {
            return ids
                .iter()
                .map(|id| match &seen {
                    Err(e) => outcome(
                        id,
                        NodeOutcome::Error,
                        Some(format!("terminated, but not confirmed: {e}")),
                    ),
                    Ok(s) => match s.get(id) {
                        st if gone(st) => outcome(
                            id,
                            NodeOutcome::Terminated,
                            Some(st.map_or("gone", InstanceStateName::as_str).to_owned()),
                        ),
                        Some(st) => outcome(
                            id,
                            NodeOutcome::Error,
                            Some(format!(
                                "still {} {}s after the call",
                                st.as_str(),
                                within.as_secs()
                            )),
                        ),
                        None => unreachable!("gone(None) is true"),
                    },
                })
                .collect();
        }
        tokio::time::sleep(poll_interval().min(Duration::from_secs(1))).await;
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

/// Outcomes after a failed TerminateInstances: a refusal is a refusal; any other failure (a 5xx,
/// a timeout) may have terminated the instances all the same, so their state decides.
async fn failed_call(ec2: &aws_sdk_ec2::Client, ids: &[String], e: &AwsError) -> Vec<Terminated> {
    let refused = refusal("", e).outcome == NodeOutcome::Refused;
    if refused {
        return ids.iter().map(|id| refusal(id, e)).collect();
    }
    let seen = states(ec2, ids).await;
    ids.iter()
        .map(|id| match &seen {
            Ok(s) if gone(s.get(id)) => outcome(
                id,
                NodeOutcome::Terminated,
                Some(format!(
                    "{}, after the call failed ({e})",
                    s.get(id).map_or("gone", InstanceStateName::as_str)
                )),
            ),
            Ok(s) => outcome(
                id,
                NodeOutcome::Error,
                Some(format!(
                    "{e}; still {}",
                    s.get(id).map_or("unknown", InstanceStateName::as_str)
                )),
            ),
            Err(d) => outcome(
                id,
                NodeOutcome::Error,
                Some(format!("{e}; its state is unknown ({d})")),
            ),
        })
        .collect()
}

fn refusal(id: &str, e: &AwsError) -> Terminated {
    let refused = e.to_string().contains("UnauthorizedOperation")
        || e.to_string().contains("OperationNotPermitted");
    outcome(
        id,
        if refused {
            NodeOutcome::Refused
        } else {
            NodeOutcome::Error
        },
        Some(e.to_string()),
    )
}

async fn terminate_asg(
    asg: &aws_sdk_autoscaling::Client,
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    replace: bool,
) -> Vec<Terminated> {
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
    if !called.is_empty() {
        out.extend(confirm(ec2, &called, Duration::from_secs(60)).await);
    }
    out
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
        stop: impl std::future::Future<Output = ()>,
    ) -> Vec<Terminated> {
        let ids: Vec<String> = nodes.iter().map(|f| f.node.id.clone()).collect();
        let fail = |why: String| -> Vec<Terminated> {
            ids.iter()
                .map(|id| outcome(id, NodeOutcome::Error, Some(why.clone())))
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
                outcome(id, NodeOutcome::Terminated, Some(detail))
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
        stop: impl std::future::Future<Output = ()>,
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
    use aws_sdk_ec2::types::{Instance, InstanceState, InstanceType, Placement, Tag};

    fn instance(id: &str, spot: bool, state: InstanceStateName, tags: &[(&str, &str)]) -> Instance {
        let mut b = Instance::builder()
            .instance_id(id)
            .instance_type(InstanceType::from("c5.xlarge"))
            .placement(Placement::builder().availability_zone("us-east-1a").build())
            .private_dns_name(format!("ip-10-0-0-1.{id}.internal"))
            .private_ip_address("10.0.0.1")
            .state(InstanceState::builder().name(state).build());
        if spot {
            b = b.instance_lifecycle(InstanceLifecycleType::Spot);
        }
        for (k, v) in tags {
            b = b.tags(Tag::builder().key(*k).value(*v).build());
        }
        b.build()
    }

    fn storm() -> InstanceFilter {
        InstanceFilter {
            tags: [("cluster".to_owned(), "storm".to_owned())]
                .into_iter()
                .collect(),
            ..InstanceFilter::default()
        }
    }

    #[test]
    fn a_running_tagged_spot_instance_is_eligible_with_its_arn() {
        let i = instance(
            "i-1",
            true,
            InstanceStateName::Running,
            &[("cluster", "storm")],
        );
        let f = classify(&i, &storm(), None, Some("123456789012")).unwrap();
        assert_eq!(f.node.lifecycle, Lifecycle::Spot);
        assert_eq!(f.node.host, "ip-10-0-0-1.i-1.internal");
        assert_eq!(
            f.arn.as_deref(),
            Some("arn:aws:ec2:us-east-1:123456789012:instance/i-1")
        );
        assert_eq!(
            f.matched_tags.get("cluster").map(String::as_str),
            Some("storm")
        );
    }

    #[test]
    fn on_demand_is_excluded_unless_allowed() {
        let i = instance(
            "i-2",
            false,
            InstanceStateName::Running,
            &[("cluster", "storm")],
        );
        let x = classify(&i, &storm(), None, None).unwrap_err().unwrap();
        assert!(x.reason.starts_with("on-demand"), "{}", x.reason);
        let allowed = InstanceFilter {
            allow_on_demand: true,
            ..storm()
        };
        let f = classify(&i, &allowed, None, None).unwrap();
        assert_eq!(f.node.lifecycle, Lifecycle::OnDemand);
    }

    #[test]
    fn instances_the_server_should_not_have_returned_are_ignored() {
        // Wrong tag, not running, or not among the ids asked for: never eligible.
        let wrong_tag = instance(
            "i-3",
            true,
            InstanceStateName::Running,
            &[("cluster", "mesos")],
        );
        assert_eq!(classify(&wrong_tag, &storm(), None, None), Err(None));
        let stopped = instance(
            "i-4",
            true,
            InstanceStateName::Stopped,
            &[("cluster", "storm")],
        );
        assert!(classify(&stopped, &storm(), None, None).is_err());
        let other = instance(
            "i-5",
            true,
            InstanceStateName::Running,
            &[("cluster", "storm")],
        );
        assert_eq!(
            classify(&other, &storm(), Some(&["i-6".to_owned()]), None),
            Err(None)
        );
        let zoned = InstanceFilter {
            availability_zones: vec!["us-east-1b".into()],
            ..storm()
        };
        assert_eq!(classify(&other, &zoned, None, None), Err(None));
    }

    #[test]
    fn fis_notice_is_an_iso_duration() {
        assert_eq!(iso_duration(Duration::from_secs(120)), "PT2M");
        assert_eq!(iso_duration(Duration::from_secs(150)), "PT150S");
    }

    #[test]
    fn group_capacity_is_full_only_without_the_terminated_instances() {
        let c = GroupCapacity {
            desired: 2,
            in_service: vec!["i-1".into(), "i-2".into()],
        };
        assert!(c.is_full(&[]));
        assert!(!c.is_full(&["i-1".into()]));
        let short = GroupCapacity { desired: 3, ..c };
        assert!(!short.is_full(&[]));
    }
}
