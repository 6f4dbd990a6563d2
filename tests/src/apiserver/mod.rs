//! A stand-in for the Kubernetes API server, for tests of the operator on loopback.
//!
//! It keeps objects in memory and serves the calls the operator and kubectl make:
//! discovery (`/api`, `/apis`, group versions with resource lists, `/version`), get, list
//! and watch with label and field selectors and resource versions (410 Gone once the watch
//! log is compacted), create, replace, JSON merge patch, server-side apply with field
//! managers and conflicts, the status and scale subresources, and delete with finalizers and
//! owner-reference garbage collection. Installing a CustomResourceDefinition serves its
//! resource. Every request is logged so that tests can count writes.
//!
//! What it does not do: schema validation and CEL rules, admission, defaulting of built-in
//! types, controllers (no pods appear for a Deployment; tests write Deployment status
//! themselves), per-key merging of associative lists in server-side apply (lists are
//! atomic), and authentication. Namespaces are not required to exist.

mod merge;
mod registry;
mod routes;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use store::{ApiError, RequestRecord, Store};

/// A running stand-in API server on 127.0.0.1.
pub struct ApiServer {
    address: SocketAddr,
    store: Arc<Store>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Starts the server on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let shutdown = CancellationToken::new();
        let state = routes::AppState {
            store: store.clone(),
            shutdown: shutdown.clone(),
            address: address.to_string(),
        };
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(state);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = server.await {
                eprintln!("stand-in API server failed: {error}");
            }
        });
        Ok(Self {
            address,
            store,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kube client for this server, for the operator under test.
    pub fn client(&self) -> kube::Client {
        let url = self.url().parse().expect("the stand-in URL is a valid URI");
        let config = kube::Config::new(url);
        kube::Client::try_from(config).expect("a plain-HTTP kube client builds")
    }

    /// A kube client for the test itself: its requests are marked, so that
    /// [`ApiServer::operator_requests`] leaves them out.
    pub fn test_client(&self) -> kube::Client {
        let url = self.url().parse().expect("the stand-in URL is a valid URI");
        let mut config = kube::Config::new(url);
        config.headers.push((
            axum::http::HeaderName::from_static(routes::CLIENT_HEADER),
            axum::http::HeaderValue::from_static("test"),
        ));
        kube::Client::try_from(config).expect("a plain-HTTP kube client builds")
    }

    /// Writes a kubeconfig that points kubectl and the operator binary at this server.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    namespace: default\n    user: standin\ncurrent-context: standin\nusers:\n- name: standin\n  user: {{}}\n",
            url = self.url()
        );
        std::fs::write(path, kubeconfig)
    }

    /// The object store, for direct inspection.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.store.requests()
    }

    /// Requests not made by [`ApiServer::test_client`]: the operator's.
    pub fn operator_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|record| record.client.is_none())
            .collect()
    }

    /// Writes (create, update, patch, delete) the operator made so far.
    pub fn operator_writes(&self) -> Vec<RequestRecord> {
        self.operator_requests()
            .into_iter()
            .filter(RequestRecord::is_write)
            .collect()
    }

    /// Drops the watch log; watches resuming from an older resource version get 410 Gone.
    pub fn compact(&self) {
        self.store.compact();
    }

    /// Stops serving; open watches end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
