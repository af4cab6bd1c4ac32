"""The students' own check (`vae-lab check`, the last cell of a graded notebook), as on Colab.

It runs the class of test_classroom.py as a student on Colab would: no bubblewrap, so each answer
runs in a plain Python, and (on the Colab stack) no nh3. Every student must get the score and the
statuses `vae-lab grade` gives them (asserted against the grader itself in test_classroom.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
import zipfile
from pathlib import Path

import pytest

from tests.classroom_class import make_class
from vae_lab import handin, sandbox
from vae_lab.cli import main
from vae_lab.intake import student_folders

REPO = Path(__file__).resolve().parent.parent
REFERENCE = json.loads(handin.REFERENCE.read_text())
POINTS = {ex["check_id"]: ex["points"] for part in REFERENCE.values() for ex in part["exercises"]}


@pytest.fixture
def release_folders(tmp_path) -> tuple[Path, Path]:
    """(instructor notebooks, student release) of the graded notebooks, as a student's kit holds them."""
    source, released = tmp_path / "source", tmp_path / "release"
    source.mkdir()
    released.mkdir()
    for notebook, part in REFERENCE.items():
        shutil.copy(REPO / "notebooks" / f"{notebook}.ipynb", source)
        (released / f"{notebook}.ipynb").write_text(json.dumps(part["release"]))
    return source, released


@pytest.mark.skipif(
    os.environ.get("VAE_LAB_STACK") != "colab",
    reason="runs on the Colab stack (vae-lab stacks colab), where students check without a sandbox or nh3; "
    "in make test, test_classroom.py compares the sandboxed check with the grader on the same class",
)
def test_the_check_agrees_with_the_grader_on_the_class_without_a_sandbox(
    release_folders, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sandbox, "bubblewrap", lambda: None)  # as on Colab
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    expected = make_class(*release_folders, submissions, tmp_path / "course")
    # Without bubblewrap a fork loop run as root (CI, Colab) has no process limit: on Colab it would
    # stop only that student's own session, here the test machine. The grader's test runs it sandboxed.
    shutil.rmtree(submissions / "forker")
    del expected["forker"]
    folders = student_folders(submissions)
    for student in sorted(folders, key=lambda name: name == "hostile"):  # its attacks last: they delete files
        checked = handin.check_folder(folders[student], student, timeout=30)  # as test_classroom grades
        said = capsys.readouterr().out
        score = sum(
            POINTS[check]
            for result in checked.values()
            for check, outcome in result["exercises"].items()
            if outcome == "passed"
        )
        assert (score, {nb: result["status"] for nb, result in checked.items()}) == expected[student], said
        assert "ran in a plain Python here (no sandbox starts here)" in said
        assert (folders[student] / f"{student}.zip").is_file()


def test_the_zip_holds_the_students_files_as_the_grader_takes_them(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for notebook in ("02_vae_lab", "04_compare"):
        shutil.copy(REPO / "notebooks" / f"{notebook}.ipynb", folder)
    assert main(["check", str(folder), "--student", "s1234"]) == 0
    said = capsys.readouterr().out
    assert (
        "03_generate_and_explore.ipynb: missing" in said
        and "Missing from it: 03_generate_and_explore.ipynb" in said
    )
    assert "✓ check_reparameterise (2 points)" in said and "Self-checks passed: 7 of 9 points" in said
    unpacked = tmp_path / "submissions"
    with zipfile.ZipFile(folder / "s1234.zip") as archive:
        assert sorted(archive.namelist()) == ["s1234/02_vae_lab.ipynb", "s1234/04_compare.ipynb"]
        archive.extractall(unpacked)
    assert student_folders(unpacked) == {"s1234": unpacked / "s1234"}
    assert (unpacked / "s1234" / "02_vae_lab.ipynb").read_bytes() == (
        folder / "02_vae_lab.ipynb"
    ).read_bytes()


def test_a_bad_student_id_or_folder_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["check", str(tmp_path), "--student", "../me"])
    assert (
        stopped.value.code == 2
        and "student='../me' is not an id the grader accepts" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["check", str(tmp_path / "nowhere")])
    assert "is not a folder" in capsys.readouterr().err


def test_on_colab_the_open_notebook_is_saved_checked_and_downloaded(tmp_path, monkeypatch, capsys):
    notebook = json.loads((REPO / "notebooks" / "03_generate_and_explore.ipynb").read_text())
    downloaded = []
    colab = types.ModuleType("google.colab")
    colab._message = types.SimpleNamespace(
        blocking_request=lambda kind, request, timeout_sec: {"ipynb": notebook}
    )
    colab.files = types.SimpleNamespace(download=downloaded.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(handin, "COLAB_FOLDER", tmp_path / "hand-in")
    handin.check_handin(student="s1234")
    said = capsys.readouterr().out
    assert f"Saved this notebook as {tmp_path / 'hand-in' / '03_generate_and_explore'}.ipynb" in said
    assert "03_generate_and_explore.ipynb: graded" in said and "02_vae_lab.ipynb: missing" in said
    assert downloaded == [str(tmp_path / "hand-in" / "s1234.zip")]
    handin.check_handin()
    assert 'Put your student id between the quotes of `student=""`' in capsys.readouterr().out


def test_where_bubblewrap_is_refused_the_answers_run_in_a_plain_python(tmp_path, monkeypatch, capsys):
    """A container, or a machine without user namespaces, refuses bubblewrap: the check works and says so."""
    refusing = tmp_path / "bin"
    refusing.mkdir()
    (refusing / "bwrap").write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    (refusing / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{refusing}:{os.environ['PATH']}")
    assert "No permissions to create new namespace" in sandbox.cannot_start()
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(REPO / "notebooks" / "03_generate_and_explore.ipynb", folder)
    checked = handin.check_folder(folder)
    said = capsys.readouterr().out
    assert checked["03_generate_and_explore"]["exercises"] == {"check_sample_prior": "passed"}
    assert "ran in a plain Python here (no sandbox starts here)" in said
