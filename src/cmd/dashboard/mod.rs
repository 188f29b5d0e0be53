//! `tradewind dashboard`: a small web server over ClickHouse's metric
//! tables. `/` is the page ([`page`]), `/api/dashboard.json` the same
//! figures as JSON ([`data`]), both for the time range and filters of the
//! query string ([`selection`]; a bad parameter is a 400 that says why).
//! `/health` answers while the process is up. Each request reads
//! ClickHouse afresh; nothing is cached.

pub mod data;
mod page;
pub mod selection;

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;

use self::selection::Selection;
use crate::config::AppConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Address to serve on (dashboard.listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Hours of event time to show, 0 for all (dashboard.hours).
    #[arg(long, value_name = "HOURS")]
    pub hours: Option<u32>,
}

struct Shared {
    ch: clickhouse::Client,
    cfg: crate::config::DashboardConfig,
    database: String,
    sla_domestic_h: u64,
    sla_international_h: u64,
}

pub async fn run(cfg: &AppConfig, args: DashboardArgs) -> Result<()> {
    let mut dash = cfg.dashboard.clone();
    if let Some(l) = args.listen {
        dash.listen = l;
    }
    if let Some(h) = args.hours {
        dash.hours = h;
    }
    let (conn, _) = tradewind_clickhouse::connect_and_migrate(&cfg.clickhouse)
        .await
        .context("preparing ClickHouse")?;
    let shared = Arc::new(Shared {
        ch: conn.client.clone(),
        database: cfg.clickhouse.database.clone(),
        sla_domestic_h: cfg.core.sla_domestic.as_secs() / 3600,
        sla_international_h: cfg.core.sla_international.as_secs() / 3600,
        cfg: dash.clone(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/api/dashboard.json", get(json))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(&dash.listen)
        .await
        .with_context(|| format!("binding dashboard.listen {:?}", dash.listen))?;
    tracing::info!(
        url = format!("http://{}/", listener.local_addr()?),
        "serving the dashboard"
    );
    let stop = crate::shutdown::on_signal("finishing the requests in flight");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("serving the dashboard")
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
