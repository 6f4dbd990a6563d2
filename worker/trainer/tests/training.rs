//! Training behaviour: the hand-computed one-epoch example, agreement of the native and
//! libtorch paths for every activation, multi-threaded determinism, and early stopping.

use cascor_trainer::engine::{Outcome, Problem, Settings, train_native, train_torch};
use cascor_trainer::{ACTIVATION_NAMES, Activation, gradient_coefficients};

/// The listed numbers have six decimals.
const EXAMPLE_ATOL: f64 = 3e-6;

const EXAMPLE_X: [f32; 8] = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, -0.5];
const EXAMPLE_E: [f32; 8] = [0.5, -0.1, -0.2, 0.3, 0.1, 0.0, -0.4, 0.2];

fn example_problem() -> Problem<'static> {
    Problem {
        x: &EXAMPLE_X,
        residual_error: &EXAMPLE_E,
        samples: 4,
        inputs: 2,
        outputs: 2,
    }
}

fn assert_near(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= EXAMPLE_ATOL,
        "{what}: {actual} vs {expected}"
    );
}

fn assert_all_near(actual: &[f32], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what} length");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_near(f64::from(a), e, &format!("{what}[{index}]"));
    }
}

fn check_worked_example(outcome: &Outcome, path: &str) {
    assert_eq!(outcome.epochs_completed, 1, "{path}");
    assert_all_near(
        &outcome.weights,
        &[0.204291, -0.296720],
        &format!("{path} weights"),
    );
    assert_near(f64::from(outcome.bias), 0.100844, &format!("{path} bias"));
    let evaluation = &outcome.evaluation;
    assert_eq!(evaluation.best, 0, "{path}");
    assert_near(
        evaluation.correlation(),
        0.984510,
        &format!("{path} correlation"),
    );
    assert_near(evaluation.correlations[1], 0.952062, &format!("{path} c1"));
    assert_near(
        evaluation.numerator,
        -0.290093,
        &format!("{path} numerator"),
    );
    assert_near(
        evaluation.denominator,
        0.294657,
        &format!("{path} denominator"),
    );
    assert_all_near(
        &outcome.norm_output,
        &[-0.305555, 0.183859, -0.103731, 0.225426],
        &format!("{path} norm_output"),
    );
    assert_all_near(
        &outcome.norm_error,
        &[0.5, -0.2, 0.1, -0.4],
        &format!("{path} norm_error"),
    );
}

fn example_settings(epochs: u64) -> Settings {
    Settings {
        epochs,
        learning_rate: 0.1,
        activation: Activation::Tanh,
        early_stopping: true,
        deadline: None,
    }
}

#[test]
fn passed_deadline_stops_both_paths() {
    let settings = Settings {
        deadline: Some(std::time::Instant::now()),
        ..example_settings(400)
    };
    let weights = [0.2, -0.3];
    let results = [
        (
            "native",
            train_native(&example_problem(), &settings, &weights, 0.1, 1),
        ),
        (
            "torch",
            train_torch(
                &example_problem(),
                &settings,
                &weights,
                0.1,
                tch::Device::Cpu,
            ),
        ),
    ];
    for (path, result) in results {
        let error = result.expect_err("training stops at a passed deadline");
        assert!(
            matches!(
                error,
                cascor_trainer::TrainerError::DeadlineExceeded {
                    epochs_completed: 0
                }
            ),
            "{path}: {error}"
        );
    }
}

#[test]
fn future_deadline_lets_training_finish() {
    let settings = Settings {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(3600)),
        ..example_settings(3)
    };
    let outcome = train_native(&example_problem(), &settings, &[0.2, -0.3], 0.1, 1)
        .expect("a distant deadline does not stop training");
    assert_eq!(outcome.epochs_completed, 3);
}

#[test]
fn worked_example_native() {
    let outcome = train_native(
        &example_problem(),
        &example_settings(1),
        &[0.2, -0.3],
        0.1,
        1,
    )
    .expect("native training finishes");
    check_worked_example(&outcome, "native");
}

#[test]
fn worked_example_torch() {
    let outcome = train_torch(
        &example_problem(),
        &example_settings(1),
        &[0.2, -0.3],
        0.1,
        tch::Device::Cpu,
    )
    .expect("libtorch trains the example");
    check_worked_example(&outcome, "torch");
}

#[test]
fn worked_example_before_training() {
    let outcome = train_native(
        &example_problem(),
        &example_settings(0),
        &[0.2, -0.3],
        0.1,
        1,
    )
    .expect("native training finishes");
    assert_eq!(outcome.epochs_completed, 0);
    assert_eq!(outcome.weights, [0.2, -0.3]);
    assert_near(outcome.evaluation.correlation(), 0.984265, "epoch-0 c0");
    assert_near(outcome.evaluation.correlations[1], 0.951404, "epoch-0 c1");
    assert_near(outcome.evaluation.numerator, -0.291500, "epoch-0 S");
    assert_near(outcome.evaluation.denominator, 0.296161, "epoch-0 D");
    assert_all_near(
        &outcome.norm_output,
        &[-0.304954, 0.183734, -0.107578, 0.228797],
        "epoch-0 oc",
    );
}

#[test]
fn worked_example_gradient_terms() {
    let oc = [-0.304954f64, 0.183734, -0.107578, 0.228797];
    let ec = [0.5f64, -0.2, 0.1, -0.4];
    let coefficients = gradient_coefficients(-0.291500, 0.296161, 0.436665, 0.678233);
    let expected_g = [0.114113, 0.273122, -0.217660, -0.169574];
    for index in 0..4 {
        let g = coefficients.error * ec[index] + coefficients.output * oc[index];
        assert!((g - expected_g[index]).abs() <= 2e-5, "g[{index}] = {g}");
    }
}

/// Inputs that exercise every activation over its interesting range.
fn synthetic(samples: usize, inputs: usize, outputs: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..samples * inputs).map(|_| 2.0 * next()).collect();
    let e: Vec<f32> = (0..samples)
        .flat_map(|sample| {
            let row = &x[sample * inputs..(sample + 1) * inputs];
            let signal = row[0] - 0.5 * row[inputs - 1];
            (0..outputs).map(move |column| signal * (column as f32 + 1.0) * 0.3)
        })
        .zip(std::iter::repeat_with(&mut next))
        .map(|(signal, noise)| signal + 0.2 * noise)
        .collect();
    (x, e)
}

#[test]
fn native_matches_torch_for_every_activation() {
    let (x, e) = synthetic(96, 3, 2, 11);
    let problem = Problem {
        x: &x,
        residual_error: &e,
        samples: 96,
        inputs: 3,
        outputs: 2,
    };
    let mut checked = Vec::new();
    for (name, activation) in ACTIVATION_NAMES {
        if !activation.is_elementwise() && activation != Activation::Softmax
            || activation == Activation::Rrelu
            || checked.contains(&activation)
        {
            continue;
        }
        checked.push(activation);
        let settings = Settings {
            epochs: 8,
            learning_rate: 0.05,
            activation,
            early_stopping: true,
            deadline: None,
        };
        let weights = [0.3f32, -0.2, 0.1];
        let native =
            train_native(&problem, &settings, &weights, 0.05, 1).expect("native training finishes");
        let torch = train_torch(&problem, &settings, &weights, 0.05, tch::Device::Cpu)
            .expect("libtorch trains");
        assert_eq!(native.evaluation.best, torch.evaluation.best, "{name}");
        assert!(
            (native.evaluation.correlation() - torch.evaluation.correlation()).abs() < 1e-5,
            "{name}: correlation {} vs {}",
            native.evaluation.correlation(),
            torch.evaluation.correlation()
        );
        for (a, t) in native
            .weights
            .iter()
            .chain([&native.bias])
            .zip(torch.weights.iter().chain([&torch.bias]))
        {
            assert!(
                (a - t).abs() <= 1e-5 + 1e-4 * t.abs(),
                "{name}: {:?} vs {:?}",
                native.weights,
                torch.weights
            );
        }
        for (a, t) in native.norm_output.iter().zip(&torch.norm_output) {
            assert!(
                (a - t).abs() <= 1e-5 + 1e-4 * t.abs(),
                "{name}: norm_output {a} vs {t}"
            );
        }
    }
    assert_eq!(
        checked.len(),
        24,
        "every element-wise activation and Softmax"
    );
}

fn large_problem_outcome(threads: usize, data: &(Vec<f32>, Vec<f32>)) -> Outcome {
    let problem = Problem {
        x: &data.0,
        residual_error: &data.1,
        samples: 40_000,
        inputs: 8,
        outputs: 3,
    };
    let settings = Settings {
        epochs: 6,
        learning_rate: 0.1,
        activation: Activation::Tanh,
        early_stopping: true,
        deadline: None,
    };
    train_native(
        &problem,
        &settings,
        &[0.1, -0.2, 0.05, 0.3, -0.1, 0.2, 0.0, 0.15],
        0.02,
        threads,
    )
    .expect("native training finishes")
}

#[test]
fn threaded_native_is_deterministic_and_consistent() {
    let data = synthetic(40_000, 8, 3, 7);
    let single = large_problem_outcome(1, &data);
    let threaded = large_problem_outcome(3, &data);
    let again = large_problem_outcome(3, &data);

    assert_eq!(
        threaded.weights, again.weights,
        "same thread count, same bits"
    );
    assert_eq!(threaded.norm_output, again.norm_output);
    assert_eq!(threaded.evaluation, again.evaluation);

    assert_eq!(single.evaluation.best, threaded.evaluation.best);
    assert!((single.evaluation.correlation() - threaded.evaluation.correlation()).abs() < 1e-6);
    for (a, b) in single.weights.iter().zip(&threaded.weights) {
        assert!(
            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
            "{:?} vs {:?}",
            single.weights,
            threaded.weights
        );
    }
}

#[test]
fn threaded_native_matches_torch() {
    let data = synthetic(40_000, 8, 3, 7);
    let threaded = large_problem_outcome(2, &data);
    let problem = Problem {
        x: &data.0,
        residual_error: &data.1,
        samples: 40_000,
        inputs: 8,
        outputs: 3,
    };
    let settings = Settings {
        epochs: 6,
        learning_rate: 0.1,
        activation: Activation::Tanh,
        early_stopping: true,
        deadline: None,
    };
    let torch = train_torch(
        &problem,
        &settings,
        &[0.1, -0.2, 0.05, 0.3, -0.1, 0.2, 0.0, 0.15],
        0.02,
        tch::Device::Cpu,
    )
    .expect("libtorch trains");
    assert!((threaded.evaluation.correlation() - torch.evaluation.correlation()).abs() < 1e-5);
    for (a, t) in threaded.weights.iter().zip(&torch.weights) {
        assert!(
            (a - t).abs() <= 1e-5 + 1e-4 * t.abs(),
            "{:?} vs {:?}",
            threaded.weights,
            torch.weights
        );
    }
}

#[test]
fn constant_output_stops_after_patience() {
    // Hardshrink of small pre-activations is exactly 0, so the correlation stays 0 and
    // the weights never move; early stopping ends the loop after 50 epochs.
    let (x, e) = synthetic(32, 2, 1, 3);
    let x: Vec<f32> = x.iter().map(|value| value * 0.01).collect();
    let problem = Problem {
        x: &x,
        residual_error: &e,
        samples: 32,
        inputs: 2,
        outputs: 1,
    };
    let settings = Settings {
        epochs: 400,
        learning_rate: 0.1,
        activation: Activation::Hardshrink,
        early_stopping: true,
        deadline: None,
    };
    let outcome =
        train_native(&problem, &settings, &[0.1, 0.1], 0.0, 1).expect("native training finishes");
    assert_eq!(outcome.epochs_completed, 50);
    assert_eq!(outcome.weights, [0.1, 0.1]);
    assert_eq!(outcome.evaluation.correlation(), 0.0);
    assert_eq!(outcome.evaluation.denominator, 1e-8);

    let no_stopping = Settings {
        early_stopping: false,
        ..settings
    };
    let outcome = train_native(&problem, &no_stopping, &[0.1, 0.1], 0.0, 1)
        .expect("native training finishes");
    assert_eq!(outcome.epochs_completed, 400);
}
