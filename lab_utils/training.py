"""Seeds, `train_vae` (Keras `fit` on tf.data, resumable) and `train_or_load`, which caches trained models."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import keras

from lab_utils.artifacts import cached_model, move_aside
from lab_utils.data import check_images, make_dataset

BACKUP_FOLDER = "backup"
HISTORY_FILE = "history.csv"
TIMES_FILE = "epoch_seconds.csv"  # one line per finished epoch: its number and its wall time
BACKUP_WEIGHTS, BACKUP_EPOCH = "latest.weights.h5", "training_metadata.json"  # what BackupAndRestore writes


def _backup_error(path: Path) -> Exception | None:
    """Why BackupAndRestore could not use the weights or epoch-count file at `path`; None if it can."""
    try:
        if path.name.startswith(BACKUP_EPOCH):
            if not isinstance(json.loads(path.read_text()).get("epoch"), int):
                raise ValueError("no epoch number in it")
        else:
            with h5py.File(path, "r") as weights:  # read every array: a cut-off file fails here
                weights.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, AttributeError) as error:
        return error
    return None


def _repair_backup(backup: Path) -> None:
    """Leave `backup` as BackupAndRestore can read it, or out of its way.

    A kill in the middle of writing the backup leaves a cut-off file, which Keras cannot
    load, and only for the weights does it fall back to the previous copy. So: a damaged pair
    with a readable previous copy (`*.bkp`, from `double_checkpoint`) resumes from that; a
    damaged first backup is moved aside whole (`backup.damaged`) and training starts over.
    """
    current = [backup / BACKUP_WEIGHTS, backup / BACKUP_EPOCH]
    if not any(path.exists() for path in current):
        return
    errors = {path: _backup_error(path) for path in current}
    damaged = {path: error for path, error in errors.items() if error is not None}
    if not damaged:
        return
    previous = [path.with_name(path.name + ".bkp") for path in current]
    if all(_backup_error(path) is None for path in previous):
        for path, error in damaged.items():
            if path.exists():  # out of the backup folder, which Keras deletes when training ends
                move_aside(path, error, then="resuming from the backup before it", into=backup.parent)
        for path, earlier in zip(current, previous):
            shutil.copyfile(earlier, path)
        return
    move_aside(backup, next(iter(damaged.values())), then="training anew from the first epoch")


def set_seed(seed: int) -> None:
    """Seed Python's `random`, NumPy and TensorFlow/Keras in one call; same seed, same losses."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. 42.")
    keras.utils.set_random_seed(seed)


def read_history(path: Path) -> dict[str, list[float]]:
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
    return {key: [float(rows[epoch][key]) for epoch in epochs] for key in keys}


class _EpochTimes(keras.callbacks.Callback):
    """Append each finished epoch's wall time to a file, so a resumed run still counts every epoch."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        with self.path.open("a") as handle:
            handle.write(f"{epoch},{time.perf_counter() - self.started:.3f}\n")


def training_seconds(checkpoint_dir: str | os.PathLike) -> float | None:
    """The wall time of every finished epoch of the run checkpointed in `checkpoint_dir`, summed
    (an epoch run twice, after an interruption, counts once: its last run); None without a record."""
    path = Path(checkpoint_dir) / TIMES_FILE
    if not path.is_file():
        return None
    seconds = {}
    for line in path.read_text().splitlines():
        epoch, value = line.split(",")
        seconds[int(epoch)] = float(value)
    return sum(seconds.values())


def checkpoint_callbacks(checkpoint_dir: str | os.PathLike) -> list[keras.callbacks.Callback]:
    """Callbacks that make a `fit` resumable: per-epoch logs and times in `checkpoint_dir`, and a backup.

    Call it just before `fit`: it repairs a backup damaged by a kill, and when there is no backup
    to resume from, it starts the logs afresh. `keras.callbacks.BackupAndRestore` backs the
    training state up after every epoch and restores it when the same fit is run again.
    """
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    backup = folder / BACKUP_FOLDER
    _repair_backup(backup)
    if not (backup / BACKUP_EPOCH).is_file():  # a fresh run starts fresh logs
        (folder / HISTORY_FILE).unlink(missing_ok=True)
        (folder / TIMES_FILE).unlink(missing_ok=True)
    return [
        _EpochTimes(folder / TIMES_FILE),
        keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),  # survives a kill mid-save
    ]


SETTINGS_FILE = "settings.json"  # in a checkpoint folder: the settings of the run it backs up


def start_checkpoints(checkpoint_dir: str | os.PathLike, settings: dict) -> None:
    """Keep in `checkpoint_dir` only a backup of a run with these `settings`, which then resumes.

    A backup of a run with other settings belongs to a model that is being replaced: it is
    deleted, so that training starts at the first epoch.
    """
    folder = Path(checkpoint_dir)
    settings = json.loads(json.dumps(settings))
    saved = folder / SETTINGS_FILE
    same = saved.is_file() and json.loads(saved.read_text()) == settings
    if (folder / BACKUP_FOLDER).exists() and not same:
        shutil.rmtree(folder / BACKUP_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(settings))


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
    binarise: bool = False,
) -> dict[str, list[float]]:
    """Fit `vae` on `x_train` (validating on `x_val`) and return its per-epoch logs (Keras' History.history).

    Labels (`y_train`, `y_val`) are needed only by a ConditionalVAE. With `binarise`, every
    training batch is a fresh binary draw of its grey images (`x_val` is used as given:
    binarise it once with `data.binarise`).

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
        binarise=binarise,
    )
    val_data = None
    if x_val is not None:
        val_data = make_dataset(check_images(x_val, "x_val"), batch_size, shuffle=False, labels=y_val)

    callbacks = list(callbacks)
    history_path = None
    if checkpoint_dir is not None:
        history_path = Path(checkpoint_dir) / HISTORY_FILE
        callbacks += checkpoint_callbacks(checkpoint_dir)
    history = vae.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        callbacks=callbacks,
        verbose=verbose,
    )
    if history_path is not None and history_path.is_file():
        return read_history(history_path)
    return history.history


class TrainedModel(NamedTuple):
    """What training returns: the model, its per-epoch logs, and how long it took to train."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float


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
    binarise: bool = False,
    fetch=None,
) -> TrainedModel:
    """Return the model saved at `path` if it was trained with the same settings, else train and save it.

    `build()` must return a compiled model (labels `y_train`, `y_val` are for a
    ConditionalVAE; `binarise` as in `train_vae`). Training is checkpointed next to `path`,
    so an interrupted run resumes.
    `settings` (any JSON-able description of the run) decides whether a saved model still
    matches what is asked for; `retrain=True` always trains. `fetch` is `artifacts.cached_model`'s.
    """
    path = Path(path)
    run = {**(settings or {}), "epochs": epochs, "batch_size": batch_size, "seed": seed}
    if binarise:
        run["binarise"] = True

    checkpoints = path.with_name(path.stem + "_checkpoints")

    def train():
        start_checkpoints(checkpoints, run)
        if seed is not None:
            set_seed(seed)
        model = build()
        history = train_vae(
            model,
            x_train,
            x_val,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            checkpoint_dir=checkpoints,
            verbose=verbose,
            y_train=y_train,
            y_val=y_val,
            binarise=binarise,
        )
        # every finished epoch's time, those before an interruption too (the checkpoints hold them)
        return model, {"history": history, "seconds": training_seconds(checkpoints)}

    model, record = cached_model(path, run, train, retrain=retrain, fetch=fetch)
    return TrainedModel(model, record["history"], float(record["seconds"]))
