//! Secrets in configuration (passwords, key passphrases). A [`Secret`] is
//! read from config like a string but never shown: `Debug`, `Display` and
//! `Serialize` all print [`REDACTED`], so `tradewind config`, log lines and
//! error messages cannot leak it. The one way to the value is
//! [`Secret::expose`], called only where a client library needs it.
//!
//! Every secret `x` has a sibling key `x_file` naming a file that holds it,
//! the way container secrets are mounted (`/run/secrets/...`); see
//! [`Secret::resolve`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// A configured secret; empty when not set.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{key} and {key}_file are both set; set one of them")]
    Both { key: String },
    #[error("cannot read {key}_file {path}")]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the client library that needs it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Loads the secret from `file` when one is given: its content with one
    /// trailing newline (`\n` or `\r\n`) removed, as `echo` and editors
    /// leave it. `key` names the setting in errors (e.g. `clickhouse.password`).
    pub fn resolve(&mut self, file: Option<&Path>, key: &str) -> Result<(), Error> {
        let Some(path) = file else { return Ok(()) };
        if !self.is_empty() {
            return Err(Error::Both { key: key.into() });
        }
        let mut text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            key: key.into(),
            path: path.to_path_buf(),
            source,
        })?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        self.0 = text;
        Ok(())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() { "" } else { REDACTED })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.is_empty() { "" } else { REDACTED })
    }
}

/// Whether a free-form property name (a librdkafka key in `kafka.producer`,
/// say) holds a secret, so that its value is shown redacted.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

/// Replaces the value of every key that [`is_secret_key`] in a string map.
pub fn redact_map<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> std::collections::BTreeMap<String, String> {
    map.into_iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) && !v.is_empty() {
                REDACTED.to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// `url` with any password in its user-info part replaced, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:{REDACTED}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug)]
    struct Cfg {
        password: Secret,
    }

    #[test]
    fn never_shown() {
        let c: Cfg = toml::from_str("password = \"hunter2\"").unwrap();
        assert_eq!(c.password.expose(), "hunter2");
        for shown in [
            format!("{c:?}"),
            format!("{}", c.password),
            toml::to_string(&c).unwrap(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        let empty = Cfg {
            password: Secret::default(),
        };
        assert_eq!(toml::to_string(&empty).unwrap().trim(), "password = \"\"");
    }

    #[test]
    fn read_from_a_file() {
        let dir = std::env::temp_dir().join(format!("tw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        let mut s = Secret::default();
        s.resolve(Some(&path), "x.password").unwrap();
        assert_eq!(s.expose(), "s3cret");
        let err = s.resolve(Some(&path), "x.password").unwrap_err();
        assert!(err.to_string().contains("x.password_file are both set"));
        let mut s = Secret::default();
        let err = s
            .resolve(Some(&dir.join("missing")), "x.password")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read x.password_file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redacts_keys_and_urls() {
        assert!(is_secret_key("sasl.password"));
        assert!(is_secret_key("ssl.key.password"));
        assert!(!is_secret_key("sasl.username"));
        assert_eq!(
            redact_url("https://u:p%40ss@ch.example:8443/?db=x"),
            format!("https://u:{REDACTED}@ch.example:8443/?db=x")
        );
        assert_eq!(redact_url("http://127.0.0.1:8123"), "http://127.0.0.1:8123");
    }
}
