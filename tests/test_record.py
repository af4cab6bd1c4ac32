"""vae-lab record: a student's executed notebook as a PDF lab record, in the write-up's order, without code.

Printed by Debian's Chromium (through playwright), with MathJax served from npm's copy, as the
grading browser test serves it. The PDF goes to BROWSER_ARTIFACTS (default: build/test-artifacts/).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nh3", reason="vae-lab record makes the page inert with nh3, from the [lab] extra")

from tests.browsing import CHROMIUM, serve_mathjax  # noqa: E402
from vae_lab import record  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "02_vae_lab.ipynb"


def test_a_record_names_the_student_and_refuses_a_notebook_without_the_write_ups_sections():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.raises(ValueError, match="student is empty"):
        record.record_page(notebook, "  ", "02_vae_lab")
    page = record.record_page(notebook, "s1234567", "02_vae_lab")
    assert "s1234567" in page and "Content-Security-Policy" in page
    assert "vae.fit(" not in page and "### BEGIN SOLUTION" not in page  # no code, no solution
    assert "colab-badge" not in page  # a badge's picture would not load where the record is read
    for cell in notebook.cells:
        cell.source = cell.source.replace("## Observations", "## Notes")
    with pytest.raises(ValueError, match="no Observations section"):
        record.record_page(notebook, "s1234567", "02_vae_lab")


@pytest.mark.browser
def test_the_record_of_notebook_02_is_a_pdf_with_its_sections_and_figures(tmp_path, mathjax):
    pypdf = pytest.importorskip("pypdf")
    pytest.importorskip("playwright")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    written = record.write_record(NOTEBOOK, "s1234567", tmp_path / "record.pdf", route=serve_mathjax(mathjax))
    assert written == tmp_path / "record.pdf" and not (tmp_path / "record.html").exists()
    pages = pypdf.PdfReader(written).pages
    text = "\n".join(page.extract_text() for page in pages)
    assert "Lab record" in pages[0].extract_text() and "s1234567" in pages[0].extract_text()
    lines = [line.strip() for line in text.splitlines()]
    order = [lines.index(section) for section in record.SECTIONS]  # each a heading line of its own
    assert order == sorted(order)
    # every figure of the notebook is in the record (pictures of the live view, the curves, the digits)
    figures = sum(
        "image/png" in output.get("data", {})
        for cell in nbformat.read(NOTEBOOK, as_version=4).cells
        for output in cell.get("outputs", [])
    )
    assert sum(len(page.images) for page in pages) >= figures >= 3
    assert "def reparameterise" not in text and "vae.fit(" not in text  # no code
    assert not re.search(r"\\mathcal|\\log\\sigma", text), "MathJax did not typeset the maths"
    assert 5 <= len(pages) <= 20
    folder = Path(os.environ.get("BROWSER_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(written, folder / "record_02.pdf")


def test_the_command_names_the_pdf_after_the_notebook_and_a_safe_form_of_the_id(monkeypatch, tmp_path):
    from vae_lab import cli

    written = []
    monkeypatch.setattr(record, "write_record", lambda path, student, target: written.append(target))
    assert cli.main(["record", str(NOTEBOOK), "--student", "../Ann Lee"]) == 0
    assert written[0].name == "02_vae_lab_.._Ann_Lee.pdf" and written[0].parent.name == "records"
    with pytest.raises(SystemExit):
        cli.main(["record", str(tmp_path / "missing.ipynb"), "--student", "s1"])


def test_without_nh3_the_command_says_what_to_install(monkeypatch, capsys):
    """Colab installs the kit without its extras: `vae-lab record` then names nh3 instead of a traceback."""
    from vae_lab import cli

    monkeypatch.setattr(cli, "MISSING", "nh3")
    assert cli.main(["record", str(NOTEBOOK), "--student", "s1"]) == 2
    assert "needs nh3: pip install nh3" in capsys.readouterr().err
