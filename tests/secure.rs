//! Secured connections end to end, against the local stack's TLS listeners
//! (started by `deploy/local/up.sh`, material made by `deploy/local/tls.sh`):
//! Kafka SASL_SSL with SCRAM on `$KAFKA_SASL_PORT` (9095), Kafka SSL with a
//! required client certificate on `$KAFKA_SSL_PORT` (9094), and ClickHouse
//! HTTPS with a password on `$CH_HTTPS_PORT` (8443). Everything is set in a
//! `tradewind.toml`, as a user of a managed Kafka and ClickHouse would, with
//! passwords in files. Wrong credentials, a wrong CA and a plaintext client
//! on a TLS port each fail fast with a message that names the problem and
//! never the password.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

mod common;
use common::{text, unique};

const PASSWORD: &str = "tradewind-secret";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.into())
}

fn tls_dir() -> PathBuf {
    std::env::var("TRADEWIND_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let stack = std::env::var("TRADEWIND_STACK_DIR")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.stack").into());
            PathBuf::from(stack).join("tls")
        })
}

fn sasl_brokers() -> String {
    format!("127.0.0.1:{}", env_or("KAFKA_SASL_PORT", "9095"))
}

fn ssl_brokers() -> String {
    format!("127.0.0.1:{}", env_or("KAFKA_SSL_PORT", "9094"))
}

fn https_url() -> String {
    format!("https://127.0.0.1:{}", env_or("CH_HTTPS_PORT", "8443"))
}

/// A scratch directory with the secrets in files, as a container would mount them.
struct Setup {
    dir: PathBuf,
    name: String,
}

impl Setup {
    fn new(tag: &str) -> Self {
        let name = unique(tag);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let tls = tls_dir();
        assert!(
            tls.join("ca.pem").exists(),
            "no TLS material in {}; run deploy/local/up.sh",
            tls.display()
        );
        for (file, secret) in [
            ("kafka-password", env_or("KAFKA_SASL_PASSWORD", PASSWORD)),
            ("clickhouse-password", env_or("CH_TLS_PASSWORD", PASSWORD)),
            ("wrong-password", "not-the-password".into()),
        ] {
            std::fs::write(dir.join(file), format!("{secret}\n")).unwrap();
        }
        Self { dir, name }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn tls(file: &str) -> String {
        tls_dir().join(file).display().to_string()
    }

    /// A config file: `kafka` and `clickhouse` are TOML lines of those
    /// sections (the security subsection goes in `kafka_security`).
    fn config(&self, file: &str, kafka: &str, kafka_security: &str, clickhouse: &str) -> PathBuf {
        let text = format!(
            "[kafka]\ntopic_prefix = \"{name}.\"\nconnect_timeout = \"5s\"\n{kafka}\n\
             [kafka.security]\n{kafka_security}\n\
             [clickhouse]\ndatabase = \"{name}\"\ntimeout = \"5s\"\n{clickhouse}\n\
             [aggregator]\ngroup_id = \"{name}-group\"\nlisten = \"127.0.0.1:0\"\n",
            name = self.name
        );
        let path = self.dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The secured setup that works: SCRAM-SHA-512 over TLS, HTTPS ClickHouse.
    fn good(&self) -> PathBuf {
        self.config(
            "tradewind.toml",
            &format!("brokers = \"{}\"", sasl_brokers()),
            &format!(
                "protocol = \"sasl_ssl\"\nca_file = \"{}\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
                 sasl_username = \"{}\"\nsasl_password_file = \"{}\"",
                Self::tls("ca.pem"),
                env_or("KAFKA_SASL_USER", "tradewind"),
                self.path("kafka-password")
            ),
            &self.clickhouse_lines(&https_url(), "ca.pem", "clickhouse-password"),
        )
    }

    fn clickhouse_lines(&self, url: &str, ca: &str, password_file: &str) -> String {
        let ca = if url.starts_with("https") {
            format!("ca_file = \"{}\"\n", Self::tls(ca))
        } else {
            String::new()
        };
        format!(
            "url = \"{url}\"\n{ca}user = \"{}\"\npassword_file = \"{}\"",
            env_or("CH_TLS_USER", "tradewind_tls"),
            self.path(password_file)
        )
    }
}

/// Runs `tradewind --config <config> args...` with no address from the
/// environment, so only the file decides.
fn run(config: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = common::tradewind_command(&[])
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TRADEWIND_KAFKA__BROKERS")
        .env_remove("TRADEWIND_CLICKHOUSE__URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("tradewind binary runs");
    (out, started.elapsed())
}

fn ok(config: &Path, args: &[&str]) -> String {
    let (out, _) = run(config, args);
    let msg = text(&out);
    assert!(out.status.success(), "tradewind {args:?} failed:\n{msg}");
    msg
}

/// Fails fast, names `problem` (any of the words), and shows no password.
fn fails(config: &Path, args: &[&str], problem: &[&str]) -> String {
    let (out, took) = run(config, args);
    let msg = text(&out);
    assert!(
        !out.status.success(),
        "tradewind {args:?} should fail:\n{msg}"
    );
    assert!(
        problem
            .iter()
            .any(|p| msg.to_lowercase().contains(&p.to_lowercase())),
        "the message should name the problem ({problem:?}):\n{msg}"
    );
    for secret in [PASSWORD, "not-the-password"] {
        assert!(
            !msg.contains(secret),
            "the message shows a password:\n{msg}"
        );
    }
    // connect_timeout and clickhouse.timeout are 5 s in these configs.
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{msg}");
    msg
}

#[test]
fn the_whole_pipeline_runs_over_sasl_ssl_and_https() {
    let s = Setup::new("secure");
    let cfg = s.good();
    // The effective config shows where secrets come from, never what they are.
    let shown = ok(&cfg, &["config"]);
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("sasl_password_file"), "{shown}");

    ok(&cfg, &["migrate"]);
    ok(
        &cfg,
        &[
            "simulate",
            "--count",
            "3000",
            "--start",
            "2026-11-11T00:00:00Z",
        ],
    );
    ok(&cfg, &["aggregate", "--exit-when-idle", "3s"]);
    let report = ok(&cfg, &["reconcile"]);
    assert!(report.trim_end().ends_with("OK"), "{report}");
    assert!(report.contains("aggregated"), "{report}");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let s = Setup::new("mtls");
    let ch = s.clickhouse_lines(&https_url(), "ca.pem", "clickhouse-password");
    let brokers = format!("brokers = \"{}\"", ssl_brokers());
    let with_cert = s.config(
        "with-cert.toml",
        &brokers,
        &format!(
            "protocol = \"ssl\"\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
            Setup::tls("ca.pem"),
            Setup::tls("client.pem"),
            Setup::tls("client.key")
        ),
        &ch,
    );
    ok(&with_cert, &["topics"]);
    let without = s.config(
        "without-cert.toml",
        &brokers,
        &format!("protocol = \"ssl\"\nca_file = \"{}\"", Setup::tls("ca.pem")),
        &ch,
    );
    fails(&without, &["topics"], &["ssl", "handshake", "certificate"]);
}

#[test]
fn wrong_kafka_credentials_ca_or_protocol_fail_clearly() {
    let s = Setup::new("badkafka");
    let ch = s.clickhouse_lines(&https_url(), "ca.pem", "clickhouse-password");
    let sasl = |ca: &str, password_file: &str| {
        format!(
            "protocol = \"sasl_ssl\"\nca_file = \"{}\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n\
             sasl_username = \"tradewind\"\nsasl_password_file = \"{}\"",
            Setup::tls(ca),
            s.path(password_file)
        )
    };
    let brokers = format!("brokers = \"{}\"", sasl_brokers());
    let wrong_password = s.config("pw.toml", &brokers, &sasl("ca.pem", "wrong-password"), &ch);
    fails(
        &wrong_password,
        &["topics"],
        &["authentication", "credentials"],
    );
    let wrong_ca = s.config(
        "ca.toml",
        &brokers,
        &sasl("other-ca.pem", "kafka-password"),
        &ch,
    );
    fails(
        &wrong_ca,
        &["topics"],
        &["certificate verify failed", "ca.location"],
    );
    let plaintext = s.config("plain.toml", &brokers, "protocol = \"plaintext\"", &ch);
    fails(&plaintext, &["topics"], &["\"ssl\" or \"sasl_ssl\""]);
    // ... and a TLS client on the plaintext listener.
    let plain_port = format!("brokers = \"{}\"", common::brokers());
    let tls_on_plain = s.config(
        "tls.toml",
        &plain_port,
        &sasl("ca.pem", "kafka-password"),
        &ch,
    );
    fails(
        &tls_on_plain,
        &["topics"],
        &["PLAINTEXT broker listener", "\"plaintext\""],
    );
    // A mistake in the settings themselves is caught before connecting.
    let half = s.config(
        "half.toml",
        &brokers,
        "protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"tradewind\"",
        &ch,
    );
    fails(&half, &["topics"], &["needs kafka.security.sasl_password"]);
}

#[test]
fn wrong_clickhouse_credentials_ca_or_scheme_fail_clearly() {
    let s = Setup::new("badch");
    let kafka = format!("brokers = \"{}\"", sasl_brokers());
    let sec = "protocol = \"plaintext\"";
    let cases = [
        (
            "pw.toml",
            s.clickhouse_lines(&https_url(), "ca.pem", "wrong-password"),
            &["password", "authentication"][..],
        ),
        (
            "ca.toml",
            s.clickhouse_lines(&https_url(), "other-ca.pem", "clickhouse-password"),
            &["certificate", "unknownissuer"][..],
        ),
        (
            "scheme.toml",
            s.clickhouse_lines(
                &https_url().replace("https://", "http://"),
                "ca.pem",
                "clickhouse-password",
            ),
            &["https"][..],
        ),
    ];
    for (file, ch, problem) in cases {
        let cfg = s.config(file, &kafka, sec, &ch);
        let msg = fails(&cfg, &["migrate"], problem);
        if file == "pw.toml" {
            // The server answered: that is a refusal, not "cannot reach".
            assert!(msg.contains("refused the request"), "{msg}");
        }
    }
    let no_scheme = s.config("noscheme.toml", &kafka, sec, "url = \"127.0.0.1:8123\"");
    fails(
        &no_scheme,
        &["migrate"],
        &["must start with http:// or https://"],
    );
}
