"""Controlled experiments: VAE variants trained with the same seed and epoch budget, each measured alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lab_utils.config import RunConfig
from lab_utils.judge import judge_images
from lab_utils.metrics import evaluate_elbo, importance_log_likelihood
from lab_utils.models import build_vae
from lab_utils.training import train_or_load


@dataclass(frozen=True)
class Experiment:
    """One row of an experiment table: which VAE to train."""

    name: str
    architecture: str = "dense"
    latent_dim: int = 2
    beta: float = 1.0
    hidden_units: tuple[int, ...] = (512,)


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

    With `verbose` (Keras' setting) it says which model it is on and shows training and IWAE progress.
    """
    (x_train, y_train), (x_test, y_test) = data
    conditional = experiment.architecture == "conditional"
    folder = Path(folder)
    path = folder / f"{experiment.name}.keras"

    def build():
        return build_vae(
            latent_dim=experiment.latent_dim,
            hidden_units=experiment.hidden_units,
            beta=experiment.beta,
            architecture=experiment.architecture,
            seed=config.seed,
        )

    if verbose:
        print(f"{experiment.name}: training (or loading) the VAE, then measuring it", flush=True)
    vae, history, seconds = train_or_load(
        build,
        path,
        x_train[: config.train_size],
        x_test,
        settings={**asdict(experiment), "train_size": len(x_train[: config.train_size])},
        retrain=config.retrain,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        verbose=verbose,
        y_train=y_train[: config.train_size] if conditional else None,
        y_val=y_test if conditional else None,
    )
    labels = y_test if conditional else None
    intended = np.arange(samples) % 10 if conditional else None
    elbo = evaluate_elbo(vae, x_test, labels)
    log_px = importance_log_likelihood(
        vae,
        x_test[: config.iwae_images],
        None if labels is None else labels[: config.iwae_images],
        samples=config.iwae_samples,
        seed=config.seed,
        progress=bool(verbose),
    )
    generated = vae.generate(samples, config.seed, intended)
    return {
        **asdict(experiment),
        "epochs": len(history["loss"]),
        "negative_elbo": elbo["negative_elbo"],
        "reconstruction_loss": elbo["reconstruction_loss"],
        "kl_loss": elbo["kl_loss"],
        "log_px": float(log_px.mean()),
        **judge_images(classifier, generated, reference_features, intended),
        "train_seconds": seconds,
        "model": vae,
    }
