"""What the real-browser tests share: Debian's Chromium, its offline flags, a free port, a token request."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

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


@contextlib.contextmanager
def launch_chromium(playwright_api, home: Path):
    """Headless Chromium with its profile folders under `home`; closed whatever happens."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS, env=env, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, token: str, method: str = "GET", timeout: float = 5.0) -> int:
    """Send one token-authenticated request to a local server (no proxies); return the HTTP status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with opener.open(request, timeout=timeout) as response:
        return response.status


def local_server(port: int, token: str, root: Path) -> list[str]:
    """Jupyter server options: localhost only, this port and token, serving `root`."""
    return [
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
    ]


@contextlib.contextmanager
def jupyter(arguments: list[str], cwd: Path, env: dict, log_path: Path, ready: str, start_s: float):
    """A Jupyter server (`python -m` + `arguments`, which set the port and token) until the block ends.

    Yields once GET `ready` (a full URL, with `token` among the arguments) answers 200; fails the
    test with the end of its log if it exits or does not answer within `start_s` seconds.
    """
    token = next(arg.split("=", 1)[1] for arg in arguments if arg.startswith("--ServerApp.token="))
    base = ready.split("/", 3)[:3]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", *arguments],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        stop = time.monotonic() + start_s
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"{arguments[0]} exited with {server.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if http_status(ready, token) == 200:
                    break
            if time.monotonic() > stop:
                pytest.fail(f"{ready} did not answer in {start_s} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield
    finally:
        if server.poll() is None:
            try:  # a clean shutdown also stops the kernels, which run in sessions of their own
                http_status("/".join(base) + "/api/shutdown", token, method="POST")
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


# nbconvert's and nbgrader's pages load MathJax 2.7.7 from this CDN; tests serve npm's copy in its place
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/"


def serve_mathjax(mathjax: Path):
    """A route handler answering the CDN's MathJax URLs from the npm copy; anything else off-machine fails."""

    def handle(route):
        url = route.request.url.split("?")[0]
        path = mathjax / url[len(MATHJAX_CDN) :] if url.startswith(MATHJAX_CDN) else None
        if path is None or not path.is_file():
            return route.abort()
        kind = "application/javascript" if path.suffix == ".js" else "application/octet-stream"
        return route.fulfill(path=str(path), content_type=kind)

    return handle
