//! A scriptable stand-in for the server's `/ws/v1/workers` endpoint, for what the real
//! server cannot be made to do: malformed frames, stalls, rejected upgrades, mTLS, and
//! an in-process agent with a real CPU trainer to talk to it.
//!
//! Included by each agent test file with `#[path = "support/server.rs"] mod server;`.
#![allow(dead_code)]
// The upgrade callbacks must return tungstenite's large `ErrorResponse` by value.
#![allow(clippy::result_large_err)]

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cascor_protocol::encode_frame;
use futures::{SinkExt, StreamExt};
use juniper_cascor_worker::agent::observer::{
    AgentObserver, ConnectionState, Direction, TaskOutcome, TaskReport,
};
use juniper_cascor_worker::agent::settings::{AgentSettings, Secret, TlsSettings, WorkerIdentity};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_util::sync::CancellationToken;

#[path = "golden.rs"]
mod golden;

/// Upper bound on any single wait. It only keeps a broken agent from hanging the suite;
/// no test measures speed with it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// A listening stand-in server on 127.0.0.1.
pub struct StandIn {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl StandIn {
    pub async fn plain() -> Self {
        Self {
            listener: TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1"),
            tls: None,
        }
    }

    pub async fn tls(config: rustls::ServerConfig) -> Self {
        Self {
            listener: TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1"),
            tls: Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("local address").port()
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}/ws/v1/workers", self.port())
    }

    /// Accepts the next TCP connection and completes TLS when configured. Returns the
    /// stream and the client's certificate chain.
    async fn accept_transport(
        &self,
    ) -> io::Result<(Box<dyn Transport>, Vec<CertificateDer<'static>>)> {
        let (tcp, _) = self.listener.accept().await?;
        match &self.tls {
            None => Ok((Box::new(tcp), Vec::new())),
            Some(acceptor) => {
                let stream = acceptor.accept(tcp).await?;
                let chain = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|chain| chain.iter().map(|cert| cert.clone().into_owned()).collect())
                    .unwrap_or_default();
                Ok((Box::new(stream), chain))
            }
        }
    }

    /// Accepts the next TCP connection and reports whether its TLS handshake failed.
    pub async fn accept_failed_tls(&self) -> bool {
        tokio::time::timeout(WAIT_LIMIT, self.accept_transport())
            .await
            .expect("no connection attempt from the agent in time")
            .is_err()
    }

    /// Accepts the next connection and its WebSocket upgrade.
    pub async fn accept(&self) -> Connection {
        tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                // A failed TLS handshake (for example a rejected client certificate)
                // is retried by the agent; wait for the next attempt.
                let Ok((transport, client_chain)) = self.accept_transport().await else {
                    continue;
                };
                let headers = Arc::new(Mutex::new(HeaderMap::new()));
                let captured = headers.clone();
                let callback = move |request: &Request, response: Response| {
                    *captured.lock().unwrap() = request.headers().clone();
                    Ok(response)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(transport, callback).await else {
                    continue;
                };
                let headers = headers.lock().unwrap().clone();
                return Connection {
                    ws,
                    headers,
                    client_chain,
                };
            }
        })
        .await
        .expect("no WebSocket connection from the agent in time")
    }

    /// Accepts the next connection and rejects its upgrade with `status`.
    pub async fn reject_next(&self, status: StatusCode) -> HeaderMap {
        tokio::time::timeout(WAIT_LIMIT, async {
            let (transport, _) = self.accept_transport().await.expect("accept");
            let headers = Arc::new(Mutex::new(HeaderMap::new()));
            let captured = headers.clone();
            let callback = move |request: &Request,
                                 _response: Response|
                  -> Result<Response, ErrorResponse> {
                *captured.lock().unwrap() = request.headers().clone();
                let mut rejection = ErrorResponse::new(Some("rejected by the stand-in".to_owned()));
                *rejection.status_mut() = status;
                Err(rejection)
            };
            let outcome = tokio_tungstenite::accept_hdr_async(transport, callback).await;
            assert!(outcome.is_err(), "the upgrade was not rejected");
            headers.lock().unwrap().clone()
        })
        .await
        .expect("no connection attempt from the agent in time")
    }
}

/// One accepted WebSocket connection.
pub struct Connection {
    ws: WebSocketStream<Box<dyn Transport>>,
    /// Headers of the upgrade request.
    pub headers: HeaderMap,
    /// Certificate chain the client presented (empty without mTLS).
    pub client_chain: Vec<CertificateDer<'static>>,
}

impl Connection {
    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .expect("send text");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send text");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .expect("send binary");
    }

    /// Sends a binary frame and returns whether it went out; the agent may close first.
    pub async fn try_send_binary(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.send(Message::binary(bytes)).await.is_ok()
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Returns the next message other than a ping or pong, or `None` when the
    /// connection ended.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(message)) => return Some(message),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("no message from the agent in time")
    }

    /// Returns the next message of any kind, pongs included.
    pub async fn next_raw(&mut self) -> Option<Message> {
        tokio::time::timeout(WAIT_LIMIT, self.ws.next())
            .await
            .expect("no message from the agent in time")
            .and_then(Result::ok)
    }

    /// Returns the next JSON message; panics on anything else.
    pub async fn recv_json(&mut self) -> Value {
        match self.next().await {
            Some(Message::Text(text)) => {
                serde_json::from_str(text.as_str()).expect("agent sent JSON")
            }
            other => panic!("expected a JSON text message, got {other:?}"),
        }
    }

    /// Returns the next JSON message that is not a heartbeat.
    pub async fn recv_json_skipping_heartbeats(&mut self) -> Value {
        loop {
            let message = self.recv_json().await;
            if message["type"] != "heartbeat" {
                return message;
            }
        }
    }

    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.next().await {
            Some(Message::Binary(bytes)) => bytes.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Reads a `task_result` (skipping heartbeats before it) and exactly the frames its
    /// manifest declares, which must follow it directly.
    pub async fn recv_result(&mut self) -> (Value, Vec<Vec<u8>>) {
        let result = self.recv_json_skipping_heartbeats().await;
        assert_eq!(result["type"], "task_result", "{result}");
        let count = result["tensor_manifest"].as_object().map_or(0, |m| m.len());
        let mut frames = Vec::new();
        for _ in 0..count {
            frames.push(self.recv_binary().await);
        }
        (result, frames)
    }

    /// Plays the server's side of the handshake and returns the `register` message.
    pub async fn register(&mut self, server_id: &str) -> Value {
        self.send_json(json!({"type": "connection_established", "data": {"channel": "workers"}}))
            .await;
        let register = self.recv_json().await;
        assert_eq!(register["type"], "register", "{register}");
        let client_name = register["worker_id"].clone();
        self.send_json(json!({
            "type": "registration_ack",
            "worker_id": server_id,
            "data": {"status": "registered", "client_name": client_name},
        }))
        .await;
        register
    }

    /// Sends a task: the `task_assign` and its frames.
    pub async fn send_task(&mut self, task: &Task) {
        self.send_json(task.assign.clone()).await;
        for frame in &task.frames {
            self.send_binary(frame.clone()).await;
        }
    }

    /// Waits until the agent closes the connection; returns its close frame code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Some(Message::Close(frame)) => return frame.map(|frame| u16::from(frame.code)),
                Some(_) => continue,
                None => return None,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A `task_assign` and its frames.
#[derive(Clone)]
pub struct Task {
    pub assign: Value,
    pub frames: Vec<Vec<u8>>,
}

/// Builds a task on `samples` rows of deterministic pseudo-random data with two
/// inputs and one output.
pub fn synthetic_task(task_id: &str, samples: usize, epochs: u64) -> Task {
    let input_size = 2;
    let mut state: u32 = 12345;
    let mut next = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    };
    let inputs: Vec<f32> = (0..samples * input_size).map(|_| next()).collect();
    let targets: Vec<f32> = (0..samples).map(|_| next()).collect();
    let residual: Vec<f32> = (0..samples)
        .map(|row| (inputs[row * input_size] * 0.7 - inputs[row * input_size + 1] * 0.3).tanh())
        .collect();

    let assign = json!({
        "type": "task_assign",
        "task_id": task_id,
        "round_id": "round-1",
        "candidate_index": 3,
        "candidate_data": {
            "input_size": input_size, "activation_name": "Tanh", "random_value_scale": 0.1,
            "candidate_uuid": format!("uuid-{task_id}"), "candidate_seed": 7,
            "random_max_value": 4294967295u64, "sequence_max_value": 100,
        },
        "training_params": {"epochs": epochs, "learning_rate": 0.1, "display_frequency": 10},
        "tensor_manifest": {
            "candidate_input": {"shape": [samples, input_size], "dtype": "float32"},
            "y": {"shape": [samples, 1], "dtype": "float32"},
            "residual_error": {"shape": [samples, 1], "dtype": "float32"},
        },
    });
    let frames = vec![
        encode_frame(&[samples, input_size], &inputs).expect("encode"),
        encode_frame(&[samples, 1], &targets).expect("encode"),
        encode_frame(&[samples, 1], &residual).expect("encode"),
    ];
    Task { assign, frames }
}

/// Loads a golden case: its task (with `task_id` replaced) and the reference result.
pub fn golden_task(file: &str, task_id: &str) -> (Task, Value) {
    let case = golden::load(file, task_id);
    let frames = case
        .tensors
        .iter()
        .map(|(shape, data)| encode_frame(shape, data).expect("encode golden tensor"))
        .collect();
    let task = Task {
        assign: case.task_assign,
        frames,
    };
    (task, case.result)
}

/// Decodes the shape of a frame.
pub fn frame_shape(frame: &[u8]) -> Vec<usize> {
    cascor_protocol::decode_header(frame)
        .expect("valid frame")
        .shape
}

/// Agent settings for tests: short intervals so that the tests do not wait long.
pub fn settings(url: &str) -> AgentSettings {
    AgentSettings {
        server_url: url.to_owned(),
        auth_token: Some(Secret::new("test-token")),
        heartbeat_interval: Duration::from_millis(500),
        idle_heartbeat_interval: Duration::from_millis(200),
        task_timeout: Duration::from_secs(600),
        reconnect_backoff_base: Duration::from_millis(50),
        reconnect_backoff_max: Duration::from_millis(400),
        tls: TlsSettings::default(),
        identity: WorkerIdentity {
            client_id: uuid::Uuid::new_v4().to_string(),
            hostname: "test-host".to_owned(),
            pod_name: Some("worker-0".to_owned()),
            pod_namespace: Some("training".to_owned()),
        },
    }
}

/// One CPU trainer per test process; creating it sets libtorch's thread count.
pub fn trainer() -> Arc<cascor_trainer::Trainer> {
    static TRAINER: std::sync::OnceLock<Arc<cascor_trainer::Trainer>> = std::sync::OnceLock::new();
    TRAINER
        .get_or_init(|| {
            let options = cascor_trainer::TrainerOptions {
                device: cascor_trainer::Device::Cpu,
                intra_op_threads: Some(1),
            };
            Arc::new(cascor_trainer::Trainer::new(options).expect("CPU trainer"))
        })
        .clone()
}

/// Everything the agent reported, for assertions.
#[derive(Default)]
pub struct Recorded {
    pub states: Vec<ConnectionState>,
    pub registered: Vec<String>,
    pub reconnects: usize,
    pub heartbeats: usize,
    pub inbound_bytes: usize,
    pub outbound_bytes: usize,
    pub rejections: Vec<&'static str>,
    pub started: Vec<String>,
    pub finished: Vec<(String, TaskOutcome, u64)>,
}

#[derive(Default)]
pub struct RecordingObserver(pub Mutex<Recorded>);

impl RecordingObserver {
    pub fn snapshot<T>(&self, read: impl FnOnce(&Recorded) -> T) -> T {
        read(&self.0.lock().unwrap())
    }
}

impl AgentObserver for RecordingObserver {
    fn connection_state(&self, state: ConnectionState) {
        self.0.lock().unwrap().states.push(state);
    }
    fn registered(&self, worker_id: &str) {
        self.0.lock().unwrap().registered.push(worker_id.to_owned());
    }
    fn reconnect_scheduled(&self, _delay: Duration) {
        self.0.lock().unwrap().reconnects += 1;
    }
    fn heartbeat_sent(&self) {
        self.0.lock().unwrap().heartbeats += 1;
    }
    fn message(&self, direction: Direction, bytes: usize) {
        let mut recorded = self.0.lock().unwrap();
        match direction {
            Direction::Inbound => recorded.inbound_bytes += bytes,
            Direction::Outbound => recorded.outbound_bytes += bytes,
        }
    }
    fn message_rejected(&self, reason: &'static str) {
        self.0.lock().unwrap().rejections.push(reason);
    }
    fn task_started(&self, task_id: &str) {
        self.0.lock().unwrap().started.push(task_id.to_owned());
    }
    fn task_finished(&self, report: &TaskReport) {
        self.0.lock().unwrap().finished.push((
            report.task_id.clone(),
            report.outcome,
            report.epochs_completed,
        ));
    }
}

/// An agent running in this process.
pub struct RunningAgent {
    pub observer: Arc<RecordingObserver>,
    pub shutdown: CancellationToken,
    handle: JoinHandle<Result<(), juniper_cascor_worker::agent::AgentError>>,
}

impl RunningAgent {
    pub fn start(settings: AgentSettings) -> Self {
        let observer = Arc::new(RecordingObserver::default());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(juniper_cascor_worker::agent::run(
            settings,
            trainer(),
            observer.clone(),
            shutdown.clone(),
        ));
        Self {
            observer,
            shutdown,
            handle,
        }
    }

    /// Cancels the token and waits for `run` to return.
    pub async fn stop(self) -> Result<(), juniper_cascor_worker::agent::AgentError> {
        self.shutdown.cancel();
        self.join().await
    }

    pub async fn join(self) -> Result<(), juniper_cascor_worker::agent::AgentError> {
        tokio::time::timeout(WAIT_LIMIT, self.handle)
            .await
            .expect("agent did not stop in time")
            .expect("agent task panicked")
    }
}

/// A CA and certificates issued by it, written as PEM files into a temporary folder.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let certificate = params.self_signed(&key).expect("self-signed CA");
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            ca_pem: certificate.pem(),
            ca_der: certificate.der().clone(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// Issues a certificate for `names` (DNS names or IP addresses). Returns the
    /// certificate PEM, the PKCS#8 key PEM and the certificate and key DER.
    pub fn issue(&self, names: &[&str], common_name: &str) -> Issued {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params = rcgen::CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let certificate = params.signed_by(&key, &self.ca).expect("signed leaf");
        Issued {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            cert_der: certificate.der().clone(),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    pub fn write(&self, file: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, contents).expect("write PEM file");
        path
    }

    pub fn ca_file(&self) -> PathBuf {
        self.write("ca.pem", &self.ca_pem)
    }

    /// A server configuration with a certificate for 127.0.0.1, optionally requiring a
    /// client certificate issued by `client_ca`.
    pub fn server_config(&self, client_ca: Option<&Pki>) -> rustls::ServerConfig {
        let issued = self.issue(&["127.0.0.1"], "stand-in server");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(client_ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(client_ca.ca_der.clone()).expect("client CA");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(vec![issued.cert_der, self.ca_der.clone()], issued.key_der)
            .expect("server certificate")
    }
}

/// A certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivateKeyDer<'static>,
}

/// Whether the DER certificate contains `text`, for example its common name.
pub fn certificate_mentions(certificate: &CertificateDer<'_>, text: &str) -> bool {
    certificate
        .as_ref()
        .windows(text.len())
        .any(|window| window == text.as_bytes())
}
