//! The service surface: `/metrics` (Prometheus text from the recorder of
//! [`crate::telemetry`]), `/health` (the process is up) and `/ready` (the
//! consumer is running: 503 while ClickHouse is blocked or the member is
//! rejoining), served with axum.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::Error;

/// Binds the endpoint's address, so a taken or bad address fails the
/// service at start rather than leaving it without `/metrics`.
pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener, Error> {
    let bad = |reason: String| Error::Listen {
        addr: listen.to_string(),
        reason,
    };
    let addr: SocketAddr = listen.parse().map_err(|e| bad(format!("{e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "serving /metrics, /health and /ready");
    }
    Ok(listener)
}

/// Serves `/metrics`, `/health` (the process is up) and `/ready` (the
/// consumer is running) until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let metrics = move || {
        let handle = handle.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render() + &crate::latency::render(),
            )
        }
    };
    let ready_now = move || {
        let ready = ready.clone();
        async move {
            if ready.load(Ordering::Relaxed) {
                (StatusCode::OK, "ready\n")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready_now));
    axum::serve(listener, app).await
}
