//! `run-task`: runs one candidate task from a JSON file and writes the result, without a
//! server. The input contains `task_assign` (the envelope as the server sends it) and
//! `tensors` (`{name: {shape, dtype, data}}` with nested-list data). The output contains
//! `result` and `result_tensors` in the same layout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cascor_trainer::{
    CpuBackend, Device, HostTensor, RunOptions, TaskRequest, TaskResponse, Trainer, TrainerError,
    TrainerOptions,
};
use serde_json::{Map, Value, json};

/// Exit status for an unreadable or invalid input file.
pub const EXIT_INVALID_INPUT: u8 = 2;

/// Options of `juniper-cascor-worker run-task`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunTaskArgs {
    /// Task file: JSON with `task_assign` and `tensors` (the golden-file layout).
    #[arg(long, value_name = "TASK.json")]
    pub input: PathBuf,

    /// Result file to write: JSON with `result` and `result_tensors`.
    #[arg(long, value_name = "RESULT.json")]
    pub output: PathBuf,

    /// Device to train on: auto (CUDA when a GPU is usable), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: Device,

    /// Intra-op threads (default: the CPUs this process may use).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Print the training-only time and the epochs run to standard error.
    #[arg(long)]
    pub report_timing: bool,

    /// CPU implementation: native (fused loops) or torch (libtorch operations).
    #[arg(long, default_value = "native", value_parser = parse_backend, hide = true)]
    pub cpu_backend: CpuBackend,

    /// Run every epoch: turn early stopping off (benchmarks only; never on the wire).
    #[arg(long, hide = true)]
    pub no_early_stopping: bool,
}

fn parse_device(value: &str) -> Result<Device, String> {
    value
        .parse()
        .map_err(|error: TrainerError| error.to_string())
}

fn parse_backend(value: &str) -> Result<CpuBackend, String> {
    match value {
        "native" => Ok(CpuBackend::Native),
        "torch" => Ok(CpuBackend::Torch),
        _ => Err(format!(
            "invalid CPU backend {value:?}: expected native or torch"
        )),
    }
}

/// Failure of `run-task`.
#[derive(Debug, thiserror::Error)]
pub enum RunTaskError {
    #[error("cannot read task file {path}: {source}")]
    ReadInput {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid task file {path}: {reason}")]
    InvalidInput { path: PathBuf, reason: String },

    #[error("cannot set up the trainer: {0}")]
    Trainer(#[from] TrainerError),

    #[error("cannot write result file {path}: {source}")]
    WriteOutput {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunTaskError {
    /// Process exit status: 2 for a bad input file, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunTaskError::ReadInput { .. } | RunTaskError::InvalidInput { .. } => {
                EXIT_INVALID_INPUT
            }
            RunTaskError::Trainer(_) | RunTaskError::WriteOutput { .. } => 1,
        }
    }
}

/// Response and device of a run, for callers that need more than the exit status.
#[derive(Debug, Clone)]
pub struct RunTaskReport {
    pub response: TaskResponse,
    pub device: String,
}

/// Runs the subcommand: prints errors to standard error and returns the exit status
/// (0, 1, or 2 for a bad input file). A task that fails to train still writes its
/// failure result and exits 0, as the worker would still send that result.
pub fn run(args: RunTaskArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only when a subscriber is already installed, which is then used instead.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();

    match execute(&args) {
        Ok(report) => {
            if args.report_timing {
                eprintln!(
                    "{}",
                    timing_line(
                        report.response.training_duration,
                        report.response.epochs_completed,
                        &report.device
                    )
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Reads, trains and writes; the testable core of [`run`].
pub fn execute(args: &RunTaskArgs) -> Result<RunTaskReport, RunTaskError> {
    let text = std::fs::read_to_string(&args.input).map_err(|source| RunTaskError::ReadInput {
        path: args.input.clone(),
        source,
    })?;
    let request = parse_task(&text).map_err(|reason| RunTaskError::InvalidInput {
        path: args.input.clone(),
        reason,
    })?;

    let trainer = Trainer::new(TrainerOptions {
        device: args.device,
        intra_op_threads: args.threads,
    })?;
    let options = RunOptions {
        early_stopping: !args.no_early_stopping,
        cpu_backend: args.cpu_backend,
        deadline: None,
    };
    let response = trainer.run_with(&request, &options);
    if let Some(Value::String(message)) = response.result.get("error_message") {
        tracing::error!(input = %args.input.display(), "task failed: {message}");
    }

    let output = render_result(&response);
    let mut bytes =
        serde_json::to_vec_pretty(&output).map_err(|error| RunTaskError::WriteOutput {
            path: args.output.clone(),
            source: std::io::Error::other(error),
        })?;
    bytes.push(b'\n');
    std::fs::write(&args.output, bytes).map_err(|source| RunTaskError::WriteOutput {
        path: args.output.clone(),
        source,
    })?;
    Ok(RunTaskReport {
        response,
        device: trainer.device_description(),
    })
}

/// Formats the `--report-timing` line: training-only time, epochs and device.
pub fn timing_line(training: Duration, epochs: u64, device: &str) -> String {
    let seconds = training.as_secs_f64();
    let rate = if seconds > 0.0 {
        epochs as f64 / seconds
    } else {
        0.0
    };
    format!(
        "run-task timing: training_seconds={seconds:.6} epochs_completed={epochs} \
         epochs_per_second={rate:.1} device=\"{device}\""
    )
}

/// Parses a task file into a request; the error names the missing or invalid part.
pub fn parse_task(text: &str) -> Result<TaskRequest, String> {
    let file: Value =
        serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
    let assign = file
        .get("task_assign")
        .and_then(Value::as_object)
        .ok_or("missing object \"task_assign\"")?;
    let tensors = file
        .get("tensors")
        .and_then(Value::as_object)
        .ok_or("missing object \"tensors\"")?;

    let candidate_data = optional_object(assign, "candidate_data")?;
    let training_params = optional_object(assign, "training_params")?;
    Ok(TaskRequest {
        candidate_index: assign.get("candidate_index").cloned(),
        candidate_data,
        training_params,
        candidate_input: parse_tensor(tensors, "candidate_input")?,
        residual_error: parse_tensor(tensors, "residual_error")?,
    })
}

fn optional_object(assign: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match assign.get(key) {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object.clone()),
        Some(other) => Err(format!("task_assign.{key} must be an object, got {other}")),
    }
}

/// Parses `{shape, dtype: "float32", data}`; data is a nested list matching the shape.
fn parse_tensor(tensors: &Map<String, Value>, name: &str) -> Result<HostTensor, String> {
    let entry = tensors
        .get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("missing tensor \"{name}\""))?;
    let shape: Vec<usize> = entry
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("tensor \"{name}\" has no shape list"))?
        .iter()
        .map(|dim| {
            dim.as_u64()
                .and_then(|dim| usize::try_from(dim).ok())
                .ok_or_else(|| format!("tensor \"{name}\" has an invalid dimension {dim}"))
        })
        .collect::<Result<_, _>>()?;
    if let Some(dtype) = entry.get("dtype")
        && dtype != "float32"
    {
        return Err(format!(
            "tensor \"{name}\" has dtype {dtype}; only float32 is supported"
        ));
    }
    let data = entry
        .get("data")
        .ok_or_else(|| format!("tensor \"{name}\" has no data"))?;
    let mut values = Vec::new();
    flatten_nested(data, &shape, &mut values)
        .map_err(|reason| format!("tensor \"{name}\": {reason}"))?;
    Ok(HostTensor::new(shape, values))
}

fn flatten_nested(data: &Value, shape: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
    match (shape.split_first(), data) {
        (None, Value::Number(number)) => {
            let value = number
                .as_f64()
                .ok_or_else(|| format!("{number} is not a number"))?;
            out.push(value as f32);
            Ok(())
        }
        (Some((&length, rest)), Value::Array(items)) => {
            if items.len() != length {
                return Err(format!(
                    "data has {} entries where the shape expects {length}",
                    items.len()
                ));
            }
            items
                .iter()
                .try_for_each(|item| flatten_nested(item, rest, out))
        }
        (None, other) => Err(format!("expected a number, got {other}")),
        (Some(_), other) => Err(format!("expected a list, got {other}")),
    }
}

/// Builds the output document: `result` and `result_tensors` with nested-list data. Each float32
/// is written as the shortest decimal of its exact double value, so it parses back exactly.
pub fn render_result(response: &TaskResponse) -> Value {
    let mut tensors = Map::new();
    for (name, tensor) in &response.tensors {
        tensors.insert(
            name.clone(),
            json!({
                "shape": tensor.shape,
                "dtype": "float32",
                "data": nest(&tensor.data, &tensor.shape),
            }),
        );
    }
    json!({
        "result": Value::Object(response.result.clone()),
        "result_tensors": Value::Object(tensors),
    })
}

fn nest(data: &[f32], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => data
            .first()
            .map_or(Value::Null, |&value| Value::from(f64::from(value))),
        Some((_, [])) => Value::Array(
            data.iter()
                .map(|&value| Value::from(f64::from(value)))
                .collect(),
        ),
        Some((&length, rest)) => {
            let stride = rest.iter().product::<usize>().max(1);
            Value::Array(
                (0..length)
                    .map(|index| nest(&data[index * stride..(index + 1) * stride], rest))
                    .collect(),
            )
        }
    }
}
