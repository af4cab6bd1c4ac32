"""Watch the VAE learn: a Keras callback that redraws the losses and the model's output after every epoch."""

from __future__ import annotations

import io
import time

import keras
import numpy as np
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab_utils.data import IMAGE_SIZE, check_images
from lab_utils.models import call_model
from lab_utils.plots import DIGIT_COLOURS, write_digits


class TrainingView(keras.callbacks.Callback):
    """Pass it to `fit`: after each epoch it redraws one figure in place, so a student sees the
    trade-off settle while the model trains.

    The figure holds the total loss and the KL term per epoch (training and test), the first
    `shown` test images above their reconstructions, and for a 2-D code the codes of
    `codes` test images coloured by digit. It is one output updated through IPython's display
    handle (no ipywidgets, so the same on Colab's ipywidgets 7 and JupyterLab's 8), and the saved
    notebook keeps its last state as an ordinary image. When `fit` runs no epoch (a restored
    model), it draws the saved run's history once. `seconds` lists what each drawing cost.
    """

    def __init__(self, images, labels, shown: int = 8, codes: int = 1000):
        super().__init__()
        images = check_images(images, "images")
        self.originals = images[:shown]
        self.images, self.labels = images[:codes], np.asarray(labels)[:codes]
        self.seconds: list[float] = []

    def set_model(self, model):
        super().set_model(model)
        # z_mean without the Sampling layer: drawing codes would move its random generator, and the
        # view would change the very training it shows (seen: the lab model's test loss moved 0.3 nats)
        self.means = keras.Model(model.encoder.input, model.encoder.get_layer("z_mean").output)

    def on_train_begin(self, logs=None):
        self.logs: dict[str, list[float]] = {}
        self.handle = None

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(float(value))
        self._draw(self.logs)

    def on_train_end(self, logs=None):
        # every epoch of the model (`trained.keep` fills what fit returns with a resumed or restored run's)
        history = getattr(getattr(self.model, "history", None), "history", None) or self.logs
        drawn = len(self.logs.get("loss", []))
        if history and (self.handle is None or len(history.get("loss", [])) != drawn):
            self._draw(history)

    def figure(self, history) -> Figure:
        """The figure for `history` (Keras' per-epoch logs) and the model as it is now."""
        z_mean = np.asarray(call_model(self.means, self.images))
        reconstructions = self.model.decode_images(z_mean[: len(self.originals)])  # from z_mean, as predict
        two_d = z_mean.shape[1] == 2
        figure = Figure(figsize=(13 if two_d else 10, 3.4), dpi=72)
        grid = figure.add_gridspec(1, 4 if two_d else 3, width_ratios=[1, 1, 1.4, 1][: 4 if two_d else 3],
                                   left=0.04, right=0.99, bottom=0.15, top=0.8, wspace=0.25)
        epochs = np.arange(1, len(history.get("loss", [])) + 1)
        for column, (key, title) in enumerate((("loss", "negative ELBO"), ("kl_loss", "KL term"))):
            axis = figure.add_subplot(grid[0, column])
            for prefix, style in (("", "-"), ("val_", "--")):
                if history.get(prefix + key):
                    axis.plot(epochs, history[prefix + key], style, marker="o", markersize=3,
                              label="test" if prefix else "training")
            axis.set_title(f"{title} (nats per image)")
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.legend(fontsize=8)
            axis.grid(alpha=0.3)
        pair = np.concatenate([self.originals.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), reconstructions])
        pair = pair.reshape(2, -1, IMAGE_SIZE, IMAGE_SIZE)
        picture = figure.add_subplot(grid[0, 2])
        rows = np.concatenate([np.concatenate(list(row), axis=1) for row in pair], axis=0)  # (56, shown · 28)
        picture.imshow(rows, cmap="gray_r", vmin=0, vmax=1)
        picture.set_title("test images (top), reconstructions (below)")
        picture.axis("off")
        if two_d:
            scatter = figure.add_subplot(grid[0, 3])
            for digit in range(10):
                points = z_mean[self.labels == digit]
                scatter.scatter(points[:, 0], points[:, 1], s=2, alpha=0.6, color=DIGIT_COLOURS[digit])
            write_digits(scatter, z_mean, self.labels, range(10))
            scatter.set_title(f"codes of {len(z_mean):,} test images")
        figure.suptitle(f"after {len(epochs)} epoch{'s' * (len(epochs) != 1)}")
        return figure

    def _draw(self, history) -> None:
        started = time.perf_counter()
        buffer = io.BytesIO()
        FigureCanvasAgg(self.figure(history)).print_png(buffer)  # no tight crop (as inline does): faster
        picture = Image(data=buffer.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(picture, display_id=True)
        else:
            self.handle.update(picture)
        self.seconds.append(time.perf_counter() - started)
