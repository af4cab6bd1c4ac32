"""Instructor workflow with nbgrader: make the student release, then grade a folder of submissions.

    python scripts/classroom.py release                  # notebooks/ -> build/classroom/release/vae-lab/
    python scripts/classroom.py grade SUBMISSIONS_DIR    # SUBMISSIONS_DIR/<student id>/*.ipynb

The committed notebooks are the instructor versions (solutions, hidden tests and points in the
nbgrader cell metadata). `release` copies them into an nbgrader course folder (git-ignored,
`build/classroom/` by default) and runs `nbgrader generate_assignment`. `grade` copies each
student's notebooks into the course's `submitted/` folder (the originals are never touched), runs
`nbgrader autograde`, `generate_feedback` and `export`, and writes `grades.csv` (nbgrader's
gradebook export), `grades_by_exercise.csv` (one row per graded cell) and `feedback/`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ASSIGNMENT = "vae-lab"
KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = KIT / "notebooks"
DEFAULT_COURSE = KIT / "build" / "classroom"
DEFAULT_TIMEOUT = {"fast": 120, "full": 1800}  # seconds per cell before the kernel is interrupted
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

CONFIG = """\
# Written by scripts/classroom.py; rewritten on every run.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "vae-lab"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
"""


class ClassroomError(Exception):
    """A problem the instructor can fix; the message says how."""


def _nbgrader(course: Path, *arguments: str, env: dict[str, str] | None = None) -> int:
    """Run one nbgrader command in the course folder with this Python's tools on PATH."""
    tools = str(Path(sys.executable).parent)  # nbgrader runs alembic from PATH when it creates the database
    environment = dict(os.environ if env is None else env)
    environment["PATH"] = tools + os.pathsep + environment.get("PATH", "")
    command = [sys.executable, "-m", "nbgrader", *arguments]
    print("$ nbgrader " + " ".join(arguments), flush=True)
    return subprocess.run(command, cwd=course, env=environment).returncode


def _check_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise ClassroomError(
            "nbgrader is not installed in this environment: run `pip install -e '.[instructor]'` "
            "(or `make release`, which installs it)."
        ) from None


def _prepare_course(course: Path) -> Path:
    course = course.resolve()
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    return course


def _source_notebooks() -> list[Path]:
    notebooks = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if not notebooks:
        raise ClassroomError(f"no lab notebooks found in {NOTEBOOKS}.")
    return notebooks


def _graded_cells() -> dict[str, dict[str, str]]:
    """For each lab notebook with graded cells: {cell id: who grades it, "autograder" or "instructor"}."""
    graded = {}
    for path in _source_notebooks():
        cells = [cell["metadata"].get("nbgrader", {}) for cell in json.loads(path.read_text())["cells"]]
        by = {
            cell["grade_id"]: "instructor" if cell["solution"] else "autograder"
            for cell in cells
            if cell.get("grade")
        }
        if by:
            graded[path.stem] = by
    return graded


def release(course: Path) -> Path:
    """Copy the instructor notebooks into the course and generate the student release; return its folder."""
    _check_nbgrader()
    course = _prepare_course(course)
    source = course / "source" / ASSIGNMENT
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for notebook in _source_notebooks():
        shutil.copy2(notebook, source / notebook.name)
    if _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force") != 0:
        raise ClassroomError("nbgrader generate_assignment failed; its messages are above.")
    released = course / "release" / ASSIGNMENT
    print(f"student release: {released}")
    return released


def _collect(submissions: Path, course: Path) -> list[str]:
    """Copy SUBMISSIONS/<student>/*.ipynb to the course's submitted/ folder; return the student ids."""
    if not submissions.is_dir():
        raise ClassroomError(
            f"{submissions} is not a folder; give the folder that holds one folder per student."
        )
    expected = {path.name for path in _source_notebooks()}
    students = sorted(
        path for path in submissions.iterdir() if path.is_dir() and not path.name.startswith(".")
    )
    if not students:
        raise ClassroomError(
            f"no student folders in {submissions}: put each student's notebooks in "
            f"{submissions}/<student id>/."
        )
    for student in students:
        if not STUDENT_ID.match(student.name):
            raise ClassroomError(
                f"{student.name!r} is not a usable student id (folder {student}); rename the folder to "
                "letters, digits, '.', '_' or '-'."
            )
        handed_in = {path.name for path in student.glob("*.ipynb")}
        if not handed_in & expected:
            raise ClassroomError(
                f"{student} holds none of the lab's notebooks ({', '.join(sorted(expected))}); "
                "check the folder and the file names."
            )
        target = course / "submitted" / student.name / ASSIGNMENT
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(student, target)
        missing = sorted(expected - handed_in)
        if missing:
            print(f"note: {student.name} did not hand in {', '.join(missing)}")
    return [student.name for student in students]


def _exercise_table(course: Path, students: list[str], graded: dict[str, dict[str, str]]) -> list[dict]:
    """One row per student and graded cell: who grades it, the automatic and manual scores, the points."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(ASSIGNMENT, student)
            except MissingEntry:
                print(f"note: no grades for {student}: nbgrader could not grade the submission (see above)")
                continue
            for notebook in sorted(submission.notebooks, key=lambda notebook: notebook.name):
                for grade in sorted(notebook.grades, key=lambda grade: grade.name):
                    rows.append(
                        {
                            "student_id": student,
                            "notebook": notebook.name,
                            "exercise": grade.name,
                            "graded_by": graded[notebook.name][grade.name],
                            "auto_score": grade.auto_score,
                            "manual_score": grade.manual_score,
                            "score": grade.score,
                            "max_score": grade.max_score,
                            "needs_manual_grade": grade.needs_manual_grade,
                        }
                    )
    return rows


def grade(submissions: Path, course: Path, mode: str, timeout: int | None) -> int:
    """Autograde every submission, write the gradebook CSVs and the feedback; return nbgrader's status."""
    _check_nbgrader()
    course = _prepare_course(course)
    if not (course / "release" / ASSIGNMENT).is_dir():
        raise ClassroomError(
            f"there is no release in {course}: run `python scripts/classroom.py release` first."
        )
    students = _collect(submissions.resolve(), course)
    env = dict(os.environ, VAE_LAB_MODE=mode)
    env.pop("VAE_LAB_RETRAIN", None)  # grading loads the models it trained for the first student
    env.setdefault("VAE_LAB_ARTIFACTS", str(course / "artifacts"))  # never the instructor's own models
    timeout = DEFAULT_TIMEOUT[mode] if timeout is None else timeout
    for student in students:  # results of an earlier run of this script go; the submissions stay
        for folder in ("autograded", "feedback"):
            shutil.rmtree(course / folder / student / ASSIGNMENT, ignore_errors=True)
    graded = _graded_cells()
    print(f"autograding {', '.join(graded)} in {mode} mode; the other notebooks have no graded cells")
    status = 0
    for notebook in graded:  # in order: notebook 03 uses the model notebook 02 trained
        arguments = ["--force", f"--notebook={notebook}", f"--Execute.timeout={timeout}"]
        status = _nbgrader(course, "autograde", ASSIGNMENT, *arguments, env=env) or status
    feedback = _nbgrader(course, "generate_feedback", ASSIGNMENT, "--force", env=env)
    exported = _nbgrader(course, "export", "--to", str(course / "grades.csv"), env=env)
    rows = _exercise_table(course, students, graded)
    if not rows:
        raise ClassroomError("nbgrader graded no submission; its messages above say why.")
    with (course / "grades_by_exercise.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{'student':24} autograded   to grade by hand")
    for student in students:
        mine = [row for row in rows if row["student_id"] == student]
        auto = [row for row in mine if row["graded_by"] == "autograder"]
        manual = sum(row["max_score"] for row in mine if row["graded_by"] == "instructor")
        score = sum(row["auto_score"] or 0 for row in auto)
        print(f"{student:24} {score:4g} / {sum(row['max_score'] for row in auto):<4g}  {manual:g} points")
    print(f"\ngradebook: {course / 'grades.csv'} and {course / 'grades_by_exercise.csv'}")
    print(f"feedback:  {course / 'feedback'}/<student>/{ASSIGNMENT}/*.html")
    return status or feedback or exported


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--course", type=Path, default=DEFAULT_COURSE, help="nbgrader course folder (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="generate the student release from notebooks/")
    grading = commands.add_parser("grade", help="autograde SUBMISSIONS/<student id>/*.ipynb")
    grading.add_argument("submissions", type=Path, help="folder with one folder of notebooks per student")
    grading.add_argument(
        "--mode",
        choices=("fast", "full"),
        default="fast",
        help="run mode the notebooks execute in (the exercises do not depend on it; default fast)",
    )
    grading.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds a cell may run before it is interrupted and scored as failed "
        f"(default {DEFAULT_TIMEOUT['fast']} in fast mode, {DEFAULT_TIMEOUT['full']} in full)",
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "release":
            release(arguments.course)
            return 0
        return grade(arguments.submissions, arguments.course, arguments.mode, arguments.timeout)
    except ClassroomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
