//! Test support for the CLI, health, metrics and shutdown tests: a scriptable stand-in for
//! the server's `/ws/v1/workers` endpoint, the built worker binary as a child process with
//! its standard error captured, and small HTTP and golden-file helpers.
//!
//! Included by each test file with `#[path = "support/cli_standin.rs"] mod standin;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

#[path = "golden.rs"]
mod golden;

/// Upper bound on any single wait in these tests. It only keeps a broken worker from
/// hanging the suite; no test measures speed with it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Path of the worker binary built for this test run.
pub fn worker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_juniper-cascor-worker"))
}

/// Returns a command for the worker binary with the `JUNIPER_CASCOR_WORKER_*`, `CASCOR_*`
/// and `RUST_LOG` variables of the test environment removed.
pub fn worker_command() -> Command {
    let mut command = Command::new(worker_binary());
    for (name, _) in std::env::vars() {
        if name.starts_with("JUNIPER_CASCOR_WORKER_")
            || name.starts_with("CASCOR_")
            || name == "RUST_LOG"
        {
            command.env_remove(name);
        }
    }
    command
}

/// Returns a port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Stand-in WebSocket server on 127.0.0.1.
pub struct StandIn {
    listener: TcpListener,
    pub port: u16,
}

impl StandIn {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in server");
        let port = listener.local_addr().expect("local address").port();
        Self { listener, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/v1/workers", self.port)
    }

    /// Accepts one TCP connection without completing the WebSocket handshake yet.
    pub async fn accept_tcp(&self) -> TcpStream {
        let (stream, _) = tokio::time::timeout(WAIT_LIMIT, self.listener.accept())
            .await
            .expect("worker connects within the wait limit")
            .expect("accept TCP connection");
        stream
    }

    /// Accepts one connection and completes the WebSocket handshake.
    pub async fn accept(&self) -> Session {
        let stream = self.accept_tcp().await;
        Session::upgrade(stream).await
    }
}

/// One accepted worker connection.
pub struct Session {
    ws: WebSocketStream<TcpStream>,
    /// `X-API-Key` header of the upgrade request, if any.
    pub api_key: Option<String>,
    /// Heartbeats received so far.
    pub heartbeats: Vec<Value>,
}

/// A message from the worker other than a heartbeat.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Binary(Vec<u8>),
    Closed,
}

impl Session {
    // The handshake callback's error type is tungstenite's HTTP response, which is large.
    #[allow(clippy::result_large_err)]
    pub async fn upgrade(stream: TcpStream) -> Self {
        let captured = Arc::new(Mutex::new(None));
        let header_slot = captured.clone();
        let callback = move |request: &Request, response: Response| {
            let key = request
                .headers()
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            *header_slot.lock().expect("header slot") = key;
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, callback)
            .await
            .expect("WebSocket handshake");
        let api_key = captured.lock().expect("header slot").take();

        Self {
            ws,
            api_key,
            heartbeats: Vec::new(),
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .expect("send text frame");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .expect("send binary frame");
    }

    /// Receives the next message that is not a heartbeat. Each heartbeat is recorded and
    /// gets a heartbeat reply, as the server sends.
    pub async fn recv(&mut self) -> Received {
        loop {
            let next = tokio::time::timeout(WAIT_LIMIT, self.ws.next())
                .await
                .expect("worker message within the wait limit");
            let message = match next {
                None | Some(Err(_)) => return Received::Closed,
                Some(Ok(message)) => message,
            };

            match message {
                Message::Text(text) => {
                    let value: Value =
                        serde_json::from_str(text.as_str()).expect("worker sends JSON text");
                    if value["type"] == "heartbeat" {
                        self.heartbeats.push(value);
                        self.send_json(json!({"type": "heartbeat", "worker_id": "worker-000000000001", "timestamp": 0.0}))
                            .await;
                        continue;
                    }
                    return Received::Json(value);
                }
                Message::Binary(bytes) => return Received::Binary(bytes.to_vec()),
                Message::Close(_) => return Received::Closed,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Received::Json(value) => value,
            other => panic!("expected a JSON message from the worker, got {other:?}"),
        }
    }

    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv().await {
            Received::Binary(bytes) => bytes,
            other => panic!("expected a binary frame from the worker, got {other:?}"),
        }
    }

    /// Sends `connection_established` and returns the worker's `register` message, without
    /// acknowledging it.
    pub async fn greet(&mut self) -> Value {
        self.send_json(json!({"type": "connection_established", "data": {"channel": "workers"}}))
            .await;
        let register = self.recv_json().await;
        assert_eq!(
            register["type"], "register",
            "first worker message: {register}"
        );
        register
    }

    /// Acknowledges a registration with a server-assigned id.
    pub async fn acknowledge(&mut self, register: &Value) {
        self.send_json(json!({
            "type": "registration_ack",
            "worker_id": "worker-5e1f0c9ab2d4",
            "data": {"status": "registered", "client_name": register["worker_id"]},
        }))
        .await;
    }

    /// Runs the registration exchange and returns the `register` message.
    pub async fn register(&mut self) -> Value {
        let register = self.greet().await;
        self.acknowledge(&register).await;
        register
    }

    /// Waits until the worker has sent at least `count` heartbeats on this session.
    pub async fn wait_heartbeats(&mut self, count: usize) {
        while self.heartbeats.len() < count {
            let next = tokio::time::timeout(WAIT_LIMIT, self.ws.next())
                .await
                .expect("heartbeat within the wait limit");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value =
                        serde_json::from_str(text.as_str()).expect("worker sends JSON text");
                    assert_eq!(
                        value["type"], "heartbeat",
                        "unexpected message while idle: {value}"
                    );
                    self.heartbeats.push(value);
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => panic!("connection closed while waiting for heartbeats"),
            }
        }
    }

    /// Closes the connection from the server side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Encodes a float32 tensor frame: u32 ndim, u32 dims, u32 dtype length, dtype, data, all
/// little-endian.
pub fn encode_frame(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dtype = b"float32";
    let mut bytes = Vec::with_capacity(8 + 4 * shape.len() + dtype.len() + 4 * data.len());

    bytes.extend_from_slice(&(shape.len() as u32).to_le_bytes());
    for dim in shape {
        bytes.extend_from_slice(&(*dim as u32).to_le_bytes());
    }
    bytes.extend_from_slice(&(dtype.len() as u32).to_le_bytes());
    bytes.extend_from_slice(dtype);
    for value in data {
        bytes.extend_from_slice(&value.to_le_bytes());
    }

    bytes
}

/// Decodes the shape of a tensor frame (the data is not needed by these tests).
pub fn frame_shape(frame: &[u8]) -> Vec<usize> {
    let word = |offset: usize| {
        u32::from_le_bytes(frame[offset..offset + 4].try_into().expect("4 bytes")) as usize
    };
    let ndim = word(0);
    (0..ndim).map(|index| word(4 + 4 * index)).collect()
}

/// One golden task: the `task_assign` envelope and its frames in manifest order.
pub struct GoldenTask {
    pub task_assign: Value,
    pub frames: Vec<Vec<u8>>,
    pub result: Value,
}

/// Loads a golden case by file name, with its task id replaced by `task_id`.
pub fn golden_task(file: &str, task_id: &str) -> GoldenTask {
    let case = golden::load(file, task_id);
    let frames = case
        .tensors
        .iter()
        .map(|(shape, data)| encode_frame(shape, data))
        .collect();
    GoldenTask {
        task_assign: case.task_assign,
        frames,
        result: case.result,
    }
}

/// The worker binary running as a child process, its standard error captured line by line.
pub struct Worker {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    pub health_port: u16,
}

impl Worker {
    /// Starts the worker with `args`, a fresh health port, CPU training and the process
    /// environment cleared of `JUNIPER_CASCOR_WORKER_*`/`CASCOR_*` variables.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), args, env)
    }

    /// Starts the worker like [`Worker::start`], with the given health port.
    pub fn start_on(health_port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = worker_command();
        command
            .args([
                "--health-port",
                &health_port.to_string(),
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.envs(env.iter().copied());

        let mut child = command.spawn().expect("start the worker binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("stderr lines").push(line);
            }
        });

        Self {
            child,
            stderr,
            health_port,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Returns the standard error lines captured so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lines").clone()
    }

    /// Waits until a standard error line contains `needle` and returns it.
    pub async fn wait_for_line(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(line) = self.stderr().into_iter().find(|line| line.contains(needle)) {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line containing {needle:?}; standard error so far:\n{}",
                self.stderr().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal to the worker process (this test started it).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with the PID of a child this test spawned and has not reaped.
        let result = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(result, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Waits for the process to exit and returns its status.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the worker process") {
                // Let the reader thread drain the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker did not exit; standard error so far:\n{}",
                self.stderr().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn health_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.health_port)
    }

    /// Waits until the health server accepts requests.
    pub async fn wait_health_server(&self) {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if reqwest::get(self.health_url("/v1/health")).await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health server never answered; standard error so far:\n{}",
                self.stderr().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `path` until `accept` holds for its status and body, and returns them.
    pub async fn wait_http(&self, path: &str, accept: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        let mut last = None;
        loop {
            if let Ok(response) = reqwest::get(self.health_url(path)).await {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                if accept(status, &body) {
                    return (status, body);
                }
                last = Some((status, body));
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} never reached the expected state; last answer {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Returns the value of the series `name` (exact name with labels) in a Prometheus text page.
pub fn metric_value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}
