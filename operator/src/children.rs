//! The objects a pool owns, built as plain values from a [`PoolModel`].
//!
//! Nothing here talks to an API server or reads the clock, so the same model and inputs
//! always give the same objects; the snapshot tests rely on that. Every child carries the
//! pool's labels, a controller owner reference to the pool, and a hash of its own content
//! in [`HASH_ANNOTATION`], which lets the apply step skip writes that would change nothing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::crd::{DeviceKind, GROUP, LogFormat, VERSION};
use crate::duration::format_seconds;
use crate::tls::{self, SelfSignedMaterial};
use crate::validate::{PdbModel, PoolModel, TlsModel};

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "cascor-operator";
/// Annotation holding a hash of the object as the operator last built it.
pub const HASH_ANNOTATION: &str = "cascor.juniper.dev/content-hash";
/// Label naming the pool a child belongs to; the prune step selects on it.
pub const POOL_LABEL: &str = "cascor.juniper.dev/pool";
/// Value of `app.kubernetes.io/managed-by` on every child.
pub const MANAGED_BY: &str = "cascor-operator";
/// Name of the worker container.
pub const WORKER_CONTAINER: &str = "worker";

const TLS_MOUNT: &str = "/var/run/secrets/cascor/tls";
const TOKEN_MOUNT: &str = "/var/run/secrets/cascor/token";
const SERVER_CA_MOUNT: &str = "/var/run/secrets/cascor/server-ca";
const HEALTH_PORT_NAME: &str = "health";
const METRICS_PORT_NAME: &str = "metrics";
const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// cert-manager's Certificate type.
pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// Prometheus Operator's ServiceMonitor type.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// Optional APIs installed in the cluster, found by the controller before building.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCapabilities {
    pub cert_manager: bool,
    pub service_monitor: bool,
}

/// Inputs of the build step besides the model.
#[derive(Debug, Clone, Default)]
pub struct BuildInputs {
    /// Certificate material for `selfSigned` pools.
    pub self_signed: Option<SelfSignedMaterial>,
    pub capabilities: ClusterCapabilities,
}

/// One child object, in the order the apply step writes it.
// A handful of children are built per reconcile, so the size of the largest variant does not
// matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    ServiceAccount(ServiceAccount),
    Secret(Secret),
    ConfigMap(ConfigMap),
    Certificate(DynamicObject),
    Service(Service),
    Deployment(Box<Deployment>),
    PodDisruptionBudget(PodDisruptionBudget),
    ServiceMonitor(DynamicObject),
}

impl Child {
    /// Kind of the object, e.g. `Deployment`.
    pub fn kind(&self) -> &'static str {
        match self {
            Child::ServiceAccount(_) => "ServiceAccount",
            Child::Secret(_) => "Secret",
            Child::ConfigMap(_) => "ConfigMap",
            Child::Certificate(_) => "Certificate",
            Child::Service(_) => "Service",
            Child::Deployment(_) => "Deployment",
            Child::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Child::ServiceMonitor(_) => "ServiceMonitor",
        }
    }

    /// Name of the object.
    pub fn name(&self) -> &str {
        let metadata = match self {
            Child::ServiceAccount(object) => &object.metadata,
            Child::Secret(object) => &object.metadata,
            Child::ConfigMap(object) => &object.metadata,
            Child::Certificate(object) | Child::ServiceMonitor(object) => &object.metadata,
            Child::Service(object) => &object.metadata,
            Child::Deployment(object) => &object.metadata,
            Child::PodDisruptionBudget(object) => &object.metadata,
        };
        metadata.name.as_deref().unwrap_or_default()
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        fn typed<K: kube::Resource<DynamicType = ()> + serde::Serialize>(
            object: &K,
        ) -> Result<serde_json::Value, serde_json::Error> {
            let mut value = serde_json::to_value(object)?;
            value["apiVersion"] = json!(K::api_version(&()));
            value["kind"] = json!(K::kind(&()));
            Ok(value)
        }
        match self {
            Child::ServiceAccount(object) => typed(object),
            Child::Secret(object) => typed(object),
            Child::ConfigMap(object) => typed(object),
            Child::Service(object) => typed(object),
            Child::Deployment(object) => typed(object.as_ref()),
            Child::PodDisruptionBudget(object) => typed(object),
            Child::Certificate(object) | Child::ServiceMonitor(object) => {
                serde_json::to_value(object)
            }
        }
    }
}

/// Names of a pool's children.
pub mod names {
    /// ServiceAccount, Deployment and PodDisruptionBudget share the pool's name.
    pub fn workload(pool: &str) -> String {
        pool.to_owned()
    }
    pub fn metrics_service(pool: &str) -> String {
        format!("{pool}-metrics")
    }
    /// Secret with the pool CA's certificate and key (selfSigned).
    pub fn ca_secret(pool: &str) -> String {
        format!("{pool}-ca")
    }
    /// Secret with the client certificate that the workers mount.
    pub fn client_tls_secret(pool: &str) -> String {
        format!("{pool}-tls")
    }
    /// ConfigMap publishing the CA bundle a server trusts (selfSigned).
    pub fn ca_bundle(pool: &str) -> String {
        format!("{pool}-ca-bundle")
    }
    /// cert-manager Certificate (certManager).
    pub fn certificate(pool: &str) -> String {
        format!("{pool}-client")
    }
}

/// Labels selecting a pool's worker pods.
pub fn selector_labels(pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "juniper-cascor-worker".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), pool.to_owned()),
    ])
}

/// The selector in the string form of `status.selector` and the `/scale` subresource.
pub fn selector_string(pool: &str) -> String {
    selector_labels(pool)
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Label selector matching every child of a pool, for the prune step.
pub fn children_selector(pool: &str) -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY},{POOL_LABEL}={pool}")
}

/// Label selector matching the children of every pool, for the controller's watches.
pub fn managed_selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY},{POOL_LABEL}")
}

fn child_labels(pool: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(pool);
    labels.insert("app.kubernetes.io/component".into(), "worker".into());
    labels.insert("app.kubernetes.io/part-of".into(), "juniper-cascor".into());
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    labels.insert(POOL_LABEL.into(), pool.into());
    labels
}

fn owner_reference(model: &PoolModel) -> OwnerReference {
    OwnerReference {
        api_version: format!("{GROUP}/{VERSION}"),
        kind: "CascorWorkerPool".into(),
        name: model.name.clone(),
        uid: model.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn metadata(model: &PoolModel, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(model.namespace.clone()),
        labels: Some(child_labels(&model.name)),
        owner_references: Some(vec![owner_reference(model)]),
        ..ObjectMeta::default()
    }
}

/// Builds every child of the pool, in apply order: ServiceAccount, Secrets and ConfigMaps,
/// Certificate, Service, Deployment, PodDisruptionBudget, ServiceMonitor.
pub fn build_children(model: &PoolModel, inputs: &BuildInputs) -> Vec<Child> {
    let mut children = Vec::new();

    if model.pod.service_account_name.is_none() {
        children.push(Child::ServiceAccount(service_account(model)));
    }

    match (&model.server.tls, &inputs.self_signed) {
        (TlsModel::SelfSigned(_), Some(material)) => {
            children.push(Child::Secret(ca_secret(model, material)));
            children.push(Child::Secret(client_tls_secret(model, material)));
            children.push(Child::ConfigMap(ca_bundle(model, material)));
        }
        (TlsModel::CertManager { .. }, _) if inputs.capabilities.cert_manager => {
            children.push(Child::Certificate(certificate(model)));
        }
        _ => {}
    }

    children.push(Child::Service(metrics_service(model)));
    children.push(Child::Deployment(Box::new(deployment(model))));
    if let Some(pdb) = pod_disruption_budget(model) {
        children.push(Child::PodDisruptionBudget(pdb));
    }
    if model.service_monitor.is_some() && inputs.capabilities.service_monitor {
        children.push(Child::ServiceMonitor(service_monitor(model)));
    }

    for child in &mut children {
        stamp_hash(child);
    }
    children
}

/// Writes the content hash annotation. The hash covers the object without the annotation.
fn stamp_hash(child: &mut Child) {
    let Ok(value) = child.to_json() else {
        return;
    };
    let digest = Sha256::digest(value.to_string().as_bytes());
    let hash: String = digest
        .iter()
        .take(12)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let metadata = match child {
        Child::ServiceAccount(object) => &mut object.metadata,
        Child::Secret(object) => &mut object.metadata,
        Child::ConfigMap(object) => &mut object.metadata,
        Child::Certificate(object) | Child::ServiceMonitor(object) => &mut object.metadata,
        Child::Service(object) => &mut object.metadata,
        Child::Deployment(object) => &mut object.metadata,
        Child::PodDisruptionBudget(object) => &mut object.metadata,
    };
    metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_ANNOTATION.into(), hash);
}

fn service_account(model: &PoolModel) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(model, names::workload(&model.name)),
        // The workers never call the Kubernetes API.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn secret_data(entries: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
        .collect()
}

fn ca_secret(model: &PoolModel, material: &SelfSignedMaterial) -> Secret {
    let mut entries = vec![
        (tls::CA_CERT_KEY, material.ca.cert_pem.as_str()),
        (tls::CA_PRIVATE_KEY_KEY, material.ca.key_pem.as_str()),
    ];
    if let Some(previous) = &material.previous_ca_cert_pem {
        entries.push((tls::PREVIOUS_CA_CERT_KEY, previous.as_str()));
    }
    Secret {
        metadata: metadata(model, names::ca_secret(&model.name)),
        type_: Some("Opaque".into()),
        data: Some(secret_data(&entries)),
        ..Secret::default()
    }
}

fn client_tls_secret(model: &PoolModel, material: &SelfSignedMaterial) -> Secret {
    Secret {
        metadata: metadata(model, names::client_tls_secret(&model.name)),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(secret_data(&[
            (tls::CERT_KEY, material.client.cert_pem.as_str()),
            (tls::PRIVATE_KEY_KEY, material.client.key_pem.as_str()),
            (tls::CA_CERT_KEY, material.ca.cert_pem.as_str()),
        ])),
        ..Secret::default()
    }
}

fn ca_bundle(model: &PoolModel, material: &SelfSignedMaterial) -> ConfigMap {
    ConfigMap {
        metadata: metadata(model, names::ca_bundle(&model.name)),
        data: Some(BTreeMap::from([(
            tls::CA_CERT_KEY.to_owned(),
            material.ca_bundle(),
        )])),
        ..ConfigMap::default()
    }
}

fn certificate(model: &PoolModel) -> DynamicObject {
    let TlsModel::CertManager { policy, issuer } = &model.server.tls else {
        unreachable!("certificate() is only called for certManager pools");
    };
    let identity = tls::PoolIdentity {
        name: &model.name,
        namespace: &model.namespace,
    };
    let mut object = DynamicObject::new(&names::certificate(&model.name), &certificate_resource());
    object.metadata = metadata(model, names::certificate(&model.name));
    object.data = json!({
        "spec": {
            "secretName": names::client_tls_secret(&model.name),
            "commonName": identity.client_common_name(),
            "duration": go_duration(policy.duration),
            "renewBefore": go_duration(policy.renew_before),
            "usages": ["client auth", "digital signature"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
        }
    });
    object
}

/// Formats a duration the way cert-manager prints them, e.g. `2160h0m0s`.
fn go_duration(duration: std::time::Duration) -> String {
    let total = duration.as_secs();
    format!("{}h{}m{}s", total / 3600, (total % 3600) / 60, total % 60)
}

fn metrics_service(model: &PoolModel) -> Service {
    Service {
        metadata: metadata(model, names::metrics_service(&model.name)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(&model.name)),
            // Workers serve metrics while they are not ready (for example while reconnecting).
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![ServicePort {
                name: Some(METRICS_PORT_NAME.into()),
                port: model.worker.health_port,
                target_port: Some(IntOrString::String(HEALTH_PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn worker_args(model: &PoolModel) -> Vec<String> {
    let worker = &model.worker;
    let device = match worker.device {
        DeviceKind::Cpu => "cpu",
        DeviceKind::Cuda => "cuda",
    };
    let log_format = match worker.log_format {
        LogFormat::Json => "json",
        LogFormat::Text => "text",
    };
    let mut args = vec![
        format!("--server-url={}", model.server.url),
        format!(
            "--heartbeat-interval={}",
            format_seconds(worker.heartbeat_interval)
        ),
        format!("--task-timeout={}", format_seconds(worker.task_timeout)),
        format!("--device={device}"),
        // Bound on all addresses so that kubelet probes and Prometheus reach it.
        "--health-bind=0.0.0.0".to_owned(),
        format!("--health-port={}", worker.health_port),
        format!("--log-level={}", worker.log_level),
        format!("--log-format={log_format}"),
    ];
    if let Some(interval) = worker.idle_heartbeat_interval {
        args.push(format!(
            "--idle-heartbeat-interval={}",
            format_seconds(interval)
        ));
    }
    if let Some(threads) = worker.threads {
        args.push(format!("--threads={threads}"));
    }
    if !matches!(model.server.tls, TlsModel::None) {
        args.push(format!("--tls-cert={TLS_MOUNT}/{}", tls::CERT_KEY));
        args.push(format!("--tls-key={TLS_MOUNT}/{}", tls::PRIVATE_KEY_KEY));
    }
    if let Some(server_ca) = &model.server.server_ca {
        args.push(format!("--tls-ca={SERVER_CA_MOUNT}/{}", server_ca.key));
    }
    args
}

fn worker_env(model: &PoolModel) -> Vec<EnvVar> {
    let field = |path: &str| {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        })
    };
    let mut env = vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: field("metadata.name"),
            ..EnvVar::default()
        },
        EnvVar {
            name: "POD_NAMESPACE".into(),
            value_from: field("metadata.namespace"),
            ..EnvVar::default()
        },
    ];
    if let Some(token) = &model.server.token {
        // A file, not the value: the token stays out of the pod spec and `kubectl describe`.
        env.push(EnvVar {
            name: "JUNIPER_CASCOR_WORKER_AUTH_TOKEN_FILE".into(),
            value: Some(format!("{TOKEN_MOUNT}/{}", token.key)),
            ..EnvVar::default()
        });
    }
    env.extend(model.worker.env.iter().cloned());
    env
}

fn worker_resources(model: &PoolModel) -> Option<ResourceRequirements> {
    let mut resources = model.worker.resources.clone();
    if model.worker.device == DeviceKind::Cuda && model.worker.gpus > 0 {
        let resources = resources.get_or_insert_with(ResourceRequirements::default);
        resources
            .limits
            .get_or_insert_with(BTreeMap::new)
            .insert(GPU_RESOURCE.into(), Quantity(model.worker.gpus.to_string()));
    }
    resources
}

fn secret_volume(name: &str, secret_name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name.into()),
            default_mode: Some(0o444),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    // Whole-directory mounts (no subPath), so kubelet swaps in renewed Secret content and
    // the worker reads it at its next reconnect without a restart.
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn worker_volumes(model: &PoolModel) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }];

    let tls_secret = match &model.server.tls {
        TlsModel::None => None,
        TlsModel::SelfSigned(_) | TlsModel::CertManager { .. } => {
            Some(names::client_tls_secret(&model.name))
        }
        TlsModel::Secret { secret_name } => Some(secret_name.clone()),
    };
    if let Some(secret_name) = tls_secret {
        volumes.push(secret_volume("client-tls", &secret_name));
        mounts.push(mount("client-tls", TLS_MOUNT));
    }
    if let Some(token) = &model.server.token {
        volumes.push(secret_volume("server-token", &token.name));
        mounts.push(mount("server-token", TOKEN_MOUNT));
    }
    if let Some(server_ca) = &model.server.server_ca {
        volumes.push(secret_volume("server-ca", &server_ca.name));
        mounts.push(mount("server-ca", SERVER_CA_MOUNT));
    }
    (volumes, mounts)
}

fn default_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(1000),
        run_as_group: Some(1000),
        fs_group: Some(1000),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn default_container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn http_probe(path: &str, period: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HEALTH_PORT_NAME.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn deployment(model: &PoolModel) -> Deployment {
    let (volumes, volume_mounts) = worker_volumes(model);
    let container = Container {
        name: WORKER_CONTAINER.into(),
        image: Some(model.worker.image.clone()),
        image_pull_policy: Some(model.worker.image_pull_policy.clone()),
        command: Some(vec!["juniper-cascor-worker".into()]),
        args: Some(worker_args(model)),
        env: Some(worker_env(model)),
        ports: Some(vec![ContainerPort {
            name: Some(HEALTH_PORT_NAME.into()),
            container_port: model.worker.health_port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        // Liveness also fails while a worker reconnects, so it tolerates two minutes of
        // failures before kubelet restarts the container.
        liveness_probe: Some(http_probe("/v1/health/live", 15, 8)),
        readiness_probe: Some(http_probe("/v1/health/ready", 5, 2)),
        resources: worker_resources(model),
        security_context: Some(
            model
                .pod
                .container_security_context
                .clone()
                .unwrap_or_else(default_container_security_context),
        ),
        volume_mounts: Some(volume_mounts),
        ..Container::default()
    };

    let mut pod_labels = model.pod.labels.clone();
    pod_labels.extend(child_labels(&model.name));
    let topology_spread_constraints: Vec<_> = model
        .pod
        .topology_spread_constraints
        .iter()
        .cloned()
        .map(|mut constraint| {
            if constraint.label_selector.is_none() {
                constraint.label_selector = Some(LabelSelector {
                    match_labels: Some(selector_labels(&model.name)),
                    ..LabelSelector::default()
                });
            }
            constraint
        })
        .collect();

    let pod_spec = PodSpec {
        service_account_name: Some(
            model
                .pod
                .service_account_name
                .clone()
                .unwrap_or_else(|| names::workload(&model.name)),
        ),
        automount_service_account_token: Some(false),
        security_context: Some(
            model
                .pod
                .security_context
                .clone()
                .unwrap_or_else(default_pod_security_context),
        ),
        termination_grace_period_seconds: Some(model.pod.termination_grace_period_seconds),
        containers: vec![container],
        volumes: Some(volumes),
        image_pull_secrets: non_empty(model.worker.image_pull_secrets.clone()),
        node_selector: non_empty_map(model.pod.node_selector.clone()),
        tolerations: non_empty(model.pod.tolerations.clone()),
        affinity: model.pod.affinity.clone(),
        topology_spread_constraints: non_empty(topology_spread_constraints),
        priority_class_name: model.pod.priority_class_name.clone(),
        ..PodSpec::default()
    };

    Deployment {
        metadata: metadata(model, names::workload(&model.name)),
        spec: DeploymentSpec {
            replicas: Some(model.replicas),
            revision_history_limit: Some(3),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&model.name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: non_empty_map(model.pod.annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn pod_disruption_budget(model: &PoolModel) -> Option<PodDisruptionBudget> {
    let bounds = model.pod_disruption_budget.as_ref()?;
    let (min_available, max_unavailable) = match bounds {
        PdbModel::MinAvailable(value) => (Some(value.clone()), None),
        PdbModel::MaxUnavailable(value) => (None, Some(value.clone())),
    };
    Some(PodDisruptionBudget {
        metadata: metadata(model, names::workload(&model.name)),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&model.name)),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

fn service_monitor(model: &PoolModel) -> DynamicObject {
    let settings = model
        .service_monitor
        .as_ref()
        .expect("service_monitor() is only called when the ServiceMonitor is enabled");
    let mut object = DynamicObject::new(&model.name, &service_monitor_resource());
    object.metadata = metadata(model, names::workload(&model.name));
    let labels = object.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in &settings.labels {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    object.data = json!({
        "spec": {
            "selector": {"matchLabels": child_labels(&model.name)},
            "namespaceSelector": {"matchNames": [model.namespace]},
            "endpoints": [{
                "port": METRICS_PORT_NAME,
                "path": "/metrics",
                "interval": settings.interval,
            }],
        }
    });
    object
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    if items.is_empty() { None } else { Some(items) }
}

fn non_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    if map.is_empty() { None } else { Some(map) }
}
