"""The nbgrader course folder the classroom commands share: its config, nbgrader's API, the graded cells."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vae_lab import KIT

ASSIGNMENT = "vae-lab"
DEFAULT_COURSE = KIT / "build" / "classroom"
LOCK = ".grading.lock"  # in the course folder: two runs on one course would mix their gradebook writes

CONFIG = """\
# Written by vae-lab; rewritten on every run.
from vae_lab.nbgrader_steps import autograde_preprocessors, feedback_preprocessors

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "vae-lab"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
# Student code never runs in nbgrader's own kernel: `nbgrader autograde` records the results of
# `vae-lab grade`, which runs each answer in a sandbox (and refuses to do anything else).
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.SandboxedResults.results_dir = "{root}/results"
c.GenerateFeedback.preprocessors = feedback_preprocessors(show_hidden_tests={show_hidden!r})
# What students wrote is made inert when it is collected (vae_lab/safe_html.py); nbconvert's own
# sanitiser cleans the outputs of what Formgrader and the feedback render as well.
c.HTMLExporter.sanitize_html = True
"""


class ClassroomError(Exception):
    """A problem the instructor can fix; the message says how."""


def require_nbgrader() -> None:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise ClassroomError(
            "nbgrader is not installed in this environment: run `pip install -e '.[instructor]'` "
            "(or `make release`, which installs it)."
        ) from None


def prepare_course(course: Path, show_hidden_tests: bool = False) -> Path:
    """Create the course folder and write its nbgrader_config.py; return the folder's absolute path."""
    course = course.resolve()
    course.mkdir(parents=True, exist_ok=True)
    config = CONFIG.format(root=str(course), show_hidden=show_hidden_tests)
    (course / "nbgrader_config.py").write_text(config)
    return course


def nbgrader_api(course: Path):
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


def nbgrader_cells(notebook: dict) -> dict[str, dict]:
    """The notebook's cells that carry nbgrader marks, by their grade_id."""
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: cell
        for cell in notebook["cells"]
        if "grade_id" in cell.get("metadata", {}).get("nbgrader", {})
    }


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
