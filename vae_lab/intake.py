"""Collecting submissions: each student's notebooks copied into the course, normalised and made inert.

The course's copy of a notebook gets the release's nbgrader marks back (forged ones dropped,
deleted graded cells restored), and whatever could run in the browser of whoever opens it is
made inert (`safe_html`); the student's own files are never changed. Each student's hand-in has
a fingerprint, so only new or changed submissions are graded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from vae_lab.course import ASSIGNMENT, ClassroomError, cell_source, nbgrader_cells

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SECRET = "submission_secret.txt"  # written by `nbgrader submit`: the key of the feedback a student fetches


def student_folders(submissions: Path) -> dict[str, Path]:
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


def collect_student(
    folder: Path, released: Path, target: Path, inert: bool = True
) -> tuple[dict[str, str], str]:
    """Copy one student's notebooks into the course's submitted/ folder, normalised.

    Returns ({notebook: status}, fingerprint). Graded cells the student deleted come back as
    released; a notebook that is not valid JSON, or a symbolic link, is left out (scored 0).
    What could run in the browser of whoever opens the notebook later is made inert and flagged
    (`safe_html.neutralise`; `inert=False` skips that, for a student's own check without nh3);
    the student's own files are not changed.
    """
    import nbformat

    if inert:  # safe_html needs nh3, which the grader has (`vae-lab` says so when it is missing)
        from vae_lab import safe_html

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    digest = hashlib.sha256()
    handed_in = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".ipynb" or path.name in ("timestamp.txt", SECRET):
            data = None if path.is_symlink() else _read_regular(path)
            handed_in[path.name] = data
            digest.update(path.name.encode() + b"\0" + (data or b"<link>") + b"\0")
    ignored = []
    if handed_in.get("timestamp.txt") and folder.name == ASSIGNMENT:  # written by `nbgrader collect`
        if _is_timestamp(handed_in["timestamp.txt"][:200]):
            (target / "timestamp.txt").write_bytes(handed_in["timestamp.txt"][:200])
        else:  # nbgrader would fail on it, and it would reach grades.csv
            ignored.append("timestamp.txt ignored (not a date)")
    secret = handed_in.get(SECRET) or b""
    if folder.name == ASSIGNMENT and re.fullmatch(rb"[0-9a-f]{32,256}", secret):
        (target / SECRET).write_bytes(secret)  # feedback released through the exchange is filed under it
    statuses = {}
    for release_path in sorted(released.glob("*.ipynb")):
        release_notebook = json.loads(release_path.read_text())
        name, released_cells = release_path.name, nbgrader_cells(release_notebook)
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
        markdown = {
            cell_source(cell) for cell in release_notebook["cells"] if cell["cell_type"] == "markdown"
        }
        flagged = ""
        if inert:
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
