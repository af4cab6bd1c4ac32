"""What notebook 02's live training view costs per epoch: its drawing time against the epoch's.

Usage: MNIST_DIR=../shared/data/mnist python benchmarks/bench_training_view.py [--epochs 3]

Fits the lab model (Dense 512, latent 2) on all 60,000 training images twice from the same
seed, with and without `TrainingView`, and prints each epoch's wall time and the view's
drawing time: building the figure and rendering it to PNG, which the view does itself. Outside
a notebook the PNG is sent nowhere: this is the kernel's share of the cost.
"""

import lab_utils  # noqa: F401, I001  (first: it imports TensorFlow without its start-up log lines)
import argparse
import time

import keras
import numpy as np

from lab_utils.data import load_mnist, make_dataset
from lab_utils.training_view import TrainingView
from lab_utils import training_view
from lab_utils.trained import untrained_model


class EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)

    def on_train_begin(self, logs=None):
        self.seconds = []


class Shown:
    """Stands in for IPython's display and its handle: the view has rendered the PNG already."""

    def __init__(self, picture, display_id=False):
        pass

    def update(self, picture):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    training_view.display = Shown
    (x_train, _), (x_test, y_test) = load_mnist()
    for with_view in (False, True):
        keras.utils.set_random_seed(42)
        vae = untrained_model("lab")
        clock, view = EpochClock(), TrainingView(x_test, y_test)
        callbacks = [clock, view] if with_view else [clock]
        vae.fit(make_dataset(x_train, 256, shuffle=True, seed=42), validation_data=make_dataset(x_test, 256),
                epochs=args.epochs, shuffle=False, verbose=0, callbacks=callbacks)
        epochs = np.array(clock.seconds[1:])  # the first epoch compiles the steps
        label = "with" if with_view else "without"
        line = f"{label} the view: epochs 2-{args.epochs}, {epochs.mean():.2f} s each"
        if with_view:
            drawing = np.array(view.seconds[1:]).mean()
            line += f"; drawing {drawing:.3f} s per epoch ({drawing / epochs.mean():.1%} of an epoch)"
        print(line)


if __name__ == "__main__":
    main()
