//! Client for the juniper-cascor REST API: the three reads the autoscaler needs.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::signal::{
    Envelope, RemoteWorker, RunState, ServerSnapshot, TrainingParamsData, TrainingStatusData,
    WorkersData,
};

/// Header juniper-cascor reads the API key from.
const API_KEY_HEADER: &str = "x-api-key";
/// Connect timeout of every request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A failed read of the server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client for {base_url}: {source}")]
    Build {
        /// REST base URL.
        base_url: Url,
        /// Cause.
        source: reqwest::Error,
    },
    /// The base URL cannot have paths joined onto it.
    #[error("the REST base URL {base_url} cannot be used as a base for request paths")]
    InvalidBaseUrl {
        /// REST base URL.
        base_url: Url,
    },
    /// The CA bundle is not valid PEM.
    #[error("the server CA bundle is not a valid PEM certificate: {0}")]
    InvalidCa(reqwest::Error),
    /// The API key contains bytes that cannot go in an HTTP header.
    #[error("the API key contains characters that are not allowed in an HTTP header")]
    InvalidApiKey,
    /// A request failed: refused, timed out, TLS error.
    #[error("GET {url} failed: {source}")]
    Request {
        /// Requested URL.
        url: Url,
        /// Cause.
        source: reqwest::Error,
    },
    /// The server returned an error status.
    #[error("GET {url} returned HTTP {status}")]
    Status {
        /// Requested URL.
        url: Url,
        /// Status code.
        status: StatusCode,
    },
    /// The body is not the expected JSON.
    #[error("GET {url} returned a body that is not the expected JSON: {source}")]
    Decode {
        /// Requested URL.
        url: Url,
        /// Cause.
        source: reqwest::Error,
    },
}

impl ClientError {
    /// Fixed label for metrics and condition reasons.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Build { .. }
            | Self::InvalidBaseUrl { .. }
            | Self::InvalidCa(_)
            | Self::InvalidApiKey => "ClientConfiguration",
            Self::Request { .. } => "RequestFailed",
            Self::Status { .. } => "ErrorStatus",
            Self::Decode { .. } => "InvalidResponse",
        }
    }
}

/// Reads the training state and the registered workers of one juniper-cascor server.
#[derive(Clone, Debug)]
pub struct CascorRestClient {
    http: reqwest::Client,
    base_url: Url,
    status_url: Url,
    params_url: Url,
    workers_url: Url,
}

impl CascorRestClient {
    /// Builds a client for `base_url` (for example `http://cascor:8200/`). The API key, when
    /// given, is sent as `X-API-Key` and marked sensitive so it is never printed. A PEM CA
    /// bundle, when given, is trusted in addition to the built-in roots. Redirects are not
    /// followed, so the key only ever goes to `base_url`.
    pub fn new(
        base_url: Url,
        api_key: Option<&str>,
        ca_bundle_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            let mut value =
                HeaderValue::from_str(key.trim()).map_err(|_| ClientError::InvalidApiKey)?;
            value.set_sensitive(true);
            headers.insert(API_KEY_HEADER, value);
        }

        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            // uvicorn closes idle keep-alive connections after 5 s by default, and a request
            // sent on one as it closes fails, so every request opens its own connection.
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout);
        if let Some(pem) = ca_bundle_pem {
            for certificate in
                reqwest::Certificate::from_pem_bundle(pem).map_err(ClientError::InvalidCa)?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|source| ClientError::Build {
            base_url: base_url.clone(),
            source,
        })?;

        let base_url = with_trailing_slash(base_url);
        let endpoint = |path: &str| {
            base_url
                .join(path)
                .map_err(|_| ClientError::InvalidBaseUrl {
                    base_url: base_url.clone(),
                })
        };
        Ok(Self {
            http,
            status_url: endpoint("v1/training/status")?,
            params_url: endpoint("v1/training/params")?,
            workers_url: endpoint("v1/workers")?,
            base_url,
        })
    }

    /// Base URL the requests go to.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Reads the training state, the registered workers and, while a run is in progress,
    /// the candidate pool size.
    pub async fn snapshot(&self) -> Result<ServerSnapshot, ClientError> {
        let run = self.run_state().await?;
        let workers = self.workers().await?;
        let candidate_pool_size = if run.in_progress() {
            self.candidate_pool_size().await?
        } else {
            None
        };

        Ok(ServerSnapshot {
            run,
            candidate_pool_size,
            workers,
        })
    }

    /// `GET /v1/training/status`: the training state.
    pub async fn run_state(&self) -> Result<RunState, ClientError> {
        let status: TrainingStatusData = self.get(&self.status_url).await?;
        Ok(RunState::from_status_name(&status.state_machine.status))
    }

    /// `GET /v1/training/params`: the candidate pool size, or `None` while the server has
    /// no network (404) or reports none.
    pub async fn candidate_pool_size(&self) -> Result<Option<u32>, ClientError> {
        match self.get::<TrainingParamsData>(&self.params_url).await {
            Ok(params) => Ok(params.candidate_pool_size.filter(|size| *size > 0)),
            Err(ClientError::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `GET /v1/workers`: the registered workers.
    pub async fn workers(&self) -> Result<Vec<RemoteWorker>, ClientError> {
        let workers: WorkersData = self.get(&self.workers_url).await?;
        Ok(workers
            .workers
            .into_iter()
            .map(RemoteWorker::from)
            .collect())
    }

    async fn get<T: DeserializeOwned>(&self, url: &Url) -> Result<T, ClientError> {
        let url = url.clone();
        let response =
            self.http
                .get(url.clone())
                .send()
                .await
                .map_err(|source| ClientError::Request {
                    url: url.clone(),
                    source: source.without_url(),
                })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClientError::Status { url, status });
        }

        let envelope: Envelope<T> =
            response
                .json()
                .await
                .map_err(|source| ClientError::Decode {
                    url: url.clone(),
                    source: source.without_url(),
                })?;
        Ok(envelope.data)
    }
}

/// Makes `join` append to the base path instead of replacing its last segment.
fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}
