"""Train the lab model (Dense 512, latent 2) on all of MNIST and print its test negative ELBO.

Defaults: 10 epochs, batch 256.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/lab_model_elbo.py [--epochs 10] [--seed 42]
Prints one JSON line with the per-epoch validation losses (nats per image) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time

from lab_utils.data import load_mnist
from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[512])
    parser.add_argument("--latent-dim", type=int, default=2)
    args = parser.parse_args()

    (x_train, _), (x_test, _) = load_mnist()
    set_seed(args.seed)
    vae = build_vae(latent_dim=args.latent_dim, hidden_units=tuple(args.hidden_units))
    start = time.perf_counter()
    history = train_vae(vae, x_train, x_test, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    final = vae.evaluate(x_test, batch_size=1000, verbose=0, return_dict=True)
    logs = history.history
    print(
        json.dumps(
            {
                "model": f"dense {args.hidden_units} latent {args.latent_dim}",
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "seed": args.seed,
                "train_loss": round(logs["loss"][-1], 2),
                "test_negative_elbo": round(final["loss"], 2),
                "test_reconstruction": round(final["reconstruction_loss"], 2),
                "test_kl": round(final["kl_loss"], 2),
                "val_loss_per_epoch": [round(value, 2) for value in logs["val_loss"]],
                "train_seconds": round(seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
