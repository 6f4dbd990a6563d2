//! Runs `scripts/bench.py --quick` (the smoke plan of `make bench`) on the binaries of this
//! build and checks that every part of the report is there. Speed is not asserted.
//!
//! Needs the Python virtualenv from `scripts/with-env.sh` (JUNIPER_PYTHON) and the
//! `juniper-cascor-worker` binary of the same profile, which `cargo test --workspace` builds.

use std::path::{Path, PathBuf};
use std::process::Command;

const QUICK_CASES: [&str; 6] = [
    "200x2x1-Tanh-early-stopping",
    "200x2x1-Tanh-fixed-epochs",
    "200x2x1-sigmoid-early-stopping",
    "200x2x1-sigmoid-fixed-epochs",
    "1000x10x3-Tanh-fixed-epochs",
    "1000x10x3-sigmoid-fixed-epochs",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("worker/bench lives two levels below the workspace root")
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_cascor-bench"));
    let dir = bench.parent().expect("binary folder").to_path_buf();
    let worker = dir.join("juniper-cascor-worker");
    assert!(
        worker.is_file(),
        "{} not found: build it with `scripts/with-env.sh cargo build -p juniper-cascor-worker` \
         (same CARGO_TARGET_DIR) or run the whole suite with `make test`",
        worker.display()
    );
    dir
}

fn python() -> String {
    std::env::var("JUNIPER_PYTHON").unwrap_or_else(|_| {
        panic!(
            "JUNIPER_PYTHON is not set: run the tests through scripts/with-env.sh (make test), \
             which creates the virtualenv with torch and the reference packages"
        )
    })
}

fn table_row<'a>(report: &'a str, first_cell: &str) -> Option<&'a str> {
    report
        .lines()
        .find(|line| line.starts_with(&format!("| {first_cell} |")))
}

#[test]
fn quick_bench_reports_every_part() {
    let scratch = tempfile::tempdir().expect("temporary folder");
    let report_path = scratch.path().join("report.md");

    let output = Command::new(python())
        .arg(workspace_root().join("scripts/bench.py"))
        .arg("--quick")
        .args(["--threads", "1"])
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--report")
        .arg(&report_path)
        .env_remove("BENCH_SIZES")
        .output()
        .expect("start scripts/bench.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let report = std::fs::read_to_string(&report_path).expect("bench wrote the report");
    assert!(report.contains("Machine: "), "{report}");
    assert!(report.contains("Threads: 1 on both sides"), "{report}");
    for case in QUICK_CASES {
        let row =
            table_row(&report, case).unwrap_or_else(|| panic!("no row for {case}:\n{report}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | case | epochs | s/task | epochs/s | ref epochs | ref s/task | ref epochs/s | ratio | target |
        assert_eq!(cells.len(), 11, "{row}");
        assert_eq!(cells[2], "20", "our epochs in {row}");
        assert_eq!(cells[5], "20", "reference epochs in {row}");
        assert!(cells[8].ends_with('x'), "speed-up in {row}");
    }

    let ours = table_row(&report, "juniper-cascor-worker run-task").expect("run-task row");
    assert!(ours.contains(" MiB |"), "{ours}");
    let theirs = table_row(&report, "reference execute_training_task (fresh python)")
        .expect("reference process row");
    assert!(theirs.contains(" MiB |"), "{theirs}");
}
