"""A student's check before the deadline: the grader's intake and checks on their notebooks, and the zip.

`vae-lab check [FOLDER] --student ID`, or `check_handin(student=...)` in the last cell of a graded
notebook, runs on the student's machine (Colab included) what `vae-lab grade` runs:
- the intake (`intake.collect_student`): a notebook is there under its name, valid, a regular
  file; graded cells deleted by the student are restored as released (and said so);
- each autograded exercise (`workers.grade_student`): the answer cell alone, in a fresh Python
  with `np` and `keras`, and the released self-check called on it (exercise 3 on the same
  made-up history the grader uses for that student id).
It prints the status the grader would give each notebook, each exercise's result and what to fix,
then writes `<id>.zip` (`<id>/<notebook>.ipynb`, the student's files as they are), which unpacks
into the grader's `submissions/<id>/` layout.

What it cannot do: the hidden tests are not in the release (an answer that fits only the visible
check still loses their points), and without bubblewrap (Colab) the answers run in a plain
subprocess; the real grading runs them sandboxed. The release it checks against is
`vae_lab/released.json`, which `make release` writes from the course's release, so a student's
kit checks what that release grades.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from vae_lab import sandbox
from vae_lab.course import ASSIGNMENT, cell_source, nbgrader_cells
from vae_lab.intake import STUDENT_ID, collect_student
from vae_lab.workers import grade_student, notebook_status

REFERENCE = Path(__file__).with_name("released.json")
COLAB_FOLDER = Path("/content/hand-in")  # where the check keeps the Colab notebooks it was given


def write_reference(course: Path, target: Path = REFERENCE) -> bool:
    """Write what a student's check needs from the course's release; True if the file changed.

    Per graded notebook: the released notebook, and its autograded exercises with the released
    (visible) check and the names each answer must define; no solution and no hidden test.
    """
    from vae_lab.grading import exercises_of  # the instructor's side: nbgrader is there

    released = course / "release" / ASSIGNMENT
    reference = {}
    for notebook, exercises in exercises_of(course / "source" / ASSIGNMENT).items():
        release = json.loads((released / f"{notebook}.ipynb").read_text())
        visible = {grade_id: cell_source(cell) for grade_id, cell in nbgrader_cells(release).items()}
        reference[notebook] = {
            "release": release,
            "exercises": [{**exercise, "check": visible[exercise["check_id"]]} for exercise in exercises],
        }
    text = json.dumps(reference, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if target.is_file() and target.read_text() == text:
        return False
    target.write_text(text)
    return True


def _nh3() -> bool:
    try:
        import nh3  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def check_folder(
    folder: Path, student: str | None = None, out: Path | None = None, timeout: float = 60.0
) -> dict:
    """Check the notebooks in `folder` as the grader would, print what to fix; with `student`, write the zip.

    Returns {notebook: {"status": ..., "exercises": {check id: "passed" | "failed" | "timeout" | "crash"}}}.
    """
    if student is not None and not STUDENT_ID.match(student):
        raise ValueError(
            f"student={student!r} is not an id the grader accepts: use letters, digits, '.', '_' or '-' "
            "(your student id, e.g. s1234567)."
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: give the folder that holds your notebooks.")
    reference = json.loads(REFERENCE.read_text())
    sandboxed = sandbox.cannot_start() is None  # Colab has no bubblewrap; a container may refuse it
    inert = _nh3()
    with tempfile.TemporaryDirectory(prefix="vae-lab-check-") as scratch:
        released = Path(scratch) / "release"
        released.mkdir()
        for notebook, part in reference.items():
            (released / f"{notebook}.ipynb").write_text(json.dumps(part["release"]))
        statuses, _ = collect_student(folder, released, Path(scratch) / "submitted", inert=inert)
        graded = grade_student(
            {
                "student": student or "you",
                "submitted": str(Path(scratch) / "submitted"),
                "exercises": {notebook: part["exercises"] for notebook, part in reference.items()},
                "timeout": timeout,
                "unsafe": not sandboxed,
            }
        )["notebooks"]
    results = {
        notebook: {
            "status": notebook_status(status, graded.get(notebook, {})),
            "exercises": {check: result["status"] for check, result in graded.get(notebook, {}).items()},
        }
        for notebook, status in statuses.items()
    }
    _report(folder, reference, results, graded, sandboxed, inert)
    if student is not None:
        _write_zip(folder, student, out or folder / f"{student}.zip", reference)
    return results


def _report(folder, reference, results, graded, sandboxed, inert) -> None:
    points = {ex["check_id"]: ex["points"] for part in reference.values() for ex in part["exercises"]}
    shown = "this folder" if folder.resolve() == Path.cwd().resolve() else str(folder)
    print(f"Checked the notebooks in {shown} as the grader will:")
    for notebook, result in results.items():
        print(f"\n{notebook}.ipynb: {result['status']}")
        for check, outcome in graded.get(notebook, {}).items():
            worth = f"{points[check]:g} point{'s' if points[check] != 1 else ''}"
            if outcome["status"] == "passed":
                print(f"  ✓ {check} ({worth})")
                continue
            errors = [output for output in outcome["outputs"] if output.get("output_type") == "error"]
            why = errors[-1]["evalue"] if errors else outcome["status"]
            print(f"  ✗ {check} ({worth}, {outcome['status']}): {why}")
    scored = sum(points[check] for result in results.values() for check, s in result["exercises"].items()
                 if s == "passed")
    print(
        f"\nSelf-checks passed: {scored:g} of {sum(points.values()):g} points. The grader also runs hidden "
        "tests on other inputs, and your instructor grades the written answers."
    )
    if not sandboxed:
        print("Your answers ran in a plain Python here (no sandbox starts here); the grader sandboxes each.")
    if not inert:
        print("Not checked here: HTML that could run in a browser (that check needs nh3: pip install nh3).")


def _write_zip(folder: Path, student: str, out: Path, reference: dict) -> None:
    """`out`: `<student>/<notebook>.ipynb` for each graded notebook in `folder` (regular files, as is)."""
    names = [f"{notebook}.ipynb" for notebook in reference]
    found = [name for name in names if (folder / name).is_file() and not (folder / name).is_symlink()]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in found:
            archive.write(folder / name, f"{student}/{name}")
    os.replace(partial, out)
    missing = sorted(set(names) - set(found))
    print(f"\nWrote {out} ({', '.join(found) or 'no notebook'}): upload this file."
          + (f" Missing from it: {', '.join(missing)}." if missing else ""))


def _colab_notebook() -> dict | None:
    """The notebook open in Colab, from its front end (Colab keeps it in Drive, not on this machine)."""
    try:
        from google.colab import _message
    except ImportError:
        return None
    return _message.blocking_request("get_ipynb", request="", timeout_sec=60)["ipynb"]


def _which(notebook: dict, reference: dict) -> str | None:
    """Which graded notebook `notebook` is, by the graded cells it carries."""
    carried = json.dumps(notebook)
    for name, part in reference.items():
        if all(f'"{grade_id}"' in carried for grade_id in nbgrader_cells(part["release"])):
            return name
    return None


def check_handin(student: str = "", folder: str | os.PathLike | None = None) -> None:
    """The last cell of a graded notebook: check the notebooks the grader would take, and write `<id>.zip`.

    `folder` defaults to this notebook's folder (Jupyter starts the kernel there). On Colab the
    open notebook is saved into /content/hand-in/ under its release name first: run this cell in
    each graded notebook, and the zip holds all of them. Save the notebook before running it.
    """
    student = student.strip() or None
    opened = _colab_notebook()
    if opened is not None and folder is None:
        reference = json.loads(REFERENCE.read_text())
        name = _which(opened, reference)
        COLAB_FOLDER.mkdir(parents=True, exist_ok=True)
        if name is not None:
            (COLAB_FOLDER / f"{name}.ipynb").write_text(json.dumps(opened, ensure_ascii=False))
            print(f"Saved this notebook as {COLAB_FOLDER / name}.ipynb.")
        folder = COLAB_FOLDER
    check_folder(Path(folder or Path.cwd()), student)
    if student is None:
        print("\nPut your student id between the quotes of `student=\"\"` to write the file you upload.")
    elif opened is not None:
        from google.colab import files

        files.download(str(Path(folder) / f"{student}.zip"))
    sys.stdout.flush()
