//! HTTP surface of the stand-in: discovery, CRUD, watch, server-side apply, subresources.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query as QueryString, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ApiError, Query, RequestRecord, Store, Subresource, watch_event};

/// Request header that marks the tests' own requests, so that they can be distinguished
/// from the operator's.
pub const CLIENT_HEADER: &str = "x-standin-client";

/// Maximum duration of a watch the stand-in serves when the client sets no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub shutdown: CancellationToken,
    pub address: String,
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    )
}

/// A parsed resource path.
struct ResourcePath {
    group: String,
    version: String,
    /// `None` for cluster-scoped resources and all-namespace collections.
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` below the group version.
fn parse_resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, tail @ ..] => (Some((*namespace).to_owned()), {
            let mut parts = vec![*plural];
            parts.extend_from_slice(tail);
            parts
        }),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, subresource] => (*plural, Some(*name), Some(*subresource)),
        _ => return None,
    };
    Some(ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        plural: plural.to_owned(),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}

/// Serves every request.
pub async fn handle(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    QueryString(params): QueryString<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri
        .path()
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let not_found = || {
        error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ))
    };

    match segments.as_slice() {
        ["version"] => json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-cascor-standin", "platform": "linux/amd64"}),
        ),
        ["api"] => json_response(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.address}],
            }),
        ),
        ["apis"] => json_response(
            StatusCode::OK,
            &app.store.with_registry(|registry| registry.group_list()),
        ),
        ["api", "v1"] => match app
            .store
            .with_registry(|registry| registry.resource_list("", "v1"))
        {
            Some(list) => json_response(StatusCode::OK, &list),
            None => not_found(),
        },
        ["apis", group] => match app.store.with_registry(|registry| registry.group(group)) {
            Some(document) => json_response(StatusCode::OK, &document),
            None => not_found(),
        },
        ["apis", group, version] => match app
            .store
            .with_registry(|registry| registry.resource_list(group, version))
        {
            Some(list) => json_response(StatusCode::OK, &list),
            None => not_found(),
        },
        ["api", "v1", rest @ ..] => match parse_resource_path("", "v1", rest) {
            Some(path) => handle_resource(&app, method, path, &headers, &params, &body).await,
            None => not_found(),
        },
        ["apis", group, version, rest @ ..] => match parse_resource_path(group, version, rest) {
            Some(path) => handle_resource(&app, method, path, &headers, &params, &body).await,
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn verb(method: &Method, path: &ResourcePath, params: &HashMap<String, String>) -> &'static str {
    let watching = params
        .get("watch")
        .is_some_and(|value| value == "true" || value == "1");
    match *method {
        Method::GET if watching => "watch",
        Method::GET if path.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let parsed = if content_type.contains("yaml") {
        serde_yaml::from_slice::<Value>(body).map_err(|error| error.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|error| error.to_string())
    };
    parsed.map_err(|error| {
        ApiError::new(
            400,
            "BadRequest",
            format!("the request body is invalid: {error}"),
        )
    })
}

async fn handle_resource(
    app: &AppState,
    method: Method,
    path: ResourcePath,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Response {
    let verb = verb(&method, &path, params);
    let manager = params.get("fieldManager").cloned();
    let client = headers
        .get(CLIENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let record = |code: u16| RequestRecord {
        verb: verb.to_owned(),
        group: path.group.clone(),
        resource: match &path.subresource {
            Some(subresource) => format!("{}/{subresource}", path.plural),
            None => path.plural.clone(),
        },
        namespace: path.namespace.clone().unwrap_or_default(),
        name: path.name.clone().unwrap_or_default(),
        field_manager: manager.clone(),
        code,
        client: client.clone(),
    };

    let Some(resource) = app.store.resource(&path.group, &path.version, &path.plural) else {
        app.store.record_request(record(404));
        return error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    if verb == "watch" {
        app.store.record_request(record(200));
        return watch(app, &resource, &path, params);
    }

    let mut result = dispatch(
        app,
        &resource,
        &method,
        &path,
        headers,
        params,
        body,
        manager.as_deref(),
    );
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table"));
    if wants_table && method == Method::GET {
        result = result.map(|(code, value)| (code, table(&resource, &value)));
    }
    let response = match &result {
        Ok((code, value)) => json_response(*code, value),
        Err(error) => error_response(error),
    };
    app.store.record_request(record(response.status().as_u16()));
    response
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    app: &AppState,
    resource: &ResourceType,
    method: &Method,
    path: &ResourcePath,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    body: &[u8],
    manager: Option<&str>,
) -> Result<(StatusCode, Value), ApiError> {
    let store = &app.store;
    let namespace = path.namespace.clone().unwrap_or_default();
    if resource.namespaced && path.name.is_some() && path.namespace.is_none() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let subresource = match path.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if resource.status => Subresource::Status,
        Some("scale") if resource.scale.is_some() => Subresource::Main,
        Some(other) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("the subresource {other:?} does not exist"),
            ));
        }
    };
    let is_scale = path.subresource.as_deref() == Some("scale");
    let update_manager = manager.unwrap_or("unknown");

    match (method, path.name.as_deref()) {
        (&Method::GET, None) => {
            let query = Query {
                namespace: path.namespace.clone(),
                labels: LabelSelector::parse(
                    params
                        .get("labelSelector")
                        .map(String::as_str)
                        .unwrap_or_default(),
                )
                .map_err(|error| ApiError::new(400, "BadRequest", error))?,
                fields: FieldSelector::parse(
                    params
                        .get("fieldSelector")
                        .map(String::as_str)
                        .unwrap_or_default(),
                )
                .map_err(|error| ApiError::new(400, "BadRequest", error))?,
            };
            let (items, version) = store.list(resource, &query);
            Ok((
                StatusCode::OK,
                json!({
                    "kind": format!("{}List", resource.kind),
                    "apiVersion": resource.api_version(),
                    "metadata": {"resourceVersion": version.to_string()},
                    "items": items,
                }),
            ))
        }
        (&Method::GET, Some(name)) if is_scale => {
            Ok((StatusCode::OK, store.get_scale(resource, &namespace, name)?))
        }
        (&Method::GET, Some(name)) => Ok((StatusCode::OK, store.get(resource, &namespace, name)?)),
        (&Method::POST, None) => {
            let body = parse_body(headers, body)?;
            Ok((
                StatusCode::CREATED,
                store.create(resource, &namespace, body, update_manager)?,
            ))
        }
        (&Method::PUT, Some(name)) if is_scale => {
            let body = parse_body(headers, body)?;
            let replicas = body["spec"]["replicas"]
                .as_i64()
                .ok_or_else(|| ApiError::new(422, "Invalid", "Scale spec.replicas is required"))?;
            Ok((
                StatusCode::OK,
                store.set_scale(resource, &namespace, name, replicas, update_manager)?,
            ))
        }
        (&Method::PUT, Some(name)) => {
            let body = parse_body(headers, body)?;
            Ok((
                StatusCode::OK,
                store.update(
                    resource,
                    &namespace,
                    name,
                    body,
                    subresource,
                    update_manager,
                )?,
            ))
        }
        (&Method::PATCH, Some(name)) => patch(
            store,
            resource,
            &namespace,
            name,
            subresource,
            is_scale,
            headers,
            params,
            body,
        ),
        (&Method::DELETE, Some(name)) => {
            let deleted = store.delete(resource, &namespace, name)?;
            Ok((StatusCode::OK, deleted))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on this path"),
        )),
    }
}

/// Formats the age of an RFC 3339 timestamp the way kubectl prints it, e.g. `42s`, `5m`.
fn age(timestamp: &Value) -> String {
    let Some(created) = timestamp
        .as_str()
        .and_then(|text| text.parse::<k8s_openapi::jiff::Timestamp>().ok())
    else {
        return "<unknown>".to_owned();
    };
    let seconds = (k8s_openapi::jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    match seconds {
        0..120 => format!("{seconds}s"),
        120..7200 => format!("{}m", seconds / 60),
        7200..172_800 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Renders a list or object as a `meta.k8s.io/v1` Table, as `kubectl get` requests it, with
/// the CRD's printer columns after the name.
fn table(resource: &ResourceType, value: &Value) -> Value {
    let items: Vec<Value> = match value["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![value.clone()],
    };
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object"}),
    ];
    columns.extend(resource.printer_columns.iter().map(|column| {
        json!({"name": column["name"], "type": column["type"], "format": "", "description": column["description"]})
    }));
    if resource.printer_columns.is_empty() {
        columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "Time since creation"}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![item["metadata"]["name"].clone()];
            let paths: Vec<(String, String)> = if resource.printer_columns.is_empty() {
                vec![(".metadata.creationTimestamp".to_owned(), "date".to_owned())]
            } else {
                resource
                    .printer_columns
                    .iter()
                    .map(|column| {
                        (
                            column["jsonPath"].as_str().unwrap_or_default().to_owned(),
                            column["type"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            };
            for (path, type_) in paths {
                let segments: Vec<String> = path.trim_start_matches('.').split('.').map(str::to_owned).collect();
                let cell = super::merge::get_path(item, &segments).cloned().unwrap_or(Value::Null);
                cells.push(if type_ == "date" { json!(age(&cell)) } else { cell });
            }
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": value["metadata"]["resourceVersion"]},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[allow(clippy::too_many_arguments)]
fn patch(
    store: &Store,
    resource: &ResourceType,
    namespace: &str,
    name: &str,
    subresource: Subresource,
    is_scale: bool,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let patch_body = parse_body(headers, body)?;
    let manager = params.get("fieldManager").map(String::as_str);

    if content_type.starts_with("application/apply-patch") {
        let manager = manager.ok_or_else(|| {
            ApiError::new(
                400,
                "BadRequest",
                "fieldManager is required for apply requests",
            )
        })?;
        if is_scale {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "apply on /scale is not supported by this stand-in",
            ));
        }
        let force = params.get("force").is_some_and(|value| value == "true");
        let (object, created) = store.apply(
            resource,
            namespace,
            name,
            patch_body,
            subresource,
            manager,
            force,
        )?;
        let code = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return Ok((code, object));
    }
    if content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
    {
        let manager = manager.unwrap_or("unknown");
        if is_scale {
            let current = store.get_scale(resource, namespace, name)?;
            let mut scale = current.clone();
            super::merge::merge_patch(&mut scale, &patch_body);
            let replicas = scale["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::new(422, "Invalid", "Scale spec.replicas must be an integer")
            })?;
            return Ok((
                StatusCode::OK,
                store.set_scale(resource, namespace, name, replicas, manager)?,
            ));
        }
        return Ok((
            StatusCode::OK,
            store.merge_patch(resource, namespace, name, &patch_body, subresource, manager)?,
        ));
    }
    Err(ApiError::new(
        415,
        "UnsupportedMediaType",
        format!("the patch content type {content_type:?} is not supported by this stand-in"),
    ))
}

/// Streams watch events as newline-delimited JSON until the timeout, a lagging receiver or
/// the stand-in's shutdown.
fn watch(
    app: &AppState,
    resource: &ResourceType,
    path: &ResourcePath,
    params: &HashMap<String, String>,
) -> Response {
    let labels = LabelSelector::parse(
        params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    );
    let fields = FieldSelector::parse(
        params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    );
    let (labels, fields) = match (labels, fields) {
        (Ok(labels), Ok(fields)) => (labels, fields),
        (Err(error), _) | (_, Err(error)) => {
            return error_response(&ApiError::new(400, "BadRequest", error));
        }
    };
    let query = Query {
        namespace: path.namespace.clone(),
        labels,
        fields,
    };
    let since = params
        .get("resourceVersion")
        .filter(|value| !value.is_empty() && value.as_str() != "0")
        .and_then(|value| value.parse::<u64>().ok());
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|value| value.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);

    let (backlog, receiver) = match app.store.watch(resource, &query, since) {
        Ok(parts) => parts,
        Err(error) => {
            // The real API server reports an expired resource version as an ERROR event
            // inside a successful watch response.
            let line = format!(
                "{}\n",
                json!({"type": "ERROR", "object": error.to_status()})
            );
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                line,
            )
                .into_response();
        }
    };

    let resource = resource.clone();
    let backlog_lines: Vec<Result<Bytes, std::io::Error>> = backlog
        .iter()
        .filter_map(|record| watch_event(&resource, &query, record))
        .map(|event| Ok(Bytes::from(format!("{event}\n"))))
        .collect();
    let live_query = query.clone();
    let live = tokio_stream_from(receiver).filter_map(move |record| {
        let event = watch_event(&resource, &live_query, &record);
        async move { event.map(|event| Ok(Bytes::from(format!("{event}\n")))) }
    });
    let shutdown = app.shutdown.clone();
    let deadline = tokio::time::sleep(timeout);
    let stream = futures::stream::iter(backlog_lines)
        .chain(live)
        .take_until(async move {
            tokio::select! {
                () = deadline => {}
                () = shutdown.cancelled() => {}
            }
        });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Turns a broadcast receiver into a stream that ends when the receiver lags or closes, so
/// that a client which fell behind re-lists as it would after a dropped watch.
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<Arc<super::store::WatchRecord>>,
) -> impl futures::Stream<Item = Arc<super::store::WatchRecord>> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(record) => Some((record, receiver)),
            Err(_) => None,
        }
    })
}
