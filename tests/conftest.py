"""Shared fixtures: tiny synthetic IDX files, and the real MNIST folder when it is available."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import lab_utils  # noqa: F401  (imports TensorFlow quietly before any test module does)
from tests.browsing import CHROMIUM

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write `array` (uint8) as a gzip-compressed IDX file with its big-endian header."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())
    return path


@pytest.fixture(scope="session")
def pyproject() -> dict:
    """The kit's pyproject.toml, parsed."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture
def fake_mnist_dir(tmp_path: Path) -> Path:
    """A folder with the four IDX files holding 12 train and 5 test random images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 12))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 5))
    return folder


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """The real MNIST folder (MNIST_DIR, else ../shared/data/mnist); skips the test if absent."""
    folder = Path(os.environ.get("MNIST_DIR") or SHARED_MNIST)
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {folder}; set MNIST_DIR to run this test")
    return folder


@pytest.fixture(scope="session")
def real_mnist(real_mnist_dir: Path):
    from lab_utils.data import load_mnist

    return load_mnist(real_mnist_dir)


@pytest.fixture
def random_images() -> np.ndarray:
    """256 random binary-ish 784-pixel images in [0, 1]."""
    rng = np.random.default_rng(1)
    return (rng.random((256, 784)) > 0.8).astype("float32")


@pytest.fixture(scope="session")
def trained_vae():
    """(vae, images, labels): a small dense VAE (latent 2, no XLA) trained two epochs on 60 random images.

    The same VAE every run: `build_vae(seed=...)` seeds only the sampling noise, so the weights'
    initial values and fit's shuffling are seeded here.
    """
    from lab_utils.models import build_vae
    from lab_utils.training import set_seed

    set_seed(0)
    rng = np.random.default_rng(0)
    images = (rng.random((60, 784)) > 0.7).astype("float32")
    labels = np.arange(60) % 10
    vae = build_vae(latent_dim=2, hidden_units=(32,), seed=0, jit_compile=False)
    vae.fit(images, epochs=2, batch_size=30, verbose=0)
    return vae, images, labels


@pytest.fixture(scope="session")
def saved_vae(trained_vae, tmp_path_factory) -> Path:
    """`trained_vae` saved to a .keras file."""
    path = tmp_path_factory.mktemp("saved") / "vae.keras"
    trained_vae[0].save(path)
    return path


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


@pytest.fixture(scope="session")
def mathjax(tmp_path_factory) -> Path:
    """MathJax 2.7.7 from npm (the version the pages load from their CDN), unpacked; its folder."""
    folder = tmp_path_factory.mktemp("mathjax")
    if shutil.which("npm") is None:
        reason = "npm is missing, so MathJax cannot be served to check that the pages typeset their maths"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    packed = subprocess.run(
        ["npm", "pack", "--silent", "mathjax@2.7.7", "--pack-destination", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert packed.returncode == 0, packed.stderr
    with tarfile.open(folder / packed.stdout.strip().splitlines()[-1]) as archive:
        archive.extractall(folder, filter="data")
    return folder / "package"
