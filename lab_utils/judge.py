"""The judge: a small CNN digit classifier that reads generated images (kept as `trained_model("judge")`)."""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from lab_utils.data import IMAGE_SIZE, N_PIXELS, check_images
from lab_utils.metrics import frechet_distance, nearest_training_images
from lab_utils.progress import Progress


def build_classifier(seed: int | None = None, jit_compile: bool | str = "auto") -> keras.Model:
    """Return a small compiled CNN that classifies 784-pixel MNIST images (softmax over 10 digits).

    Keras' "auto" leaves XLA off on a CPU, where it trained this network 4.9× slower
    (`benchmarks/bench_xla.py`), and on with a GPU.
    """
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
        jit_compile=jit_compile,
    )
    return model


def train_judge(x_train, y_train, epochs: int, seed: int, verbose: str | int = 2) -> tuple[keras.Model, dict]:
    """Train the judge (`build_classifier`) on labelled images; return it and its record (its seconds)."""
    keras.utils.set_random_seed(seed)
    classifier = build_classifier(seed)
    started = time.perf_counter()
    classifier.fit(check_images(x_train), np.asarray(y_train), epochs=epochs, batch_size=128, verbose=verbose)
    return classifier, {"seconds": time.perf_counter() - started}


def classifier_accuracy(classifier, images, labels) -> float:
    """The share of `images` the classifier reads as their `labels`."""
    _, accuracy = classifier.evaluate(check_images(images), np.asarray(labels), batch_size=1000, verbose=0)
    return float(accuracy)


def classifier_features(classifier, images) -> np.ndarray:
    """The classifier's 128-unit feature layer for `images` (the space the Fréchet distance uses)."""
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output)
    return extractor.predict(check_images(images), batch_size=1000, verbose=0)


def read_digits(classifier, images) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's digit for each image, and its confidence (the largest softmax probability)."""
    probabilities = classifier.predict(check_images(images), batch_size=1000, verbose=0)
    return probabilities.argmax(axis=1), probabilities.max(axis=1)


def judge_images(classifier, images, reference_features, labels=None) -> dict:
    """How the classifier reads a set of images, beside real images' `reference_features`.

    Accuracy against `labels` (None without them), mean confidence, the digit counts, digits
    covered (classes with >= 5 % of the images) and the Fréchet distance in feature space.
    """
    predicted, confidence = read_digits(classifier, images)
    counts = np.bincount(predicted, minlength=10)
    return {
        "accuracy": None if labels is None else float(np.mean(predicted == np.asarray(labels))),
        "mean_confidence": float(confidence.mean()),
        "digit_counts": counts,
        "digits_covered": int(np.sum(counts >= 0.05 * counts.sum())),
        "frechet_distance": frechet_distance(classifier_features(classifier, images), reference_features),
    }


def compare_sets(
    classifier,
    originals,
    labels,
    reconstructions,
    generated,
    train_images,
    copy_check: int | None = None,
    progress: bool = False,
) -> dict[str, dict]:
    """Judge originals, reconstructions and generated images alike, each against the originals.

    Each set gets `judge_images`' figures (accuracy against the originals' labels, none for
    generated images) and the distance from each image to its nearest training image, its
    mean and its 1st percentile, read against the originals, which are held out. Exact or
    near-exact copies would show in the lower tail; blurred copies would not (see
    `metrics.memorisation_gap` for a check that can catch them). The distances are searched for
    the first `copy_check` images of each set (None: all of them). `progress` prints a line that
    advances as each set is done.
    """
    if copy_check is not None and (
        isinstance(copy_check, bool) or not isinstance(copy_check, int) or copy_check < 1
    ):
        raise ValueError(f"copy_check={copy_check!r} must be a positive number of images, or None for all.")
    reference = classifier_features(classifier, originals)
    sets = {"originals": originals, "reconstructions": reconstructions, "generated": generated}
    bar = Progress(len(sets), "judging " + ", ".join(sets)) if progress else None
    results = {}
    for done, (name, images) in enumerate(sets.items(), start=1):
        images = check_images(images, name)
        _, distances = nearest_training_images(images[:copy_check], train_images)
        results[name] = {
            **judge_images(classifier, images, reference, None if name == "generated" else labels),
            "nearest_train_distance": float(distances.mean()),
            "nearest_train_distance_1pct": float(np.percentile(distances, 1)),  # where near-copies would show
        }
        if bar is not None:
            bar.update(done)
    return results
