//! Runs `scripts/demo.py` (what `make demo` runs) with small settings: the real juniper-cascor
//! 0.12.0 server on loopback, two Rust workers, one growth round of a two-spiral training.
//!
//! Needs the Python virtualenv from `scripts/with-env.sh` (JUNIPER_PYTHON) and the debug
//! `juniper-cascor-worker` binary, which `cargo test --workspace` builds before running tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Locates the worker binary of this build profile: the test executable runs from
/// `<target>/<profile>/deps`, and the binaries are in `<target>/<profile>`.
fn worker_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable inside <target>/<profile>/deps");
    let binary = profile_dir.join("juniper-cascor-worker");
    assert!(
        binary.is_file(),
        "{} not found: build it with `scripts/with-env.sh cargo build -p juniper-cascor-worker` \
         (same CARGO_TARGET_DIR) or run the whole suite with `make test`",
        binary.display()
    );
    binary
}

fn python() -> String {
    std::env::var("JUNIPER_PYTHON").unwrap_or_else(|_| {
        panic!(
            "JUNIPER_PYTHON is not set: run the tests through scripts/with-env.sh (make test), \
             which creates the virtualenv with juniper-cascor 0.12.0"
        )
    })
}

/// Returns the live processes whose process group is one of `groups`.
fn processes_in_groups(groups: &[i64]) -> Vec<i64> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses and may contain spaces.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields.first().copied().unwrap_or("?");
        let group = fields.get(2).and_then(|value| value.parse::<i64>().ok());
        if state != "Z" && group.is_some_and(|group| groups.contains(&group)) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn demo_accepts_rust_worker_results() {
    let scratch = tempfile::tempdir().expect("temporary folder");
    let summary_path = scratch.path().join("summary.json");

    let output = Command::new(python())
        .arg(workspace_root().join("scripts/demo.py"))
        .args(["--workers", "2"])
        .args(["--points-per-spiral", "50"])
        .args(["--pool-size", "4"])
        .args(["--hidden-units", "1"])
        .args(["--output-epochs", "50"])
        .args(["--candidate-epochs", "100"])
        .args(["--timeout", "900"])
        .arg("--worker-bin")
        .arg(worker_binary())
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .expect("start scripts/demo.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        output.status.success(),
        "demo exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Summary"), "no summary printed:\n{stdout}");

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(&summary_path).expect("demo wrote the summary file"),
    )
    .expect("summary is JSON");
    assert_eq!(summary["outcome"], "ok", "{summary:#}");
    assert_eq!(summary["training_status"], "COMPLETED", "{summary:#}");
    assert!(
        summary["accepted_from_our_workers"].as_u64().unwrap_or(0) > 0,
        "no result from our workers was accepted: {summary:#}"
    );
    assert_eq!(summary["rejected"], 0, "{summary:#}");

    let workers = summary["workers"].as_array().expect("workers list");
    assert_eq!(workers.len(), 2, "{summary:#}");
    for worker in workers {
        assert!(
            worker["server_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "worker without a server id: {worker:#}"
        );
        assert!(
            worker["peak_rss_mib"].as_f64().is_some_and(|rss| rss > 0.0),
            "worker without a peak RSS: {worker:#}"
        );
    }

    let started: Vec<i64> = summary["started_pids"]
        .as_array()
        .expect("started_pids list")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(started.len(), 3, "server and two workers: {summary:#}");
    assert_eq!(
        summary["leftover_pids"],
        Value::Array(Vec::new()),
        "{summary:#}"
    );
    for pid in &started {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} that the demo started is still running"
        );
    }
    assert_eq!(
        processes_in_groups(&started),
        Vec::<i64>::new(),
        "processes left in the demo's process groups"
    );
}
