//! Codec for the juniper-cascor `/ws/v1/workers` protocol: JSON text messages and binary
//! tensor frames. Pure functions over bytes and strings; no I/O.
//!
//! A session: the server sends `connection_established`, the worker `register`, the
//! server `registration_ack`. Then the worker sends `heartbeat`s and the server may send
//! `task_assign` followed by one binary frame per `tensor_manifest` entry; the worker
//! replies to each task with one `task_result` and its frames, acknowledged by `result_ack`.

pub mod frame;
mod json_kind;
pub mod manifest;
pub mod message;

pub use frame::{
    Dtype, FrameError, FrameHeader, MAX_DTYPE_LEN, MAX_ELEMENTS, MAX_NDIM, Tensor, decode_frame,
    decode_header, encode_frame,
};
pub use json_kind::{json_kind, python_type_name};
pub use manifest::{
    CANDIDATE_INPUT, InvalidTask, ManifestEntry, PairingError, RESIDUAL_ERROR, TaskTensors,
    TensorManifest,
};
pub use message::{
    AckStatus, EncodeError, EncodedResult, Heartbeat, InvalidWorkerId, MAX_ERROR_MESSAGE_CHARS,
    MAX_TEXT_CHARS, MessageError, ResultTensor, ServerMessage, TaskAssign, decode_server_message,
    encode_register, encode_task_result, validate_worker_id,
};

/// Path of the worker endpoint on the server.
pub const WORKER_ENDPOINT_PATH: &str = "/ws/v1/workers";
/// Maximum size of one inbound WebSocket message: a 100 MiB tensor frame plus room for
/// its header.
pub const MAX_INBOUND_MESSAGE_BYTES: usize = 100 * 1024 * 1024 + 64 * 1024;
