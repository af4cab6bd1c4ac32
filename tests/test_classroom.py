"""The instructor workflow with the real nbgrader: release, then grade a class of fake students.

The class holds the honest cases (the instructor's solution, the untouched release, answers
written with Keras ops, a deleted graded cell, a truncated notebook, a renamed notebook,
nbgrader's collect layout) and the attacks (a cheater who patches the checks, a hostile cell
that goes after the course, other students and the gradebook, an endless loop, a 100 MB print,
a fork loop, a symbolic link to another student's notebook). Each gets the score and status
asserted below; then a late submission is graded alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.classroom_class import AUTOGRADED_POINTS, make_class

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
MANUAL_POINTS = 2  # the written observation in notebook 02

pytest.importorskip("nbgrader", reason="nbgrader is the [instructor] extra: pip install -e '.[instructor]'")
if shutil.which("bwrap") is None:
    reason = "bubblewrap is not installed: apt-get install bubblewrap"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def classroom(*arguments: str, course: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vae_lab.cli", *arguments, "--course", str(course)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )


def nbgrader_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if "nbgrader" in cell["metadata"]]


def by_id(path: Path, grade_id: str) -> dict:
    return next(cell for cell in nbgrader_cells(path) if cell["metadata"]["nbgrader"]["grade_id"] == grade_id)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*.ipynb")
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("classroom")
    result = classroom("release", course=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_the_students_check_reads_this_release(course, tmp_path):
    """vae_lab/released.json is what `make release` writes from the notebooks: no solution, no hidden test."""
    from vae_lab.handin import REFERENCE, write_reference

    assert write_reference(course, tmp_path / "released.json")
    assert (tmp_path / "released.json").read_text() == REFERENCE.read_text(), (
        "vae_lab/released.json is out of date with the notebooks: run `make release` and commit it"
    )
    text = REFERENCE.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "seed=2024" not in text
    assert "np.exp(0.5 * z_log_var) * epsilon" not in text  # the model answer of exercise 1


def test_instructor_notebooks_carry_the_exercises_points_and_hidden_tests():
    cells = [
        cell["metadata"]["nbgrader"] | {"source": "".join(cell["source"])}
        for path in NOTEBOOKS
        for cell in nbgrader_cells(path)
    ]
    autograded = [cell for cell in cells if cell["grade"] and not cell["solution"]]
    manual = [cell for cell in cells if cell["grade"] and cell["solution"]]
    assert sum(cell["points"] for cell in autograded) == AUTOGRADED_POINTS
    assert sum(cell["points"] for cell in manual) == MANUAL_POINTS
    assert all(cell["locked"] for cell in autograded)
    assert all("checks.check_" in cell["source"] for cell in autograded)
    assert sum("### BEGIN HIDDEN TESTS" in cell["source"] for cell in autograded) == 4
    solutions = [cell for cell in cells if cell["solution"] and not cell["grade"]]
    assert len(solutions) == 5 and all("### BEGIN SOLUTION" in cell["source"] for cell in solutions)


def test_the_course_folder_is_closed_to_other_users(tmp_path, capsys):
    # it holds the solutions, the hidden tests and the gradebook; on a hub, students share the machine
    from vae_lab.course import prepare_course

    assert prepare_course(tmp_path / "new").stat().st_mode & 0o077 == 0
    opened = tmp_path / "opened"
    opened.mkdir()
    opened.chmod(0o755)
    assert prepare_course(opened).stat().st_mode & 0o777 == 0o750  # its group (a teaching team) keeps access
    assert "other users could read" in capsys.readouterr().out


def test_release_strips_solutions_hidden_tests_and_outputs(course):
    released = course / "release" / "vae-lab"
    assert sorted(path.name for path in released.glob("*.ipynb")) == [path.name for path in NOTEBOOKS]
    for path in released.glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        notebook = json.loads(text)
        assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}  # no widget state
        assert not [cell for cell in notebook["cells"] if cell.get("outputs") or cell.get("execution_count")]
        assert not [
            cell for cell in notebook["cells"] if set(cell["metadata"]) - {"nbgrader", "jupyter", "tags"}
        ]
        # What is left is the cells' text: no images or attachments hidden anywhere else.
        text_size = sum(len("".join(cell["source"]).encode()) for cell in notebook["cells"])
        assert path.stat().st_size < 2 * text_size + 10_000, f"{path.name}: {path.stat().st_size} bytes"
    reparameterise = "".join(by_id(released / "02_vae_lab.ipynb", "reparameterise")["source"])
    assert "raise NotImplementedError()" in reparameterise and "np.exp" not in reparameterise
    assert "".join(by_id(released / "02_vae_lab.ipynb", "answer_kl_share")["source"]) == "YOUR ANSWER HERE"
    check = "".join(by_id(released / "02_vae_lab.ipynb", "check_reparameterise")["source"])
    assert check.strip().endswith("checks.check_reparameterise(reparameterise)")


def test_grade_explains_bad_input(course, tmp_path):
    missing = classroom("grade", str(tmp_path / "nowhere"), course=course)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    assert "no student folders" in classroom("grade", str(tmp_path), course=course).stderr
    (tmp_path / "ada lovelace").mkdir()
    assert "not a usable student id" in classroom("grade", str(tmp_path), course=course).stderr
    (tmp_path / "ada lovelace").rename(tmp_path / "ada")
    no_bubblewrap = dict(os.environ, PATH="/nonexistent")
    refused = classroom("grade", str(tmp_path), course=course, env=no_bubblewrap)
    assert refused.returncode == 2 and "bubblewrap" in refused.stderr and "--unsafe" in refused.stderr
    # bubblewrap installed but refused (no user namespaces, or a container): said before anything is touched
    refusing = tmp_path / "refusing-bwrap"
    refusing.mkdir()
    (refusing / "bwrap").write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    (refusing / "bwrap").chmod(0o755)
    untouched = tmp_path / "untouched-course"
    shutil.copytree(course, untouched, ignore=shutil.ignore_patterns("*.db", "submitted", "autograded"))
    before = sorted(str(path.relative_to(untouched)) for path in untouched.rglob("*"))
    path = f"{refusing}:{os.environ['PATH']}"
    refused = classroom("grade", str(tmp_path), course=untouched, env=dict(os.environ, PATH=path))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "does not start on this machine" in refused.stderr
    assert "No permissions to create new namespace" in refused.stderr  # bubblewrap's own words
    assert sorted(str(path.relative_to(untouched)) for path in untouched.rglob("*")) == before
    unreleased = classroom("grade", str(tmp_path), course=tmp_path / "empty-course")
    assert unreleased.returncode == 2 and "run `vae-lab release` first" in unreleased.stderr


def test_grading_the_courses_own_submitted_folder_is_refused_and_loses_nothing(course, tmp_path):
    # `nbgrader collect` puts submissions there, and grading rewrites that folder with its own copies
    own = tmp_path / "own-course"
    shutil.copytree(course, own, ignore=shutil.ignore_patterns("*.db"))
    handed_in = own / "submitted" / "ada" / "vae-lab"
    shutil.copytree(own / "release" / "vae-lab", handed_in, dirs_exist_ok=True)
    (handed_in / "timestamp.txt").write_text("2026-12-06 10:00:00.000000 UTC")
    before = digest(own / "submitted")
    refused = classroom("grade", str(own / "submitted"), course=own)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the course's own submitted/ folder" in refused.stderr and "--exchange" in refused.stderr
    assert digest(own / "submitted") == before


def _scores(course: Path) -> dict[str, float]:
    scores = {}
    for row in csv.DictReader((course / "grades_by_exercise.csv").open()):
        if row["graded_by"] == "autograder":
            scores[row["student_id"]] = scores.get(row["student_id"], 0) + float(row["auto_score"] or 0)
    return scores


def test_a_class_with_cheats_and_faults_gets_the_right_scores_and_statuses(course, tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    expected = make_class(course / "source" / "vae-lab", course / "release" / "vae-lab", submissions, course)
    before = digest(submissions)
    result = classroom("grade", str(submissions), "--timeout", "30", "--jobs", "2", course=course)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert digest(submissions) == before, "a submitted notebook was modified"
    assert not (course / "planted.txt").exists() and (course / "submitted" / "solution").is_dir()

    scores = _scores(course)
    assert {student: scores.get(student, 0) for student in expected} == {
        student: score for student, (score, _) in expected.items()
    }
    statuses = {}
    for row in csv.DictReader((course / "grading_status.csv").open()):
        if row["notebook"] in ("02_vae_lab", "03_generate_and_explore", "04_compare"):
            statuses.setdefault(row["student_id"], {})[row["notebook"]] = row["status"]
    assert statuses == {student: status for student, (_, status) in expected.items()}
    outcomes = {
        (row["student_id"], row["exercise"]): row["outcome"]
        for row in csv.DictReader((course / "grades_by_exercise.csv").open())
    }
    assert outcomes["printer", "check_reconstruction_loss"] == "failed"
    assert outcomes["forker", "check_kl_per_image"] == "failed"
    gradebook = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    assert float(gradebook["hostile"]["score"]) == AUTOGRADED_POINTS  # its sqlite3 update reached nothing
    assert float(gradebook["solution"]["max_score"]) == AUTOGRADED_POINTS + MANUAL_POINTS
    assert float(gradebook["forger"]["max_score"]) == AUTOGRADED_POINTS + MANUAL_POINTS
    assert "hostile" in result.stdout and "cheater" in result.stdout

    feedback = course / "feedback" / "solution" / "vae-lab"
    assert sorted(path.stem for path in feedback.glob("*.html")) == [
        "02_vae_lab",
        "03_generate_and_explore",
        "04_compare",
    ]
    page = (feedback / "02_vae_lab.html").read_text()
    assert "HIDDEN TESTS" not in page and "seed=2024" not in page
    assert "To be graded by your instructor" in page
    assert (
        "NotImplementedError"
        in (course / "feedback" / "untouched" / "vae-lab" / "02_vae_lab.html").read_text()
    )

    # The instructor grades the written answer (as Formgrader would), then writes the feedback again.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        grade = gradebook.find_grade("answer_kl_share", "02_vae_lab", "vae-lab", "solution")
        grade.manual_score = 2
        gradebook.db.commit()
    rewritten = classroom("feedback", course=course)
    assert rewritten.returncode == 0, rewritten.stdout[-3000:] + rewritten.stderr[-3000:]
    assert "To be graded by your instructor" not in (feedback / "02_vae_lab.html").read_text()
    assert (
        "To be graded by your instructor"
        in (course / "feedback" / "keras_ops" / "vae-lab" / "02_vae_lab.html").read_text()
    )
    totals = {
        row["student_id"]: float(row["score"]) for row in csv.DictReader((course / "grades.csv").open())
    }
    assert totals["solution"] == AUTOGRADED_POINTS + MANUAL_POINTS

    # A late submission: only that student is graded; everyone else's results stay as they were.
    results = {path.name: path.stat().st_mtime_ns for path in (course / "results").glob("*.json")}
    shutil.copytree(course / "source" / "vae-lab", submissions / "late")
    again = classroom("grade", str(submissions), "--timeout", "30", course=course)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"{len(expected) + 1} students, 1 new or changed" in again.stdout
    assert {
        name: stamp
        for name, stamp in (
            (path.name, path.stat().st_mtime_ns) for path in (course / "results").glob("*.json")
        )
        if name != "late.json"
    } == results
    assert _scores(course)["late"] == AUTOGRADED_POINTS

    # Each student's own check (`vae-lab check`, sandboxed here as in the grader) agrees with the grader.
    from vae_lab.handin import check_folder
    from vae_lab.intake import student_folders

    graded = {}
    for row in csv.DictReader((course / "grades_by_exercise.csv").open()):
        if row["graded_by"] == "autograder":
            graded.setdefault(row["student_id"], {})[row["exercise"]] = row["outcome"]
    statuses = {}
    for row in csv.DictReader((course / "grading_status.csv").open()):
        statuses.setdefault(row["student_id"], {})[row["notebook"]] = row["status"]
    for student, folder in student_folders(submissions).items():
        checked = check_folder(folder, student, out=tmp_path / "handed-in" / f"{student}.zip")
        assert {
            check: outcome for result in checked.values() for check, outcome in result["exercises"].items()
        } == {check: outcome for check, outcome in graded[student].items() if outcome}, student
        assert {notebook: result["status"] for notebook, result in checked.items()} == {
            notebook: status for notebook, status in statuses[student].items() if notebook in checked
        }, student
