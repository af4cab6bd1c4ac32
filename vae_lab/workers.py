"""What a grading run's worker processes do for one student: each answer cell in its sandbox, the check here.

The checks, hidden tests included, run in the worker with the real `lab_utils.checks`, imported
when the first check runs; the student's code runs only in the sandbox (`vae_lab.sandbox`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vae_lab import WITHOUT_TENSORFLOW_VARIABLE, sandbox
from vae_lab.course import cell_source, nbgrader_cells


def _without_tensorflow() -> None:
    os.environ[WITHOUT_TENSORFLOW_VARIABLE] = "1"  # lab_utils.checks then runs on NumPy alone


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started afresh ("spawn"): a forked copy of a process that already runs
    NumPy's or nbgrader's threads can hang on a lock one of them held (seen here once, in about
    a hundred students graded). They never import TensorFlow."""
    return ProcessPoolExecutor(
        max_workers=max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_without_tensorflow,
    )


def made_up_history(student: str) -> dict[str, list[float]]:
    """A training history for exercise 3, different per student, so a copied number scores nothing."""
    rng = np.random.default_rng(int(hashlib.sha256(student.encode()).hexdigest()[:12], 16))
    epochs = 10
    decay = np.exp(-np.arange(epochs) / rng.uniform(2, 4))
    history = {}
    for prefix, offset in (("", 0.0), ("val_", rng.uniform(-2, 2))):
        kl = rng.uniform(4, 7) - 1.5 * decay + rng.normal(0, 0.05, epochs)
        reconstruction = (
            rng.uniform(140, 150) + rng.uniform(15, 30) * decay + offset + rng.normal(0, 0.3, epochs)
        )
        history[prefix + "reconstruction_loss"] = [round(float(x), 4) for x in reconstruction]
        history[prefix + "kl_loss"] = [round(float(x), 4) for x in kl]
        history[prefix + "loss"] = [round(float(x), 4) for x in reconstruction + kl]
    return history


def grade_student(job: dict) -> dict:
    """Run every autograded cell of one student's normalised notebooks; return the results."""
    results = {"student": job["student"], "notebooks": {}}
    predefined = {"history": made_up_history(job["student"])}
    limits = sandbox.Limits(seconds=job["timeout"])
    with tempfile.TemporaryDirectory(prefix=f"grade-{job['student']}-") as scratch:
        for notebook, exercises in job["exercises"].items():
            path = Path(job["submitted"]) / f"{notebook}.ipynb"
            if not path.exists():
                continue
            cells = nbgrader_cells(json.loads(path.read_text()))
            graded = {}
            for exercise in exercises:
                answer = (
                    cell_source(cells[exercise["answer_id"]])
                    if exercise["answer_id"] in cells
                    else "raise NotImplementedError()"
                )
                status, outputs = sandbox.run_check(
                    exercise["check"],
                    answer,
                    (exercise["functions"], exercise["values"]),
                    {name: value for name, value in predefined.items() if name in exercise["check"]},
                    Path(scratch) / exercise["check_id"],
                    limits,
                    job["unsafe"],
                )
                # scored as it is, and flagged for the instructor when the answer names the checks
                graded[exercise["check_id"]] = {
                    "status": status,
                    "outputs": outputs,
                    "flagged": touches_checks(answer),
                }
            results["notebooks"][notebook] = graded
    return results


def touches_checks(source: str) -> bool:
    """Whether an answer cell names the grader's checks (no answer needs them; a cheat does)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("checks", "CheckFailed"):
            return True
        if isinstance(node, ast.Attribute) and node.attr.startswith("check_"):
            return True
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
            if any("checks" in name for name in names):
                return True
    return False


def notebook_status(status: str, graded: dict) -> str:
    """A notebook's status, naming the exercises that timed out, crashed or touched the checks."""
    problems = {
        "timeout": [check for check, result in graded.items() if result["status"] == "timeout"],
        "crash": [check for check, result in graded.items() if result["status"] == "crash"],
        "flagged (answer uses the grader's checks)": [
            check for check, result in graded.items() if result["flagged"]
        ],
    }
    notes = [f"{problem} in {', '.join(checks)}" for problem, checks in problems.items() if checks]
    return "; ".join(([] if status == "graded" and notes else [status]) + notes)
