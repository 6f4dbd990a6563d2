//! The pool's status, computed from what the API server returned for its children.
//!
//! Pure: the controller passes in the observed objects and the current time. A condition
//! keeps its `lastTransitionTime` while its status stays the same, so an unchanged world
//! yields an identical status and the controller can skip the write.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::children::selector_string;
use crate::crd::CascorWorkerPoolStatus;
use crate::validate::{PoolModel, ValidationError};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const CERTIFICATE_READY: &str = "CertificateReady";

/// State of the client certificate the workers mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateState {
    /// TLS mode `none`.
    NotRequired,
    /// A certificate is in place; expiry in seconds since the Unix epoch, when known.
    Issued {
        expiry: Option<i64>,
        message: String,
    },
    /// Being issued (cert-manager has not finished).
    Pending { reason: String, message: String },
    /// Cannot be issued or found.
    Failed { reason: String, message: String },
}

/// What the controller observed after applying the children.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The Deployment as the API server returned it.
    pub deployment: Option<Deployment>,
    pub certificate: CertificateState,
    /// Problems that do not stop the workers, e.g. an optional API that is not installed.
    pub warnings: Vec<String>,
}

fn condition(
    previous: Option<&CascorWorkerPoolStatus>,
    type_: &str,
    is_true: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if is_true { "True" } else { "False" };
    let last_transition_time = previous
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == type_))
        .filter(|existing| existing.status == status)
        .map(|existing| existing.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Formats seconds since the Unix epoch as RFC 3339.
pub fn rfc3339(unix_seconds: i64) -> String {
    Timestamp::from_second(unix_seconds)
        .map(|timestamp| timestamp.to_string())
        .unwrap_or_default()
}

/// Computes the status of a valid pool.
pub fn compute_status(
    model: &PoolModel,
    observed: &Observed,
    previous: Option<&CascorWorkerPoolStatus>,
    now: Timestamp,
) -> CascorWorkerPoolStatus {
    let generation = model.generation;
    let desired = model.replicas;
    let deployment_status = observed
        .deployment
        .as_ref()
        .and_then(|deployment| deployment.status.clone())
        .unwrap_or_default();
    let deployment_generation = observed
        .deployment
        .as_ref()
        .and_then(|deployment| deployment.metadata.generation);
    let replicas = deployment_status.replicas.unwrap_or(0);
    let ready = deployment_status.ready_replicas.unwrap_or(0);
    let updated = deployment_status.updated_replicas.unwrap_or(0);
    let rollout_observed = deployment_generation.is_some()
        && deployment_status.observed_generation >= deployment_generation;
    let rolled_out =
        rollout_observed && updated >= desired && ready >= desired && replicas <= desired;

    let (certificate_ready, certificate_condition) = match &observed.certificate {
        CertificateState::NotRequired => (
            true,
            condition(
                previous,
                CERTIFICATE_READY,
                true,
                "NotRequired",
                "TLS mode is none; the workers use no client certificate".into(),
                generation,
                now,
            ),
        ),
        CertificateState::Issued { message, .. } => (
            true,
            condition(
                previous,
                CERTIFICATE_READY,
                true,
                "Issued",
                message.clone(),
                generation,
                now,
            ),
        ),
        CertificateState::Pending { reason, message }
        | CertificateState::Failed { reason, message } => (
            false,
            condition(
                previous,
                CERTIFICATE_READY,
                false,
                reason,
                message.clone(),
                generation,
                now,
            ),
        ),
    };
    let certificate_failed = matches!(observed.certificate, CertificateState::Failed { .. });

    let ready_condition = if !certificate_ready {
        condition(
            previous,
            READY,
            false,
            "CertificateNotReady",
            format!("{ready}/{desired} workers ready; the client certificate is not ready"),
            generation,
            now,
        )
    } else if ready >= desired && rolled_out {
        condition(
            previous,
            READY,
            true,
            "WorkersReady",
            format!("{ready}/{desired} workers ready"),
            generation,
            now,
        )
    } else {
        condition(
            previous,
            READY,
            false,
            "WorkersNotReady",
            format!("{ready}/{desired} workers ready"),
            generation,
            now,
        )
    };
    let progressing_condition = if rolled_out {
        condition(
            previous,
            PROGRESSING,
            false,
            "RolloutComplete",
            format!("{updated}/{desired} workers run the current template"),
            generation,
            now,
        )
    } else {
        condition(
            previous,
            PROGRESSING,
            true,
            "RollingOut",
            format!("{updated}/{desired} workers run the current template, {ready} ready"),
            generation,
            now,
        )
    };
    let mut problems = observed.warnings.clone();
    if certificate_failed {
        problems.push(certificate_condition.message.clone());
    }
    let degraded_condition = if problems.is_empty() {
        condition(
            previous,
            DEGRADED,
            false,
            "AsExpected",
            String::new(),
            generation,
            now,
        )
    } else {
        condition(
            previous,
            DEGRADED,
            true,
            "Misconfigured",
            problems.join("; "),
            generation,
            now,
        )
    };

    let state = if degraded_condition.status == "True" {
        "Degraded"
    } else if ready_condition.status == "True" {
        "Ready"
    } else {
        "Progressing"
    };
    let certificate_expiry = match &observed.certificate {
        CertificateState::Issued {
            expiry: Some(expiry),
            ..
        } => Some(rfc3339(*expiry)),
        _ => None,
    };

    CascorWorkerPoolStatus {
        observed_generation: generation,
        replicas: Some(replicas),
        ready_replicas: Some(ready),
        selector: Some(selector_string(&model.name)),
        state: Some(state.into()),
        certificate_expiry,
        conditions: Some(with_foreign_conditions(
            vec![
                ready_condition,
                progressing_condition,
                degraded_condition,
                certificate_condition,
            ],
            previous,
        )),
        autoscaling: previous.and_then(|status| status.autoscaling.clone()),
    }
}

/// Appends the previous conditions of types this module does not compute (such as the
/// autoscaler's), so that a status write keeps them.
fn with_foreign_conditions(
    mut conditions: Vec<Condition>,
    previous: Option<&CascorWorkerPoolStatus>,
) -> Vec<Condition> {
    let own = [READY, PROGRESSING, DEGRADED, CERTIFICATE_READY];
    let foreign = previous
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|condition| !own.contains(&condition.type_.as_str()))
        .cloned();
    conditions.extend(foreign);
    conditions
}

/// Computes the status of a pool whose spec failed validation. Replica counts and the
/// certificate condition keep their previous values because the children are left alone.
pub fn invalid_status(
    pool_name: &str,
    generation: Option<i64>,
    error: &ValidationError,
    previous: Option<&CascorWorkerPoolStatus>,
    now: Timestamp,
) -> CascorWorkerPoolStatus {
    let message = error.to_string();
    let mut conditions = vec![
        condition(
            previous,
            READY,
            false,
            "InvalidSpec",
            message.clone(),
            generation,
            now,
        ),
        condition(
            previous,
            PROGRESSING,
            false,
            "InvalidSpec",
            "the spec is invalid; the children are left unchanged".into(),
            generation,
            now,
        ),
        condition(
            previous,
            DEGRADED,
            true,
            "InvalidSpec",
            message,
            generation,
            now,
        ),
    ];
    if let Some(certificate) = previous
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == CERTIFICATE_READY))
    {
        conditions.push(certificate.clone());
    }
    CascorWorkerPoolStatus {
        observed_generation: generation,
        replicas: previous.and_then(|status| status.replicas),
        ready_replicas: previous.and_then(|status| status.ready_replicas),
        selector: Some(selector_string(pool_name)),
        state: Some("Invalid".into()),
        certificate_expiry: previous.and_then(|status| status.certificate_expiry.clone()),
        conditions: Some(with_foreign_conditions(conditions, previous)),
        autoscaling: previous.and_then(|status| status.autoscaling.clone()),
    }
}
