"""Train the best VAE on dynamically binarised MNIST; print its test NLL beside the literature as JSON.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_binarised.py [--epochs 45] [--test-images 1000]

On binary images the Bernoulli decoder is a true likelihood, so the IWAE estimate
(K = 5000, as in Burda, Grosse & Salakhutdinov 2016) is an estimate of −log p(x) that can be
put beside the paper's Table 1 (one stochastic layer: VAE 86.76, IWAE k = 50 84.78 nats,
after 3,280 passes over the data). Training images are binarised afresh in every batch; the
test images are binarised once with seed 0. The −ELBO and the NLL are computed on the same
--test-images test images, spread evenly over the test set (every 10th for 1,000): the test
set is not shuffled and its first 5,000 digits are the cleaner, easier half (LeCun, Cortes &
Burges), so the first 1,000 would flatter the model. The −ELBO on all 10,000 is printed too,
and the NLL's standard error over the images.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import json
import time

import keras
import numpy as np

from lab_utils.data import binarise, load_mnist
from lab_utils.metrics import evaluate_elbo, likelihood_figures
from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae

PAPER = {"VAE, Burda et al. 2016, Table 1": 86.76, "IWAE k=50, Burda et al. 2016, Table 1": 84.78}


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matrix-product rate today (NumPy), to read the training time by."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    started = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=45, help="passes over the 60,000 training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--samples", type=int, default=5000, help="importance samples K per test image")
    parser.add_argument("--test-images", type=int, default=1000, help="how many test images to score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, _), (x_test, _) = load_mnist()
    test_all = binarise(x_test, seed=0)
    test = test_all[:: len(test_all) // args.test_images][: args.test_images]
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    set_seed(args.seed)
    vae = build_vae(
        latent_dim=args.latent_dim,
        hidden_units=tuple(args.hidden_units),
        learning_rate=keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps, alpha=0.05),
        seed=args.seed,
    )
    started = time.perf_counter()
    train_vae(
        vae, x_train, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, verbose=0, binarise=True
    )
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    figures = likelihood_figures(vae, test, samples=args.samples, seed=args.seed)
    iwae_seconds = time.perf_counter() - started
    all_negative_elbo = evaluate_elbo(vae, test_all)["negative_elbo"]
    print(
        json.dumps(
            {
                "model": f"dense {'-'.join(map(str, args.hidden_units))}, latent {args.latent_dim}",
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "train_seconds": round(seconds, 1),
                "test_images": len(test),
                "test_negative_elbo": round(figures["negative_elbo"], 2),
                "test_kl": round(figures["kl_loss"], 2),
                "test_nll_iwae": round(figures["negative_log_px"], 2),
                "test_nll_standard_error": round(figures["standard_error"], 2),
                "all_10000_negative_elbo": round(all_negative_elbo, 2),
                "iwae_samples": args.samples,
                "iwae_seconds": round(iwae_seconds, 1),
                "paper_nll": PAPER,
                "matmul_gflops": round(matmul_gflops(), 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
