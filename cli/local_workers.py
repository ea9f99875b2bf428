"""`ntr train --local-workers N`: start N multi-worker training processes on this machine.

Each worker is the same `ntr train` command with `--strategy multi_worker` and its own
`TF_CONFIG` (loopback ports). Worker 0 is the chief: its output is shown and it writes the
model directory; the others' standard output is dropped. If one worker dies, the others are
stopped and the command fails; running it again resumes from the chief's last checkpoint.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from ntr.retrieval.distribute import TF_CONFIG, local_cluster

# Seconds a worker gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10


def free_ports(count: int) -> list[int]:
    """`count` loopback ports free now (the OS picks them; held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_argv(argv: list[str]) -> list[str]:
    """`ntr train` arguments for one worker: without --local-workers and --fresh (the launcher
    handles them) and with `--strategy multi_worker`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--local-workers":
            skip = True
            continue
        if arg.startswith("--local-workers=") or arg == "--fresh":
            continue
        out.append(arg)
    return [*out, "--strategy", "multi_worker"]


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every worker still running, then SIGKILL those that outlive the grace time."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in processes:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_local_workers(argv: list[str], num_workers: int, poll_s: float = 0.2) -> int:
    """Runs `ntr <argv>` as `num_workers` workers; returns 0, or the first failing exit code."""
    if num_workers < 1:
        raise ValueError(f"--local-workers {num_workers}: give at least 1 worker.")
    args = worker_argv(argv)
    processes = []
    for index, tf_config in enumerate(local_cluster(num_workers, free_ports(num_workers))):
        env = dict(os.environ, **{TF_CONFIG: tf_config})
        extra = [] if index == 0 else ["--no-progress"]
        out = None if index == 0 else subprocess.DEVNULL
        processes.append(
            subprocess.Popen([sys.executable, "-m", "ntr.cli", *args, *extra], env=env, stdout=out)
        )
    print(f"started {num_workers} workers: pids {[p.pid for p in processes]}", flush=True)
    try:
        while True:
            codes = [proc.poll() for proc in processes]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                print(
                    f"worker {index} exited with {code}: stopping the others; run the same command "
                    "again to resume from the last checkpoint",
                    file=sys.stderr,
                )
                stop(processes)
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll_s)
    except KeyboardInterrupt:
        stop(processes)
        return 130
