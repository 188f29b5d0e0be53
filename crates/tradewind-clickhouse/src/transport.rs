//! The HTTP(S) transport under the `clickhouse` client. `http://` URLs go
//! over plain TCP; `https://` URLs over TLS (rustls with the `ring`
//! provider), verifying the server against `clickhouse.ca_file` when it is
//! set, otherwise against the system's trust store. A CA file replaces the
//! system store rather than adding to it, as Kafka's `ssl.ca.location` does,
//! so a private CA is trusted only where it is named.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::{ClickHouseConfig, Error, Result};

/// Idle connections are closed before ClickHouse's own 3 s keep-alive does.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// A `clickhouse` client over the transport `cfg` asks for: plain TCP for
/// an `http://` URL, TLS for `https://`.
pub(crate) fn client(cfg: &ClickHouseConfig) -> Result<clickhouse::Client> {
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_connect_timeout(Some(cfg.timeout));
    let mut pool = HyperClient::builder(TokioExecutor::new());
    pool.pool_idle_timeout(POOL_IDLE_TIMEOUT);
    if !cfg.url.starts_with("https://") {
        return Ok(clickhouse::Client::with_http_client(pool.build(http)));
    }
    http.enforce_http(false);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = hyper_rustls::HttpsConnectorBuilder::new();
    let tls = match &cfg.ca_file {
        Some(path) => tls.with_tls_config(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Tls(e.to_string()))?
                .with_root_certificates(roots_from(path)?)
                .with_no_client_auth(),
        ),
        None => tls
            .with_provider_and_native_roots(provider)
            .map_err(|e| Error::Tls(format!("loading the system's CA certificates: {e}")))?,
    };
    let connector = tls.https_only().enable_http1().wrap_connector(http);
    Ok(clickhouse::Client::with_http_client(pool.build(connector)))
}

/// Every certificate in the PEM file at `path`.
fn roots_from(path: &Path) -> Result<RootCertStore> {
    let bad = |what: String| Error::CaFile {
        path: path.to_path_buf(),
        what,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(roots)
}
