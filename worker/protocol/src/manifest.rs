//! The `tensor_manifest` of a `task_assign` and the pairing of its entries with the
//! binary frames that follow the message.
//!
//! Frames belong to manifest entries purely by position: the k-th binary frame after the
//! JSON text is the tensor of the k-th key of `tensor_manifest` in document order. The
//! JSON map used here preserves key order (serde_json's `preserve_order` feature).

use serde_json::{Map, Value};
use thiserror::Error;

use crate::frame::{self, Dtype, FrameError, Tensor};
use crate::json_kind::python_type_name;

/// Name of the frame with the candidate inputs, shape `[N, input_size]`.
pub const CANDIDATE_INPUT: &str = "candidate_input";
/// Name of the frame with the residual error of the network, shape `[N, n_outputs]`.
pub const RESIDUAL_ERROR: &str = "residual_error";
/// Tensors a task cannot be trained without, in the order the error message lists them.
pub const REQUIRED_TENSORS: [&str; 2] = [CANDIDATE_INPUT, RESIDUAL_ERROR];

/// Reason a `task_assign` cannot be trained. The `Display` text becomes the failure
/// result's `error_message`. The manifest variants use the reference worker's wording,
/// including Python's names for JSON types and its list rendering.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidTask {
    #[error("Tensor manifest invalid: manifest is not a dict (got {found})")]
    ManifestNotObject { found: &'static str },
    #[error("Tensor manifest invalid: manifest is empty")]
    ManifestEmpty,
    #[error("Tensor manifest invalid: manifest missing required tensor(s): [{}]", python_list(.names))]
    ManifestMissing { names: Vec<&'static str> },
    #[error("Tensor manifest invalid: entry {name:?} {reason}")]
    ManifestEntry { name: String, reason: &'static str },
    #[error(
        "Tensor manifest invalid: entry {name:?} has shape dimension {value}, expected a non-negative integer"
    )]
    ManifestDimension { name: String, value: String },
    #[error("Tensor manifest invalid: entry {name:?}: {source}")]
    ManifestDtype { name: String, source: FrameError },
    #[error("task_assign field {field:?} must be {expected}, got {found}")]
    Field {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

fn python_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One manifest entry: the tensor's name and the shape and dtype the server declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
}

/// A validated task manifest: at least the required tensors, in frame order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorManifest {
    entries: Vec<ManifestEntry>,
}

impl TensorManifest {
    /// Validates the raw `tensor_manifest` value of a `task_assign`.
    pub fn from_value(value: &Value) -> Result<Self, InvalidTask> {
        let Value::Object(object) = value else {
            return Err(InvalidTask::ManifestNotObject {
                found: python_type_name(value),
            });
        };
        if object.is_empty() {
            return Err(InvalidTask::ManifestEmpty);
        }

        let missing: Vec<&'static str> = REQUIRED_TENSORS
            .into_iter()
            .filter(|name| !object.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            return Err(InvalidTask::ManifestMissing { names: missing });
        }

        let entries = object
            .iter()
            .map(|(name, entry)| parse_entry(name, entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    /// Returns the entries in frame order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Decodes `frames`, paired with the entries by position, and checks each against
    /// its declared shape and dtype.
    pub fn decode_frames<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
    ) -> Result<Vec<(String, Tensor)>, PairingError> {
        if frames.len() != self.entries.len() {
            return Err(PairingError::FrameCount {
                expected: self.entries.len(),
                received: frames.len(),
            });
        }

        let mut tensors = Vec::with_capacity(frames.len());
        for (entry, frame) in self.entries.iter().zip(frames) {
            let bytes = frame.as_ref();
            let header = frame::decode_header(bytes).map_err(|source| PairingError::Frame {
                name: entry.name.clone(),
                source,
            })?;
            if header.shape != entry.shape || header.dtype != entry.dtype {
                return Err(PairingError::Mismatch {
                    name: entry.name.clone(),
                    declared_shape: entry.shape.clone(),
                    declared_dtype: entry.dtype,
                    frame_shape: header.shape,
                    frame_dtype: header.dtype,
                });
            }
            let tensor = frame::decode_frame(bytes).map_err(|source| PairingError::Frame {
                name: entry.name.clone(),
                source,
            })?;
            tensors.push((entry.name.clone(), tensor));
        }

        Ok(tensors)
    }

    /// Decodes `frames` and picks the two tensors training needs; other entries (the
    /// server also sends `y`) are decoded, checked and dropped.
    pub fn decode_task_tensors<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
    ) -> Result<TaskTensors, PairingError> {
        let mut candidate_input = None;
        let mut residual_error = None;
        for (name, tensor) in self.decode_frames(frames)? {
            match name.as_str() {
                CANDIDATE_INPUT => candidate_input = Some(tensor),
                RESIDUAL_ERROR => residual_error = Some(tensor),
                _ => {}
            }
        }

        // from_value guarantees both entries exist, so both were decoded.
        match (candidate_input, residual_error) {
            (Some(candidate_input), Some(residual_error)) => Ok(TaskTensors {
                candidate_input,
                residual_error,
            }),
            _ => Err(PairingError::FrameCount {
                expected: self.entries.len(),
                received: frames.len(),
            }),
        }
    }
}

fn parse_entry(name: &str, entry: &Value) -> Result<ManifestEntry, InvalidTask> {
    let Value::Object(fields) = entry else {
        return Err(InvalidTask::ManifestEntry {
            name: name.to_owned(),
            reason: "is not an object",
        });
    };

    let Some(Value::Array(dims)) = fields.get("shape") else {
        return Err(InvalidTask::ManifestEntry {
            name: name.to_owned(),
            reason: "has no \"shape\" array",
        });
    };
    if dims.len() > frame::MAX_NDIM {
        return Err(InvalidTask::ManifestEntry {
            name: name.to_owned(),
            reason: "has more than 10 dimensions",
        });
    }
    let mut shape = Vec::with_capacity(dims.len());
    for dim in dims {
        let value = dim
            .as_u64()
            .and_then(|dim| u32::try_from(dim).ok())
            .ok_or_else(|| InvalidTask::ManifestDimension {
                name: name.to_owned(),
                value: dim.to_string(),
            })?;
        shape.push(value as usize);
    }

    let Some(Value::String(dtype)) = fields.get("dtype") else {
        return Err(InvalidTask::ManifestEntry {
            name: name.to_owned(),
            reason: "has no \"dtype\" string",
        });
    };
    let dtype = Dtype::parse(dtype).map_err(|source| InvalidTask::ManifestDtype {
        name: name.to_owned(),
        source,
    })?;

    Ok(ManifestEntry {
        name: name.to_owned(),
        shape,
        dtype,
    })
}

/// Mismatch between the frames of a task and its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PairingError {
    #[error("expected {expected} tensor frames, received {received}")]
    FrameCount { expected: usize, received: usize },
    #[error("invalid frame for tensor {name:?}: {source}")]
    Frame { name: String, source: FrameError },
    #[error(
        "frame for tensor {name:?} is {frame_dtype} {frame_shape:?}, but the manifest declares {declared_dtype} {declared_shape:?}"
    )]
    Mismatch {
        name: String,
        declared_shape: Vec<usize>,
        declared_dtype: Dtype,
        frame_shape: Vec<usize>,
        frame_dtype: Dtype,
    },
}

/// The two tensors a candidate is trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTensors {
    /// `[N, input_size]`.
    pub candidate_input: Tensor,
    /// `[N, n_outputs]`.
    pub residual_error: Tensor,
}

/// Builds the `tensor_manifest` object of a result from `(name, shape)` pairs, every
/// tensor float32.
pub fn result_manifest<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [usize])>) -> Value {
    let mut manifest = Map::new();
    for (name, shape) in tensors {
        let mut entry = Map::new();
        entry.insert("shape".to_owned(), Value::from(shape.to_vec()));
        entry.insert(
            "dtype".to_owned(),
            Value::from(Dtype::Float32.canonical_name()),
        );
        manifest.insert(name.to_owned(), Value::Object(entry));
    }
    Value::Object(manifest)
}
