"""Students' feedback pages: nbgrader's generate_feedback, each page given a Content-Security-Policy.

`feedback` is the command for after grading by hand in Formgrader; `vae-lab grade` writes the
feedback of the students it grades with `write_feedback`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from filelock import FileLock

from vae_lab import safe_html
from vae_lab.course import ASSIGNMENT, LOCK, ClassroomError, nbgrader_api, prepare_course, require_nbgrader
from vae_lab.tables import write_tables
from vae_lab.workers import worker_pool


def feedback(course: Path, jobs: int | None = None, show_hidden_tests: bool = False) -> int:
    """After grading by hand in Formgrader: write every graded student's feedback and the tables again."""
    require_nbgrader()
    course = prepare_course(course, show_hidden_tests)
    state_path = course / "grading_state.json"
    if not state_path.exists():
        raise ClassroomError(f"nothing is graded in {course} yet: run `vae-lab grade DIR` first.")
    students = sorted(json.loads(state_path.read_text()))
    with FileLock(course / LOCK):
        with worker_pool(jobs or os.cpu_count() or 1) as pool:
            errors = dict(
                zip(students, pool.map(write_feedback, [(str(course), student) for student in students]))
            )
        for student, error in errors.items():
            if error:
                print(f"error: nbgrader could not write {student}'s feedback:\n{error}", file=sys.stderr)
        write_tables(course, students)
    print(f"feedback written again for {len(students)} students")
    return 1 if any(errors.values()) else 0


def write_feedback(job: tuple[str, str]) -> str:
    """Write one student's feedback HTML with nbgrader; return its error text, or "" when it worked.

    Each page gets a Content-Security-Policy: whoever opens it runs no script but MathJax.
    """
    course, student = job
    result = nbgrader_api(Path(course)).generate_feedback(ASSIGNMENT, student, force=True)
    if not result["success"]:
        return f"{result.get('log', '')}{result.get('error', '')}"
    for page in (Path(course) / "feedback" / student / ASSIGNMENT).glob("*.html"):
        page.write_text(safe_html.with_content_security_policy(page.read_text(encoding="utf-8")), "utf-8")
    return ""
