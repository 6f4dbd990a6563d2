//! Initial weights and bias, reproduced bit for bit from the reference's seeding.
//!
//! The reference seeds CPython's `random` with the seed, draws r2 = randint(0, M),
//! discards min(r2, 10000) further draws, then draws r3 = randint(0, M). It seeds torch's
//! default CPU generator with the same seed, discards min(r3, 10000) scalar
//! `randint(0, M)` draws from it, and takes `randn(D) * scale` and `randn(1) * scale`.
//! The numpy generator it also seeds does not influence the parameters.
//!
//! torch's generator is process-global, so every use of it (here and RReLU training)
//! holds [`TorchGenerator`]'s lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tch::{Device, Kind, Tensor};

use crate::error::TrainerError;
use crate::pyrandom::PyRandom;

/// Cap on the number of discarded draws per generator.
pub const MAX_ROLL_COUNT: u64 = 10_000;

static TORCH_GENERATOR: Mutex<()> = Mutex::new(());

/// Exclusive use of torch's process-global default CPU generator.
pub struct TorchGenerator {
    _guard: MutexGuard<'static, ()>,
}

impl TorchGenerator {
    /// Waits until no other thread of this process uses the generator.
    pub fn acquire() -> Self {
        Self {
            _guard: TORCH_GENERATOR
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// Number of torch `randint(0, roll_bound)` draws the reference discards before `randn`.
pub fn torch_discard_count(seed: u64, roll_bound: u64) -> u64 {
    let mut generator = PyRandom::from_seed(i128::from(seed));
    let skip = generator.randint_to(roll_bound);
    for _ in 0..skip.min(MAX_ROLL_COUNT) {
        generator.randint_to(roll_bound);
    }
    generator.randint_to(roll_bound).min(MAX_ROLL_COUNT)
}

/// Initial weights `[input_size]` and bias.
///
/// Leaves torch's generator where the reference leaves it, which matters to RReLU.
pub fn initial_parameters(
    _generator: &TorchGenerator,
    seed: u64,
    roll_bound: u64,
    input_size: usize,
    scale: f64,
) -> Result<(Vec<f32>, f32), TrainerError> {
    let discards = torch_discard_count(seed, roll_bound);
    let bound = i64::try_from(roll_bound).map_err(|_| TrainerError::InvalidField {
        field: "candidate_data.sequence_max_value",
        reason: format!("{roll_bound} is too large for the int64 random draws"),
    })?;
    let size = i64::try_from(input_size).map_err(|_| TrainerError::InvalidField {
        field: "candidate_data.input_size",
        reason: format!("{input_size} is too large"),
    })?;

    tch::manual_seed(seed as i64);
    let scalar_shape: [i64; 0] = [];
    for _ in 0..discards {
        let _discarded = Tensor::f_randint(bound, scalar_shape, (Kind::Int64, Device::Cpu))?;
    }
    let weights = Tensor::f_randn([size], (Kind::Float, Device::Cpu))?.f_mul_scalar(scale)?;
    let bias = Tensor::f_randn([1], (Kind::Float, Device::Cpu))?.f_mul_scalar(scale)?;

    let weights = tensor_to_vec(&weights)?;
    let bias = tensor_to_vec(&bias)?;
    Ok((weights, bias[0]))
}

/// Copies a float32 tensor (any device) into a host vector.
pub fn tensor_to_vec(tensor: &Tensor) -> Result<Vec<f32>, TrainerError> {
    let host = tensor
        .f_to(Device::Cpu)?
        .f_contiguous()?
        .f_totype(Kind::Float)?;
    let elements = host.numel();
    let mut values = vec![0.0f32; elements];
    host.f_copy_data(&mut values, elements)?;
    Ok(values)
}
