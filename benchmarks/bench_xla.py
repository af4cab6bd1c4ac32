"""Where XLA helps on a CPU and where it hurts: the same work with and without `jit_compile`, in one run.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_xla.py [--repeats 2]

The kit compiles its dense VAEs with XLA (`build_vae`'s default) and leaves the convolutional
VAE and the judge classifier to Keras' "auto" (off on a CPU). Each line times one piece of work
(best of `--repeats`, after a warm-up call that compiles it) both ways and prints the ratio;
above 1 means XLA is the slower.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import time

from lab_utils.data import load_mnist
from lab_utils.judge import build_classifier
from lab_utils.metrics import importance_log_likelihood
from lab_utils.models import build_vae
from lab_utils.training import set_seed, train_vae


def best_of(work, repeats: int) -> float:
    work()  # compiles
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def vae_training(architecture, images):
    def build(jit):
        set_seed(0)
        vae = build_vae(architecture=architecture, seed=0, jit_compile=jit)
        return lambda: train_vae(vae, images, epochs=1, batch_size=256, seed=0, verbose=0)

    return build


def vae_iwae(architecture, images):
    def build(jit):
        vae = build_vae(architecture=architecture, seed=0, jit_compile=jit)
        return lambda: importance_log_likelihood(vae, images, samples=1000)

    return build


def judge_training(images, labels):
    def build(jit):
        classifier = build_classifier(seed=0, jit_compile=jit)
        return lambda: classifier.fit(images, labels, epochs=1, batch_size=128, verbose=0)

    return build


def judge_reading(images):
    def build(jit):
        classifier = build_classifier(seed=0, jit_compile=jit)
        return lambda: classifier.predict(images, batch_size=1000, verbose=0)

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per case (after one warm-up)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be at least 1")

    (x_train, y_train), (x_test, _) = load_mnist()
    cases = {
        "dense VAE (the lab's), 1 epoch on 60,000 images": vae_training("dense", x_train),
        "conv VAE, 1 epoch on 60,000 images": vae_training("conv", x_train),
        "dense VAE (the lab's), IWAE K = 1,000 on 100 images": vae_iwae("dense", x_test[:100]),
        "conv VAE, IWAE K = 1,000 on 100 images": vae_iwae("conv", x_test[:100]),
        "judge CNN, 1 epoch on 5,120 images": judge_training(x_train[:5_120], y_train[:5_120]),
        "judge CNN, reads 10,000 images": judge_reading(x_test),
    }
    for name, build in cases.items():
        with_xla, without = best_of(build(True), args.repeats), best_of(build(False), args.repeats)
        ratio = with_xla / without
        print(f"{name:54} XLA {with_xla:7.2f} s  without {without:7.2f} s  ratio {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
