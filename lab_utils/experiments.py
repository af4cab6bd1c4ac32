"""Controlled experiments: VAE variants trained with the same seed and epoch budget, each measured alike."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lab_utils.config import RunConfig
from lab_utils.judge import judge_images
from lab_utils.metrics import likelihood_figures
from lab_utils.models import build_vae
from lab_utils.training import TrainedModel, train_or_load


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


def train_experiment(
    experiment: Experiment,
    config: RunConfig,
    x_train,
    x_val,
    folder,
    verbose: str | int = 2,
    y_train=None,
    y_val=None,
    retrain: bool | None = None,
) -> TrainedModel:
    """Train (or load from `folder`) the experiment's VAE with the run's epochs, batch and train size.

    The seed is the experiment's, else the run's. With `experiment.binarise`, pass `x_val`
    binarised once (`data.binarise`). `retrain` defaults to `config.retrain`; a notebook that
    borrows a model another notebook trains passes False, so a retraining run (`make run`)
    trains each model once and the notebook that shows it describes the model on disk.
    """
    seed = config.seed if experiment.seed is None else experiment.seed
    x_train = x_train[: config.train_size]
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)

    def build():
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

    return train_or_load(
        build,
        Path(folder) / f"{experiment.name}.keras",
        x_train,
        x_val,
        settings={**experiment.settings(), "train_size": len(x_train)},
        retrain=config.retrain if retrain is None else retrain,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=seed,
        verbose=verbose,
        y_train=None if y_train is None else y_train[: config.train_size],
        y_val=y_val,
        binarise=experiment.binarise,
    )


def run_experiment(
    experiment: Experiment,
    config: RunConfig,
    data,
    classifier,
    reference_features,
    folder,
    samples: int = 1000,
    verbose: str | int = 2,
) -> dict:
    """Train (or load) the experiment's VAE and return its row: −ELBO, IWAE log p(x), sample quality, time.

    The −ELBO and the IWAE estimate are computed on the same images: the first
    `config.iwae_images` test images, with `config.experiment_iwae_samples` samples per image.

    With `verbose` (Keras' setting) it says which model it is on and shows training and IWAE progress.
    """
    (x_train, y_train), (x_test, y_test) = data
    conditional = experiment.architecture == "conditional"
    if verbose:
        print(f"{experiment.name}: training (or loading) the VAE, then measuring it", flush=True)
    vae, history, seconds = train_experiment(
        experiment,
        config,
        x_train,
        x_test,
        folder,
        verbose,
        y_train=y_train if conditional else None,
        y_val=y_test if conditional else None,
    )
    labels = y_test if conditional else None
    intended = np.arange(samples) % 10 if conditional else None
    figures = likelihood_figures(
        vae,
        x_test[: config.iwae_images],
        None if labels is None else labels[: config.iwae_images],
        samples=config.experiment_iwae_samples,
        seed=config.seed,
        progress=bool(verbose),
    )
    generated = vae.generate(samples, config.seed, intended)
    return {
        **asdict(experiment),
        "epochs": len(history["loss"]),
        "negative_elbo": figures["negative_elbo"],
        "reconstruction_loss": figures["reconstruction_loss"],
        "kl_loss": figures["kl_loss"],
        "log_px": -figures["negative_log_px"],
        "test_images": figures["images"],
        "iwae_samples": figures["samples"],
        **judge_images(classifier, generated, reference_features, intended),
        "train_seconds": seconds,
        "model": vae,
    }
