#!/usr/bin/env python3
"""Measure the Rust candidate trainer against the reference on the same inputs (`make bench`).

The script writes a plan (input sizes, activations, epochs, repetitions) and the input
matrices as raw float32 files into a scratch folder, then runs

* `cascor-bench PLAN`: the Rust trainer (cascor-trainer, CPU path) on every case;
* `python/bench_reference.py PLAN`: the reference `CandidateUnit` (juniper-cascor-model 0.1.0,
  as juniper-cascor-worker 0.6.1 builds it) on the same cases, with the same thread count;
* `juniper-cascor-worker run-task` on one 200x2x1 task file, for peak RSS and whole-process
  time against training-only time, and the reference executor on the same file in a fresh
  Python process for the same two numbers.

It prints tables in Markdown and, with `--report FILE`, writes them with the command, machine
and date. Speed is never asserted: `BENCH_QUICK=1` runs a small plan that only checks that the
harness works.

Environment (each has a flag of the same meaning):
  BENCH_QUICK=1         small plan: few epochs, two small sizes
  BENCH_THREADS=N       intra-op threads for both sides (default: CPUs this process may use)
  BENCH_REFERENCE=0     skip the reference side and the ratios
  BENCH_SIZES=LIST      comma-separated NxDxK sizes of the default plan to run
  BENCH_BIN_DIR=DIR     folder with cascor-bench and juniper-cascor-worker
                        (default: $CARGO_TARGET_DIR/release)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SCRIPT = REPO_ROOT / "python" / "bench_reference.py"

ACTIVATIONS = ("Tanh", "sigmoid")
LEARNING_RATE = 0.1
FULL_EPOCHS = 400

# Seconds any one child process may run before the benchmark stops it and fails.
CHILD_TIMEOUT_S = 1800

# Speed-up targets (ours / reference, epochs per second) by input size.
TARGETS = {"200x2x1": 20.0, "1000x10x3": 20.0, "10000x50x10": 10.0, "100000x100x10": 10.0}


@dataclass(frozen=True)
class SizePlan:
    """Run settings of one N x D x K size: epochs per task, repetitions per side, and the modes."""

    samples: int
    inputs: int
    outputs: int
    epochs: int
    reference_repetitions: int
    native_repetitions: int
    early_stopping_modes: tuple[bool, ...]

    @property
    def name(self) -> str:
        return f"{self.samples}x{self.inputs}x{self.outputs}"


# The default plan fits in a few minutes on 2 cores. The two large sizes run fewer epochs and
# only without early stopping: the reference needs about 1 s per epoch at 100000x100x10, and
# early stopping cannot end a task before epoch 51 anyway.
DEFAULT_PLAN = (
    SizePlan(200, 2, 1, FULL_EPOCHS, 2, 10, (True, False)),
    SizePlan(1000, 10, 3, FULL_EPOCHS, 2, 5, (True, False)),
    SizePlan(10000, 50, 10, 100, 1, 2, (False,)),
    SizePlan(100000, 100, 10, 20, 1, 1, (False,)),
)

QUICK_PLAN = (
    SizePlan(200, 2, 1, 20, 1, 1, (True, False)),
    SizePlan(1000, 10, 3, 20, 1, 1, (False,)),
)

# run-task is measured on this size, with the same parameters as the plan's cases, in 3 fresh
# processes per side (1 with --quick).
RUN_TASK_SIZE = SizePlan(200, 2, 1, FULL_EPOCHS, 3, 3, (True,))


class BenchError(Exception):
    """A step of the benchmark failed; the message names the step and the cause."""


@dataclass
class Measurement:
    """Timings of one case on one side: seconds and epochs per repetition."""

    seconds: list[float]
    epochs_completed: list[int]
    correlation: list[float]

    @property
    def seconds_per_task(self) -> float:
        return statistics.median(self.seconds)

    @property
    def epochs_per_second(self) -> float:
        return sum(self.epochs_completed) / sum(self.seconds)


@dataclass
class ProcessRun:
    """One child process: exit status, wall time, peak RSS and what it printed."""

    returncode: int
    wall_seconds: float
    max_rss_kib: int
    stdout: str
    stderr: str = field(repr=False)


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.lower() not in ("0", "false", "no", "off")


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def parse_args(argv: list[str]) -> argparse.Namespace:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", default=env_flag("BENCH_QUICK", False), help="small plan that checks the harness (BENCH_QUICK=1)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS") or usable_cpus()), help="intra-op threads for both sides (BENCH_THREADS)")
    parser.add_argument("--no-reference", dest="reference", action="store_false", default=env_flag("BENCH_REFERENCE", True), help="skip the reference side (BENCH_REFERENCE=0)")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", ""), help="comma-separated NxDxK sizes to run (BENCH_SIZES)")
    parser.add_argument("--bin-dir", type=Path, default=Path(os.environ.get("BENCH_BIN_DIR") or target_dir / "release"), help="folder with cascor-bench and juniper-cascor-worker (BENCH_BIN_DIR)")
    parser.add_argument("--python", default=os.environ.get("JUNIPER_PYTHON", sys.executable), help="interpreter with torch and the juniper packages (JUNIPER_PYTHON)")
    parser.add_argument("--reference-log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="CandidateUnit log level on the reference side (the worker uses INFO)")
    parser.add_argument("--report", type=Path, help="also write the results as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder with the plan, inputs and logs")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def select_plan(quick: bool, sizes: str) -> tuple[SizePlan, ...]:
    plan = QUICK_PLAN if quick else DEFAULT_PLAN
    if not sizes:
        return plan
    wanted = [size.strip() for size in sizes.split(",") if size.strip()]
    known = {size.name: size for size in plan}
    unknown = [size for size in wanted if size not in known]
    if unknown:
        raise BenchError(f"unknown size(s) {', '.join(unknown)}; this plan has {', '.join(known)}")
    return tuple(known[size] for size in wanted)


def write_inputs(folder: Path, size: SizePlan) -> dict[str, dict[str, Any]]:
    """Write X [N, D] and E [N, K] as raw little-endian float32 and return their plan entries.

    X is standard normal. Each residual column is a tanh of a random projection of X plus
    noise, so correlations are meaningful and early stopping behaves as on real residuals.
    """
    import numpy as np

    rng = np.random.default_rng(20260101 + size.samples + size.inputs + size.outputs)
    candidate_input = rng.standard_normal((size.samples, size.inputs), dtype=np.float32)
    projection = rng.standard_normal((size.inputs, size.outputs), dtype=np.float32) / np.sqrt(size.inputs)
    noise = rng.standard_normal((size.samples, size.outputs), dtype=np.float32)
    residual_error = (np.tanh(candidate_input @ projection) + 0.5 * noise).astype(np.float32)

    entries = {}
    for name, matrix in (("candidate_input", candidate_input), ("residual_error", residual_error)):
        relative = f"{size.name}-{name}.f32"
        matrix.astype("<f4").tofile(folder / relative)
        entries[name] = {"file": relative, "shape": list(matrix.shape)}
    return entries


def case_id(size: SizePlan, activation: str, early_stopping: bool) -> str:
    mode = "early-stopping" if early_stopping else "fixed-epochs"
    return f"{size.name}-{activation}-{mode}"


def build_task(size: SizePlan, activation: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return candidate_data and training_params as juniper-cascor 0.12.0 sends them by default."""
    candidate_data = {
        "input_size": size.inputs,
        "activation_name": activation,
        "random_value_scale": 0.1,
        "random_max_value": 4294967295,
        "sequence_max_value": 100,
        "candidate_uuid": f"bench-{size.name}-{activation}",
        "candidate_seed": seed,
    }
    training_params = {"epochs": size.epochs, "learning_rate": LEARNING_RATE, "display_frequency": 10}
    return candidate_data, training_params


def write_plan(folder: Path, sizes: tuple[SizePlan, ...], threads: int, reference_log_level: str) -> dict[str, Any]:
    cases = []
    for size in sizes:
        inputs = write_inputs(folder, size)
        for activation in ACTIVATIONS:
            candidate_data, training_params = build_task(size, activation, seed=1234567)
            for early_stopping in size.early_stopping_modes:
                cases.append(
                    {
                        "id": case_id(size, activation, early_stopping),
                        "size": size.name,
                        "activation": activation,
                        "early_stopping": early_stopping,
                        "repetitions": size.reference_repetitions,
                        "native_repetitions": size.native_repetitions,
                        "candidate_index": 0,
                        "candidate_data": candidate_data,
                        "training_params": training_params,
                        **inputs,
                    }
                )
    plan = {"threads": threads, "reference_log_level": reference_log_level, "cases": cases}
    (folder / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan


def run_child(command: list[str], log_path: Path | None = None, capture_stderr: bool = False) -> ProcessRun:
    """Run a command to completion and return its wall time and peak RSS (getrusage of the child)."""
    stderr_target: Any = subprocess.PIPE if capture_stderr else subprocess.DEVNULL
    log_file = None
    if log_path is not None:
        log_file = log_path.open("wb")
        stderr_target = log_file

    start = time.perf_counter()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_target, start_new_session=True)
    except OSError as error:
        raise BenchError(f"cannot start {command[0]}: {error}") from error

    # Read the pipes on threads so that os.wait4 below can collect the child's rusage.
    outputs: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda: outputs.__setitem__("stdout", process.stdout.read()))]
    if capture_stderr:
        readers.append(threading.Thread(target=lambda: outputs.__setitem__("stderr", process.stderr.read())))
    for reader in readers:
        reader.start()

    timer = threading.Timer(CHILD_TIMEOUT_S, lambda: os.killpg(process.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    wall_seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)

    for reader in readers:
        reader.join()
    if log_file is not None:
        log_file.close()

    return ProcessRun(
        returncode=process.returncode,
        wall_seconds=wall_seconds,
        max_rss_kib=usage.ru_maxrss,
        stdout=outputs.get("stdout", b"").decode(errors="replace"),
        stderr=outputs.get("stderr", b"").decode(errors="replace"),
    )


def parse_records(output: str, side: str) -> dict[str, Measurement]:
    records = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[record["id"]] = Measurement(record["seconds"], record["epochs_completed"], record["correlation"])
        except (ValueError, KeyError) as error:
            raise BenchError(f"{side} printed a line that is not a result record: {line[:200]!r} ({error})") from error
    return records


def run_side(side: str, command: list[str], log_path: Path, plan: dict[str, Any]) -> dict[str, Measurement]:
    print(f"running {side}: {shlex.join(command)}", file=sys.stderr, flush=True)
    run = run_child(command, log_path=log_path)
    if run.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise BenchError(f"{side} exited with status {run.returncode}; last log lines:\n{tail}")

    records = parse_records(run.stdout, side)
    missing = [case["id"] for case in plan["cases"] if case["id"] not in records]
    if missing:
        raise BenchError(f"{side} returned no result for {', '.join(missing)}")
    return records


def write_run_task_file(folder: Path) -> Path:
    """Write one task in the golden-file layout (`task_assign` + `tensors`) for run-task."""
    import numpy as np

    inputs = write_inputs(folder, RUN_TASK_SIZE)
    candidate_data, training_params = build_task(RUN_TASK_SIZE, "Tanh", seed=7654321)
    tensors = {}
    for name in ("candidate_input", "residual_error"):
        entry = inputs[name]
        matrix = np.fromfile(folder / entry["file"], dtype="<f4").reshape(entry["shape"])
        tensors[name] = {"shape": entry["shape"], "dtype": "float32", "data": matrix.tolist()}

    task = {
        "task_assign": {
            "type": "task_assign",
            "task_id": "00000000-0000-4000-8000-0000000000be",
            "round_id": "00000000-0000-4000-8000-0000000000bf",
            "candidate_index": 0,
            "candidate_data": candidate_data,
            "training_params": training_params,
            "tensor_manifest": {name: {"shape": tensor["shape"], "dtype": "float32"} for name, tensor in tensors.items()},
        },
        "tensors": tensors,
    }
    path = folder / "run-task-200x2x1.json"
    path.write_text(json.dumps(task))
    return path


def training_seconds_from_run_task(stderr: str) -> float | None:
    """Return the training-only time from the `run-task timing: training_seconds=...` line."""
    for line in stderr.splitlines():
        if line.startswith("run-task timing:"):
            for token in line.split():
                if token.startswith("training_seconds="):
                    return float(token.split("=", 1)[1])
    return None


@dataclass
class ProcessSummary:
    label: str
    max_rss_kib: list[int]
    wall_seconds: list[float]
    training_seconds: list[float]


def measure_run_task(folder: Path, bin_dir: Path, python: str, threads: int, reference: bool, repetitions: int) -> list[ProcessSummary]:
    """Run run-task and the reference executor, each in fresh processes, on one 200x2x1 task."""
    task_path = write_run_task_file(folder)
    summaries = []

    ours = ProcessSummary("juniper-cascor-worker run-task", [], [], [])
    for repetition in range(repetitions):
        output_path = folder / f"run-task-result-{repetition}.json"
        command = [str(bin_dir / "juniper-cascor-worker"), "run-task", "--input", str(task_path), "--output", str(output_path), "--device", "cpu", "--threads", str(threads), "--report-timing"]
        run = run_child(command, capture_stderr=True)
        if run.returncode != 0:
            raise BenchError(f"{shlex.join(command)} exited with status {run.returncode}:\n{run.stderr[-3000:]}")
        ours.max_rss_kib.append(run.max_rss_kib)
        ours.wall_seconds.append(run.wall_seconds)
        training = training_seconds_from_run_task(run.stderr)
        if training is None:
            raise BenchError(f"run-task --report-timing reported no training time; stderr:\n{run.stderr[-2000:]}")
        ours.training_seconds.append(training)
    summaries.append(ours)

    if reference:
        theirs = ProcessSummary("reference execute_training_task (fresh python)", [], [], [])
        for _ in range(repetitions):
            command = [python, str(REFERENCE_SCRIPT), "--task-file", str(task_path), "--threads", str(threads)]
            run = run_child(command, capture_stderr=True)
            if run.returncode != 0:
                raise BenchError(f"{shlex.join(command)} exited with status {run.returncode}:\n{run.stderr[-3000:]}")
            theirs.max_rss_kib.append(run.max_rss_kib)
            theirs.wall_seconds.append(run.wall_seconds)
            theirs.training_seconds.append(float(json.loads(run.stdout)["training_seconds"]))
        summaries.append(theirs)

    return summaries


def describe_machine() -> dict[str, str]:
    model, cores = platform.processor() or "unknown", str(os.cpu_count())
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = fields.get("CPU(s)", cores).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    memory = "unknown"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"cpu": model, "cores": cores, "memory": memory, "kernel": platform.release()}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def speed_table(plan: dict[str, Any], native: dict[str, Measurement], reference: dict[str, Measurement] | None) -> list[str]:
    header = "| case | epochs (ours) | ours s/task | ours epochs/s |"
    rule = "| --- | --- | --- | --- |"
    if reference is not None:
        header += " epochs (ref) | ref s/task | ref epochs/s | speed-up (epochs/s) | target |"
        rule += " --- | --- | --- | --- | --- |"
    lines = [header, rule]

    for case in plan["cases"]:
        ours = native[case["id"]]
        row = f"| {case['id']} | {statistics.median(ours.epochs_completed):g} | {ours.seconds_per_task:.4f} | {ours.epochs_per_second:,.0f} |"
        if reference is not None:
            theirs = reference[case["id"]]
            ratio = ours.epochs_per_second / theirs.epochs_per_second
            target = TARGETS.get(case["size"], 0.0)
            verdict = "met" if ratio >= target else "missed"
            row += f" {statistics.median(theirs.epochs_completed):g} | {theirs.seconds_per_task:.4f} | {theirs.epochs_per_second:,.1f} | {ratio:.1f}x | {target:g}x {verdict} |"
        lines.append(row)
    return lines


def process_table(summaries: list[ProcessSummary]) -> list[str]:
    lines = ["| process (200x2x1, Tanh, 400 epochs) | peak RSS | whole process s | training only s |", "| --- | --- | --- | --- |"]
    for summary in summaries:
        rss = max(summary.max_rss_kib) / 1024
        lines.append(f"| {summary.label} | {rss:.0f} MiB | {statistics.median(summary.wall_seconds):.3f} | {statistics.median(summary.training_seconds):.4f} |")
    return lines


def plan_description(sizes: tuple[SizePlan, ...], reference: bool) -> list[str]:
    lines = []
    for size in sizes:
        modes = " and ".join("early stopping" if mode else "fixed epochs (no early stopping)" for mode in size.early_stopping_modes)
        repetitions = f"repetitions: {size.native_repetitions} ours"
        if reference:
            repetitions += f", {size.reference_repetitions} reference"
        lines.append(f"* {size.name}: {size.epochs} epochs, {modes}; {repetitions}")
    return lines


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = select_plan(args.quick, args.sizes)

    native_bin = args.bin_dir / "cascor-bench"
    worker_bin = args.bin_dir / "juniper-cascor-worker"
    for binary in (native_bin, worker_bin):
        if not binary.is_file():
            raise BenchError(f"{binary} not found; build it with `scripts/with-env.sh cargo build --release -p cascor-bench -p juniper-cascor-worker` or set BENCH_BIN_DIR")

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load_average()
    scratch = Path(tempfile.mkdtemp(prefix="cascor-bench-"))
    try:
        plan = write_plan(scratch, sizes, args.threads, args.reference_log_level)
        native = run_side("cascor-bench", [str(native_bin), str(scratch / "plan.json")], scratch / "native.log", plan)
        reference = None
        if args.reference:
            reference = run_side("reference", [args.python, str(REFERENCE_SCRIPT), str(scratch / "plan.json")], scratch / "reference.log", plan)
        repetitions = 1 if args.quick else RUN_TASK_SIZE.native_repetitions
        processes = measure_run_task(scratch, args.bin_dir, args.python, args.threads, args.reference, repetitions)
    finally:
        if args.keep:
            print(f"scratch folder kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    machine = describe_machine()
    command = " ".join(f"{name}={os.environ[name]}" for name in ("BENCH_QUICK", "BENCH_THREADS", "BENCH_REFERENCE", "BENCH_SIZES") if os.environ.get(name))
    command = (command + " " if command else "") + shlex.join(["scripts/bench.py", *argv])
    report = [
        f"Command: `{command}`",
        f"Date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
        f"Machine: {machine['cpu']}, {machine['cores']} CPUs, {machine['memory']} memory, Linux {machine['kernel']}",
        f"Threads: {args.threads} on both sides (torch.set_num_threads and cascor-bench)",
        f"Load average (1, 5, 15 min) before: {load_before}, after: {load_average()}",
        f"Reference log level: {args.reference_log_level}" if args.reference else "Reference: not run",
        "",
        "Plan:",
        *plan_description(sizes, args.reference),
        "",
        "s/task is the median over repetitions; epochs/s is all epochs over all time.",
        "",
        *speed_table(plan, native, reference),
        "",
        *process_table(processes),
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if args.report is not None:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
