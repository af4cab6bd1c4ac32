"""The committed notebooks: the write-up's sections, no errors, checked outputs, outputs from a full run.

nbval executes each notebook in fast mode (see pyproject.toml's addopts); these tests read
the committed files.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from vae_lab import SECTIONS
from vae_lab.bundle import default_name

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_lab_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS][:2] == ["01_mnist_data.ipynb", "02_vae_lab.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_the_write_up_sections_in_order(path):
    headings = [
        line[3:].strip()
        for cell in _cells(path)
        if cell["cell_type"] == "markdown"
        for line in _source(cell).splitlines()
        if line.startswith("## ")
    ]
    assert [heading for heading in headings if heading in SECTIONS] == list(SECTIONS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_outputs_are_complete_and_error_free(path):
    code = [cell for cell in _cells(path) if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] for cell in code), "every code cell must have been run"
    counts = [cell["execution_count"] for cell in code]
    assert counts == list(range(1, len(code) + 1)), "cells must come from one top-to-bottom run"
    outputs = [output for cell in code for output in cell["outputs"]]
    assert not [output for output in outputs if output["output_type"] == "error"]
    stderr = [output["text"] for output in outputs if output.get("name") == "stderr"]
    assert not stderr, f"stderr in committed outputs: {stderr[:1]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_checked_cells_have_outputs_to_compare(path):
    checked = [cell for cell in _cells(path) if _source(cell).startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 2
    assert all(cell["outputs"] for cell in checked)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_outputs_come_from_a_full_mode_run(path):
    text = json.dumps([cell.get("outputs", []) for cell in _cells(path)])
    assert "mode='fast'" not in text and "run mode fast" not in text and "mode **fast**" not in text


@pytest.fixture(scope="module")
def repository(pyproject) -> str:
    return pyproject["project"]["urls"]["Repository"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_opens_with_colab_and_binder_badges(path, repository):
    title = _source(_cells(path)[0])
    slug = repository.removeprefix("https://github.com/")
    assert f"(https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name})" in title
    assert f"(https://mybinder.org/v2/gh/{slug}/main?labpath=notebooks%2F{path.name})" in title


def _run_launch_cell(path: Path, installed: bool, colab: bool) -> list[list[str]]:
    """Execute the notebook's first code cell with the import check and pip faked; return the pip commands."""
    import importlib.util
    import subprocess
    import sys
    from unittest import mock

    cell = next(cell for cell in _cells(path) if cell["cell_type"] == "code")
    calls = []
    modules = {"google.colab": mock.MagicMock()} if colab else {}
    with (
        mock.patch.object(importlib.util, "find_spec", return_value=object() if installed else None),
        mock.patch.object(subprocess, "run", side_effect=lambda command, **kwargs: calls.append(command)),
        mock.patch.dict(sys.modules, modules),
        mock.patch.dict(os.environ, {}),
    ):
        os.environ.pop("VAE_LAB_MODELS", None)
        exec(compile(_source(cell), str(path), "exec"), {})
        calls.append(os.environ.get("VAE_LAB_MODELS"))
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_first_cell_installs_the_kit_only_where_it_is_missing(path, repository, pyproject):
    models = pyproject["project"]["urls"]["Models"]  # the model bundle the course publishes
    assert models.startswith(f"{repository}/releases/download/") and models.endswith(default_name("full"))
    assert _run_launch_cell(path, installed=True, colab=True) == [models]
    requirement = f"vae-lab @ git+{repository}.git"
    [colab, bundle] = _run_launch_cell(path, installed=False, colab=True)
    assert colab[-4:] == ["install", "--quiet", "--no-deps", requirement]  # Colab has TensorFlow already
    assert bundle == models  # so Colab takes the trained models instead of training them
    [elsewhere, none] = _run_launch_cell(path, installed=False, colab=False)
    assert elsewhere[-3:] == ["install", "--quiet", requirement] and none is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_reads_mnist_the_default_way_so_colab_and_binder_download_it(path):
    calls = [line for cell in _cells(path) for line in _source(cell).splitlines() if "load_mnist(" in line]
    assert calls and all("load_mnist()" in line for line in calls if "import" not in line)


def _figure_helpers() -> set[str]:
    """The kit's public functions annotated to return a matplotlib Figure."""
    names = set()
    for module in (Path(__file__).resolve().parent.parent / "lab_utils").glob("*.py"):
        for node in ast.parse(module.read_text()).body:
            if (
                isinstance(node, ast.FunctionDef)
                and not node.name.startswith("_")
                and node.returns is not None
                and ast.unparse(node.returns).split(".")[-1] == "Figure"
            ):
                names.add(node.name)
    return names


def _parse(source: str) -> list[ast.stmt]:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines)).body


def _figure_calls(source: str, helpers: set[str]) -> int:
    """How many calls in a cell build a figure when it runs (not those in a function it defines)."""
    calls, nodes = 0, list(_parse(source))
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        calls += isinstance(node, ast.Call) and ast.unparse(node.func) in helpers
        nodes.extend(ast.iter_child_nodes(node))
    return calls


def _discarded_figures(source: str, helpers: set[str]) -> list[str]:
    """Calls in a cell that build a figure and throw it away: a statement that is not the cell's last."""
    body = _parse(source)
    return [
        ast.unparse(statement.value.func)
        for statement in body[:-1]
        if isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and ast.unparse(statement.value.func) in helpers
    ]


def test_the_figure_check_finds_a_figure_built_and_not_shown():
    helpers = {"show_image_rows", "plot_pixel_histogram"}
    assert _discarded_figures("show_image_rows(a)\nplot_pixel_histogram(b)\n", helpers) == ["show_image_rows"]
    assert _discarded_figures("display(show_image_rows(a))\nplot_pixel_histogram(b)\n", helpers) == []
    assert _discarded_figures("figure = show_image_rows(a)\nfigure\n", helpers) == []
    assert _figure_calls("display(show_image_rows(a))\nplot_pixel_histogram(b)\nprint(1)\n", helpers) == 2
    assert _figure_calls("def table():\n    display(show_image_rows(a))\n", helpers) == 0
    assert {"show_image_rows", "plot_loss_curves"} <= _figure_helpers()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_figure_a_cell_builds_is_shown(path):
    helpers = _figure_helpers()
    code = [(number, cell) for number, cell in enumerate(_cells(path)) if cell["cell_type"] == "code"]
    hidden = {
        f"cell {number}": calls
        for number, cell in code
        if (calls := _discarded_figures(_source(cell), helpers))
    }
    assert not hidden, f"figures built and never displayed (wrap them in display()): {hidden}"
    missing = {
        f"cell {number}": (calls, images)
        for number, cell in code
        if (calls := _figure_calls(_source(cell), helpers))
        > (images := sum("image/png" in output.get("data", {}) for output in cell["outputs"]))
    }
    assert not missing, (
        f"cells with fewer committed images than figures they build (calls, images): {missing}"
    )


_POINTER = re.compile(
    r"\b(?:figures?|plots?|bars|histograms?|maps?|grid|rows?|images?)\s+(above|below)\b"
    r"|\bthe (?:figure|plot|map|histogram|bars) (?:shows?|(above|below))\b",
    re.IGNORECASE,
)


def _pointed_at_figures_missing(cells: list[dict]) -> list[str]:
    """Markdown that points at a figure ("the figure below", "the bars above") with no image there.

    "below" and "the figure shows" look in the code cells up to the next heading; "above" in
    every code cell before.
    """

    def images(cell: dict) -> int:
        return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))

    missing = []
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for match in _POINTER.finditer(_source(cell)):
            if "above" in match.group(0).lower():
                found = any(images(earlier) for earlier in cells[:number])
            else:
                later = []
                for following in cells[number + 1 :]:
                    if following["cell_type"] == "markdown" and _source(following).lstrip().startswith("#"):
                        break
                    later.append(following)
                found = any(images(following) for following in later)
            if not found:
                missing.append(f"cell {number}: {match.group(0)!r}")
    return missing


def test_the_pointer_check_finds_a_figure_the_text_promises_and_no_cell_shows():
    def markdown(text):
        return {"cell_type": "markdown", "source": text}

    def code(pictures):
        return {"cell_type": "code", "source": "", "outputs": [{"data": {"image/png": ""}}] * pictures}

    assert _pointed_at_figures_missing([markdown("The figure shows it."), code(0)]) == [
        "cell 0: 'The figure shows'"
    ]
    assert _pointed_at_figures_missing([markdown("The figure shows it."), code(1)]) == []
    assert _pointed_at_figures_missing([markdown("The plot below"), markdown("## Next"), code(1)]) == [
        "cell 0: 'The plot below'"
    ]
    assert _pointed_at_figures_missing([code(1), markdown("## Observations\nThe bars above show")]) == []
    assert _pointed_at_figures_missing([code(0), markdown("The bars above show")]) == [
        "cell 1: 'The bars above'"
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_figure_the_text_points_at_is_shown(path):
    missing = _pointed_at_figures_missing(_cells(path))
    assert not missing, f"text points at a figure that no cell there shows: {missing}"


_MACHINE_PATH = re.compile(r"(?<![\w.~])(?:/(?:home|Users|work|tmp|root|opt|mnt|var|srv)/|[A-Z]:\\)")


def _stored_text(cell: dict) -> str:
    """Every text a cell's stored outputs hold: streams, plain text, HTML, Markdown (not images)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                parts.append("".join(value))
        parts.extend(output.get("traceback", []))
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_outputs_read_cleanly_outside_jupyterlab(path):
    """What a repository host or an HTML export shows: no terminal escape codes (Keras' progress bars
    and rich summaries stored 3,700 of them), no absolute path of the machine that made the run."""
    escaped = [number for number, cell in enumerate(_cells(path)) if "\x1b[" in _stored_text(cell)]
    assert not escaped, f"cells whose outputs hold terminal escape codes: {escaped}"
    machine = {
        number: _MACHINE_PATH.search(text).group(0)
        for number, cell in enumerate(_cells(path))
        if _MACHINE_PATH.search(text := _stored_text(cell))
    }
    assert not machine, f"cells whose outputs name a path of the machine that ran them: {machine}"


_MACHINERY = re.compile(r"\b(config|get_run_config|RunConfig|artifacts_dir|artifacts|retrain|RETRAIN)\b")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_code_cells_speak_of_the_lesson(path):
    """No run-mode object, artifact folder or retrain flag in a code cell (the run's sizes come in one
    import line of `lab_utils.sizes`), no code cell over 30 lines, and no notebook restates a model's
    recipe: models come by name from `lab_utils.trained`."""
    code = [_source(cell) for cell in _cells(path) if cell["cell_type"] == "code"]
    lines = [line for source in code for line in source.splitlines()]
    assert [line for line in lines if _MACHINERY.search(line)] == []
    assert len([line for line in lines if "lab_utils.sizes" in line]) <= 1
    lengths = {number: len(source.splitlines()) for number, source in enumerate(code)}
    assert {number: length for number, length in lengths.items() if length > 30} == {}
    assert not [line for line in lines if "Experiment(" in line or "build_vae(" in line]


def test_notebook_02_builds_compiles_and_fits_the_lab_model_on_the_page():
    """The lab's central act in the student's view: the encoder and decoder built on the page are
    wrapped, compiled and fitted there, and the committed (full-mode) run shows every epoch's line."""
    cells = [cell for cell in _cells(NOTEBOOKS[1]) if cell["cell_type"] == "code"]
    code = "\n".join(_source(cell) for cell in cells)
    assert "encoder = build_encoder(" in code and "decoder = build_decoder(" in code
    assert "vae = VAE(encoder, decoder" in code and "vae.compile(optimizer=keras.optimizers.Adam(" in code
    fit = next(cell for cell in cells if "vae.fit(" in _source(cell))
    assert 'trained.keep("lab")' in _source(fit) and len(_source(fit).splitlines()) <= 12
    said = _stored_text(fit)
    epochs = 10  # full mode's (lab_utils.config)
    assert [f"Epoch {epoch}/{epochs}" in said for epoch in range(1, epochs + 1)] == [True] * epochs
    assert "Saved the trained model to artifacts/full/vae_lab.keras." in said
    # the live view's last state, stored as an ordinary image (issue 32)
    pictures = [output for output in fit["outputs"] if "image/png" in output.get("data", {})]
    assert "TrainingView(" in _source(fit) and len(pictures) == 1


_EXPLORERS = "LatentExplorer|InterpolationExplorer|ReconstructionBrowser|SamplerExplorer|ConditionalGenerator"
_EXPLORER = re.compile(rf"^({_EXPLORERS})\(", re.MULTILINE)


@pytest.mark.parametrize("name", ["03_generate_and_explore.ipynb", "05_experiments.ipynb",
                                  "07_what_the_elbo_hides.ipynb"])
def test_the_html_export_shows_a_picture_where_each_explorer_is(name, tmp_path):
    """An HTML export (what instructors read; a repository view and a PDF alike) cannot run a widget:
    each explorer's output carries a picture of it, which the export shows in its place."""
    pytest.importorskip("nbconvert")
    pytest.importorskip("nh3", reason="the kit's export makes pages inert with nh3, from the [lab] extra")
    import nbformat

    from vae_lab.notebooks import export_html

    notebook = nbformat.read(NOTEBOOKS[0].parent / name, as_version=4)
    page = export_html(notebook, tmp_path / "page.html").read_text()
    cells = page.split('<div class="jp-Cell ')[1:]
    assert len(cells) == len(notebook.cells)
    explorers = [number for number, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and _EXPLORER.search(cell.source)]
    assert explorers and [number for number in explorers if "<img" not in cells[number]] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_figure_has_a_line_saying_what_to_look_for(path):
    """Under each figure a student reads what to look for (the explorers have their own text above
    them; the exercises' figures are the student's own)."""
    cells = _cells(path)
    headings = [number for number, cell in enumerate(cells) if _source(cell).startswith("## Your turn")]
    end = headings[0] if headings else len(cells)
    figures = [
        number
        for number, cell in enumerate(cells[:end])
        if cell["cell_type"] == "code"
        and any("image/png" in output.get("data", {}) and WIDGET_VIEW not in output.get("data", {})
                for output in cell["outputs"])
    ]
    uncaptioned = [number for number in figures
                   if not _source(cells[number + 1]).startswith("*What to look for:* ")]
    assert figures and uncaptioned == []


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
