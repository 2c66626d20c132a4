//! One HTTP client for the Storm UI, the Mesos master and Marathon: blocking (ureq; call it
//! through `tokio::task::spawn_blocking` from async code), with connect and overall timeouts, a
//! few retries with backoff on connection errors and 5xx answers, basic or bearer auth whose
//! secrets come from environment variables, and TLS with a custom CA file.
//!
//! Every error names the URL it was about; no error, `Debug` or `Display` output contains a
//! secret (credentials in a URL's user-info part are cut out too).

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// The largest response body read (a big cluster's `/master/state` runs to megabytes).
const MAX_BODY: u64 = 256 * 1024 * 1024;
/// How much of an error page an error keeps.
const ERROR_SNIPPET: usize = 200;

/// How to reach one API: timeouts, retries, credentials and trust.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Time to set up a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time for one request, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// Further attempts after a connection error or a 5xx answer (not after a timeout).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    pub auth: AuthSpec,
    /// PEM file with the CA certificates to trust for `https://` (instead of the built-in roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(200),
            auth: AuthSpec::None,
            ca_file: None,
        }
    }
}

/// Credentials as configured: secrets are named by environment variable, never written inline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthSpec {
    #[default]
    None,
    /// HTTP basic auth (Storm UI behind a proxy, Mesos master and Marathon with HTTP auth).
    Basic {
        username: String,
        password_env: String,
    },
    /// `Authorization: Bearer <token>` (DC/OS ACS tokens).
    Bearer { token_env: String },
}

/// A secret read from the environment: shown as `<redacted>` everywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials resolved from the environment.
#[derive(Clone, Debug)]
pub enum Auth {
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
}

impl Auth {
    /// The `Authorization` header value.
    fn header(&self) -> String {
        match self {
            Auth::Basic { username, password } => format!(
                "Basic {}",
                base64(format!("{username}:{}", password.expose()).as_bytes())
            ),
            Auth::Bearer { token } => format!("Bearer {}", token.expose()),
        }
    }
}

/// What went wrong talking to a health API. The URL never carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("GET {url}: HTTP {status}{}", snippet_suffix(.body))]
    Status {
        url: String,
        status: u16,
        /// The start of the body (an error page), whitespace collapsed.
        body: String,
    },
    #[error("GET {url}: no complete answer within {}", humantime::format_duration(*.after))]
    Timeout { url: String, after: Duration },
    #[error("GET {url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("GET {url}: invalid JSON at line {line} column {column}: {reason}")]
    Json {
        url: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("GET {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: not a usable base URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("credentials for {url}: environment variable {var} is not set")]
    MissingSecret { url: String, var: String },
    #[error("CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("{what}: the probe's deadline passed")]
    Deadline { what: String },
}

fn snippet_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl HealthError {
    /// Worth another attempt: the server was unreachable, failed (5xx) or cut the answer short.
    fn retryable(&self) -> bool {
        match self {
            HealthError::Status { status, .. } => *status >= 500,
            HealthError::Connect { .. } | HealthError::Transport { .. } => true,
            _ => false,
        }
    }

    /// The URL the error is about, if it is about one.
    pub fn url(&self) -> Option<&str> {
        match self {
            HealthError::Status { url, .. }
            | HealthError::Timeout { url, .. }
            | HealthError::Connect { url, .. }
            | HealthError::Json { url, .. }
            | HealthError::Transport { url, .. }
            | HealthError::BadUrl { url, .. }
            | HealthError::MissingSecret { url, .. } => Some(url),
            HealthError::CaFile { .. } | HealthError::Deadline { .. } => None,
        }
    }
}

/// A client for one API base URL (`http://nimbus:8080`, `https://master:5050`); cheap to clone.
#[derive(Clone)]
pub struct ApiClient(Arc<Inner>);

struct Inner {
    /// Without a trailing slash and without user-info.
    base: String,
    agent: ureq::Agent,
    auth: Option<Auth>,
    settings: HttpSettings,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.0.base)
            .field("auth", &self.0.auth)
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client whose secrets come from the process environment.
    pub fn new(base: &str, settings: &HttpSettings) -> Result<ApiClient, HealthError> {
        ApiClient::with_env(base, settings, |var| std::env::var(var).ok())
    }

    /// A client whose secrets come from `env` (a variable name → its value).
    pub fn with_env(
        base: &str,
        settings: &HttpSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiClient, HealthError> {
        let (base, userinfo) = split_userinfo(base.trim_end_matches('/'));
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(HealthError::BadUrl {
                url: base,
                reason: "expected http:// or https://".into(),
            });
        }
        let secret = |var: &str| {
            env(var)
                .map(Secret)
                .ok_or_else(|| HealthError::MissingSecret {
                    url: base.clone(),
                    var: var.to_owned(),
                })
        };
        let auth = match &settings.auth {
            AuthSpec::None => userinfo.map(|(username, password)| Auth::Basic {
                username,
                password: Secret(password),
            }),
            AuthSpec::Basic {
                username,
                password_env,
            } => Some(Auth::Basic {
                username: username.clone(),
                password: secret(password_env)?,
            }),
            AuthSpec::Bearer { token_env } => Some(Auth::Bearer {
                token: secret(token_env)?,
            }),
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.timeout))
            .user_agent(concat!("spotdrill/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(ca_certs(path)?)))
                    .build(),
            );
        }
        Ok(ApiClient(Arc::new(Inner {
            base,
            agent: config.build().into(),
            auth,
            settings: settings.clone(),
        })))
    }

    /// The base URL (without credentials).
    pub fn base(&self) -> &str {
        &self.0.base
    }

    /// The full URL of a path (`/api/v1/cluster/summary`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0.base)
    }

    /// GET `path` and parse its JSON, retrying connection errors and 5xx answers with backoff,
    /// never past `until`.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        until: Instant,
    ) -> Result<T, HealthError> {
        let url = self.url(path);
        let mut backoff = self.0.settings.backoff;
        let mut attempt = 0;
        loop {
            let err = match self.get_once(&url, until) {
                Ok(body) => return parse(&url, &body),
                Err(e) => e,
            };
            attempt += 1;
            let retry_at = Instant::now() + backoff;
            if !err.retryable() || attempt > self.0.settings.retries || retry_at >= until {
                return Err(err);
            }
            tracing::debug!(url = %url, attempt, error = %err, "health probe retries");
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }

    fn get_once(&self, url: &str, until: Instant) -> Result<Vec<u8>, HealthError> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HealthError::Deadline {
                what: format!("GET {url}"),
            });
        }
        let timeout = self.0.settings.timeout.min(left);
        let mut request = self
            .0
            .agent
            .get(url)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(timeout))
            .build();
        if let Some(auth) = &self.0.auth {
            request = request.header("Authorization", auth.header());
        }
        let mut response = request.call().map_err(|e| transport(url, e, timeout))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let read = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut body);
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(HealthError::Status {
                url: url.to_owned(),
                status,
                body: snippet(&text),
            });
        }
        read.map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => HealthError::Timeout {
                url: url.to_owned(),
                after: timeout,
            },
            _ => HealthError::Transport {
                url: url.to_owned(),
                reason: format!("reading the body: {e}"),
            },
        })?;
        Ok(body)
    }
}

fn parse<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, HealthError> {
    serde_json::from_slice(body).map_err(|e| HealthError::Json {
        url: url.to_owned(),
        line: e.line(),
        column: e.column(),
        reason: json_reason(&e),
    })
}

/// serde_json's message without its trailing " at line L column C" (the error carries both).
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn transport(url: &str, e: ureq::Error, timeout: Duration) -> HealthError {
    let url = url.to_owned();
    match e {
        ureq::Error::Timeout(_) => HealthError::Timeout {
            url,
            after: timeout,
        },
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => HealthError::Timeout {
            url,
            after: timeout,
        },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => HealthError::Connect {
            url,
            reason: e.to_string(),
        },
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::NotConnected
            ) =>
        {
            HealthError::Connect {
                url,
                reason: io.to_string(),
            }
        }
        other => HealthError::Transport {
            url,
            reason: other.to_string(),
        },
    }
}

/// The start of an error page: tags dropped, whitespace collapsed, at most [`ERROR_SNIPPET`] chars.
fn snippet(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            _ => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(ERROR_SNIPPET) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

/// A URL as it may be shown: without `user:password@`.
pub fn without_credentials(url: &str) -> String {
    split_userinfo(url).0
}

/// `http://user:pw@host:port/x` → (`http://host:port/x`, Some((user, pw))), parsed by the `url`
/// crate: percent-escapes in the user-info are decoded (`p%2Fw` is `p/w`). A text the parser
/// refuses is shown with everything up to its last `@` cut out (a password with an unescaped
/// `/` looks like a path to the parser, so no `@` part of such a text is ever shown).
fn split_userinfo(text: &str) -> (String, Option<(String, String)>) {
    let Ok(mut url) = url::Url::parse(text) else {
        return (cut_at_last_at(text), None);
    };
    if url.username().is_empty() && url.password().is_none() {
        return (cut_at_last_at(text), None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let shown = url.as_str().trim_end_matches('/').to_owned();
    (shown, Some((user, password)))
}

fn cut_at_last_at(text: &str) -> String {
    match (text.split_once("://"), text.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &text[at + 1..]),
        _ => text.to_owned(),
    }
}

fn ca_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, HealthError> {
    let err = |reason: String| HealthError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| err(e.to_string()))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// Standard base64 with padding (for the basic-auth header).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn user_info_is_cut_out_of_urls() {
        assert_eq!(
            split_userinfo("http://svc:s3cret@master:5050/x@y"),
            (
                "http://master:5050/x@y".to_owned(),
                Some(("svc".to_owned(), "s3cret".to_owned()))
            )
        );
        assert_eq!(
            split_userinfo("http://nimbus:8080"),
            ("http://nimbus:8080".to_owned(), None)
        );
        // Percent-escapes in the user-info are decoded; a password with a bare `/` is not
        // user-info to a URL parser, and nothing up to its `@` is shown.
        assert_eq!(
            split_userinfo("http://svc:Ab%2FCd3f@host:8080/"),
            (
                "http://host:8080".to_owned(),
                Some(("svc".to_owned(), "Ab/Cd3f".to_owned()))
            )
        );
        assert_eq!(
            split_userinfo("http://svc:Ab/Cd3f@host"),
            ("http://host".to_owned(), None)
        );
        assert_eq!(without_credentials("not a url@x"), "not a url@x");
        let client = ApiClient::with_env(
            "http://svc:s3cret@master:5050/",
            &HttpSettings::default(),
            |_| None,
        )
        .unwrap();
        assert_eq!(client.base(), "http://master:5050");
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn error_pages_become_short_snippets() {
        let page = "<html><head><title>Error 500</title></head>\n<body><h2>HTTP ERROR 500</h2>\n<p>Problem accessing /api/v1/cluster/summary.</p></body></html>";
        assert_eq!(
            snippet(page),
            "Error 500 HTTP ERROR 500 Problem accessing /api/v1/cluster/summary."
        );
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), ERROR_SNIPPET + 1);
    }

    #[test]
    fn a_missing_secret_names_its_variable_not_a_value() {
        let settings = HttpSettings {
            auth: AuthSpec::Bearer {
                token_env: "MARATHON_TOKEN".into(),
            },
            ..HttpSettings::default()
        };
        let err = ApiClient::with_env("http://marathon:8080", &settings, |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credentials for http://marathon:8080: environment variable MARATHON_TOKEN is not set"
        );
        let err = ApiClient::with_env("ftp://x", &HttpSettings::default(), |_| None).unwrap_err();
        assert!(matches!(err, HealthError::BadUrl { .. }), "{err}");
    }
}
