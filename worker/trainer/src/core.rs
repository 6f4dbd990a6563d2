//! Training definitions shared by the native and the libtorch paths: the validated
//! problem, the correlation rules, best-column selection and early stopping.

use std::time::Instant;

use crate::activation::Activation;
use crate::error::TrainerError;

/// Denominator epsilon: D = ‖oc‖·‖ec‖ + 1e-8, in float32.
pub const DENOMINATOR_EPSILON: f32 = 1e-8;
/// A denominator below this (or NaN) makes the column's correlation 0.
pub const NEAR_ZERO_DENOMINATOR: f32 = 1e-7;
/// Reported denominator for a column caught by the near-zero rule.
pub const NEAR_ZERO_REPORTED_DENOMINATOR: f64 = 1e-8;
/// Early stopping: epochs without improvement before the loop stops.
pub const PATIENCE: u32 = 50;
/// Early stopping: minimum gain over the best correlation so far that counts as progress.
pub const CONVERGENCE_THRESHOLD: f64 = 0.001;

/// Validated training inputs, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// `x: [samples, inputs]`, row-major.
    pub x: &'a [f32],
    /// `residual_error: [samples, outputs]`, row-major (a 1-D error is one column).
    pub residual_error: &'a [f32],
    pub samples: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Per-run training settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub epochs: u64,
    pub learning_rate: f32,
    pub activation: Activation,
    pub early_stopping: bool,
    /// Training fails with [`TrainerError::DeadlineExceeded`] at the first epoch that
    /// would start after this instant, so that a task the caller gave up on stops using
    /// the CPU. `None` trains without a limit.
    pub deadline: Option<Instant>,
}

impl Settings {
    /// Returns [`TrainerError::DeadlineExceeded`], with `epochs_completed` in it, once the
    /// deadline has passed.
    pub fn check_deadline(&self, epochs_completed: u64) -> Result<(), TrainerError> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => {
                Err(TrainerError::DeadlineExceeded { epochs_completed })
            }
            _ => Ok(()),
        }
    }
}

/// Correlation of one residual-error column with the candidate output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnCorrelation {
    /// |S / D| in float64, clamped to 1.0 (NaN stays NaN); 0 under the near-zero rule.
    pub value: f64,
    /// Signed numerator S, or 0 under the near-zero rule.
    pub numerator: f64,
    /// Denominator D, or 1e-8 under the near-zero rule.
    pub denominator: f64,
}

/// Applies the per-column rules to the float32 numerator S and denominator D.
pub fn column_correlation(numerator: f32, denominator: f32) -> ColumnCorrelation {
    if denominator < NEAR_ZERO_DENOMINATOR || denominator.is_nan() {
        return ColumnCorrelation {
            value: 0.0,
            numerator: 0.0,
            denominator: NEAR_ZERO_REPORTED_DENOMINATOR,
        };
    }
    let numerator = f64::from(numerator);
    let denominator = f64::from(denominator);
    let mut value = (numerator / denominator).abs();
    if value > 1.0 {
        value = 1.0;
    }
    ColumnCorrelation {
        value,
        numerator,
        denominator,
    }
}

/// Computes D = A·B + ε in float32 from the norms of the centred output and error.
pub fn correlation_denominator(output_norm: f32, error_norm: f32) -> f32 {
    output_norm * error_norm + DENOMINATOR_EPSILON
}

/// Index of the largest |c|, first on ties; the first NaN wins (numpy `argmax`).
/// `None` for an empty slice.
pub fn best_column(correlations: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (index, &value) in correlations.iter().enumerate() {
        let magnitude = value.abs();
        if magnitude.is_nan() {
            return Some(index);
        }
        match best {
            Some((_, best_value)) if magnitude <= best_value => {}
            _ => best = Some((index, magnitude)),
        }
    }
    best.map(|(index, _)| index)
}

/// The evaluation after a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub correlations: Vec<f64>,
    pub best: usize,
    pub numerator: f64,
    pub denominator: f64,
}

impl Evaluation {
    /// Correlation of the best column.
    pub fn correlation(&self) -> f64 {
        self.correlations[self.best]
    }
}

/// Builds the evaluation from per-column correlations (at least one column).
pub fn evaluation_from_columns(columns: &[ColumnCorrelation]) -> Evaluation {
    let correlations: Vec<f64> = columns.iter().map(|column| column.value).collect();
    let best = best_column(&correlations).unwrap_or(0);
    Evaluation {
        numerator: columns[best].numerator,
        denominator: columns[best].denominator,
        correlations,
        best,
    }
}

/// Early-stopping bookkeeping: an epoch improves when its correlation exceeds the best so
/// far by more than the threshold; `PATIENCE` epochs without improvement stop the loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct EarlyStopping {
    best: f64,
    epochs_without_improvement: u32,
}

impl EarlyStopping {
    /// Records one epoch's pre-update correlation; returns true when training must stop.
    /// A NaN correlation counts as no improvement.
    pub fn should_stop(&mut self, correlation: f64) -> bool {
        if correlation.abs() > self.best.abs() + CONVERGENCE_THRESHOLD {
            self.best = correlation;
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
        }
        self.epochs_without_improvement >= PATIENCE
    }
}

/// Final state of a training run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub weights: Vec<f32>,
    pub bias: f32,
    pub epochs_completed: u64,
    pub evaluation: Evaluation,
    /// Centred output of the final forward pass, `[samples]`.
    pub norm_output: Vec<f32>,
    /// Centred residual-error column `evaluation.best`, `[samples]`.
    pub norm_error: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_zero_denominator_gives_zero() {
        let column = column_correlation(0.5, 9.9e-8);
        assert_eq!(column.value, 0.0);
        assert_eq!(column.numerator, 0.0);
        assert_eq!(column.denominator, 1e-8);
    }

    #[test]
    fn nan_denominator_gives_zero() {
        let column = column_correlation(0.5, f32::NAN);
        assert_eq!(column.value, 0.0);
        assert_eq!(column.denominator, 1e-8);
    }

    #[test]
    fn denominator_at_threshold_is_used() {
        let column = column_correlation(1e-7, 1e-7);
        assert_eq!(column.value, 1.0);
        assert_eq!(column.denominator, f64::from(1e-7f32));
    }

    #[test]
    fn correlation_clamps_to_one() {
        let column = column_correlation(-2.0, 1.0);
        assert_eq!(column.value, 1.0);
        assert_eq!(column.numerator, -2.0);
    }

    #[test]
    fn correlation_divides_in_f64() {
        let column = column_correlation(1.0, 3.0);
        assert_eq!(column.value, 1.0 / 3.0);
    }

    #[test]
    fn nan_numerator_is_not_clamped() {
        let column = column_correlation(f32::NAN, 2.0);
        assert!(column.value.is_nan());
    }

    #[test]
    fn epsilon_is_added_in_f32() {
        assert_eq!(correlation_denominator(0.0, 5.0), 1e-8f32);
        assert_eq!(correlation_denominator(2.0, 3.0), 6.0f32 + 1e-8f32);
    }

    #[test]
    fn best_column_first_on_ties() {
        assert_eq!(best_column(&[0.2, 0.7, 0.7]), Some(1));
    }

    #[test]
    fn best_column_first_nan_wins() {
        assert_eq!(best_column(&[0.9, f64::NAN, 0.95, f64::NAN]), Some(1));
    }

    #[test]
    fn best_column_empty() {
        assert_eq!(best_column(&[]), None);
    }

    #[test]
    fn early_stopping_after_patience_at_zero() {
        let mut stopping = EarlyStopping::default();
        let stops: Vec<bool> = (0..50).map(|_| stopping.should_stop(0.0)).collect();
        assert!(stops[..49].iter().all(|stop| !stop));
        assert!(stops[49]);
    }

    #[test]
    fn early_stopping_threshold_is_strict() {
        let mut stopping = EarlyStopping::default();
        assert!(!stopping.should_stop(0.5));
        let boundary = 0.5 + CONVERGENCE_THRESHOLD;
        for _ in 0..49 {
            assert!(!stopping.should_stop(boundary));
        }
        assert!(stopping.should_stop(boundary));
    }

    #[test]
    fn early_stopping_nan_is_no_improvement() {
        let mut stopping = EarlyStopping::default();
        for _ in 0..49 {
            assert!(!stopping.should_stop(f64::NAN));
        }
        assert!(stopping.should_stop(f64::NAN));
    }

    #[test]
    fn early_stopping_resets_on_improvement() {
        let mut stopping = EarlyStopping::default();
        for _ in 0..40 {
            stopping.should_stop(0.0);
        }
        assert!(!stopping.should_stop(0.2));
        for _ in 0..49 {
            assert!(!stopping.should_stop(0.2));
        }
        assert!(stopping.should_stop(0.2));
    }
}
