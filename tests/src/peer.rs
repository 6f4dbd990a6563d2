//! The real juniper-cascor server (the Python package, 0.12.0) as a test peer.
//!
//! [`CascorPeer::start`] runs `python -m uvicorn --factory api.app:create_app` with the
//! interpreter in `$JUNIPER_PYTHON` on a free 127.0.0.1 port, from an empty temporary
//! folder that receives its logs and snapshots, and waits until `GET /v1/health` returns
//! 200. Dropping the peer stops the server's process group (the server and the training
//! processes it forks), by its id.
//!
//! `scripts/with-env.sh` sets `JUNIPER_PYTHON` to a virtualenv with the server installed;
//! `make test` runs the tests through it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Upper bound on the server's start-up; it is usually healthy after 2 to 3 s.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "run the tests through scripts/with-env.sh (or `make test`), which \
     installs juniper-cascor==0.12.0 and its dependencies into the project virtualenv and \
     sets JUNIPER_PYTHON";

/// A running juniper-cascor server.
pub struct CascorPeer {
    child: Child,
    port: u16,
    api_key: String,
    dir: tempfile::TempDir,
}

impl CascorPeer {
    /// Starts the server with `api_key` as its only API key (also the worker token).
    /// `extra_env` adds server settings, e.g. `CASCOR_NUM_PROCESSES`.
    ///
    /// Panics, with what to install, when the server cannot start.
    pub fn start(api_key: &str, extra_env: &[(&str, &str)]) -> Self {
        let python = std::env::var("JUNIPER_PYTHON")
            .unwrap_or_else(|_| panic!("JUNIPER_PYTHON is not set: {INSTALL_HINT}"));
        let dir = tempfile::Builder::new()
            .prefix("juniper-cascor-peer-")
            .tempdir()
            .expect("create a temporary folder for the server");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create server.log");
        let log_err = log.try_clone().expect("clone the log file handle");

        let mut command = Command::new(&python);
        command
            .args(["-m", "uvicorn", "--factory", "api.app:create_app"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(dir.path())
            .env("JUNIPER_CASCOR_API_KEYS", api_key)
            .env("JUNIPER_CASCOR_LOG_DIR", dir.path())
            .env("JUNIPER_CASCOR_SNAPSHOTS_DIR", dir.path())
            .env("MPLBACKEND", "Agg")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // A group of its own, so that drop stops the forked training processes too.
            .process_group(0);
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start the juniper-cascor server with {python}: {error}; {INSTALL_HINT}")
        });

        let mut peer = Self {
            child,
            port,
            api_key: api_key.to_owned(),
            dir,
        };
        peer.wait_until_healthy();
        peer
    }

    fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the juniper-cascor server exited with {status} before it became healthy; {INSTALL_HINT}.\n\
                     Server output:\n{}",
                    tail(&self.log(), 4000)
                );
            }
            if let Ok((200, _)) = self.request("GET", "/v1/health", None) {
                return;
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "the juniper-cascor server did not answer /v1/health within {}s.\nServer output:\n{}",
                STARTUP_LIMIT.as_secs(),
                tail(&self.log(), 4000)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the server (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// URL of the worker endpoint.
    pub fn worker_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/v1/workers", self.port)
    }

    /// Folder with the server's logs and snapshots.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Returns what the server wrote to standard output and standard error. The server
    /// also writes the same lines to log files in [`CascorPeer::dir`].
    pub fn log(&self) -> String {
        std::fs::read(self.dir.path().join("server.log"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// `GET path` with the API key; returns the JSON body of a 2xx response.
    pub fn get(&self, path: &str) -> Value {
        self.json_call("GET", path, None)
    }

    /// `POST path` with a JSON body and the API key; returns the JSON body of a 2xx response.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        self.json_call("POST", path, Some(body))
    }

    fn json_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = self
            .request(method, path, body)
            .unwrap_or_else(|error| panic!("{method} {path} failed: {error}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path} returned HTTP {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!("{method} {path} returned invalid JSON ({error}): {text}")
        })
    }

    /// Sends one HTTP/1.1 request over a fresh connection; returns status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> io::Result<(u16, String)> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;

        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            key = self.api_key,
            length = body.len(),
        );
        stream.write_all(request.as_bytes())?;

        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        parse_response(&response)
    }
}

/// Follows one training run through `GET /v1/training/status` and reports when it ends.
///
/// `POST /v1/training/start` returns before the server's training thread moves the state
/// machine from `STOPPED` to `STARTED`, so right after the start a `STOPPED` state is the
/// old one. It counts as the end only after the run was seen in progress; `COMPLETED` and
/// `FAILED` always do.
#[derive(Debug, Default)]
pub struct RunWatch {
    seen_in_progress: bool,
}

impl RunWatch {
    /// Records one status name, as in `data.state_machine.status`, and returns whether
    /// the run has ended.
    pub fn ended(&mut self, status: &str) -> bool {
        match status {
            "COMPLETED" | "FAILED" => true,
            "STOPPED" => self.seen_in_progress,
            _ => {
                self.seen_in_progress = true;
                false
            }
        }
    }
}

impl Drop for CascorPeer {
    fn drop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill only sends a signal. The group id is the server's own pid, set by
        // process_group(0) at spawn, so only the server and its children receive it.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above; SIGKILL for whatever did not stop after SIGTERM.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Returns a port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free port on 127.0.0.1")
}

fn parse_response(response: &[u8]) -> io::Result<(u16, String)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("HTTP response without a header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = &response[split + 4..];

    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| invalid("HTTP response without a status code"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        let start = line_end + 2;
        if size == 0 || start + size > body.len() {
            break;
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    out
}

/// Returns the last `chars` characters of `text`, for failure messages.
pub fn tail(text: &str, chars: usize) -> String {
    let skip = text.chars().count().saturating_sub(chars);
    text.chars().skip(skip).collect()
}

/// Upper bound on one phase of a test against the server, such as a registration or a
/// run. It only keeps a broken run from hanging.
pub const PHASE_LIMIT: Duration = Duration::from_secs(300);

/// Polls `check` every 250 ms until it returns `Some`, failing with `what` and `context()`
/// after [`PHASE_LIMIT`].
pub fn wait_for<T>(
    what: &str,
    context: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < PHASE_LIMIT,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
