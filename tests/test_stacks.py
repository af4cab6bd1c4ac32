"""vae_lab/stacks.py: the floor stack pins what pyproject declares; a missing Python is named."""

from __future__ import annotations

import pytest

from vae_lab import stacks


def test_the_floor_stack_pins_each_declared_lower_bound(pyproject):
    pins = stacks.declared_floors(pyproject["project"])
    assert "tensorflow==2.16.1" in pins and "keras==3.7" in pins
    assert "ipywidgets==8.1" in pins and "ipywidgets==7.7.1" not in pins  # [lab]'s higher floor wins
    assert len(pins) == len({pin.split("==")[0] for pin in pins})
    with pytest.raises(ValueError, match="'numpy' in pyproject.toml needs exactly one '>=' lower bound"):
        stacks.declared_floors({"dependencies": ["numpy"], "optional-dependencies": {"lab": []}})


def test_a_missing_python_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(stacks, "installed_pythons", lambda: {(3, 11): "/usr/bin/python3.11"})
    with pytest.raises(LookupError, match="needs Python 3.12, which is not installed.*pyenv install 3.12"):
        stacks.find_python(stacks.stacks()["colab"], ">=3.10")
    assert stacks.find_python(stacks.stacks()["newest"], ">=3.10") == "/usr/bin/python3.11"

