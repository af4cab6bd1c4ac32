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
    if not course.exists():
        course.mkdir(parents=True, mode=0o700)  # solutions, hidden tests, gradebook: the instructor's alone
    mode = course.stat().st_mode
    if mode & 0o007:
        course.chmod(mode & 0o770)
        print(f"{course}: other users could read the course folder; closed it to them (group kept)")
    config = CONFIG.format(root=str(course), show_hidden=show_hidden_tests)
    (course / "nbgrader_config.py").write_text(config)
    return course


def nbgrader_api(course: Path, exchange: bool = False, submitted_directory: str = "submitted"):
    """nbgrader's Python API on the course, configured by the course's nbgrader_config.py.

    With `exchange`, the nbgrader_config.py files of Jupyter's config path come first (the hub's
    image sets the exchange folder there: deploy/image/nbgrader_config.py), as for nbgrader's own
    commands. `submitted_directory` is where `collect` puts what it takes from the exchange.
    """
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
    from traitlets.config import Config

    config = Config()
    if exchange:
        from jupyter_core.paths import jupyter_config_path

        for folder in reversed(jupyter_config_path()):  # the first folder wins, so it is read last
            if (Path(folder) / "nbgrader_config.py").is_file():
                config.merge(PyFileConfigLoader("nbgrader_config.py", path=folder).load_config())
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config())
    config.CourseDirectory.submitted_directory = submitted_directory
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def exchange_step(course: Path, step: str, **directories) -> None:
    """One of nbgrader's exchange steps on the lab (release_assignment, collect, release_feedback)."""
    api = nbgrader_api(course, exchange=True, **directories)
    root = api.exchange_root  # as nbgrader resolved it: configured, or its default
    if root and not Path(root).is_dir():
        raise ClassroomError(
            f"nbgrader's exchange folder {root} does not exist: make it (`mkdir -p {root} && chmod 777 "
            f"{root}`, as root), or set c.Exchange.root in an nbgrader_config.py "
            "(deploy/image/nbgrader_config.py reads VAE_LAB_EXCHANGE)."
        )
    result = getattr(api, step)(ASSIGNMENT)
    if not result["success"]:
        raise ClassroomError(f"nbgrader {step} failed:\n{result.get('log', '')}{result.get('error', '')}")


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
