"""How much notebook 05's IWAE figures move between two sample counts K, and what each K costs.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_iwae_samples.py [--samples 1000 500]

Reads the full-mode models notebook 05 saved (run it, or `make run`, first) and estimates
−log p(x) on the first `--images` test images with each K (the run's seed, as notebook 05). Prints, per model,
each estimate with its time and the mean change per image between the first and the last K,
with its standard error. `RunConfig.experiment_iwae_samples` was chosen with it.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import time

import keras
import numpy as np

from lab_utils.artifacts import artifacts_dir
from lab_utils.config import get_run_config
from lab_utils.data import load_mnist
from lab_utils.metrics import importance_log_likelihood
from lab_utils.models import VAE  # noqa: F401  (registers the kit's model classes for load_model)

MODELS = (
    "dense, latent 2",
    "dense, latent 8",
    "dense, latent 20",
    "β = 0.5",
    "β = 4",
    "conditional, latent 2",
    "conv, latent 2",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 500], help="the values of K")
    config = get_run_config("full")
    parser.add_argument("--images", type=int, default=config.iwae_images, help="first test images, as in 05")
    args = parser.parse_args()
    _, (x_test, y_test) = load_mnist()
    images, labels = x_test[: args.images], y_test[: args.images]
    folder = artifacts_dir("full") / "experiments"
    for name in MODELS:
        path = folder / f"{name}.keras"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run notebook 05 in full mode first (make run).")
        vae = keras.models.load_model(path)
        estimates = {}
        for k in args.samples:
            started = time.perf_counter()
            log_px = importance_log_likelihood(
                vae, images, labels if vae.conditional else None, samples=k, seed=config.seed
            )
            estimates[k] = (log_px, time.perf_counter() - started)
        first, last = estimates[args.samples[0]][0], estimates[args.samples[-1]][0]
        change = first - last  # how much tighter the first K's bound is, per image
        figures = "  ".join(
            f"K = {k:,}: {-log_px.mean():.2f} ({seconds:.1f} s)" for k, (log_px, seconds) in estimates.items()
        )
        error = change.std(ddof=1) / np.sqrt(len(change))
        print(f"{name:22} {figures}  change {change.mean():+.3f} ± {error:.3f} nats", flush=True)


if __name__ == "__main__":
    main()
