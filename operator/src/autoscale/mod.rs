//! Autoscaling of a `CascorWorkerPool` from the juniper-cascor server's training state.
//!
//! Each reconcile of a pool with `spec.autoscaling.enabled` polls the server's REST API
//! ([`client`]), decides the worker count with a pure rule ([`decision`]), ranks the pods
//! for a scale-down by what their workers do ([`deletion_cost`]) and returns the count for
//! the Deployment together with the status to write ([`Autoscaler::reconcile`]).
//!
//! # Who writes the worker count
//!
//! * Autoscaling enabled: the operator is the only writer. It stores its decision in
//!   `status.autoscaling.desiredReplicas` and sets the Deployment's replicas from it.
//!   `spec.replicas` is ignored, so a `kubectl scale` or an HPA writing `/scale` changes
//!   nothing while autoscaling is on. The operator never writes its own spec: a spec write
//!   would bump `metadata.generation` on every decision and race with users' edits.
//! * Autoscaling disabled: `spec.replicas`, which the `/scale` subresource sets, is the only
//!   source. The operator never writes it, so `kubectl scale`, an HPA or KEDA can drive it.
//!
//! # Scale-down order
//!
//! Before the Deployment's replicas go down, every worker pod gets a
//! `controller.kubernetes.io/pod-deletion-cost` annotation: pods without a registered
//! worker lowest, idle workers next, busy workers highest. If any of those patches fails,
//! the count is kept for this reconcile. A stopped worker finishes its task in flight on
//! SIGTERM within the pod's termination grace period.

pub mod client;
pub mod decision;
pub mod deletion_cost;
pub mod metrics;
mod reconcile;
pub mod settings;
pub mod signal;

pub use client::{CascorRestClient, ClientError};
pub use decision::{
    Bounds, Decision, DecisionInput, Observation, PoolSignal, ScaleDirection, ScaleLimit,
    ScaleReason, decide,
};
pub use deletion_cost::{
    DELETION_COST_ANNOTATION, DeletionCostPatch, PodActivity, WorkerCounts, classify_pods,
    count_workers, plan_deletion_costs,
};
pub use metrics::AutoscaleMetrics;
pub use reconcile::{
    AutoscaleError, AutoscaleOutcome, Autoscaler, SCALING_ACTIVE_CONDITION, apply_to_status,
    desired_replicas,
};
pub use settings::{AutoscaleSettings, SettingsError};
pub use signal::{RemoteWorker, RunState, ServerSnapshot, WorkerPod};
