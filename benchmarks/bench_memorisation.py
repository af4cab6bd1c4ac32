"""The memorisation check's calibration: how far it flags a VAE that memorised, and how quiet it stays.

    MNIST_DIR=/path/to/mnist .venv/bin/python benchmarks/bench_memorisation.py [--seeds 5]

Per seed, three figures of `metrics.memorisation_gap` (held-out minus training −ELBO per image,
and that gap in standard errors): a VAE (Dense 512, latent 20) trained 300 epochs on 256 training
images, against 256 test images; the same model on two sets of 256 test images, neither seen;
and a VAE trained 3 epochs on 6,000 images, 1,000 training against 1,000 test images.
tests/test_real_mnist.py runs the first seed as the check's positive control.
"""

from __future__ import annotations

import argparse
import time

from lab_utils.data import load_mnist
from lab_utils.metrics import memorisation_gap
from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae


def _shown(gap: dict) -> str:
    errors = gap["gap"] / gap["standard_error"]
    return f"{gap['gap']:+6.1f} ± {gap['standard_error']:.2f} nats ({errors:+5.1f} SE)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    seeds = parser.parse_args().seeds
    (x_train, _), (x_test, _) = load_mnist()
    print(
        "seed | memoriser (256 images, 300 epochs) | two unseen sets | learner (6,000 images, 3 epochs) | s"
    )
    for seed in range(seeds):
        start = time.perf_counter()
        set_seed(seed)
        memoriser = build_vae(latent_dim=20, seed=seed)
        memoriser.fit(x_train[:256], epochs=300, batch_size=64, verbose=0, shuffle=True)
        set_seed(seed)
        learner = build_vae(latent_dim=20, seed=seed)
        train_vae(learner, x_train[:6000], x_test[:2000], epochs=3, seed=seed, verbose=0)
        figures = [
            memorisation_gap(memoriser, x_train[:256], x_test[:256], seed=seed),
            memorisation_gap(memoriser, x_test[256:512], x_test[:256], seed=seed),
            memorisation_gap(learner, x_train[:1000], x_test[:1000], seed=seed),
        ]
        print(
            f"{seed} | "
            + " | ".join(_shown(gap) for gap in figures)
            + f" | {time.perf_counter() - start:.0f} s"
        )


if __name__ == "__main__":
    main()
