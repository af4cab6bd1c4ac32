"""The student release: nbgrader's generate_assignment on the instructor notebooks, stripped for download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vae_lab import NOTEBOOKS, lab_notebooks
from vae_lab.course import ASSIGNMENT, ClassroomError, nbgrader_api, prepare_course, require_nbgrader


def release(course: Path, reference: Path | None = None) -> Path:
    """Copy the instructor notebooks into the course and generate the student release; return its folder.

    With `reference`, also write there what a student's `vae-lab check` checks against
    (`handin.write_reference`; `make release` writes the kit's own, vae_lab/released.json).
    """
    require_nbgrader()
    course = prepare_course(course)
    source = course / "source" / ASSIGNMENT
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for notebook in _source_notebooks():
        shutil.copy2(notebook, source / notebook.name)
    result = nbgrader_api(course).generate_assignment(ASSIGNMENT, force=True)
    if not result["success"]:
        raise ClassroomError(
            f"nbgrader generate_assignment failed:\n{result.get('log', '')}{result.get('error', '')}"
        )
    released = course / "release" / ASSIGNMENT
    for path in released.glob("*.ipynb"):
        _strip_for_release(path)
    sizes = ", ".join(
        f"{path.name} {path.stat().st_size / 1000:.0f} KB" for path in sorted(released.glob("*.ipynb"))
    )
    print(f"student release: {released} ({sizes})")
    if reference is not None:
        from vae_lab.handin import write_reference

        changed = write_reference(course, reference)
        state = "updated: commit it" if changed else "up to date"
        print(f"the students' check reads {reference} ({state})")
    return released


def _source_notebooks() -> list[Path]:
    notebooks = lab_notebooks()
    if not notebooks:
        raise ClassroomError(f"no lab notebooks found in {NOTEBOOKS}.")
    return notebooks


def _strip_for_release(path: Path) -> None:
    """No outputs, widget state or run metadata in what students download; nbgrader's marks stay."""
    notebook = json.loads(path.read_text())
    notebook["metadata"] = {
        key: notebook["metadata"][key]
        for key in ("kernelspec", "language_info")
        if key in notebook["metadata"]
    }
    for cell in notebook["cells"]:
        cell["metadata"] = {
            key: cell["metadata"][key] for key in ("nbgrader", "jupyter", "tags") if key in cell["metadata"]
        }
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.pop("attachments", None)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
