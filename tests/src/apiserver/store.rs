//! In-memory object store with resource versions, a watch event log, field managers and
//! owner-reference garbage collection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::merge::{self, FieldPath, get_path, leaf_paths, merge_applied, remove_path, set_path};
use super::registry::{Registry, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

/// Watch events kept for replay; a watch from an older resource version gets 410 Gone.
const LOG_CAPACITY: usize = 10_000;

/// An error in the shape of a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(resource)),
        )
    }

    /// The error as a `Status` object.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

fn qualified(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

impl Subresource {
    fn key(self) -> &'static str {
        match self {
            Subresource::Main => "",
            Subresource::Status => "status",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
struct StoredObject {
    object: Value,
    /// Leaf fields owned per (field manager, subresource).
    managers: BTreeMap<(String, String), BTreeSet<FieldPath>>,
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct WatchRecord {
    pub resource_version: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub event_type: &'static str,
    pub object: Value,
    /// The object before a modification, to tell selector matches that ended.
    pub previous: Option<Value>,
}

/// One request the stand-in served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Kubernetes RBAC verb: get, list, watch, create, update, patch, delete.
    pub verb: String,
    pub group: String,
    /// Plural, with `/subresource` for subresources.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// `fieldManager` of a write, when given.
    pub field_manager: Option<String>,
    /// HTTP status of the response.
    pub code: u16,
    /// Value of the `x-standin-client` request header: `test` for the tests' own client,
    /// `None` for the operator.
    pub client: Option<String>,
}

impl RequestRecord {
    /// Whether the request changed (or tried to change) state.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete")
    }
}

/// Filter of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `None` for all namespaces.
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Query {
    fn matches(&self, namespace: &str, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|wanted| wanted == namespace)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

struct State {
    registry: Registry,
    objects: BTreeMap<ObjectKey, StoredObject>,
    resource_version: u64,
    log: VecDeque<Arc<WatchRecord>>,
    /// Events up to this resource version are no longer in the log.
    compacted_through: u64,
    requests: Vec<RequestRecord>,
}

/// The stand-in's state, shared by all requests.
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<WatchRecord>>,
}

impl Default for Store {
    fn default() -> Self {
        let (events, _) = broadcast::channel(LOG_CAPACITY);
        let store = Self {
            state: Mutex::new(State {
                registry: Registry::default(),
                objects: BTreeMap::new(),
                resource_version: 1,
                log: VecDeque::new(),
                compacted_through: 0,
                requests: Vec::new(),
            }),
            events,
        };
        for namespace in ["default", "kube-system"] {
            let body =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            let resource = store
                .resource("", "v1", "namespaces")
                .expect("namespaces are built in");
            store
                .create(&resource, "", body, "stand-in")
                .expect("creating a built-in namespace succeeds");
        }
        store
    }
}

fn now() -> String {
    Timestamp::from_second(Timestamp::now().as_second())
        .map(|timestamp| timestamp.to_string())
        .unwrap_or_default()
}

fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The object without metadata and status: what a generation bump is based on.
fn desired_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(fields) = copy.as_object_mut() {
        fields.remove("metadata");
        fields.remove("status");
    }
    copy
}

/// Leaf paths a manager may own: everything except identity and server-set metadata.
fn ownable(paths: BTreeSet<FieldPath>) -> BTreeSet<FieldPath> {
    paths
        .into_iter()
        .filter(|path| {
            let first = path.first().map(String::as_str);
            match first {
                Some("apiVersion" | "kind") => false,
                Some("metadata") => matches!(
                    path.get(1).map(String::as_str),
                    Some("labels" | "annotations" | "ownerReferences" | "finalizers")
                ),
                _ => true,
            }
        })
        .collect()
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds a served resource type.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.lock().registry.find(group, version, plural).cloned()
    }

    /// Runs `f` on the registry, for discovery documents.
    pub fn with_registry<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.lock().registry)
    }

    pub fn record_request(&self, record: RequestRecord) {
        self.lock().requests.push(record);
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// Current resource version of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Drops the watch log, so that any watch from an older resource version gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.log.clear();
        state.compacted_through = state.resource_version;
    }

    fn key(resource: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: resource.group.clone(),
            plural: resource.plural.clone(),
            namespace: if resource.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    /// Reads one object.
    pub fn get(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&Self::key(resource, namespace, name))
            .map(|stored| stored.object.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Lists objects; returns them with the store's resource version.
    pub fn list(&self, resource: &ResourceType, query: &Query) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = state
            .objects
            .iter()
            .filter(|(key, _)| key.group == resource.group && key.plural == resource.plural)
            .filter(|(key, stored)| query.matches(&key.namespace, &stored.object))
            .map(|(_, stored)| stored.object.clone())
            .collect();
        (items, state.resource_version)
    }

    /// Returns the events a watch from `since` must replay (synthetic ADDED events for
    /// everything when `since` is `None`) and a receiver for later events.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        resource: &ResourceType,
        query: &Query,
        since: Option<u64>,
    ) -> Result<(Vec<Arc<WatchRecord>>, broadcast::Receiver<Arc<WatchRecord>>), ApiError> {
        let state = self.lock();
        let receiver = self.events.subscribe();
        let backlog: Vec<Arc<WatchRecord>> = match since {
            None => state
                .objects
                .iter()
                .filter(|(key, _)| key.group == resource.group && key.plural == resource.plural)
                .map(|(key, stored)| {
                    Arc::new(WatchRecord {
                        resource_version: state.resource_version,
                        group: key.group.clone(),
                        plural: key.plural.clone(),
                        namespace: key.namespace.clone(),
                        event_type: "ADDED",
                        object: stored.object.clone(),
                        previous: None,
                    })
                })
                .collect(),
            Some(since) if since < state.compacted_through => {
                return Err(ApiError::new(
                    410,
                    "Expired",
                    format!(
                        "too old resource version: {since} ({})",
                        state.compacted_through
                    ),
                ));
            }
            Some(since) => state
                .log
                .iter()
                .filter(|record| record.resource_version > since)
                .cloned()
                .collect(),
        };
        let backlog = backlog
            .into_iter()
            .filter(|record| watch_event(resource, query, record).is_some())
            .collect();
        Ok((backlog, receiver))
    }

    fn next_version(state: &mut State) -> u64 {
        state.resource_version += 1;
        state.resource_version
    }

    fn emit(
        &self,
        state: &mut State,
        key: &ObjectKey,
        event_type: &'static str,
        object: Value,
        previous: Option<Value>,
    ) {
        let record = Arc::new(WatchRecord {
            resource_version: state.resource_version,
            group: key.group.clone(),
            plural: key.plural.clone(),
            namespace: key.namespace.clone(),
            event_type,
            object,
            previous,
        });
        state.log.push_back(record.clone());
        while state.log.len() > LOG_CAPACITY {
            if let Some(dropped) = state.log.pop_front() {
                state.compacted_through = dropped.resource_version;
            }
        }
        // A send without receivers is not an error: no watch is open yet.
        let _ = self.events.send(record);
    }

    /// Creates an object; `manager` owns every field of the body.
    pub fn create(
        &self,
        resource: &ResourceType,
        namespace: &str,
        body: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        self.create_locked(&mut state, resource, namespace, body, manager, "")
    }

    fn create_locked(
        &self,
        state: &mut State,
        resource: &ResourceType,
        namespace: &str,
        mut body: Value,
        manager: &str,
        subresource_key: &str,
    ) -> Result<Value, ApiError> {
        check_type(resource, &body)?;
        if resource.namespaced && namespace.is_empty() {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "the namespace of the object is missing",
            ));
        }
        let metadata = body
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| ApiError::new(400, "BadRequest", "metadata is missing"))?;
        let name = match metadata.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) => {
                    let suffix: String = (0..5)
                        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
                        .collect();
                    format!("{prefix}{suffix}")
                }
                None => {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "{} is invalid: metadata.name: Required value",
                            resource.kind
                        ),
                    ));
                }
            },
        };
        if let Some(given) = metadata.get("namespace").and_then(Value::as_str)
            && resource.namespaced
            && given != namespace
        {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "the namespace of the object ({given}) does not match the namespace of the request ({namespace})"
                ),
            ));
        }
        let key = Self::key(resource, namespace, &name);
        if state.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(resource)),
            ));
        }

        let version = Self::next_version(state);
        metadata.insert("name".into(), json!(name));
        if resource.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), json!(new_uid()));
        metadata.insert("creationTimestamp".into(), json!(now()));
        metadata.insert("resourceVersion".into(), json!(version.to_string()));
        if resource.generation {
            metadata.insert("generation".into(), json!(1));
        }
        if resource.status && subresource_key.is_empty() && resource.group != "apiextensions.k8s.io"
        {
            if let Some(fields) = body.as_object_mut() {
                fields.remove("status");
            }
        }
        if resource.group == "apiextensions.k8s.io" {
            mark_crd_established(&mut body);
            state.registry.register_crd(&body);
        }

        let mut managers = BTreeMap::new();
        managers.insert(
            (manager.to_owned(), subresource_key.to_owned()),
            ownable(leaf_paths(&body)),
        );
        state.objects.insert(
            key.clone(),
            StoredObject {
                object: body.clone(),
                managers,
            },
        );
        self.emit(state, &key, "ADDED", body.clone(), None);
        self.collect_garbage(state);
        Ok(body)
    }

    /// Stores `next` as the new state of an existing object: keeps server-set metadata,
    /// bumps generation and resource version when something changed, and finishes deletion
    /// when the last finalizer is gone. Returns the stored object.
    fn commit(
        &self,
        state: &mut State,
        resource: &ResourceType,
        key: &ObjectKey,
        mut next: Value,
    ) -> Value {
        let stored = state
            .objects
            .get(key)
            .expect("commit is called for existing objects");
        let current = stored.object.clone();
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
            "name",
            "namespace",
        ] {
            match current["metadata"].get(field) {
                Some(value) => {
                    set_path(&mut next, &["metadata".into(), field.into()], value.clone())
                }
                None => remove_path(&mut next, &["metadata".into(), field.into()]),
            }
        }
        if next == current {
            return current;
        }
        if resource.generation && desired_part(&next) != desired_part(&current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            set_path(
                &mut next,
                &["metadata".into(), "generation".into()],
                json!(generation),
            );
        }
        let version = Self::next_version(state);
        set_path(
            &mut next,
            &["metadata".into(), "resourceVersion".into()],
            json!(version.to_string()),
        );

        let finalizers_empty = next["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if next["metadata"].get("deletionTimestamp").is_some() && finalizers_empty {
            state.objects.remove(key);
            self.emit(state, key, "DELETED", next.clone(), None);
            self.after_delete(state, key, &next);
            return next;
        }

        if resource.group == "apiextensions.k8s.io" {
            state.registry.register_crd(&next);
        }
        if let Some(stored) = state.objects.get_mut(key) {
            stored.object = next.clone();
        }
        self.emit(state, key, "MODIFIED", next.clone(), Some(current));
        self.collect_garbage(state);
        next
    }

    /// Records that `manager` set every leaf that differs between `before` and `after`.
    fn take_ownership(
        state: &mut State,
        key: &ObjectKey,
        manager: &str,
        subresource: Subresource,
        before: &Value,
        after: &Value,
    ) {
        let changed: BTreeSet<FieldPath> = ownable(leaf_paths(after))
            .into_iter()
            .filter(|path| get_path(before, path) != get_path(after, path))
            .collect();
        let Some(stored) = state.objects.get_mut(key) else {
            return;
        };
        for (owner, fields) in stored.managers.iter_mut() {
            if owner.0 != manager {
                fields.retain(|path| !changed.contains(path));
            }
        }
        stored
            .managers
            .entry((manager.to_owned(), subresource.key().to_owned()))
            .or_default()
            .extend(changed);
    }

    /// Merges the part of `body` a subresource write may change into `current`.
    fn scoped(
        resource: &ResourceType,
        subresource: Subresource,
        current: &Value,
        body: &Value,
    ) -> Value {
        match subresource {
            Subresource::Main if resource.status => {
                let mut next = body.clone();
                match current.get("status") {
                    Some(status) => set_path(&mut next, &["status".into()], status.clone()),
                    None => remove_path(&mut next, &["status".into()]),
                }
                next
            }
            Subresource::Main => body.clone(),
            Subresource::Status => {
                let mut next = current.clone();
                match body.get("status") {
                    Some(status) => set_path(&mut next, &["status".into()], status.clone()),
                    None => remove_path(&mut next, &["status".into()]),
                }
                next
            }
        }
    }

    /// Replaces an object (PUT). A `metadata.resourceVersion` in the body must match.
    pub fn update(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        subresource: Subresource,
        manager: &str,
    ) -> Result<Value, ApiError> {
        check_type(resource, &body)?;
        let mut state = self.lock();
        let key = Self::key(resource, namespace, name);
        let current = state
            .objects
            .get(&key)
            .map(|stored| stored.object.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if let Some(expected) = body["metadata"]["resourceVersion"].as_str()
            && !expected.is_empty()
            && Some(expected) != current["metadata"]["resourceVersion"].as_str()
        {
            return Err(conflict(resource, name));
        }
        let next = Self::scoped(resource, subresource, &current, &body);
        Self::take_ownership(&mut state, &key, manager, subresource, &current, &next);
        Ok(self.commit(&mut state, resource, &key, next))
    }

    /// Applies a JSON merge patch (also used for strategic merge patches, which equal merge
    /// patches for the fields the operator and kubectl send here).
    pub fn merge_patch(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        patch: &Value,
        subresource: Subresource,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = Self::key(resource, namespace, name);
        let current = state
            .objects
            .get(&key)
            .map(|stored| stored.object.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if let Some(expected) = patch["metadata"]["resourceVersion"].as_str()
            && Some(expected) != current["metadata"]["resourceVersion"].as_str()
        {
            return Err(conflict(resource, name));
        }
        let mut patched = current.clone();
        merge::merge_patch(&mut patched, patch);
        let next = Self::scoped(resource, subresource, &current, &patched);
        Self::take_ownership(&mut state, &key, manager, subresource, &current, &next);
        Ok(self.commit(&mut state, resource, &key, next))
    }

    /// Server-side apply of `config` by `manager`. Returns the object and whether it was
    /// created.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        mut config: Value,
        subresource: Subresource,
        manager: &str,
        force: bool,
    ) -> Result<(Value, bool), ApiError> {
        check_type(resource, &config)?;
        match config["metadata"]["name"].as_str() {
            Some(given) if given != name => {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    format!(
                        "the name of the object ({given}) does not match the name on the URL ({name})"
                    ),
                ));
            }
            Some(_) => {}
            None => set_path(
                &mut config,
                &["metadata".into(), "name".into()],
                json!(name),
            ),
        }
        let mut state = self.lock();
        let key = Self::key(resource, namespace, name);
        let Some(stored) = state.objects.get(&key).cloned() else {
            if subresource == Subresource::Status {
                return Err(ApiError::not_found(resource, name));
            }
            let created =
                self.create_locked(&mut state, resource, namespace, config, manager, "")?;
            return Ok((created, true));
        };

        let scope_config = match subresource {
            Subresource::Main if resource.status => {
                let mut copy = config.clone();
                remove_path(&mut copy, &["status".into()]);
                copy
            }
            Subresource::Main => config.clone(),
            Subresource::Status => {
                json!({"status": config.get("status").cloned().unwrap_or(Value::Null)})
            }
        };
        let applied = ownable(leaf_paths(&scope_config));
        let own_key = (manager.to_owned(), subresource.key().to_owned());
        let current = stored.object.clone();

        let mut conflicts = Vec::new();
        for path in &applied {
            for (owner, fields) in &stored.managers {
                if owner.0 != manager
                    && fields.contains(path)
                    && get_path(&current, path) != get_path(&scope_config, path)
                {
                    conflicts.push(format!(
                        "conflict with \"{}\": .{}",
                        owner.0,
                        path.join(".")
                    ));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    conflicts.join(", ")
                ),
            ));
        }

        let previous = stored.managers.get(&own_key).cloned().unwrap_or_default();
        let mut next = current.clone();
        for path in previous.difference(&applied) {
            let owned_by_other = stored
                .managers
                .iter()
                .any(|(owner, fields)| owner != &own_key && fields.contains(path));
            if !owned_by_other {
                remove_path(&mut next, path);
            }
        }
        merge_applied(&mut next, &scope_config);

        if let Some(stored) = state.objects.get_mut(&key) {
            for (owner, fields) in stored.managers.iter_mut() {
                if owner.0 != manager {
                    fields.retain(|path| !applied.contains(path));
                }
            }
            stored.managers.insert(own_key, applied);
        }
        Ok((self.commit(&mut state, resource, &key, next), false))
    }

    /// Deletes an object. With finalizers it only gets a `deletionTimestamp`.
    pub fn delete(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = Self::key(resource, namespace, name);
        let current = state
            .objects
            .get(&key)
            .map(|stored| stored.object.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|list| !list.is_empty());
        if has_finalizers {
            if current["metadata"].get("deletionTimestamp").is_some() {
                return Ok(current);
            }
            let mut next = current.clone();
            set_path(
                &mut next,
                &["metadata".into(), "deletionTimestamp".into()],
                json!(now()),
            );
            let version = Self::next_version(&mut state);
            set_path(
                &mut next,
                &["metadata".into(), "resourceVersion".into()],
                json!(version.to_string()),
            );
            if let Some(stored) = state.objects.get_mut(&key) {
                stored.object = next.clone();
            }
            self.emit(&mut state, &key, "MODIFIED", next.clone(), Some(current));
            return Ok(next);
        }
        Ok(self.remove_locked(&mut state, &key, current))
    }

    fn remove_locked(&self, state: &mut State, key: &ObjectKey, mut object: Value) -> Value {
        state.objects.remove(key);
        // Like the real API server, the delete event carries a new resource version.
        let version = Self::next_version(state);
        set_path(
            &mut object,
            &["metadata".into(), "resourceVersion".into()],
            json!(version.to_string()),
        );
        self.emit(state, key, "DELETED", object.clone(), None);
        self.after_delete(state, key, &object);
        object
    }

    /// Unregisters a deleted CRD with its instances, then collects garbage.
    fn after_delete(&self, state: &mut State, key: &ObjectKey, object: &Value) {
        if key.group == "apiextensions.k8s.io" {
            let group = object["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let plural = object["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            state.registry.unregister_crd(&group, &plural);
            let instances: Vec<(ObjectKey, Value)> = state
                .objects
                .iter()
                .filter(|(k, _)| k.group == group && k.plural == plural)
                .map(|(k, stored)| (k.clone(), stored.object.clone()))
                .collect();
            for (instance_key, instance) in instances {
                self.remove_locked(state, &instance_key, instance);
            }
        }
        self.collect_garbage(state);
    }

    /// Deletes every object whose owners are all gone, as the Kubernetes garbage collector
    /// does with background propagation. It also catches an object written with an owner
    /// that was deleted a moment before, which a reconcile racing the deletion can leave.
    fn collect_garbage(&self, state: &mut State) {
        loop {
            let live_uids: BTreeSet<String> = state
                .objects
                .values()
                .filter_map(|stored| stored.object["metadata"]["uid"].as_str().map(str::to_owned))
                .collect();
            let orphan = state.objects.iter().find(|(_, stored)| {
                let owners = stored.object["metadata"]["ownerReferences"].as_array();
                owners.is_some_and(|owners| {
                    !owners.is_empty()
                        && owners.iter().all(|owner| {
                            owner["uid"]
                                .as_str()
                                .is_none_or(|uid| !live_uids.contains(uid))
                        })
                })
            });
            let Some((orphan_key, stored)) = orphan else {
                break;
            };
            let (orphan_key, orphan_object) = (orphan_key.clone(), stored.object.clone());
            self.remove_locked(state, &orphan_key, orphan_object);
        }
    }

    /// Reads the `autoscaling/v1` Scale of an object.
    pub fn get_scale(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let object = self.get(resource, namespace, name)?;
        scale_of(resource, &object)
    }

    /// Writes `spec.replicas` through the scale subresource.
    pub fn set_scale(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        replicas: i64,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let paths = resource.scale.clone().ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("{} has no scale subresource", qualified(resource)),
            )
        })?;
        let mut state = self.lock();
        let key = Self::key(resource, namespace, name);
        let current = state
            .objects
            .get(&key)
            .map(|stored| stored.object.clone())
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let mut next = current.clone();
        let path: Vec<String> = paths.spec_replicas.split('.').map(str::to_owned).collect();
        set_path(&mut next, &path, json!(replicas));
        Self::take_ownership(
            &mut state,
            &key,
            manager,
            Subresource::Main,
            &current,
            &next,
        );
        let stored = self.commit(&mut state, resource, &key, next);
        scale_of(resource, &stored)
    }
}

fn conflict(resource: &ResourceType, name: &str) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(resource)
        ),
    )
}

fn check_type(resource: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    let kind = body["kind"].as_str().unwrap_or_default();
    if api_version != resource.api_version() || kind != resource.kind {
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!(
                "the body's apiVersion/kind {api_version}/{kind} does not match {}/{}",
                resource.api_version(),
                resource.kind
            ),
        ));
    }
    Ok(())
}

fn mark_crd_established(crd: &mut Value) {
    let names = crd["spec"]["names"].clone();
    let time = now();
    set_path(
        crd,
        &["status".into()],
        json!({
            "acceptedNames": names,
            "storedVersions": crd["spec"]["versions"].as_array().into_iter().flatten()
                .filter(|v| v["storage"] == json!(true)).map(|v| v["name"].clone()).collect::<Vec<_>>(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": time},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": time},
            ],
        }),
    );
}

fn scale_of(resource: &ResourceType, object: &Value) -> Result<Value, ApiError> {
    let paths = resource.scale.as_ref().ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            format!("{} has no scale subresource", qualified(resource)),
        )
    })?;
    let at = |path: &str| {
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        get_path(object, &segments).cloned()
    };
    let selector = match &paths.label_selector {
        Some(path) => at(path).unwrap_or(json!("")),
        None => {
            let labels = object["spec"]["selector"]["matchLabels"]
                .as_object()
                .cloned()
                .unwrap_or_else(Map::new);
            json!(
                labels
                    .iter()
                    .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
    };
    let metadata = &object["metadata"];
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": at(&paths.spec_replicas).unwrap_or(json!(0))},
        "status": {"replicas": at(&paths.status_replicas).unwrap_or(json!(0)), "selector": selector},
    }))
}

/// The event a watch with `query` sends for `record`, if any: its own type while the new
/// object matches, DELETED when a modification ends a match.
pub fn watch_event(resource: &ResourceType, query: &Query, record: &WatchRecord) -> Option<Value> {
    if record.group != resource.group || record.plural != resource.plural {
        return None;
    }
    if query.matches(&record.namespace, &record.object) {
        return Some(json!({"type": record.event_type, "object": record.object}));
    }
    let previously_matched = record
        .previous
        .as_ref()
        .is_some_and(|previous| query.matches(&record.namespace, previous));
    previously_matched.then(|| json!({"type": "DELETED", "object": record.object}))
}
