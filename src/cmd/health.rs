//! `tradewind health`: a container health probe with no curl or wget in the
//! image. It asks a running service's own endpoint over HTTP and exits 0
//! only on `200 OK`: by default the aggregator's `/ready` on
//! `aggregator.listen` (ready = assigned partitions, ClickHouse writable);
//! with `--dashboard`, the dashboard's `/health` on `dashboard.listen`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::config::AppConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Probe the dashboard (`dashboard.listen`, `/health`) instead of the aggregator.
    #[arg(long)]
    pub dashboard: bool,
    /// Probe this URL instead, e.g. `http://127.0.0.1:9464/health`.
    #[arg(long, value_name = "URL", conflicts_with = "dashboard")]
    pub url: Option<String>,
    /// Give up after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub timeout: Duration,
}

pub fn run(cfg: &AppConfig, args: HealthArgs) -> Result<()> {
    let url = match (&args.url, args.dashboard) {
        (Some(u), _) => u.clone(),
        (None, true) => format!("http://{}/health", local(&cfg.dashboard.listen)),
        (None, false) => format!("http://{}/ready", local(&cfg.aggregator.listen)),
    };
    let (status, body) = get(&url, args.timeout).with_context(|| format!("probing {url}"))?;
    if status != 200 {
        bail!("{url} answered {status}: {}", body.trim());
    }
    println!("{}", body.trim());
    Ok(())
}

/// A listen address as a place to connect to: the wildcard means this host.
pub(crate) fn local(listen: &str) -> String {
    if let Some(port) = listen.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = listen.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        listen.to_string()
    }
}

/// One HTTP/1.0 GET; returns the status code and the body.
fn get(url: &str, timeout: Duration) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs can be probed")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .context("the address does not resolve")?;
    get_at(addr, authority, path, timeout)
}

/// One HTTP/1.0 GET of `path` from `addr` (`authority` is the Host
/// header); returns the status code and the body.
pub(crate) fn get_at(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("not an HTTP answer")?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn wildcard_listen_addresses_mean_this_host() {
        assert_eq!(local("0.0.0.0:9464"), "127.0.0.1:9464");
        assert_eq!(local("[::]:3000"), "[::1]:3000");
        assert_eq!(local("127.0.0.1:3000"), "127.0.0.1:3000");
    }
}
