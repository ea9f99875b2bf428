"""A small progress line on stderr for long work (no extra dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints `label: done/total (pct) elapsed` at most every `every` seconds, then a newline."""

    def __init__(self, label: str, every: float = 1.0, stream=None):
        self._label = label
        self._every = every
        self._stream = stream or sys.stderr
        self._start = time.perf_counter()
        self._last = -every

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter() - self._start
        if done < total and now - self._last < self._every:
            return
        self._last = now
        pct = 100.0 * done / max(total, 1)
        end = "\n" if done >= total else ""
        self._stream.write(f"\r{self._label}: {done}/{total} ({pct:5.1f}%) {now:6.1f}s{end}")
        self._stream.flush()
