"""environment.yml (conda) installs exactly what pyproject.toml declares for students."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_mirrors_pyproject(pyproject):
    project = pyproject["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["lab"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    assert "python=3.11" in conda and "pip" in conda
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert "-e .[lab]" in pip_section, "environment.yml must install the kit itself"
    listed = sorted(_normalise(line) for line in pip_section if not line.startswith("-e"))
    assert listed == sorted(_normalise(line) for line in expected), (
        "environment.yml's pip list and pyproject.toml's dependencies + [lab] extra differ; "
        "update one to match the other"
    )
