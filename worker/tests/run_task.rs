//! `juniper-cascor-worker run-task` end to end: the built binary on a golden file, and its
//! handling of bad input files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const GOLDEN_CASE: &str = "01_Tanh_o1_e20.json";
const CORRELATION_ATOL: f64 = 1e-5;
const TENSOR_RTOL: f64 = 1e-4;
const TENSOR_ATOL: f64 = 1e-5;

fn golden_file() -> PathBuf {
    let dir = match std::env::var_os("JUNIPER_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden"),
    };
    let path = dir.join(GOLDEN_CASE);
    assert!(
        path.is_file(),
        "golden file {} is missing; set JUNIPER_GOLDEN_DIR to the folder with the reference's \
         golden *.json files",
        path.display()
    );
    path
}

fn run_task(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_juniper-cascor-worker"))
        .arg("run-task")
        .args(args)
        .output()
        .expect("the worker binary starts")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the result file exists");
    serde_json::from_str(&text).expect("the result file is JSON")
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a list of numbers")
        .iter()
        .map(|number| number.as_f64().expect("a number"))
        .collect()
}

#[test]
fn golden_case_matches_reference() {
    let golden_path = golden_file();
    let golden = read_json(&golden_path);
    let dir = tempfile::tempdir().expect("temporary folder");
    let output_path = dir.path().join("result.json");

    let output = run_task(&[
        "--input",
        golden_path.to_str().expect("UTF-8 path"),
        "--output",
        output_path.to_str().expect("UTF-8 path"),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--report-timing",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "run-task failed: {stderr}");
    assert!(
        stderr.contains("training_seconds="),
        "no timing line: {stderr}"
    );
    assert!(
        stderr.contains("epochs_completed=20"),
        "no epoch count: {stderr}"
    );

    let written = read_json(&output_path);
    let result = &written["result"];
    let expected = &golden["result"];
    let keys: Vec<&String> = result.as_object().expect("result object").keys().collect();
    let expected_keys: Vec<&String> = expected
        .as_object()
        .expect("golden result")
        .keys()
        .collect();
    assert_eq!(keys, expected_keys);
    assert_eq!(result["candidate_id"], expected["candidate_id"]);
    assert_eq!(result["epochs_completed"], expected["epochs_completed"]);
    assert!(result["epochs_completed"].is_u64());
    assert_eq!(result["success"], Value::Bool(true));
    let correlation = result["correlation"].as_f64().expect("correlation");
    let expected_correlation = expected["correlation"]
        .as_f64()
        .expect("golden correlation");
    assert!((correlation - expected_correlation).abs() <= CORRELATION_ATOL);

    let tensors = written["result_tensors"]
        .as_object()
        .expect("result_tensors");
    let names: Vec<&String> = tensors.keys().collect();
    assert_eq!(names, ["weights", "bias", "norm_output", "norm_error"]);
    for (name, tensor) in tensors {
        let golden_tensor = &golden["result_tensors"][name];
        assert_eq!(tensor["shape"], golden_tensor["shape"], "{name} shape");
        assert_eq!(tensor["dtype"], "float32", "{name} dtype");
        let actual = floats(&tensor["data"]);
        let wanted = floats(&golden_tensor["data"]);
        for (a, e) in actual.iter().zip(&wanted) {
            assert!(
                (a - e).abs() <= TENSOR_ATOL + TENSOR_RTOL * e.abs(),
                "{name}: {a} vs {e}"
            );
            assert_eq!(
                f64::from(*a as f32),
                *a,
                "{name}: {a} is not an exact float32"
            );
        }
    }
}

#[test]
fn missing_input_exits_2() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let missing = dir.path().join("absent.json");
    let output = run_task(&[
        "--input",
        missing.to_str().expect("UTF-8 path"),
        "--output",
        dir.path().join("out.json").to_str().expect("UTF-8 path"),
        "--device",
        "cpu",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("absent.json"), "{stderr}");
}

#[test]
fn invalid_input_files_exit_2() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let cases = [
        ("not-json.json", "{ not json", "not valid JSON"),
        ("no-assign.json", r#"{"tensors": {}}"#, "task_assign"),
        (
            "no-input.json",
            r#"{"task_assign": {}, "tensors": {"residual_error": {"shape": [2], "dtype": "float32", "data": [1, 2]}}}"#,
            "candidate_input",
        ),
        (
            "bad-shape.json",
            r#"{"task_assign": {}, "tensors": {"candidate_input": {"shape": [2, 2], "dtype": "float32", "data": [[1, 2]]}, "residual_error": {"shape": [2], "dtype": "float32", "data": [1, 2]}}}"#,
            "shape expects 2",
        ),
        (
            "bad-dtype.json",
            r#"{"task_assign": {}, "tensors": {"candidate_input": {"shape": [1], "dtype": "int64", "data": [1]}, "residual_error": {"shape": [1], "data": [1]}}}"#,
            "float32",
        ),
    ];
    for (file_name, contents, expected_words) in cases {
        let input = dir.path().join(file_name);
        std::fs::write(&input, contents).expect("write the task file");
        let output = run_task(&[
            "--input",
            input.to_str().expect("UTF-8 path"),
            "--output",
            dir.path().join("out.json").to_str().expect("UTF-8 path"),
            "--device",
            "cpu",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file_name}: {stderr}");
        assert!(stderr.contains(file_name), "{file_name}: {stderr}");
        assert!(stderr.contains(expected_words), "{file_name}: {stderr}");
    }
}

#[test]
fn untrainable_task_writes_failure_result() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let input = dir.path().join("task.json");
    let output_path = dir.path().join("out.json");
    let task = serde_json::json!({
        "task_assign": {
            "candidate_index": 4,
            "candidate_data": {"input_size": 3, "activation_name": "Tanh", "candidate_uuid": "u-1"},
            "training_params": {"epochs": 5}
        },
        "tensors": {
            "candidate_input": {"shape": [2, 2], "dtype": "float32", "data": [[1, 2], [3, 4]]},
            "residual_error": {"shape": [2], "dtype": "float32", "data": [0.5, -0.5]}
        }
    });
    std::fs::write(&input, task.to_string()).expect("write the task file");
    let output = run_task(&[
        "--input",
        input.to_str().expect("UTF-8 path"),
        "--output",
        output_path.to_str().expect("UTF-8 path"),
        "--device",
        "cpu",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = read_json(&output_path);
    assert_eq!(written["result"]["success"], Value::Bool(false));
    assert_eq!(written["result"]["candidate_id"], Value::from(4));
    assert_eq!(written["result"]["activation_name"], Value::from("Tanh"));
    let message = written["result"]["error_message"]
        .as_str()
        .expect("error message");
    assert!(message.contains("input_size"), "{message}");
    assert_eq!(written["result_tensors"], serde_json::json!({}));
}

#[test]
fn invalid_device_is_rejected() {
    let golden_path = golden_file();
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = run_task(&[
        "--input",
        golden_path.to_str().expect("UTF-8 path"),
        "--output",
        dir.path().join("out.json").to_str().expect("UTF-8 path"),
        "--device",
        "tpu",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"tpu\""), "{stderr}");
}
