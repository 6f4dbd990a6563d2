//! A branch-free float32 `tanh` for whole slices, used by the native forward pass in
//! place of one libm call per sample.
//!
//! The function has no calls or data-dependent branches, so the compiler can turn the
//! slice loop into SIMD code. It follows the Cephes single-precision method: an odd
//! polynomial near zero, and `1 - 2 / (e^2x + 1)` elsewhere, with `exp` computed by range
//! reduction to powers of two and a short polynomial. On the unit tests' grid of arguments
//! it differs from libm's `tanhf` by a relative 5e-7 at most, far inside the tolerance the
//! results are held to.
//!
//! Sigmoid keeps libm's `expf`: the chaotic golden case (a sigmoid spiral) amplifies any
//! rounding change, and its result under this `exp` came close to the edge of the
//! tolerance that the reference's own sensitivity allows.

/// `log2(e)`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln(2)` split in two parts, so that `n * ln(2)` is subtracted without rounding error.
const LN_2_HIGH: f32 = 0.693_359_4;
const LN_2_LOW: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 * 2^23 rounds a float32 of magnitude below 2^22 to the
/// nearest integer, without a call to `roundf`.
const ROUNDING_SHIFT: f32 = 12_582_912.0;
/// `exp` is evaluated on this range: below it the result is under the smallest normal
/// float32, above it the result overflows.
const EXP_MIN_ARGUMENT: f32 = -87.0;
const EXP_MAX_ARGUMENT: f32 = 88.0;
/// Below this magnitude `tanh` uses its odd polynomial, where `1 - 2 / (e^2x + 1)` would
/// lose precision to cancellation.
const TANH_POLYNOMIAL_LIMIT: f32 = 0.625;
/// `tanh(10)` rounds to 1 in float32, so larger arguments are clamped to it.
const TANH_SATURATION: f32 = 10.0;

/// Returns `e^x`, for arguments clamped to [-87, 88].
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN_ARGUMENT, EXP_MAX_ARGUMENT);
    let n = (x * LOG2_E + ROUNDING_SHIFT) - ROUNDING_SHIFT;
    let r = x - n * LN_2_HIGH - n * LN_2_LOW;
    let r2 = r * r;
    let polynomial =
        (((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
            + 1.666_666_5e-1)
            * r
            + 5e-1)
            * r2
            + r
            + 1.0;
    // n is an integer in [-126, 127], so 2^n is a normal float32 built from its exponent.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    polynomial * scale
}

/// Returns `tanh(x)`, and NaN for NaN.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let magnitude = x.abs();
    let z = x * x;
    let near_zero =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let e = exp(2.0 * magnitude.min(TANH_SATURATION));
    let far = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let value = if magnitude < TANH_POLYNOMIAL_LIMIT {
        near_zero
    } else {
        far
    };
    if x.is_nan() { x } else { value }
}

/// Writes `tanh(z[i])` into `output[i]`.
pub fn tanh_into(z: &[f32], output: &mut [f32]) {
    for (output, &z) in output.iter_mut().zip(z) {
        *output = tanh(z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error that the tests allow: a few units in the last place of a float32.
    const RELATIVE_TOLERANCE: f64 = 5e-7;

    fn assert_close(function: &str, x: f32, ours: f32, libm: f32) {
        let error = if ours == libm {
            0.0
        } else {
            (f64::from(ours) - f64::from(libm)).abs() / f64::from(libm).abs()
        };
        assert!(
            error <= RELATIVE_TOLERANCE,
            "{function}({x}): {ours} vs libm {libm}"
        );
    }

    /// Arguments from -20 to 20 in small steps, plus the edges of every branch.
    fn arguments() -> Vec<f32> {
        let mut values: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        values.extend([
            1e-30,
            -1e-30,
            1e-8,
            TANH_POLYNOMIAL_LIMIT,
            -TANH_POLYNOMIAL_LIMIT,
            TANH_SATURATION,
            50.0,
            -50.0,
            87.5,
            -87.5,
            200.0,
            -200.0,
        ]);
        values
    }

    #[test]
    fn exp_close_to_libm() {
        for x in (-8_700..=8_800).map(|i| i as f32 * 1e-2) {
            assert_close("exp", x, exp(x), x.exp());
        }
    }

    #[test]
    fn tanh_close_to_libm() {
        for x in arguments() {
            assert_close("tanh", x, tanh(x), x.tanh());
        }
    }

    #[test]
    fn special_values() {
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(0.0), 0.0);
    }

    #[test]
    fn slice_matches_scalar_function() {
        let z: Vec<f32> = arguments();
        let mut output = vec![0.0; z.len()];
        tanh_into(&z, &mut output);
        for (&x, &value) in z.iter().zip(&output) {
            assert_eq!(value.to_bits(), tanh(x).to_bits(), "tanh({x})");
        }
    }
}
