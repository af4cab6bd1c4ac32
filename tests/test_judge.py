"""lab_utils.judge: the CNN classifier that reads generated images, and how it is cached."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lab_utils.config import RunConfig
from lab_utils.judge import (
    build_classifier,
    classifier_accuracy,
    classifier_features,
    compare_sets,
    judge_images,
)
from lab_utils.metrics import nearest_training_images
from lab_utils.reports import comparison_table
from lab_utils.trained import trained_model


def test_judge_reads_a_set_of_images_and_exposes_features(random_images):
    classifier = build_classifier(seed=0)
    assert classifier.jit_compile is False  # Keras' "auto" on a CPU: XLA's convolutions are the slower
    labels = np.arange(30) % 10
    verdict = judge_images(
        classifier, random_images[:30], classifier_features(classifier, random_images), labels
    )
    probabilities = classifier.predict(random_images[:30], verbose=0)
    predicted = probabilities.argmax(axis=1)
    assert verdict["digit_counts"].tolist() == np.bincount(predicted, minlength=10).tolist()
    assert verdict["digits_covered"] == np.sum(np.bincount(predicted, minlength=10) >= 1.5)
    assert verdict["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert verdict["mean_confidence"] == pytest.approx(probabilities.max(axis=1).mean(), rel=1e-6)
    assert (
        judge_images(classifier, random_images[:30], classifier_features(classifier, random_images))[
            "accuracy"
        ]
        is None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras 3.7 warned when the extractor took its inputs as a list
        features = classifier_features(classifier, random_images[:4])
    assert features.shape == (4, 128)


def test_compare_sets_judges_three_sets_alike(random_images):
    classifier = build_classifier(seed=0)
    labels = np.arange(40) % 10
    originals = random_images[:40]
    results = compare_sets(classifier, originals, labels, originals, random_images[40:80], random_images)
    assert results["reconstructions"]["frechet_distance"] == pytest.approx(0.0, abs=1e-3)  # identical sets
    assert results["originals"]["nearest_train_distance"] == pytest.approx(0.0, abs=1e-3)  # they are in it
    nearest = nearest_training_images(random_images[40:80], random_images[80:])[
        1
    ]  # not in the training set here
    unseen = compare_sets(classifier, originals, labels, originals, random_images[40:80], random_images[80:])
    assert unseen["generated"]["nearest_train_distance_1pct"] == pytest.approx(
        np.percentile(nearest, 1), rel=1e-5
    )
    first_ten = compare_sets(
        classifier, originals, labels, originals, random_images[40:80], random_images[80:], copy_check=10
    )
    assert first_ten["generated"]["nearest_train_distance"] == pytest.approx(nearest[:10].mean(), rel=1e-5)
    assert first_ten["generated"]["nearest_train_distance"] != pytest.approx(nearest.mean(), rel=1e-5)
    # the copying check reads 10 images, the judge all 40
    assert first_ten["generated"]["frechet_distance"] == unseen["generated"]["frechet_distance"]
    with pytest.raises(ValueError, match="copy_check=0"):
        compare_sets(classifier, originals, labels, originals, originals, random_images, copy_check=0)
    assert results["generated"]["accuracy"] is None
    assert results["originals"]["accuracy"] == results["reconstructions"]["accuracy"]
    table = comparison_table(results).splitlines()
    assert table[0] == "| measure | originals | reconstructions | generated |"
    assert table[2].endswith(" | — |") and len(table) == 8


def test_judge_is_trained_once_then_loaded_and_trained_anew_for_other_settings(
    random_images, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("VAE_LAB_ARTIFACTS", str(tmp_path))
    labels = np.arange(len(random_images)) % 10
    data = ((random_images, labels), (random_images[:64], labels[:64]))
    config = RunConfig(mode="fast", train_size=None, epochs=1, classifier_epochs=1)
    first = trained_model("judge", config, data).model
    assert (tmp_path / "fast" / "digit_classifier.keras").is_file() and "Saved" in capsys.readouterr().out
    again = trained_model("judge", config, data).model
    assert "Loaded" in capsys.readouterr().out
    assert classifier_accuracy(again, random_images[:64], labels[:64]) == pytest.approx(
        classifier_accuracy(first, random_images[:64], labels[:64])
    )
    np.testing.assert_allclose(
        again.predict(random_images[:5], verbose=0), first.predict(random_images[:5], verbose=0)
    )
    trained_model("judge", RunConfig(mode="fast", train_size=None, epochs=1, classifier_epochs=2), data)
    assert "other settings" in capsys.readouterr().out  # a judge of other settings is not reused
