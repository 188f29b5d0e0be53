//! `[kafka.security]`: how every Tradewind client (simulator producer,
//! aggregator consumer, DLQ producer, admin and reconcile) authenticates to
//! the brokers and encrypts the connection. The settings map onto
//! librdkafka's `security.protocol`, `ssl.*` and `sasl.*` properties, set
//! before `kafka.producer` / `kafka.consumer`, which can still override them.
//! Passwords are [`Secret`]s and may come from files (`*_file`).

use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use tradewind_secret::Secret;

/// librdkafka's `security.protocol`. Kafka's own spelling in capitals
/// (`SASL_SSL`, as managed services print it) is accepted too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    #[serde(alias = "SSL")]
    Ssl,
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl Protocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanisms Tradewind supports (librdkafka's `sasl.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Protocol,
    /// PEM file of the CA(s) that signed the brokers' certificates. Unset:
    /// the system's trust store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that require mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Passphrase of an encrypted `key_file`.
    pub key_password: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_password_file: Option<PathBuf>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with a SASL protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<Mechanism>,
    pub sasl_username: String,
    pub sasl_password: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_password_file: Option<PathBuf>,
}

/// A `[kafka.security]` setting that cannot work, found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "kafka.security.{key} is set but kafka.security.protocol is {protocol:?}, which {needs}"
    )]
    Unused {
        key: &'static str,
        protocol: Protocol,
        needs: &'static str,
    },
    #[error("kafka.security.protocol {protocol:?} needs kafka.security.{key}")]
    Missing {
        key: &'static str,
        protocol: Protocol,
    },
    #[error(
        "kafka.security.cert_file and kafka.security.key_file go together; set both or neither"
    )]
    HalfPair,
    #[error("kafka.security.{key} {path}")]
    File {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] tradewind_secret::Error),
}

impl SecurityConfig {
    /// Loads `*_file` secrets and checks that the settings fit together and
    /// that every named file can be read, so a mistake is one clear error
    /// at start-up rather than a handshake failure later.
    pub fn resolve(&mut self) -> Result<(), SecurityError> {
        self.key_password.resolve(
            self.key_password_file.as_deref(),
            "kafka.security.key_password",
        )?;
        self.sasl_password.resolve(
            self.sasl_password_file.as_deref(),
            "kafka.security.sasl_password",
        )?;
        let p = self.protocol;
        let unused = |key, needs| {
            Err(SecurityError::Unused {
                key,
                protocol: p,
                needs,
            })
        };
        if !p.tls() {
            for (key, set) in [
                ("ca_file", self.ca_file.is_some()),
                ("cert_file", self.cert_file.is_some()),
                ("key_file", self.key_file.is_some()),
                ("key_password", !self.key_password.is_empty()),
            ] {
                if set {
                    return unused(key, "does not use TLS (use ssl or sasl_ssl)");
                }
            }
        }
        if !p.sasl() {
            for (key, set) in [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("sasl_username", !self.sasl_username.is_empty()),
                ("sasl_password", !self.sasl_password.is_empty()),
            ] {
                if set {
                    return unused(key, "does not use SASL (use sasl_plaintext or sasl_ssl)");
                }
            }
        } else {
            for (key, missing) in [
                ("sasl_mechanism", self.sasl_mechanism.is_none()),
                ("sasl_username", self.sasl_username.is_empty()),
                ("sasl_password", self.sasl_password.is_empty()),
            ] {
                if missing {
                    return Err(SecurityError::Missing { key, protocol: p });
                }
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(SecurityError::HalfPair);
        }
        for (key, path) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                std::fs::File::open(path).map_err(|source| SecurityError::File {
                    key,
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Sets the librdkafka properties these settings stand for.
    pub fn apply(&self, c: &mut ClientConfig) {
        c.set("security.protocol", self.protocol.as_librdkafka());
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        if let Some(p) = &self.ca_file {
            c.set("ssl.ca.location", path(p));
        }
        if let Some(p) = &self.cert_file {
            c.set("ssl.certificate.location", path(p));
        }
        if let Some(p) = &self.key_file {
            c.set("ssl.key.location", path(p));
        }
        if !self.key_password.is_empty() {
            c.set("ssl.key.password", self.key_password.expose());
        }
        if let Some(m) = self.sasl_mechanism {
            c.set("sasl.mechanisms", m.as_librdkafka())
                .set("sasl.username", &self.sasl_username)
                .set("sasl.password", self.sasl_password.expose());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SecurityConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sasl_ssl_maps_onto_librdkafka() {
        let mut s = parse(
            "protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
             sasl_username = \"app\"\nsasl_password = \"pw\"\n",
        );
        s.resolve().unwrap();
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("app"));
        assert_eq!(c.get("sasl.password"), Some("pw"));
        assert!(!format!("{s:?}").contains("pw\""));
    }

    #[test]
    fn kafka_capitals_are_accepted() {
        assert_eq!(
            parse("protocol = \"SASL_SSL\"\n").protocol,
            Protocol::SaslSsl
        );
        assert_eq!(parse("protocol = \"SSL\"\n").protocol, Protocol::Ssl);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text: &str| parse(text).resolve().unwrap_err().to_string();
        assert!(err(
            "protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n"
        )
        .contains("needs kafka.security.sasl_password"));
        assert!(err("sasl_username = \"u\"\n").contains("does not use SASL"));
        assert!(err("ca_file = \"/ca.pem\"\n").contains("does not use TLS"));
        assert!(err("protocol = \"ssl\"\ncert_file = \"/c.pem\"\n").contains("set both or neither"));
        assert!(
            err("protocol = \"ssl\"\nca_file = \"/nonexistent/ca.pem\"\n")
                .contains("kafka.security.ca_file /nonexistent/ca.pem")
        );
        let bad: Result<SecurityConfig, _> = toml::from_str("sasl_mechanism = \"GSSAPI\"\n");
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("SCRAM-SHA-256"), "{msg}");
    }
}

/// librdkafka's `builtin.features`: what the linked library can do.
pub fn builtin_features() -> String {
    ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .unwrap_or_default()
}

#[cfg(test)]
mod features {
    #[test]
    fn librdkafka_has_tls_and_sasl() {
        let features = super::builtin_features();
        for f in ["ssl", "sasl_plain", "sasl_scram"] {
            assert!(
                features.split(',').any(|x| x == f),
                "{f} missing: {features}"
            );
        }
        eprintln!("builtin.features = {features}");
    }
}
