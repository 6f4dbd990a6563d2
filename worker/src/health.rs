//! HTTP health, readiness and metrics endpoints.
//!
//! | Request | Success | Failure |
//! |---|---|---|
//! | `GET /v1/health` | 200, identity and build provenance | never fails |
//! | `GET /v1/health/live` | 200 `alive` | 503 `unresponsive` with a reason |
//! | `GET /v1/health/ready` | 200 `ready`, `X-Juniper-Readiness: ready` | 503 `not_ready`, `X-Juniper-Readiness: not_ready` |
//! | `GET /metrics` | 200, Prometheus text format | 500 when encoding fails |
//!
//! Any other path answers 404 `not found`; any method other than GET answers 405
//! `method not allowed`, on every path. JSON bodies use Python's default spacing
//! (`{"status": "ok"}`) so they are byte-compatible with the Python worker's.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent::observer::{AgentObserver, ConnectionState, Direction, TaskReport};
use crate::config::{HealthSettings, Provenance, python_float};
use crate::metrics::WorkerMetrics;

/// Service name in probe bodies.
pub const SERVICE: &str = "juniper-cascor-worker";

/// Maximum duration of the event-loop tick check before liveness fails.
pub const TICK_BUDGET: Duration = Duration::from_millis(250);

/// Readiness header name.
pub const READINESS_HEADER: &str = "x-juniper-readiness";

const REASON_NOT_BOUND: &str = "websocket connection not bound";
const REASON_NOT_REGISTERED: &str = "worker registration handshake not complete";
const REASON_DRAINING: &str = "worker is shutting down";

/// Failure to start the health server.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("failed to bind the health server to {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: io::Error,
    },
}

/// Settings of the probes.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The worker's own id, reported on `/v1/health` while registered. `None` reports the
    /// id from the last registration instead.
    pub client_id: Option<String>,
    /// Liveness fails when a registered worker made no progress (registration, heartbeat
    /// sent, task finished) for longer than this.
    pub stale_after: Duration,
    pub version: String,
    pub provenance: Provenance,
}

impl ProbeSettings {
    /// Returns probe settings for the given heartbeat intervals: progress is stale after
    /// twice the longer of the two.
    pub fn new(
        heartbeat_interval: Duration,
        idle_heartbeat_interval: Duration,
        provenance: Provenance,
    ) -> Self {
        Self {
            client_id: None,
            stale_after: heartbeat_interval.max(idle_heartbeat_interval) * 2,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            provenance,
        }
    }
}

/// Connection facts the probes are computed from, updated by the agent's events.
#[derive(Debug)]
pub struct HealthState {
    settings: ProbeSettings,
    inner: Mutex<Progress>,
}

#[derive(Debug, Clone)]
struct Progress {
    state: ConnectionState,
    /// Registration acknowledged on the current connection.
    registered_id: Option<String>,
    /// A message arrived since the last connection attempt began, so the socket is open.
    socket_open: bool,
    last_progress: Option<Instant>,
}

/// Outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Pass,
    Fail(String),
}

impl HealthState {
    pub fn new(settings: ProbeSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Progress {
                state: ConnectionState::Connecting,
                registered_id: None,
                socket_open: false,
                last_progress: None,
            }),
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        // A panic while holding this lock cannot leave the plain data inconsistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the id reported on `/v1/health`: the worker's id while registered, else `None`.
    pub fn worker_id(&self) -> Option<String> {
        let progress = self.progress();
        let registered = progress.registered_id.as_ref()?;

        Some(
            self.settings
                .client_id
                .clone()
                .unwrap_or_else(|| registered.clone()),
        )
    }

    /// Evaluates readiness: the connection is open and registered on it, and the worker
    /// is not shutting down.
    pub fn readiness(&self) -> ProbeResult {
        let progress = self.progress().clone();

        match progress.state {
            ConnectionState::Ready | ConnectionState::Busy if progress.registered_id.is_some() => {
                ProbeResult::Pass
            }
            ConnectionState::Ready | ConnectionState::Busy | ConnectionState::Connecting
                if progress.socket_open =>
            {
                ProbeResult::Fail(REASON_NOT_REGISTERED.to_owned())
            }
            ConnectionState::Draining => ProbeResult::Fail(REASON_DRAINING.to_owned()),
            _ => ProbeResult::Fail(REASON_NOT_BOUND.to_owned()),
        }
    }

    /// Evaluates the progress part of liveness at `now`: a registered worker must have made
    /// progress within `stale_after`. A worker that is connecting or reconnecting passes,
    /// because its reconnect loop is running and restarting the process would not help.
    pub fn liveness_at(&self, now: Instant) -> ProbeResult {
        let progress = self.progress().clone();
        let registered = matches!(
            progress.state,
            ConnectionState::Ready | ConnectionState::Busy
        ) && progress.registered_id.is_some();
        if !registered {
            return ProbeResult::Pass;
        }

        let stale_after = self.settings.stale_after;
        match progress.last_progress {
            Some(mark) if now.saturating_duration_since(mark) <= stale_after => ProbeResult::Pass,
            _ => ProbeResult::Fail(format!(
                "heartbeat counter stale (> {}s)",
                python_float(round_to_tenth(stale_after.as_secs_f64()))
            )),
        }
    }

    fn mark_progress(&self) {
        self.progress().last_progress = Some(Instant::now());
    }
}

fn round_to_tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

impl AgentObserver for HealthState {
    fn connection_state(&self, state: ConnectionState) {
        let mut progress = self.progress();

        if matches!(
            state,
            ConnectionState::Connecting | ConnectionState::Disconnected | ConnectionState::Stopped
        ) {
            progress.registered_id = None;
            progress.socket_open = false;
        }
        progress.state = state;
    }

    fn registered(&self, worker_id: &str) {
        let mut progress = self.progress();

        progress.registered_id = Some(worker_id.to_owned());
        progress.socket_open = true;
        progress.last_progress = Some(Instant::now());
    }

    fn heartbeat_sent(&self) {
        self.mark_progress();
    }

    fn message(&self, direction: Direction, _bytes: usize) {
        if direction == Direction::Inbound {
            self.progress().socket_open = true;
        }
    }

    fn task_finished(&self, _report: &TaskReport) {
        self.mark_progress();
    }
}

/// Forwards every agent event to each of several observers, in order.
pub struct FanOutObserver {
    observers: Vec<Arc<dyn AgentObserver>>,
}

impl FanOutObserver {
    pub fn new(observers: Vec<Arc<dyn AgentObserver>>) -> Self {
        Self { observers }
    }
}

impl AgentObserver for FanOutObserver {
    fn connection_state(&self, state: ConnectionState) {
        self.observers
            .iter()
            .for_each(|observer| observer.connection_state(state));
    }

    fn registered(&self, worker_id: &str) {
        self.observers
            .iter()
            .for_each(|observer| observer.registered(worker_id));
    }

    fn reconnect_scheduled(&self, delay: Duration) {
        self.observers
            .iter()
            .for_each(|observer| observer.reconnect_scheduled(delay));
    }

    fn heartbeat_sent(&self) {
        self.observers
            .iter()
            .for_each(|observer| observer.heartbeat_sent());
    }

    fn message(&self, direction: Direction, bytes: usize) {
        self.observers
            .iter()
            .for_each(|observer| observer.message(direction, bytes));
    }

    fn message_rejected(&self, reason: &'static str) {
        self.observers
            .iter()
            .for_each(|observer| observer.message_rejected(reason));
    }

    fn task_started(&self, task_id: &str) {
        self.observers
            .iter()
            .for_each(|observer| observer.task_started(task_id));
    }

    fn task_finished(&self, report: &TaskReport) {
        self.observers
            .iter()
            .for_each(|observer| observer.task_finished(report));
    }
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
struct AppState {
    health: Arc<HealthState>,
    metrics: Arc<WorkerMetrics>,
}

/// Builds the router that serves every endpoint.
pub fn router(health: Arc<HealthState>, metrics: Arc<WorkerMetrics>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(AppState { health, metrics })
}

/// Binds the health server's listener, before the first connection attempt, so a port
/// conflict stops the worker at start-up.
pub async fn bind(settings: &HealthSettings) -> Result<TcpListener, HealthError> {
    let address = settings.address();

    TcpListener::bind((settings.bind.as_str(), settings.port))
        .await
        .map_err(|source| HealthError::Bind { address, source })
}

/// Serves the router on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "worker health server listening on {}", display_address(address));

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;

    tracing::info!("worker health server stopped");
    Ok(())
}

fn display_address(address: SocketAddr) -> String {
    format!("{}:{}", address.ip(), address.port())
}

async fn dispatch(State(app): State<AppState>, request: Request) -> Response {
    if request.method() != Method::GET {
        return plain_text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }

    match request.uri().path() {
        "/v1/health" => health_body(&app.health),
        "/v1/health/live" => liveness(&app.health).await,
        "/v1/health/ready" => readiness(&app.health),
        "/metrics" => metrics(&app.metrics),
        _ => plain_text(StatusCode::NOT_FOUND, "not found"),
    }
}

#[derive(Serialize)]
struct HealthBody<'a> {
    status: &'static str,
    worker_id: Option<String>,
    version: &'a str,
    git_sha: Option<&'a str>,
    build_date: Option<&'a str>,
}

fn health_body(health: &HealthState) -> Response {
    let settings = &health.settings;
    let body = HealthBody {
        status: "ok",
        worker_id: health.worker_id(),
        version: &settings.version,
        git_sha: settings.provenance.git_sha.as_deref(),
        build_date: settings.provenance.build_date.as_deref(),
    };

    json(StatusCode::OK, &body, None)
}

#[derive(Serialize)]
struct LivenessBody {
    status: &'static str,
    tick: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    duration_ms: u64,
}

async fn liveness(health: &HealthState) -> Response {
    let started = Instant::now();
    let tick = measure_tick().await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let result = match tick {
        ProbeResult::Pass => health.liveness_at(Instant::now()),
        failed => failed,
    };

    match result {
        ProbeResult::Pass => json(
            StatusCode::OK,
            &LivenessBody {
                status: "alive",
                tick: SERVICE,
                error: None,
                duration_ms,
            },
            None,
        ),
        ProbeResult::Fail(reason) => {
            tracing::warn!(reason = %reason, "liveness probe failed");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &LivenessBody {
                    status: "unresponsive",
                    tick: SERVICE,
                    error: Some(reason),
                    duration_ms,
                },
                None,
            )
        }
    }
}

/// Measures how long the runtime takes to run a freshly spawned task. A runtime whose
/// threads are blocked runs it late or never.
async fn measure_tick() -> ProbeResult {
    let started = Instant::now();
    let spawned = tokio::spawn(async {});
    let completed = tokio::time::timeout(TICK_BUDGET * 4, spawned).await;
    let elapsed = started.elapsed();

    if completed.is_err() || elapsed > TICK_BUDGET {
        return ProbeResult::Fail(format!(
            "tick exceeded budget: {}ms > {}ms",
            elapsed.as_millis(),
            TICK_BUDGET.as_millis()
        ));
    }

    ProbeResult::Pass
}

#[derive(Serialize)]
struct ReadinessBody {
    status: &'static str,
    service: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn readiness(health: &HealthState) -> Response {
    match health.readiness() {
        ProbeResult::Pass => json(
            StatusCode::OK,
            &ReadinessBody {
                status: "ready",
                service: SERVICE,
                error: None,
            },
            Some("ready"),
        ),
        ProbeResult::Fail(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &ReadinessBody {
                status: "not_ready",
                service: SERVICE,
                error: Some(reason),
            },
            Some("not_ready"),
        ),
    }
}

fn metrics(metrics: &WorkerMetrics) -> Response {
    match metrics.render() {
        Ok(text) => response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text.into_bytes(),
        ),
        Err(error) => {
            tracing::error!(error = %error, "failed to render metrics");
            plain_text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T, readiness: Option<&'static str>) -> Response {
    let mut response = match to_python_json(body) {
        Ok(bytes) => response(status, "application/json", bytes),
        Err(error) => {
            tracing::error!(error = %error, "failed to encode a health response");
            return plain_text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    if let Some(value) = readiness {
        response
            .headers_mut()
            .insert(READINESS_HEADER, HeaderValue::from_static(value));
    }

    response
}

fn plain_text(status: StatusCode, body: &'static str) -> Response {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;

    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));

    response
}

/// Serialises `value` as JSON with Python's default separators (`", "` and `": "`).
pub fn to_python_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, PythonSpacing);
    value.serialize(&mut serializer)?;

    Ok(bytes)
}

/// JSON formatter with the separators of Python's `json.dumps` defaults.
struct PythonSpacing;

impl serde_json::ser::Formatter for PythonSpacing {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stale_after: Duration) -> HealthState {
        HealthState::new(ProbeSettings {
            client_id: Some("client-1".into()),
            stale_after,
            version: "0.1.0".into(),
            provenance: Provenance::default(),
        })
    }

    #[test]
    fn python_spacing_matches_json_dumps() {
        let body = serde_json::json!({"status": "ok", "worker_id": null, "list": [1, 2]});
        let text = String::from_utf8(to_python_json(&body).expect("encodes")).expect("utf-8");

        assert_eq!(
            text,
            r#"{"status": "ok", "worker_id": null, "list": [1, 2]}"#
        );
    }

    #[test]
    fn readiness_follows_connection() {
        let health = state(Duration::from_secs(20));
        assert_eq!(
            health.readiness(),
            ProbeResult::Fail(REASON_NOT_BOUND.into())
        );

        health.message(Direction::Inbound, 10);
        assert_eq!(
            health.readiness(),
            ProbeResult::Fail(REASON_NOT_REGISTERED.into())
        );

        health.registered("worker-abc");
        health.connection_state(ConnectionState::Ready);
        assert_eq!(health.readiness(), ProbeResult::Pass);
        assert_eq!(health.worker_id().as_deref(), Some("client-1"));

        health.connection_state(ConnectionState::Busy);
        assert_eq!(health.readiness(), ProbeResult::Pass);

        health.connection_state(ConnectionState::Disconnected);
        assert_eq!(
            health.readiness(),
            ProbeResult::Fail(REASON_NOT_BOUND.into())
        );
        assert_eq!(health.worker_id(), None);

        health.connection_state(ConnectionState::Draining);
        assert_eq!(
            health.readiness(),
            ProbeResult::Fail(REASON_DRAINING.into())
        );
    }

    #[test]
    fn liveness_stale_after_window() {
        let health = state(Duration::from_secs(20));
        let start = Instant::now();
        assert_eq!(
            health.liveness_at(start),
            ProbeResult::Pass,
            "connecting workers are alive"
        );

        health.registered("worker-abc");
        health.connection_state(ConnectionState::Ready);
        let marked = health
            .progress()
            .last_progress
            .expect("registration marks progress");

        assert_eq!(
            health.liveness_at(marked + Duration::from_secs(20)),
            ProbeResult::Pass
        );
        assert_eq!(
            health.liveness_at(marked + Duration::from_secs(21)),
            ProbeResult::Fail("heartbeat counter stale (> 20.0s)".into())
        );
    }

    #[test]
    fn stale_window_uses_longer_interval() {
        let settings = ProbeSettings::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Provenance::default(),
        );

        assert_eq!(settings.stale_after, Duration::from_secs(20));
    }
}
