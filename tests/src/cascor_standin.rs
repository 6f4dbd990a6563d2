//! A stand-in for the juniper-cascor REST API, limited to the reads the operator's
//! autoscaler makes, on 127.0.0.1.
//!
//! It serves `GET /v1/health`, `/v1/training/status`, `/v1/training/params`, `/v1/workers`
//! and `/v1/workers/stats` with the envelopes and field names of juniper-cascor 0.12.0, from
//! a state the test sets. Every route but `/v1/health` requires the `X-API-Key` given at
//! start and returns 401 without it, as the real server does. [`CascorStandin::stop`] closes
//! the listener, so requests fail with "connection refused", and [`CascorStandin::restart`]
//! listens on the same port again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A worker as the stand-in lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandinWorker {
    /// Server-assigned id.
    pub worker_id: String,
    /// `pod_name` capability, if the worker reports one.
    pub pod_name: Option<String>,
    /// `pod_namespace` capability, if the worker reports one.
    pub pod_namespace: Option<String>,
    /// Task the worker holds, `None` while idle.
    pub active_task_id: Option<String>,
}

impl StandinWorker {
    /// Creates an idle worker in pod `namespace/pod_name`.
    pub fn idle(worker_id: &str, namespace: &str, pod_name: &str) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            pod_name: Some(pod_name.to_owned()),
            pod_namespace: Some(namespace.to_owned()),
            active_task_id: None,
        }
    }

    /// Creates a worker in pod `namespace/pod_name` that has the task `task_id`.
    pub fn busy(worker_id: &str, namespace: &str, pod_name: &str, task_id: &str) -> Self {
        Self {
            active_task_id: Some(task_id.to_owned()),
            ..Self::idle(worker_id, namespace, pod_name)
        }
    }

    fn to_json(&self) -> Value {
        let mut capabilities = json!({
            "cpu_cores": 2,
            "gpu": false,
            "gpu_name": null,
            "os": "Linux",
            "implementation": "rust",
        });
        if let Some(pod_name) = &self.pod_name {
            capabilities["pod_name"] = json!(pod_name);
        }
        if let Some(pod_namespace) = &self.pod_namespace {
            capabilities["pod_namespace"] = json!(pod_namespace);
        }

        json!({
            "worker_id": self.worker_id,
            "capabilities": capabilities,
            "connected_at": 1.0e9,
            "last_heartbeat": 1.0e9,
            "tasks_completed": 0,
            "tasks_failed": 0,
            "active_task_id": self.active_task_id,
            "health_score": 1.0,
            "idle": self.active_task_id.is_none(),
            "in_flight_tasks": u32::from(self.active_task_id.is_some()),
            "last_task_completed_at": null,
            "rss_mb": null,
            "last_task_duration_seconds": null,
            "recent_task_durations_seconds": [],
            "gpu_utilization_pct": null,
        })
    }
}

/// What the stand-in reports.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StandinState {
    /// `state_machine.status`, e.g. `STOPPED` or `STARTED`.
    training_status: String,
    /// `candidate_pool_size` of the network; `None` means no network (404 on params).
    candidate_pool_size: Option<u32>,
    workers: Vec<StandinWorker>,
    /// When set, every route but health returns this status.
    forced_status: Option<u16>,
    /// Paths of the requests served, in order.
    requests: Vec<String>,
}

struct Shared {
    api_key: String,
    state: Mutex<StandinState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, StandinState> {
        // A test that panicked while holding the lock leaves valid data behind.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running stand-in server.
pub struct CascorStandin {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl CascorStandin {
    /// Starts a stand-in on a free port of 127.0.0.1 with no run and no workers.
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            state: Mutex::new(StandinState {
                training_status: "STOPPED".to_owned(),
                candidate_pool_size: None,
                workers: Vec::new(),
                forced_status: None,
                requests: Vec::new(),
            }),
        });
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = listener.local_addr()?;

        let mut standin = Self {
            address,
            shared,
            shutdown: None,
            task: None,
        };
        standin.serve(listener);
        Ok(standin)
    }

    /// Base URL of the REST API, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Worker WebSocket URL a pool would use, `ws://127.0.0.1:<port>/ws/v1/workers`.
    pub fn worker_url(&self) -> String {
        format!("ws://{}/ws/v1/workers", self.address)
    }

    /// Sets the training state (`STARTED`, `PAUSED`, `COMPLETED`, ...) and the network's
    /// candidate pool size (`None`: no network).
    pub fn set_training(&self, status: &str, candidate_pool_size: Option<u32>) {
        let mut state = self.shared.state();
        state.training_status = status.to_owned();
        state.candidate_pool_size = candidate_pool_size;
    }

    /// Replaces the registered workers.
    pub fn set_workers(&self, workers: Vec<StandinWorker>) {
        self.shared.state().workers = workers;
    }

    /// Makes every route but health return `status` (`Some(503)`), or restores normal
    /// responses (`None`).
    pub fn force_status(&self, status: Option<u16>) {
        self.shared.state().forced_status = status;
    }

    /// Paths of the requests served so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.state().requests.clone()
    }

    /// Closes the listener; requests then fail with "connection refused".
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server task may have ended already; then there is nothing to stop.
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Listens again on the same port, with the state kept.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let listener = bind(self.address)?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let router = Router::new()
            .route("/v1/health", get(health))
            .route("/v1/training/status", get(training_status))
            .route("/v1/training/params", get(training_params))
            .route("/v1/workers", get(workers))
            .route("/v1/workers/stats", get(worker_stats))
            .with_state(Arc::clone(&self.shared));
        let (shutdown, shutdown_received) = oneshot::channel::<()>();

        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = shutdown_received.await;
            });
            if let Err(error) = server.await {
                eprintln!("cascor stand-in stopped with an error: {error}");
            }
        });
        self.shutdown = Some(shutdown);
        self.task = Some(task);
    }
}

impl Drop for CascorStandin {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds with `SO_REUSEADDR`, so [`CascorStandin::restart`] gets the same port back.
fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(64)
}

fn envelope(data: Value) -> Json<Value> {
    Json(json!({
        "status": "success",
        "data": data,
        "meta": {"timestamp": 1.0e9, "version": "0.12.0"},
    }))
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

/// Records the request and checks the key and any forced status. Returns the response to
/// send instead of the route's own, if any.
fn rejection(shared: &Shared, headers: &HeaderMap, path: &str) -> Option<Response> {
    let mut state = shared.state();
    state.requests.push(path.to_owned());

    let key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    if key != Some(shared.api_key.as_str()) {
        return Some(detail(
            StatusCode::UNAUTHORIZED,
            "Missing API key. Provide X-API-Key header.",
        ));
    }
    if let Some(code) = state.forced_status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(detail(status, "forced by the test"));
    }
    None
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": "0.12.0"}))
}

async fn training_status(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&shared, &headers, "/v1/training/status") {
        return response;
    }
    let state = shared.state();
    let started = state.training_status == "STARTED";

    envelope(json!({
        "state_machine": {
            "status": state.training_status,
            "phase": if started { "CANDIDATE" } else { "IDLE" },
            "paused_phase": null,
            "has_candidate_state": started,
        },
        "monitor": {},
        "training_state": {"status": "Started"},
        "network_loaded": state.candidate_pool_size.is_some(),
        "training_active": started,
        "pending_dataset": null,
        "completion_reason": null,
    }))
    .into_response()
}

async fn training_params(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&shared, &headers, "/v1/training/params") {
        return response;
    }
    let state = shared.state();

    match state.candidate_pool_size {
        Some(pool_size) => envelope(json!({
            "learning_rate": 0.01,
            "max_hidden_units": 10,
            "candidate_pool_size": pool_size,
            "candidate_epochs": 400,
            "output_epochs": 1000,
        }))
        .into_response(),
        None => detail(StatusCode::NOT_FOUND, "No network created"),
    }
}

async fn workers(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&shared, &headers, "/v1/workers") {
        return response;
    }
    let state = shared.state();
    let workers: Vec<Value> = state.workers.iter().map(StandinWorker::to_json).collect();

    envelope(json!({ "count": workers.len(), "workers": workers })).into_response()
}

async fn worker_stats(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&shared, &headers, "/v1/workers/stats") {
        return response;
    }
    let state = shared.state();
    let total = state.workers.len();
    let idle = state
        .workers
        .iter()
        .filter(|worker| worker.active_task_id.is_none())
        .count();

    envelope(json!({
        "total": total,
        "idle": idle,
        "busy": total - idle,
        "stale": 0,
        "total_tasks_completed": 0,
        "total_tasks_failed": 0,
        "average_health_score": 1.0,
        "timestamp": 1.0e9,
    }))
    .into_response()
}
