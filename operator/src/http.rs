//! The operator's HTTP endpoints: `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::metrics::Metrics;

/// Process state the endpoints report.
#[derive(Default)]
pub struct OperatorState {
    pub metrics: Metrics,
    /// Why the operator is not ready; `None` when it is.
    not_ready_reason: RwLock<Option<String>>,
    /// A note shown on `/readyz` while ready, e.g. that this replica is a standby waiting for the Lease.
    ready_note: RwLock<String>,
}

impl OperatorState {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            not_ready_reason: RwLock::new(Some("starting".into())),
            ready_note: RwLock::new(String::new()),
        }
    }

    pub fn set_not_ready(&self, reason: impl Into<String>) {
        if let Ok(mut slot) = self.not_ready_reason.write() {
            *slot = Some(reason.into());
        }
    }

    pub fn set_ready(&self, note: impl Into<String>) {
        if let Ok(mut slot) = self.not_ready_reason.write() {
            *slot = None;
        }
        if let Ok(mut slot) = self.ready_note.write() {
            *slot = note.into();
        }
    }

    /// `Ok(note)` when ready, `Err(reason)` otherwise.
    pub fn readiness(&self) -> Result<String, String> {
        let reason = self
            .not_ready_reason
            .read()
            .map(|slot| slot.clone())
            .unwrap_or_else(|_| Some("readiness state is unavailable".into()));
        match reason {
            Some(reason) => Err(reason),
            None => Ok(self
                .ready_note
                .read()
                .map(|note| note.clone())
                .unwrap_or_default()),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    match state.readiness() {
        Ok(note) if note.is_empty() => (StatusCode::OK, "ready\n".to_owned()),
        Ok(note) => (StatusCode::OK, format!("ready: {note}\n")),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn metrics(State(state): State<Arc<OperatorState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Builds the router of the HTTP endpoints.
pub fn router(state: Arc<OperatorState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Binds the HTTP endpoints; the returned future serves them until `shutdown` fires.
pub async fn serve(
    address: SocketAddr,
    state: Arc<OperatorState>,
    shutdown: CancellationToken,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "health and metrics server listening");
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await });
    Ok((bound, server.into_future()))
}
