//! Decoding of server messages and encoding of worker messages.

use cascor_protocol::{
    AckStatus, InvalidTask, MAX_ERROR_MESSAGE_CHARS, MAX_TEXT_CHARS, MessageError, PairingError,
    ResultTensor, ServerMessage, TaskAssign, TensorManifest, decode_server_message, encode_frame,
    encode_register, encode_task_result, validate_worker_id,
};
use serde_json::{Map, Value, json};

fn task_assign(manifest: Value) -> TaskAssign {
    let text = json!({
        "type": "task_assign",
        "task_id": "b3c1e0d2",
        "round_id": "0a9d6f3e",
        "candidate_index": 7,
        "candidate_data": {"input_size": 2, "activation_name": "Tanh"},
        "training_params": {"epochs": 1, "learning_rate": 0.1},
        "tensor_manifest": manifest,
    })
    .to_string();
    match decode_server_message(&text).unwrap() {
        ServerMessage::TaskAssign(task) => *task,
        other => panic!("decoded as {other:?}"),
    }
}

fn server_manifest() -> Value {
    json!({
        "candidate_input": {"shape": [4, 2], "dtype": "float32"},
        "y": {"shape": [4, 2], "dtype": "float32"},
        "residual_error": {"shape": [4, 2], "dtype": "float32"},
    })
}

#[test]
fn connection_established_decodes() {
    let message =
        decode_server_message(r#"{"type":"connection_established","data":{"channel":"workers"}}"#)
            .unwrap();

    assert_eq!(
        message,
        ServerMessage::ConnectionEstablished {
            channel: Some("workers".to_owned())
        }
    );
}

#[test]
fn registration_ack_keeps_server_id() {
    let message = decode_server_message(
        r#"{"type":"registration_ack","worker_id":"worker-5e1f0c9ab2d4","data":{"status":"registered","client_name":"abc"}}"#,
    )
    .unwrap();

    assert_eq!(
        message,
        ServerMessage::RegistrationAck {
            worker_id: "worker-5e1f0c9ab2d4".to_owned(),
            client_name: Some("abc".to_owned()),
        }
    );
}

#[test]
fn registration_ack_without_id_is_rejected() {
    let error = decode_server_message(r#"{"type":"registration_ack","worker_id":5}"#).unwrap_err();

    assert_eq!(
        error,
        MessageError::Field {
            message_type: "registration_ack",
            field: "worker_id",
            expected: "a string",
            found: "integer",
        }
    );
}

#[test]
fn envelope_errors_are_distinguished() {
    assert!(matches!(
        decode_server_message("{not json").unwrap_err(),
        MessageError::InvalidJson { .. }
    ));
    assert_eq!(
        decode_server_message("[1,2]").unwrap_err(),
        MessageError::NotAnObject { found: "array" }
    );
    assert_eq!(
        decode_server_message(r#"{"data":1}"#).unwrap_err(),
        MessageError::MissingType
    );
    assert_eq!(
        decode_server_message(r#"{"type":1.5}"#).unwrap_err(),
        MessageError::TypeNotString { found: "number" }
    );
}

#[test]
fn result_ack_and_error_decode() {
    let ack = decode_server_message(r#"{"type":"result_ack","task_id":"t1","status":"rejected"}"#)
        .unwrap();
    assert_eq!(
        ack,
        ServerMessage::ResultAck {
            task_id: Some("t1".to_owned()),
            status: AckStatus::Rejected
        }
    );

    let ack = decode_server_message(r#"{"type":"result_ack","task_id":null,"status":"accepted"}"#)
        .unwrap();
    assert_eq!(
        ack,
        ServerMessage::ResultAck {
            task_id: None,
            status: AckStatus::Accepted
        }
    );

    let error = decode_server_message(
        r#"{"type":"error","error":"Message too large","timestamp":1.0,"details":"x"}"#,
    )
    .unwrap();
    assert_eq!(
        error,
        ServerMessage::Error {
            error: "Message too large".to_owned(),
            details: Some("x".to_owned())
        }
    );
}

#[test]
fn unknown_and_reserved_types_decode() {
    assert_eq!(
        decode_server_message(r#"{"type":"token_refresh"}"#).unwrap(),
        ServerMessage::TokenRefresh
    );
    assert_eq!(
        decode_server_message(r#"{"type":"surprise"}"#).unwrap(),
        ServerMessage::Unknown {
            message_type: "surprise".to_owned()
        }
    );
}

#[test]
fn task_assign_keeps_fields_and_manifest_order() {
    let task = task_assign(server_manifest());

    assert_eq!(task.task_id, "b3c1e0d2");
    assert_eq!(task.round_id.as_deref(), Some("0a9d6f3e"));
    assert_eq!(task.candidate_index, Some(json!(7)));
    assert_eq!(task.candidate_data["input_size"], json!(2));
    assert_eq!(task.training_params["epochs"], json!(1));
    assert_eq!(task.frame_count, 3);
    let names: Vec<&str> = task
        .manifest
        .as_ref()
        .unwrap()
        .entries()
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(names, ["candidate_input", "y", "residual_error"]);
}

#[test]
fn manifest_order_is_document_order() {
    // Keys deliberately out of alphabetical order.
    let manifest = TensorManifest::from_value(&json!({
        "residual_error": {"shape": [1, 1], "dtype": "float32"},
        "zeta": {"shape": [1], "dtype": "float32"},
        "candidate_input": {"shape": [1, 2], "dtype": "float32"},
    }))
    .unwrap();
    let frames = vec![
        encode_frame(&[1, 1], &[0.5]).unwrap(),
        encode_frame(&[1], &[9.0]).unwrap(),
        encode_frame(&[1, 2], &[1.0, 2.0]).unwrap(),
    ];

    let tensors = manifest.decode_task_tensors(&frames).unwrap();

    assert_eq!(tensors.residual_error.data, vec![0.5]);
    assert_eq!(tensors.candidate_input.data, vec![1.0, 2.0]);
}

#[test]
fn invalid_manifests_use_reference_wording() {
    let cases = [
        (
            json!([1]),
            "Tensor manifest invalid: manifest is not a dict (got list)",
            0,
        ),
        (json!({}), "Tensor manifest invalid: manifest is empty", 0),
        (
            json!({"y": {"shape": [1], "dtype": "float32"}}),
            "Tensor manifest invalid: manifest missing required tensor(s): ['candidate_input', 'residual_error']",
            1,
        ),
        (
            json!({"candidate_input": {"shape": [1], "dtype": "float32"}, "y": {}}),
            "Tensor manifest invalid: manifest missing required tensor(s): ['residual_error']",
            2,
        ),
    ];
    for (manifest, message, frames) in cases {
        let task = task_assign(manifest);
        assert_eq!(task.manifest.unwrap_err().to_string(), message);
        assert_eq!(task.frame_count, frames);
    }
}

#[test]
fn malformed_manifest_entries_are_rejected() {
    let mut manifest = server_manifest();
    manifest["y"] = json!({"shape": [4, -2], "dtype": "float32"});
    let error = task_assign(manifest).manifest.unwrap_err();
    assert!(
        matches!(&error, InvalidTask::ManifestDimension { name, .. } if name == "y"),
        "{error:?}"
    );

    let mut manifest = server_manifest();
    manifest["y"] = json!({"shape": [4, 2], "dtype": ">f4"});
    let error = task_assign(manifest).manifest.unwrap_err();
    assert!(
        matches!(&error, InvalidTask::ManifestDtype { name, .. } if name == "y"),
        "{error:?}"
    );

    let mut manifest = server_manifest();
    manifest["y"] = json!("float32");
    let error = task_assign(manifest).manifest.unwrap_err();
    assert!(
        matches!(&error, InvalidTask::ManifestEntry { name, .. } if name == "y"),
        "{error:?}"
    );
}

#[test]
fn non_object_candidate_data_is_a_task_error() {
    let text = json!({
        "type": "task_assign", "task_id": "t", "candidate_data": [1],
        "tensor_manifest": server_manifest(),
    })
    .to_string();
    let ServerMessage::TaskAssign(task) = decode_server_message(&text).unwrap() else {
        panic!("not a task");
    };

    assert_eq!(
        task.manifest.unwrap_err(),
        InvalidTask::Field {
            field: "candidate_data",
            expected: "an object",
            found: "array"
        }
    );
    // The frames are still counted, so that they can be drained.
    assert_eq!(task.frame_count, 3);
}

#[test]
fn task_id_defaults_to_empty_and_must_be_string() {
    let text = json!({"type": "task_assign", "tensor_manifest": {}}).to_string();
    let ServerMessage::TaskAssign(task) = decode_server_message(&text).unwrap() else {
        panic!("not a task");
    };
    assert_eq!(task.task_id, "");

    let text = json!({"type": "task_assign", "task_id": 3}).to_string();
    assert!(matches!(
        decode_server_message(&text).unwrap_err(),
        MessageError::Field {
            field: "task_id",
            ..
        }
    ));
}

#[test]
fn frames_must_match_declared_shape() {
    let manifest = task_assign(server_manifest()).manifest.unwrap();
    let frames = vec![
        encode_frame(&[4, 2], &[0.0; 8]).unwrap(),
        encode_frame(&[4, 2], &[0.0; 8]).unwrap(),
        encode_frame(&[2, 4], &[0.0; 8]).unwrap(),
    ];

    let error = manifest.decode_task_tensors(&frames).unwrap_err();

    assert!(
        matches!(&error, PairingError::Mismatch { name, frame_shape, .. } if name == "residual_error" && frame_shape == &vec![2, 4]),
        "{error:?}"
    );
}

#[test]
fn bad_frame_is_named_in_pairing_error() {
    let manifest = task_assign(server_manifest()).manifest.unwrap();
    let mut bad = encode_frame(&[4, 2], &[0.0; 8]).unwrap();
    bad.truncate(20);
    let frames = vec![encode_frame(&[4, 2], &[0.0; 8]).unwrap(), bad, vec![]];

    let error = manifest.decode_task_tensors(&frames).unwrap_err();

    assert!(
        matches!(&error, PairingError::Frame { name, .. } if name == "y"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"y\""), "{error}");
}

#[test]
fn register_message_has_reference_shape() {
    let mut capabilities = Map::new();
    capabilities.insert("cpu_cores".to_owned(), json!(16));
    capabilities.insert("gpu".to_owned(), json!(false));

    let text = encode_register("3f6c2a7e-9b1d", &capabilities);

    assert_eq!(
        text,
        r#"{"type":"register","worker_id":"3f6c2a7e-9b1d","capabilities":{"cpu_cores":16,"gpu":false}}"#
    );
}

#[test]
fn worker_id_pattern_is_enforced() {
    for valid in [
        "a",
        "3f6c2a7e-9b1d-4c55-8e0a-2d7b9c41f0aa",
        &"x".repeat(64),
        "A_b-9",
    ] {
        assert!(validate_worker_id(valid).is_ok(), "{valid}");
    }
    for invalid in ["", "-a", "_a", &"x".repeat(65), "a b", "a.b", "ä"] {
        assert!(validate_worker_id(invalid).is_err(), "{invalid}");
    }
}

fn success_result() -> Map<String, Value> {
    let value = json!({
        "candidate_id": 7, "candidate_uuid": "c7e2", "correlation": 0.9845103,
        "success": true, "epochs_completed": 1, "activation_name": "Tanh",
        "all_correlations": [0.9845103, 0.9520615], "numerator": -0.29, "denominator": 0.29,
        "best_corr_idx": 0, "error_message": null,
    });
    value.as_object().unwrap().clone()
}

#[test]
fn task_result_keeps_key_order_and_integers() {
    let weights = [0.2f32, -0.3];
    let bias = [0.1f32];
    let tensors = [
        ResultTensor {
            name: "weights",
            shape: &[2],
            data: &weights,
        },
        ResultTensor {
            name: "bias",
            shape: &[1],
            data: &bias,
        },
    ];

    let encoded = encode_task_result("b3c1", &success_result(), &tensors).unwrap();

    let value: Value = serde_json::from_str(&encoded.text).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "task_id",
            "candidate_id",
            "candidate_uuid",
            "correlation",
            "success",
            "epochs_completed",
            "activation_name",
            "all_correlations",
            "numerator",
            "denominator",
            "best_corr_idx",
            "error_message",
            "tensor_manifest"
        ]
    );
    assert!(
        encoded.text.contains(r#""candidate_id":7,"#),
        "{}",
        encoded.text
    );
    assert!(
        encoded.text.contains(r#""epochs_completed":1,"#),
        "{}",
        encoded.text
    );
    assert_eq!(
        value["tensor_manifest"],
        json!({"weights": {"shape": [2], "dtype": "float32"}, "bias": {"shape": [1], "dtype": "float32"}})
    );
    assert_eq!(encoded.frames.len(), 2);
    assert_eq!(encoded.frames[0], encode_frame(&[2], &weights).unwrap());
}

#[test]
fn task_result_drops_reserved_keys_from_result() {
    let mut result = success_result();
    result.insert("task_id".to_owned(), json!("spoofed"));
    result.insert("tensor_manifest".to_owned(), json!({"x": 1}));

    let encoded = encode_task_result("real", &result, &[]).unwrap();

    let value: Value = serde_json::from_str(&encoded.text).unwrap();
    assert_eq!(value["task_id"], json!("real"));
    assert_eq!(value["tensor_manifest"], json!({}));
    assert!(encoded.frames.is_empty());
}

#[test]
fn long_error_message_is_cut() {
    let mut result = success_result();
    result.insert("error_message".to_owned(), json!("e".repeat(200_000)));

    let encoded = encode_task_result("t", &result, &[]).unwrap();

    let value: Value = serde_json::from_str(&encoded.text).unwrap();
    let message = value["error_message"].as_str().unwrap();
    assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS);
    assert!(message.ends_with('…'));
    assert!(encoded.text.len() < MAX_TEXT_CHARS);
}

#[test]
fn oversized_result_text_is_an_error() {
    let mut result = success_result();
    result.insert(
        "all_correlations".to_owned(),
        json!(vec![0.123_456_789; 10_000]),
    );

    let error = encode_task_result("t", &result, &[]).unwrap_err();

    assert!(
        matches!(error, cascor_protocol::EncodeError::TextTooLarge { chars } if chars > MAX_TEXT_CHARS),
        "{error:?}"
    );
}
