//! WebSocket agent: connects to juniper-cascor, registers, heartbeats and trains the
//! candidate tasks it is assigned.
//!
//! [`run`] keeps one connection at a time. A connection that fails or drops is retried
//! after an exponential backoff with jitter, reset once a registration succeeds.
//!
//! A task whose connection dropped before its result was sent is abandoned. The server
//! requeues it on disconnect and would reject a late result from the new connection.
//! So the result of a training still running is discarded, and the task counts as
//! failed in the heartbeat counters.

pub mod backoff;
mod capabilities;
mod connect;
pub mod observer;
mod session;
pub mod settings;
pub mod stats;

use std::sync::{Arc, Mutex};

use cascor_trainer::Trainer;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use capabilities::capabilities;
pub use connect::{ConnectError, OPEN_TIMEOUT, upgrade_request};
pub use session::MIN_REPLY_TIMEOUT;

use backoff::Backoff;
use observer::{AgentObserver, ConnectionState};
use session::{SessionContext, SessionEnd};
use settings::AgentSettings;
use stats::TaskStats;

/// Error that stops the agent before its first connection. Connection problems never
/// end the agent, because it retries them.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidServerUrl { url: String, reason: &'static str },
    #[error("the auth token contains characters that are not allowed in an HTTP header")]
    InvalidAuthToken,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Runs the agent until `shutdown` is cancelled.
///
/// On cancellation the agent stops taking new work and stops idle heartbeats, finishes
/// and delivers the task in flight, closes the socket with a normal close frame and
/// returns `Ok`. A pending connect or backoff wait ends at once.
pub async fn run(
    settings: AgentSettings,
    trainer: Arc<Trainer>,
    observer: Arc<dyn AgentObserver>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let scheme = connect::scheme_of(&settings.server_url)?;
    let request = connect::upgrade_request(&settings)?;
    if scheme == connect::Scheme::Wss {
        crate::tls::validate_tls_files(&settings.tls)?;
    }

    let client_id = settings.identity.client_id.clone();
    let context = SessionContext {
        capabilities: capabilities(&trainer, &settings.identity),
        settings: Arc::new(settings),
        trainer,
        observer,
        shutdown,
        client_id,
        stats: Arc::new(Mutex::new(TaskStats::default())),
    };
    let settings = &context.settings;
    let observer = &context.observer;

    let mut backoff = Backoff::new(
        settings.reconnect_backoff_base,
        settings.reconnect_backoff_max,
    );
    let mut attempt: u64 = 0;
    while !context.shutdown.is_cancelled() {
        attempt += 1;
        observer.connection_state(ConnectionState::Connecting);

        let opened = tokio::select! {
            opened = connect::open(settings, request.clone()) => opened,
            _ = context.shutdown.cancelled() => break,
        };
        let delay = match opened {
            Ok(socket) => {
                tracing::info!(server_url = %settings.server_url, attempt, "Connected to {}", settings.server_url);
                match session::run_session(&context, socket).await {
                    SessionEnd::Shutdown => break,
                    SessionEnd::Lost { registered, reason } => {
                        if registered {
                            backoff.reset();
                        }
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            reason = %reason,
                            retry_in_s = delay.as_secs_f64(),
                            "Connection lost: {reason} — reconnecting"
                        );
                        delay
                    }
                }
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %error,
                    attempt,
                    "Connection attempt {attempt} failed, retrying in {:.1}s",
                    delay.as_secs_f64()
                );
                delay
            }
        };

        observer.connection_state(ConnectionState::Disconnected);
        observer.reconnect_scheduled(delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = context.shutdown.cancelled() => break,
        }
    }

    observer.connection_state(ConnectionState::Stopped);
    tracing::info!("Worker agent stopped");
    Ok(())
}
