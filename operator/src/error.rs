//! Errors of one reconcile.

use crate::tls::TlsError;

/// Why a reconcile failed. Each variant has a short label for the
/// `cascor_operator_reconcile_errors_total` metric.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{operation} {kind} {namespace}/{name} failed: {source}")]
    Kube {
        operation: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(transparent)]
    Tls(#[from] TlsError),

    #[error(transparent)]
    Autoscale(#[from] crate::autoscale::AutoscaleError),

    #[error("serializing {kind} {name} failed: {source}")]
    Serialize {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Label of the error for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 403 => "forbidden",
                kube::Error::Api(_) => "api_rejected",
                _ => "api_unreachable",
            },
            Error::Tls(_) => "certificate",
            Error::Autoscale(_) => "autoscale",
            Error::Serialize { .. } => "serialize",
        }
    }
}

/// Shorthand for wrapping a kube error with the object it concerns.
pub(crate) fn kube_error(
    operation: &'static str,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> Error {
    let namespace = namespace.to_owned();
    let name = name.to_owned();
    move |source| Error::Kube {
        operation,
        kind,
        namespace,
        name,
        source: Box::new(source),
    }
}
