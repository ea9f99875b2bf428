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


class TrainingBar:
    """`epoch 2/10 [#####.....] 40/75 loss 7.1234 21,000 targets/s` on stderr, every `every` s."""

    def __init__(self, every: float = 1.0, width: int = 24, stream=None):
        self._every = every
        self._width = width
        self._stream = stream or sys.stderr
        self._last = -every

    def __call__(self, p) -> None:
        now = time.perf_counter()
        last_step = p.step_in_epoch >= p.steps_per_epoch
        if not last_step and now - self._last < self._every:
            return
        self._last = now
        filled = min(self._width, self._width * p.step_in_epoch // max(p.steps_per_epoch, 1))
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(
            f"\repoch {p.epoch + 1}/{p.epochs} [{bar}] {p.step_in_epoch}/{p.steps_per_epoch} "
            f"loss {p.loss:.4f} {p.targets_per_second:,.0f} targets/s" + ("\n" if last_step else "")
        )
        self._stream.flush()
