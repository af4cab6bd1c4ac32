"""Make a student's notebook inert before anything renders it as HTML for a person to open.

nbconvert's `HTMLExporter` (and nbgrader's Formgrader and feedback templates built on it) put
markdown cells and `text/html` outputs into the page as they are, so HTML a student writes runs
in the browser of whoever opens the page: in Formgrader, the instructor's Jupyter origin.
nbconvert's own `sanitize_html` is no cure: its allowlist escapes headings, paragraphs, tables
and figures, and nbgrader's templates do not apply it to markdown cells.

`neutralise` rewrites the notebook instead, so every renderer gets inert input:
- a markdown cell the student wrote or changed that holds HTML is shown as text (a code block
  under a one-line notice), as the student wrote it; plain markdown, maths, tables, code,
  headings, links and figures render as before, and unchanged cells of the release are trusted;
- outputs keep plain text, PNG and JPEG figures, streams and errors; `text/html` is cleaned by
  nh3 (the ammonia sanitiser), markdown follows the markdown rule, anything else is dropped
  (JavaScript, SVG, widget views, LaTeX);
- raw cells with HTML, attachments that are not PNG/JPEG/GIF, cell and notebook metadata
  other than nbgrader's marks (tags, titles, widget state) are removed.
It returns what it found that could run code or restyle the page, so the grader can flag it.

`with_content_security_policy` adds a second line of defence to an HTML page the kit writes.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Collection
from html.parser import HTMLParser

import nh3

# Tags and attributes that can run code, load a page or restyle the page they are in.
# fmt: off
ACTIVE_TAGS = frozenset({
    "applet", "base", "button", "embed", "form", "frame", "frameset", "iframe", "input", "link", "math",
    "meta", "noscript", "object", "portal", "script", "select", "style", "svg", "template", "textarea",
})
URL_ATTRIBUTES = frozenset({
    "action", "background", "cite", "codebase", "data", "formaction", "href", "longdesc", "ping", "poster",
    "src", "srcdoc", "srcset", "xlink:href",
})
# fmt: on
SCRIPT_URL = re.compile(r"(?:java|vb)script:", re.IGNORECASE)
DOCUMENT_DATA_URL = re.compile(r"data:(?!image/(?:png|jpeg|gif)[;,])[\w.+-]+/[\w.+-]+", re.IGNORECASE)
# Anything a browser could read as the start of a tag, comment or declaration.
HTML_LIKE = re.compile(r"<[A-Za-z/!?]")
# The same, read from the text alone: a comment trick (`<!--><img onerror=...>-->`) hides a tag
# from Python's parser but not from a browser's.
ACTIVE_TAG_TEXT = re.compile(rf"<\s*({'|'.join(sorted(ACTIVE_TAGS))})[\s/>]", re.IGNORECASE)
EVENT_HANDLER_TEXT = re.compile(r"<[^>]*?[\s/\"']on([a-z]+)\s*=", re.IGNORECASE)
INVISIBLE = re.compile(r"[\x00-\x1f\x7f]")  # browsers drop tabs and newlines inside URL schemes
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
FIGURE_TYPES = ("image/png", "image/jpeg")
ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
OUTPUT_KEYS = frozenset(
    {"output_type", "name", "text", "data", "execution_count", "ename", "evalue", "traceback"}
)
# What text/html outputs keep (Keras' model summary is a <pre> of styled <span>s).
# fmt: off
HTML_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-family", "font-style", "font-weight", "line-height", "overflow-x",
    "text-align", "text-decoration", "white-space",
})
# fmt: on
SHOWN_AS_TEXT = "**Shown as text by the grader:** {why}. What the student wrote, unchanged:\n\n"
HOLDS_HTML = "this cell holds HTML{what}, which the course never renders from a student's notebook"
ATTACHMENT_REFERENCE = re.compile(r"attachment:([^\s)\"'<>`]+)")
# Scripts only from the CDN nbconvert's templates load MathJax from; MathJax 2 evaluates its
# inline configuration with window.eval ('unsafe-eval'), but no inline script or handler runs;
# figures are data: URLs, so no image is fetched from anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src https://cdnjs.cloudflare.com 'unsafe-eval'; "
    "style-src 'unsafe-inline' https://cdnjs.cloudflare.com; font-src https://cdnjs.cloudflare.com data:; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


class _ActiveParts(HTMLParser):
    """Collects the tags and attributes of an HTML text that can run code or restyle a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{name}=")
            elif name in URL_ATTRIBUTES and value and _unsafe_url(value):
                self.found.append("javascript: URL" if SCRIPT_URL.search(_url(value)) else "data: URL")

    handle_startendtag = handle_starttag


def _url(value: str) -> str:
    return INVISIBLE.sub("", html.unescape(value)).strip()


def _unsafe_url(value: str) -> bool:
    url = _url(value)
    return bool(SCRIPT_URL.match(url) or DOCUMENT_DATA_URL.match(url))


def active_markup(page: str) -> list[str]:
    """The elements and attributes of an HTML text that can run code or restyle a page, as parsed."""
    parser = _ActiveParts()
    parser.feed(page)
    parser.close()
    return parser.found


def active_parts(text: str) -> list[str]:
    """The parts of `text` (HTML, or markdown with HTML in it) that can run code or restyle a page."""
    found = active_markup(text)
    found += [f"<{tag.lower()}>" for tag in ACTIVE_TAG_TEXT.findall(text)]
    found += [f"on{name.lower()}=" for name in EVENT_HANDLER_TEXT.findall(text)]
    plain = _url(text)  # links written in markdown, and what a parser could read another way
    if SCRIPT_URL.search(plain):
        found.append("javascript: URL")
    if DOCUMENT_DATA_URL.search(plain):
        found.append("data: URL")
    return list(dict.fromkeys(found))


def _in_generated(text: str) -> list[str]:
    """What can run code in an output or attached file (matplotlib and pandas write <svg>, <style>)."""
    return [part for part in active_parts(text) if part not in ("<svg>", "<style>")]


def as_text(source: str, why: str) -> str:
    """Markdown that shows `source` verbatim in a code block, under a notice saying `why`."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    return SHOWN_AS_TEXT.format(why=why) + f"{fence}text\n{source}\n{fence}\n"


def _holds_html(found: list[str]) -> str:
    """The notice's reason; what was found goes in code spans, or `<script>` would be markup again."""
    return HOLDS_HTML.format(what=" (" + ", ".join(f"`{part}`" for part in found) + ")" if found else "")


def _clean_html(value: str) -> str:
    return nh3.clean(
        value,
        attributes={"*": {"class", "style", "title"}},
        filter_style_properties=HTML_STYLE_PROPERTIES,
        url_schemes={"http", "https", "mailto"},
    )


def _safe_output(output: dict) -> list[str]:
    """Make one output inert in place; return what in it was active."""
    found: list[str] = []
    for key in set(output) - OUTPUT_KEYS:
        del output[key]  # the output's metadata (image sizes, `isolated`) shapes the page's markup
    if "metadata" not in output and output["output_type"] in ("display_data", "execute_result"):
        output["metadata"] = {}  # nbformat requires it
    data = output.get("data")
    if data is None:
        return found
    kept = {}
    for mime, value in data.items():
        text = "".join(value) if isinstance(value, list) else value
        if not isinstance(text, str):
            continue
        if mime == "text/plain" or (mime in FIGURE_TYPES and BASE64.fullmatch(text)):
            kept[mime] = text
        elif mime == "text/html":
            found += _in_generated(text)
            kept[mime] = _clean_html(text)
        elif mime == "text/markdown":
            parts = active_parts(text)
            found += parts
            kept[mime] = as_text(text, _holds_html(parts)) if HTML_LIKE.search(text) or parts else text
        elif mime in ("application/javascript", "text/javascript"):
            found.append(mime)
        elif mime == "image/svg+xml":
            found += _in_generated(text)
    if not kept:
        kept["text/plain"] = f"[output removed by the grader: {', '.join(data) or 'empty'}]"
    output["data"] = kept
    return found


def neutralise(notebook, trusted_markdown: Collection[str] = ()) -> dict[str, list[str]]:
    """Make `notebook` (an nbformat node) inert in place; return {cell: what was active in it}.

    `trusted_markdown` holds markdown sources that stay as they are (the release's own cells).
    A cell is named by its nbgrader grade_id, else as "cell N" (counting from 1).
    """
    notebook.metadata = {
        key: notebook.metadata[key] for key in ("kernelspec", "language_info") if key in notebook.metadata
    }
    findings: dict[str, list[str]] = {}
    for number, cell in enumerate(notebook.cells, start=1):
        marks = cell.metadata.get("nbgrader")
        name = marks.get("grade_id", f"cell {number}") if isinstance(marks, dict) else f"cell {number}"
        cell.metadata = {"nbgrader": marks} if marks is not None else {}
        found: list[str] = []
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "markdown":
            found += _safe_markdown(cell, source, trusted_markdown)
        elif cell.cell_type == "raw":
            found += active_parts(source)
            if HTML_LIKE.search(source):
                cell.source = "[raw cell holding HTML: removed by the grader]"
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                found += _safe_output(output)
        if found:
            findings[name] = list(dict.fromkeys(found))
    return findings


def _safe_markdown(cell, source: str, trusted_markdown: Collection[str]) -> list[str]:
    """Make one markdown cell inert in place; return what in it was active."""
    found, kept = [], {}
    for filename, bundle in (cell.pop("attachments", None) or {}).items():
        for mime, value in bundle.items():
            if mime in ATTACHMENT_TYPES and isinstance(value, str) and BASE64.fullmatch(value):
                kept[filename] = {mime: value}
            else:
                found += _in_generated(_decoded(value))
    if kept:
        cell.attachments = kept
    if source in trusted_markdown:
        return found
    found += active_parts(source)
    missing = sorted(set(ATTACHMENT_REFERENCE.findall(source)) - set(kept))
    if HTML_LIKE.search(source) or found:
        cell.source = as_text(source, _holds_html(found))
    elif missing:  # nbconvert refuses to render a notebook whose cell shows an attachment it lacks
        names = ", ".join(f"`{name}`" for name in missing)
        cell.source = as_text(source, f"this cell shows attachments it does not carry ({names})")
    return found


def _decoded(value) -> str:
    """An attachment's text: base64 decoded when it is base64, as it is otherwise."""
    text = "".join(value) if isinstance(value, list) else str(value)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def describe(findings: dict[str, list[str]]) -> str:
    """One status line: "flagged: active HTML in <cell> (<what>); <cell> (<what>)", or ""."""
    if not findings:
        return ""
    return "flagged: active HTML in " + "; ".join(
        f"{cell} ({', '.join(what)})" for cell, what in findings.items()
    )


def with_content_security_policy(page: str) -> str:
    """`page` with a Content-Security-Policy <meta> as the first element of its <head>."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    head = re.search(r"<head(\s[^>]*)?>", page, re.IGNORECASE)
    if head is None:
        raise ValueError("the page has no <head> to put the Content-Security-Policy in")
    return page[: head.end()] + "\n" + meta + page[head.end() :]
