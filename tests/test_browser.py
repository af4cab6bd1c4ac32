"""Notebooks 03 and 07 in a real browser: JupyterLab runs them, their explorers answer clicks and keys.

The test starts its own JupyterLab on a free localhost port (settings, workspaces and
checkpoints in a temporary folder; trained models where the rest of the test run keeps its
fast-mode models, so the models nbval trains for 03 and 07 are loaded here, or trained here and
loaded there: the kit's per-model locks make that safe), opens copies of the notebooks
in headless Debian Chromium (/usr/bin/chromium) driven by Playwright and runs every cell
with JupyterLab's own `notebook:run-all-cells` command. In 03 it presses ArrowRight on the
latent explorer's first slider; in 07 it switches the sampler explorer's sampler, model and
draw. Each time it checks that the kernel sent back a new image, and it leaves a screenshot
of the explorer in BROWSER_ARTIFACTS (default: build/test-artifacts/).

Without /usr/bin/chromium or the `playwright` package the tests are skipped, except when the
CI variable is set: CI installs both, so there a missing browser fails the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from tests.browsing import free_port, jupyter, launch_chromium, local_server

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_03 = REPO / "notebooks" / "03_generate_and_explore.ipynb"
NOTEBOOK_07 = REPO / "notebooks" / "07_what_the_elbo_hides.ipynb"
SCREENSHOT_03 = "notebook03_explorer.png"
SCREENSHOT_07 = "notebook07_sampler.png"

# Each test's budget, server start to screenshot. Notebook 03 takes about 20 s on a quick day;
# 07 about 55 s with its fast-mode models loaded, about 3 minutes when it trains them (or waits
# for nbval's run of 07, on the other worker, to train them).
BUDGET_03_S = 150
BUDGET_07_S = 600
SERVER_START_S = 60
PAGE_READY_S = 60
RUN_ALL_03_S = 90
RUN_ALL_07_S = 480
WIDGET_S = 30
SLIDER_PRESSES = 4

pytestmark = pytest.mark.browser


class Deadline:
    """One time budget for a whole test; every wait takes the smaller of its own limit and what is left."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, limit: float) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"the browser test ran out of its {self.seconds} s budget")
        return min(limit, remaining)

    def ms(self, limit: float) -> float:
        return 1000 * self.left(limit)


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))


@pytest.fixture(scope="module")
def lab_server(playwright_api, tmp_path_factory):
    """JupyterLab on a free port serving copies of notebooks 03 and 07; yields (URL, token, folder)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    for notebook in (NOTEBOOK_03, NOTEBOOK_07):
        if not notebook.is_file():
            pytest.fail(f"{notebook.relative_to(REPO)} is missing")
        shutil.copy2(notebook, root / notebook.name)
    settings = tmp / "user-settings"
    # Paint every cell, not only the visible ones, and ask for no news or update checks.
    _write_json(
        settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )

    token = secrets.token_hex(24)
    port = free_port()
    env = dict(os.environ)
    env.update(
        VAE_LAB_MODE="fast",  # VAE_LAB_ARTIFACTS, if set, is passed on: the run's models are shared
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),  # no personal ~/.jupyter settings
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),  # no personal kernels: the kernel is this Python
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    arguments = [
        "jupyterlab",
        *local_server(port, token, root),
        "--LabApp.expose_app_in_browser=True",
        f"--FileCheckpoints.root_dir={tmp / 'checkpoints'}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    base = f"http://127.0.0.1:{port}"
    with jupyter(arguments, root, env, tmp / "jupyterlab.log", f"{base}/api/status", SERVER_START_S):
        yield base, token, root


@pytest.fixture(scope="module")
def browser(playwright_api, lab_server, tmp_path_factory):
    """Headless Chromium, closed whatever happens (its crash-report folder in a temporary folder)."""
    with launch_chromium(playwright_api, tmp_path_factory.mktemp("chromium")) as browser:
        yield browser


@contextlib.contextmanager
def _open_notebook(browser, lab_server, notebook: Path, deadline: Deadline):
    """A page on `notebook` in JupyterLab; yields (page, console errors); closed whatever happens."""
    base, token, _ = lab_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(deadline.ms(WIDGET_S))
        console_errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        url = f"{base}/lab/tree/{notebook.name}?token={token}&reset"
        page.goto(url, wait_until="domcontentloaded", timeout=deadline.ms(PAGE_READY_S))
        yield page, console_errors
    finally:
        context.close()


# Runs `body` (an async JS function body, with `app` and `panel` bound) and keeps its outcome in
# window.__vaeLab[key], so Python can wait for it with a timeout: page.evaluate has none.
START_JS = """([key, body, name]) => {
  window.__vaeLab = window.__vaeLab || {};
  window.__vaeLab[key] = null;
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path.endsWith(name));
  const run = new Function('app', 'panel', 'return (async () => {' + body + '})();');
  Promise.resolve()
    .then(() => run(app, panel))
    .then(value => { window.__vaeLab[key] = {ok: true, value: value === undefined ? null : value}; },
          error => { window.__vaeLab[key] = {ok: false, error: String(error && error.stack || error)}; });
}"""

KERNEL_IDLE_JS = """name => Array.from(window.jupyterapp.shell.widgets('main'))
  .find(w => w.context && w.context.path.endsWith(name))
  .sessionContext.session.kernel.status === 'idle'"""


def _run_js(page, name: str, key: str, body: str, timeout_ms: float):
    """Run an async JS body in the page (`panel` is notebook `name`) and wait, bounded, for its result."""
    page.evaluate(START_JS, [key, body, name])
    page.wait_for_function("key => window.__vaeLab[key] !== null", arg=key, timeout=timeout_ms)
    outcome = page.evaluate("key => window.__vaeLab[key]", key)
    if not outcome["ok"]:
        pytest.fail(f"{key} failed in the browser: {outcome['error']}")
    return outcome["value"]


def _run_all_cells(page, name: str, deadline: Deadline, run_all_s: float) -> None:
    """Wait for the notebook's kernel, run every cell with JupyterLab's command; fail on any error."""
    page.wait_for_function(
        """name => window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))
                     .some(w => w.context && w.context.path.endsWith(name))""",
        arg=name,
        timeout=deadline.ms(PAGE_READY_S),
    )
    kernel = _run_js(
        page,
        name,
        "ready",
        """await app.restored;
           await panel.context.ready;
           await panel.sessionContext.ready;
           app.shell.activateById(panel.id);
           app.shell.collapseLeft();  // more room for the notebook in the screenshot
           const windowing = panel.content.notebookConfig.windowingMode;
           if (windowing !== 'none') throw new Error('windowingMode is ' + windowing + ', not none');
           const kernel = panel.sessionContext.session.kernel;
           // Every error, and every traceback on stderr, the kernel publishes from now on,
           // including those of widget callbacks, which show in no cell's output.
           window.__vaeLabKernelErrors = [];
           kernel.iopubMessage.connect((_, msg) => {
             const type = msg.header.msg_type, c = msg.content;
             if (type === 'error') window.__vaeLabKernelErrors.push(c.ename + ': ' + c.evalue);
             if (type === 'stream' && c.name === 'stderr' && c.text.includes('Traceback'))
               window.__vaeLabKernelErrors.push(c.text);
           });
           return kernel.name;""",
        deadline.ms(PAGE_READY_S),
    )
    print(f"\n{name}: kernel {kernel!r} ready")
    started = time.monotonic()
    all_ran = _run_js(
        page,
        name,
        "run-all",
        "return await app.commands.execute('notebook:run-all-cells');",
        deadline.ms(run_all_s),
    )
    kernel_errors = page.evaluate("window.__vaeLabKernelErrors")
    assert all_ran is not False, f"a cell failed during run-all: {kernel_errors}"
    page.wait_for_function(
        """name => {
             const panel = Array.from(window.jupyterapp.shell.widgets('main'))
               .find(w => w.context && w.context.path.endsWith(name));
             const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
             const code = panel.content.widgets.filter(cell => cell.model.type === 'code');
             return kernel && kernel.status === 'idle'
               && code.every(cell => cell.model.executionCount !== null);
           }""",
        arg=name,
        timeout=deadline.ms(run_all_s),
    )
    print(f"all cells ran in {time.monotonic() - started:.1f} s")
    kernel_errors = page.evaluate("window.__vaeLabKernelErrors")
    assert not kernel_errors, f"the kernel reported errors: {kernel_errors}"


def _wait_until_settled(page, image, name: str, deadline: Deadline) -> str:
    """Wait until `image` has shown the same picture for a while with the kernel idle; return its src.

    A freshly drawn widget may send a value back (a slider snaps it to its step), so the
    kernel can redraw once on its own.
    """
    page.wait_for_function(
        """([img, name]) => {
             const kernel = Array.from(window.jupyterapp.shell.widgets('main'))
               .find(w => w.context && w.context.path.endsWith(name)).sessionContext.session.kernel;
             const now = Date.now(), seen = window.__vaeLabImage;
             if (!img.src || !img.complete || !img.naturalWidth || kernel.status !== 'idle'
                 || !seen || seen.src !== img.src) {
               window.__vaeLabImage = {src: img.src, since: now};
               return false;
             }
             return now - seen.since > 750;
           }""",
        arg=[image.element_handle(), name],
        polling=100,
        timeout=deadline.ms(WIDGET_S),
    )
    return image.get_attribute("src")


def _wait_for_new_image(page, image, src_before: str, name: str, deadline: Deadline) -> str:
    """The kernel answers with a new PNG (a new blob URL in src), then goes idle; return the new src."""
    page.wait_for_function(
        "([img, before]) => img.src && img.src !== before && img.complete && img.naturalWidth > 0",
        arg=[image.element_handle(), src_before],
        timeout=deadline.ms(WIDGET_S),
    )
    page.wait_for_function(KERNEL_IDLE_JS, arg=name, timeout=deadline.ms(WIDGET_S))
    return image.get_attribute("src")


def _check_no_errors_and_screenshot(page, console_errors, explorer, folder: Path, filename: str, deadline):
    """No widget failed to render, no traceback anywhere; then a screenshot of the explorer for people."""
    assert page.get_by_text("Error displaying widget").count() == 0
    tracebacks = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Traceback"
    )
    assert tracebacks.count() == 0, tracebacks.first.inner_text()[:2000]
    kernel_errors = page.evaluate("window.__vaeLabKernelErrors")
    assert not kernel_errors, f"the kernel reported errors after the explorer was used: {kernel_errors}"
    screenshots = Path(os.environ.get("BROWSER_ARTIFACTS") or REPO / "build" / "test-artifacts")
    screenshots.mkdir(parents=True, exist_ok=True)
    screenshot = screenshots / filename
    explorer.evaluate("node => node.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)  # let the scroll paint
    page.screenshot(path=str(screenshot), timeout=deadline.ms(WIDGET_S))
    print(f"screenshot: {screenshot.resolve()}")
    checkpoints = list(folder.rglob(".ipynb_checkpoints"))
    assert not checkpoints, f"JupyterLab wrote checkpoints next to the notebook: {checkpoints}"
    if console_errors:
        print(f"browser console errors (not failures): {console_errors[:5]}")


def _explorer(page, title: str, deadline: Deadline):
    """The explorer's VBox: the parent of its title, the first HTML widget that names it."""
    heading = page.locator(".jp-OutputArea-output .widget-html", has_text=title).first
    heading.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
    return heading.locator("xpath=..")


def _slider_value(handle) -> float:
    return float(handle.evaluate("h => h.closest('.noUi-target').noUiSlider.get(true)"))


def test_latent_explorer_redraws_when_its_slider_moves(browser, lab_server):
    deadline, name = Deadline(BUDGET_03_S), NOTEBOOK_03.name
    with _open_notebook(browser, lab_server, NOTEBOOK_03, deadline) as (page, console_errors):
        _run_all_cells(page, name, deadline, RUN_ALL_03_S)
        # The decoded digit is the <img> in the same VBox as the sliders (the 2-D scatter is beside it).
        explorer = _explorer(page, "Latent explorer", deadline)
        handle = explorer.locator(".noUi-handle").first
        image = explorer.locator(".widget-hbox > .widget-vbox > img.widget-image").first
        handle.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
        image.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
        src_before = _wait_until_settled(page, image, name, deadline)
        value_before = _slider_value(handle)

        # Move the first slider with the keyboard (ArrowUp/Down would move the notebook cursor),
        # away from its end if the anchor code sits at the limit.
        at_max = handle.evaluate(
            """h => { const s = h.closest('.noUi-target').noUiSlider;
                      return s.get(true) >= s.options.range.max; }"""
        )
        key = "ArrowLeft" if at_max else "ArrowRight"
        handle.focus()
        for _ in range(SLIDER_PRESSES):
            handle.press(key)
        page.wait_for_function(
            "([h, before]) => h.closest('.noUi-target').noUiSlider.get(true) !== before",
            arg=[handle.element_handle(), value_before],
            timeout=deadline.ms(WIDGET_S),
        )
        value_after = _slider_value(handle)
        assert value_after != value_before, f"the slider did not move from {value_before}"
        assert (value_after > value_before) == (key == "ArrowRight")
        assert _wait_for_new_image(page, image, src_before, name, deadline) != src_before
        print(f"slider z[0]: {value_before:.2f} -> {value_after:.2f}; the decoded image was redrawn")
        _check_no_errors_and_screenshot(
            page, console_errors, explorer, lab_server[2], SCREENSHOT_03, deadline
        )
        _run_js(page, name, "shutdown", "await panel.sessionContext.shutdown();", deadline.ms(WIDGET_S))


def test_sampler_explorer_redraws_the_digit_shares_for_each_choice(browser, lab_server):
    deadline, name = Deadline(BUDGET_07_S), NOTEBOOK_07.name
    with _open_notebook(browser, lab_server, NOTEBOOK_07, deadline) as (page, console_errors):
        _run_all_cells(page, name, deadline, RUN_ALL_07_S)
        explorer = _explorer(page, "Sampler explorer", deadline)
        chart = explorer.locator(".widget-hbox > img.widget-image").first  # the bars, beside the figures
        facts = explorer.locator(".widget-hbox > .widget-html").first
        chart.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
        src = _wait_until_settled(page, chart, name, deadline)
        assert "commonest:" in facts.inner_text()
        # Each control in turn: the kernel draws new codes or reads its cached draw, and sends new bars
        # (their title names the model, sampler and draw, so every choice gives another picture).
        steps = [
            ("sampler: mixture", lambda: explorer.get_by_role("button", name="mixture on μ(x)").click()),
            ("model: latent 20", lambda: explorer.locator("select").select_option("latent 20")),
            ("sampler: prior", lambda: explorer.get_by_role("button", name="prior N(0, I)").click()),
            ("new draw", lambda: explorer.get_by_role("button", name="new draw").click()),
        ]
        for what, act in steps:
            act()
            src = _wait_for_new_image(page, chart, src, name, deadline)
            print(f"{what}: the bars were redrawn; {facts.inner_text().splitlines()[0]}")
        _check_no_errors_and_screenshot(
            page, console_errors, explorer, lab_server[2], SCREENSHOT_07, deadline
        )
        _run_js(page, name, "shutdown", "await panel.sessionContext.shutdown();", deadline.ms(WIDGET_S))
