//! The autoscaler's I/O: read the credentials, poll the server, annotate pods, record the
//! decision. The rule itself is [`super::decision::decide`].

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::client::CascorRestClient;
use super::decision::{Decision, DecisionInput, Observation, PoolSignal, ScaleDirection, decide};
use super::deletion_cost::{
    DELETION_COST_ANNOTATION, WorkerCounts, classify_pods, count_workers, plan_deletion_costs,
};
use super::metrics::AutoscaleMetrics;
use super::settings::{AutoscaleSettings, DEFAULT_CREDENTIALS_KEY, SettingsError};
use crate::children::selector_string;
use crate::crd::{AutoscalingStatus, CascorWorkerPool, CascorWorkerPoolStatus, SecretKeyRef};

/// Condition type the autoscaler sets on the pool while autoscaling is enabled.
pub const SCALING_ACTIVE_CONDITION: &str = "ScalingActive";
/// Field manager of the pod annotation patches.
const FIELD_MANAGER: &str = "cascor-operator";
/// Default key of a CA bundle Secret.
const DEFAULT_CA_KEY: &str = "ca.crt";
/// Limit on one REST request to the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An autoscaling reconcile that could not run.
#[derive(Debug, Error)]
pub enum AutoscaleError {
    /// `spec.autoscaling` is invalid.
    #[error("invalid spec.autoscaling of pool {pool}: {source}")]
    Settings {
        /// `namespace/name` of the pool.
        pool: String,
        /// The invalid field and value.
        source: SettingsError,
    },
    /// The pool has no namespace.
    #[error("pool {0} has no namespace")]
    MissingNamespace(String),
    /// The pool's pods could not be listed.
    #[error("failed to list the worker pods of pool {namespace}/{pool}: {source}")]
    ListPods {
        /// Namespace of the pool.
        namespace: String,
        /// Name of the pool.
        pool: String,
        /// Cause.
        source: kube::Error,
    },
}

impl AutoscaleError {
    /// Fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Settings { .. } => "InvalidSpec",
            Self::MissingNamespace(_) => "MissingNamespace",
            Self::ListPods { .. } => "ListPods",
        }
    }
}

/// Result of one autoscaling reconcile, for the reconciler to apply and write.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscaleOutcome {
    /// Replicas to set on the Deployment.
    pub desired_replicas: i32,
    /// The rule's decision.
    pub decision: Decision,
    /// Value of `status.autoscaling`.
    pub status: AutoscalingStatus,
    /// The `ScalingActive` condition.
    pub condition: Condition,
    /// When to reconcile again to poll the server.
    pub requeue_after: Duration,
}

/// Failure to read the server. The `label` goes into metrics and the condition reason.
struct PollFailure {
    label: &'static str,
    message: String,
}

/// Runs the autoscaling step of a pool's reconcile.
#[derive(Clone)]
pub struct Autoscaler {
    client: kube::Client,
    recorder: Option<Recorder>,
    metrics: Option<AutoscaleMetrics>,
}

impl Autoscaler {
    /// Creates an autoscaler. Without a recorder no Events are published, and without
    /// metrics none are recorded.
    pub fn new(
        client: kube::Client,
        recorder: Option<Recorder>,
        metrics: Option<AutoscaleMetrics>,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
        }
    }

    /// Lists the pool's worker pods by the Deployment's selector and runs
    /// [`Self::reconcile`]. Returns `Ok(None)` when autoscaling is disabled.
    pub async fn reconcile_pool(
        &self,
        pool: &CascorWorkerPool,
    ) -> Result<Option<AutoscaleOutcome>, AutoscaleError> {
        if !autoscaling_enabled(pool) {
            return Ok(None);
        }
        let pool_name = pool.name_any();
        let namespace = pool
            .namespace()
            .ok_or_else(|| AutoscaleError::MissingNamespace(pool_name.clone()))?;

        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let selector = selector_string(&pool_name);
        let pods = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| AutoscaleError::ListPods {
                namespace: namespace.clone(),
                pool: pool_name.clone(),
                source,
            })?;

        self.reconcile(pool, &pods.items).await
    }

    /// Decides the worker count of `pool` from the server's state. `pods` are the pool's
    /// worker pods. Returns `Ok(None)` when autoscaling is disabled.
    ///
    /// Before a scale-down, the pods get their deletion cost; when a patch fails the count
    /// stays as it is. A server that cannot be read keeps the count and sets `ScalingActive`
    /// to false.
    pub async fn reconcile(
        &self,
        pool: &CascorWorkerPool,
        pods: &[Pod],
    ) -> Result<Option<AutoscaleOutcome>, AutoscaleError> {
        let pool_name = pool.name_any();
        let namespace = pool
            .namespace()
            .ok_or_else(|| AutoscaleError::MissingNamespace(pool_name.clone()))?;
        let settings =
            AutoscaleSettings::from_pool(pool).map_err(|source| AutoscaleError::Settings {
                pool: format!("{namespace}/{pool_name}"),
                source,
            })?;
        let Some(settings) = settings else {
            return Ok(None);
        };

        let span = tracing::info_span!("autoscale", pool = %pool_name, namespace = %namespace);
        let _entered = span.enter();
        let previous = pool
            .status
            .as_ref()
            .and_then(|status| status.autoscaling.clone())
            .unwrap_or_default();
        let now = Timestamp::now();

        let poll = self.poll(&settings, &namespace).await;
        let (observation, workers) = match &poll {
            Ok(snapshot) => {
                let classified = classify_pods(&namespace, pods, &snapshot.workers);
                let counts = count_workers(&classified);
                let signal = PoolSignal {
                    run: snapshot.run,
                    candidate_pool_size: snapshot.candidate_pool_size,
                    busy_workers: counts.busy,
                };
                (Observation::Reachable(signal), Some((classified, counts)))
            }
            Err(failure) => {
                warn!(
                    server = %settings.rest_base_url,
                    error = %failure.message,
                    "failed to read the juniper-cascor server; keeping the worker count"
                );
                if let Some(metrics) = &self.metrics {
                    metrics.record_poll_error(&namespace, &pool_name, failure.label);
                }
                (Observation::Unreachable, None)
            }
        };

        let current_replicas = current_replicas(pool, &settings);
        let mut decision = decide(&DecisionInput {
            bounds: settings.bounds,
            current_replicas,
            scale_down_delay: settings.scale_down_delay,
            scale_down_pending_since: previous
                .scale_down_pending_since
                .as_ref()
                .map(|time| time.0),
            now,
            observation,
        });
        debug!(
            current = decision.current_replicas,
            recommended = decision.recommended_replicas,
            desired = decision.desired_replicas,
            reason = decision.reason.label(),
            "autoscaling decision"
        );

        let mut annotation_failure = None;
        if decision.direction() == ScaleDirection::Down
            && let Some((classified, _)) = &workers
        {
            let patches = plan_deletion_costs(classified);
            if let Err(message) = self.annotate_pods(&namespace, &patches).await {
                warn!(error = %message, "failed to set pod deletion costs; keeping the worker count");
                decision.desired_replicas = decision.current_replicas;
                annotation_failure = Some(message);
            }
        }

        let counts = workers.as_ref().map(|(_, counts)| *counts);
        let status = next_status(&previous, &decision, poll.as_ref().ok(), counts, now);
        let condition = scaling_condition(
            pool,
            &decision,
            poll.as_ref().err(),
            annotation_failure.as_deref(),
            now,
        );

        self.record(pool, &namespace, &decision, counts, poll.as_ref().err())
            .await;

        Ok(Some(AutoscaleOutcome {
            desired_replicas: decision.desired_replicas,
            decision,
            status,
            condition,
            requeue_after: settings.poll_interval,
        }))
    }

    /// Reads the credentials and polls the server.
    async fn poll(
        &self,
        settings: &AutoscaleSettings,
        namespace: &str,
    ) -> Result<super::signal::ServerSnapshot, PollFailure> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let credentials_failure = |message: String| PollFailure {
            label: "CredentialsUnavailable",
            message,
        };

        let api_key = match &settings.credentials {
            Some(reference) => Some(
                read_secret_key(&secrets, reference, DEFAULT_CREDENTIALS_KEY)
                    .await
                    .map_err(credentials_failure)?,
            ),
            None => None,
        };
        let ca_bundle = match &settings.server_ca {
            Some(reference) => Some(
                read_secret_key(&secrets, reference, DEFAULT_CA_KEY)
                    .await
                    .map_err(credentials_failure)?,
            ),
            None => None,
        };

        let api_key = api_key.map(String::from_utf8).transpose().map_err(|_| {
            credentials_failure("the API key in the credentials Secret is not UTF-8".to_owned())
        })?;
        let client = CascorRestClient::new(
            settings.rest_base_url.clone(),
            api_key.as_deref(),
            ca_bundle.as_deref(),
            REQUEST_TIMEOUT,
        )
        .map_err(|error| PollFailure {
            label: error.label(),
            message: error.to_string(),
        })?;

        client.snapshot().await.map_err(|error| PollFailure {
            label: error.label(),
            message: error.to_string(),
        })
    }

    /// Sets the deletion-cost annotation on each pod by a JSON merge patch.
    async fn annotate_pods(
        &self,
        namespace: &str,
        patches: &[super::deletion_cost::DeletionCostPatch],
    ) -> Result<(), String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };

        for patch in patches {
            let body = json!({
                "metadata": {
                    "annotations": { DELETION_COST_ANNOTATION: patch.cost.to_string() }
                }
            });
            pods.patch(&patch.pod_name, &params, &Patch::Merge(&body))
                .await
                .map_err(|error| {
                    format!(
                        "failed to patch pod {namespace}/{}: {error}",
                        patch.pod_name
                    )
                })?;
            debug!(pod = %patch.pod_name, cost = patch.cost, activity = ?patch.activity, "set pod deletion cost");
        }
        Ok(())
    }

    /// Logs, counts and publishes an Event for a change of the count, and a Warning Event
    /// when the server becomes unreachable.
    async fn record(
        &self,
        pool: &CascorWorkerPool,
        namespace: &str,
        decision: &Decision,
        counts: Option<WorkerCounts>,
        failure: Option<&PollFailure>,
    ) {
        let pool_name = pool.name_any();
        let direction = decision.direction();

        if let Some(metrics) = &self.metrics {
            metrics.set_replicas(
                namespace,
                &pool_name,
                decision.desired_replicas,
                decision.recommended_replicas,
            );
            if let Some(counts) = counts {
                metrics.set_workers(namespace, &pool_name, counts.busy, counts.idle);
            }
            if direction != ScaleDirection::None {
                metrics.record_scaling(
                    namespace,
                    &pool_name,
                    direction.label(),
                    decision.reason.label(),
                );
            }
        }

        let event = if direction != ScaleDirection::None {
            info!(
                from = decision.current_replicas,
                to = decision.desired_replicas,
                reason = decision.reason.label(),
                "scaling the worker pool"
            );
            Some(Event {
                type_: EventType::Normal,
                reason: if direction == ScaleDirection::Up {
                    "ScaledUp"
                } else {
                    "ScaledDown"
                }
                .to_owned(),
                note: Some(format!(
                    "Scaled the worker pool from {} to {} because {}",
                    decision.current_replicas,
                    decision.desired_replicas,
                    decision.reason.describe()
                )),
                action: "Scale".to_owned(),
                secondary: None,
            })
        } else if let Some(failure) = failure
            && was_scaling_active(pool)
        {
            Some(Event {
                type_: EventType::Warning,
                reason: "ServerUnreachable".to_owned(),
                note: Some(format!(
                    "Keeping {} workers because the juniper-cascor server could not be read: {}",
                    decision.desired_replicas, failure.message
                )),
                action: "Poll".to_owned(),
                secondary: None,
            })
        } else {
            None
        };

        if let (Some(recorder), Some(event)) = (&self.recorder, event)
            && let Err(error) = recorder.publish(&event, &pool.object_ref(&())).await
        {
            warn!(%error, reason = %event.reason, "failed to publish an Event");
        }
    }
}

/// Stores the outcome in a freshly computed status: `status.autoscaling` and the
/// `ScalingActive` condition, replacing an earlier one. Without an outcome (autoscaling
/// disabled) both are removed.
pub fn apply_to_status(status: &mut CascorWorkerPoolStatus, outcome: Option<&AutoscaleOutcome>) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|condition| condition.type_ != SCALING_ACTIVE_CONDITION);

    match outcome {
        Some(outcome) => {
            conditions.push(outcome.condition.clone());
            status.autoscaling = Some(outcome.status.clone());
        }
        None => status.autoscaling = None,
    }
}

/// Returns whether `spec.autoscaling.enabled` is true.
fn autoscaling_enabled(pool: &CascorWorkerPool) -> bool {
    pool.spec
        .autoscaling
        .as_ref()
        .and_then(|autoscaling| autoscaling.enabled)
        == Some(true)
}

/// Replicas for the pool's Deployment: the autoscaler's last decision while autoscaling is
/// enabled, `spec.replicas` (default 1) otherwise. Before the first decision, and when
/// `spec.autoscaling` is invalid, `spec.replicas` applies within the bounds that parse.
pub fn desired_replicas(pool: &CascorWorkerPool) -> i32 {
    match AutoscaleSettings::from_pool(pool) {
        Ok(Some(settings)) => current_replicas(pool, &settings),
        Ok(None) | Err(_) => pool.spec.replicas.unwrap_or(1).max(0),
    }
}

/// Returns the count in force: the last decision, or `spec.replicas` clamped into the bounds before
/// the first one.
fn current_replicas(pool: &CascorWorkerPool, settings: &AutoscaleSettings) -> i32 {
    let last_decision = pool
        .status
        .as_ref()
        .and_then(|status| status.autoscaling.as_ref())
        .and_then(|autoscaling| autoscaling.desired_replicas);

    last_decision.unwrap_or_else(|| {
        pool.spec
            .replicas
            .unwrap_or(1)
            .clamp(settings.bounds.min(), settings.bounds.max())
    })
}

/// Builds `status.autoscaling` from the previous one and this decision.
fn next_status(
    previous: &AutoscalingStatus,
    decision: &Decision,
    snapshot: Option<&super::signal::ServerSnapshot>,
    counts: Option<WorkerCounts>,
    now: Timestamp,
) -> AutoscalingStatus {
    let changed = decision.direction() != ScaleDirection::None;
    let as_i32 = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);

    AutoscalingStatus {
        desired_replicas: Some(decision.desired_replicas),
        run_active: snapshot
            .map(|snapshot| snapshot.run.in_progress())
            .or(previous.run_active),
        candidate_pool_size: match snapshot {
            Some(snapshot) => snapshot.candidate_pool_size.map(as_i32),
            None => previous.candidate_pool_size,
        },
        connected_workers: counts
            .map(|counts| as_i32(counts.connected))
            .or(previous.connected_workers),
        busy_workers: counts
            .map(|counts| as_i32(counts.busy))
            .or(previous.busy_workers),
        idle_workers: counts
            .map(|counts| as_i32(counts.idle))
            .or(previous.idle_workers),
        last_scale_time: if changed {
            Some(Time(now))
        } else {
            previous.last_scale_time.clone()
        },
        last_scale_reason: if changed {
            Some(decision.reason.describe())
        } else {
            previous.last_scale_reason.clone()
        },
        scale_down_pending_since: decision.scale_down_pending_since.map(Time),
    }
}

/// Builds the `ScalingActive` condition, keeping the previous transition time while its
/// status stays the same.
fn scaling_condition(
    pool: &CascorWorkerPool,
    decision: &Decision,
    failure: Option<&PollFailure>,
    annotation_failure: Option<&str>,
    now: Timestamp,
) -> Condition {
    let (status, reason, message) = match (failure, annotation_failure) {
        (Some(failure), _) => (
            "False",
            failure.label.to_owned(),
            format!(
                "The juniper-cascor server could not be read, so the worker count stays at {}: {}",
                decision.desired_replicas, failure.message
            ),
        ),
        (None, Some(message)) => (
            "False",
            "DeletionCostFailed".to_owned(),
            format!(
                "The worker count stays at {} because the pods could not be ranked for the scale-down: {message}",
                decision.desired_replicas
            ),
        ),
        (None, None) => {
            let mut message = format!(
                "The server reports that {}; the recommended worker count is {}",
                decision.reason.describe(),
                decision.recommended_replicas
            );
            if decision.scale_down_delayed() {
                message.push_str(&format!(
                    ", and the scale-down from {} waits for the scale-down delay",
                    decision.desired_replicas
                ));
            }
            ("True", decision.reason.label().to_owned(), message)
        }
    };

    let previous = pool
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition.type_ == SCALING_ACTIVE_CONDITION)
        });
    let last_transition_time = match previous {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => Time(now),
    };

    Condition {
        type_: SCALING_ACTIVE_CONDITION.to_owned(),
        status: status.to_owned(),
        reason,
        message,
        last_transition_time,
        observed_generation: pool.metadata.generation,
    }
}

/// Returns whether the pool's `ScalingActive` condition is true now (or absent, as before the first
/// poll).
fn was_scaling_active(pool: &CascorWorkerPool) -> bool {
    pool.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition.type_ == SCALING_ACTIVE_CONDITION)
        })
        .is_none_or(|condition| condition.status == "True")
}

/// Reads one key of a Secret in the pool's namespace.
async fn read_secret_key(
    secrets: &Api<Secret>,
    reference: &SecretKeyRef,
    default_key: &str,
) -> Result<Vec<u8>, String> {
    let key = reference.key.as_deref().unwrap_or(default_key);
    let secret = secrets
        .get(&reference.name)
        .await
        .map_err(|error| format!("failed to read Secret {}: {error}", reference.name))?;

    secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .map(|value| value.0.clone())
        .ok_or_else(|| format!("Secret {} has no key {key}", reference.name))
}
