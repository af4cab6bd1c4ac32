"""Run the unit tests and every notebook (fast mode) on the software stacks students have.

  vae-lab stacks                 # all stacks: colab, floor, newest
  vae-lab stacks colab floor     # some of them

Each stack is a fresh virtual environment in build/stacks/<name>, made with uv:
- colab:  Python 3.12 and the versions Google Colab ships (ipywidgets 7); the kit is
          installed with --no-deps, as the notebooks' first cell does on Colab;
- floor:  the oldest Python and the lowest versions pyproject.toml declares for students
          (its dependencies and the [lab] extra, each pinned to its lower bound);
- newest: the newest Python installed here and the newest release of everything.
The browser test and the nbgrader round trip run in the main environment only (`make test`).
A Python that is missing fails the stack under CI and skips it elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from vae_lab import KIT, MODELS_VARIABLE

NO_TRAINING_VARIABLE = "VAE_LAB_TEST_NO_TRAINING"  # 1: a notebook cell that trains fails (conftest.py)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUILD = KIT / "build" / "stacks"
NAMES = ("colab", "floor", "newest")  # the stacks `stacks()` describes, in the order they run
PYTEST_ARGS = ["-m", "not browser", "--ignore", "tests/test_classroom.py", "-p", "no:cacheprovider", "-q"]
STACK_VARIABLE = "VAE_LAB_STACK"  # the stack's name, for a test that runs on one stack only
SHOWN_PACKAGES = ("tensorflow", "keras", "numpy", "matplotlib", "ipywidgets", "ipython", "ipykernel")
VERSIONS_SCRIPT = (
    "import sys, importlib.metadata as metadata\n"
    "print('python', sys.version.split()[0])\n"
    f"for name in {SHOWN_PACKAGES!r}:\n"
    "    print(name, metadata.version(name))\n"
)

# What Colab's runtime has (2026): its own TensorFlow and Keras, IPython 7 and ipywidgets 7.
COLAB_PINS = [
    "tensorflow==2.19.0",
    "keras==3.10.0",
    "numpy==2.0.2",
    "matplotlib==3.10.0",
    "ipywidgets==7.7.1",
    "ipython==7.34.0",
    "ipykernel==6.17.1",
    "filelock==3.18.0",
    "platformdirs==4.3.8",
    "scikit-learn==1.6.1",
]


@dataclass
class Stack:
    name: str
    python: str  # "3.12", or "oldest"/"newest" for the bounds of requires-python
    pins: list[str] = field(default_factory=list)
    kit_without_dependencies: bool = False
    like_colab: bool = False  # as on Colab: its notebooks take their models from a given bundle


def _pyproject() -> dict:
    return tomllib.loads((KIT / "pyproject.toml").read_text())


def declared_floors(project: dict) -> list[str]:
    """Pin every student dependency (dependencies + [lab]) to its declared lower bound (the highest one)."""
    floors: dict[str, str] = {}
    for line in project["dependencies"] + project["optional-dependencies"]["lab"]:
        requirement = Requirement(line)
        lower = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(lower) != 1:
            raise ValueError(f"{line!r} in pyproject.toml needs exactly one '>=' lower bound.")
        current = floors.get(requirement.name)
        if current is None or _version_key(lower[0]) > _version_key(current):
            floors[requirement.name] = lower[0]
    return [f"{name}=={version}" for name, version in floors.items()]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def stacks() -> dict[str, Stack]:
    project = _pyproject()["project"]
    return {
        "colab": Stack("colab", "3.12", COLAB_PINS, kit_without_dependencies=True, like_colab=True),
        "floor": Stack("floor", "oldest", declared_floors(project)),
        "newest": Stack("newest", "newest"),
    }


def installed_pythons() -> dict[tuple[int, int], str]:
    """Map (major, minor) to an interpreter for every CPython found on PATH or in pyenv."""
    found: dict[tuple[int, int], str] = {}
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/3.*/bin/python3"))
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in range(8, 20)]
    for candidate in filter(None, candidates):
        version = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if version:
            found.setdefault(_minor(version), candidate)
    return found


def find_python(stack: Stack, requires_python: str) -> str:
    """Return the interpreter for `stack`, or raise LookupError saying which Python to install."""
    pythons = installed_pythons()
    oldest = _minor(re.search(r">=\s*([\d.]+)", requires_python).group(1))
    if stack.python == "oldest":
        wanted = oldest
    elif stack.python == "newest":
        usable = [version for version in pythons if version >= oldest]
        if not usable:
            raise LookupError(f"no Python {oldest[0]}.{oldest[1]} or newer found (PATH or pyenv).")
        wanted = max(usable)
    else:
        wanted = _minor(stack.python)
    if wanted not in pythons:
        raise LookupError(
            f"the {stack.name} stack needs Python {wanted[0]}.{wanted[1]}, which is not installed "
            f"(looked on PATH and in pyenv): install it, e.g. `pyenv install {wanted[0]}.{wanted[1]}`."
        )
    return pythons[wanted]


def run(command: list[str], log, **kwargs) -> int:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, **kwargs).returncode


def check_stack(stack: Stack, uv: str, models: Path | None = None) -> tuple[bool, str]:
    """Build the stack's environment from scratch, run the tests in it; return (passed, summary).

    With `models` (a bundle from `vae-lab bundle --mode fast`), a stack `like_colab` gets it
    from an HTTP server on this machine (VAE_LAB_MODELS, an empty cache) as Colab gets the course's,
    and a notebook cell that trains a model fails (conftest.py, NO_TRAINING_VARIABLE).
    """
    project = _pyproject()["project"]
    python = find_python(stack, project["requires-python"])
    folder = BUILD / stack.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    venv, log_path = folder / "venv", folder / "log.txt"
    bin_python = str(venv / "bin" / "python")
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    with log_path.open("w") as log:
        steps = [[uv, "venv", "--quiet", "--python", python, str(venv)]]
        if stack.kit_without_dependencies:
            test_tools = project["optional-dependencies"]["test"]
            steps += [
                [uv, "pip", "install", "--quiet", *stack.pins, *test_tools],
                [uv, "pip", "install", "--quiet", "--no-deps", "."],
            ]
        else:
            constraints = folder / "constraints.txt"
            constraints.write_text("".join(f"{pin}\n" for pin in stack.pins))
            steps.append([uv, "pip", "install", "--quiet", "-e", ".[lab,test]", "-c", str(constraints)])
        for step in steps:
            if run(step, log, cwd=KIT, env=environment) != 0:
                return False, f"install failed (see {log_path})"
        versions = subprocess.run(
            [bin_python, "-c", VERSIONS_SCRIPT], capture_output=True, text=True
        ).stdout.splitlines()
        log.write("\n".join(versions) + "\n")
        test_environment = {
            **environment,
            "VAE_LAB_MODE": "fast",
            "VAE_LAB_ARTIFACTS": str(folder / "artifacts"),
        }
        with served(models if stack.like_colab else None) as url:
            if url:
                test_environment |= {
                    MODELS_VARIABLE: url,
                    "XDG_CACHE_HOME": str(folder / "cache"),
                    NO_TRAINING_VARIABLE: "1",
                }
                log.write(f"models from {url} (served from {models})\n")
            started = time.perf_counter()
            test_environment[STACK_VARIABLE] = stack.name
            code = run([bin_python, "-m", "pytest", *PYTEST_ARGS], log, cwd=KIT, env=test_environment)
            seconds = time.perf_counter() - started
    outcome = _last_line(log_path)
    bundled = ", models from a bundle" if models and stack.like_colab else ""
    return code == 0, f"{', '.join(versions)} | {outcome} in {seconds:.0f} s{bundled}"


@contextlib.contextmanager
def served(bundle_file: Path | None):
    """An HTTP server on this machine for `bundle_file`'s folder; yields its URL (None: no bundle)."""
    if bundle_file is None:
        yield None
        return

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(bundle_file.resolve().parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/{urllib.parse.quote(bundle_file.name)}"
        finally:
            server.shutdown()


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    summary = [line for line in lines if re.search(r"\d+ (passed|failed|error)", line)]
    return (summary or lines or ["no output"])[-1].strip("= ")


def find_uv() -> str | None:
    """uv beside this Python (the kit's [dev] extra installs it there), else on PATH."""
    return shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def check_stacks(names: list[str], uv: str, models: Path | None = None) -> int:
    """Check each named stack in turn and print how it went; return 1 if any failed, else 0."""
    available = stacks()
    failed = []
    for name in names:
        started = time.perf_counter()
        try:
            passed, summary = check_stack(available[name], uv, models)
        except LookupError as missing:
            passed, summary = not os.environ.get("CI"), f"skipped: {missing}"
        total = time.perf_counter() - started
        print(f"stack {name}: {'ok' if passed else 'FAILED'} ({total:.0f} s) - {summary}", flush=True)
        if not passed:
            failed.append(name)
            log = BUILD / name / "log.txt"
            if log.is_file():
                print("".join(log.read_text().splitlines(keepends=True)[-60:]), flush=True)
    if failed:
        print(f"failed stacks: {', '.join(failed)}; logs in {BUILD}/<stack>/log.txt")
    return 1 if failed else 0
