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

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
AUTOGRADED_POINTS = 9  # five self-check cells: 2 + 2 + 1 + 2 + 2
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
    unreleased = classroom("grade", str(tmp_path), course=tmp_path / "empty-course")
    assert unreleased.returncode == 2 and "run `vae-lab release` first" in unreleased.stderr


def _edit(path: Path, grade_id: str, source: str | None) -> None:
    """Replace the source of the cell `grade_id` in the notebook at `path` (None deletes the cell)."""
    content = json.loads(path.read_text())
    index = next(
        i
        for i, cell in enumerate(content["cells"])
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    if source is None:
        del content["cells"][index]
    else:
        content["cells"][index]["source"] = source
    path.write_text(json.dumps(content))


KERAS_ANSWERS = {
    (
        "02_vae_lab",
        "reparameterise",
    ): "import tensorflow as tf\n\ndef reparameterise(z_mean, z_log_var, epsilon):\n"
    "    return (z_mean + tf.exp(0.5 * z_log_var) * epsilon).numpy()\n",
    ("02_vae_lab", "kl_per_image"): "from keras import ops\n\ndef kl_per_image(z_mean, z_log_var):\n"
    "    terms = 1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)\n"
    "    return ops.convert_to_numpy(-0.5 * ops.sum(terms, axis=1))\n",
    ("03_generate_and_explore", "sample_prior"): "def sample_prior(count, latent_dim, seed):\n"
    "    return np.random.default_rng(seed).normal(size=(count, latent_dim))\n",
}
HOSTILE = """\
import glob, os, shutil, sqlite3
for attack in [
    lambda: print(os.listdir({submissions!r})),
    lambda: print(open(glob.glob({course!r} + '/source/*/02*.ipynb')[0]).read()),
    lambda: open({course!r} + '/planted.txt', 'w').write('x'),
    lambda: os.remove({victim!r}),
    lambda: shutil.rmtree({course!r} + '/submitted/solution'),
    lambda: sqlite3.connect({course!r} + '/gradebook.db').execute('update grade set auto_score = 99'),
]:
    try:
        attack()
    except Exception:
        pass

def reparameterise(z_mean, z_log_var, epsilon):
    return z_mean + np.exp(0.5 * z_log_var) * epsilon
"""
CHEAT_FIRST = (
    "from lab_utils import checks\nfor name in dir(checks):\n    if name.startswith('check_'):\n"
    "        setattr(checks, name, lambda *args, **kwargs: print('✓ right'))\n"
)


def _class(course: Path, folder: Path) -> dict[str, tuple[float, dict[str, str]]]:
    """Writes the class into `folder`; returns {student: (expected autograded score, expected statuses)}."""
    source, released = course / "source" / "vae-lab", course / "release" / "vae-lab"
    graded = {"02_vae_lab": "graded", "03_generate_and_explore": "graded", "04_compare": "graded"}
    expected = {}

    def student(name, score, base=source, **statuses):
        shutil.copytree(base, folder / name)
        expected[name] = (score, graded | statuses)
        return folder / name

    student("solution", AUTOGRADED_POINTS)
    student("untouched", 0, released)
    keras_user = student("keras_ops", AUTOGRADED_POINTS)
    for (notebook, grade_id), answer in KERAS_ANSWERS.items():
        _edit(keras_user / f"{notebook}.ipynb", grade_id, answer)
    deleter = student(
        "deleted_check",
        AUTOGRADED_POINTS,
        **{"02_vae_lab": "graded cell deleted: check_kl_per_image restored as released"},
    )
    _edit(deleter / "02_vae_lab.ipynb", "check_kl_per_image", None)
    truncated = student(
        "truncated", AUTOGRADED_POINTS - 5, **{"02_vae_lab": "invalid notebook (NotJSONError; scored 0)"}
    )
    (truncated / "02_vae_lab.ipynb").write_bytes((truncated / "02_vae_lab.ipynb").read_bytes()[:5000])
    renamed = student(
        "renamed",
        AUTOGRADED_POINTS - 5,
        **{
            "02_vae_lab": "missing (found 02_vae_lab (1).ipynb with its cells: "
            "hand it in as 02_vae_lab.ipynb)"
        },
    )
    (renamed / "02_vae_lab.ipynb").rename(renamed / "02_vae_lab (1).ipynb")
    student("nbgrader_layout", AUTOGRADED_POINTS)  # as `nbgrader collect` leaves it: <student>/vae-lab/
    shutil.move(folder / "nbgrader_layout", folder / "collected")
    (folder / "nbgrader_layout").mkdir()
    shutil.move(folder / "collected", folder / "nbgrader_layout" / "vae-lab")
    hostile = student("hostile", AUTOGRADED_POINTS)
    attack = HOSTILE.format(
        submissions=str(folder), course=str(course), victim=str(folder / "solution" / "04_compare.ipynb")
    )
    _edit(hostile / "02_vae_lab.ipynb", "reparameterise", attack)
    cheater = student(
        "cheater",
        0,
        released,
        **{
            nb: "flagged (answer uses the grader's checks) in " + ids
            for nb, ids in [
                ("02_vae_lab", "check_reparameterise, check_kl_per_image, check_kl_share"),
                ("03_generate_and_explore", "check_sample_prior"),
                ("04_compare", "check_reconstruction_loss"),
            ]
        },
    )
    for notebook, grade_id, name in [
        ("02_vae_lab", "reparameterise", "reparameterise"),
        ("02_vae_lab", "kl_per_image", "kl_per_image"),
        ("03_generate_and_explore", "sample_prior", "sample_prior"),
        ("04_compare", "reconstruction_loss_per_image", "reconstruction_loss_per_image"),
    ]:
        first = CHEAT_FIRST if grade_id == "reparameterise" else "checks.check_reparameterise = print\n"
        _edit(cheater / f"{notebook}.ipynb", grade_id, first + f"def {name}(*args):\n    return None\n")
    _edit(cheater / "02_vae_lab.ipynb", "kl_share", "checks.check_kl_share = print\nkl_share = None\n")
    forger = student("forger", AUTOGRADED_POINTS)  # its forged marks are dropped: 9 of 9, not more
    content = json.loads((forger / "02_vae_lab.ipynb").read_text())
    for cell in content["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "check_reparameterise":
            cell["metadata"]["nbgrader"]["points"] = 100
    bonus = {
        "grade": True,
        "grade_id": "bonus",
        "locked": True,
        "points": 50,
        "solution": False,
        "schema_version": 3,
    }
    content["cells"].append(
        {
            "cell_type": "code",
            "metadata": {"nbgrader": bonus},
            "source": "pass",
            "outputs": [],
            "execution_count": None,
        }
    )
    (forger / "02_vae_lab.ipynb").write_text(json.dumps(content))
    looper = student(
        "endless", AUTOGRADED_POINTS - 2, **{"03_generate_and_explore": "timeout in check_sample_prior"}
    )
    _edit(looper / "03_generate_and_explore.ipynb", "sample_prior", "while True:\n    pass\n")
    printer = student("printer", AUTOGRADED_POINTS - 2)
    _edit(printer / "04_compare.ipynb", "reconstruction_loss_per_image", "print('x' * (100 << 20))\n")
    forker = student("forker", AUTOGRADED_POINTS - 2)
    _edit(forker / "02_vae_lab.ipynb", "kl_per_image", "import os\nwhile True:\n    os.fork()\n")
    linker = student(
        "linker", AUTOGRADED_POINTS - 5, **{"02_vae_lab": "refused: a symbolic link or not a file (scored 0)"}
    )
    (linker / "02_vae_lab.ipynb").unlink()
    (linker / "02_vae_lab.ipynb").symlink_to(folder / "solution" / "02_vae_lab.ipynb")
    return expected


def _scores(course: Path) -> dict[str, float]:
    scores = {}
    for row in csv.DictReader((course / "grades_by_exercise.csv").open()):
        if row["graded_by"] == "autograder":
            scores[row["student_id"]] = scores.get(row["student_id"], 0) + float(row["auto_score"] or 0)
    return scores


def test_a_class_with_cheats_and_faults_gets_the_right_scores_and_statuses(course, tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    expected = _class(course, submissions)
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
