//! The harness every Tradewind test against real servers uses:
//! - [`brokers`] and [`clickhouse_url`]: the servers under test, from the
//!   same variables the services read (`TRADEWIND_KAFKA__BROKERS`,
//!   `TRADEWIND_CLICKHOUSE__URL`), defaulting to the local stack;
//! - [`scratch_name`]: a test's own name for topics, databases and groups,
//!   `tw_<test>_<run>`; making one first drops what earlier runs of the
//!   same test left behind (their databases and topics);
//! - [`Proc`]: a child process that is killed when it goes out of scope,
//!   so a failed assertion never leaves an aggregator or a server running.

use std::process::Child;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

pub fn brokers() -> String {
    std::env::var("TRADEWIND_KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn clickhouse_url() -> String {
    std::env::var("TRADEWIND_CLICKHOUSE__URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A name for this run of test `test`: `tw_<test>_<pid>_<nanos>`, unique
/// per run, so runs never see each other's data. Topics (`<name>.<stream>`)
/// and databases named after earlier runs of the same test are dropped
/// first.
pub fn scratch_name(test: &str) -> String {
    assert!(
        test.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "test names are [A-Za-z0-9_]: {test}"
    );
    drop_leftovers(test);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tw_{test}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// Whether `name` (a database, or a topic's prefix) belongs to a run of
/// `test`: `tw_<test>_<digits>_<digits>`, nothing more.
pub fn is_run_of(test: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("tw_{test}_")) else {
        return false;
    };
    let mut parts = rest.split('_');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Whether the run that made `name` (`tw_<test>_<pid>_<nanos>`) is a
/// process still alive: a concurrent `cargo test` keeps its data.
fn alive(name: &str) -> bool {
    let mut parts = name.rsplit('_');
    let _nanos = parts.next();
    parts
        .next()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Drops earlier runs' databases and topics, except those of a process
/// still running. Best effort: a server that is not up fails the test
/// later, with its own message.
fn drop_leftovers(test: &str) {
    // On a thread of its own: the caller may be inside a runtime already.
    let test = test.to_string();
    let _ = std::thread::spawn(move || drop_leftovers_now(&test)).join();
}

fn drop_leftovers_now(test: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for cleaning up");
    runtime.block_on(async {
        // Without row validation: the local server (18.16) lacks the
        // setting it needs.
        let ch = clickhouse::Client::default()
            .with_url(clickhouse_url())
            .with_validation(false);
        if let Ok(dbs) = ch
            .query("SELECT name FROM system.databases WHERE startsWith(name, ?)")
            .bind(format!("tw_{test}_"))
            .fetch_all::<String>()
            .await
        {
            for db in dbs.into_iter().filter(|d| is_run_of(test, d) && !alive(d)) {
                let _ = ch
                    .query(&format!("DROP DATABASE IF EXISTS `{db}`"))
                    .execute()
                    .await;
            }
        }
        let Ok(consumer) = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create::<BaseConsumer>()
        else {
            return;
        };
        let Ok(meta) = consumer.fetch_metadata(None, Duration::from_secs(5)) else {
            return;
        };
        let stale: Vec<String> = meta
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|t| {
                t.split_once('.')
                    .is_some_and(|(run, _)| is_run_of(test, run) && !alive(run))
            })
            .collect();
        if stale.is_empty() {
            return;
        }
        let Ok(admin) = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create::<AdminClient<DefaultClientContext>>()
        else {
            return;
        };
        let names: Vec<&str> = stale.iter().map(String::as_str).collect();
        let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
    });
}

/// A child process that is killed (SIGKILL) and reaped when dropped, unless
/// it has already exited. Derefs to [`Child`].
pub struct Proc(pub Child);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl From<Child> for Proc {
    fn from(c: Child) -> Self {
        Proc(c)
    }
}

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_a_test_are_told_from_other_tests() {
        assert!(is_run_of("fatal", "tw_fatal_123_456"));
        assert!(!is_run_of("fatal", "tw_fatal_write_123_456"));
        assert!(!is_run_of("fatal", "tw_fatal_123"));
        assert!(!is_run_of("fatal", "tw_fatalx_1_2"));
        assert!(!is_run_of("fatal", "tw_fatal_1_2_3"));
    }
}
