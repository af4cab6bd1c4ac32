"""lab_utils.progress: a progress line that stays readable when a notebook stores it."""

from __future__ import annotations

import io
import re

import pytest

from lab_utils.progress import Progress


def test_progress_is_one_line_without_escape_codes():
    stream = io.StringIO()
    bar = Progress(7, "IWAE, 7 images", stream=stream)
    for done in range(1, 8):
        bar.update(done)
    bar.update(7)  # a repeated last update adds nothing
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text and text.count("\n") == 1
    assert re.fullmatch(r"IWAE, 7 images:( \d+%){10} \(\d+ s\)\n", text)
    assert text.split(":")[1].split()[:10] == [f"{p}%" for p in range(10, 101, 10)]


def test_progress_jumps_show_every_step_once_and_bad_totals_are_named():
    stream = io.StringIO()
    bar = Progress(3, "judging", stream=stream)
    bar.update(2)
    bar.update(3)
    assert stream.getvalue().startswith("judging: 10% 20% 30% 40% 50% 60% 70% 80% 90% 100% (")
    with pytest.raises(ValueError, match="total=0"):
        Progress(0, "nothing")


def test_the_kit_uses_no_keras_progress_bar():
    """Keras' Progbar stored 1,980 escape codes in notebook 05 and 1,584 in 06."""
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "lab_utils"
    assert not [path.name for path in package.glob("*.py") if "Progbar" in path.read_text()]
