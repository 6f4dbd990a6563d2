#!/usr/bin/env python3
"""Train two spirals on the real juniper-cascor server with Rust workers (`make demo`).

The demo starts juniper-cascor 0.12.0 on 127.0.0.1 with a free port, an empty scratch folder
and a generated API key. It starts the workers against it and runs a two-spiral training. Its
live progress (rounds, candidates, which worker trained which task, correlations) comes from
the server's REST API (/v1/training/status, /v1/workers) and from the server's log lines
(`Accepted result for task ... from worker ... (corr=...)`). At the end it prints a summary
and stops every process it started, by process group, also when interrupted.

Exit status: 0 when the training completed and at least one result from our workers was
accepted and none was rejected; 1 otherwise; 130 when interrupted.

Environment (each has a flag of the same meaning):
  DEMO_WORKERS=N             Rust workers to start (default 2)
  DEMO_POINTS_PER_SPIRAL=N   points per spiral (default 100, so N = 200 samples)
  DEMO_POOL_SIZE=N           candidates per round (default 8)
  DEMO_HIDDEN_UNITS=N        maximum hidden units (default 3)
  DEMO_OUTPUT_EPOCHS=N       output-training epochs per phase (default 300)
  DEMO_CANDIDATE_EPOCHS=N    candidate-training epochs (default: the server's, 400)
  DEMO_WORKER_THREADS=N      intra-op threads per worker (default 1)
  DEMO_WORKER_BIN=PATH       worker binary (default $CARGO_TARGET_DIR/release/juniper-cascor-worker)
  DEMO_WORKER_KIND=KIND      `rust` (default) or `reference`: one Python reference worker
                             (juniper-cascor-worker 0.6.1), for comparison; it always binds
                             its health server to 127.0.0.1:8210, so only one can run
  DEMO_TIMEOUT=SECONDS       limit on the whole run (default 900)
  DEMO_SUMMARY_JSON=PATH     also write the summary as JSON to this file
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# Seconds to wait for the server's /v1/health, for every worker to register, and for a
# process to exit after SIGTERM before it gets SIGKILL.
SERVER_START_TIMEOUT_S = 120.0
REGISTRATION_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
POLL_INTERVAL_S = 0.5
# Seconds without any progress line after which the demo prints that the server is busy.
QUIET_PROGRESS_S = 15.0

# States that end a run. STOPPED ends one only after the run was seen in progress: the
# start request returns before the server's training thread leaves the old STOPPED state.
TERMINAL_STATES = ("COMPLETED", "FAILED")

# Server log lines (juniper-cascor 0.12.0, api/workers/coordinator.py and worker_stream.py).
LOG_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\)")
LOG_REGISTERED = re.compile(r"Worker registered with server ID (\S+) \(client_name=([^)]*)\)")
LOG_SUBMITTED = re.compile(r"Submitted (\d+) tasks for round (\S+)")
LOG_ACCEPTED = re.compile(r"Accepted result for task (\S+) from worker (\S+) \(corr=([-\d.eE+naif]+), (\d+)/(\d+) complete\)")
LOG_REJECTED = re.compile(r"(\u2014 rejected|rejected \u2014|Result validation failed|Tensor validation failed)")
LOG_BEST = re.compile(r"grow_network: Best Candidate: ([-\d.eE+]+)")
LOG_ADDED = re.compile(r"add_unit: Added hidden unit with correlation: ([-\d.eE+]+)")
LOG_NO_CANDIDATE = re.compile(r"No candidate met adaptive correlation threshold.*Best Correlation Achieved: ([-\d.eE+]+)")


class DemoError(Exception):
    """A step of the demo failed; the message names the step and what to check."""


class DemoInterrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived; the demo stops everything it started."""


@dataclass
class Settings:
    workers: int
    points_per_spiral: int
    pool_size: int
    hidden_units: int
    output_epochs: int
    candidate_epochs: int | None
    worker_threads: int
    worker_bin: Path
    worker_kind: str
    timeout: float
    summary_json: Path | None
    keep: bool
    python: str


@dataclass
class Child:
    """A process the demo started in its own process group, with where its output goes."""

    name: str
    process: subprocess.Popen
    log_path: Path
    health_port: int | None = None
    client_id: str | None = None
    server_id: str | None = None
    peak_rss_kib: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Progress:
    """Progress parsed from the server log so far."""

    rounds: int = 0
    tasks_submitted: int = 0
    round_started_at: float | None = None
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hidden_unit_correlations: list[float] = field(default_factory=list)
    zero_best_after_remote_round: bool = False
    registrations: dict[str, str] = field(default_factory=dict)


def env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def parse_args(argv: list[str]) -> Settings:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    default_bin = os.environ.get("DEMO_WORKER_BIN") or str(target_dir / "release" / "juniper-cascor-worker")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--workers", type=int, default=env_int("DEMO_WORKERS", 2), help="Rust workers to start")
    parser.add_argument("--points-per-spiral", type=int, default=env_int("DEMO_POINTS_PER_SPIRAL", 100), help="points per spiral")
    parser.add_argument("--pool-size", type=int, default=env_int("DEMO_POOL_SIZE", 8), help="candidates per round")
    parser.add_argument("--hidden-units", type=int, default=env_int("DEMO_HIDDEN_UNITS", 3), help="maximum hidden units")
    parser.add_argument("--output-epochs", type=int, default=env_int("DEMO_OUTPUT_EPOCHS", 300), help="output-training epochs per phase")
    parser.add_argument("--candidate-epochs", type=int, default=env_int("DEMO_CANDIDATE_EPOCHS", None), help="candidate-training epochs (default: the server's)")
    parser.add_argument("--worker-threads", type=int, default=env_int("DEMO_WORKER_THREADS", 1), help="intra-op threads per worker")
    parser.add_argument("--worker-bin", type=Path, default=Path(default_bin), help="juniper-cascor-worker binary")
    parser.add_argument("--worker-kind", choices=("rust", "reference"), default=os.environ.get("DEMO_WORKER_KIND") or "rust", help="which worker to start")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("DEMO_TIMEOUT") or 900), help="limit on the whole run, in seconds")
    parser.add_argument("--summary-json", type=Path, default=Path(os.environ["DEMO_SUMMARY_JSON"]) if os.environ.get("DEMO_SUMMARY_JSON") else None, help="also write the summary as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder with the server and worker logs")
    parser.add_argument("--python", default=os.environ.get("JUNIPER_PYTHON", sys.executable), help="interpreter with juniper-cascor installed (JUNIPER_PYTHON)")
    args = parser.parse_args(argv)

    for name in ("workers", "points_per_spiral", "pool_size", "hidden_units", "output_epochs", "worker_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.worker_kind == "reference" and args.workers != 1:
        parser.error(f"--worker-kind reference runs one worker (its health port is fixed at 8210), got --workers {args.workers}")
    if args.candidate_epochs is not None and args.candidate_epochs < 1:
        parser.error(f"--candidate-epochs must be at least 1, got {args.candidate_epochs}")
    return Settings(**{name: getattr(args, name) for name in Settings.__dataclass_fields__})


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this child when the demo process dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_child(name: str, command: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Child:
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    return Child(name=name, process=process, log_path=log_path)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"


class Server:
    """REST client for the juniper-cascor server the demo started."""

    def __init__(self, port: int, api_key: str):
        self.base = f"http://{LOOPBACK}:{port}"
        self.api_key = api_key

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise DemoError(f"{method} {path} failed with HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise DemoError(f"{method} {path} failed: {error}") from error

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/v1/health", timeout=2.0) as response:
                return response.status == 200
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return False

    def workers(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/workers")["data"]["workers"]

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/v1/training/status")["data"]


def worker_client_id(port: int) -> str | None:
    """Return the client id from the worker's /v1/health response, or None when it does not respond."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/v1/health", timeout=2.0) as response:
            return json.loads(response.read()).get("worker_id")
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError):
        return None


def peak_rss_kib(pid: int) -> int | None:
    """Return VmHWM (peak resident set size) of a running process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def processes_in_groups(groups: set[int]) -> list[int]:
    """Return the PIDs of live processes whose process group is one of `groups`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # Fields after the command name, which is in parentheses and may contain spaces.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group in groups and state != "Z":
            found.append(int(entry))
    return found


def wait_for_groups(groups: set[int], timeout: float) -> list[int]:
    """Wait until no process of `groups` is left, or `timeout` seconds pass; return those left.

    A group leader can exit before the rest of its group, for example before the processes
    that the server forks for training.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = processes_in_groups(groups)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(POLL_INTERVAL_S / 5)


def stop_child(child: Child) -> None:
    """Send SIGTERM to the child's process group, then SIGKILL after the grace period."""
    if child.process.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        print(f"demo: {child.name} (pid {child.pid}) did not stop within {STOP_GRACE_S:.0f} s; sending SIGKILL", file=sys.stderr)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.process.wait()


class LogFollower:
    """Reads lines appended to a file since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = ""

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("r", errors="replace") as log:
                log.seek(self.offset)
                text = log.read()
                self.offset = log.tell()
        except FileNotFoundError:
            return []
        text = self.partial + text
        lines = text.split("\n")
        self.partial = lines.pop()
        return lines


def log_timestamp(line: str) -> float | None:
    match = LOG_TIME.search(line)
    if match is None:
        return None
    parsed = time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    return time.mktime(parsed) + int(match.group(2)) / 1000


class Demo:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.scratch = Path(tempfile.mkdtemp(prefix="cascor-demo-"))
        self.api_key = secrets.token_urlsafe(24)
        self.port = free_port()
        self.server = Server(self.port, self.api_key)
        self.server_child: Child | None = None
        self.workers: list[Child] = []
        self.progress = Progress()
        self.started = time.monotonic()
        self.last_status_line = ""
        self.last_output = self.started
        self.final_status: dict[str, Any] = {}
        self.worker_stats: dict[str, dict[str, Any]] = {}
        self.leftover: list[int] = []

    def say(self, message: str) -> None:
        self.last_output = time.monotonic()
        print(f"[{self.last_output - self.started:7.1f}s] {message}", flush=True)

    def children(self) -> list[Child]:
        return [*self.workers, *([self.server_child] if self.server_child else [])]

    def check_children_alive(self) -> None:
        for child in self.children():
            code = child.process.poll()
            if code is not None:
                raise DemoError(f"{child.name} (pid {child.pid}) exited with status {code}; last lines of {child.log_path}:\n{log_tail(child.log_path)}")

    def start_server(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "JUNIPER_CASCOR_API_KEYS": self.api_key,
                "JUNIPER_CASCOR_LOG_DIR": str(self.scratch),
                "JUNIPER_CASCOR_SNAPSHOTS_DIR": str(self.scratch),
                "MPLBACKEND": "Agg",
                # The server trains this many candidates itself each round, then sends one task
                # to each idle worker. A low value leaves most of the pool to the workers.
                "CASCOR_NUM_PROCESSES": "1",
            }
        )
        command = [self.settings.python, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", LOOPBACK, "--port", str(self.port)]
        self.server_child = start_child("server", command, env, self.scratch, self.scratch / "server.out")
        self.say(f"server juniper-cascor starting on {LOOPBACK}:{self.port} (pid {self.server_child.pid}), scratch folder {self.scratch}")

        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.healthy():
            self.check_children_alive()
            if time.monotonic() > deadline:
                raise DemoError(f"server did not return 200 on /v1/health within {SERVER_START_TIMEOUT_S:.0f} s; last lines of {self.server_child.log_path}:\n{log_tail(self.server_child.log_path)}")
            time.sleep(POLL_INTERVAL_S)
        self.say("server healthy")

    def worker_command(self, health_port: int) -> list[str]:
        url = f"ws://{LOOPBACK}:{self.port}/ws/v1/workers"
        if self.settings.worker_kind == "reference":
            reference_bin = Path(self.settings.python).parent / "juniper-cascor-worker"
            return [str(reference_bin), "--server-url", url, "--auth-token", self.api_key]
        return [str(self.settings.worker_bin), "--server-url", url, "--auth-token", self.api_key, "--health-port", str(health_port), "--threads", str(self.settings.worker_threads)]

    def start_workers(self) -> None:
        if self.settings.worker_kind == "rust" and not self.settings.worker_bin.is_file():
            raise DemoError(f"worker binary {self.settings.worker_bin} not found; build it with `scripts/with-env.sh cargo build --release -p juniper-cascor-worker` or set DEMO_WORKER_BIN")

        for number in range(1, self.settings.workers + 1):
            # The reference worker cannot be given a health port; it always uses 8210.
            health_port = free_port() if self.settings.worker_kind == "rust" else 8210
            name = f"{self.settings.worker_kind}-worker-{number}"
            child = start_child(name, self.worker_command(health_port), dict(os.environ), self.scratch, self.scratch / f"{name}.log")
            child.health_port = health_port
            self.workers.append(child)
            self.say(f"{name} started (pid {child.pid}, health {LOOPBACK}:{health_port})")

    def wait_for_registration(self, log: LogFollower) -> None:
        deadline = time.monotonic() + REGISTRATION_TIMEOUT_S
        while True:
            self.check_children_alive()
            self.read_log(log, announce=False)
            for worker in self.workers:
                if worker.client_id is None and worker.health_port is not None:
                    worker.client_id = worker_client_id(worker.health_port)
                if worker.server_id is None and worker.client_id is not None:
                    worker.server_id = self.server_id_for(worker.client_id)
                    if worker.server_id is not None:
                        self.say(f"{worker.name} registered as {worker.server_id}")
            if all(worker.server_id for worker in self.workers):
                return
            if time.monotonic() > deadline:
                waiting = ", ".join(worker.name for worker in self.workers if not worker.server_id)
                raise DemoError(f"{waiting} did not register within {REGISTRATION_TIMEOUT_S:.0f} s; see the logs in {self.scratch}")
            time.sleep(POLL_INTERVAL_S)

    def server_id_for(self, health_id: str) -> str | None:
        """Map the id from a worker's /v1/health to the id the server assigned at registration.

        The reference worker reports its own client id there, which the server logs as
        `client_name`; a worker may also report the server-assigned id itself.
        """
        if health_id in self.progress.registrations:
            return self.progress.registrations[health_id]
        if health_id in self.progress.registrations.values():
            return health_id
        return None

    def worker_name(self, server_id: str) -> str:
        for worker in self.workers:
            if worker.server_id == server_id:
                return f"{worker.name} ({server_id})"
        return f"other worker {server_id}"

    def read_log(self, log: LogFollower, announce: bool = True) -> None:
        """Parse new server log lines into progress and print the interesting ones."""
        our_ids = {worker.server_id for worker in self.workers}
        for line in log.new_lines():
            if match := LOG_REGISTERED.search(line):
                self.progress.registrations[match.group(2)] = match.group(1)
            elif match := LOG_SUBMITTED.search(line):
                self.progress.rounds += 1
                self.progress.tasks_submitted += int(match.group(1))
                self.progress.round_started_at = log_timestamp(line)
                if announce:
                    self.say(f"round {self.progress.rounds}: {match.group(1)} task(s) sent to remote workers")
            elif match := LOG_ACCEPTED.search(line):
                task_id, server_id, correlation = match.group(1), match.group(2), float(match.group(3))
                accepted_at = log_timestamp(line)
                latency = accepted_at - self.progress.round_started_at if accepted_at and self.progress.round_started_at else None
                self.progress.accepted.append({"task_id": task_id, "worker": server_id, "ours": server_id in our_ids, "correlation": correlation, "latency_seconds": latency})
                if announce:
                    latency_text = f", {latency:.1f} s after dispatch" if latency is not None else ""
                    self.say(f"  {self.worker_name(server_id)} trained task {task_id[:8]}: correlation {correlation:.4f}{latency_text}")
            elif LOG_REJECTED.search(line):
                self.progress.rejected.append(line.strip())
                if announce:
                    self.say(f"  REJECTED: {line.strip()}")
            elif match := LOG_BEST.search(line):
                if announce:
                    self.say(f"  best candidate of the round: correlation {float(match.group(1)):.4f}")
            elif match := LOG_NO_CANDIDATE.search(line):
                # juniper-cascor 0.12.0 counts a remote candidate that wins its round as 0.0,
                # so the run stops with below_threshold although the workers' results were good.
                if float(match.group(1)) == 0.0 and self.progress.accepted:
                    self.progress.zero_best_after_remote_round = True
                    if announce:
                        self.say("  server: no candidate above the threshold (best correlation reported as 0.0)")
            elif match := LOG_ADDED.search(line):
                self.progress.hidden_unit_correlations.append(float(match.group(1)))
                if announce:
                    self.say(f"  hidden unit {len(self.progress.hidden_unit_correlations)} added (correlation {float(match.group(1)):.4f})")

    def show_status(self, status: dict[str, Any]) -> None:
        machine, state = status["state_machine"], status["training_state"]
        line = f"state {machine['status']}, phase {machine['phase']}, hidden units {status['monitor'].get('current_hidden_units', 0)}, " f"candidates {state.get('candidates_trained', 0)}/{state.get('candidates_total', 0)}, best correlation {state.get('best_correlation', 0.0):.4f}"
        if line != self.last_status_line:
            self.say(line)
            self.last_status_line = line
        elif time.monotonic() - self.last_output > QUIET_PROGRESS_S:
            # The server trains its own candidates and the output layer between rounds.
            epoch = max(state.get("current_epoch") or 0, status["monitor"].get("current_epoch") or 0)
            self.say(f"  server still training ({machine['phase'].lower()} phase, epoch {epoch})")

    def start_training(self) -> None:
        params: dict[str, Any] = {"candidate_pool_size": self.settings.pool_size, "max_hidden_units": self.settings.hidden_units, "output_epochs": self.settings.output_epochs}
        if self.settings.candidate_epochs is not None:
            params["candidate_epochs"] = self.settings.candidate_epochs
        body = {"dataset": {"generator": "spiral", "params": {"n_points_per_spiral": self.settings.points_per_spiral, "seed": 42}}, "start_fresh": True, "params": params}
        self.server.request("POST", "/v1/training/start", body)
        self.say(f"training started: two spirals of {self.settings.points_per_spiral} points, pool {self.settings.pool_size}, up to {self.settings.hidden_units} hidden units, {self.settings.workers} {self.settings.worker_kind} worker(s)")

    def follow_training(self, log: LogFollower) -> None:
        deadline = self.started + self.settings.timeout
        seen_in_progress = False
        while True:
            self.check_children_alive()
            self.read_log(log)
            status = self.server.status()
            self.show_status(status)
            self.record_worker_stats()
            state = status["state_machine"]["status"]
            if state in TERMINAL_STATES or (state == "STOPPED" and seen_in_progress):
                self.final_status = status
                self.read_log(log)
                return
            if time.monotonic() > deadline:
                self.final_status = status
                raise DemoError(f"training did not finish within {self.settings.timeout:.0f} s (DEMO_TIMEOUT)")
            seen_in_progress = seen_in_progress or state != "STOPPED"
            time.sleep(POLL_INTERVAL_S)

    def record_worker_stats(self) -> None:
        for entry in self.server.workers():
            self.worker_stats[entry["worker_id"]] = entry
        for worker in self.workers:
            rss = peak_rss_kib(worker.pid)
            if rss is not None:
                worker.peak_rss_kib = rss

    def run(self) -> None:
        log = LogFollower(self.scratch / "juniper_cascor.log")
        self.start_server()
        self.start_workers()
        self.wait_for_registration(log)
        self.start_training()
        self.follow_training(log)

    def stop_all(self) -> None:
        """Stop the workers, then the server, and check that nothing of theirs is left."""
        for worker in self.workers:
            rss = peak_rss_kib(worker.pid)
            if rss is not None:
                worker.peak_rss_kib = rss
        groups = {child.pid for child in self.children()}
        for child in self.children():
            stop_child(child)
        self.leftover = wait_for_groups(groups, STOP_GRACE_S)
        for pid in self.leftover:
            print(f"demo: process {pid} of a stopped group was still running {STOP_GRACE_S:.0f} s after its leader exited; sending SIGKILL", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def summary(self, outcome: str) -> dict[str, Any]:
        accepted_ours = [entry for entry in self.progress.accepted if entry["ours"]]
        latencies = [entry["latency_seconds"] for entry in accepted_ours if entry["latency_seconds"] is not None]
        workers = []
        for worker in self.workers:
            stats = self.worker_stats.get(worker.server_id or "", {})
            workers.append(
                {
                    "name": worker.name,
                    "pid": worker.pid,
                    "server_id": worker.server_id,
                    "accepted": sum(1 for entry in accepted_ours if entry["worker"] == worker.server_id),
                    "tasks_completed": stats.get("tasks_completed"),
                    "tasks_failed": stats.get("tasks_failed"),
                    "peak_rss_mib": round(worker.peak_rss_kib / 1024, 1) if worker.peak_rss_kib else None,
                }
            )
        status = self.final_status
        return {
            "outcome": outcome,
            "training_status": status.get("state_machine", {}).get("status"),
            "completion_reason": status.get("completion_reason"),
            "run_seconds": round(time.monotonic() - self.started, 1),
            "rounds": self.progress.rounds,
            "tasks_sent_to_remote_workers": self.progress.tasks_submitted,
            "hidden_units_added": len(self.progress.hidden_unit_correlations),
            "accepted_from_our_workers": len(accepted_ours),
            "accepted_total": len(self.progress.accepted),
            "rejected": len(self.progress.rejected),
            "task_latency_seconds": {
                "count": len(latencies),
                "median": round(statistics.median(latencies), 3) if latencies else None,
                "max": round(max(latencies), 3) if latencies else None,
            },
            "workers": workers,
            "started_pids": [child.pid for child in self.children()],
            "leftover_pids": self.leftover,
            "server_zeroed_remote_best": self.progress.zero_best_after_remote_round,
            "scratch": str(self.scratch),
        }


def print_summary(summary: dict[str, Any]) -> None:
    latency = summary["task_latency_seconds"]
    lines = [
        "",
        "Summary",
        f"  outcome:               {summary['outcome']}",
        f"  training:              {summary['training_status']} ({summary['completion_reason']})",
        f"  run time:              {summary['run_seconds']} s",
        f"  rounds with remote:    {summary['rounds']} ({summary['tasks_sent_to_remote_workers']} tasks sent)",
        f"  hidden units added:    {summary['hidden_units_added']}",
        f"  accepted (ours/all):   {summary['accepted_from_our_workers']}/{summary['accepted_total']}",
        f"  rejected:              {summary['rejected']}",
        f"  task latency:          median {latency['median']} s, max {latency['max']} s over {latency['count']} tasks (dispatch to accepted result, server log)",
    ]
    for worker in summary["workers"]:
        lines.append(f"  {worker['name']}: {worker['server_id']}, {worker['accepted']} accepted, server counts completed={worker['tasks_completed']} failed={worker['tasks_failed']}, peak RSS {worker['peak_rss_mib']} MiB")
    lines.append(f"  leftover processes:    {summary['leftover_pids'] or 'none'}")
    if summary["server_zeroed_remote_best"]:
        lines.append(
            "  NOTE: juniper-cascor 0.12.0 reports a round's best correlation as 0.0 when a remote\n"
            "  candidate wins the round, and then stops growing with below_threshold. The run ends\n"
            "  early because of the server, not because of the workers' results."
        )
    print("\n".join(lines), flush=True)


def raise_interrupt(signum: int, _frame: Any) -> None:
    raise DemoInterrupted(signal.Signals(signum).name)


def main(argv: list[str]) -> int:
    settings = parse_args(argv)
    demo = Demo(settings)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, raise_interrupt)

    outcome, code = "ok", 0
    try:
        demo.run()
    except DemoInterrupted as interrupt:
        outcome, code = f"interrupted by {interrupt}", 130
    except DemoError as error:
        outcome, code = f"failed: {error}", 1
    finally:
        # A second signal during clean-up must not leave children behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        demo.stop_all()

    summary = demo.summary(outcome)
    if code == 0:
        problems = []
        if summary["training_status"] != "COMPLETED":
            problems.append(f"training ended {summary['training_status']}")
        if summary["accepted_from_our_workers"] == 0:
            problems.append("no result from our workers was accepted")
        if summary["rejected"]:
            problems.append(f"{summary['rejected']} result(s) rejected")
        if summary["leftover_pids"]:
            problems.append(f"processes left running: {summary['leftover_pids']}")
        if problems:
            outcome, code = "failed: " + "; ".join(problems), 1
            summary["outcome"] = outcome

    print_summary(summary)
    if settings.summary_json is not None:
        settings.summary_json.write_text(json.dumps(summary, indent=2) + "\n")

    if code == 0 and not settings.keep:
        shutil.rmtree(demo.scratch, ignore_errors=True)
    else:
        print(f"demo: logs kept in {demo.scratch}", file=sys.stderr)
    if code != 0:
        print(f"demo: {outcome}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
