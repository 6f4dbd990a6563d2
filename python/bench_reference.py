"""Time the reference candidate training (juniper-cascor-worker 0.6.1) on a benchmark plan.

This is the reference side of `make bench`. It reads the plan that scripts/bench.py writes
(the same file the Rust `cascor-bench` binary reads), trains every case with the reference
code on the same inputs, and prints one JSON object per case on stdout.

Each task builds the `CandidateUnit` that the reference worker's
`juniper_cascor_worker.task_executor.execute_training_task` builds, with the same arguments,
and trains it with `train_detailed`. Two settings the executor fixes are taken from the plan:
early stopping (on in the worker, off for the fixed-work mode) and the log level. Before the
timed runs, the first early-stopping case is run through `execute_training_task` itself and
must give the same epochs and correlation, which shows the construction matches.

The intra-op thread count is set with `torch.set_num_threads` from the plan, so both sides run
with the same number of threads. The reference logs at the level the worker uses (INFO,
several lines per epoch, to stderr) unless the plan names another level.

    python python/bench_reference.py PLAN.json > results.jsonl

With `--task-file TASK.json` (a task in the golden-file layout: `task_assign` and `tensors`)
it instead runs that one task through `execute_training_task` in this fresh process and
prints `{"training_seconds": ...}`, so that the caller can compare whole-process time and peak
RSS with the Rust worker's `run-task`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

# cascor_constants warns on import when this is unset; the benchmark writes no snapshots.
os.environ.setdefault("JUNIPER_CASCOR_SNAPSHOTS_DIR", os.environ.get("TMPDIR", "/tmp"))

# Epochs of the untimed run that precedes the timed repetitions of each input size.
WARM_UP_EPOCHS = 5

# Marks, in the set of warmed-up sizes, that the executor parity check has run.
PARITY_MARK = "executor-parity-checked"


def load_matrix(plan_dir: Path, entry: dict[str, Any]) -> np.ndarray:
    """Load one row-major little-endian float32 file named in the plan."""
    path = plan_dir / entry["file"]
    data = np.fromfile(path, dtype="<f4")
    expected = int(np.prod(entry["shape"]))
    if data.size != expected:
        raise ValueError(f"{path}: expected {expected} float32 values for shape {entry['shape']}, found {data.size}")
    return data.reshape(entry["shape"])


def build_task(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (candidate_data, training_params) as the reference worker hands them to the executor."""
    candidate_data = dict(case["candidate_data"])
    candidate_data["candidate_index"] = case["candidate_index"]
    training_params = dict(case["training_params"])
    return candidate_data, training_params


def train_candidate(candidate_data: dict[str, Any], training_params: dict[str, Any], tensors: dict[str, np.ndarray], early_stopping: bool, log_level: str) -> tuple[int, float]:
    """Train one candidate the way execute_training_task does; return (epochs, correlation).

    The constructor arguments repeat the executor's, plus the early-stopping switch and the log
    level, which the executor fixes (early stopping on, INFO).
    """
    import torch
    from candidate_unit.candidate_unit import CandidateUnit
    from juniper_cascor_worker.task_executor import _get_activation_function

    candidate = CandidateUnit(
        CandidateUnit__input_size=candidate_data["input_size"],
        CandidateUnit__activation_function=_get_activation_function(candidate_data["activation_name"]),
        CandidateUnit__epochs=training_params["epochs"],
        CandidateUnit__learning_rate=training_params["learning_rate"],
        CandidateUnit__display_frequency=training_params["display_frequency"],
        CandidateUnit__random_seed=candidate_data["candidate_seed"],
        CandidateUnit__random_value_scale=candidate_data["random_value_scale"],
        CandidateUnit__random_max_value=int(candidate_data["random_max_value"]),
        CandidateUnit__sequence_max_value=int(candidate_data["sequence_max_value"]),
        CandidateUnit__uuid=candidate_data["candidate_uuid"],
        CandidateUnit__candidate_index=candidate_data["candidate_index"],
        CandidateUnit__log_level_name=log_level,
        CandidateUnit__early_stopping=early_stopping,
    )
    result = candidate.train_detailed(
        x=torch.tensor(tensors["candidate_input"], dtype=torch.float32),
        epochs=training_params["epochs"],
        residual_error=torch.tensor(tensors["residual_error"], dtype=torch.float32),
        learning_rate=training_params["learning_rate"],
        display_frequency=training_params["display_frequency"],
    )

    # The executor copies the final parameters out as numpy arrays; do the same work here.
    candidate.weights.detach().cpu().numpy()
    candidate.bias.detach().cpu().numpy()
    return int(result.epochs_completed), float(result.correlation)


def check_parity_with_executor(case: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """Fail unless train_candidate and execute_training_task give the same result on this case."""
    from juniper_cascor_worker.task_executor import execute_training_task

    candidate_data, training_params = build_task(case)
    result, _ = execute_training_task(candidate_data, training_params, tensors)
    epochs, correlation = train_candidate(candidate_data, training_params, tensors, True, "INFO")
    if not result["success"] or (result["epochs_completed"], result["correlation"]) != (epochs, correlation):
        raise RuntimeError(f"benchmark training differs from execute_training_task on {case['id']}: executor returned epochs={result['epochs_completed']} correlation={result['correlation']} error={result['error_message']!r}, benchmark returned epochs={epochs} correlation={correlation}")


def train_once(case: dict[str, Any], tensors: dict[str, np.ndarray], epochs: int, log_level: str) -> tuple[float, int, float]:
    """Run one task; return (seconds, epochs_completed, correlation)."""
    candidate_data, training_params = build_task(case)
    training_params["epochs"] = epochs

    start = time.perf_counter()
    epochs_completed, correlation = train_candidate(candidate_data, training_params, tensors, case["early_stopping"], log_level)
    seconds = time.perf_counter() - start

    return seconds, epochs_completed, correlation


def run_case(plan_dir: Path, case: dict[str, Any], log_level: str, warmed_up: set[str]) -> dict[str, Any]:
    """Time every repetition of one case and return its result record."""
    tensors = {
        "candidate_input": load_matrix(plan_dir, case["candidate_input"]),
        "residual_error": load_matrix(plan_dir, case["residual_error"]),
    }

    # The first call on a new shape pays torch's one-time set-up; keep it out of the timings.
    if case["size"] not in warmed_up:
        train_once(case, tensors, WARM_UP_EPOCHS, log_level)
        warmed_up.add(case["size"])
    if case["early_stopping"] and PARITY_MARK not in warmed_up:
        check_parity_with_executor(case, tensors)
        warmed_up.add(PARITY_MARK)

    seconds, epochs, correlations = [], [], []
    for _ in range(case["repetitions"]):
        elapsed, completed, correlation = train_once(case, tensors, case["training_params"]["epochs"], log_level)
        seconds.append(elapsed)
        epochs.append(completed)
        correlations.append(correlation)

    return {"id": case["id"], "seconds": seconds, "epochs_completed": epochs, "correlation": correlations}


def run_task_file(path: Path, threads: int, results: TextIO) -> int:
    """Run one golden-layout task through execute_training_task and print its training time."""
    import torch
    from juniper_cascor_worker.task_executor import execute_training_task

    torch.set_num_threads(threads)
    task = json.loads(path.read_text())
    envelope = task["task_assign"]
    candidate_data = dict(envelope["candidate_data"])
    candidate_data["candidate_index"] = envelope["candidate_index"]
    tensors = {name: np.asarray(tensor["data"], dtype=np.float32) for name, tensor in task["tensors"].items()}

    start = time.perf_counter()
    result, _ = execute_training_task(candidate_data, envelope["training_params"], tensors)
    seconds = time.perf_counter() - start

    if not result["success"]:
        print(f"error: reference task failed: {result['error_message']}", file=sys.stderr)
        return 1
    print(json.dumps({"training_seconds": seconds, "epochs_completed": result["epochs_completed"]}), file=results, flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path, nargs="?", help="benchmark plan written by scripts/bench.py")
    parser.add_argument("--task-file", type=Path, help="run this one task instead of a plan")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for --task-file")
    args = parser.parse_args()

    # CandidateUnit's logger prints to stdout. Keep fd 1 for the results and send everything
    # else that targets stdout to stderr.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    if args.task_file is not None:
        return run_task_file(args.task_file, args.threads, results)
    if args.plan is None:
        parser.error("give a plan file or --task-file")

    plan = json.loads(args.plan.read_text())
    plan_dir = args.plan.parent

    import torch

    torch.set_num_threads(plan["threads"])
    log_level = plan.get("reference_log_level", "INFO")

    # The executor logs through `logging` (CandidateUnit has its own logger); use the same level.
    import logging

    logging.basicConfig(level=getattr(logging, log_level, logging.INFO), stream=sys.stderr)

    warmed_up: set[str] = set()
    for case in plan["cases"]:
        record = run_case(plan_dir, case, log_level, warmed_up)
        record["torch_threads"] = torch.get_num_threads()
        print(json.dumps(record), file=results, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
