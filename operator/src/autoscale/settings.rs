//! `spec.autoscaling` validated into settings with every default applied. No I/O.

use std::time::Duration;

use reqwest::Url;
use thiserror::Error;

use super::decision::{Bounds, BoundsError};
use crate::crd::{CascorWorkerPool, SecretKeyRef};
use crate::duration::parse_duration;

/// Default `minReplicas`.
pub const DEFAULT_MIN_REPLICAS: i32 = 1;
/// Default `pollInterval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Default `scaleDownDelay`.
pub const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(300);
/// Default key of the credentials Secret.
pub const DEFAULT_CREDENTIALS_KEY: &str = "token";

/// Invalid `spec.autoscaling`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    /// Autoscaling is enabled without `maxReplicas`.
    #[error("autoscaling.maxReplicas is required when autoscaling is enabled")]
    MissingMaximum,
    /// Bad bounds.
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    /// A duration field does not parse.
    #[error("autoscaling.{field} is {value:?}, which is not a duration such as \"30s\" or \"5m\"")]
    InvalidDuration {
        /// Field name.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// `pollInterval` is zero.
    #[error("autoscaling.pollInterval must be longer than 0s")]
    ZeroPollInterval,
    /// The REST URL does not parse or has the wrong scheme.
    #[error("{field} is {value:?}, which is not a valid {expected} URL")]
    InvalidUrl {
        /// Field the URL came from.
        field: &'static str,
        /// The value as written.
        value: String,
        /// Expected schemes.
        expected: &'static str,
    },
}

/// Validated autoscaling settings of one pool.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscaleSettings {
    /// Bounds of the worker count.
    pub bounds: Bounds,
    /// Time between two polls of the server.
    pub poll_interval: Duration,
    /// How long a lower recommendation must last before a scale-down.
    pub scale_down_delay: Duration,
    /// Base URL of the server's REST API, without a trailing path.
    pub rest_base_url: Url,
    /// Secret key with the API key, if any.
    pub credentials: Option<SecretKeyRef>,
    /// Secret key with a CA bundle for an `https` server, if any.
    pub server_ca: Option<SecretKeyRef>,
}

impl AutoscaleSettings {
    /// Reads the pool's autoscaling settings. Returns `Ok(None)` when autoscaling is off.
    pub fn from_pool(pool: &CascorWorkerPool) -> Result<Option<Self>, SettingsError> {
        let Some(autoscaling) = pool.spec.autoscaling.as_ref() else {
            return Ok(None);
        };
        if autoscaling.enabled != Some(true) {
            return Ok(None);
        }

        let max = autoscaling
            .max_replicas
            .ok_or(SettingsError::MissingMaximum)?;
        let min = autoscaling
            .min_replicas
            .unwrap_or(DEFAULT_MIN_REPLICAS.min(max));
        let bounds = Bounds::new(min, max)?;

        let poll_interval =
            optional_duration("pollInterval", autoscaling.poll_interval.as_deref())?
                .unwrap_or(DEFAULT_POLL_INTERVAL);
        if poll_interval.is_zero() {
            return Err(SettingsError::ZeroPollInterval);
        }
        let scale_down_delay =
            optional_duration("scaleDownDelay", autoscaling.scale_down_delay.as_deref())?
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY);

        let rest = autoscaling.server.as_ref();
        let rest_base_url = match rest.and_then(|server| server.url.as_deref()) {
            Some(url) => parse_rest_url(url)?,
            None => derive_rest_url(&pool.spec.server.url)?,
        };
        let credentials = rest
            .and_then(|server| server.credentials_secret_ref.clone())
            .or_else(|| pool.spec.server.token_secret_ref.clone());
        let server_ca = pool
            .spec
            .server
            .tls
            .as_ref()
            .and_then(|tls| tls.server_ca_secret_ref.clone());

        Ok(Some(Self {
            bounds,
            poll_interval,
            scale_down_delay,
            rest_base_url,
            credentials,
            server_ca,
        }))
    }
}

/// Derives the REST base URL from the worker endpoint. `ws` becomes `http` and `wss` becomes
/// `https`. The host and port stay, and the path, query and any user information are
/// dropped.
pub fn derive_rest_url(worker_url: &str) -> Result<Url, SettingsError> {
    let invalid = || SettingsError::InvalidUrl {
        field: "server.url",
        value: worker_url.to_owned(),
        expected: "ws:// or wss://",
    };

    let mut url = Url::parse(worker_url).map_err(|_| invalid())?;
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return Err(invalid()),
    };
    if url.host_str().is_none() {
        return Err(invalid());
    }
    url.set_scheme(scheme).map_err(|()| invalid())?;
    url.set_username("").map_err(|()| invalid())?;
    url.set_password(None).map_err(|()| invalid())?;
    url.set_path("");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Parses `autoscaling.server.url`, keeping a base path for a server behind a prefix.
fn parse_rest_url(value: &str) -> Result<Url, SettingsError> {
    let invalid = || SettingsError::InvalidUrl {
        field: "autoscaling.server.url",
        value: value.to_owned(),
        expected: "http:// or https://",
    };

    let url = Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

fn optional_duration(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<Duration>, SettingsError> {
    value
        .map(|text| {
            parse_duration(text).map_err(|_| SettingsError::InvalidDuration {
                field,
                value: text.to_owned(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_url_from_worker_url() {
        let cases = [
            (
                "ws://juniper-cascor.ml.svc:8200/ws/v1/workers",
                "http://juniper-cascor.ml.svc:8200/",
            ),
            (
                "wss://user:pw@cascor.example:443/ws/v1/workers?x=1",
                "https://cascor.example/",
            ),
            (
                "wss://cascor.example:9443/ws",
                "https://cascor.example:9443/",
            ),
        ];
        for (worker_url, expected) in cases {
            let derived = derive_rest_url(worker_url).expect("derives");
            assert_eq!(derived.as_str(), expected, "from {worker_url}");
        }

        assert!(derive_rest_url("http://cascor:8200").is_err());
        assert!(derive_rest_url("not a url").is_err());
    }
}
