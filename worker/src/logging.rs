//! Log output: `tracing` events as text or JSON lines on standard error.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Libraries whose debug output is capped at INFO: their handshake and frame traces are
/// noise for operators, and request traces may include the `X-API-Key` header.
const QUIET_DEPENDENCIES: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "reqwest",
    "axum",
    "tower",
    "tower_http",
];

/// Failure to install the global subscriber.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid RUST_LOG filter {filter:?}: {reason}")]
    InvalidFilter { filter: String, reason: String },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Builds the event filter: `RUST_LOG` when it is set and non-empty (a debugging aid that
/// can show library internals), otherwise the configured level for this worker's events
/// and at most INFO for the libraries in [`QUIET_DEPENDENCIES`].
pub fn filter(settings: &LogSettings, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    if let Some(directives) = rust_log.map(str::trim).filter(|value| !value.is_empty()) {
        return EnvFilter::builder().parse(directives).map_err(|error| {
            LoggingError::InvalidFilter {
                filter: directives.to_owned(),
                reason: error.to_string(),
            }
        });
    }

    let level = settings.level.as_tracing();
    let mut directives = vec![level.to_string().to_lowercase()];
    if level > tracing::Level::INFO {
        directives.extend(
            QUIET_DEPENDENCIES
                .iter()
                .map(|target| format!("{target}=info")),
        );
    }

    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|error| LoggingError::InvalidFilter {
            filter: directives.join(","),
            reason: error.to_string(),
        })
}

/// Installs the global subscriber that writes to standard error.
///
/// Text lines carry a timestamp, the level, the target (module path), the message and the
/// event's fields; JSON lines carry the same as keys of one object per line.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(settings, rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);

    let installed = match settings.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };

    installed.map_err(|_| LoggingError::AlreadyInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;

    fn settings(level: LogLevel) -> LogSettings {
        LogSettings {
            level,
            format: LogFormat::Text,
        }
    }

    #[test]
    fn debug_level_quiets_dependencies() {
        let rendered = filter(&settings(LogLevel::Debug), None)
            .expect("valid filter")
            .to_string();

        assert!(rendered.contains("debug"), "{rendered}");
        assert!(rendered.contains("tungstenite=info"), "{rendered}");
    }

    #[test]
    fn warning_level_maps_to_warn() {
        let rendered = filter(&settings(LogLevel::Warning), None)
            .expect("valid filter")
            .to_string();

        assert_eq!(rendered, "warn");
    }

    #[test]
    fn rust_log_overrides_level() {
        let rendered = filter(
            &settings(LogLevel::Info),
            Some("juniper_cascor_worker=trace"),
        )
        .expect("valid filter")
        .to_string();

        assert_eq!(rendered, "juniper_cascor_worker=trace");
    }

    #[test]
    fn invalid_rust_log_rejected() {
        let error = filter(&settings(LogLevel::Info), Some("=[")).expect_err("invalid filter");

        assert!(
            error
                .to_string()
                .starts_with("invalid RUST_LOG filter \"=[\""),
            "{error}"
        );
    }
}
