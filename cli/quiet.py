"""Known start-up noise of TF and Beam, kept off the terminal unless `--verbose` is given.

Every TF/Beam command printed lines like "failed call to cuInit: CUDA error (303)" on a CPU
machine; a new user reads them as failures. They come from C++ (TF's and absl's loggers write
to file descriptor 2 directly) and from Beam's Python logging at import, so the filter sits on
fd 2 itself: a thread passes every line through except those matching `NOISE`. Nothing else
is touched, so real errors and tracebacks still show.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = (
    # TF probes for a GPU on every start; on a CPU-only machine the probe fails, harmlessly.
    re.compile(rb"failed call to cuInit"),
    re.compile(rb"All log messages before absl::InitializeLog\(\) is called"),
    # Grappler's cost model meeting an op of unknown shape; it falls back, nothing fails.
    re.compile(rb"Error in PredictCost\(\) for the op"),
    # Beam's GCP extras (BigQuery), which ntr does not use.
    re.compile(rb"apitools not found"),
)


class StderrFilter:
    """Drops `NOISE` lines from fd 2 (C++ and Python writers alike) until `stop()` or exit."""

    def __init__(self, patterns: tuple[re.Pattern, ...] = NOISE):
        self.patterns = patterns
        self._terminal: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sys.stderr.flush()
        self._terminal = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _pump(self, read: int) -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if not any(p.search(line) for p in self.patterns):
                    os.write(self._terminal, line)

    def stop(self) -> None:
        """Puts the terminal back on fd 2 and lets the pump drain what is left."""
        if self._terminal is None:
            return
        sys.stderr.flush()
        os.dup2(self._terminal, 2)  # the pipe's last writer closes: the pump reads to EOF
        self._thread.join(timeout=5)
        os.close(self._terminal)
        self._terminal = None
