//! A small EC2 client: the calls spotdrill makes (DescribeInstances, TerminateInstances,
//! DescribeSpotFleetInstances, DescribeSpotPriceHistory; DryRun through TerminateInstances),
//! over the EC2 Query protocol
//! (API version 2016-11-15: a form-encoded POST, an XML answer), built from the pieces the AWS
//! SDK itself is made of: aws-config's loaded settings (region, credential chain, endpoint URL,
//! retry and timeout settings), aws-sigv4 for signing, aws-smithy-http-client's connector, and
//! aws-smithy-xml for the answers. It replaces aws-sdk-ec2, a generated crate of a million lines
//! that was most of every build.
//!
//! Like the SDK in its standard retry mode: throttling codes, 5xx, connection errors and attempt
//! timeouts are retried with exponential backoff and full jitter, up to the configured attempts
//! (`AWS_MAX_ATTEMPTS`; 5 by default in [`super::aws::sdk_config`]); each attempt and each
//! call is bounded by the configured timeouts. Credentials are never logged: the signing
//! identity's `Debug` redacts them and errors carry only codes, messages and request ids.
//! A new call is one small function: its parameters ([`Params`]) and its answer's parser.
//!
//! The same transport (signing, retries, timeouts, typed errors) speaks the JSON 1.1 protocol
//! for other services ([`Service`]): CloudTrail's client is [`cloudtrail`].

pub mod cloudtrail;
mod query;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

pub use query::{
    Filter, Instance, InstanceState, Page, Params, Reservation, SpotPrice, StateChange,
};

/// An EC2 error answer, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    pub code: String,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub status: u16,
}

/// Why an EC2 call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing region: no region is configured")]
    NoRegion,
    #[error("failed to load credentials")]
    Credentials(#[source] CredentialsError),
    #[error("cannot sign the request: {0}")]
    Signing(String),
    #[error("dispatch failure")]
    Connect(#[source] ConnectorError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the answer broke off (HTTP {status}): {detail}")]
    Interrupted { status: u16, detail: String },
    #[error("{}{} (HTTP {}{})", .0.code, .0.message.as_ref().map_or_else(String::new, |m| format!(": {m}")),
            .0.status, .0.request_id.as_ref().map_or_else(String::new, |r| format!(", request id {r}")))]
    Service(ServiceError),
    #[error("unexpected answer (HTTP {status}): {detail}")]
    Response { status: u16, detail: String },
}

/// Error codes the SDK's standard retry mode treats as throttling or transient.
const RETRIED_CODES: [&str; 17] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
];

/// Which AWS service a client calls, and in which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The SDK's service id, for `AWS_ENDPOINT_URL_<ID>` and the profile's `services` section.
    id: &'static str,
    /// The SigV4 signing name and the endpoint's host prefix.
    signing: &'static str,
    /// `None` for the EC2 Query protocol; the JSON 1.1 `X-Amz-Target` prefix otherwise.
    json_target: Option<&'static str>,
}

/// EC2, over the Query protocol.
pub const EC2: Service = Service {
    id: "EC2",
    signing: "ec2",
    json_target: None,
};

/// CloudTrail, over JSON 1.1.
pub const CLOUDTRAIL: Service = Service {
    id: "CloudTrail",
    signing: "cloudtrail",
    json_target: Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"),
};

/// One request's body and the headers that say how to read it.
struct Wire {
    body: String,
    content_type: &'static str,
    /// JSON 1.1: `X-Amz-Target`.
    target: Option<String>,
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
const JSON_11: &str = "application/x-amz-json-1.1";

impl Error {
    /// The service's error code (`UnauthorizedOperation`, `DryRunOperation`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service(s) => Some(&s.code),
            _ => None,
        }
    }

    /// The service's error message.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Service(s) => s.message.as_deref(),
            _ => None,
        }
    }

    /// Whether another attempt may succeed (the SDK's standard retry classification).
    fn retryable(&self) -> bool {
        match self {
            Error::Connect(c) => c.is_io() || c.is_timeout() || c.is_other(),
            Error::Timeout(_) | Error::Interrupted { .. } => true,
            Error::Service(s) => {
                RETRIED_CODES.contains(&s.code.as_str()) || [500, 502, 503, 504].contains(&s.status)
            }
            Error::Response { status, .. } => *status >= 500 || *status == 429,
            Error::NoRegion | Error::Credentials(_) | Error::Signing(_) => false,
        }
    }
}

/// How often and how long a call is tried.
#[derive(Clone, Debug)]
struct Attempts {
    max: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
}

impl Attempts {
    fn of(retry: Option<&RetryConfig>, timeouts: Option<&TimeoutConfig>) -> Attempts {
        let standard = RetryConfig::standard();
        let retry = retry.unwrap_or(&standard);
        Attempts {
            max: retry.max_attempts().max(1),
            initial_backoff: retry.initial_backoff(),
            max_backoff: retry.max_backoff(),
            attempt_timeout: timeouts.and_then(TimeoutConfig::operation_attempt_timeout),
            operation_timeout: timeouts.and_then(TimeoutConfig::operation_timeout),
        }
    }

    /// The wait before attempt `n + 1` (n ≥ 1): full jitter over an exponential bound.
    fn backoff(&self, n: u32) -> Duration {
        let bound = self
            .initial_backoff
            .saturating_mul(2_u32.saturating_pow(n - 1))
            .min(self.max_backoff);
        bound.mul_f64(jitter())
    }
}

/// A number in [0, 1) that differs per call (std's per-instance random hash keys).
fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// The service's endpoint: `AWS_ENDPOINT_URL_<ID>` (or the profile's `services` section), then
/// the configured endpoint URL (`--endpoint-url`, `AWS_ENDPOINT_URL`), else the region's.
fn endpoint(config: &SdkConfig, service: Service, region: Option<&str>) -> String {
    use aws_types::service_config::ServiceConfigKey;
    let explicit = config.get_origin("endpoint_url").is_client_config();
    let configured_for_service = || {
        let key = ServiceConfigKey::builder()
            .service_id(service.id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .ok()?;
        config.service_config()?.load_config(key)
    };
    let configured = match explicit {
        true => config.endpoint_url().map(str::to_owned),
        false => configured_for_service().or_else(|| config.endpoint_url().map(str::to_owned)),
    };
    configured.unwrap_or_else(|| {
        let region = region.unwrap_or("unknown");
        format!("https://{}.{region}.amazonaws.com", service.signing)
    })
}

/// The HTTPS connector (rustls with ring, as the SDK clients use), with the configured connect
/// and read timeouts.
fn connector(config: &SdkConfig) -> aws_smithy_http_client::Connector {
    let timeouts = config.timeout_config();
    let mut settings = HttpConnectorSettings::builder();
    if let Some(t) = timeouts.and_then(TimeoutConfig::connect_timeout) {
        settings = settings.connect_timeout(t);
    }
    if let Some(t) = timeouts.and_then(TimeoutConfig::read_timeout) {
        settings = settings.read_timeout(t);
    }
    let settings = settings.build();
    let mut builder = aws_smithy_http_client::Connector::builder().connector_settings(settings);
    if let Some(sleep) = config.sleep_impl() {
        builder = builder.sleep_impl(sleep);
    }
    builder
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build()
}

struct Inner {
    http: aws_smithy_http_client::Connector,
    credentials: Option<SharedCredentialsProvider>,
    /// The last credentials loaded, reused until five minutes before they expire.
    cached: tokio::sync::Mutex<Option<Credentials>>,
    region: Option<String>,
    endpoint: String,
    attempts: Attempts,
    service: Service,
}

/// An EC2 client (or another service's, [`Client::for_service`]) for one region and endpoint
/// (cheap to clone).
#[derive(Clone)]
pub struct Client(Arc<Inner>);

impl Client {
    /// An EC2 client for the loaded configuration (no call made).
    pub fn new(config: &SdkConfig) -> Client {
        Client::for_service(config, EC2)
    }

    /// A client of `service` for the loaded configuration (no call made).
    pub fn for_service(config: &SdkConfig, service: Service) -> Client {
        let region = config.region().map(|r| r.as_ref().to_owned());
        Client(Arc::new(Inner {
            http: connector(config),
            credentials: config.credentials_provider(),
            cached: tokio::sync::Mutex::new(None),
            endpoint: endpoint(config, service, region.as_deref()),
            region,
            attempts: Attempts::of(config.retry_config(), config.timeout_config()),
            service,
        }))
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &str {
        &self.0.endpoint
    }

    /// DescribeInstances with `filters`, every page of at most `page_size` instances.
    pub async fn describe_instances(
        &self,
        filters: &[Filter],
        page_size: i32,
    ) -> Result<Vec<Reservation>, Error> {
        let params = Params::new()
            .filters(filters)
            .set("MaxResults", page_size.to_string());
        self.pages("DescribeInstances", params, query::describe_instances)
            .await
    }

    /// TerminateInstances of `ids`; with `dry_run`, only whether it would be allowed (the
    /// answer is then the error `DryRunOperation`, or `UnauthorizedOperation`).
    pub async fn terminate_instances(
        &self,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Vec<StateChange>, Error> {
        let mut params = Params::new().list("InstanceId", ids);
        if dry_run {
            params = params.set("DryRun", "true");
        }
        let xml = self.call("TerminateInstances", &params).await?;
        query::terminate_instances(&xml).map_err(|e| unexpected(200, &e))
    }

    /// The active instances of a spot fleet request, every page.
    pub async fn describe_spot_fleet_instances(&self, id: &str) -> Result<Vec<String>, Error> {
        let params = Params::new().set("SpotFleetRequestId", id);
        self.pages(
            "DescribeSpotFleetInstances",
            params,
            query::describe_spot_fleet_instances,
        )
        .await
    }

    /// DescribeSpotPriceHistory of `instance_types` in `zones` from `start` (the answer also
    /// holds the price in effect at `start`, dated before it) until now, every page.
    pub async fn describe_spot_price_history(
        &self,
        instance_types: &[String],
        zones: &[String],
        start: SystemTime,
    ) -> Result<Vec<SpotPrice>, Error> {
        let params = Params::new()
            .list("InstanceType", instance_types)
            .filters(&[Filter::new("availability-zone", zones.iter().cloned())])
            .set(
                "StartTime",
                humantime::format_rfc3339_seconds(start).to_string(),
            )
            .set("MaxResults", "1000");
        self.pages(
            "DescribeSpotPriceHistory",
            params,
            query::describe_spot_price_history,
        )
        .await
    }

    /// One JSON 1.1 call of `operation` with `body` (a JSON object), its answer's text.
    pub async fn call_json(&self, operation: &str, body: String) -> Result<String, Error> {
        let prefix = self.0.service.json_target.unwrap_or_default();
        let wire = Wire {
            body,
            content_type: JSON_11,
            target: Some(format!("{prefix}.{operation}")),
        };
        self.send(operation, &wire).await
    }

    /// Every page of `action`: the call again with each `NextToken` until there is none.
    async fn pages<T>(
        &self,
        action: &'static str,
        mut params: Params,
        parse: fn(&str) -> Result<Page<T>, aws_smithy_xml::decode::XmlDecodeError>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        loop {
            let xml = self.call(action, &params).await?;
            let page = parse(&xml).map_err(|e| unexpected(200, &e))?;
            out.extend(page.items);
            match page.next_token {
                Some(token) => params = params.set("NextToken", token),
                None => return Ok(out),
            }
        }
    }

    /// One call of `action`: attempts with backoff, within the operation timeout.
    async fn call(&self, action: &'static str, params: &Params) -> Result<String, Error> {
        let wire = Wire {
            body: params.encode(action),
            content_type: FORM,
            target: None,
        };
        self.send(action, &wire).await
    }

    /// Send `wire`: attempts with backoff, within the operation timeout.
    async fn send(&self, action: &str, body: &Wire) -> Result<String, Error> {
        let tries = &self.0.attempts;
        let attempts = async {
            let mut n = 1;
            loop {
                let result = match tries.attempt_timeout {
                    Some(t) => tokio::time::timeout(t, self.attempt(body))
                        .await
                        .unwrap_or(Err(Error::Timeout(t))),
                    None => self.attempt(body).await,
                };
                match result {
                    Err(e) if n < tries.max && e.retryable() => {
                        let service = self.0.service.id;
                        tracing::debug!(service, action, attempt = n, error = %e, "AWS call retried");
                        tokio::time::sleep(tries.backoff(n)).await;
                        n += 1;
                    }
                    result => return result,
                }
            }
        };
        match tries.operation_timeout {
            Some(t) => tokio::time::timeout(t, attempts)
                .await
                .unwrap_or(Err(Error::Timeout(t))),
            None => attempts.await,
        }
    }

    /// One signed POST and its answer: the body on 2xx, the typed error otherwise.
    async fn attempt(&self, body: &Wire) -> Result<String, Error> {
        let credentials = self.credentials().await?;
        let request = self.signed_wire(&credentials, body)?;
        let response = self.0.http.call(request).await.map_err(Error::Connect)?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-amzn-requestid")
            .map(str::to_owned);
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| Error::Interrupted {
                status,
                detail: e.to_string(),
            })?
            .into_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let parsed = match self.0.service.json_target {
            None => query::error(&text).ok(),
            Some(_) => cloudtrail::error(&text, request_id.as_deref()),
        };
        Err(match parsed {
            Some(e) => Error::Service(ServiceError {
                code: e.code,
                message: e.message,
                request_id: e.request_id,
                status,
            }),
            None => Error::Response {
                status,
                detail: text.chars().take(200).collect(),
            },
        })
    }

    /// Credentials from the chain, cached until five minutes before they expire.
    async fn credentials(&self) -> Result<Credentials, Error> {
        let mut cached = self.0.cached.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + Duration::from_secs(300))
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let Some(provider) = &self.0.credentials else {
            return Err(Error::Credentials(CredentialsError::not_loaded(
                "no credentials provider is configured",
            )));
        };
        let c = provider
            .provide_credentials()
            .await
            .map_err(Error::Credentials)?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The Query-protocol POST of `body`, signed (see [`Client::signed_wire`]).
    #[cfg(test)]
    fn signed(&self, credentials: &Credentials, body: &str) -> Result<HttpRequest, Error> {
        let wire = Wire {
            body: body.to_owned(),
            content_type: FORM,
            target: None,
        };
        self.signed_wire(credentials, &wire)
    }

    /// The POST of `wire`, signed with SigV4 for the service in the region (the session token
    /// header included when the credentials carry one).
    fn signed_wire(&self, credentials: &Credentials, wire: &Wire) -> Result<HttpRequest, Error> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let region = self.0.region.as_deref().ok_or(Error::NoRegion)?;
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(self.0.service.signing)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::Signing(e.to_string()))?
            .into();
        let uri = match self.0.endpoint.trim_end_matches('/') {
            e if e.matches('/').count() > 2 => e.to_owned(),
            e => format!("{e}/"),
        };
        let body = wire.body.as_str();
        let mut headers = vec![("content-type", wire.content_type)];
        if let Some(t) = &wire.target {
            headers.push(("x-amz-target", t.as_str()));
        }
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| Error::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Error::Signing(e.to_string()))?
            .into_parts();
        let mut request = HttpRequest::new(SdkBody::from(body.to_owned()));
        request
            .set_method("POST")
            .and_then(|()| request.set_uri(uri.as_str()))
            .map_err(|e| Error::Signing(format!("endpoint {uri}: {e}")))?;
        let h = request.headers_mut();
        for (name, value) in headers {
            h.insert(name, value.to_owned());
        }
        h.insert(
            "user-agent",
            concat!("spotdrill/", env!("CARGO_PKG_VERSION")),
        );
        for (name, value) in instructions.headers() {
            h.insert(name.to_owned(), value.to_owned());
        }
        Ok(request)
    }
}

fn unexpected(status: u16, e: &aws_smithy_xml::decode::XmlDecodeError) -> Error {
    Error::Response {
        status,
        detail: format!("cannot read the XML: {e}"),
    }
}

#[cfg(test)]
mod tests;
