"""Grade one answer without trusting it: the student's code in a bubblewrap sandbox, the checks outside.

`run_check` takes a graded cell of the instructor's notebook (`checks.check_x(answer, ...)`, with its
hidden tests), the student's answer cell, and runs them apart:

- the answer cell executes in `answer_worker.py`, in a fresh Python inside a sandbox: a throwaway
  working folder is the only writable place; the Python environment, `lab_utils` and `vae_lab` are read-only;
  the course (solutions, gradebook, other students) and the network are not there; its own PID
  namespace, a non-root user, and limits on time, memory, processes and output size;
- the check executes here, in the grader, with the real `lab_utils.checks`. Where it calls the
  student's function, the call goes to the sandbox and only the returned numbers come back; where it
  reads a value (`kl_share`), the value is fetched from the sandbox. Nothing the student's code does
  in its interpreter reaches the check, so a patched `checks` module or a printed "✓" scores nothing.

Without bubblewrap (`bwrap`) the grader refuses, unless the instructor passes `--unsafe`: then the
answer runs in a plain subprocess with the same limits but no isolation (the scores stay honest,
the rest of the machine is exposed).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_lab.answer_worker import decode, encode  # the sandbox's side of the same wire format

PACKAGE_FOLDER = Path(__file__).resolve().parent  # vae_lab
WORKER = Path(__file__).resolve().with_name("answer_worker.py")
MAX_REPLY = 64 << 20  # bytes of one reply from the sandbox
SANDBOX_HOME = "/home/student"


class AnswerStopped(BaseException):  # noqa: N818 - BaseException: the checks' `except Exception` must not eat it
    """The sandbox stopped answering; `status` is "timeout" or "crash", `reason` says why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Limits:
    """What one answer may use. `seconds` is wall time for the answer cell and all the check's calls."""

    seconds: float = 60.0
    memory: int = 4 << 30  # address space, bytes
    processes: int = 64  # processes and threads of the sandbox's user
    output: int = 8 << 20  # bytes the answer may print or write


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


def cannot_start() -> str | None:
    """None if an answer sandbox starts on this machine; else why not, in bubblewrap's or Python's words.

    bubblewrap can be installed and still be refused: without unprivileged user namespaces, or in
    a container (an ordinary Kubernetes pod) that may not mount /proc. One trivial answer shows it.
    """
    if bubblewrap() is None:
        return "bubblewrap (`bwrap`) is not installed"
    with tempfile.TemporaryDirectory(prefix="vae-lab-sandbox-") as folder:
        try:
            with Answer("started = True", {}, Path(folder) / "answer", Limits(seconds=60)) as answer:
                if "error" in answer.ready:
                    return f"its Python failed: {answer.ready['error'].get('message')}"
        except AnswerStopped as stopped:
            return stopped.reason
    return None


def _ancestors(paths: list[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        for parent in reversed(path.parents):
            if parent != Path("/") and parent not in seen:
                seen.append(parent)
    return seen


def _user_processes(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(list((entry / "task").iterdir()))
    return count


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie has an empty command line)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc's children lists."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in (task / "children").read_text().split()]
                found += children
                queue += children
    return found


def _sandbox_uid() -> int:
    return 61000 + os.getpid() % 4000  # one per grading process, so parallel sandboxes count apart


def _command(workdir: Path, unsafe: bool) -> list[str]:
    python = [os.path.abspath(sys.executable), "-I", "-B"]  # the sandbox starts in a folder of its own
    if unsafe:
        return [*python, str(WORKER)]
    kit = importlib.util.find_spec("lab_utils")  # found, not imported: importing it would start TensorFlow
    # lab_utils imports from vae_lab (its lock and setting names), so an answer can import both
    readable = [Path(sys.prefix), Path(sys.base_prefix), Path(kit.origin).resolve().parent, PACKAGE_FOLDER]
    command = [bubblewrap() or "bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    command += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    # /proc, /dev and an empty /tmp first: a later mount hides an earlier one below it, and the
    # environment may itself live under /tmp (a CI checkout does).
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    for folder in _ancestors([*readable, Path(SANDBOX_HOME), Path("/grader/x")]):
        command += ["--perms", "0755", "--dir", str(folder)]
    for path in dict.fromkeys(readable):
        command += ["--ro-bind", str(path), str(path)]
    command += ["--ro-bind", str(WORKER), "/grader/answer_worker.py"]
    command += ["--bind", str(workdir), SANDBOX_HOME, "--chdir", SANDBOX_HOME, "--clearenv"]
    for name, value in _ENVIRONMENT.items():
        command += ["--setenv", name, value]
    if os.geteuid() == 0:  # bwrap runs privileged: drop to an unprivileged user inside, so limits apply
        uid = _sandbox_uid()
        os.chown(workdir, uid, uid)
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "setpriv", f"--reuid={uid}"]
        command += [f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        command += ["--no-new-privs", "--"]
    else:
        command[1:1] = ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return [*command, *python, "/grader/answer_worker.py"]


_ENVIRONMENT = {
    "HOME": SANDBOX_HOME,
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "MPLBACKEND": "Agg",
}


def _limit(limits: Limits, processes: int):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output, limits.output))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        cpu = int(limits.seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    return apply


class AnswerError(Exception):
    """The student's code raised; the message is its type and text."""


class Answer:
    """The student's answer cell running in a sandbox; `call` and `get` ask it for values."""

    def __init__(
        self, source: str, predefined: dict, workdir: Path, limits: Limits, unsafe: bool = False
    ) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        workdir.mkdir(parents=True, exist_ok=True)
        # as root the sandbox runs as a user of its own; otherwise the limit counts all our processes
        privileged = os.geteuid() == 0 and not unsafe
        processes = limits.processes + (0 if privileged else _user_processes(os.getuid()))
        self.log = (workdir.parent / f"{workdir.name}.stderr").open("w+b")
        self.process = subprocess.Popen(
            _command(workdir, unsafe),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=workdir,
            preexec_fn=_limit(limits, processes),
            env={**_ENVIRONMENT, "HOME": str(workdir)} if unsafe else {},
        )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.buffer = b""
        try:
            self.ready = self._ask({"source": source, "predefined": predefined})
        except BaseException:
            self.close()  # a cell that never finishes must not outlive its grading
            raise

    def close(self) -> None:
        # bwrap starts the sandbox in a session of its own, so kill every descendant by pid, not only
        # bwrap's process group; then wait until they are gone.
        family = _descendants(self.process.pid)
        for pid in [self.process.pid, *family]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 5
        while any(map(_alive, family)) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.selector.close()
        self.process.stdout.close()
        with contextlib.suppress(BrokenPipeError):  # what was left unread by a Python that ended first
            self.process.stdin.close()
        self.log.close()

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stopped(self) -> AnswerStopped:
        code = self.process.wait()
        signals = {
            signal.SIGXFSZ: "it wrote more than the output limit",
            signal.SIGXCPU: "it used its CPU time",
        }
        number = -code if code < 0 else code - 128 if code > 128 else 0
        if number in signals:
            return AnswerStopped("crash", f"the answer was stopped: {signals[number]}")
        self.log.seek(0)
        tail = self.log.read()[-2000:].decode("utf-8", "replace").strip()
        if "MemoryError" in tail or "std::bad_alloc" in tail:
            return AnswerStopped("crash", "the answer was stopped: it ran out of its memory limit")
        return AnswerStopped("crash", f"the answer's Python ended (exit status {code}) {tail[-300:]}".strip())

    def _ask(self, message: dict) -> dict:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._stopped() from None
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.selector.select(timeout=left):
                raise AnswerStopped("timeout", f"the answer did not finish within {self.limits.seconds:g} s")
            chunk = os.read(self.process.stdout.fileno(), 1 << 20)
            if not chunk:
                raise self._stopped()
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY:
                raise AnswerStopped("crash", "the answer sent back more than 64 MB")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
            if not isinstance(reply, dict):
                raise ValueError("not an object")
        except ValueError:
            raise AnswerStopped(
                "crash", "the answer's Python wrote something the grader cannot read"
            ) from None
        return reply

    def _value(self, reply: dict, name: str):
        if "error" in reply:
            error = reply["error"]
            kind, text = str(error.get("type")), str(error.get("message"))
            if kind == "NotImplementedError":
                raise NotImplementedError(text)
            raise AnswerError(f"{kind}: {text}\n{error.get('traceback', '')}".strip())
        value = reply.get("value")
        if value is None:
            return None
        try:
            array = decode(value)
        except Exception:  # noqa: BLE001 - anything unreadable is the answer's fault
            raise AnswerStopped("crash", f"{name} sent back something that is not an array") from None
        return array.item() if array.ndim == 0 else array

    def call(self, name: str, *args):
        return self._value(self._ask({"call": name, "args": [encode(np.asarray(arg)) for arg in args]}), name)

    def get(self, name: str):
        return self._value(self._ask({"get": name}), name)


class _AnswerFunction:
    """Stands in for the student's function: each call runs in the sandbox."""

    def __init__(self, answer: Answer, name: str) -> None:
        self.answer, self.__name__ = answer, name

    def __call__(self, *args):
        return self.answer.call(self.__name__, *args)


def defined_names(source: str) -> tuple[list[str], list[str]]:
    """The functions and the variables a cell defines at top level (from the instructor's copy)."""
    functions, values = [], []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            functions.append(node.name)
        elif isinstance(node, ast.Assign):
            values += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return functions, values


def _error_output(name: str, message: str) -> dict:
    return {"output_type": "error", "ename": name, "evalue": message, "traceback": [f"{name}: {message}"]}


def run_check(
    check_source: str,
    answer_source: str,
    names: tuple[list[str], list[str]],
    predefined: dict,
    workdir: Path,
    limits: Limits = Limits(),
    unsafe: bool = False,
) -> tuple[str, list[dict]]:
    """Grade one graded cell; return (status, the cell's outputs in nbformat form).

    status is "passed", "failed", "timeout" or "crash". `names` are the functions and the values the
    instructor's answer cell defines (`defined_names`): those the check may ask the student's cell for.
    """
    from lab_utils import checks

    functions, values = names
    printed = io.StringIO()
    try:
        with Answer(answer_source, predefined, workdir, limits, unsafe) as answer:
            if "error" in answer.ready:
                error = answer.ready["error"]
                message = f"your answer cell raised {error.get('type')}: {error.get('message')}"
                if error.get("type") == "NotImplementedError":
                    message = "your answer cell still raises NotImplementedError: write your answer there."
                return "failed", [_error_output("AnswerCellError", message)]
            names = {name: _AnswerFunction(answer, name) for name in functions}
            for name in values:
                try:
                    names[name] = answer.get(name)
                except (AnswerError, NotImplementedError) as error:
                    return "failed", [_error_output("AnswerCellError", f"{name}: {error}")]
            namespace = {"checks": checks, "np": np, **predefined, **names}
            with contextlib.redirect_stdout(printed):
                exec(compile(check_source, "<graded cell>", "exec"), namespace)  # noqa: S102 - instructor's code
    except AnswerStopped as stopped:
        return stopped.status, [_error_output("AnswerStopped", stopped.reason)]
    except Exception as error:  # noqa: BLE001 - a failed check, in the words the check chose
        outputs = (
            [{"output_type": "stream", "name": "stdout", "text": printed.getvalue()}]
            if printed.getvalue()
            else []
        )
        message = (
            str(error)
            if isinstance(error, checks.CheckFailed)
            else traceback.format_exception_only(error)[-1]
        )
        return "failed", [*outputs, _error_output(type(error).__name__, message.strip())]
    return "passed", [{"output_type": "stream", "name": "stdout", "text": printed.getvalue()}]
