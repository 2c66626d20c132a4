//! Kafka client settings shared by every part that talks to Kafka (the lag sampler, the lab).
//!
//! The SASL password is never stored here: only the name of the environment variable that holds
//! it, read at the moment a client is configured. Nothing in this module prints a secret.

use std::time::Duration;

use rdkafka::ClientConfig;

use crate::plan::{SaslMechanism, Security, SecurityProtocol};

/// Where Kafka is and how to reach it.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port,host:port`.
    pub brokers: String,
    pub security: Option<Security>,
    /// How long one request may take before the broker counts as unreachable.
    pub timeout: Duration,
}

/// Why a client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable `{0}` (the SASL password_env) is not set")]
    PasswordUnset(String),
    #[error("environment variable `{0}` (the SASL password_env) is not valid UTF-8")]
    PasswordNotUnicode(String),
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            security: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// A librdkafka configuration with the brokers, security and timeouts set.
    pub fn client_config(&self) -> Result<ClientConfig, SettingsError> {
        let mut config = ClientConfig::new();
        let timeout_ms = self.timeout.as_millis().max(1).to_string();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "spotdrill")
            .set("socket.timeout.ms", &timeout_ms)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            // Reconnect quickly when a broker comes back after an outage (a gap in the samples).
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("log_level", "3");
        if let Some(sec) = &self.security {
            config.set("security.protocol", protocol_name(sec.protocol));
            if let Some(sasl) = &sec.sasl {
                let password = match std::env::var(&sasl.password_env) {
                    Ok(p) => p,
                    Err(std::env::VarError::NotPresent) => {
                        return Err(SettingsError::PasswordUnset(sasl.password_env.clone()));
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(SettingsError::PasswordNotUnicode(sasl.password_env.clone()));
                    }
                };
                config
                    .set("sasl.mechanisms", mechanism_name(sasl.mechanism))
                    .set("sasl.username", &sasl.username)
                    .set("sasl.password", password);
            }
            if let Some(ca) = &sec.ca_file {
                config.set("ssl.ca.location", ca);
            }
        }
        Ok(config)
    }
}

pub fn protocol_name(p: SecurityProtocol) -> &'static str {
    match p {
        SecurityProtocol::Plaintext => "plaintext",
        SecurityProtocol::Ssl => "ssl",
        SecurityProtocol::SaslPlaintext => "sasl_plaintext",
        SecurityProtocol::SaslSsl => "sasl_ssl",
    }
}

pub fn mechanism_name(m: SaslMechanism) -> &'static str {
    match m {
        SaslMechanism::Plain => "PLAIN",
        SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
        SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
    }
}
