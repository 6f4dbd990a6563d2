//! The Rust type of each object kind the chart, the kustomize base and the examples contain.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::assert_round_trip;

/// Asserts that `object` parses into the type of its apiVersion and kind with no unknown,
/// dropped or changed field. Panics for a kind with no known type.
pub fn assert_typed(object: &Value, source: &str) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("v1", "ConfigMap") => assert_round_trip::<ConfigMap>(object, source),
        ("v1", "Namespace") => assert_round_trip::<Namespace>(object, source),
        ("v1", "Pod") => assert_round_trip::<Pod>(object, source),
        ("v1", "Service") => assert_round_trip::<Service>(object, source),
        ("v1", "ServiceAccount") => assert_round_trip::<ServiceAccount>(object, source),
        ("apps/v1", "Deployment") => assert_round_trip::<Deployment>(object, source),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            assert_round_trip::<ClusterRole>(object, source)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            assert_round_trip::<ClusterRoleBinding>(object, source)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => assert_round_trip::<Role>(object, source),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            assert_round_trip::<RoleBinding>(object, source)
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            assert_round_trip::<NetworkPolicy>(object, source)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            assert_round_trip::<CustomResourceDefinition>(object, source)
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            assert_round_trip::<ServiceMonitor>(object, source)
        }
        ("cascor.juniper.dev/v1alpha1", "CascorWorkerPool") => {
            assert_round_trip::<cascor_operator::CascorWorkerPool>(object, source)
        }
        _ => panic!("{source}: no Rust type is known for apiVersion {api_version:?} kind {kind:?}"),
    }
}

/// The fields of the Prometheus Operator's `monitoring.coreos.com/v1` ServiceMonitor that the
/// chart uses. Unknown fields are rejected, so a field missing here fails the test and must
/// be added from the Prometheus Operator API reference.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitor {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ServiceMonitorSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_names: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
}
