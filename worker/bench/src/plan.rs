//! The benchmark plan: cases, their task settings and where their inputs are.

use std::path::{Path, PathBuf};

use cascor_trainer::{HostTensor, TaskRequest};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Errors while reading a plan or its input files.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid plan {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {bytes} bytes is not a whole number of float32 values")]
    PartialValue { path: PathBuf, bytes: usize },
    #[error("{path}: shape {shape:?} needs {expected} float32 values, the file has {found}")]
    ShapeMismatch {
        path: PathBuf,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("invalid plan {path}: `threads` must be at least 1")]
    NoThreads { path: PathBuf },
}

/// A whole plan, as `scripts/bench.py` writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    /// Intra-op threads for both sides.
    pub threads: usize,
    pub cases: Vec<Case>,
}

/// One benchmark case: a task, the mode and how often to repeat it.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// Unique name, e.g. `200x2x1-Tanh-early-stopping`.
    pub id: String,
    /// Input size `NxDxK`; the first case of each size is preceded by a warm-up run.
    pub size: String,
    pub early_stopping: bool,
    /// Timed repetitions on the Rust side (the reference side has its own count).
    pub native_repetitions: usize,
    pub candidate_index: Value,
    pub candidate_data: Map<String, Value>,
    pub training_params: Map<String, Value>,
    pub candidate_input: MatrixFile,
    pub residual_error: MatrixFile,
}

/// A row-major float32 matrix stored in a file next to the plan.
#[derive(Debug, Clone, Deserialize)]
pub struct MatrixFile {
    /// Path relative to the plan's folder.
    pub file: String,
    pub shape: Vec<usize>,
}

impl Plan {
    /// Reads and checks a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_owned(),
            source,
        })?;
        let plan: Plan = serde_json::from_str(&text).map_err(|source| PlanError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if plan.threads == 0 {
            return Err(PlanError::NoThreads {
                path: path.to_owned(),
            });
        }
        Ok(plan)
    }
}

impl MatrixFile {
    /// Reads the matrix from `folder` and checks its length against the shape.
    pub fn load(&self, folder: &Path) -> Result<HostTensor, PlanError> {
        let path = folder.join(&self.file);
        let bytes = std::fs::read(&path).map_err(|source| PlanError::Read {
            path: path.clone(),
            source,
        })?;
        let data = decode_f32_le(&bytes).ok_or_else(|| PlanError::PartialValue {
            path: path.clone(),
            bytes: bytes.len(),
        })?;

        let expected = self.shape.iter().product::<usize>();
        if data.len() != expected {
            return Err(PlanError::ShapeMismatch {
                path,
                shape: self.shape.clone(),
                expected,
                found: data.len(),
            });
        }
        Ok(HostTensor::new(self.shape.clone(), data))
    }
}

impl Case {
    /// Builds the task request for this case, loading its inputs from `folder`.
    pub fn request(&self, folder: &Path) -> Result<TaskRequest, PlanError> {
        Ok(TaskRequest {
            candidate_index: Some(self.candidate_index.clone()),
            candidate_data: self.candidate_data.clone(),
            training_params: self.training_params.clone(),
            candidate_input: self.candidate_input.load(folder)?,
            residual_error: self.residual_error.load(folder)?,
        })
    }
}

/// Decodes little-endian float32 values; `None` when the length is not a multiple of 4.
pub fn decode_f32_le(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    let values = bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    Some(values)
}

/// Returns a copy of `request` that trains for `epochs` epochs.
pub fn with_epochs(request: &TaskRequest, epochs: u64) -> TaskRequest {
    let mut copy = request.clone();
    copy.training_params
        .insert("epochs".to_owned(), Value::from(epochs));
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reads_little_endian() {
        let bytes: Vec<u8> = [1.5f32, -2.0, 0.1]
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();

        let values = decode_f32_le(&bytes).expect("whole values");

        assert_eq!(values, vec![1.5, -2.0, 0.1]);
    }

    #[test]
    fn decode_rejects_partial_value() {
        assert_eq!(decode_f32_le(&[0, 0, 128]), None);
    }

    #[test]
    fn matrix_shape_mismatch_names_file() {
        let folder = tempfile::tempdir().expect("temporary folder");
        std::fs::write(folder.path().join("x.f32"), [0u8; 12]).expect("write matrix");
        let matrix = MatrixFile {
            file: "x.f32".to_owned(),
            shape: vec![2, 2],
        };

        let error = matrix
            .load(folder.path())
            .expect_err("3 values for shape [2, 2]");

        let message = error.to_string();
        assert!(message.contains("x.f32"), "{message}");
        assert!(message.contains("needs 4"), "{message}");
        assert!(message.contains("has 3"), "{message}");
    }

    #[test]
    fn plan_without_threads_is_rejected() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("plan.json");
        std::fs::write(&path, r#"{"threads": 0, "cases": []}"#).expect("write plan");

        let error = Plan::load(&path).expect_err("zero threads");

        assert!(matches!(error, PlanError::NoThreads { .. }), "{error}");
    }

    #[test]
    fn with_epochs_replaces_only_epochs() {
        let mut training_params = Map::new();
        training_params.insert("epochs".to_owned(), Value::from(400));
        training_params.insert("learning_rate".to_owned(), Value::from(0.1));
        let request = TaskRequest {
            candidate_index: Some(Value::from(0)),
            candidate_data: Map::new(),
            training_params,
            candidate_input: HostTensor::new(vec![1, 1], vec![0.0]),
            residual_error: HostTensor::new(vec![1], vec![0.0]),
        };

        let short = with_epochs(&request, 5);

        assert_eq!(short.training_params["epochs"], Value::from(5));
        assert_eq!(short.training_params["learning_rate"], Value::from(0.1));
    }
}
