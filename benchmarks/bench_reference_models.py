"""Train the reference VAEs on all of MNIST; print test −ELBO, IWAE −log p(x) and wall time as JSON lines.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_reference_models.py [--samples 1000]

Models (all dense, batch 256, Adam, seed --seed (0), no validation pass during training):
- the lab model: Dense 512, latent 2, 10 epochs at a constant learning rate 1e-3;
- the kit's best latent-2 model: Dense 512 → 256, latent 2, 100 epochs, cosine-decayed rate;
- the kit's best latent-20 model: Dense 512 → 512, latent 20, 80 epochs, cosine-decayed rate.
Training time is wall time of `fit` on this machine; the test figures use all 10,000 test
images (the IWAE estimate with K importance samples per image).
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import json
import time

import keras

from lab_utils.data import load_mnist
from lab_utils.metrics import evaluate_elbo, importance_log_likelihood
from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae

BATCH_SIZE = 256
REFERENCE_MODELS = (
    {"name": "lab model", "hidden_units": (512,), "latent_dim": 2, "epochs": 10, "schedule": "constant"},
    {
        "name": "best latent-2",
        "hidden_units": (512, 256),
        "latent_dim": 2,
        "epochs": 100,
        "schedule": "cosine",
    },
    {
        "name": "best latent-20",
        "hidden_units": (512, 512),
        "latent_dim": 20,
        "epochs": 80,
        "schedule": "cosine",
    },
)


def learning_rate(schedule: str, epochs: int, steps_per_epoch: int, initial: float = 1e-3):
    """A constant rate, or cosine decay to 5 % of it over the whole run."""
    if schedule == "constant":
        return initial
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=epochs * steps_per_epoch, alpha=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="importance samples K per test image")
    parser.add_argument("--only", help="run just the model with this name")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, sampling and shuffling")
    args = parser.parse_args()

    (x_train, _), (x_test, _) = load_mnist()
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    for spec in REFERENCE_MODELS:
        if args.only and spec["name"] != args.only:
            continue
        set_seed(args.seed)
        vae = build_vae(
            latent_dim=spec["latent_dim"],
            hidden_units=spec["hidden_units"],
            learning_rate=learning_rate(spec["schedule"], spec["epochs"], steps_per_epoch),
            seed=args.seed,
        )
        started = time.perf_counter()
        train_vae(vae, x_train, epochs=spec["epochs"], batch_size=BATCH_SIZE, seed=args.seed, verbose=0)
        seconds = time.perf_counter() - started
        elbo = evaluate_elbo(vae, x_test)
        log_px = importance_log_likelihood(vae, x_test, samples=args.samples, seed=args.seed)
        print(
            json.dumps(
                {
                    **{
                        key: spec[key] for key in ("name", "hidden_units", "latent_dim", "epochs", "schedule")
                    },
                    "train_seconds": round(seconds, 1),
                    "test_negative_elbo": round(elbo["negative_elbo"], 2),
                    "test_reconstruction": round(elbo["reconstruction_loss"], 2),
                    "test_kl": round(elbo["kl_loss"], 2),
                    "test_negative_log_px_iwae": round(float(-log_px.mean()), 2),
                    "iwae_samples": args.samples,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
