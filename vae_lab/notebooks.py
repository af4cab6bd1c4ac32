"""Execute the lab notebooks top to bottom on a fresh kernel and/or export them to HTML.

The run mode comes from VAE_LAB_MODE (`make run` sets full). With VAE_LAB_RETRAIN=1 each
model is trained anew once: the run sets VAE_LAB_RETRAIN_SINCE to its start for every kernel.
Execution uses nbclient; the export uses nbconvert's HTMLExporter on an inert copy of each
notebook (`safe_html.neutralise`: a student's notebook may hold HTML that would run in the
browser of whoever opens the export), and each page carries a Content-Security-Policy.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from vae_lab import RETRAIN_SINCE_VARIABLE, RETRAIN_VARIABLE, safe_html


def join_adjacent_streams(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Merge each run of adjacent stream outputs of one name (stdout, stderr) into one, as Jupyter shows them.

    A line printed piece by piece (`lab_utils.progress`) arrives as one output per piece; stored
    so, an HTML export or a repository's notebook view shows each piece on its own line.
    """
    for cell in notebook.cells:
        joined = []
        for output in cell.get("outputs", []):
            previous = joined[-1] if joined else None
            if (
                previous is not None
                and output["output_type"] == previous["output_type"] == "stream"
                and output["name"] == previous["name"]
            ):
                previous["text"] += output["text"]
            else:
                joined.append(output)
        if "outputs" in cell:
            cell["outputs"] = joined
    return notebook


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run one notebook on a fresh kernel in its own folder and return it with outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    join_adjacent_streams(notebook)
    print(f"{path.name}: executed in {time.perf_counter() - started:.1f} s", flush=True)
    return notebook


def export_html(notebook: nbformat.NotebookNode, target: Path) -> Path:
    """Write an inert copy of `notebook` as an HTML page with a Content-Security-Policy; return `target`."""
    inert = copy.deepcopy(notebook)
    safe_html.neutralise(inert)
    body, _ = HTMLExporter().from_notebook_node(inert)
    target.write_text(safe_html.with_content_security_policy(body), encoding="utf-8")
    return target


def run(
    paths: list[Path],
    write: bool = False,
    html: Path | None = None,
    html_only: Path | None = None,
    timeout: int = 1200,
) -> None:
    """Execute each notebook, write its outputs back (`write`) and/or export it to HTML in `html`.

    With `html_only`, nothing runs: the notebooks are exported to that folder as they are.
    """
    if os.environ.get(RETRAIN_VARIABLE) and not os.environ.get(RETRAIN_SINCE_VARIABLE):
        # each kernel retrains a model saved before now and loads one saved since (by an earlier notebook)
        os.environ[RETRAIN_SINCE_VARIABLE] = str(time.time())
    html_folder = html_only or html
    if html_folder:
        html_folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        notebook = nbformat.read(path, as_version=4) if html_only else execute(path, timeout)
        if write and not html_only:
            nbformat.write(notebook, path)
        if html_folder:
            target = export_html(notebook, html_folder / path.with_suffix(".html").name)
            print(f"{path.name}: exported to {target}")
