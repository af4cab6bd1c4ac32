"""What the model bundle saves: notebooks 02-07 in full mode from an empty cache with it, against training.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_bundle.py [--train]

Packs the full-mode models saved in artifacts/full (run `make run` first) with `vae-lab bundle`,
serves the bundle from an HTTP server on this machine, times its download into an empty cache,
then runs notebooks 02-07 one after another in full mode with an empty artifacts folder and
VAE_LAB_MODELS pointing at the served bundle, as a Colab or hub session does. With --train it runs
them again with an empty artifacts folder and no bundle, so every model is trained. It prints each
notebook's time, how many models it took from the bundle or trained, and the peak memory (resident
set) of its kernel, sampled every 0.1 s: what a hub must give each student (deploy/kubernetes).
Nothing is written back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [
    "02_vae_lab",
    "03_generate_and_explore",
    "04_compare",
    "05_experiments",
    "06_likelihoods",
    "07_what_the_elbo_hides",
]


def peak_kernel_memory(process: subprocess.Popen) -> int:
    """The largest resident set (bytes) of `process`'s children (its kernel), sampled until it ends."""
    import psutil

    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        resident = 0
        try:
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    resident += child.memory_info().rss
        except psutil.Error:
            break
        peak = max(peak, resident)
        time.sleep(0.1)
    return peak


def run_notebooks(scratch: Path, models_url: str | None) -> list[tuple[str, float, int, int, int]]:
    """(notebook, seconds, models from the bundle, models trained, kernel's peak bytes) for each notebook."""
    environment = {
        **os.environ,
        "VAE_LAB_MODE": "full",
        "VAE_LAB_ARTIFACTS": str(scratch / "artifacts"),
        "XDG_CACHE_HOME": str(scratch / "cache"),
    }
    environment.pop("VAE_LAB_RETRAIN", None)
    environment.pop("VAE_LAB_MODELS", None)
    if models_url:
        environment["VAE_LAB_MODELS"] = models_url
    rows = []
    for name in NOTEBOOKS:
        started = time.perf_counter()
        command = [str(Path(sys.executable).with_name("vae-lab")), "run", "--html", str(scratch / "html")]
        scratch.mkdir(parents=True, exist_ok=True)
        with open(scratch / "run.log", "wb") as log:
            process = subprocess.Popen(
                [*command, f"notebooks/{name}.ipynb"], cwd=KIT, env=environment, stdout=log, stderr=log
            )
            peak = peak_kernel_memory(process)
        if process.wait():
            raise SystemExit(f"{name} failed:\n{(scratch / 'run.log').read_text()[-3000:]}")
        seconds = time.perf_counter() - started
        page = (scratch / "html" / f"{name}.html").read_text()
        rows.append(
            (
                name,
                seconds,
                len(re.findall("Took the .{1,60}? model from the model bundle", page)),
                page.count("Saved the trained model"),
                peak,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train", action="store_true", help="also run them training every model (about 20 min)"
    )
    arguments = parser.parse_args()
    import lab_utils.progress  # noqa: F401 - the download's progress line; imported before the clock starts
    from vae_lab import bundle, stacks

    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as folder:
        scratch = Path(folder)
        packed = scratch / "served" / bundle.default_name("full")
        started = time.perf_counter()
        manifest = bundle.pack(KIT / "artifacts" / "full", packed)
        print(
            f"packed {len(manifest['models'])} models in {time.perf_counter() - started:.1f} s: "
            f"{packed.stat().st_size / 1e6:.1f} MB"
        )
        with stacks.served(packed) as url:  # the HTTP server CI's Colab stack downloads from
            started = time.perf_counter()
            bundle.download(url, scratch / "download" / packed.name)
            print(f"download from an HTTP server on this machine: {time.perf_counter() - started:.2f} s")
            runs = {"with the bundle": run_notebooks(scratch / "bundled", url)}
            if arguments.train:
                runs["training every model"] = run_notebooks(scratch / "trained", None)
    for label, rows in runs.items():
        print(f"\nnotebooks 02-07, full mode, empty artifacts folder, {label}:")
        for name, seconds, taken, trained, peak in rows:
            print(
                f"  {name:26} {seconds:7.1f} s   from the bundle {taken:2}   trained {trained:2}   "
                f"kernel peak {peak / 2**30:.2f} GiB"
            )
        print(
            f"  {'total':26} {sum(row[1] for row in rows):7.1f} s   kernels' peaks summed "
            f"{sum(row[4] for row in rows) / 2**30:.2f} GiB (every notebook left open)"
        )


if __name__ == "__main__":
    main()
