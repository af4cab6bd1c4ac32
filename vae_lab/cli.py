"""The `vae-lab` command: the kit's instructor and maintenance tools.

  vae-lab release                  # notebooks/ -> build/classroom/release/vae-lab/ (nbgrader)
  vae-lab grade SUBMISSIONS_DIR    # SUBMISSIONS_DIR/<student id>/*.ipynb: scores, statuses, feedback
  vae-lab release --exchange; vae-lab grade --exchange   # on a hub: through nbgrader's exchange
  vae-lab feedback                 # after grading by hand in Formgrader: feedback and tables again
  vae-lab run --write              # execute the notebooks, write the outputs back into notebooks/
  vae-lab run --html build/html    # execute (without writing back), export HTML
  vae-lab html build/html          # export the committed outputs as they are
  vae-lab stacks [colab|floor|newest]   # the tests and notebooks on the students' software stacks
  vae-lab record NOTEBOOK --student ID  # a student's lab record: the executed notebook as a PDF, no code
  vae-lab bundle [--mode full]     # the trained models in one archive students download (VAE_LAB_MODELS)
  vae-lab check [FOLDER] --student ID   # students: the grader's checks on your notebooks, and ID.zip

The committed notebooks are the instructor versions (solutions, hidden tests and points in the
nbgrader cell metadata); the classroom commands work in an nbgrader course folder (git-ignored,
`build/classroom/` by default, `--course` to choose). The exit status is 0 when a command
finished (whatever the students handed in), 2 on a problem you can fix (the message says how),
1 when something failed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from vae_lab import KIT, WITHOUT_TENSORFLOW_VARIABLE, bundle, handin, lab_notebooks, stacks
from vae_lab.course import ASSIGNMENT, DEFAULT_COURSE, ClassroomError, exchange_step

try:  # what makes pages inert (nh3) comes with the kit's [lab] extra; Colab's --no-deps install lacks it
    from vae_lab import notebooks, record
    from vae_lab.feedback import feedback
    from vae_lab.grading import grade
    from vae_lab.release import release
except ModuleNotFoundError as error:
    MISSING = error.name
else:
    MISSING = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vae-lab", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    course = argparse.ArgumentParser(add_help=False)
    course.add_argument(
        "--course", type=Path, default=DEFAULT_COURSE, help="nbgrader course folder (default: %(default)s)"
    )
    hidden_tests = argparse.ArgumentParser(add_help=False)
    hidden_tests.add_argument(
        "--show-hidden-tests", action="store_true", help="keep the hidden tests in the feedback"
    )
    released = commands.add_parser(
        "release", parents=[course], help="generate the student release from notebooks/"
    )
    released.add_argument(
        "--reference", type=Path, help="also write what students' `vae-lab check` reads (released.json)"
    )
    released.add_argument(
        "--exchange", action="store_true", help="on a hub: also release it to nbgrader's exchange"
    )
    grading = commands.add_parser(
        "grade", parents=[course, hidden_tests], help="autograde SUBMISSIONS/<student id>/*.ipynb"
    )
    grading.add_argument(
        "submissions",
        type=Path,
        nargs="?",
        help=f"folder with one folder per student (or nbgrader's <student>/{ASSIGNMENT}/)",
    )
    grading.add_argument(
        "--exchange",
        action="store_true",
        help="on a hub: collect the submissions from nbgrader's exchange first, release the feedback after",
    )
    grading.add_argument(
        "--jobs", type=int, default=None, help="students graded side by side (default: all cores)"
    )
    grading.add_argument(
        "--all", action="store_true", help="grade every submission again, not only new or changed ones"
    )
    grading.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one answer (its cell and all the check's calls) may take",
    )
    grading.add_argument(
        "--unsafe",
        action="store_true",
        help="without bubblewrap: run answers in plain subprocesses (no isolation)",
    )
    again = commands.add_parser(
        "feedback",
        parents=[course, hidden_tests],
        help="after grading by hand in Formgrader: write the feedback and the gradebook again",
    )
    again.add_argument("--jobs", type=int, default=None, help="students side by side (default: all cores)")
    run = commands.add_parser(
        "run", help="execute the lab notebooks on a fresh kernel, or export them to HTML"
    )
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    run.add_argument("--write", action="store_true", help="write the outputs back into the notebooks")
    run.add_argument("--html", type=Path, help="export executed notebooks to HTML in this folder")
    run.add_argument("--html-only", type=Path, help="export the notebooks as they are, without running")
    run.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    html = commands.add_parser("html", help="export the notebooks as they are to HTML (run --html-only)")
    html.add_argument("html_only", metavar="folder", type=Path, help="where the HTML pages go")
    html.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    html.set_defaults(write=False, html=None, timeout=0)  # nothing runs
    records = commands.add_parser("record", help="a student's lab record: an executed notebook as a PDF")
    records.add_argument("notebook", type=Path, help="the executed notebook, e.g. notebooks/02_vae_lab.ipynb")
    records.add_argument("--student", required=True, help="the name or id the record shows")
    records.add_argument("--out", type=Path, help="the PDF (default: build/records/<notebook>_<student>.pdf)")
    handing_in = commands.add_parser(
        "check", help="students: the grader's intake and checks on your notebooks, then the zip to upload"
    )
    handing_in.add_argument("folder", type=Path, nargs="?", default=Path("."), help="default: this folder")
    handing_in.add_argument("--student", help="your student id: writes FOLDER/<id>.zip, the file you upload")
    handing_in.add_argument("--out", type=Path, help="the zip (default: FOLDER/<id>.zip)")
    packing = commands.add_parser("bundle", help="pack a run mode's trained models for students to download")
    packing.add_argument("--mode", choices=["full", "fast"], default="full", help="default: %(default)s")
    packing.add_argument(
        "--artifacts",
        type=Path,
        default=Path(os.environ.get("VAE_LAB_ARTIFACTS") or KIT / "artifacts"),
        help="the folder holding <mode>/ (default: VAE_LAB_ARTIFACTS, else artifacts/)",
    )
    packing.add_argument("--out", type=Path, help="the archive (default: build/bundles/<name>.zip)")
    checked = commands.add_parser(
        "stacks", help="the unit tests and every notebook on the Colab, lowest-version and newest stacks"
    )
    checked.add_argument("names", nargs="*", choices=[*stacks.NAMES, []], help="default: every stack")
    checked.add_argument(
        "--models", type=Path, help="a fast-mode model bundle the Colab stack's notebooks take models from"
    )
    return parser


def _run_notebooks(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    paths = arguments.notebooks or lab_notebooks()
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    notebooks.run(paths, arguments.write, arguments.html, arguments.html_only, arguments.timeout)


def _check_stacks(names: list[str], models: Path | None, parser: argparse.ArgumentParser) -> int:
    uv = stacks.find_uv()
    if uv is None:
        parser.error("uv is not installed: `pip install uv` (it is in the kit's [dev] extra).")
    if models is not None and not models.is_file():
        parser.error(f"--models {models}: no such bundle; make one with `vae-lab bundle --mode fast`.")
    return stacks.check_stacks(names or list(stacks.NAMES), uv, models)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if MISSING is not None and arguments.command not in ("stacks", "bundle", "check"):
        print(f"error: vae-lab {arguments.command} needs {MISSING}: pip install {MISSING} "
              "(it comes with the kit's [lab] extra).", file=sys.stderr)
        return 2
    try:
        if arguments.command == "release":
            release(arguments.course, arguments.reference)
            if arguments.exchange:
                exchange_step(arguments.course, "release_assignment")
                print("released to the exchange: students fetch it from their assignment list (Fetch)")
        elif arguments.command == "grade":
            if (arguments.submissions is None) == (not arguments.exchange):
                parser.error("give either SUBMISSIONS (a folder of students' notebooks) or --exchange")
            return grade(
                arguments.submissions,
                arguments.course,
                arguments.jobs,
                arguments.all,
                arguments.timeout,
                arguments.unsafe,
                arguments.show_hidden_tests,
                arguments.exchange,
            )
        elif arguments.command == "feedback":
            return feedback(arguments.course, arguments.jobs, arguments.show_hidden_tests)
        elif arguments.command == "check":
            os.environ[WITHOUT_TENSORFLOW_VARIABLE] = "1"  # the checks run on NumPy here, as in the grader
            try:
                handin.check_folder(arguments.folder, arguments.student, arguments.out)
            except ValueError as error:
                parser.error(str(error))
        elif arguments.command == "bundle":
            out = arguments.out or KIT / "build" / "bundles" / bundle.default_name(arguments.mode)
            try:
                manifest = bundle.pack(arguments.artifacts.expanduser() / arguments.mode, out)
            except bundle.BundleError as error:
                parser.error(str(error))
            print(f"Packed {len(manifest['models'])} models ({out.stat().st_size / 1e6:.1f} MB) into {out}.")
            print("Publish it (e.g. as a release asset) and set VAE_LAB_MODELS to its URL; see the README.")
        elif arguments.command == "stacks":
            return _check_stacks(arguments.names, arguments.models, parser)
        elif arguments.command == "record":
            if not arguments.notebook.is_file():
                parser.error(f"{arguments.notebook} is not a file: pass an executed notebook (.ipynb).")
            named = re.sub(r"[^A-Za-z0-9_.-]", "_", arguments.student.strip())  # safe in a file name
            default = KIT / "build" / "records" / f"{arguments.notebook.stem}_{named}.pdf"
            try:
                record.write_record(arguments.notebook, arguments.student, arguments.out or default)
            except ValueError as error:
                parser.error(str(error))
        else:
            _run_notebooks(arguments, parser)
    except ClassroomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
