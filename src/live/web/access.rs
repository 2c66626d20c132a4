//! Who may read the live page. On a loopback address anyone on this machine may (it is
//! read-only), but only through a loopback host name, so a web page elsewhere cannot read it by
//! pointing a DNS name at 127.0.0.1. Bound anywhere else, every request must carry the token from
//! [`TOKEN_ENV`] (`?token=` or `Authorization: Bearer …`), and without one set the page refuses
//! to start.

use std::net::{SocketAddr, ToSocketAddrs};

/// The environment variable holding the token viewers must give off loopback.
pub const TOKEN_ENV: &str = "SPOTDRILL_WEB_TOKEN";
/// Shorter tokens are refused: they are guessed too easily.
pub const TOKEN_MIN: usize = 16;

/// Why `--web` cannot start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("--web {addr}: not an address to listen on: {reason}")]
    Address { addr: String, reason: String },
    #[error(
        "--web {addr}: {ip} is not a loopback address, and ${TOKEN_ENV} is not set: set it to \
         a token of at least {TOKEN_MIN} characters that viewers give (?token= or \
         Authorization: Bearer), or listen on 127.0.0.1"
    )]
    NoToken { addr: String, ip: String },
    #[error("--web {addr}: ${TOKEN_ENV} is shorter than {TOKEN_MIN} characters")]
    ShortToken { addr: String },
}

/// The rule for one listening address.
#[derive(Clone, Debug)]
pub struct Access {
    pub addr: SocketAddr,
    /// Required on every request when set.
    token: Option<String>,
}

/// What a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No token or a wrong one (401).
    NoToken,
    /// A loopback page asked for under another host name (403).
    ForeignHost,
}

impl Access {
    /// The rule for `addr` (`127.0.0.1:8080`, `localhost:0`, `0.0.0.0:8080`) with the token
    /// from the environment, if any. A set token is required even on loopback.
    pub fn new(addr: &str, token: Option<String>) -> Result<Access, AccessError> {
        let bad = |reason: String| AccessError::Address {
            addr: addr.to_owned(),
            reason,
        };
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| bad(format!("{e} (give HOST:PORT, e.g. 127.0.0.1:8080)")))?
            .collect();
        let first = *resolved
            .first()
            .ok_or_else(|| bad("it resolves to nothing".into()))?;
        let token = token.filter(|t| !t.is_empty());
        match (&token, resolved.iter().all(|a| a.ip().is_loopback())) {
            (Some(t), _) if t.chars().count() < TOKEN_MIN => Err(AccessError::ShortToken {
                addr: addr.to_owned(),
            }),
            (None, false) => Err(AccessError::NoToken {
                addr: addr.to_owned(),
                ip: resolved
                    .iter()
                    .find(|a| !a.ip().is_loopback())
                    .map_or_else(String::new, |a| a.ip().to_string()),
            }),
            _ => Ok(Access { addr: first, token }),
        }
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether a request may be answered: its query string, `Authorization` and `Host` headers.
    pub fn check(
        &self,
        query: Option<&str>,
        authorization: Option<&str>,
        host: Option<&str>,
    ) -> Verdict {
        let Some(token) = &self.token else {
            return match host.is_none_or(is_loopback_host) {
                true => Verdict::Allowed,
                false => Verdict::ForeignHost,
            };
        };
        let from_query = query.into_iter().flat_map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        });
        let from_header = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        let given: Vec<String> = from_query.chain(from_header).collect();
        match given.iter().any(|g| same(g.as_bytes(), token.as_bytes())) {
            true => Verdict::Allowed,
            false => Verdict::NoToken,
        }
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-xyz";

    #[test]
    fn loopback_needs_no_token_but_a_loopback_host_name() {
        let a = Access::new("127.0.0.1:0", None).unwrap();
        assert!(!a.needs_token());
        assert_eq!(
            a.check(None, None, Some("127.0.0.1:8080")),
            Verdict::Allowed
        );
        assert_eq!(
            a.check(None, None, Some("localhost:8080")),
            Verdict::Allowed
        );
        assert_eq!(a.check(None, None, Some("[::1]:8080")), Verdict::Allowed);
        assert_eq!(
            a.check(None, None, Some("evil.example:8080")),
            Verdict::ForeignHost
        );
    }

    #[test]
    fn elsewhere_refuses_to_start_without_a_long_enough_token() {
        assert!(matches!(
            Access::new("0.0.0.0:0", None),
            Err(AccessError::NoToken { ip, .. }) if ip == "0.0.0.0"
        ));
        assert!(matches!(
            Access::new("0.0.0.0:0", Some(String::new())),
            Err(AccessError::NoToken { .. })
        ));
        assert!(matches!(
            Access::new("0.0.0.0:0", Some("short".into())),
            Err(AccessError::ShortToken { .. })
        ));
        assert!(matches!(
            Access::new("nonsense", None),
            Err(AccessError::Address { .. })
        ));
    }

    #[test]
    fn a_token_is_taken_from_the_query_or_the_bearer_header_and_nothing_else() {
        let a = Access::new("0.0.0.0:0", Some(TOKEN.into())).unwrap();
        assert!(a.needs_token());
        let q = format!("x=1&token={TOKEN}");
        assert_eq!(a.check(Some(&q), None, None), Verdict::Allowed);
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(a.check(None, Some(&bearer), None), Verdict::Allowed);
        assert_eq!(a.check(None, None, Some("localhost")), Verdict::NoToken);
        assert_eq!(
            a.check(Some("token=0123456789abcdef-xy"), None, None),
            Verdict::NoToken
        );
        assert_eq!(a.check(None, Some(TOKEN), None), Verdict::NoToken);
        // Percent-encoded in the query is the same token.
        let enc = format!("token={}", TOKEN.replace('-', "%2D"));
        assert_eq!(a.check(Some(&enc), None, None), Verdict::Allowed);
    }
}
