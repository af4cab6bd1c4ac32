"""The instructor workflow with the real nbgrader: release, then grade fake submissions end to end.

The round trip executes the kit's own notebooks in fast mode for four fake students: the
instructor solution, the untouched release, a submission whose answer cell crashes, and one
whose answer cell never finishes (interrupted at the cell timeout).
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

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "classroom.py"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
AUTOGRADED_POINTS = 9  # five self-check cells: 2 + 2 + 1 + 2 + 2
MANUAL_POINTS = 2  # the written observation in notebook 02

pytest.importorskip("nbgrader", reason="nbgrader is the [instructor] extra: pip install -e '.[instructor]'")


def classroom(*arguments: str, course: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--course", str(course), *arguments],
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


def test_release_strips_solutions_hidden_tests_and_outputs(course):
    released = course / "release" / "vae-lab"
    assert sorted(path.name for path in released.glob("*.ipynb")) == [path.name for path in NOTEBOOKS]
    for path in released.glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        cells = json.loads(text)["cells"]
        assert not [cell for cell in cells if cell.get("outputs")]
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
    (tmp_path / "ada" / "essay.ipynb").write_text("{}")
    assert "holds none of the lab's notebooks" in classroom("grade", str(tmp_path), course=course).stderr
    unreleased = classroom("grade", str(tmp_path), course=tmp_path / "empty-course")
    assert (
        unreleased.returncode == 2 and "run `python scripts/classroom.py release` first" in unreleased.stderr
    )


def _submissions(course: Path, folder: Path) -> Path:
    """Four students: the solution, the untouched release, a crashing answer, an endless answer."""
    source, released = course / "source" / "vae-lab", course / "release" / "vae-lab"
    shutil.copytree(source, folder / "solution")
    shutil.copytree(released, folder / "untouched")
    for student, notebook, grade_id, answer in [
        ("crash", "02_vae_lab.ipynb", "reparameterise", "z = undefined_name + 1\n"),
        ("loop", "03_generate_and_explore.ipynb", "sample_prior", "while True:\n    pass\n"),
    ]:
        shutil.copytree(source, folder / student)
        path = folder / student / notebook
        content = json.loads(path.read_text())
        next(
            cell
            for cell in content["cells"]
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
        )["source"] = answer
        path.write_text(json.dumps(content))
    return folder


@pytest.mark.mnist
def test_round_trip_grades_each_submission_and_touches_none(course, tmp_path, real_mnist_dir):
    submissions = _submissions(course, tmp_path / "submissions")
    before = digest(submissions)
    env = dict(os.environ, MNIST_DIR=str(real_mnist_dir))
    result = classroom("grade", str(submissions), "--timeout", "60", course=course, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert digest(submissions) == before, "a submitted notebook was modified"
    for student in ("solution", "untouched", "crash", "loop"):
        assert digest(course / "submitted" / student / "vae-lab") == digest(submissions / student)

    rows = list(csv.DictReader((course / "grades_by_exercise.csv").open()))
    auto = {}
    for row in rows:
        if row["graded_by"] == "autograder":
            auto.setdefault(row["student_id"], {})[row["exercise"]] = float(row["auto_score"] or 0)
    assert sum(auto["solution"].values()) == AUTOGRADED_POINTS
    assert sum(auto["untouched"].values()) == 0
    assert auto["crash"]["check_reparameterise"] == 0
    assert sum(auto["crash"].values()) == AUTOGRADED_POINTS - 2
    assert auto["loop"]["check_sample_prior"] == 0
    assert sum(auto["loop"].values()) == AUTOGRADED_POINTS - 2
    manual = [row for row in rows if row["needs_manual_grade"] == "True"]
    assert {row["student_id"] for row in manual} == {
        "solution",
        "crash",
        "loop",
    }  # untouched answered nothing

    gradebook = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    assert set(gradebook) == {"solution", "untouched", "crash", "loop"}
    assert float(gradebook["solution"]["score"]) == AUTOGRADED_POINTS
    assert float(gradebook["untouched"]["score"]) == 0
    assert float(gradebook["solution"]["max_score"]) == AUTOGRADED_POINTS + MANUAL_POINTS

    graded_notebooks = ["02_vae_lab", "03_generate_and_explore", "04_compare"]  # 01 and 05 have none
    for student in gradebook:
        feedback = sorted((course / "feedback" / student / "vae-lab").glob("*.html"))
        assert [path.stem for path in feedback] == graded_notebooks
    timed_out = (course / "feedback" / "loop" / "vae-lab" / "03_generate_and_explore.html").read_text()
    assert "CellTimeoutError" in timed_out or "KeyboardInterrupt" in timed_out
    assert (
        "NotImplementedError"
        in (course / "feedback" / "untouched" / "vae-lab" / "02_vae_lab.html").read_text()
    )
