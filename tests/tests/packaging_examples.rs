//! The example pools in deploy/examples: each parses into the operator's CascorWorkerPool
//! type without losing a field, and passes the CRD's schema and CEL rules as the API server
//! would apply them on create.

mod packaging_support;

use std::path::PathBuf;

use packaging_support::schema::{admit, crd_version_schema};
use packaging_support::types::assert_typed;
use packaging_support::{crd_path, read_documents, workspace_root, yaml_files};
use serde_json::{Value, json};

fn example_files() -> Vec<PathBuf> {
    yaml_files(&workspace_root().join("deploy/examples"))
}

fn pool_schema() -> Value {
    let crd = read_documents(&crd_path()).remove(0);
    crd_version_schema(&crd, "v1alpha1")
}

/// All example pools, each with the file it came from.
fn example_pools() -> Vec<(String, Value)> {
    example_files()
        .into_iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            read_documents(&path)
                .into_iter()
                .map(move |pool| (name.clone(), pool))
        })
        .collect()
}

fn example(file: &str) -> Value {
    read_documents(&workspace_root().join("deploy/examples").join(file)).remove(0)
}

/// Sets the value at a JSON pointer, creating the objects on the way.
fn with_field(mut pool: Value, pointer: &str, value: Value) -> Value {
    let mut target = &mut pool;
    for token in pointer.trim_start_matches('/').split('/') {
        if target.is_null() {
            *target = json!({});
        }
        target = target
            .as_object_mut()
            .unwrap_or_else(|| panic!("{pointer}: {token} is below a non-object"))
            .entry(token)
            .or_insert(Value::Null);
    }
    *target = value;
    pool
}

fn without_field(mut pool: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer with a parent");
    pool.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is not an object"))
        .remove(key);
    pool
}

#[test]
fn examples_folder_has_every_scenario() {
    let pools = example_pools();
    let names: Vec<&str> = pools.iter().map(|(file, _)| file.as_str()).collect();
    assert!(
        pools.len() >= 5,
        "expected at least five example pools, found {names:?}"
    );

    let has = |predicate: &dyn Fn(&Value) -> bool| pools.iter().any(|(_, pool)| predicate(pool));
    assert!(
        has(&|pool| pool["spec"]["worker"]["device"] == "cpu"),
        "no example pool with device cpu in {names:?}"
    );
    assert!(
        has(&|pool| pool["spec"]["worker"]["device"] == "cuda"
            && pool["spec"]["worker"]["gpus"].as_i64() >= Some(1)),
        "no example pool with device cuda and a GPU in {names:?}"
    );
    assert!(
        has(&|pool| pool["spec"]["server"]["tls"]["mode"] == "selfSigned"),
        "no example pool with TLS mode selfSigned in {names:?}"
    );
    assert!(
        has(&|pool| pool["spec"]["server"]["tls"]["mode"] == "certManager"),
        "no example pool with TLS mode certManager in {names:?}"
    );
    assert!(
        has(&|pool| pool["spec"]["autoscaling"]["enabled"] == true
            && pool["spec"]["autoscaling"]["minReplicas"] == 0),
        "no autoscaled example pool with minReplicas 0 in {names:?}"
    );
}

#[test]
fn examples_parse_as_pool_type() {
    for (file, pool) in example_pools() {
        assert_eq!(pool["kind"], "CascorWorkerPool", "{file}: unexpected kind");
        assert_typed(&pool, &file);
    }
}

#[test]
fn examples_pass_crd_schema_and_rules() {
    let schema = pool_schema();
    for (file, mut pool) in example_pools() {
        let violations = admit(&schema, &mut pool);
        assert!(
            violations.is_empty(),
            "{file} is rejected by the CRD:\n{}",
            violations.join("\n")
        );
    }
}

#[test]
fn crd_rejects_invalid_pools() {
    let schema = pool_schema();
    let cpu = example("cpu-pool.yaml");
    let mtls = example("selfsigned-mtls-pool.yaml");
    let cert_manager = example("cert-manager-pool.yaml");
    let gpu = example("gpu-pool.yaml");

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "http URL",
            with_field(
                cpu.clone(),
                "/spec/server/url",
                json!("http://cascor:8200/ws/v1/workers"),
            ),
            "url must start with ws:// or wss://",
        ),
        (
            "TLS over ws://",
            with_field(
                mtls.clone(),
                "/spec/server/url",
                json!("ws://cascor:8200/ws/v1/workers"),
            ),
            "needs a wss:// url",
        ),
        (
            "certManager without issuerRef",
            without_field(cert_manager.clone(), "/spec/server/tls/issuerRef"),
            "issuerRef is required with mode certManager",
        ),
        (
            "issuerRef with selfSigned",
            with_field(
                mtls.clone(),
                "/spec/server/tls/issuerRef",
                json!({"name": "ca"}),
            ),
            "issuerRef is required with mode certManager",
        ),
        (
            "secret mode without secretName",
            with_field(mtls.clone(), "/spec/server/tls", json!({"mode": "secret"})),
            "secretName is required with mode secret",
        ),
        (
            "caDuration with certManager",
            with_field(
                cert_manager.clone(),
                "/spec/server/tls/caDuration",
                json!("8760h"),
            ),
            "caDuration is only allowed with mode selfSigned",
        ),
        (
            "GPUs on CPU",
            with_field(cpu.clone(), "/spec/worker/gpus", json!(1)),
            "gpus needs device cuda",
        ),
        (
            "CUDA without GPUs",
            with_field(gpu.clone(), "/spec/worker/gpus", json!(0)),
            "device cuda needs gpus of at least 1",
        ),
        (
            "negative replicas",
            with_field(cpu.clone(), "/spec/replicas", json!(-1)),
            "below the minimum",
        ),
        (
            "unknown TLS mode",
            with_field(mtls.clone(), "/spec/server/tls/mode", json!("acme")),
            "is not one of",
        ),
        (
            "bad duration",
            with_field(
                cpu.clone(),
                "/spec/worker/heartbeatInterval",
                json!("10 seconds"),
            ),
            "does not match the pattern",
        ),
        (
            "misspelt field",
            with_field(cpu.clone(), "/spec/worker/replicas", json!(2)),
            ".spec.worker.replicas: unknown field",
        ),
        (
            "missing server",
            without_field(cpu.clone(), "/spec/server"),
            "\"server\" is missing",
        ),
        (
            "autoscaling bounds reversed",
            with_field(
                cpu.clone(),
                "/spec/autoscaling",
                json!({"enabled": true, "minReplicas": 5, "maxReplicas": 2}),
            ),
            "minReplicas must not exceed",
        ),
    ];

    for (case, mut pool, expected) in cases {
        let violations = admit(&schema, &mut pool);
        assert!(
            violations
                .iter()
                .any(|violation| violation.contains(expected)),
            "{case}: expected a violation containing {expected:?}, got {violations:?}"
        );
    }
}
