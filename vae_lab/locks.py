"""A file lock that says so when it has to wait: one grading run per course, one training run per model."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from filelock import FileLock, Timeout


def acquire(lock: FileLock, waiting: str) -> None:
    """Take `lock`; if another process holds it, print `waiting` and wait for it."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(waiting, flush=True)
        lock.acquire()


@contextlib.contextmanager
def held_lock(path: str | os.PathLike, waiting: str) -> Iterator[None]:
    """Hold the file lock `path` for the block; if another process holds it, print `waiting` and wait."""
    lock = FileLock(str(path))
    acquire(lock, waiting)
    try:
        yield
    finally:
        lock.release()
