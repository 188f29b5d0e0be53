//! The service configuration shared by every `tradewind` subcommand, layered
//! from lowest to highest precedence: built-in defaults, the TOML file
//! (`--config`, or `./tradewind.toml` when present), `TRADEWIND_<SECTION>__<KEY>`
//! environment variables (e.g. `TRADEWIND_KAFKA__BROKERS`), then flags.
//! Every struct denies unknown keys, so a typo fails loudly.

use std::path::Path;

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
pub use tradewind_aggregator::AggregatorConfig;
use tradewind_clickhouse::ClickHouseConfig;
use tradewind_core::CoreConfig;
pub use tradewind_dashboard::DashboardConfig;
use tradewind_kafka::KafkaConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub core: CoreConfig,
    pub aggregator: AggregatorConfig,
    pub dashboard: DashboardConfig,
}

/// Flag values that override the file and the environment.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigFlags {
    /// Config file (TOML). Defaults to ./tradewind.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Kafka bootstrap servers (kafka.brokers).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub brokers: Option<String>,
    /// Prefix of every topic name (kafka.topic_prefix).
    #[arg(long, global = true, value_name = "PREFIX")]
    pub topic_prefix: Option<String>,
    /// ClickHouse HTTP URL (clickhouse.url).
    #[arg(long, global = true, value_name = "URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database (clickhouse.database).
    #[arg(long, global = true, value_name = "NAME")]
    pub database: Option<String>,
}

impl AppConfig {
    /// The dashboard's part of the configuration.
    pub fn dashboard_settings(&self) -> tradewind_dashboard::Settings {
        tradewind_dashboard::Settings {
            dashboard: self.dashboard.clone(),
            clickhouse: self.clickhouse.clone(),
            sla_domestic: self.core.sla_domestic,
            sla_international: self.core.sla_international,
        }
    }

    /// The aggregator's part of the configuration.
    pub fn aggregator_settings(&self) -> tradewind_aggregator::Settings {
        tradewind_aggregator::Settings {
            kafka: self.kafka.clone(),
            clickhouse: self.clickhouse.clone(),
            core: self.core.clone(),
            aggregator: self.aggregator.clone(),
            exit_when_idle: None,
        }
    }

    pub fn load(flags: &ConfigFlags) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(AppConfig::default()));
        match &flags.config {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                fig = fig.merge(Toml::file_exact(path));
            }
            None if Path::new("tradewind.toml").exists() => {
                fig = fig.merge(Toml::file_exact("tradewind.toml"))
            }
            None => {}
        }
        // Only nested keys (`TRADEWIND_KAFKA__BROKERS`) are config; other
        // TRADEWIND_* variables belong to scripts and are left alone.
        fig = fig.merge(
            Env::prefixed("TRADEWIND_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        let overrides = [
            ("kafka.brokers", &flags.brokers),
            ("kafka.topic_prefix", &flags.topic_prefix),
            ("clickhouse.url", &flags.clickhouse_url),
            ("clickhouse.database", &flags.database),
        ];
        for (key, value) in overrides {
            if let Some(v) = value {
                fig = fig.merge(Serialized::default(key, v));
            }
        }
        warn_about_stray_variables();
        let mut cfg: Self = fig.extract().context("invalid configuration")?;
        cfg.kafka
            .security
            .resolve()
            .context("invalid configuration")?;
        cfg.clickhouse.resolve().context("invalid configuration")?;
        Ok(cfg)
    }
}

/// `TRADEWIND_*` variables that belong to scripts and tests, not to config.
const SCRIPT_VARIABLES: &[&str] = &[
    "TRADEWIND_STACK_DIR",
    "TRADEWIND_TLS_DIR",
    "TRADEWIND_STACK_TIMEOUT",
    "TRADEWIND_SKIP_MODERN_SQL",
];

/// Config variables need a double underscore between section and key
/// (`TRADEWIND_KAFKA__BROKERS`); a nested variable that names no key is an
/// error (every section denies unknown keys). A variable with single
/// underscores only is ignored, so it gets a warning instead.
fn warn_about_stray_variables() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if let Some(rest) = name.strip_prefix("TRADEWIND_") {
            if !is_config_or_script_variable(name, rest) {
                tracing::warn!(
                    variable = name,
                    "this TRADEWIND_ variable matches no setting and is ignored; settings use \
                     a double underscore between section and key, e.g. TRADEWIND_KAFKA__BROKERS"
                );
            }
        }
    }
}

fn is_config_or_script_variable(name: &str, rest: &str) -> bool {
    rest.contains("__")
        || SCRIPT_VARIABLES.contains(&name)
        || rest.starts_with("TEST_")
        || rest.starts_with("BENCH_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn flags_override_and_unknown_keys_fail() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tw.toml",
                "[kafka]\nbrokers = \"file:1\"\ntopic_prefix = \"x.\"\n",
            )?;
            jail.set_env("TRADEWIND_KAFKA__BROKERS", "env:1");
            let flags = ConfigFlags {
                config: Some("tw.toml".into()),
                ..Default::default()
            };
            let cfg = AppConfig::load(&flags).unwrap();
            assert_eq!(cfg.kafka.brokers, "env:1");
            assert_eq!(cfg.kafka.topic_prefix, "x.");
            let flags = ConfigFlags {
                brokers: Some("flag:1".into()),
                ..flags
            };
            assert_eq!(AppConfig::load(&flags).unwrap().kafka.brokers, "flag:1");

            jail.create_file("bad.toml", "[kafka]\nbrokrs = \"x\"\n")?;
            let flags = ConfigFlags {
                config: Some("bad.toml".into()),
                ..Default::default()
            };
            let err = format!("{:#}", AppConfig::load(&flags).unwrap_err());
            assert!(err.contains("brokrs"), "{err}");
            Ok(())
        });
    }
}
