//! Golden task files of the reference worker, shared by the test support modules.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

/// One golden case: the `task_assign` envelope (with the test's `task_id`), its tensors in
/// manifest order, and the reference result.
pub struct GoldenCase {
    pub task_assign: Value,
    /// `(shape, row-major data)` per tensor, in the order of `tensor_manifest`.
    pub tensors: Vec<(Vec<usize>, Vec<f32>)>,
    pub result: Value,
}

/// Returns the folder of the golden task files: `JUNIPER_GOLDEN_DIR`, else
/// `<workspace>/../shared/golden`.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("JUNIPER_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden"),
    }
}

/// Loads the golden case in `file`, with its task id replaced by `task_id`.
pub fn load(file: &str, task_id: &str) -> GoldenCase {
    let path = golden_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read golden file {}: {error}; set JUNIPER_GOLDEN_DIR to the folder of the golden task files",
            path.display()
        )
    });
    let golden: Value = serde_json::from_str(&text).expect("golden file is JSON");

    let mut task_assign = golden["task_assign"].clone();
    task_assign["task_id"] = json!(task_id);
    let tensors = task_assign["tensor_manifest"]
        .as_object()
        .expect("manifest object")
        .keys()
        .map(|name| {
            let tensor = &golden["tensors"][name];
            let shape: Vec<usize> = tensor["shape"]
                .as_array()
                .expect("shape array")
                .iter()
                .map(|dim| dim.as_u64().expect("integer dimension") as usize)
                .collect();
            let mut data = Vec::new();
            flatten(&tensor["data"], &mut data);
            (shape, data)
        })
        .collect();

    GoldenCase {
        task_assign,
        tensors,
        result: golden["result"].clone(),
    }
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        Value::Number(number) => out.push(number.as_f64().expect("number") as f32),
        other => panic!("unexpected tensor element {other}"),
    }
}
