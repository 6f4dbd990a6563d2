//! Helpers shared by the operator's fixture tests: fixture loading and snapshot comparison.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cascor_operator::CascorWorkerPool;

/// `operator/tests/fixtures/pools`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pools")
}

/// Every `*.yaml` file in `dir`, sorted by name.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// Parses a pool fixture.
pub fn load_pool(path: &Path) -> CascorWorkerPool {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|error| panic!("parsing {} failed: {error}", path.display()))
}

/// A line diff (longest common subsequence) of `expected` and `actual`, `-`/`+` prefixed,
/// with unchanged lines left out.
pub fn diff(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let mut lengths = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lengths[i][j] = if old[i] == new[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut output = String::new();
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || lengths[i][j + 1] >= lengths[i + 1][j]) {
            output.push_str(&format!("+{:>4} {}\n", j + 1, new[j]));
            j += 1;
        } else {
            output.push_str(&format!("-{:>4} {}\n", i + 1, old[i]));
            i += 1;
        }
    }
    output
}

/// Compares `actual` with the snapshot file, or rewrites it when `UPDATE_SNAPSHOTS=1`.
pub fn assert_snapshot(path: &Path, actual: &str) {
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|value| value == "1") {
        std::fs::write(path, actual)
            .unwrap_or_else(|error| panic!("writing {} failed: {error}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|error| {
        panic!(
            "reading snapshot {} failed: {error}; create it with UPDATE_SNAPSHOTS=1 cargo test -p cascor-operator",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the built objects (- snapshot, + built):\n{}\nIf the change is intended, rewrite the snapshots with UPDATE_SNAPSHOTS=1 cargo test -p cascor-operator",
            path.display(),
            diff(&expected, actual)
        );
    }
}
