//! The resource types the stand-in serves: built-in kinds plus those of installed CRDs, and
//! the discovery documents describing them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Where a scale subresource reads and writes its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// Dotted path, e.g. `spec.replicas`.
    pub spec_replicas: String,
    pub status_replicas: String,
    /// Path of a selector string (CRDs) or `None` to use `spec.selector.matchLabels`.
    pub label_selector: Option<String>,
}

/// One served resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Whether the API server tracks `metadata.generation` for it.
    pub generation: bool,
    /// `additionalPrinterColumns` of a CRD version, for `kubectl get` tables.
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: Vec::new(),
            status: false,
            scale: None,
            generation: false,
            printer_columns: Vec::new(),
        }
    }

    fn with_status(mut self) -> Self {
        self.status = true;
        self.generation = true;
        self
    }

    fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|name| (*name).to_owned()).collect();
        self
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let verbs = json!([
            "create", "delete", "get", "list", "patch", "update", "watch"
        ]);
        let mut entries = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        })];
        if self.status {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scale.is_some() {
            entries.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

/// Every resource type currently served.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut deployments =
            ResourceType::builtin("apps", "v1", "Deployment", "deployments", true)
                .with_status()
                .with_short_names(&["deploy"]);
        deployments.scale = Some(ScalePaths {
            spec_replicas: "spec.replicas".into(),
            status_replicas: "status.replicas".into(),
            label_selector: None,
        });
        let mut crds = ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .with_status()
        .with_short_names(&["crd", "crds"]);
        crds.generation = true;
        Self {
            types: vec![
                ResourceType::builtin("", "v1", "Namespace", "namespaces", false)
                    .with_short_names(&["ns"]),
                ResourceType::builtin("", "v1", "ServiceAccount", "serviceaccounts", true)
                    .with_short_names(&["sa"]),
                ResourceType::builtin("", "v1", "Secret", "secrets", true),
                ResourceType::builtin("", "v1", "ConfigMap", "configmaps", true)
                    .with_short_names(&["cm"]),
                ResourceType::builtin("", "v1", "Service", "services", true)
                    .with_short_names(&["svc"]),
                ResourceType::builtin("", "v1", "Pod", "pods", true)
                    .with_status()
                    .with_short_names(&["po"]),
                ResourceType::builtin("", "v1", "Event", "events", true).with_short_names(&["ev"]),
                deployments,
                ResourceType::builtin(
                    "policy",
                    "v1",
                    "PodDisruptionBudget",
                    "poddisruptionbudgets",
                    true,
                )
                .with_status()
                .with_short_names(&["pdb"]),
                ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
                ResourceType::builtin("events.k8s.io", "v1", "Event", "events", true)
                    .with_short_names(&["ev"]),
                crds,
            ],
        }
    }
}

impl Registry {
    /// Finds a type by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Registers the served versions of a CustomResourceDefinition object.
    pub fn register_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_owned();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_owned();
        self.unregister_crd(&group, &plural);
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] == json!(false) {
                continue;
            }
            let subresources = &version["subresources"];
            let scale = subresources.get("scale").map(|scale| ScalePaths {
                spec_replicas: trim_path(&scale["specReplicasPath"]),
                status_replicas: trim_path(&scale["statusReplicasPath"]),
                label_selector: scale["labelSelectorPath"]
                    .as_str()
                    .map(|p| p.trim_start_matches('.').to_owned()),
            });
            self.types.push(ResourceType {
                group: group.clone(),
                version: version["name"].as_str().unwrap_or_default().to_owned(),
                kind: names["kind"].as_str().unwrap_or_default().to_owned(),
                plural: plural.clone(),
                singular: names["singular"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| names["kind"].as_str().unwrap_or_default().to_lowercase()),
                namespaced: spec["scope"] == json!("Namespaced"),
                short_names: names["shortNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect(),
                status: subresources.get("status").is_some(),
                scale,
                generation: true,
                printer_columns: version["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }

    /// Removes the types of a deleted CRD.
    pub fn unregister_crd(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
    }

    fn group_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for resource in self.types.iter().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(resource.group.clone()).or_default();
            if !versions.contains(&resource.version) {
                versions.push(resource.version.clone());
            }
        }
        groups
    }

    fn group_document(name: &str, versions: &[String]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|version| json!({"groupVersion": format!("{name}/{version}"), "version": version}))
            .collect();
        json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": name,
            "versions": versions,
            "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .group_versions()
            .iter()
            .map(|(name, versions)| {
                let mut group = Self::group_document(name, versions);
                if let Some(object) = group.as_object_mut() {
                    object.remove("kind");
                    object.remove("apiVersion");
                }
                group
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn group(&self, name: &str) -> Option<Value> {
        self.group_versions()
            .get(name)
            .map(|versions| Self::group_document(name, versions))
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let matching: Vec<&ResourceType> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if matching.is_empty() {
            return None;
        }
        let group_version = matching[0].api_version();
        let resources: Vec<Value> = matching
            .iter()
            .flat_map(|t| t.discovery_entries())
            .collect();
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }
}

fn trim_path(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('.')
        .to_owned()
}
