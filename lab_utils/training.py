"""Seeds, and `train_vae`: Keras `fit` over tf.data with checkpoints that survive an interruption."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras

from lab_utils.config import RunConfig, artifacts_dir
from lab_utils.data import check_images, make_dataset
from lab_utils.models import build_vae

BACKUP_FOLDER = "backup"
HISTORY_FILE = "history.csv"


def set_seed(seed: int) -> None:
    """Seed Python's `random`, NumPy and TensorFlow/Keras in one call; same seed, same losses."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. 42.")
    keras.utils.set_random_seed(seed)


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
    y_train=None,
    y_val=None,
) -> keras.callbacks.History:
    """Fit `vae` on `x_train` (validating on `x_val`) and return the Keras History.

    Labels (`y_train`, `y_val`) are needed only by a ConditionalVAE.

    With `checkpoint_dir`, the training state is backed up after every epoch
    (`keras.callbacks.BackupAndRestore`) and the per-epoch logs are appended to
    `history.csv` there; calling `train_vae` again after an interruption resumes at the
    first unfinished epoch and returns the history of all epochs.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be a positive integer.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer, e.g. 256.")
    x_train = check_images(x_train, "x_train")
    train_data = make_dataset(
        x_train,
        batch_size,
        shuffle=True,
        seed=seed,
        labels=y_train,
    )
    val_data = None
    if x_val is not None:
        val_data = make_dataset(check_images(x_val, "x_val"), batch_size, shuffle=False, labels=y_val)

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


def write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, so a crash never leaves half a file."""
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    write(temporary)
    os.replace(temporary, path)


def train_or_load(
    build,
    path: str | os.PathLike,
    x_train,
    x_val=None,
    settings: dict | None = None,
    retrain: bool = False,
    epochs: int = 10,
    batch_size: int = 256,
    seed: int | None = None,
    verbose: str | int = "auto",
    y_train=None,
    y_val=None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Return (model, history): loaded from `path` if it was saved with the same settings, else trained.

    `build()` must return a compiled model (labels `y_train`, `y_val` are for a
    ConditionalVAE). Training is checkpointed next to `path`, so an
    interrupted run resumes; the finished model (`.keras`) and its history (`.history.json`)
    are written atomically. `settings` (any JSON-able description of the run) decides whether
    a saved model still matches what is asked for; `retrain=True` always trains.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path={str(path)!r} must end in .keras (the Keras model format).")
    record = path.with_name(path.stem + ".history.json")
    run = {**(settings or {}), "epochs": epochs, "batch_size": batch_size, "seed": seed}
    if not retrain and path.is_file() and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("settings") == json.loads(json.dumps(run)):
            print(f"Loaded the trained model from {path} (pass retrain=True to train again).")
            return keras.models.load_model(path, safe_mode=True), saved["history"]
        print(f"{path} was trained with other settings ({saved.get('settings')}); training anew.")
    if seed is not None:
        set_seed(seed)
    model = build()
    started = time.perf_counter()
    history = train_vae(
        model,
        x_train,
        x_val,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_dir=path.with_name(path.stem + "_checkpoints"),
        verbose=verbose,
        y_train=y_train,
        y_val=y_val,
    )
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, model.save)
    write_atomically(
        record,
        lambda target: target.write_text(
            json.dumps({"settings": run, "train_seconds": seconds, "history": history.history}, indent=1)
        ),
    )
    print(f"Saved the trained model to {path}.")
    return model, history.history


def training_seconds(path: str | os.PathLike) -> float:
    """Return how long the model saved at `path` by `train_or_load` took to train."""
    record = Path(path).with_name(Path(path).stem + ".history.json")
    if not record.is_file():
        raise ValueError(f"no training record next to {path}; train it with train_or_load first.")
    return float(json.loads(record.read_text())["train_seconds"])


LAB_MODEL_FILE = "vae_lab.keras"


def train_lab_model(
    config: RunConfig, x_train, x_val=None, retrain: bool = False, verbose: str | int = 2
) -> tuple[keras.Model, dict]:
    """Return the lab's VAE (Dense 512, latent 2) for `config`: loaded from artifacts/ if saved, else trained.

    Notebook 02 trains it (`retrain=True` trains anew even if it is saved); the later
    notebooks call this with the default and get the model notebook 02 saved.
    """

    def build():
        return build_vae(latent_dim=2, hidden_units=(512,), learning_rate=1e-3, seed=config.seed)

    return train_or_load(
        build,
        artifacts_dir(config.mode) / LAB_MODEL_FILE,
        x_train[: config.train_size],
        x_val,
        settings={"model": "dense 512, latent 2", "train_size": len(x_train[: config.train_size])},
        retrain=retrain,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        verbose=verbose,
    )
