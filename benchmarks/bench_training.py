"""Time one training epoch on all 60,000 MNIST images: the original lab's pattern against the kit's path.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_training.py [--epochs 5]

(a) original pattern: a keras.Model subclass with a GradientTape train_step, `fit` on NumPy
    arrays, no XLA (as the lab wrote it, ported to Keras 3);
(b) kit path: `build_vae` + `train_vae` (tf.data, XLA, 64 steps per execution).
Both run in this one process on the same data, for the lab model (Dense 512, latent 2,
batch 256) and a 784-400-20 model (batch 128), each with a warm-up epoch first. The FLOP
floor is the epoch's matmul work (forward, input-gradient and weight-gradient products of every
Dense layer) divided by the faster of NumPy's and TensorFlow's float32 matmul rates here.
The last line is `speedup=<a/b median> floor_ratio=<b median/floor>` for the lab model.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import time

import keras
import numpy as np

from lab_utils.data import load_mnist
from lab_utils.models import build_decoder, build_encoder, build_vae
from lab_utils.pitfalls import VAEWithoutTestStep
from lab_utils.training import set_seed, train_vae

SLOW_EPOCH = 1.5  # an epoch this many times the path's fastest is counted as slow

MODELS = (
    ("lab model (dense 512, latent 2)", (512,), 2, 256),
    ("784-400-20 model", (400,), 20, 128),
)


class EpochTimer(keras.callbacks.Callback):
    """Record the wall time of every epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def matmul_rate(size: int = 2048, repeats: int = 10) -> tuple[float, float]:
    """Best float32 matmul rate of NumPy and of TensorFlow on this machine, in FLOP/s."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    a_tf, b_tf = tf.constant(a), tf.constant(b)
    rates = []
    for multiply in (lambda: a @ b, lambda: tf.matmul(a_tf, b_tf).numpy()):
        multiply()  # warm-up
        rates.append(2 * size**3 / min(_timed(multiply) for _ in range(repeats)))
    return rates[0], rates[1]


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def epoch_flops(encoder: keras.Model, decoder: keras.Model, n_images: int) -> float:
    """Matmul FLOPs of one training epoch: forward, input-gradient and weight-gradient per Dense layer."""
    per_image = sum(
        3 * 2 * int(np.prod(layer.kernel.shape))
        for model in (encoder, decoder)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    )
    return per_image * n_images


def time_original(x_train, hidden_units, latent_dim, batch_size, epochs) -> list[float]:
    set_seed(0)
    model = VAEWithoutTestStep(
        build_encoder(latent_dim, hidden_units), build_decoder(latent_dim, hidden_units)
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), jit_compile=False)
    timer = EpochTimer()
    model.fit(x_train, epochs=1 + epochs, batch_size=batch_size, shuffle=True, callbacks=[timer], verbose=0)
    return timer.seconds[1:]


def time_kit(x_train, hidden_units, latent_dim, batch_size, epochs) -> list[float]:
    set_seed(0)
    vae = build_vae(latent_dim=latent_dim, hidden_units=hidden_units)
    timer = EpochTimer()
    train_vae(vae, x_train, epochs=1 + epochs, batch_size=batch_size, seed=0, callbacks=[timer], verbose=0)
    return timer.seconds[1:]


def describe(name: str, seconds: list[float], floor: float) -> float:
    median = float(np.median(seconds))
    # The original pattern's input pipeline holds back the first batch of some epochs by about
    # a second; counting the slow epochs shows whether its median landed on one of them.
    slow = sum(value >= SLOW_EPOCH * min(seconds) for value in seconds)
    print(
        f"  {name:17} min {min(seconds):.3f}  median {median:.3f}  max {max(seconds):.3f} s/epoch"
        f"  (max/median {max(seconds) / median:.2f}, {median / floor:.2f}x the FLOP floor;"
        f" {slow} of {len(seconds)} epochs >= {SLOW_EPOCH}x the fastest)",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs per path (after one warm-up)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs} must be at least 1")

    (x_train, _), _ = load_mnist()
    numpy_rate, tensorflow_rate = matmul_rate()
    rate = max(numpy_rate, tensorflow_rate)  # the floor uses the faster of the two
    print(
        f"float32 matmul rate, 2048x2048: NumPy {numpy_rate / 1e9:.0f} GFLOP/s, "
        f"TensorFlow {tensorflow_rate / 1e9:.0f} GFLOP/s; floor at {rate / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    summary = None
    for name, hidden_units, latent_dim, batch_size in MODELS:
        flops = epoch_flops(
            build_encoder(latent_dim, hidden_units), build_decoder(latent_dim, hidden_units), len(x_train)
        )
        floor = flops / rate
        print(
            f"{name}, batch {batch_size}: {flops / 1e9:.0f} GFLOP per epoch, floor {floor:.3f} s", flush=True
        )
        original = describe(
            "(a) original", time_original(x_train, hidden_units, latent_dim, batch_size, args.epochs), floor
        )
        kit = describe("(b) kit", time_kit(x_train, hidden_units, latent_dim, batch_size, args.epochs), floor)
        print(f"  speedup {original / kit:.2f}x", flush=True)
        if summary is None:
            summary = (original / kit, kit / floor)
    print(f"speedup={summary[0]:.2f} floor_ratio={summary[1]:.2f}")


if __name__ == "__main__":
    main()
