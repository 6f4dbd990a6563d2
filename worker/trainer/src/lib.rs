//! Cascade-Correlation candidate-unit trainer that reproduces the juniper-cascor reference
//! worker (juniper-cascor-worker 0.6.1 with juniper-cascor-model 0.1.0).
//!
//! A task ([`TaskRequest`]) carries the candidate's settings as JSON and two float32
//! tensors: `candidate_input` `x: [N, D]` and `residual_error` `E: [N]` or `[N, K]`. The
//! trainer
//!
//! 1. resolves the settings with the reference worker's fallbacks and integer rules
//!    ([`TaskConfig`]);
//! 2. draws the initial weights and bias bit for bit as the reference does (CPython's
//!    `random` for the discard count, torch's CPU generator for `randint` and `randn`);
//! 3. trains for up to `epochs` epochs: forward `o = f(x·w + b)`, per-column correlation
//!    `|S/D|` with `S = Σ oc·ec` and `D = ‖oc‖·‖ec‖ + 1e-8` on the centred output and error,
//!    gradient step on `-|S/D|` for the best column, early stopping after 50 epochs without
//!    an improvement of more than 0.001;
//! 4. evaluates once more and returns the result fields and tensors ([`TaskResponse`]).
//!
//! On the CPU the epochs run in fused native loops ([`CpuBackend::Native`]); CUDA devices
//! and the RReLU activation use libtorch operations ([`CpuBackend::Torch`] selects them on
//! the CPU too).
//!
//! ```no_run
//! use cascor_trainer::{Device, Trainer, TrainerOptions, TaskRequest, HostTensor};
//! use serde_json::json;
//!
//! let trainer = Trainer::new(TrainerOptions { device: Device::Cpu, intra_op_threads: Some(2) })?;
//! let request = TaskRequest {
//!     candidate_index: Some(json!(0)),
//!     candidate_data: json!({"input_size": 2, "activation_name": "Tanh"})
//!         .as_object().cloned().unwrap_or_default(),
//!     training_params: json!({"epochs": 100, "learning_rate": 0.1})
//!         .as_object().cloned().unwrap_or_default(),
//!     candidate_input: HostTensor::new(vec![3, 2], vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]),
//!     residual_error: HostTensor::new(vec![3], vec![0.5, -0.2, 0.1]),
//! };
//! let response = trainer.run(&request);
//! println!("{}", serde_json::Value::Object(response.result));
//! # Ok::<(), cascor_trainer::TrainerError>(())
//! ```

pub mod activation;
pub mod core;
pub mod device;
mod elementwise;
mod error;
pub mod init;
mod native;
pub mod pyrandom;
mod task;
mod torch_backend;
mod trainer;

pub use activation::{ACTIVATION_NAMES, Activation, ActivationLookup, lookup_activation};
pub use device::{Device, ResolvedDevice, available_cpus};
pub use error::TrainerError;
pub use native::{GradientCoefficients, gradient_coefficients};
pub use task::{
    DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, HostTensor, TaskConfig, TaskRequest, TaskResponse,
    failure_result,
};
pub use trainer::{CpuBackend, MAX_THREADS, RunOptions, Trainer, TrainerOptions, validate_tensors};

/// Lower-level entry points for tests and benchmarks: train a validated problem from
/// given initial parameters, bypassing the seeding.
pub mod engine {
    pub use crate::core::{Evaluation, Outcome, Problem, Settings};

    /// Trains with the native CPU path on at most `threads` threads.
    pub fn train_native(
        problem: &Problem<'_>,
        settings: &Settings,
        weights: &[f32],
        bias: f32,
        threads: usize,
    ) -> Result<Outcome, crate::TrainerError> {
        crate::native::train(problem, settings, weights, bias, threads)
    }

    /// Trains with libtorch operations on `device`.
    pub fn train_torch(
        problem: &Problem<'_>,
        settings: &Settings,
        weights: &[f32],
        bias: f32,
        device: tch::Device,
    ) -> Result<Outcome, crate::TrainerError> {
        crate::torch_backend::train(problem, settings, weights, bias, device)
    }
}
