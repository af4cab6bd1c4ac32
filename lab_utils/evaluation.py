"""Figures that compare reconstructions and samples with the originals, in nats per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from lab_utils.data import IMAGE_SIZE, N_PIXELS, check_images
from lab_utils.losses import reconstruction_loss
from lab_utils.training import write_atomically

TERMS = (
    ("loss", "negative ELBO (total)"),
    ("reconstruction_loss", "reconstruction −log p(x|z)"),
    ("kl_loss", "KL(q(z|x) ‖ p(z))"),
)


def final_losses(history: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Return the last epoch's value of every logged loss term."""
    logs = getattr(history, "history", history)
    if "loss" not in logs:
        raise ValueError("history must be a Keras History or its .history dict with a 'loss' entry.")
    return {key: float(values[-1]) for key, values in logs.items()}


def loss_table(history) -> str:
    """Return a Markdown table of the last epoch's train and validation loss terms (nats per image)."""
    last = final_losses(history)
    rows = ["| term | train | validation (test set) |", "| --- | ---: | ---: |"]
    for key, label in TERMS:
        validation = last.get(f"val_{key}")
        shown = f"{validation:.2f}" if validation is not None else "—"
        escaped = label.replace("|", "\\|")  # a bare | would split the Markdown cell
        rows.append(f"| {escaped} | {last[key]:.2f} | {shown} |")
    return "\n".join(rows)


def evaluate_elbo(vae, images, labels=None, batch_size: int = 1000) -> dict[str, float]:
    """Return the negative ELBO and its two terms on `images`, in nats per image (one z sample each).

    The negative ELBO is reconstruction + KL whatever the model's β (a β-VAE's training
    loss weighs the KL differently, so it is not the ELBO). `labels` for a ConditionalVAE.
    """
    result = vae.evaluate(
        check_images(images),
        None if labels is None else np.asarray(labels),
        batch_size=batch_size,
        verbose=0,
        return_dict=True,
    )
    terms = {key: float(result[key]) for key in ("reconstruction_loss", "kl_loss")}
    return {"negative_elbo": terms["reconstruction_loss"] + terms["kl_loss"], **terms}


def importance_log_likelihood(
    vae, images, labels=None, samples: int = 1000, images_per_batch: int | None = None, seed: int = 0
) -> np.ndarray:
    """Estimate log p(x) per image with the importance-weighted (IWAE) bound over `samples` codes.

    log p(x) ≈ logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K, with z_k ~ q(z|x).
    It is a lower bound that tightens as K grows; with K = 1 it is the ELBO. Pixels are
    treated as Bernoulli probabilities, as in the training loss, so this is the log-likelihood
    of the same model the loss describes. `labels` are needed by a ConditionalVAE (then it
    is log p(x | y)). Returns one value (nats) per image.
    """
    import tensorflow as tf

    images = check_images(images)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} must be a positive integer (K=1000 is the usual choice).")
    labels = np.zeros(len(images), "int32") if labels is None else np.asarray(labels, "int32")
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    conditional = isinstance(vae.decoder.inputs, list) and len(vae.decoder.inputs) > 1
    latent_dim = int(vae.decoder.inputs[0].shape[-1])
    per_batch = images_per_batch or max(1, 20_000 // samples)
    log_2pi = float(np.log(2 * np.pi))

    @tf.function(jit_compile=True)
    def log_weights(x, y, epsilon):
        z_mean, z_log_var, _ = vae.encode(x, y if conditional else None)
        z = z_mean[None] + tf.exp(0.5 * z_log_var)[None] * epsilon  # (K, B, d)
        repeated_y = tf.reshape(tf.broadcast_to(y[None], (samples, *y.shape)), (-1,))
        probabilities = vae.decode(tf.reshape(z, (-1, latent_dim)), repeated_y if conditional else None)
        repeated_x = tf.reshape(tf.broadcast_to(x[None], (samples, *x.shape)), (-1, x.shape[-1]))
        log_px_given_z = -tf.reshape(reconstruction_loss(repeated_x, probabilities), (samples, -1))
        log_pz = -0.5 * tf.reduce_sum(tf.square(z) + log_2pi, axis=-1)
        log_qz = -0.5 * tf.reduce_sum(tf.square(epsilon) + log_2pi + z_log_var[None], axis=-1)
        return tf.reduce_logsumexp(log_px_given_z + log_pz - log_qz, axis=0) - np.log(samples)

    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, len(images), per_batch):
        x, y = images[start : start + per_batch], labels[start : start + per_batch]
        if len(x) < per_batch:  # keep one compiled shape: pad, then drop the padding
            x = np.concatenate([x, np.repeat(x[-1:], per_batch - len(x), axis=0)])
            y = np.concatenate([y, np.repeat(y[-1:], per_batch - len(y))])
        epsilon = rng.standard_normal((samples, per_batch, latent_dim), dtype=np.float32)
        estimates.append(log_weights(tf.constant(x), tf.constant(y), tf.constant(epsilon)).numpy())
    return np.concatenate(estimates)[: len(images)]


def reconstruction_error_per_digit(vae, images, labels) -> dict[int, float]:
    """Mean reconstruction loss (nats per image, reconstructing from z_mean) of each digit class."""
    images, labels = check_images(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels.")
    reconstructions = vae.predict(images, batch_size=1000, verbose=0)
    losses = np.asarray(reconstruction_loss(images, reconstructions))
    return {digit: float(losses[labels == digit].mean()) for digit in range(10) if np.any(labels == digit)}


def build_classifier(seed: int | None = None) -> keras.Model:
    """Return a small compiled CNN that classifies 784-pixel MNIST images (softmax over 10 digits)."""
    inputs = keras.Input(shape=(N_PIXELS,), name="image")
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1))(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25, seed=seed)(x)
    x = layers.Flatten()(x)
    features = layers.Dense(128, activation="relu", name="features")(x)
    x = layers.Dropout(0.5, seed=seed)(features)
    outputs = layers.Dense(10, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs, name="digit_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=True,
    )
    return model


def train_or_load_classifier(path, x_train, y_train, x_test, y_test, epochs: int = 3, seed: int = 0):
    """Return (classifier, test accuracy): loaded from `path` if saved there, else trained and saved."""
    path = Path(path)
    if path.is_file():
        classifier = keras.models.load_model(path, safe_mode=True)
    else:
        keras.utils.set_random_seed(seed)
        classifier = build_classifier(seed)
        classifier.fit(check_images(x_train), np.asarray(y_train), epochs=epochs, batch_size=128, verbose=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, classifier.save)
    _, accuracy = classifier.evaluate(check_images(x_test), np.asarray(y_test), batch_size=1000, verbose=0)
    return classifier, float(accuracy)


def judge_samples(classifier, images) -> dict:
    """Classify generated images: how many of each digit, and how confident the classifier is."""
    probabilities = classifier.predict(check_images(images), batch_size=1000, verbose=0)
    predicted = probabilities.argmax(axis=1)
    return {
        "digit_counts": np.bincount(predicted, minlength=10),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
    }


def classifier_features(classifier, images) -> np.ndarray:
    """The classifier's 128-unit feature layer for `images` (the space the Fréchet distance uses)."""
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output)
    return extractor.predict(check_images(images), batch_size=1000, verbose=0)


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, any features).

    d² = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½), computed with symmetric
    eigendecompositions.
    """
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two (n, d) feature arrays with the same d and n >= 2; got {a.shape} and {b.shape}."
        )
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(middle, 0, None)).sum()
    return max(0.0, float(np.sum((mean_a - mean_b) ** 2) + trace_term))  # no rounding below zero


def nearest_training_images(samples, train_images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the index of the closest training image (Euclidean, pixels) and that distance."""
    samples, train_images = check_images(samples, "samples"), check_images(train_images, "train_images")
    train_norms = np.einsum("ij,ij->i", train_images, train_images)
    indices, distances = [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        squared = (
            np.einsum("ij,ij->i", chunk, chunk)[:, None] - 2 * chunk @ train_images.T + train_norms[None]
        )
        best = squared.argmin(axis=1)
        indices.append(best)
        distances.append(np.sqrt(np.clip(squared[np.arange(len(chunk)), best], 0, None)))
    return np.concatenate(indices), np.concatenate(distances)


def compare_sets(classifier, originals, labels, reconstructions, generated, train_images) -> dict[str, dict]:
    """Judge originals, reconstructions and generated images alike with the kit's classifier.

    For each set: classifier accuracy against the originals' labels (not for generated
    images), mean confidence, digits covered (classes with >= 5 % of the images), Fréchet
    distance to the originals in the classifier's feature space, and the mean distance from
    each image to its nearest training image (copying check).
    """
    reference = classifier_features(classifier, originals)
    labels = np.asarray(labels)
    results = {}
    for name, images in (
        ("originals", originals),
        ("reconstructions", reconstructions),
        ("generated", generated),
    ):
        probabilities = classifier.predict(check_images(images, name), batch_size=1000, verbose=0)
        predicted = probabilities.argmax(axis=1)
        counts = np.bincount(predicted, minlength=10)
        _, distances = nearest_training_images(images, train_images)
        results[name] = {
            "accuracy": None if name == "generated" else float(np.mean(predicted == labels)),
            "mean_confidence": float(probabilities.max(axis=1).mean()),
            "digits_covered": int(np.sum(counts >= 0.05 * counts.sum())),
            "digit_counts": counts,
            "frechet_distance": frechet_distance(classifier_features(classifier, images), reference),
            "nearest_train_distance": float(distances.mean()),
        }
    return results


def comparison_table(results: Mapping[str, Mapping]) -> str:
    """Markdown table of `compare_sets` results, one column per set."""
    names = list(results)
    rows = [
        ("classifier accuracy (vs the originals' labels)", "accuracy", "{:.1%}"),
        ("classifier mean confidence", "mean_confidence", "{:.3f}"),
        ("digits covered (≥ 5 % of images)", "digits_covered", "{}/10"),
        ("Fréchet distance to the originals (kit classifier features)", "frechet_distance", "{:.2f}"),
        ("mean distance to the nearest training image (pixels, L2)", "nearest_train_distance", "{:.2f}"),
    ]
    lines = ["| measure | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, key, form in rows:
        cells = ["—" if results[n][key] is None else form.format(results[n][key]) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
