//! Wiring: the kube-runtime controllers, the CRD wait, leader election and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::children::{FIELD_MANAGER, managed_selector};
use crate::crd::{CRD_NAME, CascorWorkerPool};
use crate::http::{self, OperatorState};
use crate::leader::{LeaderElector, LeaseSettings};
use crate::metrics::Metrics;
use crate::reconcile::{Context, error_policy, reconcile};

/// Settings of one operator process.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Namespaces to watch; empty watches all namespaces.
    pub namespaces: Vec<String>,
    /// Address of `/healthz`, `/readyz` and `/metrics`; `None` serves nothing.
    pub http_address: Option<SocketAddr>,
    /// Leader election; `None` runs without it (a single replica).
    pub leader_election: Option<LeaseSettings>,
    /// Period of the reconcile that runs without any watch event.
    pub resync_interval: Duration,
    /// How often the CRD's presence is checked.
    pub crd_check_interval: Duration,
    /// `reportingInstance` of Events, e.g. the pod name.
    pub instance: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            http_address: None,
            leader_election: None,
            resync_interval: Duration::from_secs(300),
            crd_check_interval: Duration::from_secs(10),
            instance: FIELD_MANAGER.to_owned(),
        }
    }
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding the health and metrics server on {address} failed: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Leadership(#[from] crate::leader::LeadershipError),
}

fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Runs the pool controller for one namespace (or all) until `shutdown` fires.
async fn run_scope(ctx: Arc<Context>, namespace: Option<String>, shutdown: CancellationToken) {
    let client = ctx.client.clone();
    let scope = namespace.as_deref();
    info!(
        namespace = scope.unwrap_or("<all>"),
        "starting the CascorWorkerPool controller"
    );

    // Status-only changes of a pool (the operator's own status writes among them) do not
    // change its generation, so they trigger no reconcile.
    let (reader, writer) = reflector::store();
    let pools = watcher(
        scoped_api::<CascorWorkerPool>(&client, scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());

    let children = watcher::Config::default().labels(&managed_selector());
    Controller::for_stream(pools, reader)
        .owns(
            scoped_api::<ServiceAccount>(&client, scope),
            children.clone(),
        )
        .owns(scoped_api::<Secret>(&client, scope), children.clone())
        .owns(scoped_api::<ConfigMap>(&client, scope), children.clone())
        .owns(scoped_api::<Service>(&client, scope), children.clone())
        .owns(scoped_api::<Deployment>(&client, scope), children.clone())
        .owns(scoped_api::<PodDisruptionBudget>(&client, scope), children)
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((pool, _)) => debug!(pool = %pool.name, "reconciled"),
                Err(error) => debug!(%error, "controller reported an error"),
            }
        })
        .await;
    info!(
        namespace = scope.unwrap_or("<all>"),
        "the CascorWorkerPool controller stopped"
    );
}

/// Waits until the CascorWorkerPool CRD is installed. Returns false when `shutdown` fires.
async fn wait_for_crd(
    client: &Client,
    state: &OperatorState,
    interval: Duration,
    shutdown: &CancellationToken,
) -> bool {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut logged = false;
    loop {
        match api.get_opt(CRD_NAME).await {
            Ok(Some(_)) => return true,
            Ok(None) => {
                let reason = format!(
                    "the CustomResourceDefinition {CRD_NAME} is not installed; apply crds/{CRD_NAME}.yaml"
                );
                if !logged {
                    warn!("{reason}; waiting");
                    logged = true;
                }
                state.set_not_ready(reason);
            }
            Err(error) => {
                warn!(%error, "checking for the CustomResourceDefinition failed; retrying");
                state.set_not_ready(format!("the Kubernetes API is unreachable: {error}"));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Keeps `/readyz` accurate while the controllers run: a deleted CRD turns it unready.
async fn watch_crd_presence(
    client: Client,
    state: Arc<OperatorState>,
    interval: Duration,
    note: String,
    shutdown: CancellationToken,
) {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match api.get_opt(CRD_NAME).await {
            Ok(Some(_)) => state.set_ready(note.clone()),
            Ok(None) => state.set_not_ready(format!(
                "the CustomResourceDefinition {CRD_NAME} was removed; apply crds/{CRD_NAME}.yaml"
            )),
            Err(error) => {
                state.set_not_ready(format!("the Kubernetes API is unreachable: {error}"))
            }
        }
    }
}

/// Runs the operator until `shutdown` fires or leadership is lost.
pub async fn run(
    client: Client,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let state = Arc::new(OperatorState::new(Metrics::new()));
    run_with_state(client, options, state, shutdown).await
}

/// [`run`] with caller-provided state, so that an embedding program can read the metrics.
pub async fn run_with_state(
    client: Client,
    options: RunOptions,
    state: Arc<OperatorState>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    // Stops the helpers (HTTP server, CRD check, lease renewal) when `run` returns for any
    // reason, without cancelling the caller's token.
    let stop = shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();

    if let Some(address) = options.http_address {
        let (_, server) = http::serve(address, state.clone(), stop.clone())
            .await
            .map_err(|source| RunError::Bind { address, source })?;
        tokio::spawn(async move {
            if let Err(error) = server.await {
                warn!(%error, "health and metrics server failed");
            }
        });
    }

    if !wait_for_crd(&client, &state, options.crd_check_interval, &stop).await {
        return Ok(());
    }

    let elector = options
        .leader_election
        .clone()
        .map(|settings| Arc::new(LeaderElector::new(client.clone(), settings)));
    if let Some(elector) = &elector {
        state.set_ready(format!(
            "standing by for the leader lease {}/{}",
            elector.settings().namespace,
            elector.settings().name
        ));
        if !elector.acquire(&stop).await {
            return Ok(());
        }
        state.metrics.leader.set(1);
    }

    let note = if options.namespaces.is_empty() {
        "reconciling pools in all namespaces".to_owned()
    } else {
        format!(
            "reconciling pools in namespaces {}",
            options.namespaces.join(", ")
        )
    };
    state.set_ready(note.clone());
    tokio::spawn(watch_crd_presence(
        client.clone(),
        state.clone(),
        options.crd_check_interval,
        note,
        stop.clone(),
    ));

    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: Some(options.instance.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        state.metrics.clone(),
        Recorder::new(client.clone(), reporter),
        options.resync_interval,
    ));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let controllers_stop = stop.child_token();
    let controllers = futures::future::join_all(
        scopes
            .into_iter()
            .map(|scope| run_scope(ctx.clone(), scope, controllers_stop.clone())),
    );

    let result = match &elector {
        Some(elector) => {
            let renewal_stop = stop.child_token();
            let hold = elector.hold(&renewal_stop);
            tokio::pin!(controllers);
            tokio::select! {
                _ = &mut controllers => {
                    renewal_stop.cancel();
                    Ok(())
                }
                held = hold => {
                    // Stop writing at once; the controllers finish their reconciles in flight.
                    controllers_stop.cancel();
                    controllers.await;
                    held.map_err(RunError::from)
                }
            }
        }
        None => {
            controllers.await;
            Ok(())
        }
    };

    if let Some(elector) = &elector {
        state.metrics.leader.set(0);
        if result.is_ok() {
            elector.release().await;
        }
    }
    info!("operator stopped");
    result
}
