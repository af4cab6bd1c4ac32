"""Slider-to-image latency of each explorer: the time from setting a control's value to a new PNG.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_widgets.py [--updates 300]

Uses the lab model saved by notebook 02 and the judge saved by notebook 04 (each trained here
if there is none). Each update sets a control's value, which runs the explorer's observer:
decode (one compiled call), PNG encoding and, for the 2-D latent explorer, the marker on the
scatter. The sampler explorer's "new draw" decodes 1,000 codes, has the judge read them and
draws the bar chart (updates / 10 of them). Outside a kernel no message reaches a browser, so
this is the kernel's share of the latency.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import time

import numpy as np

from lab_utils.data import load_mnist
from lab_utils.latent import encode_means, fit_code_mixture
from lab_utils.sizes import MODE, SEED, TRAIN_IMAGES
from lab_utils.trained import trained_model
from lab_utils.widgets import InterpolationExplorer, LatentExplorer, ReconstructionBrowser, SamplerExplorer


def latencies(set_value, values) -> np.ndarray:
    """Milliseconds taken by `set_value(v)` for each v, after 10 warm-up updates."""
    for value in values[:10]:
        set_value(value)
    times = []
    for value in values:
        started = time.perf_counter()
        set_value(value)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="timed updates per explorer (>= 200)")
    args = parser.parse_args()
    if args.updates < 200:
        parser.error(f"--updates {args.updates}: the figures need at least 200 updates")

    (x_train, _), (x_test, y_test) = load_mnist()
    vae = trained_model("lab", verbose=0).model
    classifier = trained_model("judge", verbose=0).model
    mixture = fit_code_mixture(encode_means(vae, x_train[:TRAIN_IMAGES])[0], seed=SEED)
    rng = np.random.default_rng(0)
    n = args.updates

    latent = LatentExplorer(vae, x_test, y_test)
    interpolation = InterpolationExplorer(vae, x_test, y_test, start=0, end=1)
    browser = ReconstructionBrowser(vae, x_test, y_test)
    sampler = SamplerExplorer(classifier, {"lab model": vae}, {"lab model": mixture}, data_labels=y_test)

    def move_latent(value):
        latent.sliders[0].value = value

    def move_t(value):
        interpolation.t.value = value

    def move_index(value):
        browser.index.value = value

    runs = {
        "latent explorer (z[0] slider, scatter marker)": latencies(
            move_latent, np.round(rng.uniform(-3, 3, n), 2)
        ),
        "interpolation explorer (t slider)": latencies(move_t, np.round(rng.uniform(0, 1, n), 2)),
        "reconstruction browser (index slider)": latencies(
            move_index, rng.integers(0, len(x_test), n).tolist()
        ),
        "sampler explorer (new draw of 1,000 codes)": latencies(
            lambda _: sampler.redraw.click(), list(range(n // 10))
        ),
    }
    print(f"lab model from {MODE} mode; {n} updates per explorer ({n // 10} new draws)")
    for name, times in runs.items():
        print(
            f"{name:48} median {np.median(times):6.2f} ms   "
            f"p95 {np.percentile(times, 95):6.2f} ms   max {times.max():6.2f} ms"
        )


if __name__ == "__main__":
    main()
