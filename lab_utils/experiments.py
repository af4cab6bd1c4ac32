"""Controlled experiments: VAE variants trained with the same seed and epoch budget, each measured alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lab_utils.config import RunConfig
from lab_utils.evaluation import (
    classifier_features,
    evaluate_elbo,
    frechet_distance,
    importance_log_likelihood,
    judge_samples,
)
from lab_utils.models import build_vae
from lab_utils.training import train_or_load, training_seconds


@dataclass(frozen=True)
class Experiment:
    """One row of an experiment table: which VAE to train."""

    name: str
    architecture: str = "dense"
    latent_dim: int = 2
    beta: float = 1.0
    hidden_units: tuple[int, ...] = (512,)


def generate(vae, count: int, seed: int, labels=None) -> np.ndarray:
    """Decode `count` codes drawn from the prior N(0, I) (with these digit labels for a ConditionalVAE)."""
    latent_dim = int(vae.decoder.inputs[0].shape[-1])
    z = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype("float32")
    return np.asarray(vae.decode(z, labels))


def judge_generations(classifier, generated, reference_features, intended_labels=None) -> dict:
    """Classifier-judged quality of generated images against real test images' features."""
    verdict = judge_samples(classifier, generated)
    counts = verdict["digit_counts"]
    result = {
        "mean_confidence": verdict["mean_confidence"],
        "digits_covered": int(np.sum(counts >= 0.05 * counts.sum())),
        "frechet_distance": frechet_distance(classifier_features(classifier, generated), reference_features),
        "digit_counts": counts.tolist(),
    }
    if intended_labels is not None:
        predicted = classifier.predict(generated, batch_size=1000, verbose=0).argmax(axis=1)
        result["label_accuracy"] = float(np.mean(predicted == np.asarray(intended_labels)))
    return result


def run_experiment(
    experiment: Experiment,
    config: RunConfig,
    data,
    classifier,
    reference_features,
    folder,
    samples: int = 1000,
) -> dict:
    """Train (or load) the experiment's VAE and return its row: −ELBO, IWAE log p(x), sample quality, time."""
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

    vae, history = train_or_load(
        build,
        path,
        x_train[: config.train_size],
        x_test,
        settings={**asdict(experiment), "train_size": len(x_train[: config.train_size])},
        retrain=config.retrain,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        verbose=0,
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
    )
    generated = generate(vae, samples, config.seed, intended)
    return {
        **asdict(experiment),
        "epochs": len(history["loss"]),
        "negative_elbo": elbo["negative_elbo"],
        "reconstruction_loss": elbo["reconstruction_loss"],
        "kl_loss": elbo["kl_loss"],
        "log_px": float(log_px.mean()),
        **judge_generations(classifier, generated, reference_features, intended),
        "train_seconds": training_seconds(path),
        "model": vae,
    }


def experiments_table(rows: list[dict]) -> str:
    """Markdown table of experiment rows (nats per image; FD is the kit classifier's Fréchet distance)."""
    header = (
        "| model | latent | β | test −ELBO | −log p(x) (IWAE) | KL | sample confidence | digits covered "
        "| FD to test | train time |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [header]
    for row in rows:
        extra = f" (labels right: {row['label_accuracy']:.0%})" if "label_accuracy" in row else ""
        lines.append(
            f"| {row['name']} | {row['latent_dim']} | {row['beta']:g} | {row['negative_elbo']:.1f} | "
            f"{-row['log_px']:.1f} | {row['kl_loss']:.1f} | {row['mean_confidence']:.2f}{extra} | "
            f"{row['digits_covered']}/10 | {row['frechet_distance']:.1f} | {row['train_seconds']:.0f} s |"
        )
    return "\n".join(lines)
