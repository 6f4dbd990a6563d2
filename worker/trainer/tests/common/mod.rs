//! Loading of the reference's golden task files, shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cascor_trainer::{HostTensor, TaskRequest};
use serde_json::{Map, Value};

/// One golden file: the task as the server sent it and the reference's result.
pub struct GoldenCase {
    pub name: String,
    pub request: TaskRequest,
    pub result: Map<String, Value>,
    pub result_tensors: Map<String, Value>,
    pub initial_weights: Vec<f32>,
    pub initial_bias: f32,
    pub epochs: u64,
}

/// Folder of the golden files: `JUNIPER_GOLDEN_DIR`, else `<workspace>/../shared/golden`.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("JUNIPER_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    }
}

/// Loads every `*.json` golden file, sorted by name. Panics with a clear message when the
/// folder is missing or contains none, because the conformance tests cannot run without them.
pub fn load_golden_cases() -> Vec<GoldenCase> {
    let dir = golden_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!(
            "cannot read the golden folder {}: {error}; set JUNIPER_GOLDEN_DIR to the folder \
             with the reference's golden *.json files",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "the golden folder {} holds no *.json files; set JUNIPER_GOLDEN_DIR to the folder \
         with the reference's golden files",
        dir.display()
    );
    paths.iter().map(|path| load_case(path)).collect()
}

pub fn load_case(path: &Path) -> GoldenCase {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let file: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("invalid JSON in {}: {error}", path.display()));
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let assign = &file["task_assign"];
    let training_params = object(&assign["training_params"]);
    let epochs = training_params
        .get("epochs")
        .and_then(Value::as_u64)
        .unwrap_or(cascor_trainer::DEFAULT_EPOCHS as u64);
    GoldenCase {
        request: TaskRequest {
            candidate_index: assign.get("candidate_index").cloned(),
            candidate_data: object(&assign["candidate_data"]),
            training_params,
            candidate_input: tensor(&file["tensors"]["candidate_input"]),
            residual_error: tensor(&file["tensors"]["residual_error"]),
        },
        result: object(&file["result"]),
        result_tensors: object(&file["result_tensors"]),
        initial_weights: tensor(&file["initial_parameters"]["weights"]).data,
        initial_bias: tensor(&file["initial_parameters"]["bias"]).data[0],
        epochs,
        name,
    }
}

pub fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Parses `{shape, dtype, data}` with nested-list data; each number is read as f64 and
/// rounded to f32, which reproduces the stored float32 exactly.
pub fn tensor(value: &Value) -> HostTensor {
    let shape = value["shape"]
        .as_array()
        .map(|dims| {
            dims.iter()
                .filter_map(Value::as_u64)
                .map(|dim| dim as usize)
                .collect()
        })
        .unwrap_or_default();
    let mut data = Vec::new();
    flatten(&value["data"], &mut data);
    HostTensor::new(shape, data)
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        Value::Number(number) => out.push(number.as_f64().unwrap_or(f64::NAN) as f32),
        _ => {}
    }
}

/// Largest absolute and relative deviation between two float sequences.
#[derive(Debug, Default, Clone, Copy)]
pub struct Deviation {
    pub max_abs: f64,
    pub max_rel: f64,
}

impl Deviation {
    pub fn of(actual: &[f32], expected: &[f32]) -> Self {
        let mut deviation = Self::default();
        for (&a, &e) in actual.iter().zip(expected) {
            deviation.add(f64::from(a), f64::from(e));
        }
        deviation
    }

    pub fn add(&mut self, actual: f64, expected: f64) {
        let abs = (actual - expected).abs();
        self.max_abs = self.max_abs.max(abs);
        if expected != 0.0 {
            self.max_rel = self.max_rel.max(abs / expected.abs());
        }
    }

    pub fn merge(&mut self, other: Deviation) {
        self.max_abs = self.max_abs.max(other.max_abs);
        self.max_rel = self.max_rel.max(other.max_rel);
    }
}

/// Returns true when every element satisfies |a − e| <= atol + rtol·|e|.
pub fn all_close(actual: &[f32], expected: &[f32], rtol: f64, atol: f64) -> bool {
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(&a, &e)| (f64::from(a) - f64::from(e)).abs() <= atol + rtol * f64::from(e).abs())
}
