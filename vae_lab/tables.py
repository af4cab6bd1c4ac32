"""The gradebook tables: grades.csv (nbgrader's export), grades_by_exercise.csv, grading_status.csv.

Every value goes through `spreadsheet_safe`, so no cell is read as a formula when the instructor
opens a table in a spreadsheet (a status can name a file the student named).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from vae_lab.course import ASSIGNMENT, ClassroomError, nbgrader_cells

# What a spreadsheet reads as the start of a formula (OWASP's list: =, +, -, @, tab, carriage return).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_tables(course: Path, students: list[str]) -> None:
    """Write the three tables from the gradebook and the sandboxed results; print a line per student."""
    from nbgrader.api import Gradebook, MissingEntry

    graded_by = {}
    for path in (course / "source" / ASSIGNMENT).glob("*.ipynb"):
        for grade_id, cell in nbgrader_cells(json.loads(path.read_text())).items():
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
    _print_summary(course, students, rows, status_rows)


def _print_summary(course: Path, students: list[str], rows: list[dict], status_rows: list[dict]) -> None:
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
