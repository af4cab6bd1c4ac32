"""Controlled experiments: the rows of notebook 05's tables, each VAE (a `trained` recipe) measured alike."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from lab_utils.config import RunConfig, get_run_config
from lab_utils.judge import judge_images
from lab_utils.metrics import likelihood_figures
from lab_utils.trained import mnist, recipe, trained_model


def run_experiment(
    name: str,
    classifier,
    reference_features,
    config: RunConfig | None = None,
    data=None,
    generated: int = 1000,
    verbose: str | int = 2,
) -> dict:
    """The row of the model called `name`: −ELBO, IWAE log p(x), sample quality, training time.

    The model comes from `trained.trained_model` (trained, or loaded if saved); the judge reads
    `generated` images it decodes from prior draws. The −ELBO and
    the IWAE estimate are computed on the same images: the first `config.iwae_images` test
    images, with `config.experiment_iwae_samples` samples per image. `config` and `data`
    default to this run's. With `verbose` (Keras' setting) it says which model it is on and
    shows training and IWAE progress.
    """
    config = config or get_run_config()
    (_, _), (x_test, y_test) = data if data is not None else mnist()
    experiment = recipe(name).experiment
    vae, history, seconds = trained_model(name, config, data, verbose)
    conditional = experiment.architecture == "conditional"
    labels = y_test[: config.iwae_images] if conditional else None
    intended = np.arange(generated) % 10 if conditional else None
    figures = likelihood_figures(
        vae,
        x_test[: config.iwae_images],
        labels,
        samples=config.experiment_iwae_samples,
        seed=config.seed,
        progress=bool(verbose),
    )
    images = vae.generate(generated, config.seed, intended)
    return {
        **asdict(experiment),
        "epochs": len(history["loss"]),
        "negative_elbo": figures["negative_elbo"],
        "reconstruction_loss": figures["reconstruction_loss"],
        "kl_loss": figures["kl_loss"],
        "log_px": -figures["negative_log_px"],
        "test_images": figures["images"],
        "iwae_samples": figures["samples"],
        **judge_images(classifier, images, reference_features, intended),
        "train_seconds": seconds,
        "model": vae,
    }
