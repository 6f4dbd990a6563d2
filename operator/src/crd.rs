//! The `CascorWorkerPool` custom resource (`cascor.juniper.dev/v1alpha1`).
//!
//! The doc comments on these types become the CRD's OpenAPI descriptions, which is the text
//! `kubectl explain cascorworkerpool.spec` prints. The `crdgen` binary renders the CRD from
//! these types; `crds/` contains its output and is never edited by hand.
//!
//! Durations are Go-style strings (`"90s"`, `"1h30m"`), as in other Kubernetes APIs, and are
//! parsed by [`crate::validate`], which names the field of every invalid value. The schema
//! checks their shape too, so a real API server rejects most bad values at admission.

// The derive input repeats `type_ = "integer"` across printer columns, which this lint
// mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the custom resource.
pub const GROUP: &str = "cascor.juniper.dev";
/// API version of the custom resource.
pub const VERSION: &str = "v1alpha1";
/// Name of the CustomResourceDefinition object.
pub const CRD_NAME: &str = "cascorworkerpools.cascor.juniper.dev";

/// Pattern of a Go duration string as Kubernetes APIs accept it, e.g. `90s`, `1h30m`, `500ms`.
const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Desired state of a pool of juniper-cascor workers that connect to one juniper-cascor server.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "cascor.juniper.dev",
    version = "v1alpha1",
    kind = "CascorWorkerPool",
    namespaced,
    shortname = "cwp",
    category = "juniper",
    status = "CascorWorkerPoolStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A pool of juniper-cascor candidate-training workers connected to one juniper-cascor server.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Requested number of workers"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Workers whose readiness probe passes"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.state",
        description = "Summary of the pool's conditions"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.autoscaling) || !has(self.autoscaling.minReplicas) || !has(self.autoscaling.maxReplicas) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas"
).message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct CascorWorkerPoolSpec {
    /// Number of worker pods. The `/scale` subresource sets this field, so
    /// `kubectl scale cwp/<name> --replicas=N` works. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,

    /// Stops every write the operator makes for this pool (children and status) while true.
    /// The existing workers keep running unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,

    /// The juniper-cascor server the workers connect to, and how they authenticate.
    pub server: ServerSpec,

    /// The worker container: image, device, timing and resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerSpec>,

    /// Overrides merged into the worker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverride>,

    /// Node labels a worker pod's node must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the worker pods, for example for tainted GPU nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Node and pod affinity of the worker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Topology spread constraints of the worker pods. Each constraint's label selector
    /// defaults to the pool's pod labels when it is left empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,

    /// PriorityClass of the worker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Seconds a worker pod gets after SIGTERM to finish and deliver its task in flight
    /// before it is killed. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,

    /// PodDisruptionBudget of the worker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,

    /// Prometheus Operator ServiceMonitor for the workers' `/metrics` endpoint. It is created
    /// only when the `servicemonitors.monitoring.coreos.com` CRD is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSpec>,

    /// Autoscaling of the worker count from the server's training state. While enabled, the
    /// operator sets the Deployment's replicas from `status.autoscaling.desiredReplicas`
    /// and ignores `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// Connection to the juniper-cascor server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "self.url.startsWith('ws://') || self.url.startsWith('wss://')"
).message("url must start with ws:// or wss://"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.tls) || !has(self.tls.mode) || self.tls.mode == 'none' || self.url.startsWith('wss://')"
).message("a TLS mode other than none needs a wss:// url"))]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// WebSocket URL of the server's worker endpoint, e.g.
    /// `wss://juniper-cascor.ml.svc:8200/ws/v1/workers`.
    #[schemars(length(min = 1))]
    pub url: String,

    /// Secret key holding the token the workers send as `X-API-Key`. Without it the workers
    /// send no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,

    /// Client certificates (mTLS) and server trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// A key in a Secret of the pool's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key in the Secret's data. Defaults to `token` for the worker token and `ca.crt` for a
    /// CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Source of the workers' client certificate.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TlsMode {
    /// No client certificate.
    #[default]
    None,
    /// The operator runs a CA per pool and issues and renews the client certificate itself.
    SelfSigned,
    /// cert-manager issues the client certificate from `issuerRef`.
    CertManager,
    /// A user-supplied Secret (`secretName`) contains `tls.crt` and `tls.key`.
    Secret,
}

/// Client certificate (mTLS) settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.mode) && self.mode == 'certManager') == has(self.issuerRef)"
).message("issuerRef is required with mode certManager and not allowed with other modes"))]
#[x_kube(validation = kube::core::Rule::new(
    "(has(self.mode) && self.mode == 'secret') == has(self.secretName)"
).message("secretName is required with mode secret and not allowed with other modes"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.caDuration) || (has(self.mode) && self.mode == 'selfSigned')"
).message("caDuration is only allowed with mode selfSigned"))]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// `none` (default), `selfSigned`, `certManager` or `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsMode>,

    /// Lifetime of the client certificate (selfSigned and certManager). Defaults to `2160h`
    /// (90 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub duration: Option<String>,

    /// How long before expiry the client certificate is renewed (selfSigned and
    /// certManager). Defaults to a third of `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub renew_before: Option<String>,

    /// Lifetime of the pool's CA certificate (selfSigned). Defaults to `87600h` (10 years).
    /// The CA is renewed a third of its lifetime before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub ca_duration: Option<String>,

    /// cert-manager issuer of the client certificate (certManager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,

    /// Secret of type `kubernetes.io/tls` with the client certificate (secret). Set
    /// `serverCASecretRef` to trust a CA for the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// CA bundle (PEM) that signed the server's certificate, when the system roots do not
    /// include it. `key` defaults to `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_secret_ref: Option<SecretKeyRef>,
}

/// Reference to a cert-manager Issuer or ClusterIssuer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Name of the issuer.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `Issuer` (default) or `ClusterIssuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// API group of the issuer. Defaults to `cert-manager.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Compute device of a worker.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum DeviceKind {
    /// Train on CPU.
    #[default]
    Cpu,
    /// Train on an NVIDIA GPU; the pod requests `gpus` of `nvidia.com/gpu`.
    Cuda,
}

/// Log line format of the worker.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// The worker container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.gpus) || self.gpus == 0 || (has(self.device) && self.device == 'cuda')"
).message("gpus needs device cuda"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.device) || self.device != 'cuda' || (has(self.gpus) && self.gpus >= 1)"
).message("device cuda needs gpus of at least 1"))]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Worker image. Defaults to
    /// `ghcr.io/juniper-platform/juniper-cascor-worker:<operator version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// `Always`, `IfNotPresent` (default) or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,

    /// Secrets for pulling the image from a private registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// `cpu` (default) or `cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceKind>,

    /// GPUs per worker pod (`nvidia.com/gpu`), with device `cuda`. Defaults to 1 with
    /// `cuda` and 0 with `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub gpus: Option<i32>,

    /// Intra-op threads of the trainer. Defaults to the worker's own choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threads: Option<i32>,

    /// Heartbeat period while a task is in flight. Defaults to `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub heartbeat_interval: Option<String>,

    /// Heartbeat period while idle. Defaults to the worker's default (`1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub idle_heartbeat_interval: Option<String>,

    /// Limit on the training of one task. Defaults to `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub task_timeout: Option<String>,

    /// `DEBUG`, `INFO` (default), `WARNING` or `ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// `json` (default) or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,

    /// Port of the worker's health and metrics server. Defaults to 8210.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub health_port: Option<i32>,

    /// Resource requests and limits of the worker container. With device `cuda`, the
    /// `nvidia.com/gpu` limit is set from `gpus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra environment variables of the worker container. Names the operator sets itself
    /// are rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
}

/// Overrides merged into the worker pod template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverride {
    /// Extra pod labels. The operator's own labels (`app.kubernetes.io/*`) win on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,

    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Existing ServiceAccount for the worker pods. Without it the operator creates one
    /// named after the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Pod security context. Defaults to non-root uid/gid 1000 with seccomp RuntimeDefault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,

    /// Security context of the worker container. Defaults to non-root, read-only root
    /// filesystem, no privilege escalation and all capabilities dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

/// PodDisruptionBudget of the worker pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "!(has(self.minAvailable) && has(self.maxUnavailable))"
).message("set at most one of minAvailable and maxUnavailable"))]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Creates the PodDisruptionBudget. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Minimum available worker pods during voluntary disruptions (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Maximum unavailable worker pods during voluntary disruptions (number or percentage).
    /// Defaults to 1 when neither field is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// Prometheus Operator ServiceMonitor settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Creates the ServiceMonitor. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Scrape interval. Defaults to `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Extra labels of the ServiceMonitor, for a Prometheus `serviceMonitorSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Autoscaling of the pool from the juniper-cascor server's training state.
///
/// While a training run is active the pool grows to the run's candidate pool size, because
/// the server hands at most one task per idle worker per round; with no run it shrinks to
/// `minReplicas` after `scaleDownDelay`. Busy workers are removed last.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.enabled) || !self.enabled || has(self.maxReplicas)"
).message("maxReplicas is required when autoscaling is enabled"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Turns autoscaling on. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Lower bound of the worker count; 0 allows scaling to zero while no run is active.
    /// Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// Upper bound of the worker count. Required when autoscaling is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_replicas: Option<i32>,
    /// How often the operator reads the server's training state and workers. Defaults to
    /// `15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub poll_interval: Option<String>,
    /// How long the server's demand must stay below the current worker count before the
    /// pool scales down. Scaling up is immediate. Defaults to `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scale_down_delay: Option<String>,
    /// REST endpoint of the server and its credentials, when they differ from the worker
    /// endpoint and token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<AutoscalingServer>,
}

/// REST endpoint of the juniper-cascor server for autoscaling.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.url) || self.url.startsWith('http://') || self.url.startsWith('https://')"
).message("url must start with http:// or https://"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingServer {
    /// Base URL of the server's REST API, e.g. `https://juniper-cascor.ml.svc:8200`.
    /// Defaults to the scheme, host and port of `server.url`, with `ws` mapped to `http` and
    /// `wss` to `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Secret key with the API key sent as `X-API-Key`. Defaults to `server.tokenSecretRef`,
    /// because juniper-cascor accepts the worker token as an API key. `key` defaults to
    /// `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
}

/// What the autoscaler observed and decided last, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingStatus {
    /// Worker count the autoscaler decided on; the Deployment's replicas follow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Whether the server reported a training run in progress (started or paused) at the
    /// last successful poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_active: Option<bool>,
    /// Candidate pool size of the active run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_pool_size: Option<i32>,
    /// Workers of this pool registered with the server (matched by pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_workers: Option<i32>,
    /// Registered workers of this pool that hold a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_workers: Option<i32>,
    /// Registered workers of this pool without a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_workers: Option<i32>,
    /// Time of the last change of `desiredReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Why `desiredReplicas` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_reason: Option<String>,
    /// Since when the server's demand has been below `desiredReplicas`; the pool scales
    /// down once `scaleDownDelay` has passed since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_pending_since: Option<Time>,
}

/// Observed state of a pool, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CascorWorkerPoolStatus {
    /// `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Worker pods that exist, from the Deployment's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Worker pods whose readiness probe passes (connected and registered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the worker pods, in the string form the `/scale` subresource uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Summary for `kubectl get`: `Ready`, `Progressing`, `Degraded` or `Invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Expiry time (RFC 3339) of the current client certificate, when the operator knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expiry: Option<String>,
    /// `Ready`, `Progressing`, `Degraded` and `CertificateReady`, plus `ScalingActive`
    /// while autoscaling is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Autoscaler state, present while autoscaling is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingStatus>,
}

/// Renders the CustomResourceDefinition as YAML, exactly as `crdgen` prints it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;

    serde_yaml::to_string(&CascorWorkerPool::crd())
}
