//! Resolved settings of one agent, after the command line and environment are merged.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the agent needs to run, already validated.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// `ws://` or `wss://` URL of the server's worker endpoint, e.g.
    /// `ws://127.0.0.1:8200/ws/v1/workers`.
    pub server_url: String,
    /// Sent as `X-API-Key` on the upgrade request; `None` sends no header.
    pub auth_token: Option<Secret>,
    /// Heartbeat period while a task is in flight (the reference's `--heartbeat-interval`).
    pub heartbeat_interval: Duration,
    /// Heartbeat period while idle. The server dispatches to an idle worker only when it
    /// hears from it, so this is shorter than `heartbeat_interval`.
    pub idle_heartbeat_interval: Duration,
    /// Limit on the training of one task; an expired task gets a failure result.
    pub task_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt up to `reconnect_backoff_max`.
    pub reconnect_backoff_base: Duration,
    pub reconnect_backoff_max: Duration,
    pub tls: TlsSettings,
    pub identity: WorkerIdentity,
}

/// TLS files. They are re-read on every connection attempt, so rotated certificates
/// take effect at the next reconnect.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Extra CA bundle (PEM) trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mTLS; set together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mTLS; set together with `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Identity of the worker: its client id and the fields sent in the `register`
/// capabilities.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    /// The worker's own id, sent as `worker_id` in `register` and every heartbeat and
    /// reported on `/v1/health`. A UUID4 fixed for the life of the process; the server
    /// assigns a separate id of its own.
    pub client_id: String,
    pub hostname: String,
    /// From the Kubernetes downward API (`POD_NAME`), when set.
    pub pod_name: Option<String>,
    /// From the Kubernetes downward API (`POD_NAMESPACE`), when set.
    pub pod_namespace: Option<String>,
}

/// A secret string whose `Debug` and `Display` output is redacted, so it cannot reach
/// a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
