"""Runs `ntr serve` as a child process on a free loopback port (tests, benchmarks, scripts)."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`ntr serve` with the given flags, started and waited for: `url` answers `/healthz`.

    Its output goes to `log_path` (default `<db>.log`; give one when `db` is a PostgreSQL URL).
    Stop it with `stop_gracefully()` or `stop(signal)`.
    """

    def __init__(
        self, model_dir: str, index_dir: str | None, db: str, *flags: str, log_path: str | None = None
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-c", "from ntr.cli.entry import run; run()", "serve"]
        command += ["--model-dir", model_dir, "--db", db]
        command += ["--brute-force"] if index_dir is None else ["--index-dir", index_dir]
        command += ["--port", str(self.port), "--log-level", "warning", *flags]
        if log_path is None and "://" in db:
            raise ValueError(
                "a server on a database URL needs log_path= (its log cannot go beside the database)."
            )
        self.log_path = log_path or db + ".log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ntr serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"ntr serve did not answer within {STARTUP_SECONDS}s:\n{self.log()}")

    def log(self) -> str:
        with open(self.log_path) as handle:
            return handle.read()

    def stop_gracefully(self) -> bool:
        """SIGTERM; True when the server finished its requests and closed the store."""
        code = self.stop(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown, hence -SIGTERM.
        return code in (0, -signal.SIGTERM) and "shut down cleanly" in self.log()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        code = self.process.wait(timeout)
        self._log.close()
        return code
