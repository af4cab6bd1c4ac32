"""Notebook 03 in a real browser: JupyterLab runs it, a latent slider moves, the decoded digit redraws.

The test starts its own JupyterLab on a free localhost port (settings, workspaces,
checkpoints and trained models all in a temporary folder), opens a copy of the notebook
in headless Debian Chromium (/usr/bin/chromium) driven by Playwright, runs every cell
with JupyterLab's own `notebook:run-all-cells` command, presses ArrowRight on the latent
explorer's first slider and checks that the kernel sent back a new image. It leaves a
screenshot of the explorer in BROWSER_ARTIFACTS (default: build/test-artifacts/).

Without /usr/bin/chromium or the `playwright` package the test is skipped, except when the
CI variable is set: CI installs both, so there a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "03_generate_and_explore.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = "notebook03_explorer.png"

TEST_BUDGET_S = 150  # the whole test, server start to screenshot (it takes about 20 s here)
SERVER_START_S = 60
PAGE_READY_S = 60
RUN_ALL_S = 90
WIDGET_S = 30
SLIDER_PRESSES = 4

pytestmark = pytest.mark.browser


class Deadline:
    """One time budget for the whole test; every wait takes the smaller of its own limit and what is left."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, limit: float) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"the browser test ran out of its {TEST_BUDGET_S} s budget")
        return min(limit, remaining)

    def ms(self, limit: float) -> float:
        return 1000 * self.left(limit)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, token: str, method: str = "GET", timeout: float = 5.0) -> int:
    """Send one token-authenticated request to the server (no proxies); return the HTTP status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with opener.open(request, timeout=timeout) as response:
        return response.status


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))


@pytest.fixture(scope="module")
def playwright_api():
    """The Playwright sync API, with /usr/bin/chromium present; skips without them (fails under CI)."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        import playwright.sync_api as api
    except ImportError:
        api = None
        missing.append(
            "the playwright package is missing (pip install playwright; never `playwright install`)"
        )
    if missing:
        reason = "real-browser test needs Chromium and Playwright: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + ". CI is set and CI installs both, so this is a failure, not a skip.")
        pytest.skip(reason)
    return api


@pytest.fixture(scope="module")
def deadline() -> Deadline:
    return Deadline(TEST_BUDGET_S)


@pytest.fixture(scope="module")
def lab_server(playwright_api, deadline, tmp_path_factory):
    """JupyterLab on a free port serving a temporary copy of notebook 03; yields (URL, its folder)."""
    if not NOTEBOOK.is_file():
        pytest.fail(f"{NOTEBOOK.relative_to(REPO)} is missing")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    shutil.copy2(NOTEBOOK, root / NOTEBOOK.name)
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
    port = _free_port()
    env = dict(os.environ)
    env.update(
        VAE_LAB_MODE="fast",
        VAE_LAB_ARTIFACTS=str(tmp / "artifacts"),
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),  # no personal ~/.jupyter settings
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),  # no personal kernels: the kernel is this Python
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        f"--FileCheckpoints.root_dir={tmp / 'checkpoints'}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = tmp / "jupyterlab.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        stop = time.monotonic() + deadline.left(SERVER_START_S)
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if _request(f"{base}/api/status", token) == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > stop:
                pytest.fail(
                    f"JupyterLab did not answer in {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}&reset", root
    finally:
        if server.poll() is None:
            try:  # a clean shutdown also stops the kernels, which run in sessions of their own
                _request(f"{base}/api/shutdown", token, method="POST")
                server.wait(timeout=15)
            except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
                pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


@pytest.fixture(scope="module")
def browser_page(playwright_api, lab_server, deadline, tmp_path_factory):
    """A headless Chromium page on the notebook; closed (with the browser) whatever happens."""
    url, _ = lab_server
    home = tmp_path_factory.mktemp("chromium")  # its crash-report folder goes here, not in ~/.config
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            env=env,
            timeout=deadline.ms(30),
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(deadline.ms(WIDGET_S))
            console_errors: list[str] = []
            page.on(
                "console", lambda message: message.type == "error" and console_errors.append(message.text)
            )
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.goto(url, wait_until="domcontentloaded", timeout=deadline.ms(PAGE_READY_S))
            yield page, console_errors
        finally:
            browser.close()


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


def _run_js(page, key: str, body: str, timeout_ms: float):
    """Run an async JS body in the page and wait (bounded) for its result; fail on a JS error."""
    page.evaluate(START_JS, [key, body, NOTEBOOK.name])
    page.wait_for_function("key => window.__vaeLab[key] !== null", arg=key, timeout=timeout_ms)
    outcome = page.evaluate("key => window.__vaeLab[key]", key)
    if not outcome["ok"]:
        pytest.fail(f"{key} failed in the browser: {outcome['error']}")
    return outcome["value"]


def _slider_value(handle) -> float:
    return float(handle.evaluate("h => h.closest('.noUi-target').noUiSlider.get(true)"))


def test_latent_explorer_redraws_when_its_slider_moves(browser_page, lab_server, deadline):
    page, console_errors = browser_page
    _, notebook_folder = lab_server
    # 1. JupyterLab is up and the notebook panel is open with a running kernel.
    page.wait_for_function(
        """name => window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))
                     .some(w => w.context && w.context.path.endsWith(name))""",
        arg=NOTEBOOK.name,
        timeout=deadline.ms(PAGE_READY_S),
    )
    kernel = _run_js(
        page,
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
    print(f"\nkernel {kernel!r} ready")

    # 2. Run all cells and wait for the last reply and an idle kernel.
    started = time.monotonic()
    all_ran = _run_js(
        page,
        "run-all",
        "return await app.commands.execute('notebook:run-all-cells');",
        deadline.ms(RUN_ALL_S),
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
        arg=NOTEBOOK.name,
        timeout=deadline.ms(RUN_ALL_S),
    )
    print(f"all cells ran in {time.monotonic() - started:.1f} s")
    kernel_errors = page.evaluate("window.__vaeLabKernelErrors")
    assert not kernel_errors, f"the kernel reported errors: {kernel_errors}"

    # 3. The latent explorer: the VBox whose first child is the "Latent explorer" title; its
    #    decoded digit is the <img> in the same VBox as the sliders (the 2-D scatter is beside it).
    title = page.locator(".jp-OutputArea-output .widget-html", has_text="Latent explorer").first
    title.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
    explorer = title.locator("xpath=..")
    handle = explorer.locator(".noUi-handle").first
    image = explorer.locator(".widget-hbox > .widget-vbox > img.widget-image").first
    handle.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
    image.wait_for(state="visible", timeout=deadline.ms(WIDGET_S))
    # A freshly drawn slider snaps its value to the step and sends it back, so the kernel redraws
    # once on its own: wait until the image has been the same for a while with the kernel idle.
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
        arg=[image.element_handle(), NOTEBOOK.name],
        polling=100,
        timeout=deadline.ms(WIDGET_S),
    )
    src_before = image.get_attribute("src")
    value_before = _slider_value(handle)

    # 4. Move the first slider with the keyboard (ArrowUp/Down would move the notebook cursor),
    #    away from its end if the anchor code sits at the limit.
    at_max = handle.evaluate(
        "h => { const s = h.closest('.noUi-target').noUiSlider; return s.get(true) >= s.options.range.max; }"
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
    # The kernel decodes the new code and sends a new PNG: a new blob URL in src.
    page.wait_for_function(
        "([img, before]) => img.src && img.src !== before && img.complete && img.naturalWidth > 0",
        arg=[image.element_handle(), src_before],
        timeout=deadline.ms(WIDGET_S),
    )
    page.wait_for_function(
        """name => Array.from(window.jupyterapp.shell.widgets('main'))
             .find(w => w.context && w.context.path.endsWith(name))
             .sessionContext.session.kernel.status === 'idle'""",
        arg=NOTEBOOK.name,
        timeout=deadline.ms(WIDGET_S),
    )
    assert image.get_attribute("src") != src_before
    print(f"slider z[0]: {value_before:.2f} -> {value_after:.2f}; the decoded image was redrawn")

    # 5. No widget failed to render, no traceback anywhere.
    assert page.get_by_text("Error displaying widget").count() == 0
    tracebacks = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Traceback"
    )
    assert tracebacks.count() == 0, tracebacks.first.inner_text()[:2000]
    kernel_errors = page.evaluate("window.__vaeLabKernelErrors")
    assert not kernel_errors, f"the kernel reported errors after the slider moved: {kernel_errors}"

    # 6. A screenshot of the explorer, for people to look at.
    folder = Path(os.environ.get("BROWSER_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    screenshot = folder / SCREENSHOT
    explorer.evaluate("node => node.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)  # let the scroll paint
    page.screenshot(path=str(screenshot), timeout=deadline.ms(WIDGET_S))
    print(f"screenshot: {screenshot.resolve()}")
    checkpoints = list(notebook_folder.rglob(".ipynb_checkpoints"))
    assert not checkpoints, f"JupyterLab wrote checkpoints next to the notebook: {checkpoints}"
    if console_errors:
        print(f"browser console errors (not failures): {console_errors[:5]}")
