//! Where the AWS providers act: the account of the credentials (STS GetCallerIdentity), the
//! region and the endpoint. It names the cluster in lock identities, and `plan`, the run's
//! confirmation and `run_started` show it, so an operator sees which account a game day hits and
//! `--resume` refuses to continue a run in another one.

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};

/// The account, region and endpoint an AWS provider acts in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The 12-digit account of the credentials; `unknown` when GetCallerIdentity failed (then
    /// discovery fails too, with the cause).
    pub account: String,
    pub region: String,
    /// The endpoint the calls go to: `default` (AWS itself) unless `--endpoint-url` or
    /// `AWS_ENDPOINT_URL` name another (an emulator).
    pub endpoint: String,
    /// Why the account is unknown (GetCallerIdentity failed), when it is.
    #[serde(skip)]
    pub unknown_because: Option<String>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = self
            .unknown_because
            .as_ref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        write!(
            f,
            "AWS account {}{why}, region {}, endpoint {}",
            self.account, self.region, self.endpoint
        )
    }
}

/// What an unknown account is called.
pub const UNKNOWN: &str = "unknown";

/// The place a configuration acts in; the account from one GetCallerIdentity call (which needs
/// no permission: every identity may call it).
pub async fn place(config: &SdkConfig) -> Place {
    let (account, unknown_because) = match aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(out) => match out.account() {
            Some(a) => (a.to_owned(), None),
            None => (
                UNKNOWN.to_owned(),
                Some("GetCallerIdentity named no account".into()),
            ),
        },
        Err(e) => {
            let e = super::aws::call_error("GetCallerIdentity", &e);
            tracing::debug!(error = %e, "the AWS account is unknown");
            (UNKNOWN.to_owned(), Some(e.to_string()))
        }
    };
    Place {
        account,
        unknown_because,
        region: config
            .region()
            .map_or_else(|| UNKNOWN.to_owned(), ToString::to_string),
        endpoint: config.endpoint_url().unwrap_or("default").to_owned(),
    }
}
