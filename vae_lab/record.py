"""A student's lab record: an executed notebook as a PDF in the write-up's order, without its code.

The record keeps the notebook's text (Aim, Objectives, Algorithm, Pseudocode, Code, Observations,
Conclusion, Result) and every output (figures, tables, computed sentences, the exercises' checks),
under a title with the student's name or id. Code is left out, so no solution code reaches the
record; the page is made inert like every export (`safe_html`). Chromium prints it (Debian's
`/usr/bin/chromium`, or `$CHROMIUM`, driven by the playwright package). Where either is missing,
the HTML page is written instead and the message says how to print it.
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from vae_lab import SECTIONS, safe_html

BADGES = "[![Open In Colab]"  # the first cell's line of launch badges
# MathJax has typeset the page, or is not there (not loaded, or kept out by the page's policy).
MATHJAX_DONE = """() => !window.MathJax || (MathJax.isReady && MathJax.Hub.queue.pending === 0
                                            && MathJax.Hub.queue.running === 0)"""


def chromium() -> Path | None:
    """The Chromium that prints records: $CHROMIUM, else Debian's, else one on PATH; None if there is none."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def record_page(notebook: nbformat.NotebookNode, student: str, title: str) -> str:
    """The record as one inert HTML page: a title with `student`, then the notebook without its code."""
    if not student.strip():
        raise ValueError("student is empty: pass the name or id the record shows, e.g. --student s1234567.")
    headings = [
        line[3:].strip()
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    missing = [section for section in SECTIONS if section not in headings]
    if missing:
        raise ValueError(f"{title} has no {', '.join(missing)} section; a record has the write-up's parts.")
    record = copy.deepcopy(notebook)
    for cell in record.cells:  # the Colab and Binder badges are for running the notebook, not for reading it
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            cell.source = "\n".join(line for line in lines if not line.startswith(BADGES))
    safe_html.neutralise(record)  # a student's outputs may hold HTML that would run where the record opens
    today = datetime.date.today().isoformat()
    heading = f"**Lab record** · {student.strip()} · {title} · {today}"
    record.cells.insert(0, nbformat.v4.new_markdown_cell(heading))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(record)
    return safe_html.with_content_security_policy(body)


def write_record(path: Path, student: str, target: Path, route=None) -> Path:
    """Print the record of the executed notebook at `path` to the PDF `target`; return what was written.

    Without Chromium or playwright the HTML page is written next to `target` instead, and returned.
    `route` (a playwright route handler for every request) lets a test serve MathJax offline.
    """
    notebook = nbformat.read(path, as_version=4)
    page = target.with_suffix(".html")
    target.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(record_page(notebook, student, path.stem), encoding="utf-8")
    browser = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if browser is None or sync_playwright is None:
        missing = "Chromium" if browser is None else "the playwright package"
        print(f"{missing} is not here, so no PDF: the record is {page}; print it to PDF from a browser.")
        return page
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(browser), headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = launched.new_page()
            if route is not None:
                tab.route(lambda url: not url.startswith("file:"), route)
            tab.goto(page.resolve().as_uri(), wait_until="load")
            tab.wait_for_function(MATHJAX_DONE, timeout=60_000)
            tab.pdf(path=str(target), format="A4", print_background=True,
                    margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"})
        finally:
            launched.close()
    page.unlink()
    print(f"The lab record of {path.name} for {student.strip()}: {target}")
    return target
