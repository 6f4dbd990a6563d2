//! Glue between the protocol and the trainer: a `task_assign` and its frames become a
//! [`TaskRequest`], the trainer's [`TaskResponse`] becomes a `task_result` and its frames.
//! Every problem on the way becomes a failure result for the same task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cascor_protocol::{EncodedResult, PairingError, ResultTensor, TaskAssign, encode_task_result};
use cascor_trainer::{HostTensor, RunOptions, TaskRequest, TaskResponse, Trainer, failure_result};
use serde_json::{Map, Value};

use crate::agent::observer::TaskOutcome;

/// A `task_assign` with the binary frames received after it.
#[derive(Debug)]
pub struct PendingTask {
    pub assign: TaskAssign,
    pub frames: Vec<Bytes>,
    /// When the `task_assign` arrived; task durations are measured from here.
    pub received_at: Instant,
}

/// Why a pending task cannot be trained, with the label counted by the observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Fixed label: `invalid_manifest` or `bad_frame`.
    pub reason: &'static str,
    /// Text for the failure result's `error_message`.
    pub message: String,
}

/// A finished task, ready to be sent.
#[derive(Debug)]
pub struct CompletedTask {
    pub task_id: String,
    pub encoded: EncodedResult,
    pub outcome: TaskOutcome,
    pub rejection: Option<Rejection>,
    pub training_duration: Option<Duration>,
    pub epochs_completed: u64,
    /// `correlation` of the result, for the log line.
    pub correlation: f64,
}

impl CompletedTask {
    pub fn succeeded(&self) -> bool {
        self.outcome == TaskOutcome::Success
    }
}

/// Checks the manifest and decodes the frames into a trainer request.
pub fn build_request(task: &PendingTask) -> Result<TaskRequest, Rejection> {
    let assign = &task.assign;
    let manifest = assign.manifest.as_ref().map_err(|error| Rejection {
        reason: "invalid_manifest",
        message: error.to_string(),
    })?;

    let tensors = manifest
        .decode_task_tensors(&task.frames)
        .map_err(|error| Rejection {
            reason: match error {
                PairingError::FrameCount { .. } => "frame_count",
                PairingError::Frame { .. } | PairingError::Mismatch { .. } => "bad_frame",
            },
            message: format!("Invalid tensor frames: {error}"),
        })?;

    Ok(TaskRequest {
        candidate_index: assign.candidate_index.clone(),
        candidate_data: assign.candidate_data.clone(),
        training_params: assign.training_params.clone(),
        candidate_input: HostTensor::new(
            tensors.candidate_input.shape,
            tensors.candidate_input.data,
        ),
        residual_error: HostTensor::new(tensors.residual_error.shape, tensors.residual_error.data),
    })
}

/// Formats a timeout as the reference does (`3600` for whole seconds), keeping the
/// fraction of shorter limits.
pub fn timeout_message(timeout: Duration) -> String {
    let seconds = timeout.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("Task timed out after {seconds:.0}s")
    } else {
        format!("Task timed out after {seconds}s")
    }
}

/// Encodes a failure result for `assign` with `message`.
pub fn encode_failure(assign: &TaskAssign, message: &str) -> EncodedResult {
    let result = failure_result(
        assign.candidate_index.as_ref(),
        &assign.candidate_data,
        message,
    );
    match encode_task_result(&assign.task_id, &result, &[]) {
        Ok(encoded) => encoded,
        Err(error) => {
            // A failure result has no tensors and a cut error_message, so only an absurd
            // candidate_uuid or activation_name can make it too large. Send the bare shape.
            tracing::error!(task_id = %assign.task_id, error = %error, "failure result cannot be encoded");
            let result = failure_result(None, &Map::new(), message);
            encode_task_result(&assign.task_id, &result, &[]).unwrap_or_else(|_| EncodedResult {
                text: String::new(),
                frames: Vec::new(),
            })
        }
    }
}

/// Encodes the trainer's response; a response that cannot be encoded becomes a failure.
pub fn encode_response(
    assign: &TaskAssign,
    response: &TaskResponse,
) -> Result<EncodedResult, String> {
    let tensors: Vec<ResultTensor<'_>> = response
        .tensors
        .iter()
        .map(|(name, tensor)| ResultTensor {
            name,
            shape: &tensor.shape,
            data: &tensor.data,
        })
        .collect();
    encode_task_result(&assign.task_id, &response.result, &tensors)
        .map_err(|error| format!("Result could not be encoded: {error}"))
}

fn correlation_of(result: &Map<String, Value>) -> f64 {
    result
        .get("correlation")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// Runs one task: validation and decoding, then training on a blocking thread bounded by
/// `timeout`. Never fails: every problem becomes a failure result.
///
/// A task that times out keeps running on its blocking thread until the trainer returns,
/// because libtorch computations cannot be interrupted; its result is discarded.
pub async fn execute(trainer: Arc<Trainer>, task: PendingTask, timeout: Duration) -> CompletedTask {
    let task_id = task.assign.task_id.clone();
    let assign = task.assign.clone();

    // The trainer stops at the first epoch after the timeout, so a task whose failure
    // result is already sent does not keep the CPU from the next one.
    let options = RunOptions {
        deadline: Instant::now().checked_add(timeout),
        ..RunOptions::default()
    };
    let training = tokio::task::spawn_blocking(move || {
        let request = build_request(&task)?;
        drop(task);
        Ok::<_, Rejection>(trainer.run_with(&request, &options))
    });

    let response = match tokio::time::timeout(timeout, training).await {
        Ok(Ok(Ok(response))) => response,
        Ok(Ok(Err(rejection))) => {
            tracing::error!(task_id = %task_id, reason = rejection.reason, "{}", rejection.message);
            return CompletedTask {
                encoded: encode_failure(&assign, &rejection.message),
                task_id,
                outcome: TaskOutcome::Failure,
                rejection: Some(rejection),
                training_duration: None,
                epochs_completed: 0,
                correlation: 0.0,
            };
        }
        Ok(Err(join_error)) => {
            let message = format!("Training failed: the training thread panicked: {join_error}");
            tracing::error!(task_id = %task_id, "{message}");
            return failed(task_id, &assign, message, TaskOutcome::Failure);
        }
        Err(_elapsed) => {
            let message = timeout_message(timeout);
            tracing::error!(task_id = %task_id, "Task {task_id} timed out after {:.0}s", timeout.as_secs_f64());
            return failed(task_id, &assign, message, TaskOutcome::Timeout);
        }
    };

    match encode_response(&assign, &response) {
        Ok(encoded) => CompletedTask {
            task_id,
            encoded,
            outcome: if response.succeeded() {
                TaskOutcome::Success
            } else {
                TaskOutcome::Failure
            },
            rejection: None,
            training_duration: Some(response.training_duration),
            epochs_completed: response.epochs_completed,
            correlation: correlation_of(&response.result),
        },
        Err(message) => {
            tracing::error!(task_id = %task_id, "{message}");
            failed(task_id, &assign, message, TaskOutcome::Failure)
        }
    }
}

fn failed(
    task_id: String,
    assign: &TaskAssign,
    message: String,
    outcome: TaskOutcome,
) -> CompletedTask {
    CompletedTask {
        encoded: encode_failure(assign, &message),
        task_id,
        outcome,
        rejection: None,
        training_duration: None,
        epochs_completed: 0,
        correlation: 0.0,
    }
}
