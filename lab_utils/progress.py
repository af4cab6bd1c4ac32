"""A progress line that reads the same live and stored: no terminal escape codes, one line per task."""

from __future__ import annotations

import sys
import time


class Progress:
    """Print `label: 10% 20% … 100% (12 s)` on one line as `total` units of work are done.

    Keras' progress bar redraws itself with terminal escape codes, which a notebook stores and
    an HTML export or a repository's notebook view shows as hundreds of garbled lines; this
    line is written once, piece by piece, and stays readable wherever it is shown.
    """

    def __init__(self, total: int, label: str, steps: int = 10, stream=None):
        if total < 1:
            raise ValueError(f"total={total!r} must be at least 1 unit of work.")
        self.total, self.steps, self.stream = total, steps, stream or sys.stdout
        self.shown, self.done, self.start = 0, 0, time.perf_counter()
        self._write(f"{label}:")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def update(self, done: int) -> None:
        """Record that `done` of the `total` units are finished (ends the line at `total`)."""
        if self.done >= self.total:
            return
        self.done = min(done, self.total)
        reached = self.done * self.steps // self.total
        for step in range(self.shown + 1, reached + 1):
            self._write(f" {100 * step // self.steps}%")
        self.shown = max(self.shown, reached)
        if self.done == self.total:
            self._write(f" ({time.perf_counter() - self.start:.0f} s)\n")
