//! Activation values and derivatives of the native path against libtorch autograd, and
//! the name lookup rules.

use cascor_trainer::{ACTIVATION_NAMES, Activation, lookup_activation};
use serde_json::{Value, json};
use tch::{Kind, Tensor};

/// Sample points, including every kink of the piecewise activations.
const POINTS: [f32; 27] = [
    -25.0, -20.0, -6.0, -3.5, -3.0, -2.0, -1.0, -0.5, -0.3, -0.1, -1e-3, 0.0, 1e-3, 0.05, 0.1, 0.2,
    0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 20.0, 25.0,
];
const RTOL: f32 = 2e-6;
const ATOL: f32 = 2e-7;

fn close(actual: f32, expected: f32) -> bool {
    (actual - expected).abs() <= ATOL + RTOL * expected.abs()
}

fn elementwise() -> Vec<Activation> {
    let mut activations: Vec<Activation> = ACTIVATION_NAMES
        .iter()
        .map(|(_, activation)| *activation)
        .filter(|activation| activation.is_elementwise() && *activation != Activation::Rrelu)
        .collect();
    activations.dedup();
    activations.sort_by_key(|activation| format!("{activation:?}"));
    activations.dedup();
    activations
}

fn torch_value_and_derivative(activation: Activation) -> (Vec<f32>, Vec<f32>) {
    let z = Tensor::from_slice(&POINTS).set_requires_grad(true);
    let output = activation.apply_tensor(&z).expect("activation applies");
    output.sum(Kind::Float).backward();
    let mut values = vec![0.0f32; POINTS.len()];
    output.detach().copy_data(&mut values, POINTS.len());
    let mut derivatives = vec![0.0f32; POINTS.len()];
    z.grad().copy_data(&mut derivatives, POINTS.len());
    (values, derivatives)
}

#[test]
fn values_match_torch() {
    for activation in elementwise() {
        let (expected, _) = torch_value_and_derivative(activation);
        for (&z, &wanted) in POINTS.iter().zip(&expected) {
            let actual = activation.value(z);
            assert!(
                close(actual, wanted),
                "{activation:?}({z}) = {actual}, torch {wanted}"
            );
        }
    }
}

#[test]
fn derivatives_match_autograd() {
    for activation in elementwise() {
        let (values, expected) = torch_value_and_derivative(activation);
        for ((&z, &output), &wanted) in POINTS.iter().zip(&values).zip(&expected) {
            let actual = activation.derivative(z, output);
            assert!(
                close(actual, wanted),
                "{activation:?}'({z}) = {actual}, autograd {wanted}"
            );
        }
    }
}

const RRELU_INPUT: [f32; 6] = [-1.0, -0.5, 2.0, 0.0, -3.25, 1.5];

/// Two consecutive `torch.nn.RReLU()` calls after `torch.manual_seed(5)`, from the Python
/// torch that the build environment provides (`JUNIPER_PYTHON`).
fn python_rrelu_reference() -> Vec<f32> {
    let python = std::env::var("JUNIPER_PYTHON").unwrap_or_else(|_| {
        panic!("JUNIPER_PYTHON is not set; run the tests through scripts/with-env.sh, which provides Python with torch")
    });
    let script = format!(
        "import json, torch\n\
         torch.manual_seed(5)\n\
         z = torch.tensor({RRELU_INPUT:?}, dtype=torch.float32)\n\
         m = torch.nn.RReLU()\n\
         print(json.dumps(m(z).tolist() + m(z).tolist()))\n"
    );
    let output = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python}: {error}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let values: Vec<f64> = serde_json::from_slice(&output.stdout).expect("a JSON list");
    values.into_iter().map(|value| value as f32).collect()
}

#[test]
fn rrelu_matches_torch_module_bit_for_bit() {
    let expected = python_rrelu_reference();
    let actual = {
        let _generator = cascor_trainer::init::TorchGenerator::acquire();
        tch::manual_seed(5);
        let z = Tensor::from_slice(&RRELU_INPUT);
        let mut values = vec![0.0f32; 12];
        let first = Activation::Rrelu.apply_tensor(&z).expect("rrelu applies");
        let second = Activation::Rrelu.apply_tensor(&z).expect("rrelu applies");
        first.copy_data(&mut values[..6], 6);
        second.copy_data(&mut values[6..], 6);
        values
    };
    let bits = |values: &[f32]| {
        values
            .iter()
            .map(|value| value.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&actual), bits(&expected), "{actual:?} vs {expected:?}");
    assert_ne!(actual[..6], actual[6..], "every call draws new slopes");
}

#[test]
fn rrelu_gradient_is_the_drawn_slope() {
    let _generator = cascor_trainer::init::TorchGenerator::acquire();
    tch::manual_seed(9);
    let z = Tensor::from_slice(&RRELU_INPUT).set_requires_grad(true);
    let output = Activation::Rrelu.apply_tensor(&z).expect("rrelu applies");
    output.sum(Kind::Float).backward();
    let mut values = [0.0f32; 6];
    let mut gradient = [0.0f32; 6];
    output.detach().copy_data(&mut values, 6);
    z.grad().copy_data(&mut gradient, 6);
    for ((&input, &value), &slope) in RRELU_INPUT.iter().zip(&values).zip(&gradient) {
        if input > 0.0 {
            assert_eq!(slope, 1.0);
            assert_eq!(value, input);
        } else {
            assert!((0.125..=1.0 / 3.0 + 1e-7).contains(&slope), "slope {slope}");
            assert_eq!(value, input * slope);
        }
    }
}

#[test]
fn all_names_resolve_exactly() {
    assert_eq!(ACTIVATION_NAMES.len(), 33);
    for (name, activation) in ACTIVATION_NAMES {
        let lookup = lookup_activation(Some(&Value::from(name))).expect("known name");
        assert_eq!(lookup.activation, activation, "{name}");
        assert_eq!(lookup.unknown_name, None, "{name}");
    }
}

#[test]
fn lower_cased_names_resolve() {
    for (name, expected) in [
        ("TANH", Activation::Tanh),
        ("RELU", Activation::Relu),
        ("Elu", Activation::Elu),
        ("SIGMOID", Activation::Sigmoid),
    ] {
        let lookup = lookup_activation(Some(&Value::from(name))).expect("lookup");
        assert_eq!(lookup.activation, expected, "{name}");
        assert_eq!(lookup.unknown_name, None, "{name}");
    }
}

#[test]
fn unmatched_names_fall_back_to_sigmoid() {
    for (value, printed) in [
        (json!("leakyrelu"), "leakyrelu"),
        (json!("gelu"), "gelu"),
        (json!("selu"), "selu"),
        (json!("Leaky_ReLU"), "Leaky_ReLU"),
        (json!(null), "None"),
        (json!(5), "5"),
        (json!(true), "True"),
    ] {
        let lookup = lookup_activation(Some(&value)).expect("lookup");
        assert_eq!(lookup.activation, Activation::Sigmoid, "{value}");
        assert_eq!(lookup.unknown_name.as_deref(), Some(printed), "{value}");
    }
}

#[test]
fn absent_name_is_sigmoid_without_warning() {
    let lookup = lookup_activation(None).expect("lookup");
    assert_eq!(lookup.activation, Activation::Sigmoid);
    assert_eq!(lookup.unknown_name, None);
}

#[test]
fn list_or_object_name_fails() {
    for value in [json!(["Tanh"]), json!({"name": "Tanh"})] {
        let error = lookup_activation(Some(&value)).expect_err("not a name");
        assert!(error.to_string().contains("activation_name"), "{error}");
    }
}
