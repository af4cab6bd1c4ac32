"""scripts/run_stacks.py: the floor stack pins what pyproject declares; a missing Python is named."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run_stacks.py"


@pytest.fixture(scope="module")
def stacks():
    spec = importlib.util.spec_from_file_location("run_stacks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_the_floor_stack_pins_each_declared_lower_bound(stacks, pyproject):
    pins = stacks.declared_floors(pyproject["project"])
    assert "tensorflow==2.16.1" in pins and "keras==3.7" in pins
    assert "ipywidgets==8.1" in pins and "ipywidgets==7.7.1" not in pins  # [lab]'s higher floor wins
    assert len(pins) == len({pin.split("==")[0] for pin in pins})
    with pytest.raises(ValueError, match="'numpy' in pyproject.toml needs exactly one '>=' lower bound"):
        stacks.declared_floors({"dependencies": ["numpy"], "optional-dependencies": {"lab": []}})


def test_a_missing_python_is_named_with_the_fix(stacks, monkeypatch):
    monkeypatch.setattr(stacks, "installed_pythons", lambda: {(3, 11): "/usr/bin/python3.11"})
    with pytest.raises(LookupError, match="needs Python 3.12, which is not installed.*pyenv install 3.12"):
        stacks.find_python(stacks.stacks()["colab"], ">=3.10")
    assert stacks.find_python(stacks.stacks()["newest"], ">=3.10") == "/usr/bin/python3.11"
