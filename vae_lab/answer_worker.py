"""Runs inside the grading sandbox: one student's answer cell, then calls on it from the grader.

The grader (`vae_lab/sandbox.py`) starts this file with `python -I` in a bubblewrap sandbox and
talks to it over stdin/stdout, one JSON message per line (arrays travel as base64 `.npy` bytes):

    grader -> {"source": answer cell, "predefined": {name: JSON value}}   <- {"ok": true} or {"error": ...}
    grader -> {"call": name, "args": [array, ...]}                   <- {"value": array} or {"error": ...}
    grader -> {"get": name}                                          <- {"value": array} or {"error": ...}

The checks themselves never run here: whatever the answer cell does to this interpreter (patch
`lab_utils.checks`, print "✓", ...) cannot change a score, because the grader only takes the values
it asks for. Only the standard library and NumPy are imported up front; `keras` is imported on
first use, as the notebooks would have it.
"""

from __future__ import annotations

import base64
import errno
import importlib
import io
import json
import os
import sys
import traceback

import numpy as np


class _LazyModule:
    """A module imported on first attribute access (keras takes seconds to import)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)


def encode(value) -> str:
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def _error(error: BaseException) -> dict:
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        message = "it printed or wrote more than the grader's output limit"
        return {"error": {"type": "OutputLimit", "message": message, "traceback": ""}}
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return {"error": {"type": type(error).__name__, "message": str(error), "traceback": "".join(lines[-12:])}}


def _as_array(name: str, value) -> dict:
    if value is None:
        return {"value": None}
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - anything the student returned
        return _error(error)
    if array.dtype == object:
        return {
            "error": {"type": "TypeError", "message": f"{name} gave a {type(value).__name__}, not numbers"}
        }
    return {"value": encode(array)}


def main() -> None:
    # The protocol keeps private copies of stdin/stdout; the student's prints go to output.txt in the
    # working folder, whose size the sandbox caps.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    output = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8")
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8")

    def reply(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    first = json.loads(requests.readline())
    namespace = {"__name__": "__main__", "np": np, "keras": _LazyModule("keras"), **first["predefined"]}
    try:
        exec(compile(first["source"], "<your answer cell>", "exec"), namespace)  # noqa: S102 - the point
    except BaseException as error:  # noqa: BLE001 - report anything, SystemExit included
        reply(_error(error))
        return
    reply({"ok": True})
    for line in requests:
        request = json.loads(line)
        name = request.get("call") or request.get("get")
        if name not in namespace:
            reply(
                {
                    "error": {
                        "type": "NameError",
                        "message": f"name {name!r} is not defined in your answer cell",
                    }
                }
            )
            continue
        if "get" in request:
            reply(_as_array(name, namespace[name]))
            continue
        arguments = [array.item() if array.ndim == 0 else array for array in map(decode, request["args"])]
        try:
            answer = namespace[name](*arguments)
        except BaseException as error:  # noqa: BLE001
            reply(_error(error))
            continue
        reply(_as_array(name, answer))


if __name__ == "__main__":
    main()
