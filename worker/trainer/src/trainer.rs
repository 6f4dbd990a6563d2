//! The [`Trainer`]: validates a task, initialises the candidate and trains it on the
//! configured device, turning every problem into a failure result.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::activation::{Activation, glu_error};
use crate::core::{Outcome, Problem, Settings};
use crate::device::{self, Device, ResolvedDevice};
use crate::error::TrainerError;
use crate::init::{TorchGenerator, initial_parameters};
use crate::task::{
    HostTensor, TaskConfig, TaskRequest, TaskResponse, candidate_id, echoed_activation_name,
    failure_result, uuid_text,
};
use crate::{native, torch_backend};

/// Largest intra-op thread count accepted (libtorch takes an `i32`).
pub const MAX_THREADS: usize = 4096;

/// Settings of a [`Trainer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainerOptions {
    pub device: Device,
    /// Intra-op threads for libtorch and the native path; `None` means the CPUs this
    /// process may use ([`device::available_cpus`]).
    pub intra_op_threads: Option<usize>,
}

/// Implementation that trains on the CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuBackend {
    /// Fused native loops (the default; RReLU still uses libtorch, whose generator
    /// provides its random slopes).
    #[default]
    Native,
    /// libtorch operations one by one, as the reference runs them.
    Torch,
}

/// Per-run switches that are not part of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Early stopping (patience 50, threshold 0.001). Always on for real tasks; the
    /// benchmark turns it off to run a fixed number of epochs.
    pub early_stopping: bool,
    /// CPU implementation; ignored on CUDA devices, which always use libtorch.
    pub cpu_backend: CpuBackend,
    /// Instant after which no new epoch starts and the task fails (see
    /// [`crate::engine::Settings::deadline`]). The worker sets it to the task timeout.
    pub deadline: Option<Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            early_stopping: true,
            cpu_backend: CpuBackend::Native,
            deadline: None,
        }
    }
}

/// Trains candidate units on one device.
#[derive(Debug, Clone)]
pub struct Trainer {
    device: ResolvedDevice,
    threads: usize,
    description: String,
}

impl Trainer {
    /// Resolves the device (loading libtorch's CUDA library when CUDA is requested or a
    /// GPU is present) and sets the intra-op thread count. Errors name the device or value.
    pub fn new(options: TrainerOptions) -> Result<Trainer, TrainerError> {
        let threads = match options.intra_op_threads {
            Some(threads) if threads == 0 || threads > MAX_THREADS => {
                return Err(TrainerError::InvalidThreadCount {
                    value: threads,
                    max: MAX_THREADS,
                });
            }
            Some(threads) => threads,
            None => device::available_cpus(),
        };
        let device = device::resolve(options.device)?;
        tch::set_num_threads(threads as i32);

        let description = match device {
            ResolvedDevice::Cpu => format!("cpu ({threads} threads)"),
            ResolvedDevice::Cuda(index) => match device::gpu_name(index) {
                Some(name) => format!("cuda:{index} ({name})"),
                None => format!("cuda:{index}"),
            },
        };
        tracing::info!(device = %description, requested = %options.device, "trainer ready");
        Ok(Trainer {
            device,
            threads,
            description,
        })
    }

    /// The device in words, e.g. "cpu (2 threads)" or "cuda:0 (NVIDIA H200)".
    pub fn device_description(&self) -> String {
        self.description.clone()
    }

    /// The resolved device.
    pub fn device(&self) -> ResolvedDevice {
        self.device
    }

    /// Intra-op thread count in use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs one task synchronously (call it from a blocking thread). Never panics on bad
    /// input: every problem becomes a result with success=false and an error_message.
    pub fn run(&self, request: &TaskRequest) -> TaskResponse {
        self.run_with(request, &RunOptions::default())
    }

    /// [`Trainer::run`] with switches the wire protocol does not carry.
    pub fn run_with(&self, request: &TaskRequest, options: &RunOptions) -> TaskResponse {
        let started = Instant::now();
        let span = tracing::info_span!(
            "candidate_task",
            candidate_index = %candidate_id(request.candidate_index.as_ref()),
            candidate_uuid = %uuid_text(&request.candidate_data),
        );
        let _entered = span.enter();

        let attempt = catch_unwind(AssertUnwindSafe(|| self.train(request, options)));
        let training_duration = started.elapsed();
        let outcome = match attempt {
            Ok(outcome) => outcome,
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                Err(TrainerError::Training(format!(
                    "internal trainer error: {detail}"
                )))
            }
        };

        match outcome {
            Ok((outcome, config)) => success_response(request, &config, outcome, training_duration),
            Err(error) => {
                let message = error.to_string();
                tracing::error!(
                    "Training failed for candidate {}: {message}",
                    candidate_id(request.candidate_index.as_ref())
                );
                failure_response(request, &message, training_duration)
            }
        }
    }

    fn train(
        &self,
        request: &TaskRequest,
        options: &RunOptions,
    ) -> Result<(Outcome, TaskConfig), TrainerError> {
        let config = TaskConfig::from_request(request)?;
        if let Some(name) = &config.unknown_activation_name {
            tracing::warn!("Unknown activation '{name}', falling back to 'sigmoid'");
        }
        let problem = validate_tensors(request, config.input_size)?;
        if config.activation == Activation::Glu {
            return Err(glu_error(problem.samples));
        }
        let settings = Settings {
            epochs: config.epochs,
            learning_rate: config.learning_rate as f32,
            activation: config.activation,
            early_stopping: options.early_stopping,
            deadline: options.deadline,
        };

        let generator = TorchGenerator::acquire();
        let (weights, bias) = initial_parameters(
            &generator,
            config.seed,
            config.roll_bound,
            config.input_size,
            config.random_value_scale,
        )?;

        let outcome = match (self.device, config.activation, options.cpu_backend) {
            // RReLU's slopes come from torch's CPU generator, which continues from the
            // state the initialisation left; the reference always trains on the CPU.
            (_, Activation::Rrelu, _) => {
                torch_backend::train(&problem, &settings, &weights, bias, tch::Device::Cpu)?
            }
            (ResolvedDevice::Cuda(_), _, _) => {
                drop(generator);
                torch_backend::train(&problem, &settings, &weights, bias, self.device.to_tch())?
            }
            (ResolvedDevice::Cpu, _, CpuBackend::Torch) => {
                drop(generator);
                torch_backend::train(&problem, &settings, &weights, bias, tch::Device::Cpu)?
            }
            (ResolvedDevice::Cpu, _, CpuBackend::Native) => {
                drop(generator);
                native::train(&problem, &settings, &weights, bias, self.threads)?
            }
        };
        Ok((outcome, config))
    }
}

/// Checks the tensors against each other and `input_size`, returning the problem view.
pub fn validate_tensors(
    request: &TaskRequest,
    input_size: usize,
) -> Result<Problem<'_>, TrainerError> {
    let x = &request.candidate_input;
    let error = &request.residual_error;
    check_data_length(x, "candidate_input")?;
    check_data_length(error, "residual_error")?;

    let [samples, inputs] = x.shape[..] else {
        return Err(TrainerError::InvalidTensor {
            name: "candidate_input",
            reason: format!("must be 2-D [samples, input_size], got shape {:?}", x.shape),
        });
    };
    if inputs != input_size {
        return Err(TrainerError::InvalidTensor {
            name: "candidate_input",
            reason: format!("has {inputs} columns but candidate_data.input_size is {input_size}"),
        });
    }
    let (error_samples, outputs) = match error.shape[..] {
        [rows] => (rows, 1),
        [rows, columns] => (rows, columns),
        _ => {
            return Err(TrainerError::InvalidTensor {
                name: "residual_error",
                reason: format!("must be 1-D or 2-D, got shape {:?}", error.shape),
            });
        }
    };
    if error_samples != samples {
        return Err(TrainerError::InvalidTensor {
            name: "residual_error",
            reason: format!(
                "Output and residual error must have the same batch size: residual_error has \
                 {error_samples} rows, candidate_input has {samples}"
            ),
        });
    }
    if samples < 2 {
        return Err(TrainerError::InvalidTensor {
            name: "candidate_input",
            reason: format!("needs at least 2 samples to compute a correlation, got {samples}"),
        });
    }
    if outputs == 0 {
        return Err(TrainerError::InvalidTensor {
            name: "residual_error",
            reason: "has no output columns (shape [N, 0])".to_owned(),
        });
    }
    check_finite(x, "candidate_input")?;
    check_finite(error, "residual_error")?;

    Ok(Problem {
        x: &x.data,
        residual_error: &error.data,
        samples,
        inputs,
        outputs,
    })
}

fn check_data_length(tensor: &HostTensor, name: &'static str) -> Result<(), TrainerError> {
    match tensor.shape_elements() {
        Some(elements) if elements == tensor.data.len() => {
            if elements == 0 {
                return Err(TrainerError::InvalidTensor {
                    name,
                    reason: format!("is empty (shape {:?})", tensor.shape),
                });
            }
            Ok(())
        }
        _ => Err(TrainerError::InvalidTensor {
            name,
            reason: format!(
                "shape {:?} does not match its {} values",
                tensor.shape,
                tensor.data.len()
            ),
        }),
    }
}

fn check_finite(tensor: &HostTensor, name: &'static str) -> Result<(), TrainerError> {
    match tensor.data.iter().position(|value| !value.is_finite()) {
        None => Ok(()),
        Some(position) => Err(TrainerError::InvalidTensor {
            name,
            reason: format!(
                "contains the non-finite value {} at flat index {position}",
                tensor.data[position]
            ),
        }),
    }
}

fn success_response(
    request: &TaskRequest,
    config: &TaskConfig,
    outcome: Outcome,
    training_duration: Duration,
) -> TaskResponse {
    let evaluation = &outcome.evaluation;
    let correlation = evaluation.correlation();
    let mut result = Map::new();
    result.insert(
        "candidate_id".into(),
        candidate_id(request.candidate_index.as_ref()),
    );
    result.insert(
        "candidate_uuid".into(),
        Value::from(uuid_text(&request.candidate_data)),
    );
    // NOTE: a NaN correlation (a NaN numerator with a finite denominator) becomes JSON
    // null here, where the reference would write a bare NaN token.
    result.insert("correlation".into(), Value::from(correlation));
    result.insert("success".into(), Value::from(true));
    result.insert(
        "epochs_completed".into(),
        Value::from(outcome.epochs_completed),
    );
    result.insert(
        "activation_name".into(),
        echoed_activation_name(&request.candidate_data),
    );
    result.insert(
        "all_correlations".into(),
        Value::Array(
            evaluation
                .correlations
                .iter()
                .map(|&c| Value::from(c))
                .collect(),
        ),
    );
    result.insert("numerator".into(), Value::from(evaluation.numerator));
    result.insert("denominator".into(), Value::from(evaluation.denominator));
    result.insert("best_corr_idx".into(), Value::from(evaluation.best));
    result.insert("error_message".into(), Value::Null);

    tracing::info!(
        "Task completed: candidate {} (uuid={}) correlation={correlation:.4}",
        candidate_id(request.candidate_index.as_ref()),
        uuid_text(&request.candidate_data),
    );
    let samples = outcome.norm_output.len();
    let inputs = config.input_size;
    TaskResponse {
        result,
        tensors: vec![
            (
                "weights".into(),
                HostTensor::new(vec![inputs], outcome.weights),
            ),
            ("bias".into(), HostTensor::new(vec![1], vec![outcome.bias])),
            (
                "norm_output".into(),
                HostTensor::new(vec![samples], outcome.norm_output),
            ),
            (
                "norm_error".into(),
                HostTensor::new(vec![samples], outcome.norm_error),
            ),
        ],
        training_duration,
        epochs_completed: outcome.epochs_completed,
    }
}

fn failure_response(
    request: &TaskRequest,
    message: &str,
    training_duration: Duration,
) -> TaskResponse {
    TaskResponse {
        result: failure_result(
            request.candidate_index.as_ref(),
            &request.candidate_data,
            message,
        ),
        tensors: Vec::new(),
        training_duration,
        epochs_completed: 0,
    }
}
