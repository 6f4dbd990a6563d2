//! Shared set-up of the operator scenarios: a stand-in API server with the CRD installed and
//! the operator running in-process against it.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cascor_operator::http::OperatorState;
use cascor_operator::metrics::Metrics;
use cascor_operator::{CascorWorkerPool, RunOptions};
use cascor_system_tests::apiserver::ApiServer;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, CustomResourceExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Namespace of the scenario pools.
pub const NAMESPACE: &str = "ml";

/// Maximum wait for the operator to reach an expected state. A guard against hangs, not a
/// speed requirement: every wait ends as soon as the state is reached.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, panicking with `what` after [`WAIT_LIMIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT_LIMIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs the CascorWorkerPool CRD through the API.
pub async fn install_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &CascorWorkerPool::crd())
        .await
        .expect("installing the CRD succeeds");
}

/// A stand-in API server, the CRD, and the operator running in-process.
pub struct Harness {
    pub server: ApiServer,
    /// The tests' own client; its requests are not counted as the operator's.
    pub client: Client,
    pub state: Arc<OperatorState>,
    shutdown: CancellationToken,
    operator: Option<JoinHandle<Result<(), cascor_operator::RunError>>>,
}

impl Harness {
    /// Starts everything, with a resync interval long enough not to run during a scenario.
    pub async fn start() -> Self {
        Self::start_with(RunOptions {
            resync_interval: Duration::from_secs(3600),
            crd_check_interval: Duration::from_millis(200),
            ..RunOptions::default()
        })
        .await
    }

    pub async fn start_with(options: RunOptions) -> Self {
        let server = ApiServer::start()
            .await
            .expect("the stand-in API server starts");
        let client = server.test_client();
        install_crd(&client).await;
        let state = Arc::new(OperatorState::new(Metrics::new()));
        let shutdown = CancellationToken::new();
        let operator = tokio::spawn(cascor_operator::run_with_state(
            server.client(),
            options,
            state.clone(),
            shutdown.clone(),
        ));
        Self {
            server,
            client,
            state,
            shutdown,
            operator: Some(operator),
        }
    }

    pub fn pools(&self) -> Api<CascorWorkerPool> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Creates a pool from YAML.
    pub async fn create_pool(&self, yaml: &str) -> CascorWorkerPool {
        let pool: CascorWorkerPool = serde_yaml::from_str(yaml).expect("the scenario pool parses");
        self.pools()
            .create(&PostParams::default(), &pool)
            .await
            .expect("creating the pool succeeds")
    }

    /// Stops the operator and checks that it stopped cleanly.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(operator) = self.operator.take() {
            let result = tokio::time::timeout(WAIT_LIMIT, operator)
                .await
                .expect("the operator stops after shutdown")
                .expect("the operator task did not panic");
            result.expect("the operator stopped without error");
        }
        self.server.stop().await;
    }
}
