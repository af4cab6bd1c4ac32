"""environment.yml (conda) installs the kit as pyproject.toml declares it, on a Python it allows."""

from __future__ import annotations

from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_kit_with_its_lab_extra(pyproject):
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    assert "pip" in conda
    [python] = [item.split("=", 1)[1] for item in conda if item.startswith("python=")]
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(f"{python}.0")
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert pip_section == ["-e .[lab]"], "versions belong in pyproject.toml only"
