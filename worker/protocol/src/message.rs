//! JSON text messages of the `/ws/v1/workers` endpoint.

use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::frame::{self, FrameError};
use crate::json_kind::json_kind;
use crate::manifest::{self, InvalidTask, TensorManifest};

/// Maximum length of a text message the server accepts, in characters. The server replies
/// to longer results with `Message too large` and never acknowledges them.
pub const MAX_TEXT_CHARS: usize = 65_536;
/// `error_message` values longer than this many characters are cut, so that a result
/// stays far below [`MAX_TEXT_CHARS`].
pub const MAX_ERROR_MESSAGE_CHARS: usize = 8_192;

/// Error decoding an inbound text message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("message is not valid JSON: {reason}")]
    InvalidJson { reason: String },
    #[error("message is a JSON {found}, expected an object")]
    NotAnObject { found: &'static str },
    #[error("message has no \"type\" field")]
    MissingType,
    #[error("message field \"type\" is a JSON {found}, expected a string")]
    TypeNotString { found: &'static str },
    #[error("{message_type} field {field:?} must be {expected}, got {found}")]
    Field {
        message_type: &'static str,
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

/// Status of a `result_ack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    Accepted,
    Rejected,
    /// A status this worker does not know, kept verbatim.
    Other(String),
}

/// A `task_assign` message. The binary frames that follow it are not part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAssign {
    /// Echoed in the result; `""` when absent, as the reference worker does.
    pub task_id: String,
    pub round_id: Option<String>,
    /// Echoed raw as the result's `candidate_id`.
    pub candidate_index: Option<Value>,
    pub candidate_data: Map<String, Value>,
    pub training_params: Map<String, Value>,
    /// Number of binary frames that follow: the entry count of `tensor_manifest` when it
    /// is an object, otherwise 0.
    pub frame_count: usize,
    /// The validated manifest, or why this task cannot be trained. An invalid task still
    /// gets a failure result, after its `frame_count` frames are drained.
    pub manifest: Result<TensorManifest, InvalidTask>,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    ConnectionEstablished {
        channel: Option<String>,
    },
    RegistrationAck {
        /// Server-assigned id of this connection, `worker-` and 12 hex digits.
        worker_id: String,
        /// Echo of the id the worker proposed.
        client_name: Option<String>,
    },
    /// Reply to a worker heartbeat.
    Heartbeat,
    TaskAssign(Box<TaskAssign>),
    ResultAck {
        task_id: Option<String>,
        status: AckStatus,
    },
    Error {
        error: String,
        details: Option<String>,
    },
    /// Reserved by the protocol; neither side sends it.
    TokenRefresh,
    /// A type this worker does not know.
    Unknown {
        message_type: String,
    },
}

impl ServerMessage {
    /// Returns the message's `type` string.
    pub fn type_name(&self) -> &str {
        match self {
            Self::ConnectionEstablished { .. } => "connection_established",
            Self::RegistrationAck { .. } => "registration_ack",
            Self::Heartbeat => "heartbeat",
            Self::TaskAssign(_) => "task_assign",
            Self::ResultAck { .. } => "result_ack",
            Self::Error { .. } => "error",
            Self::TokenRefresh => "token_refresh",
            Self::Unknown { message_type } => message_type,
        }
    }
}

/// Decodes one text message from the server.
pub fn decode_server_message(text: &str) -> Result<ServerMessage, MessageError> {
    let value: Value = serde_json::from_str(text).map_err(|error| MessageError::InvalidJson {
        reason: error.to_string(),
    })?;
    let Value::Object(object) = value else {
        return Err(MessageError::NotAnObject {
            found: json_kind(&value),
        });
    };
    let message_type = match object.get("type") {
        None => return Err(MessageError::MissingType),
        Some(Value::String(message_type)) => message_type.clone(),
        Some(other) => {
            return Err(MessageError::TypeNotString {
                found: json_kind(other),
            });
        }
    };

    let fields = Fields {
        message_type: "",
        object: &object,
    };
    match message_type.as_str() {
        "connection_established" => {
            let data = Fields {
                message_type: "connection_established",
                ..fields
            }
            .optional_object("data")?;
            let channel = match data.and_then(|data| data.get("channel")) {
                Some(Value::String(channel)) => Some(channel.clone()),
                _ => None,
            };
            Ok(ServerMessage::ConnectionEstablished { channel })
        }
        "registration_ack" => {
            let fields = Fields {
                message_type: "registration_ack",
                ..fields
            };
            let worker_id = fields.required_string("worker_id")?;
            let client_name = match fields.optional_object("data")? {
                Some(data) => match data.get("client_name") {
                    Some(Value::String(name)) => Some(name.clone()),
                    _ => None,
                },
                None => None,
            };
            Ok(ServerMessage::RegistrationAck {
                worker_id,
                client_name,
            })
        }
        "heartbeat" => Ok(ServerMessage::Heartbeat),
        "task_assign" => decode_task_assign(Fields {
            message_type: "task_assign",
            ..fields
        })
        .map(|task| ServerMessage::TaskAssign(Box::new(task))),
        "result_ack" => {
            let fields = Fields {
                message_type: "result_ack",
                ..fields
            };
            let task_id = fields.optional_string("task_id")?;
            let status = match fields.required_string("status")?.as_str() {
                "accepted" => AckStatus::Accepted,
                "rejected" => AckStatus::Rejected,
                other => AckStatus::Other(other.to_owned()),
            };
            Ok(ServerMessage::ResultAck { task_id, status })
        }
        "error" => {
            let fields = Fields {
                message_type: "error",
                ..fields
            };
            Ok(ServerMessage::Error {
                error: fields.required_string("error")?,
                details: fields.optional_string("details")?,
            })
        }
        "token_refresh" => Ok(ServerMessage::TokenRefresh),
        _ => Ok(ServerMessage::Unknown { message_type }),
    }
}

/// Decodes a `task_assign`. Only a non-string `task_id` makes the message undecodable;
/// every other problem is kept in [`TaskAssign::manifest`] so that the worker can still
/// answer with a failure result for the right task.
fn decode_task_assign(fields: Fields<'_>) -> Result<TaskAssign, MessageError> {
    let task_id = fields.optional_string("task_id")?.unwrap_or_default();
    let round_id = match fields.object.get("round_id") {
        Some(Value::String(round_id)) => Some(round_id.clone()),
        _ => None,
    };
    let candidate_index = fields.object.get("candidate_index").cloned();

    let mut problem = None;
    let mut object_field = |name: &'static str| match fields.object.get(name) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            problem.get_or_insert(InvalidTask::Field {
                field: name,
                expected: "an object",
                found: json_kind(other),
            });
            Map::new()
        }
    };
    let candidate_data = object_field("candidate_data");
    let training_params = object_field("training_params");

    let raw_manifest = fields
        .object
        .get("tensor_manifest")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let frame_count = raw_manifest.as_object().map_or(0, Map::len);
    let manifest = match problem {
        Some(problem) => Err(problem),
        None => TensorManifest::from_value(&raw_manifest),
    };

    Ok(TaskAssign {
        task_id,
        round_id,
        candidate_index,
        candidate_data,
        training_params,
        frame_count,
        manifest,
    })
}

/// Typed access to the fields of one message object.
#[derive(Clone, Copy)]
struct Fields<'a> {
    message_type: &'static str,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn wrong_type(
        &self,
        field: &'static str,
        expected: &'static str,
        value: &Value,
    ) -> MessageError {
        MessageError::Field {
            message_type: self.message_type,
            field,
            expected,
            found: json_kind(value),
        }
    }

    fn required_string(&self, field: &'static str) -> Result<String, MessageError> {
        match self.object.get(field) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(other) => Err(self.wrong_type(field, "a string", other)),
            None => Err(self.wrong_type(field, "a string", &Value::Null)),
        }
    }

    fn optional_string(&self, field: &'static str) -> Result<Option<String>, MessageError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(other) => Err(self.wrong_type(field, "a string", other)),
        }
    }

    fn optional_object(
        &self,
        field: &'static str,
    ) -> Result<Option<&'a Map<String, Value>>, MessageError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(field, "an object", other)),
        }
    }
}

/// Error for a worker id that does not match the server's pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid worker id {worker_id:?}: expected 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit"
)]
pub struct InvalidWorkerId {
    pub worker_id: String,
}

/// Checks a worker id against the server's pattern `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
pub fn validate_worker_id(worker_id: &str) -> Result<(), InvalidWorkerId> {
    let bytes = worker_id.as_bytes();
    let valid = match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric()
                && rest.len() <= 63
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(InvalidWorkerId {
            worker_id: worker_id.to_owned(),
        })
    }
}

/// Encodes the `register` message.
pub fn encode_register(worker_id: &str, capabilities: &Map<String, Value>) -> String {
    let mut message = Map::new();
    message.insert("type".to_owned(), Value::from("register"));
    message.insert("worker_id".to_owned(), Value::from(worker_id));
    message.insert(
        "capabilities".to_owned(),
        Value::Object(capabilities.clone()),
    );
    Value::Object(message).to_string()
}

/// The worker's heartbeat, with the reference worker's fields in its key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    #[serde(rename = "type")]
    pub message_type: &'static str,
    pub worker_id: String,
    /// Unix time in seconds.
    pub timestamp: f64,
    /// 0 or 1.
    pub in_flight_tasks: u32,
    /// Unix time in seconds at which the last task ended, whatever its outcome.
    pub last_task_completed_at: Option<f64>,
    /// Peak resident set size of the process in MiB.
    pub rss_mb: f64,
    /// Tasks whose result reported success.
    pub tasks_completed: u64,
    /// Every other finished task.
    pub tasks_failed: u64,
    pub last_task_duration_seconds: Option<f64>,
    /// The last 16 task durations at most, oldest first.
    pub recent_task_durations_seconds: Vec<f64>,
    /// Utilisation of GPU 0 in percent, when known.
    pub gpu_utilization_pct: Option<f64>,
}

impl Heartbeat {
    /// Encodes the heartbeat as a JSON text message. Non-finite numbers become `null`.
    pub fn to_json(&self) -> String {
        // Serialising a struct of plain numbers, strings and vectors into a String
        // cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A named float32 result tensor, row-major.
#[derive(Debug, Clone, Copy)]
pub struct ResultTensor<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// A `task_result` text message and its binary frames, to be sent as one group.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedResult {
    pub text: String,
    pub frames: Vec<Vec<u8>>,
}

/// Error encoding a result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("result tensor {name:?}: {source}")]
    Frame { name: String, source: FrameError },
    #[error(
        "task_result text is {chars} characters, more than the server's limit of {MAX_TEXT_CHARS}"
    )]
    TextTooLarge { chars: usize },
}

/// Encodes a `task_result`: `type`, `task_id`, the `result` fields in their order (any
/// `type`, `task_id` or `tensor_manifest` key in `result` is ignored), then a
/// `tensor_manifest` describing `tensors`, followed by one frame per tensor.
/// `error_message` is cut to [`MAX_ERROR_MESSAGE_CHARS`] characters.
pub fn encode_task_result(
    task_id: &str,
    result: &Map<String, Value>,
    tensors: &[ResultTensor<'_>],
) -> Result<EncodedResult, EncodeError> {
    let mut message = Map::new();
    message.insert("type".to_owned(), Value::from("task_result"));
    message.insert("task_id".to_owned(), Value::from(task_id));
    for (key, value) in result {
        match key.as_str() {
            "type" | "task_id" | "tensor_manifest" => {}
            "error_message" => {
                message.insert(key.clone(), truncate_error_message(value));
            }
            _ => {
                message.insert(key.clone(), value.clone());
            }
        }
    }
    message.insert(
        "tensor_manifest".to_owned(),
        manifest::result_manifest(tensors.iter().map(|tensor| (tensor.name, tensor.shape))),
    );

    let text = Value::Object(message).to_string();
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(EncodeError::TextTooLarge { chars });
    }

    let frames = tensors
        .iter()
        .map(|tensor| {
            frame::encode_frame(tensor.shape, tensor.data).map_err(|source| EncodeError::Frame {
                name: tensor.name.to_owned(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(EncodedResult { text, frames })
}

fn truncate_error_message(value: &Value) -> Value {
    match value {
        Value::String(text) if text.chars().count() > MAX_ERROR_MESSAGE_CHARS => {
            let mut cut: String = text.chars().take(MAX_ERROR_MESSAGE_CHARS - 1).collect();
            cut.push('…');
            Value::String(cut)
        }
        other => other.clone(),
    }
}
