//! One shutdown for every service: a token cancelled by the first SIGINT
//! (Ctrl-C) or SIGTERM (`docker stop`, `kill`, Kubernetes). Each service
//! finishes what it holds when the token fires: the aggregator drains,
//! writes and commits, the simulator flushes its producer and writes its
//! truth file, the dashboard finishes the requests in flight.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// A token cancelled on SIGINT or SIGTERM; `what` says in the log what
/// the service does next.
pub fn on_signal(what: &'static str) -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm => {}
        }
        tracing::info!("shutting down: {what}");
        fire.cancel();
    });
    token
}
