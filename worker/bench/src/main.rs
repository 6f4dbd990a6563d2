//! `cascor-bench PLAN.json`: times cascor-trainer on every case of a benchmark plan and
//! prints one JSON record per case on stdout. `make bench` (scripts/bench.py) writes the
//! plan, runs this binary and the Python reference on it, and compares the two.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cascor_bench::{Plan, run_case};
use cascor_trainer::{CpuBackend, Device, Trainer, TrainerOptions};
use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(about = "Time cascor-trainer on a benchmark plan written by scripts/bench.py")]
struct Args {
    /// Plan file; input files are read relative to its folder.
    plan: PathBuf,
    /// CPU implementation: fused native loops (what the worker uses) or libtorch operations.
    #[arg(long, value_enum, default_value_t = Backend::Native)]
    backend: Backend,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Native,
    Torch,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let plan = Plan::load(&args.plan).map_err(|error| error.to_string())?;
    let folder = args.plan.parent().unwrap_or_else(|| ".".as_ref());
    let backend = match args.backend {
        Backend::Native => CpuBackend::Native,
        Backend::Torch => CpuBackend::Torch,
    };
    let trainer = Trainer::new(TrainerOptions {
        device: Device::Cpu,
        intra_op_threads: Some(plan.threads),
    })
    .map_err(|error| error.to_string())?;
    eprintln!("cascor-bench: {}", trainer.device_description());

    let mut warmed_up = HashSet::new();
    let mut stdout = std::io::stdout().lock();
    for case in &plan.cases {
        let record = run_case(&trainer, case, folder, backend, &mut warmed_up)
            .map_err(|error| error.to_string())?;
        let line = serde_json::to_string(&record).map_err(|error| error.to_string())?;
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|error| format!("cannot write to stdout: {error}"))?;
    }
    Ok(())
}
