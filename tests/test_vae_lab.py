"""The vae_lab package: the `vae-lab` command pyproject installs, and no TensorFlow where grading runs.

`import lab_utils` starts TensorFlow (seconds, and memory per process); the command's own
process, the grading workers that run the instructor's checks and the sandboxed answer worker
must not pay for it (the workers set VAE_LAB_WITHOUT_TENSORFLOW; `lab_utils.checks` is NumPy).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vae_lab import sandbox, workers

pytest.importorskip("nh3", reason="the classroom tools need the [lab] extra")

HEAVY = ("tensorflow", "keras", "lab_utils")
MODULES = ("vae_lab.cli", "vae_lab.grading", "vae_lab.workers", "vae_lab.feedback", "vae_lab.sandbox")


def test_pyproject_installs_the_vae_lab_command(pyproject):
    assert pyproject["project"]["scripts"] == {"vae-lab": "vae_lab.cli:main"}
    assert "vae_lab" in pyproject["tool"]["setuptools"]["packages"]


def test_the_command_and_the_grading_modules_import_no_tensorflow():
    code = "import sys\n" + "".join(f"import {module}\n" for module in MODULES)
    code += f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_answer_worker_starts_without_tensorflow(tmp_path):
    source = f"import sys\nheavy = sum(name.split('.')[0] in {HEAVY!r} for name in sys.modules)\n"
    limits = sandbox.Limits(seconds=60)
    with sandbox.Answer(source, {}, tmp_path / "work", limits, unsafe=True) as answer:
        assert answer.ready == {"ok": True}
        assert answer.get("heavy") == 0


ANSWER = (
    "def kl_per_image(z_mean, z_log_var):\n"
    "    return 0.5 * np.sum(z_mean**2 + np.exp(z_log_var) - 1 - z_log_var, axis=1)\n"
)
CHECK = "checks.check_kl_per_image(kl_per_image)\nchecks.check_kl_per_image(kl_per_image, seed=7)"


def graded_without_tensorflow(workdir: str) -> tuple[str, list[str]]:
    """In a grading worker: grade one answer (sandbox off), then list the heavy modules it imported."""
    limits = sandbox.Limits(seconds=60)
    names = sandbox.defined_names(ANSWER)
    status, _ = sandbox.run_check(CHECK, ANSWER, names, {}, Path(workdir), limits, unsafe=True)
    return status, sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "keras"})


def test_a_grading_worker_runs_the_checks_without_tensorflow(tmp_path):
    with workers.worker_pool(1) as pool:
        status, heavy = pool.submit(graded_without_tensorflow, str(tmp_path / "work")).result(timeout=240)
    assert status == "passed" and heavy == []


def test_a_line_printed_piece_by_piece_is_stored_as_one_output():
    """lab_utils.progress writes ' 10%', ' 20%', ... as it goes: one stream output each, which an HTML
    export showed one per line. Adjacent pieces of one stream are joined; others stay where they are."""
    import nbformat

    from vae_lab.notebooks import join_adjacent_streams

    def stream(text, name="stdout"):
        return nbformat.v4.new_output("stream", name=name, text=text)

    cell = nbformat.v4.new_code_cell("...")
    table = nbformat.v4.new_output("display_data", data={"text/plain": "table"})
    cell.outputs = [
        stream("IWAE:"),
        stream(" 10%"),
        stream(" 100% (1 s)\n"),
        stream("warn\n", "stderr"),
        stream("next\n"),
        table,
        stream("after\n"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    outputs = join_adjacent_streams(notebook).cells[0].outputs
    assert [output.get("text", "table") for output in outputs] == [
        "IWAE: 10% 100% (1 s)\n",
        "warn\n",
        "next\n",
        "table",
        "after\n",
    ]
