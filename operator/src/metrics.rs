//! Prometheus metrics of the operator, served on `/metrics`.
//!
//! The names are an API: dashboards and alerts use them, so they are never renamed.
//!
//! | Series | Type | Labels | Meaning |
//! | --- | --- | --- | --- |
//! | `cascor_operator_reconciliations_total` | counter | `result` (`success`, `error`, `invalid`, `paused`) | Finished reconciles of a pool |
//! | `cascor_operator_reconcile_errors_total` | counter | `kind` (see [`crate::Error::metric_label`]) | Failed reconciles by cause |
//! | `cascor_operator_reconcile_duration_seconds` | histogram | | Time of one reconcile |
//! | `cascor_operator_writes_total` | counter | `kind`, `operation` (`apply`, `delete`, `status`) | Writes to the API server for pools |
//! | `cascor_operator_certificate_renewals_total` | counter | `certificate` (`ca`, `client`) | Self-signed certificates issued |
//! | `cascor_operator_leader` | gauge | | 1 while this replica holds the leader lease |

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The operator's metric families, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconciliations: IntCounterVec,
    pub reconcile_errors: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub writes: IntCounterVec,
    pub certificate_renewals: IntCounterVec,
    pub leader: IntGauge,
    /// The autoscaler's series, documented in [`crate::autoscale::metrics`].
    pub autoscale: crate::autoscale::AutoscaleMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric family.
    pub fn new() -> Self {
        let registry = Registry::new();
        // The names and labels are constants, so registration cannot fail.
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "cascor_operator_reconciliations_total",
                "Finished reconciles of a CascorWorkerPool, by result.",
            ),
            &["result"],
        )
        .expect("valid metric definition");
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "cascor_operator_reconcile_errors_total",
                "Failed reconciles of a CascorWorkerPool, by cause.",
            ),
            &["kind"],
        )
        .expect("valid metric definition");
        let reconcile_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cascor_operator_reconcile_duration_seconds",
                "Time of one reconcile of a CascorWorkerPool.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric definition");
        let writes = IntCounterVec::new(
            Opts::new(
                "cascor_operator_writes_total",
                "Writes to the Kubernetes API for CascorWorkerPools, by object kind and operation.",
            ),
            &["kind", "operation"],
        )
        .expect("valid metric definition");
        let certificate_renewals = IntCounterVec::new(
            Opts::new(
                "cascor_operator_certificate_renewals_total",
                "Self-signed certificates issued, by certificate (ca or client).",
            ),
            &["certificate"],
        )
        .expect("valid metric definition");
        let leader = IntGauge::new(
            "cascor_operator_leader",
            "1 while this operator replica holds the leader lease, else 0.",
        )
        .expect("valid metric definition");

        for collector in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_errors.clone()),
            Box::new(reconcile_duration.clone()),
            Box::new(writes.clone()),
            Box::new(certificate_renewals.clone()),
            Box::new(leader.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }

        let autoscale = crate::autoscale::AutoscaleMetrics::register(&registry)
            .expect("metric names are unique");

        Self {
            autoscale,
            registry,
            reconciliations,
            reconcile_errors,
            reconcile_duration,
            writes,
            certificate_renewals,
            leader,
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
