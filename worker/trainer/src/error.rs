//! Errors of the trainer crate.

use std::path::PathBuf;

/// Everything that can go wrong while setting up a trainer or running a task.
///
/// Task errors never escape [`crate::Trainer::run`]: they become a failure result whose
/// `error_message` is the error's text.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// A `candidate_data` or `training_params` field is missing or has an unusable value.
    #[error("{field} {reason}")]
    InvalidField { field: &'static str, reason: String },

    /// A tensor is missing, malformed, or does not fit the other inputs.
    #[error("invalid tensor {name}: {reason}")]
    InvalidTensor { name: &'static str, reason: String },

    /// Training failed for a reason the reference reports as an exception.
    #[error("{0}")]
    Training(String),

    /// The run reached its deadline before training finished.
    #[error("training stopped at its deadline after {epochs_completed} epoch(s)")]
    DeadlineExceeded { epochs_completed: u64 },

    /// A libtorch operation failed.
    #[error("libtorch operation failed: {0}")]
    Torch(#[from] tch::TchError),

    /// The device setting is not one of auto, cpu, cuda, cuda:N.
    #[error("invalid device {value:?}: expected auto, cpu, cuda or cuda:N")]
    InvalidDevice { value: String },

    /// The thread count is zero or too large for libtorch.
    #[error("invalid intra-op thread count {value}: expected 1 to {max}")]
    InvalidThreadCount { value: usize, max: usize },

    /// libtorch's CUDA support library could not be loaded.
    #[error(
        "cannot load libtorch's CUDA support library {path}: {reason}; install a CUDA build of \
         torch or use --device cpu"
    )]
    CudaLibrary { path: PathBuf, reason: String },

    /// The CUDA support library is loaded but the CUDA runtime sees no GPU.
    #[error(
        "no CUDA device is available (libtorch_cuda.so is loaded, but the CUDA runtime found no \
         GPU); use --device cpu or auto"
    )]
    NoCudaDevice,

    /// `cuda:N` names a GPU that does not exist.
    #[error("CUDA device index {index} is out of range: {count} CUDA device(s) available")]
    CudaIndexOutOfRange { index: usize, count: usize },
}
