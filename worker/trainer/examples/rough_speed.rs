//! Rough epochs/s of the native path (not a benchmark harness).
use cascor_trainer::engine::{Problem, Settings, train_native, train_torch};
use cascor_trainer::Activation;
use std::time::Instant;

fn main() {
    for &(n, d, k, epochs) in &[(200usize, 2usize, 1usize, 20000u64), (1000, 10, 3, 5000), (10000, 50, 10, 300), (100000, 100, 10, 30)] {
        let mut s = 12345u64;
        let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 40) as f32 / 16777216.0) - 0.5 };
        let x: Vec<f32> = (0..n * d).map(|_| next()).collect();
        let e: Vec<f32> = (0..n * k).map(|_| next()).collect();
        let problem = Problem { x: &x, residual_error: &e, samples: n, inputs: d, outputs: k };
        let settings = Settings { epochs, learning_rate: 0.01, activation: Activation::Tanh, early_stopping: false };
        let w: Vec<f32> = (0..d).map(|i| 0.01 * i as f32).collect();
        for threads in [1usize, 2] {
            let t = Instant::now();
            let out = train_native(&problem, &settings, &w, 0.0, threads);
            let secs = t.elapsed().as_secs_f64();
            println!("native {n}x{d}x{k} threads {threads}: {:.0} epochs/s ({} epochs)", out.epochs_completed as f64 / secs, out.epochs_completed);
        }
        let torch_epochs = (epochs / 10).max(5);
        let ts = Settings { epochs: torch_epochs, ..settings };
        tch::set_num_threads(2);
        let t = Instant::now();
        let out = train_torch(&problem, &ts, &w, 0.0, tch::Device::Cpu).unwrap();
        println!("torch  {n}x{d}x{k} threads 2: {:.0} epochs/s", out.epochs_completed as f64 / t.elapsed().as_secs_f64());
    }
}
