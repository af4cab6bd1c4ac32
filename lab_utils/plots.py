"""Every figure the notebooks show; each helper returns its matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from lab_utils.data import IMAGE_SIZE

LOSS_TERMS = (
    ("loss", "Total: negative ELBO"),
    ("reconstruction_loss", "Reconstruction: −log p(x|z)"),
    ("kl_loss", "KL(q(z|x) ‖ p(z))"),
)


def _history_dict(history) -> Mapping[str, Sequence[float]]:
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping) or "loss" not in logs:
        raise ValueError(
            "history must be the History returned by train_vae/fit (or its .history dict) "
            f"with a 'loss' entry; got {type(history).__name__}."
        )
    return logs


def plot_loss_curves(history, title: str = "VAE training: train vs validation loss") -> Figure:
    """Plot train and validation curves of the total loss and of each loss term, per epoch."""
    logs = _history_dict(history)
    epochs = getattr(history, "epoch", None) or list(range(len(logs["loss"])))
    epochs = [epoch + 1 for epoch in epochs]
    figure = Figure(figsize=(13, 3.6), layout="constrained")
    axes = figure.subplots(1, len(LOSS_TERMS))
    for axis, (key, label) in zip(axes, LOSS_TERMS):
        if key in logs:
            axis.plot(epochs, logs[key], marker="o", label="train")
        if f"val_{key}" in logs:
            axis.plot(epochs, logs[f"val_{key}"], marker="s", label="validation (test set)")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        axis.set_ylabel("nats per image")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return figure


def _as_images(images, name: str) -> np.ndarray:
    images = np.asarray(images, dtype="float32")
    if images.ndim == 2 and images.shape[1] == IMAGE_SIZE * IMAGE_SIZE:
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if images.ndim != 3:
        raise ValueError(f"{name} has shape {images.shape}; expected (n, 784) or (n, 28, 28) images.")
    return images


def show_image_rows(
    rows: Sequence, row_labels: Sequence[str], title: str, column_labels: Sequence[str] = ()
) -> Figure:
    """Show equal-length rows of 28x28 images in a grid, one labelled row per set."""
    rows = [_as_images(row, label) for row, label in zip(rows, row_labels)]
    if len(rows) != len(row_labels):
        raise ValueError(f"got {len(rows)} image rows but {len(row_labels)} row labels.")
    n = len(rows[0])
    if n == 0 or any(len(row) != n for row in rows):
        raise ValueError(
            f"every row needs the same, non-zero number of images; got {[len(r) for r in rows]}."
        )
    figure = Figure(figsize=(1.1 * n + 1.2, 1.25 * len(rows) + 0.6), layout="constrained")
    axes = np.asarray(figure.subplots(len(rows), n, squeeze=False))
    for r, (row, label) in enumerate(zip(rows, row_labels)):
        for c in range(n):
            axis = axes[r, c]
            axis.imshow(row[c], cmap="gray_r", vmin=0.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(label)
            if r == 0 and column_labels:
                axis.set_title(str(column_labels[c]), fontsize=9)
    figure.suptitle(title)
    return figure


def show_reconstructions(originals, reconstructions, labels: Sequence[int] = (), n: int = 10) -> Figure:
    """Show `n` originals (top row) over their reconstructions (bottom row)."""
    if n < 1:
        raise ValueError(f"n={n} must be at least 1.")
    originals, reconstructions = (
        _as_images(originals, "originals"),
        _as_images(reconstructions, "reconstructions"),
    )
    if len(originals) != len(reconstructions):
        raise ValueError(
            f"got {len(originals)} originals but {len(reconstructions)} reconstructions; "
            "pass one per original."
        )
    n = min(n, len(originals))
    column_labels = [f"digit {int(label)}" for label in labels[:n]] if len(labels) else ()
    return show_image_rows(
        [originals[:n], reconstructions[:n]],
        ["original", "reconstruction"],
        title="Test images (top) and their VAE reconstructions (bottom)",
        column_labels=column_labels,
    )
