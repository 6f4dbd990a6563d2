//! Validation of a pool into a [`PoolModel`]: every default applied, every value checked.
//!
//! This step is pure: it reads only the pool object. Each error names the field in the form
//! `spec.server.url: must start with ws:// or wss://, got "http://x"`, so the message can go
//! into a status condition and an Event unchanged. The CRD's schema and CEL rules catch most
//! of these at admission on a real API server; these checks are the operator's own guard.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::crd::{CascorWorkerPool, DeviceKind, IssuerRef, LogFormat, SecretKeyRef, TlsMode};
use crate::duration::parse_duration;

/// Maximum pool name length: the metrics Service is named `<pool>-metrics` and a Service name is a
/// DNS label of at most 63 characters.
pub const MAX_POOL_NAME_LEN: usize = 55;
/// Worker image used when `spec.worker.image` is not set.
pub const DEFAULT_WORKER_IMAGE: &str = concat!(
    "ghcr.io/juniper-platform/juniper-cascor-worker:",
    env!("CARGO_PKG_VERSION")
);
/// Port of the worker's health and metrics server when `spec.worker.healthPort` is not set.
pub const DEFAULT_HEALTH_PORT: i32 = 8210;

const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_CERT_DURATION: Duration = Duration::from_secs(2160 * 3600);
const DEFAULT_CA_DURATION: Duration = Duration::from_secs(87_600 * 3600);
const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 300;
const DEFAULT_SCRAPE_INTERVAL: &str = "30s";
/// cert-manager rejects Certificates with a shorter `spec.duration`.
const CERT_MANAGER_MIN_DURATION: Duration = Duration::from_secs(3600);

/// Environment variables the operator sets on the worker container itself.
pub const RESERVED_ENV_NAMES: &[&str] = &[
    "POD_NAME",
    "POD_NAMESPACE",
    "JUNIPER_CASCOR_WORKER_SERVER_URL",
    "JUNIPER_CASCOR_WORKER_AUTH_TOKEN",
    "JUNIPER_CASCOR_WORKER_AUTH_TOKEN_FILE",
    "JUNIPER_CASCOR_WORKER_TLS_CERT",
    "JUNIPER_CASCOR_WORKER_TLS_KEY",
    "JUNIPER_CASCOR_WORKER_TLS_CA",
    "JUNIPER_CASCOR_WORKER_HEALTH_BIND",
    "JUNIPER_CASCOR_WORKER_HEALTH_PORT",
];

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.server.url`.
    pub field: String,
    /// Description of the problem, with the invalid value.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every invalid field of one pool, in the order of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("; "))
    }
}

/// A validated pool with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolModel {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub replicas: i32,
    pub paused: bool,
    pub server: ServerModel,
    pub worker: WorkerModel,
    pub pod: PodModel,
    pub pod_disruption_budget: Option<PdbModel>,
    pub service_monitor: Option<ServiceMonitorModel>,
}

/// Server connection of the workers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerModel {
    pub url: String,
    /// Secret and key of the worker token.
    pub token: Option<SecretKeySelector>,
    pub tls: TlsModel,
    /// Secret and key of the CA bundle that verifies the server.
    pub server_ca: Option<SecretKeySelector>,
}

/// A resolved Secret key reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
}

/// Client certificate source.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsModel {
    None,
    SelfSigned(CertificatePolicy),
    CertManager {
        policy: CertificatePolicy,
        issuer: IssuerModel,
    },
    Secret {
        secret_name: String,
    },
}

/// Lifetimes of the client certificate and of the pool's CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificatePolicy {
    pub duration: Duration,
    pub renew_before: Duration,
    /// Lifetime of the CA (selfSigned only).
    pub ca_duration: Duration,
}

impl CertificatePolicy {
    /// How long before expiry the CA is renewed: a third of its lifetime.
    pub fn ca_renew_before(&self) -> Duration {
        self.ca_duration / 3
    }
}

/// A cert-manager issuer reference with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerModel {
    pub name: String,
    pub kind: String,
    pub group: String,
}

/// The worker container.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerModel {
    pub image: String,
    pub image_pull_policy: String,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub device: DeviceKind,
    pub gpus: i32,
    pub threads: Option<i32>,
    pub heartbeat_interval: Duration,
    pub idle_heartbeat_interval: Option<Duration>,
    pub task_timeout: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    pub health_port: i32,
    pub resources: Option<ResourceRequirements>,
    pub env: Vec<EnvVar>,
}

/// Pod-level settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PodModel {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// A user-supplied ServiceAccount; `None` makes the operator create one.
    pub service_account_name: Option<String>,
    pub security_context: Option<PodSecurityContext>,
    pub container_security_context: Option<SecurityContext>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Option<Affinity>,
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    pub priority_class_name: Option<String>,
    pub termination_grace_period_seconds: i64,
}

/// PodDisruptionBudget bounds; exactly one is set.
#[derive(Debug, Clone, PartialEq)]
pub enum PdbModel {
    MinAvailable(IntOrString),
    MaxUnavailable(IntOrString),
}

/// ServiceMonitor settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMonitorModel {
    pub interval: String,
    pub labels: BTreeMap<String, String>,
}

/// Collects field errors while the model is assembled.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Parses an optional duration field, recording an error and returning `default` when
    /// it is invalid.
    fn duration(&mut self, field: &str, value: Option<&String>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(text) => match parse_duration(text) {
                Ok(duration) if !duration.is_zero() => duration,
                Ok(_) => {
                    self.push(field, format!("must be greater than zero, got {text:?}"));
                    default
                }
                Err(error) => {
                    self.push(field, error.to_string());
                    default
                }
            },
        }
    }
}

/// Validates a pool and applies every default.
pub fn validate(pool: &CascorWorkerPool) -> Result<PoolModel, ValidationError> {
    let mut errors = Errors::default();

    let name = pool.name_any();
    let namespace = pool.namespace().unwrap_or_default();
    let uid = pool.uid().unwrap_or_default();
    if name.is_empty() {
        errors.push("metadata.name", "is missing");
    } else if name.len() > MAX_POOL_NAME_LEN {
        errors.push(
            "metadata.name",
            format!(
                "must be at most {MAX_POOL_NAME_LEN} characters so that child names fit in 63, got {} ({name:?})",
                name.len()
            ),
        );
    }
    if namespace.is_empty() {
        errors.push("metadata.namespace", "is missing");
    }
    if uid.is_empty() {
        errors.push(
            "metadata.uid",
            "is missing; the pool must be read from the API server",
        );
    }

    let spec = &pool.spec;
    let replicas = spec.replicas.unwrap_or(1);
    if replicas < 0 {
        errors.push(
            "spec.replicas",
            format!("must not be negative, got {replicas}"),
        );
    }

    let server = validate_server(&mut errors, spec);
    let worker = validate_worker(
        &mut errors,
        spec.worker.as_ref().cloned().unwrap_or_default(),
    );
    let pod = validate_pod(&mut errors, spec);
    let pod_disruption_budget = validate_pdb(&mut errors, spec);
    let service_monitor = validate_service_monitor(&mut errors, spec);
    validate_autoscaling(&mut errors, spec);

    if !errors.0.is_empty() {
        return Err(ValidationError { errors: errors.0 });
    }
    Ok(PoolModel {
        name,
        namespace,
        uid,
        generation: pool.metadata.generation,
        replicas,
        paused: spec.paused.unwrap_or(false),
        server,
        worker,
        pod,
        pod_disruption_budget,
        service_monitor,
    })
}

fn validate_server(errors: &mut Errors, spec: &crate::crd::CascorWorkerPoolSpec) -> ServerModel {
    let url = spec.server.url.trim().to_owned();
    let host = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"));
    match host {
        None => errors.push(
            "spec.server.url",
            format!("must start with ws:// or wss://, got {url:?}"),
        ),
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') => {
            errors.push("spec.server.url", format!("has no host, got {url:?}"))
        }
        Some(_) if url.chars().any(char::is_whitespace) => errors.push(
            "spec.server.url",
            format!("must not contain whitespace, got {url:?}"),
        ),
        Some(_) => {}
    }

    let token = spec
        .server
        .token_secret_ref
        .as_ref()
        .map(|reference| secret_key(errors, "spec.server.tokenSecretRef", reference, "token"));

    let tls_spec = spec.server.tls.clone().unwrap_or_default();
    let mode = tls_spec.mode.unwrap_or_default();
    if mode != TlsMode::None && !url.starts_with("wss://") {
        errors.push(
            "spec.server.tls.mode",
            format!("{mode:?} needs a wss:// server url, got {url:?}"),
        );
    }
    if mode != TlsMode::CertManager && tls_spec.issuer_ref.is_some() {
        errors.push(
            "spec.server.tls.issuerRef",
            "is only allowed with mode certManager",
        );
    }
    if mode != TlsMode::Secret && tls_spec.secret_name.is_some() {
        errors.push(
            "spec.server.tls.secretName",
            "is only allowed with mode secret",
        );
    }
    if mode != TlsMode::SelfSigned && tls_spec.ca_duration.is_some() {
        errors.push(
            "spec.server.tls.caDuration",
            "is only allowed with mode selfSigned",
        );
    }
    if matches!(mode, TlsMode::None | TlsMode::Secret)
        && (tls_spec.duration.is_some() || tls_spec.renew_before.is_some())
    {
        errors.push(
            "spec.server.tls.duration",
            "duration and renewBefore are only allowed with modes selfSigned and certManager",
        );
    }

    let tls = match mode {
        TlsMode::None => TlsModel::None,
        TlsMode::SelfSigned => TlsModel::SelfSigned(certificate_policy(errors, &tls_spec)),
        TlsMode::CertManager => {
            let policy = certificate_policy(errors, &tls_spec);
            if policy.duration < CERT_MANAGER_MIN_DURATION {
                errors.push(
                    "spec.server.tls.duration",
                    format!(
                        "cert-manager needs at least 1h, got {:?}",
                        tls_spec.duration.unwrap_or_default()
                    ),
                );
            }
            let issuer = validate_issuer(errors, tls_spec.issuer_ref.as_ref());
            TlsModel::CertManager { policy, issuer }
        }
        TlsMode::Secret => match tls_spec.secret_name.as_deref() {
            Some(secret_name) if is_dns_subdomain(secret_name) => TlsModel::Secret {
                secret_name: secret_name.to_owned(),
            },
            Some(secret_name) => {
                errors.push(
                    "spec.server.tls.secretName",
                    format!("must be a valid Secret name, got {secret_name:?}"),
                );
                TlsModel::None
            }
            None => {
                errors.push("spec.server.tls.secretName", "is required with mode secret");
                TlsModel::None
            }
        },
    };

    let server_ca = tls_spec.server_ca_secret_ref.as_ref().map(|reference| {
        secret_key(
            errors,
            "spec.server.tls.serverCASecretRef",
            reference,
            "ca.crt",
        )
    });

    ServerModel {
        url,
        token,
        tls,
        server_ca,
    }
}

fn certificate_policy(errors: &mut Errors, tls: &crate::crd::TlsSpec) -> CertificatePolicy {
    let duration = errors.duration(
        "spec.server.tls.duration",
        tls.duration.as_ref(),
        DEFAULT_CERT_DURATION,
    );
    let renew_before = errors.duration(
        "spec.server.tls.renewBefore",
        tls.renew_before.as_ref(),
        duration / 3,
    );
    let ca_duration = errors.duration(
        "spec.server.tls.caDuration",
        tls.ca_duration.as_ref(),
        DEFAULT_CA_DURATION.max(duration * 3),
    );
    if renew_before >= duration {
        errors.push(
            "spec.server.tls.renewBefore",
            format!(
                "must be shorter than duration ({:?}), got {:?}",
                tls.duration.clone().unwrap_or_else(|| "2160h".into()),
                tls.renew_before.clone().unwrap_or_default()
            ),
        );
    }
    if ca_duration <= duration {
        errors.push(
            "spec.server.tls.caDuration",
            format!(
                "must be longer than duration ({:?}), got {:?}",
                tls.duration.clone().unwrap_or_else(|| "2160h".into()),
                tls.ca_duration.clone().unwrap_or_default()
            ),
        );
    }
    CertificatePolicy {
        duration,
        renew_before,
        ca_duration,
    }
}

fn validate_issuer(errors: &mut Errors, issuer: Option<&IssuerRef>) -> IssuerModel {
    let Some(issuer) = issuer else {
        errors.push(
            "spec.server.tls.issuerRef",
            "is required with mode certManager",
        );
        return IssuerModel {
            name: String::new(),
            kind: String::new(),
            group: String::new(),
        };
    };
    let group = issuer
        .group
        .clone()
        .unwrap_or_else(|| "cert-manager.io".to_owned());
    let kind = issuer.kind.clone().unwrap_or_else(|| "Issuer".to_owned());
    if issuer.name.is_empty() {
        errors.push("spec.server.tls.issuerRef.name", "is missing");
    }
    if group == "cert-manager.io" && kind != "Issuer" && kind != "ClusterIssuer" {
        errors.push(
            "spec.server.tls.issuerRef.kind",
            format!("must be Issuer or ClusterIssuer for group cert-manager.io, got {kind:?}"),
        );
    }
    IssuerModel {
        name: issuer.name.clone(),
        kind,
        group,
    }
}

fn secret_key(
    errors: &mut Errors,
    field: &str,
    reference: &SecretKeyRef,
    default_key: &str,
) -> SecretKeySelector {
    if !is_dns_subdomain(&reference.name) {
        errors.push(
            format!("{field}.name"),
            format!("must be a valid Secret name, got {:?}", reference.name),
        );
    }
    let key = reference
        .key
        .clone()
        .unwrap_or_else(|| default_key.to_owned());
    let key_is_valid = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !key_is_valid {
        errors.push(
            format!("{field}.key"),
            format!("must consist of alphanumerics, '-', '_' or '.', got {key:?}"),
        );
    }
    SecretKeySelector {
        name: reference.name.clone(),
        key,
    }
}

fn validate_worker(errors: &mut Errors, worker: crate::crd::WorkerSpec) -> WorkerModel {
    let device = worker.device.unwrap_or_default();
    let gpus = worker.gpus.unwrap_or(match device {
        DeviceKind::Cpu => 0,
        DeviceKind::Cuda => 1,
    });
    if gpus < 0 {
        errors.push(
            "spec.worker.gpus",
            format!("must not be negative, got {gpus}"),
        );
    } else if device == DeviceKind::Cpu && gpus > 0 {
        errors.push(
            "spec.worker.gpus",
            format!("needs device cuda, got {gpus} with device cpu"),
        );
    } else if device == DeviceKind::Cuda && gpus == 0 {
        errors.push(
            "spec.worker.gpus",
            "must be at least 1 with device cuda, got 0",
        );
    }

    if let Some(threads) = worker.threads
        && threads < 1
    {
        errors.push(
            "spec.worker.threads",
            format!("must be at least 1, got {threads}"),
        );
    }

    let image = worker
        .image
        .clone()
        .unwrap_or_else(|| DEFAULT_WORKER_IMAGE.to_owned());
    if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
        errors.push(
            "spec.worker.image",
            format!("must be a non-empty image reference without whitespace, got {image:?}"),
        );
    }
    let image_pull_policy = worker
        .image_pull_policy
        .clone()
        .unwrap_or_else(|| "IfNotPresent".to_owned());
    if !matches!(
        image_pull_policy.as_str(),
        "Always" | "IfNotPresent" | "Never"
    ) {
        errors.push(
            "spec.worker.imagePullPolicy",
            format!("must be Always, IfNotPresent or Never, got {image_pull_policy:?}"),
        );
    }

    let heartbeat_interval = errors.duration(
        "spec.worker.heartbeatInterval",
        worker.heartbeat_interval.as_ref(),
        DEFAULT_HEARTBEAT_INTERVAL,
    );
    let idle_heartbeat_interval = worker.idle_heartbeat_interval.as_ref().map(|text| {
        errors.duration(
            "spec.worker.idleHeartbeatInterval",
            Some(text),
            Duration::from_secs(1),
        )
    });
    let task_timeout = errors.duration(
        "spec.worker.taskTimeout",
        worker.task_timeout.as_ref(),
        DEFAULT_TASK_TIMEOUT,
    );

    let log_level = worker
        .log_level
        .clone()
        .unwrap_or_else(|| "INFO".to_owned());
    if !matches!(log_level.as_str(), "DEBUG" | "INFO" | "WARNING" | "ERROR") {
        errors.push(
            "spec.worker.logLevel",
            format!("must be DEBUG, INFO, WARNING or ERROR, got {log_level:?}"),
        );
    }

    let health_port = worker.health_port.unwrap_or(DEFAULT_HEALTH_PORT);
    if !(1..=65535).contains(&health_port) {
        errors.push(
            "spec.worker.healthPort",
            format!("must be between 1 and 65535, got {health_port}"),
        );
    }

    let env = worker.env.clone().unwrap_or_default();
    for (index, variable) in env.iter().enumerate() {
        if RESERVED_ENV_NAMES.contains(&variable.name.as_str()) {
            errors.push(
                format!("spec.worker.env[{index}].name"),
                format!(
                    "{:?} is set by the operator; use the matching spec field instead",
                    variable.name
                ),
            );
        }
    }

    WorkerModel {
        image,
        image_pull_policy,
        image_pull_secrets: worker.image_pull_secrets.unwrap_or_default(),
        device,
        gpus,
        threads: worker.threads,
        heartbeat_interval,
        idle_heartbeat_interval,
        task_timeout,
        log_level,
        log_format: worker.log_format.unwrap_or_default(),
        health_port,
        resources: worker.resources,
        env,
    }
}

fn validate_pod(errors: &mut Errors, spec: &crate::crd::CascorWorkerPoolSpec) -> PodModel {
    let template = spec.pod_template.clone().unwrap_or_default();
    if let Some(name) = &template.service_account_name
        && !is_dns_subdomain(name)
    {
        errors.push(
            "spec.podTemplate.serviceAccountName",
            format!("must be a valid ServiceAccount name, got {name:?}"),
        );
    }
    let termination_grace_period_seconds = spec
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS);
    if termination_grace_period_seconds < 0 {
        errors.push(
            "spec.terminationGracePeriodSeconds",
            format!("must not be negative, got {termination_grace_period_seconds}"),
        );
    }
    PodModel {
        labels: template.labels.unwrap_or_default(),
        annotations: template.annotations.unwrap_or_default(),
        service_account_name: template.service_account_name,
        security_context: template.security_context,
        container_security_context: template.container_security_context,
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        tolerations: spec.tolerations.clone().unwrap_or_default(),
        affinity: spec.affinity.clone(),
        topology_spread_constraints: spec.topology_spread_constraints.clone().unwrap_or_default(),
        priority_class_name: spec.priority_class_name.clone(),
        termination_grace_period_seconds,
    }
}

fn validate_pdb(errors: &mut Errors, spec: &crate::crd::CascorWorkerPoolSpec) -> Option<PdbModel> {
    let pdb = spec.pod_disruption_budget.clone().unwrap_or_default();
    if !pdb.enabled.unwrap_or(true) {
        return None;
    }
    match (pdb.min_available, pdb.max_unavailable) {
        (Some(_), Some(_)) => {
            errors.push(
                "spec.podDisruptionBudget",
                "set at most one of minAvailable and maxUnavailable",
            );
            None
        }
        (Some(min), None) => {
            check_int_or_percent(errors, "spec.podDisruptionBudget.minAvailable", &min);
            Some(PdbModel::MinAvailable(min))
        }
        (None, Some(max)) => {
            check_int_or_percent(errors, "spec.podDisruptionBudget.maxUnavailable", &max);
            Some(PdbModel::MaxUnavailable(max))
        }
        (None, None) => Some(PdbModel::MaxUnavailable(IntOrString::Int(1))),
    }
}

fn check_int_or_percent(errors: &mut Errors, field: &str, value: &IntOrString) {
    match value {
        IntOrString::Int(number) if *number < 0 => {
            errors.push(field, format!("must not be negative, got {number}"))
        }
        IntOrString::Int(_) => {}
        IntOrString::String(text) => {
            let percent = text
                .strip_suffix('%')
                .and_then(|number| number.parse::<u32>().ok());
            if !matches!(percent, Some(0..=100)) {
                errors.push(
                    field,
                    format!("must be a number or a percentage from 0% to 100%, got {text:?}"),
                );
            }
        }
    }
}

fn validate_service_monitor(
    errors: &mut Errors,
    spec: &crate::crd::CascorWorkerPoolSpec,
) -> Option<ServiceMonitorModel> {
    let monitor = spec.service_monitor.clone().unwrap_or_default();
    if !monitor.enabled.unwrap_or(false) {
        return None;
    }
    let interval = monitor
        .interval
        .clone()
        .unwrap_or_else(|| DEFAULT_SCRAPE_INTERVAL.to_owned());
    errors.duration(
        "spec.serviceMonitor.interval",
        Some(&interval),
        Duration::from_secs(30),
    );
    Some(ServiceMonitorModel {
        interval,
        labels: monitor.labels.unwrap_or_default(),
    })
}

/// Checks the reserved autoscaling fields so that a pool written now stays valid when
/// autoscaling is acted on.
fn validate_autoscaling(errors: &mut Errors, spec: &crate::crd::CascorWorkerPoolSpec) {
    let Some(autoscaling) = &spec.autoscaling else {
        return;
    };
    for (field, value) in [
        ("spec.autoscaling.minReplicas", autoscaling.min_replicas),
        ("spec.autoscaling.maxReplicas", autoscaling.max_replicas),
    ] {
        if let Some(value) = value
            && value < 0
        {
            errors.push(field, format!("must not be negative, got {value}"));
        }
    }
    if let (Some(min), Some(max)) = (autoscaling.min_replicas, autoscaling.max_replicas)
        && min > max
    {
        errors.push(
            "spec.autoscaling.minReplicas",
            format!("must not exceed maxReplicas ({max}), got {min}"),
        );
    }
    errors.duration(
        "spec.autoscaling.pollInterval",
        autoscaling.poll_interval.as_ref(),
        Duration::from_secs(15),
    );
    errors.duration(
        "spec.autoscaling.scaleDownDelay",
        autoscaling.scale_down_delay.as_ref(),
        Duration::from_secs(300),
    );
    if let Some(url) = autoscaling
        .server
        .as_ref()
        .and_then(|server| server.url.as_ref())
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        errors.push(
            "spec.autoscaling.server.url",
            format!("must start with http:// or https://, got {url:?}"),
        );
    }
}

/// Checks a Kubernetes object name (RFC 1123 DNS subdomain).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
