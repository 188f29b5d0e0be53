//! Tradewind's dashboard: a small web server over ClickHouse's metric
//! tables. `/` is the page ([`page`]), `/api/dashboard.json` the same
//! figures as JSON ([`data`]), both for the time range and filters of the
//! query string ([`selection`]; a bad parameter is a 400 that says why).
//! `/health` answers while the process is up. Each request reads
//! ClickHouse afresh; nothing is cached. [`run`] serves until its shutdown
//! token is cancelled, then finishes the requests in flight.

pub mod data;
mod page;
pub mod selection;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tradewind_clickhouse::ClickHouseConfig;

use self::selection::Selection;

/// `[dashboard]`: the web page over ClickHouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Address the page is served on.
    pub listen: String,
    /// How much event time the page covers by default, ending at the
    /// newest window; 0 shows everything. A request's `range`, `from` and
    /// `to` override it.
    pub hours: u32,
    /// How often the page reloads itself, in seconds.
    pub refresh_secs: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            hours: 24,
            refresh_secs: 10,
        }
    }
}

/// Everything [`run`] needs: its own section, the ClickHouse it reads and
/// the delivery promises the SLA panel compares against.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dashboard: DashboardConfig,
    pub clickhouse: ClickHouseConfig,
    pub sla_domestic: Duration,
    pub sla_international: Duration,
}

/// Why the dashboard could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("preparing ClickHouse")]
    ClickHouse(#[source] tradewind_clickhouse::Error),
    #[error("binding dashboard.listen {addr:?}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving the dashboard")]
    Serve(#[source] std::io::Error),
}

struct Shared {
    ch: clickhouse::Client,
    cfg: DashboardConfig,
    database: String,
    sla_domestic_h: u64,
    sla_international_h: u64,
}

/// Connects to ClickHouse (applying pending migrations), then serves the
/// page until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    // A signal while ClickHouse is being prepared stops at once.
    let (conn, _) = tokio::select! {
        ready = tradewind_clickhouse::connect_and_migrate(&settings.clickhouse) => {
            ready.map_err(Error::ClickHouse)?
        }
        () = shutdown.cancelled() => return Ok(()),
    };
    let dash = settings.dashboard;
    let shared = Arc::new(Shared {
        ch: conn.client.clone(),
        database: settings.clickhouse.database.clone(),
        sla_domestic_h: settings.sla_domestic.as_secs() / 3600,
        sla_international_h: settings.sla_international.as_secs() / 3600,
        cfg: dash.clone(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/api/dashboard.json", get(json))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(&dash.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: dash.listen.clone(),
            source,
        })?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(url = format!("http://{addr}/"), "serving the dashboard");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Serve)
}

fn unavailable(e: clickhouse::error::Error) -> Response {
    tracing::warn!(error = %e, "dashboard query failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("ClickHouse did not answer: {e}\n"),
    )
        .into_response()
}

const SERVER_TIMING: &str = "server-timing";

fn bad_request(e: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
}

async fn index(State(s): State<Arc<Shared>>, Query(params): Query<selection::Params>) -> Response {
    let sel = match Selection::parse(&params, s.cfg.hours) {
        Ok(sel) => sel,
        Err(e) => return bad_request(e),
    };
    match data::load(&s.ch, &sel).await {
        Ok(d) => (
            [(SERVER_TIMING, d.server_timing())],
            Html(page::render(
                &d,
                &page::PageInfo {
                    database: &s.database,
                    selection: &sel,
                    refresh_secs: s.cfg.refresh_secs,
                    sla_domestic_h: s.sla_domestic_h,
                    sla_international_h: s.sla_international_h,
                },
            )),
        )
            .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn json(State(s): State<Arc<Shared>>, Query(params): Query<selection::Params>) -> Response {
    let sel = match Selection::parse(&params, s.cfg.hours) {
        Ok(sel) => sel,
        Err(e) => return bad_request(e),
    };
    match data::load(&s.ch, &sel).await {
        Ok(d) => ([(SERVER_TIMING, d.server_timing())], Json(d)).into_response(),
        Err(e) => unavailable(e),
    }
}
