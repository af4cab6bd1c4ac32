"""The one door to trained models: a notebook asks for a model by name, and this module decides the rest.

Each name has one recipe (which model, which images, which notebook shows it), written once
below. The run mode (`config.py`) sets the sizes and the folder; the seed is the run's unless
the recipe names one. A saved model trained with the same settings is loaded, else the model
is trained and saved (`artifacts.cached_model`: atomic, locked, damaged files moved aside).

Retraining: with VAE_LAB_RETRAIN=1 each model is trained anew once per run. A model saved
before the run started is trained again; one saved since (by an earlier notebook of the same
`vae-lab run`, which sets VAE_LAB_RETRAIN_SINCE) is loaded, so no model is trained twice.

Notebook 02 trains the lab model on the page with its own `vae.fit(...)`; `keep("lab")` gives
that fit the callbacks that save it under its name, or restore it when it is saved already.

Model bundles: with VAE_LAB_MODELS set (a bundle file or URL, `vae_lab.bundle`), a model that is
not saved here is taken from the bundle before it would be trained, if the bundle holds it with
the same settings: the kit builds it from its recipe, loads the bundle's weights (arrays only)
and saves it here. Otherwise, or when the bundle cannot be used, it is trained, and the notebook
says why.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
from filelock import FileLock

from lab_utils.artifacts import artifacts_dir, cached_model, record_path, save_with_record, shown_path
from lab_utils.config import RunConfig, get_run_config
from lab_utils.data import N_PIXELS, binarise, load_mnist
from lab_utils.judge import build_classifier, train_judge
from lab_utils.models import build_vae
from lab_utils.training import (
    BACKUP_EPOCH,
    BACKUP_FOLDER,
    BACKUP_WEIGHTS,
    HISTORY_FILE,
    TrainedModel,
    checkpoint_callbacks,
    read_history,
    start_checkpoints,
    train_or_load,
    training_seconds,
)
from vae_lab import MODELS_VARIABLE, RETRAIN_SINCE_VARIABLE  # vae_lab imports no TensorFlow
from vae_lab.bundle import Bundle, BundleError, open_bundle, reason
from vae_lab.locks import acquire

RUN_SETTINGS = ("epochs", "batch_size", "seed")  # what train_or_load adds to a model's settings
_STARTED = time.time()  # a retraining run that does not say when it started started with this kernel


@dataclass(frozen=True)
class Experiment:
    """One row of an experiment table: which VAE to train."""

    name: str
    architecture: str = "dense"
    latent_dim: int = 2
    beta: float = 1.0
    hidden_units: tuple[int, ...] = (512,)
    likelihood: str = "bernoulli"
    binarise: bool = False  # train on a fresh binary draw of every batch
    seed: int | None = None  # None: the run's seed
    kl_warmup_epochs: int = 0  # the KL weight rises from 0 to β over these first epochs
    free_bits: float = 0.0  # nats of KL per latent dimension the training loss does not charge

    def settings(self) -> dict:
        """What decides whether a saved model is this experiment's (the remedies only when used)."""
        unused = {"kl_warmup_epochs": 0, "free_bits": 0.0}
        return {key: value for key, value in asdict(self).items() if unused.get(key, object()) != value}


@dataclass(frozen=True)
class Recipe:
    """How one named model is made: a VAE `experiment` (None: the judge), and the notebook that shows it."""

    name: str
    notebook: str
    experiment: Experiment | None = None
    folder: str = ""  # under the run's artifacts folder

    @property
    def file(self) -> str:
        earlier = {"lab": "vae_lab.keras", "judge": "digit_classifier.keras"}  # names saved models have
        return earlier.get(self.name, f"{self.name}.keras")


def _recipes(*recipes: Recipe) -> dict[str, Recipe]:
    return {recipe.name: recipe for recipe in recipes}


_GREY_20 = {"latent_dim": 20}
_BINARY_32 = {"hidden_units": (512, 512), "latent_dim": 32, "binarise": True}
FREE_BITS = 1.0  # nats per latent dimension the free-bits models' training loss does not charge
KL_WARMUP_EPOCHS = 3  # the KL weight of the warm-up models rises from 0 to 1 over these first epochs

RECIPES = _recipes(
    Recipe("lab", "02_vae_lab", Experiment("lab")),
    Recipe("judge", "04_compare"),
    *(
        Recipe(experiment.name, "05_experiments", experiment, "experiments")
        for experiment in (
            Experiment("dense, latent 2"),
            Experiment("dense, latent 8", latent_dim=8),
            Experiment("dense, latent 20", latent_dim=20),
            Experiment("β = 0.5", beta=0.5),
            Experiment("β = 4", beta=4.0),
            Experiment("conv, latent 2", architecture="conv"),
            Experiment("conditional, latent 2", architecture="conditional"),
            *(Experiment(f"dense, latent 2, seed {seed}", seed=seed) for seed in (0, 1, 2)),
        )
    ),
    *(
        Recipe(experiment.name, "06_likelihoods", experiment, "likelihoods")
        for experiment in (
            Experiment("continuous_bernoulli", likelihood="continuous_bernoulli"),
            Experiment("binarised", binarise=True),
            Experiment("binarised_512_512_latent_32", **_BINARY_32),
        )
    ),
    *(
        Recipe(experiment.name, "07_what_the_elbo_hides", experiment, "experiments")
        for experiment in (
            Experiment("latent 20, KL warm-up", kl_warmup_epochs=KL_WARMUP_EPOCHS, **_GREY_20),
            Experiment("latent 20, free bits", free_bits=FREE_BITS, **_GREY_20),
            Experiment("binarised latent 32, KL warm-up", kl_warmup_epochs=KL_WARMUP_EPOCHS, **_BINARY_32),
            Experiment("binarised latent 32, free bits", free_bits=FREE_BITS, **_BINARY_32),
        )
    ),
)


def recipe(name: str) -> Recipe:
    """The recipe called `name`; an unknown name is an error that lists the known ones."""
    if name not in RECIPES:
        known = ", ".join(map(repr, RECIPES))
        raise KeyError(f"No trained model is called {name!r}; the kit's models are: {known}.")
    return RECIPES[name]


def model_path(name: str, config: RunConfig | None = None) -> Path:
    """Where the model called `name` is saved for this run (or `config`'s) mode."""
    config = config or get_run_config()
    found = recipe(name)
    return artifacts_dir(config.mode) / found.folder / found.file


def where(name: str) -> str:
    """Where the model called `name` is saved, as a notebook shows it (relative to the kit)."""
    return shown_path(model_path(name))


def _settings(found: Recipe, config: RunConfig) -> dict:
    """What decides whether a saved model is this recipe's for `config` (written as earlier versions saved it,
    so that their models still load)."""
    train_size = 60_000 if config.train_size is None else config.train_size
    if found.experiment is None:
        return {"model": "cnn 32-64, dense 128", "train_size": train_size,
                "epochs": config.classifier_epochs, "seed": config.seed}
    model = {"model": "dense 512, latent 2"} if found.name == "lab" else found.experiment.settings()
    seed = config.seed if found.experiment.seed is None else found.experiment.seed
    run = {"epochs": config.epochs, "batch_size": config.batch_size, "seed": seed}
    return {**model, "train_size": train_size, **run}  # an experiment's own settings say whether it binarises


def _retraining(path: Path, config: RunConfig) -> bool:
    """Whether this run retrains the model saved at `path`: VAE_LAB_RETRAIN is set, and it was saved before
    the run started (or not at all)."""
    if not config.retrain:
        return False
    since = float(os.environ.get(RETRAIN_SINCE_VARIABLE) or _STARTED)
    return not path.is_file() or path.stat().st_mtime < since


@functools.cache
def _bundle(source: str) -> Bundle | None:
    """The bundle at `source`, opened once per kernel; None (said once, with why) if it cannot be used."""
    try:
        return open_bundle(source)
    except BundleError as error:
        print(f"{error} Models are trained here instead.")
        return None


def _from_bundle(name: str, config: RunConfig) -> bool:
    """Put the model called `name` at its path from the model bundle VAE_LAB_MODELS names, if it holds it
    trained with this run's settings; say which and why otherwise. The caller holds the model's lock."""
    source = os.environ.get(MODELS_VARIABLE, "").strip()
    found, path = recipe(name), model_path(name, config)
    if not source:
        return False
    bundle = _bundle(source)
    if bundle is None:
        return False
    entry = bundle.entry(f"{config.mode}/{(Path(found.folder) / found.file).with_suffix('').as_posix()}")
    settings = json.loads(json.dumps(_settings(found, config)))
    if entry is None or entry.record.get("settings") != settings:
        why = "does not hold it" if entry is None else "holds it trained with other settings"
        print(f"The model bundle {bundle.shown} {why} ({name!r}, {config.mode} mode); training it here.")
        return False
    try:
        weights = bundle.weights(entry)
        model = build_classifier(config.seed) if found.experiment is None else untrained_model(name, config)
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            # Adam's state is not in a bundle: Keras says so, and it does not matter here
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            (Path(folder) / "model.weights.h5").write_bytes(weights)
            model.load_weights(Path(folder) / "model.weights.h5")
        model.optimizer.build(model.trainable_variables)  # a fresh Adam: a backup made from it fits a fit
    except BundleError as error:
        print(f"{error} Training {name!r} here.")
        return False
    except Exception as error:  # noqa: BLE001 - h5py and Keras raise many kinds for a file that is not these weights
        print(f"The model bundle {bundle.shown}'s {entry.file} is not the weights of the {name!r} model "
              f"({reason(error)}); training it here.")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    save_with_record(path, model, entry.record, said=False)  # not "Saved the trained model": none was trained
    print(f"Took the {name} model from the model bundle {bundle.shown} (trained with these settings).")
    return True


@functools.cache
def mnist() -> tuple:
    """load_mnist(), read once per kernel: the images every recipe trains on."""
    return load_mnist()


def trained_model(
    name: str, config: RunConfig | None = None, data=None, verbose: str | int = 2
) -> TrainedModel:
    """The model called `name`, its per-epoch logs and training seconds: loaded if saved, else trained.

    `config` and `data` (load_mnist()'s tuple) default to this run's; tests pass small ones.
    """
    config = config or get_run_config()
    found = recipe(name)
    (x_train, y_train), (x_test, y_test) = data if data is not None else mnist()
    x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    path = model_path(name, config)

    if found.experiment is None:
        classifier, record = cached_model(
            path,
            _settings(found, config),
            lambda: train_judge(x_train, y_train, config.classifier_epochs, config.seed, verbose),
            retrain=_retraining(path, config),
            fetch=lambda: _from_bundle(name, config),
        )
        return TrainedModel(classifier, record.get("history", {}), float(record["seconds"]))

    experiment = found.experiment
    settings = _settings(found, config)
    conditional = experiment.architecture == "conditional"
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    vae, history, seconds = train_or_load(
        lambda: _build(experiment, settings["seed"], steps_per_epoch),
        path,
        x_train,
        binarise(x_test, seed=0) if experiment.binarise else x_test,  # notebook 06's fixed binary test set
        settings={key: value for key, value in settings.items() if key not in RUN_SETTINGS},  # it adds those
        retrain=_retraining(path, config),
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=settings["seed"],
        verbose=verbose,
        y_train=y_train if conditional else None,
        y_val=y_test if conditional else None,
        binarise=experiment.binarise,
        fetch=lambda: _from_bundle(name, config),
    )
    return TrainedModel(vae, history, seconds)


def untrained_model(name: str, config: RunConfig | None = None) -> keras.Model:
    """The VAE called `name` as its recipe builds it, before training (compiled, seeded)."""
    config = config or get_run_config()
    if recipe(name).experiment is None:
        raise ValueError(f"{name!r} is not a VAE; judge.build_classifier builds the untrained judge.")
    settings = _settings(recipe(name), config)
    steps_per_epoch = math.ceil(settings["train_size"] / config.batch_size)
    return _build(recipe(name).experiment, settings["seed"], steps_per_epoch)


def _build(experiment: Experiment, seed: int, steps_per_epoch: int) -> keras.Model:
    return build_vae(
        latent_dim=experiment.latent_dim,
        hidden_units=experiment.hidden_units,
        beta=experiment.beta,
        architecture=experiment.architecture,
        likelihood=experiment.likelihood,
        seed=seed,
        kl_warmup_steps=experiment.kl_warmup_epochs * steps_per_epoch,
        free_bits=experiment.free_bits,
    )


def history(name: str, config: RunConfig | None = None) -> dict[str, list[float]]:
    """The per-epoch logs saved with the model called `name` (Keras' History.history)."""
    return _record(name, config)["history"]


def _record(name: str, config: RunConfig | None) -> dict:
    path = record_path(model_path(name, config))
    if not path.is_file():
        raise FileNotFoundError(f"No model called {name!r} is saved ({shown_path(path)}); train it first.")
    return json.loads(path.read_text())


_LOCKS: dict[str, FileLock] = {}  # one per model file, kept across cells: an interrupted fit still holds it


class _KeepAsNamed(keras.callbacks.Callback):
    """For a `fit` on the page: restore the named model if it is saved, else save what the fit trains.

    Before training it checks that the fit follows the recipe (layer sizes, epochs, batches per
    epoch; a fit that does not is left alone, and not saved under the name) and takes the
    model's lock. If a model trained with the recipe's settings is saved, it writes it as Keras'
    backup, so that `keras.callbacks.BackupAndRestore` restores its weights and Adam state and
    `fit` runs no epoch. It runs the checkpoint callbacks (`training.checkpoint_callbacks`), and
    after training saves the model and its record as `trained_model` would.
    """

    def __init__(self, name: str, config: RunConfig):
        super().__init__()
        self.name, self.config = name, config
        self.path = model_path(name, config)
        self.checkpoints = self.path.with_name(self.path.stem + "_checkpoints")
        self.settings = json.loads(json.dumps(_settings(recipe(name), config)))
        self.inner: list[keras.callbacks.Callback] = []
        self.differs: str | None = None
        self.epochs_run = 0

    def _difference(self) -> str | None:
        """None if this fit trains the recipe's model as the recipe says, else how it differs."""
        steps = math.ceil(self.settings["train_size"] / self.settings["batch_size"])
        built = untrained_model(self.name, self.config)
        differences = [
            f"{what} {mine} (the recipe's: {theirs})"
            for what, mine, theirs in (
                ("parameters", self.model.encoder.count_params() + self.model.decoder.count_params(),
                 built.encoder.count_params() + built.decoder.count_params()),
                ("epochs", self.params.get("epochs"), self.settings["epochs"]),
                ("batches per epoch", self.params.get("steps"), steps),
            )
            if mine != theirs
        ]
        return "; ".join(differences) or None

    def _saved_settings(self) -> dict | None:
        """The settings the model saved under the name was trained with (None: none is saved)."""
        record = record_path(self.path)
        if not (self.path.is_file() and record.is_file()):
            return None
        return json.loads(record.read_text()).get("settings")

    def _restore_saved(self, backup: Path) -> None:
        """Write the saved model as the backup Keras restores from, if it was trained with these settings."""
        if backup.exists() or self._saved_settings() != self.settings:
            return
        saved = json.loads(record_path(self.path).read_text())
        backup.mkdir(parents=True)
        keras.models.load_model(self.path).save_weights(backup / BACKUP_WEIGHTS)
        (backup / BACKUP_EPOCH).write_text(json.dumps({"epoch": len(saved["history"]["loss"]), "batch": 0}))

    def on_train_begin(self, logs=None):
        self.differs, self.inner, self.epochs_run = self._difference(), [], 0
        if self.differs:
            print(f"This fit is not the recipe for {self.name!r}: {self.differs}. It trains, unsaved.")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = _LOCKS.setdefault(str(self.path), FileLock(f"{self.path}.lock"))
        if not lock.is_locked:
            acquire(lock, f"Another run is training {self.path.name}; waiting for it to finish...")
        start_checkpoints(self.checkpoints, self.settings)
        backup = self.checkpoints / BACKUP_FOLDER
        if _retraining(self.path, self.config):
            shutil.rmtree(backup, ignore_errors=True)
        else:
            if self._saved_settings() != self.settings:
                _from_bundle(self.name, self.config)
            self._restore_saved(backup)
        if not self.model.built:  # Keras builds a subclassed model at its first batch; a backup needs it
            self.model.build((None, N_PIXELS))
        self.inner = checkpoint_callbacks(self.checkpoints)
        for callback in self.inner:
            callback.set_model(self.model)
            callback.set_params(self.params)
            callback.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for callback in self.inner:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        for callback in self.inner:
            callback.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self.differs:
            return
        try:
            for callback in self.inner:
                callback.on_train_end(logs)
            if self.epochs_run == 0:
                print(
                    f"Restored the {self.name} model saved in {shown_path(self.path)}; "
                    "no epoch left to train (VAE_LAB_RETRAIN=1 trains it again)."
                )
                history = json.loads(record_path(self.path).read_text())["history"]
            else:
                history = read_history(self.checkpoints / HISTORY_FILE)
                record = {"history": history, "seconds": training_seconds(self.checkpoints)}
                save_with_record(self.path, self.model, {**record, "settings": self.settings})
            # what `fit` returns then holds every epoch: those of a run it resumed, or restored, too
            if isinstance(getattr(self.model, "history", None), keras.callbacks.History):
                self.model.history.history = history
        finally:
            _LOCKS[str(self.path)].release(force=True)


def keep(name: str, config: RunConfig | None = None) -> list[keras.callbacks.Callback]:
    """Callbacks for a `fit` that trains the model called `name` on the page (notebook 02).

    The first run trains, logs each epoch, backs up after each one (an interrupted run resumes
    where it stopped) and saves the model under its name; a later run restores the saved model
    and trains no epoch. Either way, the History `fit` returns holds every epoch's losses.
    """
    return [_KeepAsNamed(name, config or get_run_config())]
