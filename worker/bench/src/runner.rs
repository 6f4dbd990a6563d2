//! Timed runs of one benchmark case.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use cascor_trainer::{CpuBackend, RunOptions, TaskResponse, Trainer};
use serde::Serialize;
use serde_json::Value;

use crate::plan::{Case, PlanError, with_epochs};

/// Epochs of the untimed run that precedes the timed repetitions of each input size.
pub const WARM_UP_EPOCHS: u64 = 5;

/// Errors while running a case.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("case {id}: the task failed: {message}")]
    TaskFailed { id: String, message: String },
}

/// Timings of one case, one entry per repetition; `scripts/bench.py` reads these fields.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    pub id: String,
    /// Wall time of `Trainer::run_with` (initialisation, training, final evaluation).
    pub seconds: Vec<f64>,
    pub epochs_completed: Vec<u64>,
    pub correlation: Vec<f64>,
    /// `TaskResponse::training_duration` as the trainer measures it.
    pub training_seconds: Vec<f64>,
}

/// Runs the repetitions of `case`, preceded by a short warm-up the first time its size is seen.
pub fn run_case(
    trainer: &Trainer,
    case: &Case,
    folder: &Path,
    backend: CpuBackend,
    warmed_up: &mut HashSet<String>,
) -> Result<CaseRecord, RunError> {
    let request = case.request(folder)?;
    let options = RunOptions {
        early_stopping: case.early_stopping,
        cpu_backend: backend,
        deadline: None,
    };

    if warmed_up.insert(case.size.clone()) {
        let warm_up = with_epochs(&request, WARM_UP_EPOCHS);
        check_success(case, &trainer.run_with(&warm_up, &options))?;
    }

    let mut record = CaseRecord {
        id: case.id.clone(),
        seconds: Vec::with_capacity(case.native_repetitions),
        epochs_completed: Vec::with_capacity(case.native_repetitions),
        correlation: Vec::with_capacity(case.native_repetitions),
        training_seconds: Vec::with_capacity(case.native_repetitions),
    };
    for _ in 0..case.native_repetitions {
        let started = Instant::now();
        let response = trainer.run_with(&request, &options);
        let seconds = started.elapsed().as_secs_f64();

        check_success(case, &response)?;
        record.seconds.push(seconds);
        record.epochs_completed.push(response.epochs_completed);
        record.correlation.push(
            response
                .result
                .get("correlation")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
        );
        record
            .training_seconds
            .push(response.training_duration.as_secs_f64());
    }
    Ok(record)
}

fn check_success(case: &Case, response: &TaskResponse) -> Result<(), RunError> {
    if response.succeeded() {
        return Ok(());
    }
    let message = response
        .result
        .get("error_message")
        .and_then(Value::as_str)
        .unwrap_or("no error message")
        .to_owned();
    Err(RunError::TaskFailed {
        id: case.id.clone(),
        message,
    })
}
