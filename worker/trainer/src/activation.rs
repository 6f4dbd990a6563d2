//! Candidate activations: name lookup, float32 values and the derivatives that PyTorch's
//! autograd uses, and the equivalent libtorch operations for the tch path.

use serde_json::Value;
use tch::{Kind, TchError, Tensor};

use crate::error::TrainerError;

/// Activation of a candidate unit, one variant per distinct PyTorch function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    Relu6,
    LeakyRelu,
    /// `torch.nn.PReLU` with its initial slope 0.25, which training never updates.
    Prelu,
    /// `torch.nn.RReLU` in training mode: a fresh slope from U(1/8, 1/3) for every
    /// non-positive element on every call, drawn from torch's default CPU generator.
    Rrelu,
    Elu,
    Celu,
    Selu,
    /// Exact (erf) form.
    Gelu,
    Silu,
    Mish,
    Softplus,
    LogSigmoid,
    Softsign,
    Tanhshrink,
    Hardshrink,
    Softshrink,
    Hardtanh,
    Hardsigmoid,
    Hardswish,
    /// `torch.nn.Threshold(0.1, 0.0)`.
    Threshold,
    /// Softmax over the samples (the one activation that couples samples).
    Softmax,
    /// `torch.nn.GLU`: halves the output vector, so a candidate can never be trained with it.
    Glu,
}

/// Every activation name the reference accepts, with the function it selects.
pub const ACTIVATION_NAMES: [(&str, Activation); 33] = [
    ("identity", Activation::Identity),
    ("elu", Activation::Elu),
    ("hardshrink", Activation::Hardshrink),
    ("relu", Activation::Relu),
    ("sigmoid", Activation::Sigmoid),
    ("softmax", Activation::Softmax),
    ("tanh", Activation::Tanh),
    ("Identity", Activation::Identity),
    ("ELU", Activation::Elu),
    ("Hardshrink", Activation::Hardshrink),
    ("Hardsigmoid", Activation::Hardsigmoid),
    ("Hardtanh", Activation::Hardtanh),
    ("Hardswish", Activation::Hardswish),
    ("LeakyReLU", Activation::LeakyRelu),
    ("LogSigmoid", Activation::LogSigmoid),
    ("PReLU", Activation::Prelu),
    ("ReLU", Activation::Relu),
    ("ReLU6", Activation::Relu6),
    ("RReLU", Activation::Rrelu),
    ("SELU", Activation::Selu),
    ("CELU", Activation::Celu),
    ("GELU", Activation::Gelu),
    ("Sigmoid", Activation::Sigmoid),
    ("SiLU", Activation::Silu),
    ("Mish", Activation::Mish),
    ("Softmax", Activation::Softmax),
    ("Softplus", Activation::Softplus),
    ("Softshrink", Activation::Softshrink),
    ("Softsign", Activation::Softsign),
    ("Tanh", Activation::Tanh),
    ("Tanhshrink", Activation::Tanhshrink),
    ("Threshold", Activation::Threshold),
    ("GLU", Activation::Glu),
];

/// Name used when `activation_name` is absent or unknown.
pub const DEFAULT_ACTIVATION_NAME: &str = "sigmoid";

/// Outcome of an activation lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLookup {
    pub activation: Activation,
    /// The requested name as the reference prints it, when it was unknown and sigmoid
    /// was used instead.
    pub unknown_name: Option<String>,
}

const PRELU_SLOPE: f32 = 0.25;
const LEAKY_RELU_SLOPE: f32 = 0.01;
const SHRINK_LAMBDA: f32 = 0.5;
const THRESHOLD: f32 = 0.1;
const SOFTPLUS_THRESHOLD: f32 = 20.0;
const SELU_SCALE: f32 = 1.050_700_987_355_480_5_f64 as f32;
const SELU_ALPHA: f32 = 1.673_263_242_354_377_3_f64 as f32;

unsafe extern "C" {
    // C99 `erff` from the system math library, which every Linux Rust program links.
    fn erff(x: f32) -> f32;
}

fn erf_f32(x: f32) -> f32 {
    // SAFETY: `erff` is a pure function of its argument, defined for every float.
    unsafe { erff(x) }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn sign(z: f32) -> f32 {
    if z > 0.0 {
        1.0
    } else if z < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Looks `activation_name` up like the reference: exact key, then the lower-cased key,
/// then sigmoid. Absent, `null`, booleans and numbers fall back to sigmoid; a list or an
/// object is an error.
pub fn lookup_activation(name: Option<&Value>) -> Result<ActivationLookup, TrainerError> {
    let name = match name {
        None => {
            return Ok(ActivationLookup {
                activation: Activation::Sigmoid,
                unknown_name: None,
            });
        }
        Some(name) => name,
    };
    let printed = match name {
        Value::String(text) => {
            if let Some(activation) = find_exact(text).or_else(|| find_exact(&text.to_lowercase()))
            {
                return Ok(ActivationLookup {
                    activation,
                    unknown_name: None,
                });
            }
            text.clone()
        }
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(TrainerError::InvalidField {
                field: "candidate_data.activation_name",
                reason: format!("must be a string, got {name}"),
            });
        }
    };
    Ok(ActivationLookup {
        activation: Activation::Sigmoid,
        unknown_name: Some(printed),
    })
}

fn find_exact(name: &str) -> Option<Activation> {
    ACTIVATION_NAMES
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, activation)| *activation)
}

impl Activation {
    /// Returns true when the activation applies to each sample on its own (everything
    /// except Softmax and GLU).
    pub fn is_elementwise(self) -> bool {
        !matches!(self, Activation::Softmax | Activation::Glu)
    }

    /// Computes f(z) in float32 for an element-wise activation, following PyTorch's
    /// CPU formulas. RReLU returns its evaluation-mode value (slope 11/48) here; training
    /// with RReLU draws random slopes and goes through libtorch.
    pub fn value(self, z: f32) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::Relu6 => z.clamp(0.0, 6.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    z * LEAKY_RELU_SLOPE
                }
            }
            Activation::Prelu => {
                if z > 0.0 {
                    z
                } else {
                    z * PRELU_SLOPE
                }
            }
            Activation::Rrelu => {
                if z > 0.0 {
                    z
                } else {
                    z * ((1.0 / 8.0 + 1.0 / 3.0) / 2.0)
                }
            }
            Activation::Elu | Activation::Celu => {
                if z > 0.0 {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Activation::Selu => {
                if z > 0.0 {
                    z * SELU_SCALE
                } else {
                    z.exp_m1() * (SELU_ALPHA * SELU_SCALE)
                }
            }
            Activation::Gelu => z * 0.5 * (1.0 + erf_f32(z * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::Silu => z / (1.0 + (-z).exp()),
            Activation::Mish => z * z.exp().ln_1p().tanh(),
            Activation::Softplus => {
                if z > SOFTPLUS_THRESHOLD {
                    z
                } else {
                    z.exp().ln_1p()
                }
            }
            Activation::LogSigmoid => z.min(0.0) - (-z.abs()).exp().ln_1p(),
            Activation::Softsign => z / (z.abs() + 1.0),
            Activation::Tanhshrink => z - z.tanh(),
            Activation::Hardshrink => {
                if (-SHRINK_LAMBDA..=SHRINK_LAMBDA).contains(&z) {
                    0.0
                } else {
                    z
                }
            }
            Activation::Softshrink => {
                if z > SHRINK_LAMBDA {
                    z - SHRINK_LAMBDA
                } else if z < -SHRINK_LAMBDA {
                    z + SHRINK_LAMBDA
                } else {
                    0.0
                }
            }
            Activation::Hardtanh => z.clamp(-1.0, 1.0),
            Activation::Hardsigmoid => (z + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Hardswish => z * (z + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Threshold => {
                if z > THRESHOLD {
                    z
                } else {
                    0.0
                }
            }
            // Not element-wise: the callers handle these two before reaching here.
            Activation::Softmax | Activation::Glu => z,
        }
    }

    /// Computes f'(z) as PyTorch's backward formulas do, given z and f(z) = `output`.
    /// At kinks the value is the one autograd uses in torch 2.13 (for example ReLU'(0) = 0,
    /// Hardsigmoid'(±3) = 0, Hardswish'(-3) = 0, Hardswish'(3) = 1).
    pub fn derivative(self, z: f32, output: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Sigmoid => (1.0 - output) * output,
            Activation::Tanh => 1.0 - output * output,
            Activation::Relu => step(z > 0.0),
            Activation::Relu6 => step(z > 0.0 && z < 6.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    1.0
                } else {
                    LEAKY_RELU_SLOPE
                }
            }
            Activation::Prelu => {
                if z > 0.0 {
                    1.0
                } else {
                    PRELU_SLOPE
                }
            }
            Activation::Rrelu => {
                if z > 0.0 {
                    1.0
                } else {
                    (1.0 / 8.0 + 1.0 / 3.0) / 2.0
                }
            }
            Activation::Elu | Activation::Celu => {
                if z <= 0.0 {
                    z.exp()
                } else {
                    1.0
                }
            }
            Activation::Selu => {
                if z <= 0.0 {
                    (SELU_ALPHA * SELU_SCALE) * z.exp()
                } else {
                    SELU_SCALE
                }
            }
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + erf_f32(z * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * z * z).exp()
                    * (0.5 * std::f32::consts::FRAC_2_SQRT_PI)
                    * std::f32::consts::FRAC_1_SQRT_2;
                cdf + z * pdf
            }
            Activation::Silu => {
                let s = sigmoid(z);
                s * (1.0 + z * (1.0 - s))
            }
            Activation::Mish => {
                let tanh_softplus = z.exp().ln_1p().tanh();
                tanh_softplus + z * sigmoid(z) * (1.0 - tanh_softplus * tanh_softplus)
            }
            Activation::Softplus => {
                if z > SOFTPLUS_THRESHOLD {
                    1.0
                } else {
                    let e = z.exp();
                    e / (e + 1.0)
                }
            }
            Activation::LogSigmoid => {
                let e = (-z.abs()).exp();
                if z < 0.0 {
                    1.0 - e / (1.0 + e)
                } else {
                    e / (1.0 + e)
                }
            }
            Activation::Softsign => {
                // Autograd of z / (|z| + 1): the quotient rule plus the sign of |z|'s
                // derivative, evaluated as the two separate terms autograd adds.
                let denominator = z.abs() + 1.0;
                1.0 / denominator - z / (denominator * denominator) * sign(z)
            }
            Activation::Tanhshrink => {
                let t = z.tanh();
                1.0 - (1.0 - t * t)
            }
            Activation::Hardshrink | Activation::Softshrink => {
                step(!(-SHRINK_LAMBDA..=SHRINK_LAMBDA).contains(&z))
            }
            Activation::Hardtanh => step(z > -1.0 && z < 1.0),
            Activation::Hardsigmoid => {
                if z > -3.0 && z < 3.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }
            Activation::Hardswish => {
                if z <= -3.0 {
                    0.0
                } else if z < 3.0 {
                    z / 3.0 + 0.5
                } else {
                    1.0
                }
            }
            Activation::Threshold => step(z > THRESHOLD),
            Activation::Softmax | Activation::Glu => 1.0,
        }
    }

    /// Applies the activation to the 1-D pre-activation tensor `z` with libtorch
    /// operations that autograd can differentiate.
    pub fn apply_tensor(self, z: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Activation::Identity => Ok(z.shallow_clone()),
            Activation::Sigmoid => z.f_sigmoid(),
            Activation::Tanh => z.f_tanh(),
            Activation::Relu => z.f_relu(),
            Activation::Relu6 => z.f_relu6(),
            Activation::LeakyRelu => z.f_leaky_relu(),
            Activation::Prelu => {
                let slope = Tensor::f_full([1], f64::from(PRELU_SLOPE), (Kind::Float, z.device()))?;
                z.f_prelu(&slope)
            }
            Activation::Rrelu => rrelu_training(z),
            Activation::Elu => z.f_elu(),
            Activation::Celu => z.f_celu(),
            Activation::Selu => z.f_selu(),
            Activation::Gelu => z.f_gelu("none"),
            Activation::Silu => z.f_silu(),
            Activation::Mish => z.f_mish(),
            Activation::Softplus => z.f_softplus(),
            Activation::LogSigmoid => z.f_log_sigmoid(),
            Activation::Softsign => z.f_div(&z.f_abs()?.f_add_scalar(1.0)?),
            Activation::Tanhshrink => z.f_sub(&z.f_tanh()?),
            Activation::Hardshrink => z.f_hardshrink(),
            Activation::Softshrink => z.f_softshrink(),
            Activation::Hardtanh => z.f_hardtanh(),
            Activation::Hardsigmoid => z.f_hardsigmoid(),
            Activation::Hardswish => z.f_hardswish(),
            Activation::Threshold => z.f_threshold(f64::from(THRESHOLD), 0.0),
            Activation::Softmax => z.f_softmax(-1, Option::<Kind>::None),
            Activation::Glu => z.f_glu(-1),
        }
    }
}

/// RReLU in training mode, as torch's CPU kernel computes it: for every element z <= 0,
/// in order, one double from U(lower, upper) (one 64-bit draw from the default CPU
/// generator), rounded to float32, multiplies z. The slopes form a constant `noise` tensor,
/// so autograd's gradient is `noise` as well.
fn rrelu_training(z: &Tensor) -> Result<Tensor, TchError> {
    // torch converts the module's bounds (1/8, 1/3) to float32 before drawing.
    let lower = f64::from(1.0f32 / 8.0);
    let upper = f64::from(1.0f32 / 3.0);
    let mask = z.f_detach()?.f_le(0.0)?;
    let count = mask.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    let mut slopes = Tensor::f_empty([count], (Kind::Double, tch::Device::Cpu))?;
    let _ = slopes.f_uniform_(lower, upper)?;
    let slopes = slopes.f_totype(Kind::Float)?.f_to(z.device())?;
    let noise = z
        .f_detach()?
        .f_ones_like()?
        .f_masked_scatter(&mask, &slopes)?;
    z.f_mul(&noise)
}

fn step(condition: bool) -> f32 {
    if condition { 1.0 } else { 0.0 }
}

/// Returns the error that GLU produces for `samples` samples: torch rejects an odd length,
/// and an even length gives half as many outputs as residual-error rows.
pub fn glu_error(samples: usize) -> TrainerError {
    if samples % 2 == 1 {
        TrainerError::Training(format!(
            "GLU activation failed: halving dimension must be even, but dimension 0 is size {samples}"
        ))
    } else {
        TrainerError::Training(format!(
            "Output and residual error must have the same batch size: the GLU activation \
             returns {} outputs for {samples} residual error rows",
            samples / 2
        ))
    }
}
