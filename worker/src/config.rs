//! Command-line flags and environment variables, merged into validated worker settings.
//!
//! The flags are those of the Python reference worker (`juniper-cascor-worker` 0.6.1),
//! parsed like Python's argparse (unique prefixes of long flags are accepted), plus the Rust
//! worker's own flags. Every setting except the legacy-mode ones can also come from a
//! `JUNIPER_CASCOR_WORKER_*` variable. The precedence is flag, then environment, then default.
//!
//! One environment setting with canonical name `C` and deprecated alias `L` is looked up in
//! this order: `C_FILE`, `C`, `L_FILE`, `L`, default. A `_FILE` variable names a file whose
//! trimmed content is used when the file is readable and non-empty. `C` counts when set, even
//! to the empty string, so an empty `C` hides the aliases. Each deprecated name that supplies
//! a value produces one warning.
//!
//! [`resolve`] is a pure function of the parsed flags, an environment map and a file reader,
//! so the whole chain is unit-testable without touching the process environment.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cascor_trainer::Device;
use clap::{Args, ValueEnum};

use crate::agent::settings::{AgentSettings, Secret, TlsSettings, WorkerIdentity};

/// Prefix of every canonical environment variable.
pub const ENV_PREFIX: &str = "JUNIPER_CASCOR_WORKER_";

/// Heartbeat timeout of the juniper-cascor server: a worker silent for this long is dropped.
pub const SERVER_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

const DEFAULT_HEARTBEAT_INTERVAL_SECS: f64 = 10.0;
const DEFAULT_IDLE_HEARTBEAT_INTERVAL_SECS: f64 = 1.0;
const DEFAULT_TASK_TIMEOUT_SECS: f64 = 3600.0;
const DEFAULT_RECONNECT_BACKOFF_BASE_SECS: f64 = 1.0;
const DEFAULT_RECONNECT_BACKOFF_MAX_SECS: f64 = 60.0;
const DEFAULT_HEALTH_BIND: &str = "127.0.0.1";
const DEFAULT_HEALTH_PORT: i64 = 8210;

/// Flags of the worker mode (everything except subcommands).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Select the deprecated multiprocessing-manager worker. Not supported by this worker:
    /// it exits with status 2.
    #[arg(long)]
    pub legacy: bool,

    /// WebSocket URL of the server's worker endpoint, e.g. ws://cascor:8200/ws/v1/workers
    /// [env: JUNIPER_CASCOR_WORKER_SERVER_URL]
    #[arg(long, value_name = "URL")]
    pub server_url: Option<String>,

    /// Token sent as the X-API-Key header of the WebSocket upgrade. Empty sends no header
    /// [env: JUNIPER_CASCOR_WORKER_AUTH_TOKEN]
    #[arg(long, visible_alias = "api-key", value_name = "TOKEN", value_parser = parse_secret)]
    pub auth_token: Option<Secret>,

    /// Seconds between heartbeats while a task is in flight [default: 10.0]
    /// [env: JUNIPER_CASCOR_WORKER_HEARTBEAT_INTERVAL]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub heartbeat_interval: Option<f64>,

    /// Seconds between heartbeats while idle. The server dispatches work to an idle worker
    /// only when it receives a message from it [default: 1.0]
    /// [env: JUNIPER_CASCOR_WORKER_IDLE_HEARTBEAT_INTERVAL]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub idle_heartbeat_interval: Option<f64>,

    /// Client certificate chain (PEM) for mTLS, used together with --tls-key
    /// [env: JUNIPER_CASCOR_WORKER_TLS_CERT]
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// Client private key (PEM) for mTLS, used together with --tls-cert
    /// [env: JUNIPER_CASCOR_WORKER_TLS_KEY]
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// CA bundle (PEM) trusted in addition to the system roots
    /// [env: JUNIPER_CASCOR_WORKER_TLS_CA]
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

    /// Limit on the training time of one task, in seconds [default: 3600.0]
    /// [env: JUNIPER_CASCOR_WORKER_TASK_TIMEOUT]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub task_timeout: Option<f64>,

    /// Training device: auto, cpu, cuda or cuda:N [default: auto]
    /// [env: JUNIPER_CASCOR_WORKER_DEVICE]
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,

    /// Intra-op threads of the trainer [default: the CPUs this process may use]
    /// [env: JUNIPER_CASCOR_WORKER_THREADS]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Address the health and metrics server binds to [default: 127.0.0.1]
    /// [env: JUNIPER_CASCOR_WORKER_HEALTH_BIND]
    #[arg(long, value_name = "ADDRESS")]
    pub health_bind: Option<String>,

    /// Port of the health and metrics server [default: 8210]
    /// [env: JUNIPER_CASCOR_WORKER_HEALTH_PORT]
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub health_port: Option<i64>,

    /// Log level [default: INFO] [env: JUNIPER_CASCOR_WORKER_LOG_LEVEL]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Log line format on standard error [default: text]
    /// [env: JUNIPER_CASCOR_WORKER_LOG_FORMAT]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Accepted for compatibility with the Python worker; has no effect.
    #[arg(long, value_name = "PATH")]
    pub cascor_path: Option<PathBuf>,

    /// Legacy mode only (not supported): host of the multiprocessing manager.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub manager_host: String,

    /// Legacy mode only (not supported): port of the multiprocessing manager.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 50000,
        allow_negative_numbers = true
    )]
    pub manager_port: i64,

    /// Legacy mode only (not supported): authentication key of the multiprocessing manager.
    #[arg(long, value_name = "KEY", value_parser = parse_secret)]
    pub authkey: Option<Secret>,

    /// Legacy mode only (not supported): number of worker processes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub workers: i64,

    /// Legacy mode only (not supported): multiprocessing start method.
    #[arg(long, value_enum, value_name = "METHOD", default_value = "forkserver")]
    pub mp_context: MpContext,
}

fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// Log level names of the Python worker (case-sensitive, as there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    /// Returns the matching `tracing` level.
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

/// Format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event: timestamp, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Start methods of Python's multiprocessing, accepted for the legacy mode's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MpContext {
    #[default]
    Forkserver,
    Spawn,
    Fork,
}

/// Everything the worker process needs, validated.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub agent: AgentSettings,
    pub health: HealthSettings,
    pub trainer: TrainerSettings,
    pub logging: LogSettings,
    pub provenance: Provenance,
    /// Warnings found while resolving (deprecated variables, risky values), to be logged
    /// once logging is set up. Each deprecated name appears once.
    pub warnings: Vec<String>,
}

/// Bind address of the health and metrics server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    pub bind: String,
    pub port: u16,
}

impl HealthSettings {
    /// Returns `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.bind.contains(':') && !self.bind.starts_with('[') {
            format!("[{}]:{}", self.bind, self.port)
        } else {
            format!("{}:{}", self.bind, self.port)
        }
    }
}

/// Trainer options from the command line.
#[derive(Debug, Clone)]
pub struct TrainerSettings {
    pub device: Device,
    /// The spelling the device was requested with, for logs and metrics.
    pub device_name: String,
    /// Intra-op threads; `None` lets the trainer choose.
    pub intra_op_threads: Option<usize>,
}

/// Logging options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// Build provenance reported on `/v1/health`, from `JUNIPER_CASCOR_WORKER_GIT_SHA` and
/// `JUNIPER_CASCOR_WORKER_BUILD_DATE` (no `_FILE` forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub git_sha: Option<String>,
    pub build_date: Option<String>,
}

/// Configuration error: the flags and environment do not describe a runnable worker.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--legacy is not supported: the legacy mode connects to the server's Python \
         multiprocessing manager, exchanges pickled Python objects with it and runs the \
         server's own Python training code, so it needs the juniper-cascor source tree and a \
         Python interpreter. Run without --legacy to use the WebSocket mode with --server-url."
    )]
    LegacyUnsupported,
    #[error("server_url is required — set JUNIPER_CASCOR_WORKER_SERVER_URL or pass --server-url")]
    MissingServerUrl,
    #[error("server_url must start with ws:// or wss://, got: {0}")]
    InvalidServerUrlScheme(String),
    #[error("{name} must be > 0, got {value}")]
    NotPositive { name: &'static str, value: String },
    #[error("{name} must be a finite number, got {value}")]
    NotFinite { name: &'static str, value: String },
    #[error("health_port must be 1-65535, got {0}")]
    InvalidHealthPort(i64),
    #[error("health_bind must be a non-empty hostname/IP")]
    EmptyHealthBind,
    #[error("threads must be >= 1, got {0}")]
    InvalidThreads(usize),
    #[error(transparent)]
    InvalidDevice(cascor_trainer::TrainerError),
    #[error("tls_cert and tls_key must be set together, but only {given} is set")]
    IncompleteClientCertificate { given: &'static str },
    #[error("invalid value {value:?} in environment variable {variable}: {reason}")]
    InvalidEnvironmentValue {
        variable: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// Returns the process exit status for this error: 2 for an unsupported mode (a usage
    /// error, like a bad flag), 1 for every other configuration error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::LegacyUnsupported => 2,
            _ => 1,
        }
    }
}

/// Reads the file named by a `_FILE` variable.
pub type FileReader<'a> = &'a dyn Fn(&Path) -> io::Result<String>;

/// Resolves the log level and format alone, so logging can start before the rest of the
/// configuration is checked.
pub fn resolve_logging(
    args: &WorkerArgs,
    env: &HashMap<String, String>,
    read_file: FileReader<'_>,
) -> Result<LogSettings, ConfigError> {
    let mut lookup = EnvLookup::new(env, read_file);

    let level = match args.log_level {
        Some(level) => level,
        None => lookup
            .parse_with("LOG_LEVEL", &[], |raw| {
                LogLevel::from_str(raw, false)
                    .map_err(|_| "expected DEBUG, INFO, WARNING or ERROR".to_owned())
            })?
            .unwrap_or(LogLevel::Info),
    };

    let format = match args.log_format {
        Some(format) => format,
        None => lookup
            .parse_with("LOG_FORMAT", &[], |raw| {
                LogFormat::from_str(raw, false).map_err(|_| "expected text or json".to_owned())
            })?
            .unwrap_or_default(),
    };

    Ok(LogSettings { level, format })
}

/// Merges flags, environment and defaults into a validated [`WorkerConfig`].
pub fn resolve(
    args: &WorkerArgs,
    env: &HashMap<String, String>,
    read_file: FileReader<'_>,
) -> Result<WorkerConfig, ConfigError> {
    if args.legacy {
        return Err(ConfigError::LegacyUnsupported);
    }

    let logging = resolve_logging(args, env, read_file)?;
    let mut lookup = EnvLookup::new(env, read_file);

    let server_url = match non_empty(args.server_url.as_deref()) {
        Some(url) => url.to_owned(),
        None => lookup
            .value("SERVER_URL", &["CASCOR_SERVER_URL"])
            .unwrap_or_default(),
    };
    let auth_token = match args
        .auth_token
        .as_ref()
        .filter(|token| !token.expose().is_empty())
    {
        Some(token) => Some(token.clone()),
        None => lookup.auth_token(),
    };

    let heartbeat_interval = seconds_setting(
        &mut lookup,
        args.heartbeat_interval,
        "HEARTBEAT_INTERVAL",
        &["CASCOR_HEARTBEAT_INTERVAL"],
        DEFAULT_HEARTBEAT_INTERVAL_SECS,
    )?;
    let idle_heartbeat_interval = seconds_setting(
        &mut lookup,
        args.idle_heartbeat_interval,
        "IDLE_HEARTBEAT_INTERVAL",
        &[],
        DEFAULT_IDLE_HEARTBEAT_INTERVAL_SECS,
    )?;
    let task_timeout = seconds_setting(
        &mut lookup,
        args.task_timeout,
        "TASK_TIMEOUT",
        &["CASCOR_TASK_TIMEOUT"],
        DEFAULT_TASK_TIMEOUT_SECS,
    )?;

    let tls = TlsSettings {
        ca_file: path_setting(
            &mut lookup,
            args.tls_ca.as_deref(),
            "TLS_CA",
            &["CASCOR_TLS_CA"],
        ),
        cert_file: path_setting(
            &mut lookup,
            args.tls_cert.as_deref(),
            "TLS_CERT",
            &["CASCOR_TLS_CERT"],
        ),
        key_file: path_setting(
            &mut lookup,
            args.tls_key.as_deref(),
            "TLS_KEY",
            &["CASCOR_TLS_KEY"],
        ),
    };

    let health_bind = match non_empty(args.health_bind.as_deref()) {
        Some(bind) => bind.to_owned(),
        None => lookup
            .value("HEALTH_BIND", &["CASCOR_WORKER_HEALTH_BIND"])
            .filter(|bind| !bind.is_empty())
            .unwrap_or_else(|| DEFAULT_HEALTH_BIND.to_owned()),
    };
    let health_port = match args.health_port {
        Some(port) => port,
        None => lookup
            .parse_with("HEALTH_PORT", &["CASCOR_WORKER_HEALTH_PORT"], parse_int)?
            .unwrap_or(DEFAULT_HEALTH_PORT),
    };

    let device_name = match non_empty(args.device.as_deref()) {
        Some(device) => device.to_owned(),
        None => lookup
            .value("DEVICE", &[])
            .filter(|device| !device.is_empty())
            .unwrap_or_else(|| "auto".to_owned()),
    };
    let intra_op_threads = match args.threads {
        Some(threads) => Some(threads),
        None => lookup.parse_with("THREADS", &[], |raw| {
            raw.trim()
                .parse::<usize>()
                .map_err(|error| error.to_string())
        })?,
    };

    let provenance = Provenance {
        git_sha: env_plain(env, "GIT_SHA"),
        build_date: env_plain(env, "BUILD_DATE"),
    };
    let identity = WorkerIdentity {
        client_id: uuid::Uuid::new_v4().to_string(),
        hostname: hostname(env, read_file),
        pod_name: env
            .get("POD_NAME")
            .filter(|value| !value.is_empty())
            .cloned(),
        pod_namespace: env
            .get("POD_NAMESPACE")
            .filter(|value| !value.is_empty())
            .cloned(),
    };

    // Validation, in the order of the Python worker's checks.
    if server_url.is_empty() {
        return Err(ConfigError::MissingServerUrl);
    }
    if !(server_url.starts_with("ws://") || server_url.starts_with("wss://")) {
        return Err(ConfigError::InvalidServerUrlScheme(server_url));
    }
    let heartbeat_interval = positive_duration("heartbeat_interval", heartbeat_interval)?;
    let idle_heartbeat_interval =
        positive_duration("idle_heartbeat_interval", idle_heartbeat_interval)?;
    let task_timeout = positive_duration("task_timeout", task_timeout)?;
    if !(1..=65535).contains(&health_port) {
        return Err(ConfigError::InvalidHealthPort(health_port));
    }
    let health_port =
        u16::try_from(health_port).map_err(|_| ConfigError::InvalidHealthPort(health_port))?;
    if health_bind.trim().is_empty() {
        return Err(ConfigError::EmptyHealthBind);
    }
    if intra_op_threads == Some(0) {
        return Err(ConfigError::InvalidThreads(0));
    }
    let device = Device::from_str(&device_name).map_err(ConfigError::InvalidDevice)?;
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => {
            return Err(ConfigError::IncompleteClientCertificate { given: "tls_cert" });
        }
        (None, Some(_)) => {
            return Err(ConfigError::IncompleteClientCertificate { given: "tls_key" });
        }
        _ => {}
    }

    let mut warnings = lookup.into_warnings();
    warnings.extend(value_warnings(
        &server_url,
        &tls,
        heartbeat_interval,
        idle_heartbeat_interval,
        args,
    ));

    Ok(WorkerConfig {
        agent: AgentSettings {
            server_url,
            auth_token,
            heartbeat_interval,
            idle_heartbeat_interval,
            task_timeout,
            reconnect_backoff_base: Duration::from_secs_f64(DEFAULT_RECONNECT_BACKOFF_BASE_SECS),
            reconnect_backoff_max: Duration::from_secs_f64(DEFAULT_RECONNECT_BACKOFF_MAX_SECS),
            tls,
            identity,
        },
        health: HealthSettings {
            bind: health_bind,
            port: health_port,
        },
        trainer: TrainerSettings {
            device,
            device_name,
            intra_op_threads,
        },
        logging,
        provenance,
        warnings,
    })
}

/// Returns the warnings about accepted but risky or ineffective values.
fn value_warnings(
    server_url: &str,
    tls: &TlsSettings,
    heartbeat_interval: Duration,
    idle_heartbeat_interval: Duration,
    args: &WorkerArgs,
) -> Vec<String> {
    let mut warnings = Vec::new();

    for (name, interval) in [
        ("heartbeat_interval", heartbeat_interval),
        ("idle_heartbeat_interval", idle_heartbeat_interval),
    ] {
        if interval >= SERVER_HEARTBEAT_TIMEOUT {
            warnings.push(format!(
                "{name} is {}s, at or above the server's {}s heartbeat timeout: the server \
                 drops workers it has not heard from for that long",
                python_float(interval.as_secs_f64()),
                SERVER_HEARTBEAT_TIMEOUT.as_secs()
            ));
        }
    }

    let tls_given = tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some();
    if tls_given && server_url.starts_with("ws://") {
        warnings
            .push("TLS files are set but the server URL is ws://, so they are not used".to_owned());
    }
    if args.cascor_path.is_some() {
        warnings.push("--cascor-path has no effect on this worker".to_owned());
    }

    warnings
}

fn seconds_setting(
    lookup: &mut EnvLookup<'_>,
    flag: Option<f64>,
    name: &str,
    aliases: &[&str],
    default: f64,
) -> Result<f64, ConfigError> {
    match flag {
        Some(value) => Ok(value),
        None => Ok(lookup
            .parse_with(name, aliases, parse_float)?
            .unwrap_or(default)),
    }
}

fn path_setting(
    lookup: &mut EnvLookup<'_>,
    flag: Option<&Path>,
    name: &str,
    aliases: &[&str],
) -> Option<PathBuf> {
    match flag.filter(|path| !path.as_os_str().is_empty()) {
        Some(path) => Some(path.to_owned()),
        None => lookup
            .value(name, aliases)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from),
    }
}

/// Converts a number of seconds into a duration after checking it is finite and positive.
fn positive_duration(name: &'static str, seconds: f64) -> Result<Duration, ConfigError> {
    if seconds.is_nan() || seconds.is_infinite() {
        return Err(ConfigError::NotFinite {
            name,
            value: python_float(seconds),
        });
    }
    if seconds <= 0.0 {
        return Err(ConfigError::NotPositive {
            name,
            value: python_float(seconds),
        });
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| ConfigError::NotFinite {
        name,
        value: python_float(seconds),
    })
}

/// Formats a float as Python's `repr` does for the common cases (`10.0`, `0.5`, `inf`,
/// `nan`), so messages read like the Python worker's.
pub fn python_float(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        }
    } else {
        format!("{value:?}")
    }
}

/// Parses a float as Python's `float()` does for decimal input: surrounding whitespace is
/// ignored, `inf` and `nan` are accepted (and rejected later as non-finite).
fn parse_float(raw: &str) -> Result<f64, String> {
    raw.trim()
        .parse::<f64>()
        .map_err(|_| "not a number".to_owned())
}

/// Parses an integer as Python's `int()` does for decimal input.
fn parse_int(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| "not an integer".to_owned())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

/// Reads a canonical variable that has no `_FILE` form and no alias; empty counts as unset.
fn env_plain(env: &HashMap<String, String>, name: &str) -> Option<String> {
    env.get(&format!("{ENV_PREFIX}{name}"))
        .filter(|value| !value.is_empty())
        .cloned()
}

/// Returns the host name: `HOSTNAME` when set, else the kernel's, else `"unknown"`.
fn hostname(env: &HashMap<String, String>, read_file: FileReader<'_>) -> String {
    if let Some(name) = env
        .get("HOSTNAME")
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
    {
        return name.to_owned();
    }
    read_file(Path::new("/proc/sys/kernel/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Environment lookup along the canonical/alias/`_FILE` chain, collecting warnings.
struct EnvLookup<'a> {
    env: &'a HashMap<String, String>,
    read_file: FileReader<'a>,
    /// Deprecated names already reported, so each is reported once.
    deprecated: BTreeSet<String>,
    warnings: Vec<String>,
}

impl<'a> EnvLookup<'a> {
    fn new(env: &'a HashMap<String, String>, read_file: FileReader<'a>) -> Self {
        Self {
            env,
            read_file,
            deprecated: BTreeSet::new(),
            warnings: Vec::new(),
        }
    }

    fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// Looks up the setting `JUNIPER_CASCOR_WORKER_<name>` with the given deprecated
    /// aliases. Returns the variable that supplied the value and the value.
    fn lookup(&mut self, name: &str, aliases: &[&str]) -> Option<(String, String)> {
        let canonical = format!("{ENV_PREFIX}{name}");

        if let Some(found) = self.file_value(&canonical) {
            return Some(found);
        }
        if let Some(value) = self.env.get(&canonical) {
            return Some((canonical, value.clone()));
        }

        for alias in aliases {
            if let Some(found) = self.file_value(alias) {
                self.warn_deprecated(&format!("{alias}_FILE"), &format!("{canonical}_FILE"));
                return Some(found);
            }
            if let Some(value) = self.env.get(*alias) {
                self.warn_deprecated(alias, &canonical);
                return Some(((*alias).to_owned(), value.clone()));
            }
        }

        None
    }

    fn value(&mut self, name: &str, aliases: &[&str]) -> Option<String> {
        self.lookup(name, aliases).map(|(_, value)| value)
    }

    /// Looks up a setting and parses it; an empty value counts as unset.
    fn parse_with<T>(
        &mut self,
        name: &str,
        aliases: &[&str],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((variable, raw)) = self.lookup(name, aliases) else {
            return Ok(None);
        };
        if raw.trim().is_empty() {
            return Ok(None);
        }

        parse(&raw)
            .map(Some)
            .map_err(|reason| ConfigError::InvalidEnvironmentValue {
                variable,
                value: raw,
                reason,
            })
    }

    /// Looks up the auth token: the canonical name alone, then with `CASCOR_AUTH_TOKEN`,
    /// then with `CASCOR_API_KEY`, moving on while the result is empty.
    fn auth_token(&mut self) -> Option<Secret> {
        let chains: [&[&str]; 3] = [&[], &["CASCOR_AUTH_TOKEN"], &["CASCOR_API_KEY"]];

        for aliases in chains {
            if let Some(token) = self
                .value("AUTH_TOKEN", aliases)
                .filter(|token| !token.is_empty())
            {
                return Some(Secret::new(token));
            }
        }

        None
    }

    /// Reads `<variable>_FILE`: the file's content, trimmed, when it is readable and
    /// non-empty. An unreadable file is skipped with a warning.
    fn file_value(&mut self, variable: &str) -> Option<(String, String)> {
        let file_variable = format!("{variable}_FILE");
        let path = self
            .env
            .get(&file_variable)
            .filter(|path| !path.is_empty())?;

        match (self.read_file)(Path::new(path)) {
            Ok(content) => {
                let content = content.trim();
                (!content.is_empty()).then(|| (file_variable, content.to_owned()))
            }
            Err(error) => {
                self.warnings.push(format!(
                    "ignoring {file_variable}: cannot read {path}: {error}"
                ));
                None
            }
        }
    }

    fn warn_deprecated(&mut self, deprecated: &str, replacement: &str) {
        if self.deprecated.insert(deprecated.to_owned()) {
            self.warnings.push(format!(
                "{deprecated} is deprecated; use {replacement} instead."
            ));
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Stand-alone parser with the same settings as the binary's top-level command.
    #[derive(Debug, Parser)]
    #[command(name = "juniper-cascor-worker", infer_long_args = true)]
    struct TestCli {
        #[command(flatten)]
        worker: WorkerArgs,
    }

    fn parse(args: &[&str]) -> Result<WorkerArgs, clap::Error> {
        let argv = std::iter::once("juniper-cascor-worker").chain(args.iter().copied());
        TestCli::try_parse_from(argv).map(|cli| cli.worker)
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn no_files(path: &Path) -> io::Result<String> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", path.display()),
        ))
    }

    fn files(
        entries: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&Path) -> io::Result<String> {
        move |path: &Path| {
            entries
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, content)| (*content).to_owned())
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
        }
    }

    const URL: &str = "ws://127.0.0.1:8200/ws/v1/workers";

    fn resolve_ok(args: &[&str], vars: &[(&str, &str)]) -> WorkerConfig {
        let args = parse(args).expect("arguments parse");
        resolve(&args, &env(vars), &no_files).expect("configuration resolves")
    }

    fn resolve_err(args: &[&str], vars: &[(&str, &str)]) -> ConfigError {
        let args = parse(args).expect("arguments parse");
        resolve(&args, &env(vars), &no_files).expect_err("configuration is rejected")
    }

    #[test]
    fn defaults_match_reference() {
        let config = resolve_ok(&["--server-url", URL], &[]);

        assert_eq!(config.agent.server_url, URL);
        assert!(config.agent.auth_token.is_none());
        assert_eq!(config.agent.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.agent.idle_heartbeat_interval, Duration::from_secs(1));
        assert_eq!(config.agent.task_timeout, Duration::from_secs(3600));
        assert_eq!(config.agent.reconnect_backoff_base, Duration::from_secs(1));
        assert_eq!(config.agent.reconnect_backoff_max, Duration::from_secs(60));
        assert_eq!(
            config.health,
            HealthSettings {
                bind: "127.0.0.1".into(),
                port: 8210
            }
        );
        assert_eq!(
            config.logging,
            LogSettings {
                level: LogLevel::Info,
                format: LogFormat::Text
            }
        );
        assert_eq!(config.trainer.device_name, "auto");
        assert_eq!(config.trainer.intra_op_threads, None);
        assert!(
            config.warnings.is_empty(),
            "unexpected warnings: {:?}",
            config.warnings
        );
    }

    #[test]
    fn flag_beats_environment() {
        let config = resolve_ok(
            &[
                "--server-url",
                URL,
                "--heartbeat-interval",
                "2.5",
                "--health-port",
                "9000",
            ],
            &[
                (
                    "JUNIPER_CASCOR_WORKER_SERVER_URL",
                    "ws://other:1/ws/v1/workers",
                ),
                ("JUNIPER_CASCOR_WORKER_HEARTBEAT_INTERVAL", "7"),
                ("JUNIPER_CASCOR_WORKER_HEALTH_PORT", "9100"),
            ],
        );

        assert_eq!(config.agent.server_url, URL);
        assert_eq!(config.agent.heartbeat_interval, Duration::from_millis(2500));
        assert_eq!(config.health.port, 9000);
    }

    #[test]
    fn environment_honoured_for_documented_variables() {
        let config = resolve_ok(
            &[],
            &[
                ("JUNIPER_CASCOR_WORKER_SERVER_URL", URL),
                ("JUNIPER_CASCOR_WORKER_HEARTBEAT_INTERVAL", " 4.5 "),
                ("JUNIPER_CASCOR_WORKER_IDLE_HEARTBEAT_INTERVAL", "0.25"),
                ("JUNIPER_CASCOR_WORKER_TASK_TIMEOUT", "120"),
                ("JUNIPER_CASCOR_WORKER_HEALTH_PORT", "9100"),
                ("JUNIPER_CASCOR_WORKER_HEALTH_BIND", "0.0.0.0"),
                ("JUNIPER_CASCOR_WORKER_TLS_CA", "/etc/ca.pem"),
                ("JUNIPER_CASCOR_WORKER_DEVICE", "cpu"),
                ("JUNIPER_CASCOR_WORKER_THREADS", "3"),
                ("JUNIPER_CASCOR_WORKER_LOG_FORMAT", "json"),
                ("JUNIPER_CASCOR_WORKER_LOG_LEVEL", "DEBUG"),
                ("JUNIPER_CASCOR_WORKER_GIT_SHA", "abc123"),
                ("JUNIPER_CASCOR_WORKER_BUILD_DATE", "2026-01-01"),
                ("POD_NAME", "worker-0"),
                ("POD_NAMESPACE", "training"),
                ("HOSTNAME", "host-a"),
            ],
        );

        assert_eq!(config.agent.server_url, URL);
        assert_eq!(config.agent.heartbeat_interval, Duration::from_millis(4500));
        assert_eq!(
            config.agent.idle_heartbeat_interval,
            Duration::from_millis(250)
        );
        assert_eq!(config.agent.task_timeout, Duration::from_secs(120));
        assert_eq!(
            config.health,
            HealthSettings {
                bind: "0.0.0.0".into(),
                port: 9100
            }
        );
        assert_eq!(config.agent.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.trainer.device_name, "cpu");
        assert_eq!(config.trainer.intra_op_threads, Some(3));
        assert_eq!(
            config.logging,
            LogSettings {
                level: LogLevel::Debug,
                format: LogFormat::Json
            }
        );
        assert_eq!(config.provenance.git_sha.as_deref(), Some("abc123"));
        assert_eq!(config.provenance.build_date.as_deref(), Some("2026-01-01"));
        assert_eq!(config.agent.identity.pod_name.as_deref(), Some("worker-0"));
        assert_eq!(
            config.agent.identity.pod_namespace.as_deref(),
            Some("training")
        );
        assert_eq!(config.agent.identity.hostname, "host-a");
    }

    #[test]
    fn empty_server_url_flag_falls_back_to_environment() {
        let config = resolve_ok(
            &["--server-url", ""],
            &[("JUNIPER_CASCOR_WORKER_SERVER_URL", URL)],
        );

        assert_eq!(config.agent.server_url, URL);
    }

    #[test]
    fn lookup_chain_order() {
        static FILES: &[(&str, &str)] = &[
            (
                "/run/canonical",
                "  ws://from-canonical-file/ws/v1/workers\n",
            ),
            ("/run/alias", "ws://from-alias-file/ws/v1/workers\n"),
            ("/run/empty", " \n"),
        ];
        let read = files(FILES);
        let args = parse(&[]).expect("arguments parse");
        let url_of = |vars: &[(&str, &str)]| {
            resolve(&args, &env(vars), &read).map(|config| config.agent.server_url)
        };

        // 1. C_FILE wins over everything.
        assert_eq!(
            url_of(&[
                ("JUNIPER_CASCOR_WORKER_SERVER_URL_FILE", "/run/canonical"),
                (
                    "JUNIPER_CASCOR_WORKER_SERVER_URL",
                    "ws://canonical/ws/v1/workers"
                ),
                ("CASCOR_SERVER_URL", "ws://alias/ws/v1/workers"),
            ])
            .expect("resolves"),
            "ws://from-canonical-file/ws/v1/workers"
        );
        // 2. An empty or unreadable C_FILE falls through to C.
        assert_eq!(
            url_of(&[
                ("JUNIPER_CASCOR_WORKER_SERVER_URL_FILE", "/run/empty"),
                (
                    "JUNIPER_CASCOR_WORKER_SERVER_URL",
                    "ws://canonical/ws/v1/workers"
                ),
                ("CASCOR_SERVER_URL_FILE", "/run/alias"),
            ])
            .expect("resolves"),
            "ws://canonical/ws/v1/workers"
        );
        // 3. C set to the empty string hides the aliases.
        assert!(matches!(
            url_of(&[
                ("JUNIPER_CASCOR_WORKER_SERVER_URL", ""),
                ("CASCOR_SERVER_URL", "ws://alias/ws/v1/workers"),
            ]),
            Err(ConfigError::MissingServerUrl)
        ));
        // 4. L_FILE before L.
        assert_eq!(
            url_of(&[
                ("CASCOR_SERVER_URL_FILE", "/run/alias"),
                ("CASCOR_SERVER_URL", "ws://alias/ws/v1/workers"),
            ])
            .expect("resolves"),
            "ws://from-alias-file/ws/v1/workers"
        );
        // 5. L alone.
        assert_eq!(
            url_of(&[("CASCOR_SERVER_URL", "ws://alias/ws/v1/workers")]).expect("resolves"),
            "ws://alias/ws/v1/workers"
        );
        // 6. Nothing set: the server URL is required.
        assert!(matches!(url_of(&[]), Err(ConfigError::MissingServerUrl)));
    }

    #[test]
    fn deprecated_names_warn_once() {
        let config = resolve_ok(
            &[],
            &[
                ("CASCOR_SERVER_URL", URL),
                ("CASCOR_HEARTBEAT_INTERVAL", "5"),
                ("CASCOR_AUTH_TOKEN", "token-value"),
            ],
        );

        let deprecations: Vec<&String> = config
            .warnings
            .iter()
            .filter(|warning| warning.contains("deprecated"))
            .collect();
        assert_eq!(
            deprecations,
            [
                "CASCOR_SERVER_URL is deprecated; use JUNIPER_CASCOR_WORKER_SERVER_URL instead.",
                "CASCOR_AUTH_TOKEN is deprecated; use JUNIPER_CASCOR_WORKER_AUTH_TOKEN instead.",
                "CASCOR_HEARTBEAT_INTERVAL is deprecated; use JUNIPER_CASCOR_WORKER_HEARTBEAT_INTERVAL instead.",
            ]
        );
        assert_eq!(config.agent.heartbeat_interval, Duration::from_secs(5));
    }

    #[test]
    fn deprecated_file_variable_warns_with_file_names() {
        static FILES: &[(&str, &str)] = &[("/run/url", URL)];
        let args = parse(&[]).expect("arguments parse");
        let config = resolve(
            &args,
            &env(&[("CASCOR_SERVER_URL_FILE", "/run/url")]),
            &files(FILES),
        )
        .expect("resolves");

        assert_eq!(config.agent.server_url, URL);
        assert_eq!(
            config.warnings,
            [
                "CASCOR_SERVER_URL_FILE is deprecated; use JUNIPER_CASCOR_WORKER_SERVER_URL_FILE instead."
            ]
        );
    }

    #[test]
    fn unreadable_file_variable_warns_and_falls_through() {
        let config = resolve_ok(
            &[],
            &[
                ("JUNIPER_CASCOR_WORKER_SERVER_URL_FILE", "/run/missing"),
                ("JUNIPER_CASCOR_WORKER_SERVER_URL", URL),
            ],
        );

        assert_eq!(config.agent.server_url, URL);
        assert_eq!(config.warnings.len(), 1, "warnings: {:?}", config.warnings);
        assert!(config.warnings[0].starts_with(
            "ignoring JUNIPER_CASCOR_WORKER_SERVER_URL_FILE: cannot read /run/missing"
        ));
    }

    #[test]
    fn auth_token_chain() {
        let token_of = |args: &[&str], vars: &[(&str, &str)]| {
            resolve_ok(args, vars)
                .agent
                .auth_token
                .map(|token| token.expose().to_owned())
        };
        let with_url = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![("JUNIPER_CASCOR_WORKER_SERVER_URL", URL)];
            vars.extend_from_slice(extra);
            vars
        };

        assert_eq!(token_of(&[], &with_url(&[])), None);
        assert_eq!(
            token_of(
                &["--auth-token", "flag"],
                &with_url(&[("JUNIPER_CASCOR_WORKER_AUTH_TOKEN", "env")])
            ),
            Some("flag".to_owned())
        );
        assert_eq!(
            token_of(&["--api-key", "alias-flag"], &with_url(&[])),
            Some("alias-flag".to_owned())
        );
        assert_eq!(
            token_of(
                &["--auth-token", ""],
                &with_url(&[("JUNIPER_CASCOR_WORKER_AUTH_TOKEN", "env")])
            ),
            Some("env".to_owned())
        );
        assert_eq!(
            token_of(
                &[],
                &with_url(&[("CASCOR_AUTH_TOKEN", "old"), ("CASCOR_API_KEY", "older")])
            ),
            Some("old".to_owned())
        );
        // An empty CASCOR_AUTH_TOKEN moves on to CASCOR_API_KEY.
        assert_eq!(
            token_of(
                &[],
                &with_url(&[("CASCOR_AUTH_TOKEN", ""), ("CASCOR_API_KEY", "older")])
            ),
            Some("older".to_owned())
        );
        // An empty canonical variable hides both aliases.
        assert_eq!(
            token_of(
                &[],
                &with_url(&[
                    ("JUNIPER_CASCOR_WORKER_AUTH_TOKEN", ""),
                    ("CASCOR_API_KEY", "older")
                ])
            ),
            None
        );
    }

    #[test]
    fn auth_token_from_file() {
        static FILES: &[(&str, &str)] = &[("/run/secrets/token", "s3cret\n")];
        let args = parse(&["--server-url", URL]).expect("arguments parse");
        let config = resolve(
            &args,
            &env(&[(
                "JUNIPER_CASCOR_WORKER_AUTH_TOKEN_FILE",
                "/run/secrets/token",
            )]),
            &files(FILES),
        )
        .expect("resolves");

        assert_eq!(
            config.agent.auth_token.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert!(config.warnings.is_empty());
    }

    /// Flags, environment and the expected message of one validation case.
    type ValidationCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn validation_messages() {
        let cases: &[ValidationCase] = &[
            (
                &[],
                &[],
                "server_url is required — set JUNIPER_CASCOR_WORKER_SERVER_URL or pass --server-url",
            ),
            (
                &["--server-url", "http://x"],
                &[],
                "server_url must start with ws:// or wss://, got: http://x",
            ),
            (
                &["--server-url", "WS://x"],
                &[],
                "server_url must start with ws:// or wss://, got: WS://x",
            ),
            (
                &["--server-url", URL, "--heartbeat-interval", "0"],
                &[],
                "heartbeat_interval must be > 0, got 0.0",
            ),
            (
                &["--server-url", URL, "--heartbeat-interval", "-1.5"],
                &[],
                "heartbeat_interval must be > 0, got -1.5",
            ),
            (
                &["--server-url", URL, "--heartbeat-interval", "nan"],
                &[],
                "heartbeat_interval must be a finite number, got nan",
            ),
            (
                &["--server-url", URL, "--task-timeout", "inf"],
                &[],
                "task_timeout must be a finite number, got inf",
            ),
            (
                &["--server-url", URL, "--task-timeout", "0"],
                &[],
                "task_timeout must be > 0, got 0.0",
            ),
            (
                &["--server-url", URL, "--idle-heartbeat-interval=-inf"],
                &[],
                "idle_heartbeat_interval must be a finite number, got -inf",
            ),
            (
                &["--server-url", URL, "--health-port", "0"],
                &[],
                "health_port must be 1-65535, got 0",
            ),
            (
                &["--server-url", URL, "--health-port", "70000"],
                &[],
                "health_port must be 1-65535, got 70000",
            ),
            (
                &["--server-url", URL, "--health-bind", " "],
                &[],
                "health_bind must be a non-empty hostname/IP",
            ),
            (
                &["--server-url", URL, "--threads", "0"],
                &[],
                "threads must be >= 1, got 0",
            ),
            (
                &["--server-url", URL, "--tls-cert", "/tmp/cert.pem"],
                &[],
                "tls_cert and tls_key must be set together, but only tls_cert is set",
            ),
            (
                &["--server-url", URL],
                &[("JUNIPER_CASCOR_WORKER_TASK_TIMEOUT", "soon")],
                "invalid value \"soon\" in environment variable JUNIPER_CASCOR_WORKER_TASK_TIMEOUT: not a number",
            ),
            (
                &["--server-url", URL],
                &[("CASCOR_WORKER_HEALTH_PORT", "http")],
                "invalid value \"http\" in environment variable CASCOR_WORKER_HEALTH_PORT: not an integer",
            ),
        ];

        for (args, vars, expected) in cases {
            let error = resolve_err(args, vars);
            assert_eq!(
                error.to_string(),
                *expected,
                "arguments {args:?}, environment {vars:?}"
            );
            assert_eq!(error.exit_code(), 1, "arguments {args:?}");
        }
    }

    #[test]
    fn invalid_device_is_config_error() {
        let error = resolve_err(&["--server-url", URL, "--device", "tpu"], &[]);

        assert!(matches!(error, ConfigError::InvalidDevice(_)), "{error}");
        assert!(error.to_string().contains("\"tpu\""), "{error}");
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn legacy_mode_rejected_with_exit_two() {
        let error = resolve_err(&["--legacy", "--authkey", "k"], &[]);

        assert!(matches!(error, ConfigError::LegacyUnsupported));
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().contains("pickled Python objects"),
            "{error}"
        );
    }

    #[test]
    fn slow_heartbeat_warns() {
        let config = resolve_ok(&["--server-url", URL, "--heartbeat-interval", "30"], &[]);

        assert!(
            config
                .warnings
                .iter()
                .any(|warning| warning.starts_with("heartbeat_interval is 30.0s")),
            "warnings: {:?}",
            config.warnings
        );
    }

    #[test]
    fn unique_prefixes_accepted() {
        let args = parse(&["--server", URL, "--heart", "5", "--api", "t", "--task-t=9"])
            .expect("prefixes parse");

        assert_eq!(args.server_url.as_deref(), Some(URL));
        assert_eq!(args.heartbeat_interval, Some(5.0));
        assert_eq!(args.auth_token.as_ref().map(Secret::expose), Some("t"));
        assert_eq!(args.task_timeout, Some(9.0));
    }

    #[test]
    fn syntax_errors_exit_two() {
        let cases: &[&[&str]] = &[
            &["--auth", "x"],
            &["--no-such-flag"],
            &["--heartbeat-interval", "soon"],
            &["--log-level", "info"],
            &["--log-level", "TRACE"],
            &["--mp-context", "threads"],
            &["--manager-port", "eighty"],
            &["--log-format", "xml"],
            &["--threads", "-1"],
        ];

        for args in cases {
            let error = parse(args).expect_err("syntax error");
            assert_eq!(error.exit_code(), 2, "arguments {args:?}: {error}");
        }
    }

    #[test]
    fn legacy_flags_accepted_in_websocket_mode() {
        let config = resolve_ok(
            &[
                "--server-url",
                URL,
                "--manager-host",
                "10.0.0.1",
                "--manager-port",
                "50001",
                "--authkey",
                "k",
                "--workers",
                "4",
                "--mp-context",
                "spawn",
            ],
            &[],
        );

        assert_eq!(config.agent.server_url, URL);
    }

    #[test]
    fn log_settings_from_flags_and_environment() {
        let args = parse(&["--log-level", "WARNING"]).expect("arguments parse");
        let settings = resolve_logging(
            &args,
            &env(&[("JUNIPER_CASCOR_WORKER_LOG_FORMAT", "json")]),
            &no_files,
        )
        .expect("resolves");
        assert_eq!(
            settings,
            LogSettings {
                level: LogLevel::Warning,
                format: LogFormat::Json
            }
        );

        let args = parse(&[]).expect("arguments parse");
        let error = resolve_logging(
            &args,
            &env(&[("JUNIPER_CASCOR_WORKER_LOG_LEVEL", "verbose")]),
            &no_files,
        )
        .expect_err("invalid level");
        assert_eq!(
            error.to_string(),
            "invalid value \"verbose\" in environment variable JUNIPER_CASCOR_WORKER_LOG_LEVEL: \
             expected DEBUG, INFO, WARNING or ERROR"
        );
    }

    #[test]
    fn secrets_redacted_in_debug_output() {
        let args =
            parse(&["--auth-token", "tok-123", "--authkey", "key-456"]).expect("arguments parse");
        let rendered = format!("{args:?}");

        assert!(!rendered.contains("tok-123"), "{rendered}");
        assert!(!rendered.contains("key-456"), "{rendered}");
    }

    #[test]
    fn health_address_brackets_ipv6() {
        let v4 = HealthSettings {
            bind: "127.0.0.1".into(),
            port: 8210,
        };
        let v6 = HealthSettings {
            bind: "::1".into(),
            port: 8210,
        };

        assert_eq!(v4.address(), "127.0.0.1:8210");
        assert_eq!(v6.address(), "[::1]:8210");
    }
}
