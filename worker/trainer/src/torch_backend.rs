//! libtorch training path: the reference's operations one by one, with autograd for the
//! update. Used for CUDA devices and for RReLU (whose random slopes come from torch's
//! generator), and available on the CPU for comparison with the native path.

use tch::{Device, Kind, Tensor};

use crate::core::{
    ColumnCorrelation, EarlyStopping, Evaluation, Outcome, Problem, Settings, column_correlation,
    evaluation_from_columns,
};
use crate::error::TrainerError;
use crate::init::tensor_to_vec;

/// Trains with libtorch tensors on `device`.
pub fn train(
    problem: &Problem<'_>,
    settings: &Settings,
    initial_weights: &[f32],
    initial_bias: f32,
    device: Device,
) -> Result<Outcome, TrainerError> {
    let (samples, inputs, outputs) = (
        problem.samples as i64,
        problem.inputs as i64,
        problem.outputs as i64,
    );
    let x = Tensor::f_from_slice(problem.x)?
        .f_reshape([samples, inputs])?
        .f_to(device)?;
    let residual_error = Tensor::f_from_slice(problem.residual_error)?
        .f_reshape([samples, outputs])?
        .f_to(device)?;
    let mut weights = Tensor::f_from_slice(initial_weights)?.f_to(device)?;
    let mut bias = Tensor::f_from_slice(&[initial_bias])?.f_to(device)?;

    let mut stopping = EarlyStopping::default();
    let mut epochs_completed = 0;
    for epoch in 0..settings.epochs {
        settings.check_deadline(epochs_completed)?;
        epochs_completed = epoch + 1;

        let output = tch::no_grad(|| forward(&x, &weights, &bias, settings))?;
        let (evaluation, _, _) = evaluate(&output, &residual_error, problem.outputs)?;
        let correlation = evaluation.correlation();

        let (weight_gradient, bias_gradient) = gradient(
            &x,
            &weights,
            &bias,
            &residual_error,
            evaluation.best,
            settings,
        )?;
        tch::no_grad(|| -> Result<(), TrainerError> {
            let learning_rate = f64::from(settings.learning_rate);
            let _ = weights.f_sub_(&weight_gradient.f_mul_scalar(learning_rate)?)?;
            let _ = bias.f_sub_(&bias_gradient.f_mul_scalar(learning_rate)?)?;
            Ok(())
        })?;

        if settings.early_stopping && stopping.should_stop(correlation) {
            break;
        }
    }

    let output = tch::no_grad(|| forward(&x, &weights, &bias, settings))?;
    let (evaluation, norm_output, norm_error) =
        evaluate(&output, &residual_error, problem.outputs)?;
    Ok(Outcome {
        weights: tensor_to_vec(&weights)?,
        bias: tensor_to_vec(&bias)?[0],
        epochs_completed,
        evaluation,
        norm_output: tensor_to_vec(&norm_output)?,
        norm_error: tensor_to_vec(&norm_error)?,
    })
}

/// f(Σ_d x[:, d]·w_d + b), `[samples]`.
fn forward(
    x: &Tensor,
    weights: &Tensor,
    bias: &Tensor,
    settings: &Settings,
) -> Result<Tensor, TrainerError> {
    let logits = x
        .f_mul(weights)?
        .f_sum_dim_intlist(1i64, false, Option::<Kind>::None)?
        .f_add(bias)?;
    Ok(settings.activation.apply_tensor(&logits)?)
}

/// Mean-centres both vectors and returns (S, ‖oc‖·‖ec‖ + 1e-8, oc, ec).
fn correlation_terms(
    output: &Tensor,
    error: &Tensor,
) -> Result<(Tensor, Tensor, Tensor, Tensor), TrainerError> {
    let output = output.f_flatten(0, -1)?;
    let error = error.f_flatten(0, -1)?;
    let centred_output = output.f_sub(&output.f_mean(Option::<Kind>::None)?)?;
    let centred_error = error.f_sub(&error.f_mean(Option::<Kind>::None)?)?;
    let numerator = centred_output.f_dot(&centred_error)?;
    let output_norm =
        centred_output.f_linalg_norm(2.0, Option::<&[i64]>::None, false, Option::<Kind>::None)?;
    let error_norm =
        centred_error.f_linalg_norm(2.0, Option::<&[i64]>::None, false, Option::<Kind>::None)?;
    let denominator = output_norm.f_mul(&error_norm)?.f_add_scalar(1e-8)?;
    Ok((numerator, denominator, centred_output, centred_error))
}

/// Correlation of every residual-error column; returns the evaluation and the centred
/// output and error of the best column.
fn evaluate(
    output: &Tensor,
    residual_error: &Tensor,
    outputs: usize,
) -> Result<(Evaluation, Tensor, Tensor), TrainerError> {
    let mut columns: Vec<ColumnCorrelation> = Vec::with_capacity(outputs);
    let mut centred = Vec::with_capacity(outputs);
    for column in 0..outputs {
        let error = residual_error.f_select(1, column as i64)?;
        let (numerator, denominator, centred_output, centred_error) =
            correlation_terms(output, &error)?;
        let numerator = numerator.f_double_value(&[])? as f32;
        let denominator = denominator.f_double_value(&[])? as f32;
        columns.push(column_correlation(numerator, denominator));
        centred.push((centred_output, centred_error));
    }
    let evaluation = evaluation_from_columns(&columns);
    let (norm_output, norm_error) = centred.swap_remove(evaluation.best);
    Ok((evaluation, norm_output, norm_error))
}

/// ∂(−|S/D|)/∂w and ∂/∂b through autograd, recomputing the forward pass.
fn gradient(
    x: &Tensor,
    weights: &Tensor,
    bias: &Tensor,
    residual_error: &Tensor,
    best: usize,
    settings: &Settings,
) -> Result<(Tensor, Tensor), TrainerError> {
    let weights = weights.f_detach()?.f_set_requires_grad(true)?;
    let bias = bias.f_detach()?.f_set_requires_grad(true)?;
    let output = forward(x, &weights, &bias, settings)?;
    let error = residual_error.f_select(1, best as i64)?;
    let (numerator, denominator, _, _) = correlation_terms(&output, &error)?;
    let loss = numerator.f_div(&denominator)?.f_abs()?.f_neg()?;
    loss.f_backward()?;
    Ok((weights.f_grad()?, bias.f_grad()?))
}
