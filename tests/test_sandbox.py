"""Attacks and faults on the grading sandbox (vae_lab/sandbox.py): each is an answer cell a student
could hand in, graded against the real check of exercise 1; its success would show in the score
or in a file outside the sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vae_lab import sandbox

MODEL = (
    "def reparameterise(z_mean, z_log_var, epsilon):\n    return z_mean + np.exp(0.5 * z_log_var) * epsilon\n"
)
CHECK = (
    "checks.check_reparameterise(reparameterise)\n### BEGIN HIDDEN TESTS\n"
    "checks.check_reparameterise(reparameterise, seed=2024, shape=(64, 20))\n### END HIDDEN TESTS\n"
)
FAST = sandbox.Limits(seconds=4)

if sandbox.bubblewrap() is None:
    reason = "bubblewrap is not installed: apt-get install bubblewrap"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def grade(
    answer: str, tmp_path: Path, limits: sandbox.Limits = FAST, unsafe: bool = False
) -> tuple[str, str]:
    names = sandbox.defined_names(MODEL)
    status, outputs = sandbox.run_check(CHECK, answer, names, {}, tmp_path / "work", limits, unsafe)
    return status, " ".join(output.get("text") or output.get("evalue", "") for output in outputs)


def answer_then(attack: str) -> str:
    """A right answer whose cell first tries `attack` (and carries on whatever happens)."""
    return f"try:\n    {attack}\nexcept Exception:\n    pass\n" + MODEL


@pytest.mark.parametrize("unsafe", [False, True], ids=["sandbox", "unsafe"])
def test_a_right_answer_passes_the_visible_and_hidden_checks(tmp_path, unsafe):
    status, text = grade(MODEL, tmp_path, unsafe=unsafe)
    assert status == "passed", text
    assert "2,000 random" in text and "1,280 random" in text  # the hidden test ran too


def test_a_wrong_answer_gets_the_checks_own_diagnosis(tmp_path):
    status, text = grade(MODEL.replace("0.5 * z_log_var", "z_log_var"), tmp_path)
    assert status == "failed" and "variance" in text


def test_patching_the_checks_inside_the_answer_cell_scores_nothing(tmp_path):
    cheat = (
        "from lab_utils import checks\n"
        "for name in dir(checks):\n"
        "    if name.startswith('check_'):\n"
        "        setattr(checks, name, lambda *args, **kwargs: print('✓ right'))\n"
        "print('✓ reparameterise is right')\n"
        "def reparameterise(z_mean, z_log_var, epsilon):\n    return None\n"
    )
    status, text = grade(cheat, tmp_path, sandbox.Limits(seconds=60))  # importing lab_utils loads Keras
    assert status == "failed" and "returned None" in text


@pytest.mark.parametrize(
    "cell, reason",
    [
        ("while True:\n    pass\n", "endless loop"),
        ("import time\ntime.sleep(600)\n", "sleeps past the time limit"),
        (MODEL.replace("    return", "    while True:\n        pass\n    return"), "function never returns"),
    ],
)
def test_an_answer_that_never_finishes_is_stopped_at_the_time_limit(tmp_path, cell, reason):
    started = time.monotonic()
    status, text = grade(cell, tmp_path)
    assert status == "timeout" and "within 4 s" in text, reason
    assert time.monotonic() - started < FAST.seconds + 5
    assert not workers(), "the stopped answer's processes are still running"


def workers() -> list[str]:
    """Running processes of answer_worker.py (the grading sandbox's Python)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"answer_worker.py" in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            pass
    return found


def test_printing_100_mb_is_cut_at_the_output_limit(tmp_path):
    status, text = grade("print('x' * (100 << 20))\n" + MODEL, tmp_path)
    assert status == "failed" and "output limit" in text
    assert (tmp_path / "work" / "output.txt").stat().st_size <= FAST.output


def test_a_fork_loop_is_bounded_by_the_process_limit(tmp_path):
    fork_loop = (
        "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\n"
    )
    started = time.monotonic()
    status, text = grade(fork_loop, tmp_path)
    assert status == "failed" and "BlockingIOError" in text  # fork refused: the loop ends by itself
    assert time.monotonic() - started < FAST.seconds


def test_memory_beyond_the_limit_is_refused(tmp_path):
    status, text = grade("hoard = bytearray(16 << 30)\n" + MODEL, tmp_path)
    assert status == "failed" and "MemoryError" in text


def test_a_python_that_exits_is_a_crash_not_a_pass(tmp_path):
    status, text = grade("import os\nos._exit(0)\n", tmp_path)
    assert status == "crash" and "exit status" in text


def test_the_course_and_other_students_are_not_visible(tmp_path):
    secret = tmp_path / "course" / "source" / "solutions.txt"
    secret.parent.mkdir(parents=True)
    secret.write_text("the model answers")
    reads_secret = MODEL.replace("    return", f"    open({str(secret)!r}).read()\n    return")
    status, text = grade(reads_secret, tmp_path)
    assert status == "failed" and "FileNotFoundError" in text


def test_nothing_outside_the_working_folder_can_be_written(tmp_path):
    import lab_utils

    targets = [
        tmp_path / "outside.txt",
        Path(lab_utils.__file__).parent / "planted.py",
        Path("/tmp/planted.txt"),
    ]
    attack = "; ".join(f"open({str(target)!r}, 'w').write('x')" for target in targets)
    status, text = grade(answer_then(attack.replace("; ", "\n    ")), tmp_path)
    assert status == "passed", text
    assert not [target for target in targets if target.exists()]


def test_no_network(tmp_path):
    connects = "import socket\n" + MODEL.replace(
        "    return", "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    return"
    )
    status, text = grade(connects, tmp_path)
    assert status == "failed" and "Network is unreachable" in text


def test_the_answer_runs_as_an_unprivileged_user_in_its_own_pid_namespace(tmp_path):
    probe = MODEL.replace(
        "    return",
        "    assert os.getuid() != 0 and os.getpid() < 10 and len(os.listdir('/proc')) < 80\n    return",
    )
    status, text = grade("import os\n" + probe, tmp_path)
    assert status == "passed", text
