//! Prometheus metrics of the autoscaler.
//!
//! The names and labels are a public interface for dashboards and alerts: a series is never
//! renamed or given another meaning. Every series carries `namespace` and `pool`.
//!
//! | Series | Type | Extra labels | Meaning |
//! | --- | --- | --- | --- |
//! | `cascor_operator_autoscale_scalings_total` | counter | `direction`, `reason` | Changes of the desired worker count; `direction` is `up` or `down`, `reason` the rule's reason (`RunActive`, `NoRun`, ...). |
//! | `cascor_operator_autoscale_poll_errors_total` | counter | `error` | Polls of the server that failed; `error` is `RequestFailed`, `ErrorStatus`, `InvalidResponse`, `ClientConfiguration` or `CredentialsUnavailable`. |
//! | `cascor_operator_autoscale_desired_replicas` | gauge | – | Worker count decided at the last reconcile. |
//! | `cascor_operator_autoscale_recommended_replicas` | gauge | – | Worker count the server's state asked for, before the scale-down delay. |
//! | `cascor_operator_autoscale_workers` | gauge | `state` | This pool's registered workers; `state` is `busy` or `idle`. |

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Autoscaler metrics, registered once per operator process.
#[derive(Clone, Debug)]
pub struct AutoscaleMetrics {
    scalings: IntCounterVec,
    poll_errors: IntCounterVec,
    desired_replicas: IntGaugeVec,
    recommended_replicas: IntGaugeVec,
    workers: IntGaugeVec,
}

impl AutoscaleMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            scalings: IntCounterVec::new(
                Opts::new(
                    "cascor_operator_autoscale_scalings_total",
                    "Changes of the desired worker count by the autoscaler.",
                ),
                &["namespace", "pool", "direction", "reason"],
            )?,
            poll_errors: IntCounterVec::new(
                Opts::new(
                    "cascor_operator_autoscale_poll_errors_total",
                    "Failed polls of the juniper-cascor server.",
                ),
                &["namespace", "pool", "error"],
            )?,
            desired_replicas: IntGaugeVec::new(
                Opts::new(
                    "cascor_operator_autoscale_desired_replicas",
                    "Worker count decided by the autoscaler.",
                ),
                &["namespace", "pool"],
            )?,
            recommended_replicas: IntGaugeVec::new(
                Opts::new(
                    "cascor_operator_autoscale_recommended_replicas",
                    "Worker count the server's state asks for, before the scale-down delay.",
                ),
                &["namespace", "pool"],
            )?,
            workers: IntGaugeVec::new(
                Opts::new(
                    "cascor_operator_autoscale_workers",
                    "Registered workers of the pool by state.",
                ),
                &["namespace", "pool", "state"],
            )?,
        };

        registry.register(Box::new(metrics.scalings.clone()))?;
        registry.register(Box::new(metrics.poll_errors.clone()))?;
        registry.register(Box::new(metrics.desired_replicas.clone()))?;
        registry.register(Box::new(metrics.recommended_replicas.clone()))?;
        registry.register(Box::new(metrics.workers.clone()))?;
        Ok(metrics)
    }

    pub(crate) fn record_scaling(
        &self,
        namespace: &str,
        pool: &str,
        direction: &str,
        reason: &str,
    ) {
        self.scalings
            .with_label_values(&[namespace, pool, direction, reason])
            .inc();
    }

    pub(crate) fn record_poll_error(&self, namespace: &str, pool: &str, error: &str) {
        self.poll_errors
            .with_label_values(&[namespace, pool, error])
            .inc();
    }

    pub(crate) fn set_replicas(&self, namespace: &str, pool: &str, desired: i32, recommended: i32) {
        self.desired_replicas
            .with_label_values(&[namespace, pool])
            .set(i64::from(desired));
        self.recommended_replicas
            .with_label_values(&[namespace, pool])
            .set(i64::from(recommended));
    }

    pub(crate) fn set_workers(&self, namespace: &str, pool: &str, busy: u32, idle: u32) {
        self.workers
            .with_label_values(&[namespace, pool, "busy"])
            .set(i64::from(busy));
        self.workers
            .with_label_values(&[namespace, pool, "idle"])
            .set(i64::from(idle));
    }

    /// Removes the series of a deleted pool.
    pub fn forget_pool(&self, namespace: &str, pool: &str) {
        // An error here only means the series never existed.
        let _ = self
            .desired_replicas
            .remove_label_values(&[namespace, pool]);
        let _ = self
            .recommended_replicas
            .remove_label_values(&[namespace, pool]);
        for state in ["busy", "idle"] {
            let _ = self.workers.remove_label_values(&[namespace, pool, state]);
        }
    }
}
