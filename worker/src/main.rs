//! `juniper-cascor-worker`: trains juniper-cascor candidate units for a server over its
//! WebSocket worker endpoint.
//!
//! Start-up order: logging, configuration, signal handlers, health listener (bound before
//! the first connection attempt, so a port conflict stops the worker at once), trainer,
//! health server, agent. Exit status: 0 after an orderly stop, 1 for a configuration or
//! start-up error and for a second shutdown signal, 2 for a command-line syntax error.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use cascor_trainer::{Trainer, TrainerOptions};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use juniper_cascor_worker::agent;
use juniper_cascor_worker::agent::observer::AgentObserver;
use juniper_cascor_worker::config::{self, WorkerArgs, WorkerConfig};
use juniper_cascor_worker::health::{self, FanOutObserver, HealthState, ProbeSettings};
use juniper_cascor_worker::logging;
use juniper_cascor_worker::metrics::{BuildInfo, WorkerMetrics};
use juniper_cascor_worker::tls;

/// Cascade-Correlation candidate worker for a juniper-cascor server, training on libtorch.
///
/// Every flag except the legacy-mode ones can also be set with a JUNIPER_CASCOR_WORKER_*
/// environment variable (or its _FILE form); flags win. Unique prefixes of long flags are
/// accepted.
#[derive(Debug, Parser)]
#[command(
    name = "juniper-cascor-worker",
    version,
    infer_long_args = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    worker: WorkerArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one candidate task from a JSON file and write its result, without a server.
    RunTask(juniper_cascor_worker::run_task::RunTaskArgs),
}

/// Failure after the configuration was accepted.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    HealthBind(#[from] health::HealthError),
    #[error("failed to start the trainer on device {device}: {reason}")]
    Trainer { device: String, reason: String },
    #[error(transparent)]
    Metrics(#[from] juniper_cascor_worker::metrics::MetricsError),
    #[error("failed to install the handler for {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("worker agent failed: {0}")]
    Agent(#[source] agent::AgentError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(command) = cli.command {
        match command {
            Command::RunTask(args) => return juniper_cascor_worker::run_task::run(args),
        }
    }

    let env = process_environment();
    let read_file = |path: &Path| std::fs::read_to_string(path);

    let log_settings = match config::resolve_logging(&cli.worker, &env, &read_file) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return exit_code(error.exit_code());
        }
    };
    if let Err(error) = logging::init(&log_settings) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }

    let config = match config::resolve(&cli.worker, &env, &read_file) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return exit_code(error.exit_code());
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "failed to start the async runtime");
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(run(config)) {
        Ok(()) => {
            tracing::info!("Worker shut down.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the worker until the agent stops after a shutdown signal.
async fn run(config: WorkerConfig) -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    install_signal_handlers(shutdown.clone())?;

    if config.agent.server_url.starts_with("wss://") {
        tls::validate_tls_files(&config.agent.tls)?;
    }
    let listener = health::bind(&config.health).await?;

    let trainer = start_trainer(&config).await?;
    let device = trainer.device_description();
    tracing::info!(device = %device, "trainer ready on {device}");

    let metrics = Arc::new(WorkerMetrics::new(&BuildInfo::current(device))?);
    let mut probes = ProbeSettings::new(
        config.agent.heartbeat_interval,
        config.agent.idle_heartbeat_interval,
        config.provenance.clone(),
    );
    probes.client_id = Some(config.agent.identity.client_id.clone());
    let health = Arc::new(HealthState::new(probes));
    let health_shutdown = CancellationToken::new();
    let health_server = tokio::spawn(health::serve(
        listener,
        health::router(health.clone(), metrics.clone()),
        health_shutdown.clone(),
    ));

    let observers: Vec<Arc<dyn AgentObserver>> = vec![health, metrics];
    let observer: Arc<dyn AgentObserver> = Arc::new(FanOutObserver::new(observers));
    tracing::info!(
        server_url = %config.agent.server_url,
        "Starting WebSocket worker — connecting to {}",
        config.agent.server_url
    );
    let outcome = agent::run(config.agent, trainer, observer, shutdown).await;

    health_shutdown.cancel();
    match health_server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(error = %error, "worker health server failed"),
        Err(error) => tracing::error!(error = %error, "worker health server task panicked"),
    }

    outcome.map_err(StartError::Agent)
}

/// Creates the trainer on a blocking thread: resolving a CUDA device loads large libraries.
async fn start_trainer(config: &WorkerConfig) -> Result<Arc<Trainer>, StartError> {
    let options = TrainerOptions {
        device: config.trainer.device,
        intra_op_threads: config.trainer.intra_op_threads,
    };
    let device = config.trainer.device_name.clone();

    let created = tokio::task::spawn_blocking(move || Trainer::new(options)).await;
    match created {
        Ok(Ok(trainer)) => Ok(Arc::new(trainer)),
        Ok(Err(error)) => Err(StartError::Trainer {
            device,
            reason: error.to_string(),
        }),
        Err(error) => Err(StartError::Trainer {
            device,
            reason: format!("trainer start-up panicked: {error}"),
        }),
    }
}

/// Installs the SIGTERM and SIGINT handlers. The first signal cancels `shutdown`, so the
/// agent finishes and delivers the task in flight and then closes the connection. A second
/// signal ends the process at once with status 1.
fn install_signal_handlers(shutdown: CancellationToken) -> Result<(), StartError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|source| StartError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| StartError::Signal {
        signal: "SIGINT",
        source,
    })?;

    tokio::spawn(async move {
        let first = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = first, "Shutdown requested (Ctrl+C again to force)");
        shutdown.cancel();

        let second = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::warn!(
            signal = second,
            "second shutdown signal: exiting at once with status 1"
        );
        std::process::exit(1);
    });

    Ok(())
}

/// Collects the process environment; variables whose name or value is not valid Unicode
/// are skipped, since no setting of this worker is spelled that way.
fn process_environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
