"""Instructor workflow with nbgrader: make the student release, then grade a folder of submissions.

    python scripts/classroom.py release                  # notebooks/ -> build/classroom/release/vae-lab/
    python scripts/classroom.py grade SUBMISSIONS_DIR    # SUBMISSIONS_DIR/<student id>/*.ipynb

The committed notebooks are the instructor versions (solutions, hidden tests and points in the
nbgrader cell metadata). `release` copies them into an nbgrader course folder (git-ignored,
`build/classroom/` by default), runs `nbgrader generate_assignment` and strips what a student
need not download (outputs, widget state, run metadata).

`grade` never runs a student's notebook top to bottom, and never runs student code in the
grader's Python. For each graded cell it runs the student's answer cell alone in a sandbox
(`scripts/sandbox.py`) and the instructor's check, hidden tests included, here: the check asks
the sandbox for the values it needs. Students are graded side by side (`--jobs`), and only new
or changed submissions are graded again (`--all` regrades everyone). nbgrader then records the
scores (`autograde`, with its `Execute` step replaced by these results), writes the feedback
and exports the gradebook. Outputs: `grades.csv` (nbgrader's export), `grades_by_exercise.csv`
(one row per graded cell), `grading_status.csv` (one row per student and notebook) and `feedback/`.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safe_html  # noqa: E402 - sibling modules, found through the line above
import sandbox  # noqa: E402

ASSIGNMENT = "vae-lab"
KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = KIT / "notebooks"
DEFAULT_COURSE = KIT / "build" / "classroom"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
GRADER_FILES = [
    Path(__file__),
    Path(sandbox.__file__),
    sandbox.WORKER,
    Path(safe_html.__file__),
    KIT / "lab_utils" / "checks.py",
]
# What a spreadsheet reads as the start of a formula (OWASP's list: =, +, -, @, tab, carriage return).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CONFIG = """\
# Written by scripts/classroom.py; rewritten on every run.
import sys

sys.path.insert(0, {scripts!r})
from nbgrader_steps import autograde_preprocessors, feedback_preprocessors  # noqa: E402

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "vae-lab"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
# Student code never runs in nbgrader's own kernel: `nbgrader autograde` records the results of
# `scripts/classroom.py grade`, which runs each answer in a sandbox (and refuses to do anything else).
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.SandboxedResults.results_dir = "{root}/results"
c.GenerateFeedback.preprocessors = feedback_preprocessors(show_hidden_tests={show_hidden!r})
# What students wrote is made inert when it is collected (scripts/safe_html.py); nbconvert's own
# sanitiser cleans the outputs of what Formgrader and the feedback render as well.
c.HTMLExporter.sanitize_html = True
"""


class ClassroomError(Exception):
    """A problem the instructor can fix; the message says how."""


def _check_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise ClassroomError(
            "nbgrader is not installed in this environment: run `pip install -e '.[instructor]'` "
            "(or `make release`, which installs it)."
        ) from None


def _prepare_course(course: Path, show_hidden_tests: bool = False) -> Path:
    course = course.resolve()
    course.mkdir(parents=True, exist_ok=True)
    config = CONFIG.format(
        root=str(course), scripts=str(Path(__file__).resolve().parent), show_hidden=show_hidden_tests
    )
    (course / "nbgrader_config.py").write_text(config)
    return course


def _api(course: Path):
    """nbgrader's Python API on the course, configured by the course's nbgrader_config.py."""
    import warnings

    from nbgrader.apps import NbGraderAPI
    from sqlalchemy.exc import SAWarning

    # nbgrader's own session handling warns on every new submission; nothing for an instructor to do
    warnings.filterwarnings("ignore", category=SAWarning)
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    tools = str(Path(sys.executable).parent)  # nbgrader runs alembic from PATH when it creates the database
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = tools + os.pathsep + os.environ.get("PATH", "")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def _source_notebooks() -> list[Path]:
    notebooks = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if not notebooks:
        raise ClassroomError(f"no lab notebooks found in {NOTEBOOKS}.")
    return notebooks


def _cells(notebook: dict) -> dict[str, dict]:
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: cell
        for cell in notebook["cells"]
        if "grade_id" in cell.get("metadata", {}).get("nbgrader", {})
    }


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _exercises(source: Path) -> dict[str, list[dict]]:
    """Per notebook of the course's source/: its autograded cells, each with the answer cell before it."""
    exercises = {}
    for path in sorted(source.glob("*.ipynb")):
        answer, found = None, []
        for cell in json.loads(path.read_text())["cells"]:
            nbgrader = cell["metadata"].get("nbgrader", {})
            if nbgrader.get("solution") and not nbgrader.get("grade"):
                answer = cell
            elif nbgrader.get("grade") and not nbgrader.get("solution"):
                found.append(
                    {
                        "check_id": nbgrader["grade_id"],
                        "check": _text(cell),
                        "answer_id": answer["metadata"]["nbgrader"]["grade_id"],
                        "model_answer": _text(answer),
                        "points": nbgrader["points"],
                    }
                )
        if found:
            exercises[path.stem] = found
    return exercises


def release(course: Path) -> Path:
    """Copy the instructor notebooks into the course and generate the student release; return its folder."""
    _check_nbgrader()
    course = _prepare_course(course)
    source = course / "source" / ASSIGNMENT
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for notebook in _source_notebooks():
        shutil.copy2(notebook, source / notebook.name)
    result = _api(course).generate_assignment(ASSIGNMENT, force=True)
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
    return released


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


# --- collecting submissions ------------------------------------------------------------------


def _student_folders(submissions: Path) -> dict[str, Path]:
    """{student id: folder holding the notebooks}, for DIR/<id>/*.ipynb and nbgrader's DIR/<id>/vae-lab/."""
    if not submissions.is_dir():
        raise ClassroomError(
            f"{submissions} is not a folder; give the folder that holds one folder per student."
        )
    folders = {}
    for folder in sorted(submissions.iterdir()):
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        if not STUDENT_ID.match(folder.name):
            raise ClassroomError(
                f"{folder.name!r} is not a usable student id (folder {folder}); rename the folder to "
                "letters, digits, '.', '_' or '-'."
            )
        nested = folder / ASSIGNMENT
        folders[folder.name] = nested if nested.is_dir() and not nested.is_symlink() else folder
    if not folders:
        raise ClassroomError(
            f"no student folders in {submissions}: put each student's notebooks in "
            f"{submissions}/<student id>/ "
            f"(or nbgrader's layout, {submissions}/<student id>/{ASSIGNMENT}/)."
        )
    return folders


def _read_regular(path: Path, limit: int = 50 << 20) -> bytes | None:
    """The file's bytes if it is a regular file (never through a symbolic link), else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        if not os.path.isfile(f"/proc/self/fd/{descriptor}") and not Path(path).is_file():
            return None
        return file.read(limit + 1)


def _normalise(notebook, released: dict[str, dict]) -> list[str]:
    """Give each graded cell the release's nbgrader marks, and put back the ones the student deleted.

    A mark on a cell the release does not have (forged, or a copied cell) is dropped; a cell
    whose type the student changed comes back as released. Returns the ids of restored cells.
    """
    import nbformat

    seen = set()
    for position, cell in enumerate(notebook.cells):
        marks = cell.metadata.get("nbgrader")
        grade_id = marks.get("grade_id") if isinstance(marks, dict) else None
        if marks is None:
            continue
        if grade_id not in released or grade_id in seen:
            del cell.metadata["nbgrader"]
            continue
        seen.add(grade_id)
        if cell.cell_type != released[grade_id]["cell_type"]:
            notebook.cells[position] = nbformat.from_dict(released[grade_id])
        else:
            cell.metadata["nbgrader"] = nbformat.from_dict(released[grade_id]["metadata"]["nbgrader"])
    restored, previous = [], None
    for grade_id, cell in released.items():
        if grade_id not in seen:
            restored.append(grade_id)
            after = next(
                (
                    i
                    for i, c in enumerate(notebook.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id") == previous
                ),
                -1,
            )
            notebook.cells.insert(after + 1, nbformat.from_dict(cell))
        previous = grade_id
    return restored


def _collect_student(folder: Path, released: Path, target: Path) -> tuple[dict[str, str], str]:
    """Copy one student's notebooks into the course's submitted/ folder, normalised.

    Returns ({notebook: status}, fingerprint). Graded cells the student deleted come back as
    released; a notebook that is not valid JSON, or a symbolic link, is left out (scored 0).
    What could run in the browser of whoever opens the notebook later is made inert and flagged
    (`safe_html.neutralise`); the student's own files are not changed.
    """
    import nbformat

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    digest = hashlib.sha256()
    handed_in = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".ipynb" or path.name == "timestamp.txt":
            data = None if path.is_symlink() else _read_regular(path)
            handed_in[path.name] = data
            digest.update(path.name.encode() + b"\0" + (data or b"<link>") + b"\0")
    ignored = []
    if handed_in.get("timestamp.txt") and folder.name == ASSIGNMENT:  # written by `nbgrader collect`
        if _is_timestamp(handed_in["timestamp.txt"][:200]):
            (target / "timestamp.txt").write_bytes(handed_in["timestamp.txt"][:200])
        else:  # nbgrader would fail on it, and it would reach grades.csv
            ignored.append("timestamp.txt ignored (not a date)")
    statuses = {}
    for release_path in sorted(released.glob("*.ipynb")):
        release_notebook = json.loads(release_path.read_text())
        name, released_cells = release_path.name, _cells(release_notebook)
        if not any(cell["metadata"]["nbgrader"].get("grade") for cell in released_cells.values()):
            continue  # nothing to grade there (01, 05): not copied, no status, no feedback
        data = handed_in.get(name, b"") if name in handed_in else None
        if name in handed_in and data is None:
            statuses[release_path.stem] = "refused: a symbolic link or not a file (scored 0)"
            continue
        if data is None:
            others = [
                other
                for other, content in handed_in.items()
                if other.endswith(".ipynb")
                and content
                and all(grade_id.encode() in content for grade_id in released_cells)
            ]
            hint = f" (found {', '.join(others)} with its cells: hand it in as {name})" if others else ""
            statuses[release_path.stem] = "missing" + hint
            continue
        try:
            notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(notebook)
        except Exception as error:  # noqa: BLE001 - any unreadable file
            statuses[release_path.stem] = f"invalid notebook ({type(error).__name__}; scored 0)"
            continue
        restored = _normalise(notebook, released_cells)
        markdown = {_text(cell) for cell in release_notebook["cells"] if cell["cell_type"] == "markdown"}
        flagged = safe_html.describe(safe_html.neutralise(notebook, trusted_markdown=markdown))
        notebook.metadata = nbformat.from_dict(release_notebook["metadata"])
        nbformat.write(notebook, target / name)
        notes = [f"graded cell deleted: {', '.join(restored)} restored as released"] if restored else []
        notes += [flagged] if flagged else []
        statuses[release_path.stem] = "; ".join(notes + ignored) or "graded"
    return statuses, digest.hexdigest()


def _is_timestamp(data: bytes) -> bool:
    """Whether nbgrader can read `data` as a submission time."""
    from nbgrader.utils import parse_utc

    try:
        parse_utc(data.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError, OverflowError):
        return False
    return True


# --- grading in sandboxes --------------------------------------------------------------------


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


def _grade_student(job: dict) -> dict:
    """Run every autograded cell of one student's normalised notebooks; return the results."""
    results = {"student": job["student"], "notebooks": {}}
    given = {"history": made_up_history(job["student"])}
    limits = sandbox.Limits(seconds=job["timeout"])
    with tempfile.TemporaryDirectory(prefix=f"grade-{job['student']}-") as scratch:
        for notebook, exercises in job["exercises"].items():
            path = Path(job["submitted"]) / f"{notebook}.ipynb"
            if not path.exists():
                continue
            cells = _cells(json.loads(path.read_text()))
            graded = {}
            for exercise in exercises:
                answer = (
                    _text(cells[exercise["answer_id"]])
                    if exercise["answer_id"] in cells
                    else "raise NotImplementedError()"
                )
                status, outputs = sandbox.run_check(
                    exercise["check"],
                    answer,
                    exercise["model_answer"],
                    {name: value for name, value in given.items() if name in exercise["check"]},
                    Path(scratch) / exercise["check_id"],
                    limits,
                    job["unsafe"],
                )
                # scored as it is, and flagged for the instructor when the answer names the checks
                graded[exercise["check_id"]] = {
                    "status": status,
                    "outputs": outputs,
                    "flagged": _touches_checks(answer),
                }
            results["notebooks"][notebook] = graded
    return results


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started afresh ("spawn"): a forked copy of a process that already runs
    NumPy's or nbgrader's threads can hang on a lock one of them held (seen here once, in about
    a hundred students graded)."""
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"))


def _feedback(job: tuple[str, str]) -> str:
    """Write one student's feedback HTML with nbgrader; return its error text, or "" when it worked.

    Each page gets a Content-Security-Policy: whoever opens it runs no script but MathJax.
    """
    course, student = job
    result = _api(Path(course)).generate_feedback(ASSIGNMENT, student, force=True)
    if not result["success"]:
        return f"{result.get('log', '')}{result.get('error', '')}"
    for page in (Path(course) / "feedback" / student / ASSIGNMENT).glob("*.html"):
        page.write_text(safe_html.with_content_security_policy(page.read_text(encoding="utf-8")), "utf-8")
    return ""


def _grader_fingerprint(course: Path) -> str:
    digest = hashlib.sha256()
    for path in [*GRADER_FILES, *sorted((course / "source" / ASSIGNMENT).glob("*.ipynb"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _touches_checks(source: str) -> bool:
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


def _rollup(status: str, graded: dict) -> str:
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


def grade(
    submissions: Path,
    course: Path,
    jobs: int | None = None,
    regrade_all: bool = False,
    timeout: float = 60.0,
    unsafe: bool = False,
    show_hidden_tests: bool = False,
) -> int:
    """Grade new and changed submissions, then write the gradebook, the tables and the feedback."""
    _check_nbgrader()
    if not unsafe and sandbox.bubblewrap() is None:
        raise ClassroomError(
            "bubblewrap (`bwrap`) is not installed, and student code is only run in its sandbox: install it "
            "(`sudo apt-get install bubblewrap`), or pass --unsafe to run answers in plain subprocesses "
            "(same limits, no isolation: only for code you trust)."
        )
    course = _prepare_course(course, show_hidden_tests)
    released = course / "release" / ASSIGNMENT
    if not released.is_dir():
        raise ClassroomError(
            f"there is no release in {course}: run `python scripts/classroom.py release` first."
        )
    lock = FileLock(course / ".grading.lock")  # two runs on one course would mix their gradebook writes
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"another grading run is working on {course}; waiting for it to finish", flush=True)
        lock.acquire()
    try:
        return _grade(course, released, submissions, jobs, regrade_all, timeout, unsafe)
    finally:
        lock.release()


def _grade(
    course: Path,
    released: Path,
    submissions: Path,
    jobs: int | None,
    regrade_all: bool,
    timeout: float,
    unsafe: bool,
) -> int:
    folders = _student_folders(submissions.resolve())
    exercises = _exercises(course / "source" / ASSIGNMENT)
    state_path, results_dir = course / "grading_state.json", course / "results"
    results_dir.mkdir(exist_ok=True)
    state = json.loads(state_path.read_text()) if state_path.exists() and not regrade_all else {}
    grader = _grader_fingerprint(course)
    statuses, to_grade = {}, []
    for student, folder in folders.items():
        target = course / "submitted" / student / ASSIGNMENT
        statuses[student], fingerprint = _collect_student(folder, released, target)
        fingerprint = hashlib.sha256((grader + fingerprint).encode()).hexdigest()
        if state.get(student) != fingerprint or not (results_dir / f"{student}.json").exists():
            to_grade.append((student, fingerprint))
    print(
        f"{len(folders)} students, {len(to_grade)} new or changed: grading those"
        + (" (--all)" if regrade_all else "")
    )
    jobs = jobs or os.cpu_count() or 1
    work = [
        {
            "student": student,
            "submitted": str(course / "submitted" / student / ASSIGNMENT),
            "exercises": exercises,
            "timeout": timeout,
            "unsafe": unsafe,
        }
        for student, _ in to_grade
    ]
    started = time.monotonic()
    with _pool(min(jobs, len(work))) as pool:
        for result in pool.map(_grade_student, work):
            student = result["student"]
            result["status"] = {
                notebook: _rollup(status, result["notebooks"].get(notebook, {}))
                for notebook, status in statuses[student].items()
            }
            (results_dir / f"{student}.json").write_text(json.dumps(result, indent=1))
            print(f"graded {student}", flush=True)
    sandboxed = time.monotonic() - started
    api, failed = _api(course), []
    for student, _ in to_grade:  # nbgrader writes the gradebook: one student after another
        for folder in ("autograded", "feedback"):
            shutil.rmtree(course / folder / student / ASSIGNMENT, ignore_errors=True)
        outcome = api.autograde(ASSIGNMENT, student, force=True, create=True)
        if not outcome["success"]:  # one student's files must not stop the class: say so, go on
            failed.append(student)
            log = course / "results" / f"{student}.nbgrader.log"
            log.write_text(f"{outcome.get('log', '')}{outcome.get('error', '')}")
            print(
                f"error: nbgrader could not record {student}'s grades; its messages are in {log}",
                file=sys.stderr,
            )
    recorded = time.monotonic() - started - sandboxed
    with _pool(min(jobs, len(work))) as pool:  # feedback only reads the gradebook
        recorded_ok = [(student, fingerprint) for student, fingerprint in to_grade if student not in failed]
        for (student, fingerprint), error in zip(
            recorded_ok, pool.map(_feedback, [(str(course), s) for s, _ in recorded_ok])
        ):
            if error:
                failed.append(student)
                print(f"error: nbgrader could not write {student}'s feedback:\n{error}", file=sys.stderr)
                continue
            state[student] = fingerprint  # saved after each student: an interrupted run resumes there
            state_path.write_text(json.dumps(state, indent=1))
    feedback = time.monotonic() - started - sandboxed - recorded
    _write_tables(course, sorted(folders))
    if to_grade:
        print(
            f"{len(to_grade)} students, {jobs} jobs: sandboxed checks {sandboxed:.1f} s, "
            f"nbgrader autograde {recorded:.1f} s (one at a time), feedback {feedback:.1f} s"
        )
    if failed:
        print(
            f"error: nbgrader failed for {', '.join(failed)}; they are graded again on the next run",
            file=sys.stderr,
        )
        return 1
    return 0


def feedback(course: Path, jobs: int | None = None, show_hidden_tests: bool = False) -> int:
    """After grading by hand in Formgrader: write every graded student's feedback and the tables again."""
    _check_nbgrader()
    course = _prepare_course(course, show_hidden_tests)
    state_path = course / "grading_state.json"
    if not state_path.exists():
        raise ClassroomError(
            f"nothing is graded in {course} yet: run `python scripts/classroom.py grade DIR` first."
        )
    students = sorted(json.loads(state_path.read_text()))
    with FileLock(course / ".grading.lock"):
        with _pool(jobs or os.cpu_count() or 1) as pool:
            errors = dict(
                zip(students, pool.map(_feedback, [(str(course), student) for student in students]))
            )
        for student, error in errors.items():
            if error:
                print(f"error: nbgrader could not write {student}'s feedback:\n{error}", file=sys.stderr)
        _write_tables(course, students)
    print(f"feedback written again for {len(students)} students")
    return 1 if any(errors.values()) else 0


def _write_tables(course: Path, students: list[str]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    graded_by = {}
    for path in (course / "source" / ASSIGNMENT).glob("*.ipynb"):
        for grade_id, cell in _cells(json.loads(path.read_text())).items():
            if cell["metadata"]["nbgrader"].get("grade"):
                graded_by[(path.stem, grade_id)] = (
                    "instructor" if cell["metadata"]["nbgrader"]["solution"] else "autograder"
                )
    rows, status_rows = [], []
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        for student in students:
            result = json.loads((course / "results" / f"{student}.json").read_text())
            for notebook, status in result["status"].items():
                status_rows.append({"student_id": student, "notebook": notebook, "status": status})
            try:
                submission = gradebook.find_submission(ASSIGNMENT, student)
            except MissingEntry:
                continue
            for notebook in sorted(submission.notebooks, key=lambda notebook: notebook.name):
                for grade in sorted(notebook.grades, key=lambda grade: grade.name):
                    outcome = result["notebooks"].get(notebook.name, {}).get(grade.name, {})
                    rows.append(
                        {
                            "student_id": student,
                            "notebook": notebook.name,
                            "exercise": grade.name,
                            "graded_by": graded_by[(notebook.name, grade.name)],
                            "outcome": outcome.get("status", ""),
                            "auto_score": grade.auto_score,
                            "manual_score": grade.manual_score,
                            "score": grade.score,
                            "max_score": grade.max_score,
                            "needs_manual_grade": grade.needs_manual_grade,
                        }
                    )
    for name, table in (("grades_by_exercise.csv", rows), ("grading_status.csv", status_rows)):
        _write_csv(course / name, list(table[0]), [list(row.values()) for row in table])
    export = [sys.executable, "-m", "nbgrader", "export", "--to", str(course / "grades.csv")]
    if subprocess.run(export, cwd=course, capture_output=True, text=True).returncode != 0:
        raise ClassroomError(f"`nbgrader export` failed; run `{' '.join(export)}` in {course} to see why.")
    with (course / "grades.csv").open(newline="") as file:
        header, *exported = list(csv.reader(file))
    _write_csv(course / "grades.csv", header, exported)
    notebooks = sorted({row["notebook"] for row in status_rows})
    print(f"\n{'student':20} {'autograded':>10} {'by hand':>9}  notebooks not simply graded")
    for student in students:
        mine = [row for row in rows if row["student_id"] == student]
        auto = [row for row in mine if row["graded_by"] == "autograder"]
        manual = [row for row in mine if row["graded_by"] == "instructor"]
        score = f"{sum(row['auto_score'] or 0 for row in auto):g}/{sum(row['max_score'] for row in auto):g}"
        pending = sum(row["max_score"] for row in manual if row["manual_score"] is None)
        status = {row["notebook"]: row["status"] for row in status_rows if row["student_id"] == student}
        flags = [
            f"{notebook}: {status[notebook]}" for notebook in notebooks if status.get(notebook) != "graded"
        ]
        print(f"{student:20} {score:>10} {pending:>6g} pt  " + ("; ".join(flags) if flags else "all graded"))
    print(
        "\ngradebook: "
        + ", ".join(
            str(course / name) for name in ("grades.csv", "grades_by_exercise.csv", "grading_status.csv")
        )
    )
    print(f"feedback:  {course / 'feedback'}/<student>/{ASSIGNMENT}/*.html")


def spreadsheet_safe(value):
    """`value` as a spreadsheet shows it as data: text that would start a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([[spreadsheet_safe(value) for value in row] for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--course", type=Path, default=DEFAULT_COURSE, help="nbgrader course folder (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="generate the student release from notebooks/")
    again = commands.add_parser(
        "feedback", help="after grading by hand in Formgrader: write the feedback and the gradebook again"
    )
    again.add_argument("--jobs", type=int, default=None, help="students side by side (default: all cores)")
    again.add_argument(
        "--show-hidden-tests", action="store_true", help="keep the hidden tests in the feedback"
    )
    grading = commands.add_parser("grade", help="autograde SUBMISSIONS/<student id>/*.ipynb")
    grading.add_argument(
        "submissions",
        type=Path,
        help=f"folder with one folder per student (or nbgrader's <student>/{ASSIGNMENT}/)",
    )
    grading.add_argument(
        "--jobs", type=int, default=None, help="students graded side by side (default: all cores)"
    )
    grading.add_argument(
        "--all", action="store_true", help="grade every submission again, not only new or changed ones"
    )
    grading.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one answer (its cell and all the check's calls) may take",
    )
    grading.add_argument(
        "--unsafe",
        action="store_true",
        help="without bubblewrap: run answers in plain subprocesses (no isolation)",
    )
    grading.add_argument(
        "--show-hidden-tests", action="store_true", help="keep the hidden tests in the feedback"
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "feedback":
            return feedback(arguments.course, arguments.jobs, arguments.show_hidden_tests)
        if arguments.command == "release":
            release(arguments.course)
            return 0
        return grade(
            arguments.submissions,
            arguments.course,
            arguments.jobs,
            arguments.all,
            arguments.timeout,
            arguments.unsafe,
            arguments.show_hidden_tests,
        )
    except ClassroomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
