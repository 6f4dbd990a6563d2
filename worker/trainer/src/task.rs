//! Task input and output types, and the conversion of the task's JSON fields into a
//! training configuration with the reference worker's fallbacks and integer rules.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::activation::{Activation, DEFAULT_ACTIVATION_NAME, lookup_activation};
use crate::error::TrainerError;

/// A row-major float32 tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Creates a tensor; `data.len()` should equal the product of `shape`, which the
    /// trainer checks before use.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self { shape, data }
    }

    /// Number of elements the shape describes (1 for a 0-d tensor), or `None` on overflow.
    pub fn shape_elements(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |product, &dim| product.checked_mul(dim))
    }
}

/// One candidate task as the worker receives it, after its tensor frames are decoded.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// Top-level `candidate_index` of `task_assign`, raw (absent means 0).
    pub candidate_index: Option<Value>,
    pub candidate_data: Map<String, Value>,
    pub training_params: Map<String, Value>,
    /// Frame `candidate_input`, `[N, input_size]`.
    pub candidate_input: HostTensor,
    /// Frame `residual_error`, `[N]` or `[N, K]`.
    pub residual_error: HostTensor,
}

/// The outcome of one task.
#[derive(Debug, Clone)]
pub struct TaskResponse {
    /// The `task_result` fields except `type`, `task_id` and `tensor_manifest`, in the
    /// reference's key order: candidate_id, candidate_uuid, correlation, success,
    /// epochs_completed, activation_name, all_correlations, numerator, denominator,
    /// best_corr_idx, error_message. Integers stay JSON integers.
    pub result: Map<String, Value>,
    /// `weights` [D], `bias` [1], `norm_output` [N], `norm_error` [N], in that order;
    /// empty for a failure.
    pub tensors: Vec<(String, HostTensor)>,
    /// Time spent on initialisation and training, without any I/O.
    pub training_duration: Duration,
    pub epochs_completed: u64,
}

impl TaskResponse {
    /// Whether the result reports `success: true`.
    pub fn succeeded(&self) -> bool {
        self.result.get("success") == Some(&Value::Bool(true))
    }
}

/// Worker fallbacks for absent keys.
pub const DEFAULT_EPOCHS: i64 = 200;
pub const DEFAULT_LEARNING_RATE: f64 = 0.01;
pub const DEFAULT_RANDOM_VALUE_SCALE: f64 = 1.0;
pub const DEFAULT_SEQUENCE_MAX_VALUE: i64 = 1;
pub const DEFAULT_RANDOM_MAX_VALUE: i64 = 1;
/// Seed used when `candidate_seed` is absent or null, or when the derived seed is 0.
pub const DEFAULT_SEED: i128 = 42;
/// Roll bound used when `sequence_max_value` resolves to 0.
pub const FALLBACK_ROLL_BOUND: i128 = 10;
/// Largest seed numpy's legacy seeding accepts (the reference fails above it).
pub const MAX_SEED: i128 = 4_294_967_295;

/// The task's settings after fallbacks and conversions.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    pub input_size: usize,
    pub activation: Activation,
    /// Requested name when it was unknown and sigmoid is used instead.
    pub unknown_activation_name: Option<String>,
    pub random_value_scale: f64,
    /// Seed of all generators: candidate_seed + candidate_index (or the index alone when
    /// the seed is 0), with 0 replaced by 42.
    pub seed: u64,
    /// Upper bound of the discard-count draws (`sequence_max_value`, 0 replaced by 10).
    pub roll_bound: u64,
    /// Number of epochs; non-positive values run none.
    pub epochs: u64,
    pub learning_rate: f64,
}

impl TaskConfig {
    /// Resolves the request's fields, applying the reference worker's fallbacks and its
    /// integer conversions. The error names the field and the value.
    pub fn from_request(request: &TaskRequest) -> Result<Self, TrainerError> {
        let data = &request.candidate_data;
        let params = &request.training_params;

        let lookup = lookup_activation(data.get("activation_name"))?;

        let index = match request.candidate_index.as_ref() {
            None | Some(Value::Null) => 0,
            Some(value) => integer_like(value, "candidate_index")?,
        };
        let raw_seed = match data.get("candidate_seed") {
            None | Some(Value::Null) => DEFAULT_SEED,
            Some(value) => integer_like(value, "candidate_data.candidate_seed")?,
        };
        // The reference converts random_max_value although nothing uses it, so a bad
        // value still fails the task.
        match data.get("random_max_value") {
            None => i128::from(DEFAULT_RANDOM_MAX_VALUE),
            Some(value) => python_int(value, "candidate_data.random_max_value")?,
        };
        let sequence_max = match data.get("sequence_max_value") {
            None => i128::from(DEFAULT_SEQUENCE_MAX_VALUE),
            Some(value) => python_int(value, "candidate_data.sequence_max_value")?,
        };

        let input_size = match data.get("input_size") {
            None => {
                return Err(TrainerError::InvalidField {
                    field: "candidate_data.input_size",
                    reason: "is missing".to_owned(),
                });
            }
            Some(value) => positive_integer(value, "candidate_data.input_size")?,
        };
        let random_value_scale = match data.get("random_value_scale") {
            None => DEFAULT_RANDOM_VALUE_SCALE,
            Some(value) => number(value, "candidate_data.random_value_scale")?,
        };
        let epochs = match params.get("epochs") {
            None => DEFAULT_EPOCHS,
            Some(value) => json_integer(value, "training_params.epochs")?,
        };
        let learning_rate = match params.get("learning_rate") {
            None => DEFAULT_LEARNING_RATE,
            Some(value) => number(value, "training_params.learning_rate")?,
        };

        let seed = derive_seed(raw_seed, index)?;
        let roll_bound = derive_roll_bound(sequence_max)?;

        Ok(Self {
            input_size,
            activation: lookup.activation,
            unknown_activation_name: lookup.unknown_name,
            random_value_scale,
            seed,
            roll_bound,
            epochs: u64::try_from(epochs).unwrap_or(0),
            learning_rate,
        })
    }
}

/// Combines seed and index like the reference and checks the range numpy accepts.
pub fn derive_seed(seed: i128, index: i128) -> Result<u64, TrainerError> {
    let combined = if seed != 0 { seed + index } else { index };
    let combined = if combined != 0 {
        combined
    } else {
        DEFAULT_SEED
    };
    if !(0..=MAX_SEED).contains(&combined) {
        return Err(TrainerError::InvalidField {
            field: "candidate_data.candidate_seed",
            reason: format!(
                "plus candidate_index gives the seed {combined}, outside the accepted range 0 to \
                 {MAX_SEED}"
            ),
        });
    }
    Ok(combined as u64)
}

/// Applies the fallback for 0 and rejects bounds the reference's generators cannot use.
pub fn derive_roll_bound(sequence_max: i128) -> Result<u64, TrainerError> {
    let bound = if sequence_max != 0 {
        sequence_max
    } else {
        FALLBACK_ROLL_BOUND
    };
    if bound < 0 {
        return Err(TrainerError::InvalidField {
            field: "candidate_data.sequence_max_value",
            reason: format!(
                "must not be negative, got {bound} (empty range for randint(0, {bound}))"
            ),
        });
    }
    if bound > i128::from(i64::MAX) {
        return Err(TrainerError::InvalidField {
            field: "candidate_data.sequence_max_value",
            reason: format!("{bound} is too large for the int64 random draws"),
        });
    }
    Ok(bound as u64)
}

/// An integer-valued number: JSON integers, and floats without a fractional part (7.0).
/// Booleans, strings and fractional numbers are rejected.
pub fn integer_like(value: &Value, field: &'static str) -> Result<i128, TrainerError> {
    let invalid = |reason: String| TrainerError::InvalidField { field, reason };
    match value {
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                return Ok(i128::from(integer));
            }
            if let Some(integer) = number.as_u64() {
                return Ok(i128::from(integer));
            }
            let float = number.as_f64().unwrap_or(f64::NAN);
            float_to_integer(float)
                .filter(|_| float.fract() == 0.0)
                .ok_or_else(|| invalid(format!("must be an integer-valued number, got {number}")))
        }
        Value::Bool(_) => Err(invalid(format!(
            "must be an integer, not a boolean ({value})"
        ))),
        _ => Err(invalid(format!(
            "must be an integer-valued number, got {value}"
        ))),
    }
}

/// Python's `int()` applied to a JSON value: truncates floats (100.9 gives 100), parses
/// integer strings ("5", " -3 ", "1_000"), maps booleans to 0 and 1, and rejects null,
/// fractional strings, lists and objects.
pub fn python_int(value: &Value, field: &'static str) -> Result<i128, TrainerError> {
    let invalid = |reason: String| TrainerError::InvalidField { field, reason };
    match value {
        Value::Bool(flag) => Ok(i128::from(*flag)),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                return Ok(i128::from(integer));
            }
            if let Some(integer) = number.as_u64() {
                return Ok(i128::from(integer));
            }
            let float = number.as_f64().unwrap_or(f64::NAN);
            float_to_integer(float.trunc())
                .ok_or_else(|| invalid(format!("cannot be converted to an integer: {number}")))
        }
        Value::String(text) => parse_python_int_literal(text)
            .ok_or_else(|| invalid(format!("is not an integer string: {text:?}"))),
        Value::Null => Err(invalid(
            "must be convertible to an integer, got null".to_owned(),
        )),
        Value::Array(_) | Value::Object(_) => Err(invalid(format!(
            "must be convertible to an integer, got {value}"
        ))),
    }
}

fn float_to_integer(float: f64) -> Option<i128> {
    // 2^100 keeps every accepted value far inside i128.
    if float.is_finite() && float.abs() < 1.267_650_6e30 {
        Some(float as i128)
    } else {
        None
    }
}

/// Parses a decimal integer the way Python's `int(str)` does: surrounding whitespace,
/// an optional sign, and digits with single underscores between them.
fn parse_python_int_literal(text: &str) -> Option<i128> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first()? {
        b'-' => (true, &trimmed[1..]),
        b'+' => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut magnitude: i128 = 0;
    for character in digits.chars().filter(|&c| c != '_') {
        let digit = character.to_digit(10)?;
        magnitude = magnitude.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    Some(if negative { -magnitude } else { magnitude })
}

/// A JSON integer (not a float such as 400.0, not a boolean).
fn json_integer(value: &Value, field: &'static str) -> Result<i64, TrainerError> {
    match value {
        Value::Number(number) if number.is_i64() => Ok(number.as_i64().unwrap_or_default()),
        Value::Number(number) if number.is_u64() => Ok(i64::MAX),
        _ => Err(TrainerError::InvalidField {
            field,
            reason: format!("must be a JSON integer, got {value}"),
        }),
    }
}

fn positive_integer(value: &Value, field: &'static str) -> Result<usize, TrainerError> {
    let invalid = || TrainerError::InvalidField {
        field,
        reason: format!("must be a positive integer, got {value}"),
    };
    match value {
        Value::Number(number) => number
            .as_u64()
            .filter(|&size| size > 0)
            .and_then(|size| usize::try_from(size).ok())
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

fn number(value: &Value, field: &'static str) -> Result<f64, TrainerError> {
    match value {
        Value::Number(number) => number.as_f64().ok_or_else(|| TrainerError::InvalidField {
            field,
            reason: format!("is not a finite number: {number}"),
        }),
        _ => Err(TrainerError::InvalidField {
            field,
            reason: format!("must be a number, got {value}"),
        }),
    }
}

/// The candidate UUID as the result carries it: strings unchanged, absent or null as "",
/// and other values in Python's `str()` form.
pub fn uuid_text(candidate_data: &Map<String, Value>) -> String {
    match candidate_data.get("candidate_uuid") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(true)) => "True".to_owned(),
        Some(Value::Bool(false)) => "False".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// The `candidate_id` field: the raw `candidate_index`, 0 when absent.
pub fn candidate_id(candidate_index: Option<&Value>) -> Value {
    candidate_index.cloned().unwrap_or(Value::from(0))
}

/// Builds the single failure-result shape used by every failure path (invalid manifest,
/// bad frame, timeout, training error): candidate_id = raw candidate_index,
/// candidate_uuid as a string (default ""), correlation 0.0, success false,
/// epochs_completed 0, activation_name = the requested name if it is a string, else "",
/// all_correlations [], numerator 0.0, denominator 1.0, best_corr_idx -1,
/// error_message = `message`.
pub fn failure_result(
    candidate_index: Option<&Value>,
    candidate_data: &Map<String, Value>,
    message: &str,
) -> Map<String, Value> {
    let activation_name = match candidate_data.get("activation_name") {
        Some(Value::String(name)) => name.clone(),
        _ => String::new(),
    };
    let mut result = Map::new();
    result.insert("candidate_id".into(), candidate_id(candidate_index));
    result.insert(
        "candidate_uuid".into(),
        Value::from(uuid_text(candidate_data)),
    );
    result.insert("correlation".into(), Value::from(0.0));
    result.insert("success".into(), Value::from(false));
    result.insert("epochs_completed".into(), Value::from(0));
    result.insert("activation_name".into(), Value::from(activation_name));
    result.insert("all_correlations".into(), Value::Array(Vec::new()));
    result.insert("numerator".into(), Value::from(0.0));
    result.insert("denominator".into(), Value::from(1.0));
    result.insert("best_corr_idx".into(), Value::from(-1));
    result.insert("error_message".into(), Value::from(message));
    result
}

/// The `activation_name` of a successful result: the requested value as sent, or
/// "sigmoid" when the key is absent.
pub fn echoed_activation_name(candidate_data: &Map<String, Value>) -> Value {
    candidate_data
        .get("activation_name")
        .cloned()
        .unwrap_or_else(|| Value::from(DEFAULT_ACTIVATION_NAME))
}
