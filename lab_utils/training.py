"""Seeds, and `train_vae`: Keras `fit` over tf.data with checkpoints that survive an interruption."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from lab_utils.data import N_PIXELS, make_dataset

BACKUP_FOLDER = "backup"
HISTORY_FILE = "history.csv"


def set_seed(seed: int) -> None:
    """Seed Python's `random`, NumPy and TensorFlow/Keras in one call; same seed, same losses."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. 42.")
    keras.utils.set_random_seed(seed)


def _check_images(images, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != N_PIXELS:
        raise ValueError(
            f"{name} has shape {images.shape}; the VAE expects flattened images of shape "
            f"(n, {N_PIXELS}). Load them with load_mnist(flatten=True)."
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty; pass at least one image.")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(
            f"{name} has pixel values in [{images.min()}, {images.max()}]; scale them to [0, 1] "
            "(divide uint8 images by 255) for the Bernoulli decoder."
        )
    return images.astype("float32", copy=False)


def _read_history(path: Path) -> tuple[list[int], dict[str, list[float]]]:
    """Read a CSVLogger file, keeping the last row logged for each epoch.

    CSVLogger writes "NA" for val_* columns when there is no validation data; those
    columns are dropped.
    """
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[int(row.pop("epoch"))] = row
    epochs = sorted(rows)
    keys = [key for key in (rows[epochs[0]] if epochs else ()) if rows[epochs[0]][key] != "NA"]
    return epochs, {key: [float(rows[epoch][key]) for epoch in epochs] for key in keys}


def train_vae(
    vae: keras.Model,
    x_train,
    x_val=None,
    epochs: int = 10,
    batch_size: int = 256,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> keras.callbacks.History:
    """Fit `vae` on `x_train` (validating on `x_val`) and return the Keras History.

    With `checkpoint_dir`, the training state is backed up after every epoch
    (`keras.callbacks.BackupAndRestore`) and the per-epoch logs are appended to
    `history.csv` there; calling `train_vae` again after an interruption resumes at the
    first unfinished epoch and returns the history of all epochs.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be a positive integer.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer, e.g. 256.")
    x_train = _check_images(x_train, "x_train")
    train_data = make_dataset(x_train, batch_size, shuffle=True, seed=seed)
    val_data = None
    if x_val is not None:
        val_data = make_dataset(_check_images(x_val, "x_val"), batch_size, shuffle=False)

    callbacks = list(callbacks)
    history_path = None
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        backup = folder / BACKUP_FOLDER
        history_path = folder / HISTORY_FILE
        resuming = (backup / "training_metadata.json").is_file()
        if not resuming and history_path.exists():
            history_path.unlink()  # a fresh run starts a fresh log
        callbacks += [
            keras.callbacks.CSVLogger(str(history_path), append=True),
            keras.callbacks.BackupAndRestore(str(backup)),
        ]
    history = vae.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        callbacks=callbacks,
        verbose=verbose,
    )
    if history_path is not None and history_path.is_file():
        history.epoch, history.history = _read_history(history_path)
    return history
