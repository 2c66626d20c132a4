//! What the AWS node providers share (DESIGN.md "Node providers"): the SDK configuration,
//! errors, discovery by DescribeInstances, and confirming terminations by describing again. The
//! providers themselves are [`super::ec2`] (TerminateInstances), [`super::asg`]
//! (TerminateInstanceInAutoScalingGroup, with or without replacement) and [`super::fis`] (spot
//! interruptions through AWS FIS, batched 5 instances per action).
//!
//! Settings come from the standard credential chain, `AWS_ENDPOINT_URL` (so emulators need no
//! special code path), and `--profile` / `--region` / `--endpoint-url`. Every call retries with
//! backoff on throttling (the SDK's standard retry mode) and every listing is paginated.
//!
//! Safety: a provider terminates only instances that its own discovery returns, at the time of the
//! call, as running and spot (unless the plan allows on-demand); everything else in the request is
//! refused, per instance. Outcomes are confirmed by describing the instances again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use indexmap::IndexMap;

use super::ec2_api::{self, Filter, InstanceState};
use super::{Discovery, Excluded, Found, Lifecycle, Node, NodeOutcome, Permission, Terminated};
use crate::plan::NodeSelector;

/// How spotdrill reaches AWS, beyond the standard chain (from the command line).
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub profile: Option<String>,
    /// Used where a target names no region of its own.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// `--context`: the kubeconfig context of kubernetes targets whose plan names none (it
    /// travels with the AWS settings because both come from the command line).
    pub kube_context: Option<String>,
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
    #[error(
        "{operation}: no AWS credentials found (tried: {tried}); pass --profile NAME, run `aws sso \
         login`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials {
        operation: &'static str,
        tried: String,
    },
    #[error(
        "{operation}: no AWS region; name one in the target (`region:`), pass --region, or set \
         AWS_REGION"
    )]
    NoRegion { operation: &'static str },
    #[error(
        "{operation}: cannot reach {} ({reason}); check the network, or --endpoint-url / \
         AWS_ENDPOINT_URL",
        .endpoint.as_ref().map_or_else(|| "AWS".to_owned(), |e| format!("the AWS endpoint {e}"))
    )]
    Unreachable {
        operation: &'static str,
        /// Filled in by [`Ec2::named`], which knows the configuration.
        endpoint: Option<String>,
        reason: String,
    },
    #[error("{operation}: access denied: these credentials may not call {action} ({detail})")]
    AccessDenied {
        operation: &'static str,
        action: String,
        detail: String,
    },
}

/// One sentence per kind of SDK failure (no credentials, no region, endpoint unreachable,
/// access denied, or the service's own code and message); the SDK's whole error chain, with its
/// `Debug` structures, is logged at debug level (`-vv`) only.
pub(super) fn call_error<E, R>(operation: &'static str, e: &SdkError<E, R>) -> AwsError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    tracing::debug!(operation, error = %DisplayErrorContext(e), "AWS call failed");
    let chain = chain_text(e);
    if let Some(tried) = credential_sources(&chain) {
        return AwsError::NoCredentials { operation, tried };
    }
    let lower = chain.to_lowercase();
    if lower.contains("missing region")
        || lower.contains("region") && matches!(e, SdkError::ConstructionFailure(_))
    {
        return AwsError::NoRegion { operation };
    }
    if let SdkError::DispatchFailure(d) = e
        && (d.is_io() || d.is_timeout())
    {
        let reason = last_cause(e);
        return AwsError::Unreachable {
            operation,
            endpoint: None,
            reason,
        };
    }
    if let SdkError::TimeoutError(_) = e {
        return AwsError::Unreachable {
            operation,
            endpoint: None,
            reason: "no answer in time".into(),
        };
    }
    service_error(operation, e.code(), e.message(), chain)
}

/// The same sentences for the EC2 client's errors ([`ec2_api::Error`]).
pub(super) fn api_error(operation: &'static str, e: &ec2_api::Error) -> AwsError {
    tracing::debug!(operation, error = %DisplayErrorContext(e), "AWS call failed");
    let chain = chain_text(e);
    match e {
        ec2_api::Error::NoRegion => AwsError::NoRegion { operation },
        ec2_api::Error::Credentials(_) => match credential_sources(&chain) {
            Some(tried) => AwsError::NoCredentials { operation, tried },
            None => AwsError::Call {
                operation,
                detail: chain,
            },
        },
        ec2_api::Error::Connect(c) if c.is_io() || c.is_timeout() => AwsError::Unreachable {
            operation,
            endpoint: None,
            reason: last_cause(e),
        },
        ec2_api::Error::Timeout(_) => AwsError::Unreachable {
            operation,
            endpoint: None,
            reason: "no answer in time".into(),
        },
        e => service_error(operation, e.code(), e.message(), chain),
    }
}

/// A service's refusal (access denied) or failure (its code and message, else the chain).
fn service_error(
    operation: &'static str,
    code: Option<&str>,
    message: Option<&str>,
    chain: String,
) -> AwsError {
    let detail = match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => chain,
    };
    match code {
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
            AwsError::AccessDenied {
                operation,
                action: iam_action(operation),
                detail,
            }
        }
        _ => AwsError::Call { operation, detail },
    }
}

/// The error and its sources, `Display` only (no `Debug` structures), joined by `: `.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// The innermost cause's text (`tcp connect error: Connection refused (os error 111)`).
fn last_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    let mut text = cur.to_string();
    while let Some(c) = cur.source() {
        let t = c.to_string();
        if !t.trim().is_empty() {
            text = t;
        }
        cur = c;
    }
    text
}

/// When the chain says the credential chain found nothing: the sources it tried, by name.
fn credential_sources(chain: &str) -> Option<String> {
    let at = chain
        .find("no credentials found in chain")
        .or_else(|| chain.find("the credential provider was not enabled"))?;
    let names: Vec<&str> = chain[at..]
        .lines()
        .skip(1)
        .filter_map(|l| l.strip_prefix("  ")?.split_once(':').map(|(n, _)| n))
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|n| match n {
            "Environment" => "environment variables",
            "Profile" => "shared config and credentials files",
            "WebIdentityToken" => "web identity token",
            "EcsContainer" => "ECS container",
            "Ec2InstanceMetadata" => "EC2 instance metadata",
            other => other,
        })
        .collect();
    Some(if names.is_empty() {
        "the standard credential chain".into()
    } else {
        names.join(", ")
    })
}

/// The IAM action behind an operation (`TerminateInstances (DryRun)` → `ec2:TerminateInstances`).
fn iam_action(operation: &str) -> String {
    let name = operation.split(' ').next().unwrap_or(operation);
    let service = match name {
        "DescribeAutoScalingGroups" | "TerminateInstanceInAutoScalingGroup" => "autoscaling",
        "GetCallerIdentity" => "sts",
        n if n.contains("Experiment") => "fis",
        _ => "ec2",
    };
    format!("{service}:{name}")
}

/// A duration in milliseconds from the environment (tests shorten the AWS timeouts), else
/// `default_ms`.
fn env_ms(name: &str, default_ms: u64) -> Duration {
    let ms = std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&ms: &u64| ms > 0)
        .unwrap_or(default_ms);
    Duration::from_millis(ms)
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
                .operation_attempt_timeout(env_ms("SPOTDRILL_AWS_ATTEMPT_TIMEOUT_MS", 30_000))
                .operation_timeout(env_ms("SPOTDRILL_AWS_OPERATION_TIMEOUT_MS", 120_000))
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

/// The instance selector shared by `aws-ec2` and `aws-fis`.
#[derive(Clone, Debug, Default)]
pub struct InstanceFilter {
    pub tags: IndexMap<String, String>,
    pub availability_zones: Vec<String>,
    pub instance_types: Vec<String>,
    pub allow_on_demand: bool,
}

impl InstanceFilter {
    /// The filter of an `aws-ec2` or `aws-fis` selector (empty for the others).
    pub fn of(selector: &NodeSelector) -> InstanceFilter {
        match selector {
            NodeSelector::AwsEc2 {
                tags,
                availability_zones,
                instance_types,
                allow_on_demand,
                ..
            }
            | NodeSelector::AwsFis {
                tags,
                availability_zones,
                instance_types,
                allow_on_demand,
                ..
            } => InstanceFilter {
                tags: tags.clone(),
                availability_zones: availability_zones.clone(),
                instance_types: instance_types.clone(),
                allow_on_demand: *allow_on_demand,
            },
            NodeSelector::Lab { .. }
            | NodeSelector::AwsAsg { .. }
            | NodeSelector::Kubernetes(_) => InstanceFilter::default(),
        }
    }

    /// The filter in a stable form (sorted), for lock identities.
    pub fn normalised(&self) -> String {
        let mut tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tags.sort();
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v.join(",")
        };
        format!(
            "tags={};zones={};types={}",
            tags.join(","),
            sorted(&self.availability_zones),
            sorted(&self.instance_types)
        )
    }
}

/// DescribeInstances page size; `SPOTDRILL_EC2_PAGE_SIZE` (5–1000) lets tests exercise paging.
pub(super) fn page_size() -> i32 {
    std::env::var("SPOTDRILL_EC2_PAGE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| (5..=1000).contains(n))
        .unwrap_or(1000)
}

/// How often FIS experiments and confirmations are polled.
pub(super) fn poll_interval() -> Duration {
    std::env::var("SPOTDRILL_AWS_POLL_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

/// An EC2 client and the region it talks to (every AWS provider has one).
#[derive(Clone)]
pub struct Ec2 {
    pub client: ec2_api::Client,
    /// The region the configuration resolved to (`unknown` when none).
    pub region: String,
    /// The account, region and endpoint the calls act in.
    pub place: super::account::Place,
    /// The EC2 endpoint calls go to (an emulator's, or the region's): named in errors.
    pub endpoint: String,
}

impl Ec2 {
    /// A client for `config`, and where it acts (one GetCallerIdentity call).
    pub async fn connect(config: &SdkConfig) -> Ec2 {
        let place = super::account::place(config).await;
        Ec2::at(config, place)
    }

    /// A client for `config` acting in `place` (no call made).
    pub fn at(config: &SdkConfig, place: super::account::Place) -> Ec2 {
        let client = ec2_api::Client::new(config);
        Ec2 {
            region: place.region.clone(),
            endpoint: client.endpoint().to_owned(),
            client,
            place,
        }
    }

    /// An error with the endpoint named, where it is about reaching it.
    pub fn named(&self, e: AwsError) -> AwsError {
        match e {
            AwsError::Unreachable {
                operation, reason, ..
            } => AwsError::Unreachable {
                operation,
                endpoint: Some(self.endpoint.clone()),
                reason,
            },
            e => e,
        }
    }

    /// Check with `DryRun=true` that TerminateInstances is allowed (DryRunOperation = allowed,
    /// UnauthorizedOperation = denied). `ids` are instances discovery returned (one is enough).
    pub async fn check_permissions(&self, nodes: &[Node]) -> Result<Permission, AwsError> {
        // For aws-asg the group terminates with its own service-linked role; the caller's
        // TerminateInstances permission is still what DryRun can check.
        let permission = "ec2:TerminateInstances";
        let Some(id) = nodes.first().map(|n| n.id.as_str()) else {
            return Ok(Permission::NotChecked);
        };
        let result = self
            .client
            .terminate_instances(&[id.to_owned()], true)
            .await;
        match result {
            Ok(_) => Err(AwsError::Call {
                operation: "TerminateInstances (DryRun)",
                detail: "the dry run was not refused as a dry run: refusing to go on".into(),
            }),
            Err(e) => match e.code() {
                Some("DryRunOperation") => Ok(Permission::Allowed(format!(
                    "allowed (TerminateInstances DryRun on {id} answered DryRunOperation)"
                ))),
                Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
                    Err(AwsError::Denied {
                        permission: permission.to_owned(),
                        detail: e.message().unwrap_or("UnauthorizedOperation").to_owned(),
                    })
                }
                _ => Err(api_error("TerminateInstances (DryRun)", &e)),
            },
        }
    }
}

pub(super) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::new(name, values)
}

/// DescribeInstances with the selector's filters plus `instance-state-name=running`, every page;
/// each instance then checked on the client side (state, tags, zone, type, lifecycle).
pub(super) async fn describe(
    ec2: &ec2_api::Client,
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
    let reservations = ec2
        .describe_instances(&filters, page_size())
        .await
        .map_err(|e| api_error("DescribeInstances", &e))?;
    let mut d = Discovery::default();
    for r in &reservations {
        for i in &r.instances {
            match classify(i, f, ids, r.owner_id.as_deref()) {
                Ok(found) => d.found.push(found),
                Err(Some(x)) => d.excluded.push(x),
                Err(None) => {}
            }
        }
    }
    d.found.sort_by(|a, b| a.node.id.cmp(&b.node.id));
    d.excluded.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(d)
}

/// What the selector matched of one described instance.
struct Matched<'a> {
    id: String,
    tags: HashMap<&'a str, &'a str>,
    zone: Option<String>,
    instance_type: Option<String>,
}

/// Whether the selector matches an instance at all (the server's filters, checked again).
fn matched<'a>(
    i: &'a ec2_api::Instance,
    f: &InstanceFilter,
    ids: Option<&[String]>,
) -> Option<Matched<'a>> {
    let id = i
        .instance_id
        .as_deref()
        .filter(|id| !id.is_empty())?
        .to_owned();
    if ids.is_some_and(|ids| !ids.contains(&id)) {
        return None;
    }
    let tags: HashMap<&str, &str> = i
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tagged = f
        .tags
        .iter()
        .all(|(k, v)| tags.get(k.as_str()) == Some(&v.as_str()));
    let zone = i.availability_zone.clone();
    let instance_type = i.instance_type.clone();
    let within = |wanted: &[String], got: &Option<String>| {
        wanted.is_empty() || got.as_ref().is_some_and(|g| wanted.contains(g))
    };
    (tagged && within(&f.availability_zones, &zone) && within(&f.instance_types, &instance_type))
        .then_some(Matched {
            id,
            tags,
            zone,
            instance_type,
        })
}

/// Whether one described instance is eligible. `Err(Some(_))`: matched but left out (shown in
/// the preflight); `Err(None)`: not matched at all (the server's filters should not have
/// returned it).
pub(crate) fn classify(
    i: &ec2_api::Instance,
    f: &InstanceFilter,
    ids: Option<&[String]>,
    owner: Option<&str>,
) -> Result<Found, Option<Excluded>> {
    let m = matched(i, f, ids).ok_or(None)?;
    let running = i.state == Some(InstanceState::Running);
    if !running {
        let state = i.state.as_ref().map_or("unknown", InstanceState::as_str);
        return Err(Some(Excluded {
            id: m.id,
            reason: format!("not running ({state})"),
        }));
    }
    let spot = i.instance_lifecycle.as_deref() == Some("spot");
    if !spot && !f.allow_on_demand {
        return Err(Some(Excluded {
            id: m.id,
            reason: "on-demand (not spot; the target does not say allow_on_demand: true)".into(),
        }));
    }
    Ok(found(i, f, m, spot, owner))
}

/// An eligible instance as discovery returns it.
fn found(
    i: &ec2_api::Instance,
    f: &InstanceFilter,
    m: Matched<'_>,
    spot: bool,
    owner: Option<&str>,
) -> Found {
    let private_ip = i
        .private_ip_address
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let host = i
        .private_dns_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| private_ip.clone())
        .unwrap_or_else(|| m.id.clone());
    let region = m
        .zone
        .as_deref()
        .map(|z| z.trim_end_matches(char::is_alphabetic));
    let arn = match (region, owner) {
        (Some(region), Some(owner)) => {
            Some(format!("arn:aws:ec2:{region}:{owner}:instance/{}", m.id))
        }
        _ => None,
    };
    Found {
        matched_tags: f
            .tags
            .keys()
            .filter_map(|k| m.tags.get(k.as_str()).map(|v| (k.clone(), (*v).to_owned())))
            .collect(),
        node: Node {
            id: m.id,
            host,
            zone: m.zone,
            instance_type: m.instance_type,
            lifecycle: if spot {
                Lifecycle::Spot
            } else {
                Lifecycle::OnDemand
            },
            running: true,
        },
        private_ip,
        arn,
    }
}

/// The state of each instance, every page (instances missing from the answer are absent).
pub(super) async fn states(
    ec2: &ec2_api::Client,
    ids: &[String],
) -> Result<HashMap<String, InstanceState>, AwsError> {
    let reservations = ec2
        .describe_instances(&[filter("instance-id", ids.to_vec())], page_size())
        .await
        .map_err(|e| api_error("DescribeInstances", &e))?;
    let mut out = HashMap::new();
    for i in reservations.into_iter().flat_map(|r| r.instances) {
        if let (Some(id), Some(state)) = (i.instance_id, i.state) {
            out.insert(id, state);
        }
    }
    Ok(out)
}

pub(super) fn gone(state: Option<&InstanceState>) -> bool {
    matches!(
        state,
        None | Some(InstanceState::ShuttingDown | InstanceState::Terminated)
    )
}

/// Describe until every instance left `running` (or `within` passed); an outcome each.
pub(super) async fn confirm(
    ec2: &ec2_api::Client,
    ids: &[String],
    within: Duration,
) -> Vec<Terminated> {
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
                    Err(e) => Terminated::new(
                        id,
                        NodeOutcome::Error,
                        Some(format!("terminated, but not confirmed: {e}")),
                    ),
                    Ok(s) => match s.get(id) {
                        st if gone(st) => Terminated::new(
                            id,
                            NodeOutcome::Terminated,
                            Some(st.map_or("gone", InstanceState::as_str).to_owned()),
                        ),
                        Some(st) => Terminated::new(
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

/// Outcomes after a failed TerminateInstances: a refusal is a refusal; any other failure (a 5xx,
/// a timeout) may have terminated the instances all the same, so their state decides.
pub(super) async fn failed_call(
    ec2: &ec2_api::Client,
    ids: &[String],
    e: &AwsError,
) -> Vec<Terminated> {
    let refused = refusal("", e).outcome == NodeOutcome::Refused;
    if refused {
        return ids.iter().map(|id| refusal(id, e)).collect();
    }
    let seen = states(ec2, ids).await;
    ids.iter()
        .map(|id| match &seen {
            Ok(s) if gone(s.get(id)) => Terminated::new(
                id,
                NodeOutcome::Terminated,
                Some(format!(
                    "{}, after the call failed ({e})",
                    s.get(id).map_or("gone", InstanceState::as_str)
                )),
            ),
            Ok(s) => Terminated::new(
                id,
                NodeOutcome::Error,
                Some(format!(
                    "{e}; still {}",
                    s.get(id).map_or("unknown", InstanceState::as_str)
                )),
            ),
            Err(d) => Terminated::new(
                id,
                NodeOutcome::Error,
                Some(format!("{e}; its state is unknown ({d})")),
            ),
        })
        .collect()
}

pub(super) fn refusal(id: &str, e: &AwsError) -> Terminated {
    let refused = e.to_string().contains("UnauthorizedOperation")
        || e.to_string().contains("OperationNotPermitted");
    Terminated::new(
        id,
        if refused {
            NodeOutcome::Refused
        } else {
            NodeOutcome::Error
        },
        Some(e.to_string()),
    )
}

/// What a node the selector no longer returns gets as the detail of its `already_gone`.
pub const NO_LONGER_RETURNED: &str = "the selector no longer returns it as running";

/// Every node an error when discovery before the call failed: nothing was terminated.
pub fn rediscovery_failed(nodes: &[Node], e: &AwsError) -> Vec<Terminated> {
    nodes
        .iter()
        .map(|n| Terminated::new(&n.id, NodeOutcome::Error, Some(format!("rediscovery: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 item 15: each kind of AWS failure is one sentence naming what to do, never
    /// the client's `Debug` structure.
    #[test]
    fn sdk_failures_are_one_sentence_each() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let denied = ec2_api::Error::Service(ec2_api::ServiceError {
            code: "UnauthorizedOperation".into(),
            message: Some("You are not authorized to perform this operation.".into()),
            request_id: Some("r-1".into()),
            status: 403,
        });
        let e = api_error("DescribeInstances", &denied);
        assert_eq!(
            e.to_string(),
            "DescribeInstances: access denied: these credentials may not call \
             ec2:DescribeInstances (UnauthorizedOperation: You are not authorized to perform \
             this operation.)"
        );
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = ec2_api::Error::Connect(ConnectorError::io(Box::new(refused)));
        let place = crate::nodes::account::Place {
            region: "eu-west-1".into(),
            ..Default::default()
        };
        let ec2 = Ec2::at(
            &SdkConfig::builder()
                .region(Region::new("eu-west-1"))
                .behavior_version(BehaviorVersion::latest())
                .build(),
            place,
        );
        assert_eq!(
            ec2.named(api_error("DescribeInstances", &e)).to_string(),
            "DescribeInstances: cannot reach the AWS endpoint https://ec2.eu-west-1.amazonaws.com \
             (Connection refused); check the network, or --endpoint-url / AWS_ENDPOINT_URL"
        );
        assert_eq!(
            iam_action("TerminateInstanceInAutoScalingGroup"),
            "autoscaling:TerminateInstanceInAutoScalingGroup"
        );
        assert_eq!(
            iam_action("TerminateInstances (DryRun)"),
            "ec2:TerminateInstances"
        );
    }
    use ec2_api::Instance;

    fn instance(id: &str, spot: bool, state: InstanceState, tags: &[(&str, &str)]) -> Instance {
        Instance {
            instance_id: Some(id.into()),
            instance_type: Some("c5.xlarge".into()),
            availability_zone: Some("us-east-1a".into()),
            private_dns_name: Some(format!("ip-10-0-0-1.{id}.internal")),
            private_ip_address: Some("10.0.0.1".into()),
            state: Some(state),
            instance_lifecycle: spot.then(|| "spot".to_owned()),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
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
        let i = instance("i-1", true, InstanceState::Running, &[("cluster", "storm")]);
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
            InstanceState::Running,
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
        let wrong_tag = instance("i-3", true, InstanceState::Running, &[("cluster", "mesos")]);
        assert_eq!(classify(&wrong_tag, &storm(), None, None), Err(None));
        let stopped = instance("i-4", true, InstanceState::Stopped, &[("cluster", "storm")]);
        assert!(classify(&stopped, &storm(), None, None).is_err());
        let other = instance("i-5", true, InstanceState::Running, &[("cluster", "storm")]);
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
}
