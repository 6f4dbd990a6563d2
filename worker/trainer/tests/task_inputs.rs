//! Task-level input handling through `Trainer::run`: fallbacks for absent keys, the
//! integer and number conversion rules, and inputs that cannot be trained.

use cascor_trainer::{Device, HostTensor, TaskRequest, TaskResponse, Trainer, TrainerOptions};
use serde_json::{Map, Value, json};

fn trainer() -> Trainer {
    Trainer::new(TrainerOptions {
        device: Device::Cpu,
        intra_op_threads: Some(1),
    })
    .expect("a CPU trainer needs no hardware")
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("a JSON object")
}

/// Builds a small trainable task: 6 samples, 2 inputs, 2 outputs.
fn request(candidate_data: Value, training_params: Value) -> TaskRequest {
    TaskRequest {
        candidate_index: Some(json!(3)),
        candidate_data: object(candidate_data),
        training_params: object(training_params),
        candidate_input: HostTensor::new(
            vec![6, 2],
            vec![
                0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, -0.5, -1.0, 0.2, 0.3, -0.7,
            ],
        ),
        residual_error: HostTensor::new(
            vec![6, 2],
            vec![
                0.5, -0.1, -0.2, 0.3, 0.1, 0.0, -0.4, 0.2, 0.3, -0.3, -0.1, 0.1,
            ],
        ),
    }
}

fn base_data() -> Value {
    json!({"input_size": 2, "activation_name": "Tanh", "candidate_seed": 7, "candidate_uuid": "u-7",
           "random_value_scale": 0.1, "sequence_max_value": 100, "random_max_value": 4294967295u64})
}

fn with(data: Value, key: &str, value: Value) -> Value {
    let mut data = object(data);
    data.insert(key.to_owned(), value);
    Value::Object(data)
}

fn without(data: Value, key: &str) -> Value {
    let mut data = object(data);
    data.remove(key);
    Value::Object(data)
}

fn params() -> Value {
    json!({"epochs": 5, "learning_rate": 0.1, "display_frequency": 10})
}

fn assert_failure(response: &TaskResponse, words: &str, case: &str) {
    let result = &response.result;
    assert_eq!(result["success"], Value::Bool(false), "{case}: {result:?}");
    let message = result["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains(words),
        "{case}: {message:?} lacks {words:?}"
    );
    assert!(
        response.tensors.is_empty(),
        "{case}: a failure carries no tensors"
    );
    assert_eq!(result["correlation"], json!(0.0), "{case}");
    assert_eq!(result["epochs_completed"], json!(0), "{case}");
    assert_eq!(result["all_correlations"], json!([]), "{case}");
    assert_eq!(result["numerator"], json!(0.0), "{case}");
    assert_eq!(result["denominator"], json!(1.0), "{case}");
    assert_eq!(result["best_corr_idx"], json!(-1), "{case}");
}

fn assert_success(response: &TaskResponse, case: &str) {
    assert_eq!(
        response.result["success"],
        Value::Bool(true),
        "{case}: {:?}",
        response.result["error_message"]
    );
}

#[test]
fn bad_settings_fail_with_named_field() {
    let trainer = trainer();
    let cases = [
        (
            "seed bool",
            with(base_data(), "candidate_seed", json!(true)),
            params(),
            "candidate_seed",
        ),
        (
            "seed 2.5",
            with(base_data(), "candidate_seed", json!(2.5)),
            params(),
            "candidate_seed",
        ),
        (
            "seed string",
            with(base_data(), "candidate_seed", json!("7")),
            params(),
            "candidate_seed",
        ),
        (
            "seed too large",
            with(base_data(), "candidate_seed", json!(4294967295u64)),
            params(),
            "seed 4294967298",
        ),
        (
            "seed negative",
            with(base_data(), "candidate_seed", json!(-10)),
            params(),
            "seed -7",
        ),
        (
            "epochs float",
            base_data(),
            json!({"epochs": 400.0}),
            "training_params.epochs",
        ),
        (
            "epochs string",
            base_data(),
            json!({"epochs": "5"}),
            "training_params.epochs",
        ),
        (
            "learning rate string",
            base_data(),
            json!({"learning_rate": "0.1"}),
            "learning_rate",
        ),
        (
            "sequence null",
            with(base_data(), "sequence_max_value", json!(null)),
            params(),
            "sequence_max_value",
        ),
        (
            "sequence fraction string",
            with(base_data(), "sequence_max_value", json!("5.5")),
            params(),
            "sequence_max_value",
        ),
        (
            "sequence negative",
            with(base_data(), "sequence_max_value", json!(-1)),
            params(),
            "sequence_max_value",
        ),
        (
            "random max null",
            with(base_data(), "random_max_value", json!(null)),
            params(),
            "random_max_value",
        ),
        (
            "random max word",
            with(base_data(), "random_max_value", json!("abc")),
            params(),
            "random_max_value",
        ),
        (
            "input size missing",
            without(base_data(), "input_size"),
            params(),
            "input_size",
        ),
        (
            "input size zero",
            with(base_data(), "input_size", json!(0)),
            params(),
            "input_size",
        ),
        (
            "input size string",
            with(base_data(), "input_size", json!("2")),
            params(),
            "input_size",
        ),
        (
            "input size wrong",
            with(base_data(), "input_size", json!(3)),
            params(),
            "input_size is 3",
        ),
        (
            "scale string",
            with(base_data(), "random_value_scale", json!("0.1")),
            params(),
            "random_value_scale",
        ),
        (
            "activation list",
            with(base_data(), "activation_name", json!(["Tanh"])),
            params(),
            "activation_name",
        ),
    ];
    for (case, data, params, words) in cases {
        let response = trainer.run(&request(data, params));
        assert_failure(&response, words, case);
        assert_eq!(response.result["candidate_id"], json!(3), "{case}");
        assert_eq!(response.result["candidate_uuid"], json!("u-7"), "{case}");
    }
}

#[test]
fn index_that_is_not_integer_fails() {
    let mut bad = request(base_data(), params());
    bad.candidate_index = Some(json!(2.5));
    let response = trainer().run(&bad);
    assert_failure(&response, "candidate_index", "index 2.5");
    assert_eq!(response.result["candidate_id"], json!(2.5));
}

#[test]
fn untrainable_tensors_fail_with_reason() {
    let trainer = trainer();
    let mut cases: Vec<(&str, TaskRequest, &str)> = Vec::new();

    let mut one_dimensional = request(base_data(), params());
    one_dimensional.candidate_input =
        HostTensor::new(vec![12], one_dimensional.candidate_input.data.clone());
    cases.push(("1-D input", one_dimensional, "must be 2-D"));

    let mut row_mismatch = request(base_data(), params());
    row_mismatch.residual_error =
        HostTensor::new(vec![4, 3], row_mismatch.residual_error.data.clone());
    cases.push(("row mismatch", row_mismatch, "same batch size"));

    let mut three_dimensional = request(base_data(), params());
    three_dimensional.residual_error =
        HostTensor::new(vec![6, 1, 2], three_dimensional.residual_error.data.clone());
    cases.push(("3-D error", three_dimensional, "1-D or 2-D"));

    let mut short_data = request(base_data(), params());
    short_data.candidate_input.data.pop();
    cases.push(("short data", short_data, "does not match"));

    let mut nan_input = request(base_data(), params());
    nan_input.candidate_input.data[3] = f32::NAN;
    cases.push((
        "NaN input",
        nan_input,
        "non-finite value NaN at flat index 3",
    ));

    let mut infinite_error = request(base_data(), params());
    infinite_error.residual_error.data[0] = f32::INFINITY;
    cases.push((
        "infinite error",
        infinite_error,
        "residual_error: contains the non-finite value inf",
    ));

    let mut empty = request(base_data(), params());
    empty.candidate_input = HostTensor::new(vec![0, 2], Vec::new());
    empty.residual_error = HostTensor::new(vec![0, 2], Vec::new());
    cases.push(("empty", empty, "is empty"));

    let mut single = request(base_data(), params());
    single.candidate_input = HostTensor::new(vec![1, 2], vec![0.5, 0.5]);
    single.residual_error = HostTensor::new(vec![1], vec![0.1]);
    cases.push(("one sample", single, "at least 2 samples"));

    let mut no_outputs = request(base_data(), params());
    no_outputs.residual_error = HostTensor::new(vec![6, 0], Vec::new());
    cases.push(("no outputs", no_outputs, "[6, 0]"));

    cases.push((
        "GLU even",
        request(with(base_data(), "activation_name", json!("GLU")), params()),
        "same batch size",
    ));
    let mut glu_odd = request(with(base_data(), "activation_name", json!("GLU")), params());
    glu_odd.candidate_input =
        HostTensor::new(vec![5, 2], glu_odd.candidate_input.data[..10].to_vec());
    glu_odd.residual_error =
        HostTensor::new(vec![5, 2], glu_odd.residual_error.data[..10].to_vec());
    cases.push(("GLU odd", glu_odd, "halving dimension must be even"));

    for (case, task, words) in cases {
        let response = trainer.run(&task);
        assert_failure(&response, words, case);
    }
}

#[test]
fn glu_failure_echoes_name() {
    let response = trainer().run(&request(
        with(base_data(), "activation_name", json!("GLU")),
        params(),
    ));
    assert_eq!(response.result["activation_name"], json!("GLU"));
}

#[test]
fn integer_valued_float_seed_equals_integer_seed() {
    let trainer = trainer();
    let float_seed = trainer.run(&request(
        with(base_data(), "candidate_seed", json!(7.0)),
        params(),
    ));
    let integer_seed = trainer.run(&request(base_data(), params()));
    assert_success(&float_seed, "seed 7.0");
    assert_eq!(float_seed.tensors, integer_seed.tensors);
    assert_eq!(float_seed.result, integer_seed.result);
}

#[test]
fn sequence_max_value_converts_like_python_int() {
    let trainer = trainer();
    let reference = trainer.run(&request(
        with(base_data(), "sequence_max_value", json!(5)),
        params(),
    ));
    assert_success(&reference, "sequence 5");
    for value in [json!("5"), json!(" 5 "), json!(5.9), json!("+5")] {
        let response = trainer.run(&request(
            with(base_data(), "sequence_max_value", value.clone()),
            params(),
        ));
        assert_success(&response, &value.to_string());
        assert_eq!(
            response.tensors, reference.tensors,
            "sequence_max_value {value}"
        );
    }
    let other = trainer.run(&request(
        with(base_data(), "sequence_max_value", json!(1000)),
        params(),
    ));
    assert_ne!(
        other.tensors[0], reference.tensors[0],
        "the roll bound changes the draws"
    );
}

#[test]
fn zero_sequence_max_value_means_ten() {
    let trainer = trainer();
    let zero = trainer.run(&request(
        with(base_data(), "sequence_max_value", json!(0)),
        params(),
    ));
    let ten = trainer.run(&request(
        with(base_data(), "sequence_max_value", json!(10)),
        params(),
    ));
    assert_success(&zero, "sequence 0");
    assert_eq!(zero.tensors, ten.tensors);
}

#[test]
fn null_seed_means_42() {
    let trainer = trainer();
    let null_seed = trainer.run(&request(
        with(base_data(), "candidate_seed", json!(null)),
        params(),
    ));
    let absent_seed = trainer.run(&request(without(base_data(), "candidate_seed"), params()));
    let explicit = trainer.run(&request(
        with(base_data(), "candidate_seed", json!(42)),
        params(),
    ));
    assert_success(&null_seed, "seed null");
    assert_eq!(null_seed.tensors, explicit.tensors);
    assert_eq!(absent_seed.tensors, explicit.tensors);
}

#[test]
fn missing_keys_use_worker_fallbacks() {
    let trainer = trainer();
    let minimal = json!({"input_size": 2, "candidate_seed": 9});
    let explicit = json!({"input_size": 2, "candidate_seed": 9, "activation_name": "sigmoid",
                          "random_value_scale": 1.0, "sequence_max_value": 1, "random_max_value": 1,
                          "candidate_uuid": ""});
    let fallback = trainer.run(&request(minimal, json!({})));
    let spelled_out = trainer.run(&request(
        explicit,
        json!({"epochs": 200, "learning_rate": 0.01, "display_frequency": 100}),
    ));
    assert_success(&fallback, "fallbacks");
    assert_eq!(fallback.result, spelled_out.result);
    assert_eq!(fallback.tensors, spelled_out.tensors);
    assert_eq!(fallback.result["activation_name"], json!("sigmoid"));
    assert_eq!(fallback.result["candidate_uuid"], json!(""));
}

#[test]
fn unknown_activation_trains_as_sigmoid_and_echoes_name() {
    let trainer = trainer();
    let unknown = trainer.run(&request(
        with(base_data(), "activation_name", json!("leakyrelu")),
        params(),
    ));
    let sigmoid = trainer.run(&request(
        with(base_data(), "activation_name", json!("sigmoid")),
        params(),
    ));
    assert_success(&unknown, "leakyrelu");
    assert_eq!(unknown.result["activation_name"], json!("leakyrelu"));
    assert_eq!(unknown.tensors, sigmoid.tensors);
}

#[test]
fn null_index_echoes_null_and_seeds_as_zero() {
    let trainer = trainer();
    let mut null_index = request(base_data(), params());
    null_index.candidate_index = Some(Value::Null);
    let mut zero_index = request(base_data(), params());
    zero_index.candidate_index = Some(json!(0));
    let null_response = trainer.run(&null_index);
    let zero_response = trainer.run(&zero_index);
    assert_success(&null_response, "index null");
    assert_eq!(null_response.result["candidate_id"], Value::Null);
    assert_eq!(null_response.tensors, zero_response.tensors);
}

#[test]
fn non_positive_epochs_only_evaluate() {
    let trainer = trainer();
    for epochs in [0, -3] {
        let response = trainer.run(&request(base_data(), json!({"epochs": epochs})));
        assert_success(&response, "no epochs");
        assert_eq!(response.result["epochs_completed"], json!(0));
        assert_eq!(response.epochs_completed, 0);
    }
}

#[test]
fn success_result_has_reference_shape() {
    let response = trainer().run(&request(base_data(), params()));
    assert_success(&response, "base");
    let keys: Vec<&str> = response.result.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
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
            "error_message"
        ]
    );
    assert!(response.result["candidate_id"].is_i64());
    assert!(response.result["epochs_completed"].is_u64());
    assert!(response.result["best_corr_idx"].is_u64());
    assert_eq!(response.result["error_message"], Value::Null);
    assert_eq!(
        response.result["all_correlations"].as_array().map(Vec::len),
        Some(2)
    );
    let shapes: Vec<(&str, &[usize])> = response
        .tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor.shape.as_slice()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("weights", &[2][..]),
            ("bias", &[1][..]),
            ("norm_output", &[6][..]),
            ("norm_error", &[6][..])
        ]
    );
}

#[test]
fn rrelu_is_deterministic_per_task() {
    let trainer = trainer();
    let task = request(
        with(base_data(), "activation_name", json!("RReLU")),
        params(),
    );
    let first = trainer.run(&task);
    let second = trainer.run(&task);
    assert_success(&first, "RReLU");
    assert_eq!(first.tensors, second.tensors);
    let leaky = trainer.run(&request(
        with(base_data(), "activation_name", json!("LeakyReLU")),
        params(),
    ));
    assert_ne!(
        first.tensors[0], leaky.tensors[0],
        "RReLU draws its own slopes"
    );
}

#[test]
fn every_activation_name_trains_or_fails_cleanly() {
    let trainer = trainer();
    for (name, _) in cascor_trainer::ACTIVATION_NAMES {
        let response = trainer.run(&request(
            with(base_data(), "activation_name", json!(name)),
            params(),
        ));
        assert_eq!(response.result["activation_name"], json!(name));
        if name == "GLU" {
            assert_failure(&response, "same batch size", name);
        } else {
            assert_success(&response, name);
            let correlation = response.result["correlation"].as_f64().unwrap_or(f64::NAN);
            assert!(
                (0.0..=1.0).contains(&correlation),
                "{name}: correlation {correlation}"
            );
        }
    }
}
