"""`vae-lab grade`: grade new and changed submissions, then record the scores, the feedback and the tables.

No student's notebook is run top to bottom, and no student code runs in the grader's Python.
Each student's notebooks are collected (`intake`); worker processes, side by side (`--jobs`),
run each answer cell alone in a sandbox and the instructor's check, hidden tests included, in
the worker (`workers`). nbgrader then records the scores one student at a time (`autograde`,
with its `Execute` step replaced by those results: `nbgrader_steps`), writes the feedback
(`feedback`) and exports the gradebook (`tables`). Only new or changed submissions are graded
again (`--all` regrades everyone); a change to the grader itself counts as a change for everyone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from vae_lab import KIT, sandbox
from vae_lab.course import (
    ASSIGNMENT,
    LOCK,
    ClassroomError,
    cell_source,
    exchange_step,
    nbgrader_api,
    prepare_course,
    require_nbgrader,
)
from vae_lab.feedback import write_feedback
from vae_lab.intake import collect_student, student_folders
from vae_lab.locks import held_lock
from vae_lab.tables import write_tables
from vae_lab.workers import grade_student, notebook_status, worker_pool

PACKAGE = Path(__file__).resolve().parent
COLLECTED = "collected"  # in the course folder: what `--exchange` collects, graded from there
# The code that decides a student's results: when one of these files changes, everyone is graded again.
GRADER_MODULES = "course intake grading workers feedback nbgrader_steps sandbox answer_worker safe_html"
GRADER_FILES = [*(PACKAGE / f"{name}.py" for name in GRADER_MODULES.split()), KIT / "lab_utils" / "checks.py"]


def grade(
    submissions: Path | None,
    course: Path,
    jobs: int | None = None,
    regrade_all: bool = False,
    timeout: float = 60.0,
    unsafe: bool = False,
    show_hidden_tests: bool = False,
    exchange: bool = False,
) -> int:
    """Grade new and changed submissions, then write the gradebook, the tables and the feedback.

    With `exchange` (a hub), the submissions are first collected from nbgrader's exchange into the
    course's collected/ folder, and the feedback is released to the exchange after grading.
    """
    require_nbgrader()
    own = (course.resolve() / "submitted").resolve()
    if submissions is not None and own in (submissions.resolve(), *submissions.resolve().parents):
        raise ClassroomError(
            f"{submissions} is the course's own submitted/ folder, which grading rewrites with its own "
            "copies: give the folder the students' notebooks were collected into, or on a hub run "
            "`vae-lab grade --exchange`, which collects them into the course's collected/ folder."
        )
    if not unsafe and sandbox.bubblewrap() is None:
        raise ClassroomError(
            "bubblewrap (`bwrap`) is not installed, and student code is only run in its sandbox: install it "
            "(`sudo apt-get install bubblewrap`), or pass --unsafe to run answers in plain subprocesses "
            "(same limits, no isolation: only for code you trust)."
        )
    problem = None if unsafe else sandbox.cannot_start()
    if problem:  # said before any submission is touched
        raise ClassroomError(
            "student code only runs in the grader's sandbox, and it does not start on this machine: "
            f"{problem}. Grade on a machine where it does (a VM with bubblewrap and user namespaces: "
            "there `bwrap --unshare-user --unshare-pid --dev /dev --proc /proc true` succeeds), or pass "
            "--unsafe to run answers in plain subprocesses (same limits, no isolation: only for code "
            "you trust)."
        )
    course = prepare_course(course, show_hidden_tests)
    released = course / "release" / ASSIGNMENT
    if not released.is_dir():
        raise ClassroomError(f"there is no release in {course}: run `vae-lab release` first.")
    with held_lock(course / LOCK, f"another grading run is working on {course}; waiting for it to finish"):
        if exchange:
            exchange_step(course, "collect", submitted_directory=COLLECTED)
            submissions = course / COLLECTED
            if not submissions.is_dir():
                raise ClassroomError("no student has submitted the lab through the exchange yet.")
        code = _grade(course, released, submissions, jobs, regrade_all, timeout, unsafe)
        if exchange:
            exchange_step(course, "release_feedback")
            print("released the feedback: students fetch it from their assignment list (Fetch Feedback)")
        return code


def _grade(
    course: Path,
    released: Path,
    submissions: Path,
    jobs: int | None,
    regrade_all: bool,
    timeout: float,
    unsafe: bool,
) -> int:
    folders = student_folders(submissions.resolve())
    exercises = exercises_of(course / "source" / ASSIGNMENT)
    state_path, results_dir = course / "grading_state.json", course / "results"
    results_dir.mkdir(exist_ok=True)
    state = json.loads(state_path.read_text()) if state_path.exists() and not regrade_all else {}
    grader = _grader_fingerprint(course)
    statuses, to_grade = {}, []
    for student, folder in folders.items():
        target = course / "submitted" / student / ASSIGNMENT
        statuses[student], fingerprint = collect_student(folder, released, target)
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
    with worker_pool(min(jobs, len(work))) as pool:
        for result in pool.map(grade_student, work):
            student = result["student"]
            result["status"] = {
                notebook: notebook_status(status, result["notebooks"].get(notebook, {}))
                for notebook, status in statuses[student].items()
            }
            (results_dir / f"{student}.json").write_text(json.dumps(result, indent=1))
            print(f"graded {student}", flush=True)
    sandboxed = time.monotonic() - started
    api, failed = nbgrader_api(course), []
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
    with worker_pool(min(jobs, len(work))) as pool:  # feedback only reads the gradebook
        recorded_ok = [(student, fingerprint) for student, fingerprint in to_grade if student not in failed]
        for (student, fingerprint), error in zip(
            recorded_ok, pool.map(write_feedback, [(str(course), s) for s, _ in recorded_ok])
        ):
            if error:
                failed.append(student)
                print(f"error: nbgrader could not write {student}'s feedback:\n{error}", file=sys.stderr)
                continue
            state[student] = fingerprint  # saved after each student: an interrupted run resumes there
            state_path.write_text(json.dumps(state, indent=1))
    feedback = time.monotonic() - started - sandboxed - recorded
    write_tables(course, sorted(folders))
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


def exercises_of(source: Path) -> dict[str, list[dict]]:
    """Per notebook of the course's source/: its autograded cells, each with the names its answer defines."""
    exercises = {}
    for path in sorted(source.glob("*.ipynb")):
        answer, found = None, []
        for cell in json.loads(path.read_text())["cells"]:
            nbgrader = cell["metadata"].get("nbgrader", {})
            if nbgrader.get("solution") and not nbgrader.get("grade"):
                answer = cell
            elif nbgrader.get("grade") and not nbgrader.get("solution"):
                functions, values = sandbox.defined_names(cell_source(answer))
                found.append(
                    {
                        "check_id": nbgrader["grade_id"],
                        "check": cell_source(cell),
                        "answer_id": answer["metadata"]["nbgrader"]["grade_id"],
                        "functions": functions,  # what the check may ask the answer cell for
                        "values": values,
                        "points": nbgrader["points"],
                    }
                )
        if found:
            exercises[path.stem] = found
    return exercises


def _grader_fingerprint(course: Path) -> str:
    digest = hashlib.sha256()
    for path in [*GRADER_FILES, *sorted((course / "source" / ASSIGNMENT).glob("*.ipynb"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()
