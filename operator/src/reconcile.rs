//! One reconcile of a pool: validate, read inputs, build, apply in order, prune, write status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::apply::{AppliedChild, ApplyOutcome, apply_child, prune_children};
use crate::autoscale::{self, Autoscaler};
use crate::children::{
    self, BuildInputs, ClusterCapabilities, FIELD_MANAGER, build_children, names,
};
use crate::crd::{CascorWorkerPool, CascorWorkerPoolStatus, GROUP, VERSION};
use crate::error::{Error, kube_error};
use crate::metrics::Metrics;
use crate::status::{self, CertificateState, Observed, rfc3339};
use crate::tls::{self, ExistingMaterial, PoolIdentity, SelfSignedMaterial, unix_now};
use crate::validate::{PoolModel, TlsModel, validate};

/// Shared state of every reconcile.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// Period of the reconcile that runs without any watch event.
    pub resync_interval: Duration,
    /// Consecutive failures per pool (`namespace/name`), for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        recorder: Recorder,
        resync_interval: Duration,
    ) -> Self {
        Self {
            client,
            metrics,
            recorder,
            resync_interval,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn reset_failures(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// Records a failure and returns the retry delay: 1 s doubled per consecutive failure,
    /// at most 5 minutes.
    fn next_backoff(&self, key: &str) -> Duration {
        let attempts = match self.failures.lock() {
            Ok(mut failures) => {
                let attempts = failures.entry(key.to_owned()).or_insert(0);
                *attempts = attempts.saturating_add(1);
                *attempts
            }
            Err(_) => 1,
        };
        let seconds = 1u64 << attempts.saturating_sub(1).min(9);
        Duration::from_secs(seconds.min(300))
    }
}

fn pool_key(pool: &CascorWorkerPool) -> String {
    format!(
        "{}/{}",
        pool.namespace().unwrap_or_default(),
        pool.name_any()
    )
}

/// Reconciles one pool. Called by the controller for every change of the pool or of a child.
#[tracing::instrument(skip_all, fields(pool = %pool.name_any(), namespace = pool.namespace().unwrap_or_default()))]
pub async fn reconcile(pool: Arc<CascorWorkerPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile_duration.start_timer();
    let result = reconcile_pool(&pool, &ctx).await;
    timer.observe_duration();

    match &result {
        Ok(_) => ctx.reset_failures(&pool_key(&pool)),
        Err(_) => {
            ctx.metrics
                .reconciliations
                .with_label_values(&["error"])
                .inc();
        }
    }
    result
}

/// Decides the retry after a failed reconcile.
pub fn error_policy(pool: Arc<CascorWorkerPool>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.next_backoff(&pool_key(&pool));
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[error.metric_label()])
        .inc();
    warn!(
        pool = %pool.name_any(),
        namespace = pool.namespace().unwrap_or_default(),
        %error,
        retry_in_seconds = delay.as_secs(),
        "reconcile failed; retrying"
    );
    Action::requeue(delay)
}

async fn reconcile_pool(pool: &CascorWorkerPool, ctx: &Context) -> Result<Action, Error> {
    if pool.spec.paused == Some(true) {
        info!("pool is paused; making no writes");
        ctx.metrics
            .reconciliations
            .with_label_values(&["paused"])
            .inc();
        return Ok(Action::requeue(ctx.resync_interval));
    }

    let mut model = match validate(pool) {
        Ok(model) => model,
        Err(error) => {
            report_invalid(pool, &error, ctx).await?;
            ctx.metrics
                .reconciliations
                .with_label_values(&["invalid"])
                .inc();
            return Ok(Action::await_change());
        }
    };

    // The autoscaler sets the worker count, and ranks the pods before a scale-down, ahead
    // of the build, so the Deployment is applied with its decision.
    let autoscaler = Autoscaler::new(
        ctx.client.clone(),
        Some(ctx.recorder.clone()),
        Some(ctx.metrics.autoscale.clone()),
    );
    let autoscaled = autoscaler.reconcile_pool(pool).await?;
    if let Some(outcome) = &autoscaled {
        model.replicas = outcome.desired_replicas;
    }

    let capabilities = detect_capabilities(&ctx.client).await?;
    let self_signed = match &model.server.tls {
        TlsModel::SelfSigned(policy) => {
            let existing = read_existing_material(&ctx.client, &model).await?;
            let identity = PoolIdentity {
                name: &model.name,
                namespace: &model.namespace,
            };
            Some(tls::ensure_self_signed(
                &existing,
                policy,
                identity,
                unix_now(),
            )?)
        }
        _ => None,
    };

    let inputs = BuildInputs {
        self_signed: self_signed.clone(),
        capabilities,
    };
    let built = build_children(&model, &inputs);
    let mut applied = Vec::with_capacity(built.len());
    for child in &built {
        applied.push(apply_child(&ctx.client, &model.namespace, child, &ctx.metrics).await?);
    }
    prune_children(
        &ctx.client,
        &model.namespace,
        &model.name,
        &model.uid,
        &built,
        capabilities,
        &ctx.metrics,
    )
    .await?;

    publish_child_events(pool, &model, &applied, self_signed.as_ref(), ctx).await;

    let observed = observe(
        &ctx.client,
        &model,
        &applied,
        self_signed.as_ref(),
        capabilities,
    )
    .await?;
    let mut status =
        status::compute_status(&model, &observed, pool.status.as_ref(), Timestamp::now());
    autoscale::apply_to_status(&mut status, autoscaled.as_ref());
    write_status_if_changed(pool, status, ctx).await?;

    ctx.metrics
        .reconciliations
        .with_label_values(&["success"])
        .inc();
    let requeue = next_requeue(ctx.resync_interval, self_signed.as_ref());
    Ok(Action::requeue(autoscaled.map_or(requeue, |outcome| {
        requeue.min(outcome.requeue_after)
    })))
}

/// The periodic resync, or the certificate renewal time when that comes first.
fn next_requeue(resync: Duration, material: Option<&SelfSignedMaterial>) -> Duration {
    let Some(material) = material else {
        return resync;
    };
    let until_renewal = u64::try_from(material.renew_at - unix_now()).unwrap_or(0);
    resync.min(Duration::from_secs(until_renewal.max(1)))
}

async fn crd_exists(client: &Client, name: &str) -> Result<bool, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let found =
        api.get_opt(name)
            .await
            .map_err(kube_error("get", "CustomResourceDefinition", "", name))?;
    Ok(found.is_some())
}

/// Finds the optional APIs (cert-manager, Prometheus Operator) installed in the cluster.
pub async fn detect_capabilities(client: &Client) -> Result<ClusterCapabilities, Error> {
    Ok(ClusterCapabilities {
        cert_manager: crd_exists(client, "certificates.cert-manager.io").await?,
        service_monitor: crd_exists(client, "servicemonitors.monitoring.coreos.com").await?,
    })
}

fn secret_string(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

async fn read_existing_material(
    client: &Client,
    model: &PoolModel,
) -> Result<ExistingMaterial, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &model.namespace);
    let ca_name = names::ca_secret(&model.name);
    let client_name = names::client_tls_secret(&model.name);
    let ca = api.get_opt(&ca_name).await.map_err(kube_error(
        "get",
        "Secret",
        &model.namespace,
        &ca_name,
    ))?;
    let client_tls = api.get_opt(&client_name).await.map_err(kube_error(
        "get",
        "Secret",
        &model.namespace,
        &client_name,
    ))?;
    let from_ca = |key| ca.as_ref().and_then(|secret| secret_string(secret, key));
    let from_client = |key| {
        client_tls
            .as_ref()
            .and_then(|secret| secret_string(secret, key))
    };
    Ok(ExistingMaterial {
        ca_cert_pem: from_ca(tls::CA_CERT_KEY),
        ca_key_pem: from_ca(tls::CA_PRIVATE_KEY_KEY),
        previous_ca_cert_pem: from_ca(tls::PREVIOUS_CA_CERT_KEY),
        client_cert_pem: from_client(tls::CERT_KEY),
        client_key_pem: from_client(tls::PRIVATE_KEY_KEY),
        client_ca_cert_pem: from_client(tls::CA_CERT_KEY),
    })
}

/// Reads what the status needs besides the applied children.
async fn observe(
    client: &Client,
    model: &PoolModel,
    applied: &[AppliedChild],
    self_signed: Option<&SelfSignedMaterial>,
    capabilities: ClusterCapabilities,
) -> Result<Observed, Error> {
    let deployment = applied
        .iter()
        .find(|child| child.kind == "Deployment")
        .and_then(|child| serde_json::from_value::<Deployment>(child.live.clone()).ok());
    let mut warnings = Vec::new();
    if model.service_monitor.is_some() && !capabilities.service_monitor {
        warnings.push(
            "spec.serviceMonitor is enabled but the servicemonitors.monitoring.coreos.com CRD is not installed".to_owned(),
        );
    }

    let certificate = match &model.server.tls {
        TlsModel::None => CertificateState::NotRequired,
        TlsModel::SelfSigned(_) => match self_signed {
            Some(material) => CertificateState::Issued {
                expiry: Some(material.client.not_after),
                message: format!(
                    "client certificate valid until {}, renewal at {}",
                    rfc3339(material.client.not_after),
                    rfc3339(material.renew_at)
                ),
            },
            None => CertificateState::Failed {
                reason: "NotIssued".into(),
                message: "no self-signed material was produced".into(),
            },
        },
        TlsModel::CertManager { .. } if !capabilities.cert_manager => CertificateState::Failed {
            reason: "CertManagerNotInstalled".into(),
            message: "TLS mode certManager needs cert-manager, but the certificates.cert-manager.io CRD is not installed".into(),
        },
        TlsModel::CertManager { .. } => {
            let live = applied
                .iter()
                .find(|child| child.kind == "Certificate")
                .map(|child| child.live.clone())
                .unwrap_or(Value::Null);
            cert_manager_state(&live)
        }
        TlsModel::Secret { secret_name } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &model.namespace);
            let secret = api
                .get_opt(secret_name)
                .await
                .map_err(kube_error("get", "Secret", &model.namespace, secret_name))?;
            user_secret_state(secret_name, secret.as_ref())
        }
    };
    Ok(Observed {
        deployment,
        certificate,
        warnings,
    })
}

fn cert_manager_state(certificate: &Value) -> CertificateState {
    let ready = certificate["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"));
    match ready {
        Some(condition) if condition["status"] == "True" => {
            let expiry = certificate["status"]["notAfter"]
                .as_str()
                .and_then(|text| text.parse::<Timestamp>().ok())
                .map(|timestamp| timestamp.as_second());
            CertificateState::Issued {
                expiry,
                message: "cert-manager issued the client certificate".into(),
            }
        }
        Some(condition) => CertificateState::Pending {
            reason: condition["reason"].as_str().unwrap_or("Pending").to_owned(),
            message: condition["message"].as_str().unwrap_or_default().to_owned(),
        },
        None => CertificateState::Pending {
            reason: "Pending".into(),
            message: "waiting for cert-manager to issue the client certificate".into(),
        },
    }
}

fn user_secret_state(secret_name: &str, secret: Option<&Secret>) -> CertificateState {
    let Some(secret) = secret else {
        return CertificateState::Failed {
            reason: "SecretNotFound".into(),
            message: format!(
                "Secret {secret_name:?} named in spec.server.tls.secretName was not found"
            ),
        };
    };
    let cert = secret_string(secret, tls::CERT_KEY);
    let key = secret_string(secret, tls::PRIVATE_KEY_KEY);
    match (cert, key) {
        (Some(cert), Some(_)) => {
            let expiry = tls::certificate_not_after(&cert);
            CertificateState::Issued {
                expiry,
                message: format!("client certificate from Secret {secret_name:?}"),
            }
        }
        _ => CertificateState::Failed {
            reason: "SecretIncomplete".into(),
            message: format!(
                "Secret {secret_name:?} needs the keys {} and {}",
                tls::CERT_KEY,
                tls::PRIVATE_KEY_KEY
            ),
        },
    }
}

async fn write_status_if_changed(
    pool: &CascorWorkerPool,
    status: CascorWorkerPoolStatus,
    ctx: &Context,
) -> Result<bool, Error> {
    if pool.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let namespace = pool.namespace().unwrap_or_default();
    let name = pool.name_any();
    let api: Api<CascorWorkerPool> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "CascorWorkerPool",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(kube_error(
        "apply status of",
        "CascorWorkerPool",
        &namespace,
        &name,
    ))?;
    ctx.metrics
        .writes
        .with_label_values(&["CascorWorkerPool", "status"])
        .inc();
    Ok(true)
}

/// Writes the invalid-spec status and a Warning Event, once per distinct error.
async fn report_invalid(
    pool: &CascorWorkerPool,
    error: &crate::validate::ValidationError,
    ctx: &Context,
) -> Result<(), Error> {
    let status = status::invalid_status(
        &pool.name_any(),
        pool.metadata.generation,
        error,
        pool.status.as_ref(),
        Timestamp::now(),
    );
    warn!(%error, "pool spec is invalid");
    if write_status_if_changed(pool, status, ctx).await? {
        publish(
            ctx,
            pool,
            EventType::Warning,
            "InvalidSpec",
            "Validate",
            error.to_string(),
        )
        .await;
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    pool: &CascorWorkerPool,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    match ctx.recorder.publish(&event, &pool.object_ref(&())).await {
        Ok(()) => ctx
            .metrics
            .writes
            .with_label_values(&["Event", "create"])
            .inc(),
        Err(error) => warn!(%error, reason, "publishing event failed"),
    }
}

/// Publishes Events for the edges of this round: first creation, scaling and certificates.
async fn publish_child_events(
    pool: &CascorWorkerPool,
    model: &PoolModel,
    applied: &[AppliedChild],
    self_signed: Option<&SelfSignedMaterial>,
    ctx: &Context,
) {
    for child in applied
        .iter()
        .filter(|child| child.outcome == ApplyOutcome::Created)
    {
        publish(
            ctx,
            pool,
            EventType::Normal,
            "Created",
            "Create",
            format!("Created {} {}", child.kind, child.name),
        )
        .await;
    }

    if let Some(deployment) = applied
        .iter()
        .find(|child| child.kind == "Deployment" && child.outcome == ApplyOutcome::Updated)
    {
        let previous = deployment.previous_replicas;
        if previous.is_some_and(|previous| previous != i64::from(model.replicas)) {
            publish(
                ctx,
                pool,
                EventType::Normal,
                "Scaled",
                "Scale",
                format!(
                    "Scaled Deployment {} from {} to {} workers",
                    deployment.name,
                    previous.unwrap_or_default(),
                    model.replicas
                ),
            )
            .await;
        }
    }

    if let Some(material) = self_signed {
        let expiry = rfc3339(material.client.not_after);
        if material.ca_renewed {
            ctx.metrics
                .certificate_renewals
                .with_label_values(&["ca"])
                .inc();
            info!(expiry = %rfc3339(material.ca.not_after), "issued a new pool CA");
        }
        if material.client_renewed {
            ctx.metrics
                .certificate_renewals
                .with_label_values(&["client"])
                .inc();
            info!(%expiry, "issued a new client certificate");
            let first = applied.iter().any(|child| {
                child.kind == "Secret"
                    && child.name == children::names::client_tls_secret(&model.name)
                    && child.outcome == ApplyOutcome::Created
            });
            if !first {
                publish(
                    ctx,
                    pool,
                    EventType::Normal,
                    "CertificateRenewed",
                    "Renew",
                    format!("Renewed the client certificate; it is valid until {expiry}"),
                )
                .await;
            }
        }
    }
}
