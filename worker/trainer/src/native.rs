//! Native CPU training path: fused loops over contiguous float32 rows.
//!
//! One epoch makes two passes over `x` (the forward pass, and the gradient pass) and one
//! over the small per-sample vectors (centring and the per-column numerators). The
//! gradient is the analytic gradient of -|S/D| that autograd produces, with the
//! mean-centring correction computed from column sums. Sums are accumulated in float64
//! and rounded to float32 where the reference holds a float32 value.
//!
//! Large problems are split into contiguous row ranges, one per thread of a small team
//! that lives for the whole run. Every partial sum is combined in thread order, so a run
//! is deterministic for a given thread count. No allocation happens inside the epoch loop.

use std::sync::{Barrier, Mutex, MutexGuard, PoisonError};

use crate::activation::Activation;
use crate::core::{
    ColumnCorrelation, EarlyStopping, Evaluation, Outcome, Problem, Settings, best_column,
    column_correlation, correlation_denominator,
};
use crate::elementwise;
use crate::error::TrainerError;

/// Below this many elements (samples × max(inputs, outputs)) one thread is faster than
/// a team, because a phase's synchronisation costs a few microseconds.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;
/// Smallest row range worth giving to a thread.
const MIN_ROWS_PER_THREAD: usize = 1024;
/// Rows summed in float32 before the gradient partial is flushed into float64.
const GRADIENT_BLOCK_ROWS: usize = 64;

/// Trains on the CPU without libtorch. `threads` is the maximum team size.
pub fn train(
    problem: &Problem<'_>,
    settings: &Settings,
    initial_weights: &[f32],
    initial_bias: f32,
    threads: usize,
) -> Result<Outcome, TrainerError> {
    let samples = problem.samples;
    let error = CentredError::new(problem);
    let team_size = team_size(problem, threads);

    let mut z = vec![0.0f32; samples];
    let mut output = vec![0.0f32; samples];
    let mut centred_output = vec![0.0f32; samples];

    let command = Mutex::new(Command::new(problem.inputs));
    let partials: Vec<Mutex<Partial>> = (0..team_size)
        .map(|_| Mutex::new(Partial::new(problem.inputs, problem.outputs)))
        .collect();
    let start = Barrier::new(team_size);
    let done = Barrier::new(team_size);
    let shape = Shape {
        inputs: problem.inputs,
        outputs: problem.outputs,
        activation: settings.activation,
    };

    let (weights, bias, epochs_completed, evaluation) = std::thread::scope(|scope| {
        let mut chunks = split_rows(
            problem,
            &error.values,
            &mut z,
            &mut output,
            &mut centred_output,
            team_size,
        );

        let helpers = chunks.split_off(1);
        for (offset, chunk) in helpers.into_iter().enumerate() {
            let member = Member {
                chunk,
                partial: &partials[offset + 1],
            };
            let (command, start, done) = (&command, &start, &done);
            scope.spawn(move || member.serve(command, start, done, shape));
        }

        let main_chunk = chunks
            .pop()
            .expect("split_rows returns one chunk per team member");
        let mut team = Team {
            chunk: main_chunk,
            command: &command,
            partials: &partials,
            barriers: (team_size > 1).then_some((&start, &done)),
            shape,
        };
        let mut driver = Driver::new(&mut team, &error, problem, settings);
        let result = driver.run(initial_weights, initial_bias);
        team.dismiss();
        result
    })?;

    let norm_error = error.column(evaluation.best);
    Ok(Outcome {
        weights,
        bias,
        epochs_completed,
        evaluation,
        norm_output: centred_output,
        norm_error,
    })
}

/// Team size for a problem: one thread for small inputs, otherwise at most `threads`
/// with at least `MIN_ROWS_PER_THREAD` rows each.
pub fn team_size(problem: &Problem<'_>, threads: usize) -> usize {
    let elements = problem.samples * problem.inputs.max(problem.outputs);
    if threads <= 1 || elements < PARALLEL_MIN_ELEMENTS {
        return 1;
    }
    threads.min(problem.samples / MIN_ROWS_PER_THREAD).max(1)
}

/// The residual error centred per column, with its column sums and norms.
struct CentredError {
    /// `[samples, outputs]`, row-major.
    values: Vec<f32>,
    /// Σ_n ec[n, k] in float64 (zero up to rounding).
    sums: Vec<f64>,
    /// ‖ec[:, k]‖ as float32.
    norms: Vec<f32>,
    samples: usize,
    outputs: usize,
}

impl CentredError {
    fn new(problem: &Problem<'_>) -> Self {
        let (samples, outputs) = (problem.samples, problem.outputs);
        let mut means = vec![0.0f64; outputs];
        for row in problem.residual_error.chunks_exact(outputs) {
            for (mean, &value) in means.iter_mut().zip(row) {
                *mean += f64::from(value);
            }
        }
        let means: Vec<f32> = means
            .iter()
            .map(|sum| (sum / samples as f64) as f32)
            .collect();

        let mut values = Vec::with_capacity(samples * outputs);
        let mut sums = vec![0.0f64; outputs];
        let mut squares = vec![0.0f64; outputs];
        for row in problem.residual_error.chunks_exact(outputs) {
            for (column, &value) in row.iter().enumerate() {
                let centred = value - means[column];
                values.push(centred);
                sums[column] += f64::from(centred);
                squares[column] += f64::from(centred) * f64::from(centred);
            }
        }
        let norms = squares.iter().map(|square| square.sqrt() as f32).collect();
        Self {
            values,
            sums,
            norms,
            samples,
            outputs,
        }
    }

    fn column(&self, column: usize) -> Vec<f32> {
        (0..self.samples)
            .map(|sample| self.values[sample * self.outputs + column])
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// z = x·w + b; element-wise activations also compute the output.
    Forward,
    /// Softmax: e = exp(z − max z).
    SoftmaxExp,
    /// Softmax: o = e / Σe.
    SoftmaxNormalize,
    /// oc = o − mean(o), and the per-column numerators and ‖oc‖².
    Centre,
    /// Gradient of −|S/D| with respect to w and b.
    Gradient,
    /// Helpers return.
    Exit,
}

/// Scalars published for one phase.
#[derive(Debug, Clone, Copy)]
struct Scalars {
    phase: Phase,
    bias: f32,
    max_z: f32,
    inverse_exp_sum: f32,
    mean_output: f32,
    /// Residual-error column that the gradient follows.
    column: usize,
    /// ∂L/∂oc_n = error_coefficient·ec_n + output_coefficient·oc_n.
    error_coefficient: f64,
    output_coefficient: f64,
    /// Mean of ∂L/∂oc over the samples (the mean-centring correction).
    gradient_mean: f64,
    /// Softmax only: Σ_m h_m·o_m, with h = ∂L/∂o.
    softmax_correction: f64,
}

struct Command {
    scalars: Scalars,
    weights: Vec<f32>,
}

impl Command {
    fn new(inputs: usize) -> Self {
        Self {
            scalars: Scalars {
                phase: Phase::Forward,
                bias: 0.0,
                max_z: 0.0,
                inverse_exp_sum: 1.0,
                mean_output: 0.0,
                column: 0,
                error_coefficient: 0.0,
                output_coefficient: 0.0,
                gradient_mean: 0.0,
                softmax_correction: 0.0,
            },
            weights: vec![0.0; inputs],
        }
    }
}

/// One thread's sums for the current phase.
struct Partial {
    sum_output: f64,
    max_z: f32,
    sum_exp: f64,
    numerators: Vec<f64>,
    sum_squares: f64,
    sum_centred: f64,
    gradient: Vec<f64>,
    gradient_bias: f64,
}

impl Partial {
    fn new(inputs: usize, outputs: usize) -> Self {
        Self {
            sum_output: 0.0,
            max_z: f32::NEG_INFINITY,
            sum_exp: 0.0,
            numerators: vec![0.0; outputs],
            sum_squares: 0.0,
            sum_centred: 0.0,
            gradient: vec![0.0; inputs],
            gradient_bias: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    inputs: usize,
    outputs: usize,
    activation: Activation,
}

/// A contiguous row range with its per-sample buffers.
struct Chunk<'a> {
    x: &'a [f32],
    centred_error: &'a [f32],
    z: &'a mut [f32],
    output: &'a mut [f32],
    centred_output: &'a mut [f32],
    weights: Vec<f32>,
    block: Vec<f32>,
}

fn split_rows<'a>(
    problem: &Problem<'a>,
    centred_error: &'a [f32],
    mut z: &'a mut [f32],
    mut output: &'a mut [f32],
    mut centred_output: &'a mut [f32],
    team_size: usize,
) -> Vec<Chunk<'a>> {
    let rows_per_chunk = problem.samples.div_ceil(team_size);
    let (mut x, mut error) = (problem.x, centred_error);
    let mut chunks = Vec::with_capacity(team_size);
    for _ in 0..team_size {
        let rows = rows_per_chunk.min(z.len());
        let (x_rows, x_rest) = x.split_at(rows * problem.inputs);
        let (error_rows, error_rest) = error.split_at(rows * problem.outputs);
        let (z_rows, z_rest) = std::mem::take(&mut z).split_at_mut(rows);
        let (output_rows, output_rest) = std::mem::take(&mut output).split_at_mut(rows);
        let (centred_rows, centred_rest) = std::mem::take(&mut centred_output).split_at_mut(rows);
        chunks.push(Chunk {
            x: x_rows,
            centred_error: error_rows,
            z: z_rows,
            output: output_rows,
            centred_output: centred_rows,
            weights: vec![0.0; problem.inputs],
            block: vec![0.0; problem.inputs],
        });
        (x, error, z, output, centred_output) =
            (x_rest, error_rest, z_rest, output_rest, centred_rest);
    }
    chunks
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Dot product with eight independent float32 accumulators, which the compiler turns
/// into SIMD code.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0.0f32; LANES];
    let mut a_blocks = a.chunks_exact(LANES);
    let mut b_blocks = b.chunks_exact(LANES);
    for (a_block, b_block) in (&mut a_blocks).zip(&mut b_blocks) {
        for lane in 0..LANES {
            lanes[lane] += a_block[lane] * b_block[lane];
        }
    }
    let mut tail = 0.0f32;
    for (a_value, b_value) in a_blocks.remainder().iter().zip(b_blocks.remainder()) {
        tail += a_value * b_value;
    }
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
        + tail
}

/// Runs one phase over one chunk, writing that chunk's sums into `partial`.
fn run_phase(scalars: &Scalars, chunk: &mut Chunk<'_>, partial: &mut Partial, shape: Shape) {
    let activation = shape.activation;
    match scalars.phase {
        Phase::Forward => {
            let rows = chunk.x.chunks_exact(shape.inputs);
            for (row, z) in rows.zip(chunk.z.iter_mut()) {
                *z = dot(row, &chunk.weights) + scalars.bias;
            }
            // Tanh runs over the whole chunk, which the compiler vectorises.
            match activation {
                Activation::Softmax => {
                    partial.max_z = chunk.z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    return;
                }
                Activation::Tanh => elementwise::tanh_into(chunk.z, chunk.output),
                _ => {
                    for (output, &z) in chunk.output.iter_mut().zip(chunk.z.iter()) {
                        *output = activation.value(z);
                    }
                }
            }
            partial.sum_output = chunk.output.iter().map(|&output| f64::from(output)).sum();
            partial.max_z = f32::NEG_INFINITY;
        }
        Phase::SoftmaxExp => {
            let mut sum_exp = 0.0f64;
            for (z, output) in chunk.z.iter().zip(chunk.output.iter_mut()) {
                let exponential = (z - scalars.max_z).exp();
                *output = exponential;
                sum_exp += f64::from(exponential);
            }
            partial.sum_exp = sum_exp;
        }
        Phase::SoftmaxNormalize => {
            let mut sum_output = 0.0f64;
            for output in chunk.output.iter_mut() {
                *output *= scalars.inverse_exp_sum;
                sum_output += f64::from(*output);
            }
            partial.sum_output = sum_output;
        }
        Phase::Centre => {
            partial.numerators.fill(0.0);
            let mut sum_squares = 0.0f64;
            let mut sum_centred = 0.0f64;
            let error_rows = chunk.centred_error.chunks_exact(shape.outputs);
            for ((output, centred), error_row) in chunk
                .output
                .iter()
                .zip(chunk.centred_output.iter_mut())
                .zip(error_rows)
            {
                let value = output - scalars.mean_output;
                *centred = value;
                let value = f64::from(value);
                sum_squares += value * value;
                sum_centred += value;
                for (numerator, &error) in partial.numerators.iter_mut().zip(error_row) {
                    *numerator += value * f64::from(error);
                }
            }
            partial.sum_squares = sum_squares;
            partial.sum_centred = sum_centred;
        }
        Phase::Gradient => gradient_phase(scalars, chunk, partial, shape),
        Phase::Exit => {}
    }
}

fn gradient_phase(scalars: &Scalars, chunk: &mut Chunk<'_>, partial: &mut Partial, shape: Shape) {
    partial.gradient.fill(0.0);
    let mut gradient_bias = 0.0f64;
    let rows = chunk.z.len();
    let mut start = 0;
    while start < rows {
        let end = (start + GRADIENT_BLOCK_ROWS).min(rows);
        chunk.block.fill(0.0);
        let mut block_bias = 0.0f32;
        for sample in start..end {
            let error = f64::from(chunk.centred_error[sample * shape.outputs + scalars.column]);
            let centred = f64::from(chunk.centred_output[sample]);
            let upstream = scalars.error_coefficient * error + scalars.output_coefficient * centred
                - scalars.gradient_mean;
            let output = chunk.output[sample];
            let delta = if shape.activation == Activation::Softmax {
                (f64::from(output) * (upstream - scalars.softmax_correction)) as f32
            } else {
                upstream as f32 * shape.activation.derivative(chunk.z[sample], output)
            };
            let row = &chunk.x[sample * shape.inputs..(sample + 1) * shape.inputs];
            for (gradient, &input) in chunk.block.iter_mut().zip(row) {
                *gradient += delta * input;
            }
            block_bias += delta;
        }
        for (total, &block) in partial.gradient.iter_mut().zip(&chunk.block) {
            *total += f64::from(block);
        }
        gradient_bias += f64::from(block_bias);
        start = end;
    }
    partial.gradient_bias = gradient_bias;
}

/// A helper thread: waits for a phase, runs it on its own rows, reports its sums.
struct Member<'s, 'a> {
    chunk: Chunk<'a>,
    partial: &'s Mutex<Partial>,
}

impl Member<'_, '_> {
    fn serve(mut self, command: &Mutex<Command>, start: &Barrier, done: &Barrier, shape: Shape) {
        loop {
            start.wait();
            let scalars = {
                let command = lock(command);
                if command.scalars.phase == Phase::Forward {
                    self.chunk.weights.copy_from_slice(&command.weights);
                }
                command.scalars
            };
            if scalars.phase == Phase::Exit {
                return;
            }
            run_phase(&scalars, &mut self.chunk, &mut lock(self.partial), shape);
            done.wait();
        }
    }
}

/// The coordinating thread's side of the team; it also works on the first chunk.
struct Team<'s, 'a> {
    chunk: Chunk<'a>,
    command: &'s Mutex<Command>,
    partials: &'s [Mutex<Partial>],
    barriers: Option<(&'s Barrier, &'s Barrier)>,
    shape: Shape,
}

impl Team<'_, '_> {
    /// Publishes a phase, runs it on every chunk and waits for all of them.
    fn run(&mut self, scalars: Scalars, weights: Option<&[f32]>) {
        {
            let mut command = lock(self.command);
            command.scalars = scalars;
            if let Some(weights) = weights {
                command.weights.copy_from_slice(weights);
                self.chunk.weights.copy_from_slice(weights);
            }
        }
        if let Some((start, _)) = self.barriers {
            start.wait();
        }
        run_phase(
            &scalars,
            &mut self.chunk,
            &mut lock(&self.partials[0]),
            self.shape,
        );
        if let Some((_, done)) = self.barriers {
            done.wait();
        }
    }

    /// Sends the helpers home.
    fn dismiss(&mut self) {
        if let Some((start, _)) = self.barriers {
            lock(self.command).scalars.phase = Phase::Exit;
            start.wait();
        }
    }

    fn partials(&self) -> impl Iterator<Item = MutexGuard<'_, Partial>> {
        self.partials.iter().map(lock)
    }
}

/// Sums of one centring pass over all chunks.
struct CentreTotals {
    numerators: Vec<f64>,
    sum_squares: f64,
    sum_centred: f64,
    mean_output: f32,
    sum_output: f64,
}

/// The epoch loop, run by the coordinating thread.
struct Driver<'t, 's, 'a> {
    team: &'t mut Team<'s, 'a>,
    error: &'t CentredError,
    settings: Settings,
    samples: usize,
    scalars: Scalars,
    totals: CentreTotals,
    columns: Vec<ColumnCorrelation>,
    correlations: Vec<f64>,
    gradient: Vec<f64>,
}

impl<'t, 's, 'a> Driver<'t, 's, 'a> {
    fn new(
        team: &'t mut Team<'s, 'a>,
        error: &'t CentredError,
        problem: &Problem<'_>,
        settings: &Settings,
    ) -> Self {
        let scalars = lock(team.command).scalars;
        Self {
            team,
            error,
            settings: *settings,
            samples: problem.samples,
            scalars,
            totals: CentreTotals {
                numerators: vec![0.0; problem.outputs],
                sum_squares: 0.0,
                sum_centred: 0.0,
                mean_output: 0.0,
                sum_output: 0.0,
            },
            columns: Vec::with_capacity(problem.outputs),
            correlations: Vec::with_capacity(problem.outputs),
            gradient: vec![0.0; problem.inputs],
        }
    }

    fn run(
        &mut self,
        initial_weights: &[f32],
        initial_bias: f32,
    ) -> Result<(Vec<f32>, f32, u64, Evaluation), TrainerError> {
        let mut weights = initial_weights.to_vec();
        let mut bias = initial_bias;
        let mut stopping = EarlyStopping::default();
        let mut epochs_completed = 0;
        let learning_rate = self.settings.learning_rate;

        for epoch in 0..self.settings.epochs {
            self.settings.check_deadline(epochs_completed)?;
            epochs_completed = epoch + 1;

            self.forward_and_centre(&weights, bias);
            let best = self.evaluate_columns();
            let correlation = self.correlations[best];

            self.compute_gradient(best);
            for (weight, &gradient) in weights.iter_mut().zip(&self.gradient) {
                *weight -= learning_rate * gradient as f32;
            }
            bias -= learning_rate * self.scalars_gradient_bias() as f32;

            if self.settings.early_stopping && stopping.should_stop(correlation) {
                break;
            }
        }

        self.forward_and_centre(&weights, bias);
        let best = self.evaluate_columns();
        let evaluation = Evaluation {
            correlations: self.correlations.clone(),
            best,
            numerator: self.columns[best].numerator,
            denominator: self.columns[best].denominator,
        };
        Ok((weights, bias, epochs_completed, evaluation))
    }

    fn publish(&mut self, phase: Phase, weights: Option<&[f32]>) {
        self.scalars.phase = phase;
        self.team.run(self.scalars, weights);
    }

    /// Forward pass and centring; leaves the sums in `self.totals`.
    fn forward_and_centre(&mut self, weights: &[f32], bias: f32) {
        self.scalars.bias = bias;
        self.publish(Phase::Forward, Some(weights));

        let mut sum_output: f64 = self.team.partials().map(|partial| partial.sum_output).sum();
        if self.settings.activation == Activation::Softmax {
            self.scalars.max_z = self
                .team
                .partials()
                .map(|partial| partial.max_z)
                .fold(f32::NEG_INFINITY, f32::max);
            self.publish(Phase::SoftmaxExp, None);
            let sum_exp: f64 = self.team.partials().map(|partial| partial.sum_exp).sum();
            self.scalars.inverse_exp_sum = 1.0 / (sum_exp as f32);
            self.publish(Phase::SoftmaxNormalize, None);
            sum_output = self.team.partials().map(|partial| partial.sum_output).sum();
        }
        let mean_output = (sum_output / self.samples as f64) as f32;

        self.scalars.mean_output = mean_output;
        self.publish(Phase::Centre, None);

        let totals = &mut self.totals;
        totals.numerators.fill(0.0);
        totals.sum_squares = 0.0;
        totals.sum_centred = 0.0;
        totals.mean_output = mean_output;
        totals.sum_output = sum_output;
        for partial in self.team.partials() {
            for (total, part) in totals.numerators.iter_mut().zip(&partial.numerators) {
                *total += part;
            }
            totals.sum_squares += partial.sum_squares;
            totals.sum_centred += partial.sum_centred;
        }
    }

    fn output_norm(&self) -> f32 {
        self.totals.sum_squares.sqrt() as f32
    }

    /// Per-column correlations into the reused buffers; returns the best column.
    fn evaluate_columns(&mut self) -> usize {
        let output_norm = self.output_norm();
        self.columns.clear();
        self.correlations.clear();
        for (numerator, &error_norm) in self.totals.numerators.iter().zip(&self.error.norms) {
            let denominator = correlation_denominator(output_norm, error_norm);
            let column = column_correlation(*numerator as f32, denominator);
            self.columns.push(column);
            self.correlations.push(column.value);
        }
        best_column(&self.correlations).unwrap_or(0)
    }

    /// Gradient of −|S/D| for `column`, left in `self.gradient` and the bias partials.
    fn compute_gradient(&mut self, column: usize) {
        let output_norm = self.output_norm();
        let error_norm = self.error.norms[column];
        let numerator = self.totals.numerators[column];
        let denominator = correlation_denominator(output_norm, error_norm);
        let coefficients =
            gradient_coefficients(numerator as f32, denominator, output_norm, error_norm);

        let samples = self.samples as f64;
        let error_sum = self.error.sums[column];
        let gradient_mean = (coefficients.error * error_sum
            + coefficients.output * self.totals.sum_centred)
            / samples;

        self.scalars.column = column;
        self.scalars.error_coefficient = coefficients.error;
        self.scalars.output_coefficient = coefficients.output;
        self.scalars.gradient_mean = gradient_mean;
        if self.settings.activation == Activation::Softmax {
            // Σ_m h_m·o_m with o = oc + mean(o): expands into sums already known.
            let mean = f64::from(self.totals.mean_output);
            let error_dot_output = numerator + mean * error_sum;
            let centred_dot_output = self.totals.sum_squares + mean * self.totals.sum_centred;
            self.scalars.softmax_correction = coefficients.error * error_dot_output
                + coefficients.output * centred_dot_output
                - gradient_mean * self.totals.sum_output;
        }
        self.publish(Phase::Gradient, None);

        self.gradient.fill(0.0);
        for partial in self.team.partials() {
            for (total, part) in self.gradient.iter_mut().zip(&partial.gradient) {
                *total += part;
            }
        }
    }

    fn scalars_gradient_bias(&self) -> f64 {
        self.team
            .partials()
            .map(|partial| partial.gradient_bias)
            .sum()
    }
}

/// Coefficients of ∂L/∂oc_n = error·ec_n + output·oc_n for L = −|S/D|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientCoefficients {
    pub error: f64,
    pub output: f64,
}

/// Computes the coefficients from the float32 S, D, ‖oc‖ and ‖ec‖ of the chosen column.
/// With s = sign(S/D) (0 at 0): error = −s/D and output = s·S·‖ec‖/(D²·‖oc‖), the second
/// taken as 0 when ‖oc‖ = 0 (as the norm's backward does).
pub fn gradient_coefficients(
    numerator: f32,
    denominator: f32,
    output_norm: f32,
    error_norm: f32,
) -> GradientCoefficients {
    let correlation = numerator / denominator;
    let sign = if correlation.is_nan() {
        f64::NAN
    } else if correlation > 0.0 {
        1.0
    } else if correlation < 0.0 {
        -1.0
    } else {
        0.0
    };
    let (numerator, denominator) = (f64::from(numerator), f64::from(denominator));
    let (output_norm, error_norm) = (f64::from(output_norm), f64::from(error_norm));
    let output = if output_norm == 0.0 {
        0.0
    } else {
        sign * numerator * error_norm / (denominator * denominator * output_norm)
    };
    GradientCoefficients {
        error: -sign / denominator,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_serial_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let serial: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        assert!((f64::from(dot(&a, &b)) - serial).abs() < 1e-4);
    }

    #[test]
    fn team_size_small_problem_is_one() {
        let x = vec![0.0; 2000];
        let e = vec![0.0; 1000];
        let problem = Problem {
            x: &x,
            residual_error: &e,
            samples: 1000,
            inputs: 2,
            outputs: 1,
        };
        assert_eq!(team_size(&problem, 8), 1);
    }

    #[test]
    fn team_size_large_problem_uses_threads() {
        let x = vec![0.0; 100_000 * 10];
        let e = vec![0.0; 100_000];
        let problem = Problem {
            x: &x,
            residual_error: &e,
            samples: 100_000,
            inputs: 10,
            outputs: 1,
        };
        assert_eq!(team_size(&problem, 4), 4);
        assert_eq!(team_size(&problem, 1), 1);
    }

    #[test]
    fn zero_output_norm_drops_output_term() {
        let coefficients = gradient_coefficients(0.0, 1e-8, 0.0, 2.0);
        assert_eq!(coefficients.output, 0.0);
        assert_eq!(coefficients.error, 0.0);
    }
}
