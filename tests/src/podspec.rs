//! Turns a pod template into the program, arguments, environment and files of one host
//! process, the way the kubelet would start the container, for tests without a cluster.
//!
//! The resolution is pure: [`referenced_secrets`] lists the Secrets a template needs, the
//! caller reads them, and [`resolve_container`] builds a [`ResolvedContainer`].
//! [`ResolvedContainer::materialize`] then writes the mounted files.
//!
//! What the kubelet does and this module reproduces:
//! * `env` in order, with `value` (and `$(VAR)` references to earlier variables, `$$` for a
//!   literal `$`), `secretKeyRef` (with `optional`), and the downward-API `fieldRef`s
//!   `metadata.name` and `metadata.namespace`.
//! * `command` and `args` with `$(VAR)` references to the container's environment.
//! * `secret` volumes (with `items` and `optional`) as files named after their keys or item
//!   paths, and `emptyDir` volumes as empty folders.
//!
//! Two substitutions stand in for what a container has and a host process does not:
//! * Mount root: a volume mounted at `/var/run/x` lives in `<mount root>/var/run/x`.
//!   Every occurrence of a mount path in the arguments and environment values is rewritten
//!   to that folder. An occurrence starts the value or follows a separator such as `=`, and
//!   ends at `/` or the end of the value.
//! * Image binaries: `command[0]` (a name on the image's PATH or an absolute path in the
//!   image) maps to a host binary through [`HostMapping::binaries`].
//!
//! Everything else that affects the process (`envFrom`, `configMapKeyRef`,
//! `resourceFieldRef`, other `fieldRef` paths, other volume kinds, `subPath` mounts, a
//! missing `command`, init or sidecar containers) fails with [`PodSpecError`], so a change
//! of the pod spec cannot pass unnoticed. Settings that only constrain the process
//! (resources, security contexts, probes other than through [`http_probe`])
//! are not reproduced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, Probe, Secret, SecretVolumeSource, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Characters of generated name suffixes, as Kubernetes uses them (no vowels, no
/// look-alike digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Reasons a pod template cannot be turned into a host process.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodSpecError {
    #[error("the pod template has no spec")]
    MissingPodSpec,
    #[error("the pod has no container named {0:?}")]
    ContainerNotFound(String),
    #[error("the pod has {kind} {names:?}, which a single host process cannot reproduce")]
    ExtraContainers {
        kind: &'static str,
        names: Vec<String>,
    },
    #[error("container {0:?} has no command, and the image entrypoint is not modeled")]
    MissingCommand(String),
    #[error("no host binary is mapped for the image's {0:?}; add it to HostMapping::binaries")]
    UnmappedBinary(String),
    #[error("container {container:?} uses envFrom, which is not supported")]
    UnsupportedEnvFrom { container: String },
    #[error("environment variable {name:?} uses {source_kind}, which is not supported")]
    UnsupportedEnvSource { name: String, source_kind: String },
    #[error("environment variable {name:?} has an empty valueFrom")]
    EmptyEnvSource { name: String },
    #[error(
        "environment variable {name:?} references fieldPath {path:?}; only metadata.name and metadata.namespace are supported"
    )]
    UnsupportedFieldPath { name: String, path: String },
    #[error("Secret {secret:?} referenced by {by} is not found")]
    SecretNotFound { secret: String, by: String },
    #[error("Secret {secret:?} has no key {key:?} (referenced by {by})")]
    SecretKeyNotFound {
        secret: String,
        key: String,
        by: String,
    },
    #[error(
        "key {key:?} of Secret {secret:?} is not valid UTF-8 and cannot be an environment value"
    )]
    SecretValueNotUtf8 { secret: String, key: String },
    #[error("volume {name:?} is of kind {kind}, which is not supported")]
    UnsupportedVolume { name: String, kind: String },
    #[error("volume {0:?} is a secret volume without secretName")]
    SecretVolumeWithoutName(String),
    #[error("volume mount {mount:?} references volume {volume:?}, which the pod does not declare")]
    UndeclaredVolume { mount: String, volume: String },
    #[error("volume mount of {volume:?} at {mount:?} uses {field}, which is not supported")]
    UnsupportedMount {
        volume: String,
        mount: String,
        field: &'static str,
    },
    #[error("mount path {0:?} is not absolute")]
    RelativeMountPath(String),
    #[error("item path {path:?} of volume {volume:?} leaves the volume")]
    InvalidItemPath { volume: String, path: String },
    #[error("probe of container {container:?} is not an httpGet probe")]
    UnsupportedProbe { container: String },
    #[error("probe port {port:?} does not name a port of container {container:?}")]
    UnknownProbePort { container: String, port: String },
}

/// Identity of the pod as the downward API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    pub name: String,
    pub namespace: String,
}

/// How container paths and image binaries map to the host.
#[derive(Debug, Clone)]
pub struct HostMapping {
    /// Folder standing in for the container's root for every volume mount.
    pub mount_root: PathBuf,
    /// Image binary (a bare name on the image's PATH or an absolute path) to host binary.
    pub binaries: BTreeMap<String, PathBuf>,
}

/// A file a secret volume projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedFile {
    /// Host path, under the mount root.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    /// File mode, from the item's `mode` or the volume's `defaultMode` (0644 when neither).
    pub mode: u32,
}

/// The host process that replaces one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContainer {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The container's whole environment, in definition order.
    pub env: Vec<(String, String)>,
    /// Host folders of every mount, created by [`ResolvedContainer::materialize`].
    pub directories: Vec<PathBuf>,
    pub files: Vec<ProjectedFile>,
}

impl ResolvedContainer {
    /// Creates the mount folders and writes the projected files.
    pub fn materialize(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;

        for directory in &self.directories {
            std::fs::create_dir_all(directory)?;
        }
        for file in &self.files {
            if let Some(parent) = file.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file.path, &file.contents)?;
            std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(file.mode))?;
        }
        Ok(())
    }
}

/// An HTTP probe target: the container port number and the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbeTarget {
    pub port: u16,
    pub path: String,
}

/// Returns the pod spec of a template, or [`PodSpecError::MissingPodSpec`].
fn pod_spec(template: &PodTemplateSpec) -> Result<&PodSpec, PodSpecError> {
    template.spec.as_ref().ok_or(PodSpecError::MissingPodSpec)
}

/// Returns the container named `name`, rejecting pods with other containers.
fn single_container<'a>(spec: &'a PodSpec, name: &str) -> Result<&'a Container, PodSpecError> {
    let names = |containers: &[Container]| {
        containers
            .iter()
            .map(|container| container.name.clone())
            .collect::<Vec<_>>()
    };

    if let Some(init) = spec
        .init_containers
        .as_deref()
        .filter(|containers| !containers.is_empty())
    {
        return Err(PodSpecError::ExtraContainers {
            kind: "init containers",
            names: names(init),
        });
    }
    let others: Vec<String> = names(&spec.containers)
        .into_iter()
        .filter(|other| other != name)
        .collect();
    if !others.is_empty() {
        return Err(PodSpecError::ExtraContainers {
            kind: "other containers",
            names: others,
        });
    }
    spec.containers
        .iter()
        .find(|container| container.name == name)
        .ok_or_else(|| PodSpecError::ContainerNotFound(name.to_owned()))
}

/// Lists the names of the Secrets the container's environment and the pod's volumes read.
pub fn referenced_secrets(template: &PodTemplateSpec) -> Result<BTreeSet<String>, PodSpecError> {
    let spec = pod_spec(template)?;
    let mut names = BTreeSet::new();

    for container in &spec.containers {
        for variable in container.env.iter().flatten() {
            if let Some(reference) = variable
                .value_from
                .as_ref()
                .and_then(|source| source.secret_key_ref.as_ref())
            {
                names.insert(reference.name.clone());
            }
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(secret_name) = volume
            .secret
            .as_ref()
            .and_then(|source| source.secret_name.clone())
        {
            names.insert(secret_name);
        }
    }
    Ok(names)
}

/// Resolves the container named `container` of `template` into a host process.
///
/// `secrets` maps names to the Secrets [`referenced_secrets`] listed; a missing one counts
/// as not found in the cluster.
pub fn resolve_container(
    template: &PodTemplateSpec,
    container: &str,
    pod: &PodIdentity,
    secrets: &BTreeMap<String, Secret>,
    mapping: &HostMapping,
) -> Result<ResolvedContainer, PodSpecError> {
    let spec = pod_spec(template)?;
    let container = single_container(spec, container)?;

    let mounts = resolve_mounts(spec, container, secrets, mapping)?;
    let env = resolve_env(container, pod, secrets)?
        .into_iter()
        .map(|(name, value)| {
            let value = remap_paths(&value, &mounts.remaps);
            (name, value)
        })
        .collect::<Vec<_>>();

    let command = container
        .command
        .as_deref()
        .filter(|command| !command.is_empty())
        .ok_or_else(|| PodSpecError::MissingCommand(container.name.clone()))?;
    let lookup: BTreeMap<&str, &str> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut words: Vec<String> = command
        .iter()
        .chain(container.args.iter().flatten())
        .map(|word| expand_references(word, &lookup))
        .map(|word| remap_paths(&word, &mounts.remaps))
        .collect();

    let image_binary = words.remove(0);
    let program = mapping
        .binaries
        .get(&image_binary)
        .cloned()
        .ok_or(PodSpecError::UnmappedBinary(image_binary))?;

    Ok(ResolvedContainer {
        program,
        args: words,
        env,
        directories: mounts.directories,
        files: mounts.files,
    })
}

/// Returns the port and path of an httpGet probe of the container, with a named port
/// resolved through the container's ports.
pub fn http_probe(container: &Container, probe: &Probe) -> Result<HttpProbeTarget, PodSpecError> {
    let action = probe
        .http_get
        .as_ref()
        .ok_or_else(|| PodSpecError::UnsupportedProbe {
            container: container.name.clone(),
        })?;
    let unknown = |port: String| PodSpecError::UnknownProbePort {
        container: container.name.clone(),
        port,
    };

    let number = match &action.port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|port| port.name.as_deref() == Some(name.as_str()))
            .map(|port| port.container_port)
            .ok_or_else(|| unknown(name.clone()))?,
    };
    let port = u16::try_from(number).map_err(|_| unknown(number.to_string()))?;
    Ok(HttpProbeTarget {
        port,
        path: action.path.clone().unwrap_or_else(|| "/".to_owned()),
    })
}

/// Mount folders, projected files and path rewrites of one container.
struct Mounts {
    directories: Vec<PathBuf>,
    files: Vec<ProjectedFile>,
    /// (container path, host path), longest container path first.
    remaps: Vec<(String, String)>,
}

fn resolve_mounts(
    spec: &PodSpec,
    container: &Container,
    secrets: &BTreeMap<String, Secret>,
    mapping: &HostMapping,
) -> Result<Mounts, PodSpecError> {
    let volumes: BTreeMap<&str, &Volume> = spec
        .volumes
        .iter()
        .flatten()
        .map(|volume| (volume.name.as_str(), volume))
        .collect();
    for volume in volumes.values() {
        check_volume_kind(volume)?;
    }

    let mut mounts = Mounts {
        directories: Vec::new(),
        files: Vec::new(),
        remaps: Vec::new(),
    };
    for mount in container.volume_mounts.iter().flatten() {
        let unsupported = |field: &'static str| PodSpecError::UnsupportedMount {
            volume: mount.name.clone(),
            mount: mount.mount_path.clone(),
            field,
        };
        if mount
            .sub_path
            .as_deref()
            .is_some_and(|path| !path.is_empty())
        {
            return Err(unsupported("subPath"));
        }
        if mount
            .sub_path_expr
            .as_deref()
            .is_some_and(|path| !path.is_empty())
        {
            return Err(unsupported("subPathExpr"));
        }
        let volume =
            volumes
                .get(mount.name.as_str())
                .ok_or_else(|| PodSpecError::UndeclaredVolume {
                    mount: mount.mount_path.clone(),
                    volume: mount.name.clone(),
                })?;
        let relative = mount
            .mount_path
            .strip_prefix('/')
            .ok_or_else(|| PodSpecError::RelativeMountPath(mount.mount_path.clone()))?;
        let host_dir = mapping.mount_root.join(relative.trim_end_matches('/'));

        if let Some(source) = &volume.secret {
            mounts
                .files
                .extend(project_secret(&volume.name, source, &host_dir, secrets)?);
        }
        mounts.directories.push(host_dir.clone());
        mounts.remaps.push((
            mount.mount_path.trim_end_matches('/').to_owned(),
            host_dir.display().to_string(),
        ));
    }
    mounts
        .remaps
        .sort_by_key(|(container_path, _)| std::cmp::Reverse(container_path.len()));
    Ok(mounts)
}

/// Accepts `secret` and `emptyDir` volumes; names the kind of any other.
fn check_volume_kind(volume: &Volume) -> Result<(), PodSpecError> {
    if volume.secret.is_some() || volume.empty_dir.is_some() {
        return Ok(());
    }
    let value = serde_json::to_value(volume).unwrap_or_default();
    let kind = value
        .as_object()
        .and_then(|fields| fields.keys().find(|key| key.as_str() != "name").cloned())
        .unwrap_or_else(|| "none".to_owned());
    Err(PodSpecError::UnsupportedVolume {
        name: volume.name.clone(),
        kind,
    })
}

fn project_secret(
    volume: &str,
    source: &SecretVolumeSource,
    host_dir: &Path,
    secrets: &BTreeMap<String, Secret>,
) -> Result<Vec<ProjectedFile>, PodSpecError> {
    let secret_name = source
        .secret_name
        .clone()
        .ok_or_else(|| PodSpecError::SecretVolumeWithoutName(volume.to_owned()))?;
    let optional = source.optional.unwrap_or(false);
    let by = format!("volume {volume:?}");
    let default_mode = source.default_mode.map_or(0o644, |mode| mode as u32);

    let Some(secret) = secrets.get(&secret_name) else {
        if optional {
            return Ok(Vec::new());
        }
        return Err(PodSpecError::SecretNotFound {
            secret: secret_name,
            by,
        });
    };
    let data = secret_data(secret);

    let Some(items) = source.items.as_ref().filter(|items| !items.is_empty()) else {
        return Ok(data
            .into_iter()
            .map(|(key, contents)| ProjectedFile {
                path: host_dir.join(key),
                contents,
                mode: default_mode,
            })
            .collect());
    };

    let mut files = Vec::new();
    for item in items {
        let Some(contents) = data.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(PodSpecError::SecretKeyNotFound {
                secret: secret_name.clone(),
                key: item.key.clone(),
                by: by.clone(),
            });
        };
        let escapes = Path::new(&item.path)
            .components()
            .any(|component| !matches!(component, std::path::Component::Normal(_)));
        if escapes || item.path.is_empty() {
            return Err(PodSpecError::InvalidItemPath {
                volume: volume.to_owned(),
                path: item.path.clone(),
            });
        }
        files.push(ProjectedFile {
            path: host_dir.join(&item.path),
            contents: contents.clone(),
            mode: item.mode.map_or(default_mode, |mode| mode as u32),
        });
    }
    Ok(files)
}

/// Returns a Secret's keys and values; `stringData` entries win over `data`, as the API
/// server merges them on write.
fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect();
    for (key, value) in secret.string_data.iter().flatten() {
        data.insert(key.clone(), value.as_bytes().to_vec());
    }
    data
}

fn resolve_env(
    container: &Container,
    pod: &PodIdentity,
    secrets: &BTreeMap<String, Secret>,
) -> Result<Vec<(String, String)>, PodSpecError> {
    if container
        .env_from
        .as_ref()
        .is_some_and(|sources| !sources.is_empty())
    {
        return Err(PodSpecError::UnsupportedEnvFrom {
            container: container.name.clone(),
        });
    }

    let mut env: Vec<(String, String)> = Vec::new();
    for variable in container.env.iter().flatten() {
        let value = match &variable.value_from {
            None => {
                let lookup: BTreeMap<&str, &str> = env
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                Some(expand_references(
                    variable.value.as_deref().unwrap_or_default(),
                    &lookup,
                ))
            }
            Some(_) => env_source_value(variable, pod, secrets)?,
        };
        // A later definition of the same name replaces the earlier one, as in the kubelet.
        if let Some(value) = value {
            env.retain(|(name, _)| name != &variable.name);
            env.push((variable.name.clone(), value));
        }
    }
    Ok(env)
}

/// Returns the value of a `valueFrom` variable, or `None` for an optional Secret key that
/// is absent (the kubelet then leaves the variable unset).
fn env_source_value(
    variable: &EnvVar,
    pod: &PodIdentity,
    secrets: &BTreeMap<String, Secret>,
) -> Result<Option<String>, PodSpecError> {
    let name = variable.name.clone();
    let Some(source) = &variable.value_from else {
        return Err(PodSpecError::EmptyEnvSource { name });
    };
    let unsupported = |source_kind: &str| PodSpecError::UnsupportedEnvSource {
        name: name.clone(),
        source_kind: source_kind.to_owned(),
    };
    if source.config_map_key_ref.is_some() {
        return Err(unsupported("configMapKeyRef"));
    }
    if source.resource_field_ref.is_some() {
        return Err(unsupported("resourceFieldRef"));
    }
    if let Some(other) = other_env_source_kind(source) {
        return Err(unsupported(&other));
    }

    if let Some(field) = &source.field_ref {
        let value = match field.field_path.as_str() {
            "metadata.name" => pod.name.clone(),
            "metadata.namespace" => pod.namespace.clone(),
            path => {
                return Err(PodSpecError::UnsupportedFieldPath {
                    name,
                    path: path.to_owned(),
                });
            }
        };
        return Ok(Some(value));
    }

    let Some(reference) = &source.secret_key_ref else {
        return Err(PodSpecError::EmptyEnvSource { name });
    };
    let optional = reference.optional.unwrap_or(false);
    let by = format!("environment variable {name:?}");
    let Some(secret) = secrets.get(&reference.name) else {
        if optional {
            return Ok(None);
        }
        return Err(PodSpecError::SecretNotFound {
            secret: reference.name.clone(),
            by,
        });
    };
    let Some(bytes) = secret_data(secret).remove(&reference.key) else {
        if optional {
            return Ok(None);
        }
        return Err(PodSpecError::SecretKeyNotFound {
            secret: reference.name.clone(),
            key: reference.key.clone(),
            by,
        });
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| PodSpecError::SecretValueNotUtf8 {
            secret: reference.name.clone(),
            key: reference.key.clone(),
        })
}

/// Names a `valueFrom` field this module does not know, for sources added to the API after
/// the k8s-openapi version the tests build with.
fn other_env_source_kind(source: &k8s_openapi::api::core::v1::EnvVarSource) -> Option<String> {
    const KNOWN: [&str; 4] = [
        "configMapKeyRef",
        "fieldRef",
        "resourceFieldRef",
        "secretKeyRef",
    ];
    let value = serde_json::to_value(source).ok()?;
    value
        .as_object()?
        .keys()
        .find(|key| !KNOWN.contains(&key.as_str()))
        .cloned()
}

/// Expands `$(NAME)` references to variables in `env` as the kubelet does: `$$` is a
/// literal `$`, and a reference to an undefined variable stays as written.
pub fn expand_references(text: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        expanded.push_str(&rest[..position]);
        let after = &rest[position + 1..];

        if let Some(tail) = after.strip_prefix('$') {
            expanded.push('$');
            rest = tail;
            continue;
        }
        let reference = after.strip_prefix('(').and_then(|inner| {
            inner
                .find(')')
                .map(|end| (&inner[..end], &inner[end + 1..]))
        });
        match reference {
            Some((name, tail)) if env.contains_key(name) => {
                expanded.push_str(env[name]);
                rest = tail;
            }
            Some((name, tail)) => {
                expanded.push_str("$(");
                expanded.push_str(name);
                expanded.push(')');
                rest = tail;
            }
            None => {
                expanded.push('$');
                rest = after;
            }
        }
    }
    expanded.push_str(rest);
    expanded
}

/// Rewrites each occurrence of a container mount path to its host folder. An occurrence
/// starts the value or follows a character that cannot be part of a path (such as `=`,
/// `:` or `,`), and ends at `/` or the end of the value. `remaps` lists the longest
/// container path first, so a nested mount wins over its parent.
fn remap_paths(value: &str, remaps: &[(String, String)]) -> String {
    let is_path_char = |character: char| character.is_alphanumeric() || "/._-~".contains(character);
    let mut output = String::with_capacity(value.len());
    let mut index = 0;

    'scan: while index < value.len() {
        let preceded_ok = value[..index]
            .chars()
            .next_back()
            .is_none_or(|previous| !is_path_char(previous));
        if preceded_ok {
            for (container_path, host_path) in remaps {
                let Some(after) = value[index..].strip_prefix(container_path.as_str()) else {
                    continue;
                };
                if after.is_empty() || after.starts_with('/') {
                    output.push_str(host_path);
                    index += container_path.len();
                    continue 'scan;
                }
            }
        }
        let character = value[index..].chars().next().unwrap_or_default();
        output.push(character);
        index += character.len_utf8();
    }
    output
}

/// Generates a pod name in the form a Deployment's ReplicaSet gives its pods:
/// `<deployment>-<pod-template-hash>-<5 random characters>`. The hash here is FNV-1a
/// (32 bit) of the template's JSON in the name alphabet, so it matches the form of
/// Kubernetes' hash but not its value.
pub fn generate_pod_name(deployment: &str, template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let hash = json.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    });
    let template_hash = encode_name(u64::from(hash));

    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rand::random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{deployment}-{template_hash}-{suffix}")
}

fn encode_name(mut value: u64) -> String {
    let base = NAME_ALPHABET.len() as u64;
    let mut encoded = Vec::new();
    loop {
        encoded.push(NAME_ALPHABET[(value % base) as usize]);
        value /= base;
        if value == 0 {
            break;
        }
    }
    encoded.reverse();
    String::from_utf8(encoded).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, ContainerPort, EmptyDirVolumeSource, EnvVarSource, HTTPGetAction,
        HostPathVolumeSource, KeyToPath, ObjectFieldSelector, SecretKeySelector, VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const WORKER: &str = "/usr/local/bin/juniper-cascor-worker";

    fn pod() -> PodIdentity {
        PodIdentity {
            name: "cpu-5f7c9d-abcde".into(),
            namespace: "ml".into(),
        }
    }

    fn mapping() -> HostMapping {
        HostMapping {
            mount_root: PathBuf::from("/host/root"),
            binaries: BTreeMap::from([("juniper-cascor-worker".to_owned(), PathBuf::from(WORKER))]),
        }
    }

    fn secret(name: &str, entries: &[(&str, &str)]) -> (String, Secret) {
        let data = entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
            .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..Secret::default()
        };
        (name.to_owned(), secret)
    }

    fn template(container: Container, volumes: Vec<Volume>) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
        }
    }

    fn container(env: Vec<EnvVar>, mounts: Vec<VolumeMount>) -> Container {
        Container {
            name: "worker".into(),
            command: Some(vec!["juniper-cascor-worker".into()]),
            args: Some(vec![
                "--tls-cert=/var/run/secrets/tls/tls.crt".into(),
                "--pod=$(POD_NAME)".into(),
                "--literal=$$(POD_NAME)".into(),
            ]),
            env: Some(env),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }
    }

    fn value(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..EnvVar::default()
        }
    }

    fn secret_ref(name: &str, secret: &str, key: &str, optional: Option<bool>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: key.into(),
                    optional,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }
    }

    fn secret_volume(name: &str, secret: &str, items: Option<Vec<KeyToPath>>) -> Volume {
        Volume {
            name: name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                default_mode: Some(0o440),
                items,
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }
    }

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..VolumeMount::default()
        }
    }

    #[test]
    fn resolves_env_args_and_files() {
        let template = template(
            container(
                vec![
                    field("POD_NAME", "metadata.name"),
                    field("POD_NAMESPACE", "metadata.namespace"),
                    secret_ref("TOKEN", "token", "token", None),
                    value("TOKEN_FILE", "/var/run/secrets/token/token"),
                    value("WHERE", "$(POD_NAMESPACE)/$(POD_NAME) $(UNDEFINED)"),
                ],
                vec![
                    mount("tls", "/var/run/secrets/tls"),
                    mount("token", "/var/run/secrets/token/"),
                    mount("tmp", "/tmp"),
                ],
            ),
            vec![
                secret_volume("tls", "pool-tls", None),
                secret_volume("token", "token", None),
                Volume {
                    name: "tmp".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                },
            ],
        );
        let secrets = BTreeMap::from([
            secret("pool-tls", &[("tls.crt", "CERT"), ("tls.key", "KEY")]),
            secret("token", &[("token", "s3cret")]),
        ]);

        let resolved =
            resolve_container(&template, "worker", &pod(), &secrets, &mapping()).expect("resolves");

        assert_eq!(resolved.program, PathBuf::from(WORKER));
        assert_eq!(
            resolved.args,
            [
                "--tls-cert=/host/root/var/run/secrets/tls/tls.crt",
                "--pod=cpu-5f7c9d-abcde",
                "--literal=$(POD_NAME)",
            ]
        );
        let env: BTreeMap<_, _> = resolved.env.iter().cloned().collect();
        assert_eq!(env["POD_NAME"], "cpu-5f7c9d-abcde");
        assert_eq!(env["POD_NAMESPACE"], "ml");
        assert_eq!(env["TOKEN"], "s3cret");
        assert_eq!(env["TOKEN_FILE"], "/host/root/var/run/secrets/token/token");
        assert_eq!(env["WHERE"], "ml/cpu-5f7c9d-abcde $(UNDEFINED)");
        assert_eq!(resolved.env.len(), 5);

        let files: BTreeMap<_, _> = resolved
            .files
            .iter()
            .map(|file| (file.path.clone(), file))
            .collect();
        assert_eq!(files.len(), 3);
        let token = files[Path::new("/host/root/var/run/secrets/token/token")];
        assert_eq!(token.contents, b"s3cret");
        assert_eq!(token.mode, 0o440);
        assert_eq!(
            files[Path::new("/host/root/var/run/secrets/tls/tls.key")].contents,
            b"KEY"
        );
        assert!(
            resolved
                .directories
                .contains(&PathBuf::from("/host/root/tmp"))
        );
    }

    #[test]
    fn secret_items_and_optional_keys() {
        let items = vec![KeyToPath {
            key: "token".into(),
            path: "nested/auth".into(),
            mode: Some(0o400),
            ..KeyToPath::default()
        }];
        let template = template(
            container(
                vec![
                    secret_ref("MISSING", "token", "absent", Some(true)),
                    secret_ref("ABSENT", "nowhere", "x", Some(true)),
                ],
                vec![mount("token", "/etc/token")],
            ),
            vec![secret_volume("token", "token", Some(items))],
        );
        let secrets = BTreeMap::from([secret("token", &[("token", "abc"), ("other", "unused")])]);

        let resolved =
            resolve_container(&template, "worker", &pod(), &secrets, &mapping()).expect("resolves");

        assert!(resolved.env.is_empty(), "{:?}", resolved.env);
        assert_eq!(resolved.files.len(), 1);
        assert_eq!(
            resolved.files[0].path,
            PathBuf::from("/host/root/etc/token/nested/auth")
        );
        assert_eq!(resolved.files[0].mode, 0o400);
    }

    #[test]
    fn unsupported_sources_are_rejected() {
        let config_map = EnvVar {
            name: "FROM_CONFIG".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "settings".into(),
                    key: "level".into(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        let cases = [
            (
                vec![config_map],
                PodSpecError::UnsupportedEnvSource {
                    name: "FROM_CONFIG".into(),
                    source_kind: "configMapKeyRef".into(),
                },
            ),
            (
                vec![field("NODE", "spec.nodeName")],
                PodSpecError::UnsupportedFieldPath {
                    name: "NODE".into(),
                    path: "spec.nodeName".into(),
                },
            ),
            (
                vec![secret_ref("TOKEN", "absent", "token", None)],
                PodSpecError::SecretNotFound {
                    secret: "absent".into(),
                    by: "environment variable \"TOKEN\"".into(),
                },
            ),
        ];
        for (env, expected) in cases {
            let template = template(container(env, Vec::new()), Vec::new());
            let error =
                resolve_container(&template, "worker", &pod(), &BTreeMap::new(), &mapping())
                    .unwrap_err();
            assert_eq!(error, expected);
        }
    }

    #[test]
    fn unsupported_volumes_and_mounts_are_rejected() {
        let host_path = Volume {
            name: "host".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/var/lib".into(),
                ..HostPathVolumeSource::default()
            }),
            ..Volume::default()
        };
        let template_with_host_path = template(container(Vec::new(), Vec::new()), vec![host_path]);
        let error = resolve_container(
            &template_with_host_path,
            "worker",
            &pod(),
            &BTreeMap::new(),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(
            error,
            PodSpecError::UnsupportedVolume {
                name: "host".into(),
                kind: "hostPath".into(),
            }
        );

        let mut sub_path = mount("token", "/etc/token");
        sub_path.sub_path = Some("token".into());
        let secrets = BTreeMap::from([secret("token", &[("token", "abc")])]);
        let template_with_sub_path = template(
            container(Vec::new(), vec![sub_path]),
            vec![secret_volume("token", "token", None)],
        );
        let error = resolve_container(
            &template_with_sub_path,
            "worker",
            &pod(),
            &secrets,
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(
            error,
            PodSpecError::UnsupportedMount {
                volume: "token".into(),
                mount: "/etc/token".into(),
                field: "subPath",
            }
        );

        let undeclared = template(
            container(Vec::new(), vec![mount("gone", "/gone")]),
            Vec::new(),
        );
        let error = resolve_container(&undeclared, "worker", &pod(), &BTreeMap::new(), &mapping())
            .unwrap_err();
        assert_eq!(
            error,
            PodSpecError::UndeclaredVolume {
                mount: "/gone".into(),
                volume: "gone".into(),
            }
        );
    }

    #[test]
    fn command_must_exist_and_map() {
        let mut without_command = container(Vec::new(), Vec::new());
        without_command.command = None;
        let error = resolve_container(
            &template(without_command, Vec::new()),
            "worker",
            &pod(),
            &BTreeMap::new(),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(error, PodSpecError::MissingCommand("worker".into()));

        let mut other_binary = container(Vec::new(), Vec::new());
        other_binary.command = Some(vec!["/bin/sh".into(), "-c".into()]);
        let error = resolve_container(
            &template(other_binary, Vec::new()),
            "worker",
            &pod(),
            &BTreeMap::new(),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(error, PodSpecError::UnmappedBinary("/bin/sh".into()));
    }

    #[test]
    fn sidecars_are_rejected() {
        let mut template = template(container(Vec::new(), Vec::new()), Vec::new());
        if let Some(spec) = template.spec.as_mut() {
            spec.containers.push(Container {
                name: "proxy".into(),
                ..Container::default()
            });
        }
        let error = resolve_container(&template, "worker", &pod(), &BTreeMap::new(), &mapping())
            .unwrap_err();
        assert_eq!(
            error,
            PodSpecError::ExtraContainers {
                kind: "other containers",
                names: vec!["proxy".into()],
            }
        );
    }

    #[test]
    fn path_remap_respects_boundaries() {
        let remaps = vec![
            ("/var/run/secrets/tls".to_owned(), "/h/tls".to_owned()),
            ("/tmp".to_owned(), "/h/tmp".to_owned()),
        ];
        assert_eq!(remap_paths("/tmp", &remaps), "/h/tmp");
        assert_eq!(remap_paths("/tmp/a:/tmpfile", &remaps), "/h/tmp/a:/tmpfile");
        assert_eq!(remap_paths("x/tmp/a", &remaps), "x/tmp/a");
        assert_eq!(
            remap_paths("--ca=/var/run/secrets/tls/ca.crt", &remaps),
            "--ca=/h/tls/ca.crt"
        );
    }

    #[test]
    fn probe_port_resolves_by_name() {
        let mut container = container(Vec::new(), Vec::new());
        container.ports = Some(vec![ContainerPort {
            name: Some("health".into()),
            container_port: 8210,
            ..ContainerPort::default()
        }]);
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/v1/health/ready".into()),
                port: IntOrString::String("health".into()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };

        let target = http_probe(&container, &probe).expect("resolves");

        assert_eq!(
            target,
            HttpProbeTarget {
                port: 8210,
                path: "/v1/health/ready".into(),
            }
        );
    }

    #[test]
    fn pod_names_follow_replica_set_form() {
        let template = template(container(Vec::new(), Vec::new()), Vec::new());
        let first = generate_pod_name("cpu", &template);
        let second = generate_pod_name("cpu", &template);

        let parts: Vec<&str> = first.split('-').collect();
        assert_eq!(parts.len(), 3, "{first}");
        assert_eq!(parts[0], "cpu");
        assert_eq!(parts[2].len(), 5);
        assert!(
            first
                .bytes()
                .filter(|byte| *byte != b'-')
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        );
        assert_eq!(
            first.rsplit_once('-').map(|(prefix, _)| prefix),
            second.rsplit_once('-').map(|(prefix, _)| prefix)
        );
    }
}
