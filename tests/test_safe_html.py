"""vae_lab/safe_html.py: a student's notebook is made inert before it becomes HTML; the CSV guard.

The real-browser proof (Formgrader, feedback, exports in Chromium) is tests/test_grading_browser.py;
these tests pin each rule on its own, on notebooks built here.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nh3", reason="nh3 comes with the [lab] extra")
from nbconvert import HTMLExporter  # noqa: E402
from nbconvert.filters.markdown import markdown2html  # noqa: E402

from vae_lab import safe_html  # noqa: E402
from vae_lab.tables import spreadsheet_safe  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

PLAIN_MARKDOWN = (
    "## What the KL term does\n\n"
    "It is $\\frac{1}{2}\\sum_j (\\mu_j^2 + \\sigma_j^2 - 1 - \\log\\sigma_j^2)$, and $a < b$ here.\n\n"
    "| epoch | KL |\n| ---: | ---: |\n| 1 | 4.2 |\n\n"
    "See [the paper](https://arxiv.org/abs/1312.6114) and `history['kl_loss']`; data: MNIST.\n\n"
    "```python\nprint(1 < 2)\n```\n"
)


KERNEL = {"name": "python3", "display_name": "Python 3"}


def notebook_with(*cells, **metadata) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=list(cells), metadata=metadata)
    nbformat.validate(notebook)
    return notebook


def render(notebook) -> str:
    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


@pytest.mark.parametrize(
    ("markdown", "parts"),
    [
        ('<img src="x" onerror="alert(1)">', ["onerror="]),
        ("<script>alert(1)</script>", ["<script>"]),
        ('<svg onload="alert(1)"></svg>', ["<svg>", "onload="]),
        ("[notes](javascript:alert(1))", ["javascript: URL"]),
        ("[notes](jav&#x61;script:alert(1))", ["javascript: URL"]),
        ("[notes](java\tscript:alert(1))", ["javascript: URL"]),
        # what the adversarial review found: mistune unescapes \: and decodes entities twice
        ("[notes](javascript\\:alert(1))", ["javascript: URL"]),
        ("[notes](javascript&amp;#58;alert(1))", ["javascript: URL"]),
        ("[notes](&amp;#106;avascript&amp;colon;alert(1))", ["javascript: URL"]),
        ("[r][r]\n\n[r]:\n    java&amp;Tab;script\\:alert(1)", ["javascript: URL"]),
        ("[notes](data\\:text/html,hi)", ["data: URL"]),
        ('<a href="data:text/html,hi">x</a>', ["data: URL"]),
        ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', ["<iframe>", "<script>"]),
        ('<details open ontoggle="alert(1)"><summary>x</summary></details>', ["ontoggle="]),
        ('<!--><img src=x onerror="alert(1)">-->', ["onerror="]),  # hidden from Python's parser
        ('<meta http-equiv="refresh" content="0;url=/x">', ["<meta>"]),
        ('<base href="/x/">', ["<base>"]),
        ("<style>body { display: none }</style>", ["<style>"]),
        ('<form action="/x"><button>Go</button></form>', ["<form>", "<button>"]),
        ("$\\href{javascript:alert(1)}{x}$", ["javascript: URL"]),
    ],
)
def test_active_markdown_is_shown_as_text_and_named(markdown, parts):
    source = f"My answer.\n\n{markdown}"
    notebook = notebook_with(nbformat.v4.new_markdown_cell(source))
    findings = safe_html.neutralise(notebook)
    assert findings == {"cell 1": parts}
    shown = notebook.cells[0].source
    assert shown.startswith("**Shown as text by the grader:** this cell holds markup (")
    assert f"```text\n{source}\n```" in shown  # exactly what the student wrote, in a code block
    assert safe_html.active_markup(markdown2html(shown)) == []  # as nbconvert's templates render it
    assert "My answer." in render(notebook)


@pytest.mark.parametrize(
    "markdown",
    [
        "```mermaid\ngraph TD; A-->B\n```",  # mermaid would draw it, with any CSS its init block asks for
        "<details>more</details>",
        "<font color=red>red</font>",
        '<b class="modal-backdrop">x</b>',
        "`np.where(loss<best)`",  # a browser would not read it as a tag, but the text rule is blunt
    ],
)
def test_markup_plain_markdown_does_not_make_is_shown_as_text_without_a_flag(markdown):
    notebook = notebook_with(nbformat.v4.new_markdown_cell(markdown))
    assert safe_html.neutralise(notebook) == {}
    assert notebook.cells[0].source.startswith("**Shown as text by the grader:** this cell holds markup (")


def test_a_fence_is_longer_than_any_backtick_run_in_the_answer():
    source = "<b>x</b>\n```` ``` \n"
    shown = safe_html.as_text(source, "why")
    assert "`````text\n" + source + "\n`````\n" in shown


@pytest.mark.parametrize(
    "markdown",
    [
        PLAIN_MARKDOWN,
        "Autolinks <https://arxiv.org/abs/1312.6114> and <me@example.org>; $x < y$ and $a<b$.",
        "Use <b>bold</b>, a break<br>and H<sub>2</sub>O.",
        "- [ ] a task\n- [x] done",
        "In JavaScript: closures; data:train/test.",
    ],
)
def test_plain_markdown_math_tables_links_and_code_stay_as_written(markdown):
    notebook = notebook_with(nbformat.v4.new_markdown_cell(markdown))
    assert safe_html.neutralise(notebook) == {}
    assert notebook.cells[0].source == markdown


def test_plain_markdown_renders_its_table_and_link():
    page = render(notebook_with(nbformat.v4.new_markdown_cell(PLAIN_MARKDOWN)))
    assert "<table>" in page and '<a href="https://arxiv.org/abs/1312.6114">' in page


def test_the_release_own_markdown_is_trusted():
    released = "Course text with <details>HTML</details> the instructor wrote."
    notebook = notebook_with(nbformat.v4.new_markdown_cell(released))
    assert safe_html.neutralise(notebook, trusted_markdown={released}) == {}
    assert notebook.cells[0].source == released


def test_the_notice_names_what_it_found_in_code_spans_so_it_is_not_markup_again():
    notebook = notebook_with(nbformat.v4.new_markdown_cell("<script>alert(1)</script>"))
    safe_html.neutralise(notebook)
    assert "(`<script>`)" in notebook.cells[0].source
    assert "<script>alert" not in render(notebook)


def test_nbgrader_marks_with_markup_are_dropped_and_named():
    marks = {"grade": True, "solution": True, "points": 1, "grade_id": 'x"><img src=x onerror=alert(1)>'}
    notebook = notebook_with(nbformat.v4.new_markdown_cell("answer", metadata={"nbgrader": marks}))
    assert safe_html.neutralise(notebook) == {"cell 1": ["nbgrader marks with markup"]}
    assert notebook.cells[0].metadata == {}


def _output_cell(*outputs) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("show()", execution_count=1)
    cell.outputs = [nbformat.from_dict(output) for output in outputs]
    return cell


def _display(data, metadata=None) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def test_outputs_keep_text_and_figures_and_lose_what_can_run():
    png = base64.b64encode(b"\x89PNG fake").decode()
    cell = _output_cell(
        {"output_type": "stream", "name": "stdout", "text": "<b>printed</b>\n"},
        _display({"text/plain": "x", "image/png": png}, {"image/png": {"width": '1" onerror="alert(1)'}}),
        _display({"text/html": '<pre style="font-weight: bold">ok</pre><img src=x onerror="alert(1)">'}),
        _display({"application/javascript": "alert(1)"}),
        _display({"image/svg+xml": '<svg onload="alert(1)"/>'}),
        _display({"image/png": 'x"><img src=x onerror="alert(1)">'}),
        _display({"application/vnd.jupyter.widget-view+json": {"model_id": "w", "version_major": 2}}),
        _display({"text/markdown": "<img src=x onerror=alert(1)>"}),
        _display({"text/html": "<style scoped>.dataframe td {}</style><table><tr><td>1</td></tr></table>"}),
    )
    notebook = notebook_with(cell)
    findings = safe_html.neutralise(notebook)
    assert findings == {"cell 1": ["onerror=", "application/javascript", "onload="]}
    stream, figure, html, script, svg, bad_png, widget, markdown, table = notebook.cells[0].outputs
    assert stream.text == "<b>printed</b>\n"  # nbconvert escapes streams
    assert figure.data == {"text/plain": "x", "image/png": png} and figure.metadata == {}
    assert html.data["text/html"] == '<pre style="font-weight:bold">ok</pre><img>'
    assert script.data == {"text/plain": "[output removed by the grader: application/javascript]"}
    assert svg.data == {"text/plain": "[output removed by the grader: image/svg+xml]"}
    assert bad_png.data == {"text/plain": "[output removed by the grader: image/png]"}
    assert widget.data == {
        "text/plain": "[output removed by the grader: application/vnd.jupyter.widget-view+json]"
    }
    assert markdown.data["text/markdown"].startswith("**Shown as text by the grader:**")
    assert "<style" not in table.data["text/html"] and "<table>" in table.data["text/html"]
    nbformat.validate(notebook)
    assert "alert(1)" not in render(notebook).split("Shown as text")[0]


def test_raw_cells_attachments_tags_and_notebook_metadata():
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').decode()
    png = base64.b64encode(b"\x89PNG fake").decode()
    raw = nbformat.v4.new_raw_cell('<img src=x onerror="alert(1)">', metadata={"raw_mimetype": "text/html"})
    attached = nbformat.v4.new_markdown_cell(
        "![a](attachment:a.svg) ![b](attachment:b.png)",
        metadata={"tags": ['x"><img src=x onerror=alert(1)>']},
        attachments={"a.svg": {"image/svg+xml": svg}, "b.png": {"image/png": png}},
    )
    notebook = notebook_with(
        raw,
        attached,
        title="</title><script>alert(1)</script>",
        widgets={"state": {}},
        kernelspec=KERNEL,
    )
    findings = safe_html.neutralise(notebook)
    assert findings == {"cell 1": ["onerror="], "cell 2": ["onload="]}  # the tag is dropped, not flagged
    assert notebook.cells[0].source == "[raw cell holding HTML: removed by the grader]"
    assert notebook.cells[0].metadata == {} and notebook.cells[1].metadata == {}
    assert set(notebook.cells[1].attachments) == {"b.png"}
    assert dict(notebook.metadata) == {"kernelspec": KERNEL}
    assert "<script>alert" not in render(notebook)


def test_a_missing_attachment_is_shown_as_text_instead_of_stopping_the_page():
    for source in ("A figure: ![d](attachment:gone.png)", "A figure: ![d](attachment\\:gone.png)"):
        notebook = notebook_with(nbformat.v4.new_markdown_cell(source))
        assert safe_html.neutralise(notebook) == {}
        assert "this cell shows an attachment it does not carry" in notebook.cells[0].source
        assert "A figure:" in render(notebook)  # nbconvert raised InvalidNotebook on the original


def test_nbgrader_marks_name_the_cell_and_stay():
    marks = {"grade": True, "grade_id": "answer_kl_share", "points": 2, "solution": True, "locked": False}
    cell = nbformat.v4.new_markdown_cell("<script>x</script>", metadata={"nbgrader": marks, "tags": ["t"]})
    notebook = notebook_with(cell)
    assert safe_html.describe(safe_html.neutralise(notebook)) == (
        "flagged: active HTML in answer_kl_share (<script>)"
    )
    assert notebook.cells[0].metadata == {"nbgrader": marks}
    assert safe_html.describe({}) == ""


@pytest.mark.parametrize(
    "path", sorted((REPO / "notebooks").glob("[0-9]*.ipynb")), ids=lambda path: path.stem
)
def test_the_kit_notebooks_keep_their_text_and_figures(path):
    notebook = nbformat.read(path, as_version=4)
    before = copy.deepcopy(notebook)
    assert safe_html.neutralise(notebook) == {}
    for old, new in zip(before.cells, notebook.cells):
        assert new.source == old.source
        for old_output, new_output in zip(old.get("outputs", []), new.get("outputs", [])):
            for mime in ("text/plain", "image/png", "text/markdown"):
                assert new_output.get("data", {}).get(mime) == old_output.get("data", {}).get(mime)


def test_the_policy_is_the_first_thing_in_the_head():
    page = safe_html.with_content_security_policy("<html><head><title>t</title></head><body></body></html>")
    assert page.startswith('<html><head>\n<meta http-equiv="Content-Security-Policy" content="default-src')
    assert "script-src https://cdnjs.cloudflare.com 'unsafe-eval'" in page and "img-src data:" in page
    with pytest.raises(ValueError, match="no <head>"):
        safe_html.with_content_security_policy("<p>no head</p>")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+cmd", "'+1+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-3.5", "-3.5"),
        ("graded", "graded"),
        (9.0, 9.0),
        (None, None),
    ],
)
def test_table_cells_that_would_start_a_formula_are_shown_as_text(value, shown):
    assert spreadsheet_safe(value) == shown


def test_html_outputs_cannot_borrow_the_page_classes():
    cell = _output_cell(
        _display({"text/html": '<div class="modal-backdrop jp-Dialog" style="color: red">x</div>'})
    )
    notebook = notebook_with(cell)
    assert safe_html.neutralise(notebook) == {}
    assert notebook.cells[0].outputs[0].data["text/html"] == '<div style="color:red">x</div>'


def test_markdown_outputs_follow_the_markdown_rule():
    cell = _output_cell(
        _display({"text/markdown": "[x](javascript\\:alert(1))"}), _display({"text/markdown": "**ok**"})
    )
    notebook = notebook_with(cell)
    assert safe_html.neutralise(notebook) == {"cell 1": ["javascript: URL"]}
    active, plain = notebook.cells[0].outputs
    assert active.data["text/markdown"].startswith("**Shown as text by the grader:**")
    assert plain.data["text/markdown"] == "**ok**"
