"""Make a student's notebook inert before anything renders it as HTML for a person to open.

nbconvert's `HTMLExporter` (and nbgrader's Formgrader and feedback templates built on it) put
markdown cells and `text/html` outputs into the page as they are, so HTML a student writes runs
in the browser of whoever opens the page: in Formgrader, the instructor's Jupyter origin.
nbconvert's own `sanitize_html` is no cure: its allowlist escapes headings, paragraphs, tables
and figures, and nbgrader's templates do not apply it to markdown cells.

`neutralise` rewrites the notebook instead, so every renderer gets inert input:
- a markdown cell the student wrote or changed is rendered as nbconvert renders it, and kept only
  if the result holds nothing but what plain markdown makes (paragraphs, headings, lists,
  tables, code, maths, links to http(s) and mail, embedded figures); otherwise it is shown as
  text (a code block under a one-line notice), as the student wrote it. Unchanged cells of the
  release are trusted;
- outputs keep plain text, PNG and JPEG figures, streams and errors; `text/html` is cleaned by
  nh3 (the ammonia sanitiser), markdown follows the markdown rule, anything else is dropped
  (JavaScript, SVG, widget views, LaTeX);
- raw cells with HTML, attachments that are not PNG/JPEG/GIF, cell and notebook metadata
  other than well-formed nbgrader marks (tags, titles, widget state) are removed.
It returns what it found that could run code, load a page or restyle it, so the grader can flag it.

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
from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath

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
# What nbconvert's markdown renderer writes for plain markdown, with the attributes it gives each
# tag, and a few formatting tags students write by hand.
PLAIN = frozenset()
MARKDOWN_TAGS = {
    "a": {"href", "title", "class"}, "img": {"src", "alt", "title"}, "ol": {"start"}, "li": {"class"},
    "th": {"style"}, "td": {"style"}, "div": {"class"}, "span": {"class"}, "code": {"class"},
    "input": {"class", "type", "disabled", "checked"},  # a task list's checkbox, with nothing else
    **{f"h{level}": {"id"} for level in range(1, 7)},
    **dict.fromkeys((
        "p", "br", "hr", "em", "strong", "b", "i", "u", "del", "s", "sub", "sup", "kbd", "pre", "blockquote",
        "ul", "table", "thead", "tbody", "tr",
    ), PLAIN),
}
# fmt: on
MARKDOWN_CLASS = re.compile(r"anchor-link|task-list-item|task-list-item-checkbox|highlight|[a-z0-9]{1,3}")
MARKDOWN_STYLE = re.compile(r"text-align:\s*(?:left|right|center);?")
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
EMBEDDED_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif);base64,", re.IGNORECASE)
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# In a student's own text (the parser's view can differ from a browser's, e.g. `<!--><img onerror>-->`):
HTML_LIKE = re.compile(r"<[A-Za-z/!?]")
ACTIVE_TAG_TEXT = re.compile(rf"<({'|'.join(sorted(ACTIVE_TAGS))})[\s/>]", re.IGNORECASE)
EVENT_HANDLER_TEXT = re.compile(r"<[^>]*?[\s/\"']on([a-z]+)\s*=", re.IGNORECASE)
SCRIPT_URL = re.compile(r"(?:java|vb)script:(?=\S)", re.IGNORECASE)  # "JavaScript: closures" is prose
TAG_TEXT = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)([^>]*)>?")  # a browser's tag: a letter right after < or </
ATTRIBUTE_TEXT = re.compile(r"([^\s\"'>/=]+)\s*=")
AUTOLINK = re.compile(r"<(?:(?:https?|mailto):[^\s<>]*|[\w.+-]+@[\w.-]+)>", re.IGNORECASE)
HAND_WRITTEN_ATTRIBUTES = frozenset({"href", "src", "alt", "title"})
INVISIBLE = re.compile(r"[\x00-\x1f\x7f]")  # browsers drop tabs and newlines inside URL schemes
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
FIGURE_TYPES = ("image/png", "image/jpeg")
ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
OUTPUT_KEYS = frozenset(
    {"output_type", "name", "text", "data", "execution_count", "ename", "evalue", "traceback"}
)
NBGRADER_KEYS = frozenset(
    {"grade", "solution", "locked", "task", "points", "grade_id", "schema_version", "checksum", "cell_type"}
)
NBGRADER_TEXT = re.compile(r"[A-Za-z0-9_.-]*")  # nbgrader's templates put grade_id into attributes unescaped
# What text/html outputs keep (Keras' model summary is a <pre> of styled <span>s); no classes, or
# an output could borrow the page's own (a full-page modal backdrop).
# fmt: off
HTML_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-family", "font-style", "font-weight", "line-height", "overflow-x",
    "text-align", "text-decoration", "white-space",
})
# fmt: on
SHOWN_AS_TEXT = "**Shown as text by the grader:** {why}. What the student wrote, unchanged:\n\n"
NOT_RENDERED = "this cell holds markup{what} that the course never renders from a student's notebook"
# Scripts only from the CDN nbconvert's templates load MathJax from; MathJax 2 evaluates its
# inline configuration with window.eval ('unsafe-eval'), but no inline script or handler runs;
# figures are data: URLs, so no image is fetched from anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src https://cdnjs.cloudflare.com 'unsafe-eval'; "
    "style-src 'unsafe-inline' https://cdnjs.cloudflare.com; font-src https://cdnjs.cloudflare.com data:; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


class _Markup(HTMLParser):
    """Sorts the markup of an HTML text into `active` (runs code, loads or restyles a page) and `other`.

    `other` is everything nbconvert's markdown renderer would not write: unknown tags, attributes,
    classes and styles, URLs of other schemes, comments and declarations.
    """

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.active: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ACTIVE_TAGS and not (tag == "input" and self._is_checkbox(attrs)):
            self.active.append(f"<{tag}>")
        elif tag not in MARKDOWN_TAGS:
            self.other.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.active.append(f"{name}=")
            elif name in URL_ATTRIBUTES:
                problem = _url_problem(value, tag, name)
                if problem:
                    (self.active if problem in ("javascript: URL", "data: URL") else self.other).append(
                        problem
                    )
            elif name not in MARKDOWN_TAGS.get(tag, PLAIN):
                self.other.append(f"{name}=")
            elif name == "class" and not all(MARKDOWN_CLASS.fullmatch(word) for word in value.split()):
                self.other.append(f'class="{value}"')
            elif name == "style" and not MARKDOWN_STYLE.fullmatch(value.strip()):
                self.other.append("style=")

    handle_startendtag = handle_starttag

    @staticmethod
    def _is_checkbox(attrs) -> bool:
        return dict(attrs).get("type") == "checkbox" and {name for name, _ in attrs} <= MARKDOWN_TAGS["input"]

    def handle_comment(self, data):
        self.other.append("<!-- -->")

    def handle_decl(self, decl):
        self.other.append("<!...>")

    unknown_decl = handle_decl

    def handle_pi(self, data):
        self.other.append("<?...>")


def _url_problem(value: str, tag: str, name: str) -> str:
    """What is wrong with a URL in an attribute, as a browser reads it ("" when nothing)."""
    url = INVISIBLE.sub("", value).strip()
    scheme = SCHEME.match(url)
    if scheme is None:
        return ""  # relative, a fragment, or //host (http or https)
    scheme = scheme.group(1).lower()
    if scheme in SAFE_SCHEMES or (tag == "img" and name == "src" and EMBEDDED_IMAGE.match(url)):
        return ""
    if scheme in ("javascript", "vbscript"):
        return "javascript: URL"
    return "data: URL" if scheme == "data" else f"{scheme}: URL"


def _markup(page: str) -> _Markup:
    parser = _Markup()
    parser.feed(page)
    parser.close()
    return parser


def active_markup(page: str) -> list[str]:
    """The elements, attributes and URLs of an HTML text that can run code or load or restyle a page."""
    return list(dict.fromkeys(_markup(page).active))


def _active_text(text: str) -> list[str]:
    """What a student's own text (HTML, or markdown with HTML in it) holds that can be active."""
    found = [f"<{tag.lower()}>" for tag in ACTIVE_TAG_TEXT.findall(text)]
    found += [f"on{name.lower()}=" for name in EVENT_HANDLER_TEXT.findall(text)]
    return found + _script_url(text)


def _script_url(text: str) -> list[str]:
    """["javascript: URL"] when `text`, its entities decoded, names one (in maths, MathJax's \\href)."""
    return ["javascript: URL"] if SCRIPT_URL.search(INVISIBLE.sub("", html.unescape(text))) else []


def active_parts(text: str) -> list[str]:
    """The parts of `text` (HTML, or markdown with HTML in it) that can run code or restyle a page."""
    return list(dict.fromkeys(active_markup(text) + _active_text(text)))


def _hand_written_markup(source: str) -> list[str]:
    """Tags and attributes a student typed that plain markdown never makes (read from the text itself)."""
    found = []
    for tag, rest in TAG_TEXT.findall(AUTOLINK.sub("", source)):
        if tag.lower() not in MARKDOWN_TAGS:
            found.append(f"<{tag.lower()}>")
        names = [name.lower() for name in ATTRIBUTE_TEXT.findall(rest)]
        found += [f"{name}=" for name in names if name not in HAND_WRITTEN_ATTRIBUTES]
    return found


def as_text(source: str, why: str) -> str:
    """Markdown that shows `source` verbatim in a code block, under a notice saying `why`."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    return SHOWN_AS_TEXT.format(why=why) + f"{fence}text\n{source}\n{fence}\n"


def _not_rendered(parts: list[str]) -> str:
    """The notice's reason; the parts go in code spans, or `<script>` would be markup again."""
    shown = [part.replace("`", "'") for part in dict.fromkeys(parts)]
    return NOT_RENDERED.format(what=" (" + ", ".join(f"`{part}`" for part in shown) + ")" if shown else "")


def _render_markdown(source: str, attachments: dict) -> str | None:
    """The HTML nbconvert's templates make of a markdown text; None when it refuses (a missing attachment)."""
    renderer = IPythonRenderer(escape=False, attachments=attachments)
    try:
        return MarkdownWithMath(renderer=renderer).render(source)
    except InvalidNotebook:
        return None


def _safe_markdown_text(source: str, attachments: dict | None = None) -> tuple[str, list[str]]:
    """(`source`, or it shown as text; what in it was active) for markdown a student wrote."""
    rendered = _render_markdown(source, attachments or {})
    if rendered is None:
        return as_text(source, "this cell shows an attachment it does not carry"), _active_text(source)
    markup, hand_written = _markup(rendered), HTML_LIKE.search(source)
    active = list(
        dict.fromkeys(markup.active + (_active_text(source) if hand_written else _script_url(source)))
    )
    other = markup.other + (_hand_written_markup(source) if hand_written else [])
    if active or other:
        return as_text(source, _not_rendered(active + other)), active
    return source, []


def _in_generated(text: str) -> list[str]:
    """What can run code in an output or attached file (matplotlib and pandas write <svg>, <style>)."""
    return [part for part in active_parts(text) if part not in ("<svg>", "<style>")]


def _clean_html(value: str) -> str:
    return nh3.clean(
        value,
        attributes={"*": {"style", "title"}},
        filter_style_properties=HTML_STYLE_PROPERTIES,
        url_schemes=set(SAFE_SCHEMES),
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
            kept[mime], active = _safe_markdown_text(text)
            found += active
        elif mime in ("application/javascript", "text/javascript"):
            found.append(mime)
        elif mime == "image/svg+xml":
            found += _in_generated(text)
    if not kept:
        kept["text/plain"] = f"[output removed by the grader: {', '.join(data) or 'empty'}]"
    output["data"] = kept
    return found


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
    if source not in trusted_markdown:
        cell.source, active = _safe_markdown_text(source, kept)
        found += active
    return found


def _well_formed_marks(marks) -> bool:
    return (
        isinstance(marks, dict)
        and set(marks) <= NBGRADER_KEYS
        and all(
            isinstance(value, bool | int | float)
            or (isinstance(value, str) and NBGRADER_TEXT.fullmatch(value))
            for value in marks.values()
        )
    )


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
        marks, found = cell.metadata.get("nbgrader"), []
        if marks is not None and not _well_formed_marks(marks):
            marks = None
            found.append("nbgrader marks with markup")
        name = marks.get("grade_id", f"cell {number}") if marks else f"cell {number}"
        cell.metadata = {"nbgrader": marks} if marks is not None else {}
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "markdown":
            found += _safe_markdown(cell, source, trusted_markdown)
        elif cell.cell_type == "raw":
            cell.pop("attachments", None)
            found += active_parts(source)
            if HTML_LIKE.search(source):
                cell.source = "[raw cell holding HTML: removed by the grader]"
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                found += _safe_output(output)
        if found:
            findings[name] = list(dict.fromkeys(found))
    return findings


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
