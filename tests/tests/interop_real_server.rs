//! Interop with the real juniper-cascor 0.12.0 server: two Rust worker processes train
//! candidates of a two-spiral run, and the server's REST API and log show that both
//! registered and that their results were accepted, none rejected.
//!
//! The worker binary is the debug `juniper-cascor-worker` of the same target folder
//! (`cargo test --workspace` builds it before running tests). When it is missing, the
//! test builds it with `$CARGO build -p juniper-cascor-worker`, because Cargo gives tests
//! of another package no `CARGO_BIN_EXE_*` path for it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cascor_system_tests::peer::{CascorPeer, RunWatch, free_port, tail, wait_for};
use serde_json::json;

const TOKEN: &str = "interop-test-token";

/// Locates the worker binary of this build profile, building it when absent. Tests run
/// from `<target>/<profile>/deps`, binaries live in `<target>/<profile>`.
fn worker_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable inside <target>/<profile>/deps");
    let binary = profile_dir.join("juniper-cascor-worker");
    if binary.is_file() {
        return binary;
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target_dir = profile_dir
        .parent()
        .expect("profile folder inside the target folder");
    let status = Command::new(&cargo)
        .args(["build", "-p", "juniper-cascor-worker"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|error| panic!("cannot run {cargo} to build the worker: {error}"));
    assert!(
        status.success(),
        "building juniper-cascor-worker failed: {status}"
    );
    assert!(
        binary.is_file(),
        "{} not found after the build",
        binary.display()
    );
    binary
}

/// A worker process, stopped by its id when dropped.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(binary: &Path, url: &str, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("create worker log");
        let child = Command::new(binary)
            .args(["--server-url", url, "--auth-token", TOKEN])
            .args(["--health-port", &free_port().to_string()])
            .args([
                "--idle-heartbeat-interval",
                "0.5",
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Self { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_rust_workers_train_two_spirals() {
    let binary = worker_binary();
    // One candidate per round is trained by the server itself; the others go to workers.
    let peer = CascorPeer::start(TOKEN, &[("CASCOR_NUM_PROCESSES", "1")]);
    let logs = tempfile::tempdir().expect("temporary folder for worker logs");
    let workers = [
        WorkerProcess::start(
            &binary,
            &peer.worker_url(),
            logs.path().join("worker-1.log"),
        ),
        WorkerProcess::start(
            &binary,
            &peer.worker_url(),
            logs.path().join("worker-2.log"),
        ),
    ];
    let context = || {
        format!(
            "server log tail:\n{}\nworker 1:\n{}\nworker 2:\n{}",
            tail(&peer.log(), 3000),
            tail(&workers[0].output(), 2000),
            tail(&workers[1].output(), 2000)
        )
    };

    let registered = wait_for("both workers to register", context, || {
        let listing = peer.get("/v1/workers");
        let workers = listing["data"]["workers"].as_array()?.clone();
        (workers.len() == 2).then_some(workers)
    });
    for worker in &registered {
        let capabilities = &worker["capabilities"];
        assert_eq!(capabilities["implementation"], "rust", "{worker}");
        assert!(capabilities["cpu_cores"].is_u64(), "{worker}");
    }
    let server_ids: Vec<String> = registered
        .iter()
        .map(|worker| worker["worker_id"].as_str().expect("worker_id").to_owned())
        .collect();

    peer.post(
        "/v1/training/start",
        &json!({
            "dataset": {"generator": "spiral", "params": {"n_points_per_spiral": 50, "seed": 42}},
            "start_fresh": true,
            "params": {"candidate_pool_size": 8, "max_hidden_units": 2, "output_epochs": 200,
                       "candidate_epochs": 100},
        }),
    );
    let mut run = RunWatch::default();
    let final_status = wait_for("the training to end", context, || {
        let status = peer.get("/v1/training/status");
        let state = status["data"]["state_machine"]["status"]
            .as_str()?
            .to_owned();
        run.ended(&state).then_some(state)
    });
    assert_ne!(final_status, "FAILED", "{}", context());

    let log = peer.log();
    let accepted: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Accepted result for task"))
        .collect();
    let rejected: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Result for") && line.contains("rejected"))
        .collect();
    for server_id in &server_ids {
        assert!(
            log.contains(&format!("Worker registered with server ID {server_id}")),
            "no registration of {server_id} in the server log\n{}",
            context()
        );
    }
    // The server hands the next queued task to the worker that just delivered a result,
    // so one worker may serve a whole short run; every accepted result must be ours.
    assert!(!accepted.is_empty(), "no accepted result\n{}", context());
    for line in &accepted {
        assert!(
            server_ids.iter().any(|id| line.contains(id.as_str())),
            "result accepted from a worker that is not ours: {line}"
        );
    }
    assert!(rejected.is_empty(), "rejected results: {rejected:#?}");

    let stats = peer.get("/v1/workers/stats");
    let stats = &stats["data"];
    assert_eq!(stats["total"], 2, "{stats}");
    assert!(
        stats["total_tasks_completed"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    assert_eq!(stats["total_tasks_failed"], 0, "{stats}");
    // The server counts accepted results and then takes the counters from the workers'
    // heartbeats, which catch up within one heartbeat interval.
    let listing = wait_for("the heartbeat counters to match", context, || {
        let listing = peer.get("/v1/workers");
        let completed: u64 = listing["data"]["workers"]
            .as_array()?
            .iter()
            .map(|worker| worker["tasks_completed"].as_u64().unwrap_or(0))
            .sum();
        (completed as usize == accepted.len()).then_some(listing)
    });
    for worker in listing["data"]["workers"].as_array().expect("workers") {
        assert_eq!(worker["tasks_failed"], 0, "{worker}");
        assert!(worker["rss_mb"].as_f64().unwrap_or(0.0) > 0.0, "{worker}");
    }
}
