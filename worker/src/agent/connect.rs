//! Opening the WebSocket: the upgrade request and the TLS connector.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::AgentError;
use super::settings::AgentSettings;
use crate::tls;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Limit on the TCP connect, TLS and WebSocket handshakes of one attempt.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Failure of one connection attempt; the agent retries after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("the server rejected the WebSocket upgrade with HTTP {status}")]
    Rejected { status: u16 },
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("connection attempt timed out after {}s", OPEN_TIMEOUT.as_secs())]
    TimedOut,
}

/// URL scheme of the server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ws,
    Wss,
}

/// Checks that `url` is a `ws://` or `wss://` URL (case-sensitive, as the reference).
pub fn scheme_of(url: &str) -> Result<Scheme, AgentError> {
    if url.starts_with("ws://") {
        Ok(Scheme::Ws)
    } else if url.starts_with("wss://") {
        Ok(Scheme::Wss)
    } else {
        Err(AgentError::InvalidServerUrl {
            url: url.to_owned(),
            reason: "the URL must start with ws:// or wss://",
        })
    }
}

/// Builds the upgrade request: standard handshake headers, `X-API-Key` only when a
/// non-empty token is configured, and never an `Origin` header, which makes the server
/// reject the connection.
pub fn upgrade_request(settings: &AgentSettings) -> Result<Request<()>, AgentError> {
    let mut request = settings
        .server_url
        .as_str()
        .into_client_request()
        .map_err(|_| AgentError::InvalidServerUrl {
            url: settings.server_url.clone(),
            reason: "the URL cannot be parsed",
        })?;

    if let Some(token) = &settings.auth_token
        && !token.expose().is_empty()
    {
        let mut value =
            HeaderValue::from_str(token.expose()).map_err(|_| AgentError::InvalidAuthToken)?;
        value.set_sensitive(true);
        request.headers_mut().insert("X-API-Key", value);
    }
    request.headers_mut().remove("Origin");

    Ok(request)
}

/// WebSocket limits: inbound messages up to a 100 MiB tensor frame plus its header.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(cascor_protocol::MAX_INBOUND_MESSAGE_BYTES))
        .max_frame_size(Some(cascor_protocol::MAX_INBOUND_MESSAGE_BYTES))
}

/// Opens one connection. TLS files are read again on every call.
pub async fn open(settings: &AgentSettings, request: Request<()>) -> Result<Socket, ConnectError> {
    let connector = match scheme_of(&settings.server_url) {
        Ok(Scheme::Wss) => Connector::Rustls(tls::client_config(&settings.tls)?),
        _ => Connector::Plain,
    };

    let handshake = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(websocket_config()),
        true,
        Some(connector),
    );
    match tokio::time::timeout(OPEN_TIMEOUT, handshake).await {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Err(ConnectError::Rejected {
                status: response.status().as_u16(),
            })
        }
        Ok(Err(error)) => Err(ConnectError::Handshake(error)),
        Err(_elapsed) => Err(ConnectError::TimedOut),
    }
}
