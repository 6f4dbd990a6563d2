//! Writes built children with server-side apply, skipping writes that would change nothing,
//! and deletes children that were not built this round.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;
use tracing::{debug, info};

use crate::children::{self, Child, ClusterCapabilities, FIELD_MANAGER, HASH_ANNOTATION};
use crate::error::{Error, kube_error};
use crate::metrics::Metrics;

/// Result of applying one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Updated,
    /// The live object already matched; nothing was written.
    Unchanged,
}

/// A child after the apply step: the object as the API server returned it.
#[derive(Debug, Clone)]
pub struct AppliedChild {
    pub kind: &'static str,
    pub name: String,
    pub outcome: ApplyOutcome,
    pub live: Value,
    /// `spec.replicas` of the object before this apply, when it existed and had one.
    pub previous_replicas: Option<i64>,
}

/// The API resource of a child kind.
pub fn api_resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "ServiceAccount" => ApiResource::erase::<ServiceAccount>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        "Certificate" => children::certificate_resource(),
        "ServiceMonitor" => children::service_monitor_resource(),
        _ => return None,
    })
}

/// Child kinds the prune step looks at, given the optional APIs installed.
fn prunable_kinds(capabilities: ClusterCapabilities) -> Vec<&'static str> {
    let mut kinds = vec![
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    ];
    if capabilities.cert_manager {
        kinds.push("Certificate");
    }
    if capabilities.service_monitor {
        kinds.push("ServiceMonitor");
    }
    kinds
}

/// Applies one child unless the live object already matches it.
pub async fn apply_child(
    client: &Client,
    namespace: &str,
    child: &Child,
    metrics: &Metrics,
) -> Result<AppliedChild, Error> {
    let kind = child.kind();
    let name = child.name().to_owned();
    let resource = api_resource(kind).expect("every Child kind has an ApiResource");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let desired = child.to_json().map_err(|source| Error::Serialize {
        kind,
        name: name.clone(),
        source,
    })?;

    let live = api
        .get_opt(&name)
        .await
        .map_err(kube_error("get", kind, namespace, &name))?;
    let live = live
        .as_ref()
        .map(|object| to_value(kind, &name, object))
        .transpose()?;
    let previous_replicas = live
        .as_ref()
        .and_then(|object| object["spec"]["replicas"].as_i64());
    if let Some(live) = live.as_ref() {
        if matches_desired(&desired, live) {
            debug!(kind, name = %name, "child unchanged, skipping apply");
            return Ok(AppliedChild {
                kind,
                name,
                outcome: ApplyOutcome::Unchanged,
                live: live.clone(),
                previous_replicas,
            });
        }
    }

    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(&desired))
        .await
        .map_err(kube_error("apply", kind, namespace, &name))?;
    metrics.writes.with_label_values(&[kind, "apply"]).inc();
    let outcome = if live.is_some() {
        ApplyOutcome::Updated
    } else {
        ApplyOutcome::Created
    };
    info!(kind, name = %name, namespace, ?outcome, "applied child");
    Ok(AppliedChild {
        kind,
        name: name.clone(),
        outcome,
        live: to_value(kind, &name, &applied)?,
        previous_replicas,
    })
}

fn to_value(kind: &'static str, name: &str, object: &DynamicObject) -> Result<Value, Error> {
    serde_json::to_value(object).map_err(|source| Error::Serialize {
        kind,
        name: name.to_owned(),
        source,
    })
}

/// Deletes the pool's children of every prunable kind that were not built this round.
/// Only objects whose controller owner reference points at this pool are deleted, so objects
/// that merely copy the labels are left alone.
pub async fn prune_children(
    client: &Client,
    namespace: &str,
    pool_name: &str,
    pool_uid: &str,
    built: &[Child],
    capabilities: ClusterCapabilities,
    metrics: &Metrics,
) -> Result<Vec<(&'static str, String)>, Error> {
    let keep: BTreeSet<(&str, &str)> = built
        .iter()
        .map(|child| (child.kind(), child.name()))
        .collect();
    let selector = children::children_selector(pool_name);
    let mut deleted = Vec::new();

    for kind in prunable_kinds(capabilities) {
        let resource = api_resource(kind).expect("prunable kinds have an ApiResource");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_error("list", kind, namespace, &selector))?;
        for object in list.items {
            let Some(name) = object.metadata.name.clone() else {
                continue;
            };
            let owned_by_pool = object
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|owners| {
                    owners
                        .iter()
                        .any(|owner| owner.controller == Some(true) && owner.uid == pool_uid)
                });
            if !owned_by_pool || keep.contains(&(kind, name.as_str())) {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                // Already gone, e.g. deleted by the garbage collector in the meantime.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(kube_error("delete", kind, namespace, &name)(source)),
            }
            metrics.writes.with_label_values(&[kind, "delete"]).inc();
            info!(kind, name = %name, namespace, "deleted child that is no longer built");
            deleted.push((kind, name));
        }
    }
    Ok(deleted)
}

/// Whether the live object carries the desired content: the same content hash, and every
/// field of the desired object present with the same value. Fields the API server adds
/// (defaults, status, metadata) are ignored.
pub fn matches_desired(desired: &Value, live: &Value) -> bool {
    let hash = |object: &Value| object["metadata"]["annotations"][HASH_ANNOTATION].clone();
    if hash(desired).is_null() || hash(desired) != hash(live) {
        return false;
    }
    for field in ["labels", "annotations", "ownerReferences"] {
        if !is_subset(&desired["metadata"][field], &live["metadata"][field]) {
            return false;
        }
    }
    let Some(desired_fields) = desired.as_object() else {
        return false;
    };
    desired_fields
        .iter()
        .filter(|(key, _)| key.as_str() != "metadata")
        .all(|(key, value)| is_subset(value, &live[key]))
}

/// Whether every field of `subset` appears in `superset` with the same value. Lists must have
/// the same length, element by element.
// NOTE: a value the API server rewrites into another form (a quantity such as "1000m" stored
// as "1") never matches, so such a child is re-applied at every reconcile. The apply is a
// no-op for the API server and does not trigger a watch event.
pub fn is_subset(subset: &Value, superset: &Value) -> bool {
    match (subset, superset) {
        (Value::Null, _) => true,
        (Value::Object(small), Value::Object(large)) => small.iter().all(|(key, value)| {
            value.is_null() || large.get(key).is_some_and(|other| is_subset(value, other))
        }),
        (Value::Array(small), Value::Array(large)) => {
            small.len() == large.len() && small.iter().zip(large).all(|(a, b)| is_subset(a, b))
        }
        (small, large) => small == large,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_added_fields() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let live = json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "paused": false}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn subset_detects_changed_and_missing_fields() {
        let desired = json!({"spec": {"replicas": 2}});
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 3}})));
        assert!(!is_subset(&desired, &json!({"spec": {}})));
        assert!(!is_subset(&json!({"a": [1, 2]}), &json!({"a": [1]})));
    }

    #[test]
    fn matches_needs_equal_hash() {
        let desired =
            json!({"metadata": {"annotations": {HASH_ANNOTATION: "a"}}, "data": {"k": "v"}});
        let same = json!({"metadata": {"annotations": {HASH_ANNOTATION: "a"}, "uid": "1"}, "data": {"k": "v"}});
        let other_hash =
            json!({"metadata": {"annotations": {HASH_ANNOTATION: "b"}}, "data": {"k": "v"}});
        let drifted =
            json!({"metadata": {"annotations": {HASH_ANNOTATION: "a"}}, "data": {"k": "x"}});
        assert!(matches_desired(&desired, &same));
        assert!(!matches_desired(&desired, &other_hash));
        assert!(!matches_desired(&desired, &drifted));
    }
}
