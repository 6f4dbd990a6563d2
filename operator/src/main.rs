//! `cascor-operator`: runs the CascorWorkerPool controller against the cluster of the
//! current kubeconfig context or, inside a pod, the in-cluster configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cascor_operator::duration::parse_duration;
use cascor_operator::leader::LeaseSettings;
use cascor_operator::{RunOptions, run};
use clap::{Parser, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Kubernetes operator for CascorWorkerPool resources (cascor.juniper.dev/v1alpha1).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Comma-separated namespaces to watch; empty watches all namespaces.
    #[arg(
        long,
        env = "CASCOR_OPERATOR_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,

    /// Address the /healthz, /readyz and /metrics server binds to.
    #[arg(long, env = "CASCOR_OPERATOR_HTTP_BIND", default_value = "0.0.0.0")]
    http_bind: IpAddr,

    /// Port of the /healthz, /readyz and /metrics server; 0 turns it off.
    #[arg(long, env = "CASCOR_OPERATOR_HTTP_PORT", default_value_t = 8080)]
    http_port: u16,

    /// Elect a leader through a coordination.k8s.io Lease, so that several replicas can run.
    #[arg(long, env = "CASCOR_OPERATOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Namespace of the leader Lease. Defaults to the pod's namespace (POD_NAMESPACE).
    #[arg(long, env = "CASCOR_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "CASCOR_OPERATOR_LEADER_ELECTION_NAME",
        default_value = "cascor-operator-leader"
    )]
    leader_election_name: String,

    /// Lease duration, e.g. 15s: how long a standby waits for a silent leader.
    #[arg(long, env = "CASCOR_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,

    /// Period of the reconcile of every pool without any change, e.g. 5m.
    #[arg(long, env = "CASCOR_OPERATOR_RESYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    resync_interval: Duration,

    /// Kubeconfig file. Defaults to $KUBECONFIG, ~/.kube/config or the in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,

    /// Log line format.
    #[arg(
        long,
        env = "CASCOR_OPERATOR_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,

    /// Log filter in tracing's env-filter syntax, e.g. `info` or `cascor_operator=debug`.
    #[arg(long, env = "CASCOR_OPERATOR_LOG", default_value = "info")]
    log: String,
}

fn init_logging(args: &Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("invalid --log filter {:?}", args.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn client(args: &Args) -> anyhow::Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {} failed", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {} failed", path.display()))?
        }
        None => Config::infer()
            .await
            .context("no Kubernetes configuration found: set --kubeconfig or run in a pod")?,
    };
    Client::try_from(config).context("creating the Kubernetes client failed")
}

/// Cancels `shutdown` at the first SIGTERM or SIGINT.
fn cancel_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler failed")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM received; shutting down"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT received; shutting down"),
        }
        shutdown.cancel();
    });
    Ok(())
}

fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| format!("cascor-operator-{}", std::process::id()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Err(error) = init_logging(&args) {
        eprintln!("{error:#}");
        return std::process::ExitCode::from(2);
    }
    match run_operator(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_operator(args: Args) -> anyhow::Result<()> {
    let client = client(&args).await?;
    let identity = identity();
    let leader_election = if args.leader_election {
        let namespace = args
            .leader_election_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Some(LeaseSettings {
            namespace,
            name: args.leader_election_name.clone(),
            identity: identity.clone(),
            lease_duration: args.lease_duration,
            renew_interval: args.lease_duration / 3,
            retry_interval: (args.lease_duration / 5).max(Duration::from_secs(1)),
        })
    } else {
        None
    };
    let options = RunOptions {
        namespaces: args
            .namespaces
            .iter()
            .filter(|ns| !ns.is_empty())
            .cloned()
            .collect(),
        http_address: (args.http_port != 0)
            .then(|| SocketAddr::new(args.http_bind, args.http_port)),
        leader_election,
        resync_interval: args.resync_interval,
        instance: identity,
        ..RunOptions::default()
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        namespaces = ?options.namespaces,
        leader_election = args.leader_election,
        "starting cascor-operator"
    );

    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone())?;
    run(client, options, shutdown).await?;
    Ok(())
}
