//! The `capabilities` object of the `register` message.

use cascor_trainer::{ResolvedDevice, Trainer};
use serde_json::{Map, Value};

use super::settings::WorkerIdentity;

/// Builds the capabilities: the reference worker's keys with this worker's values (the
/// Python-specific versions are `"n/a"`), plus the implementation, version, device and
/// identity of the pod.
pub fn capabilities(trainer: &Trainer, identity: &WorkerIdentity) -> Map<String, Value> {
    let mut capabilities = Map::new();

    let gpu_name = match trainer.device() {
        ResolvedDevice::Cuda(index) => cascor_trainer::device::gpu_name(index),
        ResolvedDevice::Cpu => None,
    };
    capabilities.insert(
        "cpu_cores".to_owned(),
        Value::from(cascor_trainer::available_cpus()),
    );
    capabilities.insert(
        "gpu".to_owned(),
        Value::from(matches!(trainer.device(), ResolvedDevice::Cuda(_))),
    );
    capabilities.insert(
        "gpu_name".to_owned(),
        gpu_name.map_or(Value::Null, Value::from),
    );
    capabilities.insert("python_version".to_owned(), Value::from("n/a"));
    capabilities.insert("torch_version".to_owned(), Value::from("n/a"));
    capabilities.insert("numpy_version".to_owned(), Value::from("n/a"));
    capabilities.insert("os".to_owned(), Value::from(os_name()));

    capabilities.insert("implementation".to_owned(), Value::from("rust"));
    capabilities.insert(
        "worker_version".to_owned(),
        Value::from(env!("CARGO_PKG_VERSION")),
    );
    capabilities.insert(
        "device".to_owned(),
        Value::from(trainer.device_description()),
    );
    capabilities.insert(
        "hostname".to_owned(),
        Value::from(identity.hostname.as_str()),
    );
    if let Some(pod_name) = &identity.pod_name {
        capabilities.insert("pod_name".to_owned(), Value::from(pod_name.as_str()));
    }
    if let Some(pod_namespace) = &identity.pod_namespace {
        capabilities.insert(
            "pod_namespace".to_owned(),
            Value::from(pod_namespace.as_str()),
        );
    }

    capabilities
}

/// Returns the operating system name as Python's `platform.system()` spells it.
fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "windows" => "Windows",
        other => other,
    }
}
