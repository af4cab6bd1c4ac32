"""Execute the lab notebooks top to bottom on a fresh kernel and/or export them to HTML.

  python scripts/run_notebooks.py --write              # execute, write outputs back into notebooks/
  python scripts/run_notebooks.py --html build/html    # execute (without writing back), export HTML
  python scripts/run_notebooks.py --html-only build/html   # export the committed outputs as they are

The run mode comes from VAE_LAB_MODE (`make run` sets full). Execution uses nbclient; the
export uses nbconvert's HTMLExporter on an inert copy of each notebook (`safe_html.neutralise`:
a student's notebook may hold HTML that would run in the browser of whoever opens the export),
and each page carries a Content-Security-Policy.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safe_html  # noqa: E402 - the sibling module, found through the line above

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run one notebook on a fresh kernel in its own folder and return it with outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    print(f"{path.name}: executed in {time.perf_counter() - started:.1f} s", flush=True)
    return notebook


def export_html(notebook: nbformat.NotebookNode, target: Path) -> Path:
    """Write an inert copy of `notebook` as an HTML page with a Content-Security-Policy; return `target`."""
    inert = copy.deepcopy(notebook)
    safe_html.neutralise(inert)
    body, _ = HTMLExporter().from_notebook_node(inert)
    target.write_text(safe_html.with_content_security_policy(body), encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--write", action="store_true", help="write the outputs back into the notebooks")
    parser.add_argument("--html", type=Path, help="export executed notebooks to HTML in this folder")
    parser.add_argument("--html-only", type=Path, help="export the notebooks as they are, without running")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    html_folder = args.html_only or args.html
    if html_folder:
        html_folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        notebook = nbformat.read(path, as_version=4) if args.html_only else execute(path, args.timeout)
        if args.write and not args.html_only:
            nbformat.write(notebook, path)
        if html_folder:
            target = export_html(notebook, html_folder / path.with_suffix(".html").name)
            print(f"{path.name}: exported to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
