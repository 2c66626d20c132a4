use super::*;
use aws_config::{BehaviorVersion, Region};

fn config(endpoint: Option<&str>, token: Option<&str>) -> SdkConfig {
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI-secret",
        token.map(str::to_owned),
        None,
        "test",
    );
    let mut b = SdkConfig::builder()
        .region(Region::new("eu-west-1"))
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(creds));
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    b.build()
}

#[test]
fn the_endpoint_is_the_configured_url_else_the_regions() {
    assert_eq!(
        Client::new(&config(None, None)).endpoint(),
        "https://ec2.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        Client::new(&config(Some("http://127.0.0.1:5000"), None)).endpoint(),
        "http://127.0.0.1:5000"
    );
}

#[test]
fn a_signed_request_carries_the_session_token_and_never_the_secret() {
    let client = Client::new(&config(
        Some("http://127.0.0.1:5000"),
        Some("session-token-1"),
    ));
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI-secret",
        Some("session-token-1".into()),
        None,
        "t",
    );
    let r = client
        .signed(&creds, "Action=DescribeInstances&Version=2016-11-15")
        .unwrap();
    assert_eq!(r.method(), "POST");
    assert_eq!(r.uri(), "http://127.0.0.1:5000/");
    let h = r.headers();
    assert_eq!(h.get("x-amz-security-token"), Some("session-token-1"));
    let auth = h.get("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/eu-west-1/ec2/aws4_request"),
        "{auth}"
    );
    let all: String = h.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    assert!(!all.contains("wJalrXUtnFEMI-secret"), "{all}");
    let without = Credentials::new("AKIDEXAMPLE", "s", None, None, "t");
    let r = client.signed(&without, "x=1").unwrap();
    assert_eq!(r.headers().get("x-amz-security-token"), None);
}

#[test]
fn no_region_is_an_error_before_any_request() {
    let c = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .build();
    let creds = Credentials::new("a", "b", None, None, "t");
    assert!(matches!(
        Client::new(&c).signed(&creds, ""),
        Err(Error::NoRegion)
    ));
}

fn service(code: &str, status: u16) -> Error {
    Error::Service(ServiceError {
        code: code.into(),
        message: Some("m".into()),
        request_id: Some("r-1".into()),
        status,
    })
}

#[test]
fn throttling_5xx_and_timeouts_are_retried_refusals_are_not() {
    for e in [
        service("RequestLimitExceeded", 400),
        service("Throttling", 400),
        service("SlowDown", 503),
        service("Anything", 500),
        Error::Timeout(Duration::from_secs(1)),
        Error::Response {
            status: 502,
            detail: "<html>".into(),
        },
    ] {
        assert!(e.retryable(), "{e}");
    }
    for e in [
        service("UnauthorizedOperation", 403),
        service("DryRunOperation", 412),
        service("ExpiredToken", 400),
        service("InvalidInstanceID.NotFound", 400),
        Error::NoRegion,
    ] {
        assert!(!e.retryable(), "{e}");
    }
    assert_eq!(
        service("UnauthorizedOperation", 403).to_string(),
        "UnauthorizedOperation: m (HTTP 403, request id r-1)"
    );
}

#[test]
fn backoff_is_jittered_under_an_exponential_bound() {
    let a = Attempts {
        max: 5,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(10),
        attempt_timeout: None,
        operation_timeout: None,
    };
    for n in 1..=6 {
        let bound = Duration::from_secs(1 << (n - 1)).min(Duration::from_secs(10));
        for _ in 0..50 {
            assert!(
                a.backoff(n) < bound.max(Duration::from_nanos(1)),
                "attempt {n}"
            );
        }
    }
    let waits: std::collections::HashSet<Duration> = (0..20).map(|_| a.backoff(3)).collect();
    assert!(waits.len() > 1, "jitter varies: {waits:?}");
}
